"""SQL for labels: annotation revisions, labelled negatives, counters, class maps, QA flags.

The model (migration ``0007_labels``)
-------------------------------------
* ``annotation_revisions`` is the history, append-only (triggers refuse UPDATE
  and DELETE). A box is an ``annotation_id``; each change to it (drawn,
  imported, moved, re-classed, reviewed, deleted) is a new row with the whole
  box, its ``source`` (scanner_report, ground_truth, import, manual, model),
  its ``qa_state`` (unreviewed, accepted, rejected, corrected), ``deleted``,
  who and when. ``seq`` comes from the one ``label_clock``: the labels of any
  image "as of" a number are, per box, its latest revision at or below it.
* ``annotations`` holds each box's current revision (one row per box, kept by a
  trigger on the history; never written directly).
* A labelled negative (a clean bag: its capture step has no item; or a data
  set's image its source says is empty) is ``image_labels.negative = 1``, with
  its own append-only history ``image_label_revisions`` on the same clock.
  Triggers on ``images`` record clean-bag steps' images as negatives. An image
  with no live box and no negative is unlabelled, not clean.
* ``label_class_counts`` (live boxes per class and review state) and
  ``label_image_counts`` (live, not rejected, boxes per image) are kept by
  triggers on ``annotations``; dashboards read them instead of grouping.
* ``class_maps`` (external name → class, per source; NULL class: left out on
  purpose) with ``class_map_history``; ``qa_flags``; ``class_history``;
  ``label_imports``; ``images.rel_path`` (an imported image's path relative to
  the folder it was imported from).

Every function taking a ``WriteTransaction`` runs inside the caller's
transaction; reads taking ``src`` accept a Catalog (committed state) or a
transaction (its own uncommitted writes included).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from core.catalog.db import Catalog, WriteTransaction, connection_of, dict_rows, id_chunks, placeholders, utc_now

BOX_FIELDS = ("image_id", "class_id", "label", "x0", "y0", "x1", "y1", "iscrowd", "difficult", "truncated",
              "score", "rotation", "source", "qa_state", "deleted")
REVISION_FIELDS = ("annotation_id", *BOX_FIELDS, "actor", "created_at", "seq", "import_id", "note")
# Columns a box is read with (current or as of a moment), class name joined.
_BOX_SELECT = ("{a}.annotation_id AS annotation_id, {a}.id AS revision_id, {a}.seq, {a}.image_id, {a}.class_id, "
               "c.name AS class_name, {a}.label, {a}.x0, {a}.y0, {a}.x1, {a}.y1, {a}.iscrowd, {a}.difficult, "
               "{a}.truncated, {a}.score, {a}.rotation, {a}.source, {a}.qa_state, {a}.deleted, {a}.actor, "
               "{a}.created_at")
_CURRENT_SELECT = ("a.id AS annotation_id, a.revision_id, a.seq, a.image_id, a.class_id, c.name AS class_name, "
                   "a.label, a.x0, a.y0, a.x1, a.y1, a.iscrowd, a.difficult, a.truncated, a.score, a.rotation, "
                   "a.source, a.qa_state, a.deleted, a.updated_by AS actor, a.updated_at AS created_at")
# -- the clock and new ids --------------------------------------------------------


def clock(src: Catalog | WriteTransaction) -> int:
    """The label clock: the ``seq`` of the latest label change (0: none yet)."""
    return int(connection_of(src).execute("SELECT seq FROM label_clock").fetchone()[0])


def reserve_seqs(txn: WriteTransaction, n: int) -> int:
    """Reserve ``n`` consecutive clock values; returns the first."""
    last = txn.execute("UPDATE label_clock SET seq = seq + ? RETURNING seq", (n,)).fetchone()[0]
    return int(last) - n + 1


def reserve_annotation_ids(txn: WriteTransaction, n: int) -> int:
    """The first of ``n`` new box ids (a deleted box keeps its row, so ids are never reused)."""
    return int(txn.execute("SELECT IFNULL(MAX(id), 0) + 1 FROM annotations").fetchone()[0])


# -- writing revisions --------------------------------------------------------------


def insert_revisions(txn: WriteTransaction, rows: Sequence[dict[str, Any]]) -> None:
    """Append revisions (dicts with REVISION_FIELDS; ``seq`` reserved by the caller).

    The current-row trigger and the counters follow.
    """
    txn.executemany(
        f"INSERT INTO annotation_revisions ({', '.join(REVISION_FIELDS)}) VALUES ({placeholders(len(REVISION_FIELDS))})",
        [tuple(row.get(f) for f in REVISION_FIELDS) for row in rows],
    )


def insert_image_label(txn: WriteTransaction, image_id: int, negative: bool, source: str, seq: int,
                       import_id: int | None = None) -> None:
    txn.execute(
        "INSERT INTO image_label_revisions (image_id, negative, source, actor, created_at, seq, import_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (image_id, int(negative), source, txn.actor, utc_now(), seq, import_id))


# -- reading boxes ----------------------------------------------------------------


def current_box(src: Catalog | WriteTransaction, annotation_id: int) -> dict[str, Any] | None:
    rows = dict_rows(src, f"""SELECT {_CURRENT_SELECT} FROM annotations a LEFT JOIN threat_classes c ON c.id = a.class_id
                          WHERE a.id = ?""", (annotation_id,))
    return rows[0] if rows else None


def current_boxes(src: Catalog | WriteTransaction, image_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Live boxes (not deleted; rejected ones included) of the images, by image then box."""
    out: list[dict[str, Any]] = []
    for chunk in id_chunks(list(image_ids)):
        out += dict_rows(src, f"""SELECT {_CURRENT_SELECT} FROM annotations a
                              LEFT JOIN threat_classes c ON c.id = a.class_id
                              WHERE a.image_id IN ({placeholders(len(chunk))}) AND a.deleted = 0
                              ORDER BY a.image_id, a.id""", chunk)
    return out


def boxes_as_of(src: Catalog | WriteTransaction, image_id: int, seq: int) -> list[dict[str, Any]]:
    """The live boxes of an image as they were when the clock read ``seq``."""
    return dict_rows(src, f"""SELECT {_BOX_SELECT.format(a='r')} FROM annotation_revisions r
                          LEFT JOIN threat_classes c ON c.id = r.class_id
                          WHERE r.image_id = ? AND r.seq <= ? AND r.deleted = 0
                            AND r.seq = (SELECT MAX(r2.seq) FROM annotation_revisions r2
                                         WHERE r2.annotation_id = r.annotation_id AND r2.seq <= ?)
                          ORDER BY r.annotation_id""", (image_id, seq, seq))


def revisions(src: Catalog | WriteTransaction, revision_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Chosen revisions (a frozen data set's), in id order; deleting ones included."""
    out: list[dict[str, Any]] = []
    for chunk in id_chunks(list(revision_ids)):
        out += dict_rows(src, f"""SELECT {_BOX_SELECT.format(a='r')} FROM annotation_revisions r
                              LEFT JOIN threat_classes c ON c.id = r.class_id
                              WHERE r.id IN ({placeholders(len(chunk))})""", chunk)
    return sorted(out, key=lambda r: r["revision_id"])


def history(src: Catalog | WriteTransaction, image_id: int) -> list[dict[str, Any]]:
    """Every revision of every box of an image, oldest first."""
    return dict_rows(src, f"""SELECT {_BOX_SELECT.format(a='r')} FROM annotation_revisions r
                          LEFT JOIN threat_classes c ON c.id = r.class_id
                          WHERE r.image_id = ? ORDER BY r.seq""", (image_id,))


def negative_as_of(src: Catalog | WriteTransaction, image_id: int, seq: int | None) -> bool:
    if seq is None:
        row = connection_of(src).execute("SELECT negative FROM image_labels WHERE image_id = ?", (image_id,)).fetchone()
    else:
        row = connection_of(src).execute(
            "SELECT negative FROM image_label_revisions WHERE image_id = ? AND seq <= ? ORDER BY seq DESC LIMIT 1",
            (image_id, seq)).fetchone()
    return bool(row and row[0])


def negatives(src: Catalog | WriteTransaction, image_ids: Sequence[int]) -> set[int]:
    """Which of the images are labelled negatives now."""
    out: set[int] = set()
    for chunk in id_chunks(list(image_ids)):
        out |= {r[0] for r in connection_of(src).execute(
            f"SELECT image_id FROM image_labels WHERE negative = 1 AND image_id IN ({placeholders(len(chunk))})", chunk)}
    return out


# -- counters -----------------------------------------------------------------------


def class_counts(src: Catalog | WriteTransaction) -> list[dict[str, Any]]:
    """Live boxes per class and review state, from the counters (class None: not mapped to a class)."""
    return dict_rows(src, """SELECT NULLIF(k.class_key, 0) AS class_id, c.name AS class_name, k.qa_state, k.boxes
                         FROM label_class_counts k LEFT JOIN threat_classes c ON c.id = k.class_key
                         ORDER BY c.name, k.qa_state""")


def image_box_counts(src: Catalog | WriteTransaction, image_ids: Sequence[int]) -> dict[int, int]:
    """Live, not rejected, boxes per image, from the counters (images with none left out)."""
    out: dict[int, int] = {}
    for chunk in id_chunks(list(image_ids)):
        out.update(connection_of(src).execute(
            f"SELECT image_id, boxes FROM label_image_counts WHERE image_id IN ({placeholders(len(chunk))})", chunk))
    return out


def recount(src: Catalog | WriteTransaction) -> tuple[dict[tuple[int, str], int], dict[int, int]]:
    """The counters recomputed from the boxes (a check; slow on a large catalog)."""
    per_class = {(r[0], r[1]): r[2] for r in connection_of(src).execute(
        "SELECT IFNULL(class_id, 0), qa_state, COUNT(*) FROM annotations WHERE deleted = 0 GROUP BY 1, 2")}
    per_image = dict(connection_of(src).execute(
        "SELECT image_id, COUNT(*) FROM annotations WHERE deleted = 0 AND qa_state != 'rejected' GROUP BY 1"))
    return per_class, per_image


def counters(src: Catalog | WriteTransaction) -> tuple[dict[tuple[int, str], int], dict[int, int]]:
    per_class = {(r[0], r[1]): r[2] for r in connection_of(src).execute(
        "SELECT class_key, qa_state, boxes FROM label_class_counts")}
    per_image = dict(connection_of(src).execute("SELECT image_id, boxes FROM label_image_counts"))
    return per_class, per_image


# -- images --------------------------------------------------------------------------


def image(src: Catalog | WriteTransaction, image_id: int) -> dict[str, Any] | None:
    rows = dict_rows(src, """SELECT id, sha256, store_path, original_name, source_path, rel_path, width, height,
                                step_id, item_id, scanner_id FROM images WHERE id = ?""", (image_id,))
    return rows[0] if rows else None


def images_by_rel_path(src: Catalog | WriteTransaction, rel_path: str) -> list[int]:
    return [r[0] for r in connection_of(src).execute("SELECT id FROM images WHERE rel_path = ?", (rel_path,))]


def images_by_name(src: Catalog | WriteTransaction, name: str) -> list[int]:
    return [r[0] for r in connection_of(src).execute("SELECT id FROM images WHERE original_name = ?", (name,))]


def set_rel_paths(txn: WriteTransaction, rows: Sequence[tuple[int, str]]) -> None:
    """Record where imported images came from ((image_id, path relative to the folder) pairs);
    an image that has a path from an earlier import keeps it."""
    txn.executemany("UPDATE images SET rel_path = ? WHERE id = ? AND rel_path IS NULL",
                    [(rel, image_id) for image_id, rel in rows])


def export_images(src: Catalog | WriteTransaction, image_ids: Sequence[int] | None) -> list[dict[str, Any]]:
    """Images to export: the given ones, or every image with a label (a live box or a negative)."""
    columns = "i.id, i.sha256, i.store_path, i.original_name, i.rel_path, i.width, i.height, i.scanner_id"
    if image_ids is None:
        return dict_rows(src, f"""SELECT {columns} FROM images i
                              WHERE i.id IN (SELECT image_id FROM label_image_counts)
                                 OR i.id IN (SELECT image_id FROM image_labels WHERE negative = 1)
                              ORDER BY i.id""")
    out: list[dict[str, Any]] = []
    for chunk in id_chunks(list(image_ids)):
        out += dict_rows(src, f"SELECT {columns} FROM images i WHERE i.id IN ({placeholders(len(chunk))})", chunk)
    return sorted(out, key=lambda r: r["id"])


def unlabelled_count(src: Catalog | WriteTransaction) -> int:
    return int(connection_of(src).execute(
        """SELECT COUNT(*) FROM images WHERE id NOT IN (SELECT image_id FROM label_image_counts)
           AND id NOT IN (SELECT image_id FROM image_labels WHERE negative = 1)""").fetchone()[0])


# -- classes and class maps ---------------------------------------------------------------


def class_ids(src: Catalog | WriteTransaction) -> dict[str, int]:
    return {r[1]: r[0] for r in connection_of(src).execute("SELECT id, name FROM threat_classes")}


def class_map(src: Catalog | WriteTransaction, source: str) -> dict[str, int | None]:
    """The stored map of a source: external name → class id (None: left out on purpose)."""
    return {r[0]: r[1] for r in connection_of(src).execute(
        "SELECT external, class_id FROM class_maps WHERE source = ?", (source,))}


def save_class_map(txn: WriteTransaction, source: str, mapping: dict[str, int | None]) -> int:
    """Store (or change) entries of a source's map; history follows by trigger. Returns entries changed."""
    now = utc_now()
    changed = 0
    for external, class_id in mapping.items():
        cursor = txn.execute(
            """INSERT INTO class_maps (source, external, class_id, changed_at, changed_by) VALUES (?, ?, ?, ?, ?)
               ON CONFLICT (source, external) DO UPDATE SET class_id = excluded.class_id,
                   changed_at = excluded.changed_at, changed_by = excluded.changed_by
               WHERE class_maps.class_id IS NOT excluded.class_id""",
            (source, external, class_id, now, txn.actor))
        changed += cursor.rowcount
    return changed


def class_map_history(src: Catalog | WriteTransaction, source: str) -> list[dict[str, Any]]:
    return dict_rows(src, """SELECT h.external, c.name AS class_name, p.name AS previous_class_name, h.at, h.actor
                         FROM class_map_history h LEFT JOIN threat_classes c ON c.id = h.class_id
                         LEFT JOIN threat_classes p ON p.id = h.previous_class_id
                         WHERE h.source = ? ORDER BY h.id""", (source,))


# -- imports --------------------------------------------------------------------------------


def insert_import(txn: WriteTransaction, fmt: str, path: str, source: str, images_dir: str | None,
                  counts: dict[str, int], problems: list[str]) -> int:
    cursor = txn.execute(
        "INSERT INTO label_imports (at, actor, format, path, source, images_dir, counts_json, problems_json)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (utc_now(), txn.actor, fmt, path, source, images_dir, json.dumps(counts, sort_keys=True),
         json.dumps(problems)))
    return int(cursor.lastrowid)


def update_import_counts(txn: WriteTransaction, import_id: int, counts: dict[str, int]) -> None:
    txn.execute("UPDATE label_imports SET counts_json = ? WHERE id = ?", (json.dumps(counts, sort_keys=True), import_id))


# -- what the lab knows, for the label checks ------------------------------------------------


def capture_facts(src: Catalog | WriteTransaction, image_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Per image: its step, item, the item's class, and whether its bag was clean
    (a step with no item). Images with no step know nothing of their content."""
    out: dict[int, dict[str, Any]] = {}
    for chunk in id_chunks(list(image_ids)):
        for r in dict_rows(src, f"""SELECT i.id AS image_id, i.step_id, i.item_id, t.class_id AS item_class_id,
                                       c.name AS item_class_name, t.barcode AS item_barcode, i.width, i.height
                                FROM images i LEFT JOIN threat_items t ON t.id = i.item_id
                                LEFT JOIN threat_classes c ON c.id = t.class_id
                                WHERE i.id IN ({placeholders(len(chunk))})""", chunk):
            out[r["image_id"]] = r
    return out


def class_box_sample(src: Catalog | WriteTransaction, class_id: int, limit: int) -> list[tuple[float, float]]:
    """(width, height) of the class's most recent live, not rejected, boxes."""
    return [(r[0], r[1]) for r in connection_of(src).execute(
        """SELECT x1 - x0, y1 - y0 FROM annotations WHERE class_id = ? AND deleted = 0 AND qa_state != 'rejected'
           ORDER BY id DESC LIMIT ?""", (class_id, limit))]


def item_class_votes(src: Catalog | WriteTransaction, item_id: int) -> dict[int, int]:
    """Live, not rejected, boxes per class over every image of one physical item."""
    return dict(connection_of(src).execute(
        """SELECT a.class_id, COUNT(*) FROM annotations a JOIN images i ON i.id = a.image_id
           WHERE i.item_id = ? AND a.deleted = 0 AND a.qa_state != 'rejected' AND a.class_id IS NOT NULL
           GROUP BY a.class_id""", (item_id,)))


# -- QA flags ------------------------------------------------------------------------------------


def flags_of(src: Catalog | WriteTransaction, image_ids: Sequence[int], states: tuple[str, ...] = ("open",)
             ) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for chunk in id_chunks(list(image_ids)):
        out += dict_rows(src, f"""SELECT * FROM qa_flags WHERE image_id IN ({placeholders(len(chunk))})
                              AND state IN ({placeholders(len(states))}) ORDER BY id""", [*chunk, *states])
    return out


def insert_flags(txn: WriteTransaction, rows: Sequence[tuple[int, int | None, str, str, float]]) -> None:
    """New open flags: (image_id, annotation_id, code, reason, risk)."""
    now = utc_now()
    txn.executemany("INSERT INTO qa_flags (image_id, annotation_id, code, reason, risk, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)", [(*r, now) for r in rows])


def update_flag(txn: WriteTransaction, flag_id: int, reason: str, risk: float) -> None:
    txn.execute("UPDATE qa_flags SET reason = ?, risk = ? WHERE id = ?", (reason, risk, flag_id))


def close_flags(txn: WriteTransaction, flag_ids: Sequence[int], state: str) -> None:
    now = utc_now()
    txn.executemany("UPDATE qa_flags SET state = ?, resolved_at = ?, resolved_by = ? WHERE id = ? AND state = 'open'",
                    [(state, now, txn.actor, i) for i in flag_ids])


def flag_queue(src: Catalog | WriteTransaction, state: str | None = "open", limit: int = 500) -> list[dict[str, Any]]:
    """Flags, riskiest first (then by image, so one image's findings stay together)."""
    where = "WHERE f.state = ?" if state else ""
    params: list[Any] = [state] if state else []
    return dict_rows(src, f"""SELECT f.id, f.image_id, f.annotation_id, f.code, f.reason, f.risk, f.state, f.created_at,
                                 i.original_name, i.rel_path
                          FROM qa_flags f JOIN images i ON i.id = f.image_id {where}
                          ORDER BY f.risk DESC, f.image_id, f.id LIMIT ?""", [*params, limit])


def flag(src: Catalog | WriteTransaction, flag_id: int) -> dict[str, Any] | None:
    rows = dict_rows(src, "SELECT * FROM qa_flags WHERE id = ?", (flag_id,))
    return rows[0] if rows else None


# -- class changes ----------------------------------------------------------------------------


def insert_class_history(txn: WriteTransaction, action: str, class_id: int, other_class_id: int | None,
                         detail: dict[str, Any]) -> None:
    txn.execute("INSERT INTO class_history (at, actor, action, class_id, other_class_id, detail_json)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (utc_now(), txn.actor, action, class_id, other_class_id, json.dumps(detail, sort_keys=True)))


def class_rows(src: Catalog | WriteTransaction) -> dict[str, dict[str, Any]]:
    """Every class by name: id, family (id and name), active."""
    return {r["name"]: r for r in dict_rows(src, """SELECT c.id, c.name, c.family_id, f.name AS family, c.active
                                                FROM threat_classes c JOIN threat_families f ON f.id = c.family_id""")}


def family_ids(src: Catalog | WriteTransaction) -> dict[str, int]:
    return {r[1]: r[0] for r in connection_of(src).execute("SELECT id, name FROM threat_families")}


def insert_class(txn: WriteTransaction, name: str, family_id: int, description: str) -> int:
    cursor = txn.execute("INSERT INTO threat_classes (name, family_id, description) VALUES (?, ?, ?)",
                         (name, family_id, description))
    return int(cursor.lastrowid)


def update_class(txn: WriteTransaction, class_id: int, changes: dict[str, Any]) -> None:
    """Change ``name``, ``family_id`` or ``active`` of a class."""
    allowed = {"name", "family_id", "active"}
    if not set(changes) <= allowed:
        raise ValueError(f"not a class column to change: {sorted(set(changes) - allowed)}")
    assignments = ", ".join(f"{c} = ?" for c in changes)
    txn.execute(f"UPDATE threat_classes SET {assignments} WHERE id = ?", (*changes.values(), class_id))


def items_of_class(src: Catalog | WriteTransaction, class_id: int) -> dict[str, int]:
    """The physical items of a class: barcode → id."""
    return {r[0]: r[1] for r in connection_of(src).execute(
        "SELECT barcode, id FROM threat_items WHERE class_id = ? ORDER BY barcode", (class_id,))}


def set_item_classes(txn: WriteTransaction, rows: Sequence[tuple[int, int]]) -> None:
    """(item id, class id) pairs."""
    txn.executemany("UPDATE threat_items SET class_id = ? WHERE id = ?", [(c, i) for i, c in rows])


def live_boxes_of_class(src: Catalog | WriteTransaction, class_id: int) -> list[dict[str, Any]]:
    """The class's live boxes (current revisions; rejected ones included), each with its image's item."""
    return dict_rows(src, f"""SELECT {_CURRENT_SELECT}, i.item_id FROM annotations a
                          JOIN images i ON i.id = a.image_id LEFT JOIN threat_classes c ON c.id = a.class_id
                          WHERE a.class_id = ? AND a.deleted = 0 ORDER BY a.id""", (class_id,))


def class_map_entries(src: Catalog | WriteTransaction, class_id: int) -> list[tuple[str, str]]:
    """(source, external name) of the class maps' entries onto a class."""
    return [(r[0], r[1]) for r in connection_of(src).execute(
        "SELECT source, external FROM class_maps WHERE class_id = ? ORDER BY source, external", (class_id,))]


def kpi_results_of_class(src: Catalog | WriteTransaction, class_id: int) -> list[dict[str, Any]]:
    return dict_rows(src, """SELECT id, run_label, evaluated_at, positives, detected, negatives, false_alarms
                         FROM kpi_results WHERE class_id = ? ORDER BY evaluated_at, id""", (class_id,))


def plans_naming_class(src: Catalog | WriteTransaction, class_id: int, class_name: str) -> list[dict[str, Any]]:
    """Quota plans with a version that has per-class targets for the class or whose
    spec names it: per plan name, its latest version and the versions concerned."""
    rows = dict_rows(src, """SELECT p.name, p.version, p.status,
                                EXISTS (SELECT 1 FROM quota_plan_classes pc WHERE pc.plan_id = p.id AND pc.class_id = ?)
                                    OR json_type(p.spec_json, '$.classes.' || json_quote(?)) IS NOT NULL AS concerned
                         FROM quota_plans p ORDER BY p.name, p.version""", (class_id, class_name))
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        plan = out.setdefault(r["name"], {"plan": r["name"], "versions": []})
        plan.update(latest_version=r["version"], latest_status=r["status"])
        if r["concerned"]:
            plan["versions"].append(r["version"])
    return [p for p in out.values() if p["versions"]]


def class_history_rows(src: Catalog | WriteTransaction, class_id: int | None = None) -> list[dict[str, Any]]:
    """Class changes, oldest first (of one class, as the changed class or the other one)."""
    where, params = ("WHERE h.class_id = ? OR h.other_class_id = ?", [class_id, class_id]) if class_id else ("", [])
    return dict_rows(src, f"""SELECT h.id, h.at, h.actor, h.action, c.name AS class_name, o.name AS other_class_name,
                                 h.detail_json
                          FROM class_history h JOIN threat_classes c ON c.id = h.class_id
                          LEFT JOIN threat_classes o ON o.id = h.other_class_id {where} ORDER BY h.id""", params)


def retired_classes(src: Catalog | WriteTransaction) -> dict[int, list[str]]:
    """Classes no longer active: id → the classes its latest split made (empty: not split)."""
    out: dict[int, list[str]] = {r[0]: [] for r in connection_of(src).execute("SELECT id FROM threat_classes WHERE active = 0")}
    if out:
        for class_id, detail in connection_of(src).execute(
                "SELECT class_id, detail_json FROM class_history WHERE action = 'split' ORDER BY id"):
            if class_id in out:
                out[class_id] = list(json.loads(detail).get("into", {}))
    return out


def images_changed_since(src: Catalog | WriteTransaction, seq: int) -> list[int]:
    """Images with a box or negative revision after clock value ``seq`` (the clock's index finds them)."""
    return [r[0] for r in connection_of(src).execute(
        """SELECT image_id FROM annotation_revisions WHERE seq > ?
           UNION SELECT image_id FROM image_label_revisions WHERE seq > ?""", (seq, seq))]


def checked_marks(src: Catalog | WriteTransaction) -> tuple[int, int]:
    """(label clock, image id) up to which the label checks have run."""
    seq, image_id = connection_of(src).execute("SELECT seq, image_id FROM qa_checked").fetchone()
    return int(seq), int(image_id)


def images_to_check(src: Catalog | WriteTransaction, since_seq: int, since_image_id: int) -> list[int]:
    """Images whose labels changed after ``since_seq``, and images with a capture
    step that arrived after ``since_image_id``."""
    return [r[0] for r in connection_of(src).execute(
        """SELECT image_id FROM annotation_revisions WHERE seq > ?
           UNION SELECT image_id FROM image_label_revisions WHERE seq > ?
           UNION SELECT id FROM images WHERE id > ? AND step_id IS NOT NULL
           ORDER BY 1""", (since_seq, since_seq, since_image_id))]


def set_checked_marks(txn: WriteTransaction, seq: int, image_id: int) -> None:
    txn.execute("UPDATE qa_checked SET seq = MAX(seq, ?), image_id = MAX(image_id, ?)", (seq, image_id))


def last_image_id(src: Catalog | WriteTransaction) -> int:
    return int(connection_of(src).execute("SELECT IFNULL(MAX(id), 0) FROM images").fetchone()[0])


def last_import_source(src: Catalog | WriteTransaction, path: str) -> str | None:
    """The source name the latest import of the same file or folder was kept under."""
    row = connection_of(src).execute("SELECT source FROM label_imports WHERE path = ? ORDER BY id DESC LIMIT 1", (path,)).fetchone()
    return None if row is None else row[0]


# -- the review queue (core.labels.review) ------------------------------------------------------
# Pages are found through indexes (open flags by risk, live boxes by image) and
# stop at ``limit``; counts are then read for that page's images only.


def _box_filter(class_id: int | None, source: str | None, alias: str = "a") -> tuple[str, list[Any]]:
    sql, params = "", []
    if class_id is not None:
        sql += f" AND {alias}.class_id = ?"
        params.append(class_id)
    if source is not None:
        sql += f" AND {alias}.source = ?"
        params.append(source)
    return sql, params


def _with_live_box(class_id: int | None, source: str | None) -> tuple[str, list[Any]]:
    """A condition on ``image_id``: the image has a live box of the class and source (empty: no filter)."""
    if class_id is None and source is None:
        return "", []
    sql, params = _box_filter(class_id, source, "b")
    return f" AND image_id IN (SELECT b.image_id FROM annotations b WHERE b.deleted = 0{sql})", params


def flagged_image_page(src: Catalog | WriteTransaction, *, code: str | None, class_id: int | None,
                       source: str | None, limit: int) -> list[tuple[int, float]]:
    """(image id, highest open-flag risk) of images with open flags, riskiest first."""
    where, params = ("AND code = ?", [code]) if code else ("", [])
    box_sql, box_params = _with_live_box(class_id, source)
    return [(r[0], r[1]) for r in connection_of(src).execute(
        f"""SELECT image_id, MAX(risk) AS top FROM qa_flags WHERE state = 'open' {where}{box_sql}
            GROUP BY image_id ORDER BY top DESC, image_id LIMIT ?""", [*params, *box_params, limit])]


def box_image_page(src: Catalog | WriteTransaction, *, qa_state: str | None, reviewed: bool, class_id: int | None,
                   source: str | None, without_open_flags: bool, limit: int) -> list[int]:
    """Images with a live box in ``qa_state`` (None: any) of the class and source, by image id;
    ``reviewed``: only images none of whose live boxes is unreviewed."""
    box_sql, params = _box_filter(class_id, source)
    if qa_state is not None:
        box_sql += " AND a.qa_state = ?"
        params.append(qa_state)
    if reviewed:
        box_sql += (" AND NOT EXISTS (SELECT 1 FROM annotations u WHERE u.image_id = a.image_id AND u.deleted = 0"
                    " AND u.qa_state = 'unreviewed')")
    if without_open_flags:
        box_sql += " AND a.image_id NOT IN (SELECT image_id FROM qa_flags WHERE state = 'open')"
    return [r[0] for r in connection_of(src).execute(
        f"""SELECT a.image_id FROM annotations a WHERE a.deleted = 0{box_sql}
            GROUP BY a.image_id ORDER BY a.image_id LIMIT ?""", [*params, limit])]


def queue_rows(src: Catalog | WriteTransaction, image_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """What a queue row shows of each image: name, file, live boxes, unreviewed boxes, open flags and their codes."""
    out: dict[int, dict[str, Any]] = {}
    for chunk in id_chunks(list(image_ids)):
        marks = placeholders(len(chunk))
        for r in dict_rows(src, f"""SELECT i.id AS image_id, i.original_name, i.rel_path, i.store_path, i.width,
                                       i.height, c.name AS item_class,
                                       (SELECT COUNT(*) FROM annotations a WHERE a.image_id = i.id AND a.deleted = 0)
                                           AS boxes,
                                       (SELECT COUNT(*) FROM annotations a WHERE a.image_id = i.id AND a.deleted = 0
                                            AND a.qa_state = 'unreviewed') AS unreviewed,
                                       (SELECT COUNT(*) FROM qa_flags f WHERE f.image_id = i.id AND f.state = 'open')
                                           AS flags,
                                       (SELECT MAX(f.risk) FROM qa_flags f WHERE f.image_id = i.id AND f.state = 'open')
                                           AS risk,
                                       (SELECT GROUP_CONCAT(DISTINCT f.code) FROM qa_flags f
                                            WHERE f.image_id = i.id AND f.state = 'open') AS codes
                                FROM images i LEFT JOIN threat_items t ON t.id = i.item_id
                                LEFT JOIN threat_classes c ON c.id = t.class_id
                                WHERE i.id IN ({marks})""", chunk):
            out[r["image_id"]] = r
    return out


def review_facts(src: Catalog | WriteTransaction, image_id: int) -> dict[str, Any] | None:
    """An image's file and capture facts as the review shows them (names, not ids)."""
    rows = dict_rows(src, """SELECT i.id, i.store_path, i.original_name, i.rel_path, i.width, i.height, i.split,
                                i.captured_at, i.technician, i.step_id, c.name AS item_class, t.barcode AS item_barcode,
                                b.barcode AS bag_barcode, b.clutter_level, l.name AS luggage_type, p.name AS pose,
                                s.name AS scanner, m.name AS scanner_model
                         FROM images i LEFT JOIN threat_items t ON t.id = i.item_id
                         LEFT JOIN threat_classes c ON c.id = t.class_id
                         LEFT JOIN bags b ON b.id = i.bag_id LEFT JOIN luggage_types l ON l.id = b.luggage_type_id
                         LEFT JOIN poses p ON p.id = i.pose_id LEFT JOIN scanners s ON s.id = i.scanner_id
                         LEFT JOIN scanner_models m ON m.id = s.model_id
                         WHERE i.id = ?""", (image_id,))
    return rows[0] if rows else None


def review_totals(src: Catalog | WriteTransaction) -> dict[str, int]:
    """Live boxes, reviewed boxes (from the counters) and images with open flags."""
    boxes, reviewed = connection_of(src).execute(
        "SELECT IFNULL(SUM(boxes), 0), IFNULL(SUM(CASE WHEN qa_state != 'unreviewed' THEN boxes END), 0)"
        " FROM label_class_counts").fetchone()
    flagged = connection_of(src).execute("SELECT COUNT(DISTINCT image_id) FROM qa_flags WHERE state = 'open'").fetchone()[0]
    negatives = connection_of(src).execute("SELECT COUNT(*) FROM image_labels WHERE negative = 1").fetchone()[0]
    return {"boxes": int(boxes), "reviewed": int(reviewed), "flagged_images": int(flagged),
            "negatives": int(negatives)}


def review_actions_by_actor(src: Catalog | WriteTransaction) -> list[dict[str, Any]]:
    """Label actions per person, from the audit log (people's actions, not imported boxes):
    (actor, action, review state after) and how many."""
    return dict_rows(src, """SELECT actor, action, json_extract(after_json, '$.qa_state') AS qa_state, COUNT(*) AS n
                         FROM audit_log WHERE entity = 'annotations'
                         GROUP BY actor, action, qa_state ORDER BY actor""")
