"""The demo lab: shipped inventory and plan, and all its scanners simulated."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

from core.catalog.records import all_rows
from core.inventory import import_inventory
from core.lab import Lab
from core.progress import Progress
from core.quota.plans import create_plan, publish_plan
from core.quota.spec import read_plan_spec
from core.resources import resource
from core.simulator.scanner import simulate


def create_demo_lab(root: str | Path | None = None, actor: str = "demo") -> Lab:
    """Make (or bring up to date) the demo lab; idempotent."""
    lab = Lab.init(root)
    import_inventory(lab.catalog, resource("demo", "inventory.yaml"), actor=actor)
    spec = read_plan_spec(resource("demo", "plan.yaml"))
    if not lab.catalog.query_one("SELECT 1 FROM quota_plans WHERE name = ? AND status = 'published'", (spec.name,)):
        create_plan(lab.catalog, spec, actor=actor)
        publish_plan(lab.catalog, spec.name, actor=actor)
    return lab


def run_demo_scanners(
    lab: Lab, rate_per_minute: float = 12.0, count: int | None = None, seed: int = 0
) -> Iterator[Progress]:
    """Every scanner of the lab writing at ``rate_per_minute``, interleaved.

    Stops after ``count`` files in all (never if None); each yield is one file.
    """
    names = [s["name"] for s in all_rows(lab.catalog, "scanners")]
    formats = ("png16", "tiff16", "dicos", "pseudo_png")
    streams = [
        simulate(lab, name, None, rate_per_minute=0, fmt=formats[i % len(formats)],
                 write_mode="slow" if i == 1 else "rename", seed=seed + i)
        for i, name in enumerate(names)
    ]
    interval = 60.0 / (rate_per_minute * max(1, len(streams))) if rate_per_minute > 0 else 0.0
    written = 0
    next_at = time.monotonic()
    try:
        while streams and (count is None or written < count):
            stream = streams[written % len(streams)]
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            next_at = max(next_at + interval, time.monotonic())
            step = next(stream)
            written += 1
            yield Progress(written, count, step.message)
    finally:
        for stream in streams:
            stream.close()
