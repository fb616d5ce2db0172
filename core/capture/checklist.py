"""A session's checklist on paper, for the bench: every step with its bag,
item, pose, image count and split, a box to tick and room for notes."""

from __future__ import annotations

from pathlib import Path

from core import pdf
from core.capture.pose_geometry import PoseGeometry, pose_geometry
from core.capture.sessions import session_view
from core.lab import Lab

_STATUS_MARK = {"done": "✔", "skipped": "skipped", "active": "▶", "pending": "☐"}


def write_checklist(lab: Lab, session_id: int, path: str | Path) -> Path:
    """Write session ``session_id``'s checklist as a PDF at ``path`` (atomically)."""
    view = session_view(lab, session_id)
    s = view.session
    who = s["technician"] or "(not started)"
    subtitle = (f"Scanner {s['scanner']} at {s['station']} · {s['session_date']} shift {s['shift']} · "
                f"technician {who} · {len(view.steps)} steps, {view.images_wanted} images "
                f"({view.images_done} done)\n"
                "For each step: scan the bag tag (and the item tag), place the item at the pose shown, "
                "scan the images, tick the box.")
    doc = pdf.new_document(f"Capture session #{session_id}", subtitle, landscape=True)
    rows = []
    for st in view.steps:
        item = f"{st['item']} · {st['class_name']}" if st["item"] else "— (clean bag)"
        pose = st["pose"] or "—"
        if st["pose"]:
            pose += f" ({_geometry(st).describe()})"
        note = st["skip_reason"] or st["flag_reason"] or ""
        rows.append((st["position"], st["split"], f"{st['bag']} · {st['luggage_type']}, {st['clutter']}",
                     item, pose, f"{st['images_done']}/{st['images_wanted']}", _STATUS_MARK[st["status"]], note))
    pdf.table(doc, ["#", "split", "bag", "item", "pose", "images", "✓", "notes"], rows,
              widths=[8, 12, 45, 50, 60, 14, 14, 50])
    _pose_pictures(doc, view.steps)
    return pdf.save(doc, path)


def _geometry(step: dict) -> PoseGeometry:
    return pose_geometry(step["placement"], step["rotation_deg"], step["occlusion"], step["pose"],
                         step["pose_description"])


def _pose_pictures(doc, steps: list[dict]) -> dict[str, dict[str, float]]:
    """Each pose of the session drawn once, as the Today view draws it; returns the angles drawn."""
    poses = {st["pose"]: _geometry(st) for st in steps if st["pose"]}
    if not poses:
        return {}
    w, h, gap = 52.0, 40.0, 4.0
    per_row = max(1, int((doc.epw + gap) // (w + gap)))
    if doc.get_y() + 8 + h > doc.h - 16:
        doc.add_page()
    doc.ln(3)
    doc.set_font(pdf.FONT, "B", 10)
    doc.cell(0, 6, "Poses in this session (seen from the X-ray source; inset: side view)", new_x="LMARGIN", new_y="NEXT")
    drawn, y = {}, doc.get_y()
    for k, (name, geometry) in enumerate(sorted(poses.items())):
        if k and k % per_row == 0:
            y += h + gap
            if y + h > doc.h - 16:
                doc.add_page()
                y = doc.get_y()
        x = doc.l_margin + (k % per_row) * (w + gap)
        drawn[name] = pdf.pose_picture(doc, x, y, w, h, geometry, name)
    doc.set_xy(doc.l_margin, y + h + gap)
    return drawn
