"""Class changes with history: rename, move to another family, merge, split.

Each change is one catalog transaction, all or nothing, refused with a
:class:`LabelError` (nothing written) when a name is wrong. What it does:

* **rename** A → A2: the class keeps its id, so its boxes, items, plan cells
  and KPI results follow without a new revision.
* **move** A to family F.
* **merge** A into B: every live box of A becomes B as a new revision (source
  ``manual``, a note saying why); A's physical items become B's; class-map
  entries onto A point at B; A is retired (inactive, kept for the history).
* **split** A into new classes A1, A2, ...: each physical item of A goes to the
  class the rule names (``into``: class → item barcodes; ``rest``: the class
  of every item not named). The lab knows which item was in each image, so a
  box follows its image's item exactly. Boxes the rule cannot decide (images
  with no item of A, e.g. a public data set's) go to ``rest``, or with
  ``review`` stay on A, which is retired: the label checks flag each of them
  "class split: review" (``core.labels.qa``) until a reviewer re-classes it.

Frozen dataset versions keep their labels: revisions are append-only and a
version reads the revisions it was frozen with. Quota plans and KPI results
follow explicitly: the change reports the plans that have targets for (or a
spec naming) the old class and the KPI results measured on it, with an audit
entry for each; ``update_plans`` drafts each plan's next version with the
change applied (a published version never changes; the user publishes the
draft). Every change is in ``class_history`` and the audit log. A split or
merge moves items to another class, so the quota tallies are rebuilt.

Threads: any (one ``Catalog.write``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from core.catalog import Catalog, WriteTransaction
from core.catalog import label_store as store
from core.catalog import quota_store
from core.errors import LabelError

MAX_CLASS_NAME = 100


@dataclass
class ClassChange:
    """What a class change did (or, refused, would have done)."""

    action: str
    class_name: str
    detail: dict[str, Any]
    boxes_changed: int = 0
    items_moved: int = 0
    boxes_for_review: int = 0
    class_maps_moved: int = 0
    plans: list[dict[str, Any]] = field(default_factory=list)
    kpi_results: list[dict[str, Any]] = field(default_factory=list)
    drafted: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _name(name: str, what: str) -> str:
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > MAX_CLASS_NAME:
        raise LabelError(f"{what} needs a name of 1-{MAX_CLASS_NAME} characters")
    return name


def _known(classes: dict[str, dict[str, Any]], name: str, *, active: bool = True) -> dict[str, Any]:
    if name not in classes:
        raise LabelError(f"no threat class named '{name}' (known: {', '.join(sorted(classes)) or 'none'})")
    row = classes[name]
    if active and not row["active"]:
        raise LabelError(f"class '{name}' is retired (merged or split earlier); see 'xlab class history {name}'")
    return row


def _free(classes: dict[str, dict[str, Any]], name: str) -> None:
    if name in classes:
        state = "" if classes[name]["active"] else " (retired)"
        raise LabelError(f"a class named '{name}'{state} exists already; choose another name"
                         + (" or merge into it" if not state else ""))


# -- what follows the change: plans and KPI results -------------------------------------------


def _follow(txn: WriteTransaction, change: ClassChange, class_id: int, old_name: str,
            rewrite: Any | None, update_plans: bool) -> None:
    """Report (and audit) the quota plans and KPI results that concern the old class;
    with ``update_plans``, draft each plan's next version through ``rewrite(spec)``."""
    from core.quota.plans import draft_plan_in
    from core.quota.spec import PlanSpec

    for plan in store.plans_naming_class(txn, class_id, old_name):
        plan["draft"] = None
        change.plans.append(plan)
        txn.audit("class_change", "quota_plan", f"{plan['plan']} v{plan['latest_version']}", None,
                  {"action": change.action, "class": old_name, "versions": plan["versions"],
                   "needs_next_version": rewrite is not None})
        if rewrite is None or not update_plans:
            continue
        latest = quota_store.latest_in_txn(txn, plan["plan"])["spec_json"]
        spec = PlanSpec.from_json(latest)
        rewrite(spec)
        ref = draft_plan_in(txn, spec)
        plan["draft"] = ref.version
        change.drafted.append(f"{ref.name} v{ref.version}")
    for result in store.kpi_results_of_class(txn, class_id):
        change.kpi_results.append(result)
        txn.audit("class_change", "kpi_results", result["id"], {"class": old_name},
                  {"action": change.action, "detail": change.detail})


def _names_of(txn: WriteTransaction, class_id: int, name: str) -> list[str]:
    """The class's name and the names it had before (a plan's spec may name it by any of them)."""
    former = [json.loads(r["detail_json"])["from"] for r in store.class_history_rows(txn, class_id)
              if r["action"] == "rename"]
    return [name, *reversed(former)]


def _pop_settings(spec: Any, names: list[str]) -> dict[str, Any] | None:
    """Take a class's settings out of a plan spec, under whichever of its names the spec uses."""
    found = None
    for n in names:
        settings = spec.classes.pop(n, None)
        if found is None:
            found = settings
    return found


def _record(txn: WriteTransaction, change: ClassChange, class_id: int, other_id: int | None) -> None:
    detail = change.detail | {"boxes_changed": change.boxes_changed, "items_moved": change.items_moved,
                              "boxes_for_review": change.boxes_for_review,
                              "plans": [p["plan"] for p in change.plans], "drafted": change.drafted,
                              "kpi_results": [r["id"] for r in change.kpi_results]}
    store.insert_class_history(txn, change.action, class_id, other_id, detail)
    txn.audit(change.action, "threat_classes", change.class_name, None, detail)
    txn.summary.append(f"class {change.class_name}: {change.action}")


def _relabel(txn: WriteTransaction, boxes: Sequence[dict[str, Any]], target: dict[int, tuple[int, str]],
             note: str) -> list[int]:
    """New revisions giving each box (by annotation id) its target class; returns the images touched."""
    from core.labels.annotations import write_revisions

    rows = []
    for box in boxes:
        if box["annotation_id"] not in target:
            continue
        class_id, name = target[box["annotation_id"]]
        rows.append({k: box[k] for k in store.BOX_FIELDS}
                    | {"annotation_id": box["annotation_id"], "class_id": class_id, "label": name,
                       "source": "manual", "note": note})
    write_revisions(txn, rows)
    return sorted({r["image_id"] for r in rows})


def _move_items(txn: WriteTransaction, moves: dict[int, tuple[str, int, str]], from_name: str) -> None:
    """moves: item id → (barcode, class id, class name). Audited per item, as an inventory edit is."""
    from core.catalog.tally import rebuild_tallies

    if not moves:
        return
    store.set_item_classes(txn, [(item_id, class_id) for item_id, (_, class_id, _) in moves.items()])
    for barcode, _, name in moves.values():
        txn.audit("update", "threat_items", barcode, {"class": from_name}, {"class": name})
    # The images of those items now count in another quota cell.
    rebuild_tallies(txn)


def _check_labels(txn: WriteTransaction, image_ids: Sequence[int]) -> None:
    from core.labels.qa import check_images

    check_images(txn, image_ids)


# -- the changes -------------------------------------------------------------------------------


def rename_class(catalog: Catalog, old: str, new: str, *, update_plans: bool = False,
                 actor: str | None = None) -> ClassChange:
    """Rename class ``old`` to ``new`` (which must not exist)."""
    catalog.require("inventory")
    new = _name(new, "the new class")
    with catalog.write(actor) as txn:
        classes = store.class_rows(txn)
        row = _known(classes, old, active=False)
        _free(classes, new)
        change = ClassChange("rename", old, {"from": old, "to": new})
        names = _names_of(txn, row["id"], old)
        store.update_class(txn, row["id"], {"name": new})
        txn.audit("update", "threat_classes", new, {"name": old}, {"name": new})

        def rewrite(spec: Any) -> None:
            settings = _pop_settings(spec, names)
            if settings is not None:
                spec.classes[new] = settings

        _follow(txn, change, row["id"], old, rewrite, update_plans)
        _record(txn, change, row["id"], None)
    return change


def move_class(catalog: Catalog, name: str, family: str, *, actor: str | None = None) -> ClassChange:
    """Move a class to another (existing) family. Plans name classes, not families:
    the plans concerned are reported, none needs a new version."""
    catalog.require("inventory")
    with catalog.write(actor) as txn:
        classes = store.class_rows(txn)
        row = _known(classes, name, active=False)
        families = store.family_ids(txn)
        if family not in families:
            raise LabelError(f"no threat family named '{family}' (known: {', '.join(sorted(families))}); "
                             "add it to the inventory first")
        if row["family"] == family:
            raise LabelError(f"class '{name}' is in family '{family}' already")
        change = ClassChange("move", name, {"from": row["family"], "to": family})
        store.update_class(txn, row["id"], {"family_id": families[family]})
        txn.audit("update", "threat_classes", name, {"family": row["family"]}, {"family": family})
        _follow(txn, change, row["id"], name, None, False)
        _record(txn, change, row["id"], None)
    return change


def merge_classes(catalog: Catalog, source: str, target: str, *, update_plans: bool = False,
                  actor: str | None = None) -> ClassChange:
    """Merge class ``source`` into ``target``: its boxes and items become the target's; it is retired."""
    catalog.require("inventory")
    with catalog.write(actor) as txn:
        classes = store.class_rows(txn)
        a = _known(classes, source)
        b = _known(classes, target)
        if a["id"] == b["id"]:
            raise LabelError(f"cannot merge class '{source}' into itself")
        change = ClassChange("merge", source, {"from": source, "to": target})
        names = _names_of(txn, a["id"], source)
        boxes = store.live_boxes_of_class(txn, a["id"])
        touched = _relabel(txn, boxes, {box["annotation_id"]: (b["id"], target) for box in boxes},
                           f"class {source} merged into {target}")
        change.boxes_changed = len(boxes)
        items = store.items_of_class(txn, a["id"])
        _move_items(txn, {i: (barcode, b["id"], target) for barcode, i in items.items()}, source)
        change.items_moved = len(items)
        maps = store.class_map_entries(txn, a["id"])
        for map_source, external in maps:
            store.save_class_map(txn, map_source, {external: b["id"]})
        change.class_maps_moved = len(maps)
        store.update_class(txn, a["id"], {"active": 0})
        txn.audit("update", "threat_classes", source, {"active": True}, {"active": False})

        def rewrite(spec: Any) -> None:
            # The target keeps its own settings; the source's go with it.
            _pop_settings(spec, names)

        _follow(txn, change, a["id"], source, rewrite, update_plans)
        _record(txn, change, a["id"], b["id"])
        _check_labels(txn, touched)
    return change


def split_class(catalog: Catalog, name: str, into: dict[str, Sequence[str]], *, rest: str | None = None,
                review: bool = False, family: str | None = None, update_plans: bool = False,
                actor: str | None = None) -> ClassChange:
    """Split class ``name`` into new classes.

    ``into``: new class → barcodes of the physical items that go to it (a class
    may name none and take ``rest``); ``rest``: the new class that takes every
    item not named and every box no item decides; ``review``: instead, leave
    those boxes on the retired class, flagged for review. Every item of the
    class must end up in a new class. The new classes join ``family`` (default:
    the split class's).
    """
    catalog.require("inventory")
    if rest is not None and review:
        raise LabelError("give either --rest CLASS or --review, not both")
    targets = [_name(t, "each class of a split") for t in into]
    if rest is not None:
        rest = _name(rest, "the --rest class")
        if rest not in targets:
            targets.append(rest)
    if len(targets) < 2:
        raise LabelError("a split makes at least two classes (name them with --into CLASS:ITEMS and --rest CLASS)")
    with catalog.write(actor) as txn:
        classes = store.class_rows(txn)
        a = _known(classes, name)
        for t in targets:
            if t == name:
                raise LabelError(f"a split makes new classes; '{name}' is the one split (rename it afterwards)")
            _free(classes, t)
        families = store.family_ids(txn)
        family = family or a["family"]
        if family not in families:
            raise LabelError(f"no threat family named '{family}' (known: {', '.join(sorted(families))})")
        items = store.items_of_class(txn, a["id"])
        chosen: dict[str, str] = {}
        problems = []
        for t, barcodes in into.items():
            for barcode in barcodes:
                if barcode not in items:
                    problems.append(f"item '{barcode}' is not an item of class '{name}'")
                elif barcode in chosen and chosen[barcode] != t.strip():
                    problems.append(f"item '{barcode}' is given to both '{chosen[barcode]}' and '{t.strip()}'")
                chosen[barcode] = t.strip()
        left = sorted(set(items) - set(chosen))
        if left and rest is None:
            problems.append(f"item(s) {', '.join(left)} of class '{name}' go to no class: "
                            "name them in --into or give --rest CLASS")
        if problems:
            raise LabelError("; ".join(problems))
        by_barcode = chosen | {b: rest for b in left}
        rule = {t: sorted(b for b, c in by_barcode.items() if c == t) for t in targets}
        names = _names_of(txn, a["id"], name)
        change = ClassChange("split", name, {"from": name, "into": rule, "rest": rest, "review": review,
                                             "family": family})
        ids: dict[str, int] = {}
        for t in targets:
            ids[t] = store.insert_class(txn, t, families[family], f"split from {name}")
            txn.audit("create", "threat_classes", t, None, {"name": t, "family": family, "split_from": name})
        by_item = {items[b]: t for b, t in by_barcode.items()}
        _move_items(txn, {items[b]: (b, ids[by_item[items[b]]], by_item[items[b]]) for b in items}, name)
        change.items_moved = len(items)
        boxes = store.live_boxes_of_class(txn, a["id"])
        target: dict[int, tuple[int, str]] = {}
        for box in boxes:
            t = by_item.get(box["item_id"], rest)
            if t is not None:
                target[box["annotation_id"]] = (ids[t], t)
        touched = _relabel(txn, boxes, target, f"class {name} split: "
                           + ", ".join(f"{t} ({', '.join(b) or 'rest'})" for t, b in rule.items()))
        change.boxes_changed = len(target)
        change.boxes_for_review = len(boxes) - len(target)
        if rest is not None:
            maps = store.class_map_entries(txn, a["id"])
            for map_source, external in maps:
                store.save_class_map(txn, map_source, {external: ids[rest]})
            change.class_maps_moved = len(maps)
        store.update_class(txn, a["id"], {"active": 0})
        txn.audit("update", "threat_classes", name, {"active": True}, {"active": False})

        def rewrite(spec: Any) -> None:
            settings = _pop_settings(spec, names)
            if settings is not None:
                for t in targets:
                    spec.classes[t] = json.loads(json.dumps(settings))

        _follow(txn, change, a["id"], name, rewrite, update_plans)
        _record(txn, change, a["id"], None)
        # Boxes left on the retired class are flagged "class split: review" by the checks.
        _check_labels(txn, sorted(set(touched) | {b["image_id"] for b in boxes}))
    return change


def history(catalog: Catalog, name: str | None = None) -> list[dict[str, Any]]:
    """Class changes, oldest first (of one class, when named: as changed or as the other class)."""
    class_id = None
    if name is not None:
        class_id = _known(store.class_rows(catalog), name, active=False)["id"]
    rows = store.class_history_rows(catalog, class_id)
    for r in rows:
        r["detail"] = json.loads(r.pop("detail_json"))
    return rows
