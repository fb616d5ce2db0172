"""The checklist state machine, headless: one instruction per state, what each
key does or why it does nothing, and what stays confirmed while a bag stays on
the belt (after a completion, a skip, a flag, an undo, a retake, a move)."""

import pytest

from core.capture import sessions as cs
from core.capture.checklist_state import Checklist, ChecklistState, load_state, next_session
from tests.core.test_sessions import capture

BENCH = "bench-1"


@pytest.fixture
def lab(demo_lab):
    return demo_lab


def open_steps(lab, *specs, who="ana", host=BENCH):
    """A session with explicit steps (bag, item, pose), one image each, started by ``who`` at ``host``."""
    return cs.open_session(lab, "SCN-A", who, [cs.StepSpec(b, i, p, "test") for b, i, p in specs], host=host)


def state(lab, sid, who="ana", host=BENCH) -> ChecklistState:
    return load_state(lab, sid, who, host)


def active(lab, sid):
    return cs.session_view(lab, sid).active


def test_each_state_has_one_instruction_and_the_tags_it_waits_for(lab):
    ana = Checklist(lab, "ana", BENCH)
    sid = open_steps(lab, ("BG-0001", None, None), ("BG-0001", "TI-0001", "flat"), ("BG-0001", "TI-0001", "edge_on"),
                     ("BG-0001", None, None))
    st = state(lab, sid)
    assert (st.phase, st.need, st.instruction) == ("scan_bag", ("bag",), "Scan bag BG-0001.")
    assert ana.scan(sid, "BG-0001").message == "BG-0001 ok: step 1 confirmed."
    st = state(lab, sid)
    assert st.phase == "capture" and st.instruction.startswith("Tags confirmed: put bag BG-0001, no item through")
    capture(lab)
    # the bag stays in: only the item is scanned
    st = state(lab, sid)
    assert (st.phase, st.need, st.step["position"]) == ("scan_item", ("item",), 2)
    assert st.instruction == "Bag BG-0001 stays in: scan item TI-0001."
    ana.scan(sid, "TI-0001")
    assert state(lab, sid).instruction.endswith("item TI-0001 at pose flat through the scanner (1 more image).")
    capture(lab)
    # a pose change needs no scan
    assert state(lab, sid).phase == "capture" and active(lab, sid)["position"] == 3
    capture(lab)
    # a clean step after an item: the item comes out, the bag is scanned again
    st = state(lab, sid)
    assert (st.phase, st.instruction) == ("scan_bag_again", "Take the item out, then scan bag BG-0001 again.")
    ana.scan(sid, "BG-0001")
    capture(lab)
    st = state(lab, sid)
    assert (st.phase, st.instruction) == ("finished", "Every step is finished: close the session.")
    assert not st.action("skip").enabled and "close the session" in st.action("skip").why_not
    assert ana.close(sid).ok
    st = state(lab, sid)
    assert st.phase == "closed" and "is closed: choose another session (F4)" in st.instruction
    assert not st.action("start").enabled


def test_bag_and_item_both_needed_on_a_new_bag(lab):
    sid = open_steps(lab, ("BG-0002", "TI-0002", "flat"))
    st = state(lab, sid)
    assert st.phase == "scan_bag_and_item" and st.instruction == "Scan bag BG-0002 and item TI-0002."
    Checklist(lab, "ana", BENCH).scan(sid, "TI-0002")  # either order
    assert state(lab, sid).instruction == "Scan bag BG-0002."


def test_who_may_start_resume_or_take_over(lab):
    sid = open_steps(lab, ("BG-0001", None, None))
    cs.release_session(lab, sid, "ana", host=BENCH)
    nobody = state(lab, sid, "bo", "bench-2")
    assert nobody.phase == "not_started" and nobody.action("start").enabled
    assert nobody.instruction == f"Press Resume session to run session #{sid} at step 1."
    assert not nobody.action("skip").enabled and nobody.action("skip").why_not == "Press Resume session first."
    assert not state(lab, sid, "", "bench-2").action("start").enabled  # no name yet
    cs.start_session(lab, sid, "ana", host=BENCH)
    # another technician sees who holds it; Resume is not offered
    bo = state(lab, sid, "bo", "bench-2")
    assert bo.phase == "held_by_other" and not bo.action("start").enabled
    assert f"is being run by ana at {BENCH}" in bo.instruction and "F4" in bo.instruction
    assert "can be taken over only after ana has been silent for 2 min" in bo.action("start").why_not
    assert Checklist(lab, "bo", "bench-2").start(sid).ok is False
    assert cs.session_view(lab, sid).session["held_by"] == "ana"
    # the same name at another workstation is someone else too
    assert state(lab, sid, "ana", "bench-2").phase == "held_by_other"
    # ana falls silent past the hold timeout: bo may take over
    with lab.catalog.write() as txn:
        txn.execute("UPDATE capture_sessions SET held_seen_at = '2026-01-01T00:00:00+00:00' WHERE id = ?", (sid,))
    bo = state(lab, sid, "bo", "bench-2")
    assert bo.phase == "left_by_other" and bo.action("start").enabled and bo.start_label == "Take over…"
    refused = Checklist(lab, "bo", "bench-2").start(sid)
    assert not refused.ok and isinstance(refused.error, cs.SessionHeldError) and refused.error.can_take_over
    assert (refused.error.holder, refused.error.host) == ("ana", BENCH)
    assert Checklist(lab, "bo", "bench-2").start(sid, take_over=True).ok
    assert state(lab, sid, "bo", "bench-2").phase == "scan_bag"


def test_every_key_answers_even_when_it_does_nothing(lab):
    ana = Checklist(lab, "ana", BENCH)
    sid = open_steps(lab, ("BG-0001", None, None), ("BG-0001", "TI-0001", "flat"))
    assert ana.take_waiting(sid).message == "No image is waiting for a step."
    assert ana.retake(sid).message == "Nothing to retake on step 1: it has no image yet."
    assert ana.undo(sid).message == "Nothing to undo."
    assert ana.flag(sid, "  ").message == "Nothing flagged: say what the problem is."
    assert ana.scan(sid, "").message == "Empty scan: nothing was read from the tag."
    wrong = ana.scan(sid, "TI-0001")
    assert not wrong.ok and isinstance(wrong.error, cs.WrongTagError) and wrong.error.kind == "item"
    assert "clean bag" in wrong.message
    unknown = ana.scan(sid, "NOPE")
    assert isinstance(unknown.error, cs.WrongTagError) and unknown.error.kind is None
    # bo is not running it: his keys say so and change nothing
    bo = Checklist(lab, "bo", "bench-2")
    for outcome in (bo.skip(sid, "other", "x"), bo.retake(sid), bo.undo(sid), bo.close(sid), bo.scan(sid, "BG-0001")):
        assert not outcome.ok and "run by ana at bench-1" in outcome.message
    assert active(lab, sid)["bag_scanned_at"] is None and active(lab, sid)["status"] == "active"
    # F4
    rows = cs.list_sessions(lab)
    assert next_session(rows, sid).message == f"Session #{sid} is the only open session today at this station."
    other = open_steps(lab, ("BG-0002", None, None), who="cy", host="bench-3")
    moved = next_session(cs.list_sessions(lab), sid)
    assert moved.ok and moved.session_id == other and "run by cy" in moved.message
    assert next_session(cs.list_sessions(lab), other).session_id == sid  # wraps round


def test_f6_retakes_the_current_step_only(lab):
    ana = Checklist(lab, "ana", BENCH)
    sid = open_steps(lab, ("BG-0001", None, None), ("BG-0001", "TI-0001", "flat"))
    ana.scan(sid, "BG-0001")
    capture(lab)
    first_image = lab.catalog.query_one("SELECT id FROM images")["id"]
    assert active(lab, sid)["position"] == 2
    # step 2 has no image yet: F6 does nothing and says so; the checklist stays at step 2
    outcome = ana.retake(sid)
    assert not outcome.ok and outcome.message.startswith("Nothing to retake on step 2")
    with pytest.raises(cs.NothingToRetakeError, match="nothing to retake on step 2"):
        cs.retake_current(lab, sid, "ana")
    with pytest.raises(cs.NothingToRetakeError, match="F6 retakes the current step only"):
        cs.retake_current(lab, sid, "ana", first_image)
    assert active(lab, sid)["position"] == 2
    assert lab.catalog.query_one("SELECT usable FROM images WHERE id = ?", (first_image,))["usable"] == 1
    # on a step with images, F6 sets the newest aside and the step takes one more
    with lab.catalog.write() as txn:
        txn.execute("UPDATE capture_steps SET images_wanted = 2 WHERE session_id = ? AND position = 2", (sid,))
    ana.scan(sid, "TI-0001")
    capture(lab)
    newest = lab.catalog.query_one("SELECT MAX(id) AS id FROM images")["id"]
    outcome = ana.retake(sid)
    assert outcome.ok and outcome.message == f"Image #{newest} set aside; this step takes one more."
    st = active(lab, sid)
    assert st["position"] == 2 and st["images_done"] == 0 and st["confirmed_at"] is not None


def test_a_bag_on_the_belt_stays_confirmed(lab):
    ana = Checklist(lab, "ana", BENCH)
    sid = open_steps(lab, ("BG-0001", None, None), ("BG-0001", "TI-0001", "flat"), ("BG-0001", "TI-0002", "flat"),
                     ("BG-0001", "TI-0002", "edge_on"))
    # skip: the bag scanned for step 1 stays on the belt for step 2
    ana.scan(sid, "BG-0001")
    assert ana.skip(sid, "other", "camera test").ok
    st = state(lab, sid)
    assert (st.step["position"], st.need) == (2, ("item",))
    # flag: nothing is lost
    ana.scan(sid, "TI-0001")
    assert ana.flag(sid, "tag worn").ok
    assert state(lab, sid).phase == "capture"
    capture(lab)
    # completion: step 3 keeps the bag, wants its own item
    assert state(lab, sid).need == ("item",)
    ana.scan(sid, "TI-0002")
    # undo of that scan: back to the item only, the bag is still there
    assert ana.undo(sid).ok and state(lab, sid).need == ("item",)
    ana.scan(sid, "TI-0002")
    # retake of step 2 while step 3 waits with TI-0002 in the bag: step 2 comes back with the bag
    # still confirmed and asks for its own item (TI-0001) again
    step2_image = lab.catalog.query_one("SELECT id FROM images")["id"]
    assert ana.retake_image(sid, step2_image).ok
    st = state(lab, sid)
    assert (st.step["position"], st.need) == (2, ("item",))
    # move the image back instead (undo the retake): step 2 is full again, step 3 has the bag
    assert ana.undo(sid).ok
    st = state(lab, sid)
    assert (st.step["position"], st.need) == (3, ("item",))
    ana.scan(sid, "TI-0002")
    capture(lab)
    # step 4: same bag and item, another pose: confirmed already; skip it after a retake-free capture
    assert state(lab, sid).phase == "capture"
    # a move of step 3's image away reopens step 3 with what step 4 had confirmed (same bag and item)
    step3_image = lab.catalog.query_one("SELECT MAX(id) AS id FROM images")["id"]
    assert ana.move(sid, step3_image, None).ok
    st = state(lab, sid)
    assert (st.step["position"], st.phase) == (3, "capture")


def test_a_skip_with_a_new_bag_asks_for_it(lab):
    ana = Checklist(lab, "ana", BENCH)
    sid = open_steps(lab, ("BG-0001", None, None), ("BG-0002", None, None))
    ana.scan(sid, "BG-0001")
    ana.skip(sid, "bag_damaged")
    st = state(lab, sid)
    assert st.step["bag"] == "BG-0002" and st.need == ("bag",)
