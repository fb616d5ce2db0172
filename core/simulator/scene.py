"""Scenes for the simulated scanner: bag, clutter and threat item, per pose.

Geometry is in millimetres, rasterised at the scanner model's pixel pitch.
Every object is a polygon of one material with a thickness along the beam;
the threat item's template comes from its class name (known families get a
recognisable shape, any other class a shape derived from its name), so any
lab's inventory can be simulated.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from core.simulator.physics import ThicknessStack, detect


@dataclass(frozen=True)
class Part:
    points: tuple[tuple[float, float], ...]  # mm, item frame, centred near (0, 0)
    material: str
    thickness_cm: float  # along the beam when lying flat
    depth_mm: float  # extent perpendicular to the item's face (for edge-on)


@dataclass(frozen=True)
class ScannerGeometry:
    width: int
    height: int
    pixel_mm: float
    bit_depth: int
    dual_energy: bool
    gain: float
    noise: float


@dataclass(frozen=True)
class Scan:
    high: np.ndarray  # uint16 counts, the grey image
    low: np.ndarray | None  # uint16 counts, dual-energy models only
    box: tuple[int, int, int, int] | None  # threat item x0, y0, x1, y1 (pixels)


def _rect(x0: float, y0: float, x1: float, y1: float) -> tuple[tuple[float, float], ...]:
    return ((x0, y0), (x1, y0), (x1, y1), (x0, y1))


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 24) -> tuple[tuple[float, float], ...]:
    return tuple((cx + rx * math.cos(2 * math.pi * k / n), cy + ry * math.sin(2 * math.pi * k / n)) for k in range(n))


def _blade(length: float, width: float, x0: float = 0.0) -> tuple[tuple[float, float], ...]:
    return ((x0, -width / 2), (x0 + length * 0.8, -width / 2), (x0 + length, width / 2), (x0, width / 2))


def _knife(rng: np.random.Generator, folded: bool = False) -> list[Part]:
    blade_len, handle_len = rng.uniform(70, 110), rng.uniform(90, 120)
    handle = Part(_rect(-handle_len, -11, 0, 11), "organic", 1.4, 14)
    liner = Part(_rect(-handle_len, -9, 0, 9), "steel", 0.12, 14)
    if folded:
        return [handle, liner, Part(_blade(handle_len * 0.9, 16, -handle_len * 0.95), "steel", 0.25, 3)]
    return [handle, liner, Part(_blade(blade_len, 22), "steel", 0.25, 3)]


def _kitchen_knife(rng: np.random.Generator) -> list[Part]:
    blade_len = rng.uniform(150, 220)
    return [Part(_rect(-115, -12, 0, 12), "organic", 2.0, 20), Part(_blade(blade_len, 38), "steel", 0.2, 2)]


def _scissors(rng: np.random.Generator) -> list[Part]:
    return [
        Part(_blade(100, 12), "steel", 0.3, 4),
        Part(((0, -8), (100, 4), (100, 14), (0, 2)), "steel", 0.3, 4),
        Part(_ellipse(-25, -16, 20, 14), "organic", 0.8, 8),
        Part(_ellipse(-25, 16, 20, 14), "organic", 0.8, 8),
    ]


def _pistol(rng: np.random.Generator) -> list[Part]:
    slide = rng.uniform(170, 200)
    return [
        Part(_rect(0, -16, slide, 16), "steel", 2.4, 25),
        Part(((20, 10), (60, 10), (45, 115), (5, 115)), "organic", 2.8, 30),
        Part(((25, 20), (52, 20), (40, 108), (13, 108)), "steel", 2.0, 22),  # magazine
        Part(_ellipse(70, 24, 14, 10), "steel", 0.5, 10),  # trigger guard
    ]


def _revolver(rng: np.random.Generator) -> list[Part]:
    return [
        Part(_rect(30, -9, 190, 9), "steel", 1.8, 18),
        Part(_ellipse(45, 0, 24, 20), "steel", 3.6, 36),
        Part(((5, 10), (40, 10), (25, 120), (-10, 112)), "organic", 3.0, 30),
    ]


def _rifle_part(rng: np.random.Generator) -> list[Part]:
    return [Part(_rect(0, -14, 260, 14), "steel", 2.4, 28), Part(_rect(40, 14, 90, 60), "steel", 1.6, 20)]


def _magazine(rng: np.random.Generator) -> list[Part]:
    return [Part(((0, 0), (30, 0), (40, 150), (10, 150)), "steel", 2.4, 26)]


def _ammunition(rng: np.random.Generator) -> list[Part]:
    parts = []
    for row in range(3):
        for col in range(5):
            parts.append(Part(_ellipse(col * 13, row * 13, 5, 5, 12), "copper", 1.0, 10))
    return parts


def _pipe_bomb(rng: np.random.Generator) -> list[Part]:
    length = rng.uniform(180, 260)
    return [
        Part(_rect(0, -25, length, 25), "steel", 0.9, 50),
        Part(_rect(8, -20, length - 8, 20), "explosive", 4.0, 40),
        Part(_rect(length, -3, length + 70, 1), "copper", 0.2, 2),
        Part(_rect(length + 60, -15, length + 120, 15), "organic", 2.2, 25),  # battery pack
    ]


def _explosive_block(rng: np.random.Generator) -> list[Part]:
    w, h = rng.uniform(120, 180), rng.uniform(70, 110)
    return [
        Part(_rect(0, 0, w, h), "explosive", 4.5, 45),
        Part(((w * 0.3, h * 0.5), (w + 60, h * 0.45), (w + 60, h * 0.5 + 3), (w * 0.3, h * 0.5 + 3)), "copper", 0.2, 2),
        Part(_rect(w + 50, h * 0.3, w + 85, h * 0.7), "steel", 0.8, 15),
    ]


def _detonator(rng: np.random.Generator) -> list[Part]:
    return [Part(_rect(0, -4, 60, 4), "aluminium", 0.8, 8), Part(_rect(60, -1, 180, 1), "copper", 0.15, 2)]


def _grenade(rng: np.random.Generator) -> list[Part]:
    return [Part(_ellipse(0, 0, 32, 45), "steel", 1.2, 64), Part(_ellipse(0, 0, 26, 38), "explosive", 4.0, 52), Part(_rect(-8, -60, 8, -40), "steel", 1.5, 16)]


def _hammer(rng: np.random.Generator) -> list[Part]:
    return [Part(_rect(-12, 0, 12, 280), "organic", 2.5, 25), Part(_rect(-55, -15, 55, 15), "steel", 2.5, 25)]


def _wrench(rng: np.random.Generator) -> list[Part]:
    return [Part(_rect(0, -8, 200, 8), "steel", 0.8, 10), Part(_ellipse(200, 0, 22, 22), "steel", 0.8, 10)]


def _screwdriver(rng: np.random.Generator) -> list[Part]:
    return [Part(_rect(-100, -14, 0, 14), "organic", 2.6, 28), Part(_rect(0, -3, 110, 3), "steel", 0.6, 6)]


def _lighter(rng: np.random.Generator) -> list[Part]:
    return [Part(_rect(0, 0, 24, 80), "organic", 1.2, 12), Part(_rect(2, 0, 22, 14), "steel", 1.0, 12)]


def _taser(rng: np.random.Generator) -> list[Part]:
    return [Part(_rect(0, -20, 150, 20), "organic", 3.0, 30), Part(_rect(20, -12, 80, 12), "aluminium", 1.5, 20), Part(_rect(150, -10, 158, -6), "steel", 0.6, 5), Part(_rect(150, 6, 158, 10), "steel", 0.6, 5)]


def _generic(rng: np.random.Generator, name: str) -> list[Part]:
    digest = hashlib.sha256(name.encode()).digest()
    length, width = 80 + digest[0], 15 + digest[1] % 60
    material = ("steel", "aluminium", "explosive", "organic")[digest[2] % 4]
    return [Part(_rect(0, 0, length, width), material, 0.5 + digest[3] % 30 / 10, width / 2)]


_TEMPLATES = (
    ("folding_closed", lambda r: _knife(r, folded=True)),
    ("kitchen", _kitchen_knife),
    ("knife", _knife),
    ("box_cutter", _knife),
    ("scissors", _scissors),
    ("revolver", _revolver),
    ("pistol", _pistol),
    ("gun", _pistol),
    ("rifle", _rifle_part),
    ("magazine", _magazine),
    ("ammunition", _ammunition),
    ("pipe", _pipe_bomb),
    ("ied", _explosive_block),
    ("explosive", _explosive_block),
    ("detonator", _detonator),
    ("grenade", _grenade),
    ("hammer", _hammer),
    ("wrench", _wrench),
    ("screwdriver", _screwdriver),
    ("lighter", _lighter),
    ("taser", _taser),
)


def item_parts(class_name: str, rng: np.random.Generator) -> list[Part]:
    for keyword, build in _TEMPLATES:
        if keyword in class_name:
            return build(rng)
    return _generic(rng, class_name)


# Luggage sizes (mm) and the shell each type puts in the beam.
_LUGGAGE = {
    "hard_case": ((680, 460), ("organic", 0.5), True),
    "soft_bag": ((620, 380), ("fabric", 0.8), False),
    "backpack": ((460, 320), ("fabric", 1.0), False),
    "tray": ((700, 500), ("organic", 0.4), False),
    "parcel": ((420, 320), ("organic", 0.35), False),
}

_CLUTTER_COUNT = {"low": 4, "medium": 12, "high": 26}


def _fill(stack: ThicknessStack, material: str, points_px: np.ndarray, thickness: float, inside: np.ndarray | None = None) -> None:
    import cv2

    layer = np.zeros(stack.shape, np.float32)
    cv2.fillPoly(layer, [np.round(points_px).astype(np.int32)], float(thickness))
    if inside is not None:
        layer *= inside
    stack.add(material, layer)


def _place(points: tuple, angle_deg: float, centre: tuple[float, float], sx: float, sy: float, pixel_mm: float) -> np.ndarray:
    p = np.asarray(points, dtype=np.float64)
    p = p - p.mean(axis=0)
    p[:, 0] *= sx
    p[:, 1] *= sy
    a = math.radians(angle_deg)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return (p @ rot.T + np.asarray(centre)) / pixel_mm


def _clutter(stack: ThicknessStack, rng: np.random.Generator, bag_px: tuple[float, float, float, float], pixel_mm: float, count: int, inside: np.ndarray) -> None:
    """Packed objects, kept inside the bag (``inside``: the bag's mask)."""
    x0, y0, x1, y1 = bag_px
    for _ in range(count):
        kind = rng.choice(["clothes", "book", "bottle", "electronics", "cable", "shoe", "toiletry"], p=[0.3, 0.12, 0.12, 0.12, 0.12, 0.12, 0.1])
        cx, cy = rng.uniform(x0 + 20, x1 - 20) * pixel_mm, rng.uniform(y0 + 20, y1 - 20) * pixel_mm
        angle = rng.uniform(0, 180)
        if kind == "clothes":
            pts, material, t = _ellipse(0, 0, rng.uniform(80, 200), rng.uniform(60, 150)), "fabric", rng.uniform(3, 9)
        elif kind == "book":
            pts, material, t = _rect(0, 0, rng.uniform(130, 220), rng.uniform(90, 150)), "organic", rng.uniform(1.5, 4)
        elif kind == "bottle":
            pts, material, t = _ellipse(0, 0, rng.uniform(60, 110), rng.uniform(30, 40)), "water", rng.uniform(5, 8)
        elif kind == "electronics":
            w, h = rng.uniform(80, 300), rng.uniform(60, 200)
            _fill(stack, "aluminium", _place(_rect(0, 0, w, h), angle, (cx, cy), 1, 1, pixel_mm), rng.uniform(0.2, 0.5), inside)
            pts, material, t = _rect(0, 0, w * 0.3, h * 0.2), "steel", rng.uniform(0.1, 0.4)
        elif kind == "cable":
            pts, material, t = _rect(0, 0, rng.uniform(150, 400), 3), "copper", 0.25
        elif kind == "shoe":
            pts, material, t = _ellipse(0, 0, rng.uniform(110, 140), rng.uniform(40, 50)), "organic", rng.uniform(3, 6)
        else:
            pts, material, t = _ellipse(0, 0, rng.uniform(20, 45), rng.uniform(15, 30)), "water", rng.uniform(2, 5)
        _fill(stack, material, _place(pts, angle, (cx, cy), 1, 1, pixel_mm), t, inside)


def _pose_transform(placement: str) -> tuple[float, float]:
    """(scale of the item's width axis, scale of thickness) for a placement."""
    if placement == "edge_on":
        return 0.18, 1 / 0.18
    if placement == "angled":
        return 0.7, 1 / 0.7
    if placement == "upright":
        return 0.35, 1 / 0.35
    return 1.0, 1.0


def render_scan(
    geometry: ScannerGeometry,
    luggage_type: str,
    clutter_level: str,
    class_name: str | None,
    placement: str,
    rotation_deg: float,
    occlusion: str,
    seed: int,
) -> Scan:
    """One scan of a bag (with a threat item of ``class_name``, or clean if None)."""
    import cv2

    rng = np.random.default_rng(seed)
    h, w, pitch = geometry.height, geometry.width, geometry.pixel_mm
    stack = ThicknessStack(h, w)
    size, (shell_material, shell_t), framed = _LUGGAGE.get(luggage_type, _LUGGAGE["soft_bag"])
    field_w, field_h = w * pitch, h * pitch
    bag_w, bag_h = min(size[0], field_w * 0.9), min(size[1], field_h * 0.85)
    centre = (field_w / 2 + rng.uniform(-0.03, 0.03) * field_w, field_h / 2 + rng.uniform(-0.03, 0.03) * field_h)
    bag_poly = _place(_rect(0, 0, bag_w, bag_h), rng.uniform(-4, 4), centre, 1, 1, pitch)
    _fill(stack, shell_material, bag_poly, shell_t)
    if framed:
        for dy in (-0.42, 0.42):
            rod = _place(_rect(0, 0, bag_w * 0.9, 6), 0, (centre[0], centre[1] + dy * bag_h), 1, 1, pitch)
            _fill(stack, "aluminium", rod, 1.2)
    xs, ys = bag_poly[:, 0], bag_poly[:, 1]
    bag_box = (xs.min(), ys.min(), xs.max(), ys.max())
    inside = np.zeros((h, w), np.float32)
    cv2.fillPoly(inside, [np.round(bag_poly).astype(np.int32)], 1.0)
    _clutter(stack, rng, bag_box, pitch, _CLUTTER_COUNT.get(clutter_level, 10), inside)

    box = None
    if class_name is not None:
        parts = item_parts(class_name, rng)
        width_scale, _ = _pose_transform(placement)
        angle = rotation_deg + rng.uniform(-12, 12)
        item_centre = (rng.uniform(bag_box[0] + 0.3 * (bag_box[2] - bag_box[0]), bag_box[0] + 0.7 * (bag_box[2] - bag_box[0])) * pitch,
                       rng.uniform(bag_box[1] + 0.3 * (bag_box[3] - bag_box[1]), bag_box[1] + 0.7 * (bag_box[3] - bag_box[1])) * pitch)
        all_points = np.concatenate([np.asarray(p.points) for p in parts])
        origin = all_points.mean(axis=0)
        item_mask = np.zeros((h, w), np.uint8)
        for part in parts:
            pts = np.asarray(part.points) - origin
            # Tilting the item trades projected width for path length through it.
            if placement == "flat":
                t = part.thickness_cm
            else:
                extent = max(np.ptp(pts[:, 1]), 1.0)
                t = min(part.thickness_cm * max(1.0, extent / max(part.depth_mm, 1.0)) * (1 - width_scale) + part.thickness_cm * width_scale, 12.0)
            a = math.radians(angle)
            rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
            scaled = pts * np.array([1.0, width_scale])
            px = (scaled @ rot.T + np.asarray(item_centre)) / pitch
            _fill(stack, part.material, px, t)
            cv2.fillPoly(item_mask, [np.round(px).astype(np.int32)], 1)
        ys_i, xs_i = np.nonzero(item_mask)
        if len(xs_i):
            box = (int(xs_i.min()), int(ys_i.min()), int(xs_i.max()) + 1, int(ys_i.max()) + 1)
        if occlusion != "none" and box is not None:
            cx, cy = (box[0] + box[2]) / 2 * pitch, (box[1] + box[3]) / 2 * pitch
            bw, bh = (box[2] - box[0]) * pitch * 1.3 + 40, (box[3] - box[1]) * pitch * 1.3 + 40
            if occlusion == "under_metal":
                _fill(stack, "aluminium", _place(_rect(0, 0, bw, bh), rng.uniform(-10, 10), (cx, cy), 1, 1, pitch), 0.6)
                _fill(stack, "steel", _place(_rect(0, 0, bw * 0.4, bh * 0.3), 0, (cx, cy), 1, 1, pitch), 0.2)
            elif occlusion == "under_organic":
                _fill(stack, "organic", _place(_rect(0, 0, bw, bh), rng.uniform(-10, 10), (cx, cy), 1, 1, pitch), 5.0)
            else:
                _clutter(stack, rng, (box[0] - 40, box[1] - 40, box[2] + 40, box[3] + 40), pitch, 6, inside)

    low_att, high_att = stack.attenuation()
    # The detector's point spread softens edges a little.
    low_att = cv2.GaussianBlur(low_att, (0, 0), 0.7)
    high_att = cv2.GaussianBlur(high_att, (0, 0), 0.7)
    high = detect(high_att, rng, geometry.noise, geometry.gain, geometry.bit_depth)
    low = detect(low_att, rng, geometry.noise, geometry.gain, geometry.bit_depth) if geometry.dual_energy else None
    return Scan(high, low, box)
