"""Capture sessions: a scanner, a technician, a date and ordered steps.

This module opens a session with explicit steps and reports which step is
active; ingest links arriving images to that step. (Planning steps from quota
deficits comes with the capture planner.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from core.catalog import capture_store as sql
from core.errors import UnknownNameError, XLabError
from core.lab import Lab


@dataclass(frozen=True)
class StepSpec:
    bag: str  # barcode
    item: str | None  # barcode, None for a clean bag
    pose: str | None
    split: str
    images: int = 1


def open_session(lab: Lab, scanner: str, technician: str, steps: list[StepSpec], *, actor: str | None = None) -> int:
    """Create an open session whose first step is active; returns its id."""
    if not steps:
        raise XLabError("a capture session needs at least one step")
    ids = sql.names_to_ids(lab.catalog)
    if scanner not in ids["scanners"]:
        raise UnknownNameError(f"no scanner named '{scanner}'")
    rows = []
    for position, step in enumerate(steps, start=1):
        if step.bag not in ids["bags"]:
            raise UnknownNameError(f"step {position}: unknown bag barcode '{step.bag}'")
        if step.item is not None and step.item not in ids["items"]:
            raise UnknownNameError(f"step {position}: unknown item barcode '{step.item}'")
        if step.pose is not None and step.pose not in ids["poses"]:
            raise UnknownNameError(f"step {position}: unknown pose '{step.pose}'")
        if step.split not in ("test", "train"):
            raise XLabError(f"step {position}: split must be test or train")
        rows.append((position, ids["bags"][step.bag], ids["items"].get(step.item) if step.item else None,
                     ids["poses"].get(step.pose) if step.pose else None, step.split, step.images,
                     "active" if position == 1 else "pending"))
    with lab.catalog.write(actor) as txn:
        session_id = sql.insert_session(txn, ids["scanners"][scanner], technician, date.today().isoformat(), rows)
        txn.audit("open", "capture_session", session_id, None, {"scanner": scanner, "technician": technician, "steps": len(rows)})
    return session_id


def steps(lab: Lab, session_id: int) -> list[dict]:
    return sql.session_steps(lab.catalog, session_id)
