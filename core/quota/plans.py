"""Versioned test-set quota plans.

A plan is built from a :class:`PlanSpec` and the inventory: each class's test
size comes from its KPI (:mod:`core.quota.sizing`), is spread over the
deployment mix (:mod:`core.quota.mix`) into cells, and its train target is the
class's ratio step times its test target. Clean bags (no threat) are sized
from the false-alarm KPI and spread over luggage x clutter x scanner model.

Versions: ``create_plan`` on a new name makes version 1 as a draft; on a name
whose latest version is a draft it replaces that draft; on a published name it
makes the next version. A published version is immutable (the catalog refuses
changes); every step is in the audit log.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from core.catalog import Catalog
from core.catalog import quota_store as store
from core.catalog.db import WriteTransaction, utc_now
from core.catalog.records import rows_in_txn
from core.errors import PlanError, PlanPublishedError, UnknownNameError
from core.inventory.sections import CLUTTER_LEVELS
from core.quota.mix import MAX_CELLS, expand
from core.quota.sizing import size_kpi, wilson_sample_size
from core.quota.spec import DIMENSIONS, PlanSpec


# Expansion and storage grow with the cell count; the brief's scale is 10,000+
# cells, so this leaves twentyfold headroom while keeping a rebuild to seconds.
MAX_PLAN_CELLS = 200_000


@dataclass(frozen=True)
class PlanRef:
    id: int
    name: str
    version: int
    status: str
    note: str = ""


@dataclass(frozen=True)
class _Inventory:
    classes: dict[str, int]  # active classes
    luggage_types: dict[str, int]
    scanner_models: dict[str, int]
    poses: dict[str, int]

    def values(self, dim: str) -> list[tuple[str, Any]]:
        if dim == "clutter":
            return [(c, c) for c in CLUTTER_LEVELS]
        table = {"luggage_type": self.luggage_types, "scanner_model": self.scanner_models, "pose": self.poses}[dim]
        return sorted(table.items())


def _inventory(txn: WriteTransaction) -> _Inventory:
    def names(table: str, where: str = "") -> dict[str, int]:
        return {r["name"]: r["id"] for r in rows_in_txn(txn, table) if not where or r[where]}

    return _Inventory(
        classes=names("threat_classes", "active"),
        luggage_types=names("luggage_types"),
        scanner_models=names("scanner_models"),
        poses=names("poses"),
    )


def _weights(inv: _Inventory, mix: dict[str, dict[str, float]], dims: tuple[str, ...], where: str) -> list[tuple[list, list[float]]]:
    out = []
    for dim in dims:
        values = inv.values(dim)
        if not values:
            raise PlanError(f"the inventory has no {dim.replace('_', ' ')}s; import the inventory first")
        given = mix.get(dim)
        if given is None:
            out.append(([v for _, v in values], [1.0] * len(values)))
            continue
        known = {n for n, _ in values}
        unknown = sorted(set(given) - known)
        if unknown:
            raise UnknownNameError(f"{where}: mix.{dim} names {', '.join(unknown)}, not in the inventory (known: {', '.join(sorted(known))})")
        out.append(([v for _, v in values], [float(given.get(n, 0.0)) for n, _ in values]))
    return out


def _cells_for(total: int, weights: list[tuple[list, list[float]]], fixed: dict[tuple, int] | None = None) -> dict[tuple, int]:
    """Expanded cells keyed by dimension values (not indices)."""
    index_of = [{v: i for i, v in enumerate(values)} for values, _ in weights]
    fixed_idx = {tuple(index_of[d][v] for d, v in enumerate(key)): n for key, n in (fixed or {}).items()}
    counts = expand(total, [w for _, w in weights], fixed_idx)
    return {tuple(weights[d][0][i] for d, i in enumerate(idx)): n for idx, n in counts.items()}


def _check_size(inv: _Inventory) -> None:
    """Refuse, before any work, a plan whose cells would take too long to expand and store."""
    per_class = math.prod(len(inv.values(dim)) for dim in DIMENSIONS)
    clean = math.prod(len(inv.values(dim)) for dim in DIMENSIONS[:3])
    total = len(inv.classes) * per_class + clean
    if per_class > MAX_CELLS or total > MAX_PLAN_CELLS:
        raise PlanError(
            f"this plan would have {total:,} quota cells ({len(inv.classes)} classes x {per_class:,} mix cells each); "
            f"the limit is {MAX_PLAN_CELLS:,} in all and {MAX_CELLS:,} per class: deactivate classes or remove unused poses, "
            "luggage types or scanner models from the inventory"
        )


def _build(txn: WriteTransaction, plan_id: int, spec: PlanSpec, overrides: dict[tuple, int]) -> None:
    """Write the plan's per-class rows and cells. ``overrides``: cell key → test target."""
    inv = _inventory(txn)
    unknown = sorted(set(spec.classes) - set(inv.classes))
    if unknown:
        raise UnknownNameError(f"plan '{spec.name}' names classes not in the inventory (or inactive): {', '.join(unknown)}")
    if not inv.classes:
        raise PlanError("the inventory has no active threat classes; import the inventory first")
    _check_size(inv)
    class_rows, cells = [], []
    for class_name, class_id in sorted(inv.classes.items()):
        kpi = spec.kpi_for(class_name)
        sizing = size_kpi(kpi.detection_rate, kpi.half_width, kpi.confidence, kpi.sizing, kpi.misses_allowed)
        total = kpi.test_setups if kpi.test_setups is not None else sizing.required
        fixed = {key[1:]: n for key, n in overrides.items() if key[0] == class_id}
        weights = _weights(inv, spec.mix_for(class_name), DIMENSIONS, f"class {class_name}")
        for key, n in _cells_for(total, weights, fixed).items():
            cells.append((plan_id, class_id, *key, n, n * kpi.ratio_step, int(key in fixed)))
        class_rows.append({
            "plan_id": plan_id, "class_id": class_id, "detection_rate": kpi.detection_rate,
            "half_width": kpi.half_width, "confidence": kpi.confidence,
            "max_false_alarm_rate": kpi.max_false_alarm_rate, "sizing": kpi.sizing,
            "misses_allowed": kpi.misses_allowed, "required_setups": sizing.required,
            "test_setups": total, "ratio_step": kpi.ratio_step,
        })
    clean = spec.clean
    clean_total = clean.setups if clean.setups is not None else wilson_sample_size(clean.false_alarm_rate, clean.half_width, clean.confidence)
    clean_fixed = {key[1:4]: n for key, n in overrides.items() if key[0] is None}
    clean_weights = _weights(inv, spec.mix_for(None), DIMENSIONS[:3], "clean bags")
    for key, n in _cells_for(clean_total, clean_weights, clean_fixed).items():
        # Clean bags train at 1:1 with the test set; false alarms are not per class.
        cells.append((plan_id, None, *key, None, n, n, int(key in clean_fixed)))
    store.insert_plan_classes(txn, class_rows)
    store.insert_cells(txn, cells)
    store.update_draft_plan(txn, plan_id, {"clean_setups": clean_total})


def _plan_row(spec: PlanSpec, version: int, based_on: int | None, actor: str) -> dict[str, Any]:
    return {
        "name": spec.name, "version": version, "status": "draft", "based_on": based_on,
        "images_per_setup": spec.images_per_setup,
        "clean_false_alarm_rate": spec.clean.false_alarm_rate,
        "clean_half_width": spec.clean.half_width, "clean_confidence": spec.clean.confidence,
        "clean_setups": 0, "spec_json": spec.to_json(), "note": spec.note,
        "created_at": utc_now(), "created_by": actor,
    }


def _draft_for_edit(txn: WriteTransaction, name: str, spec: PlanSpec | None) -> tuple[dict[str, Any], bool]:
    """The draft to write into: the latest if it is a draft, else a new version."""
    latest = store.latest_in_txn(txn, name)
    if latest is not None and latest["status"] == "draft":
        return latest, False
    if spec is None:
        if latest is None:
            raise UnknownNameError(f"no quota plan named '{name}'")
        spec = PlanSpec.from_json(latest["spec_json"])
    version = 1 if latest is None else latest["version"] + 1
    row = _plan_row(spec, version, latest["id"] if latest else None, txn.actor)
    row["id"] = store.insert_plan(txn, row)
    txn.audit("create", "quota_plan", f"{name} v{version}", None, {"based_on": latest and f"{name} v{latest['version']}"})
    return row, True


def _overrides(txn: WriteTransaction, plan_id: int) -> dict[tuple, int]:
    return {
        (c["class_id"], c["luggage_type_id"], c["clutter_level"], c["scanner_model_id"], c["pose_id"]): c["test_target"]
        for c in store.cells_in_txn(txn, plan_id)
        if c["overridden"]
    }


def create_plan(catalog: Catalog, spec: PlanSpec, actor: str | None = None, keep_overrides: bool = True) -> PlanRef:
    """Build a draft from ``spec`` (new name, replaced draft, or next version)."""
    catalog.require("quotas")
    with catalog.write(actor) as txn:
        return draft_plan_in(txn, spec, keep_overrides)


def draft_plan_in(txn: WriteTransaction, spec: PlanSpec, keep_overrides: bool = True) -> PlanRef:
    """:func:`create_plan` inside the caller's transaction (a class change drafts
    the next versions of the plans it concerns together with the change)."""
    latest = store.latest_in_txn(txn, spec.name)
    plan, created = _draft_for_edit(txn, spec.name, spec)
    overrides: dict[tuple, int] = {}
    if latest is not None and keep_overrides:
        overrides = _overrides(txn, latest["id"])
    if not created:
        before = {"spec": plan["spec_json"]}
        store.clear_draft_contents(txn, plan["id"])
        store.update_draft_plan(txn, plan["id"], {k: v for k, v in _plan_row(spec, plan["version"], plan["based_on"], txn.actor).items() if k not in ("version", "based_on")})
        txn.audit("replace_draft", "quota_plan", f"{spec.name} v{plan['version']}", before, {"spec": spec.to_json()})
    _build(txn, plan["id"], spec, overrides)
    txn.summary.append(f"quota plan {spec.name} v{plan['version']} drafted")
    return PlanRef(plan["id"], spec.name, plan["version"], "draft", spec.note)


def publish_plan(catalog: Catalog, name: str, actor: str | None = None) -> PlanRef:
    catalog.require("quotas")
    with catalog.write(actor) as txn:
        return publish_in(txn, name)


def publish_in(txn: WriteTransaction, name: str) -> PlanRef:
    """:func:`publish_plan` inside the caller's transaction (the loop drafts and publishes together)."""
    latest = store.latest_in_txn(txn, name)
    if latest is None:
        raise UnknownNameError(f"no quota plan named '{name}'")
    if latest["status"] == "published":
        raise PlanPublishedError(f"{name} v{latest['version']} is already published")
    store.publish(txn, latest["id"], utc_now(), txn.actor)
    txn.audit("publish", "quota_plan", f"{name} v{latest['version']}", {"status": "draft"}, {"status": "published"})
    txn.summary.append(f"quota plan {name} v{latest['version']} published")
    return PlanRef(latest["id"], name, latest["version"], "published", latest["note"])


@dataclass(frozen=True)
class CellKey:
    """A quota cell by names. ``class_name`` None: clean bags (then ``pose`` is None)."""

    class_name: str | None
    luggage_type: str
    clutter: str
    scanner_model: str
    pose: str | None


def override_cell(catalog: Catalog, plan_name: str, key: CellKey, test_target: int | None, actor: str | None = None) -> PlanRef:
    """Fix one cell's test target (``None`` releases it) and rebalance the rest of its class.

    Edits the latest draft; if the latest version is published, a new draft
    version is made first (the published one never changes).
    """
    catalog.require("quotas")
    if test_target is not None and test_target < 0:
        raise PlanError("a cell target cannot be negative")
    with catalog.write(actor) as txn:
        latest = store.latest_in_txn(txn, plan_name)
        if latest is None:
            raise UnknownNameError(f"no quota plan named '{plan_name}'")
        overrides = _overrides(txn, latest["id"])
        inv = _inventory(txn)
        try:
            class_id = None if key.class_name is None else inv.classes[key.class_name]
            cell = (class_id, inv.luggage_types[key.luggage_type], key.clutter,
                    inv.scanner_models[key.scanner_model], None if key.pose is None else inv.poses[key.pose])
        except KeyError as exc:
            raise UnknownNameError(f"unknown name in cell: {exc.args[0]}") from None
        if key.clutter not in CLUTTER_LEVELS:
            raise UnknownNameError(f"unknown clutter level '{key.clutter}' (use {', '.join(CLUTTER_LEVELS)})")
        if (class_id is None) != (key.pose is None):
            raise PlanError("clean-bag cells have no pose; threat cells need one")
        before = overrides.get(cell)
        if test_target is None:
            overrides.pop(cell, None)
        else:
            overrides[cell] = test_target
        plan, _ = _draft_for_edit(txn, plan_name, None)
        spec = PlanSpec.from_json(plan["spec_json"])
        store.clear_draft_contents(txn, plan["id"])
        _build(txn, plan["id"], spec, overrides)
        txn.audit("override_cell", "quota_cell", f"{plan_name} v{plan['version']} {key}", {"test_target": before}, {"test_target": test_target})
        txn.summary.append(f"quota plan {plan_name} v{plan['version']} cell overridden")
    return PlanRef(plan["id"], plan_name, plan["version"], "draft", plan["note"])


def list_plans(catalog: Catalog) -> list[dict[str, Any]]:
    return store.plans(catalog)


def resolve_plan(catalog: Catalog, name: str | None = None, version: int | None = None) -> dict[str, Any]:
    """The named plan (latest version unless given); with no name, the only or newest published plan."""
    if name is None:
        published = [p for p in store.plans(catalog) if p["status"] == "published"]
        candidates = published or store.plans(catalog)
        if not candidates:
            raise UnknownNameError("the lab has no quota plan yet; create one with 'xlab quota plan SPEC.yaml'")
        return max(candidates, key=lambda p: (p["published_at"] or "", p["created_at"], p["version"]))
    plan = store.find_plan(catalog, name, version)
    if plan is None:
        what = f"'{name}' v{version}" if version else f"'{name}'"
        raise UnknownNameError(f"no quota plan {what}")
    return plan


def plan_classes(catalog: Catalog, plan_id: int) -> list[dict[str, Any]]:
    """Per-class KPI, required size (with its basis) and totals of a plan."""
    rows = store.plan_classes(catalog, plan_id)
    for row in rows:
        sizing = size_kpi(row["detection_rate"], row["half_width"], row["confidence"], row["sizing"], row["misses_allowed"])
        row["basis"] = sizing.basis()
        row["normal_approximation"] = sizing.normal_approximation
    return rows
