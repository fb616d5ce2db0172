"""Labels for a catalog seeded by tests/bench/seed.py, through the labels API's bulk writer.

Every threat image gets boxes of its item's class (``boxes_per_image`` on
average, at least one), every clean image is a labelled negative. Boxes go
through ``core.labels.annotations.write_revisions`` in chunks of one
transaction each (the revision history, the current rows and the counters are
all the real triggers' work).
"""

from __future__ import annotations

import numpy as np

from core.catalog import label_store
from core.labels.annotations import write_revisions
from core.lab import Lab


def image_rows(lab: Lab) -> list[tuple[int, int | None]]:
    """(image id, class id of its item or None) of every image."""
    return [(r["id"], r["class_id"]) for r in lab.catalog.query(
        "SELECT i.id, t.class_id FROM images i LEFT JOIN threat_items t ON t.id = i.item_id ORDER BY i.id")]


def seed_labels(lab: Lab, boxes_per_image: float = 1.5, seed: int = 0, chunk: int = 200_000,
                image_ids: set[int] | None = None) -> dict[str, int]:
    """Boxes on threat images and negatives on clean ones (of ``image_ids``, default all)."""
    rng = np.random.default_rng(seed)
    rows = [r for r in image_rows(lab) if image_ids is None or r[0] in image_ids]
    threat = [(i, c) for i, c in rows if c is not None]
    clean = [i for i, c in rows if c is None]
    whole, part = int(boxes_per_image), boxes_per_image - int(boxes_per_image)
    counts = np.maximum(1, whole + (rng.random(len(threat)) < part))
    boxes = 0
    for start in range(0, len(threat), chunk):
        batch = []
        part_counts = counts[start:start + chunk]
        n = int(part_counts.sum())
        x0 = rng.uniform(0, 900, n)
        y0 = rng.uniform(0, 650, n)
        w = rng.uniform(4, 120, n)
        h = rng.uniform(4, 110, n)
        k = 0
        for (image_id, class_id), m in zip(threat[start:start + chunk], part_counts.tolist()):
            for _ in range(m):
                batch.append({"annotation_id": None, "image_id": image_id, "class_id": class_id, "label": "",
                              "x0": float(x0[k]), "y0": float(y0[k]), "x1": float(min(1024.0, x0[k] + w[k])),
                              "y1": float(min(768.0, y0[k] + h[k])), "iscrowd": 0, "difficult": 0, "truncated": 0,
                              "score": None, "rotation": 0.0, "source": "ground_truth", "qa_state": "accepted",
                              "deleted": 0})
                k += 1
        with lab.catalog.write("bench") as txn:
            write_revisions(txn, batch)
        boxes += len(batch)
    for start in range(0, len(clean), chunk):
        with lab.catalog.write("bench") as txn:
            first = label_store.reserve_seqs(txn, len(clean[start:start + chunk]))
            for n, image_id in enumerate(clean[start:start + chunk]):
                label_store.insert_image_label(txn, image_id, True, "ground_truth", first + n)
    return {"boxes": boxes, "threat_images": len(threat), "negatives": len(clean)}
