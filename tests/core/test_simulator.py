import json

import cv2
import numpy as np
import pytest

from core.errors import UnknownNameError
from core.simulator.physics import MATERIALS, ThicknessStack, detect, pseudo_colour
from core.simulator.scanner import simulate
from core.simulator.scene import ScannerGeometry, render_scan

GEOMETRY = ScannerGeometry(320, 240, 3.0, 16, True, 1.0, 0.01)


def test_log_attenuations_add_so_transmissions_multiply():
    a = ThicknessStack(4, 4)
    a.add("steel", np.full((4, 4), 0.2, np.float32))
    b = ThicknessStack(4, 4)
    b.add("organic", np.full((4, 4), 3.0, np.float32))
    both = ThicknessStack(4, 4)
    both.add("steel", np.full((4, 4), 0.2, np.float32))
    both.add("organic", np.full((4, 4), 3.0, np.float32))
    for channel in (0, 1):
        t_a, t_b, t_both = (np.exp(-s.attenuation()[channel]) for s in (a, b, both))
        np.testing.assert_allclose(t_both, t_a * t_b, rtol=1e-6)
    steel = MATERIALS["steel"]
    np.testing.assert_allclose(a.attenuation()[0], steel.mu_low * 0.2, rtol=1e-6)


def test_detector_quantises_to_the_bit_depth_with_noise():
    rng = np.random.default_rng(0)
    att = np.full((200, 200), 1.0, np.float32)
    counts = detect(att, rng, 0.01, 1.0, 12)
    assert counts.dtype == np.uint16 and counts.max() <= 4095
    expected = np.exp(-1.0) * 4095 * 0.97
    assert abs(counts.mean() - expected) < 5
    assert counts.std() > 0


def test_metal_is_blue_and_organic_is_orange_in_pseudo_colour():
    rng = np.random.default_rng(1)
    stack = ThicknessStack(60, 90)
    steel = np.zeros((60, 90), np.float32)
    steel[:, 30:60] = 0.4
    organic = np.zeros((60, 90), np.float32)
    organic[:, 60:] = 6.0
    stack.add("steel", steel)
    stack.add("organic", organic)
    low, high = stack.attenuation()
    rgb = pseudo_colour(detect(low, rng, 0.001, 1, 16), detect(high, rng, 0.001, 1, 16))
    belt, metal, organic_px = rgb[:, :25].mean((0, 1)), rgb[:, 35:55].mean((0, 1)), rgb[:, 65:].mean((0, 1))
    assert belt.min() > 240  # empty belt is white
    assert metal[2] > metal[0]  # blue over red
    assert organic_px[0] > organic_px[2]  # orange: red over blue


def test_render_is_deterministic_per_seed_and_boxes_the_item():
    a = render_scan(GEOMETRY, "hard_case", "medium", "pistol", "flat", 0, "none", seed=7)
    b = render_scan(GEOMETRY, "hard_case", "medium", "pistol", "flat", 0, "none", seed=7)
    c = render_scan(GEOMETRY, "hard_case", "medium", "pistol", "flat", 0, "none", seed=8)
    assert np.array_equal(a.high, b.high) and np.array_equal(a.low, b.low)
    assert not np.array_equal(a.high, c.high)
    x0, y0, x1, y1 = a.box
    assert 0 <= x0 < x1 <= 320 and 0 <= y0 < y1 <= 240
    # the item attenuates: its box is darker than the same box in a clean scan
    clean = render_scan(GEOMETRY, "hard_case", "medium", None, "flat", 0, "none", seed=7)
    assert clean.box is None
    assert a.high[y0:y1, x0:x1].mean() < clean.high[y0:y1, x0:x1].mean()


def test_edge_on_projects_narrower_than_flat():
    flat = render_scan(GEOMETRY, "tray", "low", "knife_kitchen", "flat", 0, "none", seed=3)
    edge = render_scan(GEOMETRY, "tray", "low", "knife_kitchen", "edge_on", 0, "none", seed=3)
    area = lambda box: (box[2] - box[0]) * (box[3] - box[1])
    assert area(edge.box) < area(flat.box)


@pytest.mark.parametrize("fmt, dtype, channels", [("png16", np.uint16, 1), ("tiff16", np.uint16, 1), ("pseudo_png", np.uint8, 3)])
def test_simulate_writes_complete_files_and_separate_ground_truth(demo_lab, fmt, dtype, channels):
    steps = list(simulate(demo_lab, "SCN-C", 3, rate_per_minute=0, fmt=fmt, seed=1))
    assert [s.done for s in steps] == [1, 2, 3]
    drop = demo_lab.paths.root / "drop" / "SCN-C"
    files = sorted(drop.iterdir())
    assert len(files) == 3 and not any(f.name.startswith(".") for f in files)
    for f in files:
        image = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
        assert image.dtype == dtype and image.shape[:2] == (480, 640)
        assert (image.ndim == 3) == (channels == 3)
        truth = json.loads((demo_lab.paths.ground_truth / "SCN-C" / f"{f.name}.json").read_text())
        assert truth["file"] == f.name and truth["model"] == "SX-100"
        assert (truth["item"] is None) == (truth["box"] is None)


def test_slow_writes_and_seeds_are_reproducible(demo_lab):
    list(simulate(demo_lab, "SCN-A", 2, rate_per_minute=0, write_mode="slow", seed=5))
    list(simulate(demo_lab, "SCN-B", 2, rate_per_minute=0, seed=5))
    a = sorted((demo_lab.paths.root / "drop" / "SCN-A").iterdir())
    b = sorted((demo_lab.paths.root / "drop" / "SCN-B").iterdir())
    # same model (DX-620), same seed: the same bytes, whatever the write mode
    assert [f.read_bytes() for f in a] == [f.read_bytes() for f in b]


def test_unknown_scanner_is_a_clear_error(demo_lab):
    with pytest.raises(UnknownNameError, match="SCN-A"):
        next(simulate(demo_lab, "SCN-Z", 1))
