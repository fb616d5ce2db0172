"""Where the shipped resources (demo inventory, plan specs, icons) live."""

from __future__ import annotations

import sys
from pathlib import Path


def resources_dir() -> Path:
    bundled = getattr(sys, "_MEIPASS", None)
    if bundled:
        return Path(bundled) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def resource(*parts: str) -> Path:
    return resources_dir().joinpath(*parts)
