"""Every benchmark in tests/bench runs here at smoke size, so none can silently break.

The full-size runs and their targets: tests/bench/run.sh (not part of the suite).
"""

from tests.bench import bench_quota_status, bench_startup


def test_quota_status_benchmark_smoke(tmp_path):
    result = bench_quota_status.run(images=3000, classes=3, repeats=1, baseline_repeats=1, root=tmp_path)
    assert result["cells"] == 3 * 270 + 45
    assert result["status_ms"] > 0 and result["pandas_ms"] > 0 and result["first_ms"] > 0


def test_startup_benchmark_smoke():
    result = bench_startup.run(runs=1)
    assert 0 < result["bare_s"] and 0 < result["xlab_s"] < 30


def test_ingest_benchmarks_smoke(tmp_path):
    from tests.bench import bench_ingest

    t = bench_ingest.throughput(tmp_path, size=128, per_format=2, workers=2)
    assert t["files"] == 4 and t["ratio"] > 0
    a = bench_ingest.archive(tmp_path, count=2100, workers=2)  # more than one 1,000-file folder
    assert a["count"] == 2100 and a["per_s"] > 0 and len(a["rss"]) == 3
    n = bench_ingest.near_duplicates(stored=5_000, queries=10)
    assert n["ms"] > 0
    lat = bench_ingest.latency(tmp_path, seconds=2, per_minute=300)
    assert lat["seen"] == lat["files"] and lat["p95_s"] < 30


def test_planner_benchmark_smoke(tmp_path):
    from tests.bench import bench_planner

    r = bench_planner.run(classes=2, images=500, repeats=1, root=tmp_path)
    assert r["deficit_cells"] > 0 and r["scanners"] == 10
    assert r["steps"] > 0 and r["plan_s"] > 0 and r["baseline_s"] > 0
    assert r["changeovers"]["lower_bound"] <= r["changeovers"]["cost"]


def test_dashboard_benchmark_smoke(tmp_path, qapp):
    from tests.bench import bench_dashboard

    r = bench_dashboard.run(images=3000, classes=3, repeats=1, seconds=3, per_minute=120, root=tmp_path)
    assert r["cells"] > 0 and r["apply_ms"] > 0 and r["load_ms"] > 0 and r["pandas_ms"] > 0
    assert r["stall_files"] == 6 and r["stall_ingested"] == 6 and r["stall_ticks"] > 0
