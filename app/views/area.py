"""What every area of the window shares: refresh only when a change concerns it
and the area is visible; otherwise remember it is stale and refresh when shown."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from core.catalog import Change


class AreaView(QWidget):
    relevant_tables: tuple[str, ...] = ()  # catalog tables whose changes this area shows

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



class EmptyStatePanel(QWidget):
    """What an area shows while it has nothing yet: what is missing, what to do
    next, and the buttons that do it."""

    def __init__(self, message: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.message = QLabel(message)
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setStyleSheet("font-size: 15px")
        self.message.setMaximumWidth(720)  # a paragraph, not one line across the screen
        self._buttons = QHBoxLayout()
        self._buttons.addStretch(1)
        self._buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(self.message, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addLayout(self._buttons)
        layout.addStretch(2)

    def add_action(self, text: str, slot) -> QPushButton:
        button = QPushButton(text)
        button.clicked.connect(lambda _=False: slot())
        self._buttons.insertWidget(self._buttons.count() - 1, button)  # between the two stretches
        return button
