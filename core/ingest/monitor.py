"""What the ingest monitor shows: per-scanner rates and queues, the newest
images, the quarantine, today's totals. Read-only; any thread."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from core.catalog import ingest_store
from core.ingest.actions import list_quarantine
from core.ingest.engine import lab_scanners, waiting_files
from core.lab import Lab


@dataclass(frozen=True)
class IngestSnapshot:
    scanners: list[dict[str, Any]]
    recent: list[dict[str, Any]]
    quarantine: list[dict[str, Any]]
    totals_today: dict[str, int]


def ingest_snapshot(lab: Lab, since_id: int, thumbs: int) -> IngestSnapshot:
    """The monitor's data; ``recent``: up to ``thumbs`` images newer than ``since_id``."""
    now = datetime.now(timezone.utc)
    minute = ingest_store.scanner_rates(lab.catalog, (now - timedelta(minutes=1)).isoformat())
    hour = ingest_store.scanner_rates(lab.catalog, (now - timedelta(hours=1)).isoformat())
    scanners = [
        {"scanner": s.name, "station": s.station, "model": s.expectation.model, "per_minute": minute.get(s.name, 0),
         "last_hour": hour.get(s.name, 0), "queue": len(waiting_files(s.drop_folder))}
        for s in lab_scanners(lab).values()
    ]
    quarantine = [{**q, "file": Path(q["source_path"]).name} for q in list_quarantine(lab)]
    totals = ingest_store.totals_since(lab.catalog, now.date().isoformat())
    return IngestSnapshot(scanners, ingest_store.recent_images(lab.catalog, since_id, thumbs), quarantine, totals)
