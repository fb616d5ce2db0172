"""PDF documents for the bench and for meetings (fpdf2, fonts shipped with XLab).

The DejaVu fonts in ``resources/fonts`` cover any name a technician types;
nothing is fetched at run time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from core.resources import resource

FONT = "DejaVu"


def new_document(title: str, subtitle: str = "", landscape: bool = False):
    """An A4 document with XLab's fonts, a header line and numbered footer."""
    from fpdf import FPDF

    class _Document(FPDF):
        def footer(self) -> None:
            self.set_y(-12)
            self.set_font(FONT, size=8)
            self.set_text_color(110)
            self.cell(0, 8, f"{title} · printed {datetime.now():%Y-%m-%d %H:%M} · page {self.page_no()}/{{nb}}",
                      align="C")
            self.set_text_color(0)

    pdf = _Document(orientation="L" if landscape else "P", format="A4")
    pdf.add_font(FONT, "", str(resource("fonts", "DejaVuSans.ttf")))
    pdf.add_font(FONT, "B", str(resource("fonts", "DejaVuSans-Bold.ttf")))
    pdf.set_title(title)
    pdf.set_creator("XLab")
    pdf.set_auto_page_break(True, margin=16)
    pdf.add_page()
    pdf.set_font(FONT, "B", 16)
    pdf.cell(0, 9, title, new_x="LMARGIN", new_y="NEXT")
    if subtitle:
        pdf.set_font(FONT, size=10)
        pdf.multi_cell(0, 5, subtitle, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    return pdf


def table(pdf, header: Sequence[str], rows: Sequence[Sequence[Any]], widths: Sequence[float] | None = None,
          font_size: float = 9, line_height: float = 6.5,
          fills: Sequence[Sequence[tuple[int, int, int] | None]] | None = None) -> None:
    """A bordered table that repeats its header on each page; ``fills`` gives
    each cell of each row a background colour (None: white)."""
    from fpdf.fonts import FontFace

    pdf.set_font(FONT, size=font_size)
    pdf.set_fill_color(255, 255, 255)
    pdf.set_draw_color(0, 0, 0)
    total = pdf.epw
    widths = list(widths or [total / len(header)] * len(header))
    scale = total / sum(widths)
    widths = [w * scale for w in widths]
    with pdf.table(col_widths=widths, line_height=line_height, first_row_as_headings=True,
                   repeat_headings=1, text_align="LEFT") as t:
        t.row([str(h) for h in header])
        for k, values in enumerate(rows):
            row = t.row()
            for j, v in enumerate(values):
                fill = fills[k][j] if fills is not None and j < len(fills[k]) else None
                row.cell("" if v is None else str(v), style=FontFace(fill_color=fill) if fill else None)


def legend(pdf, entries: Sequence[tuple[str, tuple[int, int, int]]], font_size: float = 8) -> None:
    """One line of coloured swatches with their labels."""
    pdf.set_font(FONT, size=font_size)
    x, y = pdf.get_x(), pdf.get_y()
    for label, rgb in entries:
        pdf.set_fill_color(*rgb)
        pdf.set_draw_color(120)
        pdf.rect(x, y + 1, 3.5, 3.5, style="DF")
        pdf.set_xy(x + 4.5, y)
        width = pdf.get_string_width(label) + 2
        pdf.cell(width, 5.5, label)
        x += width + 8
    pdf.set_draw_color(0)
    pdf.set_fill_color(255, 255, 255)
    pdf.set_xy(pdf.l_margin, y + 6)


def image(pdf, png: bytes, width: float, height: float | None = None) -> None:
    """A PNG (e.g. a chart) at the current position, the given width in mm; the cursor moves below it."""
    import io

    info = pdf.image(io.BytesIO(png), x=pdf.l_margin, y=pdf.get_y(), w=width, h=height or 0)
    pdf.set_y(pdf.get_y() + (info.rendered_height if info is not None else height or 0) + 1)


def save(pdf, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    pdf.output(str(tmp))
    tmp.replace(path)
    return path


def pose_picture(pdf, x: float, y: float, w: float, h: float, geometry, title: str) -> dict[str, float]:
    """A pose drawn from ``core.capture.pose_geometry``: the bag from the source
    with the item at its rotation (and an arrow at its tip), an angled item's
    side view at its tilt, the title and description under it. Returns the
    angles drawn (rotation_deg, tilt_deg)."""
    import math

    pdf.set_draw_color(90)
    pdf.set_fill_color(245, 240, 228)
    bag_h = h - 9
    pdf.rect(x, y, w, bag_h, style="DF", round_corners=True, corner_radius=2)
    cx, cy = x + w / 2, y + bag_h / 2
    size = min(w, bag_h * 1.6) * 0.62
    outline, length = geometry.top_view()
    points = [(cx + px * size, cy + py * size) for px, py in outline]
    pdf.set_draw_color(20, 60, 140)
    pdf.set_fill_color(40, 90, 200)
    if geometry.placement == "upright":
        pdf.circle(cx, cy, size * length * 0.5, style="DF")
    else:
        pdf.polygon(points, style="DF")
    a = math.radians(geometry.rotation_deg)
    tip = ((points[1][0] + points[2][0]) / 2, (points[1][1] + points[2][1]) / 2)
    pdf.set_draw_color(200, 40, 40)
    end = (tip[0] + 4 * math.cos(a), tip[1] + 4 * math.sin(a))
    pdf.line(tip[0] + math.cos(a), tip[1] + math.sin(a), *end)
    drawn = {"rotation_deg": round(math.degrees(math.atan2(points[1][1] - points[0][1], points[1][0] - points[0][0])), 6) % 360,
             "tilt_deg": geometry.tilt_deg}
    if geometry.placement in ("angled", "upright"):
        bw, bh = min(18.0, w * 0.4), min(12.0, bag_h * 0.45)
        bx, by = x + w - bw - 1.5, y + 1.5
        pdf.set_draw_color(150)
        pdf.set_fill_color(255, 255, 255)
        pdf.rect(bx, by, bw, bh, style="DF")
        floor, x0, scale = by + bh - 2, bx + 2.5, min(bw - 5, bh - 3.5)
        pdf.line(bx + 1, floor, bx + bw - 1, floor)
        (ax, ay), (ex, ey) = geometry.side_view()
        a0, b0 = (x0 + ax * scale, floor - ay * scale), (x0 + ex * scale, floor - ey * scale)
        pdf.set_draw_color(40, 90, 200)
        pdf.set_line_width(0.8)
        pdf.line(*a0, *b0)
        pdf.set_line_width(0.2)
        drawn["tilt_deg"] = round(math.degrees(math.atan2(a0[1] - b0[1], b0[0] - a0[0])), 6)
        pdf.set_font(FONT, size=6)
        pdf.set_text_color(40)
        pdf.text(bx + bw - 7, by + 3.5, f"{geometry.tilt_deg:g}°")
    pdf.set_draw_color(0)
    pdf.set_text_color(0)
    pdf.set_xy(x, y + bag_h + 0.5)
    pdf.set_font(FONT, "B", 7)
    pdf.cell(w, 3.5, title, align="C")
    pdf.set_xy(x, y + bag_h + 4)
    pdf.set_font(FONT, size=6)
    pdf.cell(w, 3.5, geometry.describe(), align="C")
    return drawn
