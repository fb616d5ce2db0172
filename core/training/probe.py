"""What runs would run on. ``python -m core.training.probe`` prints one JSON object::

    {"torch": "2.14.1" | null, "torchvision": ... | null, "cuda_available": bool, "cuda": "13.0" | null,
     "driver": "580.65" | null, "devices": [{"index": 0, "name": ..., "memory_mb": ..., "capability": "9.0"}],
     "cpu_threads": 16, "error": null | "torch is not installed: pip install -e '.[train]'"}

:func:`cpu_estimate_s` (pure, no torch) is the time a training run would take on this machine's CPU,
for the warning shown before one starts there.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

# Seconds to train one image once (forward, backward, step; batch 8) at 256 px on one CPU thread,
# measured on a 2-core x86-64; they scale with pixels (image_size²). Faster R-CNN pays for its box
# head on 512 sampled regions per image.
CPU_SECONDS_PER_IMAGE_256 = {
    "retinanet_tiny": 0.034,
    "retinanet_resnet18_fpn": 0.96,
    "retinanet_resnet50_fpn": 1.84,
    "fasterrcnn_resnet18_fpn": 2.9,
    "fasterrcnn_resnet50_fpn": 3.7,
}
# Threads beyond the first help less than linearly (memory bandwidth, the loader's own share).
THREAD_EFFICIENCY = 0.6


def cpu_estimate_s(model: str, images: int, epochs: int, image_size: int, threads: int | None = None) -> float:
    """Seconds to train ``model`` on ``images`` images for ``epochs`` epochs at ``image_size`` on this
    machine's CPU (``threads``: default the CPU count), plus one prediction pass over as many images.
    A rough figure (within a factor of about two) for a warning, not a promise; 0 for no images."""
    per_image = CPU_SECONDS_PER_IMAGE_256.get(model, max(CPU_SECONDS_PER_IMAGE_256.values()))
    threads = max(1, threads or os.cpu_count() or 1)
    speed = 1 + THREAD_EFFICIENCY * (threads - 1)
    # Prediction costs about a third of a training step.
    passes = epochs + 1 / 3
    return per_image * (image_size / 256) ** 2 * images * passes / speed


def _driver() -> str | None:
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = done.stdout.strip().splitlines()
    return lines[0].strip() if done.returncode == 0 and lines else None


def probe() -> dict[str, Any]:
    """The answer printed by ``python -m core.training.probe`` (imports torch: a run process's
    question, not the GUI's)."""
    info: dict[str, Any] = {"torch": None, "torchvision": None, "cuda_available": False, "cuda": None,
                            "driver": None, "devices": [], "cpu_threads": os.cpu_count(), "error": None}
    from importlib.metadata import PackageNotFoundError, version

    try:
        import torch
    except ImportError:
        info["error"] = "torch is not installed: pip install -e '.[train]'"
        return info
    try:
        # Its version from the package's metadata: importing torchvision takes seconds.
        info["torchvision"] = version("torchvision")
    except PackageNotFoundError:
        info["error"] = "torchvision is not installed: pip install -e '.[train]'"
    info.update(torch=torch.__version__, cuda=torch.version.cuda, cpu_threads=torch.get_num_threads())
    try:
        available = torch.cuda.is_available()
        count = torch.cuda.device_count() if available else 0
        for index in range(count):
            props = torch.cuda.get_device_properties(index)
            info["devices"].append({"index": index, "name": props.name,
                                    "memory_mb": round(props.total_memory / 2 ** 20),
                                    "capability": f"{props.major}.{props.minor}"})
    except Exception as exc:  # noqa: BLE001 - a broken driver is an answer, not a crash
        info["error"] = f"the CUDA driver did not answer: {' '.join(str(exc).split())[:300]}"
        available = False
    info["cuda_available"] = bool(available and info["devices"])
    if info["cuda_available"]:
        info["driver"] = _driver()
    return info


if __name__ == "__main__":
    print(json.dumps(probe()), flush=True)
