"""The loop: a run's per-class verdicts become the next ratio step, train targets and captures.

Per class of the test set's quota plan, from the run's test results at the
operating threshold:

* meets its KPI (Pd at or above the target, false-alarm rate at or below the
  maximum): keep its ratio step — no more train data for it;
* misses: the next ratio step (k+1):1, up to the lab's cap (setting
  ``ratio_cap``, default :data:`DEFAULT_CAP`); at the cap the class needs
  something else than more data (the reason says so) and stays.

The proposals are recorded with the run (``loop_steps``). Accepting them
(:func:`accept`) drafts and publishes the plan's next version with the new
ratio steps in one transaction: its train targets (test target × k) are
what quota status, the Classes dashboard and ``xlab plan`` use from then
on, so the next capture plan asks train data only of the classes that need
it. Who accepted, and when, is recorded on each step and in the audit log.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from core.catalog import dashboard_store, quota_store
from core.catalog import run_store as store
from core.catalog.db import WriteTransaction
from core.errors import RunError
from core.lab import Lab
from core.quota.spec import MAX_RATIO_STEP, PlanSpec

DEFAULT_CAP = 5
CAP_SETTING = "ratio_cap"


def ratio_cap(src: Lab | WriteTransaction) -> int:
    """The highest ratio step the loop proposes (lab setting ``ratio_cap``)."""
    value = store.setting(src.catalog if isinstance(src, Lab) else src, CAP_SETTING, DEFAULT_CAP)
    return max(1, min(MAX_RATIO_STEP, int(value)))


def set_ratio_cap(lab: Lab, cap: int, actor: str | None = None) -> int:
    """Change the ratio cap (audited). Returns the previous one."""
    lab.catalog.require("settings")
    if not 1 <= cap <= MAX_RATIO_STEP:
        raise RunError(f"the ratio cap must be a whole number from 1 to {MAX_RATIO_STEP}, got {cap}")
    with lab.catalog.write(actor) as txn:
        before = dashboard_store.set_setting(txn, CAP_SETTING, cap)
        txn.audit("set", "lab_setting", CAP_SETTING, before, cap)
    return DEFAULT_CAP if before is None else int(before)


def propose_in(txn: WriteTransaction, run_id: int, plan_id: int) -> list[dict[str, Any]]:
    """Write the run's proposals for the plan's classes (inside the caller's transaction) and return them.
    Earlier runs' proposals on the same plan that nobody accepted are superseded."""
    kpis = {r["class_id"]: r for r in store.plan_class_rows(txn, plan_id)}
    cap = ratio_cap(txn)
    rows = []
    for r in store.results(txn, run_id, "test"):
        kpi = kpis.get(r["class_id"])
        if kpi is None:
            continue
        k = int(kpi["ratio_step"])
        verdict, to, reason = _verdict(r, kpi, k, cap)
        rows.append({"run_id": run_id, "plan_id": plan_id, "class_id": r["class_id"], "class_name": r["class_name"],
                     "verdict": verdict, "ratio_from": k, "ratio_to": to, "reason": reason})
    store.supersede_open_steps(txn, plan_id, run_id)
    store.insert_loop_steps(txn, rows)
    return rows


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _verdict(r: dict[str, Any], kpi: dict[str, Any], k: int, cap: int) -> tuple[str, int, str]:
    if r["pd"] is None:
        return "not measured", k, "no test positives of this class in the test set: nothing to decide on"
    pd_ok = r["pd"] >= kpi["detection_rate"]
    far_ok = r["far"] is None or r["far"] <= kpi["max_false_alarm_rate"]
    measured = (f"Pd {_pct(r['pd'])} [{_pct(r['pd_low'])}, {_pct(r['pd_high'])}] over {r['positives']} setups "
                f"(target {_pct(kpi['detection_rate'])}), false alarms {_pct(r['far'])} "
                f"(max {_pct(kpi['max_false_alarm_rate'])})")
    if pd_ok and far_ok:
        return "meets KPI", k, f"{measured}: meets its KPI; stays at {k}:1, no more train data"
    if k >= cap:
        return "misses KPI at cap", k, (f"{measured}: misses its KPI at the ratio cap {cap}:1; more of the same data "
                                        "is not expected to help (look at its worst images, labels, the model)")
    return "misses KPI", k + 1, f"{measured}: misses its KPI; next ratio step {k + 1}:1"


def proposals(lab: Lab, run_id: int | None = None, open_only: bool = False) -> list[dict[str, Any]]:
    """The loop's steps (of one run), oldest first."""
    return store.loop_steps(lab.catalog, run_id, ("proposed",) if open_only else None)


def accept(lab: Lab, run_id: int, classes: list[str] | None = None, actor: str | None = None) -> dict[str, Any]:
    """Accept a run's open proposals (all, or those of ``classes``): draft and publish the next version
    of the test set's plan with the new ratio steps. Returns the new plan and the steps accepted.
    One write transaction."""
    lab.catalog.require("quotas")
    from core.quota.plans import draft_plan_in, publish_in

    with lab.catalog.write(actor) as txn:
        steps = store.loop_steps(txn, run_id, ("proposed",))
        if classes:
            unknown = sorted(set(classes) - {s["class_name"] for s in steps})
            if unknown:
                raise RunError(f"run {run_id} has no open proposal for {', '.join(unknown)}")
            steps = [s for s in steps if s["class_name"] in classes]
        if not steps:
            raise RunError(f"run {run_id} has no open proposals to accept ('xlab run show {run_id}' lists its steps)")
        plan = quota_store.plan_by_id(lab.catalog, steps[0]["plan_id"])
        latest = quota_store.latest_in_txn(txn, plan["name"])
        if latest["id"] != plan["id"] and latest["status"] == "published":
            raise RunError(f"the proposals are for {plan['name']} v{plan['version']}, but v{latest['version']} is "
                           "published since; evaluate a run on a test set of the current plan")
        spec = PlanSpec.from_json(plan["spec_json"])
        changes = {s["class_name"]: s["ratio_to"] for s in steps if s["ratio_to"] != s["ratio_from"]}
        new_classes = {name: dict(values) for name, values in spec.classes.items()}
        for name, k in changes.items():
            new_classes[name] = {**new_classes.get(name, {}), "ratio_step": k}
        note = f"ratio steps from run {run_id}: " + (", ".join(f"{n} {k}:1" for n, k in sorted(changes.items()))
                                                      or "no change")
        new_spec = dataclasses.replace(spec, classes=new_classes, note=note[:2000])
        ref = draft_plan_in(txn, new_spec)
        publish_in(txn, plan["name"])
        store.decide_loop_steps(txn, [s["id"] for s in steps], "accepted", ref.id)
        txn.audit("accept_ratio_steps", "run", run_id, {s["class_name"]: s["ratio_from"] for s in steps},
                  {"plan": f"{plan['name']} v{ref.version}",
                   **{s["class_name"]: s["ratio_to"] for s in steps}})
        txn.summary.append(f"ratio steps of run {run_id} accepted: {plan['name']} v{ref.version}")
    return {"plan": plan["name"], "version": ref.version, "plan_id": ref.id, "changes": changes,
            "accepted": [s["class_name"] for s in steps]}
