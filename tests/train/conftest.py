"""Fixtures for the training process's tests: simulated scans with their manifests, and running
``python -m core.training`` as the parent does (a real subprocess, torch on the CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.training.events import read_events
from core.training.manifest import write_manifest
from tests.train.simdata import CLASSES, write_split

REPO = Path(__file__).resolve().parents[2]
# One torch thread: on a CPU shared with other work, spinning OpenMP threads stall each other
# (measured: 10 training steps took 1.2 s with 2 threads alone, 20-30 s with 2 threads beside other
# jobs, 2-5 s with 1 thread beside them).
FAST = {"image_size": 128, "batch_size": 8, "lr": 0.003, "seed": 1, "workers": 0, "threads": 1}


@dataclass
class SimData:
    root: Path
    manifests: dict[str, Path]
    rows: dict[str, list[dict]]


@pytest.fixture(scope="session")
def sim(tmp_path_factory) -> SimData:
    """160 training scans and 20 validation scans at 128 px; 40 held-out test scans at 256 px (the
    run resizes them to 128, so its detections must be scaled back to be right)."""
    root = tmp_path_factory.mktemp("sim")
    rows = {"train": write_split(root / "train", 160, seed=11),
            "validation": write_split(root / "validation", 20, seed=12, first_id=2001),
            "test": write_split(root / "test", 40, seed=13, size=256, first_id=3001)}
    manifests = {}
    for split, split_rows in rows.items():
        manifests[split] = root / f"{split}.jsonl"
        write_manifest(manifests[split], split_rows)
    return SimData(root, manifests, rows)


def make_spec(out_dir: Path, manifests: dict[str, Path | None], params: dict, *, kind: str = "train",
              weights: Path | None = None, resume: Path | None = None, model: str = "retinanet_tiny") -> Path:
    spec = {"run_id": 1, "kind": kind, "model": model, "classes": list(CLASSES),
            "manifests": {s: str(manifests[s]) if manifests.get(s) else None for s in ("train", "validation", "test")},
            "params": params, "weights": str(weights) if weights else None, "resume": str(resume) if resume else None,
            "out_dir": str(out_dir)}
    path = out_dir.with_name(out_dir.name + "-spec.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec), encoding="utf-8")
    return path


def start(spec: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "core.training", str(spec)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    events: list[dict]


def run(spec: Path, timeout: float = 300) -> Finished:
    t = time.monotonic()
    process = start(spec)
    out, err = process.communicate(timeout=timeout)
    out_dir = Path(json.loads(spec.read_text())["out_dir"])
    return Finished(process.returncode, out, err, time.monotonic() - t, read_events(out_dir))


def kinds(events: list[dict]) -> list[str]:
    return [e["event"] for e in events]
