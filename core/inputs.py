"""Reading the files a user hands to XLab, and reporting their problems by line.

Every import (the inventory YAML, the quota plan spec YAML, the KPI results CSV,
and any later file such as a class map) reads its file here, so every one of them
refuses hostile input the same way and before any work starts:

* at most :data:`MAX_FILE_BYTES`; UTF-8 (a BOM is accepted) with no control
  characters other than tab and line ends;
* YAML: one document, nested at most :data:`MAX_DEPTH` levels (a deeper file
  would exhaust the parser's recursion), no anchors or aliases (an "alias
  bomb" expands a few lines into billions of values), no duplicate keys, no
  tags beyond the plain types; every value keeps the line it was written on;
* CSV: a header naming known columns once each, every row with as many fields.

Values are then checked field by field with the rules below (:class:`Whole`,
:class:`Number`, :class:`Text`, :class:`OneOf`, :class:`Flag`, :class:`Date`);
each rule states its own range, which is what the messages and the file formats'
documentation quote. A file with problems is refused whole: the importer collects
every problem in a :class:`Problems` and raises :class:`InputFileError` before it
touches the catalog.
"""

from __future__ import annotations

import csv
import io
import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from core.errors import InputFileError, InputProblem

MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 16
MAX_NAME = 100  # names, barcodes, stations, run labels
MAX_NOTE = 2000  # descriptions and notes
MAX_NUMBER_CHARS = 40  # longer than any number a lab writes; int() of a huge one is slow

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")


class Problems:
    """The problems found in one file, each with its line."""

    def __init__(self, source: str):
        self.source = source
        self.items: list[InputProblem] = []

    def add(self, line: int | None, message: str) -> None:
        self.items.append(InputProblem(self.source, line, message))

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        if self.items:
            raise InputFileError(self.items)


# -- whole files ------------------------------------------------------------------


def read_bytes(path: str | Path, problems: Problems) -> bytes | None:
    """The file's bytes, or None (with a problem) if unreadable or too large."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        problems.add(None, f"cannot read the file: {exc.strerror or exc}")
        return None
    if len(raw) > MAX_FILE_BYTES:
        problems.add(None, f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; is it the right file?")
        return None
    return raw


def decode_text(raw: bytes, problems: Problems) -> str | None:
    """UTF-8 text (BOM removed) without control characters, or None with a problem."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        problems.add(line, f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the file as UTF-8")
        return None
    bad = _CONTROL.search(text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        problems.add(line, f"control character U+{ord(bad.group()):04X} in the file; is it a text file?")
        return None
    if not text.strip():
        problems.add(None, "the file is empty")
        return None
    return text


# -- YAML -------------------------------------------------------------------------


@dataclass
class Located:
    """One value of a user file and the line it is on.

    ``value``: a plain Python scalar, ``list[Located]`` or ``dict[str, Located]``
    (a mapping's values carry their key's line). ``text``: a scalar as written
    (names keep leading zeros). ``textual``: the value came from CSV, so numbers
    are still text. ``problem``: the scalar could not be read at all.
    """

    line: int
    value: Any
    text: str | None = None
    textual: bool = False
    problem: str | None = None

    @property
    def is_mapping(self) -> bool:
        return isinstance(self.value, dict)

    @property
    def is_list(self) -> bool:
        return isinstance(self.value, list)

    @property
    def is_scalar(self) -> bool:
        return self.text is not None


class _Refused(Exception):
    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line


_PLAIN_TAGS = {
    "tag:yaml.org,2002:null", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float", "tag:yaml.org,2002:str", "tag:yaml.org,2002:timestamp",
    "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:merge",
}


def _scalar(node, constructor) -> Located:
    line = node.start_mark.line + 1
    text = node.value
    if node.tag not in _PLAIN_TAGS:
        return Located(line, None, text, problem=f"YAML tag {node.tag} is not accepted; write a plain value")
    if node.tag == "tag:yaml.org,2002:null":
        return Located(line, None, text)
    if node.tag in ("tag:yaml.org,2002:str", "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:merge"):
        return Located(line, text, text)
    if node.tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float") and len(text) > MAX_NUMBER_CHARS:
        return Located(line, None, text, problem=f"is a number of {len(text)} characters, far out of range")
    try:
        value = constructor.construct_object(node, deep=True)
    except (ValueError, OverflowError, ArithmeticError) as exc:
        return Located(line, None, text, problem=f"cannot be read as a number ({exc})")
    return Located(line, value, text)


class _Frame:
    """A mapping or list being filled while its events arrive."""

    def __init__(self, node: Located):
        self.node = node
        self.key: tuple[str, int] | None = None  # a mapping's key waiting for its value
        self.bad_key = False  # the pending key was not a plain name: drop its value
        self.first: dict[str, int] = {}


def _compose(events, problems: Problems) -> Located | None:
    """Build :class:`Located` values from parser events, without recursion: the
    depth check comes before a level is entered, and no alias is ever followed."""
    import yaml

    resolver = yaml.resolver.Resolver()
    constructor = yaml.SafeLoader("")
    stack: list[_Frame] = []
    root: Located | None = None
    documents = 0

    def attach(node: Located, is_scalar: bool) -> None:
        nonlocal root
        if not stack:
            root = node
            return
        frame = stack[-1]
        if isinstance(frame.node.value, list):
            frame.node.value.append(node)
        elif frame.key is None and not frame.bad_key:
            if not is_scalar or node.text is None:
                problems.add(node.line, "a key must be a plain name, not a list or mapping")
                frame.bad_key = True
            else:
                frame.key = (node.text, node.line)
        elif frame.bad_key:
            frame.bad_key = False
        else:
            key, key_line = frame.key
            frame.key = None
            if key in frame.first:
                problems.add(key_line, f"'{shown(key)}' appears twice (first at line {frame.first[key]})")
                return
            frame.first[key] = key_line
            node.line = key_line
            frame.node.value[key] = node

    for event in events:
        if isinstance(event, (yaml.StreamStartEvent, yaml.StreamEndEvent, yaml.DocumentEndEvent)):
            continue
        line = event.start_mark.line + 1
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise _Refused(line, "more than one YAML document (---) in the file")
            continue
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(line, "YAML aliases (*name) are not accepted; write the values out")
        if getattr(event, "anchor", None):
            raise _Refused(line, "YAML anchors (&name) are not accepted; write the values out")
        if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            attach(stack.pop().node, False)
        elif isinstance(event, yaml.ScalarEvent):
            tag = event.tag
            if tag in (None, "!"):
                tag = resolver.resolve(yaml.ScalarNode, event.value, event.implicit)
            node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
            attach(_scalar(node, constructor), True)
        else:  # a mapping or list starts
            if len(stack) >= MAX_DEPTH:
                raise _Refused(line, f"values nested more than {MAX_DEPTH} levels deep")
            if event.tag not in (None, "!") and event.tag not in _PLAIN_TAGS:
                problems.add(line, f"YAML tag {event.tag} is not accepted")
            stack.append(_Frame(Located(line, {} if isinstance(event, yaml.MappingStartEvent) else [])))
    return root


def parse_yaml(raw: bytes, problems: Problems) -> Located | None:
    """The one YAML document in ``raw`` as :class:`Located` values, or None
    when the file cannot be read at all (the reason is in ``problems``)."""
    import yaml

    text = decode_text(raw, problems)
    if text is None:
        return None
    # libyaml's parser when present (fast); either way only its events are used.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        root = _compose(yaml.parse(text, Loader=loader), problems)
    except _Refused as exc:
        problems.add(exc.line, str(exc))
        return None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problems.add(mark.line + 1 if mark else None, f"not valid YAML: {getattr(exc, 'problem', None) or exc}")
        return None
    if root is None:
        problems.add(None, "the file is empty")
        return None
    return root


# -- CSV --------------------------------------------------------------------------


def read_csv(path: str | Path, problems: Problems, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> list[dict[str, Located]]:
    """The rows of a CSV file with a header line, each field as textual :class:`Located`.

    Blank lines are skipped; a row with the wrong number of fields, an unknown,
    missing or repeated column is a problem.
    """
    raw = read_bytes(path, problems)
    text = None if raw is None else decode_text(raw, problems)
    if text is None:
        return []
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[dict[str, Located]] = []
    header: list[str] | None = None
    line = 1
    try:
        for record in reader:
            start, line = line, reader.line_num + 1
            if not record or not any(cell.strip() for cell in record):
                continue
            if header is None:
                header = [cell.strip() for cell in record]
                known = required + optional
                for name in sorted(set(header) - set(known)):
                    problems.add(start, f"unknown column '{shown(name)}' (known: {', '.join(known)})")
                for name in sorted({h for h in header if header.count(h) > 1}):
                    problems.add(start, f"column '{shown(name)}' appears twice")
                missing = [c for c in required if c not in header]
                if missing:
                    problems.add(start, f"missing column(s): {', '.join(missing)}")
                if problems:
                    return []
                continue
            if len(record) != len(header):
                problems.add(start, f"{len(record)} fields, the header has {len(header)}")
                continue
            rows.append({name: Located(start, cell.strip(), cell.strip(), textual=True) for name, cell in zip(header, record)})
    except csv.Error as exc:
        problems.add(line, f"not valid CSV: {exc}")
        return []
    if header is None:
        problems.add(None, "the file is empty")
    elif not rows and not problems:
        problems.add(None, "the file has a header but no rows")
    return rows


# -- field rules ------------------------------------------------------------------


def shown(text: str, limit: int = 40) -> str:
    """A value as quoted in a message: short, and without control characters."""
    text = _CONTROL.sub("?", text)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def _got(node: Located) -> str:
    return f"got '{shown(node.text)}'" if node.text is not None else "got a list or mapping"


class Rule:
    """Checks one value; ``check`` returns (value, None) or (None, problem)."""

    def describe(self) -> str:
        raise NotImplementedError

    def check(self, node: Located) -> tuple[Any, str | None]:
        if node.problem:
            return None, node.problem
        if not node.is_scalar:
            return None, f"must be a single value ({self.describe()}), not a list or mapping"
        return self._check(node)

    def _check(self, node: Located) -> tuple[Any, str | None]:
        raise NotImplementedError


_ASCII_INT = re.compile(r"[+-]?[0-9]{1,18}")
_ASCII_FLOAT = re.compile(r"[+-]?([0-9]{1,18}(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,3})?")


@dataclass(frozen=True)
class Whole(Rule):
    lo: int
    hi: int

    def describe(self) -> str:
        return f"a whole number from {self.lo:,} to {self.hi:,}"

    def _check(self, node: Located) -> tuple[Any, str | None]:
        value = node.value
        if node.textual:
            value = int(value) if _ASCII_INT.fullmatch(value) else None
        if isinstance(value, bool) or not isinstance(value, int):
            return None, f"must be {self.describe()} ({_got(node)})"
        if not self.lo <= value <= self.hi:
            return None, f"must be {self.describe()} (got {shown(str(value))})"
        return value, None


@dataclass(frozen=True)
class Number(Rule):
    lo: float
    hi: float
    lo_open: bool = False
    hi_open: bool = False

    def describe(self) -> str:
        left = "above" if self.lo_open else "from"
        right = "below" if self.hi_open else "to"
        return f"a number {left} {self.lo:g} {right} {self.hi:g}"

    def _check(self, node: Located) -> tuple[Any, str | None]:
        value = node.value
        if node.textual:
            value = float(value) if _ASCII_FLOAT.fullmatch(value) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None, f"must be {self.describe()} ({_got(node)})"
        value = float(value)
        if not math.isfinite(value):
            return None, f"must be {self.describe()} (got {value})"
        low_ok = value > self.lo if self.lo_open else value >= self.lo
        high_ok = value < self.hi if self.hi_open else value <= self.hi
        if not (low_ok and high_ok):
            return None, f"must be {self.describe()} (got {value:g})"
        return value, None


@dataclass(frozen=True)
class Text(Rule):
    """Free text as written (leading zeros kept), stripped, of bounded length."""

    max_len: int = MAX_NAME
    blank_ok: bool = False

    def describe(self) -> str:
        return f"text of at most {self.max_len} characters"

    def _check(self, node: Located) -> tuple[Any, str | None]:
        text = node.text.strip()
        if not text and not self.blank_ok:
            return None, "must not be empty"
        if len(text) > self.max_len:
            return None, f"is {len(text):,} characters long; at most {self.max_len} are allowed"
        bad = _CONTROL.search(text) or next((c for c in text if unicodedata.category(c) in ("Cc", "Cs")), None)
        if bad:
            return None, "must not contain control characters"
        return text, None


@dataclass(frozen=True)
class OneOf(Rule):
    choices: tuple

    def describe(self) -> str:
        return f"one of {', '.join(map(str, self.choices))}"

    def _check(self, node: Located) -> tuple[Any, str | None]:
        value = node.value
        if node.textual:
            matches = [c for c in self.choices if str(c) == value]
        else:  # YAML: '12' is text, not the number 12
            matches = [c for c in self.choices if type(c) is type(value) and c == (value.strip() if isinstance(value, str) else value)]
        if not matches:
            return None, f"must be {self.describe()} ({_got(node)})"
        return matches[0], None


@dataclass(frozen=True)
class Flag(Rule):
    def describe(self) -> str:
        return "true or false"

    def _check(self, node: Located) -> tuple[Any, str | None]:
        value = node.value
        if node.textual:
            value = {"true": True, "false": False}.get(value.lower())
        if not isinstance(value, bool):
            return None, f"must be true or false ({_got(node)})"
        return value, None


@dataclass(frozen=True)
class Date(Rule):
    """An ISO-8601 date or date-time; returned in ISO form."""

    first_year: int = 2000
    last_year: int = 2100

    def describe(self) -> str:
        return f"an ISO-8601 date like 2026-11-20 (years {self.first_year}-{self.last_year})"

    def _check(self, node: Located) -> tuple[Any, str | None]:
        text = node.text.strip()
        when: date | None = None
        if len(text) <= 40:
            for parse in (date.fromisoformat, datetime.fromisoformat):
                try:
                    when = parse(text)
                    break
                except ValueError:
                    continue
        if when is None:
            return None, f"must be {self.describe()} ({_got(node)})"
        if not self.first_year <= when.year <= self.last_year:
            return None, f"must be {self.describe()} (got {text})"
        return when.isoformat(), None


def is_missing(node: Located | None) -> bool:
    """No value given: the key is absent, or written with nothing (or ``~``) after it."""
    if node is None:
        return True
    if node.problem:
        return False
    if node.textual:
        return node.text == ""
    return node.is_scalar and node.value is None
