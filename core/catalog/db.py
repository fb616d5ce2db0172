"""Catalog connections: one writer, many readers, change records, audit log.

Threading contract
------------------
* One :class:`Catalog` per process. Writes go through :meth:`Catalog.write`,
  which serialises writers with a lock and runs the body in one transaction;
  any thread may call it. Other processes (the ingest process, a second CLI)
  write the same file through their own Catalog; SQLite's lock and the busy
  timeout serialise them.
* Reads use :meth:`Catalog.reader`: a read-only connection per thread. The
  catalog runs in WAL mode, so readers see the last committed state and never
  wait for the writer.

Change records
--------------
Nobody lists what a write changed: triggers bump one counter per table for
every row written (``change_counters``, migration 0006), including rows that
other triggers write (an image insert also changes ``cell_tally`` and
``production_counts``). A write compares the counters at its start and end;
:meth:`Catalog.outside_change` compares them with what this Catalog saw last
to name the tables other processes changed. Callers see only table names in
a :class:`Change`, so a server backend can fill the same record from its own
notifications (e.g. PostgreSQL LISTEN/NOTIFY).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from core.catalog import pg, rights
from core.catalog.audit_chain import entry_hash
from core.catalog.migrations import MIGRATION_SET, sqlite_utils_migrations
from core.catalog.migrations import names as migration_names
from core.errors import CatalogError, CatalogTooNewError

BUSY_TIMEOUT_MS = 15_000


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def current_actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@dataclass(frozen=True)
class Change:
    """What committed writes changed, so that views refresh only what concerns them.

    ``tables``: every catalog table with a row inserted, updated or deleted,
    whether by the statements themselves or by the triggers they fired.
    ``outside``: written by another process (``summary`` and
    ``audit_entries`` are then unknown).
    """

    tables: frozenset[str]
    summary: str = ""
    audit_entries: int = 0
    outside: bool = False

    def touches(self, *tables: str) -> bool:
        return bool(self.tables.intersection(tables))

    @property
    def empty(self) -> bool:
        return not self.tables


@dataclass
class WriteTransaction:
    """Handle given to the body of :meth:`Catalog.write`; valid only inside it."""

    conn: sqlite3.Connection
    actor: str
    summary: list[str] = field(default_factory=list)
    audit_entries: int = 0

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Any) -> sqlite3.Cursor:
        return self.conn.executemany(sql, rows)

    @contextlib.contextmanager
    def savepoint(self, name: str) -> Iterator[None]:
        """A part of the transaction that is undone alone if its body raises
        (the exception goes on; what came before in the transaction stays)."""
        self.conn.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self.conn.execute(f"ROLLBACK TO {name}")
            self.conn.execute(f"RELEASE {name}")
            raise
        self.conn.execute(f"RELEASE {name}")

    def audit(
        self,
        action: str,
        entity: str,
        entity_key: str | int = "",
        before: Any = None,
        after: Any = None,
    ) -> None:
        """Append one entry to the audit log, in this transaction, chained to the
        last one (core.catalog.audit_chain): BEGIN IMMEDIATE holds every other
        writer off between reading the last entry and writing this one."""
        last = self.conn.execute("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
        prev_id, prev_hash = last if last else (0, "")
        entry = {
            "id": prev_id + 1,
            "at": utc_now(),
            "actor": self.actor,
            "action": action,
            "entity": entity,
            "entity_key": str(entity_key),
            "before_json": None if before is None else json.dumps(before, sort_keys=True, default=str),
            "after_json": None if after is None else json.dumps(after, sort_keys=True, default=str),
        }
        self.conn.execute(
            "INSERT INTO audit_log (id, at, actor, action, entity, entity_key, before_json, after_json, prev_hash, hash)"
            " VALUES (:id, :at, :actor, :action, :entity, :entity_key, :before_json, :after_json, :prev_hash, :hash)",
            {**entry, "prev_hash": prev_hash or "", "hash": entry_hash(prev_hash or "", entry)},
        )
        self.audit_entries += 1


def _counters(conn: sqlite3.Connection) -> dict[str, int]:
    """Each counted table's change counter, as ``conn`` sees them now."""
    return dict(conn.execute("SELECT tbl, seq FROM change_counters").fetchall())


def _changed(before: dict[str, int], after: dict[str, int]) -> frozenset[str]:
    return frozenset(t for t, seq in after.items() if before.get(t) != seq)


def _connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(
        str(path), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False, isolation_level=None
    )
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    if read_only:
        conn.execute("PRAGMA query_only = ON")
    else:
        # FULL: a committed image row survives a power cut, not only a crash.
        conn.execute("PRAGMA synchronous = FULL")
    return conn


def _applied_names(conn: sqlite3.Connection) -> list[str]:
    """The migrations recorded in the catalog (sqlite-utils' table), in the order applied."""
    try:
        rows = conn.execute("SELECT name FROM _sqlite_migrations WHERE migration_set = ? ORDER BY rowid",
                            (MIGRATION_SET,)).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []  # a new catalog
        raise
    return [r[0] for r in rows]


def _pg_applied_names(conn: pg.Connection) -> list[str]:
    """The migrations recorded in a server catalog (``xlab_migrations``), in the order applied."""
    if conn.execute("SELECT to_regclass('xlab_migrations')").fetchone()[0] is None:
        return []  # a new catalog
    rows = conn.execute("SELECT name FROM xlab_migrations WHERE migration_set = ? ORDER BY applied_at, name",
                        (MIGRATION_SET,)).fetchall()
    return [r[0] for r in rows]


class Catalog:
    """The lab's catalog: a SQLite file (``path``), or a database on the lab's PostgreSQL
    server (``url``; ``path`` is then None). Use :meth:`open`; close with :meth:`close`.
    ``dialect``: "sqlite" or "postgresql"; the stores' SQL runs on both (core.catalog.pg)."""

    def __init__(self, path: Path | None, writer: Any, url: str | None = None):
        self.path = path
        self.url = url
        self.dialect = "postgresql" if url else "sqlite"
        self._writer = writer
        self._listener: pg.Connection | None = None
        self._write_lock = threading.RLock()
        # One read connection per OS thread. Keyed by thread id, not
        # threading.local: a Qt pool thread gets a fresh Python thread state
        # for every task, which would open (and leak) a connection per call.
        self._readers: dict[int, sqlite3.Connection] = {}
        self._readers_lock = threading.Lock()
        self._closed = False
        # Other threads' readers at close: interrupted, not closed (see close()).
        self._retired: list[sqlite3.Connection] = []
        self._subscribers: list[Callable[[Change], None]] = []
        # Change counters as this Catalog last saw them, and the tables other
        # processes changed that a write of ours noticed before
        # outside_change() did; both guarded by the write lock.
        self._seen: dict[str, int] = {}
        self._outside_pending: set[str] = set()
        self._outside_version: int | None = None
        # Who writes (core.users.sign_in): None until someone signs in, which a lab without users
        # (an open lab) treats as everyone may do everything.
        self.identity: rights.Identity | None = None

    @classmethod
    def open(cls, path: str | Path, *, create: bool = True) -> "Catalog":
        """Open (and migrate to the head schema) the catalog at ``path``: a file, or a
        ``postgresql://`` URL of a database on the lab's server (``create``: make the schema
        in an empty database)."""
        if pg.is_url(path):
            return cls._open_server(str(path), create=create)
        path = Path(path)
        if not path.exists() and not create:
            raise CatalogError(f"no catalog at {path}; run 'xlab init' first")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            writer = _connect(path, read_only=False)
            mode = writer.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise CatalogError(f"{path} is not a readable XLab catalog: {exc}") from exc
        if mode.lower() != "wal":
            raise CatalogError(f"could not put {path} in WAL mode (got {mode})")
        catalog = cls(path, writer)
        catalog.migrate()
        with catalog._write_lock:
            catalog._seen = _counters(writer)
            catalog._outside_version = writer.execute("PRAGMA data_version").fetchone()[0]
        return catalog

    @classmethod
    def _open_server(cls, url: str, *, create: bool) -> "Catalog":
        writer = pg.connect(url)
        catalog = cls(None, writer, url)
        try:
            if not _pg_applied_names(writer):
                if not create:
                    raise CatalogError(f"no XLab catalog in {pg.safe_url(url)}; create it with "
                                       f"'xlab init --lab DIR --catalog {pg.safe_url(url)}'")
                collation = writer.execute("SELECT datcollate FROM pg_database "
                                           "WHERE datname = current_database()").fetchone()[0]
                if collation not in ("C", "POSIX"):
                    # Names, barcodes and exports sort by their bytes on SQLite; the same here.
                    raise CatalogError(f"the database {pg.safe_url(url)} sorts text by '{collation}'; create it "
                                       "with CREATE DATABASE ... TEMPLATE template0 ENCODING 'UTF8' "
                                       "LC_COLLATE 'C' LC_CTYPE 'C' (docs/lab-server.md)")
            catalog.migrate()
            listener = pg.connect(url)
            listener.execute(f"LISTEN {pg.NOTIFY_CHANNEL}")
            catalog._listener = listener
            with catalog._write_lock:
                catalog._seen = _counters(writer)
        except BaseException:
            catalog.close()
            raise
        return catalog

    @property
    def target(self) -> Path | str:
        """What :meth:`open` takes to open this catalog again (another connection to it)."""
        return self.url or self.path

    @property
    def where(self) -> str:
        """The catalog's file, or its server database (without a password), for messages."""
        return pg.safe_url(self.url) if self.url else str(self.path)

    # -- schema -------------------------------------------------------------

    def migrate(self) -> list[str]:
        """Apply pending migrations; return their names (empty when up to date).

        Each migration runs in its own ``BEGIN IMMEDIATE`` transaction that
        also re-reads what is pending, so several processes opening a new
        catalog at once apply each migration exactly once.
        """
        known = migration_names()
        if self.dialect == "postgresql":
            return self._migrate_server(known)
        with self._write_lock:
            applied = _applied_names(self._writer)
            self._refuse_unknown(applied, known)
            if set(known) <= set(applied):
                return []  # up to date: sqlite-utils is not even imported
            from sqlite_utils import Database

            migrations = sqlite_utils_migrations()
            db = Database(self._writer, execute_plugins=False)
            applied_now: list[str] = []
            while True:
                self._writer.execute("BEGIN IMMEDIATE")
                try:
                    self._refuse_unknown(_applied_names(self._writer), known)
                    pending = [m.name for m in migrations.pending(db)]
                    if pending:
                        # Inside our transaction sqlite-utils uses a savepoint.
                        migrations.apply(db, stop_before=pending[1:])
                except BaseException:
                    self._writer.execute("ROLLBACK")
                    raise
                self._writer.execute("COMMIT")
                if not pending:
                    return applied_now
                applied_now.append(pending[0])

    def _migrate_server(self, known: list[str]) -> list[str]:
        """The PostgreSQL statements of each pending migration (core.catalog.pg_schema), each in
        its own transaction under the writers' lock: stations opening a new catalog at once apply
        each exactly once."""
        from core.catalog.pg_schema import postgres_migrations

        applied_now: list[str] = []
        with self._write_lock:
            if set(known) <= set(_pg_applied_names(self._writer)):
                self._refuse_unknown(_pg_applied_names(self._writer), known)
                return []
            for name, statements in postgres_migrations():
                self._writer.execute("BEGIN")
                try:
                    self._writer.execute("SELECT pg_advisory_xact_lock(?)", (pg.WRITE_LOCK,))
                    # Under the lock: a station opening the same new catalog waits here, then
                    # finds the table and each migration done.
                    self._writer.execute("CREATE TABLE IF NOT EXISTS xlab_migrations (migration_set TEXT NOT NULL, "
                                         "name TEXT NOT NULL, applied_at TEXT NOT NULL, "
                                         "PRIMARY KEY (migration_set, name))")
                    done = _pg_applied_names(self._writer)
                    self._refuse_unknown(done, known)
                    if name not in done:
                        for statement in statements:
                            self._writer.raw.execute(statement)
                        self._writer.execute("INSERT INTO xlab_migrations (migration_set, name, applied_at) "
                                             "VALUES (?, ?, ?)", (MIGRATION_SET, name, utc_now()))
                        applied_now.append(name)
                except BaseException:
                    self._writer.execute("ROLLBACK")
                    raise
                finally:
                    self._writer.schema_changed()
                self._writer.execute("COMMIT")
            if applied_now:
                self._grant_roles()
        return applied_now

    def _grant_roles(self) -> None:
        """The group role of each XLab role and its grants on every table (core.catalog.rights),
        again after each migration, so that a new table has its grants."""
        from core.catalog.user_store import ensure_server_groups

        self._writer.execute("BEGIN")
        try:
            self._writer.execute("SELECT pg_advisory_xact_lock(?)", (pg.WRITE_LOCK,))
            tables = [r[0] for r in self._writer.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
                "AND table_type = 'BASE TABLE' ORDER BY table_name").fetchall()]
            ensure_server_groups(self._writer, tables)
        except BaseException:
            self._writer.execute("ROLLBACK")
            raise
        self._writer.execute("COMMIT")

    def _refuse_unknown(self, applied: list[str], known: list[str]) -> None:
        unknown = set(applied) - set(known)
        if unknown:
            raise CatalogTooNewError(
                f"{self.where} was written by a newer XLab (migrations {sorted(unknown)}); "
                "update XLab before opening it"
            )

    def applied_migrations(self) -> list[str]:
        if self.dialect == "postgresql":
            with self._write_lock:
                return _pg_applied_names(self._writer)
        return _applied_names(self.reader())

    def require(self, permission: str) -> None:
        """Raise core.catalog.rights.PermissionDeniedError unless the signed-in user may do
        ``permission`` (core.catalog.rights.PERMISSIONS): actions ask before their work, so that a
        refusal comes first, not after a long read; every write is checked again as it commits."""
        if self.identity is not None:
            self.identity.require(permission)

    # -- reading ------------------------------------------------------------

    def reader(self) -> sqlite3.Connection:
        """A read-only connection for the calling thread (created on first use)."""
        if self._closed:
            raise CatalogError("the catalog is closed (the lab was closed while this was reading)")
        ident = threading.get_ident()
        conn = self._readers.get(ident)
        if conn is None:
            conn = pg.connect(self.url, read_only=True) if self.url else _connect(self.path, read_only=True)
            with self._readers_lock:
                self._readers[ident] = conn
        return conn

    def query(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        conn = self.reader()
        cursor = conn.execute(sql, params)
        if self.dialect == "sqlite":
            cursor.row_factory = sqlite3.Row
        return cursor.fetchall()

    def query_one(self, sql: str, params: Any = ()) -> sqlite3.Row | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def outside_change(self) -> Change | None:
        """The tables other processes (or another Catalog on the same file)
        changed since this Catalog last looked; None when nothing changed, or
        when the writer is busy right now (ask again later).

        Cheap enough to poll every second: ``PRAGMA data_version`` on the
        writer connection moves only when another connection commits (our
        own commits leave it alone), and only then is the small counter table
        read. Any thread.
        """
        if self.dialect == "postgresql":
            return self._server_change()
        if not self._write_lock.acquire(blocking=False):
            return None
        try:
            version = self._writer.execute("PRAGMA data_version").fetchone()[0]
            if version != self._outside_version:
                self._outside_version = version
                now = _counters(self._writer)
                self._outside_pending |= _changed(self._seen, now)
                self._seen = now
            tables, self._outside_pending = frozenset(self._outside_pending), set()
        finally:
            self._write_lock.release()
        return Change(tables, "changed by another program", outside=True) if tables else None

    def _server_change(self) -> Change | None:
        """Other stations' writes, from the notifications their commits sent (LISTEN/NOTIFY):
        each names the tables a write changed. Ours (sent by our writer) are left out. After the
        listening connection was lost (a server restart) what came meanwhile is unknown: once it
        is back, every counted table is named, so that views read again."""
        if self._listener is None:
            return None
        tables: set[str] = set()
        if self._listener.lost:
            if not self._write_lock.acquire(blocking=False):
                return None
            try:
                self._listener.execute(f"LISTEN {pg.NOTIFY_CHANNEL}")  # connects again, or raises CatalogError
                tables.update(_counters(self._writer))
            finally:
                self._write_lock.release()
        own = self._writer.backend_pid
        try:
            for note in self._listener.raw.notifies(timeout=0):
                if note.pid != own:
                    tables.update(t for t in note.payload.split(",") if t)
        except Exception as exc:  # noqa: BLE001 - psycopg's; the next call connects again
            raise CatalogError(f"lost the connection to the lab's catalog server {self.where} ({exc}); "
                               "XLab connects again at the next look") from exc
        return Change(frozenset(tables), "changed at another station", outside=True) if tables else None

    # -- writing ------------------------------------------------------------

    @contextlib.contextmanager
    def write(self, actor: str | None = None) -> Iterator[WriteTransaction]:
        """Run the body as one write transaction (BEGIN IMMEDIATE ... COMMIT).

        On success the :class:`Change` is published to subscribers, on the
        writing thread, after the commit. On any exception the transaction is
        rolled back and nothing is published.
        """
        server = self.dialect == "postgresql"
        with self._write_lock:
            who = self.identity
            # Signed in to a lab with users: the audit log names the user, whatever the caller says.
            txn = WriteTransaction(self._writer, who.name if who and who.role is not None else actor or current_actor())
            if server:
                self._writer.execute("BEGIN")
            else:
                self._writer.execute("BEGIN IMMEDIATE")
            try:
                if server:
                    # One writer at a time on the server, as SQLite's BEGIN IMMEDIATE (core.catalog.pg).
                    self._writer.execute("SELECT pg_advisory_xact_lock(?)", (pg.WRITE_LOCK,))
                # Inside the transaction: nobody else can move the counters
                # between these two reads, so their difference is this write.
                before = _counters(self._writer)
                # What other processes committed since we last looked belongs
                # to them: kept for outside_change(), not claimed as ours.
                self._outside_pending |= _changed(self._seen, before)
                self._seen = before
                yield txn
                after = _counters(self._writer)
                changed = _changed(before, after)
                if who is not None:
                    # What the write changed, against what the user's role may change (a server
                    # checks its grants as well): refused writes are rolled back whole.
                    rights.check_write(who, changed)
                if server and changed:
                    # Delivered to the other stations at COMMIT, not at all on ROLLBACK.
                    self._writer.execute("SELECT pg_notify(?, ?)",
                                         (pg.NOTIFY_CHANNEL, ",".join(sorted(changed))))
            except sqlite3.IntegrityError as exc:
                # A rule the schema enforces (published plans, split pools,
                # the append-only audit log): the trigger's message is for the user.
                self._writer.execute("ROLLBACK")
                raise CatalogError(f"the catalog refused the change: {exc}") from exc
            except BaseException:
                self._writer.execute("ROLLBACK")
                raise
            else:
                self._writer.execute("COMMIT")
                self._seen = after
        change = Change(changed, "; ".join(txn.summary), txn.audit_entries)
        txn.change = change  # type: ignore[attr-defined]
        if not change.empty:
            for callback in list(self._subscribers):
                callback(change)

    def subscribe(self, callback: Callable[[Change], None]) -> Callable[[], None]:
        """Call ``callback(change)`` after each committed write; returns an unsubscribe function."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    # -- housekeeping -------------------------------------------------------

    def integrity_check(self) -> str:
        """'ok', or SQLite's list of problems. A server keeps its own storage whole (and its
        constraints always hold): there the check is that it answers at the head schema."""
        if self.dialect == "postgresql":
            missing = set(migration_names()) - set(self.applied_migrations())
            return "ok" if not missing else f"migrations not applied: {sorted(missing)}"
        return self.reader().execute("PRAGMA integrity_check").fetchone()[0]

    def close(self) -> None:
        """Close the catalog. This thread's reader and the writer are closed; another thread's reader
        may be in the middle of a query (a background read the window started), and closing a
        connection under a running statement crashes the process: those are interrupted (their query
        raises) and left for the garbage collector, and no thread gets a reader any more."""
        me = threading.get_ident()
        with self._readers_lock:
            self._closed = True
            for ident, conn in self._readers.items():
                if ident == me:
                    conn.close()
                else:
                    conn.interrupt()
                    self._retired.append(conn)
            self._readers.clear()
        with self._write_lock:
            if self._writer is not None:
                self._writer.close()
            if self._listener is not None:
                self._listener.close()

    def __enter__(self) -> "Catalog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connection_of(src: "Catalog | WriteTransaction") -> sqlite3.Connection:
    """The connection to read with: the transaction's own inside a write, else this thread's reader."""
    return src.conn if isinstance(src, WriteTransaction) else src.reader()


def dict_rows(src: "Catalog | WriteTransaction", sql: str, params: Any = ()) -> list[dict[str, Any]]:
    """The rows of ``sql`` as dicts keyed by column name."""
    cursor = connection_of(src).execute(sql, tuple(params))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


# SQLite's limit on bound parameters is 32766 (3.32+); id lists go in chunks well below it.
ID_CHUNK = 900


def id_chunks(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    """``ids`` in slices small enough for one ``IN (?, ...)`` each."""
    for start in range(0, len(ids), ID_CHUNK):
        yield ids[start:start + ID_CHUNK]


def placeholders(n: int) -> str:
    """``?, ?, ...`` for ``n`` bound parameters."""
    return ", ".join("?" * n)
