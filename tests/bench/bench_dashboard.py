"""Dashboards at scale and under live ingest.

    python -m tests.bench.bench_dashboard                      # 2,000,000 images, 200 classes, ~10,000 cells, 60 s
    python -m tests.bench.bench_dashboard --images 20000 --classes 10 --seconds 5   # smoke size

1. Refresh: every dashboard (quota heatmap, production with forecasts, class
   progress) loaded off the GUI thread, then put on screen on the GUI thread;
   target <= 100 ms of GUI-thread work per refresh. Baseline in the same run:
   the straightforward computation with pandas over the images table.
2. Responsiveness: the window shows the dashboards while ingest runs in it at
   300 images/min (simulated scans, rendered beforehand, land in the drop
   folder at that rate, as from a scanner on its own machine); a 5 ms timer
   measures the longest event-loop stall; target <= 50 ms. The Dashboards
   area stays on screen and refreshes as it does for a user (at most every
   2 s while images arrive); the refreshes that landed, and how many of them
   while files were being ingested, are reported next to the stall, so the
   figure is known to include them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.bench.seed import LUGGAGE, seed_catalog

# 5 luggage types x 2 clutter levels x 1 scanner model x 5 poses = 50 cells per class
MIX = {"luggage_type": {name: 1 for name in LUGGAGE}, "clutter": {"low": 1, "high": 1},
       "scanner_model": {"DX-620": 1}, "pose": {p: 1 for p in ("flat", "flat_rotated", "edge_on", "angled_45", "in_clutter")}}


def pandas_dashboards(lab, plan_id: int) -> int:
    """The baseline: per-class and per-cell fill and per-day production from the images table."""
    import pandas as pd

    from tests.bench.bench_quota_status import pandas_status

    cells = pandas_status(lab, plan_id)
    per_day = pd.read_sql("SELECT substr(captured_at, 1, 10) AS day, scanner_id FROM images", lab.catalog.reader())
    return len(cells) + int(per_day.groupby(["day", "scanner_id"]).size().sum())


def _baseline_agrees(lab, plan_id: int, snap) -> int:
    """Cells where the pandas baseline and the dashboards' snapshot give the same setups
    (a baseline is only a baseline if it computes the same thing)."""
    from tests.bench.bench_quota_status import pandas_status

    ours = {r["cell_id"]: r for r in snap.status.as_dicts()}
    same = 0
    for row in pandas_status(lab, plan_id).itertuples(index=False):
        mine = ours.get(row.cell_id)
        if mine and all(mine[f"{s}_setups"] == int(getattr(row, f"{s}_setups", 0)) for s in ("test", "train")):
            same += 1
    return same


def refresh(lab, repeats: int) -> dict:
    from PySide6.QtWidgets import QApplication

    from app.views.dashboards import load_dashboards
    from app.views.dashboards_area import DashboardsView
    from core.quota.plans import resolve_plan

    app = QApplication.instance() or QApplication([])
    plan_id = resolve_plan(lab.catalog, "bench-plan")["id"]
    view = DashboardsView(lab)
    view.resize(1366, 720)
    view._build()
    view.show()
    app.processEvents()
    loads, applies = [], []
    first = None
    for dims in (("class", "luggage_type"), ("class", "pose"), ("luggage_type", "pose")):
        for k in range(repeats):
            t = time.perf_counter()
            snap = load_dashboards(lab, plan_id, dims[0], dims[1], "test", {}, None)
            load = (time.perf_counter() - t) * 1000
            if first is None:
                first = load
            else:
                loads.append(load)
            view._loaded(snap)
            app.processEvents()  # paint it
            applies.append(view.last_apply_ms)
    t = time.perf_counter()
    pandas_dashboards(lab, plan_id)
    baseline = (time.perf_counter() - t) * 1000
    cells = len(view.snapshot.status.rows)
    agree = _baseline_agrees(lab, plan_id, view.snapshot)
    view.shutdown()
    view.close()
    view.deleteLater()
    app.processEvents()
    return {"cells": cells, "load_ms": statistics.median(loads), "first_load_ms": first,
            "apply_ms": statistics.median(applies), "apply_max_ms": max(applies), "pandas_ms": baseline,
            "baseline_cells_agreeing": agree}


def _dashboards_on_screen(window, view) -> None:
    """The stall figure is only about a live dashboard if the manager could see it."""
    problems = []
    if not window.isVisible():
        problems.append("the main window is not shown")
    if window.stack.currentWidget() is not view:
        problems.append(f"the area on screen is {window.nav.currentItem().text()!r}, not Dashboards")
    if not view.isVisible():
        problems.append("the Dashboards area is not visible")
    if problems:
        raise RuntimeError("dashboard benchmark: " + "; ".join(problems))


def stall(lab_root: Path, seconds: float, per_minute: float) -> dict:
    """The window with the Dashboards area on screen while ingest runs in it.

    Refreshes are counted where they land: each new snapshot the area puts on
    screen (``view.snapshot`` replaced), seen by the same 5 ms timer that
    measures the stalls, with how many files ingest had committed by then and
    how many new images the production dashboard showed.
    """
    from PySide6.QtCore import QElapsedTimer, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from app import tasks
    from app.main_window import MainWindow
    from core.lab import Lab

    app = QApplication.instance() or QApplication([])
    tasks.favour_the_gui_thread()  # as app.main does
    lab = Lab.open(lab_root)
    settings = QSettings(str(lab_root / "bench-settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(lab, settings=settings)
    window.resize(1366, 768)
    window.show()
    view = window.show_area("Dashboards")
    deadline = time.monotonic() + 600  # the first, cold load at 2M images
    while view.snapshot is None and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.005)
    if view.snapshot is None:
        raise RuntimeError("dashboard benchmark: the dashboards never loaded")
    _dashboards_on_screen(window, view)
    before_images = view.snapshot.production.month_images
    # The scanner is another machine: its files are rendered beforehand and
    # land in the drop folder at the rate (renamed into place, as scanners do).
    count = int(seconds * per_minute / 60)
    drop = lab_root / "drop" / "SCN-1"
    staging = lab_root / "staging"
    staging.mkdir(exist_ok=True)
    subprocess.run([sys.executable, "-m", "core.cli", "simulate", "--lab", str(lab_root), "--scanner", "SCN-1",
                    "--count", str(count), "--rate", "0", "--quiet"], check=True,
                   env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    for f in sorted(drop.iterdir()):
        f.rename(staging / f.name)
    window.start_ingest()
    mover = (
        "import os, sys, time\n"
        "src, dst, interval = sys.argv[1], sys.argv[2], float(sys.argv[3])\n"
        "for name in sorted(os.listdir(src)):\n"
        "    time.sleep(interval)\n"
        "    os.rename(os.path.join(src, name), os.path.join(dst, name))\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", mover, str(staging), str(drop), str(60.0 / per_minute)])
    # Ingest's own count of committed files, and when the first and the last landed.
    ingested = [0]
    first_in: list[float] = []
    all_in: list[float] = []

    def on_progress(p) -> None:
        ingested[0] = p.totals.get("ingested", 0)
        now = time.monotonic()
        if ingested[0] and not first_in:
            first_in.append(now)
        if ingested[0] >= count and not all_in:
            all_in.append(now)

    window._ingest.progressed.connect(on_progress)
    # Measure while ingest runs: from its first report on (starting the
    # decode processes is a one-off, reported apart).
    started = time.monotonic()
    first_report = []
    window._ingest.progressed.connect(lambda _p: first_report.append(1))
    while not first_report and time.monotonic() - started < 60:
        app.processEvents()
        time.sleep(0.001)
    startup_s = time.monotonic() - started
    _dashboards_on_screen(window, view)
    clock = QElapsedTimer()
    clock.start()
    gaps: list[float] = []
    last = [clock.nsecsElapsed()]
    shown = [view.snapshot]
    # (monotonic time, files ingest had committed, new images on the production dashboard, GUI-thread ms)
    refreshes: list[tuple[float, int, int, float]] = []

    slow: list[tuple[float, float]] = []
    import gc

    gc_ms: list[tuple[int, float]] = []
    gc_start = [0.0]

    def gc_watch(phase: str, info: dict) -> None:
        if phase == "start":
            gc_start[0] = time.perf_counter()
        else:
            gc_ms.append((info["generation"], (time.perf_counter() - gc_start[0]) * 1000))

    gc.callbacks.append(gc_watch)

    def tick() -> None:
        now = clock.nsecsElapsed()
        gap = (now - last[0]) / 1e6
        gaps.append(gap)
        if gap > 30:
            slow.append((round(now / 1e9, 2), round(gap, 1)))
        last[0] = now
        snap = view.snapshot
        if snap is not shown[0]:
            shown[0] = snap
            refreshes.append((time.monotonic(), ingested[0], snap.production.month_images - before_images,
                              view.last_apply_ms))

    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(tick)
    timer.start()
    end = time.monotonic() + seconds
    while time.monotonic() < end or writer.poll() is None:
        app.processEvents()
        time.sleep(0.001)
        if time.monotonic() > end + 60:
            writer.kill()
            break
    # let ingest catch up with the last files, and the dashboard show them
    catch_up = time.monotonic() + 30
    while time.monotonic() < catch_up and (not all_in or time.monotonic() < all_in[0] + 2.5):
        app.processEvents()
        time.sleep(0.001)
    _dashboards_on_screen(window, view)
    timer.stop()
    gc.callbacks.remove(gc_watch)
    in_catalog = lab.catalog.query_one("SELECT COUNT(*) AS n FROM ingest_events WHERE outcome = 'ingested'")["n"]
    window.close()
    lab.close()
    over = sorted(gaps)
    ingest_end = all_in[0] if all_in else float("inf")
    during = [r for r in refreshes if first_in and first_in[0] <= r[0] <= ingest_end]
    return {"seconds": seconds, "files": count, "ingested": in_catalog, "ingest_reported": ingested[0],
            "ticks": len(gaps),
            "max_stall_ms": max(gaps) - 5 if gaps else 0.0, "p99_gap_ms": over[int(len(over) * 0.99)] if over else 0.0,
            "slow_ticks": slow, "ingest_start_s": startup_s,
            "ingest_span_s": (ingest_end - first_in[0]) if first_in and all_in else None,
            "gc_max_ms": max((ms for _, ms in gc_ms), default=0.0), "gc_runs": len(gc_ms),
            "gc_slow": sorted(gc_ms, key=lambda g: -g[1])[:5],
            "refreshes": len(refreshes), "refreshes_during_ingest": len(during),
            "refresh_ingested": [r[1] for r in refreshes], "refresh_new_images": [r[2] for r in refreshes],
            "apply_median_ms": statistics.median(r[3] for r in refreshes) if refreshes else 0.0}


def run(images: int = 2_000_000, classes: int = 200, repeats: int = 5, seconds: float = 60.0,
        per_minute: float = 300.0, root: Path | None = None) -> dict:
    from core.lab import Lab

    with tempfile.TemporaryDirectory(dir=root) as tmp:
        lab_root = Path(tmp) / "lab"
        lab = Lab.init(lab_root)
        t = time.perf_counter()
        seeded = seed_catalog(lab, classes, images, mix=MIX)
        seed_s = time.perf_counter() - t
        result = {"images": images, "classes": classes, "seed_s": seed_s, **refresh(lab, repeats)}
        # Against the baseline timed in this same run, on this same catalog.
        result["pandas_vs_load"] = result["pandas_ms"] / result["load_ms"]
        result["pandas_vs_apply"] = result["pandas_ms"] / result["apply_ms"]
        lab.close()
        result.update({f"stall_{k}": v for k, v in stall(lab_root, seconds, per_minute).items()})
        result["cells_seeded"] = seeded["cells"]
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2_000_000)
    parser.add_argument("--classes", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--per-minute", type=float, default=300.0)
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    r = run(args.images, args.classes, args.repeats, args.seconds, args.per_minute)
    print(f"dashboards: {r['images']:,} images, {r['classes']} classes, {r['cells']:,} quota cells "
          f"(seeded in {r['seed_s']:.0f} s)")
    print(f"  load, off the GUI thread   {r['load_ms']:8.1f} ms per refresh (median; first, cold {r['first_load_ms']:.0f} ms)")
    print(f"  GUI-thread work            {r['apply_ms']:8.1f} ms per refresh (median; max {r['apply_max_ms']:.1f})"
          f"   target <= 100 ms")
    print(f"  pandas over the images     {r['pandas_ms']:8.1f} ms (baseline)   ratio {r['pandas_vs_load']:.0f}x "
          f"the whole load, {r['pandas_vs_apply']:.0f}x the GUI-thread work")
    span = r["stall_ingest_span_s"]
    print(f"  live ingest {args.per_minute:g}/min for {r['stall_seconds']:g} s, Dashboards area on screen: "
          f"{r['stall_ingested']} of {r['stall_files']} files ingested"
          + (f" over {span:.1f} s" if span is not None else ""))
    print(f"  longest event-loop stall   {r['stall_max_stall_ms']:8.1f} ms   target <= 50 ms, "
          f"with {r['stall_refreshes']} dashboard refreshes on screen ({r['stall_refreshes_during_ingest']} while "
          f"files were being ingested; GUI-thread median {r['stall_apply_median_ms']:.1f} ms each)")
    print(f"  (p99 timer gap {r['stall_p99_gap_ms']:.1f} ms for a 5 ms timer; measured from ingest's first report, "
          f"{r['stall_ingest_start_s']:.1f} s after it was started)")
    print(f"  files committed when each refresh landed: {r['stall_refresh_ingested']}; new images it showed: "
          f"{r['stall_refresh_new_images']}")
    worst = sorted(r["stall_slow_ticks"], key=lambda t: -t[1])[:5]
    print(f"  timer gaps over 30 ms (s into the run, ms): {worst or 'none'}")
    print(f"  garbage collections (any thread): {r['stall_gc_runs']}, slowest (generation, ms): {r['stall_gc_slow']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
