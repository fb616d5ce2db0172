"""Every benchmark in tests/bench runs here at smoke size, so none can silently
break, and each is checked for what it claims: its figures count what they say
they count, its baseline is measured in the same run and answers the same
question, and what it timed is right.

The full-size runs and their targets: tests/bench/run.sh (not part of the suite).
"""

from collections import defaultdict
from datetime import date

import pytest

from tests.bench import bench_quota_status, bench_startup


def _recompute_status_totals(lab, plan_name: str) -> dict[str, int]:
    """Per cell and split, images and distinct setups (item x bag), straight from the rows."""
    conn = lab.catalog.reader()
    plan_id = conn.execute("SELECT id FROM quota_plans WHERE name = ?", (plan_name,)).fetchone()[0]
    cells = conn.execute(
        "SELECT IFNULL(class_id, 0), luggage_type_id, clutter_level, scanner_model_id, IFNULL(pose_id, 0), "
        "test_target, train_target FROM quota_cells WHERE plan_id = ?", (plan_id,)).fetchall()
    images: dict[tuple, int] = defaultdict(int)
    setups: dict[tuple, set] = defaultdict(set)
    rows = conn.execute(
        "SELECT i.split, ti.class_id, b.luggage_type_id, b.clutter_level, s.model_id, i.pose_id, i.item_id, i.bag_id "
        "FROM images i JOIN bags b ON b.id = i.bag_id JOIN scanners s ON s.id = i.scanner_id "
        "LEFT JOIN threat_items ti ON ti.id = i.item_id WHERE i.usable = 1 AND i.split IS NOT NULL").fetchall()
    for split, cls, luggage, clutter, model, pose, item, bag in rows:
        key = (cls or 0, luggage, clutter, model, pose or 0, split)
        images[key] += 1
        setups[key].add((item, bag))
    out = dict.fromkeys(("test_images", "test_setups", "test_deficit", "train_images", "train_setups",
                         "train_deficit"), 0)
    for *key, test_target, train_target in cells:
        for split, target in (("test", test_target), ("train", train_target)):
            k = (*key, split)
            out[f"{split}_images"] += images.get(k, 0)
            out[f"{split}_setups"] += len(setups.get(k, ()))
            out[f"{split}_deficit"] += max(0, target - len(setups.get(k, ())))
    return out, len(cells)


def test_quota_status_benchmark_smoke(tmp_path):
    from core.lab import Lab
    from tests.bench.seed import seed_catalog

    result = bench_quota_status.run(images=3000, classes=3, repeats=1, baseline_repeats=1, root=tmp_path)
    assert result["cells"] == result["status_cells"] == 3 * 270 + 45
    # What was timed is right: the same catalog (the seed is fixed), recomputed row by row.
    lab = Lab.init(tmp_path / "again")
    seed_catalog(lab, n_classes=3, n_images=3000)
    want, cells = _recompute_status_totals(lab, "bench-plan")
    lab.close()
    assert cells == result["cells"]
    assert result["status_totals"] == want
    assert result["pandas_totals"] == want  # the baseline computes the same table
    assert want["test_images"] + want["train_images"] > 0 and want["test_setups"] > 0
    assert result["speedup"] == pytest.approx(result["pandas_ms"] / result["status_ms"])


def test_quota_status_benchmark_on_the_server_smoke(tmp_path):
    from tests.pg import postgres_url, skip_reason

    if postgres_url() is None:
        pytest.skip(skip_reason())
    result = bench_quota_status.run(images=3000, classes=3, repeats=1, baseline_repeats=1, root=tmp_path,
                                    server=True)
    served = result["server"]
    # The server's refresh, after the move, says what the file's said.
    assert served["status_totals"] == result["status_totals"] and served["status_ms"] > 0


def test_startup_benchmark_smoke():
    result = bench_startup.run(runs=1)
    # One new process per run, each ready (its first area showed the demo lab) and exited cleanly.
    assert len(result["xlab_runs"]) == len(result["bare_runs"]) == 1
    # The window's own clock starts after the process did: it cannot exceed the time from spawn.
    assert all(r is not None and 0 < r < t for r, t in zip(result["xlab_reported"], result["xlab_runs"]))
    assert 0 < result["bare_s"] and 0 < result["xlab_s"] < 30
    assert result["ratio"] == pytest.approx(result["xlab_s"] / result["bare_s"])


def test_ingest_benchmarks_smoke(tmp_path):
    from tests.bench import bench_ingest

    t = bench_ingest.throughput(tmp_path, size=128, per_format=2, workers=2)
    # Both sides handled every file written: the floor decoded each, ingest stored each once.
    assert t["files"] == 4 and t["floor_decoded"] == 4 and t["ingested"] == 4 and t["in_catalog"] == 4
    assert t["ratio"] == pytest.approx(t["ingest_per_s"] / t["floor_per_s"])
    a = bench_ingest.archive(tmp_path, count=2100, workers=2)  # more than one 1,000-file folder
    assert a["written"] == a["count"] == a["ingested"] == a["in_catalog"] == 2100
    assert sorted(a["rss"]) == [525, 1050, 2100]  # memory taken at a quarter, half and the end
    n = bench_ingest.near_duplicates(stored=5_000, queries=10)
    assert n["probes_matched"] == n["queries"] == 10  # every probe is 3 bits from a stored hash
    assert n["index_hits"] == n["scan_hits"] and n["index_hits"]  # the plain scan finds the same images
    lat = bench_ingest.latency(tmp_path, seconds=2, per_minute=300)
    assert lat["landed"] == lat["seen"] == lat["files"] == 10
    assert all(d >= 0 for d in lat["delays_s"]) and lat["p50_s"] <= lat["p95_s"] < 30


def test_planner_benchmark_smoke(tmp_path):
    from tests.bench import bench_planner

    r = bench_planner.run(classes=2, images=500, repeats=1, root=tmp_path)
    assert r["deficit_cells"] > 0 and r["scanners"] == 10
    plan = r["plan"]
    steps = [(session, step) for session in plan.sessions for step in session.steps]
    assert steps and r["steps"] == len(steps) and r["sessions"] == len(plan.sessions)
    # Capacity: no session holds more than rate x shift length.
    assert all(session.images <= r["capacity"] for session in plan.sessions)
    # One session per scanner and shift, on weekdays from the start date.
    shifts = [(s.scanner_id, s.session_date, s.shift) for s in plan.sessions]
    assert len(shifts) == len(set(shifts))
    assert all(date.fromisoformat(s.session_date).weekday() < 5 and s.session_date >= "2026-11-23"
               for s in plan.sessions)
    # Diversity: every step is a setup never captured before, and none is planned twice.
    setups = [(st.split, st.model_id, st.bag_id, st.item_id or 0, st.pose_id or 0) for _, st in steps]
    assert len(setups) == len(set(setups))
    assert not set(setups) & {tuple(e) for e in r["existing_setups"]}
    # Split pools: each item and bag in the steps belongs to its step's split, never to both.
    pools = {(kind, oid): split for kind, oid, split in r["pools"]}
    for _, st in steps:
        assert pools[("bag", st.bag_id)] == st.split
        if st.item_id is not None:
            assert pools[("item", st.item_id)] == st.split
    assert r["changeovers"]["lower_bound"] <= r["changeovers"]["cost"]


def test_dashboard_benchmark_smoke(tmp_path, qapp):
    from tests.bench import bench_dashboard

    r = bench_dashboard.run(images=3000, classes=3, repeats=1, seconds=5, per_minute=120, root=tmp_path)
    assert r["cells"] == r["cells_seeded"] > 0
    # The pandas baseline, timed in this run, computes the same setups as the dashboards for every cell.
    assert r["baseline_cells_agreeing"] == r["cells"]
    assert r["pandas_vs_load"] == pytest.approx(r["pandas_ms"] / r["load_ms"])
    assert r["pandas_vs_apply"] == pytest.approx(r["pandas_ms"] / r["apply_ms"])
    # Ingest took every file the scanner wrote, by its own count and the catalog's.
    assert r["stall_files"] == r["stall_ingested"] == r["stall_ingest_reported"] == 10
    # The stall was measured on a live dashboard: it refreshed while files were
    # being ingested (not before the first, not after the last) ...
    assert r["stall_refreshes_during_ingest"] >= 1
    assert any(0 < n < r["stall_files"] for n in r["stall_refresh_ingested"])
    # ... and what it showed followed ingest, ending with every new image.
    assert r["stall_refresh_new_images"] == sorted(r["stall_refresh_new_images"])
    assert r["stall_refresh_new_images"][-1] == r["stall_files"]
    assert r["stall_ticks"] > 0


def test_viewer_benchmark_smoke(tmp_path, qapp):
    from tests.bench import bench_viewer

    r = bench_viewer.run(size=600, frames=6, repeats=2, root=tmp_path, view_size=(400, 300))
    # Cold: the thumbnail was painted first; the one decode (off the GUI thread) wrote the pyramid.
    assert r["cold_first_source"] == "thumbnail" and r["decodes_cold"] == 1
    assert r["cached_levels"] == [1, 2]
    # Warm: each first paint came from a cached reduced level, with no decode before it.
    assert r["warm_first_sources"] == ["pyramid", "pyramid"] and min(r["warm_first_levels"]) >= 1
    assert r["decodes_before_warm_paint"] == [0, 0]
    # Decodes: the cold one, and one for the pan zoomed past level 1 (0.625 screen pixels per
    # image pixel at this size needs the full image); none of them on the GUI thread.
    assert r["gui_thread_decodes"] == 0 and r["decodes"] == 2
    # Every mouse move of the drag painted exactly one frame, from a tile no bigger than the view.
    assert r["drag_frames_painted"] == r["frames"] == 6
    assert r["drag_tile"][0] <= 400 and r["drag_tile"][1] <= 300 and r["drag_level"] == 1
    assert r["pan_frames_painted"] == 6
    assert r["first_paint_ratio"] == pytest.approx(r["naive_first_paint_ms"] / r["warm_first_paint_ms"])
    assert r["drag_ratio"] == pytest.approx(r["drag_fps"] / r["naive_drag_fps"])


def test_coco_export_benchmark_smoke(tmp_path):
    from tests.bench import bench_coco_export

    r = bench_coco_export.run(images=400, repeats=1, root=tmp_path)
    # The writer's file holds exactly the baseline's document: every image (negatives
    # included), 1.5 boxes per image, the same ids, boxes and categories.
    assert r["same_document"]
    assert r["written_images"] == r["images"] == 400 and r["written_annotations"] == r["boxes"] == 600
    assert r["ratio"] == pytest.approx(r["baseline_s"] / r["writer_s"])
    assert r["writer_images_per_s"] == pytest.approx(400 / r["writer_s"])


def test_dataset_benchmarks_smoke(tmp_path):
    from core.datasets import versions
    from core.lab import Lab
    from tests.bench import bench_datasets

    r = bench_datasets.run(images=3000, classes=2, root=tmp_path)
    # The freeze's counts equal a recount of the test images that passed QA (every seeded test image
    # has a box or is a negative; the edits left 0.5 % unusable for the second version).
    assert r["freeze_images"] == r["test_images_in_catalog"] > 0
    assert r["second_images"] == r["freeze_images"] - r["made_unusable"]
    lab = Lab.open(tmp_path / "lab")
    try:
        # Boxes as of the freeze's label clock, from the revision history (edits came after it).
        boxes = lab.catalog.query_one(
            "SELECT COUNT(*) AS n FROM annotation_revisions r JOIN images i ON i.id = r.image_id "
            "JOIN dataset_versions v ON v.name = 'test-set' AND v.version = 1 "
            "WHERE i.split = 'test' AND r.seq <= v.label_seq AND r.deleted = 0 AND r.qa_state != 'rejected' "
            "AND r.seq = (SELECT MAX(seq) FROM annotation_revisions x WHERE x.annotation_id = r.annotation_id "
            "AND x.seq <= v.label_seq)")["n"]
        assert r["freeze_boxes"] == boxes
        # The diff equals the set difference of the two memberships.
        a = set(versions.member_ids(lab.catalog, "test-set@1"))
        b = set(versions.member_ids(lab.catalog, "test-set@2"))
        assert r["diff"]["removed"] == len(a - b) == r["made_unusable"] and r["diff"]["added"] == len(b - a) == 0
        # The edited images (none of them made unusable) are exactly those with changed labels.
        assert r["diff"]["labels_changed"] == r["edited_images"] > 0
    finally:
        lab.close()
    assert r["diff_agrees"] and r["distribution_agrees"]  # the pandas baselines found the same
    assert r["distribution_boxes"] == r["freeze_boxes"]
    assert r["freeze_vs_floor"] == pytest.approx(r["freeze_s"] / r["freeze_floor_s"])
    assert r["diff_ratio"] == pytest.approx(r["diff_pandas_s"] / r["diff_s"])
    assert r["train_images"] == sum(r["train_subsets"].values()) > 0


def test_eval_benchmark_smoke(tmp_path):
    from tests.bench import bench_eval

    r = bench_eval.run(images=300, classes=5, seed=1, root=tmp_path)
    # All three evaluated the same files and agree entry by entry (precision, recall, summary).
    assert r["max_diff_pycocotools"] <= 1e-6 and r["max_diff_faster_coco_eval"] <= 1e-6
    assert r["detections"] > r["gt_boxes"] > 0 and 0 < r["xlab_stats"][1] < 1  # AP50: neither trivial nor empty
    assert r["speedup_vs_pycocotools"] == pytest.approx(r["pycocotools_s"] / r["xlab_s"])
    assert r["speedup_vs_faster_coco_eval"] == pytest.approx(r["faster_coco_eval_s"] / r["xlab_s"])


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_stations_benchmark_smoke(tmp_path, backend):
    """Three station processes ingest into one catalog while a dashboard process watches: every
    landed file is seen by the dashboard, none fails in the catalog, and the delays are real ones."""
    from tests.bench import bench_stations
    from tests.pg import fresh_database, postgres_url, skip_reason

    if backend == "sqlite":
        r = bench_stations.run(tmp_path / "lab", 3, 120.0, 3.0, None)
    else:
        if postgres_url() is None:
            pytest.skip(skip_reason())
        with fresh_database("xlab_bench_smoke") as url:
            r = bench_stations.run(tmp_path / "lab", 3, 120.0, 3.0, url)
    assert r["landed"] == 18 and r["seen"] == 18, r
    assert r["errors"] == []
    assert 0 < r["p50_s"] <= r["p95_s"] < 30
