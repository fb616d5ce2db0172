"""SQL for ingest: image rows with their step, events, quarantine, reports, near-duplicates."""

from __future__ import annotations

import json
from typing import Any

from core.catalog import label_store
from core.catalog.db import Catalog, WriteTransaction, connection_of, utc_now


def catalog_text(value: str | None) -> str | None:
    """A file name or path as SQLite can store it.

    Names are bytes on Linux; one that is not UTF-8 reaches Python with
    surrogate escapes, which SQLite refuses. Those bytes are written as
    ``\\xNN`` instead (the kept copy has the real name).
    """
    if value is None:
        return None
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def report_exists(catalog: Catalog, sha256: str) -> bool:
    """Whether a DICOS threat report with this content hash is catalogued."""
    return catalog.reader().execute("SELECT 1 FROM dicos_reports WHERE sha256 = ?", (sha256,)).fetchone() is not None


def image_id_for_sha(txn_or_catalog: WriteTransaction | Catalog, sha256: str) -> int | None:
    row = connection_of(txn_or_catalog).execute("SELECT id FROM images WHERE sha256 = ?", (sha256,)).fetchone()
    return None if row is None else row[0]


def active_step(txn: WriteTransaction, scanner_id: int) -> dict[str, Any] | None:
    cursor = txn.execute(
        """SELECT st.id, st.session_id, st.bag_id, st.item_id, st.pose_id, st.split, st.images_wanted,
                  s.technician
           FROM capture_steps st JOIN capture_sessions s ON s.id = st.session_id
           WHERE s.scanner_id = ? AND s.status = 'open' AND st.status = 'active' AND st.confirmed_at IS NOT NULL
           ORDER BY s.held_by IS NOT NULL DESC, s.held_seen_at DESC, s.id DESC LIMIT 1""",
        (scanner_id,),
    )
    row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cursor.description], row))


def usable_images_of_step(txn: WriteTransaction, step_id: int) -> int:
    return txn.execute("SELECT COUNT(*) FROM images WHERE step_id = ? AND usable = 1", (step_id,)).fetchone()[0]


def complete_step_if_full(txn: WriteTransaction, step: dict[str, Any]) -> bool:
    """Mark the step done once it has its images, and make the next pending one active."""
    if usable_images_of_step(txn, step["id"]) < step["images_wanted"]:
        return False
    txn.execute("UPDATE capture_steps SET status = 'done' WHERE id = ?", (step["id"],))
    activate_next_step(txn, step["session_id"], step["id"])
    return True


def activate_next_step(txn: WriteTransaction, session_id: int, previous_step_id: int | None) -> int | None:
    """Make the first pending step of a session active; returns its id.

    A bag that stays in the scanner keeps its scanned tag; when the item
    stays too (only the pose changes) the step starts confirmed.
    """
    nxt = txn.execute(
        "SELECT id, bag_id, item_id FROM capture_steps WHERE session_id = ? AND status = 'pending' ORDER BY position LIMIT 1",
        (session_id,),
    ).fetchone()
    if nxt is None:
        return None
    txn.execute("UPDATE capture_steps SET status = 'active' WHERE id = ?", (nxt[0],))
    if previous_step_id is not None:
        txn.execute(
            """UPDATE capture_steps SET bag_scanned_at = (SELECT p.bag_scanned_at FROM capture_steps p WHERE p.id = ?)
               WHERE id = ? AND EXISTS (SELECT 1 FROM capture_steps p WHERE p.id = ? AND p.bag_id = ?)""",
            (previous_step_id, nxt[0], previous_step_id, nxt[1]))
        txn.execute(
            """UPDATE capture_steps SET (item_scanned_at, confirmed_at, confirmed_by) =
                   (SELECT p.item_scanned_at, p.confirmed_at, p.confirmed_by FROM capture_steps p WHERE p.id = ?)
               WHERE id = ? AND EXISTS (SELECT 1 FROM capture_steps p WHERE p.id = ? AND p.confirmed_at IS NOT NULL
                                        AND p.bag_id = ? AND p.item_id IS ?)""",
            (previous_step_id, nxt[0], previous_step_id, nxt[1], nxt[2]))
    return int(nxt[0])


def insert_image(txn: WriteTransaction, row: dict[str, Any]) -> int:
    row = {**row, **{k: catalog_text(row[k]) for k in ("original_name", "source_path") if k in row}}
    columns = ", ".join(row)
    cursor = txn.execute(f"INSERT INTO images ({columns}) VALUES ({', '.join('?' for _ in row)})", tuple(row.values()))
    return int(cursor.lastrowid)


def insert_event(txn: WriteTransaction, scanner_id: int | None, source: str, sha: str | None, outcome: str,
                 image_id: int | None = None, detail: str = "") -> None:
    txn.execute(
        "INSERT INTO ingest_events (at, scanner_id, source_path, sha256, outcome, image_id, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (utc_now(), scanner_id, catalog_text(source), sha, outcome, image_id, catalog_text(detail)),
    )


def insert_quarantine(txn: WriteTransaction, scanner_id: int | None, source: str, stored: str, sha: str | None,
                      size: int, code: str, reason: str) -> int:
    cursor = txn.execute(
        "INSERT INTO quarantine (at, scanner_id, source_path, stored_path, sha256, size, reason_code, reason)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (utc_now(), scanner_id, catalog_text(source), catalog_text(stored), sha, size, code, catalog_text(reason)),
    )
    return int(cursor.lastrowid)


def insert_near_duplicates(txn: WriteTransaction, rows: list[tuple[int, int, int, int]]) -> None:
    txn.executemany(
        "INSERT OR IGNORE INTO near_duplicates (image_id, other_id, distance, cross_split) VALUES (?, ?, ?, ?)", rows
    )


def insert_report(txn: WriteTransaction, sha: str, store_path: str, uid: str, ground_truth: bool, boxes: list) -> int | None:
    cursor = txn.execute(
        "INSERT OR IGNORE INTO dicos_reports (sha256, store_path, referenced_uid, ground_truth, boxes_json, received_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (sha, store_path, uid, int(ground_truth), json.dumps(boxes), utc_now()),
    )
    return cursor.lastrowid if cursor.rowcount else None


def link_reports(txn: WriteTransaction, class_ids: dict[str, int]) -> int:
    """Turn boxes of reports whose image has arrived into annotation revisions; returns how many.

    A report marked ground truth (a lab's reference, the simulator's) gives
    source ``ground_truth``; any other came from the scanner's detector
    (``scanner_report``). Boxes a report cannot place (corners in the wrong
    order) are left in the report's ``boxes_json``, not made into labels.
    """
    pending = txn.execute(
        """SELECT r.id, i.id, r.boxes_json, r.ground_truth FROM dicos_reports r
           JOIN images i ON i.sop_instance_uid = r.referenced_uid
           WHERE r.image_id IS NULL"""
    ).fetchall()
    rows = []
    for report_id, image_id, boxes_json, ground_truth in pending:
        for box in json.loads(boxes_json):
            if not (box["x1"] > box["x0"] and box["y1"] > box["y0"]):
                continue
            rows.append({"image_id": image_id, "class_id": class_ids.get(box["label"]), "label": box["label"],
                         "x0": box["x0"], "y0": box["y0"], "x1": box["x1"], "y1": box["y1"],
                         "source": "ground_truth" if ground_truth else "scanner_report", "qa_state": "unreviewed",
                         "iscrowd": 0, "difficult": 0, "truncated": 0, "rotation": 0.0, "deleted": 0,
                         "note": f"DICOS report {report_id}"})
        txn.execute("UPDATE dicos_reports SET image_id = ? WHERE id = ?", (image_id, report_id))
    if rows:
        first_id = label_store.reserve_annotation_ids(txn, len(rows))
        first_seq = label_store.reserve_seqs(txn, len(rows))
        now = utc_now()
        for n, row in enumerate(rows):
            row.update(annotation_id=first_id + n, seq=first_seq + n, actor=txn.actor, created_at=now)
        label_store.insert_revisions(txn, rows)
    return len(rows)


def phash_table(catalog: Catalog) -> list[tuple[int, int, str | None]]:
    return catalog.reader().execute("SELECT id, phash, split FROM images WHERE phash IS NOT NULL").fetchall()


def scanners(catalog: Catalog) -> list[dict[str, Any]]:
    return [dict(r) for r in catalog.query(
        """SELECT s.id, s.name, s.station, s.drop_folder, m.name AS model, m.width, m.height, m.bit_depth
           FROM scanners s JOIN scanner_models m ON m.id = s.model_id ORDER BY s.name""")]


def class_ids(catalog: Catalog) -> dict[str, int]:
    return {r["name"]: r["id"] for r in catalog.query("SELECT id, name FROM threat_classes")}


def quarantined(catalog: Catalog, status: str | None = "held", limit: int = 500) -> list[dict[str, Any]]:
    where = "WHERE q.status = ?" if status else ""
    params = (status, limit) if status else (limit,)
    return [dict(r) for r in catalog.query(
        f"""SELECT q.*, s.name AS scanner FROM quarantine q LEFT JOIN scanners s ON s.id = q.scanner_id
            {where} ORDER BY q.id DESC LIMIT ?""", params)]


def quarantine_row(catalog: Catalog, quarantine_id: int) -> dict[str, Any] | None:
    row = catalog.query_one("SELECT * FROM quarantine WHERE id = ?", (quarantine_id,))
    return None if row is None else dict(row)


def resolve_quarantine(txn: WriteTransaction, quarantine_id: int, status: str) -> bool:
    """Move a held file to ``status``; False if someone else resolved it first."""
    cursor = txn.execute(
        "UPDATE quarantine SET status = ?, resolved_at = ?, resolved_by = ? WHERE id = ? AND status = 'held'",
        (status, utc_now(), txn.actor, quarantine_id))
    return cursor.rowcount == 1


def recent_images(catalog: Catalog, since_id: int = 0, limit: int = 60) -> list[dict[str, Any]]:
    return [dict(r) for r in catalog.query(
        """SELECT i.id, i.sha256, i.thumb_path, i.original_name, i.captured_at, i.ingested_at, i.split,
                  i.quality_flags, s.name AS scanner, s.station
           FROM images i LEFT JOIN scanners s ON s.id = i.scanner_id
           WHERE i.id > ? ORDER BY i.id DESC LIMIT ?""", (since_id, limit))]


def scanner_rates(catalog: Catalog, since_iso: str) -> dict[str, int]:
    """Images ingested per scanner since a time (every scanner listed, 0 if none)."""
    counts = {r["scanner_id"]: r["n"] for r in catalog.query(
        "SELECT scanner_id, COUNT(*) AS n FROM images WHERE ingested_at >= ? GROUP BY scanner_id", (since_iso,))}
    return {r["name"]: counts.get(r["id"], 0) for r in catalog.query("SELECT id, name FROM scanners ORDER BY name")}


def totals_since(catalog: Catalog, since_iso: str) -> dict[str, int]:
    """What ingest did since a time, per outcome of its events.

    A DICOS threat report is ingested too, but it is annotations for an
    image, not an image: ``images`` counts images taken, ``reports`` the
    reports (events with no image); ``duplicate``, ``quarantined`` and
    ``rejected`` count files of any kind.
    """
    rows = catalog.query(
        """SELECT CASE WHEN outcome = 'ingested' AND image_id IS NULL THEN 'reports'
                       WHEN outcome = 'ingested' THEN 'images' ELSE outcome END AS kind, COUNT(*) AS n
           FROM ingest_events WHERE at >= ? GROUP BY kind""", (since_iso,))
    return {r["kind"]: r["n"] for r in rows}
