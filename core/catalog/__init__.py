"""The catalog: every SQL statement XLab runs lives below this package.

Other core modules call the functions here; nothing outside ``core.catalog``
opens a database connection. Keeping SQL in one layer is what lets a lab move
from the embedded SQLite file to a server database later.
"""

from core.catalog.db import Catalog, Change, WriteTransaction

__all__ = ["Catalog", "Change", "WriteTransaction"]
