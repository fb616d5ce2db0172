"""Saving a file from the window: the dialog starts in the documents folder, then
where that kind of file was saved last; the saved file is announced with its
path and a way to its folder. Driven through Qt's own (non-native) file dialog."""

from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMessageBox

from app.dialogs import SavedMessageBox
from tests.app.file_dialogs import button, documents, file_dialog, folder_of, save_as, saved_message  # noqa: F401


@pytest.fixture
def dashboards(qtbot, window):
    view = window.show_area("Dashboards")
    qtbot.waitUntil(lambda: view.snapshot is not None, timeout=20_000)
    return view


def test_exports_start_in_documents_then_in_the_last_folder_of_their_kind(
        qtbot, dashboards, documents, settings, tmp_path):
    view = dashboards
    view.tabs.setCurrentWidget(view.classes)
    button(view.classes, "CSV…").click()
    dialog = file_dialog(qtbot, view.classes)
    assert folder_of(dialog) == documents.resolve()
    assert Path(dialog.selectedFiles()[0]).name == "class-progress.csv"
    target = tmp_path / "exports" / "classes.csv"
    save_as(qtbot, dialog, target)
    message = saved_message(qtbot, view.classes)
    lines = target.read_text().splitlines()
    assert lines[0].startswith("class_name,") and len(lines) == 1 + len(view.classes.model.rows)
    assert message.informativeText() == str(target.resolve())
    assert message.defaultButton() is not message.open_button
    # "Open folder" hands the folder (not the file) to the desktop. Offscreen Qt has
    # no desktop to hand it to (nothing is launched), so the user is told where it is.
    assert message.folder_url == QUrl.fromLocalFile(str(target.parent.resolve()))
    assert QGuiApplication.platformName() == "offscreen"
    with qtbot.waitSignal(message.folder_opened) as opened:
        qtbot.mouseClick(message.open_button, Qt.MouseButton.LeftButton)
    assert opened.args == [message.folder_url]
    told = [b for b in view.classes.findChildren(QMessageBox) if b.isVisible() and not isinstance(b, SavedMessageBox)]
    assert len(told) == 1 and str(target.parent.resolve()) in told[0].text()
    told[0].close()
    # the next table export starts where this one went (remembered in the settings given)
    button(view.classes, "CSV…").click()
    again = file_dialog(qtbot, view.classes)
    assert folder_of(again) == target.parent.resolve()
    assert settings.value("save_folders/tables") == str(target.parent.resolve())
    again.reject()
    # a report is another kind: its first dialog starts in the documents folder
    view._report()
    report_dialog = file_dialog(qtbot, view)
    assert folder_of(report_dialog) == documents.resolve()
    report = tmp_path / "reports" / "weekly"  # no suffix typed: the dialog adds .pdf
    save_as(qtbot, report_dialog, report)
    message = saved_message(qtbot, view, timeout=60_000)
    written = report.with_suffix(".pdf")
    assert written.read_bytes().startswith(b"%PDF")
    assert message.informativeText() == str(written.resolve())
    assert view.status.text() == f"report saved: {written}"


def test_chart_png_is_saved_and_announced_and_a_failed_write_says_so(qtbot, dashboards, documents, tmp_path):
    from app.views.dashboards import save_chart

    heatmap = dashboards.heatmap
    button(heatmap, "PNG…").click()
    dialog = file_dialog(qtbot, heatmap)
    assert folder_of(dialog) == documents.resolve()
    target = tmp_path / "charts" / "fill.png"
    save_as(qtbot, dialog, target)
    message = saved_message(qtbot, heatmap)
    assert target.read_bytes().startswith(b"\x89PNG") and message.informativeText() == str(target.resolve())
    message.close()
    # a folder that is not there: an error that says so, never "saved"
    save_chart(heatmap, heatmap.plot, str(tmp_path / "missing" / "fill.png"))
    errors = [b for b in heatmap.findChildren(QMessageBox) if b.isVisible() and not isinstance(b, SavedMessageBox)]
    assert len(errors) == 1 and "could not write" in errors[0].text()
    assert not any(b.isVisible() for b in heatmap.findChildren(SavedMessageBox))


def test_inventory_export_asks_from_documents_and_says_where(qtbot, window, documents, tmp_path):
    inventory = window.show_area("Inventory")
    inventory.ask_export()
    dialog = file_dialog(qtbot, inventory)
    assert folder_of(dialog) == documents.resolve()
    target = tmp_path / "backup" / "inventory.yaml"
    save_as(qtbot, dialog, target)
    message = saved_message(qtbot, inventory)
    assert "threat_classes" in target.read_text() and message.informativeText() == str(target.resolve())
