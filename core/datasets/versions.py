"""Freeze, list and show dataset versions.

A version is an immutable, named, numbered set of (image, annotation
revisions) pairs, with the rule that built it, its content hash, who froze it
and when, and the version it was derived from. Its labels are the labels as
of the label clock value it records (``label_seq``); each member keeps the ids
of its box revisions, so exports and diffs read the labels it was frozen with
even after boxes are edited or classes change.

Rules (``rule_json`` records every input):

* ``test``: the test-split images of a published quota plan's cells that
  passed label QA: usable, labelled (a live, not rejected, box or a labelled
  negative) and with no open QA flag. What was left out is counted by reason.
* ``train``: per class, k x the test set's images per cell (luggage type x
  clutter x scanner model x pose), drawn from the train-split images that
  passed QA; k is the class's ratio step in the plan, or ``ratio`` for every
  class (clean bags: 1, or ``ratio``). See :mod:`core.datasets.rules` for the
  draw order, nesting, shortfalls and the validation split.

At freeze: a physical item or bag used both by the version and by images of
the other split is refused, with the list; near-duplicate pairs across the
splits are reported (and left out with ``exclude_near_duplicates``); cells
below the plan's targets are reported, never hidden.

The whole freeze runs in one write transaction, so the labels, the members
and the counts agree; a dry run does the same work and rolls it back.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

from core.catalog import Catalog
from core.catalog import dataset_store as store
from core.catalog import quota_store
from core.catalog.db import WriteTransaction, utc_now
from core.errors import DatasetError, UnknownNameError

RULES = ("test", "train")
DEFAULT_VALIDATION = 0.1
_NAME_MAX = 100
# Cells below target listed in a report (the totals always count every one).
_REPORT_CELLS = 2_000


@dataclass(frozen=True)
class VersionRef:
    name: str
    version: int | None  # None: the latest

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}@{self.version}"


def parse_ref(text: str) -> VersionRef:
    """``NAME`` (latest version) or ``NAME@VERSION``."""
    name, at, number = text.partition("@")
    if not name.strip():
        raise DatasetError(f"'{text}' names no dataset; write NAME or NAME@VERSION")
    if not at:
        return VersionRef(name, None)
    if not number.isdigit() or int(number) < 1:
        raise DatasetError(f"'{text}': the version after @ must be a whole number from 1 (e.g. {name}@2)")
    return VersionRef(name, int(number))


def resolve(src: Catalog | WriteTransaction, ref: VersionRef | str) -> dict[str, Any]:
    """The frozen version a reference names; a clear error if there is none."""
    ref = parse_ref(ref) if isinstance(ref, str) else ref
    found = store.find_version(src, ref.name, ref.version)
    if found is None:
        known = store.find_version(src, ref.name, None)
        if known is None:
            raise UnknownNameError(f"no dataset named '{ref.name}'; 'xlab dataset list' shows the frozen ones")
        raise UnknownNameError(f"dataset '{ref.name}' has no version {ref.version} (latest: {known['version']})")
    return found


@dataclass
class FreezeReport:
    """What a freeze did (or, in a dry run, would do)."""

    name: str
    version: int
    rule: str
    plan: str
    seed: int | None
    label_seq: int
    images: int
    boxes: int
    subsets: dict[str, int]
    content_hash: str
    parent: str | None
    test_version: str | None
    ratio: dict[str, int]                    # class name → k (train)
    validation_fraction: float | None
    left_out: dict[str, int]                 # reason → images of the split not taken
    near_duplicates: list[dict[str, int]]    # pairs across splits (the member first)
    near_duplicates_excluded: int
    below_target: list[dict[str, Any]]       # cells with fewer setups than the plan asks
    below_target_cells: int
    below_target_setups: int
    clone: list[dict[str, Any]] = field(default_factory=list)  # train: per test cell, what was drawn
    clone_borrowed: int = 0
    clone_short: int = 0
    dry_run: bool = False
    classes: list[dict[str, Any]] = field(default_factory=list)  # per class and subset: images (by cell), boxes

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _DryRun(Exception):
    def __init__(self, report: FreezeReport):
        self.report = report


def _check_name(name: str) -> None:
    problems = []
    if not name or not name.strip():
        problems.append("the name is empty")
    if "@" in name:
        problems.append("'@' separates a name from its version; leave it out of the name")
    if len(name) > _NAME_MAX:
        problems.append(f"the name is longer than {_NAME_MAX} characters")
    if problems:
        raise DatasetError(f"dataset name '{name}' cannot be used:", problems)


def _plan(catalog: Catalog, text: str | None, fallback_id: int | None) -> dict[str, Any]:
    from core.catalog import quota_store
    from core.quota.plans import resolve_plan

    if text is None:
        if fallback_id is None:
            raise DatasetError("name the quota plan the version follows: --plan PLAN (or PLAN@VERSION)")
        plan = quota_store.plan_by_id(catalog, fallback_id)
    else:
        name, _, number = text.partition("@")
        if number and not number.isdigit():
            raise DatasetError(f"'{text}': the plan version after @ must be a whole number")
        plan = resolve_plan(catalog, name, int(number) if number else None)
    if plan["status"] != "published":
        raise DatasetError(f"quota plan {plan['name']} v{plan['version']} is a draft; a dataset version follows a "
                           f"published plan: 'xlab quota publish {plan['name']}'")
    return plan


def _current_plan_id(catalog: Catalog, plan_id: int) -> int:
    """The newest published version of the plan ``plan_id`` is a version of (``plan_id`` itself when none is newer)."""
    plan = quota_store.plan_by_id(catalog, plan_id)
    newest = quota_store.find_plan(catalog, plan["name"], published_only=True)
    return newest["id"] if newest and newest["version"] > plan["version"] else plan_id


def _latest_test_of(catalog: Catalog, plan: dict[str, Any]) -> dict[str, Any] | None:
    """The newest test set frozen from any version of ``plan`` up to this one, newest version first."""
    for p in sorted(quota_store.plans(catalog), key=lambda p: -p["version"]):
        if p["name"] == plan["name"] and p["version"] <= plan["version"]:
            found = store.latest_test_version(catalog, p["id"])
            if found is not None:
                return found
    return None


def freeze(catalog: Catalog, name: str, rule: str, *, plan: str | None = None, ratio: int | None = None,
           seed: int | None = None, parent: str | None = None, exclude_near_duplicates: bool = False,
           validation: float | None = None, dry_run: bool = False, actor: str | None = None) -> FreezeReport:
    """Freeze the next version of dataset ``name`` by ``rule`` ('test' or 'train').

    ``plan``: quota plan NAME[@VERSION] (default: the parent's or test set's);
    ``ratio``: k for every class (train; default each class's ratio step);
    ``seed``: the draw's seed (train; default the parent's, else a new one,
    recorded); ``parent``: NAME[@VERSION] the version derives from (a train
    set clones the test set it names, or its parent's test set, and keeps its
    images); ``validation``: fraction of train setups carved out (train;
    default 0.1). Any thread; one write transaction.
    """
    if not dry_run:
        catalog.require("datasets")
    _check_name(name)
    if rule not in RULES:
        raise DatasetError(f"unknown rule '{rule}'; use one of: {', '.join(RULES)}")
    if ratio is not None and ratio < 1:
        raise DatasetError(f"--ratio {ratio}: k must be a whole number from 1 (train:test = k:1)")
    if validation is not None and not 0 <= validation < 1:
        raise DatasetError(f"validation fraction {validation} must be at least 0 and below 1")
    if rule == "test" and (ratio is not None or validation):
        raise DatasetError("--ratio and --validation apply to train sets only")
    parent_row = resolve(catalog, parent) if parent else None
    test_row = None
    if rule == "train":
        if parent_row is not None:
            test_id = parent_row["id"] if parent_row["rule"] == "test" else parent_row["test_version_id"]
            test_row = store.version_by_id(catalog, test_id)
        # A train set follows the newest published version of its test set's plan: the loop's
        # accepted ratio steps live there, while the test set (and its plan version) stays.
        plan_row = _plan(catalog, plan, _current_plan_id(catalog, test_row["plan_id"]) if test_row else None)
        if test_row is None:
            test_row = _latest_test_of(catalog, plan_row)
        if test_row is None:
            raise DatasetError(f"quota plan {plan_row['name']} has no frozen test set yet; the test set comes "
                               f"first: 'xlab dataset freeze NAME --rule test --plan {plan_row['name']}'")
        test_plan = quota_store.plan_by_id(catalog, test_row["plan_id"])
        if test_plan["name"] != plan_row["name"] or test_plan["version"] > plan_row["version"]:
            raise DatasetError(f"the test set {test_row['name']}@{test_row['version']} follows quota plan "
                               f"{test_plan['name']} v{test_plan['version']}, not {plan_row['name']} "
                               f"v{plan_row['version']}; a train set clones a test set of its own plan")
        if seed is None:
            seed = parent_row["seed"] if parent_row and parent_row["rule"] == "train" else secrets.randbelow(2 ** 31)
        validation = DEFAULT_VALIDATION if validation is None else validation
    else:
        plan_row = _plan(catalog, plan, parent_row["plan_id"] if parent_row else None)
        seed = None
    try:
        with catalog.write(actor) as txn, store.Readers(txn.conn) as readers:
            report = _freeze_in(txn, readers, name, rule, plan_row, ratio, seed, parent_row, test_row,
                                exclude_near_duplicates, validation, dry_run)
            if dry_run:
                raise _DryRun(report)
    except _DryRun as done:
        return done.report
    return report


def _freeze_in(txn: WriteTransaction, readers: store.Readers, name: str, rule: str, plan: dict[str, Any],
               ratio: int | None, seed: int | None, parent: dict[str, Any] | None, test: dict[str, Any] | None,
               exclude: bool, validation: float | None, dry_run: bool) -> FreezeReport:
    """The freeze, in ``txn``; ``readers`` (opened before it writes) read the split and the boxes
    beside it: the boxes from when the pick is known, while the checks run and the held images
    are written (the tables read are never written here)."""
    import numpy as np

    from core.catalog import label_store

    label_seq = label_store.clock(txn)
    number = store.next_version_number(txn, name)
    split = rule
    other = "train" if rule == "test" else "test"
    test_id = None if test is None else test["id"]
    # The split's images are read once; every choice below works on their arrays.
    images = store.read_split(txn, plan["id"], split, readers)
    in_plan = images.cells >= 0
    state_counts = np.bincount(images.states[in_plan], minlength=len(store.STATES)).tolist()
    left_out = {state: n for state, n in sorted(zip(store.STATES, state_counts)) if state != "ok" and n}
    left_out["not_in_plan_cells"] = len(images) - int(in_plan.sum())
    eligible = in_plan & (images.states == store.STATES.index("ok"))
    names = store.names(txn)
    class_names = {**names["class"], 0: "(clean)"}
    # A train set is checked against the members of the test set it clones (read once).
    test_members = store.read_members(txn, test_id) if test_id is not None else None
    other_ids = test_members.image_ids if test_members is not None else ()
    near = store.cross_split_near_duplicates(txn, images, eligible, other, other_ids)
    excluded = sorted({a for a, _, _ in near}) if exclude else []
    if excluded:
        at, found = images.find(excluded)
        eligible[at[found]] = False
    ks: dict[int, int] = {}
    draws: list = []
    if rule == "test":
        picked = np.flatnonzero(eligible)
        subsets = np.zeros(len(picked), dtype=np.uint8)
    else:
        ks, picked, subsets, draws = _draw_train(txn, images, eligible, plan, ratio, seed, parent, test_members,
                                                 validation)
    boxes = store.read_boxes(txn, images.image_ids[picked], readers)
    if exclude:
        near_left = []
        left_out["near_duplicate_of_other_split"] = len(excluded)
    else:
        inside = np.isin([a for a, _, _ in near], images.image_ids[picked]).tolist() if near else []
        near_left = [p for p, keep in zip(near, inside) if keep]
    shared = store.shared_objects(txn, images, picked, other, test_members)
    if shared:
        raise DatasetError(
            f"refused: {len(shared)} physical object(s) are used by both this {rule} set and {other} images "
            "(an item or bag of the test set is never used for training); nothing was frozen:",
            [f"{s['kind']} {s['barcode']}: {s['here']} image(s) here, {s['other']} in {other}" for s in shared])
    version_id = store.insert_building(txn, {
        "name": name, "version": number, "rule": rule, "plan_id": plan["id"],
        "parent_id": parent["id"] if parent else None, "test_version_id": test_id, "seed": seed,
        "label_seq": label_seq, "frozen_at": utc_now(), "frozen_by": txn.actor,
        "rule_json": json.dumps({
            "rule": rule, "plan": f"{plan['name']} v{plan['version']}", "plan_id": plan["id"], "seed": seed,
            "ratio": ratio, "ratio_by_class": {class_names.get(c, str(c)): k for c, k in sorted(ks.items())},
            "validation_fraction": validation, "exclude_near_duplicates": exclude,
            "parent_id": parent["id"] if parent else None, "test_version_id": test_id,
            "qa": "usable, labelled (a live, not rejected, box or a labelled negative), no open QA flag",
        }, sort_keys=True),
    })
    store.hold_images(txn, version_id, images.image_ids[picked])
    members, box_classes, box_sizes = store.collect_members(txn, images, picked, subsets, boxes)
    store.insert_members(txn, version_id, members)
    stats = _stats(members, box_classes, box_sizes, names)
    content_hash = _content_hash(members, images.digests[picked])
    images_count = sum(stats["subsets"].values())
    boxes = sum(row[-1] for row in stats["box_classes"])
    below = _below_target(txn, plan["id"], stats["cells"], rule, ks, names)
    report = FreezeReport(
        name=name, version=number, rule=rule, plan=f"{plan['name']} v{plan['version']}", seed=seed,
        label_seq=label_seq, images=images_count, boxes=boxes, subsets=stats["subsets"], content_hash=content_hash,
        parent=f"{parent['name']}@{parent['version']}" if parent else None,
        test_version=f"{test['name']}@{test['version']}" if test else None,
        ratio={class_names.get(c, str(c)): k for c, k in sorted(ks.items())},
        validation_fraction=validation, left_out=left_out,
        near_duplicates=[{"image_id": a, "other_id": b, "distance": d} for a, b, d in near_left],
        near_duplicates_excluded=len(excluded),
        below_target=below[:_REPORT_CELLS], below_target_cells=len(below),
        below_target_setups=sum(c["missing_setups"] for c in below),
        clone=[_named_draw(d, names) for d in draws if d.borrowed or d.short][:_REPORT_CELLS],
        clone_borrowed=sum(d.borrowed for d in draws), clone_short=sum(d.short for d in draws),
        dry_run=dry_run, classes=_class_counts(stats, class_names),
    )
    store.freeze(txn, version_id, images_count, boxes, content_hash, json.dumps(report.as_dict(), sort_keys=True),
                 json.dumps(stats, sort_keys=True))
    txn.audit("freeze", "dataset_version", f"{name}@{number}", None,
              {"rule": rule, "images": images_count, "boxes": boxes, "content_hash": content_hash})
    txn.summary.append(f"froze dataset {name}@{number}")
    return report


def _draw_train(txn: WriteTransaction, images: store.SplitImages, eligible: Any, plan: dict[str, Any],
                ratio: int | None, seed: int, parent: dict[str, Any] | None, test_members: store.Members,
                validation: float) -> tuple[dict[int, int], Any, Any, list]:
    """The clone of the test mix: k per class, the drawn images (ascending positions in ``images``)
    and their subsets (index into SUBSETS), and what each test cell drew."""
    import numpy as np

    from core.datasets.rules import clone_test_mix, draw_pools, order_keys, validation_mask

    test_counts = {tuple(r[:5]): r[5] for r in store.cell_counts(test_members, "test")}
    steps = store.plan_ratio_steps(txn, plan["id"])
    classes = {cell[0] for cell in test_counts}
    ks = {c: (ratio if ratio is not None else (1 if c == 0 else steps.get(c, 0))) for c in classes}
    preferred = store.read_members(txn, parent["id"]).image_ids if parent and parent["rule"] == "train" else ()
    pool = np.flatnonzero(eligible)
    nothing = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint8)
    if not len(pool):
        return ks, *nothing, clone_test_mix(test_counts, {}, ks)[1]
    # The first 16 hex digits of each image's sha256, as a number.
    words = np.ascontiguousarray(images.digests[pool, :8]).view(">u8").ravel().astype(np.uint64)
    pools = draw_pools(images.image_ids[pool], images.cells[pool], images.cell_keys, order_keys(words, seed),
                       preferred)
    drawn, draws = clone_test_mix(test_counts, pools, ks)
    if not drawn:
        return ks, *nothing, draws
    at = np.sort(images.find(drawn)[0])
    poses = np.array([key[4] for key in images.cell_keys], dtype=np.int64)[images.cells[at]]
    setups = np.stack([np.maximum(images.item_ids[at], 0), images.bag_ids[at], poses], axis=1)
    to_validation = validation_mask(setups, seed, validation)
    subsets = np.where(to_validation, store.SUBSETS.index("validation"), store.SUBSETS.index("train"))
    return ks, at, subsets.astype(np.uint8), draws


def _named_draw(draw, names: dict[str, dict[int, str]]) -> dict[str, Any]:
    return {**_cell_names(draw.cell, names), **{k: v for k, v in draw.as_dict().items() if k != "cell"}}


def _cell_names(cell: tuple, names: dict[str, dict[int, str]]) -> dict[str, Any]:
    class_key, luggage, clutter, model, pose = cell
    return {"class_name": names["class"].get(class_key, "(clean)") if class_key else "(clean)",
            "luggage_type": names["luggage_type"].get(luggage, str(luggage)), "clutter_level": clutter,
            "scanner_model": names["scanner_model"].get(model, str(model)),
            "pose": names["pose"].get(pose, "—") if pose else "—"}


def _below_target(txn: WriteTransaction, plan_id: int, cells: list[list], rule: str, ks: dict[int, int],
                  names: dict[str, dict[int, str]]) -> list[dict[str, Any]]:
    """Cells of the plan where the version has fewer setups than the plan asks
    (test: the test target; train: k x the test target, validation included)."""
    have: dict[tuple, int] = {}
    for subset, *rest in cells:
        key, setups = tuple(rest[:5]), rest[6]
        have[key] = have.get(key, 0) + setups
    out = []
    for *key, test_target, _train_target in store.plan_cells(txn, plan_id):
        key = tuple(key)
        target = test_target if rule == "test" else test_target * ks.get(key[0], 0)
        if have.get(key, 0) < target:
            out.append({**_cell_names(key, names), "target_setups": target, "setups": have.get(key, 0),
                        "missing_setups": target - have.get(key, 0)})
    return sorted(out, key=lambda c: (-c["missing_setups"], c["class_name"], c["luggage_type"], c["clutter_level"],
                                      c["scanner_model"], c["pose"]))


def _class_counts(stats: dict[str, Any], class_names: dict[int, str]) -> list[dict[str, Any]]:
    """Per class and subset: images (by their cell's class) and boxes (by box class), for a freeze's preview."""
    out: dict[tuple[str, str], dict[str, Any]] = {}

    def entry(class_key: int, subset: str) -> dict[str, Any]:
        name = class_names.get(class_key, str(class_key)) if class_key else "(clean)"
        return out.setdefault((name, subset), {"class_name": name, "subset": subset, "images": 0, "boxes": 0})

    for subset, class_key, *_key, images, _setups, _boxes in stats["cells"]:
        entry(class_key, subset)["images"] += images
    for subset, class_key, _bucket, boxes in stats["box_classes"]:
        entry(class_key, subset)["boxes"] += boxes
    return [out[k] for k in sorted(out)]


def _content_hash(members: store.Members, digests: Any) -> str:
    """sha256 over the members sorted by image hash: per member its image's sha256 as four 64-bit
    words, little-endian (32 bytes), subset (index into SUBSETS), negative and number of boxes
    (uint8, uint8, uint32 little-endian), then every member's revision ids in the same order (int64
    little-endian): the same images with the same labels give the same hash in any catalog.
    ``digests``: the members' sha256, (n, 32) bytes, in member order."""
    import numpy as np

    words = np.ascontiguousarray(digests, dtype=np.uint8).view(">u8").reshape(-1, 4).astype("<u8")
    # Hashes are unique, so their first words almost always order them; ties fall back to all four.
    order = np.argsort(words[:, 0])
    first = words[order, 0]
    if len(first) > 1 and (first[1:] == first[:-1]).any():
        order = np.lexsort(words.T[::-1])
    record = np.dtype([("sha", "V32"), ("subset", "u1"), ("negative", "u1"), ("boxes", "<u4")])
    rows = np.empty(len(order), dtype=record)
    rows["sha"] = words.view("V32").ravel()[order]
    rows["subset"] = members.subsets[order]
    rows["negative"] = members.negatives[order]
    rows["boxes"] = members.boxes[order]
    digest = hashlib.sha256(b"xlab dataset version members 1\n")
    digest.update(rows.tobytes())
    digest.update(members.revisions[members.revision_positions(order)].astype("<i8").tobytes())
    return digest.hexdigest()


def _counts(*columns) -> list[tuple]:
    """Distinct rows of the non-negative integer ``columns``, ascending, with how many times each occurs."""
    import numpy as np

    if not len(columns[0]):
        return []
    columns = [np.asarray(c, dtype=np.int64) for c in columns]
    sizes = [int(c.max()) + 1 for c in columns]
    key = np.zeros(len(columns[0]), dtype=np.int64)
    for c, size in zip(columns, sizes):
        key = key * size + c
    keys, counts = np.unique(key, return_counts=True)
    rows = []
    for size in reversed(sizes):
        keys, digit = np.divmod(keys, size)
        rows.append(digit.tolist())
    return [(*row, n) for *row, n in zip(*reversed(rows), counts.tolist())]


def _stats(members: store.Members, box_classes, box_sizes, names: dict[str, dict[int, str]]) -> dict[str, Any]:
    """The label distribution, computed once at freeze (the version never changes), from the
    members and their boxes' classes and size buckets (in the members' revision order)."""
    import numpy as np

    from core.catalog.dataset_store import SIZE_BUCKETS, SUBSETS

    group = members.subsets.astype(np.int64) * max(1, len(members.cell_keys)) + members.cells
    images = _counts(group)
    box_sum = np.bincount(group, weights=members.boxes, minlength=1).astype(np.int64)
    setups = {}
    for key, *_setup, _n in _counts(group, members.item_keys, members.bag_ids):
        setups[key] = setups.get(key, 0) + 1
    cells = []
    for key, n in images:
        subset, cell = divmod(key, max(1, len(members.cell_keys)))
        cells.append([SUBSETS[subset], *members.cell_keys[cell], n, setups[key], int(box_sum[key])])
    subsets: dict[str, int] = {}
    for subset, *_key, n, _setups, _boxes in cells:
        subsets[subset] = subsets.get(subset, 0) + n
    box_subsets = np.repeat(members.subsets, members.boxes)
    box_rows = [[SUBSETS[s], c, k, n] for s, c, k, n in _counts(box_subsets, box_classes, box_sizes)]
    per_image = [[SUBSETS[s], neg, b, n] for s, neg, b, n in _counts(members.subsets, members.negatives, members.boxes)]
    used = ({c[1] for c in cells} | {b[1] for b in box_rows}) - {0}
    return {
        "subsets": dict(sorted(subsets.items())),
        "cells": sorted(cells, key=lambda c: tuple(map(str, c))),
        "boxes_per_image": sorted(per_image),
        "box_classes": sorted(box_rows),
        "size_buckets": list(SIZE_BUCKETS),
        # Names as they were at freeze: a class renamed later keeps its old
        # name in this version's distribution.
        "names": {
            "class": {str(c): names["class"].get(c, str(c)) for c in sorted(used)},
            "luggage_type": {str(k): v for k, v in names["luggage_type"].items()},
            "scanner_model": {str(k): v for k, v in names["scanner_model"].items()},
            "pose": {str(k): v for k, v in names["pose"].items()},
        },
    }


# -- reading ------------------------------------------------------------------------------


def list_versions(catalog: Catalog, name: str | None = None) -> list[dict[str, Any]]:
    """Every frozen version (of ``name``), oldest first per name. Any thread; read-only."""
    out = []
    for v in store.versions(catalog, name):
        out.append({
            "name": v["name"], "version": v["version"], "rule": v["rule"],
            "plan": f"{v['plan_name']} v{v['plan_version']}", "images": v["images"], "boxes": v["boxes"],
            "parent": f"{v['parent_name']}@{v['parent_version']}" if v["parent_name"] else None,
            "test_version": f"{v['test_name']}@{v['test_version']}" if v["test_name"] else None,
            "seed": v["seed"], "label_seq": v["label_seq"], "content_hash": v["content_hash"],
            "frozen_at": v["frozen_at"], "frozen_by": v["frozen_by"],
            "subsets": json.loads(v["report_json"])["subsets"],  # images per subset, as frozen
        })
    return out


def show(catalog: Catalog, ref: str | VersionRef) -> dict[str, Any]:
    """A version: its record, its rule, its freeze report and its lineage."""
    v = resolve(catalog, ref)
    listed = next(x for x in list_versions(catalog, v["name"]) if x["version"] == v["version"])
    return {**listed, "rule_json": json.loads(v["rule_json"]), "report": json.loads(v["report_json"]),
            "lineage": lineage(catalog, v)}


def lineage(catalog: Catalog, version: dict[str, Any] | str) -> dict[str, Any]:
    """Which versions this one was derived from (nearest first), and which were derived from it."""
    v = resolve(catalog, version) if isinstance(version, str) else version
    ancestors = []
    seen = {v["id"]}
    current = v
    while current["parent_id"] is not None and current["parent_id"] not in seen:
        current = store.version_by_id(catalog, current["parent_id"])
        seen.add(current["id"])
        ancestors.append({"version": f"{current['name']}@{current['version']}", "rule": current["rule"]})
    descendants = []
    queue = [v]
    while queue:
        node = queue.pop(0)
        for child in store.children(catalog, node["id"]):
            descendants.append({"version": f"{child['name']}@{child['version']}", "rule": child["rule"],
                                "from": f"{node['name']}@{node['version']}"})
            queue.append(child)
    return {"ancestors": ancestors, "descendants": descendants}


def member_ids(catalog: Catalog, ref: str | VersionRef, subset: str | None = None) -> list[int]:
    """Image ids of a version (of one subset), ascending."""
    return store.member_ids(catalog, resolve(catalog, ref)["id"], subset)


def export(lab, ref: str | VersionRef, fmt: str, out_dir, *, link: bool = False):
    """Write a version's images and the labels it was frozen with in ``fmt``
    (``core.labels.exports``: the format's files, the images, a manifest of hashes)."""
    from core.labels.exports import export_labels

    v = resolve(lab.catalog, ref)
    image_ids, revision_ids = frozen_labels(lab.catalog, v)
    return export_labels(lab, fmt, out_dir, image_ids=image_ids, revision_ids=revision_ids,
                         as_of=v["label_seq"], link=link)


def frozen_labels(catalog: Catalog, version: dict[str, Any]) -> tuple[list[int], list[int]]:
    """A version's image ids and the ids of the label revisions it was frozen with, straight
    from its member arrays (what an export needs)."""
    m = store.read_members(catalog, version["id"])
    return m.image_ids.tolist(), m.revisions.tolist()
