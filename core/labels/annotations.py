"""Annotations with history: add, edit, delete and review boxes; read them as of any moment.

Every change is a new revision (``core.catalog.label_store`` describes the
model); nothing is overwritten, so ``labels_of(image, as_of=seq)`` returns what
an image's labels were when the label clock read ``seq`` (a frozen data set
records that number). Each write is one catalog transaction with an audit
entry, and runs the label checks (``core.labels.qa``) on the image it touched.

Threads: any (writes go through ``Catalog.write``, reads through the calling
thread's read connection).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from core.catalog import Catalog, WriteTransaction
from core.catalog import label_store as store
from core.catalog.db import utc_now
from core.errors import LabelError

SOURCES = ("scanner_report", "ground_truth", "import", "manual", "model")
QA_STATES = ("unreviewed", "accepted", "rejected", "corrected")
# A box may overhang its image by this much (pixel edges, rounding of other tools).
EDGE_TOLERANCE_PX = 0.5


@dataclass(frozen=True)
class Box:
    """One box as of one revision. ``class_name`` is None when its label maps to no class."""

    annotation_id: int
    revision_id: int
    seq: int
    image_id: int
    class_id: int | None
    class_name: str | None
    label: str
    x0: float
    y0: float
    x1: float
    y1: float
    iscrowd: bool
    difficult: bool
    truncated: bool
    score: float | None
    rotation: float
    source: str
    qa_state: str
    deleted: bool
    actor: str
    created_at: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Box":
        values = {f.name: row[f.name] for f in fields(cls)}
        for flag in ("iscrowd", "difficult", "truncated", "deleted"):
            values[flag] = bool(values[flag])
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class ImageLabels:
    """An image's labels: its live boxes (rejected ones included, marked so) and
    whether it is a labelled negative. ``as_of``: the clock value read at (None: now)."""

    image_id: int
    negative: bool
    boxes: tuple[Box, ...]
    as_of: int | None = None

    @property
    def kept(self) -> tuple[Box, ...]:
        """The boxes a data set uses: not rejected."""
        return tuple(b for b in self.boxes if b.qa_state != "rejected")


# -- writing -----------------------------------------------------------------------------


def write_revisions(txn: WriteTransaction, rows: list[dict[str, Any]], import_id: int | None = None) -> list[int]:
    """Append revisions in the caller's transaction; a row without ``annotation_id``
    is a new box. Returns the rows' annotation ids. Rows are complete boxes
    (``label_store.BOX_FIELDS``)."""
    if not rows:
        return []
    new = [r for r in rows if r.get("annotation_id") is None]
    if new:
        first_id = store.reserve_annotation_ids(txn, len(new))
        for n, row in enumerate(new):
            row["annotation_id"] = first_id + n
    first_seq = store.reserve_seqs(txn, len(rows))
    now = utc_now()
    for n, row in enumerate(rows):
        row.update(seq=first_seq + n, actor=txn.actor, created_at=now, import_id=import_id)
        row.setdefault("note", "")
    store.insert_revisions(txn, rows)
    return [r["annotation_id"] for r in rows]


def _check_coords(x0: float, y0: float, x1: float, y1: float, image: dict[str, Any]) -> tuple[float, ...]:
    coords = tuple(float(v) for v in (x0, y0, x1, y1))
    if not all(math.isfinite(v) for v in coords):
        raise LabelError(f"box corners must be numbers (got {coords})")
    x0, y0, x1, y1 = coords
    if not (x1 > x0 and y1 > y0):
        raise LabelError(f"a box needs x1 > x0 and y1 > y0 (got {x0:g}, {y0:g} - {x1:g}, {y1:g})")
    w, h = image.get("width"), image.get("height")
    t = EDGE_TOLERANCE_PX
    if w and h and (x0 < -t or y0 < -t or x1 > w + t or y1 > h + t):
        raise LabelError(f"box {x0:g}, {y0:g} - {x1:g}, {y1:g} lies outside image #{image['id']} ({w} x {h} pixels)")
    return coords


def _class_id(txn: WriteTransaction, class_name: str) -> int:
    ids = store.class_ids(txn)
    if class_name not in ids:
        raise LabelError(f"no threat class named '{class_name}' (known: {', '.join(sorted(ids)) or 'none'})")
    return ids[class_name]


def _image(txn: WriteTransaction, image_id: int) -> dict[str, Any]:
    image = store.image(txn, image_id)
    if image is None:
        raise LabelError(f"no image #{image_id} in the catalog")
    return image


def _current(txn: WriteTransaction, annotation_id: int) -> dict[str, Any]:
    row = store.current_box(txn, annotation_id)
    if row is None:
        raise LabelError(f"no box #{annotation_id} in the catalog")
    if row["deleted"]:
        raise LabelError(f"box #{annotation_id} was deleted (by {row['actor']} at {row['created_at']})")
    return row


def _box_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in store.BOX_FIELDS} | {"annotation_id": row["annotation_id"]}


def _after_write(txn: WriteTransaction, image_ids: Sequence[int]) -> None:
    from core.labels.qa import check_images

    check_images(txn, image_ids)


def add_box(catalog: Catalog, image_id: int, class_name: str, x0: float, y0: float, x1: float, y1: float, *,
            source: str = "manual", qa_state: str = "unreviewed", iscrowd: bool = False, difficult: bool = False,
            truncated: bool = False, score: float | None = None, rotation: float = 0.0, note: str = "",
            actor: str | None = None) -> Box:
    """Draw a new box on an image (pixel corners, x1/y1 exclusive)."""
    catalog.require("labels")
    _check_choice(source, SOURCES, "source")
    _check_choice(qa_state, QA_STATES, "review state")
    with catalog.write(actor) as txn:
        image = _image(txn, image_id)
        coords = _check_coords(x0, y0, x1, y1, image)
        row = {"image_id": image_id, "class_id": _class_id(txn, class_name), "label": class_name,
               "x0": coords[0], "y0": coords[1], "x1": coords[2], "y1": coords[3], "iscrowd": int(iscrowd),
               "difficult": int(difficult), "truncated": int(truncated), "score": score, "rotation": float(rotation),
               "source": source, "qa_state": qa_state, "deleted": 0, "note": note}
        (annotation_id,) = write_revisions(txn, [row])
        txn.audit("add", "annotations", annotation_id, None, _box_fields(row))
        _after_write(txn, [image_id])
    return labels_box(catalog, annotation_id)


def edit_box(catalog: Catalog, annotation_id: int, *, class_name: str | None = None,
             coords: tuple[float, float, float, float] | None = None, qa_state: str | None = None,
             source: str = "manual", note: str = "", actor: str | None = None) -> Box:
    """Move, resize or re-class a box (a new revision). A changed box becomes
    ``corrected`` unless ``qa_state`` says otherwise."""
    catalog.require("labels")
    if qa_state is not None:
        _check_choice(qa_state, QA_STATES, "review state")
    _check_choice(source, SOURCES, "source")
    with catalog.write(actor) as txn:
        before = _current(txn, annotation_id)
        row = _box_fields(before)
        if coords is not None:
            x0, y0, x1, y1 = _check_coords(*coords, _image(txn, before["image_id"]))
            row.update(x0=x0, y0=y0, x1=x1, y1=y1)
        if class_name is not None:
            row.update(class_id=_class_id(txn, class_name), label=class_name)
        changed = any(row[k] != before[k] for k in ("x0", "y0", "x1", "y1", "class_id"))
        row["qa_state"] = qa_state or ("corrected" if changed else before["qa_state"])
        row["source"] = source if changed else before["source"]
        row["note"] = note
        if all(row[k] == before[k] for k in store.BOX_FIELDS):
            return Box.from_row(before)
        write_revisions(txn, [row])
        txn.audit("edit", "annotations", annotation_id, _box_fields(before), _box_fields(row))
        _after_write(txn, [before["image_id"]])
    return labels_box(catalog, annotation_id)


def delete_box(catalog: Catalog, annotation_id: int, *, note: str = "", actor: str | None = None) -> None:
    """Delete a box: a deleting revision (the box stays readable as of earlier moments)."""
    with catalog.write(actor) as txn:
        before = _current(txn, annotation_id)
        row = _box_fields(before) | {"deleted": 1, "note": note}
        write_revisions(txn, [row])
        txn.audit("delete", "annotations", annotation_id, _box_fields(before), None)
        _after_write(txn, [before["image_id"]])


def set_qa_state(catalog: Catalog, annotation_id: int, qa_state: str, *, note: str = "",
                 actor: str | None = None) -> Box:
    """A reviewer's verdict on a box: accepted, rejected, corrected (or back to unreviewed)."""
    catalog.require("labels")
    _check_choice(qa_state, QA_STATES, "review state")
    with catalog.write(actor) as txn:
        before = _current(txn, annotation_id)
        if before["qa_state"] != qa_state:
            row = _box_fields(before) | {"qa_state": qa_state, "note": note}
            write_revisions(txn, [row])
            txn.audit("review", "annotations", annotation_id, {"qa_state": before["qa_state"]}, {"qa_state": qa_state})
            _after_write(txn, [before["image_id"]])
    return labels_box(catalog, annotation_id)


def set_negative(catalog: Catalog, image_id: int, negative: bool, *, source: str = "manual",
                 actor: str | None = None) -> None:
    """Mark an image as a labelled negative (no object in it), or take the mark away."""
    catalog.require("labels")
    _check_choice(source, SOURCES, "source")
    with catalog.write(actor) as txn:
        _image(txn, image_id)
        was = store.negative_as_of(txn, image_id, None)
        if was == negative:
            return
        store.insert_image_label(txn, image_id, negative, source, store.reserve_seqs(txn, 1))
        txn.audit("negative" if negative else "not_negative", "images", image_id, {"negative": was}, {"negative": negative})
        _after_write(txn, [image_id])


def _check_choice(value: str, choices: tuple[str, ...], what: str) -> None:
    if value not in choices:
        raise LabelError(f"unknown {what} '{value}' (use {', '.join(choices)})")


# -- reading ---------------------------------------------------------------------------------


def labels_box(catalog: Catalog, annotation_id: int) -> Box:
    row = store.current_box(catalog, annotation_id)
    if row is None:
        raise LabelError(f"no box #{annotation_id} in the catalog")
    return Box.from_row(row)


def clock(catalog: Catalog) -> int:
    """The label clock now: pass it as ``as_of`` later to read today's labels."""
    return store.clock(catalog)


def labels_of(catalog: Catalog, image_id: int, as_of: int | None = None) -> ImageLabels:
    """An image's labels now, or as they were when the label clock read ``as_of``."""
    if store.image(catalog, image_id) is None:
        raise LabelError(f"no image #{image_id} in the catalog")
    rows = store.current_boxes(catalog, [image_id]) if as_of is None else store.boxes_as_of(catalog, image_id, as_of)
    return ImageLabels(image_id, store.negative_as_of(catalog, image_id, as_of),
                       tuple(Box.from_row(r) for r in rows), as_of)


def history(catalog: Catalog, image_id: int) -> list[Box]:
    """Every revision of the image's boxes, oldest first."""
    return [Box.from_row(r) for r in store.history(catalog, image_id)]


def class_counts(catalog: Catalog) -> dict[str | None, dict[str, int]]:
    """Live boxes per class (None: labels mapped to no class) and review state, from the counters."""
    out: dict[str | None, dict[str, int]] = {}
    for r in store.class_counts(catalog):
        out.setdefault(r["class_name"], {})[r["qa_state"]] = r["boxes"]
    return out


def image_counts(catalog: Catalog, image_ids: Sequence[int]) -> dict[int, int]:
    """Live, not rejected, boxes per image (0 for images with none), from the counters."""
    counted = store.image_box_counts(catalog, image_ids)
    return {i: counted.get(i, 0) for i in image_ids}
