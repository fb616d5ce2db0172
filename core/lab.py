"""A lab folder: the catalog file, the image store and the scanners' drop folders.

A lab of several stations keeps its catalog on the lab's PostgreSQL server
instead: the folder (on a share every station mounts) then holds
``catalog.url``, the server database's address (never a password: libpq takes
it from PGPASSWORD or its password file), in place of ``catalog.sqlite``.

The folder is named by ``--lab DIR``, else ``$XLAB_LAB``, else a per-user data
folder (platformdirs), so the GUI and the CLI find the same lab by default.

Each station of a lab has a name (:func:`station_name`): ``xlab --station NAME``
or ``$XLAB_STATION``, else the host name, so that several ``xlab`` processes on
one machine can act as several stations.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from core.catalog import Catalog
from core.errors import LabNotFoundError

CATALOG_FILE = "catalog.sqlite"
CATALOG_URL_FILE = "catalog.url"


def station_name() -> str:
    """This station's name (who holds a capture session where): ``$XLAB_STATION`` (set by
    ``xlab --station NAME``; ``$XLAB_WORKSTATION``, its older name, is still read), else the host name."""
    for variable in ("XLAB_STATION", "XLAB_WORKSTATION"):
        name = os.environ.get(variable, "").strip()
        if name:
            return name
    return socket.gethostname() or "this station"


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
    def catalog_url_file(self) -> Path:
        return self.root / CATALOG_URL_FILE

    def catalog_target(self) -> Path | str:
        """What the lab's catalog is: the server database the folder names, else its file."""
        if self.catalog_url_file.exists():
            return self.catalog_url_file.read_text(encoding="utf-8").strip()
        return self.catalog

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
    def init(cls, root: str | Path | None = None, catalog: str | None = None) -> "Lab":
        """Create the lab folder if needed and bring its catalog to the head schema.
        ``catalog``: a ``postgresql://`` URL, to keep the catalog on the lab's server."""
        from core.catalog.pg import is_url, safe_url

        paths = LabPaths(Path(root) if root else default_lab_dir())
        if catalog is not None:
            if not is_url(catalog):
                raise LabNotFoundError(f"--catalog {catalog}: give the server database as postgresql://USER@HOST/DB")
            if paths.catalog.exists():
                raise LabNotFoundError(f"{paths.root} already has its catalog in {CATALOG_FILE}; to move it onto "
                                       f"the server: 'xlab catalog migrate-to {safe_url(catalog)} --lab {paths.root}'")
            if safe_url(catalog) != catalog:
                raise LabNotFoundError("leave the password out of the catalog's address (it would be written into "
                                       "the lab folder); set PGPASSWORD or use libpq's password file")
        for folder in (paths.root, paths.store, paths.drop_root):
            folder.mkdir(parents=True, exist_ok=True)
        if catalog is not None:
            opened = Catalog.open(catalog, create=True)
            paths.catalog_url_file.write_text(catalog + "\n", encoding="utf-8")
            return cls._signed_in(paths, opened, None, None)
        return cls._signed_in(paths, Catalog.open(paths.catalog_target(), create=True), None, None)

    @classmethod
    def open(cls, root: str | Path | None = None, *, user: str | None = None, pin: str | None = None) -> "Lab":
        """Open an existing lab, signed in as ``user`` (default $XLAB_USER, else your login; core.users)
        with ``pin`` (default $XLAB_PIN; on a server catalog, the user's password); raise
        :class:`LabNotFoundError` if there is none, core.catalog.rights.PermissionDeniedError if the
        sign-in is refused."""
        paths = LabPaths(Path(root) if root else default_lab_dir())
        if not paths.catalog.exists() and not paths.catalog_url_file.exists():
            raise LabNotFoundError(
                f"no XLab lab at {paths.root}; create one with 'xlab init --lab {paths.root}' "
                "or 'xlab demo'"
            )
        return cls._signed_in(paths, Catalog.open(with_user(paths.catalog_target(), user, pin), create=False),
                              user, pin)

    @classmethod
    def _signed_in(cls, paths: LabPaths, catalog: Catalog, user: str | None, pin: str | None) -> "Lab":
        from core.users import sign_in

        lab = cls(paths, catalog)
        try:
            sign_in(lab, user, pin)
        except BaseException:
            lab.close()
            raise
        return lab

    def close(self) -> None:
        self.catalog.close()

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def with_user(target: Path | str, user: str | None, pin: str | None) -> Path | str:
    """The catalog ``target`` to connect to as ``user``: on a server, the address with that user
    (default $XLAB_USER) and password (default $XLAB_PIN; else libpq finds it: $PGPASSWORD or the
    password file); a file is itself."""
    from urllib.parse import quote, urlsplit, urlunsplit

    user = user or os.environ.get("XLAB_USER")
    if not isinstance(target, str) or not user:
        return target
    pin = pin if pin is not None else os.environ.get("XLAB_PIN")
    parts = urlsplit(target)
    host = parts.netloc.rsplit("@", 1)[-1]
    login = quote(user, safe="") + (":" + quote(pin, safe="") if pin else "")
    return urlunsplit(parts._replace(netloc=f"{login}@{host}"))


def move_catalog_to_server(root: str | Path | None, url: str):
    """Copy the lab's catalog file into the new server database ``url`` (core.catalog.transfer)
    and, when every table compared equal, point the lab folder at the server; the file is kept,
    renamed, so nothing writes to it again. A generator of progress; returns the report."""
    from core.catalog.pg import is_url, safe_url
    from core.catalog.transfer import migrate_to_postgres
    from core.catalog.db import utc_now

    paths = LabPaths(Path(root) if root else default_lab_dir())
    if not is_url(url):
        raise LabNotFoundError(f"{url}: give the server database as postgresql://USER@HOST/DB")
    if safe_url(url) != url:
        raise LabNotFoundError("leave the password out of the catalog's address (it would be written into "
                               "the lab folder); set PGPASSWORD or use libpq's password file")
    if paths.catalog_url_file.exists():
        raise LabNotFoundError(f"the lab at {paths.root} has its catalog on a server already "
                               f"({paths.catalog_target()})")
    if not paths.catalog.exists():
        raise LabNotFoundError(f"no XLab lab at {paths.root}")
    report = yield from migrate_to_postgres(paths.catalog, url)
    if report.ok:
        paths.catalog_url_file.write_text(url + "\n", encoding="utf-8")
        stamp = utc_now()[:19].replace(":", "")
        for suffix in ("", "-wal", "-shm"):
            old = paths.root / (CATALOG_FILE + suffix)
            if old.exists():
                old.rename(paths.root / f"{CATALOG_FILE}{suffix}.moved-to-server-{stamp}")
    return report
