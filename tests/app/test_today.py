"""The Today checklist driven like a technician: tags typed by a (simulated)
USB barcode scanner, images from the simulated scanner through the real ingest."""

import itertools
from datetime import date

import pytest
from PySide6.QtCore import Qt

from tests.app.file_dialogs import documents  # noqa: F401
from tests.app.helpers import show_window
from core.capture import sessions as cs
from core.capture.planner import PlanOptions, plan_captures
from core.simulator.scanner import session_setups, simulate

_seeds = itertools.count(100)


@pytest.fixture
def today(qtbot, window, demo_lab, settings):
    """Today's plan with short sessions (5 images per scanner), ana at SCN-A, ingest running here."""
    for _ in plan_captures(demo_lab, PlanOptions(start=date.today(), shifts=1, weekends=True, rate_per_hour=1,
                                                 shift_hours=5), actor="manager"):
        pass
    view = window.today
    view.technician.setText("ana")
    settings.setValue("today/scanner", "SCN-A")
    view.refresh()
    qtbot.waitUntil(lambda: view.session_id is not None and view.scanner == "SCN-A"
                    and view.session_box.currentData() == view.session_id and view.start_button.isEnabled(),
                    timeout=10_000)
    window.start_ingest()
    return view


def open_window(qtbot, lab, settings, technician):
    """XLab opened again on this workstation, by ``technician``."""
    win = show_window(qtbot, lab, settings)
    win.today.technician.setText(technician)
    win.today.technician.editingFinished.emit()
    return win


def scan(qtbot, view, tag):
    """A USB scanner types the tag and Enter into the focused field."""
    with qtbot.waitSignal(view.scan_answered, timeout=10_000) as answer:
        qtbot.keyClicks(view.scan_field, tag)
        qtbot.keyClick(view.scan_field, Qt.Key.Key_Return)
    return answer.args[0]


def running(view):
    return view.state is not None and view.state.running


def shown(view):
    snap = view._snapshot
    return snap.view if snap else None


def scanner_writes(lab, n=1):
    for _ in simulate(lab, "SCN-A", n, rate_per_minute=0, fmt="png16", setups=_ready(lab), seed=next(_seeds)):
        pass


def _ready(lab):
    for setup in session_setups(lab, "SCN-A"):
        assert setup is not None, "the step is not confirmed"
        yield setup


def test_a_whole_session_with_barcodes_and_live_images(qtbot, today, demo_lab):
    view = today
    # not started yet: a scanned tag is answered, and taken by nothing
    early = scan(qtbot, view, "BG-0001")
    assert not early.accepted and view.feedback.text() == "Tag BG-0001 not taken: press Start session first."
    assert view.instruction.text().startswith("Press Start session to run session #")
    qtbot.mouseClick(view.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: running(view), timeout=10_000)
    # The feedback line follows the state that says running (a turn of the event loop later).
    qtbot.waitUntil(lambda: "is yours, ana" in view.feedback.text(), timeout=10_000)
    session = shown(view)
    assert session.session["held_by"] == "ana"
    wrong = scan(qtbot, view, "TI-9999")
    assert not wrong.accepted and "not a barcode" in view.feedback.text()
    steps = len(session.steps)
    for n in range(steps):
        qtbot.waitUntil(lambda: shown(view).active is not None and shown(view).active["position"] == n + 1, timeout=15_000)
        step = shown(view).active
        assert view.step_title.text() == f"Step {n + 1} of {steps}"
        assert step["bag"] in view.bag_label.text()
        if step["confirmed_at"] is None:
            other = "BG-0001" if step["bag"] != "BG-0001" else "BG-0002"
            refused = scan(qtbot, view, other)
            assert not refused.accepted and f"scan bag {step['bag']}" in refused.message
            for tag in (step["bag"], step["item"]):
                if tag:
                    result = scan(qtbot, view, tag)
                    assert result.accepted
            assert result.confirmed
            qtbot.waitUntil(lambda: view.bag_mark.text() == "✔", timeout=10_000)
        scanner_writes(demo_lab)
        # the image joins the step, shows as a thumbnail, and the view moves on
        qtbot.waitUntil(lambda: view.thumbs.count() == n + 1, timeout=15_000)
        assert view.thumbs.item(0).text() == f"step {n + 1}"
    qtbot.waitUntil(lambda: shown(view).finished, timeout=15_000)
    assert view.step_title.text() == f"All {steps} steps finished"
    assert view.instruction.text() == "Every step is finished: close the session."
    assert view.progress.value() == view.progress.maximum() == steps
    view.close_session()
    qtbot.waitUntil(lambda: shown(view).session["status"] == "closed", timeout=10_000)
    images = demo_lab.catalog.query("SELECT split, step_id, technician FROM images ORDER BY id")
    assert len(images) == steps and all(r["technician"] == "ana" and r["step_id"] for r in images)


def test_skip_flag_retake_undo_from_the_keyboard(qtbot, today, demo_lab, monkeypatch):
    view = today
    view.start()
    qtbot.waitUntil(lambda: running(view), timeout=10_000)
    first = shown(view).active
    view.skip("bag_damaged", "zip torn")
    qtbot.waitUntil(lambda: shown(view).active["position"] == 2, timeout=10_000)
    assert "skipped" in view.feedback.text()
    view.flag("scanner belt noisy")
    qtbot.waitUntil(lambda: "scanner belt noisy" in view.flag_label.text(), timeout=10_000)
    # Ctrl+Z undoes the flag, then the skip
    view.scan_field.setFocus()
    qtbot.keyClick(view.scan_field, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: "Undone: flag" in view.feedback.text(), timeout=10_000)
    qtbot.keyClick(view.scan_field, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: shown(view).active["id"] == first["id"], timeout=10_000)
    # capture step 1: the checklist moves to step 2, which has no image yet, so F6 retakes nothing
    for tag in (first["bag"], first["item"]):
        if tag:
            scan(qtbot, view, tag)
    scanner_writes(demo_lab)
    qtbot.waitUntil(lambda: view.thumbs.count() == 1 and shown(view).active["position"] == 2, timeout=15_000)
    qtbot.keyClick(view.scan_field, Qt.Key.Key_F6)
    qtbot.waitUntil(lambda: view.feedback.text().startswith("Nothing to retake on step 2"), timeout=10_000)
    assert shown(view).active["position"] == 2 and view.thumbs.item(0).text() == "step 1"
    assert not view.retake_button.isEnabled() and "no image yet" in view.retake_button.toolTip()
    # step 1's image is retaken by name (right-click): step 1 comes back for one more
    view.thumbs.item(0).setSelected(True)
    view._retake_selected()
    qtbot.waitUntil(lambda: "set aside" in view.feedback.text(), timeout=10_000)
    qtbot.waitUntil(lambda: shown(view).active["id"] == first["id"], timeout=10_000)
    assert view.thumbs.item(0).text() == "step 1 · retake"
    actions = [r["action"] for r in demo_lab.catalog.query(
        "SELECT action FROM audit_log WHERE entity = 'capture_session' ORDER BY id")]
    assert actions[:1] == ["start"] and {"skip", "flag", "undo", "scan", "retake"} <= set(actions)
    # print the bench checklist
    out = demo_lab.paths.root / "checklist.pdf"
    view.print_checklist(str(out))
    qtbot.waitUntil(lambda: "Checklist saved" in view.feedback.text(), timeout=20_000)
    assert out.read_bytes().startswith(b"%PDF")


def test_reopening_resumes_and_a_second_technician_is_refused(qtbot, today, demo_lab, settings):
    view = today
    view.start()
    qtbot.waitUntil(lambda: running(view), timeout=10_000)
    step = shown(view).active
    for tag in (step["bag"], step["item"]):
        if tag:
            scan(qtbot, view, tag)
    scanner_writes(demo_lab)
    qtbot.waitUntil(lambda: shown(view).active["position"] == 2, timeout=15_000)
    session_id = view.session_id
    # the app stops without letting go (a crash): the catalog still says ana holds it
    view._held = False
    view._heartbeat.stop()
    # a second window, another technician: refused while ana's hold is fresh
    bo = open_window(qtbot, demo_lab, settings, "bo")
    qtbot.waitUntil(lambda: bo.today.session_id == session_id, timeout=10_000)
    qtbot.waitUntil(lambda: bo.today.state is not None and bo.today.state.phase == "held_by_other", timeout=10_000)
    # Resume is not offered on ana's session, and says why
    assert not bo.today.start_button.isEnabled() and "being run by ana" in bo.today.start_button.toolTip()
    assert "is being run by ana" in bo.today.instruction.text()
    bo.today.start()
    qtbot.waitUntil(lambda: "being run by ana" in bo.today.feedback.text(), timeout=10_000)
    assert not running(bo.today) and shown(bo.today).session["held_by"] == "ana"
    bo.close()
    # ana opens XLab again: her session resumes at step 2 with its image counted once
    again = open_window(qtbot, demo_lab, settings, "ana")
    # the catalog says ana at this workstation holds it: the checklist picks up where it was
    qtbot.waitUntil(lambda: running(again.today), timeout=10_000)
    assert again.today.session_id == session_id and again.today.start_button.text() == "Resume session"
    assert again.today.step_title.text().startswith("Step 2 of")
    assert shown(again.today).images_done == 1
    again.close()
    assert cs.session_view(demo_lab, session_id).session["held_by"] is None  # closing the window lets go


def test_enter_never_confirms_closing_or_taking_over(qtbot, today, demo_lab):
    view = today
    view.start()
    qtbot.waitUntil(lambda: running(view), timeout=10_000)
    box = view._close_session()
    qtbot.waitUntil(lambda: box.isVisible(), timeout=5_000)
    # a barcode scanner types a tag and Enter into the open dialog
    with qtbot.waitSignal(box.finished, timeout=5_000):
        qtbot.keyClicks(box, "BG-0001")
        qtbot.keyClick(box, Qt.Key.Key_Return)
    view.refresh()
    qtbot.waitSignal(view.loaded, timeout=10_000).wait()
    assert shown(view).session["status"] == "open" and running(view)
    # a session left by a silent holder: the take-over question defaults to Cancel too
    with demo_lab.catalog.write() as txn:
        txn.execute("UPDATE capture_sessions SET held_by = 'bo', held_host = 'bench-9',"
                    " held_seen_at = '2026-01-01T00:00:00+00:00' WHERE id = ?", (view.session_id,))
    view.refresh()
    qtbot.waitUntil(lambda: view.start_button.text() == "Take over…" and view.start_button.isEnabled(), timeout=10_000)
    assert view.instruction.text().startswith("bo at bench-9 left session #")
    view.start()
    from PySide6.QtWidgets import QMessageBox
    qtbot.waitUntil(lambda: any(b.isVisible() for b in view.findChildren(QMessageBox)), timeout=10_000)
    question = next(b for b in view.findChildren(QMessageBox) if b.isVisible())
    assert question.defaultButton() is question.button(QMessageBox.StandardButton.Cancel)
    with qtbot.waitSignal(question.finished, timeout=5_000):
        qtbot.keyClick(question, Qt.Key.Key_Return)
    assert cs.session_view(demo_lab, view.session_id).session["held_by"] == "bo"


def test_every_key_answers_and_disabled_actions_say_why(qtbot, today):
    view = today
    view.scan_field.setFocus()
    # before the session is started: each key says why it does nothing
    for key in (Qt.Key.Key_F2, Qt.Key.Key_F3, Qt.Key.Key_F5, Qt.Key.Key_F6):
        view.feedback.setText("")
        qtbot.keyClick(view.scan_field, key)
        qtbot.waitUntil(lambda: view.feedback.text() != "", timeout=5_000)
        assert "Press Start session first." in view.feedback.text()
    view.feedback.setText("")
    qtbot.keyClick(view.scan_field, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: view.feedback.text() == "Press Start session first.", timeout=5_000)
    for button in (view.skip_button, view.flag_button, view.retake_button, view.undo_button, view.close_button):
        assert not button.isEnabled() and button.toolTip() == "Press Start session first."
    # F4 says what it did even with nothing to switch to
    qtbot.keyClick(view.scan_field, Qt.Key.Key_F4)
    qtbot.waitUntil(lambda: "only open session today" in view.feedback.text(), timeout=5_000)
    view.start()
    qtbot.waitUntil(lambda: running(view), timeout=10_000)
    step = shown(view).active
    assert view.instruction.text() == view.state.instruction and view.instruction.text().startswith("Scan bag")
    qtbot.keyClick(view.scan_field, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: view.feedback.text() == "No image is waiting for a step.", timeout=5_000)
    qtbot.keyClick(view.scan_field, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: view.feedback.text() == "Nothing to undo.", timeout=5_000)
    scan(qtbot, view, step["bag"])
    qtbot.waitUntil(lambda: view.feedback.text().startswith(f"{step['bag']} ok"), timeout=5_000)
    # one instruction: the status line answers the key, the instruction says what comes next
    qtbot.waitUntil(lambda: not view.instruction.text().startswith("Scan bag"), timeout=10_000)
    assert view.instruction.text() == view.state.instruction
    assert view.state.phase in ("capture", "scan_item")


def test_an_angled_pose_is_drawn_at_its_defined_angle(qtbot, today, demo_lab):
    """The pose's name states its tilt (angled_30): the drawing follows it, not the default."""
    from core.capture.pose_geometry import DEFAULT_TILT_DEG

    with demo_lab.catalog.write() as txn:
        txn.execute("UPDATE poses SET name = 'angled_30' WHERE name = 'angled_45'")
    view = today
    view.start()
    qtbot.waitUntil(lambda: running(view), timeout=10_000)
    steps = shown(view).steps
    angled = next(st for st in steps if st["pose"] == "angled_30")
    for st in steps[:steps.index(angled)]:  # skip to it, as a technician would
        view.skip("bag_damaged", "test")
    qtbot.waitUntil(lambda: shown(view).active["id"] == angled["id"], timeout=10_000)
    view.diagram.grab()  # paint it
    assert view.diagram.drawn["tilt_deg"] == pytest.approx(30.0) != DEFAULT_TILT_DEG
    assert "tilted 30°" in view.diagram.drawn["label"] and "no angle given" not in view.diagram.drawn["label"]
    assert view.diagram.toolTip().startswith("angled_30: ")


def test_a_scanned_tag_and_enter_never_skip_or_flag(qtbot, today, demo_lab):
    from PySide6.QtWidgets import QApplication, QRadioButton

    from app.views.checklist_dialogs import StepReasonDialog

    view = today
    view.start()
    qtbot.waitUntil(lambda: running(view), timeout=10_000)
    step = shown(view).active

    def open_dialog(key):
        view.window().activateWindow()  # back from a closed dialog, as the desktop does
        qtbot.waitUntil(lambda: QApplication.activeWindow() is view.window(), timeout=5_000)
        qtbot.keyClick(view.scan_field, key)
        qtbot.waitUntil(lambda: any(d.isVisible() for d in view.findChildren(StepReasonDialog)), timeout=5_000)
        return next(d for d in view.findChildren(StepReasonDialog) if d.isVisible())

    def scanner_types(dialog, tag):
        """A USB scanner types into whatever has the focus, then Enter."""
        dialog.activateWindow()  # what the desktop does for a new dialog (offscreen Qt has no window manager)
        qtbot.waitUntil(lambda: QApplication.focusWidget() is not None
                        and QApplication.focusWidget().window() is dialog, timeout=5_000)
        target = QApplication.focusWidget()
        qtbot.keyClicks(target, tag)
        qtbot.keyClick(target, Qt.Key.Key_Return)

    # F2: no reason is picked for the technician; a tag + Enter skips nothing
    dialog = open_dialog(Qt.Key.Key_F2)
    radios = dialog.findChildren(QRadioButton)
    assert [r.text() for r in radios] == list(cs.SKIP_REASONS.values()) and not any(r.isChecked() for r in radios)
    scanner_types(dialog, f"{step['bag']} 1")  # a space in a tag must not pick a reason either
    assert dialog.isVisible() and dialog.hint.text() == "Pick a reason first."
    assert not any(r.isChecked() for r in radios) and dialog.note.text() == ""
    # a reason picked, Enter still does not confirm: only the button does
    radios[1].click()
    qtbot.keyClick(dialog.note, Qt.Key.Key_Return)
    assert dialog.isVisible() and "Enter does not confirm" in dialog.hint.text()
    assert shown(view).active["id"] == step["id"]
    assert cs.session_view(demo_lab, view.session_id).steps[0]["status"] != "skipped"
    qtbot.keyClicks(dialog.note, "zip torn")
    qtbot.mouseClick(dialog.confirm_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Step skipped (bag damaged)" in view.feedback.text(), timeout=10_000)
    skipped = next(st for st in cs.session_view(demo_lab, view.session_id).steps if st["id"] == step["id"])
    assert skipped["status"] == "skipped" and skipped["skip_reason"] == "bag damaged: zip torn"  # no tag in it
    # F3: a tag + Enter flags nothing either; Esc leaves the step as it was
    qtbot.waitUntil(lambda: shown(view).active["id"] != step["id"], timeout=10_000)
    current = shown(view).active
    dialog = open_dialog(Qt.Key.Key_F3)
    scanner_types(dialog, current["bag"])
    assert dialog.isVisible() and "Enter does not confirm" in dialog.hint.text()
    with qtbot.waitSignal(dialog.rejected, timeout=5_000):
        qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    assert view.feedback.text() == "Nothing flagged."
    assert next(st for st in cs.session_view(demo_lab, view.session_id).steps
                if st["id"] == current["id"])["flag_reason"] is None


def test_ctrl_p_saves_the_checklist_where_asked_and_says_where(qtbot, today, documents, settings, tmp_path):
    from tests.app.file_dialogs import file_dialog, folder_of, save_as, saved_message

    view = today
    view.scan_field.setFocus()
    qtbot.keyClick(view.scan_field, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
    dialog = file_dialog(qtbot, view)
    assert folder_of(dialog) == documents.resolve()
    with qtbot.waitSignal(dialog.rejected, timeout=5_000):
        dialog.reject()
    assert view.feedback.text() == "Checklist not saved."
    qtbot.keyClick(view.scan_field, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
    target = tmp_path / "bench" / f"session-{view.session_id}.pdf"
    save_as(qtbot, file_dialog(qtbot, view), target)
    message = saved_message(qtbot, view)
    assert target.read_bytes().startswith(b"%PDF")
    assert message.informativeText() == str(target.resolve()) and view.feedback.text() == f"Checklist saved: {target}"
    assert settings.value("save_folders/checklists") == str(target.parent.resolve())


def test_the_move_image_dialog_cannot_be_confirmed_by_a_scanner(qtbot):
    from PySide6.QtWidgets import QApplication

    from app.views.checklist_dialogs import MoveImageDialog

    dialog = MoveImageDialog(None, 7, ["(no step: unassigned)", "1. BG-1 · TI-1 · flat", "2. BG-1 · TI-2 · flat"])
    qtbot.addWidget(dialog)
    picked = []
    dialog.chosen.connect(picked.append)
    dialog.show()
    dialog.activateWindow()  # what the desktop does for a new dialog (offscreen Qt has no window manager)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is not None
                    and QApplication.focusWidget().window() is dialog, timeout=5_000)
    target = QApplication.focusWidget()
    qtbot.keyClicks(target, "BG-0009")
    qtbot.keyClick(target, Qt.Key.Key_Return)  # what a USB barcode scanner types
    assert dialog.isVisible() and dialog.hint.text() == "Pick a step first." and picked == []
    dialog.steps.setCurrentRow(2)
    qtbot.keyClick(dialog.steps, Qt.Key.Key_Return)
    assert dialog.isVisible() and "Enter does not confirm" in dialog.hint.text() and picked == []
    qtbot.mouseClick(dialog.confirm_button, Qt.MouseButton.LeftButton)
    assert picked == [2] and not dialog.isVisible()
