"""Pascal VOC XML: one ``.xml`` per image, a folder of them.

VOC pixel corners are 1-based and inclusive: a box over pixel columns 10..19
(0-based) is ``xmin=11, xmax=20``. The model's corners are 0-based with an
exclusive far edge, so ``x0 = xmin - 1``, ``x1 = xmax`` (and back), exactly.

``<filename>`` names the image; an .xml in a subfolder of the folder read puts
its image in the same subfolder (``sub/a.xml`` with ``<filename>a.png`` is
``sub/a.png``). ``<difficult>`` and ``<truncated>`` are kept; an annotation with
no ``<object>`` is a labelled negative. A ``<size>`` of 0 x 0 (some tools write
it) is read as unknown size.
"""

from __future__ import annotations

from pathlib import Path

from core.labels.formats import xmlfile
from core.labels.formats.collect import Collector, number, relative_name, side
from core.labels.model import LabelImage, LabelSet, ReadResult

MAX_XML_BYTES = 64 * 1024 * 1024


def read(path: Path) -> ReadResult:
    path = Path(path)
    col = Collector()
    files = col.files(path, "*.xml", "Pascal VOC .xml file")
    root = path.parent if path.is_file() else path
    images: dict[str, LabelImage] = {}
    categories: list[str] = []
    for f in files:
        im = _read_file(f, root, col, categories)
        if im is None:
            continue
        if im.file_name in images:
            col.fatal(f, "", f"describes {im.file_name} again (already read from another .xml); ignored")
            col.count("duplicate_ids")
            continue
        images[im.file_name] = im
    return col.result(list(images.values()), categories)


def _read_file(f: Path, root: Path, col: Collector, categories: list[str]) -> LabelImage | None:
    if not col.check_size(f, MAX_XML_BYTES):
        return None
    try:
        doc = xmlfile.parse(f)
    except xmlfile.XmlRefused as e:
        col.fatal(f, f"line {e.line}", e.message)
        return None
    except OSError as e:
        col.fatal(f, "", f"cannot read: {e.strerror or e}")
        return None
    if doc.tag != "annotation":
        col.fatal(f, f"line {doc.line}", f"not a Pascal VOC file (root element <{doc.tag}>, not <annotation>)")
        return None
    fname = doc.findtext("filename")
    if not fname:
        col.fatal(f, f"line {doc.line}", "no <filename>: cannot tell which image this describes")
        return None
    fname = relative_name(fname)
    sub = f.parent.relative_to(root).as_posix()
    if "/" not in fname and sub not in ("", "."):
        fname = f"{sub}/{fname}"
    width = height = None
    size = doc.find("size")
    if size is not None:
        tw, th = size.findtext("width"), size.findtext("height")
        width, height = side(tw), side(th)
        if width is None or height is None:
            if number(tw) == 0 and number(th) == 0:
                col.note(f, f"line {size.line}", "<size> is 0 x 0: image size unknown, boxes not clipped")
            else:
                col.fatal(f, f"line {size.line}", f"<size> {tw!r} x {th!r} is not positive whole pixels")
                return None
            width = height = None
    boxes = []
    objects = doc.findall("object")
    for obj in objects:
        where = f"line {obj.line}"
        name = obj.findtext("name")
        bnd = obj.find("bndbox")
        if not name:
            col.fatal(f, where, "<object> without <name>")
            continue
        if bnd is None:
            col.fatal(f, where, f"<object> {name!r} without <bndbox>")
            continue
        raw = [bnd.findtext(k) for k in ("xmin", "ymin", "xmax", "ymax")]
        vals = [number(v) if v is not None else None for v in raw]
        if any(v is None for v in vals):
            col.fatal(f, f"line {bnd.line}", f"<bndbox> {raw} needs four finite numbers xmin, ymin, xmax, ymax")
            continue
        xmin, ymin, xmax, ymax = vals
        flags = {}
        for key in ("difficult", "truncated"):
            text = obj.findtext(key)
            if text not in (None, "", "0", "1"):
                col.fatal(f, where, f"<{key}> is {text!r}, not 0 or 1")
                flags = None
                break
            flags[key] = text == "1"
        if flags is None:
            continue
        if name not in categories:
            categories.append(name)
        box = col.box(f, where, name, xmin - 1, ymin - 1, xmax, ymax, width, height, **flags)
        if box is not None:
            boxes.append(box)
    return LabelImage(fname, width, height, tuple(boxes), negative=not objects)


def _num(v: float) -> str:
    return str(int(v)) if v == int(v) else repr(v)


def write(labels: LabelSet, out_dir: Path, *, database: str = "XLab") -> list[Path]:
    """One ``<name>.xml`` per labelled or negative image, in the image's
    subfolder. Rotated boxes are written as their bounding boxes."""
    import xml.etree.ElementTree as ET

    out_dir = Path(out_dir)
    stems: dict[Path, int] = {}
    todo = [im for im in labels.images if im.boxes or im.negative]
    for im in todo:
        key = Path(im.file_name).with_suffix("")
        stems[key] = stems.get(key, 0) + 1
    written = []
    for im in todo:
        p = Path(im.file_name)
        # a.png and a.jpg side by side would both be a.xml: keep the extension then.
        xml_rel = p.with_suffix(".xml") if stems[p.with_suffix("")] == 1 else p.with_name(p.name + ".xml")
        root = ET.Element("annotation")
        ET.SubElement(root, "folder").text = p.parent.as_posix() if p.parent != Path(".") else ""
        ET.SubElement(root, "filename").text = p.name
        ET.SubElement(ET.SubElement(root, "source"), "database").text = database
        size = ET.SubElement(root, "size")
        ET.SubElement(size, "width").text = str(im.width or 0)
        ET.SubElement(size, "height").text = str(im.height or 0)
        ET.SubElement(size, "depth").text = "1"
        ET.SubElement(root, "segmented").text = "0"
        for b in im.boxes:
            obj = ET.SubElement(root, "object")
            ET.SubElement(obj, "name").text = b.label
            ET.SubElement(obj, "pose").text = "Unspecified"
            ET.SubElement(obj, "truncated").text = "1" if b.truncated else "0"
            ET.SubElement(obj, "difficult").text = "1" if b.difficult else "0"
            bnd = ET.SubElement(obj, "bndbox")
            for tag, v in (("xmin", b.x0 + 1), ("ymin", b.y0 + 1), ("xmax", b.x1), ("ymax", b.y1)):
                ET.SubElement(bnd, tag).text = _num(v)
        path = out_dir / xml_rel
        xmlfile.write(root, path)
        written.append(path)
    return written
