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
A freeze reads the images of its split once, as arrays (:class:`SplitImages`:
each image's plan cell, setup and QA state), and chooses, checks and counts on
them; columns of millions of rows come back through ``group_concat`` and lists
of ids go in as one JSON parameter (``json_each``). Only a refusal for
physical objects shared across the splits counts them in SQL, through the
temporary tables ``ds_pick`` and ``ds_other`` of the writing connection.

How a million-image freeze reads fast
-------------------------------------
Printing and parsing numbers is most of the cost of reading millions of rows,
and SQLite's work per row is the rest; so:

* several integer columns travel as one number where their bounds (read off
  indexes) let them fit in 62 bits (:class:`_Packing`): an image's id, usable
  flag, item, bag and scanner as one; a box's image, revision, class and size
  as one;
* the live boxes come off the covering partial index ``annotations_live_boxes``
  (migration 0011), in (image, revision) order: a scan of a narrow index with
  nothing to filter and nothing to sort afterwards;
* on SQLite both reads run in id ranges on read-only connections of their own
  (:class:`Readers`) beside the write transaction, whose write lock keeps their
  view equal to its own for the tables it has not written; the boxes are read
  while the freeze checks shared objects and writes ``dataset_held``.

On PostgreSQL the same statements run translated (core.catalog.pg) on the
transaction's connection, one after the other: :class:`Readers` opens no
connections there and ``INDEXED BY`` is left out.
"""

from __future__ import annotations

import binascii
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.catalog.db import BUSY_TIMEOUT_MS, Catalog, WriteTransaction, connection_of, dict_rows, id_chunks, placeholders
from core.errors import CatalogError

VERSION_COLUMNS = ("id, name, version, status, rule, rule_json, plan_id, parent_id, test_version_id, seed, "
                   "label_seq, images, boxes, content_hash, report_json, frozen_at, frozen_by")
CELL_KEY = ("class_key", "luggage_type_id", "clutter_level", "scanner_model_id", "pose_key")
_CELL_KEY_SQL = ", ".join(CELL_KEY)
# Box size classes by the box's area, as the side of the square of the same
# area: under 16 px, 16-32, ... , 1024 px and over.
SIZE_BUCKETS = ("<16", "16-32", "32-64", "64-128", "128-256", "256-512", "512-1024", ">=1024")
# The areas (square pixels) where buckets 1 to 7 start; bucket 0 is below 256. Each is a whole
# number of 256 square pixels, so an area cut to whole pixels and then to whole 256ths (capped at
# the last edge) keeps its bucket: the box read brings that number, 0 to 4096 (13 bits).
_SIZE_EDGES = (256, 1024, 4096, 16384, 65536, 262144, 1048576)
_AREA_UNIT_BITS = 8


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

# An image's state at freeze: 'ok' (usable, labelled: a live, not rejected,
# box or a labelled negative; no open QA flag), else the first reason it is not.
STATES = ("ok", "unusable", "qa_flagged", "unlabelled")
_SPLIT_CODE = "CASE {} WHEN 'test' THEN 0 WHEN 'train' THEN 1 ELSE 2 END"


@dataclass
class SplitImages:
    """Every image of one split, ascending by id, as arrays: its item and bag (-1: none), its cell
    of the plan (index into ``cell_keys``, the plan's cells ascending; -1: in none of them), its
    state (index into :data:`STATES`), whether it is a labelled negative, and its sha256 (32 bytes)."""

    split: str
    image_ids: Any
    item_ids: Any
    bag_ids: Any
    cells: Any
    states: Any
    negatives: Any
    digests: Any
    cell_keys: list[tuple]

    def __len__(self) -> int:
        return len(self.image_ids)

    def find(self, image_ids: Any) -> tuple[Any, Any]:
        """Positions of ``image_ids`` here, and which of them are images of this split at all."""
        return _find(self.image_ids, image_ids)


def _find(sorted_ids: Any, ids: Any) -> tuple[Any, Any]:
    """Positions of ``ids`` in the ascending, distinct array ``sorted_ids`` (clipped), and which
    are there. Ids are rowids, mostly dense: where their range is not much larger than the
    arrays, a table by id answers (a gather), else a binary search."""
    import numpy as np

    ids = np.asarray(ids, dtype=np.int64)
    n = len(sorted_ids)
    if not n:
        return np.zeros(len(ids), dtype=np.int64), np.zeros(len(ids), dtype=bool)
    low, high = int(sorted_ids[0]), int(sorted_ids[-1])
    if low >= 0 and high < 4 * (n + len(ids)) + 4096:
        where = np.zeros(high + 1, dtype=np.int64)
        where[sorted_ids] = np.arange(n)
        at = where[np.clip(ids, 0, high)]
    else:
        at = np.minimum(np.searchsorted(sorted_ids, ids), n - 1)
    return at, sorted_ids[at] == ids


def _distinct(values: Any) -> Any:
    """The distinct values, ascending (np.unique without counts hashes, which is slow on millions of ids)."""
    import numpy as np

    values = np.asarray(values, dtype=np.int64)
    if len(values) < 2 or (values[1:] > values[:-1]).all():  # a primary key read in order
        return values
    out = np.sort(values)
    return out[np.concatenate(([True], out[1:] != out[:-1]))]


def _lookup(keys: Any, values: Any, query: Any, default: int) -> tuple[Any, Any]:
    """``values`` at the rows whose ``keys`` equal ``query`` (``default`` where none does), and where one did."""
    import numpy as np

    order = np.argsort(keys, kind="stable")
    at, found = _find(np.asarray(keys, dtype=np.int64)[order], query)
    out = np.asarray(values, dtype=np.int64)[order][at] if len(keys) else np.zeros(len(query), dtype=np.int64)
    return np.where(found, out, default), found


def _match_rows(columns: list[Any], valid: Any, table: list[Any]) -> Any:
    """Per row of ``columns`` (where ``valid``), the index of the row of ``table`` (unique rows) equal to it; -1
    where none is. Column by column, each prefix of a row is renumbered among the table's prefixes, so that
    the combined numbers never exceed the table's size squared."""
    import numpy as np

    n = len(table[0]) if table else 0
    if not n:
        return np.full(len(valid), -1, dtype=np.int64)
    ok = np.array(valid, dtype=bool)
    rows = np.zeros(len(ok), dtype=np.int64)
    prefix = np.zeros(n, dtype=np.int64)
    for column, values in zip(columns, table):
        values = np.asarray(values, dtype=np.int64)
        distinct = _distinct(values)
        at, found = _find(distinct, column)
        ok &= found
        prefix = prefix * len(distinct) + np.searchsorted(distinct, values)
        rows = rows * len(distinct) + at
        prefixes = _distinct(prefix)
        prefix = np.searchsorted(prefixes, prefix)
        at, found = _find(prefixes, rows)
        ok &= found
        rows = at
    index = np.empty(n, dtype=np.int64)
    index[prefix] = np.arange(n)
    return np.where(ok, index[rows], -1)


def read_split(src: Catalog | WriteTransaction, plan_id: int, split: str,
               readers: Readers | None = None) -> SplitImages:
    """Every image of ``split``, with its cell of the plan and its state (:class:`SplitImages`).

    One pass over the images (in id ranges on ``readers`` at once, with the
    sets below); the cells come from the small inventory tables and the plan's
    cells, and the states from the sets of open QA flags, labelled images and
    labelled negatives, all matched as arrays.
    """
    import numpy as np

    conn = connection_of(src)
    readers = readers or Readers.serial(conn)
    low, high = _bounds(conn, "images", "id")
    # The pose alone: no index bounds it. The hashes come as bytes (no text decoding of 64 MB).
    packing = _Packing([("id", low, high), ("usable", 0, 1),
                        *[(f"IFNULL({c}, -1)", *_or_none(*_bounds(conn, "images", c, f"{c} IS NOT NULL"), -1))
                          for c in ("item_id", "bag_id", "scanner_id")],
                        ("IFNULL(pose_id, 0)", None, None)])
    parts = readers.in_ranges(f"""SELECT {', '.join(f'group_concat({c})' for c in packing.columns())},
                                         CAST(group_concat(sha256, '') AS BLOB)
                                  FROM images WHERE split = ?""", "id", low, high, (split,))
    sets = [readers.submit(f"SELECT group_concat(image_id) {sql}") for sql in (
        "FROM qa_flags WHERE state = 'open'", "FROM image_labels WHERE negative = 1", "FROM label_image_counts")]
    parts = [part.result() for part in parts]
    ids, usable, items, bags, scanners, poses = packing.unpack([_ints(*texts) for texts in list(zip(*parts))[:-1]])
    try:
        digests = np.frombuffer(binascii.unhexlify(b"".join(p[-1] for p in parts if p[-1])),
                                dtype=np.uint8).reshape(len(ids), 32)
    except ValueError:  # binascii.Error is one
        bad = conn.execute("SELECT id, sha256 FROM images WHERE split = ? AND (length(sha256) != 64 OR "
                           "lower(sha256) GLOB '*[^0-9a-f]*') LIMIT 1", (split,)).fetchone()
        raise CatalogError(f"image {bad[0] if bad else '?'}: its content hash '{bad[1] if bad else ''}' in the "
                           "catalog is not a sha256 (64 hex digits); the catalog is damaged") from None
    if len(ids) > 1 and not (ids[1:] > ids[:-1]).all():
        order = np.argsort(ids, kind="stable")
        ids, items, bags, scanners, poses, usable, digests = (
            c[order] for c in (ids, items, bags, scanners, poses, usable, digests))

    cell_keys = sorted(tuple(r) for r in conn.execute(f"SELECT {_CELL_KEY_SQL} FROM quota_cells WHERE plan_id = ?",
                                                      (plan_id,)))
    clutters = {c: n for n, c in enumerate(sorted({key[2] for key in cell_keys}))}
    item_rows = conn.execute("SELECT id, IFNULL(class_id, 0) FROM threat_items").fetchall()
    bag_rows = conn.execute("SELECT id, IFNULL(luggage_type_id, -1), clutter_level FROM bags").fetchall()
    scanner_rows = conn.execute("SELECT id, IFNULL(model_id, -1) FROM scanners").fetchall()
    # As the join the rule is written as: no threat item (or an unknown one) is class 0; an
    # image whose bag or scanner is unknown is in no cell.
    classes, _ = _lookup([r[0] for r in item_rows], [r[1] for r in item_rows], items, 0)
    luggage, bag_found = _lookup([r[0] for r in bag_rows], [r[1] for r in bag_rows], bags, -1)
    clutter, _ = _lookup([r[0] for r in bag_rows], [clutters.get(r[2], -1) for r in bag_rows], bags, -1)
    models, _ = _lookup([r[0] for r in scanner_rows], [r[1] for r in scanner_rows], scanners, -1)
    valid = bag_found & (luggage >= 0) & (clutter >= 0) & (models >= 0)
    cells = _match_rows([classes, luggage, clutter, models, poses], valid,
                        [[k[0] for k in cell_keys], [k[1] for k in cell_keys], [clutters[k[2]] for k in cell_keys],
                         [k[3] for k in cell_keys], [k[4] for k in cell_keys]])

    flagged, negatives, boxed = (_find(_distinct(_ints(found.result()[0])), ids)[1] for found in sets)
    states = np.where(usable == 0, 1, np.where(flagged, 2, np.where(boxed | negatives, 0, 3))).astype(np.uint8)
    return SplitImages(split, ids, items, bags, cells, states, negatives.astype(np.uint8), digests, cell_keys)


# -- what the freeze checks ----------------------------------------------------------------


def cross_split_near_duplicates(src: Catalog | WriteTransaction, images: SplitImages, eligible: Any,
                                other_split: str, other_ids: Any = ()) -> list[tuple[int, int, int]]:
    """Near-duplicate pairs (image, image of the other side, distance), ascending: the first is an
    image of ``images`` where ``eligible``; the other is in ``other_split`` in the catalog, or one
    of ``other_ids`` (ascending; a version's members). Reads the pairs that touch the split."""
    import numpy as np

    code = ("test", "train").index(other_split)
    first, second, distance, first_split, second_split = _int_columns(connection_of(src), """
        FROM near_duplicates n JOIN images x ON x.id = n.image_id JOIN images y ON y.id = n.other_id
        WHERE x.split = ? OR y.split = ?""",
        ("n.image_id", "n.other_id", "n.distance", _SPLIT_CODE.format("x.split"), _SPLIT_CODE.format("y.split")),
        (images.split, images.split))
    if not len(first) or not len(images):
        return []
    other_ids = np.asarray(other_ids, dtype=np.int64)
    pairs = set()
    for mine, mine_split, theirs, theirs_split in ((first, first_split, second, second_split),
                                                   (second, second_split, first, first_split)):
        at, found = images.find(mine)
        keep = found & np.asarray(eligible, dtype=bool)[at] & \
            ((theirs_split == code) | _find(other_ids, theirs)[1])
        pairs.update(zip(mine[keep].tolist(), theirs[keep].tolist(), distance[keep].tolist()))
    return sorted(pairs)


def _objects_outside(conn: sqlite3.Connection, images: SplitImages) -> tuple[Any, Any]:
    """Items and bags that some image outside ``images``' split uses (of the other split, or of
    none): the catalog's images per (bag, item), read off an index, less the split's own."""
    import numpy as np

    everywhere = conn.execute("SELECT IFNULL(bag_id, -1), IFNULL(item_id, -1), COUNT(*) FROM images "
                              "GROUP BY bag_id, item_id").fetchall()
    if not everywhere:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    bags, items, counts = (np.array(column, dtype=np.int64) for column in zip(*everywhere))
    row = _match_rows([images.bag_ids, images.item_ids], np.ones(len(images), dtype=bool), [bags, items])
    outside = counts > np.bincount(row[row >= 0], minlength=len(counts))
    return _distinct(items[outside & (items >= 0)]), _distinct(bags[outside & (bags >= 0)])


def shared_objects(txn: WriteTransaction, images: SplitImages, picked: Any, other_split: str,
                   other: Members | None = None) -> list[dict[str, Any]]:
    """Physical items and bags of the picked images (positions in ``images``) that images of the
    other split (in the catalog, or members of the version ``other``) also use: kind, barcode,
    images on each side.

    First a check on arrays: the picked images' objects against the objects that
    images outside the split use, and those of ``other``'s members in the split
    but not picked. It finds none in a catalog whose splits keep their objects
    apart; only where it finds some are both sides counted (with temporary
    tables ``ds_pick`` and ``ds_other``), image by image.
    """
    import numpy as np

    items, bags = _objects_outside(txn.conn, images)
    if other is not None and len(other):
        at, found = images.find(other.image_ids)
        unpicked = np.ones(len(images), dtype=bool)
        unpicked[picked] = False
        at = at[found][unpicked[at[found]]]
        items, bags = np.union1d(items, images.item_ids[at]), np.union1d(bags, images.bag_ids[at])
    mine_items, mine_bags = images.item_ids[picked], images.bag_ids[picked]
    if not (np.isin(mine_items[mine_items >= 0], items).any() or np.isin(mine_bags[mine_bags >= 0], bags).any()):
        return []
    txn.execute("CREATE TEMP TABLE IF NOT EXISTS ds_pick (image_id INTEGER PRIMARY KEY)")
    txn.execute("CREATE TEMP TABLE IF NOT EXISTS ds_other (image_id INTEGER PRIMARY KEY)")
    txn.execute("DELETE FROM temp.ds_pick")
    txn.execute("DELETE FROM temp.ds_other")
    _insert_ids(txn, "INSERT INTO temp.ds_pick SELECT value FROM json_each(?)", images.image_ids[picked])
    if other is not None:
        _insert_ids(txn, "INSERT INTO temp.ds_other SELECT value FROM json_each(?)", other.image_ids)
    where_other = "o.split = ? OR o.id IN (SELECT image_id FROM temp.ds_other)"
    rows = []
    for kind, column, table in (("item", "item_id", "threat_items"), ("bag", "bag_id", "bags")):
        rows += dict_rows(txn, f"""
            WITH mine AS (SELECT i.{column} AS object_id, COUNT(*) AS n FROM temp.ds_pick p
                          JOIN images i ON i.id = p.image_id WHERE i.{column} IS NOT NULL GROUP BY 1),
                 theirs AS (SELECT o.{column} AS object_id, COUNT(*) AS n FROM images o
                            WHERE o.{column} IN (SELECT object_id FROM mine) AND ({where_other})
                              AND o.id NOT IN (SELECT image_id FROM temp.ds_pick) GROUP BY 1)
            SELECT '{kind}' AS kind, x.barcode, mine.n AS here, theirs.n AS other
            FROM mine JOIN theirs USING (object_id) JOIN {table} x ON x.id = mine.object_id
            ORDER BY x.barcode""", (other_split,))
    txn.execute("DELETE FROM temp.ds_pick")
    txn.execute("DELETE FROM temp.ds_other")
    return rows


def _json_ids(ids: Any) -> str:
    """Image ids as a JSON array, for ``json_each``: a million ids go in as one parameter."""
    return json.dumps(ids.tolist(), separators=(",", ":"))


def _insert_ids(txn: WriteTransaction, sql: str, ids: Any, *params: Any) -> None:
    """Run ``INSERT ... json_each(?)`` statement ``sql`` over ``ids`` (after ``params``), a part at a
    time, so that no parameter nears SQLite's limit on a value's length."""
    for first in range(0, len(ids), PART_IMAGES):
        txn.execute(sql, (*params, _json_ids(ids[first:first + PART_IMAGES])))


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


# -- reading beside the write transaction ---------------------------------------------------

# Read connections a freeze reads on at once (the machines XLab runs on have two cores or
# more), and the fewest ids a table must span to be read in ranges on them.
SCAN_THREADS = 2
PARALLEL_SCAN_ROWS = 100_000


class Readers:
    """Read-only connections to a SQLite catalog's file that run SELECTs beside a write transaction,
    each on a thread of its own: SQLite computes and prints rows without Python's lock, so the reads
    run at once with each other and with the transaction's own work. A context manager: its end
    interrupts what still runs and closes them.

    Open them at the start of the transaction, and read only tables the transaction has not
    written: they see the last commit, and the transaction's write lock keeps any other commit out
    until it ends, so there they see exactly what the transaction sees.

    The fast path is SQLite's alone. A catalog in memory or on a server, or ``threads`` below 2,
    has none (:meth:`serial`): each query then runs on the transaction's (or given) connection
    when submitted. (A PostgreSQL branch could read on connections importing the transaction's
    snapshot, ``pg_export_snapshot``.)"""

    def __init__(self, conn: Any, threads: int | None = None):
        import threading
        from concurrent.futures import ThreadPoolExecutor

        threads = SCAN_THREADS if threads is None else threads
        path = ""
        if isinstance(conn, sqlite3.Connection) and threads >= 2:
            path = next((r[2] for r in conn.execute("PRAGMA database_list") if r[1] == "main"), "")
        self._conn = conn
        self._uri = f"{Path(path).as_uri()}?mode=ro" if path else ""
        self.threads = threads if path else 0
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="xlab-reader") if self.threads else None
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: list[sqlite3.Connection] = []
        self._closed = False

    @classmethod
    def serial(cls, conn: Any) -> "Readers":
        """Queries run on ``conn`` itself, one after the other."""
        return cls(conn, threads=0)

    def submit(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """A future of the first row of ``sql``."""
        from concurrent.futures import Future

        if self._pool is None:
            done: Future = Future()
            done.set_result(self._conn.execute(sql, tuple(params)).fetchone())
            return done
        return self._pool.submit(self._first_row, sql, tuple(params))

    def in_ranges(self, sql: str, key: str, low: int | None, high: int | None,
                  params: Sequence[Any] = ()) -> list[Any]:
        """Futures of the first row of ``sql`` (ending in a WHERE clause) over ranges of the integer
        ``key`` from ``low`` to ``high``, ascending: twice as many ranges as threads (so that a
        thread done early takes another), one without readers or for a short span."""
        import numpy as np

        if low is None:
            return [self.submit(sql, params)]
        parts = 2 * self.threads if self.threads and high - low >= PARALLEL_SCAN_ROWS else 1
        edges = np.linspace(low, high + 1, parts + 1).astype(np.int64).tolist()
        return [self.submit(f"{sql} AND {key} >= ? AND {key} < ?", (*params, edges[i], edges[i + 1]))
                for i in range(parts)]

    def _first_row(self, sql: str, params: tuple) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
            self._local.conn = conn
            with self._lock:
                self._opened.append(conn)
        if self._closed:
            raise CatalogError("the catalog's readers were closed")
        return conn.execute(sql, params).fetchone()

    def close(self) -> None:
        """Interrupt the reads still running, wait for their threads, close the connections."""
        if self._pool is None or self._closed:
            return
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            opened = list(self._opened)
        for conn in opened:
            conn.interrupt()
        self._pool.shutdown(wait=True)
        for conn in opened:
            conn.close()

    def __enter__(self) -> "Readers":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _ints(*texts: str | None) -> Any:
    """Comma-separated integers (group_concat's output, in parts) as one int64 array."""
    import numpy as np

    arrays = [np.fromstring(t, dtype=np.int64, sep=",") for t in texts if t]
    if not arrays:
        return np.zeros(0, dtype=np.int64)
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def _int_columns(conn: sqlite3.Connection, sql: str, columns: Sequence[str], params: Sequence[Any] = ()) -> list[Any]:
    """Integer ``columns`` of the rows of ``FROM ...`` clause ``sql`` as int64 arrays, in the
    rows' order. One group_concat per column: a million rows come back as a few strings
    rather than a million tuples, which is most of the cost of reading them."""
    row = conn.execute(f"SELECT {', '.join(f'group_concat({c})' for c in columns)} {sql}", tuple(params)).fetchone()
    return [_ints(text) for text in row]


# Bits a packed value holds (a non-negative int64, with room to spare).
_WORD_BITS = 62


class _Packing:
    """Integer SQL expressions read as few values as possible: each with the least and greatest
    value it can take (``None``: not known; read alone), as many as fit in :data:`_WORD_BITS` bits
    go into one value, each above the next. SQLite's group_concat and numpy's parse cost about as
    much per number, whatever its length, as the rest of the work on a row: fewer, longer numbers
    read faster."""

    def __init__(self, fields: Sequence[tuple[str, int | None, int | None]]):
        self.groups: list[list[tuple[int, str, int, int]]] = []  # per value: (field, sql, low, bits)
        room = 0
        for n, (sql, low, high) in enumerate(fields):
            bits = max(1, int(high - low).bit_length()) if low is not None and high is not None else _WORD_BITS + 1
            if bits > _WORD_BITS:
                self.groups.append([(n, sql, 0, 0)])  # its own value, as it is
                room = 0
                continue
            if bits > room:
                self.groups.append([])
                room = _WORD_BITS
            self.groups[-1].append((n, sql if low == 0 else f"({sql}) - {low}", low, bits))
            room -= bits
        self.fields = len(fields)

    def columns(self) -> list[str]:
        """The SQL of each value."""
        out = []
        for group in self.groups:
            shift = sum(bits for *_, bits in group)
            terms = []
            for _n, sql, _low, bits in group:
                shift -= bits
                terms.append(f"(({sql}) << {shift})" if shift else f"({sql})")
            out.append(" + ".join(terms))
        return out

    def unpack(self, values: Sequence[Any]) -> list[Any]:
        """Each field's int64 array, from the values' arrays."""
        out: list[Any] = [None] * self.fields
        for column, group in zip(values, self.groups):
            shift = sum(bits for *_, bits in group)
            for n, _sql, low, bits in group:
                shift -= bits
                field = column >> shift if shift else column
                if len(group) > 1:
                    field = field & ((1 << bits) - 1)
                out[n] = field + low if low else field
        return out


def _bounds(conn: Any, table: str, column: str, where: str = "") -> tuple[int | None, int | None]:
    """The least and greatest ``column`` of ``table`` (rows ``where``), each off an index where one
    leads with it (one MIN or MAX per query: two in one would scan the table)."""
    where = f"WHERE {where}" if where else ""
    row = conn.execute(f"SELECT (SELECT MIN({column}) FROM {table} {where}), "
                       f"(SELECT MAX({column}) FROM {table} {where})").fetchone()
    return row[0], row[1]


def _or_none(low: int | None, high: int | None, none: int) -> tuple[int, int]:
    """Bounds of ``IFNULL(column, none)`` from the column's bounds."""
    return min(none, none if low is None else low), max(none, none if high is None else high)


# -- the boxes of a pick ---------------------------------------------------------------------

# A live box: not deleted, not rejected. Migration 0011 indexes exactly these boxes by
# (image, revision) with the columns a freeze reads, so the read is a scan of that narrow index
# in image order (no look at the wide table, no filter to evaluate, no sort afterwards).
_LIVE_BOX = "a.deleted = 0 AND a.qa_state != 'rejected'"
_LIVE_BOX_INDEX = "annotations_live_boxes"


class BoxRead:
    """The live boxes of the images ``ids`` (ascending), being read (see :func:`read_boxes`)."""

    def __init__(self, ids: Any, parts: list[Any], packing: _Packing):
        self.ids = ids
        self._parts = parts
        self._packing = packing

    def result(self) -> tuple[Any, Any, Any, Any]:
        """Per box of the images: its image (position in ``ids``), revision id, class id (0: none)
        and size bucket (index into :data:`SIZE_BUCKETS`), by image, then revision."""
        import numpy as np

        rows = [part.result() for part in self._parts]
        values = [_ints(*texts) for texts in zip(*rows)] if rows else [_ints()] * len(self._packing.groups)
        image_ids, revisions, classes, areas = self._packing.unpack(values)
        owner, mine = _find(self.ids, image_ids)
        if not mine.all():
            owner, revisions, classes, areas = owner[mine], revisions[mine], classes[mine], areas[mine]
        if len(owner) > 1 and not _ascending(owner, revisions):
            order = _by_owner_then_revision(owner, revisions)
            owner, revisions, classes, areas = owner[order], revisions[order], classes[order], areas[order]
        edges = np.array(_SIZE_EDGES, dtype=np.int64) >> _AREA_UNIT_BITS
        return owner, revisions, classes, np.searchsorted(edges, areas, side="right")


def read_boxes(txn: WriteTransaction, ids: Any, readers: Readers | None = None) -> BoxRead:
    """Start reading the live boxes of the images ``ids`` (ascending): on ``readers``, where given,
    while the caller goes on; :meth:`BoxRead.result` waits for them.

    A pick holding a good part of the labelled images reads every live box of its id span (in
    ranges, one per reader at a time; a sequential scan costs less than a lookup per image) and
    keeps its own; a small one looks its images' boxes up. Per box: image and revision id, class, and
    area (positive, as x1 > x0 and y1 > y0) in whole 256ths of square pixels capped at the last
    bucket's edge (see :data:`_SIZE_EDGES`), packed into as few numbers as fit (:class:`_Packing`)."""
    import numpy as np

    readers = readers or Readers.serial(txn.conn)
    ids = np.asarray(ids, dtype=np.int64)
    conn = txn.conn
    indexed = f"INDEXED BY {_LIVE_BOX_INDEX}" if isinstance(conn, sqlite3.Connection) else ""
    area = "((a.x1 - a.x0) * (a.y1 - a.y0))"
    top = _SIZE_EDGES[-1] >> _AREA_UNIT_BITS
    packing = _Packing([
        ("a.image_id", *_bounds(conn, f"annotations a {indexed}", "a.image_id", _LIVE_BOX)),
        ("a.revision_id", *_bounds(conn, "annotation_revisions", "id")),
        ("IFNULL(a.class_id, 0)", *_or_none(*_bounds(conn, "annotations", "class_id", "deleted = 0"), 0)),
        (f"min(CAST({area} AS INTEGER) >> {_AREA_UNIT_BITS}, {top})", 0, top),
    ])
    select = f"SELECT {', '.join(f'group_concat({c})' for c in packing.columns())}"
    labelled = conn.execute("SELECT COUNT(*) FROM label_image_counts").fetchone()[0]
    if not len(ids):
        parts = []
    elif len(ids) * 4 >= labelled:
        parts = readers.in_ranges(f"{select} FROM annotations a {indexed} WHERE {_LIVE_BOX}", "a.image_id",
                                  int(ids[0]), int(ids[-1]))
    else:
        parts = [readers.submit(f"{select} FROM json_each(?) p CROSS JOIN annotations a {indexed} "
                                f"ON a.image_id = p.value WHERE {_LIVE_BOX}", (_json_ids(ids),))]
    return BoxRead(ids, parts, packing)


def _ascending(owner: Any, revisions: Any) -> bool:
    """Whether the boxes are by owner, then revision id (as the index gives them)."""
    steps = owner[1:] - owner[:-1]
    same = steps == 0
    return bool((steps >= 0).all() and (revisions[1:][same] > revisions[:-1][same]).all())


def collect_members(txn: WriteTransaction, images: SplitImages, picked: Any, subsets: Any,
                    boxes: BoxRead | None = None) -> tuple[Members, Any, Any]:
    """The picked images (ascending positions in ``images``, each with its subset, an index into
    :data:`SUBSETS`) as members, with their cell, setup and current labels (live, not rejected,
    boxes; negative); and per box, its class id (0: none) and size bucket. ``boxes``: the read of
    their boxes started earlier (:func:`read_boxes`), else they are read now."""
    import numpy as np

    picked = np.asarray(picked, dtype=np.int64)
    ids = images.image_ids[picked]
    # The version's cells: the plan's cells its images are in, numbered anew in the same order.
    counts = np.bincount(images.cells[picked], minlength=len(images.cell_keys))
    used = np.flatnonzero(counts)
    number = np.zeros(len(counts), dtype=np.int32)
    number[used] = np.arange(len(used), dtype=np.int32)
    cells = number[images.cells[picked]]
    boxes = boxes or read_boxes(txn, ids)
    if not np.array_equal(boxes.ids, ids):
        raise ValueError("the boxes read are not those of the picked images")
    owner, revisions, classes, sizes = boxes.result()
    members = Members(ids, np.asarray(subsets, dtype=np.uint8), cells,
                      np.maximum(images.item_ids[picked], 0), images.bag_ids[picked], images.negatives[picked],
                      np.bincount(owner, minlength=len(ids)).astype(np.int32), revisions,
                      [images.cell_keys[c] for c in used.tolist()])
    return members, classes, sizes


def _by_owner_then_revision(owner: Any, revisions: Any) -> Any:
    """The order of boxes by owner, then revision id: a stable sort of one combined key (it follows
    any order already there in a few passes); a lexsort is the fallback where the key would not
    fit in 64 bits."""
    import numpy as np

    if not len(owner):
        return np.zeros(0, dtype=np.int64)
    low, span = int(revisions.min()), int(revisions.max()) + 1
    if low >= 0 and int(owner.max()) < (1 << 62) // span:
        return np.argsort(owner * span + revisions, kind="stable")
    return np.lexsort((revisions, owner))


def hold_images(txn: WriteTransaction, version_id: int, image_ids: Any) -> None:
    """Mark a building version's images as held (an image some version holds is never deleted)."""
    _insert_ids(txn, "INSERT OR IGNORE INTO dataset_held (image_id, version_id) SELECT value, ? FROM json_each(?)",
                image_ids, version_id)


def insert_members(txn: WriteTransaction, version_id: int, members: Members) -> int:
    """Write the members of a building version (its cells, its parts); :func:`hold_images` marks
    their images as held. Returns how many."""
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


def cell_counts(members: Members, subset: str) -> list[tuple]:
    """(cell key..., images) of one subset of a version's members."""
    import numpy as np

    counts = np.bincount(members.cells[members.subsets == SUBSETS.index(subset)], minlength=len(members.cell_keys))
    return [(*key, int(n)) for key, n in zip(members.cell_keys, counts.tolist()) if n]


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
