"""The pseudo-colour view of a dual-energy scan, for the image viewer.

The colouring itself (orange organic, green mixed, blue metal, from the
ratio of the two channels' log-attenuations) is the simulator's
:func:`core.simulator.physics.pseudo_colour`: one definition, so what the
viewer shows is what the simulated scanners write as pseudo-colour PNGs.
This module adds what a viewer needs around it: which images can have the
view at all. The result is a display rendering; a viewer windows it as it
would any 8-bit colour image.
"""

from __future__ import annotations

import numpy as np


def available(low: np.ndarray | None, high: np.ndarray) -> bool:
    """A pseudo-colour view needs both energy channels, grey and of one shape."""
    return low is not None and low.ndim == 2 and high.ndim == 2 and low.shape == high.shape


def render(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """H x W x 3 uint8 RGB from the low- and high-energy channels (full image: the
    flat-field reads the whole image's air value, so never call it per tile)."""
    from core.simulator.physics import pseudo_colour

    if not available(low, high):
        got = "no low channel" if low is None else f"{low.shape} and {high.shape}"
        raise ValueError(f"pseudo-colour needs two grey channels of one shape, got {got}")
    return pseudo_colour(low, high)
