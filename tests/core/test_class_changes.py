"""Class changes with history: rename, move, merge, split by item rule, split for review;
plans and KPI results follow explicitly; refusals change nothing."""

from __future__ import annotations

import json
import sqlite3

import pytest

from core.catalog import label_store
from core.errors import LabelError
from core.labels import annotations as A
from core.labels import classes as C
from core.labels import qa
from tests.core.ingest_helpers import tiny_lab

INVENTORY = """\
threat_families: [{name: knives}, {name: guns}, {name: tools}]
threat_classes: [{name: knife_kitchen, family: knives}, {name: knife_folding, family: knives},
                 {name: handgun, family: guns}]
threat_items: [{barcode: TI-1, class: knife_kitchen}, {barcode: TI-2, class: knife_kitchen},
               {barcode: TI-3, class: knife_folding}, {barcode: TI-4, class: handgun}]
luggage_types: [{name: tray}]
bags: [{barcode: BG-1, luggage_type: tray, clutter: low}]
scanner_models: [{name: TINY, vendor: SimScan, width: 96, height: 64, bit_depth: 16, pixel_mm: 8}]
scanners: [{name: T1, model: TINY, station: bench-1}]
poses: [{name: flat}]
"""


@pytest.fixture
def lab(tmp_path):
    from core.catalog.dashboard_store import insert_kpi_results
    from core.quota.plans import create_plan, publish_plan
    from core.quota.spec import PlanSpec

    lab = tiny_lab(tmp_path / "lab", INVENTORY)
    spec = PlanSpec(name="pilot", classes={"knife_kitchen": {"ratio_step": 2}, "knife_folding": {"detection_rate": 0.8}})
    create_plan(lab.catalog, spec, actor="mgr")
    publish_plan(lab.catalog, "pilot", actor="mgr")
    ids = label_store.class_ids(lab.catalog)
    with lab.catalog.write("eval") as txn:
        insert_kpi_results(txn, [(ids["knife_folding"], "run-1", "2026-01-05", 50, 45, 100, 3, 1, "import"),
                                 (ids["handgun"], "run-1", "2026-01-05", 50, 49, 100, 2, 1, "import")])
    yield lab
    lab.close()


def captured(lab, item: str | None, n: int = 1) -> list[int]:
    """``n`` images of a capture step that placed ``item`` (None: an image from outside the lab, no step)."""
    from core.catalog.ingest_store import insert_image

    with lab.catalog.write() as txn:
        item_id = None if item is None else txn.execute("SELECT id FROM threat_items WHERE barcode = ?", (item,)).fetchone()[0]
        start = txn.execute("SELECT COUNT(*) FROM images").fetchone()[0]
        row = {"captured_at": "2026-01-01T00:00:00+00:00", "ingested_at": "2026-01-01T00:00:00+00:00",
               "width": 96, "height": 64}
        if item is not None:
            bag_id = txn.execute("SELECT id FROM bags").fetchone()[0]
            session = txn.execute("INSERT INTO capture_sessions (scanner_id, technician, session_date, created_at)"
                                  " VALUES (1, 'ana', '2026-01-01', '2026-01-01')").lastrowid
            step = txn.execute("INSERT INTO capture_steps (session_id, position, bag_id, item_id, split, images_wanted)"
                               " VALUES (?, 1, ?, ?, 'test', ?)", (session, bag_id, item_id, n)).lastrowid
            row |= {"step_id": step, "item_id": item_id, "bag_id": bag_id, "split": "test", "scanner_id": 1,
                    "pose_id": txn.execute("SELECT id FROM poses").fetchone()[0]}
        return [insert_image(txn, row | {"sha256": f"{start + i:064x}", "store_path": f"x/{start + i}.png",
                                         "original_name": f"{start + i}.png"}) for i in range(n)]


def boxed(lab, item: str | None, class_name: str, n: int = 1) -> list[int]:
    images = captured(lab, item, n)
    for image in images:
        A.add_box(lab.catalog, image, class_name, 10, 10, 40, 30, source="ground_truth")
    return images


def class_of(lab, image: int) -> list[str]:
    return [b.class_name for b in A.labels_of(lab.catalog, image).boxes]


def counters_match(lab) -> bool:
    return label_store.counters(lab.catalog) == label_store.recount(lab.catalog)


def audit(lab, entity: str) -> list[tuple[str, str]]:
    return [(r["action"], r["entity_key"]) for r in lab.catalog.query(
        "SELECT action, entity_key FROM audit_log WHERE entity = ? ORDER BY id", (entity,))]


def plan_versions(lab) -> list[tuple[int, str, str]]:
    return [(r["version"], r["status"], r["spec_json"]) for r in lab.catalog.query(
        "SELECT version, status, spec_json FROM quota_plans WHERE name = 'pilot' ORDER BY version")]


def plan_classes(lab, version: int) -> set[str]:
    return {r["name"] for r in lab.catalog.query(
        """SELECT c.name FROM quota_plan_classes pc JOIN quota_plans p ON p.id = pc.plan_id
           JOIN threat_classes c ON c.id = pc.class_id WHERE p.name = 'pilot' AND p.version = ?""", (version,))}


def dump(lab) -> list[str]:
    conn = sqlite3.connect(lab.catalog.path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def test_rename_keeps_boxes_and_reports_plans_and_kpi_results_then_drafts_the_next_plan(lab):
    (image,) = boxed(lab, "TI-3", "knife_folding")
    published = plan_versions(lab)
    change = C.rename_class(lab.catalog, "knife_folding", "knife_folding_open", actor="ana")
    assert class_of(lab, image) == ["knife_folding_open"]
    assert [p["plan"] for p in change.plans] == ["pilot"] and change.drafted == []
    assert [r["run_label"] for r in change.kpi_results] == ["run-1"]
    assert plan_versions(lab) == published  # nothing drafted without update_plans
    (row,) = C.history(lab.catalog, "knife_folding_open")
    assert (row["action"], row["actor"], row["detail"]["from"], row["detail"]["to"]) == (
        "rename", "ana", "knife_folding", "knife_folding_open")
    assert ("rename", "knife_folding") in audit(lab, "threat_classes")
    assert ("class_change", "pilot v1") in audit(lab, "quota_plan") and len(audit(lab, "kpi_results")) == 1
    assert counters_match(lab)

    change = C.rename_class(lab.catalog, "knife_folding_open", "folding_knife", update_plans=True)
    assert change.drafted == ["pilot v2"]
    (v1, s1, spec1), (v2, s2, spec2) = plan_versions(lab)
    assert (v1, s1, spec1) == published[0]  # the published version never changes
    assert s2 == "draft" and json.loads(spec2)["classes"]["folding_knife"] == {"detection_rate": 0.8}
    assert "knife_folding" not in json.loads(spec2)["classes"]


def test_move_to_another_family(lab):
    C.move_class(lab.catalog, "knife_folding", "tools", actor="ana")
    assert label_store.class_rows(lab.catalog)["knife_folding"]["family"] == "tools"
    (row,) = C.history(lab.catalog, "knife_folding")
    assert (row["action"], row["detail"]["from"], row["detail"]["to"]) == ("move", "knives", "tools")
    with pytest.raises(LabelError, match="in family 'tools' already"):
        C.move_class(lab.catalog, "knife_folding", "tools")


def test_merge_moves_boxes_items_and_maps_retires_the_class_and_keeps_the_past_readable(lab):
    folded = boxed(lab, "TI-3", "knife_folding", 2)
    kitchen = boxed(lab, "TI-1", "knife_kitchen")
    with lab.catalog.write() as txn:
        label_store.save_class_map(txn, "sixray", {"Knife": label_store.class_ids(txn)["knife_folding"]})
    frozen_at = A.clock(lab.catalog)
    frozen_revisions = [b.revision_id for i in folded for b in A.labels_of(lab.catalog, i).boxes]
    ids = label_store.class_ids(lab.catalog)

    change = C.merge_classes(lab.catalog, "knife_folding", "knife_kitchen", update_plans=True, actor="ana")
    assert (change.boxes_changed, change.items_moved, change.class_maps_moved) == (2, 1, 1)
    for image in folded + kitchen:
        assert class_of(lab, image) == ["knife_kitchen"]
    box = A.labels_of(lab.catalog, folded[0]).boxes[0]
    assert box.source == "manual" and box.actor == "ana"
    note = lab.catalog.query_one("SELECT note FROM annotation_revisions WHERE id = ?", (box.revision_id,))["note"]
    assert note == "class knife_folding merged into knife_kitchen"
    # Items, class map, retirement, quota tallies.
    assert lab.catalog.query_one("SELECT class_id FROM threat_items WHERE barcode = 'TI-3'")["class_id"] == ids["knife_kitchen"]
    assert label_store.class_map(lab.catalog, "sixray") == {"Knife": ids["knife_kitchen"]}
    assert label_store.class_rows(lab.catalog)["knife_folding"]["active"] == 0
    tallied = {r["class_key"] for r in lab.catalog.query("SELECT class_key FROM cell_tally WHERE images > 0")}
    assert tallied == {ids["knife_kitchen"]}
    # Counters follow, and equal a recount.
    counts = A.class_counts(lab.catalog)
    assert "knife_folding" not in counts and counts["knife_kitchen"] == {"unreviewed": 3}
    assert counters_match(lab)
    # What a version frozen before the merge holds still reads the old class.
    assert {r["class_name"] for r in label_store.revisions(lab.catalog, frozen_revisions)} == {"knife_folding"}
    assert class_of_as_of(lab, folded[0], frozen_at) == ["knife_folding"]
    # Plans and KPIs: reported, audited; the next draft has no targets for the retired class.
    assert change.drafted == ["pilot v2"] and [r["run_label"] for r in change.kpi_results] == ["run-1"]
    assert "knife_folding" in plan_classes(lab, 1) and "knife_folding" not in plan_classes(lab, 2)
    assert "knife_kitchen" in plan_classes(lab, 2)
    assert audit(lab, "kpi_results")[0][0] == "class_change"
    (row,) = C.history(lab.catalog, "knife_kitchen")
    assert (row["action"], row["class_name"], row["other_class_name"]) == ("merge", "knife_folding", "knife_kitchen")
    # A retired class cannot be merged or boxed into again; no open flag came of the merge.
    with pytest.raises(LabelError, match="retired"):
        C.merge_classes(lab.catalog, "knife_folding", "handgun")
    assert [f for f in qa.queue(lab.catalog) if f["image_id"] in folded] == []


def class_of_as_of(lab, image: int, seq: int) -> list[str]:
    return [b.class_name for b in A.labels_of(lab.catalog, image, as_of=seq).boxes]


def test_a_dataset_version_frozen_before_a_merge_exports_the_class_it_was_frozen_with(lab, tmp_path):
    from core.datasets import versions
    from core.labels.exports import export_labels

    folded = boxed(lab, "TI-3", "knife_folding", 2)
    frozen = versions.freeze(lab.catalog, "pilot-test", "test", plan="pilot")
    assert frozen.images == 2
    C.merge_classes(lab.catalog, "knife_folding", "knife_kitchen")
    assert all(class_of(lab, i) == ["knife_kitchen"] for i in folded)
    members = versions.store.members(lab.catalog, versions.resolve(lab.catalog, "pilot-test@1")["id"])
    revision_ids = [int(r) for m in members for r in m[-1].split()]
    export_labels(lab, "coco", tmp_path / "out", image_ids=[m[0] for m in members], revision_ids=revision_ids,
                  as_of=frozen.label_seq, with_images=False)
    coco = json.loads((tmp_path / "out" / "annotations.json").read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    assert sorted(names[a["category_id"]] for a in coco["annotations"]) == ["knife_folding", "knife_folding"]


def test_split_by_item_rule_boxes_follow_their_images_item(lab):
    one = boxed(lab, "TI-1", "knife_kitchen", 2)
    two = boxed(lab, "TI-2", "knife_kitchen")
    outside = boxed(lab, None, "knife_kitchen")
    folded = boxed(lab, "TI-3", "knife_folding")
    change = C.split_class(lab.catalog, "knife_kitchen", {"chef_knife": ["TI-1"]}, rest="bread_knife",
                           update_plans=True, actor="ana")
    assert (change.boxes_changed, change.items_moved, change.boxes_for_review) == (4, 2, 0)
    assert all(class_of(lab, i) == ["chef_knife"] for i in one)
    assert class_of(lab, two[0]) == ["bread_knife"] and class_of(lab, outside[0]) == ["bread_knife"]
    assert class_of(lab, folded[0]) == ["knife_folding"]
    rows = label_store.class_rows(lab.catalog)
    assert rows["chef_knife"]["family"] == rows["bread_knife"]["family"] == "knives"
    assert rows["knife_kitchen"]["active"] == 0
    items = {r["barcode"]: r["name"] for r in lab.catalog.query(
        "SELECT t.barcode, c.name FROM threat_items t JOIN threat_classes c ON c.id = t.class_id")}
    assert items["TI-1"] == "chef_knife" and items["TI-2"] == "bread_knife"
    assert counters_match(lab)
    (row,) = C.history(lab.catalog, "knife_kitchen")
    assert row["detail"]["into"] == {"chef_knife": ["TI-1"], "bread_knife": ["TI-2"]}
    assert row["detail"]["rest"] == "bread_knife"
    # Both new classes got the old one's plan settings in the next draft; no open flag on these images.
    spec = json.loads(plan_versions(lab)[-1][2])
    assert spec["classes"]["chef_knife"] == spec["classes"]["bread_knife"] == {"ratio_step": 2}
    assert {"chef_knife", "bread_knife"} <= plan_classes(lab, 2) and "knife_kitchen" not in plan_classes(lab, 2)
    assert [f for f in qa.queue(lab.catalog) if f["image_id"] in one + two] == []
    assert ("create", "chef_knife") in audit(lab, "threat_classes")


def test_split_for_review_flags_each_undecided_box_until_it_is_reclassed(lab):
    one = boxed(lab, "TI-1", "knife_kitchen")
    outside = boxed(lab, None, "knife_kitchen", 2)
    change = C.split_class(lab.catalog, "knife_kitchen", {"chef_knife": ["TI-1"], "bread_knife": ["TI-2"]},
                           review=True)
    assert (change.boxes_changed, change.boxes_for_review) == (1, 2)
    assert class_of(lab, one[0]) == ["chef_knife"] and class_of(lab, outside[0]) == ["knife_kitchen"]
    flags = [f for f in qa.queue(lab.catalog) if f["code"] == "class_split"]
    assert sorted(f["image_id"] for f in flags) == outside
    assert all(f["reason"].startswith("class split: review") and "split into bread_knife, chef_knife" in f["reason"]
               for f in flags)
    assert counters_match(lab)
    (box,) = A.labels_of(lab.catalog, outside[0]).boxes
    A.edit_box(lab.catalog, box.annotation_id, class_name="bread_knife")
    assert [f["image_id"] for f in qa.queue(lab.catalog) if f["code"] == "class_split"] == [outside[1]]


@pytest.mark.parametrize("change, message", [
    (lambda c: C.rename_class(c, "knife_folding", "handgun"), "'handgun' exists already"),
    (lambda c: C.rename_class(c, "sword", "blade"), "no threat class named 'sword'"),
    (lambda c: C.merge_classes(c, "handgun", "handgun"), "into itself"),
    (lambda c: C.merge_classes(c, "knife_folding", "rifle"), "no threat class named 'rifle'"),
    (lambda c: C.move_class(c, "handgun", "swords"), "no threat family named 'swords'"),
    (lambda c: C.split_class(c, "knife_kitchen", {"a": ["TI-1"], "handgun": ["TI-2"]}), "'handgun' exists already"),
    (lambda c: C.split_class(c, "knife_kitchen", {"a": ["TI-1"], "b": []}), "TI-2 of class 'knife_kitchen' go to no class"),
    (lambda c: C.split_class(c, "knife_kitchen", {"a": ["TI-1", "TI-3"]}, rest="b"), "'TI-3' is not an item of class"),
    (lambda c: C.split_class(c, "knife_kitchen", {"a": ["TI-1"]}, rest="b", review=True), "not both"),
    (lambda c: C.split_class(c, "knife_kitchen", {"a": ["TI-1", "TI-2"]}), "at least two classes"),
])
def test_refused_changes_change_nothing(lab, change, message):
    boxed(lab, "TI-1", "knife_kitchen")
    boxed(lab, "TI-3", "knife_folding")
    before = dump(lab)
    with pytest.raises(LabelError, match=message):
        change(lab.catalog)
    assert dump(lab) == before


def test_a_change_that_fails_half_way_leaves_nothing(lab, monkeypatch):
    """All or nothing: the plan draft fails after boxes and items were rewritten in the transaction."""
    from core.errors import PlanError
    from core.quota import plans

    boxed(lab, "TI-3", "knife_folding")
    before = dump(lab)

    def refuse(txn, spec, keep_overrides=True):
        raise PlanError("the plan cannot be drafted")

    monkeypatch.setattr(plans, "draft_plan_in", refuse)
    with pytest.raises(PlanError):
        C.merge_classes(lab.catalog, "knife_folding", "knife_kitchen", update_plans=True)
    assert dump(lab) == before


def test_cli_class_commands(lab, capsys):
    from core.cli.main import main

    boxed(lab, "TI-3", "knife_folding")
    root = str(lab.paths.root)
    lab.close()
    assert main(["class", "merge", "knife_folding", "knife_kitchen", "--lab", root, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["action"] == "merge" and out["boxes_changed"] == 1 and out["plans"][0]["plan"] == "pilot"
    assert main(["class", "split", "knife_kitchen", "--into", "chef:TI-1", "--rest", "bread", "--lab", root]) == 0
    assert "split recorded in the class history" in capsys.readouterr().out
    assert main(["class", "rename", "chef", "bread", "--lab", root]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'bread' exists already" in err[0]
    assert main(["class", "history", "--lab", root, "--json"]) == 0
    assert [r["action"] for r in json.loads(capsys.readouterr().out)] == ["merge", "split"]
