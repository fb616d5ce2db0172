"""COCO-style detection metrics (AP, AR), computed by XLab with numpy.

The numbers are pycocotools' ``COCOeval(iouType="bbox")``, to 1e-6 (tests
compare every entry of the precision and recall arrays with pycocotools and
faster-coco-eval on generated cases). What that takes, rule by rule:

* Images are every image of the ground truth, categories every category, both
  in ascending id order; a detection is kept only among the 100 best-scored of
  its (image, category), ranked by a stable sort on ``-score`` (ties keep the
  file's order).
* IoU is box IoU in float64 with pycocotools' exact arithmetic; for a crowd
  region (``iscrowd=1``) it is intersection / detection area. Crowd regions
  are always ignored: a detection matched to one is neither a true nor a false
  positive, and several detections may match the same crowd region. A
  ground-truth ``ignore`` key has no effect (pycocotools overwrites it with
  ``iscrowd``).
* Matching is greedy in score order, per IoU threshold and area range: a
  detection takes the not-yet-matched, non-ignored box with the highest IoU at
  or above the threshold (ties go to the box later in the file); only when
  there is none may it take an ignored one. A box outside the area range is
  ignored; an unmatched detection outside it is ignored too. Ground-truth
  areas are the files' ``area`` (``w*h`` when absent), detections' ``w*h``.
* Precision is interpolated at 101 recall points over all detections of a
  class, ordered by a stable sort on ``-score`` after image id and rank.
  A class with no (non-ignored) ground truth in an area range gets -1 there,
  as in pycocotools, and is left out of every mean.

The one known difference: pycocotools records a match by the ground truth's
annotation id and reads id 0 as "no match"; XLab counts a match to an
annotation with id 0 like any other.

How it is fast: per (image, category) group only the (detection, box) pairs
with IoU at or above the lowest threshold can ever match, so those pairs are
computed at once; the greedy matching then runs in at most 100 rounds (one
per score rank), each round matching the detection of that rank in every
group at once, for every threshold and area range together.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import InputFileError, InputProblem

# pycocotools' Params.setDetParams, computed the same way so the floats are identical.
IOU_THRESHOLDS = np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1, endpoint=True)
MAX_DETS = (1, 10, 100)
AREA_RANGES = (("all", (0 ** 2, 1e5 ** 2)), ("small", (0 ** 2, 32 ** 2)), ("medium", (32 ** 2, 96 ** 2)),
               ("large", (96 ** 2, 1e5 ** 2)))

# key, array, IoU threshold (None: mean over all), area range, max detections.
SUMMARY = (
    ("AP", "precision", None, "all", 100),
    ("AP50", "precision", .5, "all", 100),
    ("AP75", "precision", .75, "all", 100),
    ("AP_small", "precision", None, "small", 100),
    ("AP_medium", "precision", None, "medium", 100),
    ("AP_large", "precision", None, "large", 100),
    ("AR1", "recall", None, "all", 1),
    ("AR10", "recall", None, "all", 10),
    ("AR100", "recall", None, "all", 100),
    ("AR_small", "recall", None, "small", 100),
    ("AR_medium", "recall", None, "medium", 100),
    ("AR_large", "recall", None, "large", 100),
    # Not in pycocotools' printed summary: the share of boxes found at IoU 0.5, read from its recall array.
    ("recall50", "recall", .5, "all", 100),
)

MAX_PROBLEMS = 1000  # enough to see the pattern in a broken file, bounded for a huge one
_PAIR_CHUNK = 4_000_000  # (detection, box) pairs whose IoU is computed at once


@dataclass(frozen=True)
class GroundTruth:
    """A COCO ground truth as arrays; annotations in file order.

    ``img``/``cat`` index ``image_ids``/``category_ids`` (both ascending).
    ``box`` is ``[x, y, w, h]``.
    """

    image_ids: np.ndarray
    category_ids: np.ndarray
    category_names: tuple[str, ...]
    img: np.ndarray
    cat: np.ndarray
    box: np.ndarray
    area: np.ndarray
    crowd: np.ndarray


@dataclass(frozen=True)
class Detections:
    """Detection results as arrays in file order, indexed like their :class:`GroundTruth`."""

    img: np.ndarray
    cat: np.ndarray
    box: np.ndarray
    score: np.ndarray


@dataclass(frozen=True)
class CocoResult:
    """pycocotools' ``eval`` arrays and their summaries.

    ``precision``: (IoU thresholds, recall points, categories, area ranges,
    max detections); ``recall``: the same without recall points; -1 where a
    category has no non-ignored ground truth.
    """

    category_ids: tuple[int, ...]
    category_names: tuple[str, ...]
    precision: np.ndarray
    recall: np.ndarray
    gt_boxes: tuple[int, ...]  # per category, crowd regions not counted
    detections: tuple[int, ...]  # per category, as evaluated (at most 100 per image)
    images: int

    def _summary(self, array: str, iou: float | None, area: str, max_det: int, k: int | None) -> float:
        s = self.precision if array == "precision" else self.recall
        if iou is not None:
            s = s[np.where(iou == IOU_THRESHOLDS)[0]]
        a = [name for name, _ in AREA_RANGES].index(area)
        m = MAX_DETS.index(max_det)
        s = s[..., a, m]
        if k is not None:
            s = s[..., k]
        valid = s[s > -1]
        return float(np.mean(valid)) if valid.size else -1.0

    def overall(self) -> dict[str, float]:
        """The summary over all categories (each key is -1 when no category has ground truth for it)."""
        return {key: self._summary(array, iou, area, m, None) for key, array, iou, area, m in SUMMARY}

    def per_class(self) -> dict[str, dict[str, float]]:
        """The same summary per category name, with its box and detection counts."""
        out = {}
        for k, name in enumerate(self.category_names):
            row: dict[str, Any] = {key: self._summary(array, iou, area, m, k) for key, array, iou, area, m in SUMMARY}
            row["gt_boxes"] = self.gt_boxes[k]
            row["detections"] = self.detections[k]
            out[name] = row
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"overall": self.overall(), "per_class": self.per_class(), "images": self.images}


# ---------------------------------------------------------------------------------------------------------------
# Reading the files


class _Problems:
    def __init__(self, source: str):
        self.source = source
        self.items: list[InputProblem] = []
        self.total = 0

    def add(self, message: str, line: int | None = None) -> None:
        self.total += 1
        if len(self.items) < MAX_PROBLEMS:
            self.items.append(InputProblem(self.source, line, message))

    def raise_if_any(self) -> None:
        if self.total:
            items = list(self.items)
            if self.total > len(items):
                items.append(InputProblem(self.source, None, f"... {self.total - len(items):,} more problems"))
            raise InputFileError(items)


def _read_json(path: Path, problems: _Problems) -> Any:
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except FileNotFoundError:
        problems.add("file not found")
    except IsADirectoryError:
        problems.add("is a folder, not a JSON file")
    except OSError as exc:
        problems.add(f"cannot read it: {exc.strerror or exc}")
    except UnicodeDecodeError:
        problems.add("not a JSON file (not UTF-8 text)")
    except json.JSONDecodeError as exc:
        problems.add(f"not valid JSON: {exc.msg} (column {exc.colno})", exc.lineno)
    except RecursionError:
        problems.add("not valid JSON: nested too deeply")
    problems.raise_if_any()
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _box_problem(bbox: Any) -> str | None:
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
        return f"bbox must be [x, y, width, height] (4 numbers), got {_short(bbox)}"
    if not all(math.isfinite(v) for v in bbox):
        return f"bbox has a value that is not a finite number: {_short(bbox)}"
    if bbox[2] < 0 or bbox[3] < 0:
        return f"bbox has a negative width or height: {_short(bbox)}"
    return None


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, float) or math.isfinite(value) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _list_of_objects(data: dict, key: str, problems: _Problems) -> list:
    value = data.get(key)
    if value is None:
        problems.add(f"no '{key}' list (a COCO ground truth has 'images', 'annotations' and 'categories')")
        return []
    if not isinstance(value, list):
        problems.add(f"'{key}' must be a list, got {type(value).__name__}")
        return []
    return value


def read_ground_truth(data: Any, source: str = "ground truth") -> GroundTruth:
    """A COCO ground truth from its parsed JSON; :class:`InputFileError` lists every problem."""
    problems = _Problems(source)
    if not isinstance(data, dict):
        problems.add(f"a COCO ground truth is a JSON object, got {type(data).__name__}")
        problems.raise_if_any()
    images = _list_of_objects(data, "images", problems)
    annotations = _list_of_objects(data, "annotations", problems)
    categories = _list_of_objects(data, "categories", problems)

    image_ids: set[int] = set()
    for i, image in enumerate(images):
        where = f"images[{i}]"
        if not isinstance(image, dict) or not _is_int(image.get("id")):
            problems.add(f"{where}: needs an integer 'id'")
        elif image["id"] in image_ids:
            problems.add(f"{where}: image id {image['id']} is listed twice")
        else:
            image_ids.add(image["id"])

    names: dict[int, str] = {}
    seen_names: set[str] = set()
    for i, category in enumerate(categories):
        where = f"categories[{i}]"
        if not isinstance(category, dict) or not _is_int(category.get("id")):
            problems.add(f"{where}: needs an integer 'id'")
            continue
        name = category.get("name")
        if not isinstance(name, str) or not name:
            problems.add(f"{where}: category {category['id']} needs a 'name'")
        elif category["id"] in names:
            problems.add(f"{where}: category id {category['id']} is listed twice")
        elif name in seen_names:
            problems.add(f"{where}: category name '{name}' is used by two categories")
        else:
            names[category["id"]] = name
            seen_names.add(name)

    ann_ids: set[int] = set()
    rows: list[tuple] = []
    for i, ann in enumerate(annotations):
        where = f"annotations[{i}]"
        if not isinstance(ann, dict):
            problems.add(f"{where}: must be an object, got {type(ann).__name__}")
            continue
        bad = []
        ann_id = ann.get("id")
        if not _is_int(ann_id):
            bad.append("needs an integer 'id'")
        elif ann_id in ann_ids:
            bad.append(f"annotation id {ann_id} is used twice")
        else:
            ann_ids.add(ann_id)
        image_id, category_id = ann.get("image_id"), ann.get("category_id")
        if not _is_int(image_id):
            bad.append("needs an integer 'image_id'")
        elif image_id not in image_ids:
            bad.append(f"image_id {image_id} is not in 'images'")
        if not _is_int(category_id):
            bad.append("needs an integer 'category_id'")
        elif category_id not in names:
            bad.append(f"category_id {category_id} is not in 'categories'")
        bbox = ann.get("bbox")
        box_problem = "has no 'bbox'" if bbox is None else _box_problem(bbox)
        if box_problem:
            bad.append(box_problem)
        area = ann.get("area")
        if area is not None and (not _is_number(area) or not math.isfinite(area) or area < 0):
            bad.append(f"area must be a number of 0 or more, got {_short(area)}")
        crowd = ann.get("iscrowd", 0)
        if crowd not in (0, 1):  # True/False compare equal to 1/0
            bad.append(f"iscrowd must be 0 or 1, got {_short(crowd)}")
        if bad:
            label = f"{where} (id {ann_id})" if _is_int(ann_id) else where
            for message in bad:
                problems.add(f"{label}: {message}")
            continue
        rows.append((image_id, category_id, *bbox, bbox[2] * bbox[3] if area is None else area, bool(crowd)))
    problems.raise_if_any()

    sorted_images = np.array(sorted(image_ids), dtype=np.int64)
    sorted_categories = np.array(sorted(names), dtype=np.int64)
    table = np.array([r[:7] for r in rows], dtype=np.float64).reshape(-1, 7)
    return GroundTruth(
        image_ids=sorted_images,
        category_ids=sorted_categories,
        category_names=tuple(names[int(c)] for c in sorted_categories),
        img=np.searchsorted(sorted_images, np.array([r[0] for r in rows], dtype=np.int64)),
        cat=np.searchsorted(sorted_categories, np.array([r[1] for r in rows], dtype=np.int64)),
        box=np.ascontiguousarray(table[:, 2:6]),
        area=np.ascontiguousarray(table[:, 6]),
        crowd=np.array([r[7] for r in rows], dtype=bool),
    )


def read_detections(data: Any, gt: GroundTruth, source: str = "detections") -> Detections:
    """Detection results (a list of ``{image_id, category_id, bbox, score}``) for ``gt``.

    Every problem is listed (:class:`InputFileError`): detections for images or
    categories the ground truth does not have are refused, not skipped, since
    they usually mean the two files do not belong together.
    """
    problems = _Problems(source)
    if not isinstance(data, list):
        problems.add(f"a detections file is a JSON list of {{image_id, category_id, bbox, score}}, "
                     f"got {type(data).__name__}")
        problems.raise_if_any()
    columns = _detection_columns(data)
    if columns is None:
        columns = _detection_columns_checked(data, gt, problems)
        problems.raise_if_any()
    image_id, category_id, box, score = columns
    bad = ~np.isfinite(box).all(axis=1) | ~np.isfinite(score) | (box[:, 2] < 0) | (box[:, 3] < 0)
    img = np.searchsorted(gt.image_ids, image_id).clip(max=max(len(gt.image_ids) - 1, 0))
    cat = np.searchsorted(gt.category_ids, category_id).clip(max=max(len(gt.category_ids) - 1, 0))
    unknown_image = gt.image_ids[img] != image_id if len(gt.image_ids) else np.ones(len(data), bool)
    unknown_category = gt.category_ids[cat] != category_id if len(gt.category_ids) else np.ones(len(data), bool)
    for i in np.flatnonzero(bad | unknown_image | unknown_category)[:MAX_PROBLEMS + 1]:
        where = f"detections[{i}]"
        if unknown_image[i]:
            problems.add(f"{where}: image_id {image_id[i]} is not in the ground truth's images")
        if unknown_category[i]:
            problems.add(f"{where}: category_id {category_id[i]} is not in the ground truth's categories")
        if bad[i]:
            message = _box_problem([float(v) for v in box[i]])
            problems.add(f"{where}: {message or f'score must be a finite number, got {score[i]}'}")
    problems.raise_if_any()
    return Detections(img=img, cat=cat, box=box, score=score)


def _detection_columns(data: list) -> tuple[np.ndarray, ...] | None:
    """The four columns when every record is well-formed, in one pass each; None otherwise."""
    try:
        image_id = np.array([d["image_id"] for d in data])
        category_id = np.array([d["category_id"] for d in data])
        box = np.array([d["bbox"] for d in data])
        score = np.array([d["score"] for d in data])
    except (KeyError, TypeError, ValueError, IndexError):
        return None
    n = len(data)
    # Kinds: 'i' integers, 'f' floats; bools ('b'), strings and None (object) take the checked path.
    if not data:
        return (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros(0))
    if (image_id.dtype.kind != "i" or category_id.dtype.kind != "i" or box.dtype.kind not in "if"
            or box.shape != (n, 4) or score.dtype.kind not in "if" or score.shape != (n,)):
        return None
    return (image_id.astype(np.int64), category_id.astype(np.int64), box.astype(np.float64),
            score.astype(np.float64))


def _detection_columns_checked(data: list, gt: GroundTruth, problems: _Problems) -> tuple[np.ndarray, ...]:
    """Record by record, naming each problem (the slow path, for a file that has some)."""
    known = {"image_id": (set(gt.image_ids.tolist()), "images"),
             "category_id": (set(gt.category_ids.tolist()), "categories")}
    for i, d in enumerate(data):
        where = f"detections[{i}]"
        if not isinstance(d, dict):
            problems.add(f"{where}: must be an object, got {type(d).__name__}")
            continue
        for key, (ids, listed) in known.items():
            if key not in d:
                problems.add(f"{where}: has no '{key}'")
            elif not _is_int(d[key]):
                problems.add(f"{where}: {key} must be an integer, got {_short(d[key])}")
            elif d[key] not in ids:
                problems.add(f"{where}: {key} {d[key]} is not in the ground truth's {listed}")
        if "bbox" not in d:
            problems.add(f"{where}: has no 'bbox'")
        elif (message := _box_problem(d["bbox"])) is not None:
            problems.add(f"{where}: {message}")
        if "score" not in d:
            problems.add(f"{where}: has no 'score'")
        elif not _is_number(d["score"]) or not math.isfinite(d["score"]):
            problems.add(f"{where}: score must be a finite number, got {_short(d['score'])}")
    # Only reached with problems (the fast path took every well-formed file); the caller raises.
    return (np.zeros(0, np.int64),) * 2 + (np.zeros((0, 4)), np.zeros(0))


def load_ground_truth(path: str | Path) -> GroundTruth:
    path = Path(path)
    return read_ground_truth(_read_json(path, _Problems(str(path))), str(path))


def evaluate_files(gt_path: str | Path, dt_path: str | Path) -> CocoResult:
    """``xlab eval coco``: both files read and checked, then :func:`evaluate`.

    Problems in both files are reported together.
    """
    problems: list[InputProblem] = []
    gt = dt_data = None
    try:
        gt = load_ground_truth(gt_path)
    except InputFileError as exc:
        problems.extend(exc.problems)
    try:
        dt_data = _read_json(Path(dt_path), _Problems(str(dt_path)))
    except InputFileError as exc:
        problems.extend(exc.problems)
    if problems:
        raise InputFileError(problems)
    return evaluate(gt, read_detections(dt_data, gt, str(dt_path)))


# ---------------------------------------------------------------------------------------------------------------
# Evaluation


def _iou(dbox: np.ndarray, gbox: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """pycocotools' bbIou (maskApi.c), pair by pair, with the same float64 operations."""
    dx, dy, dw, dh = dbox.T
    gx, gy, gw, gh = gbox.T
    w = np.minimum(dw + dx, gw + gx) - np.maximum(dx, gx)
    h = np.minimum(dh + dy, gh + gy) - np.maximum(dy, gy)
    overlap = (w > 0) & (h > 0)
    inter = w * h
    da = dw * dh
    union = np.where(crowd, da, da + (gw * gh) - inter)
    out = np.zeros(len(w))
    np.divide(inter, union, out=out, where=overlap)
    return out


def evaluate(gt: GroundTruth, dt: Detections) -> CocoResult:
    """pycocotools' ``evaluate()`` and ``accumulate()`` for boxes (module docstring)."""
    T, R, K, A, M = len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS), len(gt.category_ids), len(AREA_RANGES), len(MAX_DETS)
    n_img = len(gt.image_ids)
    max_det = max(MAX_DETS)
    thresholds = np.minimum(IOU_THRESHOLDS, 1 - 1e-10)

    # Ground truth grouped by (category, image), file order inside a group.
    g_group = gt.cat.astype(np.int64) * n_img + gt.img
    g_order = np.argsort(g_group, kind="stable")
    g_group = g_group[g_order]
    g_box, g_area, g_crowd, g_cat = gt.box[g_order], gt.area[g_order], gt.crowd[g_order], gt.cat[g_order]
    low = np.array([r[0] for _, r in AREA_RANGES])[:, None]
    high = np.array([r[1] for _, r in AREA_RANGES])[:, None]
    g_ignored = g_crowd[None, :] | (g_area[None, :] < low) | (g_area[None, :] > high)  # (A, G)

    # Detections grouped the same way, best score first (stable), at most max_det per group.
    nd_all = len(dt.score)
    d_group = dt.cat.astype(np.int64) * n_img + dt.img
    d_order = np.lexsort((np.arange(nd_all), -dt.score, d_group))
    d_group = d_group[d_order]
    positions = np.arange(nd_all)
    first = np.ones(nd_all, bool)
    first[1:] = d_group[1:] != d_group[:-1]
    d_rank = positions - np.maximum.accumulate(np.where(first, positions, 0))
    keep = d_order[d_rank < max_det]
    d_rank = d_rank[d_rank < max_det]
    d_group = dt.cat[keep].astype(np.int64) * n_img + dt.img[keep]
    d_box, d_score, d_img, d_cat = dt.box[keep], dt.score[keep], dt.img[keep], dt.cat[keep]
    nd = len(keep)
    d_area = d_box[:, 2] * d_box[:, 3]
    d_outside = (d_area[None, :] < low) | (d_area[None, :] > high)  # (A, D)

    pair_det, pair_gt, pair_iou = _candidate_pairs(d_group, d_box, g_group, g_box, g_crowd, thresholds.min())
    dt_matched, dt_ignored = _match(pair_det, pair_gt, pair_iou, d_rank, thresholds, g_ignored, g_crowd, nd)
    dt_ignored |= ~dt_matched & d_outside[:, None, :]

    precision = -np.ones((T, R, K, A, M))
    recall = -np.ones((T, K, A, M))
    npig = np.zeros((K, A), np.int64)
    np.add.at(npig, g_cat, (~g_ignored).T.astype(np.int64))
    det_count = np.bincount(d_cat, minlength=K)
    by_class = np.argsort(d_cat, kind="stable")
    class_starts = np.searchsorted(d_cat[by_class], np.arange(K + 1))
    for k in range(K):
        if not npig[k].any():
            continue
        mine = by_class[class_starts[k]:class_starts[k + 1]]
        # pycocotools concatenates images in id order, each best first, then sorts stably on -score.
        mine = mine[np.lexsort((d_rank[mine], d_img[mine], -d_score[mine]))]
        for m, limit in enumerate(MAX_DETS):
            sel = mine[d_rank[mine] < limit]
            for a in range(A):
                if npig[k, a] == 0:
                    continue
                p, r = _precision_recall(dt_matched[a][:, sel], dt_ignored[a][:, sel], npig[k, a])
                precision[:, :, k, a, m] = p
                recall[:, k, a, m] = r

    return CocoResult(
        category_ids=tuple(int(c) for c in gt.category_ids),
        category_names=gt.category_names,
        precision=precision,
        recall=recall,
        gt_boxes=tuple(int(n) for n in np.bincount(gt.cat[~gt.crowd], minlength=K)),
        detections=tuple(int(n) for n in det_count),
        images=n_img,
    )


def _candidate_pairs(d_group, d_box, g_group, g_box, g_crowd, min_iou):
    """(detection, box, IoU) for every pair in one group whose IoU reaches ``min_iou``."""
    lo = np.searchsorted(g_group, d_group, side="left")
    counts = np.searchsorted(g_group, d_group, side="right") - lo
    dets, gts, ious = [], [], []
    cumulative = np.cumsum(counts)
    start = 0
    while start < len(d_group):
        # Detections whose pairs fit one chunk (at least one detection, however many boxes it meets).
        base = cumulative[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(cumulative, base + _PAIR_CHUNK, side="right")))
        c = counts[start:stop]
        det = np.repeat(np.arange(start, stop), c)
        offsets = np.arange(len(det)) - np.repeat(np.cumsum(c) - c, c)
        gt_index = lo[det] + offsets
        iou = _iou(d_box[det], g_box[gt_index], g_crowd[gt_index])
        near = iou >= min_iou
        dets.append(det[near])
        gts.append(gt_index[near])
        ious.append(iou[near])
        start = stop
    if not dets:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(dets), np.concatenate(gts), np.concatenate(ious)


def _match(pair_det, pair_gt, pair_iou, d_rank, thresholds, g_ignored, g_crowd, nd):
    """Greedy matching (module docstring): (matched, matched-to-ignored), each (A, T, detections)."""
    A, T = g_ignored.shape[0], len(thresholds)
    dt_matched = np.zeros((A, T, nd), bool)
    dt_ignored = np.zeros((A, T, nd), bool)
    if not len(pair_det):
        return dt_matched, dt_ignored
    # Rounds by rank; in a round, each detection's pairs together, lowest IoU first and, at equal IoU,
    # in file order: the detection takes the last eligible pair of the best kind.
    order = np.lexsort((pair_gt, pair_iou, pair_det, d_rank[pair_det]))
    pair_det, pair_gt, pair_iou = pair_det[order], pair_gt[order], pair_iou[order]
    n = len(pair_det)
    seg_first = np.ones(n, bool)
    seg_first[1:] = pair_det[1:] != pair_det[:-1]
    seg_start_of = np.maximum.accumulate(np.where(seg_first, np.arange(n), 0))
    local = np.arange(n) - seg_start_of  # position inside the detection's pairs
    width = int(local.max()) + 2
    gt_matched = np.zeros((A, T, len(g_crowd)), bool)
    rank_of_pair = d_rank[pair_det]
    round_bounds = np.searchsorted(rank_of_pair, np.arange(rank_of_pair.max() + 2))
    eligible_iou = pair_iou[None, :] >= thresholds[:, None]  # (T, P)
    kind = (~g_ignored[:, pair_gt]).astype(np.int64) * width  # (A, P): non-ignored boxes first
    for r in range(len(round_bounds) - 1):
        lo, hi = round_bounds[r], round_bounds[r + 1]
        if lo == hi:
            continue
        g = pair_gt[lo:hi]
        free = ~gt_matched[:, :, g] | g_crowd[g]
        key = np.where(free & eligible_iou[None, :, lo:hi], kind[:, None, lo:hi] + local[lo:hi] + 1, 0)
        starts = np.flatnonzero(seg_first[lo:hi])
        best = np.maximum.reduceat(key, starts, axis=2)  # (A, T, detections of this round)
        a, t, s = np.nonzero(best)
        winner = lo + starts[s] + (best[a, t, s] - 1) % width
        det = pair_det[winner]
        won = pair_gt[winner]
        gt_matched[a, t, won] = True
        dt_matched[a, t, det] = True
        dt_ignored[a, t, det] = g_ignored[a, won]
    return dt_matched, dt_ignored


def _precision_recall(matched: np.ndarray, ignored: np.ndarray, npig: int) -> tuple[np.ndarray, np.ndarray]:
    """pycocotools' accumulate() for one category, area range and max detections: (T, R) and (T,)."""
    T, nd = matched.shape
    tp = np.cumsum(matched & ~ignored, axis=1).astype(float)
    fp = np.cumsum(~matched & ~ignored, axis=1).astype(float)
    rc = tp / npig
    pr = tp / (fp + tp + np.spacing(1))
    recall = rc[:, -1] if nd else np.zeros(T)
    precision = np.zeros((T, len(RECALL_THRESHOLDS)))
    if nd:
        pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
        for t in range(T):
            inds = np.searchsorted(rc[t], RECALL_THRESHOLDS, side="left")
            inside = inds < nd
            precision[t, inside] = pr[t, inds[inside]]
    return precision, recall


def evaluate_records(gt_json: dict, detections: Sequence[dict]) -> CocoResult:
    """:func:`evaluate` from parsed JSON (for callers that already hold the dicts)."""
    gt = read_ground_truth(gt_json)
    return evaluate(gt, read_detections(list(detections), gt))
