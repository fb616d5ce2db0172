"""Quota status refresh at scale, against a pandas read_sql + groupby baseline.

    python -m tests.bench.bench_quota_status                 # 2,000,000 images, 10,845 cells
    python -m tests.bench.bench_quota_status --images 20000  # smoke size
    python -m tests.bench.bench_quota_status --server        # and the same catalog on the PostgreSQL server

With ``--server`` the seeded catalog is moved onto a new database of the test server (tests.pg:
$XLAB_TEST_POSTGRES, else 127.0.0.1:5432) by ``xlab catalog migrate-to``'s code, and the same
refresh is timed there, beside the file's.

Both sides compute the same table (per cell and split: images and distinct
setups) and the run checks they agree before timing anything.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from core.lab import Lab
from core.progress import run_to_end
from core.quota.plans import resolve_plan
from core.quota.status import quota_status
from tests.bench.seed import seed_catalog

BASELINE_SQL = """
SELECT i.split, IFNULL(ti.class_id, 0) AS class_key, b.luggage_type_id, b.clutter_level,
       s.model_id AS scanner_model_id, IFNULL(i.pose_id, 0) AS pose_key, IFNULL(i.item_id, 0) AS item_key, i.bag_id
FROM images i JOIN bags b ON b.id = i.bag_id JOIN scanners s ON s.id = i.scanner_id
LEFT JOIN threat_items ti ON ti.id = i.item_id
WHERE i.usable = 1 AND i.split IS NOT NULL
"""
KEYS = ["class_key", "luggage_type_id", "clutter_level", "scanner_model_id", "pose_key"]


def pandas_status(lab: Lab, plan_id: int):
    """The straightforward way: load the images, group in pandas, join to the cells."""
    import pandas as pd

    conn = lab.catalog.reader()
    images = pd.read_sql(BASELINE_SQL, conn)
    cells = pd.read_sql(
        "SELECT id AS cell_id, class_key, luggage_type_id, clutter_level, scanner_model_id, pose_key, test_target, train_target "
        "FROM quota_cells WHERE plan_id = ?", conn, params=(plan_id,))
    counts = images.groupby(KEYS + ["split"]).agg(images=("bag_id", "size"))
    setups = images.drop_duplicates(KEYS + ["split", "item_key", "bag_id"]).groupby(KEYS + ["split"]).size().rename("setups")
    tally = counts.join(setups).reset_index().pivot_table(index=KEYS, columns="split", values=["images", "setups"], fill_value=0)
    tally.columns = [f"{split}_{what}" for what, split in tally.columns]
    out = cells.merge(tally.reset_index(), on=KEYS, how="left").fillna(0)
    for split in ("test", "train"):
        out[f"{split}_fill"] = (out[[f"{split}_setups", f"{split}_target"]].min(axis=1) / out[f"{split}_target"].where(out[f"{split}_target"] > 0)).fillna(1.0)
        out[f"{split}_deficit"] = (out[f"{split}_target"] - out[f"{split}_setups"]).clip(lower=0)
    return out.sort_values("cell_id")


def check_same(lab: Lab, plan_id: int) -> None:
    ours = {r["cell_id"]: r for r in quota_status(lab.catalog, plan_id).as_dicts()}
    theirs = pandas_status(lab, plan_id)
    for row in theirs.itertuples(index=False):
        mine = ours[row.cell_id]
        for split in ("test", "train"):
            got = (mine[f"{split}_images"], mine[f"{split}_setups"], mine[f"{split}_deficit"])
            want = tuple(int(getattr(row, f"{split}_{k}", 0)) for k in ("images", "setups", "deficit"))
            if got != want:
                raise AssertionError(f"cell {row.cell_id} {split}: status {got} != pandas {want}")
    if len(ours) != len(theirs):
        raise AssertionError("different number of cells")


def _time(fn, repeats: int) -> tuple[float, object]:
    """Median seconds of ``repeats`` calls, and the last call's result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def totals(rows) -> dict[str, int]:
    """Images, setups and deficits summed over the cells, per split: what the timed result said."""
    out = {}
    for split in ("test", "train"):
        for what in ("images", "setups", "deficit"):
            out[f"{split}_{what}"] = int(sum(int(r[f"{split}_{what}"]) for r in rows))
    return out


def on_server(root: Path, plan_id: int, repeats: int) -> dict:
    """Move the lab at ``root`` onto a new server database and time the refresh there."""
    from core.lab import move_catalog_to_server
    from tests.pg import fresh_database

    with fresh_database("xlab_bench") as url:
        start = time.perf_counter()
        report = run_to_end(move_catalog_to_server(root, url))
        if not report.ok:
            raise AssertionError(f"the move to the server did not compare equal: {report}")
        moved_s = time.perf_counter() - start
        with Lab.open(root) as lab:
            first, _ = _time(lambda: quota_status(lab.catalog, plan_id), 1)
            ours, status = _time(lambda: quota_status(lab.catalog, plan_id), repeats)
            totals_here = totals(status.as_dicts())
    return {"moved_s": moved_s, "first_ms": first * 1000, "status_ms": ours * 1000, "status_totals": totals_here}


def run(images: int, classes: int, repeats: int = 5, baseline_repeats: int = 3, root: Path | None = None,
        server: bool = False) -> dict:
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        lab = Lab.init(Path(tmp) / "lab")
        start = time.perf_counter()
        info = seed_catalog(lab, n_classes=classes, n_images=images)
        seeded_s = time.perf_counter() - start
        plan_id = resolve_plan(lab.catalog, "bench-plan")["id"]
        check_same(lab, plan_id)
        lab.close()
        # A fresh process-side cache: the first refresh reads every cell and tally.
        lab = Lab.open(Path(tmp) / "lab")
        first, _ = _time(lambda: quota_status(lab.catalog, plan_id), 1)
        ours, status = _time(lambda: quota_status(lab.catalog, plan_id), repeats)
        baseline, theirs = _time(lambda: pandas_status(lab, plan_id), baseline_repeats)
        lab.close()
        served = on_server(Path(tmp) / "lab", plan_id, repeats) if server else None
    return {**info, "server": served, "seed_s": seeded_s, "first_ms": first * 1000, "status_ms": ours * 1000,
            "pandas_ms": baseline * 1000, "speedup": baseline / ours, "status_cells": len(status.rows),
            "status_totals": totals(status.as_dicts()), "pandas_totals": totals(theirs.to_dict("records"))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2_000_000)
    parser.add_argument("--classes", type=int, default=40, help="40 classes → 10,845 quota cells")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--server", action="store_true", help="also on the PostgreSQL test server")
    args = parser.parse_args(argv)
    if args.server:
        from tests.pg import postgres_url, skip_reason

        if postgres_url() is None:
            print(f"quota status on the server: not measured ({skip_reason()})")
            args.server = False
    r = run(args.images, args.classes, args.repeats, server=args.server)
    print(f"quota status: {r['images']:,} images, {r['cells']:,} cells, {r['classes']} classes (seeded in {r['seed_s']:.0f} s)")
    print(f"  xlab quota_status   {r['status_ms']:9.1f} ms per refresh (median of {args.repeats})   target <= 50 ms")
    print(f"  xlab first refresh  {r['first_ms']:9.1f} ms (cold: plan cells and all tallies read)")
    print(f"  pandas read_sql+groupby {r['pandas_ms']:9.1f} ms (baseline, same result)")
    print(f"  ratio: {r['speedup']:.0f}x faster than the baseline   target >= 20x")
    print(f"  first refresh ratio: {r['pandas_ms'] / r['first_ms']:.0f}x")
    served = r["server"]
    if served is not None:
        same = "same totals" if served["status_totals"] == r["status_totals"] else "TOTALS DIFFER"
        print(f"  on the PostgreSQL server (moved there in {served['moved_s']:.0f} s): "
              f"{served['status_ms']:.1f} ms per refresh (target <= 100 ms), first {served['first_ms']:.1f} ms; "
              f"server/file {served['status_ms'] / r['status_ms']:.1f}x; {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
