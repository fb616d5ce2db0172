"""The one way errors reach the user (a dialog with the message and, if any, details),
and the one way to ask before a destructive action (Cancel by default)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

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
