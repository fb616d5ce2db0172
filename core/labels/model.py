"""The neutral label model: what every annotation format reads into and writes from.

Formats (``core.labels.formats``) translate between files and these records;
the catalog side (``core.labels.imports``) matches them to catalog images.
Nothing here touches files or the catalog.

Coordinate convention (every format converts to and from it exactly):

* absolute pixels, floats, origin at the top-left corner of the top-left pixel;
* a box is its corners ``(x0, y0)`` - ``(x1, y1)`` with ``x1 > x0`` and ``y1 > y0``;
  ``x1``/``y1`` are *exclusive* edges, as COCO's ``x + w``: a box covering exactly
  the pixel columns 10..19 has ``x0 = 10, x1 = 20`` (Pascal VOC writes that box as
  1-based inclusive ``xmin = 11, xmax = 20``).
* a rotated box (CVAT, Label Studio) keeps its angle in ``rotation`` (degrees,
  clockwise on screen, i.e. with y pointing down) and its exact rectangle in
  ``rotated_rect = (cx, cy, w, h)``: the ``w`` x ``h`` rectangle centred on
  ``(cx, cy)`` turned by ``rotation`` about its centre (CVAT's convention; Label
  Studio's top-left anchored rotation is converted exactly). The corners
  ``x0..y1`` of a rotated box are then the rectangle's *axis-aligned bounding
  box* clipped to the image, so code that ignores rotation (the catalog, COCO,
  YOLO, VOC) still gets a box that covers the object.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class LabelBox:
    """One object's box on one image.

    ``label`` is the format's class name as written in the file (mapping to
    XLab classes happens at import). ``iscrowd`` marks COCO crowd/ignore
    regions; ``difficult``/``truncated`` are Pascal VOC's flags (CVAT's
    ``occluded`` is kept as ``truncated`` is not: see ``core.labels.formats.cvat``).
    ``score`` is a model's confidence, ``None`` for human labels. ``ext_id`` is
    the format's own id of the object (COCO annotation id, Label Studio result
    id), kept so a report can point back at the record. ``rotated_rect`` is
    ``(cx, cy, w, h)`` of a rotated box (module docstring), ``None`` when
    ``rotation`` is 0.
    """

    label: str
    x0: float
    y0: float
    x1: float
    y1: float
    iscrowd: bool = False
    difficult: bool = False
    truncated: bool = False
    score: float | None = None
    rotation: float = 0.0
    ext_id: str | None = None
    rotated_rect: tuple[float, float, float, float] | None = None

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0


@dataclass(frozen=True, slots=True)
class LabelImage:
    """One image and its boxes.

    ``file_name`` is the image's path relative to the dataset root, with ``/``
    separators (never absolute, never a URL). ``width``/``height`` are pixels,
    ``None`` when the format did not say and the image could not be read.
    ``negative`` is True only when the source *says* the image was labelled and
    holds no object (a clean bag); an image with no boxes and ``negative=False``
    is merely unlabelled or of unknown state.
    """

    file_name: str
    width: int | None
    height: int | None
    boxes: tuple[LabelBox, ...] = ()
    negative: bool = False
    sha256: str | None = None
    ext_id: str | None = None


@dataclass(frozen=True, slots=True)
class LabelSet:
    """Images with their boxes and the ordered list of category names.

    The order of ``categories`` is the format's class order (YOLO class index,
    COCO category order); every box's label is one of them.
    """

    images: tuple[LabelImage, ...]
    categories: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FormatProblem:
    """A problem found while reading a file.

    ``file`` is the path as given/found; ``where`` points into it: ``"line 12"``
    for text and XML, ``"annotation id 7"`` / ``"record 3"`` for JSON, ``""``
    when the whole file is concerned. ``fatal`` problems mean the file (or
    record) could not be used at all; non-fatal ones were handled (clipped,
    dropped, derived) and are reported for the record.
    """

    file: str
    where: str
    message: str
    fatal: bool

    def __str__(self) -> str:
        loc = f"{self.file}:{self.where}" if self.where else self.file
        return f"{loc}: {self.message}"


@dataclass(frozen=True, slots=True)
class ReadResult:
    """What a format's ``read`` returns: the labels, every problem, and counts.

    ``counts`` names handled cases, e.g. ``boxes_outside_clipped``,
    ``degenerate_dropped``, ``crowd``, ``difficult``, ``truncated``,
    ``segmentation_only``, ``duplicate_ids``, ``images``, ``boxes``,
    ``negatives``; a key absent means zero.
    """

    labels: LabelSet
    problems: list[FormatProblem] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def fatal(self) -> list[FormatProblem]:
        return [p for p in self.problems if p.fatal]

    @property
    def ok(self) -> bool:
        return not any(p.fatal for p in self.problems)
