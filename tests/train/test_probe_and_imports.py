"""The GPU probe answers in JSON, and torch stays out of every process that only asks about runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.train.conftest import REPO


def _python(code_or_module: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, *code_or_module], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_probe_prints_one_json_object_about_this_machine():
    import torch

    done = _python(["-m", "core.training.probe"])
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    info = json.loads(line)
    assert info["error"] is None
    assert info["torch"] == torch.__version__ and info["torchvision"]
    assert info["cuda_available"] == torch.cuda.is_available()
    assert info["cpu_threads"] >= 1
    assert len(info["devices"]) == (torch.cuda.device_count() if info["cuda_available"] else 0)
    for d in info["devices"]:
        assert d["name"] and d["memory_mb"] > 0 and d["capability"].count(".") == 1
    if not info["cuda_available"]:
        assert info["driver"] is None


def test_the_pure_modules_load_without_torch():
    code = ("import sys; import core.training, core.training.params, core.training.manifest, core.training.events, "
            "core.training.spec, core.training.models, core.training.probe; "
            "from core.training.models import MODELS; from core.training.probe import cpu_estimate_s; "
            "cpu_estimate_s('retinanet_tiny', 100, 2, 256); "
            "print(sorted(m for m in ('torch', 'torchvision', 'cv2') if m in sys.modules))")
    done = _python(["-c", code])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
