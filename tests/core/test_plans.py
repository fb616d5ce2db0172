import pandas as pd
import pytest

from core.catalog.images import insert_images
from core.catalog.records import all_rows
from core.errors import CatalogError, InputFileError, PlanError, PlanPublishedError, UnknownNameError
from core.quota.plans import CellKey, create_plan, list_plans, override_cell, plan_classes, publish_plan, resolve_plan
from core.quota.sizing import demonstration_sample_size, wilson_sample_size
from core.quota.spec import PlanSpec, parse_plan_spec, read_plan_spec
from core.quota.status import quota_status
from core.resources import resource

pytestmark = pytest.mark.both_backends


def _cells(lab, plan_id):
    return pd.DataFrame([dict(r) for r in lab.catalog.query("SELECT * FROM quota_cells WHERE plan_id = ?", (plan_id,))])


def test_demo_plan_sizes_every_class_from_its_kpi(demo_lab):
    plan = resolve_plan(demo_lab.catalog, "demo-test-set")
    assert plan["status"] == "published" and plan["version"] == 1
    classes = {c["class_name"]: c for c in plan_classes(demo_lab.catalog, plan["id"])}
    assert classes["pistol"]["required_setups"] == wilson_sample_size(0.95, 0.03)
    assert classes["grenade"]["required_setups"] == wilson_sample_size(0.90, 0.05)
    assert classes["detonator"]["required_setups"] == demonstration_sample_size(0.95, 1)
    cells = _cells(demo_lab, plan["id"])
    per_class = cells.dropna(subset=["class_id"]).groupby("class_id")[["test_target", "train_target"]].sum()
    for c in classes.values():
        assert per_class.loc[c["class_id"], "test_target"] == c["test_setups"]
        assert per_class.loc[c["class_id"], "train_target"] == c["test_setups"] * c["ratio_step"]
    assert classes["knife_folding_closed"]["ratio_step"] == 2
    clean = cells[cells["class_id"].isna()]
    assert clean["test_target"].sum() == plan["clean_setups"] == wilson_sample_size(0.05, 0.02)
    assert clean["pose_id"].isna().all()


def test_mix_marginals_are_exact_per_class(demo_lab):
    plan = resolve_plan(demo_lab.catalog, "demo-test-set")
    cells = _cells(demo_lab, plan["id"])
    luggage = {r["name"]: r["id"] for r in all_rows(demo_lab.catalog, "luggage_types")}
    pistol = cells[cells["class_id"] == next(r["id"] for r in all_rows(demo_lab.catalog, "threat_classes") if r["name"] == "pistol")]
    by_luggage = pistol.groupby("luggage_type_id")["test_target"].sum()
    # weights hard_case 3, soft_bag 3, backpack 2, tray 1, parcel 1 over 315
    assert by_luggage[luggage["hard_case"]] + by_luggage[luggage["soft_bag"]] == 189
    assert by_luggage[luggage["tray"]] in (31, 32)
    assert pistol.groupby("clutter_level")["test_target"].sum().to_dict() == {"high": 79, "low": 79, "medium": 157}


def test_published_plans_are_immutable_in_the_catalog(demo_lab):
    plan = resolve_plan(demo_lab.catalog, "demo-test-set")
    for sql in (
        "UPDATE quota_cells SET test_target = 1 WHERE plan_id = ?",
        "DELETE FROM quota_cells WHERE plan_id = ?",
        "UPDATE quota_plans SET note = 'x' WHERE id = ?",
    ):
        with pytest.raises(CatalogError, match="published"):
            with demo_lab.catalog.write() as txn:
                txn.execute(sql, (plan["id"],))
    with pytest.raises(PlanPublishedError):
        publish_plan(demo_lab.catalog, "demo-test-set")


def test_editing_a_published_plan_makes_a_new_version(demo_lab):
    v1 = resolve_plan(demo_lab.catalog, "demo-test-set")
    v1_cells = _cells(demo_lab, v1["id"])
    key = CellKey("pistol", "hard_case", "medium", "DX-620", "flat")
    ref = override_cell(demo_lab.catalog, "demo-test-set", key, 40, actor="manager")
    assert (ref.version, ref.status) == (2, "draft")
    pd.testing.assert_frame_equal(_cells(demo_lab, v1["id"]), v1_cells)
    v2_cells = _cells(demo_lab, ref.id)
    pistol_id = v2_cells.loc[v2_cells["overridden"] == 1, "class_id"].iloc[0]
    assert v2_cells.loc[v2_cells["overridden"] == 1, "test_target"].tolist() == [40]
    assert v2_cells[v2_cells["class_id"] == pistol_id]["test_target"].sum() == 315
    # the next edit goes to the same draft, and the override survives a rebuild from spec
    spec = read_plan_spec(resource("demo", "plan.yaml"))
    again = create_plan(demo_lab.catalog, spec, actor="manager")
    assert again.version == 2
    assert _cells(demo_lab, ref.id)["overridden"].sum() == 1
    publish_plan(demo_lab.catalog, "demo-test-set", actor="manager")
    assert [(p["version"], p["status"]) for p in list_plans(demo_lab.catalog)] == [(1, "published"), (2, "published")]
    actions = [r["action"] for r in demo_lab.catalog.query("SELECT action FROM audit_log WHERE actor = 'manager' ORDER BY id")]
    assert actions == ["create", "override_cell", "replace_draft", "publish"]


def test_releasing_an_override_restores_the_mix(demo_lab):
    v1 = _cells(demo_lab, resolve_plan(demo_lab.catalog, "demo-test-set")["id"])
    key = CellKey(None, "tray", "low", "SX-100", None)
    override_cell(demo_lab.catalog, "demo-test-set", key, 0)
    ref = override_cell(demo_lab.catalog, "demo-test-set", key, None)
    v2 = _cells(demo_lab, ref.id)
    assert v2["test_target"].tolist() == v1["test_target"].tolist()


def test_unknown_names_are_refused(demo_lab):
    with pytest.raises(UnknownNameError, match="no quota plan"):
        override_cell(demo_lab.catalog, "nope", CellKey(None, "tray", "low", "SX-100", None), 1)
    with pytest.raises(UnknownNameError, match="unknown name"):
        override_cell(demo_lab.catalog, "demo-test-set", CellKey("pistol", "suitcase", "low", "SX-100", "flat"), 1)
    with pytest.raises(UnknownNameError, match="not in the inventory"):
        create_plan(demo_lab.catalog, PlanSpec(name="x", classes={"laser_gun": {}}))
    with pytest.raises(UnknownNameError, match="mix.pose"):
        create_plan(demo_lab.catalog, PlanSpec(name="x", mix={"pose": {"handstand": 1}}))


def test_plan_spec_problems_are_all_reported():
    raw = b"name: p\ndefaults: {detection_rate: 1.5, sizing: guess}\nmix: {colour: {red: 1}}\nclasses: {pistol: {half_width: -1}}\n"
    with pytest.raises(InputFileError) as caught:
        parse_plan_spec(raw, "p.yaml")
    text = str(caught.value)
    for fragment in ("p.yaml:2: defaults.detection_rate", "p.yaml:2: defaults.sizing", "p.yaml:3: mix.colour", "p.yaml:4: classes.pistol.half_width"):
        assert fragment in text


@pytest.mark.parametrize(
    "line, message",
    [
        ("mix: {luggage_type: {hard_case: .inf}}", "mix.luggage_type.hard_case: must be a number from 0 to 1e+06 (got inf)"),
        ("classes: {pistol: {sizing: demonstration, misses_allowed: 1000000}}", "classes.pistol.misses_allowed: must be a whole number from 0 to 100"),
        ("defaults: {ratio_step: 1000000000}", "defaults.ratio_step: must be a whole number from 1 to 20"),
        ("defaults: {ratio_step: 0}", "defaults.ratio_step: must be a whole number from 1 to 20"),
        ("defaults: {test_setups: 99999999999999999999}", "defaults.test_setups: must be a whole number from 0 to 1,000,000"),
        ("clean: {half_width: .nan}", "clean.half_width: must be a number above 0 below 0.5 (got nan)"),
        ("mix: {clutter: {low: 0, high: 0}}", "mix.clutter: weights must not all be 0"),
    ],
)
def test_plan_spec_values_out_of_range_are_refused_with_their_line(line, message):
    with pytest.raises(InputFileError) as caught:
        parse_plan_spec(f"name: p\n{line}\n".encode(), "p.yaml")
    assert f"p.yaml:2: {message}" in str(caught.value)


def test_a_plan_too_large_to_build_is_refused_before_any_work(demo_lab, tmp_path):
    import time

    from core.inventory import import_inventory

    poses = tmp_path / "poses.yaml"
    poses.write_text("poses:\n" + "".join(f"- name: extra_{i}\n" for i in range(250)))
    import_inventory(demo_lab.catalog, poses)
    before = list_plans(demo_lab.catalog)
    started = time.monotonic()
    with pytest.raises(PlanError, match="quota cells"):
        create_plan(demo_lab.catalog, read_plan_spec(resource("demo", "plan.yaml")))
    assert time.monotonic() - started < 2
    assert list_plans(demo_lab.catalog) == before


def test_status_counts_setups_not_repeated_scans(demo_lab):
    plan = resolve_plan(demo_lab.catalog, "demo-test-set")
    ids = {t: {r.get("barcode") or r["name"]: r["id"] for r in all_rows(demo_lab.catalog, t)} for t in ("threat_items", "bags", "poses", "scanners")}
    # TI-0019 is a pistol; BG-0001 a low-clutter hard case; SCN-A a DX-620.
    # TI-0020 and BG-0016 (also a low-clutter hard case) go to train: test and train never share an object.
    row = lambda n, pose="flat", split="test", item="TI-0019", bag="BG-0001": (f"h{n}", "p", "", ids["scanners"]["SCN-A"], "t", "t", split, ids["threat_items"][item], ids["bags"][bag], ids["poses"][pose], 1, 1, 16, 1, "", 1)
    with demo_lab.catalog.write() as txn:
        insert_images(txn, [row(1), row(2), row(3), row(4, "edge_on"), row(5, split="train", item="TI-0020", bag="BG-0016")])
    with pytest.raises(CatalogError, match="never used for training"):
        with demo_lab.catalog.write() as txn:
            insert_images(txn, [row(6, split="train")])
    status = {(r["class_name"], r["luggage_type"], r["clutter_level"], r["scanner_model"], r["pose"]): r for r in quota_status(demo_lab.catalog, plan["id"]).as_dicts()}
    flat = status[("pistol", "hard_case", "low", "DX-620", "flat")]
    assert (flat["test_images"], flat["test_setups"], flat["train_setups"]) == (3, 1, 1)
    assert flat["test_deficit"] == flat["test_target"] - 1
    assert flat["test_fill"] == pytest.approx(1 / flat["test_target"])
    edge = status[("pistol", "hard_case", "low", "DX-620", "edge_on")]
    assert (edge["test_images"], edge["test_setups"]) == (1, 1)
