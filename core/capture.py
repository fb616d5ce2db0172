"""Capture sessions: a scanner, a technician, a date and ordered steps.

This module opens a session with explicit steps and reports which step is
active; ingest links arriving images to that step. (Planning steps from quota
deficits comes with the capture planner.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from core.catalog.db import utc_now
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
    cat = lab.catalog
    scanner_row = cat.query_one("SELECT id FROM scanners WHERE name = ?", (scanner,))
    if scanner_row is None:
        raise UnknownNameError(f"no scanner named '{scanner}'")
    bags = {r["barcode"]: r["id"] for r in cat.query("SELECT id, barcode FROM bags")}
    items = {r["barcode"]: r["id"] for r in cat.query("SELECT id, barcode FROM threat_items")}
    poses = {r["name"]: r["id"] for r in cat.query("SELECT id, name FROM poses")}
    rows = []
    for position, step in enumerate(steps, start=1):
        if step.bag not in bags:
            raise UnknownNameError(f"step {position}: unknown bag barcode '{step.bag}'")
        if step.item is not None and step.item not in items:
            raise UnknownNameError(f"step {position}: unknown item barcode '{step.item}'")
        if step.pose is not None and step.pose not in poses:
            raise UnknownNameError(f"step {position}: unknown pose '{step.pose}'")
        if step.split not in ("test", "train"):
            raise XLabError(f"step {position}: split must be test or train")
        rows.append((position, bags[step.bag], items.get(step.item) if step.item else None,
                     poses.get(step.pose) if step.pose else None, step.split, step.images,
                     "active" if position == 1 else "pending"))
    with cat.write(actor) as txn:
        session_id = txn.execute(
            "INSERT INTO capture_sessions (scanner_id, technician, session_date, status, created_at) VALUES (?, ?, ?, 'open', ?)",
            (scanner_row["id"], technician, date.today().isoformat(), utc_now()),
        ).lastrowid
        txn.executemany(
            "INSERT INTO capture_steps (session_id, position, bag_id, item_id, pose_id, split, images_wanted, status)"
            f" VALUES ({session_id}, ?, ?, ?, ?, ?, ?, ?)", rows)
        txn.audit("open", "capture_session", session_id, None, {"scanner": scanner, "technician": technician, "steps": len(rows)})
        txn.touched("capture_sessions", "capture_steps")
    return int(session_id)


def steps(lab: Lab, session_id: int) -> list[dict]:
    return [dict(r) for r in lab.catalog.query(
        """SELECT st.id, st.position, st.status, st.split, st.images_wanted, b.barcode AS bag, ti.barcode AS item,
                  p.name AS pose, (SELECT COUNT(*) FROM images i WHERE i.step_id = st.id) AS images_done
           FROM capture_steps st JOIN bags b ON b.id = st.bag_id
           LEFT JOIN threat_items ti ON ti.id = st.item_id LEFT JOIN poses p ON p.id = st.pose_id
           WHERE st.session_id = ? ORDER BY st.position""", (session_id,))]
