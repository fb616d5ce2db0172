"""YOLO (darknet / Ultralytics) label trees.

Layout read and written::

    ROOT/data.yaml              names: [a, b] or {0: a, 1: b}  (or classes.txt / obj.names)
    ROOT/images/<sub>/x.png     the images (copied by the caller)
    ROOT/labels/<sub>/x.txt     one line per object: class cx cy w h [score]

A flat folder (images and their .txt side by side) is read too. Coordinates
are normalised to the image's size, which only the image file knows: it is read
from the file's header (no decoding). ``file_name`` is the image's path
relative to ``images/`` (or to the flat folder).

* An empty .txt is a labelled negative; an image with no .txt is unlabelled.
* A line of ``class x1 y1 x2 y2 ...`` (a YOLO segment) gets the bounding box of
  its polygon (counted as ``segmentation_only``).
* A class index not in the names, a malformed line, or a .txt with no image
  is a problem at ``file:line``.
"""

from __future__ import annotations

from pathlib import Path

from core.labels.formats.collect import Collector, number, relative_name
from core.labels.formats.imagesize import IMAGE_SUFFIXES, image_size
from core.labels.model import LabelImage, LabelSet, ReadResult

# A label file holds a few lines per image; anything bigger is not one.
MAX_TXT_BYTES = 16 * 1024 * 1024


def read(path: Path) -> ReadResult:
    path = Path(path)
    col = Collector()
    if path.is_file() and path.suffix.lower() in (".yaml", ".yml"):
        root, yaml_file = path.parent, path
    elif path.is_dir():
        root, yaml_file = path, None
    else:
        col.fatal(path, "", "no such folder (a YOLO dataset is a folder with images/, labels/ and data.yaml)")
        return col.result([], [])
    names = _names(root, yaml_file, col)
    if (root / "images").is_dir():
        image_dir, label_dir = root / "images", root / "labels"
    else:
        image_dir = label_dir = root
    image_files = sorted(p for p in image_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    by_label: dict[Path, Path] = {}
    images = []
    for img in image_files:
        rel = img.relative_to(image_dir)
        txt = label_dir / rel.with_suffix(".txt")
        if txt in by_label:
            col.fatal(txt, "", f"is the label file of both {by_label[txt].name} and {img.name}; "
                      "rename one image")
            continue
        by_label[txt] = img
        images.append(_read_image(img, rel, txt, names, col))
    known = set(by_label)
    for txt in sorted(label_dir.rglob("*.txt")) if label_dir.is_dir() else ():
        if txt in known or txt.name == "classes.txt" or not txt.is_file():
            continue
        # In labels/ every .txt is a label file; in a flat folder it may be a note.
        col.problem(txt, "", f"has no image (looked for {txt.relative_to(label_dir).with_suffix('.*')} "
                    f"in {image_dir})", fatal=label_dir != image_dir)
    return col.result([i for i in images if i is not None], names or [])


def _names(root: Path, yaml_file: Path | None, col: Collector) -> list[str]:
    candidates = [yaml_file] if yaml_file else sorted(root.glob("*.yaml")) + sorted(root.glob("*.yml"))
    for y in candidates:
        names = _names_from_yaml(y, col)
        if names is not None:
            return names
    for name in ("classes.txt", "obj.names", "labels/classes.txt"):
        f = root / name
        if f.is_file() and col.check_size(f, MAX_TXT_BYTES):
            try:
                lines = f.read_text(encoding="utf-8-sig").splitlines()
            except (OSError, UnicodeDecodeError) as e:
                col.fatal(f, "", f"cannot read class names: {e}")
                return []
            return [ln.strip() for ln in lines if ln.strip()]
    col.fatal(root, "", "no class names: expected data.yaml with names, classes.txt or obj.names")
    return []


def _names_from_yaml(path: Path, col: Collector) -> list[str] | None:
    import yaml

    if not col.check_size(path, MAX_TXT_BYTES):
        return None
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        col.fatal(path, "", f"cannot read YAML: {str(e).splitlines()[0]}")
        return None
    if not isinstance(doc, dict) or "names" not in doc:
        return None
    names = doc["names"]
    if isinstance(names, list) and all(isinstance(n, (str, int)) for n in names):
        return [str(n) for n in names]
    if isinstance(names, dict) and all(isinstance(k, int) and not isinstance(k, bool) for k in names):
        keys = sorted(names)
        if keys != list(range(len(keys))):
            col.fatal(path, "", f"names must be numbered 0..{len(keys) - 1} without gaps, not {keys[:10]}")
            return None
        return [str(names[k]) for k in keys]
    col.fatal(path, "", "names must be a list of class names or a map {index: name}")
    return None


def _read_image(img: Path, rel: Path, txt: Path, names: list[str], col: Collector) -> LabelImage | None:
    file_name = relative_name(rel.as_posix())
    size = image_size(img)
    if size is None:
        col.fatal(img, "", "cannot read the image's size from its header (unknown or corrupt image)")
        return None
    width, height = size
    if not txt.is_file():
        return LabelImage(file_name, width, height)
    if not col.check_size(txt, MAX_TXT_BYTES):
        return None
    try:
        text = txt.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        col.fatal(txt, "", f"cannot read: {e}")
        return None
    boxes = []
    lines = text.splitlines()
    for n, line in enumerate(lines, 1):
        tokens = line.split()
        if not tokens:
            continue
        box = _read_line(tokens, txt, f"line {n}", names, width, height, col)
        if box is not None:
            boxes.append(box)
    negative = not any(ln.strip() for ln in lines)
    return LabelImage(file_name, width, height, tuple(boxes), negative=negative)


def _read_line(tokens: list[str], txt: Path, where: str, names: list[str], width: int, height: int,
               col: Collector):
    cls = tokens[0]
    if not cls.isdigit():
        col.fatal(txt, where, f"class {cls!r} is not a class index")
        return None
    index = int(cls)
    if index >= len(names):
        col.fatal(txt, where, f"class index {index} is out of range (the names list has {len(names)} classes)")
        return None
    label = names[index]
    vals = [number(t) for t in tokens[1:]]
    if any(v is None for v in vals):
        col.fatal(txt, where, "holds a value that is not a finite number")
        return None
    score = None
    if len(vals) in (4, 5):
        cx, cy, w, h = vals[:4]
        if len(vals) == 5:
            score = vals[4]
        x0, x1 = (cx - w / 2) * width, (cx + w / 2) * width
        y0, y1 = (cy - h / 2) * height, (cy + h / 2) * height
    elif len(vals) >= 6 and len(vals) % 2 == 0:
        xs, ys = vals[0::2], vals[1::2]
        x0, x1, y0, y1 = min(xs) * width, max(xs) * width, min(ys) * height, max(ys) * height
        col.count("segmentation_only")
    else:
        col.fatal(txt, where, f"expected 'class cx cy w h' (5 values), not {len(tokens)} values")
        return None
    return col.box(txt, where, label, x0, y0, x1, y1, width, height, score=score)


def write(labels: LabelSet, out_dir: Path, *, classes_txt: bool = False) -> list[Path]:
    """Write ``data.yaml`` and ``labels/<file_name>.txt`` for every labelled or
    negative image (unlabelled ones get no .txt, which is how YOLO says so).
    Rotated boxes are written as their bounding boxes. Returns the files written."""
    import yaml

    out_dir = Path(out_dir)
    names = list(labels.categories)
    for im in labels.images:
        for b in im.boxes:
            if b.label not in names:
                names.append(b.label)
    index = {n: i for i, n in enumerate(names)}
    written = []
    targets: dict[Path, str] = {}
    for im in labels.images:
        if not im.boxes and not im.negative:
            continue
        if not im.width or not im.height:
            raise ValueError(f"{im.file_name}: YOLO needs the image's width and height, which are unknown")
        txt = out_dir / "labels" / Path(im.file_name).with_suffix(".txt")
        if txt in targets:
            raise ValueError(f"{im.file_name} and {targets[txt]} would share the label file {txt.name}; "
                             "YOLO matches labels to images by name without extension")
        targets[txt] = im.file_name
        w, h = im.width, im.height
        lines = []
        for b in im.boxes:
            vals = ((b.x0 + b.x1) / 2 / w, (b.y0 + b.y1) / 2 / h, (b.x1 - b.x0) / w, (b.y1 - b.y0) / h)
            line = f"{index[b.label]} " + " ".join(repr(v) for v in vals)
            if b.score is not None:
                line += f" {b.score!r}"
            lines.append(line)
        txt.parent.mkdir(parents=True, exist_ok=True)
        txt.write_text("".join(ln + "\n" for ln in lines), encoding="utf-8")
        written.append(txt)
    (out_dir / "labels").mkdir(parents=True, exist_ok=True)
    data = {"path": ".", "train": "images", "val": "images", "nc": len(names),
            "names": {i: n for i, n in enumerate(names)}}
    yaml_path = out_dir / "data.yaml"
    yaml_path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    written.append(yaml_path)
    if classes_txt:
        ct = out_dir / "classes.txt"
        ct.write_text("".join(n + "\n" for n in names), encoding="utf-8")
        written.append(ct)
    return written
