"""Read and write the inventory YAML file, keeping line numbers for messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.errors import InputProblem
from core.inventory.sections import SECTION_BY_NAME, SECTIONS, Field

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


def _decode(raw: bytes, source: str, problems: list[InputProblem]) -> str | None:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        problems.append(
            InputProblem(
                source,
                line,
                f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the file as UTF-8",
            )
        )
        return None


def _scalar(node: yaml.Node, spec: Field, loader: yaml.SafeLoader) -> tuple[Any, str | None]:
    """Convert one scalar node to the field's kind; return (value, problem)."""
    if not isinstance(node, yaml.ScalarNode):
        return None, "must be a single value, not a list or mapping"
    if spec.kind is str:
        # The text as written: barcodes like 00123 must keep their zeros.
        text = node.value.strip()
        if node.tag == "tag:yaml.org,2002:null" or (node.style is None and text in ("", "~", "null")):
            return None, None
        return text, None
    value = loader.construct_object(node)
    if value is None:
        return None, None
    if spec.kind is bool:
        if isinstance(value, bool):
            return value, None
        return None, f"must be true or false (got {node.value!r})"
    if spec.kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            return None, f"must be a whole number (got {node.value!r})"
        return value, None
    if spec.kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None, f"must be a number (got {node.value!r})"
        return float(value), None
    raise TypeError(spec.kind)


def parse_inventory(raw: bytes, source: str) -> ParsedInventory:
    parsed = ParsedInventory(source)
    problems = parsed.problems
    text = _decode(raw, source, problems)
    if text is None:
        return parsed
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problems.append(InputProblem(source, line, f"not valid YAML: {getattr(exc, 'problem', exc)}"))
        return parsed
    if root is None:
        problems.append(InputProblem(source, None, "the file is empty"))
        return parsed
    if not isinstance(root, yaml.MappingNode):
        problems.append(InputProblem(source, root.start_mark.line + 1, "expected sections such as 'threat_classes:' at the top level"))
        return parsed
    loader = yaml.SafeLoader("")
    for key_node, value_node in root.value:
        section_name = key_node.value
        line = key_node.start_mark.line + 1
        section = SECTION_BY_NAME.get(section_name)
        if section is None:
            known = ", ".join(s.name for s in SECTIONS)
            problems.append(InputProblem(source, line, f"unknown section '{section_name}' (known: {known})"))
            continue
        if section_name in parsed.sections:
            problems.append(InputProblem(source, line, f"section '{section_name}' appears twice"))
            continue
        entries: list[Entry] = []
        parsed.sections[section_name] = entries
        if isinstance(value_node, yaml.ScalarNode) and value_node.value in ("", "~", "null"):
            continue
        if not isinstance(value_node, yaml.SequenceNode):
            problems.append(InputProblem(source, line, f"section '{section_name}' must be a list of entries"))
            continue
        for item in value_node.value:
            item_line = item.start_mark.line + 1
            if not isinstance(item, yaml.MappingNode):
                problems.append(InputProblem(source, item_line, f"each {section.label} must be a mapping of fields"))
                continue
            values: dict[str, Any] = {}
            seen_fields: set[str] = set()
            failed: set[str] = set()
            for field_key, field_value in item.value:
                field_line = field_key.start_mark.line + 1
                name = field_key.value
                spec = next((f for f in section.fields if f.name == name), None)
                if spec is None:
                    allowed = ", ".join(f.name for f in section.fields)
                    problems.append(InputProblem(source, field_line, f"unknown field '{name}' for a {section.label} (allowed: {allowed})"))
                    continue
                if name in seen_fields:
                    problems.append(InputProblem(source, field_line, f"field '{name}' given twice"))
                    continue
                seen_fields.add(name)
                value, problem = _scalar(field_value, spec, loader)
                if problem is None and value is not None:
                    if spec.choices is not None and value not in spec.choices:
                        problem = f"must be one of {', '.join(map(str, spec.choices))} (got {value!r})"
                    elif spec.check is not None:
                        problem = spec.check(value)
                if problem:
                    problems.append(InputProblem(source, field_line, f"{section.label} field '{name}' {problem}"))
                    failed.add(name)
                    continue
                if value is not None:
                    values[name] = value
            for spec in section.fields:
                if spec.name not in values and spec.name not in failed:
                    if spec.required and spec.name not in seen_fields:
                        problems.append(InputProblem(source, item_line, f"{section.label} is missing required field '{spec.name}'"))
                    elif spec.required:
                        problems.append(InputProblem(source, item_line, f"{section.label} field '{spec.name}' must not be empty"))
                    elif spec.default is not None:
                        values[spec.name] = spec.default
            entries.append(Entry(item_line, values))
    return parsed


def read_inventory_file(path: str | Path) -> ParsedInventory:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        parsed = ParsedInventory(str(path))
        parsed.problems.append(InputProblem(str(path), None, f"cannot read the file: {exc.strerror or exc}"))
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
