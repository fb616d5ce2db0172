"""What changed between two dataset versions: images added and removed, labels
changed, images moved between subsets (train and validation), by class and cell.

Both versions keep each member's cell and label revision ids as frozen, so a
diff is set operations on the two versions' sorted member arrays
(:func:`core.catalog.dataset_store.compare`) and never reads the annotation
history, except to name the classes of the boxes that changed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from core.catalog import Catalog
from core.catalog import dataset_store as store
from core.datasets.versions import VersionRef, resolve

_KINDS = ("removed", "labels_changed", "moved", "added")
# Images whose boxes are compared one by one to name the classes that changed.
BOX_DETAIL_LIMIT = 200_000


@dataclass(frozen=True)
class VersionDiff:
    a: str
    b: str
    added: int
    removed: int
    labels_changed: int
    moved: int              # in both, in another subset (train <-> validation)
    by_class: list[dict[str, Any]]
    by_cell: list[dict[str, Any]]
    boxes_by_class: list[dict[str, Any]]  # over images whose labels changed: box revisions gone and new, per box class
    boxes_detail_complete: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def diff(catalog: Catalog, a: str | VersionRef, b: str | VersionRef) -> VersionDiff:
    """Changes from version ``a`` to version ``b``. Any thread; read-only."""
    va, vb = resolve(catalog, a), resolve(catalog, b)
    names = store.names(catalog)
    totals = dict.fromkeys(_KINDS, 0)
    by_class: dict[str, dict[str, Any]] = {}
    by_cell = []
    comparison = store.compare(catalog, va["id"], vb["id"])
    for class_key, luggage, clutter, model, pose, *counts in store.diff_cells(catalog, va["id"], vb["id"], comparison):
        class_name = names["class"].get(class_key, str(class_key)) if class_key else "(clean)"
        row = dict(zip(_KINDS, counts))
        for kind in _KINDS:
            totals[kind] += row[kind]
        entry = by_class.setdefault(class_name, {"class_name": class_name, **dict.fromkeys(_KINDS, 0)})
        for kind in _KINDS:
            entry[kind] += row[kind]
        by_cell.append({"class_name": class_name, "luggage_type": names["luggage_type"].get(luggage, str(luggage)),
                        "clutter_level": clutter, "scanner_model": names["scanner_model"].get(model, str(model)),
                        "pose": names["pose"].get(pose, "—") if pose else "—", **row})
    boxes, complete = _box_changes(catalog, comparison, totals["labels_changed"], names["class"])
    return VersionDiff(
        a=f"{va['name']}@{va['version']}", b=f"{vb['name']}@{vb['version']}",
        added=totals["added"], removed=totals["removed"], labels_changed=totals["labels_changed"],
        moved=totals["moved"], by_class=sorted(by_class.values(), key=lambda e: e["class_name"]),
        by_cell=by_cell, boxes_by_class=boxes, boxes_detail_complete=complete,
    )


def _box_changes(catalog: Catalog, c: store.Comparison, changed: int, class_names: dict[int, str]
                 ) -> tuple[list[dict[str, Any]], bool]:
    import numpy as np

    if not changed:
        return [], True
    in_a, in_b = c.in_a[c.changed][:BOX_DETAIL_LIMIT], c.in_b[c.changed][:BOX_DETAIL_LIMIT]
    # Revision ids are unique to their image, so over all the changed images
    # together, ids in a only are boxes gone and ids in b only are new ones.
    old = c.a.revisions[c.a.revision_positions(in_a)]
    now = c.b.revisions[c.b.revision_positions(in_b)]
    gone = np.setdiff1d(old, now).tolist()
    new = np.setdiff1d(now, old).tolist()
    classes = store.revision_classes(catalog, gone + new)
    out: dict[str, dict[str, Any]] = {}
    for ids, kind in ((gone, "boxes_gone"), (new, "boxes_new")):
        for r in ids:
            c = classes.get(r, 0)
            name = class_names.get(c, str(c)) if c else "(no class)"
            out.setdefault(name, {"class_name": name, "boxes_gone": 0, "boxes_new": 0})[kind] += 1
    return sorted(out.values(), key=lambda e: e["class_name"]), len(in_a) == changed


def changed_images(catalog: Catalog, a: str | VersionRef, b: str | VersionRef) -> dict[str, list[int]]:
    """Image ids removed, added and with changed labels from ``a`` to ``b`` (every one)."""
    va, vb = resolve(catalog, a), resolve(catalog, b)
    found = store.diff_images(catalog, va["id"], vb["id"])
    return {"removed": found["removed"], "added": found["added"], "labels_changed": [r[0] for r in found["changed"]]}
