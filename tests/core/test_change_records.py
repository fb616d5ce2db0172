"""Change records come from the writes themselves (change counters kept by
triggers), in this process and from other processes, on fresh and old catalogs."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from core.catalog import Catalog
from core.catalog import ingest_store
from core.catalog.images import IMAGE_COLUMNS, insert_images, update_image
from core.catalog.migrations import UNCOUNTED_TABLES, sqlite_utils_migrations
from core.catalog.records import all_rows
from sqlite_utils import Database
from core.catalog.tally import rebuild_tallies
from core.errors import CatalogError
from core.lab import Lab
from tests.bench.seed import in_pool, seed_catalog
from tests.core.catalog_versions import catalog_before

pytestmark = pytest.mark.both_backends


@pytest.fixture
def seeded(empty_lab) -> Lab:
    seed_catalog(empty_lab, n_classes=2, n_images=0, items_per_class=4, n_bags=8)
    return empty_lab


def _image(lab: Lab, n: int, *, split: str = "test", bag_index: int = 0, scanner: bool = True) -> tuple:
    ids = {t: [r["id"] for r in all_rows(lab.catalog, t)] for t in ("threat_items", "bags", "poses", "scanners")}
    row = dict(
        sha256=f"{n:064x}", store_path=f"store/{n}.png", original_name=f"{n}.png",
        scanner_id=ids["scanners"][0] if scanner else None, captured_at="2026-03-02T10:00:00+00:00",
        ingested_at="2026-03-02T10:00:01+00:00", split=split,
        item_id=in_pool(ids["threat_items"][0], split), bag_id=in_pool(ids["bags"][bag_index], split),
        pose_id=ids["poses"][0], width=64, height=64, bit_depth=16, channels=1, quality_flags="", usable=1,
    )
    return tuple(row[c] for c in IMAGE_COLUMNS)


def _write_images(lab: Lab, *rows: tuple):
    with lab.catalog.write() as txn:
        insert_images(txn, rows)
    return txn.change


def _tables_and_triggers(catalog) -> tuple[set[str], set[str]]:
    if catalog.dialect == "postgresql":
        tables = {r[0] for r in catalog.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
            "AND table_name != 'xlab_migrations'")}
        triggers = {r[0] for r in catalog.query("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")}
        return tables, triggers
    tables = {r[0] for r in catalog.query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
    return tables, {r[0] for r in catalog.query("SELECT name FROM sqlite_master WHERE type = 'trigger'")}


def test_every_table_a_view_can_show_is_counted(empty_lab):
    """A table added by a later migration without count_changes() fails here."""
    tables, triggers = _tables_and_triggers(empty_lab.catalog)
    tables -= UNCOUNTED_TABLES
    counted = {r[0] for r in empty_lab.catalog.query("SELECT tbl FROM change_counters")}
    assert counted == tables
    missing = [f"{t}_changed_{e}" for t in tables for e in ("insert", "update", "delete")
               if f"{t}_changed_{e}" not in triggers]
    assert missing == []


def test_an_image_insert_names_the_tables_its_triggers_wrote(seeded):
    # First image of a bag and item: the tallies, the production counters and
    # the split pools (claimed on first use) all change through triggers.
    change = _write_images(seeded, _image(seeded, 1, bag_index=2))
    assert change.tables == {"images", "cell_tally", "production_counts", "split_pools"}
    # Same bag and item again: already in their pool, so the pools stay put.
    assert _write_images(seeded, _image(seeded, 2, bag_index=2)).tables == {"images", "cell_tally", "production_counts"}
    # No scanner: not counted in any tally nor in production.
    assert _write_images(seeded, _image(seeded, 3, bag_index=2, scanner=False)).tables == {"images"}


def test_updates_and_rebuilds_name_exactly_what_they_changed(seeded):
    _write_images(seeded, _image(seeded, 1, bag_index=2))
    image_id = seeded.catalog.query_one("SELECT id FROM images")["id"]
    with seeded.catalog.write() as txn:
        update_image(txn, image_id, {"usable": 0})
    assert txn.change.tables == {"images", "cell_tally", "audit_log"}
    assert txn.change.audit_entries == 1
    with seeded.catalog.write() as txn:
        update_image(txn, image_id, {"quality_flags": "blurred"})  # in no tally: the tallies stay put
    assert txn.change.tables == {"images", "audit_log"}
    with seeded.catalog.write() as txn:
        rebuild_tallies(txn)
    assert txn.change.tables == {"cell_tally"}
    with seeded.catalog.write() as txn:
        ingest_store.insert_event(txn, None, "/drop/x.png", None, "rejected", detail="not an image")
    assert txn.change.tables == {"ingest_events"}


def test_a_write_that_changes_no_row_publishes_nothing(seeded):
    seen = []
    seeded.catalog.subscribe(seen.append)
    with seeded.catalog.write() as txn:
        txn.execute("UPDATE capture_sessions SET held_seen_at = 'now' WHERE id = -1")
    assert txn.change.empty and seen == []


def test_a_refused_write_moves_no_counter(seeded):
    before = seeded.catalog.query("SELECT tbl, seq FROM change_counters ORDER BY tbl")
    with pytest.raises(CatalogError, match="append-only"):
        with seeded.catalog.write() as txn:
            txn.execute("INSERT INTO luggage_types (name) VALUES ('crate')")
            txn.execute("DELETE FROM audit_log")
    assert seeded.catalog.query("SELECT tbl, seq FROM change_counters ORDER BY tbl") == before


def test_another_catalogs_writes_arrive_as_the_tables_they_changed(seeded):
    """Another connection (here another Catalog; in the app, another process):
    outside_change names its tables once, and never mixes them into our own."""
    mine = seeded.catalog
    assert mine.outside_change() is None
    other = Catalog.open(mine.target)
    try:
        with other.write() as txn:
            txn.execute("INSERT INTO luggage_types (name) VALUES ('crate')")
        change = mine.outside_change()
        # On a server the other's commit reaches us as a notification, a moment after it (views poll).
        deadline = time.monotonic() + 5
        while change is None and mine.dialect == "postgresql" and time.monotonic() < deadline:
            time.sleep(0.02)
            change = mine.outside_change()
        assert change.tables == {"luggage_types"} and change.outside
        assert mine.outside_change() is None

        # The other writes, then we write before polling: our record names only
        # our tables, and the other's still arrive through outside_change.
        with other.write() as txn:
            ingest_store.insert_event(txn, None, "/drop/y.png", None, "rejected")
        with mine.write() as txn:
            txn.execute("INSERT INTO poses (name) VALUES ('upside_down')")
        assert txn.change.tables == {"poses"} and not txn.change.outside
        assert mine.outside_change().tables == {"ingest_events"}
        assert mine.outside_change() is None
        # Our own writes never come back as outside changes.
        _write_images(seeded, _image(seeded, 9, bag_index=2))
        assert mine.outside_change() is None
    finally:
        other.close()


def _schema(conn: sqlite3.Connection) -> list[tuple]:
    return conn.execute("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name").fetchall()


@pytest.fixture
def seeded_file(tmp_path) -> Lab:
    """A seeded lab with its catalog in a file (a server catalog has no older releases to upgrade)."""
    lab = Lab.init(tmp_path / "file-lab")
    seed_catalog(lab, n_classes=2, n_images=0, items_per_class=4, n_bags=8)
    return lab


def test_the_migration_counts_changes_on_an_existing_catalog(tmp_path, seeded_file):
    """A catalog with inventory, a published plan and images, as the release
    before change counters left it, migrates and then names its changes."""
    seeded = seeded_file
    _write_images(seeded, _image(seeded, 1, bag_index=2), _image(seeded, 2, bag_index=3, split="train"))
    seeded.close()
    path = catalog_before(Path(seeded.catalog.path), tmp_path / "before-0006.sqlite", "0006_change_counters")
    conn = sqlite3.connect(path, isolation_level=None)
    old = sqlite3.connect(tmp_path / "at-0005.sqlite", isolation_level=None)
    sqlite_utils_migrations().apply(Database(old), stop_before="0006_change_counters")
    assert _schema(conn) == _schema(old)  # really the schema of the release before
    conn.close()

    catalog = Catalog.open(path)
    try:
        assert "0006_change_counters" in catalog.applied_migrations()
        assert catalog.query_one("SELECT COUNT(*) AS n FROM images")["n"] == 2
        with catalog.write() as txn:
            txn.execute("UPDATE images SET usable = 0")
        assert txn.change.tables == {"images", "cell_tally"}
    finally:
        catalog.close()
