"""The one way errors reach the user: a dialog with the message and, if any, details."""

from __future__ import annotations

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
