"""Import the inventory file into the catalog (all or nothing) and export it back."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.catalog import Catalog, Change
from core.catalog.records import all_rows, insert_row, rows_in_txn, update_row
from core.catalog.tally import rebuild_tallies
from core.errors import InputFileError, InputProblem
from core.inventory.sections import BARCODE_SECTIONS, SECTION_BY_NAME, SECTIONS, Section
from core.inventory.yamlfile import Entry, ParsedInventory, dump_inventory, read_inventory_file

# Corrections to these move already-captured images to another quota cell.
_TALLY_COLUMNS = {
    "threat_items": {"class_id"},
    "bags": {"luggage_type_id", "clutter_level"},
    "scanners": {"model_id"},
}


@dataclass
class SectionReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    not_in_file: int = 0


@dataclass
class ImportReport:
    source: str
    sections: dict[str, SectionReport] = field(default_factory=dict)
    change: Change | None = None

    @property
    def changed(self) -> bool:
        return any(r.created or r.updated for r in self.sections.values())

    def as_dict(self) -> dict[str, Any]:
        return {name: vars(r) for name, r in self.sections.items()}


def _row_for(section: Section, values: dict[str, Any], ids: dict[str, dict[str, int]]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for spec in section.fields:
        if spec.name not in values:
            continue
        value = values[spec.name]
        if spec.references:
            value = ids[spec.references][value]
        elif spec.kind is bool:
            value = int(value)
        row[spec.db_column] = value
    if section.name == "scanners" and not row.get("drop_folder"):
        row["drop_folder"] = f"drop/{values['name']}"
    return row


def _validate(parsed: ParsedInventory, existing: dict[str, list[dict[str, Any]]]) -> list[InputProblem]:
    problems: list[InputProblem] = []
    source = parsed.source
    known_keys: dict[str, set[str]] = {}
    for section in SECTIONS:
        in_db = {str(r[section.key]) for r in existing[section.name]}
        seen: dict[str, int] = {}
        for entry in parsed.sections.get(section.name, []):
            key = entry.values.get(section.key)
            if key is None:
                continue
            if key in seen:
                problems.append(InputProblem(source, entry.line, f"duplicate {section.label} {section.key} '{key}' (first at line {seen[key]})"))
            else:
                seen[key] = entry.line
        known_keys[section.name] = in_db | set(seen)

    # One barcode names one physical object, across items and bags.
    barcode_owner: dict[str, tuple[str, int | None]] = {}
    for name in BARCODE_SECTIONS:
        for row in existing[name]:
            barcode_owner.setdefault(row["barcode"], (name, None))
    for name in BARCODE_SECTIONS:
        label = SECTION_BY_NAME[name].label
        for entry in parsed.sections.get(name, []):
            barcode = entry.values.get("barcode")
            if barcode is None:
                continue
            owner = barcode_owner.get(barcode)
            if owner is None:
                barcode_owner[barcode] = (name, entry.line)
            elif owner[0] != name:
                other = SECTION_BY_NAME[owner[0]].label
                where = f"line {owner[1]}" if owner[1] else "the catalog"
                problems.append(InputProblem(source, entry.line, f"barcode '{barcode}' of this {label} is already used by a {other} ({where})"))

    for section in SECTIONS:
        for entry in parsed.sections.get(section.name, []):
            for spec in section.fields:
                if spec.references and spec.name in entry.values:
                    target = entry.values[spec.name]
                    if target not in known_keys[spec.references]:
                        target_label = SECTION_BY_NAME[spec.references].label
                        problems.append(InputProblem(source, entry.line, f"unknown {target_label} '{target}' in {section.label} '{entry.values.get(section.key)}'"))
    return problems


def import_inventory(catalog: Catalog, parsed_or_path: ParsedInventory | str | Path, actor: str | None = None) -> ImportReport:
    """Apply an inventory file: create new entries, update changed ones.

    All or nothing: any problem raises :class:`InputFileError` listing every
    problem with its line, and the catalog is left as it was. Entries in the
    catalog but not in the file are kept (counted as ``not_in_file``).
    """
    catalog.require("inventory")
    parsed = parsed_or_path if isinstance(parsed_or_path, ParsedInventory) else read_inventory_file(parsed_or_path)
    if parsed.problems:
        raise InputFileError(parsed.problems)
    report = ImportReport(parsed.source)
    with catalog.write(actor) as txn:
        existing = {s.name: rows_in_txn(txn, s.name) for s in SECTIONS}
        problems = _validate(parsed, existing)
        if problems:
            raise InputFileError(problems)
        ids: dict[str, dict[str, int]] = {}
        needs_retally = False
        for section in SECTIONS:
            by_key = {str(r[section.key]): r for r in existing[section.name]}
            ids[section.name] = {key: r["id"] for key, r in by_key.items()}
            section_report = SectionReport()
            entries: list[Entry] = parsed.sections.get(section.name, [])
            file_keys = {e.values[section.key] for e in entries}
            section_report.not_in_file = len(set(by_key) - file_keys)
            for entry in entries:
                key = entry.values[section.key]
                row = _row_for(section, entry.values, ids)
                current = by_key.get(key)
                if current is None:
                    ids[section.name][key] = insert_row(txn, section.name, row)
                    txn.audit("create", section.name, key, None, row)
                    section_report.created += 1
                    continue
                changes = {c: v for c, v in row.items() if current.get(c) != v}
                if not changes:
                    section_report.unchanged += 1
                    continue
                update_row(txn, section.name, current["id"], changes)
                txn.audit("update", section.name, key, {c: current[c] for c in changes}, changes)
                section_report.updated += 1
                if set(changes) & _TALLY_COLUMNS.get(section.name, set()):
                    needs_retally = True
            report.sections[section.name] = section_report
        if needs_retally:
            rebuild_tallies(txn)
        txn.summary.append(f"inventory import from {parsed.source}")
    report.change = txn.change  # type: ignore[attr-defined]
    return report


def inventory_entries(catalog: Catalog) -> dict[str, list[dict[str, Any]]]:
    """The whole inventory as file entries (names instead of ids)."""
    rows = {s.name: all_rows(catalog, s.name) for s in SECTIONS}
    names = {s.name: {r["id"]: r[s.key] for r in rows[s.name]} for s in SECTIONS}
    out: dict[str, list[dict[str, Any]]] = {}
    for section in SECTIONS:
        entries = []
        for row in sorted(rows[section.name], key=lambda r: str(r[section.key])):
            entry: dict[str, Any] = {}
            for spec in section.fields:
                value = row[spec.db_column]
                if spec.references:
                    value = names[spec.references][value]
                elif spec.kind is bool:
                    value = bool(value)
                if spec.name == "description" and value == "":
                    continue
                entry[spec.name] = value
            entries.append(entry)
        out[section.name] = entries
    return out


def export_inventory(catalog: Catalog) -> str:
    return dump_inventory(inventory_entries(catalog))
