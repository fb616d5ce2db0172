"""SQL behind the audit viewer and the chain check (core.audit).

Entries are written only by :meth:`core.catalog.db.WriteTransaction.audit`;
this module only reads them. Lists are read a page at a time by id (keyset
paging), so a log of millions of entries costs the same per page as a small one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from core.catalog.db import Catalog, dict_rows, placeholders

ENTRY_COLUMNS = "id, at, actor, action, entity, entity_key, before_json, after_json, hash"
CHAIN_COLUMNS = "id, at, actor, action, entity, entity_key, before_json, after_json, prev_hash, hash"
# Columns with an index the viewer may list the distinct values of.
DISTINCT_COLUMNS = ("actor", "action", "entity")


@dataclass(frozen=True)
class Conditions:
    """Which entries: each field None means any. ``since``/``until``: UTC ISO
    timestamps in the stored form, ``since`` included, ``until`` excluded."""

    actor: str | None = None
    entity: str | None = None
    entity_key: str | None = None
    action: str | None = None
    since: str | None = None
    until: str | None = None

    def where(self) -> tuple[list[str], list[Any]]:
        clauses, params = [], []
        for column in ("actor", "entity", "entity_key", "action"):
            value = getattr(self, column)
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.since is not None:
            clauses.append("at >= ?")
            params.append(self.since)
        if self.until is not None:
            clauses.append("at < ?")
            params.append(self.until)
        return clauses, params


def page(catalog: Catalog, conditions: Conditions, limit: int, *, before_id: int | None = None,
         after_id: int | None = None) -> list[dict[str, Any]]:
    """Up to ``limit`` entries, newest first: those older than ``before_id``, or
    (``after_id``) the ``limit`` oldest of those newer than it (the page before
    in the list)."""
    clauses, params = conditions.where()
    if before_id is not None:
        clauses.append("id < ?")
        params.append(before_id)
    if after_id is not None:
        clauses.append("id > ?")
        params.append(after_id)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    order = "ASC" if after_id is not None else "DESC"
    rows = dict_rows(catalog, f"SELECT {ENTRY_COLUMNS} FROM audit_log {where} ORDER BY id {order} LIMIT ?",
                     [*params, limit])
    return rows[::-1] if after_id is not None else rows


def ascending(catalog: Catalog, conditions: Conditions, batch: int = 2000) -> Iterator[list[dict[str, Any]]]:
    """Every matching entry, oldest first, in lists of up to ``batch`` (for exports).

    Each batch is its own read: a long export never holds a read snapshot open
    for its whole length.
    """
    clauses, params = conditions.where()
    last = 0
    while True:
        where = " AND ".join([*clauses, "id > ?"])
        rows = dict_rows(catalog, f"SELECT {ENTRY_COLUMNS} FROM audit_log WHERE {where} ORDER BY id LIMIT ?",
                         [*params, last, batch])
        if not rows:
            return
        yield rows
        last = rows[-1]["id"]


def count(catalog: Catalog, conditions: Conditions) -> int:
    clauses, params = conditions.where()
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    return catalog.reader().execute(f"SELECT COUNT(*) FROM audit_log {where}", params).fetchone()[0]


def chain_batch(catalog: Catalog, after_id: int, limit: int) -> list[dict[str, Any]]:
    """The next entries after ``after_id`` in id order, with their chain columns."""
    return dict_rows(catalog, f"SELECT {CHAIN_COLUMNS} FROM audit_log WHERE id > ? ORDER BY id LIMIT ?",
                     (after_id, limit))


def entry(catalog: Catalog, entry_id: int) -> dict[str, Any] | None:
    rows = dict_rows(catalog, f"SELECT {CHAIN_COLUMNS} FROM audit_log WHERE id = ?", (entry_id,))
    return rows[0] if rows else None


def head(catalog: Catalog) -> tuple[int, str | None, int]:
    """(last entry's id, its hash, entries): (0, None, 0) for an empty log."""
    last = catalog.reader().execute("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
    n = catalog.reader().execute("SELECT COUNT(*) FROM audit_log").fetchone()[0]
    return (last[0], last[1], n) if last else (0, None, 0)


def distinct(catalog: Catalog, column: str) -> list[str]:
    """The values ``column`` takes, sorted: one index step per value (a skip
    scan), not a scan of the log."""
    if column not in DISTINCT_COLUMNS:
        raise ValueError(f"no index to list {column!r} by")
    rows = catalog.reader().execute(
        f"""WITH RECURSIVE v(x) AS (
                SELECT MIN({column}) FROM audit_log
                UNION ALL
                SELECT (SELECT MIN({column}) FROM audit_log WHERE {column} > v.x) FROM v WHERE v.x IS NOT NULL)
            SELECT x FROM v WHERE x IS NOT NULL""").fetchall()
    return [r[0] for r in rows]


def object_entries(catalog: Catalog, entity: str, keys: Sequence[str], *, word_match: bool) -> list[dict[str, Any]]:
    """The entries of one object under any of ``keys`` (its names over time), oldest first.

    ``word_match``: a key also matches the keys it begins or ends as a word
    ("demo-plan" matches "demo-plan v2"; "demo-plan v2" matches the cells
    "demo-plan v2 <cell>"), for objects keyed by names.
    """
    clauses, params = [], []
    for key in keys:
        clauses.append("entity_key = ?")
        params.append(key)
        if word_match:
            clauses.append("substr(entity_key, 1, ?) = ?")
            params += [len(key) + 1, f"{key} "]
            clauses.append("substr(entity_key, -?) = ?")
            params += [len(key) + 1, f" {key}"]
    return dict_rows(catalog, f"SELECT {ENTRY_COLUMNS} FROM audit_log WHERE entity = ? AND ({' OR '.join(clauses)})"
                              " ORDER BY id", [entity, *params])


def image_entries(catalog: Catalog, image_id: int) -> list[dict[str, Any]]:
    """An image's own entries and those of its boxes and QA flags, oldest first."""
    key = str(image_id)
    return dict_rows(catalog, f"""SELECT {ENTRY_COLUMNS} FROM audit_log
        WHERE (entity = 'images' AND entity_key = ?)
           OR (entity = 'annotations' AND entity_key IN (SELECT CAST(id AS TEXT) FROM annotations WHERE image_id = ?))
           OR (entity = 'qa_flags' AND entity_key IN (SELECT CAST(id AS TEXT) FROM qa_flags WHERE image_id = ?))
        ORDER BY id""", (key, image_id, image_id))


def class_names(catalog: Catalog, name: str, limit: int = 50) -> list[str]:
    """``name`` and the names the class had before, following its renames back."""
    names = [name]
    frontier = [name]
    while frontier and len(names) < limit:
        rows = catalog.reader().execute(
            f"""SELECT DISTINCT json_extract(before_json, '$.name') FROM audit_log
                WHERE entity = 'threat_classes' AND json_extract(after_json, '$.name') IN ({placeholders(len(frontier))})
                  AND json_extract(before_json, '$.name') IS NOT NULL""", frontier).fetchall()
        frontier = [r[0] for r in rows if r[0] not in names]
        names += frontier
    return names


def class_entries(catalog: Catalog, names: Sequence[str]) -> list[dict[str, Any]]:
    """A class's entries under any of ``names``, with the entries of other objects
    that name it as their class (items moved, KPI results and plans rewritten,
    classes split from it), oldest first."""
    marks = placeholders(len(names))
    return dict_rows(catalog, f"""SELECT {ENTRY_COLUMNS} FROM audit_log
        WHERE (entity = 'threat_classes' AND (entity_key IN ({marks})
                                              OR json_extract(after_json, '$.split_from') IN ({marks})))
           OR (entity IN ('threat_items', 'kpi_results', 'quota_plan')
               AND (json_extract(before_json, '$.class') IN ({marks})
                    OR json_extract(after_json, '$.class') IN ({marks})))
        ORDER BY id""", [*names, *names, *names, *names])
