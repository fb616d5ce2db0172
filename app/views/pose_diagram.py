"""A drawing of where the item goes: the bag seen from the scanner's view,
the item at its placement and rotation, and what covers it."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget

# How thick the item looks from above, per placement (fraction of its length).
_THICKNESS = {"flat": 0.28, "angled": 0.18, "edge_on": 0.06, "upright": 0.28}
_LENGTH = {"flat": 0.62, "angled": 0.5, "edge_on": 0.62, "upright": 0.28}
_COVER = {"under_metal": (QColor(120, 150, 200, 190), "metal"), "under_organic": (QColor(230, 160, 80, 170), "organic"),
          "among_clutter": (QColor(150, 150, 150, 150), "clutter")}


class PoseDiagram(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setMinimumSize(220, 150)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._pose: dict | None = None
        self._clean = False

    def set_pose(self, placement: str | None, rotation_deg: float | None, occlusion: str | None,
                 clean: bool = False) -> None:
        self._clean = clean
        self._pose = None if clean or placement is None else {
            "placement": placement, "rotation": float(rotation_deg or 0.0), "occlusion": occlusion or "none"}
        self.setToolTip("clean bag: no item" if clean else
                        f"{placement}, rotated {rotation_deg or 0:g}°, {occlusion or 'nothing'} over it")
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
        size = min(bag.width(), bag.height() * 1.6)
        length = size * _LENGTH.get(pose["placement"], 0.5)
        thick = max(4.0, size * _THICKNESS.get(pose["placement"], 0.2))
        p.save()
        p.translate(bag.center())
        p.rotate(pose["rotation"])
        item = QRectF(-length / 2, -thick / 2, length, thick)
        p.setPen(QPen(QColor(20, 60, 140), 2))
        p.setBrush(QBrush(QColor(40, 90, 200)))
        if pose["placement"] == "angled":
            # a slanted outline: one end raised towards the source
            poly = QPolygonF([item.topLeft(), QPointF(item.right(), item.top() - thick * 0.8),
                              QPointF(item.right(), item.bottom() - thick * 0.8), item.bottomLeft()])
            p.drawPolygon(poly)
        elif pose["placement"] == "upright":
            p.drawEllipse(item.center(), thick * 0.9, thick * 0.9)
        else:
            p.drawRoundedRect(item, 3, 3)
        # arrow: where the item's tip points
        p.setPen(QPen(QColor(200, 40, 40), 2))
        p.drawLine(QPointF(item.right() + 4, 0), QPointF(item.right() + 16, 0))
        p.drawLine(QPointF(item.right() + 16, 0), QPointF(item.right() + 10, -5))
        p.drawLine(QPointF(item.right() + 16, 0), QPointF(item.right() + 10, 5))
        p.restore()
        cover = _COVER.get(pose["occlusion"])
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
                block = QRectF(bag.center().x() - length * 0.25, bag.center().y() - thick * 1.1, length * 0.5, thick * 2.2)
                p.drawRect(block)
                p.setPen(QColor(30, 30, 30))
                p.drawText(block, Qt.AlignmentFlag.AlignCenter, label)
        p.setPen(QColor(60, 60, 60))
        p.drawText(bag.adjusted(8, 4, -8, -4), Qt.AlignmentFlag.AlignBottom | Qt.AlignmentFlag.AlignLeft,
                   f"{pose['placement'].replace('_', ' ')} · {pose['rotation']:g}°"
                   + ("" if pose["occlusion"] == "none" else f" · {pose['occlusion'].replace('_', ' ')}"))
