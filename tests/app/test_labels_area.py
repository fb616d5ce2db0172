"""The Labels area on a real lab with labels: the queue by risk, keyboard review written
through the labels API (a revision per action), undo, next image, per-reviewer counts,
the empty state's import."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from core.labels import annotations as A
from core.labels import review as R


@pytest.fixture(scope="module")
def labelled_source(tmp_path_factory):
    """A demo lab whose simulated scanner's DICOS images and ground-truth TDRs were
    ingested: their boxes are labels (built once; each test works on a copy)."""
    from core.demo import create_demo_lab
    from core.ingest.engine import watch
    from core.simulator.scanner import simulate

    root = tmp_path_factory.mktemp("labelled") / "demo"
    lab = create_demo_lab(root, plan_sessions=False)
    list(simulate(lab, "SCN-C", 5, rate_per_minute=0, fmt="dicos", seed=5, clean_fraction=0))
    list(watch(lab, once=True, workers=0, settle_s=0.05, poll_s=0.05))
    lab.close()
    return root


@pytest.fixture
def labelled_lab(labelled_source, tmp_path):
    from core.lab import Lab
    from tests.app.conftest import _closed_after_background_calls

    root = tmp_path / "demo"
    shutil.copytree(labelled_source, root)
    lab = Lab.open(root)
    boxed = [r["image_id"] for r in lab.catalog.query("SELECT DISTINCT image_id FROM annotations ORDER BY image_id")]
    assert len(boxed) >= 4
    # The lab says the last boxed image holds nothing: its box becomes the riskiest finding.
    A.set_negative(lab.catalog, boxed[-1], True)
    yield lab
    _closed_after_background_calls(lab)


@pytest.fixture
def area(qtbot, labelled_lab, settings):
    from tests.app.helpers import show_window

    window = show_window(qtbot, labelled_lab, settings)
    view = window.areas["Labels"]
    with qtbot.waitSignal(view.image_shown, timeout=20_000):
        window.show_area("Labels")
    qtbot.waitUntil(lambda: view.viewer.pyramid() is not None, timeout=20_000)
    yield view
    window.close()


def press(qtbot, view, key, modifier=Qt.KeyboardModifier.NoModifier):
    """A key pressed in the viewer; waits for the review action it starts to be written."""
    with qtbot.waitSignal(view.action_done, timeout=10_000) as done:
        qtbot.keyClick(view.viewer, key, modifier)
    return done.args[0]


def drag(view, start, end) -> None:
    """A left-button drag in the viewer, as the viewer's own tests make one."""
    from tests.app.test_xray_viewer import _drag

    _drag(view, start, end)


def current(view) -> int:
    return view._review.image_id


def test_the_queue_puts_flagged_images_first_then_unreviewed_ones(area, labelled_lab):
    rows = area.queue_model.rows
    flagged = [r["image_id"] for r in rows if r["flags"]]
    assert flagged and rows[0]["image_id"] == flagged[0] and rows[0]["codes"] == "box_on_negative"
    # As listed on screen, too.
    shown = [area.queue_proxy.index(n, 0).data(Qt.ItemDataRole.ToolTipRole) for n in range(len(rows))]
    assert shown == [r["name"] for r in rows]
    rest = [r["image_id"] for r in rows[len(flagged):]]
    assert rest == sorted(rest) and all(r["unreviewed"] for r in rows)
    # The first image is open, its finding listed with its reason, its capture facts shown.
    assert current(area) == rows[0]["image_id"]
    assert "labelled as holding no object" in area.flags.item(0).text()
    assert "scanner: <b>SCN-C" in area.facts.text()
    assert f"0 of {len(rows)} boxes reviewed" in area.progress_label.text()


def test_accept_reject_and_undo_from_the_keyboard_write_revisions(qtbot, area, labelled_lab):
    catalog = labelled_lab.catalog
    image = current(area)
    (box,) = A.labels_of(catalog, image).boxes
    qtbot.keyClick(area.viewer, Qt.Key.Key_Tab)  # select the box
    assert area.selected_box_id() == box.annotation_id

    assert "accepted" in press(qtbot, area, Qt.Key.Key_Return)
    accepted = A.labels_box(catalog, box.annotation_id)
    assert accepted.qa_state == "accepted" and accepted.revision_id != box.revision_id
    assert area.viewer.boxes()[0].colour == "#2ecc40" and "accepted" in area.status_line.text()

    assert "rejected" in press(qtbot, area, Qt.Key.Key_R)
    assert A.labels_box(catalog, box.annotation_id).qa_state == "rejected"

    press(qtbot, area, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert A.labels_box(catalog, box.annotation_id).qa_state == "accepted"
    assert "Undone" in area.status_line.text()
    press(qtbot, area, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    restored = A.labels_box(catalog, box.annotation_id)
    assert restored.qa_state == "unreviewed"
    # Every step is a revision of its own: drawn, accepted, rejected, and two undoings.
    assert [b.qa_state for b in A.history(catalog, image)] == [
        "unreviewed", "accepted", "rejected", "accepted", "unreviewed"]
    # Progress and the reviewer's counts followed each action.
    me = next(iter(R.progress(catalog).by_reviewer))
    assert "1 accepted" in area.reviewers.text() and "1 rejected" in area.reviewers.text()
    assert me in area.reviewers.text() and "2 undone" in area.reviewers.text()
    assert "0 of" in area.progress_label.text()


def test_enter_with_no_box_selected_accepts_the_images_labels_never_deletes(qtbot, area, labelled_lab):
    catalog = labelled_lab.catalog
    image = current(area)
    assert area.selected_box_id() is None
    press(qtbot, area, Qt.Key.Key_Enter)
    boxes = A.labels_of(catalog, image).boxes
    assert boxes and all(b.qa_state == "accepted" and not b.deleted for b in boxes)
    assert f"{len(boxes)} of" in area.progress_label.text()
    row = next(r for r in area.queue_model.rows if r["image_id"] == image)
    assert row["unreviewed"] == 0


def test_draw_pick_class_reclass_move_and_delete(qtbot, area, labelled_lab):
    catalog = labelled_lab.catalog
    image = current(area)
    before = {b.annotation_id for b in A.labels_of(catalog, image).boxes}
    viewer = area.viewer

    qtbot.keyClick(viewer, Qt.Key.Key_D)
    assert "Draw the box" in area.status_line.text()
    with qtbot.waitSignal(viewer.box_drawn):
        drag(viewer, viewer.image_to_screen(20, 30), viewer.image_to_screen(120, 90))
    assert area.picker.isVisible() and not area.box_table.isVisible()
    qtbot.keyClicks(area.picker.filter, "knife_kit")  # filtered as typed
    assert area.picker.current() == "knife_kitchen"
    with qtbot.waitSignal(area.action_done, timeout=10_000):
        qtbot.keyClick(area.picker.filter, Qt.Key.Key_Return)
    (new,) = [b for b in A.labels_of(catalog, image).boxes if b.annotation_id not in before]
    assert (new.class_name, new.source) == ("knife_kitchen", "manual")
    assert abs(new.x0 - 20) <= 1 and abs(new.y1 - 90) <= 1

    viewer.select_box(new.annotation_id)
    qtbot.keyClick(viewer, Qt.Key.Key_C)
    qtbot.keyClicks(area.picker.filter, "wrench")
    with qtbot.waitSignal(area.action_done, timeout=10_000):
        qtbot.keyClick(area.picker.filter, Qt.Key.Key_Return)
    reclassed = A.labels_box(catalog, new.annotation_id)
    assert (reclassed.class_name, reclassed.qa_state) == ("wrench", "corrected")

    # Arrow moves are saved once, as one revision, when the keys rest.
    with qtbot.waitSignal(area.action_done, timeout=10_000):
        qtbot.keyClick(viewer, Qt.Key.Key_Right)
        qtbot.keyClick(viewer, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    moved = A.labels_box(catalog, new.annotation_id)
    assert moved.x0 == pytest.approx(reclassed.x0 + 11) and moved.seq == reclassed.seq + 1

    press(qtbot, area, Qt.Key.Key_Delete)
    assert new.annotation_id not in {b.annotation_id for b in A.labels_of(catalog, image).boxes}
    press(qtbot, area, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # the delete undone
    assert A.labels_box(catalog, new.annotation_id).x0 == moved.x0
    assert not A.labels_box(catalog, new.annotation_id).deleted
    for _ in range(3):  # the move, the re-class, the drawing
        press(qtbot, area, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert A.labels_box(catalog, new.annotation_id).deleted
    assert {b.annotation_id for b in A.labels_of(catalog, image).boxes} == before


def test_next_and_previous_image_load_and_the_next_is_prefetched(qtbot, area, labelled_lab):
    rows = [r["image_id"] for r in area.queue_model.rows]
    assert current(area) == rows[0]
    with qtbot.waitSignal(area.image_shown, timeout=10_000) as shown:
        qtbot.keyClick(area.viewer, Qt.Key.Key_N)
    assert shown.args == [rows[1]] and current(area) == rows[1]
    qtbot.waitUntil(lambda: area.viewer.pyramid() is not None, timeout=10_000)
    with qtbot.waitSignal(area.image_shown, timeout=10_000) as shown:
        qtbot.keyClick(area.viewer, Qt.Key.Key_Space)
    assert shown.args == [rows[2]]
    with qtbot.waitSignal(area.image_shown, timeout=10_000) as shown:
        qtbot.keyClick(area.viewer, Qt.Key.Key_P)
    assert shown.args == [rows[1]]
    # The image after the open one had its pyramid built before it was asked for.
    from core.imaging.pyramid import ImageSource

    nxt = next(r for r in area.queue_model.rows if r["image_id"] == rows[2])
    assert ImageSource.from_store(labelled_lab.paths.store / nxt["store_path"]).cached() is not None


def test_filters_narrow_the_queue(qtbot, area, labelled_lab):
    with qtbot.waitSignal(area.loaded, timeout=10_000):
        area.state_filter.setCurrentIndex(R.QUEUE_STATES.index("flagged"))
    assert [r["codes"] for r in area.queue_model.rows] == ["box_on_negative"]
    first_class = area.queue_model.rows[0]["image_id"]
    with qtbot.waitSignal(area.loaded, timeout=10_000):
        area.state_filter.setCurrentIndex(R.QUEUE_STATES.index("unreviewed"))
    classes = {b.class_name for r in area.queue_model.rows for b in A.labels_of(labelled_lab.catalog, r["image_id"]).boxes}
    name = sorted(classes)[0]
    with qtbot.waitSignal(area.loaded, timeout=10_000):
        area.class_filter.setCurrentIndex(area.class_filter.findData(name))
    assert area.queue_model.rows and all(
        any(b.class_name == name for b in A.labels_of(labelled_lab.catalog, r["image_id"]).boxes)
        for r in area.queue_model.rows)
    assert first_class  # the flagged image was one of the queue's


def test_empty_lab_says_what_to_do_and_imports_coco(qtbot, labelled_source, tmp_path, settings):
    """A lab with images but no labels: the empty state's button imports a COCO file;
    a bad file's problems are listed one per line and nothing is written."""
    from core.catalog.ingest_store import insert_image
    from core.demo import create_demo_lab
    from tests.app.conftest import _closed_after_background_calls
    from tests.app.helpers import show_window

    lab = create_demo_lab(tmp_path / "bare", plan_sessions=False)
    try:
        with lab.catalog.write() as txn:
            insert_image(txn, {"sha256": "a" * 64, "store_path": "aa/aa/x.png", "original_name": "bag1.png",
                               "captured_at": "2026-01-01T00:00:00+00:00",
                               "ingested_at": "2026-01-01T00:00:00+00:00", "width": 96, "height": 64})
        window = show_window(qtbot, lab, settings)
        view = window.areas["Labels"]
        with qtbot.waitSignal(view.loaded, timeout=20_000):
            window.show_area("Labels")
        assert view.pages.currentWidget() is view.empty and "xlab annotations import" in view.empty.message.text()
        (button,) = [b for b in view.empty.findChildren(type(view.import_button)) if b.text().startswith("Import")]
        button.click()
        dialog = view.import_dialog
        assert [dialog.format.itemData(i) for i in range(dialog.format.count())] == [
            "coco", "yolo", "voc", "cvat", "labelstudio"]

        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({"images": [{"id": 1, "file_name": "nowhere.png", "width": 96, "height": 64},
                                              {"id": 2, "file_name": "bag1.png", "width": 96, "height": 64}],
                                   "annotations": [{"id": 1, "image_id": 2, "category_id": 1, "bbox": [1, 2, 10, 10]},
                                                   {"id": 2, "image_id": 2, "category_id": 2, "bbox": [1, 2, 10, 10]}],
                                   "categories": [{"id": 1, "name": "wrench"}, {"id": 2, "name": "banana"}]}))
        dialog.path.setText(str(bad))
        with qtbot.waitSignal(dialog.problems.textChanged, timeout=10_000):
            qtbot.waitUntil(lambda: dialog.import_button.isEnabled(), timeout=1)
            dialog.import_button.click()
        qtbot.waitUntil(lambda: "Nothing was imported" in dialog.problems.toPlainText(), timeout=20_000)
        lines = dialog.problems.toPlainText().splitlines()
        assert lines[0] == "Nothing was imported: 1 problem(s)."
        assert len(lines) == 2 and "unknown class 'banana'" in lines[1] and str(bad) in lines[1]
        assert not lab.catalog.query("SELECT 1 FROM annotations")

        good = tmp_path / "good.json"
        good.write_text(json.dumps({"images": [{"id": 2, "file_name": "bag1.png", "width": 96, "height": 64}],
                                    "annotations": [{"id": 1, "image_id": 2, "category_id": 1, "bbox": [1, 2, 10, 10]}],
                                    "categories": [{"id": 1, "name": "wrench"}]}))
        dialog.path.setText(str(good))
        with qtbot.waitSignal(view.loaded, timeout=20_000):
            dialog.import_button.click()
        assert "Imported: 1 boxes added" in dialog.problems.toPlainText()
        assert view.pages.currentIndex() == 0 and [r["original_name"] for r in view.queue_model.rows] == ["bag1.png"]
        dialog.close()
        window.close()
    finally:
        _closed_after_background_calls(lab)


def test_the_area_with_labels_fits_1366x768(qtbot, area):
    """test_screens_fit opens Labels on a lab with no labels (its empty state); this is the full area."""
    from tests.app.test_screens_fit import column_problems, settle, visible_views

    window = area.window()
    settle(qtbot, area)
    views = visible_views(area)
    assert {v.objectName() for v in views} >= {"label_queue", "label_boxes"}
    problems = [p for v in views for p in column_problems(v)]
    assert window.width() <= 1366 and window.height() <= 768
    needs, has = area.minimumSizeHint(), window.stack.size()
    assert needs.width() <= has.width() and needs.height() <= has.height(), f"needs {needs}, has {has}"
    assert not problems, "\n".join(problems)
    assert area.viewer.width() >= 500 and area.viewer.height() >= 350  # the image gets the room
