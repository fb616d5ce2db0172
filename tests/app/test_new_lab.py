"""A new user sets up a lab from the window alone: no lab → a new empty lab or
the demo; an empty lab's areas say what to do next; inventory entries are added,
edited and retired in forms; a quota plan is written, validated and published."""

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QLineEdit, QMessageBox

from app import main as app_main
from app.views.inventory_entry import InventoryEntryDialog
from core.catalog.records import counts
from core.inventory import import_inventory
from core.inventory.edit import entry
from core.lab import CATALOG_FILE, Lab
from core.quota.plans import list_plans
from tests.app.helpers import show_window


@pytest.fixture
def opened_windows():
    yield app_main._windows
    for window in app_main._windows:
        window.close()
        window.lab.close()
    app_main._windows.clear()


def test_gui_without_a_lab_creates_an_empty_one_and_opens_it(qtbot, tmp_path, opened_windows):
    folder = tmp_path / "new-lab"
    chooser = app_main.choose_lab(str(folder), "no XLab lab at " + str(folder))
    qtbot.addWidget(chooser)
    chooser.show()
    assert chooser.folder.text() == str(folder)
    with qtbot.waitSignal(chooser.lab_ready, timeout=20_000):
        qtbot.mouseClick(chooser.create_button, Qt.MouseButton.LeftButton)
    assert (folder / CATALOG_FILE).exists() and not chooser.isVisible()
    [window] = opened_windows
    assert window.lab.paths.root == folder and window.isVisible()
    inventory = window.show_area("Inventory")
    qtbot.waitUntil(lambda: inventory.is_empty and inventory.empty.isVisible(), timeout=10_000)
    assert "No inventory yet" in inventory.empty.message.text()


def test_the_chooser_makes_the_demo_lab_off_the_gui_thread(qtbot, tmp_path):
    from app.views.lab_setup import NewLabDialog

    chooser = NewLabDialog(tmp_path / "elsewhere")
    qtbot.addWidget(chooser)
    chooser.folder.setText(str(tmp_path / "demo"))
    with qtbot.waitSignal(chooser.lab_ready, timeout=60_000) as ready:
        qtbot.mouseClick(chooser.demo_button, Qt.MouseButton.LeftButton)
        assert not chooser.demo_button.isEnabled() and chooser.task.running
    assert ready.args == [str(tmp_path / "demo"), True]
    chooser.task.wait()
    with Lab.open(tmp_path / "demo") as lab:
        assert counts(lab.catalog)["threat_classes"] == 20
        assert [p["status"] for p in list_plans(lab.catalog)] == ["published"]


@pytest.fixture
def empty_window(qtbot, empty_lab, settings):
    win = show_window(qtbot, empty_lab, settings)
    yield win
    win.close()


def _fill(dialog, **values):
    for name, value in values.items():
        widget = dialog.inputs[name]
        if isinstance(widget, QCheckBox):
            widget.setChecked(value)
        elif isinstance(widget, QComboBox):
            widget.setCurrentText(value)
        else:
            widget.setText(value)


def _save(qtbot, inventory, dialog):
    with qtbot.waitSignal(inventory.loaded, timeout=10_000):
        with qtbot.waitSignal(dialog.saved, timeout=10_000):
            qtbot.mouseClick(dialog.buttons.button(dialog.buttons.StandardButton.Save), Qt.MouseButton.LeftButton)


def test_inventory_entries_are_added_edited_and_retired_in_forms(qtbot, empty_window, empty_lab):
    inventory = empty_window.show_area("Inventory")
    qtbot.waitUntil(lambda: inventory.is_empty, timeout=10_000)
    add_family = next(b for b in inventory.empty.findChildren(type(inventory.add_button)) if "family" in b.text())
    qtbot.mouseClick(add_family, Qt.MouseButton.LeftButton)
    dialog = inventory.findChildren(InventoryEntryDialog)[-1]
    _fill(dialog, name="knives")
    _save(qtbot, inventory, dialog)
    assert not inventory.is_empty and inventory.tabs.tabText(0) == "Threat families (1)"

    inventory.tabs.setCurrentIndex(1)
    dialog = inventory.add_entry()
    assert dialog.section.name == "threat_classes" and inventory.add_button.text() == "Add threat class…"
    _fill(dialog, name="knife_open", family="knives", description="  ")
    _save(qtbot, inventory, dialog)

    # A refused entry: every problem on its own line, nothing saved, the form stays open.
    inventory.tabs.setCurrentIndex(4)
    dialog = inventory.add_entry()
    _fill(dialog, barcode="BG-1")
    qtbot.mouseClick(dialog.buttons.button(dialog.buttons.StandardButton.Save), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(dialog.problems.isVisible, timeout=10_000)
    lines = dialog.problems.text().splitlines()
    assert lines[0] == "Not saved:" and len(lines) >= 2
    assert any("luggage_type" in line for line in lines[1:]), lines
    assert dialog.isVisible() and counts(empty_lab.catalog)["bags"] == 0
    dialog.reject()

    # Edit the class: its name stays, the description changes; then retire it.
    inventory.tabs.setCurrentIndex(1)
    inventory.tables["threat_classes"].selectRow(0)
    dialog = inventory.edit_selected()
    assert dialog.inputs["name"].isReadOnly() and dialog.inputs["name"].text() == "knife_open"
    _fill(dialog, description="open folding knives")
    _save(qtbot, inventory, dialog)
    assert entry(empty_lab.catalog, "threat_classes", "knife_open")["description"] == "open folding knives"
    inventory.tables["threat_classes"].selectRow(0)
    assert inventory.retire_button.isVisible() and inventory.retire_button.text() == "Retire class"
    with qtbot.waitSignal(inventory.loaded, timeout=10_000):
        qtbot.mouseClick(inventory.retire_button, Qt.MouseButton.LeftButton)
    assert entry(empty_lab.catalog, "threat_classes", "knife_open")["active"] is False
    assert inventory.models["threat_classes"].rows[0]["active"] is False


def test_a_refused_import_lists_its_problems_one_per_line(qtbot, empty_window, empty_lab, tmp_path):
    inventory = empty_window.show_area("Inventory")
    bad = tmp_path / "bad.yaml"
    bad.write_text("threat_classes:\n  - name: a\n    family: nope\nbags:\n  - barcode: B\n    clutter: lots\n")
    task = inventory.start_import(str(bad))
    qtbot.waitUntil(inventory.problems_box.isVisible, timeout=10_000)
    shown = [inventory.problems.item(i).text() for i in range(inventory.problems.count())]
    assert len(shown) >= 2 and all(line.startswith(f"{bad}:") for line in shown), shown
    assert "nothing was changed" in inventory.problems_title.text()
    assert counts(empty_lab.catalog)["threat_classes"] == 0
    task.wait()
    inventory.findChild(QMessageBox).close()


@pytest.fixture
def inventory_only(tmp_path, demo_inventory_file):
    lab = Lab.init(tmp_path / "lab")
    import_inventory(lab.catalog, demo_inventory_file)
    yield lab
    lab.close()


def test_a_plan_is_written_validated_and_published_from_the_empty_state(qtbot, inventory_only, settings):
    window = show_window(qtbot, inventory_only, settings)
    quotas = window.show_area("Quotas")
    qtbot.waitUntil(lambda: quotas.empty.isVisible(), timeout=10_000)
    assert "No published quota plan" in quotas.empty.message.text()
    new_plan = next(b for b in quotas.empty.findChildren(type(quotas.new_button)) if b.text() == "New plan…")
    qtbot.mouseClick(new_plan, Qt.MouseButton.LeftButton)
    editor = quotas.editor
    assert editor.isVisible() and "name: test-set" in editor.editor.toPlainText()

    # Two mistakes: each listed with its line; a click goes to that line.
    text = editor.editor.toPlainText().replace("detection_rate: 0.90", "detection_rate: 1.5")
    editor.editor.setPlainText(text.replace("confidence: 0.95\nmix:", "confidence: 0.95\n  colour: red\nmix:"))
    with qtbot.waitSignal(editor.validated) as checked:
        qtbot.mouseClick(editor.validate_button, Qt.MouseButton.LeftButton)
    problems = checked.args[0]
    assert len(problems) == 2 and editor.problems.count() == 2
    rate_line = 1 + text.splitlines().index(next(l for l in text.splitlines() if "detection_rate: 1.5" in l))
    item = editor.problems.item(0)
    assert item.text().startswith(f"line {rate_line}: defaults.detection_rate")
    qtbot.mouseClick(editor.problems.viewport(), Qt.MouseButton.LeftButton, pos=editor.problems.visualItemRect(item).center())
    assert editor.current_line() == rate_line
    with qtbot.waitSignal(editor.validated):
        editor.ask_publish()  # not valid: no confirmation, nothing saved
    assert editor.confirm is None and list_plans(inventory_only.catalog) == []

    editor.editor.setPlainText(text.replace("detection_rate: 1.5", "detection_rate: 0.9"))
    box = editor.ask_publish()
    assert box.defaultButton() is box.button(QMessageBox.StandardButton.Cancel)
    qtbot.mouseClick(box.button(QMessageBox.StandardButton.Cancel), Qt.MouseButton.LeftButton)
    assert list_plans(inventory_only.catalog) == []

    box = editor.ask_publish()
    publish = next(b for b in box.buttons() if b.text() == "Publish")
    with qtbot.waitSignal(quotas.loaded, timeout=30_000):
        with qtbot.waitSignal(editor.plan_saved, timeout=30_000):
            qtbot.mouseClick(publish, Qt.MouseButton.LeftButton)
    [plan] = list_plans(inventory_only.catalog)
    assert (plan["name"], plan["status"]) == ("test-set", "published")
    qtbot.waitUntil(lambda: "test-set v1" in quotas.summary.text() and quotas.class_model.rowCount() == 21,
                    timeout=10_000)
    assert not quotas.empty.isVisible()
    editor.reject()

    # Edit plan: the published spec in the editor; Create draft makes v2.
    editor = quotas.edit_plan()
    assert "name: test-set" in editor.editor.toPlainText() and "detection_rate: 0.9" in editor.editor.toPlainText()
    with qtbot.waitSignal(editor.plan_saved, timeout=30_000) as saved:
        qtbot.mouseClick(editor.draft_button, Qt.MouseButton.LeftButton)
    assert (saved.args[0].version, saved.args[0].status) == (2, "draft")
    editor.reject()
    window.close()
