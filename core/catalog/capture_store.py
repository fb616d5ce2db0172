"""SQL for capture sessions and their steps."""

from __future__ import annotations

import json

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
    return session_id


# -- planner inputs -----------------------------------------------------------

def plan_cell_keys(catalog: Catalog, plan_id: int) -> list[tuple]:
    """(cell_id, class_id, luggage_type_id, clutter_level, scanner_model_id, pose_id, test_target, train_target)."""
    return catalog.reader().execute(
        "SELECT id, class_id, luggage_type_id, clutter_level, scanner_model_id, pose_id, test_target, train_target"
        " FROM quota_cells WHERE plan_id = ? ORDER BY id", (plan_id,)).fetchall()


def planner_objects(catalog: Catalog) -> dict[str, list[tuple]]:
    """Items (id, barcode, class_id), bags (id, barcode, luggage_type_id, clutter_level),
    scanners (id, name, model_id), pools (kind, object_id, split)."""
    conn = catalog.reader()
    return {
        "items": conn.execute("SELECT id, barcode, class_id FROM threat_items ORDER BY id").fetchall(),
        "bags": conn.execute("SELECT id, barcode, luggage_type_id, clutter_level FROM bags ORDER BY id").fetchall(),
        "scanners": conn.execute("SELECT id, name, model_id FROM scanners ORDER BY name").fetchall(),
        "pools": conn.execute("SELECT kind, object_id, split FROM split_pools").fetchall(),
    }


def existing_setups(catalog: Catalog) -> list[tuple]:
    """(split, scanner_model_id, bag_id, item_key, pose_key) of every setup with images."""
    return catalog.reader().execute(
        "SELECT split, scanner_model_id, bag_id, item_key, pose_key FROM setup_tally WHERE images > 0").fetchall()


def committed_steps(catalog: Catalog) -> list[tuple]:
    """Steps of started, unclosed sessions still to capture (they will fill cells):
    (session_id, scanner_id, session_date, split, scanner_model_id, bag_id, item_key, pose_key)."""
    return catalog.reader().execute(
        """SELECT s.id, s.scanner_id, s.session_date, st.split, sc.model_id, st.bag_id,
                  IFNULL(st.item_id, 0), IFNULL(st.pose_id, 0)
           FROM capture_steps st JOIN capture_sessions s ON s.id = st.session_id
           JOIN scanners sc ON sc.id = s.scanner_id
           WHERE s.status = 'open' AND st.status IN ('pending', 'active')""").fetchall()


def skipped_setups(catalog: Catalog) -> list[tuple]:
    """(split, scanner_model_id, bag_id, item_key, pose_key) of skipped steps: planned elsewhere next time."""
    return catalog.reader().execute(
        """SELECT st.split, sc.model_id, st.bag_id, IFNULL(st.item_id, 0), IFNULL(st.pose_id, 0)
           FROM capture_steps st JOIN capture_sessions s ON s.id = st.session_id
           JOIN scanners sc ON sc.id = s.scanner_id WHERE st.status = 'skipped'""").fetchall()


def assign_pools(txn: WriteTransaction, rows: list[tuple[str, int, str]]) -> None:
    """``rows``: (kind, object_id, split); objects already in a pool keep it."""
    now = utc_now()
    txn.executemany(
        "INSERT OR IGNORE INTO split_pools (kind, object_id, split, assigned_at, assigned_by) VALUES (?, ?, ?, ?, ?)",
        [(kind, oid, split, now, txn.actor) for kind, oid, split in rows])


def replace_planned_sessions(txn: WriteTransaction) -> int:
    """Retire planned sessions nobody started (kept, marked replaced); returns how many."""
    cursor = txn.execute(
        "UPDATE capture_sessions SET replaced_at = ? WHERE status = 'planned' AND replaced_at IS NULL", (utc_now(),))
    return cursor.rowcount


def insert_capture_plan(txn: WriteTransaction, quota_plan_id: int, options_json: str, report_json: str) -> int:
    return int(txn.execute(
        "INSERT INTO capture_plans (quota_plan_id, created_at, created_by, options_json, report_json) VALUES (?, ?, ?, ?, ?)",
        (quota_plan_id, utc_now(), txn.actor, options_json, report_json)).lastrowid)


def insert_planned_sessions(txn: WriteTransaction, capture_plan_id: int, sessions: list[tuple]) -> None:
    """``sessions``: (scanner_id, session_date, shift, steps) where steps are
    (position, bag_id, item_id, pose_id, split, images_wanted)."""
    now = utc_now()
    step_rows = []
    for scanner_id, session_date, shift, steps in sessions:
        session_id = txn.execute(
            "INSERT INTO capture_sessions (scanner_id, technician, session_date, status, created_at, capture_plan_id, shift)"
            " VALUES (?, '', ?, 'planned', ?, ?, ?)", (scanner_id, session_date, now, capture_plan_id, shift)).lastrowid
        step_rows.extend((session_id, *step) for step in steps)
    txn.executemany(
        "INSERT INTO capture_steps (session_id, position, bag_id, item_id, pose_id, split, images_wanted, status)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, 'pending')", step_rows)



# -- running a session --------------------------------------------------------

_SESSION_SQL = """
SELECT s.id, s.scanner_id, sc.name AS scanner, sc.station, s.technician, s.session_date, s.shift, s.status,
       s.capture_plan_id, s.started_at, s.closed_at, s.held_by, s.held_host, s.held_seen_at, s.replaced_at,
       (SELECT COUNT(*) FROM capture_steps st WHERE st.session_id = s.id) AS steps,
       (SELECT COUNT(*) FROM capture_steps st WHERE st.session_id = s.id AND st.status IN ('done', 'skipped')) AS steps_finished,
       (SELECT IFNULL(SUM(images_wanted), 0) FROM capture_steps st WHERE st.session_id = s.id) AS images_wanted
FROM capture_sessions s JOIN scanners sc ON sc.id = s.scanner_id
"""


def sessions(catalog: Catalog, day: str | None, scanner: str | None, include_closed: bool = True) -> list[dict[str, Any]]:
    """Sessions of a day (all days with None), not replaced, by scanner and shift."""
    where = ["s.replaced_at IS NULL"]
    params: list[Any] = []
    if day:
        where.append("s.session_date = ?")
        params.append(day)
    if scanner:
        where.append("sc.name = ?")
        params.append(scanner)
    if not include_closed:
        where.append("s.status != 'closed'")
    return [dict(r) for r in catalog.query(
        f"{_SESSION_SQL} WHERE {' AND '.join(where)} ORDER BY s.session_date, sc.name, s.shift, s.id", params)]


def _one(cursor) -> dict[str, Any] | None:
    """The cursor's first row as a dict (a write transaction's rows are plain tuples)."""
    row = cursor.fetchone()
    return dict(zip([d[0] for d in cursor.description], row)) if row else None


def session(src: Catalog | WriteTransaction, session_id: int) -> dict[str, Any] | None:
    if isinstance(src, WriteTransaction):
        return _one(src.execute(f"{_SESSION_SQL} WHERE s.id = ?", (session_id,)))
    row = src.query_one(f"{_SESSION_SQL} WHERE s.id = ?", (session_id,))
    return dict(row) if row else None


_STEP_SQL = """
SELECT st.id, st.session_id, st.position, st.status, st.split, st.images_wanted,
       st.bag_id, b.barcode AS bag, lt.name AS luggage_type, b.clutter_level AS clutter,
       st.item_id, ti.barcode AS item, tc.name AS class_name,
       st.pose_id, p.name AS pose, p.placement, p.rotation_deg, p.occlusion, p.description AS pose_description,
       st.bag_scanned_at, st.item_scanned_at, st.confirmed_at, st.confirmed_by, st.skip_reason, st.flag_reason,
       (SELECT COUNT(*) FROM images i WHERE i.step_id = st.id AND i.usable = 1) AS images_done
FROM capture_steps st JOIN bags b ON b.id = st.bag_id JOIN luggage_types lt ON lt.id = b.luggage_type_id
LEFT JOIN threat_items ti ON ti.id = st.item_id LEFT JOIN threat_classes tc ON tc.id = ti.class_id
LEFT JOIN poses p ON p.id = st.pose_id
"""


def steps_of(catalog: Catalog, session_id: int) -> list[dict[str, Any]]:
    return [dict(r) for r in catalog.query(f"{_STEP_SQL} WHERE st.session_id = ? ORDER BY st.position", (session_id,))]


def step(txn: WriteTransaction, step_id: int) -> dict[str, Any] | None:
    return _one(txn.execute(f"{_STEP_SQL} WHERE st.id = ?", (step_id,)))


def active_step_id(txn: WriteTransaction, session_id: int) -> int | None:
    row = txn.execute("SELECT id FROM capture_steps WHERE session_id = ? AND status = 'active'", (session_id,)).fetchone()
    return int(row[0]) if row else None



def waiting_images(src: Catalog | WriteTransaction, scanner_id: int, since: str) -> list[int]:
    """Images from the scanner since ``since`` that joined no step (tags not scanned yet)."""
    sql = ("SELECT id FROM images WHERE scanner_id = ? AND step_id IS NULL AND usable = 1 AND ingested_at >= ?"
           " ORDER BY id")
    if isinstance(src, WriteTransaction):
        return [r[0] for r in src.execute(sql, (scanner_id, since)).fetchall()]
    return [r[0] for r in src.query(sql, (scanner_id, since))]


def object_by_barcode(txn: WriteTransaction, code: str) -> tuple[str, int] | None:
    """('bag' | 'item', id) for a barcode in the inventory."""
    row = txn.execute("SELECT 'bag', id FROM bags WHERE barcode = ? UNION ALL "
                      "SELECT 'item', id FROM threat_items WHERE barcode = ?", (code, code)).fetchone()
    return (row[0], int(row[1])) if row else None


def update_session(txn: WriteTransaction, session_id: int, **changes: Any) -> None:
    sets = ", ".join(f"{k} = ?" for k in changes)
    txn.execute(f"UPDATE capture_sessions SET {sets} WHERE id = ?", (*changes.values(), session_id))


def update_step(txn: WriteTransaction, step_id: int, **changes: Any) -> None:
    sets = ", ".join(f"{k} = ?" for k in changes)
    txn.execute(f"UPDATE capture_steps SET {sets} WHERE id = ?", (*changes.values(), step_id))


def set_image_usable(txn: WriteTransaction, image_id: int, usable: bool, quality_flags: str) -> None:
    txn.execute("UPDATE images SET usable = ?, quality_flags = ? WHERE id = ?", (int(usable), quality_flags, image_id))


def image_row(txn: WriteTransaction, image_id: int) -> dict[str, Any] | None:
    return _one(txn.execute("SELECT id, step_id, scanner_id, split, item_id, bag_id, pose_id, usable, quality_flags,"
                            " technician FROM images WHERE id = ?", (image_id,)))


def move_image(txn: WriteTransaction, image_id: int, step: dict[str, Any] | None, technician: str | None) -> None:
    """Give an image a step's labels (or none: unassigned)."""
    if step is None:
        txn.execute("UPDATE images SET step_id = NULL, split = NULL, item_id = NULL, bag_id = NULL, pose_id = NULL"
                    " WHERE id = ?", (image_id,))
    else:
        txn.execute("UPDATE images SET step_id = ?, split = ?, item_id = ?, bag_id = ?, pose_id = ?, technician = ?"
                    " WHERE id = ?", (step["id"], step["split"], step["item_id"], step["bag_id"], step["pose_id"],
                                      technician, image_id))


def session_actions(txn: WriteTransaction, session_id: int, actions: tuple[str, ...]) -> list[tuple[int, str, str]]:
    """(audit id, action, after_json) of a session's entries, newest first."""
    marks = ", ".join("?" for _ in actions)
    return txn.execute(
        f"SELECT id, action, after_json FROM audit_log WHERE entity = 'capture_session' AND entity_key = ?"
        f" AND action IN ({marks}) ORDER BY id DESC", (str(session_id), *actions)).fetchall()


def scanner_active_step(catalog: Catalog, scanner: str) -> dict[str, Any] | None:
    """The confirmed active step of the session running on ``scanner`` (held first), with
    its usable and set-aside image counts; None when nothing is ready to capture."""
    row = catalog.query_one(
        f"""{_STEP_SQL} JOIN capture_sessions s ON s.id = st.session_id JOIN scanners sc ON sc.id = s.scanner_id
            WHERE sc.name = ? AND s.status = 'open' AND st.status = 'active' AND st.confirmed_at IS NOT NULL
            ORDER BY s.held_by IS NOT NULL DESC, s.held_seen_at DESC, s.id DESC LIMIT 1""", (scanner,))
    if row is None:
        return None
    out = dict(row)
    out["images_set_aside"] = catalog.query_one(
        "SELECT COUNT(*) AS n FROM images WHERE step_id = ? AND usable = 0", (out["id"],))["n"]
    return out


def session_images(catalog: Catalog, session_id: int, limit: int) -> list[dict[str, Any]]:
    """The session's newest images (set-aside ones too), with their step's position."""
    return [dict(r) for r in catalog.query(
        """SELECT i.id, i.thumb_path, i.usable, i.quality_flags, i.captured_at, i.original_name, i.step_id,
                  st.position
           FROM images i JOIN capture_steps st ON st.id = i.step_id
           WHERE st.session_id = ? ORDER BY i.id DESC LIMIT ?""", (session_id, limit))]


def other_holders(txn: WriteTransaction, scanner_id: int, session_id: int) -> list[tuple]:
    """(id, held_by, held_host, held_seen_at) of the scanner's other open, held sessions."""
    return txn.execute(
        "SELECT id, held_by, held_host, held_seen_at FROM capture_sessions WHERE scanner_id = ? AND id != ?"
        " AND status = 'open' AND held_by IS NOT NULL", (scanner_id, session_id)).fetchall()


def touch_hold(txn: WriteTransaction, session_id: int, technician: str, host: str) -> bool:
    """Stamp the holder as seen now; False when ``technician`` at ``host`` no longer holds it."""
    return txn.execute("UPDATE capture_sessions SET held_seen_at = ? WHERE id = ? AND held_by = ? AND held_host = ?",
                       (utc_now(), session_id, technician, host)).rowcount > 0


def take_hold(txn: WriteTransaction, session_id: int, seen: tuple[str | None, str | None, str | None],
              technician: str, host: str, now: str) -> bool:
    """Compare-and-set: hold the session for ``technician`` at ``host`` only if its
    (held_by, held_host, held_seen_at) are still ``seen``; False when someone else got there first."""
    taken = txn.execute(
        "UPDATE capture_sessions SET held_by = ?, held_host = ?, held_seen_at = ?"
        " WHERE id = ? AND held_by IS ? AND held_host IS ? AND held_seen_at IS ?",
        (technician, host, now, session_id, *seen)).rowcount == 1
    return taken


def carry_tags(txn: WriteTransaction, from_step_id: int, to_step_id: int) -> None:
    """What stays in the scanner from one step to another: the bag's scan when the bag
    is the same, and the whole confirmation when the bag and the item are (the rule
    ``ingest_store.activate_next_step`` applies when a step completes)."""
    txn.execute(
        """UPDATE capture_steps SET bag_scanned_at = (SELECT p.bag_scanned_at FROM capture_steps p WHERE p.id = ?)
           WHERE id = ? AND bag_id = (SELECT p.bag_id FROM capture_steps p WHERE p.id = ?)""",
        (from_step_id, to_step_id, from_step_id))
    txn.execute(
        """UPDATE capture_steps SET (item_scanned_at, confirmed_at, confirmed_by) =
               (SELECT p.item_scanned_at, p.confirmed_at, p.confirmed_by FROM capture_steps p WHERE p.id = ?)
           WHERE id = ? AND EXISTS (SELECT 1 FROM capture_steps p WHERE p.id = ? AND p.confirmed_at IS NOT NULL
                                    AND p.bag_id = capture_steps.bag_id AND p.item_id IS capture_steps.item_id)""",
        (from_step_id, to_step_id, from_step_id))


def usable_step_images(txn: WriteTransaction, step_id: int) -> list[int]:
    """A step's usable images, newest first."""
    return [r[0] for r in txn.execute("SELECT id FROM images WHERE step_id = ? AND usable = 1 ORDER BY id DESC",
                                      (step_id,)).fetchall()]


def drop_hold(txn: WriteTransaction, session_id: int, technician: str, host: str) -> bool:
    """Let go of the session if ``technician`` at ``host`` holds it; True if they did."""
    released = txn.execute("UPDATE capture_sessions SET held_by = NULL, held_host = NULL, held_seen_at = NULL"
                           " WHERE id = ? AND held_by = ? AND held_host = ?", (session_id, technician, host)).rowcount > 0
    return released


def step_status_counts(txn: WriteTransaction, session_id: int) -> dict[str, int]:
    return dict(txn.execute("SELECT status, COUNT(*) FROM capture_steps WHERE session_id = ? GROUP BY status",
                            (session_id,)).fetchall())


def audit_before(txn: WriteTransaction, audit_id: int) -> Any:
    row = txn.execute("SELECT before_json FROM audit_log WHERE id = ?", (audit_id,)).fetchone()
    return json.loads(row[0]) if row and row[0] else None
