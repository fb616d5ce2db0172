"""Running a capture session: barcodes, skip/flag/retake/reassign/undo, one
technician at a time, resuming after a kill, the printed checklist."""

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone

import pytest

from core.capture import sessions as cs
from core.capture.checklist import write_checklist
from core.capture.planner import PlanOptions, plan_captures
from core.cli import main
from core.ingest.engine import watch
from core.progress import run_to_end
from core.simulator.scanner import session_setups, simulate

pytestmark = pytest.mark.both_backends


def plan_today(lab):
    run_to_end(plan_captures(lab, PlanOptions(start=date.today(), shifts=1, weekends=True), actor="planner"))
    return {s["scanner"]: s for s in cs.list_sessions(lab)}


@pytest.fixture
def running(demo_lab):
    """SCN-A's session for today, started by ana at bench-1."""
    session = plan_today(demo_lab)["SCN-A"]
    cs.start_session(demo_lab, session["id"], "ana", host="bench-1")
    return demo_lab, session["id"]


def active(lab, session_id):
    return cs.session_view(lab, session_id).active


def confirm(lab, session_id, who="ana"):
    step = active(lab, session_id)
    results = [cs.scan_barcode(lab, session_id, tag, who) for tag in (step["bag"], step["item"]) if tag]
    assert all(r.accepted for r in results) and results[-1].confirmed
    return step


_seeds = itertools.count(1)


def capture(lab, scanner="SCN-A", n=1):
    """The simulated scanner writes what the confirmed step wants; ingest takes it."""
    for _ in simulate(lab, scanner, n, rate_per_minute=0, fmt="png16", setups=_follow(lab, scanner), seed=next(_seeds)):
        pass
    for _ in watch(lab, [scanner], once=True, workers=0, settle_s=0.0, poll_s=0.01):
        pass


def _follow(lab, scanner):
    for setup in session_setups(lab, scanner):
        if setup is None:
            raise AssertionError("nothing to capture: the step is not confirmed or has its images")
        yield setup


def to_item_step(lab, session_id):
    """Capture clean-bag steps until the active step has an item (plans start each bag clean)."""
    while active(lab, session_id)["item"] is None:
        if active(lab, session_id)["confirmed_at"] is None:
            confirm(lab, session_id)
        capture(lab)
    return active(lab, session_id)


def audit(lab, session_id):
    return [r["action"] for r in lab.catalog.query(
        "SELECT action FROM audit_log WHERE entity = 'capture_session' AND entity_key = ? ORDER BY id", (str(session_id),))]


def test_tags_confirm_the_step_and_wrong_or_unknown_tags_are_refused(running):
    lab, sid = running
    step = to_item_step(lab, sid)
    other_bag = lab.catalog.query_one("SELECT barcode FROM bags WHERE id != ? LIMIT 1", (step["bag_id"],))["barcode"]
    refused = cs.scan_barcode(lab, sid, other_bag, "ana")
    assert not refused.accepted and f"scan bag {step['bag']}" in refused.message
    unknown = cs.scan_barcode(lab, sid, "NO-SUCH-TAG", "ana")
    assert not unknown.accepted and "not a barcode in the inventory" in unknown.message
    first = cs.scan_barcode(lab, sid, step["bag"], "ana")
    assert first.accepted and not first.confirmed and "now scan item" in first.message
    assert active(lab, sid)["confirmed_at"] is None
    done = cs.scan_barcode(lab, sid, step["item"], "ana")
    assert done.confirmed and "confirmed" in done.message
    assert active(lab, sid)["confirmed_by"] == "ana"
    assert audit(lab, sid).count("scan_refused") == 2
    clean = cs.session_view(lab, sid).steps[0]
    if clean["item"] is None:
        assert clean["status"] == "done"
    # bo cannot scan into ana's session
    with pytest.raises(cs.SessionBusyError, match="run by ana"):
        cs.scan_barcode(lab, sid, step["bag"], "bo")


def test_images_fill_the_step_and_the_session_moves_on(running):
    lab, sid = running
    first = confirm(lab, sid)
    capture(lab)
    view = cs.session_view(lab, sid)
    assert view.steps[0]["status"] == "done" and view.steps[0]["images_done"] == 1
    nxt = view.active
    assert nxt["position"] == 2
    # same bag and item, another pose: no need to scan again
    same_objects = (nxt["bag_id"], nxt["item_id"]) == (first["bag_id"], first["item_id"])
    assert (nxt["confirmed_at"] is not None) == same_objects
    image = lab.catalog.query_one("SELECT * FROM images")
    assert (image["step_id"], image["split"], image["bag_id"], image["technician"]) == (first["id"], first["split"], first["bag_id"], "ana")


def test_images_before_confirmation_wait_and_can_be_assigned(running):
    lab, sid = running
    step = active(lab, sid)
    for _ in simulate(lab, "SCN-A", 1, rate_per_minute=0, fmt="png16", seed=next(_seeds)):
        pass
    for _ in watch(lab, ["SCN-A"], once=True, workers=0, settle_s=0.0, poll_s=0.01):
        pass
    view = cs.session_view(lab, sid)
    assert len(view.waiting) == 1 and view.steps[0]["images_done"] == 0
    with pytest.raises(cs.SessionError, match="scan the step's tags first"):
        cs.assign_waiting(lab, sid, "ana")
    confirm(lab, sid)
    assert cs.assign_waiting(lab, sid, "ana") == view.waiting
    view = cs.session_view(lab, sid)
    assert not view.waiting and view.steps[0]["status"] == "done"
    assert cs.undo_last(lab, sid, "ana").startswith("assignment of 1")
    view = cs.session_view(lab, sid)
    assert view.waiting and view.steps[0]["status"] == "active" and view.steps[0]["id"] == step["id"]


def test_skip_flag_retake_reassign_and_undo(running):
    lab, sid = running
    with pytest.raises(cs.SessionError, match="say why"):
        cs.skip_step(lab, sid, "other", "ana")
    with pytest.raises(cs.SessionError, match="unknown skip reason"):
        cs.skip_step(lab, sid, "tired", "ana")
    first = active(lab, sid)
    second_id = cs.skip_step(lab, sid, "item_missing", "ana", note="not on the shelf")
    steps = cs.session_view(lab, sid).steps
    assert steps[0]["status"] == "skipped" and steps[0]["skip_reason"] == "item missing: not on the shelf"
    assert steps[1]["id"] == second_id and steps[1]["status"] == "active"
    cs.flag_step(lab, sid, "bag zip broken", "ana")
    assert active(lab, sid)["flag_reason"] == "bag zip broken"
    assert cs.undo_last(lab, sid, "ana") == f"flag on step #{second_id}"
    assert active(lab, sid)["flag_reason"] is None
    assert cs.undo_last(lab, sid, "ana") == f"skip of step #{first['id']}"
    assert active(lab, sid)["id"] == first["id"] and active(lab, sid)["skip_reason"] is None
    # capture step 1, then retake its image: the step comes back and takes one more
    confirm(lab, sid)
    capture(lab)
    image_id = lab.catalog.query_one("SELECT id FROM images")["id"]
    cs.retake_image(lab, sid, image_id, "ana")
    view = cs.session_view(lab, sid)
    assert view.active["id"] == first["id"] and view.active["images_done"] == 0
    row = lab.catalog.query_one("SELECT usable, quality_flags FROM images WHERE id = ?", (image_id,))
    assert (row["usable"], row["quality_flags"]) == (0, "retake")
    if view.active["confirmed_at"] is None:
        confirm(lab, sid)
    capture(lab)
    assert cs.session_view(lab, sid).steps[0]["status"] == "done"
    assert lab.catalog.query_one("SELECT COUNT(*) AS n FROM images")["n"] == 2  # nothing deleted
    # reassign the new image to step 3 (say it was taken with step 3's objects) and undo it
    new_image = lab.catalog.query_one("SELECT id FROM images WHERE usable = 1")["id"]
    third = cs.session_view(lab, sid).steps[2]
    cs.reassign_image(lab, sid, new_image, third["id"], "ana")
    assert lab.catalog.query_one("SELECT step_id FROM images WHERE id = ?", (new_image,))["step_id"] == third["id"]
    assert cs.undo_last(lab, sid, "ana") == f"move of image #{new_image}"
    assert lab.catalog.query_one("SELECT step_id FROM images WHERE id = ?", (new_image,))["step_id"] == first["id"]
    assert {"skip", "flag", "retake", "reassign", "undo"} <= set(audit(lab, sid))


def test_one_technician_at_a_time_and_take_over_after_silence(running):
    lab, sid = running
    with pytest.raises(cs.SessionBusyError, match="being run by ana at bench-1"):
        cs.start_session(lab, sid, "bo", host="bench-2")
    with pytest.raises(cs.SessionBusyError, match="being run by ana"):
        cs.start_session(lab, sid, "bo", host="bench-2", take_over=True)  # ana is alive: never two at once
    # ana's app dies without letting go; after the timeout bo may take over, and only when asked
    with lab.catalog.write() as txn:
        txn.execute("UPDATE capture_sessions SET held_seen_at = '2026-01-01T00:00:00+00:00' WHERE id = ?", (sid,))
    with pytest.raises(cs.SessionBusyError, match="take it over"):
        cs.start_session(lab, sid, "bo", host="bench-2")
    view = cs.start_session(lab, sid, "bo", host="bench-2", take_over=True)
    assert view.session["held_by"] == "bo" and view.session["technician"] == "bo"
    with pytest.raises(cs.SessionBusyError, match="now run by bo"):
        cs.heartbeat(lab, sid, "ana", host="bench-1")
    cs.release_session(lab, sid, "bo", host="bench-2")
    cs.start_session(lab, sid, "ana", host="bench-1")  # released: anyone may resume
    assert audit(lab, sid)[:1] == ["start"] and "take_over" in audit(lab, sid) and "resume" in audit(lab, sid)
    # one session per scanner at a time
    other = cs.open_session(lab, "SCN-B", "cy", [cs.StepSpec("BG-0001", None, None, "test")], host="bench-3")
    with lab.catalog.write() as txn:
        txn.execute("UPDATE capture_sessions SET scanner_id = (SELECT id FROM scanners WHERE name = 'SCN-A') WHERE id = ?",
                    (other,))
    cs.release_session(lab, sid, "ana", host="bench-1")
    with pytest.raises(cs.SessionBusyError, match=f"running session #{other} by cy"):
        cs.start_session(lab, sid, "ana", host="bench-1")


_RUNNER = """
import sys, time
from core.lab import Lab
from core.ingest.engine import watch
lab = Lab.open(sys.argv[1])
print("ready", flush=True)
for _ in watch(lab, ["SCN-A"], once=False, workers=0, settle_s=0.0, poll_s=0.01):
    pass
"""


def test_a_killed_app_resumes_at_the_right_step_with_every_image_counted_once(running, tmp_path):
    lab, sid = running
    root = str(lab.paths.root)
    proc = subprocess.Popen([sys.executable, "-c", _RUNNER, root], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        assert proc.stdout.readline().strip() == "ready"
        wanted = 4
        written = 0
        for _ in range(40):
            step = active(lab, sid)
            if step["confirmed_at"] is None:
                confirm(lab, sid)
            for _ in simulate(lab, "SCN-A", 1, rate_per_minute=0, fmt="png16", setups=_follow(lab, "SCN-A"),
                              seed=next(_seeds)):
                written += 1
            deadline = time.monotonic() + 20
            while cs.session_view(lab, sid).images_done < written and time.monotonic() < deadline:
                time.sleep(0.05)
            if written == wanted:
                break
        # one more lands and the machine goes down at once
        if active(lab, sid)["confirmed_at"] is None:
            confirm(lab, sid)
        for _ in simulate(lab, "SCN-A", 1, rate_per_minute=0, fmt="png16", setups=_follow(lab, "SCN-A"),
                          seed=next(_seeds)):
            pass
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.kill()
    # reopen: the session is still ana's, and the file left behind is ingested once
    view = cs.start_session(lab, sid, "ana", host="bench-1")
    for _ in watch(lab, ["SCN-A"], once=True, workers=0, settle_s=0.0, poll_s=0.01):
        pass
    for _ in watch(lab, ["SCN-A"], once=True, workers=0, settle_s=0.0, poll_s=0.01):
        pass
    view = cs.session_view(lab, sid)
    assert view.images_done == wanted + 1
    assert lab.catalog.query_one("SELECT COUNT(*) AS n FROM images")["n"] == wanted + 1
    assert [s["status"] for s in view.steps[:wanted + 2]] == ["done"] * (wanted + 1) + ["active"]
    assert lab.catalog.integrity_check() == "ok"


def test_checklist_pdf_lists_every_step(running, tmp_path):
    from pypdf import PdfReader

    lab, sid = running
    cs.skip_step(lab, sid, "bag_damaged", "ana")
    path = write_checklist(lab, sid, tmp_path / "out" / "checklist.pdf")
    text = "\n".join(page.extract_text() for page in PdfReader(path).pages)
    view = cs.session_view(lab, sid)
    assert f"Capture session #{sid}" in text and "SCN-A" in text and "technician ana" in text
    for step in view.steps:
        assert step["bag"] in text
    assert "bag damaged" in text


def test_cli_runs_a_session(running, capsys):
    lab, sid = running
    root = str(lab.paths.root)
    step = to_item_step(lab, sid)
    cs.release_session(lab, sid, "ana", host="bench-1")
    assert main(["session", "start", str(sid), "--lab", root, "--technician", "cy"]) == 0
    assert main(["session", "scan", str(sid), "WRONG", "--lab", root, "--technician", "cy"]) == 3
    assert "not a barcode" in capsys.readouterr().out
    assert main(["session", "scan", str(sid), step["bag"], "--lab", root, "--technician", "cy"]) == 0
    assert main(["session", "scan", str(sid), "--lab", root, "--technician", "cy", step["item"]]) == 0
    assert "confirmed" in capsys.readouterr().out
    assert main(["session", "skip", str(sid), "scanner_fault", "--lab", root, "--technician", "cy"]) == 0
    assert main(["session", "undo", str(sid), "--lab", root, "--technician", "cy"]) == 0
    capsys.readouterr()
    assert main(["session", "show", str(sid), "--lab", root, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    now = next(st for st in shown["steps"] if st["status"] == "active")
    assert now["id"] == step["id"] and now["confirmed_by"] == "cy"
    assert main(["session", "start", str(sid), "--lab", root, "--technician", "dee"]) == 2
    assert "being run by cy" in capsys.readouterr().err
    assert main(["session", "close", str(sid), "--lab", root, "--technician", "cy"]) == 0
    assert cs.session_view(lab, sid).session["status"] == "closed"


def _xlab(root, *args, workstation):
    """``xlab session ...`` as its own process at station ``workstation``, named by ``--station``
    (bench-1) or by ``$XLAB_STATION`` (the others)."""
    xlab = os.path.join(os.path.dirname(sys.executable), "xlab")
    named = ["--station", workstation] if workstation == "bench-1" else []
    return subprocess.Popen([xlab, "session", *args, "--lab", root, *named], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "XLAB_STATION": "" if named else workstation})


def test_two_processes_at_two_stations_never_both_hold_a_session(demo_lab):
    lab = demo_lab
    sid = plan_today(lab)["SCN-A"]["id"]
    root = str(lab.paths.root)
    # the same login at two stations, at the same moment: one holds it, the other is told who and where
    procs = {ws: _xlab(root, "start", str(sid), "--technician", "tech", workstation=ws) for ws in ("bench-1", "bench-2")}
    results = {ws: (p.wait(60), *p.communicate()) for ws, p in procs.items()}
    winners = [ws for ws, (rc, _, _) in results.items() if rc == 0]
    assert len(winners) == 1, results
    holder = winners[0]
    loser = "bench-2" if holder == "bench-1" else "bench-1"
    rc, _, err = results[loser]
    assert rc == 2 and f"is being run by tech at {holder}, last seen" in err and len(err.strip().splitlines()) == 1
    row = cs.session_view(lab, sid).session
    assert (row["held_by"], row["held_host"]) == ("tech", holder)
    # take-over only after the holder has been silent for HOLD_TIMEOUT_S
    def silent_for(seconds):
        with lab.catalog.write() as txn:
            txn.execute("UPDATE capture_sessions SET held_seen_at = ? WHERE id = ?",
                        ((datetime.now(timezone.utc) - timedelta(seconds=seconds)).isoformat(), sid))

    silent_for(cs.HOLD_TIMEOUT_S - 10)
    p = _xlab(root, "start", str(sid), "--technician", "bo", "--take-over", workstation=loser)
    assert p.wait(60) == 2 and "can be taken over if tech stays silent" in p.communicate()[1]
    silent_for(cs.HOLD_TIMEOUT_S + 10)
    p = _xlab(root, "start", str(sid), "--technician", "bo", workstation=loser)
    assert p.wait(60) == 2 and f"was left by tech at {holder}" in p.communicate()[1]
    p = _xlab(root, "start", str(sid), "--technician", "bo", "--take-over", workstation=loser)
    assert p.wait(60) == 0, p.communicate()
    row = cs.session_view(lab, sid).session
    assert (row["held_by"], row["held_host"]) == ("bo", loser)
    with pytest.raises(cs.HoldLostError, match="now run by bo"):
        cs.heartbeat(lab, sid, "tech", host=holder)


def test_the_same_technician_at_another_station_cannot_act_on_a_held_session(running):
    lab, sid = running
    step = active(lab, sid)
    actions = [
        lambda host: cs.scan_barcode(lab, sid, step["bag"], "ana", host=host),
        lambda host: cs.skip_step(lab, sid, "item_missing", "ana", host=host),
        lambda host: cs.flag_step(lab, sid, "belt jammed", "ana", host=host),
        lambda host: cs.assign_waiting(lab, sid, "ana", host=host),
        lambda host: cs.retake_current(lab, sid, "ana", host=host),
        lambda host: cs.undo_last(lab, sid, "ana", host=host),
        lambda host: cs.close_session(lab, sid, "ana", host=host),
    ]
    for act in actions:
        with pytest.raises(cs.SessionBusyError, match="at bench-1, not at bench-2"):
            act("bench-2")
    assert active(lab, sid)["bag_scanned_at"] is None  # nothing happened
    assert cs.scan_barcode(lab, sid, step["bag"], "ana", host="bench-1").accepted  # the holding station may


def test_xlab_at_another_workstation_cannot_act_on_a_session_held_elsewhere(running):
    lab, sid = running  # ana holds it at bench-1
    tag = active(lab, sid)["bag"]
    proc = _xlab(str(lab.paths.root), "scan", str(sid), tag, "--technician", "ana", workstation="bench-2")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "at bench-1, not at bench-2" in err and "Traceback" not in err
    proc = _xlab(str(lab.paths.root), "scan", str(sid), tag, "--technician", "ana", workstation="bench-1")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
