"""CVAT for images 1.1 XML (``annotations.xml``).

``<image name width height>`` holds ``<box label xtl ytl xbr ybr occluded
rotation>``; labels come from ``<meta><task|project><labels>``. Coordinates are
absolute pixels with ``xbr``/``ybr`` as the far edges (the model's convention).
CVAT's ``rotation`` (degrees, clockwise, about the box's centre) is kept: the
unrotated rectangle ``xtl..ybr`` goes into ``rotated_rect`` and the corners are
its rotated bounding box (``core.labels.model``).

Box attributes ``difficult``, ``truncated`` and ``iscrowd``/``is_crowd`` (the
names CVAT's own VOC and COCO importers create) are read into the model's
flags. Every ``<image>`` of a task export is a frame the task covered, so an
image without boxes is read as a labelled negative; the writer writes only
labelled and negative images for the same reason. ``occluded`` has no place in
the model: it is counted (``occluded``) and written as 0.
A folder is read as every ``*.xml`` in it.
"""

from __future__ import annotations

from pathlib import Path

from core.labels.formats import xmlfile
from core.labels.formats.collect import Collector, normalise_rotation, number, rect_of, relative_name, side
from core.labels.model import LabelImage, LabelSet, ReadResult

FILE_NAME = "annotations.xml"
MAX_XML_BYTES = 512 * 1024 * 1024
_TRUE = ("true", "1", "yes")


def read(path: Path) -> ReadResult:
    path = Path(path)
    col = Collector()
    files = col.files(path, "*.xml", "CVAT .xml file")
    images: dict[str, LabelImage] = {}
    categories: list[str] = []
    for f in files:
        _read_file(f, col, images, categories)
    return col.result(list(images.values()), categories)


def _read_file(f: Path, col: Collector, images: dict[str, LabelImage], categories: list[str]) -> None:
    if not col.check_size(f, MAX_XML_BYTES):
        return
    try:
        doc = xmlfile.parse(f)
    except xmlfile.XmlRefused as e:
        col.fatal(f, f"line {e.line}", e.message)
        return
    except OSError as e:
        col.fatal(f, "", f"cannot read: {e.strerror or e}")
        return
    if doc.tag != "annotations":
        col.fatal(f, f"line {doc.line}", f"not a CVAT for images file (root <{doc.tag}>, not <annotations>)")
        return
    version = doc.findtext("version")
    if version not in (None, "1.1"):
        col.note(f, "", f"CVAT format version {version!r}; read as 1.1")
    declared = []
    meta = doc.find("meta")
    for holder in (meta.findall("task") + meta.findall("project")) if meta is not None else []:
        labels = holder.find("labels")
        for lab in labels.findall("label") if labels is not None else []:
            name = lab.findtext("name")
            if name and name not in declared:
                declared.append(name)
    for name in declared:
        if name not in categories:
            categories.append(name)
    seen_ids: set[str] = set()
    for im in doc.findall("image"):
        where = f"line {im.line}"
        name = im.attrib.get("name")
        if not name:
            col.fatal(f, where, "<image> without a name")
            continue
        iid = im.attrib.get("id")
        if iid is not None:
            if iid in seen_ids:
                col.count("duplicate_ids")
                col.fatal(f, where, f"image id {iid} is used twice")
                continue
            seen_ids.add(iid)
        width, height = side(im.attrib.get("width")), side(im.attrib.get("height"))
        if width is None or height is None:
            col.fatal(f, where, f"<image> {name!r} width/height {im.attrib.get('width')!r} x "
                      f"{im.attrib.get('height')!r} are not positive whole pixels")
            continue
        name = relative_name(name)
        if name in images:
            col.count("duplicate_ids")
            col.fatal(f, where, f"{name} is listed twice; the second is ignored")
            continue
        boxes = []
        for b in im.findall("box"):
            box = _read_box(b, f, width, height, declared, categories, col)
            if box is not None:
                boxes.append(box)
        shapes = [c for c in im.children if c.tag in ("box", "polygon", "polyline", "points", "ellipse",
                                                       "mask", "cuboid", "skeleton", "tag")]
        other = [c for c in shapes if c.tag != "box"]
        if other:
            col.count("non_box_shapes", len(other))
            col.note(f, where, f"{len(other)} shape(s) other than boxes on {name} ignored "
                     f"({', '.join(sorted({c.tag for c in other}))})")
        images[name] = LabelImage(name, width, height, tuple(boxes), negative=not shapes, ext_id=iid)


def _read_box(b, f: Path, width: int, height: int, declared: list[str], categories: list[str],
              col: Collector):
    where = f"line {b.line}"
    label = b.attrib.get("label")
    if not label:
        col.fatal(f, where, "<box> without a label")
        return None
    if declared and label not in declared:
        col.fatal(f, where, f"label {label!r} is not among the task's labels ({', '.join(declared)})")
        return None
    raw = [b.attrib.get(k) for k in ("xtl", "ytl", "xbr", "ybr")]
    vals = [number(v) if v is not None else None for v in raw]
    if any(v is None for v in vals):
        col.fatal(f, where, f"box corners {raw} need four finite numbers xtl, ytl, xbr, ybr")
        return None
    rotation = number(b.attrib.get("rotation", "0"))
    if rotation is None:
        col.fatal(f, where, f"rotation {b.attrib.get('rotation')!r} is not a number")
        return None
    if b.attrib.get("occluded", "0") in _TRUE:
        col.count("occluded")
    attrs = {a.attrib.get("name", ""): a.text.strip().lower() for a in b.findall("attribute")}
    flags = {"difficult": attrs.get("difficult") in _TRUE, "truncated": attrs.get("truncated") in _TRUE,
             "iscrowd": (attrs.get("iscrowd") or attrs.get("is_crowd")) in _TRUE}
    if label not in categories:
        categories.append(label)
    x0, y0, x1, y1 = vals
    if normalise_rotation(rotation) == 0.0:
        return col.box(f, where, label, x0, y0, x1, y1, width, height, **flags)
    return col.rotated_box(f, where, label, (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0, rotation,
                           width, height, **flags)


def _num(v: float) -> str:
    return repr(float(v)) if v != int(v) else f"{int(v)}.0"


def write(labels: LabelSet, out_dir: Path, *, task_name: str = "XLab export",
          file_name: str = FILE_NAME) -> list[Path]:
    """Write ``out_dir/annotations.xml`` (CVAT for images 1.1)."""
    import xml.etree.ElementTree as ET

    names = list(labels.categories)
    for im in labels.images:
        for b in im.boxes:
            if b.label not in names:
                names.append(b.label)
    todo = [im for im in labels.images if im.boxes or im.negative]
    flag_names = [k for k in ("difficult", "truncated", "iscrowd")
                  if any(getattr(b, k) for im in todo for b in im.boxes)]
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    task = ET.SubElement(ET.SubElement(root, "meta"), "task")
    ET.SubElement(task, "name").text = task_name
    ET.SubElement(task, "size").text = str(len(todo))
    ET.SubElement(task, "mode").text = "annotation"
    labels_el = ET.SubElement(task, "labels")
    for n in names:
        lab = ET.SubElement(labels_el, "label")
        ET.SubElement(lab, "name").text = n
        ET.SubElement(lab, "type").text = "rectangle"
        attrs = ET.SubElement(lab, "attributes")
        for flag in flag_names:
            a = ET.SubElement(attrs, "attribute")
            ET.SubElement(a, "name").text = flag
            ET.SubElement(a, "mutable").text = "False"
            ET.SubElement(a, "input_type").text = "checkbox"
            ET.SubElement(a, "default_value").text = "false"
            ET.SubElement(a, "values").text = "false\ntrue"
    for i, im in enumerate(todo):
        if not im.width or not im.height:
            raise ValueError(f"{im.file_name}: CVAT needs the image's width and height, which are unknown")
        el = ET.SubElement(root, "image", {"id": str(i), "name": im.file_name, "width": str(im.width),
                                           "height": str(im.height)})
        for b in im.boxes:
            cx, cy, w, h, rotation = rect_of(b)
            corners = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2) if rotation else (b.x0, b.y0, b.x1, b.y1)
            attrib = {"label": b.label, "source": "manual", "occluded": "0", "z_order": "0"}
            attrib.update(zip(("xtl", "ytl", "xbr", "ybr"), map(_num, corners)))
            if rotation:
                attrib["rotation"] = _num(rotation)
            box = ET.SubElement(el, "box", attrib)
            for flag in flag_names:
                ET.SubElement(box, "attribute", {"name": flag}).text = "true" if getattr(b, flag) else "false"
    path = Path(out_dir) / file_name
    xmlfile.write(root, path)
    return [path]
