"""A session's checklist on paper, for the bench: every step with its bag,
item, pose, image count and split, a box to tick and room for notes."""

from __future__ import annotations

from pathlib import Path

from core import pdf
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
            pose += f" ({st['placement']}, {st['rotation_deg']:g}°, {st['occlusion']})"
        note = st["skip_reason"] or st["flag_reason"] or ""
        rows.append((st["position"], st["split"], f"{st['bag']} · {st['luggage_type']}, {st['clutter']}",
                     item, pose, f"{st['images_done']}/{st['images_wanted']}", _STATUS_MARK[st["status"]], note))
    pdf.table(doc, ["#", "split", "bag", "item", "pose", "images", "✓", "notes"], rows,
              widths=[8, 12, 45, 50, 60, 14, 14, 50])
    return pdf.save(doc, path)
