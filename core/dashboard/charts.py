"""The report's charts as PNG images (matplotlib, Agg: no display, no Qt), in
the colours of ``core.colours`` so paper matches the window.

matplotlib is imported inside the functions: the window and the command
line start without it.
"""

from __future__ import annotations

import calendar
import io
from datetime import date

from core import colours
from core.dashboard.heatmap import Heatmap
from core.dashboard.production import Production

DPI = 150


def _figure(width_mm: float, height_mm: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_mm / 25.4, height_mm / 25.4), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    """The chart as an opaque PNG: no alpha channel, so the PDF embeds one
    image (an alpha channel becomes a second, masking image in a PDF)."""
    from PIL import Image

    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI, facecolor="white")
    out.seek(0)
    rgb = io.BytesIO()
    Image.open(out).convert("RGB").save(rgb, format="PNG", optimize=True)
    return rgb.getvalue()


def _rgb(name_or_rgb) -> tuple[float, float, float]:
    """A ``colours.SERIES`` name or an RGB triple, as matplotlib's 0..1 floats."""
    rgb = colours.SERIES[name_or_rgb] if isinstance(name_or_rgb, str) else name_or_rgb
    return tuple(c / 255 for c in rgb)


def _thousands(axis) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    axis.set_major_locator(MaxNLocator(nbins=6, integer=True, min_n_ticks=3))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}"))


def production_png(prod: Production, width_mm: float = 260, height_mm: float = 105) -> bytes:
    return _png(production_figure(prod, width_mm, height_mm))


def production_figure(prod: Production, width_mm: float = 260, height_mm: float = 105):
    """Two panels sharing the days of the month: cumulative images against the
    target (top) and images per day with the quarantine rate (bottom), each on
    its own labelled scale. Days after today are left empty."""
    from matplotlib.patches import Patch
    from matplotlib.ticker import PercentFormatter

    fig = _figure(width_mm, height_mm)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2], "hspace": 0.12})
    first = date.fromisoformat(prod.days[0]["day"])
    n = len(prod.days)
    x = list(range(1, n + 1))
    # produced: from the lab's first image (a zero point the day before), up to today
    began = prod.target_from.isoformat() if prod.target_from else "9999"
    past = [(k + 1, d) for k, d in enumerate(prod.days) if d["cumulative"] is not None and d["day"] >= began]
    if past and past[0][0] > 1:
        past.insert(0, (past[0][0] - 1, {"cumulative": 0}))

    # cumulative vs target
    top.plot(x, [d["target_cumulative"] for d in prod.days], color=_rgb("target"), linestyle="--", linewidth=1.6,
             label=f"target ({prod.month_target:,} this month)")
    if past:
        top.plot([k for k, _ in past], [d["cumulative"] for _, d in past], color=_rgb("produced"), linewidth=2.2,
                 marker="o", markersize=2.5, label=f"produced ({prod.month_images:,})")
    if prod.month_end_projection is not None and past:
        k, d = past[-1]
        top.plot([k, n], [d["cumulative"], prod.month_end_projection], color=_rgb("produced"), linestyle=":",
                 linewidth=1.4, label=f"projection at the recent rate ({prod.month_end_projection:,})")
    high = max([prod.month_target, prod.month_end_projection or 0, *(d["cumulative"] for _, d in past)]) or 1
    top.set_ylim(0, high * 1.08)
    top.set_ylabel("images (cumulative)")
    _thousands(top.yaxis)
    top.grid(axis="y", alpha=0.3)
    top.legend(loc="upper left", fontsize=7, frameon=False)
    top.set_title("Cumulative images against the monthly target", fontsize=9, loc="left")

    # images per day, quarantine rate on its own axis
    bars = [(k + 1, d) for k, d in enumerate(prod.days) if d["images"] is not None]
    colour = [_rgb("today") if d["today"] else _rgb("daily") if d["working"] else _rgb("non_working")
              for _, d in bars]
    bottom.bar([k for k, _ in bars], [d["images"] for _, d in bars], width=0.8, color=colour)
    day_top = max([d["images"] for _, d in bars] or [0])
    bottom.set_ylim(0, max(10, day_top) * 1.15)
    bottom.set_ylabel("images per day")
    _thousands(bottom.yaxis)
    bottom.grid(axis="y", alpha=0.3)
    rate_axis = bottom.twinx()
    rates = [(k, d["quarantine_rate"]) for k, d in bars]
    rate_axis.plot([k for k, _ in rates], [r for _, r in rates], color=_rgb("quarantine"), linewidth=1, marker=".",
                   markersize=3)
    rate_axis.set_ylim(0, max(0.05, max((r for _, r in rates), default=0.0)) * 1.2)
    rate_axis.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    rate_axis.set_ylabel("quarantined", color=_rgb("quarantine"))
    rate_axis.tick_params(axis="y", colors=_rgb("quarantine"), labelsize=7)
    handles = [Patch(color=_rgb("daily"), label="working day"), Patch(color=_rgb("non_working"), label="not a working day"),
               Patch(color=_rgb("today"), label="today (not over)"),
               Patch(color=_rgb("quarantine"), label="quarantine rate (right axis)")]
    bottom.legend(handles=handles, loc="upper left", fontsize=6.5, frameon=False, ncols=4)
    bottom.set_xlim(0.4, n + 0.6)
    bottom.set_xticks([k for k in x if k == 1 or k % 5 == 0])
    bottom.set_xlabel(f"day of {calendar.month_name[first.month]} {first.year}")
    for ax in (top, bottom, rate_axis):
        ax.tick_params(labelsize=7)
    if prod.empty:
        top.text(0.5, 0.5, "no images yet — start a capture session or import an archive", transform=top.transAxes,
                 ha="center", va="center", fontsize=10, color="0.3")
    fig.subplots_adjust(left=0.08, right=0.92, top=0.93, bottom=0.12)
    return fig


def heatmap_png(heat: Heatmap, width_mm: float, height_mm: float) -> bytes:
    return _png(heatmap_figure(heat, width_mm, height_mm))


def heatmap_figure(heat: Heatmap, width_mm: float, height_mm: float):
    """The fill grid with a labelled colour bar (grey: no target), percentages in
    the cells while they are large enough to read."""
    import numpy as np
    from matplotlib.colors import LinearSegmentedColormap
    from matplotlib.ticker import PercentFormatter

    n_rows, n_cols = len(heat.row_labels), len(heat.col_labels)
    grid = np.full((max(1, n_rows), max(1, n_cols)), np.nan)
    for r in range(n_rows):
        for c in range(n_cols):
            fill = heat.fill(r, c)
            if fill is not None:
                grid[r, c] = min(1.0, fill)
    cmap = LinearSegmentedColormap.from_list(
        "xlab_fill", [(pos, _rgb(rgb)) for pos, rgb in colours.FILL_STOPS]).with_extremes(bad=_rgb(colours.NO_TARGET))
    fig = _figure(width_mm, height_mm)
    ax = fig.add_axes((0.2, 0.04, 0.66, 0.86))
    image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto",
                      interpolation="nearest")
    label_size = max(4.0, min(8.0, 260 / max(1, n_rows)))
    ax.set_yticks(range(n_rows), heat.row_labels, fontsize=label_size)
    ax.set_xticks(range(n_cols), heat.col_labels, fontsize=min(8.0, label_size + 1))
    ax.xaxis.tick_top()
    ax.set_xlabel(heat.cols_dim.replace("_", " "), fontsize=8)
    ax.xaxis.set_label_position("top")
    ax.set_ylabel(heat.rows_dim.replace("_", " "), fontsize=8)
    ax.tick_params(length=0)
    if n_rows * n_cols <= 400:
        for r in range(n_rows):
            for c in range(n_cols):
                if not np.isnan(grid[r, c]):
                    text = _rgb(colours.text_on(colours.fill_rgb(grid[r, c])))
                    ax.text(c, r, f"{heat.fill(r, c):.0%}", ha="center", va="center", fontsize=label_size * 0.9,
                            color=text)
    bar_ax = fig.add_axes((0.89, 0.04, 0.02, 0.86))
    bar = fig.colorbar(image, cax=bar_ax)
    bar.set_label(colours.FILL_LABEL + " · grey: no target", fontsize=8)
    bar.ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    bar.set_ticks([0, 0.25, 0.5, 0.75, 1.0])
    bar.ax.tick_params(labelsize=7)
    return fig
