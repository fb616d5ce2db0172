"""SQL behind the manager dashboards: lab settings, production counters,
quarantine rates, KPI results and the images of a quota cell."""

from __future__ import annotations

import json
from typing import Any

from core.catalog.db import Catalog, WriteTransaction, utc_now


def settings(catalog: Catalog) -> dict[str, Any]:
    return {r["key"]: json.loads(r["value_json"]) for r in catalog.query("SELECT key, value_json FROM lab_settings")}


def set_setting(txn: WriteTransaction, key: str, value: Any) -> Any:
    """Store one setting; returns the previous value (None if unset)."""
    row = txn.execute("SELECT value_json FROM lab_settings WHERE key = ?", (key,)).fetchone()
    txn.execute(
        "INSERT INTO lab_settings (key, value_json, changed_at, changed_by) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value_json = excluded.value_json, changed_at = excluded.changed_at,"
        " changed_by = excluded.changed_by", (key, json.dumps(value), utc_now(), txn.actor))
    return json.loads(row[0]) if row else None


def production_by(catalog: Catalog, first_day: str, last_day: str) -> list[tuple]:
    """(day, scanner, station, technician, images) between two ISO days (inclusive)."""
    return catalog.reader().execute(
        """SELECT pc.day, s.name, s.station, pc.technician, pc.images FROM production_counts pc
           JOIN scanners s ON s.id = pc.scanner_id WHERE pc.day BETWEEN ? AND ? ORDER BY pc.day""",
        (first_day, last_day)).fetchall()


def first_production_day(catalog: Catalog) -> str | None:
    """The first day any image was captured (ISO), None for a lab with no images yet."""
    row = catalog.reader().execute("SELECT MIN(day) FROM production_counts WHERE images > 0").fetchone()
    return row[0] if row else None


def class_split_images(catalog: Catalog, first_day: str, last_day: str) -> list[tuple]:
    """(day, class name or '(clean)', split, usable images) captured between two ISO days (inclusive)."""
    return catalog.reader().execute(
        """SELECT substr(i.captured_at, 1, 10), IFNULL(tc.name, '(clean)'), i.split, COUNT(*) FROM images i
           LEFT JOIN threat_items ti ON ti.id = i.item_id LEFT JOIN threat_classes tc ON tc.id = ti.class_id
           WHERE i.captured_at >= ? AND i.captured_at < ? AND i.usable = 1 AND i.split IS NOT NULL
           GROUP BY 1, 2, 3""", (first_day, f"{last_day}~")).fetchall()


def ingest_outcomes_by_day(catalog: Catalog, first_day: str, last_day: str) -> list[tuple]:
    """(day, outcome, files) from the ingest events between two ISO days (inclusive)."""
    return catalog.reader().execute(
        """SELECT substr(at, 1, 10) AS day, outcome, COUNT(*) FROM ingest_events
           WHERE substr(at, 1, 10) BETWEEN ? AND ? GROUP BY 1, 2""", (first_day, last_day)).fetchall()


def latest_kpi_results(catalog: Catalog) -> dict[int, dict[str, Any]]:
    """The newest evaluation result of each class, by class id."""
    rows = catalog.query(
        """SELECT k.* FROM kpi_results k
           WHERE k.id = (SELECT k2.id FROM kpi_results k2 WHERE k2.class_id = k.class_id
                         ORDER BY k2.evaluated_at DESC, k2.id DESC LIMIT 1)""")
    return {r["class_id"]: dict(r) for r in rows}


def kpi_results(catalog: Catalog) -> list[dict[str, Any]]:
    return [dict(r) for r in catalog.query(
        """SELECT k.id, c.name AS class_name, k.run_label, k.evaluated_at, k.positives, k.detected, k.negatives,
                  k.false_alarms, k.ratio_step, k.source, k.recorded_by
           FROM kpi_results k JOIN threat_classes c ON c.id = k.class_id ORDER BY k.evaluated_at, k.id""")]


def insert_kpi_results(txn: WriteTransaction, rows: list[tuple]) -> None:
    """``rows``: (class_id, run_label, evaluated_at, positives, detected, negatives, false_alarms, ratio_step, source)."""
    now = utc_now()
    txn.executemany(
        """INSERT INTO kpi_results (class_id, run_label, evaluated_at, positives, detected, negatives, false_alarms,
                                    ratio_step, source, recorded_at, recorded_by)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""", [(*r, now, txn.actor) for r in rows])


def cell_images(catalog: Catalog, split: str, where: dict[str, list[str]], limit: int) -> list[dict[str, Any]]:
    """Newest usable images of ``split`` whose class / luggage type / clutter / model / pose
    are among the given names (a key left out matches anything)."""
    columns = {"class": "IFNULL(tc.name, '(clean)')", "luggage_type": "lt.name", "clutter": "b.clutter_level",
               "scanner_model": "sm.name", "pose": "IFNULL(p.name, '—')"}
    clauses, params = ["i.split = ?", "i.usable = 1"], [split]
    for key, names in where.items():
        clauses.append(f"{columns[key]} IN ({', '.join('?' for _ in names)})")
        params.extend(names)
    return [dict(r) for r in catalog.query(
        f"""SELECT i.id, i.thumb_path, i.captured_at, i.original_name, s.name AS scanner,
                   IFNULL(ti.barcode, '') AS item, b.barcode AS bag
            FROM images i JOIN bags b ON b.id = i.bag_id JOIN luggage_types lt ON lt.id = b.luggage_type_id
            JOIN scanners s ON s.id = i.scanner_id JOIN scanner_models sm ON sm.id = s.model_id
            LEFT JOIN threat_items ti ON ti.id = i.item_id LEFT JOIN threat_classes tc ON tc.id = ti.class_id
            LEFT JOIN poses p ON p.id = i.pose_id
            WHERE {' AND '.join(clauses)} ORDER BY i.id DESC LIMIT ?""", (*params, limit))]
