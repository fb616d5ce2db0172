"""Quota status: for every cell of a plan, target vs captured, fill and deficit.

This is the query every dashboard and the planner hit, so it reads the plan's
cells and the trigger-kept tallies only (see ``core.catalog.migrations``):
its cost grows with the number of cells, not with the number of images.
Targets and deficits are in setups (item x bag x pose), the unit the sizing
counts; image counts are reported beside them.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.catalog import Catalog
from core.catalog import quota_store as store

COLUMNS = store.STATUS_COLUMNS + ("test_fill", "test_deficit", "train_fill", "train_deficit")


@dataclass(frozen=True)
class QuotaStatus:
    plan_id: int
    images_per_setup: int
    rows: list[tuple]  # one per cell, fields as in COLUMNS

    def column(self, name: str) -> int:
        return COLUMNS.index(name)

    def as_dicts(self) -> list[dict]:
        return [dict(zip(COLUMNS, row)) for row in self.rows]

    def totals(self) -> dict[str, float]:
        i = {name: COLUMNS.index(name) for name in COLUMNS}
        test_target = sum(r[i["test_target"]] for r in self.rows)
        train_target = sum(r[i["train_target"]] for r in self.rows)
        test_done = sum(min(r[i["test_setups"]], r[i["test_target"]]) for r in self.rows)
        train_done = sum(min(r[i["train_setups"]], r[i["train_target"]]) for r in self.rows)
        return {
            "cells": len(self.rows),
            "test_target": test_target,
            "test_done": test_done,
            "test_fill": test_done / test_target if test_target else 1.0,
            "train_target": train_target,
            "train_done": train_done,
            "train_fill": train_done / train_target if train_target else 1.0,
            "test_images": sum(r[i["test_images"]] for r in self.rows),
            "train_images": sum(r[i["train_images"]] for r in self.rows),
        }

    def by_class(self) -> list[dict]:
        i = {name: COLUMNS.index(name) for name in COLUMNS}
        out: dict[str, dict] = {}
        for r in self.rows:
            entry = out.setdefault(r[i["class_name"]], {
                "class_name": r[i["class_name"]], "test_target": 0, "test_done": 0, "test_images": 0,
                "train_target": 0, "train_done": 0, "train_images": 0,
            })
            for split in ("test", "train"):
                entry[f"{split}_target"] += r[i[f"{split}_target"]]
                entry[f"{split}_done"] += min(r[i[f"{split}_setups"]], r[i[f"{split}_target"]])
                entry[f"{split}_images"] += r[i[f"{split}_images"]]
        for entry in out.values():
            for split in ("test", "train"):
                t = entry[f"{split}_target"]
                entry[f"{split}_fill"] = entry[f"{split}_done"] / t if t else 1.0
                entry[f"{split}_deficit"] = t - entry[f"{split}_done"]
        return sorted(out.values(), key=lambda e: e["class_name"])


def _fill(done: int, target: int) -> float:
    return min(done, target) / target if target else 1.0


def quota_status(catalog: Catalog, plan_id: int, class_id: int | None = None) -> QuotaStatus:
    """Status of every cell of plan ``plan_id`` (optionally one class). Any thread; read-only."""
    plan = store.plan_by_id(catalog, plan_id)
    ips = plan["images_per_setup"] if plan else 1
    rows = [
        (*r, _fill(r[9], r[7]), max(0, r[7] - r[9]), _fill(r[12], r[10]), max(0, r[10] - r[12]))
        for r in store.status_rows(catalog, plan_id, class_id)
    ]
    return QuotaStatus(plan_id, ips, rows)
