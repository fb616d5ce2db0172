"""Label checks from what the lab knows: each rule flags its case and not the clean case."""

from __future__ import annotations

import pytest

from core.labels import annotations as A
from core.labels import qa
from tests.core.ingest_helpers import tiny_lab

INVENTORY = """\
threat_families: [{name: knives}, {name: guns}]
threat_classes: [{name: knife_kitchen, family: knives}, {name: handgun, family: guns}]
threat_items: [{barcode: TI-1, class: knife_kitchen}, {barcode: TI-2, class: knife_kitchen}, {barcode: TI-3, class: handgun}]
luggage_types: [{name: tray}]
bags: [{barcode: BG-1, luggage_type: tray, clutter: low}, {barcode: BG-2, luggage_type: tray, clutter: low}]
scanner_models: [{name: TINY, vendor: SimScan, width: 96, height: 64, bit_depth: 16, pixel_mm: 8}]
scanners: [{name: T1, model: TINY, station: bench-1}]
poses: [{name: flat}]
"""


@pytest.fixture
def lab(tmp_path):
    lab = tiny_lab(tmp_path / "lab", INVENTORY)
    yield lab
    lab.close()


def captured(lab, item: str | None, n: int = 1) -> list[int]:
    """``n`` images taken on a capture step that placed ``item`` (None: a clean bag)."""
    from core.catalog.ingest_store import insert_image

    with lab.catalog.write() as txn:
        item_id = None if item is None else txn.execute("SELECT id FROM threat_items WHERE barcode = ?", (item,)).fetchone()[0]
        bag_id = txn.execute("SELECT id FROM bags WHERE barcode = 'BG-1'").fetchone()[0]
        session = txn.execute("INSERT INTO capture_sessions (scanner_id, technician, session_date, created_at)"
                              " VALUES (1, 'ana', '2026-01-01', '2026-01-01')").lastrowid
        step = txn.execute("INSERT INTO capture_steps (session_id, position, bag_id, item_id, split, images_wanted)"
                           " VALUES (?, 1, ?, ?, 'test', ?)", (session, bag_id, item_id, n)).lastrowid
        start = txn.execute("SELECT COUNT(*) FROM images").fetchone()[0]
        return [insert_image(txn, {"sha256": f"{start + i:064x}", "store_path": f"x/{start + i}.png",
                                   "original_name": f"{start + i}.png", "captured_at": "2026-01-01T00:00:00+00:00",
                                   "ingested_at": "2026-01-01T00:00:00+00:00", "width": 96, "height": 64,
                                   "step_id": step, "item_id": item_id, "bag_id": bag_id, "split": "test",
                                   "scanner_id": 1}) for i in range(n)]


def codes(lab, image: int, state: str = "open") -> dict[str, int]:
    out: dict[str, int] = {}
    for f in qa.queue(lab.catalog, state):
        if f["image_id"] == image:
            out[f["code"]] = out.get(f["code"], 0) + 1
    return out


def test_a_box_on_a_clean_bag_is_flagged_and_the_clean_bag_is_a_labelled_negative(lab):
    clean, other = captured(lab, None, 2)
    assert A.labels_of(lab.catalog, clean).negative  # recorded from the step, before anyone labelled
    A.add_box(lab.catalog, clean, "handgun", 10, 10, 30, 30)
    assert codes(lab, clean) == {"box_on_clean_bag": 1}
    qa.run_checks(lab.catalog)
    assert codes(lab, other) == {}


def test_a_class_other_than_the_placed_items_is_flagged(lab):
    wrong, right = captured(lab, "TI-1", 2)
    A.add_box(lab.catalog, wrong, "handgun", 10, 10, 30, 30)
    A.add_box(lab.catalog, right, "knife_kitchen", 10, 10, 30, 30)
    assert "class_not_in_step" in codes(lab, wrong)
    assert codes(lab, right) == {}
    # Fixing the class resolves the flag.
    (box,) = A.labels_of(lab.catalog, wrong).boxes
    A.edit_box(lab.catalog, box.annotation_id, class_name="knife_kitchen")
    assert codes(lab, wrong) == {} and codes(lab, wrong, "resolved")["class_not_in_step"] == 1


def test_more_boxes_than_items_and_no_box_on_a_threat_image_are_flagged(lab):
    two, none, one = captured(lab, "TI-2", 3)
    A.add_box(lab.catalog, two, "knife_kitchen", 10, 10, 30, 30)
    A.add_box(lab.catalog, two, "knife_kitchen", 40, 10, 60, 30)
    A.add_box(lab.catalog, one, "knife_kitchen", 10, 10, 30, 30)
    qa.run_checks(lab.catalog)
    assert codes(lab, two) == {"box_count": 1}
    assert codes(lab, none) == {"missing_box": 1}
    assert codes(lab, one) == {}
    # A rejected box is no box.
    (box,) = A.labels_of(lab.catalog, one).boxes
    A.set_qa_state(lab.catalog, box.annotation_id, "rejected")
    assert codes(lab, one) == {"missing_box": 1}


def test_a_box_far_from_its_classs_size_is_flagged(lab):
    images = captured(lab, "TI-1", 26)
    for n, image in enumerate(images[:-2]):
        A.add_box(lab.catalog, image, "knife_kitchen", 10, 10, 30 + n % 3, 20 + n % 2)
    huge, usual = images[-2:]
    A.add_box(lab.catalog, huge, "knife_kitchen", 0, 0, 95, 63)
    A.add_box(lab.catalog, usual, "knife_kitchen", 5, 5, 26, 16)
    assert codes(lab, huge) == {"box_size": 1}
    assert "area" in qa.queue(lab.catalog)[0]["reason"]
    assert codes(lab, usual) == {}


def test_one_item_boxed_as_different_classes_across_images_is_flagged(lab):
    images = captured(lab, "TI-3", 4)
    for image in images[:3]:
        A.add_box(lab.catalog, image, "handgun", 10, 10, 30, 30)
    A.add_box(lab.catalog, images[3], "knife_kitchen", 10, 10, 30, 30)
    assert codes(lab, images[3]) == {"class_conflict": 1, "class_not_in_step": 1}
    qa.run_checks(lab.catalog, full=True)
    assert all(codes(lab, image) == {} for image in images[:3])


def test_the_queue_is_riskiest_first_and_a_dismissed_flag_stays_dismissed(lab):
    (clean,) = captured(lab, None)
    (threat,) = captured(lab, "TI-1")
    A.add_box(lab.catalog, clean, "handgun", 10, 10, 30, 30)
    qa.run_checks(lab.catalog)
    flags = qa.queue(lab.catalog)
    assert [f["code"] for f in flags] == ["box_on_clean_bag", "missing_box"]
    assert [f["risk"] for f in flags] == sorted((f["risk"] for f in flags), reverse=True)
    qa.dismiss(lab.catalog, flags[1]["id"])
    qa.run_checks(lab.catalog, full=True)
    assert codes(lab, threat) == {} and codes(lab, threat, "dismissed") == {"missing_box": 1}


# -- the checks run at ingest, on the images a batch brought ------------------------------------


def _ingest_lab(tmp_path, item: str | None):
    """The tiny ingest lab with scanner T1 capturing a confirmed step that placed ``item`` (None: a clean bag)."""

    lab = tiny_lab(tmp_path / "ingest")
    with lab.catalog.write() as txn:
        item_id = None if item is None else txn.execute("SELECT id FROM threat_items WHERE barcode = ?", (item,)).fetchone()[0]
        session = txn.execute("INSERT INTO capture_sessions (scanner_id, technician, session_date, created_at, status)"
                              " VALUES (1, 'ana', '2026-01-01', '2026-01-01', 'open')").lastrowid
        txn.execute("INSERT INTO capture_steps (session_id, position, bag_id, item_id, split, images_wanted, status,"
                    " confirmed_at) VALUES (?, 1, 1, ?, 'test', 50, 'active', '2026-01-01')", (session, item_id))
    return lab


def _ingest(lab, n: int) -> list[int]:
    from core.ingest.engine import watch
    from tests.core.ingest_helpers import drop, scan_png

    for i in range(n):
        drop(lab, "T1", f"scan_{i}.png", scan_png(100 + i))
    list(watch(lab, once=True, workers=0, settle_s=0.05, poll_s=0.05))
    return [r["id"] for r in lab.catalog.query("SELECT id FROM images ORDER BY id")]


def test_ingest_runs_the_label_checks_on_the_images_it_brings(tmp_path):
    lab = _ingest_lab(tmp_path, "TI-1")
    try:
        images = _ingest(lab, 3)
        assert len(images) == 3
        # Flagged by the ingest itself: nobody ran 'xlab annotations qa'.
        assert all(codes(lab, image) == {"missing_box": 1} for image in images)
        assert "TI-1" in qa.queue(lab.catalog)[0]["reason"]
    finally:
        lab.close()


def test_label_checks_that_fail_at_ingest_lose_no_image(tmp_path, monkeypatch, caplog):
    def broken(txn, image_ids):
        txn.execute("INSERT INTO qa_flags (image_id, code, reason, risk, created_at) VALUES (1, 'x', 'x', 1, 'now')")
        raise RuntimeError("checks broke")

    monkeypatch.setattr(qa, "check_images", broken)
    lab = _ingest_lab(tmp_path, "TI-1")
    try:
        with caplog.at_level("WARNING"):
            images = _ingest(lab, 2)
        assert len(images) == 2 and not list(lab.paths.drop_folder("T1").glob("*.png"))
        # What the failed checks wrote was undone with them; the images are kept.
        assert lab.catalog.query_one("SELECT COUNT(*) AS n FROM qa_flags")["n"] == 0
        assert lab.catalog.query_one("SELECT COUNT(*) AS n FROM quarantine")["n"] == 0
        assert "label checks skipped" in caplog.text and "checks broke" in caplog.text
    finally:
        lab.close()
