"""A SQLite lab moved onto a PostgreSQL server and a server catalog taken back into one file
(core.catalog.transfer, ``xlab catalog migrate-to`` / ``export-sqlite``), against a real server."""

from __future__ import annotations

import json
import sqlite3

import pytest

from core.audit.chain import verify_chain
from core.catalog import Catalog
from core.catalog.transfer import _sqlite_columns, _sqlite_digest, _sqlite_tables, export_to_sqlite, migrate_to_postgres
from core.demo import create_demo_lab
from core.errors import CatalogError
from core.progress import run_to_end
from core.resources import resource
from tests.pg import fresh_database, postgres_url, skip_reason

pytestmark = pytest.mark.skipif(postgres_url() is None, reason=skip_reason())


@pytest.fixture(scope="module")
def source_lab(tmp_path_factory):
    """A lab with history in most tables: inventory, a published plan, capture sessions, images,
    ground-truth labels, a frozen test set and its 1:1 train set, audit entries."""
    root = tmp_path_factory.mktemp("transfer") / "lab"
    lab = create_demo_lab(root, starter_datasets=True)
    path = lab.paths.catalog
    lab.close()
    return path


def _digests(path) -> dict:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {t: _sqlite_digest(conn, t, _sqlite_columns(conn, t)) for t in _sqlite_tables(conn)}
    finally:
        conn.close()


def test_a_lab_goes_to_the_server_and_back_unchanged(source_lab, tmp_path):
    before = _digests(source_lab)
    assert before["images"][0] > 0 and before["annotations"][0] > 0 and before["audit_log"][0] > 0
    with fresh_database("xlab_transfer") as url:
        report = run_to_end(migrate_to_postgres(source_lab, url))
        assert report.ok, report.summary()
        assert report.counts["images"] == before["images"][0]
        assert report.counts["audit_log"] == before["audit_log"][0]
        with Catalog.open(url, create=False) as server:
            assert run_to_end(verify_chain(server)).ok
            # New rows continue after the copied ids (identity sequences moved on).
            max_id = server.query_one("SELECT MAX(id) FROM luggage_types")[0]
            with server.write("tester") as txn:
                txn.execute("INSERT INTO luggage_types (name, description) VALUES ('crate', 'after the move')")
            assert server.query_one("SELECT id FROM luggage_types WHERE name = 'crate'")[0] > max_id
        back = tmp_path / "back.sqlite"
        report = run_to_end(export_to_sqlite(url, back))
        assert report.ok, report.summary()
    after = _digests(back)
    changed = {t for t in before if before[t] != after[t]}
    assert changed == {"luggage_types", "change_counters"}  # only the row written on the server
    with Catalog.open(back, create=False) as copy:
        assert copy.integrity_check() == "ok"
        assert run_to_end(verify_chain(copy)).ok
        # The copy's triggers are back: a new image row is tallied as before.
        assert copy.query_one("SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger'")[0] > 20


def test_the_server_database_must_be_empty(source_lab):
    with fresh_database("xlab_transfer") as url:
        assert run_to_end(migrate_to_postgres(source_lab, url)).ok
        with pytest.raises(CatalogError, match="already holds data"):
            run_to_end(migrate_to_postgres(source_lab, url))


def test_a_stopped_move_leaves_the_server_catalog_empty(source_lab):
    with fresh_database("xlab_transfer") as url:
        steps = migrate_to_postgres(source_lab, url)
        for _ in range(3):
            next(steps)
        steps.close()
        with Catalog.open(url, create=False) as server:
            assert server.query_one("SELECT COUNT(*) FROM images")[0] == 0
            assert server.query_one("SELECT COUNT(*) FROM audit_log")[0] == 0
        # and the move can be made again
        assert run_to_end(migrate_to_postgres(source_lab, url)).ok


def test_an_export_never_writes_over_a_file(source_lab, tmp_path):
    taken = tmp_path / "taken.sqlite"
    taken.write_bytes(b"someone's file")
    with fresh_database("xlab_transfer") as url:
        run_to_end(migrate_to_postgres(source_lab, url))
        with pytest.raises(CatalogError, match="already exists"):
            run_to_end(export_to_sqlite(url, taken))
    assert taken.read_bytes() == b"someone's file"


def test_the_commands_move_a_lab_onto_the_server_and_back(source_lab, tmp_path):
    import shutil

    from tests.core.test_cli import xlab

    lab = tmp_path / "lab"
    shutil.copytree(source_lab.parent, lab)
    before = json.loads(xlab("quota", "status", "--json", lab=lab).stdout)
    with fresh_database("xlab_transfer") as url:
        out = xlab("catalog", "migrate-to", url, lab=lab).stdout
        assert "every table's rows compared equal" in out
        assert (lab / "catalog.url").read_text().strip() == url and not (lab / "catalog.sqlite").exists()
        # The same lab, now on the server, answers the same.
        assert json.loads(xlab("quota", "status", "--json", lab=lab).stdout) == before
        xlab("audit", "verify", lab=lab)  # exit 0: the chain came across whole
        again = xlab("catalog", "migrate-to", url, lab=lab, check=False)
        assert again.returncode == 2 and "on a server already" in again.stderr
        out = xlab("catalog", "export-sqlite", tmp_path / "copy.sqlite", lab=lab).stdout
        assert "compared equal" in out
    assert _digests(tmp_path / "copy.sqlite") == _digests(source_lab)


def test_init_puts_a_new_lab_on_the_server(tmp_path):
    from tests.core.test_cli import xlab

    lab = tmp_path / "lab"
    with fresh_database("xlab_init") as url:
        assert "lab ready" in xlab("init", "--lab", lab, "--catalog", url).stdout
        assert (lab / "catalog.url").exists() and not (lab / "catalog.sqlite").exists()
        out = xlab("inventory", "import", resource("demo", "inventory.yaml"), "--json", lab=lab).stdout
        assert json.loads(out)["threat_items"]["created"] == 60
        assert "v1: draft" in xlab("quota", "plan", resource("demo", "plan.yaml"), lab=lab).stdout
        assert "v1: published" in xlab("quota", "publish", "demo-test-set", lab=lab).stdout
        bad = xlab("init", "--lab", tmp_path / "other", "--catalog", url.replace("postgres@", "postgres:secret@"),
                   check=False)
        assert bad.returncode == 2 and "password" in bad.stderr


def test_a_server_lab_backs_up_restores_and_verifies(source_lab, tmp_path):
    import shutil

    from tests.core.test_cli import xlab

    lab = tmp_path / "lab"
    shutil.copytree(source_lab.parent, lab)
    with fresh_database("xlab_backup") as url:
        xlab("catalog", "migrate-to", url, lab=lab)
        xlab("backup", tmp_path / "backup", lab=lab)
        xlab("restore", tmp_path / "backup", tmp_path / "restored")
        out = xlab("verify", "--json", lab=tmp_path / "restored").stdout
        assert json.loads(out)["ok"]
        assert json.loads(xlab("quota", "status", "--json", lab=tmp_path / "restored").stdout) == json.loads(
            xlab("quota", "status", "--json", lab=lab).stdout)
