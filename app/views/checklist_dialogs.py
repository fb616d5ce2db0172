"""Dialogs of the technician's checklist that a USB barcode scanner cannot confirm.

The scanner types a tag and Enter into whatever has the focus; in these
dialogs Enter only says what is missing, and only a click (or Alt + the
button's letter) confirms.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QApplication,
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)


class ScannerSafeDialog(QDialog):
    """A dialog a USB barcode scanner cannot confirm. The scanner types a tag and
    Enter into whatever has the focus, so Enter never confirms here: it only says
    what is missing, and only a click on the confirm button (or Alt + its letter)
    does it. Subclasses add their fields and say what is missing and what to emit."""

    def __init__(self, parent: QWidget | None, title: str, prompt: str, confirm_label: str):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.body = QVBoxLayout(self)
        self.body.addWidget(QLabel(prompt))
        self.hint = QLabel("")
        self.hint.setStyleSheet("color: #b71c1c; font-weight: bold;")
        self.buttons = QDialogButtonBox()
        self.confirm_button = self.buttons.addButton(confirm_label, QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        for button in (self.confirm_button, self.cancel_button):
            button.setAutoDefault(False)
            button.setDefault(False)
        self.confirm_button.clicked.connect(self._confirm)
        self.cancel_button.clicked.connect(self.reject)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def finish_layout(self) -> None:
        """Call once the subclass has added its fields."""
        self.body.addWidget(self.hint)
        self.body.addWidget(self.buttons)

    def _missing(self) -> str:
        return ""

    def _emit(self) -> None:
        raise NotImplementedError

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            missing = self._missing()
            self.hint.setText(missing or f"Enter does not confirm: click '{self.confirm_button.text().replace('&', '')}'.")
            QApplication.beep()
            return
        super().keyPressEvent(event)

    def _confirm(self) -> None:
        missing = self._missing()
        if missing:
            self.hint.setText(missing)
            return
        self._emit()
        self.accept()


class StepReasonDialog(ScannerSafeDialog):
    """Why a step is skipped or flagged: a reason picked from ``reasons`` (none
    preselected) and/or a note. ``confirmed(reason_code, note)`` is emitted on
    confirmation; Cancel and Esc change nothing."""

    confirmed = Signal(str, str)

    def __init__(self, parent: QWidget | None, title: str, prompt: str, confirm_label: str,
                 reasons: dict[str, str] | None = None, note_label: str = "", note_required: bool = False):
        super().__init__(parent, title, prompt, confirm_label)
        self._note_required = note_required
        self.reasons = QButtonGroup(self)
        self.reasons.setExclusive(True)
        for code, label in (reasons or {}).items():
            radio = QRadioButton(label)
            radio.setProperty("reason", code)
            self.reasons.addButton(radio)
            self.body.addWidget(radio)
        self.note = QLineEdit()
        if note_label:
            self.body.addWidget(QLabel(note_label))
        self.body.addWidget(self.note)
        self.finish_layout()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        """With reasons, the focus starts on the dialog itself, not on a reason (a
        space would pick it), a button (a space would press it) or the note: a
        scanned tag types nowhere and its Enter only shows the hint; Tab reaches the
        rest. Without, it starts in the note, where a tag is seen and Enter confirms nothing."""
        super().showEvent(event)
        (self if self.reasons.buttons() else self.note).setFocus()

    @property
    def reason(self) -> str | None:
        checked = self.reasons.checkedButton()
        return checked.property("reason") if checked is not None else None

    def _missing(self) -> str:
        if self.reasons.buttons() and self.reason is None:
            return "Pick a reason first."
        if self._note_required and not self.note.text().strip():
            return "Say what the problem is first."
        return ""

    def _emit(self) -> None:
        self.confirmed.emit(self.reason or "", self.note.text())


class MoveImageDialog(ScannerSafeDialog):
    """Which step an image moves to (none preselected); ``chosen(index)`` is the
    row picked: 0 for "no step", else the step's place in ``choices``."""

    chosen = Signal(int)

    def __init__(self, parent: QWidget | None, image_id: int, choices: list[str]):
        super().__init__(parent, "Move image", f"Move image #{image_id} to:", "&Move image")
        self.steps = QListWidget()
        self.steps.addItems(choices)
        self.steps.setCurrentRow(-1)
        self.body.addWidget(self.steps)
        self.finish_layout()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        self.setFocus()  # a scanned tag types nowhere; the list is clicked or reached with Tab

    def _missing(self) -> str:
        return "" if self.steps.selectedItems() else "Pick a step first."

    def _emit(self) -> None:
        self.chosen.emit(self.steps.currentRow())
