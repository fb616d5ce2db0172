"""One inventory entry at a time, as the window's entry editor makes them.

An edit goes through exactly what an inventory file import does: the entry is
written as a one-entry inventory document, parsed and range-checked by
:func:`core.inventory.yamlfile.parse_inventory` and applied by
:func:`core.inventory.apply.import_inventory`. So a form can accept nothing
that a file would refuse, and every change lands in the audit log with its
before/after, all or nothing.

Threat classes retire by ``active: false`` (kept with their history, left out
of new quota plans). Items, bags and scanners have no retired state in the
catalog yet, so they are added and edited here but not retired.
"""

from __future__ import annotations

from typing import Any

import yaml

from core.catalog import Catalog
from core.errors import InputFileError, UnknownNameError
from core.inventory.apply import ImportReport, import_inventory, inventory_entries
from core.inventory.sections import SECTION_BY_NAME, Section
from core.inventory.yamlfile import parse_inventory

FORM_SOURCE = "entry"


def section_named(name: str) -> Section:
    section = SECTION_BY_NAME.get(name)
    if section is None:
        raise UnknownNameError(f"no inventory section '{name}' (known: {', '.join(SECTION_BY_NAME)})")
    return section


def save_entry(catalog: Catalog, section_name: str, values: dict[str, Any], actor: str | None = None) -> ImportReport:
    """Create the entry, or update the one with the same key (name or barcode).

    Checked as a line of an inventory file would be; :class:`InputFileError`
    lists every problem (its ``line`` means nothing outside this call: show the
    message) and the catalog is left unchanged. Runs one write transaction on
    the calling thread.
    """
    section = section_named(section_name)
    known = {f.name for f in section.fields}
    document = {section.name: [{k: v for k, v in values.items() if k in known}]}
    raw = yaml.safe_dump(document, allow_unicode=True, sort_keys=False).encode("utf-8")
    parsed = parse_inventory(raw, FORM_SOURCE)
    if parsed.problems:
        raise InputFileError(parsed.problems)
    return import_inventory(catalog, parsed, actor=actor)


def entry(catalog: Catalog, section_name: str, key: str) -> dict[str, Any]:
    """The entry ``key`` of a section as file values (names, not ids)."""
    section = section_named(section_name)
    for values in inventory_entries(catalog)[section.name]:
        if str(values[section.key]) == key:
            return values
    raise UnknownNameError(f"no {section.label} '{key}' in the inventory")


def set_class_active(catalog: Catalog, name: str, active: bool, actor: str | None = None) -> ImportReport:
    """Retire a threat class (``active=False``) or bring it back. A retired class
    keeps its items, images and history; new quota plans leave it out."""
    catalog.require("inventory")
    values = entry(catalog, "threat_classes", name)
    values["active"] = active
    return save_entry(catalog, "threat_classes", values, actor=actor)
