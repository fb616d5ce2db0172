"""The audit log at size: what chaining costs a write, what a page costs at
millions of entries, how fast the chain check runs.

    python -m tests.bench.bench_audit [--entries 1000000] [--repeats 5]

* write: microseconds of CPU per entry written by ``WriteTransaction.audit``
  (read the last hash, hash, insert), against the same rows inserted by the
  statement XLab used before the chain (the baseline), in one transaction each;
* pages: milliseconds per viewer page (200 entries) at ``--entries`` against
  the same query on a log of ``SMALL`` entries written at the same rate per
  day (the baseline): newest page, a page halfway down, one user's, one
  object's key, the day of the middle entry. A ratio near 1 means a page costs
  the same whatever the log's size;
* verify: entries per second through :func:`core.audit.chain.verify_chain`
  against reading the same columns without hashing (the baseline).

Best of ``--repeats`` for each figure (other work on the machine only adds time).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from core.audit import log
from core.audit.chain import verify_chain
from core.catalog import audit_store
from core.catalog.db import Catalog
from core.progress import run_to_end

SMALL = 1000
PAGE = 200
USERS = ("ana", "ben", "cleo", "dan", "eve", "finn", "gus", "hana", "ivo")
DAYS = 365  # the big log's span; the small one's is shorter, at the same entries per day
BATCH = 20_000


def _entry(i: int) -> tuple[str, str, str, str, dict, dict]:
    actor = USERS[i % len(USERS)]
    entity, action = (("annotations", "review"), ("images", "update"), ("quota_cell", "override_cell"),
                      ("threat_classes", "update"))[i % 4]
    return actor, action, entity, str(i % 50_000), {"qa_state": "unreviewed", "n": i}, {"qa_state": "accepted", "n": i}


def seed(catalog: Catalog, n: int, days: float = DAYS) -> None:
    """``n`` entries over the last ``days`` days (their ``at`` spread evenly, in order), written through
    the one writer, ``WriteTransaction.audit``."""
    import core.catalog.db as db

    start = datetime.now(timezone.utc) - timedelta(days=days)
    step = timedelta(days=days) / max(1, n)
    real_now = db.utc_now
    done = 0
    try:
        while done < n:
            with catalog.write("bench") as txn:
                for i in range(done, min(n, done + BATCH)):
                    at = (start + step * i).isoformat(timespec="milliseconds")
                    db.utc_now = lambda at=at: at  # the entry's time, as if written then
                    actor, action, entity, key, before, after = _entry(i)
                    txn.actor = actor
                    txn.audit(action, entity, key, before, after)
            done = min(n, done + BATCH)
    finally:
        db.utc_now = real_now


def _write_cost(root: Path, n: int) -> tuple[float, float]:
    """CPU microseconds per entry: chained (audit()) and the pre-chain INSERT, into fresh catalogs."""
    out = []
    for chained in (True, False):
        catalog = Catalog.open(root / f"write-{chained}-{time.monotonic_ns()}.sqlite")
        rows = [_entry(i) for i in range(n)]
        start = time.process_time()
        with catalog.write("bench") as txn:
            for actor, action, entity, key, before, after in rows:
                if chained:
                    txn.audit(action, entity, key, before, after)
                else:
                    txn.execute("INSERT INTO audit_log (at, actor, action, entity, entity_key, before_json, after_json)"
                                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                                (datetime.now(timezone.utc).isoformat(timespec="milliseconds"), actor, action, entity,
                                 key, json.dumps(before, sort_keys=True), json.dumps(after, sort_keys=True)))
        out.append((time.process_time() - start) / n * 1e6)
        catalog.close()
    return out[0], out[1]


def _queries(catalog: Catalog) -> dict[str, tuple]:
    """Each viewer query: (filter, before_id) as the area would ask it."""
    middle = audit_store.head(catalog)[0] // 2
    day = datetime.fromisoformat(audit_store.entry(catalog, middle)["at"]).astimezone().date().isoformat()
    return {
        "newest page": (log.AuditFilter(), None),
        "page halfway down": (log.AuditFilter(), middle),
        "one user (of 9)": (log.AuditFilter(user="eve"), None),
        "one object (entity + key)": (log.AuditFilter(entity="images", key="1"), None),
        "the middle entry's day": (log.AuditFilter(since=day, until=day), None),
    }


def _page_ms(catalog: Catalog, flt: log.AuditFilter, before: int | None, repeats: int) -> tuple[float, int]:
    best, rows = float("inf"), 0
    for _ in range(repeats):
        start = time.perf_counter()
        rows = len(log.entries(catalog, flt, PAGE, before_id=before))
        best = min(best, (time.perf_counter() - start) * 1000)
    return best, rows


def _scan_rate(catalog: Catalog) -> float:
    """Entries per second reading the chain's columns in the same batches, no hashing."""
    start = time.perf_counter()
    last, n = 0, 0
    while True:
        rows = audit_store.chain_batch(catalog, last, 5000)
        if not rows:
            break
        n += len(rows)
        last = rows[-1]["id"]
    return n / (time.perf_counter() - start)


def run(entries: int = 1_000_000, repeats: int = 5, root: Path | None = None) -> dict:
    root = Path(root or tempfile.mkdtemp(prefix="xlab-bench-audit-"))
    result: dict = {"entries": entries, "small": SMALL}
    write_n = min(entries, 20_000)
    best = [float("inf"), float("inf")]
    for _ in range(max(1, repeats // 2)):
        chained, plain = _write_cost(root, write_n)
        best = [min(best[0], chained), min(best[1], plain)]
    result["write_us"] = {"chained": best[0], "baseline": best[1], "ratio": best[0] / best[1]}

    big, small = Catalog.open(root / "big.sqlite"), Catalog.open(root / "small.sqlite")
    t0 = time.perf_counter()
    seed(big, entries)
    result["seed_s"] = time.perf_counter() - t0
    seed(small, SMALL, DAYS * SMALL / entries)
    pages = {}
    small_queries = _queries(small)
    for name, (flt, before) in _queries(big).items():
        big_ms, rows = _page_ms(big, flt, before, repeats)
        small_ms, _ = _page_ms(small, *small_queries[name], repeats)
        pages[name] = {"ms": big_ms, "rows": rows, "baseline_ms": small_ms, "ratio": big_ms / small_ms}
    result["pages"] = pages

    start = time.perf_counter()
    report = run_to_end(verify_chain(big))
    verify_rate = report.entries / (time.perf_counter() - start)
    scan = max(_scan_rate(big) for _ in range(max(1, repeats // 2)))
    result["verify"] = {"ok": report.ok, "entries": report.entries, "per_s": verify_rate, "read_per_s": scan,
                        "ratio": scan / verify_rate}
    big.close()
    small.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    r = run(args.entries, args.repeats)
    w = r["write_us"]
    print(f"audit log of {r['entries']:,} entries (seeded in {r['seed_s']:.0f} s); baselines measured in this run")
    print(f"  write: {w['chained']:.1f} us/entry chained vs {w['baseline']:.1f} us plain INSERT "
          f"(x{w['ratio']:.2f})")
    for name, p in r["pages"].items():
        print(f"  {name:>26}: {p['ms']:7.2f} ms for {p['rows']:3d} rows at {r['entries']:,} vs "
              f"{p['baseline_ms']:6.2f} ms at {r['small']:,} (x{p['ratio']:.2f})")
    v = r["verify"]
    print(f"  verify: {v['per_s']:,.0f} entries/s ({'intact' if v['ok'] else 'BROKEN'}) vs reading alone "
          f"{v['read_per_s']:,.0f}/s (x{v['ratio']:.2f} slower)")


if __name__ == "__main__":
    main()
