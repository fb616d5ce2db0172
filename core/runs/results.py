"""A finished run's results: COCO figures and the security metrics the KPIs are written in.

The run process writes its detections on the validation and test images; here
they are matched with the boxes the dataset versions were frozen with (the
run's manifests) and the physical setups the catalog knows:

* COCO AP/AP50/AP75/recall per class on the test images (:mod:`core.evaluation.coco`);
* per class, the operating threshold τ chosen on the **validation** split to meet
  the class's false-alarm target in the plan (or, with no validation clean bags,
  a recorded fixed rule), then Pd and false-alarm rate on the **test** split over
  distinct setups with their Wilson intervals (:mod:`core.evaluation.security`).

The test results become KPI results (the Classes dashboard's), tied to the run
and the test version, and the loop's proposals (:mod:`core.runs.loop`) follow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.catalog import dataset_store, quota_store
from core.catalog import run_store as store
from core.catalog.db import utc_now
from core.errors import EvaluationError, RunError
from core.evaluation import security
from core.lab import Lab
from core.runs.records import get, run_dir
from core.training.manifest import read_manifest

FALLBACK_THRESHOLD = 0.5


def _detections(lab: Lab, run: dict[str, Any], split: str) -> list[dict[str, Any]] | None:
    """The run's detections on ``split`` (from its 'detections' event), None when it wrote none."""
    found = [e for e in store.events(lab.catalog, run["id"], kinds=("detections",)) if e.get("split") == split]
    if not found:
        return None
    path = Path(found[-1]["path"])
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunError(f"run {run['id']}'s {split} detections {path} cannot be read ({exc})") from None
    if not isinstance(data, list):
        raise RunError(f"run {run['id']}'s {split} detections {path} are not a list of detections")
    return data


def _records(lab: Lab, rows: list[dict[str, Any]], detections: list[dict[str, Any]], split: str,
             classes: list[str]) -> list[security.ImageRecord]:
    """One ImageRecord per manifest image: its true boxes with their setups, the run's detections."""
    facts = store.manifest_images(lab.catalog, [r["image_id"] for r in rows])
    by_image: dict[int, list] = {}
    for d in detections:
        x, y, w, h = d["bbox"]
        name = classes[int(d["category_id"]) - 1]
        by_image.setdefault(int(d["image_id"]), []).append(
            security.Detection(name, (x, y, x + w, y + h), float(d["score"])))
    out = []
    for r in rows:
        f = facts[r["image_id"]]
        setup = (f["item_id"], f["bag_id"], f["pose_id"], f["scanner_model_id"])
        truths = tuple(security.Truth(classes[int(b[4]) - 1], tuple(b[:4]), setup) for b in r["boxes"])
        clean = (f["bag_id"], f["scanner_model_id"]) if r["negative"] and not truths else None
        out.append(security.ImageRecord(r["image_id"], split, truths, tuple(by_image.get(r["image_id"], ())), clean))
    return out


def _coco(rows: list[dict[str, Any]], detections: list[dict[str, Any]], classes: list[str]):
    from core.evaluation.coco import evaluate_records

    gt = {"images": [{"id": r["image_id"], "width": r["width"], "height": r["height"]} for r in rows],
          "categories": [{"id": n + 1, "name": name} for n, name in enumerate(classes)],
          "annotations": []}
    for r in rows:
        for x0, y0, x1, y1, c in r["boxes"]:
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": r["image_id"], "category_id": int(c),
                                      "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0),
                                      "iscrowd": 0})
    return evaluate_records(gt, detections)


def _metric(value: float | None) -> float | None:
    return None if value is None or value < 0 else float(value)


def evaluate_run(lab: Lab, run_id: int, actor: str | None = None) -> dict[str, Any]:
    """Evaluate a run whose process finished: write its per-class results (validation and test), its
    KPI results, and the loop's proposals. Returns the metrics recorded with the run. Any thread;
    one write transaction."""
    from core.runs.loop import propose_in

    run = get(lab, run_id)
    classes = json.loads(run["classes_json"])
    folder = run_dir(lab, run)
    test_rows = read_manifest(folder / "manifests" / "test.jsonl")
    test_dt = _detections(lab, run, "test")
    if test_dt is None:
        raise RunError(f"run {run_id} finished without detections on the test set; see {folder / 'process.log'}")
    val_path = folder / "manifests" / "validation.jsonl"
    val_rows = read_manifest(val_path) if val_path.is_file() else []
    val_dt = _detections(lab, run, "validation") or []
    test_version = dataset_store.version_by_id(lab.catalog, run["test_version_id"])
    kpis = {r["class_name"]: r for r in quota_store.plan_class_kpis(lab.catalog, test_version["plan_id"])}
    coco = _coco(test_rows, test_dt, classes)
    per_class_coco = coco.per_class()
    test_records = _records(lab, test_rows, test_dt, "test", classes)
    val_records = _records(lab, val_rows, val_dt, "validation", classes)
    targets = {name: kpis[name]["max_false_alarm_rate"] for name in classes if name in kpis}
    try:
        points = security.choose_thresholds(val_records, targets)
    except EvaluationError as exc:
        points = security.fixed_thresholds(classes, FALLBACK_THRESHOLD,
                                           f"no threshold could be chosen on the validation split ({exc})")
    report = security.measure(test_records, points)
    val_report = security.measure(val_records, points) if val_records else None
    ids = store.class_ids(lab.catalog, classes)
    test_rows_out, val_rows_out, kpi_rows = [], [], []
    evaluated_at = utc_now()
    for name in classes:
        c = report.classes[name]
        cc = per_class_coco.get(name, {})
        row = _result_row(ids[name], points[name], c, cc)
        test_rows_out.append(row)
        if val_report is not None:
            val_rows_out.append(_result_row(ids[name], points[name], val_report.classes[name], {}))
        if c.detection.setups and name in kpis:
            kpi_rows.append({
                "class_id": ids[name], "run_label": f"run {run_id}", "evaluated_at": evaluated_at,
                "positives": c.detection.setups, "detected": int(round(c.detection.successes)),
                "negatives": c.false_alarm.setups, "false_alarms": int(round(c.false_alarm.successes)),
                "ratio_step": kpis[name]["ratio_step"], "run_id": run_id, "test_version_id": run["test_version_id"],
                "ap50": _metric(cc.get("AP50")),
            })
    overall = coco.overall()
    metrics = {
        "coco": {k: _metric(overall.get(k)) for k in ("AP", "AP50", "AP75", "AR100")},
        "false_alarm_rate": report.overall_false_alarm.rate, "test_images": len(test_rows),
        "validation_images": len(val_rows), "thresholds": {n: p.threshold for n, p in points.items()},
        "threshold_rules": {n: p.rule for n, p in points.items()},
    }
    with lab.catalog.write(actor) as txn:
        store.insert_results(txn, run_id, "test", test_rows_out)
        if val_rows_out:
            store.insert_results(txn, run_id, "validation", val_rows_out)
        store.insert_kpi_results(txn, kpi_rows)
        proposals = propose_in(txn, run_id, test_version["plan_id"])
        txn.audit("evaluate", "run", run_id, None, {"AP50": metrics["coco"]["AP50"], "classes": len(test_rows_out),
                                                    "kpi_results": len(kpi_rows)})
        txn.summary.append(f"run {run_id} evaluated")
    metrics["proposals"] = proposals
    return metrics


def _result_row(class_id: int, point: security.OperatingPoint, c: security.ClassSecurity,
                coco: dict[str, Any]) -> dict[str, Any]:
    d, f = c.detection, c.false_alarm
    return {"class_id": class_id, "threshold": point.threshold, "threshold_rule": point.rule,
            "positives": d.setups, "detected": d.successes, "positive_images": d.images,
            "detected_images": d.image_hits, "negatives": f.setups, "false_alarms": f.successes,
            "pd": d.rate, "pd_low": d.low, "pd_high": d.high, "far": f.rate, "far_low": f.low, "far_high": f.high,
            "ap": _metric(coco.get("AP")), "ap50": _metric(coco.get("AP50")), "ap75": _metric(coco.get("AP75")),
            "recall": _metric(coco.get("AR100"))}


def worst_images(lab: Lab, run_id: int, class_name: str, limit: int = 20) -> list[dict[str, Any]]:
    """The test images of ``class_name`` the run did worst on: true boxes missed at its threshold
    (lowest best-overlapping score first), then clean images with the highest false alarm of it."""
    run = get(lab, run_id)
    classes = json.loads(run["classes_json"])
    if class_name not in classes:
        raise RunError(f"run {run_id} has no class '{class_name}'")
    folder = run_dir(lab, run)
    rows = read_manifest(folder / "manifests" / "test.jsonl")
    dets = _detections(lab, run, "test") or []
    tau = json.loads(run["metrics_json"] or "{}").get("thresholds", {}).get(class_name, FALLBACK_THRESHOLD)
    index = classes.index(class_name) + 1
    by_image: dict[int, list] = {}
    for d in dets:
        if int(d["category_id"]) == index:
            x, y, w, h = d["bbox"]
            by_image.setdefault(int(d["image_id"]), []).append(((x, y, x + w, y + h), float(d["score"])))
    out = []
    for r in rows:
        mine = [b for b in r["boxes"] if int(b[4]) == index]
        found = by_image.get(r["image_id"], [])
        if mine:
            best = min(max([s for box, s in found if security.iou(tuple(b[:4]), box) >= security.DETECTION_IOU],
                           default=0.0) for b in mine)
            if best < tau:
                out.append({"image_id": r["image_id"], "kind": "missed", "score": best, "threshold": tau})
        elif r["negative"]:
            top = max((s for _box, s in found), default=0.0)
            if top >= tau:
                out.append({"image_id": r["image_id"], "kind": "false alarm", "score": top, "threshold": tau})
    missed = sorted((o for o in out if o["kind"] == "missed"), key=lambda o: o["score"])
    alarms = sorted((o for o in out if o["kind"] == "false alarm"), key=lambda o: -o["score"])
    return (missed + alarms)[:limit]


def confusion(lab: Lab, run_id: int) -> dict[str, Any]:
    """Per true class, what the run's alarms at each class's threshold said on its test images:
    counts by predicted class (IoU ≥ 0.5 with the true box), 'missed' when none; per class, the clean
    images it alarmed on ('false alarm')."""
    run = get(lab, run_id)
    classes = json.loads(run["classes_json"])
    thresholds = json.loads(run["metrics_json"] or "{}").get("thresholds", {})
    folder = run_dir(lab, run)
    rows = read_manifest(folder / "manifests" / "test.jsonl")
    by_image: dict[int, list] = {}
    for d in _detections(lab, run, "test") or []:
        name = classes[int(d["category_id"]) - 1]
        if float(d["score"]) >= thresholds.get(name, FALLBACK_THRESHOLD):
            x, y, w, h = d["bbox"]
            by_image.setdefault(int(d["image_id"]), []).append((name, (x, y, x + w, y + h)))
    matrix: dict[str, dict[str, int]] = {name: {} for name in classes}
    clean_alarms: dict[str, int] = {}
    for r in rows:
        found = by_image.get(r["image_id"], [])
        for b in r["boxes"]:
            true = classes[int(b[4]) - 1]
            said = {name for name, box in found if security.iou(tuple(b[:4]), box) >= security.DETECTION_IOU}
            for name in said or {"missed"}:
                matrix[true][name] = matrix[true].get(name, 0) + 1
        if r["negative"]:
            for name in {name for name, _ in found}:
                clean_alarms[name] = clean_alarms.get(name, 0) + 1
    return {"classes": classes, "matrix": matrix, "false_alarms": clean_alarms}
