"""A run's training parameters: their defaults and their checks. Pure (no torch), so the parent
checks a run's parameters when it queues it, and the run process checks them again when it starts.

``validate`` returns every parameter, the defaults filled in, so a run's record holds the values it
ran with even after a default changes.
"""

from __future__ import annotations

import math
from typing import Any

from core.errors import TrainingError

DEFAULTS: dict[str, Any] = {
    "epochs": 12,
    "batch_size": 8,
    # AdamW learns detectors from scratch in fewer epochs than SGD (retinanet_tiny on the tests'
    # scans, 8 epochs: AP50 0.71 with AdamW at 0.003 against 0.58 with SGD at 0.01). SGD's rate at
    # batch_size 8 would be 0.01 (torchvision's recipe: 0.02 at 16).
    "lr": 0.002,
    "optimizer": "adamw",
    "momentum": 0.9,  # SGD only
    "weight_decay": 1e-4,
    # Linear ramp from lr/100 over these steps, then a cosine decay to zero at the last step.
    "warmup_steps": 100,
    # Longest image side, in pixels, that the data loader resizes every image to.
    "image_size": 512,
    # None: the run picks one and reports it in its 'start' event (the queue always sets one).
    "seed": None,
    "workers": 2,
    # CPU threads for torch in the run process (0: torch's default, one per core). On a machine
    # shared with other work, 1 is steadier: spinning OpenMP threads stall each other there.
    "threads": 0,
    "amp": True,
    "device": "auto",
    "augment": True,
    # Augmentation strengths (with augment): zoom by 1 ± scale_jitter, shift by ± translate of the side.
    "scale_jitter": 0.2,
    "translate": 0.1,
    # Validation AP every this many epochs (0: only the final detections).
    "validate_every": 1,
    # Gradient norm clip (0: none); detectors trained from scratch blow up without one now and then.
    "clip_grad": 10.0,
    # Also checkpoint within an epoch after this many minutes (a crash loses at most that much).
    "checkpoint_minutes": 30.0,
    # Detections written for the parent: the low ones too, so it can choose the operating threshold.
    "score_threshold": 0.01,
    "max_detections": 100,
}

_CHOICES = {"optimizer": ("sgd", "adamw"), "device": ("auto", "cpu", "cuda")}
# name: (type, lowest, highest) - inclusive bounds, None for none.
_NUMBERS: dict[str, tuple[type, float | None, float | None]] = {
    "epochs": (int, 1, 10_000),
    "batch_size": (int, 1, 4096),
    "lr": (float, 1e-8, 10.0),
    "momentum": (float, 0.0, 0.999),
    "weight_decay": (float, 0.0, 1.0),
    "warmup_steps": (int, 0, None),
    "image_size": (int, 32, 8192),
    "seed": (int, 0, 2 ** 63 - 1),
    "workers": (int, 0, 256),
    "threads": (int, 0, 1024),
    "scale_jitter": (float, 0.0, 0.9),
    "translate": (float, 0.0, 0.5),
    "validate_every": (int, 0, None),
    "clip_grad": (float, 0.0, None),
    "checkpoint_minutes": (float, 0.1, None),
    "score_threshold": (float, 0.0, 1.0),
    "max_detections": (int, 1, 10_000),
}
_FLAGS = ("amp", "augment")


def _number(name: str, value: Any) -> int | float:
    kind, low, high = _NUMBERS[name]
    wanted = "a whole number" if kind is int else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or (kind is int and isinstance(value, float) and not value.is_integer()):
        raise TrainingError(f"training parameter '{name}' must be {wanted}, not {value!r}")
    value = kind(value)
    if (low is not None and value < low) or (high is not None and value > high):
        span = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise TrainingError(f"training parameter '{name}' must be {span}, not {value!r}")
    return value


def validate(params: dict[str, Any] | None) -> dict[str, Any]:
    """Every parameter, checked, with the defaults filled in. Raises :class:`TrainingError` naming the
    first parameter that is unknown or out of range, and what it takes. Pure; any thread."""
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise TrainingError(f"training parameters must be a mapping of names to values, not {type(params).__name__}")
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise TrainingError(f"unknown training parameter '{unknown[0]}' (known: {', '.join(sorted(DEFAULTS))})")
    out = dict(DEFAULTS)
    for name, value in params.items():
        if name == "seed" and value is None:
            out[name] = None
        elif name in _NUMBERS:
            out[name] = _number(name, value)
        elif name in _FLAGS:
            if not isinstance(value, bool):
                raise TrainingError(f"training parameter '{name}' must be true or false, not {value!r}")
            out[name] = value
        elif name in _CHOICES:
            if value not in _CHOICES[name]:
                raise TrainingError(f"training parameter '{name}' must be one of {', '.join(_CHOICES[name])}, "
                                    f"not {value!r}")
            out[name] = value
    return out
