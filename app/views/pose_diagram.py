"""A drawing of where the item goes: the bag seen from the scanner's view,
the item at its placement and rotation, and what covers it; an angled item
also seen from the side, at its tilt. The geometry (angles, outline) comes
from ``core.capture.pose_geometry``, as the printed checklist's does."""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget

from core.capture.pose_geometry import PoseGeometry, pose_geometry

_ITEM_LENGTH = 0.62  # the item's full length, as a share of the drawing's size
_COVER = {"under_metal": (QColor(120, 150, 200, 190), "metal"), "under_organic": (QColor(230, 160, 80, 170), "organic"),
          "among_clutter": (QColor(150, 150, 150, 150), "clutter")}


class PoseDiagram(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setMinimumSize(220, 150)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._pose: PoseGeometry | None = None
        self._clean = False
        self.drawn: dict = {}  # what the last paint drew: rotation_deg, tilt_deg, label

    def set_pose(self, placement: str | None, rotation_deg: float | None, occlusion: str | None,
                 clean: bool = False, *, name: str | None = None, description: str | None = None) -> None:
        """Show a pose; its ``name`` and ``description`` give an angled pose's tilt."""
        self._clean = clean
        self._pose = None if clean or placement is None else pose_geometry(
            placement, rotation_deg, occlusion, name, description)
        self.setToolTip("clean bag: no item" if self._pose is None else
                        (f"{name}: " if name else "") + self._pose.describe())
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        w, h = self.width(), self.height()
        bag = QRectF(10, 10, w - 20, h - 20)
        p.setPen(QPen(QColor(90, 90, 90), 3))
        p.setBrush(QBrush(QColor(245, 240, 228)))
        p.drawRoundedRect(bag, 14, 14)
        p.setPen(QPen(QColor(160, 160, 160), 1, Qt.PenStyle.DashLine))
        p.drawLine(QPointF(bag.center().x(), bag.top() + 6), QPointF(bag.center().x(), bag.bottom() - 6))
        font = QFont(self.font())
        font.setPointSizeF(max(9.0, font.pointSizeF()))
        p.setFont(font)
        if self._clean or self._pose is None:
            p.setPen(QColor(80, 80, 80))
            p.drawText(bag, Qt.AlignmentFlag.AlignCenter, "clean bag\nno item")
            return
        pose = self._pose
        size = min(bag.width(), bag.height() * 1.6) * _ITEM_LENGTH
        outline, length = pose.top_view()
        centre = bag.center()
        points = [QPointF(centre.x() + x * size, centre.y() + y * size) for x, y in outline]
        p.setPen(QPen(QColor(20, 60, 140), 2))
        p.setBrush(QBrush(QColor(40, 90, 200)))
        if pose.placement == "upright":
            p.drawEllipse(centre, size * length * 0.5, size * length * 0.5)
        else:
            p.drawPolygon(QPolygonF(points))
        # arrow: where the item's tip points
        tip = QPointF((points[1].x() + points[2].x()) / 2, (points[1].y() + points[2].y()) / 2)
        a = math.radians(pose.rotation_deg)
        ux, uy = math.cos(a), math.sin(a)
        p.setPen(QPen(QColor(200, 40, 40), 2))
        start, end = QPointF(tip.x() + 4 * ux, tip.y() + 4 * uy), QPointF(tip.x() + 16 * ux, tip.y() + 16 * uy)
        p.drawLine(start, end)
        for side in (1, -1):
            p.drawLine(end, QPointF(end.x() - 6 * ux - side * 5 * uy, end.y() - 6 * uy + side * 5 * ux))
        drawn_rotation = math.degrees(math.atan2(points[1].y() - points[0].y(), points[1].x() - points[0].x()))
        self.drawn = {"rotation_deg": round(drawn_rotation, 6) % 360, "tilt_deg": 0.0}
        if pose.placement in ("angled", "upright"):
            self.drawn["tilt_deg"] = self._side_view(p, bag, pose)
        else:
            self.drawn["tilt_deg"] = pose.tilt_deg
        cover = _COVER.get(pose.occlusion)
        if cover is not None:
            colour, label = cover
            p.setPen(QPen(colour.darker(150), 1))
            p.setBrush(QBrush(colour, Qt.BrushStyle.Dense4Pattern if label == "clutter" else Qt.BrushStyle.SolidPattern))
            if label == "clutter":
                for dx, dy, cw, ch in ((-0.3, -0.2, 0.18, 0.16), (0.1, -0.28, 0.2, 0.14), (-0.05, 0.12, 0.22, 0.18),
                                       (0.25, 0.08, 0.14, 0.2)):
                    p.drawRect(QRectF(bag.center().x() + dx * bag.width(), bag.center().y() + dy * bag.height(),
                                      cw * bag.width(), ch * bag.height()))
            else:
                block = QRectF(bag.center().x() - size * 0.2, bag.center().y() - size * 0.2, size * 0.4, size * 0.4)
                p.drawRect(block)
                p.setPen(QColor(30, 30, 30))
                p.drawText(block, Qt.AlignmentFlag.AlignCenter, label)
        p.setPen(QColor(60, 60, 60))
        p.drawText(bag.adjusted(8, 4, -8, -4), Qt.AlignmentFlag.AlignBottom | Qt.AlignmentFlag.AlignLeft,
                   pose.describe())
        self.drawn["label"] = pose.describe()

    def _side_view(self, p: QPainter, bag: QRectF, pose: PoseGeometry) -> float:
        """A small side view in the bag's top right corner: the floor and the item at its tilt.
        Returns the angle drawn."""
        box = QRectF(bag.right() - 86, bag.top() + 8, 78, 56)
        p.setPen(QPen(QColor(150, 150, 150), 1))
        p.setBrush(QBrush(QColor(255, 255, 255, 200)))
        p.drawRect(box)
        floor_y, x0 = box.bottom() - 10, box.left() + 12
        p.drawLine(QPointF(box.left() + 4, floor_y), QPointF(box.right() - 4, floor_y))
        (ax, ay), (bx, by) = pose.side_view()
        scale = 40.0
        a, b = QPointF(x0 + ax * scale, floor_y - ay * scale), QPointF(x0 + bx * scale, floor_y - by * scale)
        p.setPen(QPen(QColor(40, 90, 200), 4))
        p.drawLine(a, b)
        p.setPen(QPen(QColor(200, 40, 40), 1))
        p.drawArc(QRectF(x0 - 16, floor_y - 16, 32, 32), 0, int(pose.tilt_deg * 16))
        p.setPen(QColor(40, 40, 40))
        p.drawText(QRectF(x0 + 14, box.top() + 2, box.width() - 28, 16), Qt.AlignmentFlag.AlignRight,
                   f"{pose.tilt_deg:g}°")
        return round(math.degrees(math.atan2(a.y() - b.y(), b.x() - a.x())), 6)
