"""Training and evaluation runs end to end on the demo lab's frozen starter versions: the queue starts
the real run process (torch on the CPU), records its events, evaluates its detections into per-class
results and KPI results, proposes the next ratio steps, and accepting them publishes the next plan
version whose train targets follow. Cancel, resume, interruption and the queue's lock are real too."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.catalog import run_store
from core.errors import RunError, RunnerBusyError
from core.ingest.lock import try_hold
from core.lab import Lab
from core.runs import loop, queue, records, results
from core.runs.records import RunRequest

FAST = {"epochs": 1, "image_size": 128, "batch_size": 4, "seed": 3, "workers": 0, "threads": 1}


@pytest.fixture(scope="module")
def starter_template(tmp_path_factory) -> Path:
    from core.demo import create_demo_lab

    root = tmp_path_factory.mktemp("runs") / "demo"
    create_demo_lab(root, starter_datasets=True, plan_sessions=False).close()
    return root


@pytest.fixture
def lab(starter_template, tmp_path):
    shutil.copytree(starter_template, tmp_path / "lab")
    lab = Lab.open(tmp_path / "lab")
    yield lab
    lab.close()


def _work(lab, only=None, cancelled=lambda: False):
    return list(queue.work(lab, "tester", only=only, cancelled=cancelled))


def test_a_training_run_records_its_events_results_kpis_and_the_next_ratio_steps(lab):
    run = records.create_run(lab, RunRequest("train", "retinanet_tiny", train="demo-train@1", params=FAST), "tester")
    assert run["state"] == "queued" and run["test_name"] == "demo-test" and run["seed"] == 3
    folder = records.run_dir(lab, run)
    manifests = {s: [json.loads(x) for x in (folder / "manifests" / f"{s}.jsonl").read_text().splitlines()]
                 for s in ("train", "validation", "test")}
    assert manifests["train"] and manifests["test"]
    assert all(Path(r["path"]).is_file() for rows in manifests.values() for r in rows)

    progress = _work(lab, only=run["id"])
    assert progress[-1].state == "done", [p.message for p in progress if p.message]
    record = records.show(lab, run["id"])
    assert record["state"] == "done" and record["env"]["torch"] and record["device"]
    kinds = [e["event"] for e in run_store.events(lab.catalog, run["id"])]
    for kind in ("start", "epoch", "checkpoint", "weights", "detections", "done"):
        assert kind in kinds, kinds
    assert record["model_sha256"] == hashlib.sha256((folder / "model.pt").read_bytes()).hexdigest()

    classes = record["classes"]
    test_rows = [r for r in record["results"] if r["split"] == "test"]
    assert sorted(r["class_name"] for r in test_rows) == sorted(classes)
    measured = [r for r in test_rows if r["positives"]]
    assert measured and all(0 <= r["pd"] <= 1 and r["pd_low"] <= r["pd"] <= r["pd_high"] for r in measured)
    kpi = lab.catalog.query("SELECT * FROM kpi_results WHERE run_id = ?", (run["id"],))
    assert len(kpi) == len(measured) and {k["source"] for k in kpi} == {"run"}
    assert {k["test_version_id"] for k in kpi} == {run["test_version_id"]}

    steps = {s["class_name"]: s for s in loop.proposals(lab, run["id"])}
    assert set(steps) == set(classes)
    for s in steps.values():
        assert s["state"] == "proposed"
        if s["verdict"] == "misses KPI":
            assert s["ratio_to"] == s["ratio_from"] + 1 and "next ratio step" in s["reason"]
        elif s["verdict"] == "meets KPI":
            assert s["ratio_to"] == s["ratio_from"]

    # Accepting publishes the plan's next version; its train targets follow the new steps.
    plan = lab.catalog.query_one("SELECT * FROM quota_plans WHERE id = (SELECT plan_id FROM dataset_versions "
                                 "WHERE id = ?)", (run["test_version_id"],))
    out = loop.accept(lab, run["id"], actor="manager-ann")
    assert out["version"] == plan["version"] + 1
    new_plan = lab.catalog.query_one("SELECT * FROM quota_plans WHERE id = ?", (out["plan_id"],))
    assert new_plan["status"] == "published"
    new_steps = {r["class_id"]: r["ratio_step"] for r in lab.catalog.query(
        "SELECT class_id, ratio_step FROM quota_plan_classes WHERE plan_id = ?", (out["plan_id"],))}
    for s in steps.values():
        assert new_steps[s["class_id"]] == s["ratio_to"]
    for cell in lab.catalog.query("SELECT class_id, test_target, train_target FROM quota_cells "
                                  "WHERE plan_id = ? AND class_id IS NOT NULL", (out["plan_id"],)):
        assert cell["train_target"] == cell["test_target"] * new_steps[cell["class_id"]]
    decided = loop.proposals(lab, run["id"])
    assert {s["state"] for s in decided} == {"accepted"} and {s["decided_by"] for s in decided} == {"manager-ann"}
    assert lab.catalog.query_one("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'accept_ratio_steps' "
                                 "AND actor = 'manager-ann'")["n"] == 1
    with pytest.raises(RunError, match="no open proposals"):
        loop.accept(lab, run["id"])

    # The next train set follows the new plan version's steps; the test set stays.
    from core.datasets.versions import freeze

    report = freeze(lab.catalog, "demo-train", "train", parent="demo-test@1", seed=7, actor="ml-eng")
    assert report.plan == f"{plan['name']} v{out['version']}" and report.test_version == "demo-test@1"
    for s in steps.values():
        if s["class_name"] in report.ratio:
            assert report.ratio[s["class_name"]] == s["ratio_to"]

    # The results, the confusion view and the worst images read the same run.
    conf = results.confusion(lab, run["id"])
    assert set(conf["matrix"]) == set(classes)
    positives = sum(len(r["boxes"]) for r in manifests["test"])
    assert sum(sum(row.values()) for row in conf["matrix"].values()) >= positives
    some = measured[0]["class_name"]
    for w in results.worst_images(lab, run["id"], some):
        assert w["kind"] in ("missed", "false alarm")

    # An evaluation run of its model on the same test set agrees with the training run's own.
    ev = records.create_run(lab, RunRequest("eval", "retinanet_tiny", train="demo-train@1", source_run=run["id"],
                                            params={**FAST}), "tester")
    assert ev["weights_sha256"] == record["model_sha256"]
    assert _work(lab, only=ev["id"])[-1].state == "done"
    again = {r["class_name"]: r for r in records.show(lab, ev["id"])["results"] if r["split"] == "test"}
    for r in test_rows:
        assert again[r["class_name"]]["ap50"] == pytest.approx(r["ap50"], abs=1e-6) or r["ap50"] is None

    compared = records.compare(lab, run["id"], ev["id"])
    assert {c["class_name"] for c in compared["classes"]} == set(classes)


def test_cancel_keeps_a_checkpoint_and_resume_goes_on_to_the_end(lab):
    run = records.create_run(lab, RunRequest("train", "retinanet_tiny", train="demo-train@1",
                                             params={**FAST, "epochs": 3}), "tester")
    seen_step = []

    progress = queue.work(lab, "tester", only=run["id"], cancelled=lambda: bool(seen_step))
    for p in progress:
        if p.event and p.event["event"] in ("step", "epoch"):
            seen_step.append(p.event)
    row = records.get(lab, run["id"])
    assert row["state"] == "cancelled", row["message"]
    assert (records.run_dir(lab, row) / "checkpoints" / "last.pt").is_file()
    before = len(run_store.events(lab.catalog, run["id"]))

    records.resume(lab, run["id"], "tester")
    assert _work(lab, only=run["id"])[-1].state == "done"
    events = run_store.events(lab.catalog, run["id"])
    assert len(events) > before and [e["seq"] for e in events] == list(range(1, len(events) + 1))
    starts = [e for e in events if e["event"] == "start"]
    assert len(starts) == 2
    epochs = [e["epoch"] for e in events if e["event"] == "epoch"]
    assert sorted(set(epochs)) == epochs and len(epochs) >= 1  # no epoch done twice
    with pytest.raises(RunError, match="only interrupted, cancelled or failed"):
        records.resume(lab, run["id"])


def test_one_process_works_the_queue_and_a_run_cut_off_is_found_interrupted(lab, tmp_path):
    fd = try_hold(queue.lock_path(lab))
    try:
        with pytest.raises(RunnerBusyError, match=f"process {os.getpid()}"):
            _work(lab)
    finally:
        os.close(fd)

    run = records.create_run(lab, RunRequest("train", "retinanet_tiny", train="demo-train@1",
                                             params={**FAST, "epochs": 50}), "tester")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    worker = subprocess.Popen([sys.executable, "-m", "core.cli", "--lab", str(lab.paths.root), "run", "work"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not run_store.events(lab.catalog, run["id"], kinds=("step",)):
        time.sleep(0.2)
    assert run_store.events(lab.catalog, run["id"], kinds=("step",)), worker.stderr.read1().decode() if worker.poll() else ""
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    # Its run process follows its parent (a clean stop); the lock is free, so the run was cut off.
    assert records.get(lab, run["id"])["state"] == "running"
    assert queue.reconcile(lab) == [run["id"]]
    row = records.get(lab, run["id"])
    assert row["state"] == "interrupted" and "resume" in row["message"]


def test_a_run_refuses_what_it_cannot_do(lab):
    with pytest.raises(RunError, match="unknown model"):
        records.create_run(lab, RunRequest("train", "no-such-model", train="demo-train@1"))
    with pytest.raises(RunError, match="is a test set"):
        records.create_run(lab, RunRequest("train", "retinanet_tiny", train="demo-test@1"))
    with pytest.raises(RunError, match="needs the model to evaluate"):
        records.create_run(lab, RunRequest("eval", "retinanet_tiny", test="demo-test@1"))
    with pytest.raises(RunError, match="does not exist"):
        records.create_run(lab, RunRequest("eval", "retinanet_tiny", test="demo-test@1", weights="/nope.pt"))
    with pytest.raises(RunError, match="no run 99"):
        records.cancel(lab, 99)
    assert lab.catalog.query_one("SELECT COUNT(*) AS n FROM runs")["n"] == 0


def test_the_cli_queues_lists_and_shows_runs(lab):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    base = [sys.executable, "-m", "core.cli", "--lab", str(lab.paths.root)]
    done = subprocess.run([*base, "run", "train", "--model", "retinanet_tiny", "--train", "demo-train@1",
                           "--epochs", "1", "--image-size", "128", "--queue-only", "--json"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    run_id = json.loads(done.stdout)["id"]
    listed = subprocess.run([*base, "run", "list", "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert [r["id"] for r in json.loads(listed.stdout)] == [run_id]
    cancelled = subprocess.run([*base, "run", "cancel", str(run_id)], env=env, capture_output=True, text=True)
    assert cancelled.returncode == 0 and "cancelled" in cancelled.stdout
    shown = subprocess.run([*base, "run", "show", str(run_id), "--json"], env=env, capture_output=True, text=True)
    assert json.loads(shown.stdout)["state"] == "cancelled"
    bad = subprocess.run([*base, "run", "resume", "77"], env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "no run 77" in bad.stderr and "Traceback" not in bad.stderr


def test_a_bundle_runs_its_trainer_executable(lab, tmp_path, monkeypatch):
    """The offline bundle has no ``python -m``: runs start the trainer bundle's executable, found by
    $XLAB_TRAINER (or beside the xlab bundle). Here a real executable stands in as that bundle."""
    trainer = tmp_path / "xlab-trainer"
    trainer.write_text(f"#!/bin/sh\nexec {sys.executable} -m core.training \"$@\"\n")
    trainer.chmod(0o755)
    monkeypatch.setenv("XLAB_TRAINER", str(trainer))
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[2]))
    assert queue.trainer_command("spec.json") == [str(trainer), "spec.json"]
    run = records.create_run(lab, RunRequest("train", "retinanet_tiny", train="demo-train@1",
                                             params={**FAST, "image_size": 64}), "tester")
    assert _work(lab, only=run["id"])[-1].state == "done"
    monkeypatch.setenv("XLAB_TRAINER", str(tmp_path / "missing"))
    with pytest.raises(RunError, match="trainer bundle .* is missing"):
        queue.require_torch()
