"""Label review: the queue by risk, one image's review sheet, whole-image verdicts, undo.

The queue puts first the images with open QA flags (riskiest flag first,
``core.labels.qa``), then images with unreviewed boxes (oldest image first).
Each review action is a revision (``core.labels.annotations``); undo is one
more revision that restores the box as it was (:func:`restore`), so the
history keeps both the action and its undoing.

Threads: any (writes through ``Catalog.write``, reads on the caller's read connection).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from core.catalog import Catalog
from core.catalog import label_store as store
from core.errors import LabelError
from core.labels import annotations as A

# What the queue lists (the reviewer-state filter).
QUEUE_STATES = ("to review", "flagged", "unreviewed", "reviewed")
PAGE = 500

# Audit actions of label work, as the per-reviewer counts name them.
_ACTION_NAMES = {"add": "drawn", "edit": "corrected", "delete": "deleted", "undo": "undone"}

# (annotation id, the revision to go back to; None: the action drew the box, so undo deletes it)
UndoStep = tuple[int, int | None]


@dataclass(frozen=True)
class QueueFilter:
    state: str = "to review"
    class_name: str | None = None
    flag_code: str | None = None  # only with state "to review" or "flagged"
    source: str | None = None


@dataclass(frozen=True)
class ImageReview:
    """Everything the review shows of one image (no pixels)."""

    image_id: int
    facts: dict[str, Any]
    labels: A.ImageLabels
    flags: tuple[dict[str, Any], ...]

    @property
    def unreviewed(self) -> tuple[A.Box, ...]:
        return tuple(b for b in self.labels.boxes if b.qa_state == "unreviewed")


@dataclass(frozen=True)
class ReviewProgress:
    boxes: int
    reviewed: int
    flagged_images: int
    negatives: int
    by_reviewer: dict[str, dict[str, int]] = field(default_factory=dict)  # actor -> {accepted: n, ...}


def class_names(catalog: Catalog) -> list[str]:
    """Every threat class a box may be given, by name."""
    return sorted(store.class_ids(catalog))


def queue_page(catalog: Catalog, filt: QueueFilter = QueueFilter(), limit: int = PAGE) -> list[dict[str, Any]]:
    """One page of the review queue, in review order (see the module docstring).

    Rows: image_id, original_name, rel_path, store_path, width, height, item_class, boxes, unreviewed,
    flags, risk (None: no open flag), codes (open flags' codes, comma-separated).
    """
    if filt.state not in QUEUE_STATES:
        raise LabelError(f"unknown queue '{filt.state}' (use {', '.join(QUEUE_STATES)})")
    class_id = None
    if filt.class_name is not None:
        ids = store.class_ids(catalog)
        if filt.class_name not in ids:
            raise LabelError(f"no threat class named '{filt.class_name}'")
        class_id = ids[filt.class_name]
    box = {"class_id": class_id, "source": filt.source}
    order: list[int] = []
    if filt.state in ("to review", "flagged"):
        order += [i for i, _ in store.flagged_image_page(catalog, code=filt.flag_code, limit=limit, **box)]
    if filt.state == "unreviewed" or (filt.state == "to review" and filt.flag_code is None):
        order += store.box_image_page(catalog, qa_state="unreviewed", reviewed=False,
                                      without_open_flags=filt.state == "to review", limit=limit - len(order), **box)
    if filt.state == "reviewed":
        order += store.box_image_page(catalog, qa_state=None, reviewed=True, without_open_flags=True, limit=limit,
                                      **box)
    rows = store.queue_rows(catalog, order)
    return [rows[i] for i in order if i in rows]


def image_review(catalog: Catalog, image_id: int) -> ImageReview:
    facts = store.review_facts(catalog, image_id)
    if facts is None:
        raise LabelError(f"no image #{image_id} in the catalog")
    flags = sorted(store.flags_of(catalog, [image_id]), key=lambda f: (-f["risk"], f["id"]))
    return ImageReview(image_id, facts, A.labels_of(catalog, image_id), tuple(flags))


def progress(catalog: Catalog) -> ReviewProgress:
    """Boxes reviewed of all live boxes (from the counters), images with open
    flags, and each person's label actions (accepted, rejected, corrected, drawn,
    deleted, undone) from the audit log."""
    totals = store.review_totals(catalog)
    by_reviewer: dict[str, dict[str, int]] = {}
    for r in store.review_actions_by_actor(catalog):
        if r["action"] == "review":
            name = r["qa_state"] or "reviewed"
        elif r["action"] in _ACTION_NAMES:
            name = _ACTION_NAMES[r["action"]]
        else:
            continue
        counts = by_reviewer.setdefault(r["actor"], {})
        counts[name] = counts.get(name, 0) + r["n"]
    return ReviewProgress(totals["boxes"], totals["reviewed"], totals["flagged_images"], totals["negatives"],
                          by_reviewer)


def review_image(catalog: Catalog, image_id: int, qa_state: str, *, actor: str | None = None) -> list[UndoStep]:
    """A verdict on every unreviewed box of an image, in one transaction.
    Returns what :func:`restore` needs to undo it (empty: nothing was unreviewed)."""
    catalog.require("labels")
    from core.labels.qa import check_images

    if qa_state not in A.QA_STATES or qa_state == "unreviewed":
        raise LabelError(f"a verdict is one of accepted, rejected, corrected (got '{qa_state}')")
    with catalog.write(actor) as txn:
        if store.image(txn, image_id) is None:
            raise LabelError(f"no image #{image_id} in the catalog")
        before = [b for b in store.current_boxes(txn, [image_id]) if b["qa_state"] == "unreviewed"]
        if not before:
            return []
        rows = [{k: b[k] for k in store.BOX_FIELDS} | {"annotation_id": b["annotation_id"], "qa_state": qa_state,
                                                        "note": "whole image"} for b in before]
        A.write_revisions(txn, rows)
        for b in before:
            txn.audit("review", "annotations", b["annotation_id"], {"qa_state": "unreviewed"}, {"qa_state": qa_state})
        check_images(txn, [image_id])
    return [(b["annotation_id"], b["revision_id"]) for b in before]


def restore(catalog: Catalog, steps: Sequence[UndoStep], *, actor: str | None = None) -> list[int]:
    """Undo: each box becomes again what the given earlier revision says (a new
    revision; a box the undone action drew is deleted). One transaction.
    Returns the images touched."""
    from core.labels.qa import check_images

    with catalog.write(actor) as txn:
        wanted = {r["revision_id"]: r for r in store.revisions(txn, [rev for _, rev in steps if rev is not None])}
        rows, images = [], set()
        for annotation_id, revision_id in steps:
            now = store.current_box(txn, annotation_id)
            if now is None:
                raise LabelError(f"no box #{annotation_id} in the catalog")
            if revision_id is None:
                old = dict(now) | {"deleted": 1}
            else:
                old = wanted.get(revision_id)
                if old is None or old["annotation_id"] != annotation_id:
                    raise LabelError(f"revision #{revision_id} is not one of box #{annotation_id}'s")
            row = {k: old[k] for k in store.BOX_FIELDS} | {"annotation_id": annotation_id,
                                                           "note": "undo: drawn by mistake" if revision_id is None
                                                           else f"undo: back to revision #{revision_id}"}
            if all(row[k] == now[k] for k in store.BOX_FIELDS):
                continue
            rows.append(row)
            images.add(now["image_id"])
            txn.audit("undo", "annotations", annotation_id, {k: now[k] for k in store.BOX_FIELDS},
                      {k: row[k] for k in store.BOX_FIELDS})
        A.write_revisions(txn, rows)
        check_images(txn, sorted(images))
    return sorted(images)
