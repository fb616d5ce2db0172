"""Dataset versions at scale: freeze, diff and label distribution, each against a baseline timed in the same run.

    python -m tests.bench.bench_datasets                      # 2,000,000 images: a 1,000,000-image test set, 3M boxes
    python -m tests.bench.bench_datasets --images 100000      # smaller
    python -m tests.bench.bench_datasets --template DIR       # seed into DIR once, later runs copy it

The catalog comes from tests/bench/seed.py (images, half of them test) and
tests/bench/seed_labels.py (boxes through the labels API; the test split gets
``test_boxes_per_image``, so that at 2M images the test set holds 3M boxes).
The lab (seeded, or copied from the template) is synced to disk before anything
is timed, so that no commit waits on the kernel writing back the copy.

* freeze: ``xlab dataset freeze`` of the test set (every test image) — target
  ≤ 10 s at 1M images. Baseline: writing the same members as one row per
  image (the first design's storage) with executemany into a plain table with
  no trigger or index, in one transaction — the floor of that design.
* diff: the test set frozen again after label edits (a box deleted and one
  drawn on 1 % of the images) and 0.5 % of the images made unusable; the diff
  of the two versions — target ≤ 5 s. Baseline: pandas merging both
  memberships and their (image, revision) pairs. Both must find the same changes.
* distribution of the 1M-image version — target ≤ 200 ms. Baseline: pandas
  grouping the version's boxes read from the catalog. Both must agree.
* train 1:1: the clone of the test mix, timed for the record.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from core.catalog import dataset_store, label_store
from core.catalog.images import update_image
from core.datasets import diff as dataset_diff
from core.datasets import distribution as dataset_distribution
from core.datasets import versions
from core.lab import Lab
from core.labels.annotations import write_revisions
from tests.bench.seed import seed_catalog
from tests.bench.seed_labels import seed_labels

TARGETS = {"freeze_s": 10.0, "diff_s": 5.0, "distribution_ms": 200.0}


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def _version_id(lab: Lab, name: str, version: int) -> int:
    return versions.resolve(lab.catalog, f"{name}@{version}")["id"]


def floor_write(lab: Lab, name: str, version: int) -> float:
    """Seconds to write a version's members as one row per image (as the first design stored them)
    into a plain table with no trigger and no index (executemany, one transaction)."""
    rows = dataset_store.members(lab.catalog, _version_id(lab, name, version))
    with lab.catalog.write("bench") as txn:
        txn.execute("CREATE TEMP TABLE IF NOT EXISTS floor_rows (image_id, subset, class_key, luggage_type_id, "
                    "clutter_level, scanner_model_id, pose_key, item_key, bag_id, negative, boxes, revisions)")
        start = time.perf_counter()
        txn.executemany("INSERT INTO temp.floor_rows VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        seconds = time.perf_counter() - start
        txn.execute("DROP TABLE temp.floor_rows")
    return seconds


def _frames(lab: Lab, name: str, version: int):
    """A version's members as two DataFrames: (image_id, negative) and (image_id, revision_id)."""
    import numpy as np
    import pandas as pd

    m = dataset_store.read_members(lab.catalog, _version_id(lab, name, version))
    return (pd.DataFrame({"image_id": m.image_ids, "negative": m.negatives}),
            pd.DataFrame({"image_id": np.repeat(m.image_ids, m.boxes), "revision_id": m.revisions}))


def pandas_diff(lab: Lab, a: tuple[str, int], b: tuple[str, int]) -> dict[str, set[int]]:
    """The diff by pandas merges: of the members, and of their (image, revision) pairs."""
    (x, xr), (y, yr) = _frames(lab, *a), _frames(lab, *b)
    both = x.merge(y, on="image_id", how="outer", suffixes=("_a", "_b"), indicator=True)
    kept = both[both["_merge"] == "both"]
    pairs = xr.merge(yr, on=["image_id", "revision_id"], how="outer", indicator=True)
    one_sided = set(pairs.loc[pairs["_merge"] != "both", "image_id"].tolist())
    changed = set(kept.loc[kept["negative_a"] != kept["negative_b"], "image_id"].tolist())
    changed |= one_sided & set(kept["image_id"].tolist())
    return {"removed": set(both.loc[both["_merge"] == "left_only", "image_id"].tolist()),
            "added": set(both.loc[both["_merge"] == "right_only", "image_id"].tolist()),
            "labels_changed": changed}


def pandas_distribution(lab: Lab, name: str, version: int) -> dict[str, int]:
    """Boxes per class over the version's images, grouped from the boxes themselves."""
    import pandas as pd

    conn = lab.catalog.reader()
    revision_ids = _frames(lab, name, version)[1]["revision_id"]
    boxes = pd.read_sql("SELECT r.id, c.name AS class_name, (r.x1 - r.x0) * (r.y1 - r.y0) AS area "
                        "FROM annotation_revisions r JOIN threat_classes c ON c.id = r.class_id", conn)
    boxes = boxes[boxes["id"].isin(revision_ids)]
    return {k: int(v) for k, v in boxes.groupby("class_name").size().items()}


def _edit_labels(lab: Lab, image_ids: list[int]) -> int:
    """Delete the first box and draw a new one on each image (one transaction, labels API)."""
    boxes = label_store.current_boxes(lab.catalog, image_ids)
    first: dict[int, dict] = {}
    for b in boxes:
        first.setdefault(b["image_id"], b)
    rows = []
    for b in first.values():
        keep = {k: b[k] for k in label_store.BOX_FIELDS}
        rows.append({**keep, "annotation_id": b["annotation_id"], "deleted": 1})
        rows.append({**keep, "annotation_id": None, "x0": 1.0, "y0": 1.0, "x1": 40.0, "y1": 30.0})
    with lab.catalog.write("bench") as txn:
        write_revisions(txn, rows)
    return len(first)


def seed(lab: Lab, images: int, classes: int, test_boxes_per_image: float, train_boxes_per_image: float) -> dict:
    """The bench's catalog: images (half of them test), then boxes through the labels API."""
    t, _seeded = _timed(lambda: seed_catalog(lab, n_classes=classes, n_images=images, items_per_class=6, n_bags=120))
    split_of = {r["id"]: r["split"] for r in lab.catalog.query("SELECT id, split FROM images")}
    test_ids = {i for i, s in split_of.items() if s == "test"}
    t1, _ = _timed(lambda: seed_labels(lab, test_boxes_per_image, seed=1, image_ids=test_ids))
    t2, _ = _timed(lambda: seed_labels(lab, train_boxes_per_image, seed=2, image_ids=set(split_of) - test_ids))
    return {"seed_images_s": t, "seed_labels_s": t1 + t2}


def run(images: int = 2_000_000, classes: int = 10, test_boxes_per_image: float = 3.34,
        train_boxes_per_image: float = 1.0, root: Path | None = None, edit_fraction: float = 0.01,
        unusable_fraction: float = 0.005, template: Path | None = None) -> dict:
    """``template``: a folder holding a lab seeded by an earlier run with ``template`` (copied, and
    ``images`` and ``classes`` ignored), or where to seed one (kept for the next run). The lab is
    made under ``root`` (kept), else in a temporary folder (removed at the end)."""
    temporary = root is None
    root = Path(root or tempfile.mkdtemp(prefix="xlab-bench-datasets-"))
    out: dict = {"seed_images_s": 0.0, "seed_labels_s": 0.0}
    if template is not None and (Path(template) / "catalog.sqlite").exists():
        shutil.copytree(template, root / "lab")
        lab = Lab.open(root / "lab")
    else:
        lab = Lab.init(Path(template) if template is not None else root / "lab")
        out.update(seed(lab, images, classes, test_boxes_per_image, train_boxes_per_image))
        if template is not None:
            lab.close()
            shutil.copytree(template, root / "lab")
            lab = Lab.open(root / "lab")
    # The copy's gigabytes reach the disk before anything is timed: a freeze's commit would
    # otherwise wait behind the kernel writing back the bench's own copy.
    os.sync()
    try:
        count = lab.catalog.query_one
        out["catalog_images"] = count("SELECT COUNT(*) AS n FROM images")["n"]
        out["catalog_boxes"] = count("SELECT COUNT(*) AS n FROM annotations WHERE deleted = 0")["n"]
        out["cells"] = count("SELECT COUNT(*) AS n FROM quota_cells")["n"]
        test_ids = {r["id"] for r in lab.catalog.query("SELECT id FROM images WHERE split = 'test'")}

        out["freeze_s"], first = _timed(lambda: versions.freeze(lab.catalog, "test-set", "test", plan="bench-plan",
                                                                actor="bench"))
        out["freeze_images"], out["freeze_boxes"] = first.images, first.boxes
        out["freeze_floor_s"] = floor_write(lab, "test-set", 1)
        out["freeze_vs_floor"] = out["freeze_s"] / out["freeze_floor_s"]
        out["test_images_in_catalog"] = len(test_ids)

        members = sorted(versions.member_ids(lab.catalog, "test-set@1"))
        step = max(1, int(1 / edit_fraction))
        out["edited_images"] = _edit_labels(lab, members[::step])
        unusable = members[step // 2::max(1, int(1 / unusable_fraction))]
        with lab.catalog.write("bench") as txn:
            for image_id in unusable:
                update_image(txn, image_id, {"usable": 0})
        out["made_unusable"] = len(unusable)
        second = versions.freeze(lab.catalog, "test-set", "test", plan="bench-plan", actor="bench")
        out["second_images"] = second.images
        out["diff_s"], d = _timed(lambda: dataset_diff.diff(lab.catalog, "test-set@1", "test-set@2"))
        out["diff"] = {"added": d.added, "removed": d.removed, "labels_changed": d.labels_changed, "moved": d.moved}
        out["diff_pandas_s"], theirs = _timed(lambda: pandas_diff(lab, ("test-set", 1), ("test-set", 2)))
        out["diff_ratio"] = out["diff_pandas_s"] / out["diff_s"]
        ours = dataset_diff.changed_images(lab.catalog, "test-set@1", "test-set@2")
        out["diff_agrees"] = {k: set(v) for k, v in ours.items()} == theirs and \
            [len(theirs[k]) for k in ("added", "removed", "labels_changed")] == [d.added, d.removed, d.labels_changed]

        timings = []
        for _ in range(5):
            t, dist = _timed(lambda: dataset_distribution.distribution(lab.catalog, "test-set@1"))
            timings.append(t)
        out["distribution_ms"] = sorted(timings)[len(timings) // 2] * 1000
        out["distribution_boxes"] = sum(c["boxes"] for c in dist.classes)
        t, per_class = _timed(lambda: pandas_distribution(lab, "test-set", 1))
        out["distribution_pandas_ms"] = t * 1000
        out["distribution_ratio"] = out["distribution_pandas_ms"] / out["distribution_ms"]
        out["distribution_agrees"] = per_class == {c["class_name"]: c["boxes"] for c in dist.classes if c["boxes"]}

        out["train_freeze_s"], train = _timed(lambda: versions.freeze(lab.catalog, "train", "train", ratio=1, seed=1,
                                                                      parent="test-set@2", actor="bench"))
        out["train_images"], out["train_subsets"] = train.images, train.subsets
        out["train_short"], out["train_borrowed"] = train.clone_short, train.clone_borrowed
    finally:
        lab.close()
        if temporary:  # a lab of 2M images is gigabytes
            shutil.rmtree(root, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2_000_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--template", type=Path, help="seeded lab to copy (seeded there first when absent)")
    args = parser.parse_args(argv)
    r = run(images=args.images, classes=args.classes, template=args.template)
    print(f"catalog: {r['catalog_images']:,} images, {r['catalog_boxes']:,} boxes, {r['cells']:,} cells "
          f"(seeded in {r['seed_images_s']:.0f} s + labels {r['seed_labels_s']:.0f} s)")
    print(f"freeze test set: {r['freeze_images']:,} images, {r['freeze_boxes']:,} boxes in {r['freeze_s']:.2f} s "
          f"(target ≤ {TARGETS['freeze_s']:.0f} s); writing the rows alone {r['freeze_floor_s']:.2f} s "
          f"(freeze/floor {r['freeze_vs_floor']:.1f}x)")
    print(f"diff of two {r['freeze_images']:,}/{r['second_images']:,}-image versions: {r['diff']} in {r['diff_s']:.2f} s "
          f"(target ≤ {TARGETS['diff_s']:.0f} s); pandas {r['diff_pandas_s']:.2f} s ({r['diff_ratio']:.1f}x); "
          f"agree: {r['diff_agrees']}")
    print(f"distribution of {r['distribution_boxes']:,} boxes: {r['distribution_ms']:.1f} ms "
          f"(target ≤ {TARGETS['distribution_ms']:.0f} ms); pandas {r['distribution_pandas_ms']:.0f} ms "
          f"({r['distribution_ratio']:.0f}x); agree: {r['distribution_agrees']}")
    print(f"train 1:1 clone: {r['train_images']:,} images {r['train_subsets']} in {r['train_freeze_s']:.2f} s "
          f"(borrowed {r['train_borrowed']:,}, short {r['train_short']:,})")
    ok = (r["freeze_s"] <= TARGETS["freeze_s"] and r["diff_s"] <= TARGETS["diff_s"]
          and r["distribution_ms"] <= TARGETS["distribution_ms"] and r["diff_agrees"] and r["distribution_agrees"])
    return 0 if ok or r["freeze_images"] < 1_000_000 else 1


if __name__ == "__main__":
    sys.exit(main())
