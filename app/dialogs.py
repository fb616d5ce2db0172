"""The one way errors reach the user (a dialog with the message and, if any, details),
the one way to ask before a destructive action (Cancel by default), and the one
way to save a file: a save dialog that starts where the user saved that kind of
file last (the documents folder the first time), and a confirmation naming the
saved file with a way to its folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from core.errors import InputFileError, XLabError


def show_error(parent: QWidget | None, title: str, exc: BaseException) -> QMessageBox:
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle(title)
    if isinstance(exc, InputFileError):
        box.setText(f"{len(exc.problems)} problem(s) found; nothing was changed.")
        box.setDetailedText("\n".join(str(p) for p in exc.problems))
        box.setInformativeText("\n".join(str(p) for p in exc.problems[:5]))
    elif isinstance(exc, XLabError):
        box.setText(str(exc))
    else:
        box.setIcon(QMessageBox.Icon.Critical)
        box.setText(f"Unexpected error: {exc}")
        box.setInformativeText("Nothing was lost. Please report this with the details below.")
        box.setDetailedText(getattr(exc, "__xlab_traceback__", repr(exc)))
    box.open()
    return box


def confirm_destructive(parent: QWidget | None, title: str, text: str, action_label: str,
                        on_confirm: Callable[[], None], details: str = "") -> QMessageBox:
    """Ask before something destructive or irreversible; ``on_confirm`` runs only when
    ``action_label`` is clicked. Cancel is the default and the escape button, so the
    Enter that ends a barcode scan (or any stray Enter) never confirms."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle(title)
    box.setText(text)
    if details:
        box.setInformativeText(details)
    action = box.addButton(action_label, QMessageBox.ButtonRole.DestructiveRole)
    action.setAutoDefault(False)
    cancel = box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(cancel)
    box.setEscapeButton(cancel)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.buttonClicked.connect(lambda button: on_confirm() if button is action else None)
    box.open()
    cancel.setFocus()
    return box


SAVE_FOLDERS_KEY = "save_folders"  # QSettings group: the last folder used, per kind of file


def save_folder(kind: str, settings: QSettings | None = None) -> Path:
    """Where the save dialog for ``kind`` starts: the folder last saved into, if it
    is still there, else the user's documents folder (never the program's folder)."""
    settings = settings if settings is not None else QSettings()
    last = settings.value(f"{SAVE_FOLDERS_KEY}/{kind}", "", str)
    if last and Path(last).is_dir():
        return Path(last)
    documents = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    return Path(documents) if documents and Path(documents).is_dir() else Path.home()


def choose_save_path(parent: QWidget | None, title: str, suggested_name: str, filters: str, kind: str,
                     on_chosen: Callable[[str], None], settings: QSettings | None = None) -> QFileDialog:
    """Ask where to save a ``kind`` of file (``"tables"``, ``"reports"``, ...).

    The dialog opens window-modal and returns at once; ``on_chosen(path)`` runs on
    the GUI thread once a file is chosen (never on Cancel), after its folder is
    remembered for the next save of that kind. A name typed without a suffix gets
    the suggested one; Qt asks before overwriting."""
    settings = settings if settings is not None else QSettings()
    dialog = QFileDialog(parent, title, str(save_folder(kind, settings) / suggested_name), filters)
    dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
    dialog.setFileMode(QFileDialog.FileMode.AnyFile)
    suffix = Path(suggested_name).suffix.lstrip(".")
    if suffix:
        dialog.setDefaultSuffix(suffix)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

    def chosen(path: str) -> None:
        settings.setValue(f"{SAVE_FOLDERS_KEY}/{kind}", str(Path(path).parent))
        on_chosen(path)

    dialog.fileSelected.connect(chosen)
    dialog.open()
    return dialog


class SavedMessageBox(QMessageBox):
    """Says where a file was saved; "Open folder" shows it in the file manager."""

    folder_opened = Signal(QUrl)

    def __init__(self, parent: QWidget | None, path: str | Path):
        super().__init__(parent)
        path = Path(path).resolve()
        self.path = path
        self.folder_url = QUrl.fromLocalFile(str(path.parent))
        self.setIcon(QMessageBox.Icon.Information)
        self.setWindowTitle("Saved")
        self.setText(f"Saved {path.name}")
        self.setInformativeText(str(path))
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.open_button = self.addButton("Open folder", QMessageBox.ButtonRole.ActionRole)
        self.open_button.setAutoDefault(False)
        ok = self.addButton(QMessageBox.StandardButton.Ok)
        self.setDefaultButton(ok)  # a stray Enter only closes this
        self.setEscapeButton(ok)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.buttonClicked.connect(lambda button: self.open_folder() if button is self.open_button else None)

    def open_folder(self) -> bool:
        """Hand the folder to the desktop's file manager; where there is none, say
        where the folder is."""
        self.folder_opened.emit(self.folder_url)
        if QDesktopServices.openUrl(self.folder_url):
            return True
        show_error(self.parentWidget(), "Open folder",
                   XLabError(f"could not open a file manager here; the file is in {self.path.parent}"))
        return False


def announce_saved(parent: QWidget | None, path: str | Path) -> SavedMessageBox:
    """Confirm a finished save with the file's full path; returns the (open) message."""
    box = SavedMessageBox(parent, path)
    box.open()
    return box
