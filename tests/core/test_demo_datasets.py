"""The demo lab's starter datasets: a test session and its train mirror captured through the
lab's own paths (planner, simulated technician, drop folder, ingest, ground truth), frozen as
demo-test@1 and its 1:1 clone demo-train@1, so a new lab's Datasets and Labels areas are not empty."""

from __future__ import annotations

import logging

from core.datasets.versions import list_versions, member_ids, show
from core.labels import annotations as A


def _state(lab) -> dict:
    one = lab.catalog.query_one
    return {
        "versions": [(v["name"], v["version"], v["images"], v["content_hash"]) for v in list_versions(lab.catalog)],
        "images": one("SELECT COUNT(*) AS n FROM images")["n"],
        "annotations": one("SELECT COUNT(*) AS n FROM annotation_revisions")["n"],
        "sessions": one("SELECT COUNT(*) AS n FROM capture_sessions")["n"],
    }


def test_a_new_demo_lab_has_a_frozen_test_set_and_its_one_to_one_train_set(tmp_path):
    from core.demo import create_demo_lab

    lab = create_demo_lab(tmp_path / "demo", starter_datasets=True)
    try:
        versions = {(v["name"], v["version"]): v for v in list_versions(lab.catalog)}
        assert set(versions) == {("demo-test", 1), ("demo-train", 1)}
        train = show(lab.catalog, "demo-train@1")
        assert train["rule"] == "train" and train["test_version"] == "demo-test@1"
        assert train["rule_json"]["ratio"] == 1 and train["parent"] == "demo-test@1"

        kinds = {}
        for name, split in (("demo-test", "test"), ("demo-train", "train")):
            ids = member_ids(lab.catalog, f"{name}@1")
            assert ids, name
            rows = [dict(r) for r in lab.catalog.query(
                f"""SELECT i.id, i.split, i.item_id, i.bag_id, i.step_id, c.name AS item_class
                    FROM images i LEFT JOIN threat_items t ON t.id = i.item_id
                    LEFT JOIN threat_classes c ON c.id = t.class_id
                    WHERE i.id IN ({",".join("?" * len(ids))})""", ids)]
            # Every image came through a session's step, and every object it shows is in this split's pool.
            assert all(r["split"] == split and r["step_id"] is not None for r in rows), rows
            pools = {(r["kind"], r["object_id"]): r["split"] for r in lab.catalog.query(
                "SELECT kind, object_id, split FROM split_pools")}
            assert {pools[("bag", r["bag_id"])] for r in rows} == {split}
            assert {pools[("item", r["item_id"])] for r in rows if r["item_id"]} == {split}
            boxed = negatives = 0
            for r in rows:
                labels = A.labels_of(lab.catalog, r["id"])
                if r["item_id"] is None:
                    assert labels.negative and labels.boxes == (), r
                    negatives += 1
                else:
                    assert [(b.class_name, b.source) for b in labels.boxes] == [(r["item_class"], "ground_truth")], r
                    boxed += 1
            assert boxed and negatives, (name, boxed, negatives)
            kinds[name] = {r["item_class"] for r in rows}
        # A clone of the test mix: the train set shows the test set's classes (and clean bags).
        assert kinds["demo-train"] == kinds["demo-test"]

        # Today's sessions are still planned for every scanner after the starter sessions closed.
        open_scanners = {r["name"] for r in lab.catalog.query(
            """SELECT DISTINCT sc.name FROM capture_sessions s JOIN scanners sc ON sc.id = s.scanner_id
               WHERE s.status != 'closed'""")}
        assert open_scanners == {"SCN-A", "SCN-B", "SCN-C", "SCN-D"}

        before = _state(lab)
        lab.close()
        lab = create_demo_lab(tmp_path / "demo", starter_datasets=True)
        assert _state(lab) == before
    finally:
        lab.close()


def test_a_demo_lab_with_sessions_but_no_labelled_images_freezes_nothing_and_says_so(tmp_path, caplog):
    from core.demo import create_demo_lab

    create_demo_lab(tmp_path / "demo").close()  # today's sessions planned, nothing captured
    with caplog.at_level(logging.WARNING, logger="core.demo"):
        lab = create_demo_lab(tmp_path / "demo", starter_datasets=True)
    try:
        assert list_versions(lab.catalog) == []
        assert lab.catalog.query_one("SELECT COUNT(*) AS n FROM images")["n"] == 0
        assert [r.getMessage() for r in caplog.records] == [
            "demo dataset demo-test not frozen: no test image has passed label QA yet",
            "demo dataset demo-train not frozen: it clones demo-test, which is not frozen"]
    finally:
        lab.close()
