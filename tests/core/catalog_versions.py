"""Catalogs as an earlier release left them, with the data of a current one.

A migration is tested on a catalog that really has the schema of the release
before it. Un-applying migrations from a current catalog by hand breaks as
soon as a later migration is added; copying the data of a current catalog into
a file built by the migrations up to the one under test does not.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlite_utils import Database

from core.catalog.migrations import sqlite_utils_migrations


def catalog_before(source: Path, target: Path, migration: str,
                   select: dict[str, dict[str, str]] | None = None) -> Path:
    """Write at ``target`` a catalog migrated up to (not including) ``migration``,
    holding the rows of the catalog at ``source``: every table the old schema
    has, with the columns both share. ``select``: per table, SQL expressions
    (over the source's row) for columns whose values the old schema spells
    differently. Triggers are off while copying (the tallies and counters
    are copied, not recomputed) and back on afterwards.
    """
    conn = sqlite3.connect(target, isolation_level=None)
    try:
        sqlite_utils_migrations().apply(Database(conn), stop_before=migration)
        triggers = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
        conn.execute("ATTACH DATABASE ? AS src", (str(source),))
        conn.execute("BEGIN")
        for name, _ in triggers:
            conn.execute(f"DROP TRIGGER {name}")
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM main.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "AND name != '_sqlite_migrations'")]
        for table in tables:
            theirs = {r[1] for r in conn.execute(f"PRAGMA src.table_info({table})")}
            if not theirs:
                continue
            ours = [r[1] for r in conn.execute(f"PRAGMA main.table_info({table})") if r[1] in theirs]
            # Generated columns cannot be written.
            generated = {r[1] for r in conn.execute(f"PRAGMA main.table_xinfo({table})") if r[6] in (2, 3)}
            ours = [c for c in ours if c not in generated]
            expressions = [(select or {}).get(table, {}).get(c, c) for c in ours]
            conn.execute(f"DELETE FROM main.{table}")
            conn.execute(f"INSERT INTO main.{table} ({', '.join(ours)}) SELECT {', '.join(expressions)} FROM src.{table}")
        for _, sql in triggers:
            conn.execute(sql)
        conn.execute("COMMIT")
        conn.execute("DETACH DATABASE src")
    finally:
        conn.close()
    return target
