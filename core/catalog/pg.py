"""The catalog on a PostgreSQL server: connections that speak to the stores as
sqlite3's do.

The stores write SQLite's SQL with ``?`` and ``:name`` parameters; most of it is
standard and runs on both backends as written. What differs is translated
here, once per distinct statement (cached): the parameter style, IFNULL,
group_concat, SQLite's two-argument MAX/MIN, ``INSERT OR IGNORE``, the
``temp.`` schema, ``json_each`` over a parameter, and ``cursor.lastrowid``
(an INSERT into a table with an identity ``id`` gets ``RETURNING id``).
What has no translation (PRAGMAs, SQLite's backup API) is kept out of the
server's path by the callers (``Catalog.dialect``).

Rows come back as :class:`Row`, a tuple that also answers ``row["name"]``
like sqlite3.Row; NUMERIC results (PostgreSQL's SUM of integers) come back as
int when whole, else float, as SQLite gives them.

Concurrency: a write transaction takes one advisory lock (:data:`WRITE_LOCK`)
right after BEGIN, so writers across every station run one at a time, as
SQLite's BEGIN IMMEDIATE made them: the audit chain (read the last entry,
append the next), session holds, replanning and the tallies rely on it.
Readers never take it (autocommit, read-only), and never wait for a writer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from core.errors import CatalogError

# pg_advisory_xact_lock key of the catalog's one writer ("XLab" in ASCII).
WRITE_LOCK = 0x584C6162
NOTIFY_CHANNEL = "xlab_changes"
CONNECT_TIMEOUT_S = 10


def is_url(target: object) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def safe_url(url: str) -> str:
    """``url`` without its password, for messages."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


class Row(tuple):
    """A result row: a tuple that also answers ``row["column"]`` and ``keys()``."""

    _names: tuple[str, ...] = ()

    def __getitem__(self, key):  # noqa: ANN001 - int, slice or column name
        if isinstance(key, str):
            try:
                return tuple.__getitem__(self, self._names.index(key))
            except ValueError:
                raise IndexError(f"no such column: {key}") from None
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


def _row_factory(cursor: Any):
    description = cursor.description
    if description is None:
        return tuple
    names = tuple(d.name for d in description)
    row_type = type("Row", (Row,), {"_names": names, "__slots__": ()})
    return lambda values: row_type(values)


# -- SQL translation ------------------------------------------------------------

_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")
_MASK = re.compile("\x01(\\d+)\x02")


@lru_cache(maxsize=4096)
def translate(sql: str, params: str) -> str:
    """SQLite-flavoured ``sql`` as psycopg runs it on PostgreSQL. ``params``: "qmark" (``?``),
    "named" (``:name``) or "none" (no parameters: psycopg then sends the text as it is, so ``%``
    stays single). String literals and quoted names are left alone (a ``?`` or ``:x`` in them is
    text), except that ``%`` is doubled everywhere when there are parameters, as psycopg wants."""
    from core.catalog.pg_schema import _rewrite_calls, expression, qualify_upsert

    if re.match(r"\s*BEGIN\s+DEFERRED\s*$", sql, re.IGNORECASE):
        # SQLite's read transaction: every statement sees the same commit.
        return "BEGIN ISOLATION LEVEL REPEATABLE READ"
    quoted: list[str] = []

    def mask(m: re.Match) -> str:
        quoted.append(m.group(0))
        return f"\x01{len(quoted) - 1}\x02"

    text = _QUOTED.sub(mask, sql)
    if params != "none":
        text = text.replace("%", "%%")
    if params == "named":
        text = re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", text)
    elif params == "qmark":
        text = text.replace("?", "%s")
    text = re.sub(r"\btemp\.", "pg_temp.", text)
    text = expression(text)
    text = _rewrite_calls(text, "group_concat", _group_concat)
    text = _rewrite_calls(text, "CAST", _cast)
    # SQLite's CROSS JOIN with ON is an inner join whose order the planner keeps: an inner join here.
    text = re.sub(r"\bCROSS\s+JOIN\s+(\w+(?:\s+(?:AS\s+)?(?!ON\b)\w+)?)\s+ON\b", r"JOIN \1 ON", text,
                  flags=re.IGNORECASE)
    text = re.sub(r"\bjson_each\s*\(\s*(%s|%\(\w+\)s)\s*\)(\s+(?:AS\s+)?(\w+))?", _json_each, text,
                  flags=re.IGNORECASE)
    if re.match(r"\s*INSERT\s+OR\s+IGNORE\b", text, re.IGNORECASE):
        text = re.sub(r"INSERT\s+OR\s+IGNORE", "INSERT", text, count=1, flags=re.IGNORECASE)
        text = text.rstrip().rstrip(";") + " ON CONFLICT DO NOTHING"
    text = qualify_upsert(text)
    escape = (lambda q: q.replace("%", "%%")) if params != "none" else (lambda q: q)
    return _MASK.sub(lambda m: escape(quoted[int(m.group(1))]), text)


_NOT_ALIASES = {"WHERE", "CROSS", "JOIN", "INNER", "LEFT", "ON", "GROUP", "ORDER", "LIMIT", "UNION", "USING"}


def _json_each(m: re.Match) -> str:
    """``json_each(?)`` of an array of ids as a subquery; PostgreSQL wants it named (SQLite did not)."""
    alias = m.group(3)
    rows = f"(SELECT CAST(j.value AS BIGINT) AS value FROM json_array_elements_text(CAST({m.group(1)} AS json)) j)"
    if alias is not None and alias.upper() not in _NOT_ALIASES:
        return f"{rows}{m.group(2)}"
    return f"{rows} AS json_each{m.group(2) or ''}"


def _group_concat(args: list[str]) -> str:
    first = args[0].strip()
    distinct = ""
    if first.upper().startswith("DISTINCT "):
        distinct, first = "DISTINCT ", first[9:]
    sep = args[1] if len(args) > 1 else "','"
    return f"string_agg({distinct}CAST({first} AS TEXT), {sep})"


def _cast(args: list[str]) -> str | None:
    """SQLite's casts whose meaning PostgreSQL's differ from: text AS BLOB is its UTF-8 bytes; a real
    AS INTEGER is truncated towards zero (PostgreSQL rounds). Other casts are left as they are."""
    whole = ", ".join(args)
    m = re.match(r"(?is)\s*(.*\S)\s+AS\s+(BLOB|INTEGER)\s*$", whole)
    if m is None:
        return None
    value, kind = m.group(1), m.group(2).upper()
    return f"convert_to({value}, 'UTF8')" if kind == "BLOB" else f"CAST(TRUNC({value}) AS BIGINT)"


_INSERT_VALUES = re.compile(r"\s*INSERT\s+INTO\s+(\w+)\s*(?:\([^()]*\))?\s*VALUES\b", re.IGNORECASE)


# -- connections ------------------------------------------------------------------

def connect(url: str, *, read_only: bool = False) -> "Connection":
    """A connection to the catalog at ``url``, with a message a lab manager can act on when there is none."""
    return Connection(_raw_connection(url, read_only), url, read_only)


def _raw_connection(url: str, read_only: bool) -> Any:
    import psycopg

    try:
        raw = psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S, row_factory=_row_factory)
    except psycopg.OperationalError as exc:
        raise CatalogError(f"cannot reach the lab's catalog server {safe_url(url)}: {_first_line(exc)} "
                           f"({_advice(exc)})") from exc
    _register_loaders(raw)
    if read_only:
        raw.execute("SET default_transaction_read_only = on")
    return raw


def _advice(exc: BaseException) -> str:
    """What a lab manager checks when the server refused a connection, from libpq's message."""
    text = str(exc).lower()
    if "password" in text:
        return ("the server wants a password for this user: set PGPASSWORD, or put it in the user's "
                "password file (~/.pgpass, or %APPDATA%\\postgresql\\pgpass.conf on Windows)")
    if "does not exist" in text and "database" in text:
        return "the database is not on that server: check its name, or create it (docs/lab-server.md)"
    if "does not exist" in text and "role" in text:
        return "the server has no such user: check the user name, or create the role (docs/lab-server.md)"
    if "no pg_hba.conf entry" in text:
        return "the server does not let this station in: add it to the server's pg_hba.conf (docs/lab-server.md)"
    return "is the server running, and are its address and port right?"


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _register_loaders(raw: Any) -> None:
    from psycopg.adapt import Loader

    class NumberLoader(Loader):
        # SUM and AVG of integers are NUMERIC on PostgreSQL; SQLite gives int or float.
        def load(self, data):  # noqa: ANN001 - psycopg's buffer
            text = bytes(data).decode()
            value = float(text)
            return int(text) if "." not in text and "e" not in text.lower() and "N" not in text else value

    raw.adapters.register_loader("numeric", NumberLoader)


class Cursor:
    """What a store gets back from ``execute``: fetchone/fetchall/fetchmany, iteration,
    description, rowcount and lastrowid, as sqlite3's cursor gives them."""

    def __init__(self, raw_cursor: Any, lastrowid: int | None = None):
        # None: a statement not sent (a ROLLBACK with nothing to undo), which has no rows.
        self._cursor = raw_cursor
        self.lastrowid = lastrowid

    def _rows(self) -> bool:
        return self._cursor is not None and self._cursor.description is not None

    @property
    def description(self):
        return self._cursor.description if self._cursor is not None else None

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount if self._cursor is not None else -1

    def fetchone(self):
        return self._cursor.fetchone() if self._rows() else None

    def fetchall(self) -> list:
        return self._cursor.fetchall() if self._rows() else []

    def fetchmany(self, size: int = 1) -> list:
        return self._cursor.fetchmany(size) if self._rows() else []

    def __iter__(self):
        return iter(self._cursor) if self._rows() else iter(())

    def close(self) -> None:
        if self._cursor is not None:
            self._cursor.close()


class Connection:
    """A psycopg connection with sqlite3's ``execute``/``executemany`` (autocommit: transactions are
    begun and ended by the SQL the catalog sends, BEGIN ... COMMIT).

    A connection the server dropped (a restart, the network) fails the statement it was running with
    a :class:`CatalogError` saying so; the next statement outside a transaction connects again (a
    transaction cut off is lost whole, as the server rolled it back)."""

    def __init__(self, raw: Any, url: str, read_only: bool = False):
        self.raw = raw
        self.url = url
        self.read_only = read_only
        self._identity_tables: set[str] | None = None
        self._in_transaction = False
        self._cut_off = False  # the connection was lost inside a transaction, not rolled back yet
        self.reconnects = 0

    @property
    def backend_pid(self) -> int:
        return self.raw.info.backend_pid

    @property
    def lost(self) -> bool:
        return self.raw.closed or self.raw.broken

    def schema_changed(self) -> None:
        """Tables were created or altered (a migration): what has an identity id is read again."""
        self._identity_tables = None

    def _identity(self) -> set[str]:
        if self._identity_tables is None:
            rows = self.raw.execute("SELECT table_name FROM information_schema.columns WHERE "
                                    "table_schema = current_schema() AND column_name = 'id' "
                                    "AND is_identity = 'YES'").fetchall()
            self._identity_tables = {r[0] for r in rows}
        return self._identity_tables

    def _ready(self, sql: str) -> bool:
        """Whether to send ``sql`` (False: a ROLLBACK after the connection was lost: the server
        undid the transaction already). Connects again when the connection was lost outside a
        transaction; inside one, every statement up to the ROLLBACK is refused (nothing may run
        outside the transaction it belongs to)."""
        verb = sql.lstrip()[:8].upper()
        if verb.startswith("ROLLBACK"):
            self._in_transaction = self._cut_off = False
            return not self.lost
        if self._cut_off:
            raise CatalogError(f"lost the connection to the lab's catalog server {safe_url(self.url)} "
                               "in the middle of a change; nothing of it was kept")
        if self.lost:
            self.raw = _raw_connection(self.url, self.read_only)
            self.reconnects += 1
        if verb.startswith("BEGIN"):
            self._in_transaction = True
        elif verb.startswith(("COMMIT", "END")):
            self._in_transaction = False
        return True

    def execute(self, sql: str, params: Any = ()) -> Cursor:
        if not self._ready(sql):
            return Cursor(None)
        named = isinstance(params, dict)
        text = translate(sql, ("named" if named else "qmark") if params else "none")
        # sqlite3's lastrowid, for an INSERT ... VALUES into a table with an identity id.
        returning = False
        m = _INSERT_VALUES.match(text)
        if m is not None and m.group(1) in self._identity() and not re.search(r"\bRETURNING\b", text, re.IGNORECASE):
            text = text.rstrip().rstrip(";") + " RETURNING id"
            returning = True
        cursor = self.raw.cursor()
        try:
            cursor.execute(text, params if params else None)
        except Exception as exc:
            raise self._error(exc, sql) from exc
        if returning:
            row = cursor.fetchone()
            return Cursor(cursor, row[0] if row else None)
        return Cursor(cursor)

    def executemany(self, sql: str, rows: Any) -> Cursor:
        self._ready(sql)
        rows = list(rows)
        named = bool(rows) and isinstance(rows[0], dict)
        cursor = self.raw.cursor()
        try:
            cursor.executemany(translate(sql, "named" if named else "qmark"), rows)
        except Exception as exc:
            raise self._error(exc, sql) from exc
        return Cursor(cursor)

    def interrupt(self) -> None:
        self.raw.cancel_safe()

    def close(self) -> None:
        self.raw.close()

    def _error(self, exc: BaseException, sql: str) -> BaseException:
        """psycopg's errors as the catalog's callers know them from sqlite3."""
        import sqlite3

        import psycopg
        from psycopg import errors

        if isinstance(exc, psycopg.IntegrityError):
            # The catalog's write() turns it into "the catalog refused the change: ...", one path for both.
            return sqlite3.IntegrityError(_first_line(exc))
        if not isinstance(exc, psycopg.OperationalError):
            return exc  # a statement the server cannot run: a bug, told as the server says it
        where = safe_url(self.url)
        if self.lost:
            verb = sql.lstrip()[:8].upper()
            if verb.startswith(("COMMIT", "END")):
                kept = "whether the change was kept is not known: look before doing it again; "
            elif self._in_transaction:
                kept = "nothing of the change was kept; "
                # The server undid the transaction; what the caller sends before its ROLLBACK is refused.
                self._cut_off = not verb.startswith("BEGIN")
            else:
                kept = ""
            self._in_transaction = False
            return CatalogError(f"lost the connection to the lab's catalog server {where} ({_first_line(exc)}); "
                                f"{kept}XLab connects again at the next action (is the server running?)")
        if isinstance(exc, errors.QueryCanceled):
            return CatalogError(f"interrupted: the read from {where} was stopped ({_first_line(exc)})")
        if isinstance(exc, errors.DiskFull):
            return CatalogError(f"the lab's catalog server {where} has no space left on its disk "
                                f"({_first_line(exc)})")
        return CatalogError(f"the lab's catalog server {where} failed: {_first_line(exc)}")
