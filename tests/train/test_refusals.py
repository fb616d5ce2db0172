"""What the run process refuses, and how: one 'error' event with a line a user can act on, exit
code 1, no traceback (a spec it cannot read, an unknown model, a bad parameter, a missing or bad
manifest, weights that are not a weights file)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from core.training.events import read_events
from tests.train.conftest import FAST, REPO, kinds, make_spec, run


def test_a_spec_that_cannot_be_read_is_one_error_line_on_stdout(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "core.training", str(tmp_path / "nope.json")], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    [line] = done.stdout.splitlines()
    event = json.loads(line)
    assert event["event"] == "error" and event["message"] == f"run spec {tmp_path / 'nope.json'} does not exist"


def _edit(spec_path, **changes):
    spec = json.loads(spec_path.read_text())
    for key, value in changes.items():
        if key == "params":
            spec["params"].update(value)
        else:
            spec[key] = value
    spec_path.write_text(json.dumps(spec))
    return spec_path


@pytest.mark.parametrize("changes, message", [
    ({"model": "yolo"}, "run spec: unknown model 'yolo' (known: retinanet_resnet50_fpn,"),
    ({"kind": "predict"}, "run spec: 'kind' must be train or eval, not 'predict'"),
    ({"params": {"epochs": 0}}, "training parameter 'epochs' must be from 1 to 10000, not 0"),
    ({"params": {"lr": "fast"}}, "training parameter 'lr' must be a number, not 'fast'"),
    ({"params": {"amp": "yes"}}, "training parameter 'amp' must be true or false, not 'yes'"),
    ({"params": {"epoch": 3}}, "unknown training parameter 'epoch' (known: amp, augment,"),
    ({"classes": []}, "run spec: 'classes' must be a list of distinct class names"),
    ({"manifests": {"train": "/no/such/train.jsonl"}}, "the train manifest /no/such/train.jsonl does not exist"),
    ({"kind": "eval", "manifests": {"test": "TEST"}}, "run spec: an evaluation run needs 'weights'"),
    ({"resume": "/no/such/last.pt"}, "checkpoint /no/such/last.pt does not exist"),
])
def test_a_bad_spec_ends_in_one_clear_error_event(sim, tmp_path, changes, message):
    if changes.get("manifests", {}).get("test") == "TEST":
        changes = {**changes, "manifests": {"test": str(sim.manifests["test"])}}
    out = tmp_path / "run"
    done = run(_edit(make_spec(out, sim.manifests, {**FAST, "epochs": 1}), **changes))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert kinds(done.events) == ["error"]
    assert done.events[0]["message"].startswith(message), done.events[0]["message"]
    assert json.loads(done.stdout) == done.events[0]


def test_a_bad_manifest_row_is_named_by_file_and_line(sim, tmp_path):
    lines = sim.manifests["train"].read_text().splitlines()
    row = json.loads(lines[2])
    row["boxes"] = [[10, 10, 40, 30, 3]]  # the run has two classes
    lines[2] = json.dumps(row)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    done = run(make_spec(tmp_path / "run", {"train": bad}, {**FAST, "epochs": 1}))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert [e["message"] for e in done.events] == [
        f"manifest {bad}, line 3: box 1's class index must be 1 to 2, not 3"]


def test_weights_that_are_not_a_weights_file_are_refused(sim, tmp_path):
    weights = tmp_path / "model.pt"
    weights.write_text("not a model")
    done = run(make_spec(tmp_path / "run", {"test": sim.manifests["test"]}, FAST, kind="eval", weights=weights))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert kinds(done.events) == ["error"]
    assert done.events[0]["message"].startswith(f"{weights} is not a PyTorch weights file this run can read (")
    assert read_events(tmp_path / "run") == done.events
