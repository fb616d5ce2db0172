"""Build a synthetic lab catalog of any size through the real core functions."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import numpy as np

from core.catalog.images import insert_images
from core.catalog.records import all_rows
from core.inventory import import_inventory
from core.inventory.yamlfile import dump_inventory, parse_inventory
from core.lab import Lab
from core.quota.plans import create_plan, publish_plan
from core.quota.spec import PlanSpec

LUGGAGE = ["hard_case", "soft_bag", "backpack", "tray", "parcel"]
POSES = ["flat", "flat_rotated", "edge_on", "angled_45", "under_laptop", "in_clutter"]
MODELS = ["SX-100", "DX-620", "DX-920"]


def inventory_text(n_classes: int, items_per_class: int = 3, n_bags: int = 60) -> str:
    families = [f"family_{i}" for i in range(max(1, n_classes // 10))]
    classes = [f"class_{i:03d}" for i in range(n_classes)]
    sections = {
        "threat_families": [{"name": f} for f in families],
        "threat_classes": [{"name": c, "family": families[i % len(families)]} for i, c in enumerate(classes)],
        "threat_items": [
            {"barcode": f"TI-{i * items_per_class + k:05d}", "class": c}
            for i, c in enumerate(classes) for k in range(items_per_class)
        ],
        "luggage_types": [{"name": n} for n in LUGGAGE],
        "bags": [
            {"barcode": f"BG-{i:05d}", "luggage_type": LUGGAGE[i % 5], "clutter": ("low", "medium", "high")[(i // 5) % 3]}
            for i in range(n_bags)
        ],
        "scanner_models": [
            {"name": m, "vendor": "SimScan", "width": 1024, "height": 768, "dual_energy": i > 0}
            for i, m in enumerate(MODELS)
        ],
        "scanners": [{"name": f"SCN-{i}", "model": MODELS[i % 3], "station": f"bench-{i}"} for i in range(10)],
        "poses": [{"name": p} for p in POSES],
    }
    return dump_inventory(sections)


def seed_catalog(lab: Lab, n_classes: int, n_images: int, seed: int = 0, chunk: int = 50_000,
                 items_per_class: int = 3, n_bags: int = 60, mix: dict | None = None) -> dict:
    """Inventory of ``n_classes`` classes, a published plan over it (``mix``: the
    plan's deployment mix, default every value of every dimension), ``n_images`` image rows."""
    parsed = parse_inventory(inventory_text(n_classes, items_per_class, n_bags).encode(), "synthetic-inventory.yaml")
    import_inventory(lab.catalog, parsed, actor="bench")
    spec = PlanSpec(name="bench-plan", mix=mix or {})
    create_plan(lab.catalog, spec, actor="bench")
    publish_plan(lab.catalog, spec.name, actor="bench")
    items = [r["id"] for r in all_rows(lab.catalog, "threat_items")]
    bags = [r["id"] for r in all_rows(lab.catalog, "bags")]
    poses = [r["id"] for r in all_rows(lab.catalog, "poses")]
    scanners = [r["id"] for r in all_rows(lab.catalog, "scanners")]
    rng = np.random.default_rng(seed)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    done = 0
    while done < n_images:
        n = min(chunk, n_images - done)
        clean = rng.random(n) < 0.1
        # Items and bags alternate between the test and train pools (an
        # object is never in both splits): the bag picks the split, the
        # item comes from the same pool.
        bag_index = rng.integers(0, len(bags), n)
        bag = np.asarray(bags)[bag_index]
        train = bag_index % 2
        test_items, train_items = np.asarray(items[0::2]), np.asarray(items[1::2])
        item = np.where(train == 1, train_items[rng.integers(0, len(train_items), n)],
                        test_items[rng.integers(0, len(test_items), n)])
        pose = rng.choice(poses, n)
        scanner = rng.choice(scanners, n)
        split = np.where(train == 1, "train", "test")
        minutes = rng.integers(0, 60 * 24 * 300, n)
        rows = []
        for k in range(n):
            i = done + k
            at = (start + timedelta(minutes=int(minutes[k]))).isoformat()
            rows.append((
                hashlib.sha256(i.to_bytes(8, "little")).hexdigest(), f"store/{i:08x}.png", f"img_{i}.png",
                int(scanner[k]), at, at, str(split[k]),
                None if clean[k] else int(item[k]), int(bag[k]), None if clean[k] else int(pose[k]),
                1024, 768, 16, 1, "", 1,
            ))
        with lab.catalog.write("bench") as txn:
            insert_images(txn, rows)
        done += n
    cells = lab.catalog.query_one("SELECT COUNT(*) AS n FROM quota_cells")["n"]
    return {"images": n_images, "cells": cells, "classes": n_classes}


def in_pool(object_id: int, split: str) -> int:
    """The id next to ``object_id`` in ``split``'s pool as seeded: odd ids test, even ids train."""
    if (object_id % 2 == 1) == (split == "test"):
        return object_id
    return 2 if object_id == 1 else object_id - 1
