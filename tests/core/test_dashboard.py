"""Dashboards against independent pandas computations; KPI verdicts; exports."""

from datetime import date

import pandas as pd
import pytest

from core.catalog.images import insert_images
from core.catalog.records import all_rows
from core.cli import main
from core.dashboard.classes import class_progress, import_kpi_results
from core.dashboard.export import export_table, write_report
from core.dashboard.heatmap import quota_heatmap
from core.dashboard.production import production, set_production_settings
from core.errors import InputFileError, XLabError
from core.inventory import import_inventory
from core.inventory.yamlfile import parse_inventory
from core.lab import Lab
from core.quota.plans import create_plan, publish_plan, resolve_plan
from core.quota.spec import CleanSpec, KpiSpec, PlanSpec
from core.quota.status import quota_status
from tests.bench.seed import inventory_text, seed_catalog

DIMS = {"class": "class_name", "luggage_type": "luggage_type", "clutter": "clutter_level",
        "scanner_model": "scanner_model", "pose": "pose"}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    lab = Lab.init(tmp_path_factory.mktemp("dash") / "lab")
    seed_catalog(lab, n_classes=3, n_images=4000, seed=5)
    yield lab
    lab.close()


def pandas_cells(lab, plan_id):
    """Per quota cell and split: target and distinct setups, straight from the images."""
    conn = lab.catalog.reader()
    images = pd.read_sql(
        """SELECT i.split, IFNULL(tc.name, '(clean)') AS class_name, lt.name AS luggage_type, b.clutter_level,
                  sm.name AS scanner_model, IFNULL(p.name, '—') AS pose, i.bag_id, IFNULL(i.item_id, 0) AS item,
                  IFNULL(i.pose_id, 0) AS pose_key
           FROM images i JOIN bags b ON b.id = i.bag_id JOIN luggage_types lt ON lt.id = b.luggage_type_id
           JOIN scanners s ON s.id = i.scanner_id JOIN scanner_models sm ON sm.id = s.model_id
           LEFT JOIN threat_items ti ON ti.id = i.item_id LEFT JOIN threat_classes tc ON tc.id = ti.class_id
           LEFT JOIN poses p ON p.id = i.pose_id WHERE i.usable = 1 AND i.split IS NOT NULL""", conn)
    keys = list(DIMS.values())
    setups = (images.drop_duplicates(["split", *keys, "bag_id", "item", "pose_key"])
              .groupby(["split", *keys]).size().rename("setups").reset_index())
    cells = pd.read_sql(
        """SELECT IFNULL(tc.name, '(clean)') AS class_name, lt.name AS luggage_type, c.clutter_level,
                  sm.name AS scanner_model, IFNULL(p.name, '—') AS pose, c.test_target, c.train_target
           FROM quota_cells c JOIN luggage_types lt ON lt.id = c.luggage_type_id
           JOIN scanner_models sm ON sm.id = c.scanner_model_id LEFT JOIN threat_classes tc ON tc.id = c.class_id
           LEFT JOIN poses p ON p.id = c.pose_id WHERE c.plan_id = ?""", conn, params=(plan_id,))
    for split in ("test", "train"):
        part = setups[setups.split == split].drop(columns="split").rename(columns={"setups": f"{split}_setups"})
        cells = cells.merge(part, on=keys, how="left")
        cells[f"{split}_setups"] = cells[f"{split}_setups"].fillna(0).astype(int)
        cells[f"{split}_done"] = cells[[f"{split}_setups", f"{split}_target"]].min(axis=1)
    return cells


@pytest.mark.parametrize("rows,cols,split,where", [
    ("class", "luggage_type", "test", {}),
    ("class", "scanner_model", "train", {"clutter": ["high"]}),
    ("pose", "clutter", "test", {"class": ["class_001", "class_002"], "scanner_model": ["DX-620"]}),
])
def test_heatmap_matches_pandas(seeded, rows, cols, split, where):
    plan_id = resolve_plan(seeded.catalog, "bench-plan")["id"]
    heat = quota_heatmap(quota_status(seeded.catalog, plan_id), rows, cols, split, where)
    cells = pandas_cells(seeded, plan_id)
    for dim, values in where.items():
        cells = cells[cells[DIMS[dim]].isin(values)]
    expected = cells.groupby([DIMS[rows], DIMS[cols]])[[f"{split}_target", f"{split}_done"]].sum()
    got = {(r[rows], r[cols]): (r["target"], r["done"]) for r in heat.as_rows()}
    want = {k: (int(v[f"{split}_target"]), int(v[f"{split}_done"])) for k, v in expected.iterrows()
            if v[f"{split}_target"]}
    assert got == want and got
    assert sum(d for _, d in got.values()) > 0


def test_heatmap_rejects_bad_dimensions(seeded):
    status = quota_status(seeded.catalog, resolve_plan(seeded.catalog, "bench-plan")["id"])
    with pytest.raises(XLabError, match="unknown dimension"):
        quota_heatmap(status, "colour", "pose")
    with pytest.raises(XLabError, match="two different"):
        quota_heatmap(status, "pose", "pose")


def test_production_matches_pandas_and_forecasts(seeded):
    status = quota_status(seeded.catalog, resolve_plan(seeded.catalog, "bench-plan")["id"])
    prod = production(seeded.catalog, status, "2026-03", today=date(2026, 3, 20))
    images = pd.read_sql("SELECT substr(captured_at, 1, 10) AS day, s.name AS scanner FROM images i "
                         "JOIN scanners s ON s.id = i.scanner_id", seeded.catalog.reader())
    march = images[(images.day >= "2026-03-01") & (images.day <= "2026-03-20")]  # "today" is the 20th
    per_day = march.groupby("day").size()
    assert {d["day"]: d["images"] for d in prod.days if d["images"]} == per_day.to_dict()
    assert prod.days[19]["cumulative"] == len(march) == prod.month_images
    # days after today have nothing to draw yet
    assert all(d["images"] is None and d["cumulative"] is None for d in prod.days[20:])
    assert {r["scanner"]: r["images"] for r in prod.by_scanner} == march.groupby("scanner").size().to_dict()
    # target: 130,000 over March's 22 working days; by the (finished) 20th, 15 working days have passed
    assert prod.month_working_days == 22 and prod.month_target_to_date == round(130_000 * 15 / 22)
    # recent rate: the 10 working days up to the 20th, which is over
    working = pd.bdate_range("2026-03-09", "2026-03-20").strftime("%Y-%m-%d")
    assert prod.recent_rate == pytest.approx(images[images.day.isin(working)].shape[0] / 10)
    assert prod.rate.basis.startswith(f"{prod.recent_rate:,.0f}/working day over the last 9 working days (Mar 9–19) "
                                      "and today (Mar 20, a whole working day)")
    test_left = prod.forecasts[0]
    totals = status.totals()
    assert test_left.remaining_images == totals["test_target"] - totals["test_done"]
    assert test_left.eta > date(2026, 3, 20)
    steps = prod.forecasts[1:6]
    assert [f.what[:14] for f in steps] == [f"ratio step {k}:1" for k in range(1, 6)]
    assert [f.remaining_images for f in steps] == sorted(f.remaining_images for f in steps)
    assert all(f.basis == prod.rate.basis and f.rate == prod.recent_rate for f in prod.forecasts[:6])
    # each class's test set at its own rate of test images over the same working days
    classes = {f.what: f for f in prod.forecasts[6:]}
    split_images = pd.read_sql(
        "SELECT substr(i.captured_at, 1, 10) AS day, IFNULL(tc.name, 'clean bags') AS class_name, i.split FROM images i "
        "LEFT JOIN threat_items ti ON ti.id = i.item_id LEFT JOIN threat_classes tc ON tc.id = ti.class_id",
        seeded.catalog.reader())
    recent_test = split_images[split_images.day.isin(working) & (split_images.split == "test")]
    for entry in status.by_class():
        name = "clean bags" if entry["class_name"] == "(clean)" else entry["class_name"]
        f = classes[f"test set of {name}"]
        assert f.remaining_images == entry["test_target"] - entry["test_done"]
        assert f.rate == pytest.approx((recent_test.class_name == name).sum() / 10)
        if f.remaining_images:
            assert f.working_days == pytest.approx(f.remaining_images / f.rate)
    set_production_settings(seeded.catalog, monthly_target=100_000, working_days=["mon", "tue", "wed", "thu"])
    try:
        again = production(seeded.catalog, status, "2026-03", today=date(2026, 3, 20))
        assert again.month_working_days == 18 and again.days[-1]["target_cumulative"] == 100_000
    finally:
        set_production_settings(seeded.catalog, monthly_target=130_000, working_days=["mon", "tue", "wed", "thu", "fri"])
    with pytest.raises(XLabError, match="working days"):
        set_production_settings(seeded.catalog, working_days=["someday"])


@pytest.fixture
def small_lab(tmp_path):
    """Two classes on one cell each, 4 test setups apiece: small enough to complete."""
    lab = Lab.init(tmp_path / "small")
    import_inventory(lab.catalog, parse_inventory(inventory_text(2, items_per_class=6).encode(), "inv.yaml"))
    spec = PlanSpec(name="small", defaults=KpiSpec(detection_rate=0.9, test_setups=4), clean=CleanSpec(setups=0),
                    mix={"luggage_type": {"hard_case": 1}, "clutter": {"low": 1}, "scanner_model": {"SX-100": 1},
                         "pose": {"flat": 1}})
    create_plan(lab.catalog, spec)
    publish_plan(lab.catalog, "small")
    yield lab
    lab.close()


def capture(lab, class_name, split, n):
    """n distinct setups of a class on its one cell (hard case, low clutter, SX-100, flat)."""
    ids = {t: all_rows(lab.catalog, t) for t in ("threat_items", "bags", "scanners", "poses", "threat_classes")}
    class_id = next(c["id"] for c in ids["threat_classes"] if c["name"] == class_name)
    lt = lab.catalog.query_one("SELECT id FROM luggage_types WHERE name = 'hard_case'")["id"]
    odd = 1 if split == "test" else 0
    items = [i["id"] for i in ids["threat_items"] if i["class_id"] == class_id and i["id"] % 2 == odd]
    bags = [b["id"] for b in ids["bags"] if b["luggage_type_id"] == lt and b["clutter_level"] == "low" and b["id"] % 2 == odd]
    scanner = next(s["id"] for s in ids["scanners"] if s["model_id"] == 1)
    pose = next(p["id"] for p in ids["poses"] if p["name"] == "flat")
    rows = [(f"{class_name}-{split}-{k}", "s", "", scanner, "2026-11-02T10:00:00", "t", split, items[k % len(items)],
             bags[k // len(items)], pose, 1, 1, 16, 1, "", 1) for k in range(n)]
    with lab.catalog.write() as txn:
        insert_images(txn, rows)


def test_class_verdicts_follow_data_and_the_latest_kpi_result(small_lab, tmp_path):
    lab = small_lab
    plan_id = resolve_plan(lab.catalog, "small")["id"]

    def verdicts():
        return {r["class_name"]: r for r in class_progress(lab.catalog, quota_status(lab.catalog, plan_id))}

    assert {v["verdict"] for v in verdicts().values()} == {"test set incomplete"}
    capture(lab, "class_000", "test", 4)
    capture(lab, "class_001", "test", 4)
    capture(lab, "class_001", "train", 4)
    v = verdicts()
    assert v["class_000"]["verdict"] == "train incomplete" and v["class_000"]["blocks"]
    assert v["class_001"]["verdict"] == "awaiting evaluation" and not v["class_001"]["blocks"]
    assert v["class_001"]["ratio"] == 1.0 and v["class_001"]["test_fill"] == 1.0
    good = tmp_path / "kpi.csv"
    good.write_text("class,run,evaluated_at,positives,detected,negatives,false_alarms\n"
                    "class_001,run-1,2026-11-10,400,372,1000,30\n")
    assert import_kpi_results(lab.catalog, good) == 1
    row = verdicts()["class_001"]
    assert row["verdict"] == "meets KPI" and row["detection_rate"] == pytest.approx(0.93)
    assert row["dr_low"] < 0.93 < row["dr_high"] and row["false_alarm_rate"] == pytest.approx(0.03)
    later = tmp_path / "kpi2.csv"
    later.write_text("class,run,evaluated_at,positives,detected,negatives,false_alarms\n"
                     "class_001,run-2,2026-11-20,400,380,1000,80\n")  # detects more, but too many false alarms
    import_kpi_results(lab.catalog, later)
    assert verdicts()["class_001"]["verdict"] == "needs next step"
    bad = tmp_path / "bad.csv"
    bad.write_text("class,run,evaluated_at,positives,detected,negatives,false_alarms\n"
                   "class_999,r,2026-11-20,10,5,10,1\nclass_000,r,2026-11-20,10,11,10,1\nclass_000,r,x,1,1,1,1\n")
    with pytest.raises(InputFileError) as problems:
        import_kpi_results(lab.catalog, bad)
    assert [p.line for p in problems.value.problems] == [2, 3, 4]
    assert len(lab.catalog.query("SELECT * FROM kpi_results")) == 2  # all or nothing


def test_exports_open_again(seeded, tmp_path):
    rows = [{"class": "a", "fill": 0.5}, {"class": "b", "fill": 1.0}]
    assert pd.read_csv(export_table(rows, tmp_path / "t.csv")).to_dict("records") == rows
    assert pd.read_excel(export_table(rows, tmp_path / "t.xlsx")).to_dict("records") == rows
    with pytest.raises(XLabError, match=".csv or .xlsx"):
        export_table(rows, tmp_path / "t.txt")
    from pypdf import PdfReader

    path = write_report(seeded, tmp_path / "report.pdf", today=date(2026, 3, 20), month="2026-03")
    text = "\n".join(page.extract_text() for page in PdfReader(path).pages)
    assert "weekly report" in text and "class_000" in text and "Production 2026-03" in text
    assert "ratio step 2:1" in text and "Quota fill, test" in text


def test_cli_dashboards(seeded, tmp_path, capsys):
    root = str(seeded.paths.root)
    assert main(["dashboard", "heatmap", "--lab", root, "--rows", "class", "--cols", "pose", "--json"]) == 0
    assert main(["dashboard", "classes", "--lab", root, "--export", str(tmp_path / "c.xlsx")]) == 0
    assert len(pd.read_excel(tmp_path / "c.xlsx")) == 3
    assert main(["dashboard", "production", "--lab", root, "--month", "2026-03", "--table", "scanners"]) == 0
    assert main(["dashboard", "heatmap", "--lab", root, "--where", "pose"]) == 2
    assert main(["report", "--lab", root, "-o", str(tmp_path / "r.pdf"), "--month", "2026-02"]) == 0
    assert (tmp_path / "r.pdf").read_bytes()[:4] == b"%PDF"
    assert main(["settings", "--lab", root]) == 0
    assert "130,000" in capsys.readouterr().out
