"""What each section of the inventory file holds, and how it maps to the catalog.

The inventory file is one YAML document with a list per section; the lab keeps
it in version control. Entries are matched to catalog rows by their key
(``name`` or ``barcode``), so re-importing the same file changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.inputs import MAX_NAME, MAX_NOTE, Flag, Number, OneOf, Rule, Text, Whole

CLUTTER_LEVELS = ("low", "medium", "high")
PLACEMENTS = ("flat", "edge_on", "angled", "upright")
OCCLUSIONS = ("none", "under_metal", "under_organic", "among_clutter")
BIT_DEPTHS = (8, 12, 14, 16)


@dataclass(frozen=True)
class Field:
    """One field of an entry. ``rule`` is its documented range (see :mod:`core.inputs`)."""

    name: str  # as written in the file
    kind: type  # str, int, float or bool
    rule: Rule
    column: str | None = None  # catalog column, if not the same name
    required: bool = True
    default: Any = None
    references: str | None = None  # section whose key this names

    @property
    def db_column(self) -> str:
        return self.column or self.name


@dataclass(frozen=True)
class Section:
    name: str  # file section and catalog table
    key: str
    fields: tuple[Field, ...]
    label: str

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)


# Ranges: names, barcodes and stations 1-100 characters, descriptions up to
# 2,000, drop folders up to 500, no control characters anywhere. Scanner models:
# 1-16 views, 1-65,536 pixels wide and high, pixel size above 0 up to 100 mm,
# gain above 0 up to 1,000, noise 0-1. Poses: rotation -360 to 360 degrees.
_NAME = Text(MAX_NAME)


def _name(name: str) -> Field:
    return Field(name, str, _NAME)


def _reference(name: str, column: str, section: str) -> Field:
    return Field(name, str, _NAME, column=column, references=section)


_DESCRIPTION = Field("description", str, Text(MAX_NOTE, blank_ok=True), required=False, default="")
_ACTIVE = Field("active", bool, Flag(), required=False, default=True)

SECTIONS: tuple[Section, ...] = (
    Section("threat_families", "name", (_name("name"), _DESCRIPTION), "threat family"),
    Section(
        "threat_classes",
        "name",
        (_name("name"), _reference("family", "family_id", "threat_families"), _DESCRIPTION, _ACTIVE),
        "threat class",
    ),
    Section(
        "threat_items",
        "barcode",
        (_name("barcode"), _reference("class", "class_id", "threat_classes"), _DESCRIPTION),
        "threat item",
    ),
    Section("luggage_types", "name", (_name("name"), _DESCRIPTION), "luggage type"),
    Section(
        "bags",
        "barcode",
        (
            _name("barcode"),
            _reference("luggage_type", "luggage_type_id", "luggage_types"),
            Field("clutter", str, OneOf(CLUTTER_LEVELS), column="clutter_level"),
            _DESCRIPTION,
        ),
        "bag",
    ),
    Section(
        "scanner_models",
        "name",
        (
            _name("name"),
            _name("vendor"),
            Field("views", int, Whole(1, 16), required=False, default=1),
            Field("dual_energy", bool, Flag(), required=False, default=False),
            Field("width", int, Whole(1, 65536)),
            Field("height", int, Whole(1, 65536)),
            Field("bit_depth", int, OneOf(BIT_DEPTHS), required=False, default=16),
            Field("pixel_mm", float, Number(0, 100, lo_open=True), required=False, default=1.0),
            Field("gain", float, Number(0, 1000, lo_open=True), required=False, default=1.0),
            Field("noise", float, Number(0, 1), required=False, default=0.01),
        ),
        "scanner model",
    ),
    Section(
        "scanners",
        "name",
        (
            _name("name"),
            _reference("model", "model_id", "scanner_models"),
            _name("station"),
            Field("drop_folder", str, Text(500), required=False, default=None),
        ),
        "scanner",
    ),
    Section(
        "poses",
        "name",
        (
            _name("name"),
            Field("placement", str, OneOf(PLACEMENTS), required=False, default="flat"),
            Field("rotation_deg", float, Number(-360, 360), required=False, default=0.0),
            Field("occlusion", str, OneOf(OCCLUSIONS), required=False, default="none"),
            _DESCRIPTION,
        ),
        "pose",
    ),
)

SECTION_BY_NAME = {s.name: s for s in SECTIONS}

# Barcodes are scanned at the bench without saying what they are, so one
# barcode must name one object across items and bags.
BARCODE_SECTIONS = ("threat_items", "bags")
