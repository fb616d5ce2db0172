"""The run queue: one run at a time per workstation's GPU, each in its own process.

Whoever works the queue (``xlab run work``, ``xlab run train`` in the
foreground, the window's Runs area) holds ``LAB/locks/runner.lock`` for as
long as it does; a second process asking to work it is told who does, and
its run simply waits in the queue. The lock is released however its holder
ends, so a run found 'running' by the next holder was cut off (a crash, a
reboot, a killed window): it is marked interrupted and can be resumed from
its last checkpoint.

The run process writes its events to its folder's ``events.jsonl``; the
queue tails that file, records the events in the catalog (the GUI reads
them from there), and when the process ends evaluates its detections
(:mod:`core.runs.results`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.catalog import run_store as store
from core.catalog.db import utc_now
from core.errors import RunError, RunnerBusyError, XLabError
from core.ingest.lock import holder, try_hold
from core.ingest.pool import signal_when_parent_dies
from core.lab import Lab
from core.runs.records import CANCEL_FILE, run_dir

POLL_S = 0.25
RECORD_EVERY_S = 1.0
# After a cancel, the run finishes its step and writes a checkpoint; past this it is ended.
CANCEL_GRACE_S = 120.0
LOCK_PATIENCE_S = 2.0


@dataclass(frozen=True)
class RunProgress:
    """What the queue is doing: the run, its state, and the newest event (or None)."""

    run_id: int
    state: str
    event: dict[str, Any] | None = None
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def lock_path(lab: Lab) -> Path:
    return lab.paths.root / "locks" / "runner.lock"


def runner(lab: Lab) -> str | None:
    """Who works the queue now (None: nobody)."""
    owner = holder(lock_path(lab))
    return owner.describe() if owner else None


def reconcile(lab: Lab, actor: str | None = None) -> list[int]:
    """Mark runs left 'running' by a queue holder that is gone as interrupted (only when nobody works
    the queue now: its lock is free). Returns their ids."""
    fd = try_hold(lock_path(lab))
    if fd is None:
        return []
    try:
        return _interrupt_orphans(lab, actor)
    finally:
        os.close(fd)


def _interrupt_orphans(lab: Lab, actor: str | None) -> list[int]:
    orphans = [r["id"] for r in store.runs(lab.catalog, ("running", "cancelling"))]
    if orphans:
        with lab.catalog.write(actor) as txn:
            for run_id in orphans:
                store.update_run(txn, run_id, {"state": "interrupted", "finished_at": utc_now(),
                                               "message": "interrupted: the process running it ended without "
                                                          "finishing (crash, reboot or killed); resume it"})
                txn.audit("interrupted", "run", run_id, {"state": "running"}, {"state": "interrupted"})
    return orphans


def spec_for(lab: Lab, run: dict[str, Any]) -> dict[str, Any]:
    """What the run process is told (written to ``spec.json`` at each start)."""
    folder = run_dir(lab, run)
    manifests = {s: str(folder / "manifests" / f"{s}.jsonl") if (folder / "manifests" / f"{s}.jsonl").is_file()
                 else None for s in ("train", "validation", "test")}
    last = folder / "checkpoints" / "last.pt"
    return {
        "run_id": run["id"], "kind": run["kind"], "model": run["model"], "classes": json.loads(run["classes_json"]),
        "manifests": manifests, "params": json.loads(run["params_json"]), "weights": run["weights_path"],
        "resume": str(last) if run["kind"] == "train" and run["attempts"] > 0 and last.is_file() else None,
        "out_dir": str(folder),
    }


TRAINER_ENV = "XLAB_TRAINER"


def trainer_command(*args: str, probe: bool = False) -> list[str]:
    """How to start the run process (or, with ``probe``, the GPU probe): in a source install this
    Python's ``-m core.training``; in the offline bundle, the trainer bundle's ``xlab-trainer``
    (``$XLAB_TRAINER``, else installed beside the ``xlab`` bundle). Raises RunError naming where it
    was looked for when the bundle has no trainer."""
    explicit = os.environ.get(TRAINER_ENV)
    if bundled():
        exe = Path(explicit) if explicit else Path(sys.executable).resolve().parent.parent / "xlab-trainer" / (
            "xlab-trainer.exe" if os.name == "nt" else "xlab-trainer")
        if not exe.is_file():
            raise RunError(f"training is not installed with this XLab: the trainer bundle ({exe}) is missing; "
                           f"install xlab-trainer beside xlab, or set {TRAINER_ENV} to its executable")
        return [str(exe), "--probe"] if probe else [str(exe), *args]
    return [sys.executable, "-m", "core.training.probe"] if probe else [sys.executable, "-m", "core.training", *args]


def _start(lab: Lab, run: dict[str, Any]) -> subprocess.Popen:
    folder = run_dir(lab, run)
    spec_path = folder / "spec.json"
    spec_path.write_text(json.dumps(spec_for(lab, run), indent=1), encoding="utf-8")
    log = (folder / "process.log").open("ab")
    try:
        # Its own session: Ctrl-C in the terminal reaches the queue, which asks for a clean stop.
        return subprocess.Popen(trainer_command(str(spec_path)), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=log, cwd=str(Path(__file__).resolve().parents[2]),
                                start_new_session=True,
                                # A clean stop (SIGTERM: checkpoint, then exit) when the queue's process dies.
                                preexec_fn=signal_when_parent_dies if sys.platform.startswith("linux") else None)
    finally:
        log.close()


class _Tail:
    """New complete events of a run's growing ``events.jsonl``."""

    def __init__(self, path: Path, offset: int = 0):
        self.path, self.offset = path, offset

    def read(self) -> list[dict[str, Any]]:
        from core.training.events import read_events_from

        events, self.offset = read_events_from(self.path, self.offset)
        return events


def work(lab: Lab, actor: str | None = None, *, only: int | None = None, wait: bool = False,
         cancelled: Callable[[], bool] = lambda: False) -> Iterator[RunProgress]:
    """Work the queue: start each queued run in turn (oldest first), record its events, evaluate
    it when it ends. ``only``: stop after that run; ``wait``: keep waiting for new runs (else stop
    when the queue is empty); ``cancelled``: polled, asks the current run to stop cleanly (it keeps
    a checkpoint and can be resumed) and ends the work. A generator of :class:`RunProgress`; any thread.

    Raises :class:`RunnerBusyError` when another process works the queue.
    """
    path = lock_path(lab)
    fd = try_hold(path)
    # A window's refresh or `xlab run list` holds the lock for an instant to see whether a run was
    # cut off (reconcile): look again for a moment before telling the user the queue is taken.
    deadline = time.monotonic() + LOCK_PATIENCE_S
    while fd is None and time.monotonic() < deadline:
        time.sleep(0.05)
        fd = try_hold(path)
    if fd is None:
        owner = holder(path)
        who = owner.describe() if owner else "another process"
        raise RunnerBusyError(f"the run queue is worked by {who}; queued runs start there in turn", who)
    try:
        _interrupt_orphans(lab, actor)
        while not cancelled():
            run = _take(lab, actor, only)
            if run is None:
                if wait:
                    time.sleep(POLL_S * 4)
                    yield RunProgress(0, "idle")
                    continue
                return
            yield from _run_one(lab, run, actor, cancelled)
            if only is not None:
                return
    finally:
        os.close(fd)


def _take(lab: Lab, actor: str | None, only: int | None) -> dict[str, Any] | None:
    with lab.catalog.write(actor) as txn:
        run = store.run(txn, only) if only is not None else store.next_queued(txn)
        if run is None or run["state"] != "queued":
            return None
        import socket

        store.update_run(txn, run["id"], {"state": "running", "started_at": run["started_at"] or utc_now(),
                                          "host": socket.gethostname(), "attempts": run["attempts"] + 1,
                                          "message": ""})
        txn.summary.append(f"run {run['id']} started")
    return store.run(lab.catalog, run["id"])


def _run_one(lab: Lab, run: dict[str, Any], actor: str | None, cancelled: Callable[[], bool]) -> Iterator[RunProgress]:
    folder = run_dir(lab, run)
    events_path = folder / "events.jsonl"
    tail = _Tail(events_path, events_path.stat().st_size if events_path.exists() else 0)
    (folder / CANCEL_FILE).unlink(missing_ok=True)
    try:
        process = _start(lab, run)
    except OSError as exc:
        _finish(lab, run["id"], actor, "failed", f"could not start the run process: {exc.strerror}")
        yield RunProgress(run["id"], "failed", message=str(exc))
        return
    with lab.catalog.write(actor) as txn:
        store.update_run(txn, run["id"], {"pid": process.pid})
    seq = store.last_event_seq(lab.catalog, run["id"])
    pending: list[dict[str, Any]] = []
    terminal: dict[str, Any] | None = None
    last_record = time.monotonic()
    cancel_asked: float | None = None
    yield RunProgress(run["id"], "running", message=f"run {run['id']} started (process {process.pid})")
    while True:
        exited = process.poll() is not None
        for event in tail.read():
            pending.append(event)
            if event["event"] in ("done", "cancelled", "error"):
                terminal = event
            yield RunProgress(run["id"], "running", event)
        now = time.monotonic()
        if pending and (exited or now - last_record >= RECORD_EVERY_S):
            seq = _record(lab, run["id"], seq, pending, actor)
            pending, last_record = [], now
        if exited:
            break
        if cancel_asked is None and (cancelled() or _cancel_requested(lab, run["id"], folder)):
            (folder / CANCEL_FILE).touch()
            cancel_asked = now
            yield RunProgress(run["id"], "cancelling", message="stopping at the next step, keeping a checkpoint")
        elif cancel_asked is not None and now - cancel_asked > CANCEL_GRACE_S:
            process.kill()
        time.sleep(POLL_S)
    yield from _conclude(lab, run, actor, terminal, process.returncode)


def _cancel_requested(lab: Lab, run_id: int, folder: Path) -> bool:
    if (folder / CANCEL_FILE).exists():
        return True
    run = store.run(lab.catalog, run_id)
    return run is not None and run["state"] == "cancelling"


def _record(lab: Lab, run_id: int, seq: int, events: list[dict[str, Any]], actor: str | None) -> int:
    with lab.catalog.write(actor) as txn:
        store.insert_events(txn, run_id, seq + 1, events)
        for event in events:
            if event["event"] == "start":
                env = {k: event.get(k) for k in ("device", "device_name", "torch", "torchvision", "cuda", "amp",
                                                 "images", "params", "warning") if k in event}
                store.update_run(txn, run_id, {"env_json": json.dumps(env, sort_keys=True),
                                               "device": event.get("device_name") or event.get("device")})
            elif event["event"] == "weights":
                store.update_run(txn, run_id, {"model_sha256": event.get("sha256")})
    return seq + len(events)


def _finish(lab: Lab, run_id: int, actor: str | None, state: str, message: str,
            metrics: dict[str, Any] | None = None) -> None:
    with lab.catalog.write(actor) as txn:
        values: dict[str, Any] = {"state": state, "finished_at": utc_now(), "message": message, "pid": None}
        if metrics is not None:
            values["metrics_json"] = json.dumps(metrics, sort_keys=True)
        store.update_run(txn, run_id, values)
        txn.audit(state, "run", run_id, None, {"message": message})
        txn.summary.append(f"run {run_id} {state}")


def _conclude(lab: Lab, run: dict[str, Any], actor: str | None, terminal: dict[str, Any] | None,
              returncode: int) -> Iterator[RunProgress]:
    from core.runs.results import evaluate_run

    run_id = run["id"]
    kind = terminal["event"] if terminal else None
    if kind == "cancelled":
        _finish(lab, run_id, actor, "cancelled", "cancelled; its checkpoint is kept: 'xlab run resume' goes on")
        yield RunProgress(run_id, "cancelled")
        return
    if kind == "error":
        _finish(lab, run_id, actor, "failed", str(terminal.get("message", "the run process failed")))
        yield RunProgress(run_id, "failed", message=str(terminal.get("message", "")))
        return
    if kind != "done":
        why = f"the run process ended (exit {returncode}) without finishing; see {run_dir(lab, run) / 'process.log'}"
        _finish(lab, run_id, actor, "interrupted", why)
        yield RunProgress(run_id, "interrupted", message=why)
        return
    yield RunProgress(run_id, "evaluating", message="evaluating the detections on the test set")
    try:
        metrics = evaluate_run(lab, run_id, actor)
    except XLabError as exc:
        _finish(lab, run_id, actor, "failed", f"evaluation failed: {exc}")
        yield RunProgress(run_id, "failed", message=str(exc))
        return
    _finish(lab, run_id, actor, "done", "", metrics)
    yield RunProgress(run_id, "done", extra=metrics)


TRAINING_MODULES = ("torch", "torchvision")


def bundled() -> bool:
    """Whether runs start the trainer bundle (offline bundle, or ``$XLAB_TRAINER``) rather than this Python."""
    return bool(os.environ.get(TRAINER_ENV) or getattr(sys, "frozen", False))


def missing_training_modules(modules: tuple[str, ...] = TRAINING_MODULES) -> list[str]:
    """The modules of the training extra this Python lacks (asked of the import system, none imported)."""
    import importlib.util

    return [m for m in modules if importlib.util.find_spec(m) is None]


def require_torch() -> None:
    """Raise a clear :class:`RunError` when the training extra is not installed (without importing torch)."""
    if bundled():
        trainer_command()  # the trainer bundle carries torch: it only has to be there
        return
    if missing_training_modules():
        raise RunError("training needs PyTorch, which this installation leaves out: "
                       "pip install -e '.[train]' (or the XLab trainer bundle)")
