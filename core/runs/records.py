"""Run records: create a run on exact dataset versions, list, show, cancel, resume, compare.

A run's folder is ``LAB/runs/<id>/``: ``manifests/`` (the images and boxes of
each split, written when the run is created, from the versions' frozen
labels), ``spec.json`` (what the run process is told, written at each
start), ``events.jsonl`` (what it streams), ``checkpoints/`` and the final
``model.pt`` and detection files. The catalog row holds everything needed to
reproduce the run; :func:`reproduce` queues a new run from it.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.catalog import dataset_store, label_store, quota_store
from core.catalog import run_store as store
from core.catalog.db import utc_now
from core.errors import DatasetError, RunError
from core.lab import Lab

KINDS = ("train", "eval")
CANCEL_FILE = "cancel"
SUBSETS_OF = {"train": ("train", "validation"), "test": ("test",)}


@dataclass(frozen=True)
class RunRequest:
    """What to run. ``train``: a train dataset version NAME[@N] (its validation subset is the
    validation split); ``test``: the test version (default: the one the train set clones);
    ``weights``: a state_dict file to start from (train) or to evaluate (eval);
    ``source_run``: evaluate (or fine-tune from) the final model of that run."""

    kind: str
    model: str
    train: str | None = None
    test: str | None = None
    params: dict[str, Any] | None = None
    weights: str | None = None
    source_run: int | None = None
    note: str = ""


def run_dir(lab: Lab, run: dict[str, Any]) -> Path:
    return lab.paths.root / run["run_dir"]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def code_version() -> str:
    """XLab's version and a digest of the training process's source (what a reproduction must match)."""
    from importlib.metadata import PackageNotFoundError, version

    import core.training

    try:
        ours = version("xlab")
    except PackageNotFoundError:
        ours = "source"
    digest = hashlib.sha256()
    for path in sorted(Path(core.training.__file__).parent.rglob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return f"xlab {ours}, training code {digest.hexdigest()[:12]}"


def _version(lab: Lab, ref: str, rule: str) -> dict[str, Any]:
    from core.datasets.versions import resolve

    try:
        v = resolve(lab.catalog, ref)
    except DatasetError as exc:
        raise RunError(str(exc)) from None
    if v["rule"] != rule:
        raise RunError(f"{v['name']}@{v['version']} is a {v['rule']} set; a run's --{rule} must be a {rule} set")
    return v


def _classes(lab: Lab, plan_id: int) -> list[str]:
    """The run's classes, by name, in a fixed order (class index = position + 1)."""
    return sorted(r["class_name"] for r in quota_store.plan_class_kpis(lab.catalog, plan_id))


def _manifest_rows(lab: Lab, version: dict[str, Any], subset: str, index: dict[str, int]) -> list[dict[str, Any]]:
    """The images of a version's subset with the boxes they were frozen with (classes the run does not
    know are left out: a box of a class outside the plan is not something this run learns)."""
    import numpy as np

    members = dataset_store.read_members(lab.catalog, version["id"])
    wanted = members.subsets == dataset_store.SUBSETS.index(subset)
    chosen = members.select(wanted)
    boxes: dict[int, list] = {}
    for r in label_store.revisions(lab.catalog, chosen.revisions.tolist()):
        if r["deleted"] or r["qa_state"] == "rejected" or r["class_name"] not in index:
            continue
        boxes.setdefault(r["image_id"], []).append(
            [float(r["x0"]), float(r["y0"]), float(r["x1"]), float(r["y1"]), index[r["class_name"]]])
    images = store.manifest_images(lab.catalog, chosen.image_ids.tolist())
    rows = []
    for image_id, negative in zip(chosen.image_ids.tolist(), np.asarray(chosen.negatives).tolist()):
        info = images[image_id]
        rows.append({"image_id": image_id, "path": str(lab.paths.store / info["store_path"]),
                     "width": info["width"], "height": info["height"], "boxes": boxes.get(image_id, []),
                     "negative": bool(negative) and not boxes.get(image_id)})
    return rows


def create_run(lab: Lab, request: RunRequest, actor: str | None = None) -> dict[str, Any]:
    """Queue a run: check what it names, write its manifests, record it as 'queued'.

    Any thread; one write transaction (the manifests are written inside it, so a refused run
    leaves a folder nobody refers to, never a row without its files).
    """
    lab.catalog.require("runs")
    from core.training.manifest import write_manifest
    from core.training.models import MODELS
    from core.training.params import validate

    if request.kind not in KINDS:
        raise RunError(f"unknown run kind '{request.kind}' (use train or eval)")
    if request.model not in MODELS:
        raise RunError(f"unknown model '{request.model}'; use one of: {', '.join(MODELS)}")
    params = validate(dict(request.params or {}))
    train = _version(lab, request.train, "train") if request.train else None
    if request.kind == "train" and train is None:
        raise RunError("a training run needs --train NAME[@VERSION] (a frozen train set)")
    if request.test:
        test = _version(lab, request.test, "test")
    elif train is not None:
        test = dataset_store.version_by_id(lab.catalog, train["test_version_id"])
    else:
        raise RunError("an evaluation run needs --test NAME[@VERSION] (a frozen test set)")
    if train is not None and train["test_version_id"] != test["id"]:
        raise RunError(f"{train['name']}@{train['version']} clones another test set than "
                       f"{test['name']}@{test['version']}; evaluate a train set on its own test set")
    weights, weights_sha = _weights(lab, request)
    if request.kind == "eval" and weights is None:
        raise RunError("an evaluation run needs the model to evaluate: --weights FILE or --from-run RUN")
    classes = _classes(lab, test["plan_id"])
    if not classes:
        raise RunError(f"the quota plan of {test['name']}@{test['version']} has no threat classes")
    index = {name: n + 1 for n, name in enumerate(classes)}
    seed = int(params.get("seed") or secrets.randbelow(2 ** 31))
    params["seed"] = seed
    manifests = {}
    if train is not None and request.kind == "train":
        manifests["train"] = _manifest_rows(lab, train, "train", index)
        manifests["validation"] = _manifest_rows(lab, train, "validation", index)
        if not manifests["train"]:
            raise RunError(f"{train['name']}@{train['version']} has no train images")
    elif train is not None:
        manifests["validation"] = _manifest_rows(lab, train, "validation", index)
    manifests["test"] = _manifest_rows(lab, test, "test", index)
    with lab.catalog.write(actor) as txn:
        run_id = store.insert_run(txn, {
            "kind": request.kind, "state": "queued", "model": request.model,
            "params_json": json.dumps(params, sort_keys=True), "seed": seed,
            "train_version_id": train["id"] if train else None, "test_version_id": test["id"],
            "source_run_id": request.source_run, "weights_path": str(weights) if weights else None,
            "weights_sha256": weights_sha, "classes_json": json.dumps(classes), "code_version": code_version(),
            "run_dir": "", "note": request.note, "created_at": utc_now(), "created_by": txn.actor,
        })
        folder = Path("runs") / str(run_id)
        store.update_run(txn, run_id, {"run_dir": folder.as_posix()})
        for split, rows in manifests.items():
            write_manifest(lab.paths.root / folder / "manifests" / f"{split}.jsonl", rows)
        txn.audit("queue", "run", run_id, None, {
            "kind": request.kind, "model": request.model, "seed": seed, "weights_sha256": weights_sha,
            "train": f"{train['name']}@{train['version']}" if train else None,
            "test": f"{test['name']}@{test['version']}"})
        txn.summary.append(f"run {run_id} queued")
    return store.run(lab.catalog, run_id)


def _weights(lab: Lab, request: RunRequest) -> tuple[Path | None, str | None]:
    if request.weights and request.source_run:
        raise RunError("give --weights or --from-run, not both")
    if request.source_run is not None:
        source = get(lab, request.source_run)
        path = run_dir(lab, source) / "model.pt"
        if source["state"] != "done" or not path.is_file():
            raise RunError(f"run {source['id']} has no final model (it is {source['state']}); "
                           "use a run that finished training")
        return path, _sha256(path)
    if request.weights:
        path = Path(request.weights).expanduser().resolve()
        if not path.is_file():
            raise RunError(f"weights file {path} does not exist")
        return path, _sha256(path)
    return None, None


def get(lab: Lab, run_id: int) -> dict[str, Any]:
    run = store.run(lab.catalog, run_id)
    if run is None:
        raise RunError(f"no run {run_id}; 'xlab run list' shows the lab's runs")
    return run


def list_runs(lab: Lab, states: list[str] | None = None) -> list[dict[str, Any]]:
    """Runs, newest first, with what each is on and how it ended. Any thread; read-only."""
    return [_summary(r) for r in store.runs(lab.catalog, states)]


def _summary(run: dict[str, Any]) -> dict[str, Any]:
    metrics = json.loads(run["metrics_json"] or "{}")
    return {
        "id": run["id"], "kind": run["kind"], "state": run["state"], "model": run["model"],
        "train": f"{run['train_name']}@{run['train_number']}" if run["train_name"] else "",
        "test": f"{run['test_name']}@{run['test_number']}" if run["test_name"] else "",
        "device": run["device"] or "", "created_at": run["created_at"], "created_by": run["created_by"],
        "started_at": run["started_at"], "finished_at": run["finished_at"], "message": run["message"],
        "AP": (metrics.get("coco") or {}).get("AP"), "AP50": (metrics.get("coco") or {}).get("AP50"),
    }


def show(lab: Lab, run_id: int) -> dict[str, Any]:
    """A run's whole record: summary, parameters, environment, per-class results, the loop's proposals."""
    run = get(lab, run_id)
    return {**_summary(run), "params": json.loads(run["params_json"]), "seed": run["seed"],
            "classes": json.loads(run["classes_json"]), "code_version": run["code_version"],
            "weights": run["weights_path"], "weights_sha256": run["weights_sha256"],
            "model_sha256": run["model_sha256"], "source_run": run["source_run_id"],
            "env": json.loads(run["env_json"] or "{}"), "metrics": json.loads(run["metrics_json"] or "{}"),
            "run_dir": str(run_dir(lab, run)), "attempts": run["attempts"], "note": run["note"],
            "results": store.results(lab.catalog, run_id), "loop": store.loop_steps(lab.catalog, run_id)}


def curves(lab: Lab, run_id: int, after_seq: int = 0) -> list[dict[str, Any]]:
    """The run's step and epoch events after ``after_seq`` (what the live curves plot)."""
    return store.events(lab.catalog, run_id, after_seq, ("step", "epoch"))


def cancel(lab: Lab, run_id: int, actor: str | None = None) -> str:
    """Cancel a run: a queued one at once; a running one stops cleanly at its next step, keeping a
    checkpoint (the process that runs it sees the request). Returns the run's new state."""
    with lab.catalog.write(actor) as txn:
        run = store.run(txn, run_id)
        if run is None:
            raise RunError(f"no run {run_id}")
        if run["state"] == "queued":
            store.update_run(txn, run_id, {"state": "cancelled", "finished_at": utc_now(),
                                           "message": f"cancelled before it started by {txn.actor}"})
            state = "cancelled"
        elif run["state"] in ("running", "cancelling"):
            store.update_run(txn, run_id, {"state": "cancelling", "message": f"cancel asked by {txn.actor}"})
            state = "cancelling"
        else:
            raise RunError(f"run {run_id} is {run['state']}; only queued or running runs can be cancelled")
        txn.audit("cancel", "run", run_id, {"state": run["state"]}, {"state": state})
    if state == "cancelling":
        folder = run_dir(lab, run)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CANCEL_FILE).touch()
    return state


def resume(lab: Lab, run_id: int, actor: str | None = None) -> dict[str, Any]:
    """Queue an interrupted or cancelled run again; it goes on from its last checkpoint."""
    run = get(lab, run_id)
    if run["state"] not in ("interrupted", "cancelled", "failed"):
        raise RunError(f"run {run_id} is {run['state']}; only interrupted, cancelled or failed runs resume")
    folder = run_dir(lab, run)
    if run["kind"] == "train" and not (folder / "checkpoints" / "last.pt").is_file() and run["state"] != "failed":
        raise RunError(f"run {run_id} left no checkpoint to resume from (it stopped before its first one); "
                       f"'xlab run reproduce {run_id}' starts it again from the beginning")
    (folder / CANCEL_FILE).unlink(missing_ok=True)
    with lab.catalog.write(actor) as txn:
        store.update_run(txn, run_id, {"state": "queued", "message": f"resume asked by {txn.actor}",
                                       "finished_at": None})
        txn.audit("resume", "run", run_id, {"state": run["state"]}, {"state": "queued"})
    return get(lab, run_id)


def reproduce(lab: Lab, run_id: int, actor: str | None = None) -> dict[str, Any]:
    """Queue a new run with exactly the record of ``run_id`` (versions, model, parameters, seed, weights)."""
    run = get(lab, run_id)
    weights = run["weights_path"]
    if weights and run["weights_sha256"] and Path(weights).is_file() and _sha256(Path(weights)) != run["weights_sha256"]:
        raise RunError(f"the weights file {weights} changed since run {run_id} (its sha256 differs); "
                       "a reproduction needs the same file")
    request = RunRequest(run["kind"], run["model"],
                         train=f"{run['train_name']}@{run['train_number']}" if run["train_name"] else None,
                         test=f"{run['test_name']}@{run['test_number']}", params=json.loads(run["params_json"]),
                         weights=None if run["source_run_id"] else weights, source_run=run["source_run_id"],
                         note=f"reproduction of run {run_id}")
    return create_run(lab, request, actor)


def compare(lab: Lab, a: int, b: int) -> dict[str, Any]:
    """Two runs side by side: their records, per-class test results, and their dataset versions' diffs."""
    from core.datasets import diff as dataset_diff

    left, right = show(lab, a), show(lab, b)
    per_class: dict[str, dict[str, Any]] = {}
    for side, record in (("a", left), ("b", right)):
        for r in record["results"]:
            if r["split"] == "test":
                per_class.setdefault(r["class_name"], {})[side] = r
    rows = []
    for name in sorted(per_class):
        ra, rb = per_class[name].get("a"), per_class[name].get("b")
        rows.append({"class_name": name,
                     "pd_a": ra and ra["pd"], "pd_b": rb and rb["pd"],
                     "far_a": ra and ra["far"], "far_b": rb and rb["far"],
                     "ap50_a": ra and ra["ap50"], "ap50_b": rb and rb["ap50"]})
    diffs = {}
    for split in ("train", "test"):
        x, y = left[split], right[split]
        if x and y and x != y:
            d = dataset_diff.diff(lab.catalog, x, y)
            diffs[split] = {"from": x, "to": y, "added": d.added, "removed": d.removed,
                            "labels_changed": d.labels_changed}
        elif x and y:
            diffs[split] = {"from": x, "to": y, "same": True}
    return {"a": left, "b": right, "classes": rows, "datasets": diffs}
