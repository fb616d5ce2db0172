"""Pose pictures follow the pose's definition: the printed checklist draws
each demo pose at the angles its inventory entry gives."""

import pytest
import yaml

from core.capture import sessions as cs
from core.capture.checklist import _pose_pictures, write_checklist
from core.capture.pose_geometry import pose_geometry
from core.resources import resource
from tests.core.test_sessions import plan_today

# What each demo pose says (inventory.yaml: name, placement, rotation_deg, description).
EXPECTED = {"flat": (0, 0), "flat_rotated": (60, 0), "edge_on": (0, 0), "angled_45": (30, 45),
            "under_laptop": (15, 0), "in_clutter": (75, 45)}


def demo_poses():
    return yaml.safe_load(resource("demo", "inventory.yaml").read_text())["poses"]


def test_each_demo_pose_reads_as_its_definition():
    poses = {p["name"]: p for p in demo_poses()}
    assert set(poses) == set(EXPECTED)
    for name, p in poses.items():
        g = pose_geometry(p["placement"], p["rotation_deg"], p["occlusion"], name, p["description"])
        assert (g.rotation_deg, g.tilt_deg) == EXPECTED[name], name
    angled = pose_geometry("angled", 30, "none", "angled_45", "tilted about 45°")
    assert angled.describe() == "angled, tilted 45°, turned 30°, nothing over it"
    # the angle may be in the description only; none at all is said so
    assert pose_geometry("angled", 0, "none", "slanted", "tilted about 20°").tilt_deg == 20
    assert "no angle given" in pose_geometry("angled", 75, "among_clutter", "in_clutter", "angled").describe()


def test_the_printed_checklist_draws_each_pose_at_its_angles(demo_lab, tmp_path):
    from core import pdf

    doc = pdf.new_document("poses")
    steps = [{"pose": p["name"], "placement": p["placement"], "rotation_deg": p["rotation_deg"],
              "occlusion": p["occlusion"], "pose_description": p["description"]} for p in demo_poses()]
    drawn = _pose_pictures(doc, steps)
    for name, (rotation, tilt) in EXPECTED.items():
        assert drawn[name]["rotation_deg"] == pytest.approx(rotation % 360, abs=1e-6), name
        assert drawn[name]["tilt_deg"] == pytest.approx(tilt, abs=1e-6), name
    # a real session's checklist names the tilt, not just the turn
    session = plan_today(demo_lab)["SCN-A"]
    cs.start_session(demo_lab, session["id"], "ana", host="bench-1")
    from pypdf import PdfReader

    path = write_checklist(demo_lab, session["id"], tmp_path / "checklist.pdf")
    text = "\n".join(page.extract_text() for page in PdfReader(path).pages)
    assert "Poses in this session" in text
    used = {st["pose"] for st in cs.session_view(demo_lab, session["id"]).steps if st["pose"]}
    assert used and all(name in text for name in used)
    if "angled_45" in used:
        assert "tilted 45°" in text
