"""What a person does with ingest's results: retry or discard a quarantined
file, and assign an unassigned image to a capture step. Each is audited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.catalog import capture_store
from core.catalog import ingest_store as sql
from core.errors import XLabError
from core.ingest.engine import Ingestor, Outcome, lab_scanners
from core.ingest.worker import prepare
from core.lab import Lab


class QuarantineError(XLabError):
    pass


def list_quarantine(lab: Lab, status: str | None = "held") -> list[dict[str, Any]]:
    return sql.quarantined(lab.catalog, status)


def _held(lab: Lab, quarantine_id: int) -> dict[str, Any]:
    row = sql.quarantine_row(lab.catalog, quarantine_id)
    if row is None:
        raise QuarantineError(f"no quarantined file #{quarantine_id}")
    if row["status"] != "held":
        raise QuarantineError(f"quarantined file #{quarantine_id} was already {row['status']}")
    return row


def retry(lab: Lab, quarantine_id: int, *, accept: bool = False, actor: str | None = None) -> Outcome:
    """Run the checks again on the kept copy (after an inventory fix, say).

    ``accept``: take it even though its scanner's size or bit-depth check
    fails (blank, saturated and undecodable files are never taken).
    """
    row = _held(lab, quarantine_id)
    kept = Path(row["stored_path"])
    if not kept.exists():
        raise QuarantineError(f"the kept copy {kept} is missing")
    scanner = next((s for s in lab_scanners(lab).values() if s.id == row["scanner_id"]), None)
    expectation = None if accept or scanner is None else scanner.expectation
    ingestor = Ingestor(lab, workers=0, remove_sources=False)
    prepared = prepare(str(kept), expectation, str(ingestor.store.root), str(ingestor.quarantine_root / "retries"))
    if prepared.kind not in ("image", "report"):
        raise QuarantineError(f"still fails: {prepared.reason}")
    (outcome,) = ingestor.commit([(prepared, scanner)])
    with lab.catalog.write(actor) as txn:
        sql.resolve_quarantine(txn, quarantine_id, "retried")
        txn.audit("accept" if accept else "retry", "quarantine", quarantine_id,
                  {"status": "held", "reason": row["reason"]}, {"status": "retried", "image_id": outcome.image_id})
    return outcome


def discard(lab: Lab, quarantine_id: int, *, actor: str | None = None) -> None:
    """Mark a quarantined file discarded. Its kept copy stays on disk: nothing is deleted."""
    row = _held(lab, quarantine_id)
    with lab.catalog.write(actor) as txn:
        if not sql.resolve_quarantine(txn, quarantine_id, "discarded"):
            raise QuarantineError(f"quarantined file #{quarantine_id} was resolved by someone else meanwhile")
        txn.audit("discard", "quarantine", quarantine_id, {"status": "held", "reason": row["reason"]},
                  {"status": "discarded", "kept_at": row["stored_path"]})


def assign(lab: Lab, image_id: int, step_id: int, *, actor: str | None = None) -> None:
    """Give an image the class, item, bag, pose and split of a capture step."""
    fields = ("step_id", "split", "item_id", "bag_id", "pose_id")
    with lab.catalog.write(actor) as txn:
        image = capture_store.image_row(txn, image_id)
        if image is None:
            raise XLabError(f"no image #{image_id}")
        step = capture_store.step(txn, step_id)
        if step is None:
            raise XLabError(f"no capture step #{step_id}")
        technician = capture_store.session(txn, step["session_id"])["technician"]
        capture_store.move_image(txn, image_id, step, technician)
        txn.audit("assign", "images", image_id, {f: image[f] for f in fields},
                  {"step_id": step_id, **{f: step[f] for f in fields[1:]}})
