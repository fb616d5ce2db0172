"""Quota fill for any two dimensions of the quota cells, the others as filters.

Built from the quota status (trigger-kept tallies), so its cost grows with the
number of cells, never with the number of images. Fill counts setups up to
each cell's target (a cell over target does not hide another's deficit).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.errors import XLabError
from core.quota.status import QuotaStatus

# dimension -> quota status column
DIMENSIONS = {"class": "class_name", "luggage_type": "luggage_type", "clutter": "clutter_level",
              "scanner_model": "scanner_model", "pose": "pose"}
_ORDER = {"clutter": {"low": 0, "medium": 1, "high": 2}}


@dataclass(frozen=True)
class Heatmap:
    rows_dim: str
    cols_dim: str
    split: str
    row_labels: list[str]
    col_labels: list[str]
    target: list[list[int]]  # [row][col], setups
    done: list[list[int]]  # setups captured, each cell capped at its target
    images: list[list[int]]
    filters: dict[str, list[str]] = field(default_factory=dict)

    def fill(self, r: int, c: int) -> float | None:
        t = self.target[r][c]
        return self.done[r][c] / t if t else None

    def deficit(self, r: int, c: int) -> int:
        return self.target[r][c] - self.done[r][c]

    def as_rows(self) -> list[dict]:
        """One row per (row, column) pair with a target: for tables and exports."""
        out = []
        for r, rl in enumerate(self.row_labels):
            for c, cl in enumerate(self.col_labels):
                if self.target[r][c]:
                    out.append({self.rows_dim: rl, self.cols_dim: cl, "target": self.target[r][c],
                                "done": self.done[r][c], "deficit": self.deficit(r, c),
                                "fill": round(self.fill(r, c), 4), "images": self.images[r][c]})
        return out

    def totals(self) -> tuple[int, int]:
        return sum(map(sum, self.done)), sum(map(sum, self.target))


def _sorted(dim: str, labels: set[str]) -> list[str]:
    order = _ORDER.get(dim, {})
    return sorted(labels, key=lambda v: (order.get(v, 99), v))


def quota_heatmap(status: QuotaStatus, rows: str = "class", cols: str = "luggage_type", split: str = "test",
                  filters: dict[str, list[str]] | None = None) -> Heatmap:
    """Aggregate the plan's cells into a ``rows`` x ``cols`` grid for ``split``."""
    for dim in (rows, cols, *(filters or {})):
        if dim not in DIMENSIONS:
            raise XLabError(f"unknown dimension '{dim}' (use {', '.join(DIMENSIONS)})")
    if rows == cols:
        raise XLabError("choose two different dimensions")
    if split not in ("test", "train"):
        raise XLabError("split must be test or train")
    filters = {k: list(v) for k, v in (filters or {}).items() if v}
    at = {name: status.column(col) for name, col in DIMENSIONS.items()}
    t_at, s_at, i_at = (status.column(f"{split}_{k}") for k in ("target", "setups", "images"))
    wanted = {dim: set(values) for dim, values in filters.items()}
    ri, ci = at[rows], at[cols]
    cells: dict[tuple[str, str], list[int]] = {}
    for row in status.rows:
        if any(row[at[dim]] not in values for dim, values in wanted.items()):
            continue
        target = row[t_at]
        acc = cells.setdefault((row[ri], row[ci]), [0, 0, 0])
        acc[0] += target
        acc[1] += min(row[s_at], target)
        acc[2] += row[i_at]
    row_labels = _sorted(rows, {k[0] for k in cells})
    col_labels = _sorted(cols, {k[1] for k in cells})
    r_index = {v: i for i, v in enumerate(row_labels)}
    c_index = {v: i for i, v in enumerate(col_labels)}
    grids = [[[0] * len(col_labels) for _ in row_labels] for _ in range(3)]
    for (rl, cl), values in cells.items():
        for grid, value in zip(grids, values):
            grid[r_index[rl]][c_index[cl]] = value
    return Heatmap(rows, cols, split, row_labels, col_labels, grids[0], grids[1], grids[2], filters)


def cell_rows(status: QuotaStatus, heatmap: Heatmap, row_label: str, col_label: str) -> list[dict]:
    """The quota cells behind one heatmap cell, biggest deficit first."""
    at = {name: status.column(col) for name, col in DIMENSIONS.items()}
    match = {heatmap.rows_dim: {row_label}, heatmap.cols_dim: {col_label},
             **{k: set(v) for k, v in heatmap.filters.items()}}
    out = [d for row, d in zip(status.rows, status.as_dicts())
           if all(row[at[dim]] in values for dim, values in match.items())]
    key = f"{heatmap.split}_deficit"
    return sorted(out, key=lambda d: (-d[key], d["cell_id"]))


def cell_images(catalog, heatmap: Heatmap, row_label: str, col_label: str, limit: int = 40) -> list[dict]:  # noqa: ANN001 - Catalog
    """Newest usable images behind one heatmap cell (its split, its two labels, the filters)."""
    from core.catalog import dashboard_store

    where = {heatmap.rows_dim: [row_label], heatmap.cols_dim: [col_label], **heatmap.filters}
    return dashboard_store.cell_images(catalog, heatmap.split, where, limit)
