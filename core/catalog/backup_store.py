"""SQL behind backup, restore and verify (core.backup): the online copy of the
catalog file, what a catalog says the store must hold, and the integrity checks.

The copy uses SQLite's online backup API from a connection of its own: one
read transaction, so the copy is the catalog as of one commit, while ingest
and the window go on writing (WAL: the reader neither waits for nor blocks
them).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from core.catalog.db import BUSY_TIMEOUT_MS, Catalog, WriteTransaction, dict_rows, id_chunks, placeholders
from core.catalog.migrations import MIGRATION_SET

# What a catalog counts, for backup.json and restore's report.
COUNTED = ("images", "dicos_reports", "annotations", "audit_log", "dataset_versions", "runs")


def copy_catalog(source: Path, dest: Path) -> None:
    """Copy the catalog at ``source`` into a new file ``dest``, consistent as of one commit.

    One step (all pages at once): copied in several steps, a commit by
    another connection between two of them would restart the copy, and a busy
    lab could keep it from ever ending. ``dest`` ends in rollback-journal mode,
    a single self-contained file.
    """
    dest.unlink(missing_ok=True)
    src = sqlite3.connect(str(source), timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        src.execute("PRAGMA query_only = ON")
        out = sqlite3.connect(str(dest))
        try:
            src.backup(out)
            out.execute("PRAGMA journal_mode = DELETE")
            out.commit()
        finally:
            out.close()
    finally:
        src.close()


def _open_copy(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path.as_posix()}?mode=ro", uri=True)


def copy_facts(path: Path) -> dict[str, Any]:
    """What the catalog copy at ``path`` holds: its schema (last migration), row
    counts, and its audit head (id and hash)."""
    conn = _open_copy(path)
    try:
        schema = conn.execute("SELECT name FROM _sqlite_migrations WHERE migration_set = ? ORDER BY rowid DESC"
                              " LIMIT 1", (MIGRATION_SET,)).fetchone()
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        counts = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in COUNTED if t in tables}
        columns = {r[1] for r in conn.execute("PRAGMA table_info(audit_log)")}
        head = (conn.execute("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
                if "hash" in columns else None)
    finally:
        conn.close()
    return {"schema": schema[0] if schema else None, "counts": counts,
            "audit_head": {"id": head[0], "hash": head[1]} if head else None}


def copy_store_files(path: Path, batch: int = 5000) -> Iterator[list[tuple[str, str | None]]]:
    """The store files the catalog copy at ``path`` refers to, in batches of
    (path relative to the store, SHA-256 the catalog records or None for a
    thumbnail): images, their thumbnails, DICOS reports."""
    conn = _open_copy(path)
    try:
        for sql in ("SELECT id, store_path, sha256, thumb_path FROM images WHERE id > ? ORDER BY id LIMIT ?",
                    "SELECT id, store_path, sha256, NULL FROM dicos_reports WHERE id > ? ORDER BY id LIMIT ?"):
            last = 0
            while True:
                rows = conn.execute(sql, (last, batch)).fetchall()
                if not rows:
                    break
                out: list[tuple[str, str | None]] = []
                for _, store_path, sha, thumb in rows:
                    out.append((store_path, sha))
                    if thumb:
                        out.append((thumb, None))
                yield out
                last = rows[-1][0]
    finally:
        conn.close()


def stored_files(catalog: Catalog, table: str, after_id: int, limit: int) -> list[dict[str, Any]]:
    """The next rows after ``after_id`` of ``images`` or ``dicos_reports``: id, sha256,
    store_path and thumb_path (None for reports)."""
    thumb = "thumb_path" if table == "images" else "NULL AS thumb_path"
    if table not in ("images", "dicos_reports"):
        raise ValueError(table)
    return dict_rows(catalog, f"SELECT id, sha256, store_path, {thumb} FROM {table} WHERE id > ? ORDER BY id LIMIT ?",
                     (after_id, limit))


def stored_file_count(catalog: Catalog) -> int:
    conn = catalog.reader()
    return (conn.execute("SELECT COUNT(*) FROM images").fetchone()[0]
            + conn.execute("SELECT COUNT(*) FROM dicos_reports").fetchone()[0])


def known_hashes(catalog: Catalog, shas: Sequence[str]) -> set[str]:
    """Which of ``shas`` an image or a DICOS report of the catalog has."""
    found: set[str] = set()
    conn = catalog.reader()
    for chunk in id_chunks(list(shas)):
        marks = placeholders(len(chunk))
        for table in ("images", "dicos_reports"):
            found.update(r[0] for r in conn.execute(f"SELECT sha256 FROM {table} WHERE sha256 IN ({marks})", chunk))
    return found


def integrity_problems(catalog: Catalog, limit: int = 20) -> list[str]:
    """What SQLite's own checks find wrong with the file and its references (empty: none)."""
    conn = catalog.reader()
    problems = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchmany(limit) if r[0] != "ok"]
    for table, rowid, parent, _ in conn.execute("PRAGMA foreign_key_check").fetchmany(limit):
        problems.append(f"{table} row {rowid} refers to a {parent} row that does not exist")
    return problems


def rebase_quarantine(txn: WriteTransaction, old_root: str, new_root: str) -> int:
    """Quarantined files are recorded by absolute path: point those under
    ``old_root`` (the backed-up lab) at the same place under ``new_root``."""
    old = old_root.rstrip("/\\")
    cursor = txn.execute("UPDATE quarantine SET stored_path = ? || substr(stored_path, ?)"
                         " WHERE substr(stored_path, 1, ?) IN (?, ?)",
                         (new_root.rstrip("/\\"), len(old) + 1, len(old) + 1, old + "/", old + "\\"))
    return cursor.rowcount
