"""Label distribution of a dataset version: per class, per cell, boxes per image, box sizes.

Computed once when the version is frozen (``dataset_versions.stats_json``):
a version never changes, so reading its distribution costs one row, however
many boxes it holds. Names are those the classes, luggage types, scanner
models and poses had at freeze.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from core.catalog import Catalog
from core.catalog import dataset_store as store
from core.datasets.versions import VersionRef, resolve


@dataclass(frozen=True)
class Distribution:
    version: str
    subsets: dict[str, int]             # images per subset
    classes: list[dict[str, Any]]       # per box class and subset: boxes, and images whose cell is the class
    cells: list[dict[str, Any]]         # per cell and subset: images, setups, boxes
    boxes_per_image: list[dict[str, Any]]  # per subset: how many images have n boxes (negatives apart)
    box_sizes: list[dict[str, Any]]     # per box class, subset and size bucket: boxes
    size_buckets: list[str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def distribution(catalog: Catalog, ref: str | VersionRef) -> Distribution:
    """The label distribution of a frozen version. Any thread; read-only."""
    v = resolve(catalog, ref)
    stats = json.loads(store.stats_json(catalog, v["id"]))
    names = stats["names"]

    def name(kind: str, key: Any, none: str) -> str:
        if not key:
            return none
        return names[kind].get(str(key), str(key))

    per_class: dict[tuple[str, str], dict[str, Any]] = {}
    for subset, class_key, _bucket, boxes in stats["box_classes"]:
        entry = per_class.setdefault((name("class", class_key, "(no class)"), subset),
                                     {"class_name": name("class", class_key, "(no class)"), "subset": subset,
                                      "boxes": 0, "images": 0})
        entry["boxes"] += boxes
    cells = []
    for subset, class_key, luggage, clutter, model, pose, images, setups, boxes in stats["cells"]:
        class_name = name("class", class_key, "(clean)")
        cells.append({"subset": subset, "class_name": class_name, "luggage_type": name("luggage_type", luggage, "—"),
                      "clutter_level": clutter, "scanner_model": name("scanner_model", model, "—"),
                      "pose": name("pose", pose, "—"), "images": images, "setups": setups, "boxes": boxes})
        entry = per_class.setdefault((class_name, subset), {"class_name": class_name, "subset": subset,
                                                            "boxes": 0, "images": 0})
        entry["images"] += images
    buckets = stats["size_buckets"]
    return Distribution(
        version=f"{v['name']}@{v['version']}",
        subsets=stats["subsets"],
        classes=sorted(per_class.values(), key=lambda e: (e["class_name"], e["subset"])),
        cells=sorted(cells, key=lambda c: (c["class_name"], c["subset"], c["luggage_type"], c["clutter_level"],
                                           c["scanner_model"], c["pose"])),
        boxes_per_image=[{"subset": s, "negative": bool(neg), "boxes": b, "images": n}
                         for s, neg, b, n in stats["boxes_per_image"]],
        box_sizes=sorted(({"class_name": name("class", c, "(no class)"), "subset": s, "size": buckets[k], "boxes": n}
                          for s, c, k, n in stats["box_classes"]),
                         key=lambda e: (e["class_name"], e["subset"], buckets.index(e["size"]))),
        size_buckets=buckets,
    )
