"""The audit and backup benchmarks (tests/bench/bench_audit.py, bench_backup.py) at smoke size:
they run, their figures count what they say, and their baselines answer the same question."""

import pytest

from tests.bench import bench_audit


def test_audit_benchmark_smoke(tmp_path):
    result = bench_audit.run(entries=3000, repeats=1, root=tmp_path)
    from core.catalog.db import Catalog

    big = Catalog.open(tmp_path / "big.sqlite")
    try:
        assert big.query_one("SELECT COUNT(*) AS n FROM audit_log")["n"] == 3000
        first, last = (big.query_one("SELECT at FROM audit_log WHERE id = ?", (i,))["at"] for i in (1, 3000))
        assert first < last  # the seeded entries span the year, in order
    finally:
        big.close()
    pages = result["pages"]
    assert pages["newest page"]["rows"] == pages["page halfway down"]["rows"] == 200
    assert pages["one user (of 9)"]["rows"] == 200 and pages["one object (entity + key)"]["rows"] == 1
    assert 0 < pages["the middle entry's day"]["rows"] < 200
    for p in pages.values():
        assert p["ratio"] == pytest.approx(p["ms"] / p["baseline_ms"])
    assert result["verify"]["ok"] and result["verify"]["entries"] == 3000
    w = result["write_us"]
    assert w["chained"] > 0 and w["baseline"] > 0 and w["ratio"] == pytest.approx(w["chained"] / w["baseline"])


def test_backup_benchmark_smoke(tmp_path):
    from tests.bench import bench_backup

    result = bench_backup.run(images=20, kb=16, repeats=1, root=tmp_path)
    assert result["files"] == result["copied"] == 20 and result["incremental_copied"] == 0
    assert result["verify_ok"] and result["verified"] == 20
    # The baseline copied the same files.
    copies = sorted(tmp_path.glob("copy-*"))
    assert len(copies) == 1 and len([p for p in (copies[0] / "store").rglob("*") if p.is_file()]) == 20
    assert result["backup_ratio"] == pytest.approx(result["backup_s"] / result["copy_s"])
    assert result["verify_ratio"] == pytest.approx(result["verify_s"] / result["hash_s"])
