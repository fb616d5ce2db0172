"""The X-ray viewer widget: what it paints where, box editing from mouse and keyboard,
windowing, pseudo-colour, and decoding kept off the GUI thread."""

import threading

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication

from app import tasks
from app.widgets.xray_viewer import OverlayBox, XRayImageView
from core.imaging import pyramid, windowing
from core.imaging.pyramid import ImageChannels, ImageSource
from tests.bench.bench_viewer import write_store_image

W, H = 800, 600  # the image
VIEW = (400, 300)  # the view: the image fits at scale 0.5
BACKGROUND, SQUARE = 2000, 14000  # stored values (14-bit)
BOX = (7, "knife", 100.0, 100.0, 200.0, 200.0, "#ff0000", False)


@pytest.fixture
def image_path(tmp_path):
    """A 16-bit store image: flat background, a bright square at x, y 300..400."""
    pixels = np.full((H, W), BACKGROUND, np.uint16)
    pixels[300:400, 300:400] = SQUARE
    return write_store_image(tmp_path / "store", pixels)


@pytest.fixture
def view(qtbot):
    widget = XRayImageView()
    qtbot.addWidget(widget)
    widget.resize(*VIEW)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def _load(qtbot, view, path, boxes=(BOX,), size=(W, H)):
    with qtbot.waitSignal(view.image_loaded, timeout=10_000) as blocker:
        view.set_image(path, size=size, boxes=boxes)
    return blocker.args[0]


def _mouse(view, kind, pos, button, buttons, modifiers=Qt.KeyboardModifier.NoModifier):
    event = QMouseEvent(kind, pos, view.mapToGlobal(pos), button, buttons, modifiers)
    QApplication.sendEvent(view, event)


def _drag(view, start, end, button=Qt.MouseButton.LeftButton, modifiers=Qt.KeyboardModifier.NoModifier, steps=4):
    start, end = (p if isinstance(p, QPointF) else QPointF(*p) for p in (start, end))
    _mouse(view, QMouseEvent.Type.MouseButtonPress, start, button, button, modifiers)
    for i in range(1, steps + 1):
        point = start + (end - start) * (i / steps)
        _mouse(view, QMouseEvent.Type.MouseMove, point, Qt.MouseButton.NoButton, button, modifiers)
    _mouse(view, QMouseEvent.Type.MouseButtonRelease, end, button, Qt.MouseButton.NoButton, modifiers)


def _pixel(view, x, y) -> QColor:
    """The colour the view painted at image point (x, y)."""
    point = view.image_to_screen(x, y)
    return view.grab().toImage().pixelColor(int(point.x()), int(point.y()))


def _edge_is_red(view, x, y) -> bool:
    """Some pixel within 2 of the image point (x, y) on screen is the box's red."""
    image = view.grab().toImage()
    p = view.image_to_screen(x, y)
    for dx in range(-2, 3):
        for dy in range(-2, 3):
            c = image.pixelColor(int(round(p.x())) + dx, int(round(p.y())) + dy)
            if c.red() > 200 and c.green() < 60 and c.blue() < 60:
                return True
    return False


def test_image_and_boxes_follow_zoom_and_pan(qtbot, view, image_path):
    _load(qtbot, view, image_path)
    assert view.scale() == pytest.approx(0.5)
    assert view.image_to_screen(0, 0) == QPointF(0, 0)  # fitted: the image fills the view
    assert view.image_to_screen(100, 100) == QPointF(50, 50)
    # The auto window shows the square white and the background black.
    assert _pixel(view, 350, 350).lightness() > 240 and _pixel(view, 250, 250).lightness() < 15
    assert _edge_is_red(view, 100, 150) and _edge_is_red(view, 150, 200)

    # Wheel: one notch zooms 1.25x around the cursor; the image point under it stays put.
    cursor = QPointF(100, 80)
    under = view.screen_to_image(cursor)
    wheel = QWheelEvent(cursor, view.mapToGlobal(cursor), QPoint(), QPoint(0, 240), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(view, wheel)
    assert view.scale() == pytest.approx(0.5 * 1.25 ** 2)
    assert view.screen_to_image(cursor) == pytest.approx(under)

    # Pan: a left drag on the image (not on a box) moves it with the mouse.
    before = view.image_to_screen(350, 350)
    _drag(view, (300, 50), (360, 70))
    after = view.image_to_screen(350, 350)
    assert (after.x() - before.x(), after.y() - before.y()) == pytest.approx((60, 20))
    assert view.boxes()[0].x0 == 100  # panning left the box alone

    # What is painted followed: the square, the background and the box edges at their new places.
    assert _pixel(view, 350, 350).lightness() > 240 and _pixel(view, 330, 250).lightness() < 15
    assert _edge_is_red(view, 200, 150) and _edge_is_red(view, 150, 100)
    assert not _edge_is_red(view, 150, 150)

    view.actual_size()
    assert view.scale() == 1.0
    view.fit()
    assert view.scale() == pytest.approx(0.5) and view.image_to_screen(0, 0) == QPointF(0, 0)


def test_keyboard_and_mouse_edit_the_selected_box_in_image_pixels(qtbot, view, image_path):
    _load(qtbot, view, image_path, boxes=[BOX, (8, "gun", 500, 400, 700, 550, "#00ff00", False)])
    centre = view.image_to_screen(150, 150)
    with qtbot.waitSignal(view.box_selected) as selected:
        _mouse(view, QMouseEvent.Type.MouseButtonPress, centre, Qt.MouseButton.LeftButton, Qt.MouseButton.LeftButton)
        _mouse(view, QMouseEvent.Type.MouseButtonRelease, centre, Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton)
    assert selected.args == [7] and view.selected_box().id == 7

    edits = []
    view.box_edited.connect(lambda *args: edits.append(args))
    qtbot.keyClick(view, Qt.Key.Key_Right)
    qtbot.keyClick(view, Qt.Key.Key_Down, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClick(view, Qt.Key.Key_Right, Qt.KeyboardModifier.ControlModifier)  # grows the right edge
    qtbot.keyClick(view, Qt.Key.Key_Up, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert edits == [(7, 101.0, 100.0, 201.0, 200.0), (7, 101.0, 110.0, 201.0, 210.0),
                     (7, 101.0, 110.0, 202.0, 210.0), (7, 101.0, 110.0, 202.0, 200.0)]

    # The bottom-right handle, dragged 20 screen pixels each way, is 40 image pixels at scale 0.5.
    handle = view.image_to_screen(202, 200)
    _drag(view, handle, handle + QPointF(20, 20))
    assert edits[-1] == (7, 101.0, 110.0, 242.0, 240.0)
    # Dragging inside the box moves it; one edit per drag, on release.
    count = len(edits)
    inside = view.image_to_screen(150, 150)
    _drag(view, inside, inside + QPointF(10, -5), steps=5)
    assert len(edits) == count + 1 and edits[-1] == (7, 121.0, 100.0, 262.0, 230.0)
    # A box cannot leave the image: pushed against the left edge it stops at 0 with its size.
    for _ in range(20):
        qtbot.keyClick(view, Qt.Key.Key_Left, Qt.KeyboardModifier.ShiftModifier)
    assert edits[-1] == (7, 0.0, 100.0, 141.0, 230.0)
    assert view.boxes()[1] == OverlayBox(8, "gun", 500, 400, 700, 550, "#00ff00", False)

    # Tab selects the next box; Escape clears the selection; arrows then edit nothing.
    with qtbot.waitSignal(view.box_selected) as selected:
        qtbot.keyClick(view, Qt.Key.Key_Tab)
    assert selected.args == [8]
    with qtbot.waitSignal(view.box_selected) as selected:
        qtbot.keyClick(view, Qt.Key.Key_Escape)
    assert selected.args == [None] and view.selected_box() is None
    count = len(edits)
    qtbot.keyClick(view, Qt.Key.Key_Right)
    assert len(edits) == count


def test_drawing_emits_the_new_box_in_image_pixels(qtbot, view, image_path):
    _load(qtbot, view, image_path, boxes=[])
    drawn = []
    view.box_drawn.connect(lambda *args: drawn.append(args))
    # Without draw mode a drag pans.
    _drag(view, (40, 40), (120, 100))
    assert drawn == []
    view.fit()
    # N: the next drag draws one box (corners in either order), then the mode ends.
    qtbot.keyClick(view, Qt.Key.Key_N)
    _drag(view, (120, 100), (40, 40))
    assert drawn == [(80.0, 80.0, 240.0, 200.0)]
    _drag(view, (40, 40), (100, 100))
    assert len(drawn) == 1
    view.fit()
    # Holding B draws while it is held; a box is kept inside the image.
    qtbot.keyPress(view, Qt.Key.Key_B)
    _drag(view, (300, 200), (450, 350))
    qtbot.keyRelease(view, Qt.Key.Key_B)
    assert drawn[-1] == (600.0, 400.0, 800.0, 600.0)
    # A click in draw mode is not a box.
    qtbot.keyClick(view, Qt.Key.Key_N)
    _drag(view, (50, 50), (50.5, 50.5))
    assert len(drawn) == 2


def test_window_drag_presets_and_the_lookup_table_painted(qtbot, view, image_path):
    _load(qtbot, view, image_path)
    view.set_window(2000, 1000)
    assert _pixel(view, 250, 250).lightness() == 128  # the background sits at the level: mid-grey
    view.set_window(2500, 1000)
    assert _pixel(view, 250, 250).lightness() == 0  # now at the window's bottom end

    changes = []
    view.window_changed.connect(lambda level, width: changes.append((level, width)))
    before = view.window()
    _drag(view, (200, 150), (260, 120), button=Qt.MouseButton.RightButton)  # up: level up; right: wider
    after = view.window()
    assert changes and changes[-1] == (after.level, after.width)
    assert after.level > before.level and after.width > before.width
    count = len(changes)
    _drag(view, (200, 150), (180, 170), modifiers=Qt.KeyboardModifier.ControlModifier)  # Ctrl+drag too
    assert len(changes) > count and view.window().width < after.width

    view.apply_preset("full range")
    assert view.window() == windowing.Window.between(0, 16383)  # the 14-bit data's own range
    qtbot.keyClick(view, Qt.Key.Key_A)
    assert view.window() == windowing.Window.between(BACKGROUND, SQUARE)


def test_no_image_is_decoded_on_the_gui_thread(qtbot, view, image_path, monkeypatch):
    threads = []
    real = pyramid.decode_file

    def recording(path):
        threads.append(threading.get_ident())
        return real(path)

    monkeypatch.setattr(pyramid, "decode_file", recording)
    assert _load(qtbot, view, image_path) == "full"  # nothing cached: decoded, and the pyramid written
    assert len(threads) == 1 and threading.get_ident() not in threads
    assert ImageSource.from_store(image_path).cached() is not None

    # Cached now: a new view paints from the pyramid; zooming to 1:1 needs the full image,
    # which is decoded in the background again.
    second = XRayImageView()
    qtbot.addWidget(second)
    second.resize(*VIEW)
    second.show()
    assert _load(qtbot, second, image_path) == "pyramid"
    assert len(threads) == 1
    with qtbot.waitSignal(second.image_loaded, timeout=10_000) as loaded:
        second.actual_size()
        second.repaint()
    assert loaded.args == ["full"] and len(threads) == 2 and threading.get_ident() not in threads
    assert second.grab() is not None and second.last_frame.level == 0


def test_first_paint_of_a_large_image_uses_the_cached_pyramid(qtbot, view, tmp_path, monkeypatch):
    rng = np.random.default_rng(5)
    path = write_store_image(tmp_path / "store", rng.integers(0, 4096, (2048, 2048)).astype(np.uint16))
    decoded = []
    real = pyramid.decode_file
    monkeypatch.setattr(pyramid, "decode_file", lambda p: decoded.append(p) or real(p))

    # Not cached yet: the ingest thumbnail is painted first, the decoded image follows.
    loaded, frames = [], []
    view.image_loaded.connect(loaded.append)
    view.frame_painted.connect(frames.append)
    view.set_image(path, size=(2048, 2048))
    qtbot.waitUntil(lambda: bool(loaded), timeout=10_000)
    assert frames[0].source == "thumbnail" and loaded == ["full"]
    tasks.wait_for_calls()
    assert len(decoded) == 1

    # Cached: the first paint comes from a reduced level, with no decode at all,
    # and the windowed tile is no bigger than the view.
    fresh = XRayImageView()
    qtbot.addWidget(fresh)
    fresh.resize(*VIEW)
    fresh.show()
    with qtbot.waitSignal(fresh.frame_painted, timeout=10_000) as first:
        fresh.set_image(path, size=(2048, 2048))
    frame = first.args[0]
    assert frame.source == "pyramid" and frame.level == 2  # 300/2048 of the size: the 1/4 level suffices
    assert frame.tile[0] <= VIEW[0] and frame.tile[1] <= VIEW[1]
    assert len(decoded) == 1


def _dual_energy_channels():
    from core.simulator.physics import ThicknessStack, detect

    stack = ThicknessStack(300, 400)
    organic = np.zeros((300, 400), np.float32)
    organic[50:250, 50:350] = 4.0
    stack.add("organic", organic)
    low_att, high_att = stack.attenuation()
    rng = np.random.default_rng(2)
    return ImageChannels(detect(high_att, rng, 0.01, 1.0, 14), detect(low_att, rng, 0.01, 1.0, 14))


def test_pseudo_colour_view_of_a_dual_energy_scan(qtbot, view, tmp_path, image_path):
    channels = _dual_energy_channels()
    with qtbot.waitSignal(view.image_loaded, timeout=10_000):
        view.set_channels(lambda: channels, size=(400, 300), cache=tmp_path / "scan.npz")
    assert view.pseudo_colour_available()
    grey = _pixel(view, 200, 150)
    assert grey.red() == grey.green() == grey.blue()
    qtbot.keyClick(view, Qt.Key.Key_P)
    colour = _pixel(view, 200, 150)
    assert view.last_frame.mode == "pseudo"
    assert colour.red() > colour.green() > colour.blue()  # organic: orange
    assert (tmp_path / "scan.npz").is_file()

    # A single-channel image has no pseudo-colour view: P changes nothing.
    _load(qtbot, view, image_path)
    qtbot.keyClick(view, Qt.Key.Key_P)
    assert not view.pseudo_colour() and view.last_frame is not None
    view.repaint()
    assert view.last_frame.mode == "grey"


def test_a_missing_file_is_reported_and_an_older_request_never_lands(qtbot, view, image_path, tmp_path):
    missing = tmp_path / "store" / "00" / "00" / ("0" * 64 + ".png")
    with qtbot.waitSignal(view.load_failed, timeout=10_000) as failed:
        view.set_image(missing)
    assert "missing from the store" in failed.args[0]

    other = write_store_image(tmp_path / "store", np.full((200, 300), 500, np.uint16))
    view.set_image(image_path, size=(W, H))
    with qtbot.waitSignal(view.image_loaded, timeout=10_000):
        view.set_image(other, size=(300, 200))
    tasks.wait_for_calls()
    QApplication.processEvents()
    assert view.image_size() == (300, 200) and view.pyramid().width == 300


def test_prefetch_builds_the_next_images_pyramid_in_the_background(qtbot, view, image_path, monkeypatch):
    threads = []
    real = pyramid.decode_file
    monkeypatch.setattr(pyramid, "decode_file", lambda p: threads.append(threading.get_ident()) or real(p))
    source = ImageSource.from_store(image_path)
    assert source.cached() is None
    view.prefetch(image_path)
    assert tasks.wait_for_calls(10_000)
    assert source.cached() is not None and len(threads) == 1 and threading.get_ident() not in threads
    assert _load(qtbot, view, image_path) == "pyramid" and len(threads) == 1
