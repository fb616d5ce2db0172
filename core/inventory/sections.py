"""What each section of the inventory file holds, and how it maps to the catalog.

The inventory file is one YAML document with a list per section; the lab keeps
it in version control. Entries are matched to catalog rows by their key
(``name`` or ``barcode``), so re-importing the same file changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

CLUTTER_LEVELS = ("low", "medium", "high")
PLACEMENTS = ("flat", "edge_on", "angled", "upright")
OCCLUSIONS = ("none", "under_metal", "under_organic", "among_clutter")
BIT_DEPTHS = (8, 12, 14, 16)


@dataclass(frozen=True)
class Field:
    name: str  # as written in the file
    kind: type  # str, int, float or bool
    column: str | None = None  # catalog column, if not the same name
    required: bool = True
    default: Any = None
    references: str | None = None  # section whose key this names
    choices: tuple | None = None
    check: Callable[[Any], str | None] | None = None  # returns a problem or None

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


def _positive(value: Any) -> str | None:
    return None if value > 0 else f"must be greater than 0 (got {value})"


def _non_negative(value: Any) -> str | None:
    return None if value >= 0 else f"must not be negative (got {value})"


def _not_blank(value: Any) -> str | None:
    return None if str(value).strip() else "must not be empty"


_DESCRIPTION = Field("description", str, required=False, default="")

SECTIONS: tuple[Section, ...] = (
    Section("threat_families", "name", (Field("name", str, check=_not_blank), _DESCRIPTION), "threat family"),
    Section(
        "threat_classes",
        "name",
        (
            Field("name", str, check=_not_blank),
            Field("family", str, column="family_id", references="threat_families"),
            _DESCRIPTION,
            Field("active", bool, required=False, default=True),
        ),
        "threat class",
    ),
    Section(
        "threat_items",
        "barcode",
        (
            Field("barcode", str, check=_not_blank),
            Field("class", str, column="class_id", references="threat_classes"),
            _DESCRIPTION,
        ),
        "threat item",
    ),
    Section("luggage_types", "name", (Field("name", str, check=_not_blank), _DESCRIPTION), "luggage type"),
    Section(
        "bags",
        "barcode",
        (
            Field("barcode", str, check=_not_blank),
            Field("luggage_type", str, column="luggage_type_id", references="luggage_types"),
            Field("clutter", str, column="clutter_level", choices=CLUTTER_LEVELS),
            _DESCRIPTION,
        ),
        "bag",
    ),
    Section(
        "scanner_models",
        "name",
        (
            Field("name", str, check=_not_blank),
            Field("vendor", str, check=_not_blank),
            Field("views", int, required=False, default=1, check=_positive),
            Field("dual_energy", bool, required=False, default=False),
            Field("width", int, check=_positive),
            Field("height", int, check=_positive),
            Field("bit_depth", int, required=False, default=16, choices=BIT_DEPTHS),
            Field("pixel_mm", float, required=False, default=1.0, check=_positive),
            Field("gain", float, required=False, default=1.0, check=_positive),
            Field("noise", float, required=False, default=0.01, check=_non_negative),
        ),
        "scanner model",
    ),
    Section(
        "scanners",
        "name",
        (
            Field("name", str, check=_not_blank),
            Field("model", str, column="model_id", references="scanner_models"),
            Field("station", str, check=_not_blank),
            Field("drop_folder", str, required=False, default=None),
        ),
        "scanner",
    ),
    Section(
        "poses",
        "name",
        (
            Field("name", str, check=_not_blank),
            Field("placement", str, required=False, default="flat", choices=PLACEMENTS),
            Field("rotation_deg", float, required=False, default=0.0),
            Field("occlusion", str, required=False, default="none", choices=OCCLUSIONS),
            _DESCRIPTION,
        ),
        "pose",
    ),
)

SECTION_BY_NAME = {s.name: s for s in SECTIONS}

# Barcodes are scanned at the bench without saying what they are, so one
# barcode must name one object across items and bags.
BARCODE_SECTIONS = ("threat_items", "bags")
