import itertools
import time
import sqlite3
import threading

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.catalog import Catalog
from core.catalog.images import delete_image_row, insert_images, update_image
from core.catalog import migrations
from core.catalog.tally import rebuild_tallies
from core.errors import CatalogError, CatalogTooNewError
from tests.bench.seed import in_pool, seed_catalog

pytestmark = pytest.mark.both_backends


def _tables(catalog) -> set[str]:
    if catalog.dialect == "postgresql":
        sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
    return {r[0] for r in catalog.query(sql)}


def _schema(catalog) -> list:
    if catalog.dialect == "postgresql":
        return catalog.query("SELECT table_name, column_name, data_type, is_nullable, column_default "
                             "FROM information_schema.columns WHERE table_schema = current_schema() ORDER BY 1, 2")
    return catalog.query("SELECT sql FROM sqlite_master ORDER BY name")


def _record_migration(catalog, name: str) -> None:
    """Write a migration into the catalog's record as a newer XLab would."""
    table = "xlab_migrations" if catalog.dialect == "postgresql" else "_sqlite_migrations"
    with catalog.write() as txn:
        txn.execute(f"INSERT INTO {table} (migration_set, name, applied_at) VALUES ('xlab', ?, 'now')", (name,))


def test_migrations_take_an_empty_catalog_to_head_and_rerun_is_a_no_op(new_catalog):
    target = new_catalog(migrated=False)
    catalog = Catalog.open(target)
    head = migrations.names()
    assert catalog.applied_migrations() == head
    assert {"threat_classes", "bags", "quota_cells", "images", "audit_log", "cell_tally"} <= _tables(catalog)
    schema = _schema(catalog)
    catalog.close()
    again = Catalog.open(target)
    assert again.migrate() == []
    assert _schema(again) == schema
    assert again.applied_migrations() == head
    again.close()


def test_catalog_settings(empty_lab):
    conn = empty_lab.catalog.reader()
    if empty_lab.catalog.dialect == "sqlite":
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        with pytest.raises(sqlite3.OperationalError):
            conn.execute("INSERT INTO luggage_types (name) VALUES ('x')")  # readers are read-only
    else:
        import psycopg

        assert conn.execute("SHOW default_transaction_read_only").fetchone()[0] == "on"
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("INSERT INTO luggage_types (name) VALUES ('x')")
    assert empty_lab.catalog.query("SELECT name FROM luggage_types") == []


def test_foreign_keys_are_enforced(empty_lab):
    with pytest.raises(CatalogError, match="(?i)the catalog refused the change: .*FOREIGN KEY"):
        with empty_lab.catalog.write() as txn:
            txn.execute("INSERT INTO threat_items (barcode, class_id) VALUES ('X', 999)")


def test_a_catalog_from_a_newer_xlab_is_refused(new_catalog):
    target = new_catalog()
    catalog = Catalog.open(target)
    _record_migration(catalog, "9999_future")
    catalog.close()
    with pytest.raises(CatalogTooNewError, match="newer XLab"):
        Catalog.open(target)


def test_a_file_that_is_not_a_catalog_gets_a_clear_message(tmp_path):
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CatalogError, match="not a readable XLab catalog"):
        Catalog.open(path)


def test_readers_are_not_blocked_by_an_open_write(empty_lab):
    catalog = empty_lab.catalog
    in_write, release = threading.Event(), threading.Event()

    def writer():
        with catalog.write() as txn:
            txn.execute("INSERT INTO luggage_types (name) VALUES ('trolley')")
            in_write.set()
            release.wait(5)

    thread = threading.Thread(target=writer)
    thread.start()
    assert in_write.wait(5)
    # Another thread reads while the write transaction is open: no wait, old state.
    result = []
    reader = threading.Thread(target=lambda: result.append(catalog.query("SELECT name FROM luggage_types")))
    reader.start()
    reader.join(2)
    assert not reader.is_alive() and result == [[]]
    release.set()
    thread.join()
    assert [r["name"] for r in catalog.query("SELECT name FROM luggage_types")] == ["trolley"]


def test_writes_return_and_publish_what_changed(empty_lab):
    seen = []
    unsubscribe = empty_lab.catalog.subscribe(seen.append)
    with empty_lab.catalog.write(actor="ana") as txn:
        txn.execute("INSERT INTO luggage_types (name) VALUES ('tray')")
        txn.audit("create", "luggage_types", "tray", None, {"name": "tray"})
    unsubscribe()
    assert txn.change.tables == frozenset({"luggage_types", "audit_log"})
    assert seen == [txn.change]
    entry = empty_lab.catalog.query_one("SELECT * FROM audit_log")
    assert entry["actor"] == "ana" and entry["entity_key"] == "tray"


def test_failed_writes_roll_back_and_publish_nothing(empty_lab):
    seen = []
    empty_lab.catalog.subscribe(seen.append)
    with pytest.raises(RuntimeError):
        with empty_lab.catalog.write() as txn:
            txn.execute("INSERT INTO luggage_types (name) VALUES ('tray')")
            raise RuntimeError("boom")
    assert seen == []
    assert empty_lab.catalog.query("SELECT * FROM luggage_types") == []


def test_the_audit_log_is_append_only(empty_lab):
    with empty_lab.catalog.write() as txn:
        txn.audit("create", "x", "1")
    for sql in ("UPDATE audit_log SET actor = 'eve'", "DELETE FROM audit_log"):
        with pytest.raises(CatalogError, match="append-only"):
            with empty_lab.catalog.write() as txn:
                txn.execute(sql)
    assert empty_lab.catalog.query_one("SELECT COUNT(*) AS n FROM audit_log")["n"] == 1


_fresh = itertools.count()


def _independent_tally(catalog):
    """The per-cell counts computed from scratch with pandas."""
    rows = catalog.query(
        """SELECT i.split, IFNULL(ti.class_id, 0) AS class_key, b.luggage_type_id, b.clutter_level,
                  s.model_id AS scanner_model_id, IFNULL(i.pose_id, 0) AS pose_key, i.item_id, i.bag_id
           FROM images i JOIN bags b ON b.id = i.bag_id JOIN scanners s ON s.id = i.scanner_id
           LEFT JOIN threat_items ti ON ti.id = i.item_id
           WHERE i.usable = 1 AND i.split IS NOT NULL""")
    keys = ["split", "class_key", "luggage_type_id", "clutter_level", "scanner_model_id", "pose_key"]
    df = pd.DataFrame([tuple(r) for r in rows], columns=keys + ["item_id", "bag_id"])
    df["item_id"] = df["item_id"].fillna(0)
    images = df.groupby(keys).size().rename("images")
    setups = df.drop_duplicates(keys + ["item_id", "bag_id"]).groupby(keys).size().rename("setups")
    out = pd.concat([images, setups], axis=1).reset_index()
    return sorted(tuple(r) for r in out.itertuples(index=False))


def _tally(catalog):
    rows = catalog.reader().execute(
        "SELECT split, class_key, luggage_type_id, clutter_level, scanner_model_id, pose_key, images, setups "
        "FROM cell_tally WHERE images != 0 ORDER BY 1, 2, 3, 4, 5, 6"
    ).fetchall()
    return sorted(tuple(r) for r in rows)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory, catalog_backend):
    import contextlib

    from core.lab import Lab

    with contextlib.ExitStack() as databases:
        url = None
        if catalog_backend == "postgresql":
            from tests.pg import fresh_database

            url = databases.enter_context(fresh_database("xlab_test", migrated=True))
        lab = Lab.init(tmp_path_factory.mktemp("seeded"), catalog=url)
        seed_catalog(lab, n_classes=4, n_images=600, seed=3)
        yield lab
        lab.close()


def test_triggers_keep_tallies_equal_to_a_recount(seeded):
    assert _tally(seeded.catalog) == _independent_tally(seeded.catalog)


@given(st.lists(st.tuples(st.sampled_from(["split", "usable", "pose", "item", "delete", "insert"]), st.integers(1, 600)), max_size=25))
@settings(max_examples=25, deadline=None)
def test_tallies_follow_updates_and_deletes(seeded, edits):
    catalog = seeded.catalog
    ids = [r[0] for r in catalog.reader().execute("SELECT id FROM images ORDER BY id").fetchall()]
    with catalog.write() as txn:
        for kind, n in edits:
            image_id = ids[n % len(ids)]
            row = txn.execute("SELECT id, split, usable, pose_id, item_id, bag_id FROM images WHERE id = ?", (image_id,)).fetchone()
            if row is None:
                continue
            if kind == "split":
                # test and train never share an object: the image moves to a bag (and item) of the other pool
                split = "train" if row[1] == "test" else "test"
                update_image(txn, image_id, {"split": split, "bag_id": in_pool(row[5], split),
                                             "item_id": row[4] and in_pool(row[4], split)})
            elif kind == "usable":
                update_image(txn, image_id, {"usable": 1 - row[2]})
            elif kind == "pose":
                update_image(txn, image_id, {"pose_id": (n % 6) + 1 if row[4] else None})
            elif kind == "item":
                update_image(txn, image_id, {"item_id": in_pool((n % 11) + 1, row[1]), "pose_id": (n % 6) + 1})
            elif kind == "delete":
                delete_image_row(txn, image_id)
            else:
                insert_images(txn, [(f"new-{next(_fresh)}", "s", "", 1, "2026", "2026", "test", None, 1, None, 1, 1, 16, 1, "", 1)])
    assert _tally(catalog) == _independent_tally(catalog)
    with catalog.write() as txn:
        rebuild_tallies(txn)
    assert _tally(catalog) == _independent_tally(catalog)


def test_processes_opening_a_new_catalog_at_once_migrate_it_once(new_catalog):
    import subprocess
    import sys

    target = new_catalog(migrated=False)
    code = f"from core.catalog import Catalog; c = Catalog.open({str(target)!r}); print(len(c.applied_migrations()))"
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in results]
    head = len(migrations.names())
    assert [int(out) for out, _ in results] == [head] * 4
    catalog = Catalog.open(target)
    table = "xlab_migrations" if catalog.dialect == "postgresql" else "_sqlite_migrations"
    assert catalog.query_one(f"SELECT COUNT(*) AS n FROM {table}")["n"] == head
    catalog.close()


def test_opening_an_up_to_date_catalog_loads_neither_sqlite_utils_nor_pandas(tmp_path):
    """sqlite-utils imports pandas and numpy when installed (a quarter of a
    second); only a catalog that needs migrating pays for it."""
    import subprocess
    import sys

    path = tmp_path / "c.sqlite"
    Catalog.open(path).close()
    code = (f"import sys; from core.catalog import Catalog; c = Catalog.open({str(path)!r}); "
            "print(sorted(m for m in ('sqlite_utils', 'pandas', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_closing_the_catalog_under_another_threads_read_stops_that_read_without_crashing(new_catalog):
    """A window closes its lab while a background read is running: the read ends with an error,
    the process goes on (closing a connection under a running statement used to crash it)."""
    import threading

    from core.catalog.db import Catalog
    from core.errors import CatalogError

    catalog = Catalog.open(new_catalog(), create=True)
    started, outcome = threading.Event(), []
    stopped = (sqlite3.OperationalError, CatalogError)

    def long_read() -> None:
        conn = catalog.reader()
        started.set()
        try:
            conn.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000000) "
                         "SELECT COUNT(*) FROM n").fetchone()
            outcome.append("finished")
        except stopped as exc:
            outcome.append(str(exc).split(":")[0])
        try:
            catalog.reader()
        except CatalogError as exc:
            outcome.append(str(exc))

    thread = threading.Thread(target=long_read)
    thread.start()
    started.wait(5)
    time.sleep(0.2)
    catalog.close()
    thread.join(30)
    assert not thread.is_alive()
    assert outcome == ["interrupted", "the catalog is closed (the lab was closed while this was reading)"]
