"""Shared fixtures. Every test runs against its own lab folder and settings.

Catalog backends: a test module marked ``pytestmark = pytest.mark.both_backends`` (the catalog
and service suites) runs each test that uses a lab fixture (``empty_lab``, ``demo_lab``,
``new_catalog``, ``new_lab_catalog``) twice, on a catalog file ("sqlite") and on a new database
of the test PostgreSQL server ("postgresql", tests.pg: skipped with one reason when there is no
server). ``XLAB_TEST_CATALOG=sqlite|postgresql`` runs every module's lab fixtures on that one
backend instead: ``XLAB_TEST_CATALOG=postgresql pytest tests/core`` puts the whole core suite
on the server.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from hypothesis import settings as hypothesis_settings  # noqa: E402

# No per-example deadline: on a loaded 2-core machine a slow example is not a
# failure (the suites guard real hangs with their own time limits).
hypothesis_settings.register_profile("xlab", deadline=None)
hypothesis_settings.load_profile("xlab")

from core.demo import create_demo_lab  # noqa: E402
from core.lab import Lab  # noqa: E402
from core.resources import resource  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
BACKENDS = ("sqlite", "postgresql")


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "both_backends: the module's lab fixtures run on a SQLite file and on "
                                       "a PostgreSQL server database (tests/conftest.py)")


def _forced_backend() -> str | None:
    forced = os.environ.get("XLAB_TEST_CATALOG") or None
    if forced is not None and forced not in BACKENDS:
        raise pytest.UsageError(f"XLAB_TEST_CATALOG={forced}: use one of {', '.join(BACKENDS)}")
    return forced


def pytest_generate_tests(metafunc) -> None:
    if "catalog_backend" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_backends") \
            and _forced_backend() is None:
        # Module scope: a module's SQLite tests run first, then its server tests, so a module's
        # own fixtures (a seeded lab) are made once per backend.
        metafunc.parametrize("catalog_backend", BACKENDS, indirect=True, scope="module")


@pytest.fixture(scope="module")
def catalog_backend(request) -> str:
    """"sqlite" or "postgresql": the backend this test's catalogs use."""
    backend = getattr(request, "param", None) or _forced_backend() or "sqlite"
    if backend == "postgresql":
        from tests.pg import postgres_url, skip_reason

        if postgres_url() is None:
            pytest.skip(skip_reason())
    return backend


@pytest.fixture(autouse=True)
def _isolated_user(tmp_path_factory, monkeypatch):
    """Keep tests off the user's real lab and settings."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XLAB_LAB", str(home / "default-lab"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    # Who signs in (core.users): a command run in-process with --user hands it down in these.
    for name in ("XLAB_USER", "XLAB_PIN", "XLAB_STATION"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def new_catalog(catalog_backend, tmp_path):
    """``new_catalog(name="catalog", migrated=True)``: where a new catalog goes on this test's
    backend: a file path under tmp_path, or the URL of a new server database (cloned from the
    migrated template, or empty with ``migrated=False``), dropped after the test."""
    with contextlib.ExitStack() as databases:
        def make(name: str = "catalog", *, migrated: bool = True) -> Path | str:
            if catalog_backend == "sqlite":
                return tmp_path / f"{name}.sqlite"
            from tests.pg import fresh_database

            return databases.enter_context(fresh_database("xlab_test", migrated=migrated))

        yield make


@pytest.fixture
def new_lab_catalog(catalog_backend, new_catalog):
    """``new_lab_catalog()``: the ``catalog`` argument of a new lab's ``Lab.init``: None (its own
    file) on SQLite, a new database's URL on the server."""
    return lambda: None if catalog_backend == "sqlite" else new_catalog()


def make_lab(root: Path, catalog: str | None) -> Path:
    """A new lab folder whose catalog is ``catalog`` (None: its own file)."""
    Lab.init(root, catalog=catalog).close()
    return root


@pytest.fixture
def empty_lab(tmp_path, new_lab_catalog) -> Lab:
    lab = Lab.init(tmp_path / "lab", catalog=new_lab_catalog())
    yield lab
    lab.close()


@pytest.fixture(scope="session")
def _server_demo_lab(tmp_path_factory):
    """``make()``: the demo lab on the test server, made on first use in a run: each server test's
    demo lab is a copy of its folder with a database cloned from its one (making a demo lab on the
    server takes a second and a half, cloning a tenth)."""
    from tests.pg import fresh_database

    made: list[tuple[Path, str]] = []
    with contextlib.ExitStack() as databases:
        def make() -> tuple[Path, str]:
            if not made:
                root = tmp_path_factory.mktemp("server-demo") / "demo"
                url = databases.enter_context(fresh_database("xlab_test_demo", migrated=True))
                create_demo_lab(make_lab(root, url), plan_sessions=False).close()
                made.append((root, url))
            return made[0]

        yield make


@pytest.fixture
def demo_lab(tmp_path, catalog_backend, _server_demo_lab) -> Lab:
    """The demo lab's inventory and published plan, no capture sessions yet."""
    with contextlib.ExitStack() as databases:
        if catalog_backend == "sqlite":
            lab = create_demo_lab(tmp_path / "demo", plan_sessions=False)
        else:
            from tests.pg import fresh_database

            template_root, template_url = _server_demo_lab()
            url = databases.enter_context(fresh_database("xlab_test", template=template_url))
            root = tmp_path / "demo"
            shutil.copytree(template_root, root)
            (root / "catalog.url").write_text(url + "\n", encoding="utf-8")
            lab = Lab.open(root)
        yield lab
        lab.close()


@pytest.fixture
def demo_inventory_file() -> Path:
    return resource("demo", "inventory.yaml")
