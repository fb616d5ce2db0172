"""Label checks from what the lab knows about each bag.

XLab knows what was in the scanner: an image's capture step names the item it
holds (and so its class), or no item (a clean bag). The checks compare the
boxes with that, and with the other boxes of the same class and item:

==================  ==========================================================  =====
code                finding                                                     risk
==================  ==========================================================  =====
box_on_clean_bag    a box on an image of a clean bag (its step placed no item)  1.00
box_on_negative     a box on an image labelled as holding no object             0.90
class_not_in_step   a box's class is not the class of the item the step placed  0.90
class_conflict      the same physical item boxed as different classes across    0.80
                    images (the box is of a minority class)
missing_box         no box on an image whose step placed a threat item          0.70
box_count           more boxes than items placed                                0.60
box_size            a box's area or aspect far from its class's boxes           0.40-0.60
class_split         a box of a class that was split (``core.labels.classes``)   0.80
                    and that the split's rule left for review
class_retired       a box of a class retired otherwise (merged)                 0.80
==================  ==========================================================  =====

Rejected boxes count as no box. Sizes use robust statistics per class:
median and MAD of log area and log aspect ratio over the class's latest
:data:`SIZE_SAMPLE` boxes, once it has :data:`SIZE_MIN_BOXES`; a box more than
:data:`SIZE_K` scaled MADs away is flagged. Images with no capture step (a
public data set's) get only the size check.

Each finding is a ``qa_flags`` row with its reason. The checks run inside the
transaction of every label write (``core.labels.annotations``, imports) on the
images it touched; :func:`run_checks` catches up with what arrived otherwise
(ingested DICOS reports, images of clean-bag steps). A finding that no longer
holds is resolved; one a reviewer dismissed is not raised again.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.catalog import Catalog, WriteTransaction
from core.catalog import label_store as store

SIZE_MIN_BOXES = 20
SIZE_SAMPLE = 2000
SIZE_K = 4.0
# A class whose boxes are all the same size has MAD 0; anything 10 % off would be "far".
MIN_LOG_SPREAD = 0.1
_MAD_TO_SIGMA = 1.4826

RISK = {"box_on_clean_bag": 1.0, "box_on_negative": 0.9, "class_not_in_step": 0.9, "class_conflict": 0.8,
        "missing_box": 0.7, "box_count": 0.6, "box_size": 0.4, "class_split": 0.8, "class_retired": 0.8}


@dataclass(frozen=True)
class SizeStats:
    log_area: tuple[float, float]  # median, spread (scaled MAD, at least MIN_LOG_SPREAD)
    log_aspect: tuple[float, float]
    boxes: int

    def deviation(self, w: float, h: float) -> tuple[float, float]:
        """How many spreads the box's log area and log aspect lie from the class's."""
        area, aspect = math.log(w * h), math.log(w / h)
        return (abs(area - self.log_area[0]) / self.log_area[1], abs(aspect - self.log_aspect[0]) / self.log_aspect[1])


def _robust(values: list[float]) -> tuple[float, float]:
    median = statistics.median(values)
    mad = statistics.median(abs(v - median) for v in values)
    return median, max(MIN_LOG_SPREAD, _MAD_TO_SIGMA * mad)


def size_stats(sample: list[tuple[float, float]]) -> SizeStats | None:
    sizes = [(w, h) for w, h in sample if w > 0 and h > 0]
    if len(sizes) < SIZE_MIN_BOXES:
        return None
    return SizeStats(_robust([math.log(w * h) for w, h in sizes]), _robust([math.log(w / h) for w, h in sizes]),
                     len(sizes))


class _Context:
    """Per-class size statistics and per-item class votes, read once per check run."""

    def __init__(self, txn: WriteTransaction):
        self.txn = txn
        self._sizes: dict[int, SizeStats | None] = {}
        self._votes: dict[int, dict[int, int]] = {}
        self._names = {v: k for k, v in store.class_ids(txn).items()}
        self.retired = store.retired_classes(txn)

    def sizes(self, class_id: int) -> SizeStats | None:
        if class_id not in self._sizes:
            self._sizes[class_id] = size_stats(store.class_box_sample(self.txn, class_id, SIZE_SAMPLE))
        return self._sizes[class_id]

    def votes(self, item_id: int) -> dict[int, int]:
        if item_id not in self._votes:
            self._votes[item_id] = store.item_class_votes(self.txn, item_id)
        return self._votes[item_id]

    def name(self, class_id: int | None) -> str:
        return self._names.get(class_id, "(no class)") if class_id is not None else "(no class)"


Finding = tuple[str, float]  # reason, risk


def findings(ctx: _Context, facts: dict[str, Any], boxes: list[dict[str, Any]], negative: bool
             ) -> dict[tuple[int | None, str], Finding]:
    """What the checks find on one image: {(annotation id or None, code): (reason, risk)}."""
    out: dict[tuple[int | None, str], Finding] = {}
    kept = [b for b in boxes if b["qa_state"] != "rejected"]
    stepped = facts.get("step_id") is not None
    item_id = facts.get("item_id")
    clean = stepped and item_id is None
    for b in kept:
        box = f"box #{b['annotation_id']} ({ctx.name(b['class_id'])})"
        if clean:
            out[(b["annotation_id"], "box_on_clean_bag")] = (
                f"{box} on an image of a clean bag: its capture step placed no item", RISK["box_on_clean_bag"])
        elif negative:
            out[(b["annotation_id"], "box_on_negative")] = (
                f"{box} on an image labelled as holding no object", RISK["box_on_negative"])
        if stepped and item_id is not None and b["class_id"] != facts["item_class_id"]:
            out[(b["annotation_id"], "class_not_in_step")] = (
                f"{box}, but the step placed item {facts['item_barcode']} of class {facts['item_class_name']}",
                RISK["class_not_in_step"])
    if stepped and item_id is not None:
        if not kept:
            out[(None, "missing_box")] = (
                f"no box, but the step placed item {facts['item_barcode']} ({facts['item_class_name']})",
                RISK["missing_box"])
        elif len(kept) > 1:
            out[(None, "box_count")] = (f"{len(kept)} boxes, but the step placed 1 item ({facts['item_barcode']})",
                                        RISK["box_count"])
        votes = ctx.votes(item_id)
        if len(votes) > 1:
            majority = max(votes, key=lambda c: (votes[c], c == facts["item_class_id"]))
            spread = ", ".join(f"{ctx.name(c)} {n}" for c, n in sorted(votes.items(), key=lambda kv: -kv[1]))
            for b in kept:
                if b["class_id"] is not None and b["class_id"] != majority:
                    out[(b["annotation_id"], "class_conflict")] = (
                        f"box #{b['annotation_id']} calls item {facts['item_barcode']} {ctx.name(b['class_id'])}; "
                        f"its boxes across images: {spread}", RISK["class_conflict"])
    for b in kept:
        if b["class_id"] in ctx.retired:
            parts = ctx.retired[b["class_id"]]
            box = f"box #{b['annotation_id']} ({ctx.name(b['class_id'])})"
            if parts:
                out[(b["annotation_id"], "class_split")] = (
                    f"class split: review — {box}: its class was split into {', '.join(parts)}; re-class it",
                    RISK["class_split"])
            else:
                out[(b["annotation_id"], "class_retired")] = (
                    f"{box}: its class is retired; re-class it", RISK["class_retired"])
    for b in kept:
        if b["class_id"] is None:
            continue
        stats = ctx.sizes(b["class_id"])
        w, h = b["x1"] - b["x0"], b["y1"] - b["y0"]
        if stats is None or w <= 0 or h <= 0:
            continue
        off_area, off_aspect = stats.deviation(w, h)
        worst = max(off_area, off_aspect)
        if worst > SIZE_K:
            typical = math.exp(stats.log_area[0])
            what = (f"area {w * h:,.0f} px² (class median {typical:,.0f} px²)" if off_area >= off_aspect
                    else f"aspect {w / h:.2f} (class median {math.exp(stats.log_aspect[0]):.2f})")
            out[(b["annotation_id"], "box_size")] = (
                f"box #{b['annotation_id']} ({ctx.name(b['class_id'])}): {what}, "
                f"{worst:.1f} spreads from {stats.boxes} boxes of its class", min(0.6, RISK["box_size"] + worst / 100))
    return out


def check_images(txn: WriteTransaction, image_ids: Sequence[int]) -> dict[str, int]:
    """Run the checks on ``image_ids`` in the caller's transaction and bring their
    flags up to date. Returns the open flags of those images per code."""
    ids = sorted(set(image_ids))
    if not ids:
        return {}
    ctx = _Context(txn)
    facts = store.capture_facts(txn, ids)
    boxes: dict[int, list[dict[str, Any]]] = {}
    for b in store.current_boxes(txn, ids):
        boxes.setdefault(b["image_id"], []).append(b)
    negatives = store.negatives(txn, ids)
    existing = store.flags_of(txn, ids, ("open", "dismissed"))
    open_flags = {(f["image_id"], f["annotation_id"], f["code"]): f for f in existing if f["state"] == "open"}
    dismissed = {(f["image_id"], f["annotation_id"], f["code"]) for f in existing if f["state"] == "dismissed"}
    new, seen = [], set()
    for image_id in ids:
        if image_id not in facts:
            continue
        for (annotation_id, code), (reason, risk) in findings(ctx, facts[image_id], boxes.get(image_id, []),
                                                              image_id in negatives).items():
            key = (image_id, annotation_id, code)
            seen.add(key)
            if key in open_flags:
                if (open_flags[key]["reason"], open_flags[key]["risk"]) != (reason, risk):
                    store.update_flag(txn, open_flags[key]["id"], reason, risk)
            elif key not in dismissed:
                new.append((image_id, annotation_id, code, reason, risk))
    store.insert_flags(txn, new)
    store.close_flags(txn, [f["id"] for key, f in open_flags.items() if key not in seen], "resolved")
    counts: dict[str, int] = {}
    for _, _, code in seen - dismissed:
        counts[code] = counts.get(code, 0) + 1
    return counts


def run_checks(catalog: Catalog, *, full: bool = False, actor: str | None = None, batch: int = 2000) -> int:
    """Check the images whose labels changed, or that arrived on a capture step,
    since the last run (``full``: every image with labels or a step). Returns
    how many images were checked. One transaction per ``batch`` images."""
    seq_now, last_image = store.clock(catalog), store.last_image_id(catalog)
    since_seq, since_image = (0, 0) if full else store.checked_marks(catalog)
    ids = store.images_to_check(catalog, since_seq, since_image)
    for start in range(0, len(ids), batch):
        with catalog.write(actor or "qa") as txn:
            check_images(txn, ids[start:start + batch])
    with catalog.write(actor or "qa") as txn:
        store.set_checked_marks(txn, seq_now, last_image)
    return len(ids)


def queue(catalog: Catalog, state: str | None = "open", limit: int = 500) -> list[dict[str, Any]]:
    """Flags, riskiest first: the review queue."""
    return store.flag_queue(catalog, state, limit)


def dismiss(catalog: Catalog, flag_id: int, *, actor: str | None = None) -> None:
    """A reviewer looked and found the labels right: the finding is not raised again."""
    from core.errors import LabelError

    with catalog.write(actor) as txn:
        row = store.flag(txn, flag_id)
        if row is None:
            raise LabelError(f"no QA flag #{flag_id}")
        if row["state"] != "open":
            raise LabelError(f"QA flag #{flag_id} is {row['state']} already")
        store.close_flags(txn, [flag_id], "dismissed")
        txn.audit("dismiss", "qa_flags", flag_id, {"state": "open"}, {"state": "dismissed"})
