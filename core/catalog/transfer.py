"""Moving a whole catalog between backends: a SQLite file onto a PostgreSQL
server (``xlab catalog migrate-to``) and a server catalog back into one file
(``xlab catalog export-sqlite``, also what a backup of a server lab holds).

A catalog is copied table by table, every row as it is, ids included: the
tables that triggers keep (tallies, label counters, change counters, clocks)
are copied too rather than rebuilt, so the target holds exactly what the
source held, the audit chain included. The target's triggers are off while
the rows go in (PostgreSQL: ``DISABLE TRIGGER USER``, which leaves the
foreign keys checked; SQLite: dropped and re-created from their own SQL), or
they would count every image twice and refuse the append-only audit rows.

Both ends must be at the same schema (the head migration): the target is a
new catalog that this XLab creates, and the source is opened (and migrated)
by this XLab first. The source is read in one snapshot (SQLite: one read
transaction in WAL mode; PostgreSQL: one REPEATABLE READ transaction), so a
lab that keeps working during an export is exported as of one commit.

After the copy each table's rows are compared: the count and an
order-independent digest of every row's values on both sides (collations
differ between the backends, so the digest does not depend on row order).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.catalog.db import BUSY_TIMEOUT_MS, Catalog
from core.catalog.migrations import MIGRATION_SET
from core.errors import CatalogError
from core.progress import Progress

# Tables of the migration machinery: each backend keeps its own.
_MACHINERY = ("_sqlite_migrations", "xlab_migrations")
_BATCH = 5000


@dataclass
class TransferReport:
    """What a copy moved and what the comparison found."""

    source: str
    target: str
    counts: dict[str, int] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        head = (f"copied {self.rows:,} rows in {len(self.counts)} tables from {self.source} to {self.target}; "
                f"images {self.counts.get('images', 0):,}, audit entries {self.counts.get('audit_log', 0):,}")
        if self.ok:
            return head + "; every table's rows compared equal"
        return head + f"; {len(self.mismatches)} tables differ: " + "; ".join(self.mismatches)


# -- the tables and their columns -------------------------------------------

def _sqlite_tables(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").fetchall()
    return sorted(r[0] for r in rows if r[0] not in _MACHINERY)


def _sqlite_columns(conn: sqlite3.Connection, table: str) -> list[str]:
    """Stored columns (generated ones are computed again by the target)."""
    return [r[1] for r in conn.execute(f'PRAGMA table_xinfo("{table}")') if r[6] == 0]


def _in_dependency_order(conn: sqlite3.Connection, tables: Sequence[str]) -> list[str]:
    """``tables`` with each after the tables its foreign keys name (a table naming itself is
    copied in id order, a parent row before its children)."""
    needs = {t: {r[2] for r in conn.execute(f'PRAGMA foreign_key_list("{t}")')} - {t} for t in tables}
    ordered: list[str] = []
    while needs:
        ready = sorted(t for t, deps in needs.items() if not deps - set(ordered))
        if not ready:
            raise CatalogError(f"foreign keys form a cycle among {sorted(needs)}")
        ordered += ready
        for t in ready:
            del needs[t]
    return ordered


def _pg_columns(conn: Any, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = %s AND is_generated = 'NEVER' ORDER BY ordinal_position", (table,)).fetchall()
    return [r[0] for r in rows]


def _pg_tables(conn: Any) -> list[str]:
    rows = conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
                        "AND table_type = 'BASE TABLE'").fetchall()
    return sorted(r[0] for r in rows if r[0] not in _MACHINERY)


def _check_same_tables(source: dict[str, list[str]], target: dict[str, list[str]]) -> None:
    problems = []
    for table in sorted(set(source) | set(target)):
        if table not in target:
            problems.append(f"{table}: not in the target")
        elif table not in source:
            problems.append(f"{table}: not in the source")
        elif set(source[table]) != set(target[table]):
            problems.append(f"{table}: columns differ ({sorted(set(source[table]) ^ set(target[table]))})")
    if problems:
        raise CatalogError("the two catalogs are not at the same schema: " + "; ".join(problems))


# -- comparing ---------------------------------------------------------------

def _value(v: Any) -> Any:
    if isinstance(v, (bytes, bytearray, memoryview)):
        return {"b": bytes(v).hex()}
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, float) and v.is_integer():
        # SQLite hands back 3.0 as a REAL and PostgreSQL too; a BIGINT column holding it does not exist.
        return v
    return v


class _Digest:
    """Order-independent digest of a table's rows: the sorted hashes of each row."""

    def __init__(self) -> None:
        self.hashes: list[bytes] = []

    def add(self, rows: Sequence[Sequence[Any]]) -> None:
        for row in rows:
            text = json.dumps([_value(v) for v in row], separators=(",", ":"), default=str)
            self.hashes.append(hashlib.blake2b(text.encode(), digest_size=16).digest())

    def value(self) -> tuple[int, str]:
        self.hashes.sort()
        return len(self.hashes), hashlib.sha256(b"".join(self.hashes)).hexdigest()


def _compare(report: TransferReport, table: str, source: tuple[int, str], target: tuple[int, str]) -> None:
    report.counts[table] = source[0]
    if source[0] != target[0]:
        report.mismatches.append(f"{table}: {source[0]} rows in the source, {target[0]} in the target")
    elif source[1] != target[1]:
        report.mismatches.append(f"{table}: same number of rows ({source[0]}) but different values")


# -- SQLite -> PostgreSQL ----------------------------------------------------

def _snapshot_reader(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{path.as_posix()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                           isolation_level=None)
    conn.execute("BEGIN")  # one read transaction: every table as of one commit
    return conn


def migrate_to_postgres(sqlite_path: str | Path, url: str) -> Iterator[Progress]:
    """Copy the SQLite catalog at ``sqlite_path`` into a new catalog on the server at ``url``;
    returns a :class:`TransferReport`. The server database must hold no XLab catalog with data
    (a new, empty database); the SQLite file is left as it was.

    The copy and the comparison are one server transaction: a copy that does not compare
    equal, or that is stopped, is rolled back and leaves the server catalog empty."""
    import psycopg

    sqlite_path = Path(sqlite_path)
    Catalog.open(sqlite_path, create=False).close()  # brings it to this XLab's schema
    target_catalog = Catalog.open(url)
    target_catalog.close()
    report = TransferReport(str(sqlite_path), _safe_url(url))
    src = _snapshot_reader(sqlite_path)
    try:
        with psycopg.connect(url) as pg:
            tables = _in_dependency_order(src, _sqlite_tables(src))
            columns = {t: _sqlite_columns(src, t) for t in tables}
            _check_same_tables(columns, {t: _pg_columns(pg, t) for t in _pg_tables(pg)})
            _refuse_data(pg, url)
            total = sum(src.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables)
            done = 0
            yield Progress(0, total, f"copying {total:,} rows into {_safe_url(url)}")
            for t in tables:
                pg.execute(f'ALTER TABLE "{t}" DISABLE TRIGGER USER')
            for t in reversed(tables):
                pg.execute(f'DELETE FROM "{t}"')  # the rows migrations seed (counters, clocks)
            for t in tables:
                names = ", ".join(f'"{c}"' for c in columns[t])
                cursor = src.execute(f'SELECT {names} FROM "{t}" ORDER BY rowid' if _has_rowid(src, t)
                                     else f'SELECT {names} FROM "{t}"')
                with pg.cursor().copy(f'COPY "{t}" ({names}) FROM STDIN') as copy:
                    while rows := cursor.fetchmany(_BATCH):
                        for row in rows:
                            copy.write_row(row)
                        done += len(rows)
                        yield Progress(done, total, f"copying {t}")
            for t in tables:
                pg.execute(f'ALTER TABLE "{t}" ENABLE TRIGGER USER')
            _advance_identities(pg, tables)
            yield Progress(done, total, "comparing every table")
            for t in tables:
                _compare(report, t, _sqlite_digest(src, t, columns[t]), _pg_digest(pg, t, columns[t]))
            if report.ok:
                pg.commit()
            else:
                pg.rollback()
    finally:
        src.close()
    return report


def _has_rowid(conn: sqlite3.Connection, table: str) -> bool:
    sql = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()[0]
    return "WITHOUT ROWID" not in sql.upper()


def _refuse_data(pg: Any, url: str) -> None:
    for table in ("images", "audit_log", "quota_plans", "threat_classes"):
        n = pg.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]
        if n:
            raise CatalogError(f"the server catalog at {_safe_url(url)} already holds data ({n} rows in {table}); "
                               "migrate into a new, empty database")


def _advance_identities(pg: Any, tables: Sequence[str]) -> None:
    """Identity columns were given explicit ids: their sequences go on after the largest."""
    rows = pg.execute("SELECT table_name, column_name FROM information_schema.columns WHERE "
                      "table_schema = current_schema() AND is_identity = 'YES'").fetchall()
    for table, column in rows:
        if table in tables:
            pg.execute(f"SELECT setval(pg_get_serial_sequence(%s, %s), COALESCE(MAX(\"{column}\"), 0) + 1, false) "
                       f'FROM "{table}"', (f'"{table}"', column))


def _sqlite_digest(conn: sqlite3.Connection, table: str, columns: Sequence[str]) -> tuple[int, str]:
    digest = _Digest()
    cursor = conn.execute(f'SELECT {", ".join(chr(34) + c + chr(34) for c in columns)} FROM "{table}"')
    while rows := cursor.fetchmany(_BATCH):
        digest.add(rows)
    return digest.value()


def _pg_digest(pg: Any, table: str, columns: Sequence[str]) -> tuple[int, str]:
    digest = _Digest()
    with pg.cursor(name=f"digest_{table}") as cursor:
        cursor.execute(f'SELECT {", ".join(chr(34) + c + chr(34) for c in columns)} FROM "{table}"')
        while rows := cursor.fetchmany(_BATCH):
            digest.add(rows)
    return digest.value()


# -- PostgreSQL -> SQLite ----------------------------------------------------

def export_to_sqlite(url: str, sqlite_path: str | Path) -> Iterator[Progress]:
    """Copy the server catalog at ``url`` into a new SQLite catalog file ``sqlite_path`` (which
    must not exist), as of one snapshot of the server; returns a :class:`TransferReport`."""
    import psycopg

    sqlite_path = Path(sqlite_path)
    if sqlite_path.exists():
        raise CatalogError(f"{sqlite_path} already exists; name a new file")
    partial = sqlite_path.with_name(sqlite_path.name + ".partial")
    partial.unlink(missing_ok=True)
    Catalog.open(url, create=False).close()  # the server catalog is at this XLab's schema
    Catalog.open(partial).close()  # a new file at the same schema
    report = TransferReport(_safe_url(url), str(sqlite_path))
    out = sqlite3.connect(str(partial), isolation_level=None)
    try:
        with psycopg.connect(url) as pg:
            # Every table as of one commit (the implicit transaction psycopg begins takes these).
            pg.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            pg.read_only = True
            tables = _in_dependency_order(out, _sqlite_tables(out))
            columns = {t: _sqlite_columns(out, t) for t in tables}
            _check_same_tables(columns, {t: _pg_columns(pg, t) for t in _pg_tables(pg)})
            total = sum(pg.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables)
            done = 0
            yield Progress(0, total, f"copying {total:,} rows into {sqlite_path}")
            triggers = out.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
            out.execute("PRAGMA foreign_keys = OFF")
            out.execute("BEGIN")
            for name, _ in triggers:
                out.execute(f'DROP TRIGGER "{name}"')
            for t in reversed(tables):
                out.execute(f'DELETE FROM "{t}"')
            for t in tables:
                names = ", ".join(f'"{c}"' for c in columns[t])
                insert = f'INSERT INTO "{t}" ({names}) VALUES ({", ".join("?" * len(columns[t]))})'
                with pg.cursor(name=f"copy_{t}") as cursor:
                    cursor.execute(f'SELECT {names} FROM "{t}"')
                    while rows := cursor.fetchmany(_BATCH):
                        out.executemany(insert, rows)
                        done += len(rows)
                        yield Progress(done, total, f"copying {t}")
            for _, sql in triggers:
                out.execute(sql)
            out.execute("COMMIT")
            out.execute("PRAGMA foreign_keys = ON")
            broken = out.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise CatalogError(f"the copy breaks {len(broken)} foreign keys (first: {broken[0]})")
            yield Progress(done, total, "comparing every table")
            for t in tables:
                _compare(report, t, _pg_digest(pg, t, columns[t]), _sqlite_digest(out, t, columns[t]))
    except BaseException:
        out.close()
        partial.unlink(missing_ok=True)
        raise
    out.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
    out.close()
    if report.ok:
        partial.replace(sqlite_path)
    else:
        partial.unlink(missing_ok=True)
    return report


def _safe_url(url: str) -> str:
    """``url`` without its password, for messages and reports."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.split("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}" if user else netloc))


__all__ = ["MIGRATION_SET", "TransferReport", "export_to_sqlite", "migrate_to_postgres"]
