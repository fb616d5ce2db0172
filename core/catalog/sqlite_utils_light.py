"""Import sqlite-utils without the pandas/numpy it pulls in when they are installed.

sqlite-utils imports pandas and numpy at import time (about 0.25 s) only to
map their scalar types when inserting; XLab writes its own SQL and uses
sqlite-utils for ``Database`` and ``Migrations`` alone. Hiding the two during
that import keeps the window's and the CLI's start fast; a later real import
of pandas or numpy is unaffected.
"""

from __future__ import annotations

import sys

_HIDDEN = ("pandas", "numpy")


def _import():
    hidden = [name for name in _HIDDEN if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # makes `import name` raise ImportError
    try:
        import sqlite_utils
        from sqlite_utils.migrations import Migrations
    finally:
        for name in hidden:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
    return sqlite_utils.Database, Migrations


Database, Migrations = _import()
