"""COCO object-detection JSON (``annotations.json``).

Reading:

* ``bbox`` is ``[x, y, w, h]`` in absolute pixels: the model's corners are
  ``(x, y)``-``(x + w, y + h)``.
* ``iscrowd: 1`` (and the ``ignore: 1`` some datasets use) is a crowd/ignore
  region: kept as a box with ``iscrowd=True``.
* An object with only a ``segmentation`` (no bbox, or a zero one) gets the
  bounding box of its polygons or uncompressed RLE (compressed RLE needs
  pycocotools when installed); counted as ``segmentation_only``; one with
  nothing usable is reported.
* An image listed without annotations is read as a labelled negative: COCO
  lists the images that were annotated, and its own evaluation counts such an
  image as holding no object. ``read(path, empty_is_negative=False)`` reads them
  as unlabelled instead.
* Duplicate image ids (ambiguous: which image do annotations belong to?) and
  annotations pointing at unknown images or categories are fatal problems for
  those records; duplicate annotation ids are reported and both kept.
* A folder is read as every ``*.json`` under it, merged by image ``file_name``
  and category name (ids are each file's own); the same image in two files
  with different sizes is a conflict (fatal), with the same size its boxes are
  merged and reported.

Writing: one ``annotations.json``, ids from 1, categories in the label set's
order, each box with its rectangle as a polygon ``segmentation`` so
mask-based tools accept it. Negative images are written with no annotations;
images neither labelled nor negative are left out (COCO would read them as
negatives). COCO boxes are axis-aligned: a rotated box is written as its
bounding box.
"""

from __future__ import annotations

import json
from pathlib import Path

from core.labels.formats.collect import Collector, number, relative_name, side
from core.labels.model import LabelBox, LabelImage, LabelSet, ReadResult

FILE_NAME = "annotations.json"


def read(path: Path, *, empty_is_negative: bool = True) -> ReadResult:
    path = Path(path)
    col = Collector()
    files = col.files(path, "*.json", "COCO .json file")
    images: dict[str, dict] = {}  # file_name -> {"w", "h", "boxes", "source", "ext_id"}
    categories: list[str] = []
    for f in files:
        _read_file(f, col, images, categories)
    out = []
    for name, im in images.items():
        boxes = tuple(im["boxes"])
        negative = not boxes and empty_is_negative and not im["had_annotations"]
        out.append(LabelImage(name, im["w"], im["h"], boxes, negative=negative, ext_id=im["ext_id"]))
    return col.result(out, categories)


def _read_file(path: Path, col: Collector, images: dict[str, dict], categories: list[str]) -> None:
    doc = col.load_json(path)
    if doc is None:
        return
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        col.fatal(path, "", "not a COCO file: expected an object with an \"images\" list")
        return
    raw_anns = doc.get("annotations", [])
    raw_cats = doc.get("categories", [])
    if not isinstance(raw_anns, list) or not isinstance(raw_cats, list):
        col.fatal(path, "", "\"annotations\" and \"categories\" must be lists")
        return

    cat_names: dict[object, str] = {}
    for i, c in enumerate(raw_cats):
        cid = c.get("id") if isinstance(c, dict) else None
        name = c.get("name") if isinstance(c, dict) else None
        if not _is_id(cid) or not isinstance(name, str) or not name:
            col.fatal(path, f"categories[{i}]", "a category needs an integer \"id\" and a \"name\"")
            continue
        if cid in cat_names:
            col.count("duplicate_ids")
            col.fatal(path, f"category id {cid}", f"category id {cid} is used twice "
                      f"({cat_names[cid]!r} and {name!r})")
            continue
        cat_names[cid] = name
        if name not in categories:
            categories.append(name)

    by_id: dict[object, dict] = {}
    for i, im in enumerate(doc["images"]):
        iid = im.get("id") if isinstance(im, dict) else None
        fname = im.get("file_name") if isinstance(im, dict) else None
        if not _is_id(iid) or not isinstance(fname, str) or not fname:
            col.fatal(path, f"images[{i}]", "an image needs an integer or string \"id\" and a \"file_name\"")
            continue
        if iid in by_id:
            col.count("duplicate_ids")
            col.fatal(path, f"image id {iid}", f"image id {iid} is used twice; its annotations are ambiguous")
            continue
        w, h = im.get("width"), im.get("height")
        sw, sh = side(w), side(h)
        if (w is not None or h is not None) and (sw is None or sh is None):
            col.fatal(path, f"image id {iid}", f"width/height {w!r} x {h!r} are not positive whole pixels")
            continue
        name = relative_name(fname)
        entry = images.get(name)
        if entry is not None:
            if (entry["w"], entry["h"]) != (sw, sh):
                col.fatal(path, f"image id {iid}", f"{name} is {sw}x{sh} here but {entry['w']}x{entry['h']} "
                          f"in {entry['source']}")
                continue
            col.note(path, f"image id {iid}", f"{name} is also listed in {entry['source']}; boxes of both kept")
        else:
            entry = {"w": sw, "h": sh, "boxes": [], "source": path.name, "ext_id": str(iid),
                     "had_annotations": False}
            images[name] = entry
        by_id[iid] = entry

    seen_ann: set = set()
    for i, a in enumerate(raw_anns):
        if not isinstance(a, dict):
            col.fatal(path, f"annotations[{i}]", "an annotation must be an object")
            continue
        aid = a.get("id")
        where = f"annotation id {aid}" if _is_id(aid) else f"annotations[{i}]"
        if _is_id(aid):
            if aid in seen_ann:
                col.count("duplicate_ids")
                col.note(path, where, f"annotation id {aid} is used twice; both kept")
            seen_ann.add(aid)
        iid, cid = a.get("image_id"), a.get("category_id")
        entry = by_id.get(iid) if _is_id(iid) else None
        if entry is None:
            col.fatal(path, where, f"refers to unknown image id {iid!r}")
            continue
        entry["had_annotations"] = True
        label = cat_names.get(cid) if _is_id(cid) else None
        if label is None:
            col.fatal(path, where, f"refers to unknown category id {cid!r}")
            continue
        corners = _corners(a, path, where, col)
        if corners is None:
            continue
        score = None
        if a.get("score") is not None:
            score = number(a["score"])
            if score is None:
                col.fatal(path, where, f"score {a['score']!r} is not a number")
                continue
        attrs = a.get("attributes") if isinstance(a.get("attributes"), dict) else {}
        box = col.box(path, where, label, *corners, entry["w"], entry["h"],
                      iscrowd=bool(a.get("iscrowd") == 1 or a.get("ignore") == 1),
                      difficult=attrs.get("difficult") is True, truncated=attrs.get("truncated") is True,
                      score=score, ext_id=str(aid) if _is_id(aid) else None)
        if box is not None:
            entry["boxes"].append(box)


def _is_id(v) -> bool:
    return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, str) and v != "")


def _corners(a: dict, path: Path, where: str, col: Collector):
    bbox = a.get("bbox")
    if bbox is not None:
        if not isinstance(bbox, list) or len(bbox) != 4:
            col.fatal(path, where, f"bbox must be [x, y, w, h], not {_short(bbox)}")
            return None
        vals = [number(v) for v in bbox]
        if any(v is None for v in vals):
            col.fatal(path, where, f"bbox {_short(bbox)} holds a value that is not a finite pixel coordinate")
            return None
        x, y, w, h = vals
        if w > 0 and h > 0:
            return x, y, x + w, y + h
    seg = a.get("segmentation")
    if seg:
        derived = _segmentation_bounds(seg)
        if derived is not None:
            col.count("segmentation_only")
            col.note(path, where, "no usable bbox; box taken from the segmentation")
            return derived
        col.count("segmentation_unusable")
        col.fatal(path, where, "no usable bbox and a segmentation this reader cannot turn into a box")
        return None
    if bbox is None:
        col.fatal(path, where, "annotation has neither bbox nor segmentation")
        return None
    # A zero-area bbox with nothing else: counted and dropped as the degenerate box it is.
    col.count("degenerate_dropped")
    col.note(path, where, f"bbox {_short(bbox)} has no area; dropped")
    return None


def _segmentation_bounds(seg):
    """Bounding box (x0, y0, x1, y1) of polygons or an RLE, or None."""
    if isinstance(seg, list):
        xs, ys = [], []
        for poly in seg:
            if not isinstance(poly, list) or len(poly) < 6 or len(poly) % 2:
                return None
            vals = [number(v) for v in poly]
            if any(v is None for v in vals):
                return None
            xs += vals[0::2]
            ys += vals[1::2]
        if not xs or max(xs) <= min(xs) or max(ys) <= min(ys):
            return None
        return min(xs), min(ys), max(xs), max(ys)
    if isinstance(seg, dict):
        size, counts = seg.get("size"), seg.get("counts")
        if not (isinstance(size, list) and len(size) == 2 and all(side(v) for v in size)):
            return None
        h, w = int(size[0]), int(size[1])
        if isinstance(counts, list):
            return _rle_bounds(counts, h, w)
        if isinstance(counts, str):
            try:
                from pycocotools import mask as mask_utils
            except ImportError:
                return None
            try:
                x, y, bw, bh = mask_utils.toBbox({"size": [h, w], "counts": counts.encode()}).tolist()
            except Exception:  # noqa: BLE001 - pycocotools raises bare errors on corrupt RLE
                return None
            return (x, y, x + bw, y + bh) if bw > 0 and bh > 0 else None
    return None


def _rle_bounds(counts: list, h: int, w: int):
    """Bounds of an uncompressed (column-major) COCO RLE."""
    pos, on = 0, False
    x0 = y0 = float("inf")
    x1 = y1 = -1.0
    for run in counts:
        if not isinstance(run, int) or isinstance(run, bool) or run < 0:
            return None
        if on and run:
            first, last = pos, pos + run - 1
            cx0, cx1 = first // h, last // h
            x0, x1 = min(x0, cx0), max(x1, cx1)
            if cx0 == cx1:
                y0, y1 = min(y0, first % h), max(y1, last % h)
            else:  # the run wraps from one column's bottom to the next column's top
                y0, y1 = 0, h - 1
        pos += run
        on = not on
        if pos > h * w:
            return None
    if x1 < 0:
        return None
    return float(x0), float(y0), float(x1 + 1), float(y1 + 1)


def _short(v) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _dicts(labels: LabelSet, include_unlabelled: bool = False):
    """COCO's three lists for ``labels`` (as plain dicts and lists, ready for json)."""
    categories = list(labels.categories)
    known = set(categories)
    for im in labels.images:
        for b in im.boxes:
            if b.label not in known:
                known.add(b.label)
                categories.append(b.label)
    cat_id = {name: i for i, name in enumerate(categories, 1)}
    images, annotations = [], []
    ann_id = 0
    image_id = 0
    for im in labels.images:
        if not im.boxes and not im.negative and not include_unlabelled:
            continue
        image_id += 1
        entry = {"id": image_id, "file_name": im.file_name}
        if im.width is not None and im.height is not None:
            entry["width"] = im.width
            entry["height"] = im.height
        images.append(entry)
        for b in im.boxes:
            ann_id += 1
            annotations.append(_annotation(b, ann_id, image_id, cat_id[b.label]))
    cats = [{"id": i, "name": name, "supercategory": ""} for name, i in cat_id.items()]
    return images, annotations, cats


def _annotation(b: LabelBox, ann_id: int, image_id: int, category_id: int) -> dict:
    x0, y0, x1, y1 = b.x0, b.y0, b.x1, b.y1
    w, h = x1 - x0, y1 - y0
    a = {"id": ann_id, "image_id": image_id, "category_id": category_id, "bbox": [x0, y0, w, h],
         "area": w * h, "iscrowd": 1 if b.iscrowd else 0,
         "segmentation": [[x0, y0, x1, y0, x1, y1, x0, y1]]}
    if b.score is not None:
        a["score"] = b.score
    if b.difficult or b.truncated:
        # CVAT's COCO export keeps per-object flags under "attributes"; tools that
        # do not know them ignore the key.
        a["attributes"] = {"difficult": b.difficult, "truncated": b.truncated}
    return a


def write(labels: LabelSet, out_dir: Path, *, include_unlabelled: bool = False,
          file_name: str = FILE_NAME) -> list[Path]:
    """Write ``out_dir/annotations.json``; returns ``[that path]``.

    The lists are encoded in chunks by the standard library's C encoder and
    streamed to the file, so a 100,000-image export neither waits on the
    pure-Python encoder ``json.dump`` uses nor holds the whole text twice.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    images, annotations, cats = _dicts(labels, include_unlabelled)
    path = out_dir / file_name
    tmp = path.with_name(path.name + ".part")
    encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
    with open(tmp, "w", encoding="utf-8") as f:
        for key, items, sep in (("images", images, "{"), ("annotations", annotations, ","),
                                ("categories", cats, ",")):
            f.write(f'{sep}"{key}":[')
            for start in range(0, len(items), 20_000):
                if start:
                    f.write(",")
                f.write(encode(items[start:start + 20_000])[1:-1])
            f.write("]")
        f.write("}")
    tmp.replace(path)
    return [path]
