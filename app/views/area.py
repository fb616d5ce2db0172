"""What every area of the window shares: refresh only when a change concerns it
and the area is visible; otherwise remember it is stale and refresh when shown."""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

from core.catalog import Change


class AreaView(QWidget):
    relevant_tables: tuple[str, ...] = ("*",)  # "*": a write by another program

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._stale = True

    def refresh(self) -> None:
        raise NotImplementedError

    def on_catalog_changed(self, change: Change) -> None:
        if change.touches(*self.relevant_tables):
            self._stale = True
            if self.isVisible():
                self.refresh()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        if self._stale:
            self.refresh()
