"""Add or edit one inventory entry in a form built from its section's fields."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from app import tasks
from app.dialogs import show_error
from core.errors import InputFileError
from core.inputs import OneOf
from core.inventory.sections import SECTION_BY_NAME, Field, Section
from core.lab import Lab

# Field names as people say them (the file's names are for the file).
FIELD_TITLES = {
    "name": "Name", "barcode": "Barcode", "family": "Family", "description": "Description", "active": "Status",
    "class": "Class", "luggage_type": "Luggage type", "clutter": "Clutter", "vendor": "Vendor", "views": "Views",
    "dual_energy": "Dual\nenergy", "width": "Width\n(px)", "height": "Height\n(px)", "bit_depth": "Bit\ndepth",
    "pixel_mm": "Pixel\n(mm)", "gain": "Gain", "noise": "Noise", "model": "Model", "station": "Station",
    "drop_folder": "Drop folder", "placement": "Placement", "rotation_deg": "Rotation\n(°)", "occlusion": "Occlusion",
}


def field_title(name: str) -> str:
    return FIELD_TITLES.get(name, name.replace("_", " ").capitalize())


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


class InventoryEntryDialog(QDialog):
    """One entry of ``section``: new (``values`` None) or an edit of an existing
    one, whose key (name or barcode) then stays as it is. Saving goes through
    the inventory import's checks; problems are listed one per line and nothing
    is changed until they are fixed."""

    saved = Signal(object)  # core ImportReport

    def __init__(self, lab: Lab, section: Section, entries: dict[str, list[dict[str, Any]]],
                 values: dict[str, Any] | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self._lab = lab
        self.section = section
        self.editing = values is not None
        self.setWindowTitle(f"{'Edit' if self.editing else 'Add'} {section.label}")
        self.setMinimumWidth(460)
        self.inputs: dict[str, QWidget] = {}
        form = QFormLayout()
        for spec in section.fields:
            widget = self._input(spec, entries, (values or {}).get(spec.name, spec.default))
            if spec.name == section.key and self.editing:
                widget.setReadOnly(True)
                widget.setToolTip(f"The {spec.name} identifies this {section.label}; it cannot change")
            self.inputs[spec.name] = widget
            label = field_title(spec.name).replace("\n", " ") + ("" if spec.required or spec.kind is bool else " (optional)")
            form.addRow(label, widget)
        self.problems = QLabel("")
        self.problems.setWordWrap(True)
        self.problems.setStyleSheet("color: #b00020")
        self.problems.hide()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.problems)
        layout.addWidget(self.buttons)

    def _input(self, spec: Field, entries: dict[str, list[dict[str, Any]]], value: Any) -> QWidget:
        if spec.kind is bool:
            box = QCheckBox("active" if spec.name == "active" else "yes")
            box.setChecked(bool(value))
            return box
        if spec.references or isinstance(spec.rule, OneOf):
            combo = QComboBox()
            if spec.references:
                target = SECTION_BY_NAME[spec.references]
                choices = [str(e[target.key]) for e in entries.get(spec.references, [])]
            else:
                choices = [str(c) for c in spec.rule.choices]
            combo.addItems(choices)
            if value is not None and str(value) in choices:
                combo.setCurrentText(str(value))
            elif spec.references and not choices:
                combo.setPlaceholderText(f"add a {SECTION_BY_NAME[spec.references].label} first")
                combo.setCurrentIndex(-1)
            return combo
        edit = QLineEdit(_text(value))
        edit.setPlaceholderText(spec.rule.describe())
        return edit

    def values(self) -> dict[str, Any]:
        """The form as file values; an empty optional field takes its default."""
        out: dict[str, Any] = {}
        for spec in self.section.fields:
            widget = self.inputs[spec.name]
            if isinstance(widget, QCheckBox):
                out[spec.name] = widget.isChecked()
                continue
            text = widget.currentText() if isinstance(widget, QComboBox) else widget.text()
            if text.strip() or spec.required or spec.name == "description":
                out[spec.name] = text if text.strip() or spec.name == "description" else None
        return out

    def save(self) -> None:
        from core.inventory.edit import save_entry

        values = self.values()
        self.buttons.setEnabled(False)
        tasks.call(lambda: save_entry(self._lab.catalog, self.section.name, values), self._saved, self._refused, self)

    def _saved(self, report) -> None:
        self.buttons.setEnabled(True)
        self.saved.emit(report)
        self.accept()

    def _refused(self, exc: BaseException) -> None:
        self.buttons.setEnabled(True)
        if isinstance(exc, InputFileError):
            self.show_problems([p.message for p in exc.problems])
        else:
            show_error(self, f"Could not save the {self.section.label}", exc)

    def show_problems(self, messages: list[str]) -> None:
        self.problems.setText("Not saved:\n" + "\n".join(f"• {m}" for m in messages))
        self.problems.show()

