"""The training process end to end, as the parent runs it: a small detector trained from scratch on
simulated scans in a real subprocess reaches AP50 >= 0.5 on held-out scans (XLab's COCO evaluation),
and its events, checkpoints, final weights and detections are what the contract says."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from core.evaluation.coco import evaluate_records
from tests.train.conftest import FAST, kinds, make_spec, run
from tests.train.simdata import CLASSES

EPOCHS = 8


def ground_truth(rows: list[dict]) -> dict:
    annotations = []
    for r in rows:
        for x0, y0, x1, y1, c in r["boxes"]:
            annotations.append({"id": len(annotations) + 1, "image_id": r["image_id"], "category_id": c,
                                "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0), "iscrowd": 0})
    return {"images": [{"id": r["image_id"], "width": r["width"], "height": r["height"]} for r in rows],
            "categories": [{"id": n + 1, "name": name} for n, name in enumerate(CLASSES)],
            "annotations": annotations}


@pytest.fixture(scope="module")
def trained(sim, tmp_path_factory):
    """One training run (8 epochs on 160 scans, validation AP at epochs 4 and 8, a loader worker)."""
    out = tmp_path_factory.mktemp("trained") / "run"
    spec = make_spec(out, sim.manifests, {**FAST, "epochs": EPOCHS, "validate_every": 4, "workers": 1})
    return out, run(spec)


def test_a_small_detector_learns_from_scratch_and_reports_what_it_does(trained, sim):
    out, done = trained
    assert done.returncode == 0, done.stderr[-2000:]
    # Budget: 60 s on 2 shared cores, process start included (about 35 s alone); the bound only
    # catches a run gone many times slower.
    assert done.seconds < 120
    events = done.events
    assert [json.loads(line) for line in done.stdout.splitlines()] == events  # stdout echoes the file
    assert all(isinstance(e["t"], float) for e in events)
    assert kinds(events)[0] == "start" and kinds(events)[-1] == "done"
    assert kinds(events).count("done") == 1 and not {"error", "cancelled", "warning"} & set(kinds(events))

    start = events[0]
    assert start["device"] == "cpu" and start["amp"] is False and start["torch"] and start["torchvision"]
    assert start["images"] == {"train": 160, "validation": 20, "test": 40}
    assert start["params"]["seed"] == 1 and start["params"]["epochs"] == EPOCHS
    assert start["params"]["optimizer"] == "adamw"  # the defaults are filled in
    assert "CPU" in start["warning"] and "min" in start["warning"]

    steps = [e for e in events if e["event"] == "step"]
    assert steps and all(e["steps_per_epoch"] == 20 for e in steps)
    assert [e["step"] for e in steps] == sorted({e["step"] for e in steps}) and steps[-1]["step"] <= 20 * EPOCHS
    for e in steps:
        assert e["loss"] > 0 and set(e["losses"]) == {"classification", "bbox_regression"} and e["lr"] > 0
        assert e["images_per_s"] > 0 and e["eta_s"] >= 0 and e["gpu_mem_mb"] is None and e["gpu_util"] is None
    # At most about two a second: within an epoch, step events are half a second apart or more.
    for a, b in zip(steps, steps[1:]):
        if a["epoch"] == b["epoch"]:
            assert b["t"] - a["t"] >= 0.45

    epochs = [e for e in events if e["event"] == "epoch"]
    assert [e["epoch"] for e in epochs] == list(range(1, EPOCHS + 1))
    assert epochs[-1]["loss"] < epochs[0]["loss"]
    assert all(e["seconds"] > 0 and e["images_per_s"] > 0 for e in epochs)
    assert [e["epoch"] for e in epochs if e["val"] is not None] == [4, 8]
    assert set(epochs[-1]["val"]["per_class"]) == set(CLASSES)

    checkpoints = [e for e in events if e["event"] == "checkpoint"]
    assert [c["epoch"] for c in checkpoints] == list(range(1, EPOCHS + 1))
    assert checkpoints[-1]["step"] == 20 * EPOCHS and Path(checkpoints[-1]["path"]) == out / "checkpoints" / "last.pt"
    assert Path(checkpoints[-1]["path"]).is_file()

    weights = next(e for e in events if e["event"] == "weights")
    assert weights["path"] == str(out / "model.pt")
    assert weights["sha256"] == hashlib.sha256((out / "model.pt").read_bytes()).hexdigest()

    written = {e["split"]: e for e in events if e["event"] == "detections"}
    assert set(written) == {"validation", "test"}
    assert written["test"]["images"] == 40 and written["validation"]["images"] == 20

    # The held-out test scans (256 px originals, seen at 128): COCO AP50 by XLab's evaluator.
    detections = json.loads(Path(written["test"]["path"]).read_text())
    ids = {r["image_id"] for r in sim.rows["test"]}
    assert {d["image_id"] for d in detections} <= ids
    assert all(d["category_id"] in (1, 2) and d["score"] >= 0.01 for d in detections)
    per_image = {}
    for d in detections:
        per_image[d["image_id"]] = per_image.get(d["image_id"], 0) + 1
        x, y, w, h = d["bbox"]
        assert w > 0 and h > 0 and -1 <= x and x + w <= 257 and -1 <= y and y + h <= 257
    assert max(per_image.values()) <= 100
    result = evaluate_records(ground_truth(sim.rows["test"]), detections).overall()
    assert result["AP50"] >= 0.5, result

    # The last epoch's validation figures are those of its final validation detections.
    val_detections = json.loads(Path(written["validation"]["path"]).read_text())
    val = evaluate_records(ground_truth(sim.rows["validation"]), val_detections).overall()
    assert epochs[-1]["val"]["AP50"] == pytest.approx(val["AP50"], abs=1e-5)


def test_an_evaluation_run_of_the_final_model_finds_the_same_detections(trained, sim, tmp_path):
    out, done = trained
    assert done.returncode == 0
    spec = make_spec(tmp_path / "eval", {"test": sim.manifests["test"]}, {**FAST, "batch_size": 16}, kind="eval",
                     weights=out / "model.pt")
    ev = run(spec)
    assert ev.returncode == 0, ev.stderr[-2000:]
    assert kinds(ev.events) == ["start", "detections", "done"]
    start = ev.events[0]
    assert start["kind"] == "eval" and start["init_weights"]["sha256"] == hashlib.sha256(
        (out / "model.pt").read_bytes()).hexdigest()
    assert start["init_weights"]["tensors_left_out"] == 0 and "warning" not in start
    again = json.loads(Path(ev.events[1]["path"]).read_text())
    first = json.loads((out / "detections-test.json").read_text())
    assert len(again) == len(first)
    for a, b in zip(sorted(again, key=lambda d: (d["image_id"], -d["score"])),
                    sorted(first, key=lambda d: (d["image_id"], -d["score"]))):
        assert a["image_id"] == b["image_id"] and a["category_id"] == b["category_id"]
        assert a["score"] == pytest.approx(b["score"], abs=1e-4)
        assert a["bbox"] == pytest.approx(b["bbox"], abs=0.05)
