"""An X-ray image viewer for label review: windowing, pseudo-colour, zoom/pan, boxes.

Pure presentation: the caller gives a content-store path (or a provider of
channels) and the boxes; the view reports what the user did through
signals and never touches the catalog.

Why it stays smooth on 2048² 16-bit images:

* The GUI thread never decodes an image. Pixels come from
  :mod:`core.imaging.pyramid` through :func:`app.tasks.call`: first the
  cached pyramid (or, before one exists, the ingest thumbnail), then, only
  when the user zooms past the finest cached level or no cache exists, the
  decoded full image, which also writes the cache.
* Each frame uses the coarsest level that still has a pixel per screen
  pixel, cut to the visible part and resized to the screen once per
  pan/zoom (the "tile", at most screen-sized). A window/level change only
  runs the new lookup table over that tile: ``np.take(lut, tile)``.

Mouse: wheel zooms around the cursor; left-drag pans, or moves the box under
the cursor (its handles resize it once selected); right-drag or Ctrl+drag
changes the window (up/down level, left/right width); in draw mode (hold B,
or press N for one box) left-drag draws a box.
Keys: arrows move the selected box by 1 px (Shift: 10), Ctrl+arrows move its
right/bottom edge; Tab/Shift+Tab select the next/previous box; Escape
leaves draw mode or clears the selection; F fit, 1 one-to-one, +/- zoom,
A auto window, P pseudo-colour on/off.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QKeyEvent, QMouseEvent, QPainter, QPaintEvent, QPen, QWheelEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from app import tasks
from core.imaging import windowing
from core.imaging.pyramid import ImageChannels, ImageSource, Pyramid
from core.imaging.windowing import Window

HANDLE_PX = 6  # half the side of a resize handle, and the distance that grabs it
MIN_BOX_PX = 2  # a drawn box smaller than this (image pixels) was a click, not a box
MAX_SCALE = 32.0
ZOOM_STEP = 1.25
BACKGROUND = QColor(24, 24, 24)
_HANDLES = ("nw", "n", "ne", "e", "se", "s", "sw", "w")


@dataclass(frozen=True)
class OverlayBox:
    """A box to draw, in image pixels (x1 > x0, y1 > y0)."""

    id: Any
    label: str
    x0: float
    y0: float
    x1: float
    y1: float
    colour: str = "#ffd400"
    selected: bool = False


@dataclass(frozen=True)
class FrameInfo:
    """What one paint showed, for the caller's status line, tests and benchmarks."""

    source: str  # "thumbnail", "pyramid" (a cached level) or "full" (decoded this session)
    level: int  # pyramid level painted; -1 for the thumbnail
    mode: str  # "grey", "pseudo" or "colour"
    tile: tuple[int, int]  # width, height of the windowed tile (screen-sized or less)
    ms: float  # GUI-thread time of this paint


@dataclass
class _Drag:
    kind: str  # pan, window, move, resize, draw
    start: QPointF
    moved: bool = False
    window: Window | None = None
    offset: tuple[float, float] = (0.0, 0.0)
    box: OverlayBox | None = None
    handle: str = ""
    anchor: tuple[float, float] = (0.0, 0.0)  # image point where a drawn box started
    current: tuple[float, float] = (0.0, 0.0)


@dataclass
class _Tile:
    key: tuple
    pixels: np.ndarray  # the visible part of one level, resized to the screen
    target: QRectF  # where it goes, in widget coordinates
    level: int
    source: str  # as in FrameInfo


class XRayImageView(QWidget):
    """Shows one X-ray image with its boxes. See the module docstring for the controls.

    GUI thread only: its methods are called, and its signals emitted, there;
    files are read and decoded in app.tasks' pool, whose results come back
    here (a result for an image no longer shown is dropped).
    """

    box_selected = Signal(object)  # box id, or None when the selection was cleared
    box_edited = Signal(object, float, float, float, float)  # id, x0, y0, x1, y1 (image pixels)
    box_drawn = Signal(float, float, float, float)  # x0, y0, x1, y1 (image pixels)
    window_changed = Signal(float, float)  # level, width
    image_loaded = Signal(str)  # "pyramid" (cached levels) or "full" (the decoded image)
    load_failed = Signal(str)  # a message for the reviewer
    frame_painted = Signal(object)  # FrameInfo

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(200, 150)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self._generation = 0
        self._source: ImageSource | None = None
        self._size: tuple[int, int] | None = None
        self._pyramid: Pyramid | None = None
        self._pyramid_source = ""
        self._thumb: np.ndarray | None = None
        self._full_requested = False
        self._message = ""
        self._scale = 1.0
        self._offset = (0.0, 0.0)
        self._fitted = True
        # One window per kind of pixels: stored grey values, or 8-bit colours
        # (the pseudo-colour view, colour files), so switching views keeps each.
        self._windows: dict[str, Window] = {}
        self._touched: set[str] = set()
        self._pseudo = False
        self._colour_hists: dict[bool, np.ndarray] = {}
        self._boxes: list[OverlayBox] = []
        self._drag: _Drag | None = None
        self._draw_once = False
        self._draw_held = False
        self._tile: _Tile | None = None
        self._lut_key: tuple | None = None
        self._lut: np.ndarray | None = None
        self._frame_pixels: np.ndarray | None = None  # keeps the QImage's buffer alive
        self.frames_painted = 0
        self.last_frame: FrameInfo | None = None

    # ----- what to show

    def set_image(self, path: Path | str, *, size: tuple[int, int] | None = None,
                  boxes: Iterable[OverlayBox | Sequence] = ()) -> None:
        """Show a content-store image. ``size`` (width, height), when the caller
        knows it (the catalog does), lets the thumbnail stand in until the
        pyramid is ready; without it the first paint waits for the pyramid."""
        self._load(ImageSource.from_store(Path(path)), size, boxes)

    def set_channels(self, provider: Callable[[], ImageChannels], *, size: tuple[int, int] | None = None,
                     cache: Path | None = None, boxes: Iterable[OverlayBox | Sequence] = ()) -> None:
        """Show channels given by ``provider`` (called off the GUI thread), e.g. a
        dual-energy scan's low and high channels; ``cache``: where to keep its pyramid."""
        self._load(ImageSource.from_channels(provider, cache), size, boxes)

    def prefetch(self, path: Path | str) -> None:
        """Build the pyramid of an image the reviewer will open next, in the background."""
        source = ImageSource.from_store(Path(path))
        # A failure here is shown when the image is opened; a prefetch has no one to tell.
        tasks.call(source.ensure_cached, lambda _built: None, lambda _exc: None, self)

    def set_boxes(self, boxes: Iterable[OverlayBox | Sequence]) -> None:
        """Replace the boxes: ``OverlayBox`` or (id, class name, x0, y0, x1, y1, colour, selected)."""
        self._boxes = [b if isinstance(b, OverlayBox) else OverlayBox(*b) for b in boxes]
        self.update()

    def boxes(self) -> list[OverlayBox]:
        return list(self._boxes)

    def selected_box(self) -> OverlayBox | None:
        return next((b for b in self._boxes if b.selected), None)

    def select_box(self, box_id: Any) -> None:
        """Select a box (None: none) and say so with ``box_selected``."""
        self._boxes = [replace(b, selected=b.id == box_id and box_id is not None) for b in self._boxes]
        self.update()
        self.box_selected.emit(box_id)

    def image_size(self) -> tuple[int, int] | None:
        return self._size

    def pyramid(self) -> Pyramid | None:
        return self._pyramid

    # ----- windowing and colour

    def window(self) -> Window | None:
        """The window of what is shown: in stored values for a grey view, in 0-255
        for a colour one (the pseudo-colour view is already a display rendering)."""
        return self._windows.get(self._space())

    def set_window(self, level: float, width: float) -> None:
        space = self._space()
        self._windows[space] = window = Window(float(level), max(float(width), 1.0))
        self._touched.add(space)
        self.update()
        self.window_changed.emit(window.level, window.width)

    def apply_preset(self, name: str) -> None:
        """One of ``core.imaging.windowing.PRESETS`` ("full range", "auto", "organic", "metal")."""
        hist = self._histogram()
        if hist is None:
            return  # nothing loaded yet to read a histogram from
        win = windowing.preset(name, hist)
        self.set_window(win.level, win.width)

    def pseudo_colour_available(self) -> bool:
        return self._pyramid is not None and bool(self._pyramid.pseudo)

    def set_pseudo_colour(self, on: bool) -> None:
        self._pseudo = bool(on) and self.pseudo_colour_available()
        self._tile = None
        self.update()

    def pseudo_colour(self) -> bool:
        return self._pseudo

    def _space(self) -> str:
        pyr = self._pyramid
        return "colour" if self._pseudo or (pyr is not None and pyr.kind == "rgb") else "grey"

    def _histogram(self) -> np.ndarray | None:
        """The histogram the presets read: stored values, or the shown colours' brightness."""
        pyr = self._pyramid
        if pyr is None:
            return None
        if self._space() == "grey":
            return pyr.hist
        if self._pseudo not in self._colour_hists:
            levels = pyr.pseudo if self._pseudo else pyr.levels
            coarse = levels[max(levels)]  # at most 256 a side: cheap enough for the GUI thread
            self._colour_hists[self._pseudo] = windowing.histogram(coarse.mean(axis=2).astype(np.uint8))
        return self._colour_hists[self._pseudo]

    def _full_scale(self) -> int:
        hist = self._histogram()
        return windowing.full_scale(hist) if hist is not None else 255

    # ----- zoom and pan

    def scale(self) -> float:
        """Screen pixels per image pixel."""
        return self._scale

    def fit(self) -> None:
        """The whole image, centred."""
        self._fitted = True
        if self._size is None:
            return
        w, h = self._size
        self._scale = min(self.width() / w, self.height() / h)
        self._offset = ((self.width() - w * self._scale) / 2, (self.height() - h * self._scale) / 2)
        self.update()

    def actual_size(self) -> None:
        """One image pixel per screen pixel, keeping the centre of the view."""
        self.zoom_to(1.0, QPointF(self.width() / 2, self.height() / 2))

    def zoom_to(self, scale: float, around: QPointF) -> None:
        """Set the scale, keeping the image point under ``around`` (widget coordinates) in place."""
        if self._size is None:
            return
        fit = min(self.width() / self._size[0], self.height() / self._size[1])
        scale = float(np.clip(scale, min(fit, 1.0) / 4, MAX_SCALE))
        ix, iy = self.screen_to_image(around)
        self._scale = scale
        self._offset = (around.x() - ix * scale, around.y() - iy * scale)
        self._fitted = False
        self.update()

    def image_to_screen(self, x: float, y: float) -> QPointF:
        return QPointF(x * self._scale + self._offset[0], y * self._scale + self._offset[1])

    def screen_to_image(self, point: QPointF) -> tuple[float, float]:
        return ((point.x() - self._offset[0]) / self._scale, (point.y() - self._offset[1]) / self._scale)

    # ----- loading (results arrive on the GUI thread through app.tasks)

    def _load(self, source: ImageSource, size: tuple[int, int] | None,
              boxes: Iterable[OverlayBox | Sequence]) -> None:
        self._generation += 1
        generation = self._generation
        self._source = source
        self._size = (int(size[0]), int(size[1])) if size else None
        self._pyramid, self._pyramid_source, self._thumb = None, "", None
        self._full_requested = False
        self._message = "Loading…"
        self._windows, self._touched, self._colour_hists = {}, set(), {}
        self._tile, self._drag = None, None
        self.set_boxes(boxes)
        self.fit()

        def first_look() -> tuple[Pyramid | None, np.ndarray | None]:
            cached = source.cached()
            return cached, (None if cached is not None else source.thumbnail_pixels())

        tasks.call(first_look, lambda result: self._first_look(generation, *result),
                   lambda exc: self._failed(generation, exc), self)

    def _first_look(self, generation: int, cached: Pyramid | None, thumb: np.ndarray | None) -> None:
        if generation != self._generation:
            return
        if cached is not None:
            self._take_pyramid(cached, "pyramid")
            return
        if thumb is not None and self._size is not None:
            self._thumb = thumb
            self.update()
        self._request_full(refresh_cache=True)

    def _request_full(self, refresh_cache: bool = False) -> None:
        if self._full_requested or self._source is None:
            return
        self._full_requested = True
        generation, source = self._generation, self._source
        tasks.call(lambda: source.full(refresh_cache), lambda pyr: self._full_arrived(generation, pyr),
                   lambda exc: self._failed(generation, exc), self)

    def _full_arrived(self, generation: int, pyramid: Pyramid) -> None:
        if generation == self._generation:
            self._take_pyramid(pyramid, "full")

    def _take_pyramid(self, pyramid: Pyramid, origin: str) -> None:
        resized = self._size != (pyramid.width, pyramid.height)
        self._pyramid, self._pyramid_source, self._thumb = pyramid, origin, None
        self._message = ""
        self._size = (pyramid.width, pyramid.height)
        self._tile = None
        if resized and self._fitted:
            self.fit()
        self._pseudo = self._pseudo and bool(pyramid.pseudo)
        if "grey" not in self._touched and pyramid.hist is not None:
            self._windows["grey"] = windowing.preset("auto", pyramid.hist)
        if "colour" not in self._touched:
            self._windows["colour"] = Window.between(0, 255)  # colours are shown as rendered
        self.update()
        self.image_loaded.emit(origin)

    def _failed(self, generation: int, exc: BaseException) -> None:
        if generation != self._generation:
            return
        self._message = str(exc) or type(exc).__name__
        self._full_requested = False
        self.update()
        self.load_failed.emit(self._message)

    # ----- rendering

    def _visible(self) -> tuple[float, float, float, float] | None:
        """The part of the image on screen, in image pixels."""
        if self._size is None:
            return None
        w, h = self._size
        x0, y0 = self.screen_to_image(QPointF(0, 0))
        x1, y1 = self.screen_to_image(QPointF(self.width(), self.height()))
        x0, y0, x1, y1 = max(x0, 0.0), max(y0, 0.0), min(x1, float(w)), min(y1, float(h))
        if x1 <= x0 or y1 <= y0:
            return None
        return x0, y0, x1, y1

    def _source_array(self) -> tuple[np.ndarray, int, str] | None:
        """(pixels, level, source) to paint from: the coarsest loaded level fine enough for
        the screen, else the finest loaded (and the full image is asked for)."""
        pyr = self._pyramid
        if pyr is None:
            return (self._thumb, -1, "thumbnail") if self._thumb is not None else None
        levels = pyr.pseudo if self._pseudo else pyr.levels
        want = pyr.level_for(self._scale * self.devicePixelRatioF())
        fine_enough = [k for k in levels if k <= want]
        if fine_enough:
            k = max(fine_enough)
        else:
            k = min(levels)
            self._request_full()
        return levels[k], k, ("full" if k == 0 or self._pyramid_source == "full" else "pyramid")

    def _make_tile(self) -> _Tile | None:
        import cv2

        visible = self._visible()
        chosen = self._source_array()
        if visible is None or chosen is None:
            return None
        pixels, level, source = chosen
        w, h = self._size
        fx, fy = pixels.shape[1] / w, pixels.shape[0] / h
        x0, y0, x1, y1 = visible
        lx0, ly0 = int(math.floor(x0 * fx)), int(math.floor(y0 * fy))
        lx1, ly1 = min(int(math.ceil(x1 * fx)), pixels.shape[1]), min(int(math.ceil(y1 * fy)), pixels.shape[0])
        top_left = self.image_to_screen(lx0 / fx, ly0 / fy)
        bottom_right = self.image_to_screen(lx1 / fx, ly1 / fy)
        target = QRectF(top_left, bottom_right)
        dpr = self.devicePixelRatioF()
        tw, th = max(1, round(target.width() * dpr)), max(1, round(target.height() * dpr))
        key = (id(pixels), lx0, ly0, lx1, ly1, tw, th)
        if self._tile is not None and self._tile.key == key:
            self._tile.target = target  # same pixels; a sub-pixel shift moves only the target
            return self._tile
        crop = pixels[ly0:ly1, lx0:lx1]
        if (tw, th) != (crop.shape[1], crop.shape[0]):
            # Magnified: show the pixels as they are; reduced: average them.
            shrink = tw < crop.shape[1]
            crop = cv2.resize(crop, (tw, th), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_NEAREST)
        self._tile = _Tile(key, np.ascontiguousarray(crop), target, level, source)
        return self._tile

    def _table(self, entries: int, colour: bool) -> np.ndarray:
        window = self._windows.get("colour" if colour else "grey") or Window.between(0, entries - 1)
        key = (window, entries)
        if self._lut_key != key:
            self._lut = windowing.lut(window, entries)
            self._lut_key = key
        return self._lut

    def _frame(self) -> tuple[QImage, QRectF, FrameInfo] | None:
        tile = self._make_tile()
        if tile is None:
            return None
        source, pixels = tile.source, tile.pixels
        if source == "thumbnail":
            out, mode = pixels, "colour" if pixels.ndim == 3 else "grey"  # ingest windowed it already
        elif pixels.ndim == 3:
            out = windowing.apply(self._table(256, colour=True), pixels)
            mode = "pseudo" if self._pseudo else "colour"
        else:
            out, mode = windowing.apply(self._table(self._pyramid.entries, colour=False), pixels), "grey"
        self._frame_pixels = out
        height, width = out.shape[:2]
        fmt = QImage.Format.Format_RGB888 if out.ndim == 3 else QImage.Format.Format_Grayscale8
        image = QImage(out.data, width, height, out.strides[0], fmt)
        image.setDevicePixelRatio(self.devicePixelRatioF())
        return image, tile.target, FrameInfo(source, tile.level, mode, (width, height), 0.0)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        started = time.perf_counter()
        painter = QPainter(self)
        painter.fillRect(self.rect(), BACKGROUND)
        frame = self._frame()
        if frame is not None:
            image, target, info = frame
            painter.drawImage(target, image)
        else:
            info = None
            if self._message:
                painter.setPen(QColor(220, 220, 220))
                painter.drawText(self.rect().adjusted(12, 12, -12, -12),
                                 Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._message)
        self._paint_boxes(painter)
        painter.end()
        if info is not None:
            self.frames_painted += 1
            self.last_frame = replace(info, ms=(time.perf_counter() - started) * 1000)
            self.frame_painted.emit(self.last_frame)

    def _box_rect(self, box: OverlayBox) -> QRectF:
        return QRectF(self.image_to_screen(box.x0, box.y0), self.image_to_screen(box.x1, box.y1))

    def _paint_boxes(self, painter: QPainter) -> None:
        if self._size is None:
            return
        font = QFont(painter.font())
        font.setPointSizeF(max(font.pointSizeF(), 8.0))
        painter.setFont(font)
        metrics = painter.fontMetrics()
        for box in self._boxes:
            rect = self._box_rect(box)
            colour = QColor(box.colour)
            pen = QPen(colour, 3 if box.selected else 1.5)
            pen.setCosmetic(True)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(rect)
            if box.label:
                text_w, text_h = metrics.horizontalAdvance(box.label) + 6, metrics.height()
                label = QRectF(rect.left(), rect.top() - text_h, text_w, text_h)
                if label.top() < 0:
                    label.moveTop(rect.top())
                painter.fillRect(label, colour)
                painter.setPen(QColor(0, 0, 0) if colour.lightness() > 128 else QColor(255, 255, 255))
                painter.drawText(label, Qt.AlignmentFlag.AlignCenter, box.label)
            if box.selected:
                painter.setPen(QPen(QColor(0, 0, 0), 1))
                painter.setBrush(QColor(255, 255, 255))
                for point in self._handle_points(rect).values():
                    painter.drawRect(QRectF(point.x() - HANDLE_PX / 2, point.y() - HANDLE_PX / 2, HANDLE_PX, HANDLE_PX))
        if self._drag is not None and self._drag.kind == "draw" and self._drag.moved:
            pen = QPen(QColor(255, 255, 255), 1, Qt.PenStyle.DashLine)
            pen.setCosmetic(True)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            (ax, ay), (cx, cy) = self._drag.anchor, self._drag.current
            painter.drawRect(QRectF(self.image_to_screen(min(ax, cx), min(ay, cy)),
                                    self.image_to_screen(max(ax, cx), max(ay, cy))))

    # ----- hit testing and box geometry

    @staticmethod
    def _handle_points(rect: QRectF) -> dict[str, QPointF]:
        cx, cy = rect.center().x(), rect.center().y()
        return {"nw": rect.topLeft(), "n": QPointF(cx, rect.top()), "ne": rect.topRight(),
                "e": QPointF(rect.right(), cy), "se": rect.bottomRight(), "s": QPointF(cx, rect.bottom()),
                "sw": rect.bottomLeft(), "w": QPointF(rect.left(), cy)}

    def _handle_at(self, pos: QPointF) -> tuple[OverlayBox, str] | None:
        box = self.selected_box()
        if box is None:
            return None
        for name, point in self._handle_points(self._box_rect(box)).items():
            if abs(point.x() - pos.x()) <= HANDLE_PX and abs(point.y() - pos.y()) <= HANDLE_PX:
                return box, name
        return None

    def _box_at(self, pos: QPointF) -> OverlayBox | None:
        """The smallest box under the point (a box inside another stays reachable)."""
        under = [b for b in self._boxes if self._box_rect(b).adjusted(-2, -2, 2, 2).contains(pos)]
        return min(under, key=lambda b: (b.x1 - b.x0) * (b.y1 - b.y0), default=None)

    def _clamped(self, x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
        """Ordered, inside the image, at least one pixel each way."""
        w, h = self._size or (math.inf, math.inf)
        x0, x1 = sorted((x0, x1))
        y0, y1 = sorted((y0, y1))
        x0, y0 = min(max(x0, 0.0), w - 1), min(max(y0, 0.0), h - 1)
        x1, y1 = min(max(x1, x0 + 1), w), min(max(y1, y0 + 1), h)
        return x0, y0, x1, y1

    def _moved_box(self, box: OverlayBox, dx: float, dy: float) -> OverlayBox:
        """The box shifted, stopping at the image's edges without changing its size."""
        w, h = self._size or (math.inf, math.inf)
        dx = min(max(dx, -box.x0), w - box.x1)
        dy = min(max(dy, -box.y0), h - box.y1)
        return replace(box, x0=box.x0 + dx, y0=box.y0 + dy, x1=box.x1 + dx, y1=box.y1 + dy)

    def _resized_box(self, box: OverlayBox, handle: str, x: float, y: float) -> OverlayBox:
        x0, y0, x1, y1 = box.x0, box.y0, box.x1, box.y1
        if "w" in handle:
            x0 = x
        if "e" in handle:
            x1 = x
        if "n" in handle:
            y0 = y
        if "s" in handle:
            y1 = y
        x0, y0, x1, y1 = self._clamped(x0, y0, x1, y1)
        return replace(box, x0=x0, y0=y0, x1=x1, y1=y1)

    def _replace_box(self, box: OverlayBox) -> None:
        self._boxes = [box if b.id == box.id else b for b in self._boxes]
        self.update()

    def _emit_edit(self, box: OverlayBox) -> None:
        self.box_edited.emit(box.id, float(box.x0), float(box.y0), float(box.x1), float(box.y1))

    # ----- mouse

    def _drawing(self) -> bool:
        return self._draw_once or self._draw_held

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        pos = event.position()
        ctrl = bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)
        button = event.button()
        if button == Qt.MouseButton.RightButton or (button == Qt.MouseButton.LeftButton and ctrl):
            if self.window() is not None:
                self._drag = _Drag("window", pos, window=self.window())
        elif button == Qt.MouseButton.MiddleButton:
            self._drag = _Drag("pan", pos, offset=self._offset)
        elif button == Qt.MouseButton.LeftButton and self._size is not None:
            if self._drawing():
                start = self._clamped_point(pos)
                self._drag = _Drag("draw", pos, anchor=start, current=start)
            elif (hit := self._handle_at(pos)) is not None:
                self._drag = _Drag("resize", pos, box=hit[0], handle=hit[1])
            elif (box := self._box_at(pos)) is not None:
                if not box.selected:
                    self.select_box(box.id)
                    box = self.selected_box()
                self._drag = _Drag("move", pos, box=box)
            else:
                self._drag = _Drag("pan", pos, offset=self._offset)
        event.accept()

    def _clamped_point(self, pos: QPointF) -> tuple[float, float]:
        x, y = self.screen_to_image(pos)
        w, h = self._size
        return min(max(x, 0.0), float(w)), min(max(y, 0.0), float(h))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        drag = self._drag
        if drag is None:
            self._update_cursor(event.position())
            return
        pos = event.position()
        dx, dy = pos.x() - drag.start.x(), pos.y() - drag.start.y()
        drag.moved = drag.moved or abs(dx) + abs(dy) >= 1
        if drag.kind == "pan":
            self._offset = (drag.offset[0] + dx, drag.offset[1] + dy)
            self._fitted = False
            self.update()
        elif drag.kind == "window":
            full = self._full_scale()
            window = drag.window.dragged(-dy * full / max(self.height(), 200), dx * full / max(self.width(), 200), full)
            self.set_window(window.level, window.width)
        elif drag.kind == "move":
            self._replace_box(self._moved_box(drag.box, dx / self._scale, dy / self._scale))
        elif drag.kind == "resize":
            x, y = self.screen_to_image(pos)
            self._replace_box(self._resized_box(drag.box, drag.handle, x, y))
        elif drag.kind == "draw":
            drag.current = self._clamped_point(pos)
            self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        drag, self._drag = self._drag, None
        if drag is None:
            return
        if drag.kind in ("move", "resize") and drag.moved:
            box = next((b for b in self._boxes if b.id == drag.box.id), None)
            if box is not None and (box.x0, box.y0, box.x1, box.y1) != (drag.box.x0, drag.box.y0, drag.box.x1, drag.box.y1):
                self._emit_edit(box)
        elif drag.kind == "draw":
            self._draw_once = False
            (ax, ay), (cx, cy) = drag.anchor, drag.current
            if abs(cx - ax) >= MIN_BOX_PX and abs(cy - ay) >= MIN_BOX_PX:
                self.box_drawn.emit(float(min(ax, cx)), float(min(ay, cy)), float(max(ax, cx)), float(max(ay, cy)))
            self.update()

    def _update_cursor(self, pos: QPointF) -> None:
        if self._drawing():
            shape = Qt.CursorShape.CrossCursor
        elif (hit := self._handle_at(pos)) is not None:
            shape = {"n": Qt.CursorShape.SizeVerCursor, "s": Qt.CursorShape.SizeVerCursor,
                     "e": Qt.CursorShape.SizeHorCursor, "w": Qt.CursorShape.SizeHorCursor,
                     "nw": Qt.CursorShape.SizeFDiagCursor, "se": Qt.CursorShape.SizeFDiagCursor}.get(
                         hit[1], Qt.CursorShape.SizeBDiagCursor)
        elif self._box_at(pos) is not None:
            shape = Qt.CursorShape.SizeAllCursor
        else:
            shape = Qt.CursorShape.OpenHandCursor
        self.setCursor(shape)

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        steps = event.angleDelta().y() / 120
        if steps:
            self.zoom_to(self._scale * ZOOM_STEP ** steps, event.position())
        event.accept()

    def resizeEvent(self, event) -> None:  # noqa: N802, ANN001
        if self._fitted:
            self.fit()
        super().resizeEvent(event)

    # ----- keyboard

    def event(self, event: QEvent) -> bool:
        # Tab cycles the boxes here instead of moving the focus out of the view.
        if event.type() == QEvent.Type.KeyPress and event.key() in (Qt.Key.Key_Tab, Qt.Key.Key_Backtab) and self._boxes:
            self._cycle_selection(-1 if event.key() == Qt.Key.Key_Backtab else 1)
            return True
        return super().event(event)

    def _cycle_selection(self, step: int) -> None:
        current = next((i for i, b in enumerate(self._boxes) if b.selected), -1 if step > 0 else 0)
        self.select_box(self._boxes[(current + step) % len(self._boxes)].id)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        key, mods = event.key(), event.modifiers()
        arrows = {Qt.Key.Key_Left: (-1, 0), Qt.Key.Key_Right: (1, 0), Qt.Key.Key_Up: (0, -1), Qt.Key.Key_Down: (0, 1)}
        box = self.selected_box()
        if key in arrows and box is not None:
            step = 10 if mods & Qt.KeyboardModifier.ShiftModifier else 1
            dx, dy = arrows[key][0] * step, arrows[key][1] * step
            if mods & Qt.KeyboardModifier.ControlModifier:
                edited = self._resized_box(box, "se", box.x1 + dx, box.y1 + dy)
            else:
                edited = self._moved_box(box, dx, dy)
            if (edited.x0, edited.y0, edited.x1, edited.y1) != (box.x0, box.y0, box.x1, box.y1):
                self._replace_box(edited)
                self._emit_edit(edited)
        elif key == Qt.Key.Key_B and not event.isAutoRepeat():
            self._draw_held = True
            self.setCursor(Qt.CursorShape.CrossCursor)
        elif key == Qt.Key.Key_N:
            self._draw_once = True
            self.setCursor(Qt.CursorShape.CrossCursor)
        elif key == Qt.Key.Key_Escape:
            if self._drawing():
                self._draw_once = self._draw_held = False
                self.setCursor(Qt.CursorShape.OpenHandCursor)
            elif box is not None:
                self.select_box(None)
        elif key == Qt.Key.Key_F:
            self.fit()
        elif key == Qt.Key.Key_1:
            self.actual_size()
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_to(self._scale * ZOOM_STEP, QPointF(self.width() / 2, self.height() / 2))
        elif key == Qt.Key.Key_Minus:
            self.zoom_to(self._scale / ZOOM_STEP, QPointF(self.width() / 2, self.height() / 2))
        elif key == Qt.Key.Key_A:
            self.apply_preset("auto")
        elif key == Qt.Key.Key_P:
            self.set_pseudo_colour(not self._pseudo)
        else:
            super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_B and not event.isAutoRepeat():
            self._draw_held = False
            if self._drag is None or self._drag.kind != "draw":
                self.setCursor(Qt.CursorShape.OpenHandCursor)
        else:
            super().keyReleaseEvent(event)
