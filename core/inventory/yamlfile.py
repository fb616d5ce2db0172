"""Read and write the inventory YAML file, keeping line numbers for messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.errors import InputProblem
from core.inputs import Located, Problems, shown, is_missing, parse_yaml, read_bytes
from core.inventory.sections import SECTION_BY_NAME, SECTIONS, Section

HEADER = """\
# XLab lab inventory. Keep this file in version control and import it with
#   xlab inventory import inventory.yaml
# Entries are matched by name (barcode for items and bags); re-importing the
# same file changes nothing. Sections: {sections}.
"""


@dataclass
class Entry:
    line: int
    values: dict[str, Any]


@dataclass
class ParsedInventory:
    source: str
    sections: dict[str, list[Entry]] = field(default_factory=dict)
    problems: list[InputProblem] = field(default_factory=list)


def parse_inventory(raw: bytes, source: str) -> ParsedInventory:
    """The file's entries, checked field by field; ``problems`` lists what is wrong."""
    parsed = ParsedInventory(source)
    problems = Problems(source)
    parsed.problems = problems.items
    root = parse_yaml(raw, problems)
    if root is None:
        return parsed
    if not root.is_mapping:
        problems.add(root.line, "expected sections such as 'threat_classes:' at the top level")
        return parsed
    for section_name, section_node in root.value.items():
        line = section_node.line
        section = SECTION_BY_NAME.get(section_name)
        if section is None:
            known = ", ".join(s.name for s in SECTIONS)
            problems.add(line, f"unknown section '{shown(section_name)}' (known: {known})")
            continue
        entries: list[Entry] = []
        parsed.sections[section_name] = entries
        if is_missing(section_node):
            continue
        if not section_node.is_list:
            problems.add(line, f"section '{section_name}' must be a list of entries")
            continue
        for item in section_node.value:
            entry = _entry(section, item, problems)
            if entry is not None:
                entries.append(entry)
    return parsed


def _entry(section: Section, item: Located, problems: Problems) -> Entry | None:
    if not item.is_mapping:
        problems.add(item.line, f"each {section.label} must be a mapping of fields")
        return None
    values: dict[str, Any] = {}
    failed: set[str] = set()
    for name, node in item.value.items():
        spec = next((f for f in section.fields if f.name == name), None)
        if spec is None:
            allowed = ", ".join(f.name for f in section.fields)
            problems.add(node.line, f"unknown field '{shown(name)}' for a {section.label} (allowed: {allowed})")
            continue
        if is_missing(node):
            continue
        value, problem = spec.rule.check(node)
        if problem:
            problems.add(node.line, f"{section.label} field '{name}' {problem}")
            failed.add(name)
            continue
        values[name] = value
    for spec in section.fields:
        if spec.name in values or spec.name in failed:
            continue
        if spec.required and spec.name not in item.value:
            problems.add(item.line, f"{section.label} is missing required field '{spec.name}'")
        elif spec.required:
            problems.add(item.value[spec.name].line, f"{section.label} field '{spec.name}' must not be empty")
        elif spec.default is not None:
            values[spec.name] = spec.default
    return Entry(item.line, values)


def read_inventory_file(path: str | Path) -> ParsedInventory:
    problems = Problems(str(path))
    raw = read_bytes(path, problems)
    if raw is None:
        parsed = ParsedInventory(str(path))
        parsed.problems = problems.items
        return parsed
    return parse_inventory(raw, str(path))


def dump_inventory(sections: dict[str, list[dict[str, Any]]]) -> str:
    """YAML text for the given entries, in section order, one entry per block."""
    body = yaml.safe_dump(
        {name: sections.get(name, []) for name in (s.name for s in SECTIONS)},
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )
    return HEADER.format(sections=", ".join(s.name for s in SECTIONS)) + body
