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
    return int(cursor.lastrowid)


def update_draft_plan(txn: WriteTransaction, plan_id: int, changes: dict[str, Any]) -> None:
    assignments = ", ".join(f"{c} = ?" for c in changes)
    txn.execute(f"UPDATE quota_plans SET {assignments} WHERE id = ?", (*changes.values(), plan_id))


def clear_draft_contents(txn: WriteTransaction, plan_id: int) -> None:
    txn.execute("DELETE FROM quota_cells WHERE plan_id = ?", (plan_id,))
    txn.execute("DELETE FROM quota_plan_classes WHERE plan_id = ?", (plan_id,))


def insert_plan_classes(txn: WriteTransaction, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = list(rows[0])
    txn.executemany(
        f"INSERT INTO quota_plan_classes ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
        [tuple(r[c] for c in columns) for r in rows],
    )


CELL_COLUMNS = (
    "plan_id", "class_id", "luggage_type_id", "clutter_level", "scanner_model_id", "pose_id",
    "test_target", "train_target", "overridden",
)


def insert_cells(txn: WriteTransaction, cells: list[tuple]) -> None:
    txn.executemany(
        f"INSERT INTO quota_cells ({', '.join(CELL_COLUMNS)}) VALUES ({', '.join('?' for _ in CELL_COLUMNS)})",
        cells,
    )


def cells_in_txn(txn: WriteTransaction, plan_id: int) -> list[dict[str, Any]]:
    return _dicts(txn.execute(
        f"SELECT {', '.join(CELL_COLUMNS)} FROM quota_cells WHERE plan_id = ? ORDER BY id", (plan_id,)
    ))


def plan_class_kpis(catalog: Catalog, plan_id: int) -> list[dict[str, Any]]:
    """Per-class KPI rows of a plan with class and family names (no cell totals: cheap)."""
    return [dict(r) for r in catalog.query(
        """SELECT pc.*, c.name AS class_name, f.name AS family_name FROM quota_plan_classes pc
           JOIN threat_classes c ON c.id = pc.class_id JOIN threat_families f ON f.id = c.family_id
           WHERE pc.plan_id = ?""", (plan_id,))]


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


STATUS_COLUMNS = (
    "cell_id", "class_id", "class_name", "luggage_type", "clutter_level", "scanner_model", "pose",
    "test_target", "test_images", "test_setups", "train_target", "train_images", "train_setups", "overridden",
)

# The fixed part of a plan's cells: names and targets (a published plan never
# changes, so callers may cache this), and each cell's tally key.
_CELLS_SQL = """
SELECT c.id, c.class_id, IFNULL(tc.name, '(clean)'), lt.name, c.clutter_level, sm.name, IFNULL(p.name, '—'),
       c.test_target, c.train_target, c.overridden,
       c.class_key, c.luggage_type_id, c.clutter_level, c.scanner_model_id, c.pose_key
FROM quota_cells c
JOIN luggage_types lt ON lt.id = c.luggage_type_id
JOIN scanner_models sm ON sm.id = c.scanner_model_id
LEFT JOIN threat_classes tc ON tc.id = c.class_id
LEFT JOIN poses p ON p.id = c.pose_id
WHERE c.plan_id = ?
ORDER BY c.id
"""


def plan_cells(catalog: Catalog, plan_id: int) -> list[tuple]:
    return catalog.reader().execute(_CELLS_SQL, (plan_id,)).fetchall()


def tallies_since(catalog: Catalog, seq: int) -> list[tuple]:
    """Tally rows changed after clock value ``seq`` (0: all), as
    (seq, split, class_key, luggage_type_id, clutter_level, scanner_model_id, pose_key, images, setups)."""
    return catalog.reader().execute(
        "SELECT seq, split, class_key, luggage_type_id, clutter_level, scanner_model_id, pose_key, images, setups "
        "FROM cell_tally WHERE seq > ?", (seq,)
    ).fetchall()


def tally_clock(catalog: Catalog) -> tuple[int, int]:
    """(current clock, clock of the last full rebuild)."""
    return tuple(catalog.reader().execute("SELECT seq, reset_seq FROM tally_clock").fetchone())


def tally_snapshot(catalog: Catalog, seq: int) -> tuple[int, int, list[tuple]]:
    """(clock, clock of the last rebuild, rows of :func:`tallies_since` ``seq``),
    read in one read-only transaction so that the clock and the rows agree."""
    conn = catalog.reader()
    conn.execute("BEGIN DEFERRED")  # a read transaction: takes no write lock
    try:
        clock, reset = tally_clock(catalog)
        return clock, reset, tallies_since(catalog, seq)
    finally:
        conn.execute("COMMIT")


def inventory_signature(catalog: Catalog) -> tuple:
    """Changes whenever a name that status rows show may have changed."""
    return tuple(catalog.reader().execute(
        "SELECT COUNT(*), MAX(id) FROM audit_log WHERE entity IN "
        "('threat_classes', 'luggage_types', 'scanner_models', 'poses', 'quota_plan')"
    ).fetchone())
