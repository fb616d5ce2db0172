"""The Today view's pose drawing draws each demo pose at the angles of its definition."""

import pytest

from app.views.pose_diagram import PoseDiagram
from tests.core.test_pose_geometry import EXPECTED, demo_poses


def test_each_demo_pose_is_drawn_at_its_definitions_angles(qtbot):
    diagram = PoseDiagram()
    qtbot.addWidget(diagram)
    diagram.resize(320, 220)
    for p in demo_poses():
        diagram.set_pose(p["placement"], p["rotation_deg"], p["occlusion"], name=p["name"],
                         description=p["description"])
        diagram.grab()  # paints
        rotation, tilt = EXPECTED[p["name"]]
        assert diagram.drawn["rotation_deg"] == pytest.approx(rotation % 360, abs=1e-6), p["name"]
        assert diagram.drawn["tilt_deg"] == pytest.approx(tilt, abs=1e-6), p["name"]
    diagram.set_pose("angled", 30, "none", name="angled_45", description="tilted about 45°")
    diagram.grab()
    assert diagram.drawn["label"] == "angled, tilted 45°, turned 30°, nothing over it"
    assert "tilted 45°" in diagram.toolTip()
