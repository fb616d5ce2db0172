"""The capture planner: split pools, caps, exact fill, capacity, test first,
determinism and re-planning after partial progress."""

from collections import Counter, defaultdict
from datetime import date

import pytest

from core.capture.planner import PlanOptions, changeover_cost, plan_captures
from core.capture.sessions import list_sessions, scan_barcode, session_view, start_session
from core.catalog.images import insert_images
from core.cli import main
from core.errors import CatalogError, PlanError
from core.progress import run_to_end
from core.quota.plans import resolve_plan
from core.quota.status import quota_status

MONDAY = date(2026, 11, 23)


def run(lab, **options):
    return run_to_end(plan_captures(lab, PlanOptions(start=MONDAY, **options), actor="planner"))


def lookup(lab):
    """Independent of the planner: each object's class / luggage type / clutter, each scanner's model."""
    q = lab.catalog.query
    return {
        "item_class": {r["id"]: r["class_id"] for r in q("SELECT id, class_id FROM threat_items")},
        "bag": {r["id"]: (r["luggage_type_id"], r["clutter_level"]) for r in q("SELECT * FROM bags")},
        "model": {r["id"]: r["model_id"] for r in q("SELECT id, model_id FROM scanners")},
        "pool": {(r["kind"], r["object_id"]): r["split"] for r in q("SELECT * FROM split_pools")},
    }


def cell_key(ref, step, scanner_id):
    lt, clutter = ref["bag"][step.bag_id]
    return (ref["item_class"].get(step.item_id), lt, clutter, ref["model"][scanner_id], step.pose_id)


def test_test_and_train_use_disjoint_items_and_bags_balanced_per_class(demo_lab):
    plan = run(demo_lab, shifts=40, weekends=True)
    ref = lookup(demo_lab)
    used = defaultdict(set)
    for session in plan.sessions:
        for st in session.steps:
            used[st.split].add(("bag", st.bag_id))
            if st.item_id:
                used[st.split].add(("item", st.item_id))
            assert ref["pool"][("bag", st.bag_id)] == st.split
            assert st.item_id is None or ref["pool"][("item", st.item_id)] == st.split
    assert used["test"] and used["train"] and not used["test"] & used["train"]
    # every class has items in both pools (3 items: 2 test, 1 train), every luggage type x clutter bags in both
    per_class = Counter((ref["item_class"][oid], split) for (kind, oid), split in ref["pool"].items() if kind == "item")
    assert set(per_class.values()) == {1, 2} and len(per_class) == 2 * len(set(ref["item_class"].values()))
    per_stratum = Counter((ref["bag"][oid], split) for (kind, oid), split in ref["pool"].items() if kind == "bag")
    assert set(per_stratum.values()) == {3}
    # the catalog itself refuses a train step with a test item
    test_item = next(oid for (kind, oid), split in ref["pool"].items() if kind == "item" and split == "test")
    train_bag = next(oid for (kind, oid), split in ref["pool"].items() if kind == "bag" and split == "train")
    with pytest.raises(CatalogError, match="never used for training"):
        with demo_lab.catalog.write() as txn:
            insert_images(txn, [("x", "p", "", 1, "t", "t", "train", test_item, train_bag, 1, 1, 1, 16, 1, "", 1)])


def test_every_step_is_a_new_setup_at_the_cap_and_fills_each_deficit_exactly(demo_lab):
    plan_row = resolve_plan(demo_lab.catalog, "demo-test-set")
    plan = run(demo_lab, shifts=60, weekends=True)
    assert plan.report["unscheduled_setups"] == 0
    ref = lookup(demo_lab)
    setups = Counter()
    planned = Counter()
    for session in plan.sessions:
        for st in session.steps:
            assert st.images == plan_row["images_per_setup"]
            setups[(st.split, ref["model"][session.scanner_id], st.bag_id, st.item_id, st.pose_id)] += 1
            planned[(st.split, *cell_key(ref, st, session.scanner_id))] += 1
    assert max(setups.values()) == 1  # never the same item x bag x pose twice on a model
    short = Counter()
    for u in plan.report["unplannable"]:
        short[(u["split"], u["cell_id"])] += u["missing"]
    cells = demo_lab.catalog.query("SELECT * FROM quota_cells WHERE plan_id = ?", (plan_row["id"],))
    for c in cells:
        key = (c["class_id"], c["luggage_type_id"], c["clutter_level"], c["scanner_model_id"], c["pose_id"])
        for split in ("test", "train"):
            want = c[f"{split}_target"]
            assert planned[(split, *key)] + short[(split, c["id"])] == want, (split, dict(c))
    assert sum(short.values()) == plan.report["unplannable_setups"]


def test_capacity_bags_per_shift_test_first_and_changeovers(demo_lab):
    plan = run(demo_lab, shifts=3, rate_per_hour=40, shift_hours=6, rates={"SCN-D": 20})
    assert plan.report["unscheduled_by_split"]["test"] > 0
    assert plan.report["setups_by_split"]["train"] == 0  # test first: no train while test waits
    bag_at = {}
    for s in plan.sessions:
        assert s.images <= (120 if s.scanner == "SCN-D" else 240)
        assert date.fromisoformat(s.session_date).weekday() < 5
        for st in s.steps:
            assert bag_at.setdefault((s.session_date, s.shift, st.bag_id), s.scanner) == s.scanner
        # each bag is one run of steps in its session: packed once
        runs = [st.bag_id for i, st in enumerate(s.steps) if i == 0 or s.steps[i - 1].bag_id != st.bag_id]
        assert len(runs) == len(set(runs))
    c = plan.report["changeovers"]
    assert c == changeover_cost(plan.sessions)
    assert c["lower_bound"] <= c["cost"] <= c["lower_bound"] + 3 * len(plan.sessions)
    train_first = run(demo_lab, shifts=3, splits=("train", "test"))
    assert train_first.report["setups_by_split"]["train"] > 0 and train_first.report["setups_by_split"]["test"] == 0


def test_the_same_catalog_gives_the_same_plan(demo_lab, tmp_path):
    from core.demo import create_demo_lab

    def steps(plan):
        return [(s.scanner, s.session_date, [(st.bag_id, st.item_id, st.pose_id, st.split, st.images) for st in s.steps])
                for s in plan.sessions]

    first = run(demo_lab, shifts=4)
    again = run(demo_lab, shifts=4)
    other = create_demo_lab(tmp_path / "other", plan_sessions=False)
    try:
        assert steps(first) == steps(again) == steps(run(other, shifts=4))
    finally:
        other.close()
    assert again.report["replaced_sessions"] == len(first.sessions)
    live = list_sessions(demo_lab, "all")
    assert len(live) == len(again.sessions)  # replaced ones are kept but not listed
    assert demo_lab.catalog.query_one("SELECT COUNT(*) AS n FROM capture_sessions")["n"] == 2 * len(first.sessions)


def test_replanning_keeps_done_and_started_work_and_plans_only_what_is_missing(demo_lab):
    plan_id = resolve_plan(demo_lab.catalog, "demo-test-set")["id"]
    first = run(demo_lab, shifts=60, weekends=True)
    total = first.report["steps"]
    session = list_sessions(demo_lab, MONDAY.isoformat(), "SCN-A")[0]
    start_session(demo_lab, session["id"], "ana", host="bench-1")
    view = session_view(demo_lab, session["id"])
    done_steps = view.steps[:3]
    # The first three steps captured (one image each, what ingest writes for a confirmed step).
    for n, st in enumerate(done_steps):
        for tag in (st["bag"], st["item"]):
            if tag:
                assert scan_barcode(demo_lab, session["id"], tag, "ana").accepted
        with demo_lab.catalog.write() as txn:
            insert_images(txn, [(f"img{n}", "p", "", session["scanner_id"], "t", "t", st["split"], st["item_id"],
                                 st["bag_id"], st["pose_id"], 1, 1, 16, 1, "", 1)])
            txn.execute("UPDATE images SET step_id = ? WHERE sha256 = ?", (st["id"], f"img{n}"))
            txn.execute("UPDATE capture_steps SET status = 'done' WHERE id = ?", (st["id"],))
            txn.execute("UPDATE capture_steps SET status = 'active' WHERE session_id = ? AND position = ?",
                        (session["id"], st["position"] + 1))
    before = quota_status(demo_lab.catalog, plan_id).totals()
    second = run(demo_lab, shifts=60, weekends=True)
    assert second.report["kept_started_sessions"] == 1
    remaining_in_started = len(view.steps) - 3
    assert second.report["steps"] == total - 3 - remaining_in_started
    assert before["test_done"] + before["train_done"] == 3
    kept = session_view(demo_lab, session["id"])
    assert [s["status"] for s in kept.steps[:4]] == ["done", "done", "done", "active"]
    model = lookup(demo_lab)["model"]
    planned = {(model[s.scanner_id], st.bag_id, st.item_id, st.pose_id, st.split) for s in second.sessions for st in s.steps}
    started = {(model[session["scanner_id"]], s["bag_id"], s["item_id"], s["pose_id"], s["split"]) for s in kept.steps}
    assert not planned & started
    # today's SCN-A is taken by the started session
    assert all(not (s.scanner == "SCN-A" and s.session_date == MONDAY.isoformat()) for s in second.sessions)


def test_bad_options_and_missing_pools_are_reported(demo_lab, empty_lab):
    with pytest.raises(PlanError, match="unknown split"):
        run(demo_lab, splits=("test", "validation"))
    with pytest.raises(PlanError, match="between 0 and 1"):
        run(demo_lab, test_share=1.0)
    from core.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="SCN-X"):
        run(demo_lab, rates={"SCN-X": 10})
    with pytest.raises(UnknownNameError, match="no quota plan"):
        run(empty_lab)
    # only train-pool objects exist for pistols: the report says why test cannot be planned
    with demo_lab.catalog.write() as txn:
        txn.execute("""INSERT INTO split_pools SELECT 'item', id, 'train', 't', 'test' FROM threat_items
                       WHERE class_id = (SELECT id FROM threat_classes WHERE name = 'pistol')""")
    plan = run(demo_lab, shifts=1, dry_run=True)
    reasons = {u["reason"] for u in plan.report["unplannable"]}
    assert "no test-pool item of this class" in reasons
    assert plan.id is None and not list_sessions(demo_lab, "all")


def test_cli_plan_prints_sessions_and_the_changeover_bound(demo_lab, capsys):
    root = str(demo_lab.paths.root)
    assert main(["plan", "--lab", root, "--start", "2026-11-23", "--shifts", "2", "--scanner-rate", "SCN-D=30"]) == 0
    out = capsys.readouterr().out
    assert "SCN-D" in out and "lower bound" in out and "2026-11-24" in out
    assert main(["plan", "--lab", root, "--scanner-rate", "SCN-D"]) == 2
    assert "SCANNER=IMAGES_PER_HOUR" in capsys.readouterr().err
    assert main(["session", "list", "--lab", root, "--day", "2026-11-23"]) == 0
    assert "SCN-A" in capsys.readouterr().out
