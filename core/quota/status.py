"""Quota status: for every cell of a plan, target vs captured, fill and deficit.

This is the query every dashboard and the planner hit, so it reads the
trigger-kept tallies only (see ``core.catalog.migrations``), never ``images``:
its cost grows with the number of cells, not with the number of images. The
fixed part of a published plan's cells (names, targets) is read once and
cached per catalog; a change to inventory names or plans (seen through the
audit log) drops the cache.
Targets and deficits are in setups (item x bag x pose), the unit the sizing
counts; image counts are reported beside them.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

from core.catalog import Catalog
from core.catalog import quota_store as store
from core.errors import UnknownNameError

COLUMNS = store.STATUS_COLUMNS + ("test_fill", "test_deficit", "train_fill", "train_deficit")
_AT = {name: index for index, name in enumerate(COLUMNS)}


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
        i = _AT
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
        i = _AT
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


@dataclass
class _CachedCells:
    signature: tuple
    images_per_setup: int
    cells: list[tuple]


@dataclass
class _Tallies:
    seq: int = 0
    clock: int = 0
    by_split: dict[str, dict[tuple, tuple[int, int]]] = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.by_split = {"test": {}, "train": {}}


# Per catalog: the fixed part of published plans' cells, and the tallies as of
# their last read; a refresh fetches only the tally rows changed since.
_cache: "weakref.WeakKeyDictionary[Catalog, dict[int, _CachedCells]]" = weakref.WeakKeyDictionary()
_tallies: "weakref.WeakKeyDictionary[Catalog, _Tallies]" = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


def _refreshed_tallies(catalog: Catalog) -> _Tallies:
    """Bring the cached tallies up to date. Call with ``_cache_lock`` held."""
    state = _tallies.get(catalog)
    if state is None:
        state = _tallies[catalog] = _Tallies()
    clock, reset, rows = store.tally_snapshot(catalog, state.seq)
    if clock < state.clock or reset > state.seq:
        # rebuilt since the last read (rows may be gone), or another file
        state = _tallies[catalog] = _Tallies()
        clock, reset, rows = store.tally_snapshot(catalog, 0)
    for seq, split, *key, images, setups in rows:
        state.by_split[split][tuple(key)] = (images, setups)
        if seq > state.seq:
            state.seq = seq
    state.clock = clock
    return state


def _cells(catalog: Catalog, plan_id: int) -> tuple[int, list[tuple]]:
    signature = store.inventory_signature(catalog)
    with _cache_lock:
        cached = _cache.setdefault(catalog, {}).get(plan_id)
    if cached is not None and cached.signature == signature:
        return cached.images_per_setup, cached.cells
    plan = store.plan_by_id(catalog, plan_id)
    if plan is None:
        raise UnknownNameError(f"no quota plan with id {plan_id}")
    cells = store.plan_cells(catalog, plan_id)
    if plan["status"] == "published":
        with _cache_lock:
            _cache[catalog][plan_id] = _CachedCells(signature, plan["images_per_setup"], cells)
    return plan["images_per_setup"], cells


def quota_status(catalog: Catalog, plan_id: int, class_id: int | None = None) -> QuotaStatus:
    """Status of every cell of plan ``plan_id`` (optionally one class). Any thread; read-only."""
    ips, cells = _cells(catalog, plan_id)
    with _cache_lock:
        tallies = _refreshed_tallies(catalog)
        rows = _merge(cells, tallies.by_split["test"], tallies.by_split["train"], class_id)
    return QuotaStatus(plan_id, ips, rows)


def _merge(cells: list[tuple], test: dict, train: dict, class_id: int | None) -> list[tuple]:
    none = (0, 0)
    rows = []
    for c in cells:
        if class_id is not None and c[1] != class_id:
            continue
        key = c[10:15]
        te_images, te_setups = test.get(key, none)
        tr_images, tr_setups = train.get(key, none)
        test_target, train_target = c[7], c[8]
        rows.append((
            c[0], c[1], c[2], c[3], c[4], c[5], c[6],
            test_target, te_images, te_setups, train_target, tr_images, tr_setups, c[9],
            min(te_setups, test_target) / test_target if test_target else 1.0,
            max(0, test_target - te_setups),
            min(tr_setups, train_target) / train_target if train_target else 1.0,
            max(0, train_target - tr_setups),
        ))
    return rows
