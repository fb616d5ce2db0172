"""Annotation file formats: each module reads files into the neutral label model
(``core.labels.model``) and writes it back.

Every format module has ``read(path) -> ReadResult`` (never raises on bad input:
problems come back as ``FormatProblem``s) and ``write(labels, out_dir, **options)
-> list[Path]`` (the files it wrote; images are the caller's to copy). Formats
touch no catalog and no Qt.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from core.labels.model import LabelSet, ReadResult

FORMATS = ("coco", "yolo", "voc", "cvat", "labelstudio")


def module(name: str) -> ModuleType:
    """The format module for ``name`` (one of ``FORMATS``), imported on first use."""
    if name not in FORMATS:
        raise ValueError(f"unknown annotation format {name!r}; use one of {', '.join(FORMATS)}")
    return importlib.import_module(f"core.labels.formats.{name}")


def read(name: str, path: Path) -> ReadResult:
    return module(name).read(Path(path))


def write(name: str, labels: LabelSet, out_dir: Path, **options) -> list[Path]:
    return module(name).write(labels, Path(out_dir), **options)
