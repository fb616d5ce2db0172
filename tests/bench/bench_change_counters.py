"""What the change-counter triggers (migration 0006) cost image inserts.

    python -m tests.bench.bench_change_counters [--images 10000] [--batch 20] [--repeats 3]

Inserts the same image rows into two seeded catalogs, one as migrated and one
with the counter triggers dropped (the baseline), in transactions of
``--batch`` rows (ingest commits small batches) and in one transaction; prints
microseconds per row for each and the difference. The two catalogs take turns
(first one, then the other) and the best of ``--repeats`` runs counts, since
other work on the machine only ever adds time. In batches the fsync of each
commit dominates (wall time); in one transaction the triggers' own work shows
(CPU time of this process).
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

from core.catalog.images import insert_images
from core.catalog.records import all_rows
from core.lab import Lab
from tests.bench.seed import in_pool, seed_catalog


def _rows(lab: Lab, n: int, offset: int) -> list[tuple]:
    items = [r["id"] for r in all_rows(lab.catalog, "threat_items")]
    bags = [r["id"] for r in all_rows(lab.catalog, "bags")]
    poses = [r["id"] for r in all_rows(lab.catalog, "poses")]
    scanners = [r["id"] for r in all_rows(lab.catalog, "scanners")]
    rows = []
    for i in range(offset, offset + n):
        split = "test" if i % 2 else "train"
        at = f"2026-03-{1 + i % 28:02d}T10:{i % 60:02d}:00+00:00"
        rows.append((
            hashlib.sha256(b"cc" + i.to_bytes(8, "little")).hexdigest(), f"store/{i:08x}.png", f"img_{i}.png",
            scanners[i % len(scanners)], at, at, split, in_pool(items[i % len(items)], split),
            in_pool(bags[i % len(bags)], split), poses[i % len(poses)], 1024, 768, 16, 1, "", 1,
        ))
    return rows


def _drop_counter_triggers(lab: Lab) -> int:
    names = [r["name"] for r in lab.catalog.query(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND sql LIKE '%change_counters%'")]
    with lab.catalog.write("bench") as txn:
        for name in names:
            txn.execute(f"DROP TRIGGER {name}")
    return len(names)


def _insert(lab: Lab, rows: list[tuple], batch: int) -> float:
    """Microseconds per row: wall time in batches, CPU time in one transaction."""
    clock = time.perf_counter if batch < len(rows) else time.process_time
    start = clock()
    for k in range(0, len(rows), batch):
        with lab.catalog.write("bench") as txn:
            insert_images(txn, rows[k:k + batch])
    return (clock() - start) / len(rows) * 1e6


def run(images: int = 10_000, batch: int = 20, repeats: int = 3, root: Path | None = None) -> dict:
    root = Path(root or tempfile.mkdtemp(prefix="xlab-bench-cc-"))
    labs = {}
    for name in ("counters", "baseline"):
        lab = Lab.init(root / name)
        seed_catalog(lab, n_classes=4, n_images=0)
        labs[name] = lab
    dropped = _drop_counter_triggers(labs["baseline"])
    result: dict = {"images": images, "batch": batch, "dropped_triggers": dropped}
    offset = 0
    for size, label in ((batch, f"batches of {batch}"), (images, "one transaction")):
        best = {name: float("inf") for name in labs}
        for repeat in range(repeats):
            for name in sorted(labs, reverse=repeat % 2 == 1):
                rows = _rows(labs[name], images, offset)
                best[name] = min(best[name], _insert(labs[name], rows, size))
            offset += images
        result[label] = {**best, "slowdown": best["counters"] / best["baseline"] - 1}
    for lab in labs.values():
        lab.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    result = run(args.images, args.batch, args.repeats)
    print(f"{result['images']:,} image rows; baseline = the same catalog without its "
          f"{result['dropped_triggers']} change-counter triggers")
    for label in (f"batches of {args.batch}", "one transaction"):
        r = result[label]
        print(f"  {label:>18}: {r['counters']:7.1f} us/row with counters, {r['baseline']:7.1f} without "
              f"({r['slowdown']:+.1%})")


if __name__ == "__main__":
    main()
