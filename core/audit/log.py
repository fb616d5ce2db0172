"""Reading the audit log: who changed what, when, from what to what.

Lists are filtered by user, object (entity and key), action and date range,
newest first, a page at a time (``before_id`` / ``after_id`` move through the
pages). :func:`history` gathers one object's entries, including those of the
objects it is made of (an image's boxes) and the names it had before (a
class's renames). :func:`export` writes a filtered list to CSV or Excel as a
generator of :class:`~core.progress.Progress`.

Every function reads through the calling thread's read connection: any thread,
no transaction held between pages.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from core.catalog import Catalog
from core.catalog import audit_store as store
from core.errors import AuditError
from core.progress import Progress

PAGE = 200
EXPORT_FORMATS = (".csv", ".xlsx")
EXCEL_MAX_ROWS = 1_048_575  # a sheet's rows, less the header
EXPORT_COLUMNS = ("id", "at", "actor", "action", "entity", "entity_key", "before", "after", "hash")

# What people call the objects, to the entity names the code writes.
ENTITY_ALIASES = {
    "image": "images",
    "annotation": "annotations",
    "box": "annotations",
    "class": "threat_classes",
    "threat_class": "threat_classes",
    "item": "threat_items",
    "threat_item": "threat_items",
    "plan": "quota_plan",
    "quota_plans": "quota_plan",
    "cell": "quota_cell",
    "quota_cells": "quota_cell",
    "session": "capture_session",
    "capture_sessions": "capture_session",
    "runs": "run",
    "dataset": "dataset_version",
    "setting": "lab_settings",
}


def entity_name(text: str) -> str:
    """The entity name the log uses for ``text`` (an alias such as ``class`` or the name itself)."""
    return ENTITY_ALIASES.get(text.strip(), text.strip())


def parse_moment(text: str, *, end: bool, option: str) -> str:
    """A date (``2025-03-01``) or date and time (``2025-03-01T14:30``), local time
    unless it names its zone, as the stored UTC form. ``end``: a bare date means
    the end of that day (the range includes it)."""
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            moment = datetime(day.year, day.month, day.day) + (timedelta(days=1) if end else timedelta())
        else:
            moment = datetime.fromisoformat(value)
    except ValueError:
        raise AuditError(f"{option} wants a date (2025-03-01) or a date and time (2025-03-01T14:30), "
                         f"not '{text}'") from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # the person typing it means their own clock
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class AuditFilter:
    """Which entries to list; each None (or empty) means any.

    ``since``/``until``: dates or date-times as typed (local time), both
    ends included (a bare ``until`` date includes that whole day).
    """

    user: str | None = None
    entity: str | None = None
    key: str | None = None
    action: str | None = None
    since: str | None = None
    until: str | None = None

    def conditions(self) -> store.Conditions:
        since = parse_moment(self.since, end=False, option="--since") if self.since else None
        until = parse_moment(self.until, end=True, option="--until") if self.until else None
        if since and until and since >= until:
            raise AuditError(f"--since {self.since} is not before --until {self.until}: no entry can match")
        return store.Conditions(actor=self.user or None, entity=entity_name(self.entity) if self.entity else None,
                                entity_key=self.key if self.key not in (None, "") else None,
                                action=self.action or None, since=since, until=until)


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    """A stored entry with its before/after as values, and one line saying what changed."""
    before = _load(row.pop("before_json"))
    after = _load(row.pop("after_json"))
    return {**row, "before": before, "after": after, "change": describe_change(before, after)}


def _load(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text  # not JSON (written into the file by hand): shown as it is


def _short(value: Any, room: int = 40) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= room else text[:room - 1] + "…"


def describe_change(before: Any, after: Any, room: int = 90) -> str:
    """One line of at most ``room`` characters: the fields that changed
    (``qa_state: unreviewed → accepted``), or what was created or removed."""
    if isinstance(before, dict) and isinstance(after, dict):
        keys = [k for k in {**before, **after} if before.get(k) != after.get(k)]
        text = "; ".join(f"{k}: {_short(before.get(k), 20)} → {_short(after.get(k), 20)}" for k in keys) or "no change"
    elif before is None and after is None:
        text = ""
    elif before is None:
        text = ("; ".join(f"{k}={_short(v, 20)}" for k, v in after.items()) if isinstance(after, dict)
                else _short(after, room))
    elif after is None:
        text = "removed: " + _short(before, room)
    else:
        text = f"{_short(before)} → {_short(after)}"
    return _short(text, room)


def entries(catalog: Catalog, flt: AuditFilter = AuditFilter(), limit: int = PAGE, *,
            before_id: int | None = None, after_id: int | None = None) -> list[dict[str, Any]]:
    """A page of entries, newest first: older than ``before_id`` (the next page),
    or newer than ``after_id`` (the previous one), or the newest."""
    if limit < 1:
        raise AuditError("--limit must be at least 1")
    return [_decoded(r) for r in store.page(catalog, flt.conditions(), limit, before_id=before_id, after_id=after_id)]


def entry(catalog: Catalog, entry_id: int) -> dict[str, Any]:
    """One entry, with its before/after decoded."""
    row = store.entry(catalog, entry_id)
    if row is None:
        raise AuditError(f"no audit entry {entry_id}; 'xlab audit list' shows their ids")
    row.pop("prev_hash")
    return _decoded(row)


def count(catalog: Catalog, flt: AuditFilter = AuditFilter()) -> int:
    """How many entries match (reads every matching entry's index row: not for each page)."""
    return store.count(catalog, flt.conditions())


def choices(catalog: Catalog) -> dict[str, list[str]]:
    """The users, entities and actions the log holds (for the viewer's filter boxes)."""
    return {"user": store.distinct(catalog, "actor"), "entity": store.distinct(catalog, "entity"),
            "action": store.distinct(catalog, "action")}


def history(catalog: Catalog, entity: str, key: str | int) -> list[dict[str, Any]]:
    """Every entry about one object, oldest first.

    ``images``: the image's own entries and those of its boxes and QA flags.
    ``threat_classes``: under each name the class had (renames followed back),
    with the items moved, KPI results and plans rewritten, and classes split
    off it. Objects keyed by names (plans, cells, settings) also match the keys
    that begin or end with the name as a word: ``quota_plan demo-plan`` gives
    every version, ``quota_cell "demo-plan v2"`` every cell of v2.
    """
    name = entity_name(entity)
    text = str(key).strip()
    if not text:
        raise AuditError("name the object: its id (an image, a box) or its name (a class, a plan)")
    if name == "images":
        if not text.isdigit():
            raise AuditError(f"an image is named by its id (a number), not '{text}'")
        rows = store.image_entries(catalog, int(text))
    elif name == "threat_classes":
        rows = store.class_entries(catalog, store.class_names(catalog, text))
    else:
        rows = store.object_entries(catalog, name, [text], word_match=not text.isdigit())
    return [_decoded(r) for r in rows]


@dataclass(frozen=True)
class ExportReport:
    path: Path
    entries: int


def export(catalog: Catalog, flt: AuditFilter, path: str | Path) -> Iterator[Progress]:
    """Write the matching entries, oldest first, to ``path`` (.csv or .xlsx); returns an :class:`ExportReport`.

    The file appears whole or not at all: written under a temporary name and
    renamed at the end; closing the generator (Cancel, Ctrl-C) removes it.
    Reads a batch at a time, so memory stays flat for any size of log.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in EXPORT_FORMATS:
        raise AuditError(f"export to .csv or .xlsx, not '{path.name}'")
    conditions = flt.conditions()
    total = store.count(catalog, conditions)
    if suffix == ".xlsx" and total > EXCEL_MAX_ROWS:
        raise AuditError(f"{total:,} entries do not fit in one Excel sheet ({EXCEL_MAX_ROWS:,} rows): "
                         "export to .csv, or narrow the filters")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.part{suffix}")
    yield Progress(0, total, f"exporting {total:,} entries to {path.name}")
    written = 0
    try:
        writer, finish = _csv_writer(tmp) if suffix == ".csv" else _xlsx_writer(tmp)
        try:
            for batch in store.ascending(catalog, conditions):
                for row in batch:
                    writer([row["id"], row["at"], row["actor"], row["action"], row["entity"], row["entity_key"],
                            row["before_json"] or "", row["after_json"] or "", row["hash"] or ""])
                written += len(batch)
                yield Progress(written, total, f"{written:,} of {total:,} entries")
        finally:
            finish()
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return ExportReport(path, written)


def _csv_writer(tmp: Path):
    handle = tmp.open("w", newline="", encoding="utf-8")
    out = csv.writer(handle)
    out.writerow(EXPORT_COLUMNS)
    return out.writerow, handle.close


def _xlsx_writer(tmp: Path):
    from openpyxl import Workbook

    book = Workbook(write_only=True)  # rows go to disk as they come
    sheet = book.create_sheet("audit")
    sheet.append(list(EXPORT_COLUMNS))
    return sheet.append, lambda: book.save(tmp)
