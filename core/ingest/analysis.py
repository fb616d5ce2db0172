"""Everything derived from one decode: quality checks, perceptual hash, thumbnail."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

THUMB_SIDE = 256


@dataclass(frozen=True)
class ScannerExpectation:
    """What a scanner model writes, for the size and bit-depth checks."""

    model: str
    width: int
    height: int
    bit_depth: int


@dataclass(frozen=True)
class Problem:
    code: str
    message: str


@dataclass(frozen=True)
class Analysis:
    width: int
    height: int
    fatal: tuple[Problem, ...]
    flags: tuple[str, ...]  # non-fatal
    phash: int  # signed 64-bit, as SQLite stores it
    thumbnail_png: bytes


def _grey_float(pixels: np.ndarray) -> np.ndarray:
    import cv2

    if pixels.ndim == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
    return pixels


def _thumbnail(pixels: np.ndarray) -> np.ndarray:
    import cv2

    h, w = pixels.shape[:2]
    scale = THUMB_SIDE / max(h, w)
    if scale < 1:
        pixels = cv2.resize(pixels, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return pixels


def phash64(grey: np.ndarray) -> int:
    """DCT perceptual hash: 8x8 low frequencies of a 32x32 reduction against their median."""
    import cv2

    small = cv2.resize(grey.astype(np.float32), (32, 32), interpolation=cv2.INTER_AREA)
    low = cv2.dct(small)[:8, :8].flatten()
    bits = low > np.median(low[1:])
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return value - (1 << 64) if value >= 1 << 63 else value


def analyse(pixels: np.ndarray, bit_depth: int, expected: ScannerExpectation | None) -> Analysis:
    import cv2

    h, w = pixels.shape[:2]
    colour = pixels.ndim == 3
    fatal: list[Problem] = []
    flags: list[str] = []
    full_scale = 255 if pixels.dtype == np.uint8 else 65535

    thumb = _thumbnail(pixels)
    grey_thumb = _grey_float(thumb).astype(np.float32)
    # A subsample is enough to tell blank or saturated frames; it costs 1/16.
    sample = pixels[::4, ::4]
    lo, hi = int(sample.min()), int(sample.max())
    spread = float(grey_thumb.std())
    # Pseudo-colour renderings show the empty belt as white; only raw grey
    # scans can be judged saturated.
    at_max = 0.0 if colour else float(np.count_nonzero(sample >= full_scale)) / sample.size
    if at_max > 0.3:
        fatal.append(Problem("saturated", f"saturated: {at_max:.0%} of pixels at the maximum value"))
    elif hi - lo <= full_scale * 0.002 or spread < full_scale * 0.001:
        fatal.append(Problem("blank", f"blank image (all pixels within {hi - lo} of each other): scanner fired without an object?"))

    if colour:
        flags.append("pseudo_colour")
    if expected is not None:
        if (w, h) != (expected.width, expected.height):
            fatal.append(Problem("wrong_size", f"image is {w}x{h}; scanner model {expected.model} writes {expected.width}x{expected.height}"))
        if not colour:
            if pixels.dtype == np.uint8 and expected.bit_depth > 8:
                fatal.append(Problem("bit_depth", f"8-bit image from a {expected.bit_depth}-bit scanner ({expected.model}): an export, not the raw scan?"))
            elif pixels.dtype == np.uint16 and hi > (1 << expected.bit_depth) - 1:
                fatal.append(Problem("bit_depth", f"values exceed the {expected.bit_depth}-bit range of {expected.model}"))
    elif not colour and bit_depth > 16:
        fatal.append(Problem("bit_depth", f"implausible bit depth {bit_depth}"))

    if thumb.dtype != np.uint8:
        # Window the 16-bit thumbnail to its own range so it is readable.
        t_lo, t_hi = float(thumb.min()), float(thumb.max())
        thumb = cv2.convertScaleAbs(thumb, alpha=255.0 / max(t_hi - t_lo, 1.0), beta=-t_lo * 255.0 / max(t_hi - t_lo, 1.0))
    if colour:
        thumb = cv2.cvtColor(thumb, cv2.COLOR_RGB2BGR)
    ok, png = cv2.imencode(".png", thumb, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    return Analysis(w, h, tuple(fatal), tuple(flags), phash64(grey_thumb), png.tobytes() if ok else b"")
