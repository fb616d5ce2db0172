"""SQL for capture sessions and their steps."""

from __future__ import annotations

from typing import Any

from core.catalog.db import Catalog, WriteTransaction, utc_now


def names_to_ids(catalog: Catalog) -> dict[str, dict[str, int]]:
    """Barcodes and names the steps refer to: scanners, bags, items, poses."""
    return {
        "scanners": {r["name"]: r["id"] for r in catalog.query("SELECT id, name FROM scanners")},
        "bags": {r["barcode"]: r["id"] for r in catalog.query("SELECT id, barcode FROM bags")},
        "items": {r["barcode"]: r["id"] for r in catalog.query("SELECT id, barcode FROM threat_items")},
        "poses": {r["name"]: r["id"] for r in catalog.query("SELECT id, name FROM poses")},
    }


def insert_session(txn: WriteTransaction, scanner_id: int, technician: str, session_date: str,
                   steps: list[tuple]) -> int:
    """``steps``: (position, bag_id, item_id, pose_id, split, images_wanted, status)."""
    session_id = int(txn.execute(
        "INSERT INTO capture_sessions (scanner_id, technician, session_date, status, created_at) VALUES (?, ?, ?, 'open', ?)",
        (scanner_id, technician, session_date, utc_now()),
    ).lastrowid)
    txn.executemany(
        "INSERT INTO capture_steps (session_id, position, bag_id, item_id, pose_id, split, images_wanted, status)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [(session_id, *row) for row in steps])
    txn.touched("capture_sessions", "capture_steps")
    return session_id


def session_steps(catalog: Catalog, session_id: int) -> list[dict[str, Any]]:
    return [dict(r) for r in catalog.query(
        """SELECT st.id, st.position, st.status, st.split, st.images_wanted, b.barcode AS bag, ti.barcode AS item,
                  p.name AS pose, (SELECT COUNT(*) FROM images i WHERE i.step_id = st.id) AS images_done
           FROM capture_steps st JOIN bags b ON b.id = st.bag_id
           LEFT JOIN threat_items ti ON ti.id = st.item_id LEFT JOIN poses p ON p.id = st.pose_id
           WHERE st.session_id = ? ORDER BY st.position""", (session_id,))]
