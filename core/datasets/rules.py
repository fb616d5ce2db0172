"""The rules that choose a version's images: train sets as k:1 clones of the test mix.

Pure computation over arrays (no catalog access): :mod:`core.datasets.versions`
reads the candidates and writes the result.

Draw order. Every candidate image gets a 64-bit key from the recorded seed
and its content hash alone, so an image's place in the order never depends on
which other images exist: the same seed over the same images gives the same
set, and images that arrive later slot in without reshuffling the rest.

Nesting. Per class, the draw goes in rounds: each round takes from every cell
of the class as many images as the test set has in that cell. A k:1 set is the
first k rounds, so the 2:1 set of a pool contains its 1:1 set. A derived
version (``--from`` an earlier train set) puts the parent's images first in
every cell, so it contains the parent's set even when new images have arrived
since.

Shortfall. Where a cell has run out, that round takes the missing images from
the nearest cells of the same class (fewest differing dimensions among luggage
type, clutter, scanner model and pose; then clutter steps; then key order), and
the report says how many each cell borrowed and how many could not be found.

Validation. A validation split is carved from the drawn train images by
physical setup (item x bag x pose): a setup goes to validation when its key
from the seed falls under the fraction, so all images of a setup stay on one
side, and a setup's side never depends on the set it is in (nested sets keep
nested validation splits).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

CLUTTER_ORDER = {"low": 0, "medium": 1, "high": 2}
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a fast, well-spread 64-bit hash of 64-bit integers."""
    with np.errstate(over="ignore"):
        x = x.astype(np.uint64, copy=True)
        x ^= x >> np.uint64(30)
        x *= _M1
        x ^= x >> np.uint64(27)
        x *= _M2
        x ^= x >> np.uint64(31)
    return x


def _seed_word(seed: int) -> np.uint64:
    return _mix(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]


def order_keys(words: np.ndarray, seed: int) -> np.ndarray:
    """Draw-order keys of images from the first 64 bits of their sha256 (uint64, the first 16 hex
    digits as a number) and the seed."""
    return _mix(np.asarray(words, dtype=np.uint64) ^ _seed_word(seed))


def validation_mask(setups: np.ndarray, seed: int, fraction: float) -> np.ndarray:
    """Which setups go to validation. ``setups``: (n, 3) item, bag, pose ids."""
    if fraction <= 0 or len(setups) == 0:
        return np.zeros(len(setups), dtype=bool)
    s = setups.astype(np.uint64)
    with np.errstate(over="ignore"):
        key = _mix(_mix(_mix(s[:, 0] ^ _seed_word(seed ^ 0x5EED)) ^ s[:, 1]) ^ s[:, 2])
    return key < np.uint64(min(int(fraction * 2 ** 64), 2 ** 64 - 1))


Cell = tuple  # (class_key, luggage_type_id, clutter_level, scanner_model_id, pose_key)


@dataclass(frozen=True)
class CellDraw:
    """What the clone drew for one cell of the test mix."""

    cell: Cell
    test: int      # test images in the cell
    wanted: int    # k x test
    own: int       # drawn from the cell itself
    borrowed: int  # drawn from the nearest cells of the class
    short: int     # found nowhere in the class

    def as_dict(self) -> dict:
        return {"cell": list(self.cell), "test": self.test, "wanted": self.wanted, "own": self.own,
                "borrowed": self.borrowed, "short": self.short}


def _donor_orders(cells: list[Cell]) -> Callable[[int], list[Cell]]:
    """For the cells of one class (ordered by their values as text), the donors of cell number
    ``i`` nearest first: fewest differing dimensions among luggage type, clutter, scanner model
    and pose; then clutter steps; then the cells' own order."""
    # Each dimension's values numbered, so that equal values compare equal as numbers.
    numbers: list[dict] = [{}, {}, {}, {}]
    codes = np.array([[seen.setdefault(v, len(seen)) for seen, v in zip(numbers, c[1:])] for c in cells],
                     dtype=np.int64).reshape(len(cells), 4)
    steps = np.array([CLUTTER_ORDER.get(c[2], 0) for c in cells], dtype=np.int64)
    position = np.arange(len(cells))

    def donors(i: int) -> list[Cell]:
        differing = (codes != codes[i]).sum(axis=1)
        order = np.lexsort((position, np.abs(steps - steps[i]), differing))
        return [cells[j] for j in order.tolist() if j != i]

    return donors


def clone_test_mix(test_counts: dict[Cell, int], pools: dict[Cell, Sequence[int]],
                   ratio: dict[int, int]) -> tuple[list[int], list[CellDraw]]:
    """Draw k x the test mix per class.

    ``test_counts``: test images per cell; ``pools``: per cell, candidate train
    image ids in draw order; ``ratio``: k per class key (classes missing: 0).
    Returns the drawn image ids in draw order, and one :class:`CellDraw` per
    test cell.
    """
    by_class: dict[int, list[Cell]] = {}
    for cell in set(test_counts) | set(pools):
        by_class.setdefault(cell[0], []).append(cell)
    drawn: list[int] = []
    draws: list[CellDraw] = []
    for class_key in sorted(by_class):
        cells = sorted(by_class[class_key], key=lambda c: tuple(map(str, c)))
        number = {c: n for n, c in enumerate(cells)}
        donor_order = _donor_orders(cells)
        k = ratio.get(class_key, 0)
        wanted_cells = [c for c in cells if test_counts.get(c, 0) > 0]
        heads = {c: 0 for c in cells}
        own = dict.fromkeys(wanted_cells, 0)
        borrowed = dict.fromkeys(wanted_cells, 0)
        short = dict.fromkeys(wanted_cells, 0)
        donors_of: dict[Cell, list[Cell]] = {}
        for _round in range(k):
            need: dict[Cell, int] = {}
            # Every cell takes its own first, so that a neighbour's borrowing
            # never takes what a cell needs in the same round.
            for cell in wanted_cells:
                pool = pools.get(cell, ())
                n = test_counts[cell]
                take = min(n, len(pool) - heads[cell])
                drawn.extend(pool[heads[cell]:heads[cell] + take])
                heads[cell] += take
                own[cell] += take
                if take < n:
                    need[cell] = n - take
            for cell, missing in need.items():
                if cell not in donors_of:
                    donors_of[cell] = donor_order(number[cell])
                for donor in donors_of[cell]:
                    if not missing:
                        break
                    pool = pools.get(donor, ())
                    take = min(missing, len(pool) - heads[donor])
                    if take > 0:
                        drawn.extend(pool[heads[donor]:heads[donor] + take])
                        heads[donor] += take
                        borrowed[cell] += take
                        missing -= take
                short[cell] += missing
        for cell in wanted_cells:
            draws.append(CellDraw(cell, test_counts[cell], k * test_counts[cell], own[cell], borrowed[cell],
                                  short[cell]))
    return drawn, draws


def draw_pools(image_ids: np.ndarray, cells: np.ndarray, cell_keys: Sequence[Cell], keys: np.ndarray,
               preferred: Sequence[int] | np.ndarray = ()) -> dict[Cell, list[int]]:
    """Per cell, its candidate image ids in draw order: ``preferred`` ones (a parent
    version's) first, then by key. ``cells``: each image's index into ``cell_keys``."""
    image_ids = np.asarray(image_ids, dtype=np.int64)
    if not len(image_ids):
        return {}
    first = np.isin(image_ids, np.asarray(preferred, dtype=np.int64))
    order = np.lexsort((keys, ~first, cells))
    ids, grouped = image_ids[order], np.asarray(cells)[order]
    bounds = np.flatnonzero(np.diff(grouped)) + 1
    return {cell_keys[int(grouped[start])]: chunk.tolist()
            for start, chunk in zip(np.concatenate(([0], bounds)).tolist(), np.split(ids, bounds))}
