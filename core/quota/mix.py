"""Expand a class total over the deployment mix into integer quota cells.

The mix gives marginal weights per dimension (luggage type, clutter level,
scanner model, pose). For one class total ``N``:

1. each dimension's marginal targets are ``N`` split by largest remainder, so
   every marginal sums to ``N`` exactly;
2. the real-valued cells are the product of the weights (their marginals are
   exactly the real-valued marginal targets);
3. cells are floored, and the missing units are handed out in order of largest
   fractional remainder to cells all of whose dimension values still lack
   units. At each step every dimension lacks the same number of units, so a
   cell that takes one always exists and the loop ends with every marginal and
   the total exact.

Overridden cells are held fixed; the rest are fitted (iterative proportional
fitting) to what the marginals still need and rounded the same way. When the
overrides make an exact marginal impossible (they exceed it), the class total
stays exact and the marginals are as close as rounding allows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from core.errors import PlanError

Cell = tuple[int, ...]

# Bounds that keep one expansion to moments: its cells are rounded one by one.
MAX_CELLS = 50_000
MAX_TOTAL = 100_000_000


def _check_weights(w: np.ndarray, what: str) -> None:
    if len(w) == 0 or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise PlanError(f"{what} needs finite, non-negative weights with a positive sum")


def _check_total(total: int) -> None:
    if not 0 <= total <= MAX_TOTAL:
        raise PlanError(f"a class total must be from 0 to {MAX_TOTAL:,} (got {total})")


def largest_remainder(total: int, weights: Sequence[float]) -> list[int]:
    """Split ``total`` in proportion to ``weights``; the parts sum to ``total``."""
    w = np.asarray(weights, dtype=float)
    _check_total(total)
    _check_weights(w, "a split")
    exact = total * w / w.sum()
    parts = np.floor(exact).astype(int)
    missing = total - int(parts.sum())
    # Stable order: ties go to the earlier entry, so results are deterministic.
    order = sorted(range(len(w)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in order[:missing]:
        parts[i] += 1
    return [int(x) for x in parts]


def _marginals(array: np.ndarray, dim: int) -> np.ndarray:
    axes = tuple(a for a in range(array.ndim) if a != dim)
    return array.sum(axis=axes) if axes else array


def _fit(real: np.ndarray, free: np.ndarray, targets: list[np.ndarray], iterations: int = 60) -> np.ndarray:
    """Iterative proportional fitting of the free cells to marginal targets."""
    fitted = np.where(free, real, 0.0)
    for _ in range(iterations):
        for dim, target in enumerate(targets):
            current = _marginals(fitted, dim)
            with np.errstate(divide="ignore", invalid="ignore"):
                factor = np.where(current > 0, target / current, 0.0)
            shape = [1] * fitted.ndim
            shape[dim] = -1
            fitted = fitted * factor.reshape(shape)
    return fitted


def _round(real: np.ndarray, free: np.ndarray, deficits: list[np.ndarray] | None, total: int) -> np.ndarray:
    counts = np.where(free, np.floor(real + 1e-9), 0).astype(np.int64)
    missing = total - int(counts.sum())
    remainder = np.where(free, real - counts, -1.0)
    flat_order = sorted(range(real.size), key=lambda i: (-remainder.flat[i], i))
    cells = [np.unravel_index(i, real.shape) for i in flat_order if free.flat[i]]
    if deficits is not None:
        left = [d - _marginals(counts, k) for k, d in enumerate(deficits)]
        progress = True
        while missing > 0 and progress:
            progress = False
            for cell in cells:
                if missing == 0:
                    break
                if all(left[k][cell[k]] > 0 for k in range(len(left))):
                    counts[cell] += 1
                    for k in range(len(left)):
                        left[k][cell[k]] -= 1
                    missing -= 1
                    progress = True
    # Only reached with overrides that make exact marginals impossible.
    i = 0
    while missing > 0 and cells:
        counts[cells[i % len(cells)]] += 1
        missing -= 1
        i += 1
    return counts


def expand(
    total: int,
    weights: Sequence[Sequence[float]],
    fixed: Mapping[Cell, int] | None = None,
) -> dict[Cell, int]:
    """Integer cells (index tuples → count) for ``total`` over the given dimension weights.

    Cells of value 0 are included, so the result always holds the full product.
    """
    fixed = dict(fixed or {})
    dims = [np.asarray(w, dtype=float) for w in weights]
    _check_total(total)
    for dim, w in enumerate(dims):
        _check_weights(w, f"mix dimension {dim + 1}")
    shape = tuple(len(w) for w in dims)
    if math.prod(shape) > MAX_CELLS:
        raise PlanError(f"the mix expands into {math.prod(shape):,} cells per class, more than {MAX_CELLS:,}")
    for cell, value in fixed.items():
        if len(cell) != len(shape) or any(not 0 <= c < s for c, s in zip(cell, shape)):
            raise PlanError(f"overridden cell {cell} is not in the mix")
        if value < 0:
            raise PlanError(f"a cell target cannot be negative (got {value})")
    fixed_total = sum(fixed.values())
    if fixed_total > total:
        raise PlanError(f"overridden cells hold {fixed_total}, more than the class total {total}")

    targets = [np.asarray(largest_remainder(total, w), dtype=float) for w in dims]
    real = np.ones(shape)
    for dim, w in enumerate(dims):
        view = [1] * len(shape)
        view[dim] = -1
        real = real * (w / w.sum()).reshape(view)
    real = real * total

    fixed_array = np.zeros(shape, dtype=np.int64)
    for cell, value in fixed.items():
        fixed_array[cell] = value
    free = np.ones(shape, dtype=bool)
    for cell in fixed:
        free[cell] = False
    free_total = total - fixed_total

    residual = [t - _marginals(fixed_array, k) for k, t in enumerate(targets)]
    exact_possible = all((r >= 0).all() for r in residual) and all(
        # a value that still needs units must have a free cell to take them
        all(_marginals(free.astype(float) * (real > 0), k)[v] > 0 or r[v] == 0 for v in range(len(r)))
        for k, r in enumerate(residual)
    )
    if not fixed:
        fitted, deficits = real, targets
    elif exact_possible:
        fitted, deficits = _fit(real, free, residual), residual
    else:
        scale = real[free].sum()
        fitted = np.where(free, real * (free_total / scale if scale > 0 else 0.0), 0.0)
        deficits = None
    counts = _round(fitted, free, [d.astype(np.int64) for d in deficits] if deficits is not None else None, free_total)
    counts = counts + fixed_array
    return {tuple(int(i) for i in idx): int(counts[idx]) for idx in np.ndindex(*shape)}
