"""Annotations with history: the 0007 migration on a demo lab, revisions, as-of reads, counters."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from core.catalog import Catalog, label_store
from core.errors import CatalogError, LabelError
from core.labels import annotations as A
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.core.catalog_versions import catalog_before
from tests.core.ingest_helpers import tiny_lab


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
        assert "0007_labels" in catalog.applied_migrations()
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

INVENTORY = """\
threat_families: [{name: knives}, {name: guns}]
threat_classes: [{name: knife_kitchen, family: knives}, {name: handgun, family: guns}]
threat_items: [{barcode: TI-1, class: knife_kitchen}]
luggage_types: [{name: tray}]
bags: [{barcode: BG-1, luggage_type: tray, clutter: low}]
scanner_models: [{name: TINY, vendor: SimScan, width: 96, height: 64, bit_depth: 16, pixel_mm: 8}]
scanners: [{name: T1, model: TINY, station: bench-1}]
poses: [{name: flat}]
"""


@pytest.fixture
def lab(tmp_path):
    lab = tiny_lab(tmp_path / "lab", INVENTORY)
    yield lab
    lab.close()


def add_images(lab, n: int) -> list[int]:
    from core.catalog.ingest_store import insert_image

    with lab.catalog.write() as txn:
        start = txn.execute("SELECT COUNT(*) FROM images").fetchone()[0]
        return [insert_image(txn, {"sha256": f"{start + i:064x}", "store_path": f"x/{start + i}.png",
                                   "original_name": f"{start + i}.png", "captured_at": "2026-01-01T00:00:00+00:00",
                                   "ingested_at": "2026-01-01T00:00:00+00:00", "width": 96, "height": 64})
                for i in range(n)]


def test_as_of_reads_return_the_labels_an_image_had_before_later_edits(lab):
    (image,) = add_images(lab, 1)
    before_any = A.clock(lab.catalog)
    box = A.add_box(lab.catalog, image, "knife_kitchen", 10, 10, 30, 20, actor="ana")
    drawn = A.clock(lab.catalog)
    A.edit_box(lab.catalog, box.annotation_id, coords=(12, 10, 32, 20), class_name="handgun", actor="ben")
    moved = A.clock(lab.catalog)
    A.set_qa_state(lab.catalog, box.annotation_id, "accepted", actor="cy")
    A.delete_box(lab.catalog, box.annotation_id, actor="dee")

    assert A.labels_of(lab.catalog, image).boxes == ()
    assert A.labels_of(lab.catalog, image, as_of=before_any).boxes == ()
    (old,) = A.labels_of(lab.catalog, image, as_of=drawn).boxes
    assert (old.class_name, old.x0, old.x1, old.qa_state, old.actor) == ("knife_kitchen", 10, 30, "unreviewed", "ana")
    (mid,) = A.labels_of(lab.catalog, image, as_of=moved).boxes
    assert (mid.class_name, mid.x0, mid.qa_state, mid.source, mid.actor) == ("handgun", 12, "corrected", "manual", "ben")
    assert [b.actor for b in A.history(lab.catalog, image)] == ["ana", "ben", "cy", "dee"]
    # Every write left an audit entry.
    actions = [r["action"] for r in lab.catalog.query("SELECT action FROM audit_log WHERE entity = 'annotations' ORDER BY id")]
    assert actions == ["add", "edit", "review", "delete"]


def test_bad_boxes_are_refused_with_what_to_fix(lab):
    (image,) = add_images(lab, 1)
    with pytest.raises(LabelError, match="outside image"):
        A.add_box(lab.catalog, image, "knife_kitchen", 10, 10, 200, 20)
    with pytest.raises(LabelError, match="x1 > x0"):
        A.add_box(lab.catalog, image, "knife_kitchen", 30, 10, 10, 20)
    with pytest.raises(LabelError, match="no threat class named 'sword'.*knife_kitchen"):
        A.add_box(lab.catalog, image, "sword", 1, 1, 5, 5)
    box = A.add_box(lab.catalog, image, "knife_kitchen", 1, 1, 5, 5)
    A.delete_box(lab.catalog, box.annotation_id)
    with pytest.raises(LabelError, match="was deleted"):
        A.edit_box(lab.catalog, box.annotation_id, coords=(1, 1, 6, 6))
    assert label_store.revisions(lab.catalog, [1, 2])[1]["deleted"] == 1


def test_revisions_are_append_only(lab):
    (image,) = add_images(lab, 1)
    A.add_box(lab.catalog, image, "knife_kitchen", 1, 1, 5, 5)
    A.set_negative(lab.catalog, image, True)
    for statement in ("UPDATE annotation_revisions SET x0 = 0", "DELETE FROM annotation_revisions",
                      "UPDATE image_label_revisions SET negative = 0", "DELETE FROM image_label_revisions"):
        with pytest.raises(CatalogError, match="append-only"):
            with lab.catalog.write() as txn:
                txn.execute(statement)
    assert len(A.history(lab.catalog, image)) == 1


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["add", "edit", "delete", "review", "negative"]),
                          st.integers(0, 3), st.integers(0, 100)), min_size=1, max_size=25))
def test_counters_equal_a_recount_after_random_edits(lab, operations):
    images = [r["id"] for r in lab.catalog.query("SELECT id FROM images")] or add_images(lab, 4)
    for op, which, n in operations:
        image = images[which]
        live = [b for b in A.labels_of(lab.catalog, image).boxes]
        if op == "add" or not live:
            A.add_box(lab.catalog, image, ("knife_kitchen", "handgun")[n % 2], n % 50, n % 30, n % 50 + 5, n % 30 + 4)
        elif op == "edit":
            A.edit_box(lab.catalog, live[n % len(live)].annotation_id, class_name=("knife_kitchen", "handgun")[n % 2])
        elif op == "delete":
            A.delete_box(lab.catalog, live[n % len(live)].annotation_id)
        elif op == "review":
            A.set_qa_state(lab.catalog, live[n % len(live)].annotation_id, A.QA_STATES[n % 4])
        else:
            A.set_negative(lab.catalog, image, bool(n % 2))
    assert label_store.counters(lab.catalog) == label_store.recount(lab.catalog)
    per_class, per_image = label_store.recount(lab.catalog)
    assert A.image_counts(lab.catalog, images) == {i: per_image.get(i, 0) for i in images}
    counts = A.class_counts(lab.catalog)
    assert sum(sum(v.values()) for v in counts.values()) == sum(per_class.values())
