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
