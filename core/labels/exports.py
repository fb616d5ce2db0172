"""Annotation exports: catalog labels → the neutral model → a format's files, with the images.

What is exported: the current labels of every labelled image (a live box or
a labelled negative; unlabelled images are left out and counted), or those of
chosen images, as of a clock value or as chosen revisions (a frozen data
set's). Rejected boxes are never exported.

Layout: the format's files in ``DIR`` (``annotations.json`` for COCO), each
image copied (or hard-linked, ``link=True``) to ``DIR/<file_name>`` (YOLO:
``DIR/images/<file_name>``), and ``DIR/manifest.json`` with every image's content
hash. ``file_name`` is the image's path relative to the folder it was imported
from, or its original name for a scanner's image; a name two images share gets
the first 12 characters of its content hash in front.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from core.catalog import Catalog
from core.catalog import label_store as store
from core.catalog.db import utc_now
from core.errors import LabelError
from core.labels.model import LabelBox, LabelImage, LabelSet

IMAGE_FOLDER = {"yolo": "images"}
MANIFEST = "manifest.json"


@dataclass
class ExportReport:
    format: str
    out_dir: str
    images: int = 0
    boxes: int = 0
    negatives: int = 0
    unlabelled_left_out: int = 0
    copied: int = 0
    linked: int = 0
    label_clock: int = 0
    files: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _file_names(rows: list[dict[str, Any]]) -> dict[int, str]:
    names: dict[int, str] = {}
    used: set[str] = set()
    for r in rows:
        name = r["rel_path"] or r["original_name"] or f"{r['sha256']}{Path(r['store_path']).suffix}"
        p = PurePosixPath(name.replace("\\", "/").lstrip("/"))
        if ".." in p.parts:  # never written outside the export folder
            p = PurePosixPath(p.name)
        name = p.as_posix()
        if name in used:
            name = (p.parent / f"{r['sha256'][:12]}_{p.name}").as_posix()
        used.add(name)
        names[r["id"]] = name
    return names


def _box(row: dict[str, Any]) -> LabelBox:
    return LabelBox(row["class_name"] or row["label"], row["x0"], row["y0"], row["x1"], row["y1"],
                    iscrowd=bool(row["iscrowd"]), difficult=bool(row["difficult"]), truncated=bool(row["truncated"]),
                    score=row["score"], ext_id=str(row["annotation_id"]))


def label_set(catalog: Catalog, image_ids: Sequence[int] | None = None, *, revision_ids: Sequence[int] | None = None,
              as_of: int | None = None) -> tuple[LabelSet, list[dict[str, Any]]]:
    """The labels to export, and the exported images' rows (with their ``file_name``).

    ``revision_ids``: exactly these box revisions (deleting and rejected ones
    left out); their images are exported even if ``image_ids`` omits them.
    ``as_of``: labels as they were at that clock value. Default: current labels.
    """
    if revision_ids is not None:
        chosen = store.revisions(catalog, revision_ids)
        ids = sorted(set(image_ids or ()) | {r["image_id"] for r in chosen})
        rows = store.export_images(catalog, ids)
        boxes: dict[int, list[dict[str, Any]]] = {}
        for r in chosen:
            boxes.setdefault(r["image_id"], []).append(r)
    else:
        rows = store.export_images(catalog, image_ids)
        ids = [r["id"] for r in rows]
        boxes = {}
        if as_of is None:
            for r in store.current_boxes(catalog, ids):
                boxes.setdefault(r["image_id"], []).append(r)
        else:
            for image_id in ids:
                boxes[image_id] = store.boxes_as_of(catalog, image_id, as_of)
    if image_ids is not None:
        missing = sorted(set(image_ids) - {r["id"] for r in rows})
        if missing:
            raise LabelError(f"no image #{', #'.join(map(str, missing[:10]))} in the catalog")
    if as_of is None:
        negatives = store.negatives(catalog, [r["id"] for r in rows])
    else:
        negatives = {r["id"] for r in rows if store.negative_as_of(catalog, r["id"], as_of)}
    names = _file_names(rows)
    class_ids = store.class_ids(catalog)
    categories = sorted(class_ids, key=class_ids.get)  # lab class order: stable class indices across exports
    images = []
    for r in rows:
        kept = [b for b in boxes.get(r["id"], []) if not b["deleted"] and b["qa_state"] != "rejected"]
        labelled = tuple(_box(b) for b in kept)
        for b in labelled:
            if b.label not in categories:
                categories.append(b.label)
        r["file_name"] = names[r["id"]]
        images.append(LabelImage(names[r["id"]], r["width"], r["height"], labelled,
                                 negative=not labelled and r["id"] in negatives, sha256=r["sha256"], ext_id=str(r["id"])))
    return LabelSet(tuple(images), tuple(categories)), rows


def place_image(source: Path, target: Path, link: bool) -> bool:
    """Copy (or hard-link) one image; True when linked."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if link:
        try:
            os.link(source, target)
            return True
        except OSError:
            pass  # another filesystem, or links not allowed: copy instead
    shutil.copyfile(source, target)
    return False


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export_labels(lab, fmt: str, out_dir: str | Path, *, image_ids: Sequence[int] | None = None,
                  revision_ids: Sequence[int] | None = None, as_of: int | None = None, link: bool = False,
                  with_images: bool = True) -> ExportReport:
    """Write the labels (see :func:`label_set`) in ``fmt`` into ``out_dir`` (new or empty),
    with the images and ``manifest.json``."""
    from core.labels import formats

    if fmt not in formats.FORMATS:
        raise LabelError(f"unknown format '{fmt}' (use {', '.join(formats.FORMATS)})")
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise LabelError(f"{out} is not an empty folder; export into a new one (nothing there is overwritten)")
    catalog: Catalog = lab.catalog
    clock = store.clock(catalog) if as_of is None else as_of
    labels, rows = label_set(catalog, image_ids, revision_ids=revision_ids, as_of=as_of)
    out.mkdir(parents=True, exist_ok=True)
    report = ExportReport(fmt, str(out), label_clock=clock)
    try:
        written = formats.write(fmt, labels, out)
    except ValueError as exc:
        raise LabelError(f"cannot write {fmt}: {exc}") from exc
    image_root = out / IMAGE_FOLDER.get(fmt, "")
    manifest_images = []
    for r in rows:
        if with_images:
            linked = place_image(lab.paths.store / r["store_path"], image_root / r["file_name"], link)
            report.linked += linked
            report.copied += not linked
        manifest_images.append({"file_name": r["file_name"], "sha256": r["sha256"], "image_id": r["id"]})
    report.images = len(labels.images)
    report.boxes = sum(len(im.boxes) for im in labels.images)
    report.negatives = sum(im.negative for im in labels.images)
    if image_ids is None and revision_ids is None:
        report.unlabelled_left_out = store.unlabelled_count(catalog)
    report.files = [str(p) for p in written]
    manifest = {
        "format": fmt, "exported_at": utc_now(), "label_clock": clock,
        "image_folder": IMAGE_FOLDER.get(fmt, ""), "images": manifest_images,
        "files": {Path(p).relative_to(out).as_posix(): _sha256(Path(p)) for p in written},
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1))
    report.files.append(str(out / MANIFEST))
    return report
