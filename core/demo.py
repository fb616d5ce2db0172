"""The demo lab: shipped inventory and plan, and all its scanners simulated."""

from __future__ import annotations

import threading
import time
from datetime import date
from collections.abc import Iterator
from pathlib import Path

from core.catalog.records import all_rows
from core.errors import XLabError
from core.inventory import import_inventory
from core.catalog import quota_store
from core.lab import Lab
from core.progress import Progress, run_to_end
from core.quota.plans import create_plan, publish_plan
from core.quota.spec import read_plan_spec
from core.resources import resource
from core.capture.planner import PlanOptions, plan_captures
from core.capture.sessions import (
    HEARTBEAT_S,
    SessionBusyError,
    close_session,
    heartbeat,
    list_sessions,
    scan_barcode,
    session_view,
    start_session,
)
from core.simulator.scanner import Setup, session_setups, simulate


# In the demo the person at the window runs this station's session (scanning
# its tags in Today); simulated technicians run the others.
DEMO_STATION = "SCN-A"


def create_demo_lab(root: str | Path | None = None, actor: str = "demo", plan_sessions: bool = True) -> Lab:
    """Make (or bring up to date) the demo lab; idempotent. ``plan_sessions``:
    plan today's capture sessions when none is open."""
    lab = Lab.init(root)
    import_inventory(lab.catalog, resource("demo", "inventory.yaml"), actor=actor)
    spec = read_plan_spec(resource("demo", "plan.yaml"))
    if quota_store.find_plan(lab.catalog, spec.name, published_only=True) is None:
        create_plan(lab.catalog, spec, actor=actor)
        publish_plan(lab.catalog, spec.name, actor=actor)
    if plan_sessions and not list_sessions(lab, include_closed=False):
        run_to_end(plan_captures(lab, PlanOptions(quota_plan=spec.name, start=date.today(), shifts=1, weekends=True),
                                 actor=actor))
    return lab


def simulated_technician(lab: Lab, scanner: str, name: str) -> Iterator[Setup | None]:
    """A technician who starts today's session on ``scanner``, scans each step's
    tags, and puts in what the step wants (None while there is nothing to do)."""
    follow = session_setups(lab, scanner)
    last_beat = 0.0
    while True:
        sessions = [s for s in list_sessions(lab, scanner=scanner, include_closed=False)]
        session = next((s for s in sessions if s["held_by"] == name), None)
        if session is None:
            free = next((s for s in sessions if not s["held_by"]), None)
            if free is None:
                yield None
                continue
            try:
                start_session(lab, free["id"], name, host="demo")
            except SessionBusyError:
                yield None
                continue
            session = free
        elif time.monotonic() - last_beat > HEARTBEAT_S:
            heartbeat(lab, session["id"], name, host="demo")
            last_beat = time.monotonic()
        step = session_view(lab, session["id"]).active
        if step is None:
            close_session(lab, session["id"], name)
            yield None
            continue
        if step["confirmed_at"] is None:
            for tag in (step["bag"], step["item"]):
                if tag:
                    scan_barcode(lab, session["id"], tag, name)
        yield next(follow)


def run_demo_scanners(
    lab: Lab, rate_per_minute: float = 12.0, count: int | None = None, seed: int = 0, with_ingest: bool = False
) -> Iterator[Progress]:
    """Every scanner of the lab writing at ``rate_per_minute``, interleaved.

    Each scanner captures its session's steps: ``DEMO_STATION`` once the
    person at the window has scanned the step's tags, the others run by
    simulated technicians. ``with_ingest`` also runs ingest (on a thread of
    its own) so the steps fill without a window. Stops after ``count`` files
    in all (never if None); each yield is one file written.
    """
    names = [s["name"] for s in all_rows(lab.catalog, "scanners")]
    formats = ("png16", "tiff16", "dicos", "pseudo_png")
    streams = [
        simulate(lab, name, None, rate_per_minute=0, fmt=formats[i % len(formats)],
                 write_mode="slow" if i == 1 else "rename", seed=seed + i,
                 setups=session_setups(lab, name) if name == DEMO_STATION
                 else simulated_technician(lab, name, f"sim-{name.lower()}"))
        for i, name in enumerate(names)
    ]
    interval = 60.0 / (rate_per_minute * max(1, len(streams))) if rate_per_minute > 0 else 0.0
    written = 0
    turn = 0
    last_done = [0] * len(streams)
    stop = threading.Event()
    failure: list[BaseException] = []
    ingest = (threading.Thread(target=_ingest_until, args=(lab, stop, failure), daemon=True, name="demo-ingest")
              if with_ingest else None)
    if ingest is not None:
        ingest.start()
    next_at = time.monotonic()
    try:
        while streams and (count is None or written < count):
            if failure:
                raise XLabError(f"ingest stopped: {failure[0]}") from failure[0]
            index = turn % len(streams)
            turn += 1
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            step = next(streams[index])
            if step.done == last_done[index]:
                continue  # that scanner waits for its technician
            last_done[index] = step.done
            next_at = max(next_at + interval, time.monotonic())
            written += 1
            yield Progress(written, count, step.message)
    finally:
        for stream in streams:
            stream.close()
        stop.set()
        if ingest is not None:
            ingest.join(30)


def _ingest_until(lab: Lab, stop: threading.Event, failure: list[BaseException]) -> None:
    from core.ingest.engine import watch
    from core.ingest.log import ingest_logging

    ingest_logging(lab)
    progress = watch(lab)
    try:
        for _ in progress:
            if stop.is_set():
                break
    except BaseException as exc:  # noqa: BLE001 - reported by the scanner loop
        failure.append(exc)
    finally:
        progress.close()
