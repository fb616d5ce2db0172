"""Manifests: the images a run reads, one JSON object a line. Pure (no torch, no catalog).

A row::

    {"image_id": 123, "path": "/abs/store/ab/cd/<sha>.png", "width": 2048, "height": 1536,
     "boxes": [[x0, y0, x1, y1, class_index], ...], "negative": false}

Boxes are in the image's pixels, x1/y1 exclusive; ``class_index`` is 1 + the class's position in the
run's class list (0 is the background). ``negative``: a clean bag (no boxes).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from core.errors import TrainingError


def row_problem(row: Any, classes: int | None = None) -> str | None:
    """What is wrong with one manifest row (None: nothing). ``classes``: how many classes the run
    has, to check the class indexes (None: not checked)."""
    if not isinstance(row, dict):
        return "a row must be a JSON object"
    for key in ("image_id", "path", "width", "height", "boxes"):
        if key not in row:
            return f"'{key}' is missing"
    if isinstance(row["image_id"], bool) or not isinstance(row["image_id"], int):
        return f"image_id must be a whole number, not {row['image_id']!r}"
    if not isinstance(row["path"], str) or not row["path"]:
        return "path must be a file path"
    for key in ("width", "height"):
        if isinstance(row[key], bool) or not isinstance(row[key], int) or row[key] < 1:
            return f"{key} must be a whole number of pixels, not {row[key]!r}"
    if not isinstance(row["boxes"], list):
        return "boxes must be a list of [x0, y0, x1, y1, class_index]"
    for n, box in enumerate(row["boxes"], 1):
        if not isinstance(box, (list, tuple)) or len(box) != 5:
            return f"box {n} must be [x0, y0, x1, y1, class_index]"
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in box):
            return f"box {n} has a value that is not a number"
        x0, y0, x1, y1, c = box
        if not (x1 > x0 and y1 > y0):
            return f"box {n} is empty ({x0}, {y0}, {x1}, {y1})"
        if c != int(c) or c < 1 or (classes is not None and c > classes):
            top = f" to {classes}" if classes is not None else " or more"
            return f"box {n}'s class index must be 1{top}, not {c}"
    if "negative" in row and not isinstance(row["negative"], bool):
        return "negative must be true or false"
    if row.get("negative") and row["boxes"]:
        return "a negative image (clean bag) has no boxes"
    return None


def read_manifest(path: str | Path, classes: int | None = None) -> list[dict[str, Any]]:
    """The rows of a manifest, checked. Raises :class:`TrainingError` for a missing file or a bad row
    (naming the file and line). Image files are not opened here."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TrainingError(f"manifest {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TrainingError(f"manifest {path} cannot be read ({exc})") from None
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise TrainingError(f"manifest {path}, line {number}: not a JSON object") from None
        problem = row_problem(row, classes)
        if problem:
            raise TrainingError(f"manifest {path}, line {number}: {problem}")
        rows.append(row)
    return rows


def write_manifest(path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write rows (checked first: nothing is written when one is bad) to ``path`` atomically;
    returns how many. Raises :class:`TrainingError` for a bad row."""
    rows = list(rows)
    for n, row in enumerate(rows, 1):
        problem = row_problem(row)
        if problem:
            raise TrainingError(f"manifest row {n}: {problem}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.part")
    with temp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    os.replace(temp, path)
    return len(rows)
