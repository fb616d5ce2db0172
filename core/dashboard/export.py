"""Dashboard tables to CSV or Excel (pandas), and the weekly PDF report.

The report's charts are PNGs drawn by matplotlib's Agg backend
(``core.dashboard.charts``, no display, no Qt) and placed by fpdf2, so the
command line writes the same PDF as the window.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path

from core import colours, pdf
from core.dashboard.classes import BLOCKING, VERDICTS, class_progress
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


def _heatmap_page(doc, heat: Heatmap) -> None:
    from core.dashboard.charts import heatmap_png

    doc.add_page()
    doc.set_font(pdf.FONT, "B", 12)
    done, target = heat.totals()
    doc.cell(0, 7, f"Quota fill, {heat.split}: {heat.rows_dim} x {heat.cols_dim} — {done:,} of {target:,} setups "
             f"({done / target:.0%})" if target else "Quota fill: no targets yet — publish a quota plan",
             new_x="LMARGIN", new_y="NEXT")
    if not heat.row_labels:
        return
    height = doc.h - doc.get_y() - 18
    pdf.image(doc, heatmap_png(heat, doc.epw, height), doc.epw, height)


def _production_page(doc, prod: Production) -> None:
    from core.dashboard.charts import production_png

    doc.add_page()
    doc.set_font(pdf.FONT, "B", 12)
    doc.cell(0, 7, f"Production {prod.month}", new_x="LMARGIN", new_y="NEXT")
    doc.set_font(pdf.FONT, size=9)
    doc.multi_cell(0, 4.5, prod.summary(), new_x="LMARGIN", new_y="NEXT")
    doc.ln(1)
    pdf.image(doc, production_png(prod, doc.epw, 108), doc.epw, 108)
    doc.ln(2)
    doc.set_font(pdf.FONT, "B", 10)
    doc.cell(0, 6, "Forecasts", new_x="LMARGIN", new_y="NEXT")
    doc.set_font(pdf.FONT, size=8)
    doc.multi_cell(0, 4, f"Lab-wide forecasts extrapolate {prod.rate.basis}. Each class's test set extrapolates "
                         "that class's own test images over the same days.", new_x="LMARGIN", new_y="NEXT")
    doc.ln(1)

    def eta(f) -> str:
        if f.eta is not None:
            return f.eta.isoformat()
        return "no images yet" if prod.empty else "no recent production"

    pdf.table(doc, ["forecast", "images left", "rate / working day", "working days", "expected"],
              [(f.what, f"{f.remaining_images:,}", "—" if not f.rate else f"{f.rate:,.0f}" if f.rate >= 100 else f"{f.rate:.1f}",
                "—" if f.working_days is None else f"{f.working_days:.1f}", eta(f)) for f in prod.forecasts],
              widths=[80, 25, 30, 25, 35], font_size=8, line_height=5)
    doc.ln(3)
    pdf.table(doc, ["scanner", "station", "images"], [(r["scanner"], r["station"], f"{r['images']:,}")
                                                      for r in prod.by_scanner], widths=[40, 40, 30])
    doc.ln(3)
    pdf.table(doc, ["technician", "images"], [(r["technician"], f"{r['images']:,}") for r in prod.by_technician],
              widths=[60, 30])


def write_report(lab: Lab, path: str | Path, *, plan: str | None = None, month: str | None = None,
                 rows: str = "class", cols: str = "luggage_type", today: date | None = None,
                 now: datetime | None = None) -> Path:
    """The weekly meeting's PDF: per-class progress, quota fill, production and forecasts
    (``today``/``now``: as in ``production``)."""
    plan_row = resolve_plan(lab.catalog, plan)
    status = quota_status(lab.catalog, plan_row["id"])
    prod = production(lab.catalog, status, month, today, now)
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

    verdict_fill = {v: colours.tint(rgb, 0.6) for v, rgb in colours.VERDICT_COLOURS.items()}
    pdf.legend(doc, [(f"{v}{' (blocks the next model ■)' if v in BLOCKING else ''}", verdict_fill[v])
                     for v in VERDICTS])
    pdf.table(doc, ["class", "test", "train", "ratio", "step", "detection (95% CI)", "target", "false alarms",
                    "verdict"],
              [(c["class_name"], f"{c['test_done']}/{c['test_target']}", f"{c['train_done']}/{c['train_target']}",
                f"{c['ratio']:.2f}", f"{c['ratio_step']}:1",
                "—" if c["detection_rate"] is None else f"{pct(c['detection_rate'])} ({pct(c['dr_low'])}–{pct(c['dr_high'])})",
                pct(c["dr_target"]), pct(c["false_alarm_rate"]), c["verdict"] + (" ■" if c["blocks"] else ""))
               for c in classes],
              widths=[45, 20, 20, 14, 12, 45, 16, 22, 40], font_size=8, line_height=5,
              fills=[[None] * 8 + [verdict_fill.get(c["verdict"])] for c in classes])
    _heatmap_page(doc, quota_heatmap(status, rows, cols, "test"))
    _production_page(doc, prod)
    return pdf.save(doc, path)
