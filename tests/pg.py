"""The PostgreSQL server the tests use, and fresh databases on it.

The server is the one ``$XLAB_TEST_POSTGRES`` names (a libpq URL of a database
the tests may connect to and create databases from), else the local server that
development and CI machines run (127.0.0.1:5432, trust authentication). Where
none answers, the tests that need one skip with one reason saying so.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TEMPLATE = "xlab_test_template"
# As docs/lab-server.md creates a lab's database: text sorts by its bytes, as on SQLite.
BYTE_ORDER = " TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"


def _server() -> str:
    return os.environ.get("XLAB_TEST_POSTGRES") or DEFAULT_URL


@lru_cache(maxsize=1)
def _probe() -> tuple[str | None, str]:
    url = _server()
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=2, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means: no server to test against
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, (f"no PostgreSQL server at {url} ({first}); set XLAB_TEST_POSTGRES to a server's URL "
                      "to run the PostgreSQL tests")
    return url, ""


def postgres_url() -> str | None:
    """The maintenance database's URL, or None when no server answers."""
    return _probe()[0]


def skip_reason() -> str:
    return _probe()[1]


def database_url(server: str, name: str) -> str:
    parts = urlsplit(server)
    return urlunsplit(parts._replace(path=f"/{name}"))


@lru_cache(maxsize=1)
def _template(server: str) -> str:
    """A database migrated to the head schema once per test run (per schema: its name carries the
    migrations' digest), which each test's database is cloned from."""
    import hashlib

    import psycopg

    from core.catalog import Catalog
    from core.catalog.pg_schema import postgres_migrations

    digest = hashlib.sha256(repr(postgres_migrations()).encode()).hexdigest()[:12]
    name = f"{TEMPLATE}_{digest}"
    with psycopg.connect(server, autocommit=True) as admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return name
        scratch = f"{name}_{uuid.uuid4().hex[:8]}"
        admin.execute(f'CREATE DATABASE "{scratch}"{BYTE_ORDER}')
        Catalog.open(database_url(server, scratch)).close()
        try:
            admin.execute(f'ALTER DATABASE "{scratch}" RENAME TO "{name}"')
        except psycopg.errors.DuplicateDatabase:  # another test process made it first
            admin.execute(f'DROP DATABASE "{scratch}" WITH (FORCE)')
    return name


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


@contextlib.contextmanager
def fresh_database(prefix: str = "xlab_test", server: str | None = None, *, migrated: bool = False,
                   template: str | None = None) -> Iterator[str]:
    """A new, uniquely named database, dropped after: empty, or at the head schema when
    ``migrated``, or a copy of the database at URL ``template`` (which nobody may be connected to)."""
    import psycopg

    server = server or postgres_url()
    if server is None:
        raise RuntimeError(skip_reason())
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    if template is not None:
        source = f' TEMPLATE "{database_name(template)}"'
    else:
        source = f' TEMPLATE "{_template(server)}"' if migrated else BYTE_ORDER
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"{source}')
    try:
        yield database_url(server, name)
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
