"""SQL for quota plans, their per-class KPIs and cells, and the quota status query."""

from __future__ import annotations

from typing import Any

from core.catalog.db import Catalog, WriteTransaction

PLAN_COLUMNS = (
    "id, name, version, status, based_on, images_per_setup, clean_false_alarm_rate, "
    "clean_half_width, clean_confidence, clean_setups, spec_json, note, created_at, created_by, "
    "published_at, published_by"
)


def _dicts(cursor: Any) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def plans(catalog: Catalog) -> list[dict[str, Any]]:
    return [dict(r) for r in catalog.query(f"SELECT {PLAN_COLUMNS} FROM quota_plans ORDER BY name, version")]


def plan_by_id(catalog: Catalog, plan_id: int) -> dict[str, Any] | None:
    row = catalog.query_one(f"SELECT {PLAN_COLUMNS} FROM quota_plans WHERE id = ?", (plan_id,))
    return dict(row) if row else None


def find_plan(catalog: Catalog, name: str, version: int | None = None, published_only: bool = False) -> dict[str, Any] | None:
    where = "name = ?"
    params: list[Any] = [name]
    if version is not None:
        where += " AND version = ?"
        params.append(version)
    if published_only:
        where += " AND status = 'published'"
    row = catalog.query_one(f"SELECT {PLAN_COLUMNS} FROM quota_plans WHERE {where} ORDER BY version DESC LIMIT 1", params)
    return dict(row) if row else None


def latest_in_txn(txn: WriteTransaction, name: str) -> dict[str, Any] | None:
    rows = _dicts(txn.execute(f"SELECT {PLAN_COLUMNS} FROM quota_plans WHERE name = ? ORDER BY version DESC LIMIT 1", (name,)))
    return rows[0] if rows else None


def insert_plan(txn: WriteTransaction, row: dict[str, Any]) -> int:
    columns = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    cursor = txn.execute(f"INSERT INTO quota_plans ({columns}) VALUES ({marks})", tuple(row.values()))
    txn.touched("quota_plans")
    return int(cursor.lastrowid)


def update_draft_plan(txn: WriteTransaction, plan_id: int, changes: dict[str, Any]) -> None:
    assignments = ", ".join(f"{c} = ?" for c in changes)
    txn.execute(f"UPDATE quota_plans SET {assignments} WHERE id = ?", (*changes.values(), plan_id))
    txn.touched("quota_plans")


def clear_draft_contents(txn: WriteTransaction, plan_id: int) -> None:
    txn.execute("DELETE FROM quota_cells WHERE plan_id = ?", (plan_id,))
    txn.execute("DELETE FROM quota_plan_classes WHERE plan_id = ?", (plan_id,))
    txn.touched("quota_cells", "quota_plan_classes")


def insert_plan_classes(txn: WriteTransaction, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = list(rows[0])
    txn.executemany(
        f"INSERT INTO quota_plan_classes ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
        [tuple(r[c] for c in columns) for r in rows],
    )
    txn.touched("quota_plan_classes")


CELL_COLUMNS = (
    "plan_id", "class_id", "luggage_type_id", "clutter_level", "scanner_model_id", "pose_id",
    "test_target", "train_target", "overridden",
)


def insert_cells(txn: WriteTransaction, cells: list[tuple]) -> None:
    txn.executemany(
        f"INSERT INTO quota_cells ({', '.join(CELL_COLUMNS)}) VALUES ({', '.join('?' for _ in CELL_COLUMNS)})",
        cells,
    )
    txn.touched("quota_cells")


def plan_classes_in_txn(txn: WriteTransaction, plan_id: int) -> list[dict[str, Any]]:
    return _dicts(txn.execute("SELECT * FROM quota_plan_classes WHERE plan_id = ? ORDER BY class_id", (plan_id,)))


def cells_in_txn(txn: WriteTransaction, plan_id: int) -> list[dict[str, Any]]:
    return _dicts(txn.execute(
        f"SELECT {', '.join(CELL_COLUMNS)} FROM quota_cells WHERE plan_id = ? ORDER BY id", (plan_id,)
    ))


def plan_classes(catalog: Catalog, plan_id: int) -> list[dict[str, Any]]:
    return [
        dict(r)
        for r in catalog.query(
            """SELECT pc.*, c.name AS class_name, f.name AS family_name,
                      (SELECT SUM(test_target) FROM quota_cells q WHERE q.plan_id = pc.plan_id AND q.class_id = pc.class_id) AS test_total,
                      (SELECT SUM(train_target) FROM quota_cells q WHERE q.plan_id = pc.plan_id AND q.class_id = pc.class_id) AS train_total
               FROM quota_plan_classes pc
               JOIN threat_classes c ON c.id = pc.class_id
               JOIN threat_families f ON f.id = c.family_id
               WHERE pc.plan_id = ? ORDER BY f.name, c.name""",
            (plan_id,),
        )
    ]


def publish(txn: WriteTransaction, plan_id: int, at: str, actor: str) -> None:
    txn.execute(
        "UPDATE quota_plans SET status = 'published', published_at = ?, published_by = ? WHERE id = ?",
        (at, actor, plan_id),
    )
    txn.touched("quota_plans")


STATUS_COLUMNS = (
    "cell_id", "class_id", "class_name", "luggage_type", "clutter_level", "scanner_model", "pose",
    "test_target", "test_images", "test_setups", "train_target", "train_images", "train_setups", "overridden",
)

# One row per cell: its targets (in setups) and what has been captured. Reads
# only the plan's cells and the trigger-kept tallies, never ``images`` itself,
# so its cost does not grow with the number of images.
_STATUS_SQL = """
SELECT c.id, c.class_id, IFNULL(tc.name, '(clean)'), lt.name, c.clutter_level, sm.name, IFNULL(p.name, '—'),
       c.test_target, IFNULL(te.images, 0), IFNULL(te.setups, 0),
       c.train_target, IFNULL(tr.images, 0), IFNULL(tr.setups, 0), c.overridden
FROM quota_cells c
JOIN luggage_types lt ON lt.id = c.luggage_type_id
JOIN scanner_models sm ON sm.id = c.scanner_model_id
LEFT JOIN threat_classes tc ON tc.id = c.class_id
LEFT JOIN poses p ON p.id = c.pose_id
LEFT JOIN cell_tally te ON te.split = 'test' AND te.class_key = c.class_key
     AND te.luggage_type_id = c.luggage_type_id AND te.clutter_level = c.clutter_level
     AND te.scanner_model_id = c.scanner_model_id AND te.pose_key = c.pose_key
LEFT JOIN cell_tally tr ON tr.split = 'train' AND tr.class_key = c.class_key
     AND tr.luggage_type_id = c.luggage_type_id AND tr.clutter_level = c.clutter_level
     AND tr.scanner_model_id = c.scanner_model_id AND tr.pose_key = c.pose_key
WHERE c.plan_id = ?
"""


def status_rows(catalog: Catalog, plan_id: int, class_id: int | None = None) -> list[tuple]:
    sql = _STATUS_SQL
    params: list[Any] = [plan_id]
    if class_id is not None:
        sql += " AND c.class_key = ?"
        params.append(class_id)
    return catalog.reader().execute(sql + " ORDER BY c.id", params).fetchall()
