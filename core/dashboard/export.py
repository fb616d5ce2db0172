"""Dashboard tables to CSV or Excel (pandas), and the weekly PDF report.

The report draws its charts itself (fpdf2 vector shapes), so the command line
writes the same PDF as the window, with no display.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path

from core import pdf
from core.dashboard.classes import class_progress
from core.dashboard.heatmap import Heatmap, quota_heatmap
from core.dashboard.production import Production, production
from core.errors import XLabError
from core.lab import Lab
from core.quota.plans import resolve_plan
from core.quota.status import quota_status

TABLE_FORMATS = (".csv", ".xlsx")


def export_table(rows: Sequence[dict], path: str | Path, columns: Sequence[str] | None = None,
                 sheet: str = "data") -> Path:
    """Write rows as CSV or Excel (by the file's suffix), atomically."""
    import pandas as pd

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_FORMATS:
        raise XLabError(f"export to .csv or .xlsx, not '{path.name}'")
    frame = pd.DataFrame(list(rows), columns=list(columns) if columns else None)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.part{suffix}")
    if suffix == ".csv":
        frame.to_csv(tmp, index=False)
    else:
        frame.to_excel(tmp, index=False, sheet_name=sheet[:31], engine="openpyxl")
    tmp.replace(path)
    return path


def _fill_colour(fill: float | None) -> tuple[int, int, int]:
    if fill is None:
        return (235, 235, 235)
    # red (0 %) through amber to green (100 %)
    f = max(0.0, min(1.0, fill))
    if f < 0.5:
        return (220, int(60 + 300 * f), 60)
    return (int(220 - 340 * (f - 0.5)), 200, int(60 + 40 * (f - 0.5)))


def _heatmap_page(doc, heat: Heatmap) -> None:
    doc.add_page()
    doc.set_font(pdf.FONT, "B", 12)
    done, target = heat.totals()
    doc.cell(0, 7, f"Quota fill, {heat.split}: {heat.rows_dim} x {heat.cols_dim} — {done:,} of {target:,} setups "
             f"({done / target:.0%})" if target else "Quota fill: no targets", new_x="LMARGIN", new_y="NEXT")
    label_w = 42
    n_cols = max(1, len(heat.col_labels))
    cell_w = min(24.0, (doc.epw - label_w) / n_cols)
    cell_h = min(6.0, (doc.h - doc.get_y() - 24) / max(1, len(heat.row_labels) + 1))
    doc.set_font(pdf.FONT, size=max(4.5, min(7.0, cell_h * 1.2)))
    x0, y = doc.l_margin, doc.get_y()
    for c, label in enumerate(heat.col_labels):
        doc.set_xy(x0 + label_w + c * cell_w, y)
        doc.cell(cell_w, cell_h, label[:14], align="C")
    for r, label in enumerate(heat.row_labels):
        y += cell_h
        doc.set_xy(x0, y)
        doc.cell(label_w, cell_h, label[:30])
        for c in range(len(heat.col_labels)):
            fill = heat.fill(r, c)
            doc.set_fill_color(*_fill_colour(fill))
            doc.set_xy(x0 + label_w + c * cell_w, y)
            doc.cell(cell_w, cell_h, "" if fill is None else f"{fill:.0%}", border=1, align="C", fill=True)
    doc.set_y(y + cell_h + 2)


def _production_page(doc, prod: Production) -> None:
    doc.add_page()
    doc.set_font(pdf.FONT, "B", 12)
    doc.cell(0, 7, f"Production {prod.month}: {prod.month_images:,} images; target {prod.settings.monthly_target:,} "
             f"({prod.month_target_to_date:,} by today); recent rate {prod.recent_rate:,.0f}/working day",
             new_x="LMARGIN", new_y="NEXT")
    x0, y0 = doc.l_margin + 12, doc.get_y() + 4
    width, height = doc.epw - 14, 70
    top = max([prod.settings.monthly_target, *(d["cumulative"] for d in prod.days)]) or 1
    day_top = max([1, *(d["images"] for d in prod.days)])
    n = len(prod.days)
    bar_w = width / n
    doc.set_draw_color(150)
    doc.rect(x0, y0, width, height)
    doc.set_font(pdf.FONT, size=6)
    for k, d in enumerate(prod.days):
        h = height * 0.45 * d["images"] / day_top
        doc.set_fill_color(*((90, 130, 200) if d["working"] else (200, 200, 200)))
        if h > 0:
            doc.rect(x0 + k * bar_w + 0.3, y0 + height - h, bar_w - 0.6, h, style="F")
        if k % 5 == 0:
            doc.text(x0 + k * bar_w, y0 + height + 3.5, d["day"][5:])

    def line(key: str, colour: tuple[int, int, int]) -> None:
        doc.set_draw_color(*colour)
        doc.set_line_width(0.6)
        points = [(x0 + (k + 1) * bar_w, y0 + height - height * d[key] / top) for k, d in enumerate(prod.days)]
        for (xa, ya), (xb, yb) in zip([(x0, y0 + height), *points], points):
            doc.line(xa, ya, xb, yb)
        doc.set_line_width(0.2)

    line("target_cumulative", (200, 80, 60))
    line("cumulative", (30, 120, 50))
    doc.set_draw_color(0)
    doc.set_y(y0 + height + 6)
    doc.set_font(pdf.FONT, size=8)
    doc.cell(0, 5, "bars: images per day (grey: not a working day) · green: cumulative · red: monthly target "
             f"(max {top:,})", new_x="LMARGIN", new_y="NEXT")
    doc.ln(2)
    pdf.table(doc, ["forecast", "images left", "working days", "expected"],
              [(f.what, f"{f.remaining_images:,}", "—" if f.working_days is None else f"{f.working_days:.1f}",
                "no recent production" if f.eta is None else f.eta.isoformat()) for f in prod.forecasts],
              widths=[80, 30, 30, 40])
    doc.ln(3)
    pdf.table(doc, ["scanner", "station", "images"], [(r["scanner"], r["station"], f"{r['images']:,}")
                                                      for r in prod.by_scanner], widths=[40, 40, 30])
    doc.ln(3)
    pdf.table(doc, ["technician", "images"], [(r["technician"], f"{r['images']:,}") for r in prod.by_technician],
              widths=[60, 30])


def write_report(lab: Lab, path: str | Path, *, plan: str | None = None, month: str | None = None,
                 rows: str = "class", cols: str = "luggage_type", today: date | None = None) -> Path:
    """The weekly meeting's PDF: per-class progress, quota fill, production and forecasts."""
    plan_row = resolve_plan(lab.catalog, plan)
    status = quota_status(lab.catalog, plan_row["id"])
    prod = production(lab.catalog, status, month, today)
    classes = class_progress(lab.catalog, status)
    totals = status.totals()
    doc = pdf.new_document(
        f"XLab weekly report — {plan_row['name']} v{plan_row['version']}",
        f"{lab.paths.root} · {datetime.now():%Y-%m-%d %H:%M} · test set {totals['test_done']:,}/"
        f"{totals['test_target']:,} setups ({totals['test_fill']:.0%}), train {totals['train_done']:,}/"
        f"{totals['train_target']:,} ({totals['train_fill']:.0%}) · "
        f"{sum(1 for c in classes if c['blocks'])} class(es) block the next model", landscape=True)

    def pct(v):
        return "—" if v is None else f"{v:.1%}"

    pdf.table(doc, ["class", "test", "train", "ratio", "step", "detection (95% CI)", "target", "false alarms",
                    "verdict"],
              [(c["class_name"], f"{c['test_done']}/{c['test_target']}", f"{c['train_done']}/{c['train_target']}",
                f"{c['ratio']:.2f}", f"{c['ratio_step']}:1",
                "—" if c["detection_rate"] is None else f"{pct(c['detection_rate'])} ({pct(c['dr_low'])}–{pct(c['dr_high'])})",
                pct(c["dr_target"]), pct(c["false_alarm_rate"]), c["verdict"] + (" ■" if c["blocks"] else ""))
               for c in classes],
              widths=[45, 20, 20, 14, 12, 45, 16, 22, 40], font_size=8, line_height=5)
    _heatmap_page(doc, quota_heatmap(status, rows, cols, "test"))
    _production_page(doc, prod)
    return pdf.save(doc, path)
