"""Per-class ratio progress against the KPIs: the table that says which class
needs more data and which ones block the next model.

Verdicts, in the order they are checked:

* ``test set incomplete``: fewer test setups than the class's target;
* ``train incomplete``: fewer train setups than the current ratio step asks;
* ``awaiting evaluation``: data complete, no KPI result since;
* ``meets KPI``: the latest result's detection rate reaches the target and
  its false-alarm rate stays under the maximum;
* ``needs next step``: the latest result misses; the class goes to the next
  ratio step (k+1):1.

A class *blocks* the next model when its test or train data is incomplete.
"""

from __future__ import annotations

from pathlib import Path

from core.catalog import dashboard_store as sql
from core.catalog import ingest_store
from core.catalog import quota_store
from core.catalog.db import Catalog
from core.inputs import MAX_NAME, Date, Problems, Text, Whole, is_missing, read_csv, shown
from core.quota.sizing import wilson_interval
from core.quota.status import QuotaStatus

VERDICTS = ("test set incomplete", "train incomplete", "awaiting evaluation", "meets KPI", "needs next step")
BLOCKING = ("test set incomplete", "train incomplete")  # verdicts that block the next model
COLUMNS = ("class_name", "family", "test_done", "test_target", "test_fill", "train_done", "train_target", "ratio",
           "ratio_step", "detection_rate", "dr_low", "dr_high", "dr_target", "false_alarm_rate", "far_max", "run",
           "verdict", "blocks")


def class_progress(catalog: Catalog, status: QuotaStatus) -> list[dict]:
    """One row per class of the plan (clean bags excluded), by family and name."""
    plan_classes = {r["class_name"]: r for r in quota_store.plan_class_kpis(catalog, status.plan_id)}
    results = sql.latest_kpi_results(catalog)
    out = []
    for entry in status.by_class():
        kpi = plan_classes.get(entry["class_name"])
        if kpi is None:  # clean bags
            continue
        test_done, test_target = entry["test_done"], entry["test_target"]
        train_done, train_target = entry["train_done"], entry["train_target"]
        result = results.get(kpi["class_id"])
        row = {
            "class_name": entry["class_name"], "family": kpi["family_name"],
            "test_done": test_done, "test_target": test_target,
            "test_fill": test_done / test_target if test_target else 1.0,
            "train_done": train_done, "train_target": train_target,
            "ratio": train_done / test_done if test_done else 0.0, "ratio_step": kpi["ratio_step"],
            "dr_target": kpi["detection_rate"], "far_max": kpi["max_false_alarm_rate"],
            "detection_rate": None, "dr_low": None, "dr_high": None, "false_alarm_rate": None, "run": "",
        }
        if result is not None and result["positives"] > 0:
            row["detection_rate"] = result["detected"] / result["positives"]
            row["dr_low"], row["dr_high"] = wilson_interval(result["detected"], result["positives"], kpi["confidence"])
            row["false_alarm_rate"] = result["false_alarms"] / result["negatives"] if result["negatives"] else None
            row["run"] = f"{result['run_label']} ({result['evaluated_at'][:10]})"
        row["verdict"] = _verdict(row, result)
        row["blocks"] = row["verdict"] in BLOCKING
        out.append(row)
    return sorted(out, key=lambda r: (r["family"], r["class_name"]))


def _verdict(row: dict, result: dict | None) -> str:
    if row["test_done"] < row["test_target"]:
        return "test set incomplete"
    if row["train_done"] < row["train_target"]:
        return "train incomplete"
    if result is None or row["detection_rate"] is None:
        return "awaiting evaluation"
    far_ok = row["false_alarm_rate"] is None or row["false_alarm_rate"] <= row["far_max"]
    return "meets KPI" if row["detection_rate"] >= row["dr_target"] and far_ok else "needs next step"


# -- recording KPI results ------------------------------------------------------

KPI_CSV_COLUMNS = ("class", "run", "evaluated_at", "positives", "detected", "negatives", "false_alarms")
KPI_CSV_OPTIONAL = ("ratio_step",)
# Documented ranges of the CSV's fields (see core.inputs for the rules).
MAX_KPI_COUNT = 100_000_000
_KPI_RULES = {
    "class": Text(MAX_NAME),
    "run": Text(MAX_NAME, blank_ok=True),
    "evaluated_at": Date(),
    "positives": Whole(0, MAX_KPI_COUNT),
    "detected": Whole(0, MAX_KPI_COUNT),
    "negatives": Whole(0, MAX_KPI_COUNT),
    "false_alarms": Whole(0, MAX_KPI_COUNT),
    "ratio_step": Whole(1, 20),
}


def import_kpi_results(catalog: Catalog, path: str | Path, *, actor: str | None = None) -> int:
    """Record per-class results of an evaluation done outside XLab (CSV with
    columns class, run, evaluated_at, positives, detected, negatives,
    false_alarms[, ratio_step]); all or nothing, problems by line. Returns rows added.

    Ranges: class a known class; run up to 100 characters (blank: "external");
    evaluated_at an ISO-8601 date or date-time, years 2000-2100; the four counts
    0-100,000,000 with detected <= positives and false_alarms <= negatives;
    ratio_step 1-20 or blank. One row per class and run.
    """
    catalog.require("kpis")
    problems = Problems(str(path))
    records = read_csv(path, problems, KPI_CSV_COLUMNS, KPI_CSV_OPTIONAL)
    problems.raise_if_any()
    classes = ingest_store.class_ids(catalog)
    rows = []
    first: dict[tuple[str, str], int] = {}
    for record in records:
        line = next(iter(record.values())).line
        values, bad = {}, False
        for name, node in record.items():
            if name == "ratio_step" and is_missing(node):
                values[name] = None
                continue
            value, problem = _KPI_RULES[name].check(node)
            if problem:
                problems.add(line, f"{name} {problem}")
                bad = True
            values[name] = value
        if bad:
            continue
        if values["class"] not in classes:
            problems.add(line, f"unknown class '{shown(values['class'])}'")
            continue
        if values["detected"] > values["positives"] or values["false_alarms"] > values["negatives"]:
            problems.add(line, "need detected <= positives and false_alarms <= negatives")
            continue
        run = values["run"] or "external"
        key = (values["class"], run)
        if key in first:
            problems.add(line, f"class '{key[0]}' run '{shown(run)}' appears twice (first at line {first[key]})")
            continue
        first[key] = line
        rows.append((classes[values["class"]], run, values["evaluated_at"], values["positives"], values["detected"],
                     values["negatives"], values["false_alarms"], values.get("ratio_step"), "import"))
    problems.raise_if_any()
    with catalog.write(actor) as txn:
        sql.insert_kpi_results(txn, rows)
        txn.audit("import", "kpi_results", Path(path).name, None, {"rows": len(rows)})
    return len(rows)


def kpi_results(catalog: Catalog) -> list[dict]:
    return sql.kpi_results(catalog)
