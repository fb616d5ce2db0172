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
* ``dataset_cells``: the quota cells of a version's members, as they were
  at freeze, numbered from 0.
* ``dataset_parts``: the members, in parts of up to :data:`PART_IMAGES`
  images ascending by image id, one array per column stored as bytes: the
  image ids, subsets (test, train, validation), cell numbers, physical setup
  (item, bag), ``negatives`` (a labelled clean image), ``boxes`` and
  ``revisions`` (the ids of each image's live, not rejected, annotation
  revisions, ascending). A million-image version is a few rows, so it is
  written and read whole in well under a second and diffs are set
  operations on sorted arrays (:class:`Members`, :func:`compare`).
* ``dataset_held``: every image some version holds, so that the delete of
  such an image is refused.
* A version is written as ``status = 'building'`` and frozen in the same
  transaction; triggers refuse any UPDATE or DELETE of a frozen version, any
  INSERT, UPDATE or DELETE of its cells and parts, any change to
  ``dataset_held``, and the delete of an image a version holds.

Functions taking a ``WriteTransaction`` run inside the caller's transaction;
reads taking ``src`` accept a Catalog (committed state) or a transaction.
The freeze works through two temporary tables of the writing connection:
``ds_candidates`` (the plan's images of one split, each with its cell, setup
and QA state) and ``ds_pick`` (the images chosen, with their subset); the
checks against another version read its members into ``ds_other``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from core.catalog.db import Catalog, WriteTransaction, connection_of, dict_rows, id_chunks, placeholders

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


# -- versions -----------------------------------------------------------------------


def versions(src: Catalog | WriteTransaction, name: str | None = None) -> list[dict[str, Any]]:
    """Frozen versions (of one name, or all), by name then version, with plan and parent names."""
    where = "WHERE v.status = 'frozen'" + (" AND v.name = ?" if name is not None else "")
    return dict_rows(src, f"""SELECT {', '.join('v.' + c.strip() for c in VERSION_COLUMNS.split(','))},
                                 p.name AS plan_name, p.version AS plan_version,
                                 pv.name AS parent_name, pv.version AS parent_version,
                                 tv.name AS test_name, tv.version AS test_version
                          FROM dataset_versions v JOIN quota_plans p ON p.id = v.plan_id
                          LEFT JOIN dataset_versions pv ON pv.id = v.parent_id
                          LEFT JOIN dataset_versions tv ON tv.id = v.test_version_id
                          {where} ORDER BY v.name, v.version""", () if name is None else (name,))


def version_by_id(src: Catalog | WriteTransaction, version_id: int) -> dict[str, Any] | None:
    rows = dict_rows(src, f"SELECT {VERSION_COLUMNS} FROM dataset_versions WHERE id = ?", (version_id,))
    return rows[0] if rows else None


def find_version(src: Catalog | WriteTransaction, name: str, version: int | None) -> dict[str, Any] | None:
    """A frozen version of ``name`` (the latest when ``version`` is None)."""
    sql = f"SELECT {VERSION_COLUMNS} FROM dataset_versions WHERE name = ? AND status = 'frozen'"
    params: list[Any] = [name]
    if version is not None:
        sql += " AND version = ?"
        params.append(version)
    rows = dict_rows(src, sql + " ORDER BY version DESC LIMIT 1", params)
    return rows[0] if rows else None


def latest_test_version(src: Catalog | WriteTransaction, plan_id: int) -> dict[str, Any] | None:
    rows = dict_rows(src, f"""SELECT {VERSION_COLUMNS} FROM dataset_versions
                          WHERE plan_id = ? AND rule = 'test' AND status = 'frozen'
                          ORDER BY frozen_at DESC, id DESC LIMIT 1""", (plan_id,))
    return rows[0] if rows else None


def children(src: Catalog | WriteTransaction, version_id: int) -> list[dict[str, Any]]:
    return dict_rows(src, f"""SELECT {VERSION_COLUMNS} FROM dataset_versions WHERE parent_id = ? AND status = 'frozen'
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
    row = connection_of(src).execute("SELECT stats_json FROM dataset_versions WHERE id = ?", (version_id,)).fetchone()
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
                    WHEN i.id IN (SELECT f.image_id FROM qa_flags f WHERE f.state = 'open') THEN 'qa_flagged'
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
    load_other_members(txn, other_version_id)
    other = "o.split = ? OR o.id IN (SELECT image_id FROM temp.ds_other)"
    params: list[Any] = [other_split]
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
    load_other_members(txn, other_version_id)
    other = "o.split = ? OR o.id IN (SELECT image_id FROM temp.ds_other)"
    params: list[Any] = [other_split]
    rows = []
    for kind, column, table in (("item", "item_id", "threat_items"), ("bag", "bag_id", "bags")):
        rows += dict_rows(txn, f"""
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

SUBSETS = ("test", "train", "validation")
# Images per dataset_parts row: a million-image version is four rows.
PART_IMAGES = 1 << 18
_PART_COLUMNS = (("image_ids", "<i8"), ("subsets", "u1"), ("cells", "<i4"), ("item_keys", "<i8"),
                 ("bag_ids", "<i8"), ("negatives", "u1"), ("boxes", "<i4"))


@dataclass
class Members:
    """A version's members as arrays, ascending by image id: subset (index into
    :data:`SUBSETS`), cell (index into ``cell_keys``), setup, negative, number of
    boxes, and the label revision ids of every image in turn (``boxes`` each, ascending)."""

    image_ids: Any
    subsets: Any
    cells: Any
    item_keys: Any
    bag_ids: Any
    negatives: Any
    boxes: Any
    revisions: Any
    cell_keys: list[tuple]

    def __len__(self) -> int:
        return len(self.image_ids)

    def starts(self) -> Any:
        """Where each image's revision ids start in ``revisions``."""
        import numpy as np

        out = np.zeros(len(self.boxes), dtype=np.int64)
        np.cumsum(self.boxes[:-1], out=out[1:])
        return out

    def revision_positions(self, index: Any) -> Any:
        """Positions in ``revisions`` of the revision ids of the images at ``index``, image after image."""
        return segments(self.starts()[index], self.boxes[index])

    def select(self, mask: Any) -> "Members":
        """The members where ``mask`` holds (cells keep their numbers)."""
        revisions = self.revisions[self.revision_positions(mask)]
        return Members(*(getattr(self, c)[mask] for c, _ in _PART_COLUMNS), revisions, self.cell_keys)


def segments(starts: Any, counts: Any) -> Any:
    """Concatenated ranges ``starts[i] .. starts[i] + counts[i]`` (int64)."""
    import numpy as np

    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if not total:
        return np.zeros(0, dtype=np.int64)
    firsts = np.cumsum(counts) - counts
    return np.arange(total, dtype=np.int64) - np.repeat(firsts - np.asarray(starts, dtype=np.int64), counts)


def _int_columns(conn: sqlite3.Connection, sql: str, columns: Sequence[str]) -> list[Any]:
    """Integer ``columns`` of the rows of ``FROM ...`` clause ``sql`` as int64 arrays, in the
    rows' order. One group_concat per column: a million rows come back as a few strings
    rather than a million tuples, which is most of the cost of reading them."""
    import numpy as np

    row = conn.execute(f"SELECT {', '.join(f'group_concat({c})' for c in columns)} {sql}").fetchone()
    return [np.fromstring(text, dtype=np.int64, sep=",") if text else np.zeros(0, dtype=np.int64) for text in row]


def collect_picked(txn: WriteTransaction) -> tuple[Members, Any, Any]:
    """The picked images (``ds_pick``) as members, with their cell, setup and current labels
    (live, not rejected, boxes; negative); and per box, its class id (0: none) and size bucket."""
    import numpy as np

    conn = txn.conn
    cell_keys = [tuple(r) for r in conn.execute(f"""
        SELECT DISTINCT {', '.join('c.' + k for k in CELL_KEY)} FROM temp.ds_pick p
        JOIN temp.ds_candidates c ON c.image_id = p.image_id ORDER BY 1, 2, 3, 4, 5""")]
    # Typed as in ds_candidates, so that the join below uses the unique index.
    conn.execute("""CREATE TEMP TABLE IF NOT EXISTS ds_cells (cell INTEGER PRIMARY KEY, class_key INTEGER,
                    luggage_type_id INTEGER, clutter_level TEXT, scanner_model_id INTEGER, pose_key INTEGER,
                    UNIQUE (class_key, luggage_type_id, clutter_level, scanner_model_id, pose_key))""")
    conn.execute("DELETE FROM temp.ds_cells")
    conn.executemany(f"INSERT INTO temp.ds_cells VALUES (?, {', '.join('?' * len(CELL_KEY))})",
                     [(n, *key) for n, key in enumerate(cell_keys)])
    # ds_pick drives both reads (CROSS JOIN keeps it the outer loop), so rows come by image id.
    ids, subsets, cells, items, bags, negatives = _int_columns(conn, """
        FROM temp.ds_pick p CROSS JOIN temp.ds_candidates c ON c.image_id = p.image_id
        JOIN temp.ds_cells k ON k.class_key = c.class_key AND k.luggage_type_id = c.luggage_type_id
             AND k.clutter_level = c.clutter_level AND k.scanner_model_id = c.scanner_model_id
             AND k.pose_key = c.pose_key
        LEFT JOIN image_labels l ON l.image_id = p.image_id""",
        ("p.image_id", "CASE p.subset WHEN 'test' THEN 0 WHEN 'train' THEN 1 ELSE 2 END", "k.cell",
         "c.item_key", "c.bag_id", "IFNULL(l.negative, 0)"))
    # A pick holding a good part of the labelled images reads the boxes in one
    # pass over the table (sequential, a third faster than a lookup per box);
    # a small one looks its images' boxes up.
    picked = len(ids)
    labelled = conn.execute("SELECT COUNT(*) FROM label_image_counts").fetchone()[0]
    boxes_sql = ("FROM annotations a NOT INDEXED WHERE a.image_id IN (SELECT image_id FROM temp.ds_pick) AND "
                 if picked * 4 >= labelled else
                 "FROM temp.ds_pick p CROSS JOIN annotations a ON a.image_id = p.image_id WHERE ")
    owners, revisions, kinds = _int_columns(conn, boxes_sql + "a.deleted = 0 AND a.qa_state != 'rejected'",
        ("a.image_id", "a.revision_id", "IFNULL(a.class_id, 0) * 8 + " +
         _SIZE_SQL.replace("a.area", "((a.x1 - a.x0) * (a.y1 - a.y0))")))
    if len(ids) > 1 and not (ids[1:] > ids[:-1]).all():
        order = np.argsort(ids, kind="stable")
        ids, subsets, cells, items, bags, negatives = (c[order] for c in (ids, subsets, cells, items, bags, negatives))
    order = np.lexsort((revisions, owners))
    owners, revisions, kinds = owners[order], revisions[order], kinds[order]
    owner = np.searchsorted(ids, owners)
    members = Members(ids, subsets.astype(np.uint8), cells.astype(np.int32), items, bags,
                      negatives.astype(np.uint8), np.bincount(owner, minlength=len(ids)).astype(np.int32),
                      revisions, cell_keys)
    return members, kinds // 8, kinds % 8


def picked_shas(txn: WriteTransaction) -> list[str]:
    """sha256 (hex) of the picked images, by image id."""
    text = txn.execute("SELECT group_concat(i.sha256, '') FROM temp.ds_pick p CROSS JOIN images i "
                       "ON i.id = p.image_id").fetchone()[0] or ""
    return [text[n:n + 64] for n in range(0, len(text), 64)]


def insert_members(txn: WriteTransaction, version_id: int, members: Members) -> int:
    """Write the members of a building version (its cells, its parts) and mark its images as held
    (they are the picked images, ``ds_pick``). Returns how many."""
    txn.executemany(f"INSERT INTO dataset_cells (version_id, cell, {_CELL_KEY_SQL}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(version_id, n, *key) for n, key in enumerate(members.cell_keys)])
    starts = members.starts()
    for part, first in enumerate(range(0, len(members), PART_IMAGES)):
        last = min(first + PART_IMAGES, len(members))
        begin = int(starts[first]) if first < len(members) else 0
        end = begin + int(members.boxes[first:last].sum())
        arrays = [getattr(members, c)[first:last].astype(dtype).tobytes() for c, dtype in _PART_COLUMNS]
        txn.execute(f"""INSERT INTO dataset_parts (version_id, part, images, first_image, last_image,
                        {', '.join(c for c, _ in _PART_COLUMNS)}, revisions)
                        VALUES (?, ?, ?, ?, ?, {', '.join('?' * len(_PART_COLUMNS))}, ?)""",
                    (version_id, part, last - first, int(members.image_ids[first]),
                     int(members.image_ids[last - 1]), *arrays,
                     members.revisions[begin:end].astype("<i8").tobytes()))
    txn.execute("INSERT OR IGNORE INTO dataset_held (image_id, version_id) SELECT image_id, ? FROM temp.ds_pick",
                (version_id,))
    return len(members)


def read_members(src: Catalog | WriteTransaction, version_id: int) -> Members:
    """A version's members, whole."""
    import numpy as np

    conn = connection_of(src)
    cell_keys = [tuple(r) for r in conn.execute(f"SELECT {_CELL_KEY_SQL} FROM dataset_cells WHERE version_id = ? "
                                                "ORDER BY cell", (version_id,))]
    parts = conn.execute(f"SELECT {', '.join(c for c, _ in _PART_COLUMNS)}, revisions FROM dataset_parts "
                         "WHERE version_id = ? ORDER BY part", (version_id,)).fetchall()
    columns = []
    for n, (_column, dtype) in enumerate([*_PART_COLUMNS, ("revisions", "<i8")]):
        chunks = [np.frombuffer(p[n], dtype=dtype) for p in parts]
        native = np.dtype(dtype).newbyteorder("=")
        columns.append(np.concatenate(chunks).astype(native) if chunks else np.zeros(0, dtype=native))
    return Members(*columns, cell_keys)


def members(src: Catalog | WriteTransaction, version_id: int, subset: str | None = None) -> list[tuple]:
    """(image_id, subset, cell key..., item_key, bag_id, negative, boxes, revisions), by image id;
    ``revisions``: the label revision ids, ascending, space separated."""
    m = read_members(src, version_id)
    if subset is not None:
        m = m.select(m.subsets == SUBSETS.index(subset))
    starts = m.starts().tolist()
    revisions = m.revisions.tolist()
    out = []
    for n, (image_id, sub, cell, item, bag, negative, boxes) in enumerate(zip(
            m.image_ids.tolist(), m.subsets.tolist(), m.cells.tolist(), m.item_keys.tolist(), m.bag_ids.tolist(),
            m.negatives.tolist(), m.boxes.tolist())):
        text = " ".join(map(str, revisions[starts[n]:starts[n] + boxes]))
        out.append((image_id, SUBSETS[sub], *m.cell_keys[cell], item, bag, negative, boxes, text))
    return out


def member_ids(src: Catalog | WriteTransaction, version_id: int, subset: str | None = None) -> list[int]:
    """Image ids of a version (of one subset), ascending."""
    m = read_members(src, version_id)
    ids = m.image_ids if subset is None else m.image_ids[m.subsets == SUBSETS.index(subset)]
    return ids.tolist()


def member_cell_counts(src: Catalog | WriteTransaction, version_id: int, subset: str) -> list[tuple]:
    """(cell key..., images) of one subset of a version."""
    import numpy as np

    m = read_members(src, version_id)
    counts = np.bincount(m.cells[m.subsets == SUBSETS.index(subset)], minlength=len(m.cell_keys))
    return [(*key, int(n)) for key, n in zip(m.cell_keys, counts.tolist()) if n]


def load_other_members(txn: WriteTransaction, version_id: int | None) -> None:
    """Fill ``ds_other`` with the image ids of ``version_id`` (none when None)."""
    txn.execute("CREATE TEMP TABLE IF NOT EXISTS ds_other (image_id INTEGER PRIMARY KEY)")
    txn.execute("DELETE FROM temp.ds_other")
    if version_id is not None:
        txn.executemany("INSERT INTO temp.ds_other VALUES (?)",
                        ((i,) for i in read_members(txn, version_id).image_ids.tolist()))


def names(src: Catalog | WriteTransaction) -> dict[str, dict[int, str]]:
    """Names of classes, luggage types, scanner models and poses by id."""
    conn = connection_of(src)
    out = {}
    for key, table in (("class", "threat_classes"), ("luggage_type", "luggage_types"),
                       ("scanner_model", "scanner_models"), ("pose", "poses")):
        out[key] = dict(conn.execute(f"SELECT id, name FROM {table}").fetchall())
    return out


def plan_cells(src: Catalog | WriteTransaction, plan_id: int) -> list[tuple]:
    """(cell key..., test_target, train_target) of every cell of a plan."""
    return connection_of(src).execute(f"SELECT {_CELL_KEY_SQL}, test_target, train_target FROM quota_cells WHERE plan_id = ?",
                              (plan_id,)).fetchall()


def plan_ratio_steps(src: Catalog | WriteTransaction, plan_id: int) -> dict[int, int]:
    return dict(connection_of(src).execute("SELECT class_id, ratio_step FROM quota_plan_classes WHERE plan_id = ?",
                                   (plan_id,)).fetchall())


# -- diff -------------------------------------------------------------------------------------


@dataclass
class Comparison:
    """Two versions' members side by side: ``a`` and ``b``, the positions in each of the images both
    hold (``in_a``, ``in_b``, by image id), and per such image whether its labels changed or it moved."""

    a: Members
    b: Members
    in_a: Any
    in_b: Any
    changed: Any
    moved: Any

    def removed(self) -> Any:
        """Positions in ``a`` of the images ``b`` lacks."""
        import numpy as np

        mask = np.ones(len(self.a), dtype=bool)
        mask[self.in_a] = False
        return np.flatnonzero(mask)

    def added(self) -> Any:
        import numpy as np

        mask = np.ones(len(self.b), dtype=bool)
        mask[self.in_b] = False
        return np.flatnonzero(mask)


def compare(src: Catalog | WriteTransaction, a: int, b: int) -> Comparison:
    """Compare version ``a`` with version ``b``: set operations on their sorted image ids; labels
    changed where the negative flag or the list of revision ids differs."""
    import numpy as np

    ma, mb = read_members(src, a), read_members(src, b)
    _, in_a, in_b = np.intersect1d(ma.image_ids, mb.image_ids, assume_unique=True, return_indices=True)
    changed = (ma.negatives[in_a] != mb.negatives[in_b]) | (ma.boxes[in_a] != mb.boxes[in_b])
    same_count = np.flatnonzero(~changed)
    counts = ma.boxes[in_a][same_count].astype(np.int64)
    if counts.sum():
        differs = ma.revisions[ma.revision_positions(in_a[same_count])] != \
            mb.revisions[mb.revision_positions(in_b[same_count])]
        owner = np.repeat(np.arange(len(same_count)), counts)
        changed[same_count] = np.bincount(owner, weights=differs, minlength=len(same_count)) > 0
    moved = ma.subsets[in_a] != mb.subsets[in_b]
    return Comparison(ma, mb, in_a, in_b, changed, moved)


def diff_cells(src: Catalog | WriteTransaction, a: int, b: int, comparison: Comparison | None = None) -> list[tuple]:
    """Per cell: (cell key..., removed, labels changed, moved to another subset, added) from
    version ``a`` to version ``b``. An image's cell is its cell in ``a`` (in ``b`` when added)."""
    import numpy as np

    c = comparison or compare(src, a, b)
    n_a, n_b = len(c.a.cell_keys), len(c.b.cell_keys)
    counts_a = [np.bincount(c.a.cells[c.removed()], minlength=n_a),
                np.bincount(c.a.cells[c.in_a[c.changed]], minlength=n_a),
                np.bincount(c.a.cells[c.in_a[c.moved]], minlength=n_a)]
    added = np.bincount(c.b.cells[c.added()], minlength=n_b)
    out: dict[tuple, list[int]] = {}
    for n, key in enumerate(c.a.cell_keys):
        out[key] = [int(counts[n]) for counts in counts_a] + [0]
    for n, key in enumerate(c.b.cell_keys):
        out.setdefault(key, [0, 0, 0, 0])[3] += int(added[n])
    return [(*key, *counts) for key, counts in sorted(out.items(), key=lambda kv: tuple(map(str, kv[0])))
            if any(counts)]


def diff_images(src: Catalog | WriteTransaction, a: int, b: int) -> dict[str, list]:
    """Image ids removed, added, and (id, revisions in a, revisions in b, negative in a, in b)
    for the images whose labels changed, by image id."""
    c = compare(src, a, b)
    changed = []
    starts_a, starts_b = c.a.starts(), c.b.starts()
    for i, j in zip(c.in_a[c.changed].tolist(), c.in_b[c.changed].tolist()):
        old = c.a.revisions[starts_a[i]:starts_a[i] + c.a.boxes[i]].tolist()
        new = c.b.revisions[starts_b[j]:starts_b[j] + c.b.boxes[j]].tolist()
        changed.append((int(c.a.image_ids[i]), " ".join(map(str, old)), " ".join(map(str, new)),
                        int(c.a.negatives[i]), int(c.b.negatives[j])))
    return {"removed": c.a.image_ids[c.removed()].tolist(), "added": c.b.image_ids[c.added()].tolist(),
            "changed": changed}


def revision_classes(src: Catalog | WriteTransaction, revision_ids: Sequence[int]) -> dict[int, int]:
    """Box class id (0: none) of each annotation revision."""
    out: dict[int, int] = {}
    ids = list(revision_ids)
    conn = connection_of(src)
    for chunk in id_chunks(ids):
        out.update(conn.execute(f"SELECT id, IFNULL(class_id, 0) FROM annotation_revisions "
                                f"WHERE id IN ({placeholders(len(chunk))})", chunk).fetchall())
    return out
