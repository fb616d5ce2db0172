"""Level/width windowing of 8/16-bit X-ray images through lookup tables.

A window maps stored values to display grey: ``level - width/2`` and below
become 0, ``level + width/2`` and above 255, linear in between. The mapping
is a table indexed by the stored value (65,536 entries for 16-bit data), so
showing a tile is one ``np.take`` and a drag of the window costs a new table,
not arithmetic over the image.

Presets are computed from the image's histogram. X-ray values are
transmissions: the empty belt (air) is the brightest, organic material
(μ·t of a few tenths on the high channel, see ``core.simulator.physics``)
lets 30-85 % through, dense metal less than 40 %. So "organic" stretches the
light end of the range up to the air value, "metal" the dark end, and the
air value is read from the histogram as the simulator's flat-field reads it
(the 99.5th percentile).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PRESETS = ("full range", "auto", "organic", "metal")

AUTO_PERCENTILES = (0.5, 99.5)
AIR_PERCENTILE = 99.5
ORGANIC_TRANSMISSION = (0.30, 1.0)  # fractions of the air value
METAL_TRANSMISSION = (0.0, 0.40)


@dataclass(frozen=True)
class Window:
    level: float  # centre, in stored values
    width: float  # span, in stored values (at least 1)

    @property
    def low(self) -> float:
        return self.level - self.width / 2

    @property
    def high(self) -> float:
        return self.level + self.width / 2

    @classmethod
    def between(cls, low: float, high: float) -> "Window":
        high = max(high, low + 1)
        return cls((low + high) / 2, high - low)

    def dragged(self, d_level: float, d_width: float, full_scale: int) -> "Window":
        """This window moved by a mouse drag, kept within the data's range."""
        width = float(np.clip(self.width + d_width, 1, 2 * full_scale))
        level = float(np.clip(self.level + d_level, 0, full_scale))
        return Window(level, width)


def lut(window: Window, entries: int) -> np.ndarray:
    """uint8 display value for each stored value 0 .. entries-1 (256 or 65,536)."""
    values = np.arange(entries, dtype=np.float32)
    scaled = (values - np.float32(window.low)) * np.float32(255.0 / max(window.width, 1.0))
    return np.clip(scaled + 0.5, 0, 255).astype(np.uint8)


def apply(table: np.ndarray, tile: np.ndarray) -> np.ndarray:
    """The windowed tile (uint8, same shape): one lookup per pixel, nothing else."""
    return np.take(table, tile)


def histogram(pixels: np.ndarray) -> np.ndarray:
    """Counts per stored value (256 bins for uint8, 65,536 for uint16) of a grey image."""
    entries = 256 if pixels.dtype == np.uint8 else 65536
    return np.bincount(pixels.ravel(), minlength=entries).astype(np.uint32)


def percentile(hist: np.ndarray, q: float) -> int:
    """The stored value below which ``q`` percent of the pixels lie."""
    cumulative = np.cumsum(hist, dtype=np.int64)
    total = int(cumulative[-1]) if len(cumulative) else 0
    if total == 0:
        return 0
    return int(np.searchsorted(cumulative, total * q / 100.0, side="left"))


def full_scale(hist: np.ndarray) -> int:
    """The largest value the image's bit depth allows, read from its largest value.

    A 12- or 14-bit scanner writes 16-bit words; its range is that of its own
    bits, not 0-65535 (which would show its images nearly black).
    """
    nonzero = np.flatnonzero(hist)
    top = int(nonzero[-1]) if len(nonzero) else 0
    bits = max(8, top.bit_length())
    return (1 << bits) - 1


def preset(name: str, hist: np.ndarray) -> Window:
    """The window a preset names, for an image of this histogram."""
    if name == "full range":
        return Window.between(0, full_scale(hist))
    if name == "auto":
        return Window.between(percentile(hist, AUTO_PERCENTILES[0]), percentile(hist, AUTO_PERCENTILES[1]))
    air = max(percentile(hist, AIR_PERCENTILE), 1)
    if name == "organic":
        return Window.between(air * ORGANIC_TRANSMISSION[0], air * ORGANIC_TRANSMISSION[1])
    if name == "metal":
        return Window.between(air * METAL_TRANSMISSION[0], air * METAL_TRANSMISSION[1])
    raise ValueError(f"unknown window preset {name!r}; the presets are: {', '.join(PRESETS)}")
