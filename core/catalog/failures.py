"""How the catalog's database reports trouble, for code outside the catalog
layer that must tell a full disk from a broken file (without knowing SQL)."""

from __future__ import annotations

import sqlite3


def is_catalog_error(exc: BaseException) -> bool:
    """Whether ``exc`` came from the catalog's database."""
    return isinstance(exc, sqlite3.Error)


def catalog_disk_full(exc: BaseException) -> bool:
    """Whether the catalog's database refused a write for lack of disk space."""
    return isinstance(exc, sqlite3.OperationalError) and (
        getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(exc))
