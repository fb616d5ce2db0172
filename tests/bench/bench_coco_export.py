"""COCO export benchmark: XLab's COCO writer against writing the same JSON with
the standard library alone, in the same run.

    python -m tests.bench.bench_coco_export            # 100,000 images, 150,000 boxes
    python -m tests.bench.bench_coco_export --smoke    # seconds

Target: the writer's images/s >= 50 % of the baseline's. ``json.dumps`` (one-shot
C encoding, which ``json.dump`` does not use) is timed too and printed for the record. The baseline is given
the document's dicts already built (building them is not timed) and writes
them with a plain ``json.dump``; the writer is timed from the label set to the
finished file. Both files are then loaded and must hold the same document.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from core.labels.formats import coco
from core.labels.model import LabelBox, LabelImage, LabelSet

CLASSES = ("handgun", "knife_kitchen", "scissors", "lighter", "power_bank")
BOXES_PER_IMAGE = (3, 1, 2, 0)  # 1.5 on average; every fourth image a clean-bag negative


def make_labels(images: int, seed: int = 12) -> LabelSet:
    rng = random.Random(seed)
    out = []
    for i in range(images):
        w, h = (2048, 2048) if i % 3 else (1024, 768)
        boxes = []
        for j in range(BOXES_PER_IMAGE[i % 4]):
            x0, y0 = rng.uniform(0, w - 200), rng.uniform(0, h - 200)
            boxes.append(LabelBox(CLASSES[(i + j) % len(CLASSES)], x0, y0, x0 + rng.uniform(5, 199),
                                  y0 + rng.uniform(5, 199), iscrowd=(i + j) % 97 == 0))
        out.append(LabelImage(f"bags/{i // 1000:03d}/scan_{i:06d}.png", w, h, tuple(boxes),
                              negative=not boxes))
    return LabelSet(tuple(out), CLASSES)


def baseline_document(labels: LabelSet) -> dict:
    """The same document as plain dicts, built here without the writer's code."""
    cat_id = {name: k for k, name in enumerate(labels.categories, 1)}
    images, annotations = [], []
    for image_id, im in enumerate(labels.images, 1):
        images.append({"id": image_id, "file_name": im.file_name, "width": im.width, "height": im.height})
        for b in im.boxes:
            w, h = b.x1 - b.x0, b.y1 - b.y0
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": cat_id[b.label],
                                "bbox": [b.x0, b.y0, w, h], "area": w * h, "iscrowd": int(b.iscrowd),
                                "segmentation": [[b.x0, b.y0, b.x1, b.y0, b.x1, b.y1, b.x0, b.y1]]})
    return {"images": images, "annotations": annotations,
            "categories": [{"id": k, "name": n, "supercategory": ""} for n, k in cat_id.items()]}


def run(images: int = 100_000, repeats: int = 3, root: Path | None = None) -> dict:
    labels = make_labels(images)
    doc = baseline_document(labels)
    with tempfile.TemporaryDirectory(dir=root) as d:
        d = Path(d)
        writer_s, baseline_s, dumps_s = [], [], []
        for _ in range(repeats):  # alternate, so both see the same machine state
            start = time.perf_counter()
            [ours] = coco.write(labels, d / "ours")
            writer_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            with open(d / "baseline.json", "w", encoding="utf-8") as f:
                json.dump(doc, f)
            baseline_s.append(time.perf_counter() - start)
            # For the record: json.dumps encodes in one shot with the C encoder
            # (json.dump does not), the fastest the standard library can go.
            start = time.perf_counter()
            with open(d / "dumps.json", "w", encoding="utf-8") as f:
                f.write(json.dumps(doc))
            dumps_s.append(time.perf_counter() - start)
        with open(ours, encoding="utf-8") as f:
            ours_doc = json.load(f)
        with open(d / "baseline.json", encoding="utf-8") as f:
            base_doc = json.load(f)
    writer, baseline = min(writer_s), min(baseline_s)
    return {"images": images, "boxes": len(doc["annotations"]), "writer_s": writer, "baseline_s": baseline,
            "writer_images_per_s": images / writer, "baseline_images_per_s": images / baseline,
            "ratio": baseline / writer, "dumps_s": min(dumps_s), "ratio_vs_dumps": min(dumps_s) / writer,
            "same_document": ours_doc == base_doc,
            "written_images": len(ours_doc["images"]), "written_annotations": len(ours_doc["annotations"])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    r = run(images=2_000 if args.smoke else 100_000, repeats=1 if args.smoke else 3)
    print(f"COCO export: {r['images']:,} images, {r['boxes']:,} boxes")
    print(f"  XLab writer       {r['writer_s']:.2f} s  {r['writer_images_per_s']:,.0f} images/s")
    print(f"  json.dump of dicts {r['baseline_s']:.2f} s  {r['baseline_images_per_s']:,.0f} images/s")
    print(f"  (json.dumps, C encoder in one shot: {r['dumps_s']:.2f} s; writer at {r['ratio_vs_dumps']:.0%} of it)")
    verdict = "OK" if r["ratio"] >= 0.5 and r["same_document"] else "BELOW TARGET"
    print(f"  writer at {r['ratio']:.0%} of the baseline (target >= 50 %), same document: "
          f"{r['same_document']}  {verdict}")
    return 0 if verdict == "OK" else 1


if __name__ == "__main__":
    sys.exit(main())
