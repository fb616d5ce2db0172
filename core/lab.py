"""A lab folder: the catalog file, the image store and the scanners' drop folders.

The folder is named by ``--lab DIR``, else ``$XLAB_LAB``, else a per-user data
folder (platformdirs), so the GUI and the CLI find the same lab by default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from core.catalog import Catalog
from core.errors import LabNotFoundError

CATALOG_FILE = "catalog.sqlite"


def default_lab_dir() -> Path:
    env = os.environ.get("XLAB_LAB")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("xlab", appauthor=False)) / "lab"


@dataclass(frozen=True)
class LabPaths:
    root: Path

    @property
    def catalog(self) -> Path:
        return self.root / CATALOG_FILE

    @property
    def store(self) -> Path:
        return self.root / "store"

    @property
    def drop_root(self) -> Path:
        return self.root / "drop"

    @property
    def ground_truth(self) -> Path:
        """Simulator ground truth, kept apart from anything ingest reads."""
        return self.root / "simulator" / "ground_truth"

    def drop_folder(self, scanner_name: str) -> Path:
        return self.drop_root / scanner_name


class Lab:
    """An open lab: its paths and its catalog."""

    def __init__(self, paths: LabPaths, catalog: Catalog):
        self.paths = paths
        self.catalog = catalog

    @classmethod
    def init(cls, root: str | Path | None = None) -> "Lab":
        """Create the lab folder if needed and bring its catalog to the head schema."""
        paths = LabPaths(Path(root) if root else default_lab_dir())
        for folder in (paths.root, paths.store, paths.drop_root):
            folder.mkdir(parents=True, exist_ok=True)
        return cls(paths, Catalog.open(paths.catalog, create=True))

    @classmethod
    def open(cls, root: str | Path | None = None) -> "Lab":
        """Open an existing lab; raise :class:`LabNotFoundError` if there is none."""
        paths = LabPaths(Path(root) if root else default_lab_dir())
        if not paths.catalog.exists():
            raise LabNotFoundError(
                f"no XLab lab at {paths.root}; create one with 'xlab init --lab {paths.root}' "
                "or 'xlab demo'"
            )
        return cls(paths, Catalog.open(paths.catalog, create=False))

    def close(self) -> None:
        self.catalog.close()

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
