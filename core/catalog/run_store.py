"""SQL behind training and evaluation runs, their results and the loop (migration 0009).

``runs``
    One row per run: what it trains or evaluates (model, parameters, seed, the
    dataset versions, the weights it starts from and their sha256), the code
    version, where its folder is (``run_dir``, relative to the lab), its
    state, and what the run process reported (environment, device, the final
    model's sha256, metrics). A run is never deleted.
``run_events``
    What the run process streamed, in order (``seq``), append-only.
``run_results``
    Per class and split, the run's counts at its operating threshold (over
    distinct setups) and COCO figures, append-only.
``loop_steps``
    Per class, the ratio step a run's verdict proposes, and who accepted it
    into which new plan version.

Every write runs inside the caller's :class:`WriteTransaction`; reads take a
catalog or a transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from core.catalog.db import Catalog, WriteTransaction, connection_of, dict_rows, utc_now

ACTIVE = ("queued", "running", "cancelling")
FINISHED = ("done", "cancelled", "failed", "interrupted")
_RESULT_COLUMNS = ("threshold", "threshold_rule", "positives", "detected", "positive_images", "detected_images",
                   "negatives", "false_alarms", "pd", "pd_low", "pd_high", "far", "far_low", "far_high",
                   "ap", "ap50", "ap75", "recall")


def insert_run(txn: WriteTransaction, row: dict[str, Any]) -> int:
    columns = sorted(row)
    cursor = txn.execute(f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                         [row[c] for c in columns])
    return int(cursor.lastrowid)


def update_run(txn: WriteTransaction, run_id: int, values: dict[str, Any]) -> None:
    columns = sorted(values)
    txn.execute(f"UPDATE runs SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?",
                [*(values[c] for c in columns), run_id])


def run(src: Catalog | WriteTransaction, run_id: int) -> dict[str, Any] | None:
    rows = dict_rows(src, f"{_RUN_SELECT} WHERE r.id = ?", (run_id,))
    return rows[0] if rows else None


_RUN_SELECT = """SELECT r.*, tv.name AS train_name, tv.version AS train_number,
                        sv.name AS test_name, sv.version AS test_number
                 FROM runs r LEFT JOIN dataset_versions tv ON tv.id = r.train_version_id
                 LEFT JOIN dataset_versions sv ON sv.id = r.test_version_id"""


def runs(src: Catalog | WriteTransaction, states: Sequence[str] | None = None, limit: int = 500) -> list[dict[str, Any]]:
    """Runs, newest first (``states``: only those)."""
    if states:
        return dict_rows(src, f"{_RUN_SELECT} WHERE r.state IN ({', '.join('?' * len(states))}) "
                              "ORDER BY r.id DESC LIMIT ?", (*states, limit))
    return dict_rows(src, f"{_RUN_SELECT} ORDER BY r.id DESC LIMIT ?", (limit,))


def next_queued(txn: WriteTransaction) -> dict[str, Any] | None:
    rows = dict_rows(txn, f"{_RUN_SELECT} WHERE r.state = 'queued' ORDER BY r.id LIMIT 1")
    return rows[0] if rows else None


def last_event_seq(src: Catalog | WriteTransaction, run_id: int) -> int:
    row = connection_of(src).execute("SELECT MAX(seq) FROM run_events WHERE run_id = ?", (run_id,)).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def insert_events(txn: WriteTransaction, run_id: int, first_seq: int, events: Sequence[dict[str, Any]]) -> None:
    txn.executemany("INSERT INTO run_events (run_id, seq, at, event, data_json) VALUES (?, ?, ?, ?, ?)",
                    [(run_id, first_seq + n, float(e.get("t", 0.0)), str(e.get("event", "")),
                      json.dumps(e, sort_keys=True)) for n, e in enumerate(events)])


def events(src: Catalog | WriteTransaction, run_id: int, after_seq: int = 0,
           kinds: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The run's events after ``after_seq``, in order, each with its ``seq``."""
    sql = "SELECT seq, data_json FROM run_events WHERE run_id = ? AND seq > ?"
    params: list[Any] = [run_id, after_seq]
    if kinds:
        sql += f" AND event IN ({', '.join('?' * len(kinds))})"
        params += list(kinds)
    rows = connection_of(src).execute(sql + " ORDER BY seq", params).fetchall()
    return [{**json.loads(data), "seq": seq} for seq, data in rows]


def insert_results(txn: WriteTransaction, run_id: int, split: str, rows: Sequence[dict[str, Any]]) -> None:
    txn.executemany(f"""INSERT INTO run_results (run_id, split, class_id, {', '.join(_RESULT_COLUMNS)})
                        VALUES (?, ?, ?, {', '.join('?' * len(_RESULT_COLUMNS))})""",
                    [(run_id, split, r["class_id"], *(r.get(c) for c in _RESULT_COLUMNS)) for r in rows])


def results(src: Catalog | WriteTransaction, run_id: int, split: str | None = None) -> list[dict[str, Any]]:
    sql = """SELECT r.*, c.name AS class_name FROM run_results r JOIN threat_classes c ON c.id = r.class_id
             WHERE r.run_id = ?"""
    params: list[Any] = [run_id]
    if split:
        sql += " AND r.split = ?"
        params.append(split)
    return dict_rows(src, sql + " ORDER BY r.split, c.name", params)


def insert_kpi_results(txn: WriteTransaction, rows: Sequence[dict[str, Any]]) -> None:
    """KPI results a run measured on its test set (``source`` 'run')."""
    now = utc_now()
    txn.executemany("""INSERT INTO kpi_results (class_id, run_label, evaluated_at, positives, detected, negatives,
                                                false_alarms, ratio_step, source, recorded_at, recorded_by, run_id,
                                                test_version_id, ap50)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'run', ?, ?, ?, ?, ?)""",
                    [(r["class_id"], r["run_label"], r["evaluated_at"], r["positives"], r["detected"], r["negatives"],
                      r["false_alarms"], r["ratio_step"], now, txn.actor, r["run_id"], r["test_version_id"],
                      r["ap50"]) for r in rows])


def class_ids(src: Catalog | WriteTransaction, names: Sequence[str]) -> dict[str, int]:
    rows = connection_of(src).execute(
        f"SELECT name, id FROM threat_classes WHERE name IN ({', '.join('?' * len(names))})", list(names)).fetchall()
    return dict(rows)


def manifest_images(src: Catalog | WriteTransaction, image_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Per image: its store path (relative to the store), size, and capture facts (item, bag, pose,
    scanner model) that make its physical setup."""
    from core.catalog.db import id_chunks, placeholders

    out: dict[int, dict[str, Any]] = {}
    for chunk in id_chunks(list(image_ids)):
        for r in dict_rows(src, f"""SELECT i.id, i.store_path, i.width, i.height, i.item_id, i.bag_id, i.pose_id,
                                           s.model_id AS scanner_model_id
                                    FROM images i LEFT JOIN scanners s ON s.id = i.scanner_id
                                    WHERE i.id IN ({placeholders(len(chunk))})""", chunk):
            out[r["id"]] = r
    return out


# -- the loop ----------------------------------------------------------------------------------


def plan_class_rows(src: Catalog | WriteTransaction, plan_id: int) -> list[dict[str, Any]]:
    """A plan's per-class KPI rows (ratio step, targets)."""
    return dict_rows(src, "SELECT * FROM quota_plan_classes WHERE plan_id = ?", (plan_id,))


def setting(src: Catalog | WriteTransaction, key: str, default: Any) -> Any:
    """One lab setting's value (``default`` when unset), as the transaction sees it."""
    row = connection_of(src).execute("SELECT value_json FROM lab_settings WHERE key = ?", (key,)).fetchone()
    return json.loads(row[0]) if row else default


def insert_loop_steps(txn: WriteTransaction, rows: Sequence[dict[str, Any]]) -> None:
    now = utc_now()
    txn.executemany("""INSERT INTO loop_steps (run_id, plan_id, class_id, verdict, ratio_from, ratio_to, reason,
                                               state, proposed_at)
                       VALUES (?, ?, ?, ?, ?, ?, ?, 'proposed', ?)
                       ON CONFLICT (run_id, class_id) DO NOTHING""",
                    [(r["run_id"], r["plan_id"], r["class_id"], r["verdict"], r["ratio_from"], r["ratio_to"],
                      r["reason"], now) for r in rows])


def loop_steps(src: Catalog | WriteTransaction, run_id: int | None = None,
               states: Sequence[str] | None = None) -> list[dict[str, Any]]:
    sql = """SELECT l.*, c.name AS class_name, p.name AS plan_name, p.version AS plan_version,
                    n.version AS new_plan_version
             FROM loop_steps l JOIN threat_classes c ON c.id = l.class_id JOIN quota_plans p ON p.id = l.plan_id
             LEFT JOIN quota_plans n ON n.id = l.new_plan_id WHERE 1 = 1"""
    params: list[Any] = []
    if run_id is not None:
        sql += " AND l.run_id = ?"
        params.append(run_id)
    if states:
        sql += f" AND l.state IN ({', '.join('?' * len(states))})"
        params += list(states)
    return dict_rows(src, sql + " ORDER BY l.id", params)


def decide_loop_steps(txn: WriteTransaction, step_ids: Sequence[int], state: str, new_plan_id: int | None) -> None:
    txn.executemany("UPDATE loop_steps SET state = ?, decided_at = ?, decided_by = ?, new_plan_id = ? WHERE id = ?",
                    [(state, utc_now(), txn.actor, new_plan_id, i) for i in step_ids])


def supersede_open_steps(txn: WriteTransaction, plan_id: int, except_run: int) -> None:
    """Proposals of earlier runs on the same plan that nobody accepted: a newer run's verdicts replace them."""
    txn.execute("""UPDATE loop_steps SET state = 'superseded', decided_at = ?, decided_by = ?
                   WHERE plan_id = ? AND state = 'proposed' AND run_id != ?""",
                (utc_now(), txn.actor, plan_id, except_run))
