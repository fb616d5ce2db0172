"""What every reader shares: collecting problems and counts, checking numbers,
and turning raw coordinates into clipped, valid boxes."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

from core.labels.model import FormatProblem, LabelBox, LabelImage, LabelSet, ReadResult

# Coordinates and sizes beyond this are not pixels of any scanner: they are
# corrupt values (or an attack on float arithmetic), reported instead of used.
MAX_COORD = 1e7
MAX_SIDE = 1_000_000

# A whole annotation file is read into memory; beyond this it is refused with
# a message rather than exhausting the workstation's memory.
MAX_FILE_BYTES = 512 * 1024 * 1024


def number(value) -> float | None:
    """``value`` as a finite float of sane magnitude, or None (bools, strings of
    garbage, NaN, inf and huge values are not coordinates)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    elif isinstance(value, int):
        if abs(value) > MAX_COORD:
            return None
        value = float(value)
    elif not isinstance(value, float):
        return None
    if not math.isfinite(value) or abs(value) > MAX_COORD:
        return None
    return value


def side(value) -> int | None:
    """An image width/height: a positive whole number of pixels, or None."""
    v = number(value)
    if v is None or v <= 0 or v != int(v) or v > MAX_SIDE:
        return None
    return int(v)


def rotated_corners(cx: float, cy: float, w: float, h: float, rotation: float) -> list[tuple[float, float]]:
    """The four corners of a ``w`` x ``h`` rectangle centred on (cx, cy), turned
    clockwise on screen (y down) by ``rotation`` degrees about its centre."""
    a = math.radians(rotation)
    c, s = math.cos(a), math.sin(a)
    out = []
    for dx, dy in ((-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)):
        out.append((cx + dx * c - dy * s, cy + dx * s + dy * c))
    return out


def normalise_rotation(rotation: float) -> float:
    r = math.fmod(rotation, 360.0)
    if r < 0:
        r += 360.0
    return 0.0 if r == 360.0 else r


def relative_name(name: str) -> str:
    """A file name as the model keeps it: '/'-separated, no leading './'."""
    name = name.replace("\\", "/")
    while name.startswith("./"):
        name = name[2:]
    return name


class Collector:
    """Problems, counts and box checks for one ``read`` call."""

    def __init__(self) -> None:
        self.problems: list[FormatProblem] = []
        self.counts: Counter[str] = Counter()

    def problem(self, file, where: str, message: str, *, fatal: bool) -> None:
        self.problems.append(FormatProblem(str(file), where, message, fatal))

    def fatal(self, file, where: str, message: str) -> None:
        self.problem(file, where, message, fatal=True)

    def note(self, file, where: str, message: str) -> None:
        self.problem(file, where, message, fatal=False)

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] += n

    def files(self, path: Path, pattern: str, what: str, *, recursive: bool = True) -> list[Path]:
        """The annotation files ``path`` names: itself, or the files matching
        ``pattern`` in the folder (a fatal problem when there are none, or no such path)."""
        if path.is_dir():
            found = sorted(p for p in (path.rglob(pattern) if recursive else path.glob(pattern)) if p.is_file())
            if not found:
                self.fatal(path, "", f"no {what} in this folder")
            return found
        if path.is_file():
            return [path]
        self.fatal(path, "", "no such file or folder")
        return []

    def check_size(self, path: Path, limit: int | None = None) -> bool:
        """False (with a fatal problem) when ``path`` cannot be read or is too big."""
        limit = MAX_FILE_BYTES if limit is None else limit
        try:
            size = path.stat().st_size
        except OSError as e:
            self.fatal(path, "", f"cannot read: {e.strerror or e}")
            return False
        if size > limit:
            self.fatal(path, "", f"file is {size / 2**20:,.0f} MiB, more than the {limit / 2**20:,.0f} MiB "
                       "an annotation file may be; split it into several files in one folder")
            return False
        return True

    def load_json(self, path: Path):
        """The parsed JSON document at ``path``, or None (with a fatal problem)."""
        import json

        if not self.check_size(path):
            return None
        try:
            with open(path, "rb") as f:
                return json.loads(f.read())
        except OSError as e:
            self.fatal(path, "", f"cannot read: {e.strerror or e}")
        except UnicodeDecodeError:
            self.fatal(path, "", "not UTF-8 text")
        except json.JSONDecodeError as e:
            self.fatal(path, f"line {e.lineno}", f"not valid JSON ({e.msg})")
        except (RecursionError, ValueError) as e:
            self.fatal(path, "", f"not valid JSON ({e})")
        return None

    def box(self, file, where: str, label: str, x0: float, y0: float, x1: float, y1: float,
            width: int | None, height: int | None, **flags) -> LabelBox | None:
        """A box from corner coordinates, clipped to the image when its size is
        known; None (reported, counted) when nothing of it is left."""
        if width is not None and height is not None:
            cx0, cy0 = min(max(x0, 0.0), width), min(max(y0, 0.0), height)
            cx1, cy1 = min(max(x1, 0.0), width), min(max(y1, 0.0), height)
            overshoot = max(abs(cx0 - x0), abs(cy0 - y0), abs(cx1 - x1), abs(cy1 - y1))
            # Float noise from normalised or percent coordinates (1e-13 past the
            # edge) is clipped without a report: it is not a box outside the image.
            if overshoot > 1e-6 and cx1 > cx0 and cy1 > cy0:
                self.count("boxes_outside_clipped")
                self.note(file, where, f"box of {label!r} ({x0:g}, {y0:g})-({x1:g}, {y1:g}) goes outside the "
                          f"{width}x{height} image; clipped to it")
            x0, y0, x1, y1 = cx0, cy0, cx1, cy1
        if not (x1 > x0 and y1 > y0):
            self.count("degenerate_dropped")
            self.note(file, where, f"box of {label!r} has no area ({x0:g}, {y0:g})-({x1:g}, {y1:g}) "
                      "(inside the image); dropped")
            return None
        self._count_flags(flags)
        return LabelBox(label, x0, y0, x1, y1, **flags)

    def rotated_box(self, file, where: str, label: str, cx: float, cy: float, w: float, h: float,
                    rotation: float, width: int | None, height: int | None, **flags) -> LabelBox | None:
        """A rotated rectangle (centre, size, clockwise degrees about the centre).
        Its corners in the model are its axis-aligned bounding box clipped to the
        image; the exact rectangle is kept in ``rotated_rect``."""
        rotation = normalise_rotation(rotation)
        if rotation == 0.0:
            return self.box(file, where, label, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2,
                            width, height, **flags)
        if not (w > 0 and h > 0):
            self.count("degenerate_dropped")
            self.note(file, where, f"rotated box of {label!r} has no area ({w:g} x {h:g}); dropped")
            return None
        pts = rotated_corners(cx, cy, w, h, rotation)
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        x0, y0, x1, y1 = min(xs), min(ys), max(xs), max(ys)
        if width is not None and height is not None:
            cx0, cy0 = max(x0, 0.0), max(y0, 0.0)
            cx1, cy1 = min(x1, float(width)), min(y1, float(height))
            if cx1 <= cx0 or cy1 <= cy0:
                self.count("degenerate_dropped")
                self.note(file, where, f"rotated box of {label!r} lies outside the {width}x{height} image; dropped")
                return None
            if max(cx0 - x0, cy0 - y0, x1 - cx1, y1 - cy1) > 1e-6:
                self.count("boxes_outside_clipped")
                self.note(file, where, f"rotated box of {label!r} goes outside the {width}x{height} image; "
                          "its bounding box is clipped to the image (the rectangle itself is kept)")
            x0, y0, x1, y1 = cx0, cy0, cx1, cy1
        self._count_flags(flags)
        self.count("rotated")
        return LabelBox(label, x0, y0, x1, y1, rotation=rotation, rotated_rect=(cx, cy, w, h), **flags)

    def _count_flags(self, flags: dict) -> None:
        for key, name in (("iscrowd", "crowd"), ("difficult", "difficult"), ("truncated", "truncated")):
            if flags.get(key):
                self.count(name)

    def result(self, images: list[LabelImage], categories) -> ReadResult:
        self.counts["images"] = len(images)
        self.counts["boxes"] = sum(len(i.boxes) for i in images)
        self.counts["negatives"] = sum(1 for i in images if i.negative)
        return ReadResult(LabelSet(tuple(images), tuple(categories)), self.problems,
                          {k: v for k, v in self.counts.items()})


def rect_of(box: LabelBox) -> tuple[float, float, float, float, float]:
    """(cx, cy, w, h, rotation) of the rectangle a writer with rotation should write."""
    if box.rotation and box.rotated_rect is not None:
        cx, cy, w, h = box.rotated_rect
        return cx, cy, w, h, box.rotation
    return (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2, box.x1 - box.x0, box.y1 - box.y0, box.rotation
