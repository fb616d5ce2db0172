"""SQL for frozen dataset versions: candidates, membership, counts, diffs.

The model (migration ``0008_dataset_versions``)
-----------------------------------------------
* ``dataset_versions``: one row per version of a named data set (``name``,
  ``version`` 1, 2, ...), with the rule that built it (``rule`` test or train,
  ``rule_json`` its whole recipe, ``seed``), the quota plan it follows, its
  ``parent_id`` (lineage: the version it was derived from) and, for a train
  set, ``test_version_id`` (the test set whose mix it clones). ``label_seq``
  is the label clock when it was frozen: its labels are the labels as of that
  number. ``content_hash`` (sha256 over the members' image hashes, subsets
  and label revision ids, sorted by image hash), ``report_json`` (what the
  freeze found: exclusions, shortfalls, near-duplicates) and ``stats_json``
  (the label distribution, computed once at freeze) complete it.
* ``dataset_images``: one row per member image: its subset (test, train,
  validation), its quota cell and physical setup at freeze, and its labels
  then: ``revisions`` (the ids of its live, not rejected, annotation
  revisions, ascending, space separated), ``boxes`` (their number) and
  ``negative`` (a labelled clean image).
* A version is written as ``status = 'building'`` and frozen in the same
  transaction; triggers refuse any UPDATE or DELETE of a frozen version and
  any INSERT, UPDATE or DELETE of its members, and the delete of an image a
  version holds.

Functions taking a ``WriteTransaction`` run inside the caller's transaction;
reads taking ``src`` accept a Catalog (committed state) or a transaction.
The freeze works through two temporary tables of the writing connection:
``ds_candidates`` (the plan's images of one split, each with its cell, setup
and QA state) and ``ds_pick`` (the images chosen, with their subset).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from core.catalog.db import Catalog, WriteTransaction

VERSION_COLUMNS = ("id, name, version, status, rule, rule_json, plan_id, parent_id, test_version_id, seed, "
                   "label_seq, images, boxes, content_hash, report_json, frozen_at, frozen_by")
CELL_KEY = ("class_key", "luggage_type_id", "clutter_level", "scanner_model_id", "pose_key")
_CELL_KEY_SQL = ", ".join(CELL_KEY)
# Box size classes by the box's area, as the side of the square of the same
# area: under 16 px, 16-32, ... , 1024 px and over.
SIZE_BUCKETS = ("<16", "16-32", "32-64", "64-128", "128-256", "256-512", "512-1024", ">=1024")
_SIZE_SQL = ("CASE WHEN a.area < 256 THEN 0 WHEN a.area < 1024 THEN 1 WHEN a.area < 4096 THEN 2 "
             "WHEN a.area < 16384 THEN 3 WHEN a.area < 65536 THEN 4 WHEN a.area < 262144 THEN 5 "
             "WHEN a.area < 1048576 THEN 6 ELSE 7 END")
_CHUNK = 900


def _conn(src: Catalog | WriteTransaction) -> sqlite3.Connection:
    return src.conn if isinstance(src, WriteTransaction) else src.reader()


def _rows(src: Catalog | WriteTransaction, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    cursor = _conn(src).execute(sql, tuple(params))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


# -- versions -----------------------------------------------------------------------


def versions(src: Catalog | WriteTransaction, name: str | None = None) -> list[dict[str, Any]]:
    """Frozen versions (of one name, or all), by name then version, with plan and parent names."""
    where = "WHERE v.status = 'frozen'" + (" AND v.name = ?" if name is not None else "")
    return _rows(src, f"""SELECT {', '.join('v.' + c.strip() for c in VERSION_COLUMNS.split(','))},
                                 p.name AS plan_name, p.version AS plan_version,
                                 pv.name AS parent_name, pv.version AS parent_version,
                                 tv.name AS test_name, tv.version AS test_version
                          FROM dataset_versions v JOIN quota_plans p ON p.id = v.plan_id
                          LEFT JOIN dataset_versions pv ON pv.id = v.parent_id
                          LEFT JOIN dataset_versions tv ON tv.id = v.test_version_id
                          {where} ORDER BY v.name, v.version""", () if name is None else (name,))


def version_by_id(src: Catalog | WriteTransaction, version_id: int) -> dict[str, Any] | None:
    rows = [v for v in _rows(src, f"SELECT {VERSION_COLUMNS} FROM dataset_versions WHERE id = ?", (version_id,))]
    return rows[0] if rows else None


def find_version(src: Catalog | WriteTransaction, name: str, version: int | None) -> dict[str, Any] | None:
    """A frozen version of ``name`` (the latest when ``version`` is None)."""
    sql = f"SELECT {VERSION_COLUMNS} FROM dataset_versions WHERE name = ? AND status = 'frozen'"
    params: list[Any] = [name]
    if version is not None:
        sql += " AND version = ?"
        params.append(version)
    rows = _rows(src, sql + " ORDER BY version DESC LIMIT 1", params)
    return rows[0] if rows else None


def latest_test_version(src: Catalog | WriteTransaction, plan_id: int) -> dict[str, Any] | None:
    rows = _rows(src, f"""SELECT {VERSION_COLUMNS} FROM dataset_versions
                          WHERE plan_id = ? AND rule = 'test' AND status = 'frozen'
                          ORDER BY frozen_at DESC, id DESC LIMIT 1""", (plan_id,))
    return rows[0] if rows else None


def children(src: Catalog | WriteTransaction, version_id: int) -> list[dict[str, Any]]:
    return _rows(src, f"""SELECT {VERSION_COLUMNS} FROM dataset_versions WHERE parent_id = ? AND status = 'frozen'
                          ORDER BY id""", (version_id,))


def next_version_number(txn: WriteTransaction, name: str) -> int:
    return int(txn.execute("SELECT IFNULL(MAX(version), 0) + 1 FROM dataset_versions WHERE name = ?",
                           (name,)).fetchone()[0])


def insert_building(txn: WriteTransaction, row: dict[str, Any]) -> int:
    """A new version in state 'building' (members may be added until :func:`freeze`)."""
    row = {**row, "status": "building"}
    cursor = txn.execute(f"INSERT INTO dataset_versions ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                         tuple(row.values()))
    return int(cursor.lastrowid)


def freeze(txn: WriteTransaction, version_id: int, images: int, boxes: int, content_hash: str,
           report_json: str, stats_json: str) -> None:
    """Write the version's counts, hash, report and distribution, and freeze it for good."""
    txn.execute("""UPDATE dataset_versions SET status = 'frozen', images = ?, boxes = ?, content_hash = ?,
                   report_json = ?, stats_json = ? WHERE id = ? AND status = 'building'""",
                (images, boxes, content_hash, report_json, stats_json, version_id))


def stats_json(src: Catalog | WriteTransaction, version_id: int) -> str:
    row = _conn(src).execute("SELECT stats_json FROM dataset_versions WHERE id = ?", (version_id,)).fetchone()
    return row[0] if row else "{}"


def report_json(src: Catalog | WriteTransaction, version_id: int) -> str:
    row = _conn(src).execute("SELECT report_json FROM dataset_versions WHERE id = ?", (version_id,)).fetchone()
    return row[0] if row else "{}"


# -- candidates --------------------------------------------------------------------------


def load_candidates(txn: WriteTransaction, plan_id: int, split: str) -> None:
    """Fill ``ds_candidates`` with the images of ``split`` that fall in a cell of the plan.

    ``state``: 'ok' (usable, labelled: a live, not rejected, box or a
    labelled negative; no open QA flag), else the first reason it is not:
    'unusable', 'qa_flagged', 'unlabelled'.
    """
    conn = txn.conn
    conn.execute("""CREATE TEMP TABLE IF NOT EXISTS ds_candidates (
                        image_id INTEGER PRIMARY KEY, class_key INTEGER, luggage_type_id INTEGER,
                        clutter_level TEXT, scanner_model_id INTEGER, pose_key INTEGER,
                        item_key INTEGER, bag_id INTEGER, state TEXT)""")
    conn.execute("DELETE FROM temp.ds_candidates")
    conn.execute("""INSERT INTO temp.ds_candidates
        SELECT i.id, IFNULL(t.class_id, 0), b.luggage_type_id, b.clutter_level, s.model_id, IFNULL(i.pose_id, 0),
               IFNULL(i.item_id, 0), i.bag_id,
               CASE WHEN i.usable = 0 THEN 'unusable'
                    WHEN EXISTS (SELECT 1 FROM qa_flags f WHERE f.image_id = i.id AND f.state = 'open') THEN 'qa_flagged'
                    WHEN EXISTS (SELECT 1 FROM label_image_counts n WHERE n.image_id = i.id)
                      OR EXISTS (SELECT 1 FROM image_labels l WHERE l.image_id = i.id AND l.negative = 1) THEN 'ok'
                    ELSE 'unlabelled' END
        FROM images i
        JOIN bags b ON b.id = i.bag_id
        JOIN scanners s ON s.id = i.scanner_id
        LEFT JOIN threat_items t ON t.id = i.item_id
        JOIN quota_cells q ON q.plan_id = ? AND q.class_key = IFNULL(t.class_id, 0)
             AND q.luggage_type_id = b.luggage_type_id AND q.clutter_level = b.clutter_level
             AND q.scanner_model_id = s.model_id AND q.pose_key = IFNULL(i.pose_id, 0)
        WHERE i.split = ?
        ORDER BY i.id""", (plan_id, split))


def candidate_states(txn: WriteTransaction) -> dict[str, int]:
    return dict(txn.execute("SELECT state, COUNT(*) FROM temp.ds_candidates GROUP BY state"))


def split_images(txn: WriteTransaction, split: str) -> int:
    """Images of a split in the catalog, in a plan cell or not."""
    return int(txn.execute("SELECT COUNT(*) FROM images WHERE split = ?", (split,)).fetchone()[0])


def ok_candidates(txn: WriteTransaction) -> Iterable[tuple]:
    """(image_id, first 16 hex digits of its sha256, cell key..., item_key, bag_id) of the
    candidates in state 'ok', by image id."""
    return txn.execute(f"""SELECT c.image_id, substr(i.sha256, 1, 16), {_CELL_KEY_SQL.replace('class_key', 'c.class_key')},
                                  c.item_key, c.bag_id
                           FROM temp.ds_candidates c JOIN images i ON i.id = c.image_id
                           WHERE c.state = 'ok' ORDER BY c.image_id""")


def start_pick(txn: WriteTransaction) -> None:
    txn.execute("CREATE TEMP TABLE IF NOT EXISTS ds_pick (image_id INTEGER PRIMARY KEY, subset TEXT NOT NULL)")
    txn.execute("DELETE FROM temp.ds_pick")


def pick_ok_candidates(txn: WriteTransaction, subset: str, excluded: Sequence[int] = ()) -> None:
    """Pick every candidate in state 'ok' (less ``excluded``) into ``subset``."""
    txn.execute("INSERT INTO temp.ds_pick SELECT image_id, ? FROM temp.ds_candidates WHERE state = 'ok'", (subset,))
    txn.executemany("DELETE FROM temp.ds_pick WHERE image_id = ?", [(i,) for i in excluded])


def pick(txn: WriteTransaction, rows: Iterable[tuple[int, str]]) -> None:
    """Pick (image_id, subset) pairs."""
    txn.executemany("INSERT INTO temp.ds_pick (image_id, subset) VALUES (?, ?)", rows)


def picked_ids(txn: WriteTransaction) -> list[int]:
    return [r[0] for r in txn.execute("SELECT image_id FROM temp.ds_pick ORDER BY image_id")]


# -- what the freeze checks ----------------------------------------------------------------


def cross_split_near_duplicates(txn: WriteTransaction, other_split: str,
                                other_version_id: int | None = None) -> list[tuple[int, int, int]]:
    """Near-duplicate pairs (picked image, image of the other split, distance): the other image
    is in ``other_split`` in the catalog, or a member of ``other_version_id``."""
    other = "o.split = ?"
    params: list[Any] = [other_split]
    if other_version_id is not None:
        other += " OR EXISTS (SELECT 1 FROM dataset_images d WHERE d.version_id = ? AND d.image_id = o.id)"
        params.append(other_version_id)
    pairs = txn.execute(f"""
        SELECT p.image_id, n.other_id, n.distance FROM temp.ds_pick p
        JOIN near_duplicates n ON n.image_id = p.image_id JOIN images o ON o.id = n.other_id
        WHERE {other}
        UNION
        SELECT p.image_id, n.image_id, n.distance FROM temp.ds_pick p
        JOIN near_duplicates n ON n.other_id = p.image_id JOIN images o ON o.id = n.image_id
        WHERE {other}
        ORDER BY 1, 2""", params * 2).fetchall()
    return [tuple(r) for r in pairs]


def candidate_near_duplicates(txn: WriteTransaction, other_split: str,
                              other_version_id: int | None = None) -> list[tuple[int, int, int]]:
    """As :func:`cross_split_near_duplicates`, for every 'ok' candidate (before the pick)."""
    txn.execute("DELETE FROM temp.ds_pick")
    txn.execute("INSERT INTO temp.ds_pick SELECT image_id, '' FROM temp.ds_candidates WHERE state = 'ok'")
    try:
        return cross_split_near_duplicates(txn, other_split, other_version_id)
    finally:
        txn.execute("DELETE FROM temp.ds_pick")


def shared_objects(txn: WriteTransaction, other_split: str, other_version_id: int | None = None) -> list[dict[str, Any]]:
    """Physical items and bags of the picked images that images of the other split (in the
    catalog, or members of ``other_version_id``) also use: kind, barcode, images on each side."""
    other = "o.split = ?"
    params: list[Any] = [other_split]
    if other_version_id is not None:
        other += " OR o.id IN (SELECT image_id FROM dataset_images WHERE version_id = ?)"
        params.append(other_version_id)
    rows = []
    for kind, column, table in (("item", "item_id", "threat_items"), ("bag", "bag_id", "bags")):
        rows += _rows(txn, f"""
            WITH mine AS (SELECT i.{column} AS object_id, COUNT(*) AS n FROM temp.ds_pick p
                          JOIN images i ON i.id = p.image_id WHERE i.{column} IS NOT NULL GROUP BY 1),
                 theirs AS (SELECT o.{column} AS object_id, COUNT(*) AS n FROM images o
                            WHERE o.{column} IN (SELECT object_id FROM mine) AND ({other})
                              AND o.id NOT IN (SELECT image_id FROM temp.ds_pick) GROUP BY 1)
            SELECT '{kind}' AS kind, x.barcode, mine.n AS here, theirs.n AS other
            FROM mine JOIN theirs USING (object_id) JOIN {table} x ON x.id = mine.object_id
            ORDER BY x.barcode""", params)
    return rows


# -- membership ----------------------------------------------------------------------------


def insert_members(txn: WriteTransaction, version_id: int) -> int:
    """Write the picked images as members of a building version, with their cell, setup and
    current labels (live, not rejected, boxes; negative). Returns how many."""
    cursor = txn.execute(f"""
        INSERT INTO dataset_images (version_id, image_id, subset, {_CELL_KEY_SQL}, item_key, bag_id,
                                    negative, boxes, revisions)
        SELECT ?, c.image_id, p.subset, c.class_key, c.luggage_type_id, c.clutter_level, c.scanner_model_id,
               c.pose_key, c.item_key, c.bag_id,
               IFNULL((SELECT l.negative FROM image_labels l WHERE l.image_id = c.image_id), 0),
               IFNULL((SELECT n.boxes FROM label_image_counts n WHERE n.image_id = c.image_id), 0),
               IFNULL((SELECT group_concat(r, ' ') FROM (
                   SELECT a.revision_id AS r FROM annotations a
                   WHERE a.image_id = c.image_id AND a.deleted = 0 AND a.qa_state != 'rejected'
                   ORDER BY a.revision_id)), '')
        FROM temp.ds_pick p JOIN temp.ds_candidates c ON c.image_id = p.image_id
        ORDER BY p.image_id""", (version_id,))
    return cursor.rowcount


def hash_rows(src: Catalog | WriteTransaction, version_id: int) -> list[tuple[str, str, int, str]]:
    """(image sha256, subset, negative, revisions) of every member, unsorted."""
    return _conn(src).execute("""SELECT i.sha256, d.subset, d.negative, d.revisions FROM dataset_images d
                                 JOIN images i ON i.id = d.image_id WHERE d.version_id = ?""",
                              (version_id,)).fetchall()


def member_cells(src: Catalog | WriteTransaction, version_id: int) -> list[tuple]:
    """Per subset and cell: (subset, cell key..., images, setups, boxes)."""
    return _conn(src).execute(f"""
        SELECT subset, {_CELL_KEY_SQL}, SUM(n), COUNT(*), SUM(b) FROM (
            SELECT subset, {_CELL_KEY_SQL}, item_key, bag_id, COUNT(*) AS n, SUM(boxes) AS b
            FROM dataset_images WHERE version_id = ?
            GROUP BY subset, {_CELL_KEY_SQL}, item_key, bag_id)
        GROUP BY subset, {_CELL_KEY_SQL}""", (version_id,)).fetchall()


def boxes_per_image(src: Catalog | WriteTransaction, version_id: int) -> list[tuple[str, int, int, int]]:
    """(subset, negative, boxes on the image, images)."""
    return _conn(src).execute("""SELECT subset, negative, boxes, COUNT(*) FROM dataset_images WHERE version_id = ?
                                 GROUP BY subset, negative, boxes""", (version_id,)).fetchall()


def box_classes_and_sizes(txn: WriteTransaction, version_id: int) -> list[tuple[str, int, int, int]]:
    """(subset, box class id (0: none), size bucket index, boxes) over the members' boxes.

    Inside the freeze transaction the current boxes are the version's labels."""
    return txn.execute(f"""
        SELECT d.subset, IFNULL(a.class_id, 0), {_SIZE_SQL}, COUNT(*)
        FROM dataset_images d
        JOIN (SELECT image_id, class_id, (x1 - x0) * (y1 - y0) AS area FROM annotations
              WHERE deleted = 0 AND qa_state != 'rejected') a ON a.image_id = d.image_id
        WHERE d.version_id = ? GROUP BY 1, 2, 3""", (version_id,)).fetchall()


def names(src: Catalog | WriteTransaction) -> dict[str, dict[int, str]]:
    """Names of classes, luggage types, scanner models and poses by id."""
    conn = _conn(src)
    out = {}
    for key, table in (("class", "threat_classes"), ("luggage_type", "luggage_types"),
                       ("scanner_model", "scanner_models"), ("pose", "poses")):
        out[key] = dict(conn.execute(f"SELECT id, name FROM {table}").fetchall())
    return out


def plan_cells(src: Catalog | WriteTransaction, plan_id: int) -> list[tuple]:
    """(cell key..., test_target, train_target) of every cell of a plan."""
    return _conn(src).execute(f"SELECT {_CELL_KEY_SQL}, test_target, train_target FROM quota_cells WHERE plan_id = ?",
                              (plan_id,)).fetchall()


def plan_ratio_steps(src: Catalog | WriteTransaction, plan_id: int) -> dict[int, int]:
    return dict(_conn(src).execute("SELECT class_id, ratio_step FROM quota_plan_classes WHERE plan_id = ?",
                                   (plan_id,)).fetchall())


def members(src: Catalog | WriteTransaction, version_id: int, subset: str | None = None) -> list[tuple]:
    """(image_id, subset, cell key..., item_key, bag_id, negative, boxes, revisions), by image id."""
    where = "" if subset is None else " AND subset = ?"
    return _conn(src).execute(
        f"""SELECT image_id, subset, {_CELL_KEY_SQL}, item_key, bag_id, negative, boxes, revisions
            FROM dataset_images WHERE version_id = ?{where} ORDER BY image_id""",
        (version_id,) if subset is None else (version_id, subset)).fetchall()


def member_cell_counts(src: Catalog | WriteTransaction, version_id: int, subset: str) -> list[tuple]:
    """(cell key..., images) of one subset of a version."""
    return _conn(src).execute(f"""SELECT {_CELL_KEY_SQL}, COUNT(*) FROM dataset_images
                                  WHERE version_id = ? AND subset = ? GROUP BY {_CELL_KEY_SQL}""",
                              (version_id, subset)).fetchall()


# -- diff -------------------------------------------------------------------------------------


def diff_cells(src: Catalog | WriteTransaction, a: int, b: int) -> list[tuple]:
    """Per cell: (cell key..., removed, labels changed, moved to another subset, added) from
    version ``a`` to version ``b``. An image's cell is its cell in ``a`` (in ``b`` when added)."""
    conn = _conn(src)
    out: dict[tuple, list[int]] = {}
    for *key, removed, changed, moved in conn.execute(f"""
            SELECT {', '.join('x.' + c for c in CELL_KEY)},
                   SUM(y.image_id IS NULL),
                   SUM(y.image_id IS NOT NULL AND (x.revisions != y.revisions OR x.negative != y.negative)),
                   SUM(y.image_id IS NOT NULL AND x.subset != y.subset)
            FROM dataset_images x LEFT JOIN dataset_images y ON y.version_id = ? AND y.image_id = x.image_id
            WHERE x.version_id = ?
            GROUP BY {', '.join('x.' + c for c in CELL_KEY)}""", (b, a)):
        out[tuple(key)] = [removed, changed, moved, 0]
    for *key, added in conn.execute(f"""
            SELECT {_CELL_KEY_SQL}, COUNT(*) FROM dataset_images y
            WHERE y.version_id = ? AND NOT EXISTS (SELECT 1 FROM dataset_images x
                                                   WHERE x.version_id = ? AND x.image_id = y.image_id)
            GROUP BY {_CELL_KEY_SQL}""", (b, a)):
        out.setdefault(tuple(key), [0, 0, 0, 0])[3] = added
    return [(*key, *counts) for key, counts in sorted(out.items(), key=lambda kv: tuple(map(str, kv[0])))
            if any(counts)]


def diff_images(src: Catalog | WriteTransaction, a: int, b: int, limit: int | None = None) -> dict[str, list]:
    """Image ids removed, added, and (id, revisions in a, revisions in b, negative in a, in b)
    for the images whose labels changed (at most ``limit`` of each)."""
    conn = _conn(src)
    lim = "" if limit is None else f" LIMIT {int(limit)}"
    removed = [r[0] for r in conn.execute(
        f"""SELECT image_id FROM dataset_images x WHERE version_id = ? AND NOT EXISTS
            (SELECT 1 FROM dataset_images y WHERE y.version_id = ? AND y.image_id = x.image_id)
            ORDER BY image_id{lim}""", (a, b))]
    added = [r[0] for r in conn.execute(
        f"""SELECT image_id FROM dataset_images y WHERE version_id = ? AND NOT EXISTS
            (SELECT 1 FROM dataset_images x WHERE x.version_id = ? AND x.image_id = y.image_id)
            ORDER BY image_id{lim}""", (b, a))]
    changed = [tuple(r) for r in conn.execute(
        f"""SELECT x.image_id, x.revisions, y.revisions, x.negative, y.negative
            FROM dataset_images x JOIN dataset_images y ON y.version_id = ? AND y.image_id = x.image_id
            WHERE x.version_id = ? AND (x.revisions != y.revisions OR x.negative != y.negative)
            ORDER BY x.image_id{lim}""", (b, a))]
    return {"removed": removed, "added": added, "changed": changed}


def revision_classes(src: Catalog | WriteTransaction, revision_ids: Sequence[int]) -> dict[int, int]:
    """Box class id (0: none) of each annotation revision."""
    out: dict[int, int] = {}
    ids = list(revision_ids)
    conn = _conn(src)
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        out.update(conn.execute(f"SELECT id, IFNULL(class_id, 0) FROM annotation_revisions "
                                f"WHERE id IN ({', '.join('?' * len(chunk))})", chunk).fetchall())
    return out
