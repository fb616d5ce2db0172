"""What a pose looks like: the one reading of a pose's definition that the
Today view's drawing and the printed checklist both draw from.

A pose (inventory ``poses``) has a placement (flat, edge_on, angled, upright),
``rotation_deg`` (the item turned in the bag's plane, seen from the X-ray
source) and what covers it. How far an *angled* item is tilted up from the bag
floor is not a field of its own: the inventory states it in the pose's name
(``angled_45``) or description ("tilted about 45°"); an angled pose that
states none is drawn at ``DEFAULT_TILT_DEG``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

DEFAULT_TILT_DEG = 45.0
# How far the item's long axis rises from the bag floor, per placement.
_PLACEMENT_TILT = {"flat": 0.0, "edge_on": 0.0, "upright": 90.0}
# How thick the item looks from above, per placement (fraction of its length).
_THICKNESS = {"flat": 0.28, "angled": 0.22, "edge_on": 0.06, "upright": 0.28}
_NAME_ANGLE = re.compile(r"(?:^|_)(\d{1,2})(?:deg)?(?:_|$)")
_TEXT_ANGLE = re.compile(r"(\d{1,2}(?:\.\d+)?)\s*(?:°|deg)")


@dataclass(frozen=True)
class PoseGeometry:
    placement: str
    rotation_deg: float  # turned in the bag's plane, clockwise as seen from the source
    tilt_deg: float  # long axis above the bag floor
    occlusion: str
    tilt_stated: bool = True  # False: an angled pose that gives no angle

    def describe(self) -> str:
        """E.g. 'angled, tilted 45°, turned 30°, under metal'."""
        parts = [self.placement.replace("_", " ")]
        if self.placement == "angled":
            parts.append(f"tilted {self.tilt_deg:g}°" + ("" if self.tilt_stated else " (no angle given)"))
        if self.rotation_deg:
            parts.append(f"turned {self.rotation_deg:g}°")
        parts.append("nothing over it" if self.occlusion in ("", "none") else self.occlusion.replace("_", " "))
        return ", ".join(parts)

    def top_view(self) -> tuple[list[tuple[float, float]], float]:
        """The item's outline seen from the source, in units of the item's length
        (centre at 0, 0; y down), and its drawn length: a tilted item looks
        shorter by cos(tilt). Rotated by ``rotation_deg``."""
        length = max(0.12, math.cos(math.radians(self.tilt_deg)))
        thick = _THICKNESS.get(self.placement, 0.2)
        if self.placement == "upright":
            length = thick
        corners = [(-length / 2, -thick / 2), (length / 2, -thick / 2), (length / 2, thick / 2), (-length / 2, thick / 2)]
        a = math.radians(self.rotation_deg)
        cos, sin = math.cos(a), math.sin(a)
        return [(x * cos - y * sin, x * sin + y * cos) for x, y in corners], length

    def side_view(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """The item's long axis seen from the side, from its floor end, unit length (y up)."""
        a = math.radians(self.tilt_deg)
        return (0.0, 0.0), (math.cos(a), math.sin(a))


def pose_geometry(placement: str | None, rotation_deg: float | None, occlusion: str | None,
                  name: str | None = None, description: str | None = None) -> PoseGeometry:
    """The geometry of a pose from its inventory fields (name and description
    give an angled pose's tilt)."""
    placement = placement or "flat"
    tilt, stated = _PLACEMENT_TILT.get(placement), True
    if tilt is None:
        found = _NAME_ANGLE.search(name or "") or _TEXT_ANGLE.search(description or "")
        tilt, stated = (float(found.group(1)), True) if found else (DEFAULT_TILT_DEG, False)
    return PoseGeometry(placement, float(rotation_deg or 0.0), tilt, occlusion or "none", stated)
