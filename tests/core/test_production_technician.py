"""Images a technician assigns to a step after they arrived (F5, `xlab ingest
assign`) count for that technician in the production dashboard."""

from datetime import date

from core.capture import sessions as cs
from core.dashboard.production import production
from core.ingest.actions import assign
from core.ingest.engine import watch
from core.simulator.scanner import simulate
from tests.core.test_sessions import confirm, plan_today


def _arrive_waiting(lab, scanner, seed):
    for _ in simulate(lab, scanner, 1, rate_per_minute=0, fmt="png16", seed=seed):
        pass
    for _ in watch(lab, [scanner], once=True, workers=0, settle_s=0.0, poll_s=0.01):
        pass


def _by_technician(lab):
    return {r["technician"]: r["images"] for r in production(lab.catalog, None, today=date.today()).by_technician}


def test_waiting_images_assigned_in_a_session_count_for_its_technician(demo_lab):
    lab = demo_lab
    session = plan_today(lab)["SCN-A"]
    cs.start_session(lab, session["id"], "ana", host="bench-1")
    _arrive_waiting(lab, "SCN-A", seed=71)
    assert _by_technician(lab) == {"(no session)": 1}  # tags not scanned yet: nobody's image so far
    confirm(lab, session["id"])
    assert len(cs.assign_waiting(lab, session["id"], "ana")) == 1  # F5
    assert _by_technician(lab) == {"ana": 1}
    # the counters agree with the images themselves
    rows = lab.catalog.query("SELECT technician, images FROM production_counts")
    assert [(r["technician"], r["images"]) for r in rows] == [("ana", 1)]


def test_xlab_ingest_assign_credits_the_steps_technician(demo_lab):
    lab = demo_lab
    sessions = plan_today(lab)
    cs.start_session(lab, sessions["SCN-B"]["id"], "bo", host="bench-2")
    step = cs.session_view(lab, sessions["SCN-B"]["id"]).active
    _arrive_waiting(lab, "SCN-B", seed=72)
    image_id = lab.catalog.query_one("SELECT id FROM images WHERE step_id IS NULL")["id"]
    assign(lab, image_id, step["id"], actor="manager")
    assert _by_technician(lab) == {"bo": 1}
