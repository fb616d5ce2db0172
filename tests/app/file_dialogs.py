"""Driving the save dialogs (Qt's own, non-native file dialog) and their confirmations."""

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox, QFileDialog, QLineEdit, QPushButton

from app.dialogs import SavedMessageBox


@pytest.fixture
def documents(tmp_path, monkeypatch):
    """A home of the test's own, with a documents folder (XDG_CONFIG_HOME has no user-dirs file)."""
    home = tmp_path / "home"
    (home / "Documents").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    return home / "Documents"


def file_dialog(qtbot, parent) -> QFileDialog:
    qtbot.waitUntil(lambda: any(d.isVisible() for d in parent.findChildren(QFileDialog)), timeout=5_000)
    return next(d for d in parent.findChildren(QFileDialog) if d.isVisible())


def folder_of(dialog: QFileDialog) -> Path:
    return Path(dialog.directory().absolutePath()).resolve()


def save_as(qtbot, dialog: QFileDialog, path: Path) -> None:
    """Put the file's path in the dialog's name field and click Save. (Typed key by
    key, the path opens Qt's completion list, which would take the click.)"""
    path.parent.mkdir(parents=True, exist_ok=True)
    dialog.selectFile(str(path))
    assert dialog.findChild(QLineEdit, "fileNameEdit").text() in (str(path), path.name)
    save = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Save)
    with qtbot.waitSignal(dialog.fileSelected, timeout=5_000):
        qtbot.mouseClick(save, Qt.MouseButton.LeftButton)


def saved_message(qtbot, parent, timeout=20_000) -> SavedMessageBox:
    qtbot.waitUntil(lambda: any(b.isVisible() for b in parent.findChildren(SavedMessageBox)), timeout=timeout)
    return next(b for b in parent.findChildren(SavedMessageBox) if b.isVisible())


def button(parent, text: str) -> QPushButton:
    return next(b for b in parent.findChildren(QPushButton) if b.text() == text)
