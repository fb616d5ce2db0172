"""Label Studio JSON export (a list of tasks), rectangles only.

Each task's ``data.image`` names the image; each annotation's ``result`` holds
``rectanglelabels`` regions whose ``value`` ``{x, y, width, height, rotation}``
is in PERCENT of the result's ``original_width`` / ``original_height``.

* File names: ``/data/upload/<project>/<8 hex>-name.png`` (Label Studio's upload
  store prefixes a random id) is ``name.png``; ``/data/local-files/?d=sub/a.png``
  is ``sub/a.png``; ``s3://bucket/key`` (gs, azure) is ``key``; an http(s) URL is
  its path's last part. Percent-escapes are decoded.
* Rotation: Label Studio turns a rectangle clockwise about its top-left corner
  ``(x, y)``. The model keeps the angle and the exact rectangle as
  ``rotated_rect`` (centre, size; the conversion is exact), and its corners are
  the rotated rectangle's axis-aligned bounding box: the box a reader that
  ignores rotation (the catalog, COCO, YOLO, VOC) needs to cover the object.
* The last annotation of a task that was not cancelled is used (Label Studio
  keeps older ones next to it; reported). One with no rectangle is a labelled
  negative; a task with no annotation is unlabelled. Predictions are ignored.
* Categories are the labels in order of appearance (the export does not carry
  the labelling config). The writer also writes ``labeling_config.xml``, the
  config to create the matching project with.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from core.labels.formats.collect import Collector, normalise_rotation, number, rect_of, relative_name, side
from core.labels.model import LabelImage, LabelSet, ReadResult

FILE_NAME = "labelstudio.json"
LOCAL_FILES = "/data/local-files/?d="
_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")


def image_name(ref: str) -> str:
    """The image's file name (relative path) from a task's ``data.image``."""
    from urllib.parse import unquote, urlsplit

    if "?d=" in ref:
        return relative_name(unquote(ref.split("?d=", 1)[1]).lstrip("/"))
    parts = urlsplit(ref)
    if parts.scheme in ("s3", "gs", "azure-blob", "gcs"):
        return relative_name(unquote(parts.path).lstrip("/"))
    path = unquote(parts.path)
    if parts.scheme in ("http", "https") or path.startswith("/data/"):
        name = path.rstrip("/").rsplit("/", 1)[-1]
        if "/data/upload/" in path:
            name = _UPLOAD_PREFIX.sub("", name)
        return name
    return relative_name(path)


def read(path: Path) -> ReadResult:
    path = Path(path)
    col = Collector()
    files = col.files(path, "*.json", "Label Studio .json export", recursive=False)
    images: dict[str, LabelImage] = {}
    categories: list[str] = []
    for f in files:
        _read_file(f, col, images, categories)
    return col.result(list(images.values()), categories)


def _read_file(f: Path, col: Collector, images: dict[str, LabelImage], categories: list[str]) -> None:
    doc = col.load_json(f)
    if doc is None:
        return
    if not isinstance(doc, list):
        col.fatal(f, "", "not a Label Studio JSON export: expected a list of tasks")
        return
    seen_tasks: set = set()
    for i, task in enumerate(doc):
        if not isinstance(task, dict):
            col.fatal(f, f"task [{i}]", "a task must be an object")
            continue
        tid = task.get("id")
        where = f"task id {tid}" if isinstance(tid, (int, str)) and not isinstance(tid, bool) else f"task [{i}]"
        if where.startswith("task id"):
            if tid in seen_tasks:
                col.count("duplicate_ids")
                col.fatal(f, where, f"task id {tid} is used twice")
                continue
            seen_tasks.add(tid)
        data = task.get("data")
        ref = data.get("image") if isinstance(data, dict) else None
        if ref is None and isinstance(data, dict):
            strings = [v for v in data.values() if isinstance(v, str)]
            ref = strings[0] if len(strings) == 1 else None
        if not isinstance(ref, str) or not ref:
            col.fatal(f, where, "no image in the task's data (expected data.image)")
            continue
        name = image_name(ref)
        if not name:
            col.fatal(f, where, f"cannot tell the image's file name from {ref!r}")
            continue
        if name in images:
            col.count("duplicate_ids")
            col.fatal(f, where, f"{name} is the image of another task too; this task is ignored")
            continue
        anns = task.get("annotations", [])
        if not isinstance(anns, list):
            col.fatal(f, where, "\"annotations\" must be a list")
            continue
        if task.get("predictions"):
            col.count("predictions_ignored")
        live = [a for a in anns if isinstance(a, dict) and not a.get("was_cancelled")]
        if not live:
            images[name] = LabelImage(name, None, None, ext_id=str(tid) if tid is not None else None)
            continue
        if len(live) > 1:
            col.note(f, where, f"{len(live)} annotations; the last one is used")
        ann = live[-1]
        results = ann.get("result", [])
        if not isinstance(results, list):
            col.fatal(f, where, "annotation \"result\" must be a list")
            continue
        boxes, width, height = _read_results(results, f, where, col, categories)
        if boxes is None:
            continue
        negative = not boxes and not results_have_regions(results)
        images[name] = LabelImage(name, width, height, tuple(boxes), negative=negative,
                                  ext_id=str(tid) if tid is not None else None)


def results_have_regions(results: list) -> bool:
    """True when the annotation holds regions, even ones this reader skipped:
    such an image is not a clean negative."""
    return any(isinstance(r, dict) and isinstance(r.get("value"), dict)
               and any(k in r["value"] for k in ("x", "points")) for r in results)


def _read_results(results: list, f: Path, where: str, col: Collector, categories: list[str]):
    # A region's geometry and its labels may come as one "rectanglelabels" result
    # or as a "rectangle" and a "labels" result sharing an id.
    groups: dict[str, dict] = {}
    order: list[str] = []
    width = height = None
    for j, r in enumerate(results):
        rwhere = f"{where} result [{j}]"
        if not isinstance(r, dict) or not isinstance(r.get("value"), dict):
            col.fatal(f, rwhere, "a result must be an object with a \"value\" object")
            return None, None, None
        kind = r.get("type")
        if kind not in ("rectanglelabels", "rectangle", "labels"):
            col.count("other_results_ignored")
            continue
        rid = str(r.get("id", f"#{j}"))
        g = groups.setdefault(rid, {"where": f"{where} result {rid}"})
        if rid not in order:
            order.append(rid)
        g.update({k: v for k, v in r["value"].items()})
        for key in ("original_width", "original_height", "score"):
            if key in r:
                g[key] = r[key]
    boxes = []
    for rid in order:
        g = groups[rid]
        gwhere = g["where"]
        names = g.get("rectanglelabels", g.get("labels"))
        if not (isinstance(names, list) and names and all(isinstance(n, str) and n for n in names)):
            col.fatal(f, gwhere, "a rectangle needs its label (value.rectanglelabels)")
            continue
        if len(names) > 1:
            col.note(f, gwhere, f"{len(names)} labels on one rectangle; the first ({names[0]!r}) is used")
        label = names[0]
        W, H = side(g.get("original_width")), side(g.get("original_height"))
        if W is None or H is None:
            col.fatal(f, gwhere, f"original_width/original_height {g.get('original_width')!r} x "
                      f"{g.get('original_height')!r} are not positive whole pixels")
            continue
        if width is not None and (W, H) != (width, height):
            col.fatal(f, gwhere, f"image size {W}x{H} differs from {width}x{height} of the task's other regions")
            continue
        width, height = W, H
        vals = [number(g.get(k)) for k in ("x", "y", "width", "height")]
        rotation = number(g.get("rotation", 0)) if g.get("rotation") is not None else 0.0
        if any(v is None for v in vals) or rotation is None:
            col.fatal(f, gwhere, "x, y, width, height and rotation must be finite numbers (percent)")
            continue
        score = None
        if g.get("score") is not None:
            score = number(g["score"])
            if score is None:
                col.fatal(f, gwhere, f"score {g['score']!r} is not a number")
                continue
        x, y, w, h = vals[0] / 100 * W, vals[1] / 100 * H, vals[2] / 100 * W, vals[3] / 100 * H
        if label not in categories:
            categories.append(label)
        if normalise_rotation(rotation) == 0.0:
            box = col.box(f, gwhere, label, x, y, x + w, y + h, W, H, score=score, ext_id=rid)
        else:
            a = math.radians(rotation)
            cx = x + w / 2 * math.cos(a) - h / 2 * math.sin(a)
            cy = y + w / 2 * math.sin(a) + h / 2 * math.cos(a)
            box = col.rotated_box(f, gwhere, label, cx, cy, w, h, rotation, W, H, score=score, ext_id=rid)
        if box is not None:
            boxes.append(box)
    return boxes, width, height


def write(labels: LabelSet, out_dir: Path, *, image_prefix: str = LOCAL_FILES,
          file_name: str = FILE_NAME) -> list[Path]:
    """Write ``out_dir/labelstudio.json`` (one task per image; unlabelled images
    as tasks without annotations) and ``labeling_config.xml``. ``image_prefix``
    is put before each file name in ``data.image`` (local-files storage by
    default). Label Studio has no crowd/difficult/truncated flags: they are not written."""
    import xml.etree.ElementTree as ET
    from urllib.parse import quote

    from core.labels.formats import xmlfile

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = list(labels.categories)
    tasks = []
    for i, im in enumerate(labels.images, 1):
        task = {"id": i, "data": {"image": image_prefix + quote(im.file_name, safe="/")}, "annotations": []}
        if im.boxes or im.negative:
            if im.boxes and (not im.width or not im.height):
                raise ValueError(f"{im.file_name}: Label Studio needs the image's width and height, which are unknown")
            result = []
            for j, b in enumerate(im.boxes):
                if b.label not in names:
                    names.append(b.label)
                result.append(_result(b, f"r{i}-{j}", im.width, im.height))
            task["annotations"].append({"id": i, "result": result, "was_cancelled": False,
                                        "ground_truth": False})
        tasks.append(task)
    path = out_dir / file_name
    path.write_text(json.dumps(tasks, ensure_ascii=False, allow_nan=False, indent=1), encoding="utf-8")
    view = ET.Element("View")
    ET.SubElement(view, "Image", {"name": "image", "value": "$image"})
    rl = ET.SubElement(view, "RectangleLabels", {"name": "label", "toName": "image"})
    for n in names:
        ET.SubElement(rl, "Label", {"value": n})
    config = out_dir / "labeling_config.xml"
    xmlfile.write(view, config)
    return [path, config]


def _result(b, rid: str, W: int, H: int) -> dict:
    cx, cy, w, h, rotation = rect_of(b)
    if rotation:
        a = math.radians(rotation)
        x = cx - (w / 2 * math.cos(a) - h / 2 * math.sin(a))
        y = cy - (w / 2 * math.sin(a) + h / 2 * math.cos(a))
    else:
        x, y, w, h = b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0
    value = {"x": x / W * 100, "y": y / H * 100, "width": w / W * 100, "height": h / H * 100,
             "rotation": rotation, "rectanglelabels": [b.label]}
    r = {"id": rid, "type": "rectanglelabels", "from_name": "label", "to_name": "image",
         "original_width": W, "original_height": H, "image_rotation": 0, "value": value}
    if b.score is not None:
        r["score"] = b.score
    return r
