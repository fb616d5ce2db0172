"""Annotations with history: the 0007 migration on a demo lab, revisions, as-of reads, counters."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from core.catalog import Catalog, label_store
from core.errors import CatalogError
from tests.core.catalog_versions import catalog_before


@pytest.fixture(scope="module")
def dicos_demo(tmp_path_factory):
    """A demo lab whose simulated scanner's DICOS images and ground-truth TDRs were ingested
    (two threat images, one clean bag)."""
    from core.demo import create_demo_lab
    from core.ingest.engine import watch
    from core.simulator.scanner import simulate

    root = tmp_path_factory.mktemp("dicos")
    lab = create_demo_lab(root / "demo", plan_sessions=False)
    list(simulate(lab, "SCN-C", 3, rate_per_minute=0, fmt="dicos", seed=5, clean_fraction=0))
    list(watch(lab, once=True, workers=0, settle_s=0.05, poll_s=0.05))
    path = Path(lab.catalog.path)
    lab.close()
    return path


def test_migration_0007_turns_the_old_tdr_rows_of_a_demo_lab_into_revisions(dicos_demo, tmp_path):
    # The demo catalog as the release before 0007 left it: its TDR boxes in the
    # old one-row-per-box table, with the old source name.
    old = catalog_before(dicos_demo, tmp_path / "before.sqlite", "0007_labels",
                         {"annotations": {"source": "'tdr'", "qa_state": "'unreviewed'"}})
    conn = sqlite3.connect(old)
    before = conn.execute("SELECT id, image_id, class_id, label, x0, y0, x1, y1 FROM annotations ORDER BY id").fetchall()
    assert len(before) == 3 and {r[0] for r in conn.execute("SELECT source FROM annotations")} == {"tdr"}
    # One image made a clean-bag capture: a step with no item.
    conn.execute("INSERT INTO capture_sessions (id, scanner_id, technician, session_date, created_at)"
                 " VALUES (99, 1, 'ana', '2026-01-01', '2026-01-01')")
    conn.execute("INSERT INTO capture_steps (id, session_id, position, bag_id, split, images_wanted)"
                 " VALUES (99, 99, 1, (SELECT MAX(id) FROM bags), 'train', 1)")
    clean = conn.execute("SELECT id FROM images ORDER BY id DESC LIMIT 1").fetchone()[0]
    conn.execute("DELETE FROM annotations WHERE image_id = ?", (clean,))
    conn.execute("UPDATE images SET step_id = 99 WHERE id = ?", (clean,))
    conn.commit()
    conn.close()

    catalog = Catalog.open(old)
    try:
        assert catalog.applied_migrations()[-1] == "0007_labels"
        after = [tuple(r) for r in catalog.query(
            "SELECT annotation_id, image_id, class_id, label, x0, y0, x1, y1 FROM annotation_revisions ORDER BY id")]
        assert after == [r for r in before if r[1] != clean]
        # The simulator's reports are ground truth.
        assert {r["source"] for r in catalog.query("SELECT source FROM annotations")} == {"ground_truth"}
        assert catalog.query_one("SELECT negative FROM image_labels WHERE image_id = ?", (clean,))["negative"] == 1
        per_class, per_image = label_store.counters(catalog)
        assert (per_class, per_image) == label_store.recount(catalog) and sum(per_image.values()) == 2
        # The clock runs on past every migrated label.
        seqs = [r["seq"] for r in catalog.query(
            "SELECT seq FROM annotation_revisions UNION ALL SELECT seq FROM image_label_revisions")]
        assert len(set(seqs)) == 3 and label_store.clock(catalog) == max(seqs)
    finally:
        catalog.close()


def test_revisions_are_append_only(dicos_demo, tmp_path):
    catalog = Catalog.open(dicos_demo)
    try:
        for statement in ("UPDATE annotation_revisions SET x0 = 0", "DELETE FROM annotation_revisions",
                          "UPDATE image_label_revisions SET negative = 0"):
            with pytest.raises(CatalogError, match="append-only"):
                with catalog.write() as txn:
                    txn.execute(statement)
    finally:
        catalog.close()
