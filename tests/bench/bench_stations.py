"""A lab network on one machine: ten capture stations ingesting into one catalog while a
manager's dashboard is open at another desk; SQLite's figures beside PostgreSQL's, one run.

    python -m tests.bench.bench_stations                 # 10 stations x 300 images/min for 60 s, both backends
    python -m tests.bench.bench_stations --smoke         # 3 stations, a few seconds
    python -m tests.bench.bench_stations --postgres URL  # the server's maintenance database
                                                         # (default $XLAB_TEST_POSTGRES or the local server)

Every station is its own process, as on the lab network: it opens the lab folder (the shared
store, and the catalog it names) and runs ingest's ``watch`` on its scanner's drop folder. A
feeder lands each station's files at the asked rate (16-bit PNG, 256x256: the catalog is under
test here, not the decoder, and the machine has two cores). The dashboard is a process of its
own that does what the window does: poll ``Catalog.outside_change`` every second (on PostgreSQL
that drains LISTEN/NOTIFY), and on a change of ``images`` refresh the quota status and read the
new images; a file is *visible* when its image is in that read.

Figures per backend: files landed, ingested, seen by the dashboard; landed -> visible p50/p95
(target p95 <= 2 s); catalog errors in the stations (lock waits that failed, serialisation
failures: target none); the dashboard's quota-status refresh time.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

INVENTORY = """\
threat_families: [{name: knives}]
threat_classes: [{name: knife_kitchen, family: knives}]
luggage_types: [{name: tray}]
scanner_models:
  - {name: BENCH-256, vendor: SimScan, width: 256, height: 256, bit_depth: 16, pixel_mm: 2.7}
scanners:
"""


def _inventory(stations: int) -> str:
    return INVENTORY + "".join(
        f"  - {{name: SCN-{i:02d}, model: BENCH-256, station: station-{i:02d}}}\n" for i in range(1, stations + 1))


def make_lab(root: Path, stations: int, catalog_url: str | None):
    from core.inventory import import_inventory
    from core.inventory.yamlfile import parse_inventory
    from core.lab import Lab

    lab = Lab.init(root, catalog=catalog_url) if catalog_url else Lab.init(root)
    import_inventory(lab.catalog, parse_inventory(_inventory(stations).encode(), "bench.yaml"), actor="bench")
    return lab


def _station(root: str, scanner: str, stop, errors) -> None:
    """One capture station's ingest, in its own process with its own catalog connections."""
    os.environ["XLAB_WORKSTATION"] = scanner.replace("SCN", "station")
    from core.ingest.engine import watch
    from core.lab import Lab

    lab = Lab.open(root)
    steps = watch(lab, [scanner], workers=1, poll_s=0.2)
    try:
        for progress in steps:
            for outcome in progress.outcomes:
                if outcome.outcome not in ("ingested", "duplicate"):
                    errors.put(f"{scanner}: {outcome.source}: {outcome.outcome} ({outcome.detail})")
            if stop.is_set():
                break
    except Exception as exc:  # noqa: BLE001 - the bench counts every failure
        errors.put(f"{scanner}: {type(exc).__name__}: {exc}")
    finally:
        steps.close()
        lab.close()


def _dashboard(root: str, stop, seen, refresh_ms) -> None:
    """The manager's dashboard at another desk: polls like the window, refreshes on a change."""
    from core.lab import Lab
    from core.quota.plans import resolve_plan  # noqa: F401 - as the window's import cost
    from core.quota.status import quota_status

    lab = Lab.open(root)
    last_id = 0
    try:
        while not stop.is_set():
            time.sleep(1.0)  # app.catalog_watch.POLL_MS
            change = lab.catalog.outside_change()
            if change is None or not change.touches("images"):
                continue
            started = time.perf_counter()
            try:
                quota_status(lab.catalog, None)
            except Exception:  # noqa: BLE001 - no published plan in this lab: the images read is what counts
                pass
            rows = lab.catalog.query("SELECT id, original_name FROM images WHERE id > ? ORDER BY id", (last_id,))
            now = time.time()
            refresh_ms.put((time.perf_counter() - started) * 1000)
            for row in rows:
                seen.put((row[1], now))
                last_id = max(last_id, row[0])
    finally:
        lab.close()


def _payloads(count: int) -> list[bytes]:
    import cv2
    import numpy as np

    rng = np.random.default_rng(7)
    out = []
    for _ in range(count):
        image = rng.integers(0, 65535, (256, 256), dtype=np.uint16)
        ok, data = cv2.imencode(".png", image)
        out.append(data.tobytes())
    return out


def run(root: Path, stations: int, per_minute: float, seconds: float, catalog_url: str | None) -> dict:
    lab = make_lab(root, stations, catalog_url)
    drop = {f"SCN-{i:02d}": lab.paths.drop_folder(f"SCN-{i:02d}") for i in range(1, stations + 1)}
    lab.close()
    for folder in drop.values():
        folder.mkdir(parents=True, exist_ok=True)
    ctx = multiprocessing.get_context("spawn")
    stop, errors, seen, refresh = ctx.Event(), ctx.Queue(), ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=_station, args=(str(root), name, stop, errors)) for name in drop]
    procs.append(ctx.Process(target=_dashboard, args=(str(root), stop, seen, refresh)))
    for p in procs:
        p.start()
    time.sleep(4.0 + stations * 0.5)  # the stations' processes and decoders start before the first file
    per_station = max(1, int(seconds * per_minute / 60))
    payloads = _payloads(per_station * stations)
    landed: dict[str, float] = {}
    interval = 60.0 / per_minute / stations  # the stations' files interleave
    next_at = time.perf_counter()
    k = 0
    for i in range(per_station):
        for scanner, folder in drop.items():
            time.sleep(max(0.0, next_at - time.perf_counter()))
            next_at += interval
            name = f"{scanner}_{i:05d}.png"
            temp = folder / f".{name}.part"
            temp.write_bytes(payloads[k])
            os.replace(temp, folder / name)
            landed[name] = time.time()
            k += 1
    visible: dict[str, float] = {}
    deadline = time.time() + 30
    while len(visible) < len(landed) and time.time() < deadline:
        try:
            name, at = seen.get(timeout=1)
        except Exception:  # noqa: BLE001 - queue.Empty
            continue
        visible.setdefault(name, at)
    stop.set()
    for p in procs:
        p.join(timeout=30)
        if p.is_alive():
            p.kill()
    problems = []
    while not errors.empty():
        problems.append(errors.get())
    refreshes = []
    while not refresh.empty():
        refreshes.append(refresh.get())
    delays = sorted(visible[n] - landed[n] for n in landed if n in visible)
    return {
        "landed": len(landed), "seen": len(delays), "errors": problems,
        "p50_s": statistics.median(delays) if delays else float("nan"),
        "p95_s": delays[min(len(delays) - 1, int(0.95 * len(delays)))] if delays else float("nan"),
        "refresh_ms": statistics.median(refreshes) if refreshes else float("nan"),
    }


def _server_url(given: str | None) -> str | None:
    from tests.pg import postgres_url

    return given or postgres_url()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stations", type=int, default=10)
    parser.add_argument("--per-minute", type=float, default=300.0, help="images per minute per station")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--postgres", metavar="URL", help="maintenance database of the server to test")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    if args.smoke:
        args.stations, args.seconds, args.per_minute = 3, 4.0, 120.0
    from tests.pg import fresh_database, skip_reason

    server = _server_url(args.postgres)
    results = {}
    with tempfile.TemporaryDirectory(prefix="xlab-stations-") as tmp:
        results["SQLite"] = run(Path(tmp) / "sqlite-lab", args.stations, args.per_minute, args.seconds, None)
        if server is None:
            print(f"PostgreSQL: skipped ({skip_reason()})")
        else:
            with fresh_database("xlab_bench_stations", server) as url:
                results["PostgreSQL"] = run(Path(tmp) / "pg-lab", args.stations, args.per_minute, args.seconds, url)
    print(f"{args.stations} stations x {args.per_minute:g} images/min for {args.seconds:g} s, a dashboard open:")
    for backend, r in results.items():
        print(f"  {backend:<10} landed {r['landed']}, seen {r['seen']}; landed -> visible p50 {r['p50_s']:.2f} s, "
              f"p95 {r['p95_s']:.2f} s (target <= 2 s); catalog errors {len(r['errors'])} (target 0); "
              f"dashboard refresh {r['refresh_ms']:.1f} ms")
        for problem in r["errors"][:5]:
            print(f"      {problem}")
    if "PostgreSQL" in results and "SQLite" in results:
        ratio = results["PostgreSQL"]["p95_s"] / results["SQLite"]["p95_s"]
        print(f"  PostgreSQL p95 / SQLite p95 = {ratio:.2f}")
    ok = all(r["seen"] == r["landed"] and not r["errors"] for r in results.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
