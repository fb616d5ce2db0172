"""A run's spec (``spec.json``): what one run process is told to do. Pure (no torch).

::

    {"run_id": 7, "kind": "train" | "eval", "model": <a name in MODELS>, "classes": ["knife", ...],
     "manifests": {"train": path | null, "validation": path | null, "test": path | null},
     "params": {...}, "weights": path | null, "resume": path | null, "out_dir": path}

``classes[i]`` is class index ``i + 1`` in the manifests (0 is the background). ``weights``: the
state_dict to start from (train) or to evaluate (eval); ``resume``: a checkpoint of this run to go on
from (train).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import TrainingError
from core.training.models import MODELS
from core.training.params import validate

SPLITS = ("train", "validation", "test")
KINDS = ("train", "eval")


@dataclass(frozen=True)
class Spec:
    run_id: Any
    kind: str
    model: str
    classes: tuple[str, ...]
    manifests: dict[str, Path | None]
    params: dict[str, Any]
    weights: Path | None
    resume: Path | None
    out_dir: Path
    raw: dict[str, Any]


def load_raw(path: str | Path) -> dict[str, Any]:
    """The spec file's JSON object. Raises :class:`TrainingError` when it cannot be read."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TrainingError(f"run spec {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TrainingError(f"run spec {path} cannot be read ({exc})") from None
    except ValueError as exc:
        raise TrainingError(f"run spec {path} is not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise TrainingError(f"run spec {path} must hold a JSON object")
    return raw


def _path(raw: dict[str, Any], key: str, what: str, must_exist: bool) -> Path | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise TrainingError(f"run spec: '{key}' must be a file path or null, not {value!r}")
    path = Path(value)
    if must_exist and not path.is_file():
        raise TrainingError(f"{what} {path} does not exist")
    return path


def check(raw: dict[str, Any]) -> Spec:
    """A :class:`Spec` from the spec's JSON, every field checked (parameters through
    :func:`core.training.params.validate`; the files named must exist). Raises :class:`TrainingError`
    naming the first problem."""
    out_dir = raw.get("out_dir")
    if not isinstance(out_dir, str) or not out_dir:
        raise TrainingError("run spec: 'out_dir' (the run's folder) is missing")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise TrainingError(f"run spec: 'kind' must be train or eval, not {kind!r}")
    model = raw.get("model")
    if model not in MODELS:
        raise TrainingError(f"run spec: unknown model {model!r} (known: {', '.join(MODELS)})")
    classes = raw.get("classes")
    if (not isinstance(classes, list) or not classes
            or not all(isinstance(c, str) and c for c in classes) or len(set(classes)) != len(classes)):
        raise TrainingError("run spec: 'classes' must be a list of distinct class names (index i + 1 = classes[i])")
    given = raw.get("manifests")
    if not isinstance(given, dict) or set(given) - set(SPLITS):
        raise TrainingError("run spec: 'manifests' must map train, validation and test to files (or null)")
    manifests = {split: _path(given, split, f"the {split} manifest", True) for split in SPLITS}
    if kind == "train" and manifests["train"] is None:
        raise TrainingError("run spec: a training run needs a train manifest")
    if kind == "eval" and manifests["test"] is None and manifests["validation"] is None:
        raise TrainingError("run spec: an evaluation run needs a test or validation manifest")
    weights = _path(raw, "weights", "weights file", True)
    if kind == "eval" and weights is None:
        raise TrainingError("run spec: an evaluation run needs 'weights' (the model to evaluate)")
    resume = _path(raw, "resume", "checkpoint", True)
    if kind == "eval" and resume is not None:
        raise TrainingError("run spec: an evaluation run has nothing to resume ('resume' must be null)")
    return Spec(raw.get("run_id"), kind, model, tuple(classes), manifests, validate(raw.get("params")), weights,
                resume, Path(out_dir), raw)
