"""XLab's colour scales, as data: the window (pyqtgraph colour maps, table
backgrounds) and the printed reports (matplotlib) build theirs from these
stops, so a fill or a verdict looks the same on screen and on paper.

Colours are (red, green, blue) in 0..255.
"""

from __future__ import annotations

RGB = tuple[int, int, int]

# Quota fill: red (nothing captured) through amber to green (target reached).
FILL_STOPS: tuple[tuple[float, RGB], ...] = ((0.0, (215, 48, 39)), (0.5, (250, 200, 70)), (1.0, (40, 160, 80)))
NO_TARGET: RGB = (225, 225, 225)  # a cell with nothing to capture
FILL_LABEL = "fill (% of target setups)"

# Per-class verdicts (core.dashboard.classes.VERDICTS): red blocks the next
# model for lack of test data, orange for lack of train data.
VERDICT_COLOURS: dict[str, RGB] = {
    "test set incomplete": (215, 48, 39),
    "train incomplete": (240, 140, 40),
    "awaiting evaluation": (150, 150, 150),
    "meets KPI": (40, 160, 80),
    "needs next step": (230, 190, 40),
}

# Production charts.
SERIES: dict[str, RGB] = {
    "produced": (30, 120, 50),
    "target": (200, 80, 60),
    "daily": (90, 130, 200),
    "non_working": (190, 190, 190),
    "today": (150, 180, 230),  # today's bar: the day is not over
    "quarantine": (170, 40, 150),
}

# Dataset subsets (the Datasets area's distribution charts).
SUBSETS: dict[str, RGB] = {"test": (200, 80, 60), "train": (90, 130, 200), "validation": (240, 170, 50)}


def fill_rgb(fraction: float | None) -> RGB:
    """The fill scale at ``fraction`` (clamped to 0..1); None: no target."""
    if fraction is None:
        return NO_TARGET
    f = max(0.0, min(1.0, float(fraction)))
    for (lo, a), (hi, b) in zip(FILL_STOPS, FILL_STOPS[1:]):
        if f <= hi:
            t = 0.0 if hi == lo else (f - lo) / (hi - lo)
            return tuple(round(x + (y - x) * t) for x, y in zip(a, b))  # type: ignore[return-value]
    return FILL_STOPS[-1][1]


def tint(rgb: RGB, amount: float) -> RGB:
    """``rgb`` mixed with white (``amount`` 0: unchanged, 1: white): a background text stays readable on."""
    return tuple(round(c + (255 - c) * amount) for c in rgb)  # type: ignore[return-value]


def text_on(rgb: RGB) -> RGB:
    """Black or white, whichever reads better on ``rgb``."""
    r, g, b = rgb
    return (20, 20, 20) if 0.299 * r + 0.587 * g + 0.114 * b > 140 else (255, 255, 255)


def hex_colour(rgb: RGB) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)

