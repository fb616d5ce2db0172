"""A read-only table model over a list of dicts, with per-column formatting."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView

from core import colours


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    fmt: Callable[[Any], str] | None = None
    tooltip: str = ""
    fill: bool = False  # colour the cell by a 0..1 fill fraction
    stretch: bool = False  # takes the width the content-sized columns leave (names, descriptions)

    def text(self, value: Any) -> str:
        if self.fmt is not None:
            return self.fmt(value)
        if value is None:
            return ""
        if isinstance(value, float):
            return f"{value:.3f}"
        return str(value)


def percent(value: Any) -> str:
    return "" if value is None else f"{value:.0%}"


def fill_colour(fraction: float) -> QColor:
    """The shared fill scale (core.colours), light enough to read text on."""
    return QColor(*colours.tint(colours.fill_rgb(fraction), 0.55))


class RowsModel(QAbstractTableModel):
    SORT_ROLE = Qt.ItemDataRole.UserRole + 1

    def __init__(self, columns: Sequence[Column], parent=None,
                 row_colour: Callable[[dict[str, Any]], QColor | None] | None = None):
        super().__init__(parent)
        self.columns = list(columns)
        self.rows: list[dict[str, Any]] = []
        self.row_colour = row_colour  # background of a whole row (fill columns keep theirs)

    def set_rows(self, rows: list[dict[str, Any]]) -> None:
        self.beginResetModel()
        self.rows = rows
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 - Qt API
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802 - Qt API
        return 0 if parent.isValid() else len(self.columns)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        column = self.columns[index.column()]
        value = self.rows[index.row()].get(column.key)
        if role == Qt.ItemDataRole.DisplayRole:
            return column.text(value)
        if role == self.SORT_ROLE:
            return value if value is not None else ""
        if role == Qt.ItemDataRole.TextAlignmentRole and isinstance(value, (int, float)) and not isinstance(value, bool):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.BackgroundRole:
            if column.fill and value is not None:
                return QBrush(fill_colour(float(value)))
            if self.row_colour is not None:
                colour = self.row_colour(self.rows[index.row()])
                return QBrush(colour) if colour is not None else None
        if role == Qt.ItemDataRole.ToolTipRole:
            # A stretched column may be elided: its full text is one hover away.
            return column.tooltip or (column.text(value) if column.stretch else None) or None
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if orientation == Qt.Orientation.Horizontal:
            if role == Qt.ItemDataRole.DisplayRole:
                return self.columns[section].title
            if role == Qt.ItemDataRole.ToolTipRole:
                return self.columns[section].tooltip or None
        return None


def make_table(model: RowsModel) -> tuple[QTableView, QSortFilterProxyModel]:
    """A sortable, filterable, row-selecting table over ``model``."""
    proxy = QSortFilterProxyModel(model)  # owned by the model, so it lives as long
    proxy.setSourceModel(model)
    proxy.setSortRole(RowsModel.SORT_ROLE)
    proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
    proxy.setFilterKeyColumn(-1)
    view = QTableView()
    view.setModel(proxy)
    view.setSortingEnabled(True)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.setAlternatingRowColors(True)
    view.verticalHeader().setVisible(False)
    view.verticalHeader().setDefaultSectionSize(24)
    view.sortByColumn(0, Qt.SortOrder.AscendingOrder)
    header = view.horizontalHeader()
    if any(c.stretch for c in model.columns):
        size_columns(view, model.columns)
    else:
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
    return view, proxy


# Rows looked at to size a column to its content: enough for the widest value
# in practice, bounded so that a refresh of thousands of rows stays cheap.
SIZE_PRECISION_ROWS = 200


def size_columns(view: QTableView, columns: Sequence[Column]) -> None:
    """Columns sized to their header and content; the ``stretch`` column takes
    what is left, so the table fits its width with no horizontal scrolling."""
    header = view.horizontalHeader()
    header.setStretchLastSection(False)
    header.setResizeContentsPrecision(SIZE_PRECISION_ROWS)
    view.setTextElideMode(Qt.TextElideMode.ElideRight)
    for index, column in enumerate(columns):
        header.setSectionResizeMode(
            index, QHeaderView.ResizeMode.Stretch if column.stretch else QHeaderView.ResizeMode.ResizeToContents)
