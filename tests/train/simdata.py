"""Simulated scans for the training tests and benchmark: small 16-bit grey bags from the simulated
scanner (core.simulator.scene), each with one threat item or none, written as PNG files with their
manifests. Two classes that stay visible at 128 px (a pistol, a magazine: steel) in bags with low or medium
clutter, so a small detector can learn them in seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CLASSES = ("pistol", "magazine")
LUGGAGE = ("hard_case", "soft_bag", "backpack")
CLUTTER = ("low", "medium")
# A 128-px field of about 77 cm: a pistol spans some 30 px, a magazine 25 x 7.
PIXEL_MM = 6.0


def write_split(folder: Path, count: int, seed: int, size: int = 128, first_id: int = 1,
                clean_fraction: float = 0.1) -> list[dict]:
    """``count`` scans as 16-bit PNGs in ``folder``; returns their manifest rows (image ids from
    ``first_id``). Each scan is drawn from ``seed`` and its number alone."""
    import cv2

    from core.simulator.scene import ScannerGeometry, render_scan

    geometry = ScannerGeometry(width=size, height=size, pixel_mm=PIXEL_MM * 128 / size, bit_depth=16,
                               dual_energy=False, gain=1.0, noise=0.01)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in range(count):
        rng = np.random.default_rng([seed, n])
        clean = rng.random() < clean_fraction
        c = int(rng.integers(len(CLASSES)))
        scan = render_scan(geometry, LUGGAGE[int(rng.integers(len(LUGGAGE)))], CLUTTER[int(rng.integers(len(CLUTTER)))],
                           None if clean else CLASSES[c], "flat", float(rng.uniform(0, 360)), "none",
                           int(rng.integers(2 ** 31)))
        ok, data = cv2.imencode(".png", scan.high)
        assert ok
        path = folder / f"{first_id + n:05d}.png"
        path.write_bytes(data.tobytes())
        boxes = [] if scan.box is None else [[*map(float, scan.box), c + 1]]
        rows.append({"image_id": first_id + n, "path": str(path), "width": size, "height": size,
                     "boxes": boxes, "negative": not boxes})
    return rows
