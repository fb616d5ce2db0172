"""How the catalog's database reports trouble, for code outside the catalog
layer that must tell a full disk from a broken file (without knowing SQL).

A SQLite catalog raises sqlite3's errors; a server catalog's connection layer
(core.catalog.pg) raises :class:`CatalogError` with psycopg's error as its
cause. Both are looked for along the chain of causes.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator

# SQLSTATE class 53 "insufficient resources": 53100 disk_full, 53200 out_of_memory.
_PG_DISK_FULL = "53100"


def _causes(exc: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__


def _is_server_error(exc: BaseException) -> bool:
    psycopg = sys.modules.get("psycopg")  # never imported here: a server catalog has imported it
    return psycopg is not None and isinstance(exc, psycopg.Error)


def is_catalog_error(exc: BaseException) -> bool:
    """Whether ``exc`` came from the catalog's database (a file's or the server's)."""
    return any(isinstance(e, sqlite3.Error) or _is_server_error(e) for e in _causes(exc))


def catalog_disk_full(exc: BaseException) -> bool:
    """Whether the catalog's database refused a write for lack of disk space (the file's disk,
    or the server's)."""
    for e in _causes(exc):
        if isinstance(e, sqlite3.OperationalError) and (
                getattr(e, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(e)):
            return True
        if _is_server_error(e) and getattr(e, "sqlstate", None) == _PG_DISK_FULL:
            return True
    return False
