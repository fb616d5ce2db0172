"""What runs would run on: the GPU probe, asked of a separate process (torch stays out of this one)."""

from __future__ import annotations

import json
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

PROBE_TIMEOUT_S = 120


@lru_cache(maxsize=1)
def probe() -> dict[str, Any]:
    """``python -m core.training.probe``'s answer: torch and CUDA versions, driver, GPUs (index, name,
    memory, capability), CPU threads, or ``error`` saying how to enable training. Cached per process."""
    from core.errors import RunError
    from core.runs.queue import bundled, missing_training_modules, trainer_command

    try:
        command = trainer_command(probe=True)
    except RunError as exc:
        return {"torch": None, "torchvision": None, "cuda_available": False, "devices": [], "error": str(exc)}
    if not bundled() and "torch" in missing_training_modules():
        return {"torch": None, "torchvision": None, "cuda_available": False, "devices": [],
                "error": "training is not installed here (PyTorch is left out of the base install): "
                         "pip install -e '.[train]', or install the XLab trainer bundle"}
    try:
        done = subprocess.run(command, capture_output=True, text=True,
                              timeout=PROBE_TIMEOUT_S, cwd=str(Path(__file__).resolve().parents[2]))
    except subprocess.TimeoutExpired:
        return {"devices": [], "cuda_available": False, "error": f"the GPU probe did not answer in {PROBE_TIMEOUT_S} s"}
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        tail = (done.stderr or "").strip().splitlines()[-1:] or ["no output"]
        return {"devices": [], "cuda_available": False, "error": f"the GPU probe failed: {tail[0]}"}


def cpu_warning(lab, run: dict[str, Any]) -> str | None:  # noqa: ANN001 - core.lab.Lab
    """A warning with a time estimate when the run will go to the CPU (no GPU, or --device cpu)."""
    from core.runs.records import run_dir

    params = json.loads(run["params_json"])
    info = probe()
    if info.get("error") or (info.get("devices") and params.get("device") != "cpu"):
        return None
    from core.training.probe import cpu_estimate_s

    path = run_dir(lab, run) / "manifests" / "train.jsonl"
    images = path.read_bytes().count(b"\n") if path.is_file() else 0
    epochs = int(params.get("epochs", 1)) if run["kind"] == "train" else 0
    seconds = cpu_estimate_s(run["model"], images, epochs, int(params.get("image_size", 512)))
    return (f"warning: no GPU here: run {run['id']} goes to the CPU, about {max(1, round(seconds / 60))} min "
            f"to train ({run['model']}, {images:,} images x {epochs} epochs at "
            f"{params.get('image_size')} px); a GPU workstation runs it many times faster")
