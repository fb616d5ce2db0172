"""The dashboards' views (pyqtgraph charts): what the lab manager keeps open all day.
The area that holds them and keeps them live is ``app.views.dashboards_area``.

Three tabs: quota fill (a heatmap over any two dimensions of the quota cells,
the others as filters; click a cell for its cells, deficits and images),
production (per day and cumulative against the monthly target, per scanner /
station / technician, quarantine rate, forecasts) and classes (ratio progress
against the KPIs with verdicts; classes that block the next model in red).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QModelIndex, QRectF, QSettings, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app import tasks
from app.dialogs import announce_saved, choose_save_path, show_error
from app.table_model import Column, RowsModel, make_table, percent, size_columns
from core.backup.schedule import BackupSchedule, backup_schedule
from core.dashboard import classes as class_dash
from core.dashboard.heatmap import DIMENSIONS, Heatmap, cell_images, cell_rows, quota_heatmap
from core import colours
from core.errors import XLabError
from core.dashboard.production import NO_IMAGES_YET, WEEKDAYS, Production, production, set_production_settings
from core.lab import Lab
from core.quota.plans import list_plans
from core.quota.status import QuotaStatus, quota_status

DIM_TITLES = {"class": "Class", "luggage_type": "Luggage type", "clutter": "Clutter", "scanner_model": "Scanner model",
              "pose": "Pose"}
# Row backgrounds: the shared verdict colours, light enough to read text on.
VERDICT_TINT = 0.65
VERDICT_COLOURS = {v: QColor(*colours.tint(rgb, VERDICT_TINT)) for v, rgb in colours.VERDICT_COLOURS.items()}


def _pct(v: Any) -> str:
    return "—" if v is None else f"{v:.1%}"


def _count(v: Any) -> str:
    return "" if v is None else f"{v:,}"


# Two-line headers and content-sized columns keep these tables inside a
# 1366x768 screen; the one column holding free text (a run, a pose, a basis,
# a name) stretches and elides, its full text one hover away.
CLASS_COLUMNS = [
    Column("class_name", "Class"), Column("family", "Family"), Column("verdict", "Verdict"),
    Column("test_fill", "Test\nfill", percent, fill=True),
    Column("test_done", "Test\nsetups", tooltip="Distinct setups (item × bag × pose) of the test split: done / target"),
    Column("train_done", "Train\nsetups", tooltip="Distinct setups of the train split: done / target"),
    Column("ratio", "Train:test\n(step)", tooltip="Train setups per test setup (the ratio step the class is on)"),
    Column("detection_rate", "Detection rate\n(95% CI)", tooltip="Latest KPI result on the test set"),
    Column("dr_target", "Detection\ntarget", _pct),
    Column("false_alarm_rate", "False\nalarms", tooltip="Latest false-alarm rate on clean bags (the KPI's maximum)"),
    Column("run", "Latest evaluation", lambda v: v or "not evaluated yet", stretch=True),
]


def _interval(row: dict) -> str:
    if row["detection_rate"] is None:
        return "—"
    return f"{row['detection_rate']:.1%} ({row['dr_low']:.1%}–{row['dr_high']:.1%})"


# Columns showing two numbers of a class (they sort by the first).
CLASS_TEXT = {
    "test_done": lambda r: f"{r['test_done']:,} / {r['test_target']:,}",
    "train_done": lambda r: f"{r['train_done']:,} / {r['train_target']:,}",
    "ratio": lambda r: f"{r['ratio']:.2f} ({r['ratio_step']}:1)",
    "detection_rate": _interval,
    "false_alarm_rate": lambda r: f"{_pct(r['false_alarm_rate'])} (max {_pct(r['far_max'])})",
}


class PairedRowsModel(RowsModel):
    """Rows where some columns show two numbers of the row (done / target, a rate
    and its interval): fewer, readable columns that still sort by their key."""

    def __init__(self, columns, texts: dict[str, Any], parent=None, **kw):
        super().__init__(columns, parent, **kw)
        self.texts = texts

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and index.isValid():
            text = self.texts.get(self.columns[index.column()].key)
            if text is not None:
                return text(self.rows[index.row()])
        return super().data(index, role)


CELL_COLUMNS = [
    Column("class_name", "Class"), Column("luggage_type", "Luggage"), Column("clutter_level", "Clutter"),
    Column("scanner_model", "Scanner\nmodel"), Column("pose", "Pose", stretch=True),
    Column("test_setups", "Test\nsetups", tooltip="Distinct setups of the test split: done / target"),
    Column("test_deficit", "Test\nshort", _count, tooltip="Setups the test split still lacks"),
    Column("train_setups", "Train\nsetups", tooltip="Distinct setups of the train split: done / target"),
    Column("train_deficit", "Train\nshort", _count, tooltip="Setups the train split still lacks"),
]
CELL_TEXT = {
    "test_setups": lambda r: f"{r['test_setups']:,} / {r['test_target']:,}",
    "train_setups": lambda r: f"{r['train_setups']:,} / {r['train_target']:,}",
}
FORECAST_COLUMNS = [Column("what", "Complete when"), Column("remaining_images", "Images\nleft", _count),
                    Column("rate", "Images\n/ day",
                           lambda v: "—" if not v else f"{v:,.0f}" if v >= 100 else f"{v:.1f}",
                           tooltip="Images per working day: the recent rate the forecast extrapolates (see Basis)"),
                    Column("working_days", "Days\nleft", lambda v: "—" if v is None else f"{v:.1f}",
                           tooltip="Working days left at the recent rate"),
                    Column("eta", "Expected", lambda v: "—" if v is None else str(v),
                           tooltip="When the rest is done at the recent rate; —: no recent production (see Basis)"),
                    Column("basis", "Basis", stretch=True)]  # which days and images the rate rests on
BREAKDOWN_COLUMNS = [Column("name", "Name", stretch=True), Column("images", "Images", _count),
                     Column("share", "Share", percent)]


@dataclass(frozen=True)
class DashboardSnapshot:
    plans: list[dict]
    plan_id: int | None
    status: QuotaStatus | None
    heatmap: Heatmap | None
    production: Production | None
    classes: list[dict]
    load_ms: float
    backup: BackupSchedule | None = None  # the last backup and the schedule


def load_dashboards(lab: Lab, plan_id: int | None, rows: str, cols: str, split: str,
                    filters: dict[str, list[str]], month: str | None) -> DashboardSnapshot:
    """Everything the three dashboards show, computed off the GUI thread."""
    t0 = time.perf_counter()
    plans = [p for p in list_plans(lab.catalog) if p["status"] == "published"]
    if plan_id not in {p["id"] for p in plans}:
        newest = max(plans, key=lambda p: (p["published_at"] or "", p["id"]), default=None)
        plan_id = newest["id"] if newest else None
    status = quota_status(lab.catalog, plan_id) if plan_id else None
    heat = quota_heatmap(status, rows, cols, split, filters) if status else None
    prod = production(lab.catalog, status, month)
    classes = class_dash.class_progress(lab.catalog, status) if status else []
    backup = backup_schedule(lab.catalog)
    return DashboardSnapshot(plans, plan_id, status, heat, prod, classes, (time.perf_counter() - t0) * 1000, backup)


def fill_colour_map() -> pg.ColorMap:
    """The shared fill scale (core.colours) as a pyqtgraph colour map."""
    return pg.ColorMap([pos for pos, _ in colours.FILL_STOPS], [rgb for _, rgb in colours.FILL_STOPS])


def _series_pen(name: str, **kw) -> Any:
    return pg.mkPen(colours.SERIES[name], **kw)


def save_chart(parent: QWidget, plot: pg.PlotWidget, path: str) -> None:
    """Write the chart as PNG and say where (on the GUI thread: it renders the
    chart's scene, and takes a fraction of a second)."""
    try:
        export_chart_png(plot, path)
    except XLabError as exc:
        show_error(parent, "Save chart", exc)
    else:
        announce_saved(parent, path)


def export_chart_png(plot: pg.PlotWidget, path: str) -> None:
    from pyqtgraph.exporters import ImageExporter

    exporter = ImageExporter(plot.plotItem)
    exporter.parameters()["width"] = max(1200, int(plot.width() * 1.5))
    image = exporter.export(toBytes=True)
    if not image.save(path, "PNG"):  # pyqtgraph's own export ignores a failed write
        raise XLabError(f"could not write {path}: choose a folder that exists and that you may write to")


class _ExportBar(QWidget):
    """CSV / Excel (and PNG) buttons under a table or chart."""

    def __init__(self, parent: QWidget, name: str, rows, columns=None, plot: pg.PlotWidget | None = None,
                 settings: QSettings | None = None):
        super().__init__(parent)
        self._name, self._rows, self._columns, self._plot = name, rows, columns, plot
        self._settings = settings
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addStretch(1)
        for label, suffix in (("CSV", ".csv"), ("Excel", ".xlsx")):
            button = QPushButton(f"{label}…")
            button.setToolTip(f"Save this table as {label}")
            button.clicked.connect(lambda _=False, s=suffix: self._save(s))
            layout.addWidget(button)
        if plot is not None:
            button = QPushButton("PNG…")
            button.setToolTip("Save the chart as a PNG image")
            button.clicked.connect(self.save_png)
            layout.addWidget(button)

    def save_png(self) -> QFileDialog:
        return choose_save_path(self, "Save chart", f"{self._name}.png", "PNG image (*.png)", "charts",
                                lambda path: save_chart(self, self._plot, path), self._settings)

    def _save(self, suffix: str) -> QFileDialog:
        filters = {".csv": "CSV (*.csv)", ".xlsx": "Excel (*.xlsx)"}
        rows = self._rows()  # as shown when asked, not as refreshed while the dialog is open
        return choose_save_path(self, "Export table", f"{self._name}{suffix}", filters[suffix], "tables",
                                lambda path: export_rows(self, rows, path, self._columns), self._settings)


def export_rows(parent: QWidget, rows: list[dict], path: str, columns=None) -> None:
    """Write the rows off the GUI thread (pandas, a large table); say where once written."""
    from core.dashboard.export import export_table

    tasks.call(lambda: export_table(rows, path, columns), lambda written: announce_saved(parent, written),
               lambda e: show_error(parent, "Export", e), parent)


DETAIL_PROMPT = "Click a cell to see its quota cells, deficits and images"


class QuotaHeatmapView(QWidget):
    """The heatmap tab: two dimensions, filters, split; click a cell for its detail."""

    changed = Signal()  # a control changed: reload
    cell_clicked = Signal(str, str)

    def __init__(self, lab: Lab, parent: QWidget | None = None, settings: QSettings | None = None):
        super().__init__(parent)
        self._lab = lab
        self.settings = settings  # where the save dialogs remember their folders
        self.heat: Heatmap | None = None
        self.status: QuotaStatus | None = None
        self.rows_box, self.cols_box = QComboBox(), QComboBox()
        for box, default in ((self.rows_box, "class"), (self.cols_box, "luggage_type")):
            for key, title in DIM_TITLES.items():
                box.addItem(title, key)
            box.setCurrentIndex(box.findData(default))
        self.split_box = QComboBox()
        self.split_box.addItem("Test", "test")
        self.split_box.addItem("Train", "train")
        self.filter_boxes: dict[str, QComboBox] = {}
        controls = QGridLayout()
        controls.addWidget(QLabel("Rows"), 0, 0)
        controls.addWidget(self.rows_box, 0, 1)
        controls.addWidget(QLabel("Columns"), 0, 2)
        controls.addWidget(self.cols_box, 0, 3)
        controls.addWidget(QLabel("Split"), 0, 4)
        controls.addWidget(self.split_box, 0, 5)
        for i, (key, title) in enumerate(DIM_TITLES.items()):
            box = QComboBox()
            box.addItem(f"all {title.lower()}s" if key != "class" else "all classes", None)
            box.setMinimumWidth(110)
            self.filter_boxes[key] = box
            controls.addWidget(box, 1, i)
            box.currentIndexChanged.connect(self._controls_changed)
        for box in (self.rows_box, self.cols_box, self.split_box):
            box.currentIndexChanged.connect(self._controls_changed)
        self.summary = QLabel("")

        self.plot = pg.PlotWidget(background="w")
        self.plot.setMenuEnabled(False)
        self.plot.invertY(True)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        # Cells with no target are NaN (transparent) over a grey backdrop.
        self.no_target = pg.QtWidgets.QGraphicsRectItem(0, 0, 1, 1)
        self.no_target.setBrush(pg.mkBrush(colours.NO_TARGET))
        self.no_target.setPen(pg.mkPen(None))
        self.plot.addItem(self.no_target)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.colour_map = fill_colour_map()
        self.image.setLookupTable(self.colour_map.getLookupTable(0.0, 1.0, 256))
        self.image.setLevels((0.0, 1.0))
        self.plot.addItem(self.image)
        # The legend: a colour bar with the fill in per cent.
        self.colour_bar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=self.colour_map, interactive=False,
                                          pen=pg.mkPen(120), width=16)
        self.colour_bar.axis.setLabel(colours.FILL_LABEL)
        self.colour_bar.axis.setTicks([[(v, f"{v:.0%}") for v in (0.0, 0.25, 0.5, 0.75, 1.0)]])
        self.plot.plotItem.layout.addItem(self.colour_bar, 2, 5)
        self._labels: list[pg.TextItem] = []
        self._detail_key: tuple | None = None  # the heatmap the detail belongs to
        self._detail_seq = 0  # a cell's detail arriving after the controls changed is dropped
        self.selected: tuple[str, str] | None = None
        self.plot.scene().sigMouseClicked.connect(self._clicked)

        self.detail_title = QLabel(DETAIL_PROMPT)
        self.detail_title.setWordWrap(True)
        self.cell_model = PairedRowsModel(CELL_COLUMNS, CELL_TEXT, self)
        self.cell_table, _ = make_table(self.cell_model)
        self.thumbs = QListWidget()
        self.thumbs.setViewMode(QListView.ViewMode.IconMode)
        self.thumbs.setIconSize(QSize(96, 72))
        self.thumbs.setGridSize(QSize(104, 92))
        self.thumbs.setResizeMode(QListView.ResizeMode.Adjust)
        self.thumbs.setMovement(QListView.Movement.Static)
        detail = QWidget()
        d_layout = QVBoxLayout(detail)
        d_layout.setContentsMargins(0, 0, 0, 0)
        d_layout.addWidget(self.detail_title)
        d_layout.addWidget(self.cell_table, 2)
        d_layout.addWidget(QLabel("Newest images of this cell"))
        d_layout.addWidget(self.thumbs, 1)
        d_layout.addWidget(_ExportBar(self, "quota-cells", lambda: self.cell_model.rows, settings=settings))

        left = QWidget()
        l_layout = QVBoxLayout(left)
        l_layout.setContentsMargins(0, 0, 0, 0)
        l_layout.addWidget(self.plot, 1)
        l_layout.addWidget(_ExportBar(self, "quota-fill", lambda: self.heat.as_rows() if self.heat else [],
                                      plot=self.plot, settings=settings))
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(detail)
        splitter.setSizes([600, 590])
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(self.summary)
        layout.addWidget(splitter, 1)
        self._show_cell_columns()

    # -- parameters for the loader --
    @property
    def rows_dim(self) -> str:
        return self.rows_box.currentData()

    @property
    def cols_dim(self) -> str:
        return self.cols_box.currentData()

    @property
    def split(self) -> str:
        return self.split_box.currentData()

    def filters(self) -> dict[str, list[str]]:
        return {k: [box.currentData()] for k, box in self.filter_boxes.items()
                if box.currentData() is not None and k not in (self.rows_dim, self.cols_dim)}

    def _controls_changed(self, _index: int = 0) -> None:
        if self.rows_dim == self.cols_dim:
            other = next(k for k in DIM_TITLES if k != self.rows_dim)
            self.cols_box.setCurrentIndex(self.cols_box.findData(other))
            return
        self._show_cell_columns()
        if self._detail_key is not None and self._detail_key != self._key():
            self.clear_detail()  # the cell shown belongs to other axes, split or filters
        self.changed.emit()

    def _key(self, heat: Heatmap | None = None) -> tuple:
        if heat is not None:
            return heat.rows_dim, heat.cols_dim, heat.split, tuple(sorted((k, tuple(v)) for k, v in heat.filters.items()))
        return self.rows_dim, self.cols_dim, self.split, tuple(sorted((k, tuple(v)) for k, v in self.filters().items()))

    def _show_cell_columns(self) -> None:
        """The cell table leaves out the dimensions every one of its rows shares
        (the heatmap's row and column, the filters: the detail title names them),
        so the rest fit beside the heatmap; the last dimension shown stretches."""
        fixed = {DIMENSIONS[d] for d in (self.rows_dim, self.cols_dim, *self.filters())}
        shown = [key for key in DIMENSIONS.values() if key not in fixed]
        model = self.cell_model
        model.columns = [replace(c, stretch=bool(shown) and c.key == shown[-1]) for c in model.columns]
        size_columns(self.cell_table, model.columns)
        for index, column in enumerate(model.columns):
            self.cell_table.setColumnHidden(index, column.key in fixed)

    def clear_detail(self) -> None:
        """Forget the selected cell (and any of its details still loading)."""
        self._detail_seq += 1
        self._detail_key = None
        self.selected = None
        self.detail_title.setText(DETAIL_PROMPT)
        self.cell_model.set_rows([])
        self.thumbs.clear()

    # -- showing --
    def show_heatmap(self, status: QuotaStatus | None, heat: Heatmap | None) -> None:
        self.status, self.heat = status, heat
        self._fill_filter_choices(status)
        for label in self._labels:
            label.setVisible(False)
        if self.selected is not None and (heat is None or self._detail_key != self._key(heat)
                                          or self.selected[0] not in heat.row_labels
                                          or self.selected[1] not in heat.col_labels):
            self.clear_detail()
        if heat is None or not heat.row_labels:
            self.image.clear()
            self.no_target.setRect(0, 0, 0, 0)
            self.summary.setText("No published quota plan yet — import an inventory and publish a quota plan (Quotas)"
                                 if heat is None else "No cells match the filters")
            return
        n_rows, n_cols = len(heat.row_labels), len(heat.col_labels)
        grid = np.full((n_rows, n_cols), np.nan)
        for r in range(n_rows):
            for c in range(n_cols):
                fill = heat.fill(r, c)
                if fill is not None:
                    grid[r, c] = fill
        self.image.setImage(grid, autoLevels=False)
        self.image.setLevels((0.0, 1.0))
        self.image.setRect(QRectF(0, 0, n_cols, n_rows))
        self.no_target.setRect(0, 0, n_cols, n_rows)
        self.plot.getAxis("bottom").setTicks([[(c + 0.5, label) for c, label in enumerate(heat.col_labels)]])
        step = max(1, math.ceil(n_rows / 40))
        self.plot.getAxis("left").setTicks([[(r + 0.5, label) for r, label in enumerate(heat.row_labels) if r % step == 0]])
        self.plot.setXRange(0, n_cols, padding=0)
        self.plot.setYRange(0, n_rows, padding=0)
        if n_rows * n_cols <= 300:
            used = 0
            for r in range(n_rows):
                for c in range(n_cols):
                    if not math.isnan(grid[r, c]):
                        if used == len(self._labels):
                            self._labels.append(pg.TextItem("", anchor=(0.5, 0.5)))
                            self.plot.addItem(self._labels[-1])
                        label = self._labels[used]
                        label.setText(f"{grid[r, c]:.0%}")
                        label.setColor(colours.text_on(colours.fill_rgb(grid[r, c])))
                        label.setPos(c + 0.5, r + 0.5)
                        label.setVisible(True)
                        used += 1
        done, target = heat.totals()
        self.summary.setText(
            f"{heat.split.capitalize()} split: {done:,} of {target:,} setups ({done / target:.0%}) · "
            f"{DIM_TITLES[heat.rows_dim]} × {DIM_TITLES[heat.cols_dim]} · grey: no target" if target else "")
        if self.selected is not None:
            self.select_cell(*self.selected)  # live: the detail follows the new numbers

    def _fill_filter_choices(self, status: QuotaStatus | None) -> None:
        if status is None:
            return
        for key, box in self.filter_boxes.items():
            if box.count() > 1:
                continue
            at = status.column(DIMENSIONS[key])
            values = sorted({row[at] for row in status.rows})
            box.blockSignals(True)
            for value in values:
                box.addItem(value, value)
            box.blockSignals(False)

    def _clicked(self, event) -> None:
        if self.heat is None or not self.heat.row_labels:
            return
        point = self.plot.plotItem.vb.mapSceneToView(event.scenePos())
        c, r = int(math.floor(point.x())), int(math.floor(point.y()))
        if 0 <= r < len(self.heat.row_labels) and 0 <= c < len(self.heat.col_labels):
            self.select_cell(self.heat.row_labels[r], self.heat.col_labels[c])

    def select_cell(self, row_label: str, col_label: str) -> None:
        heat, status = self.heat, self.status
        if heat is None or status is None:
            return
        r, c = heat.row_labels.index(row_label), heat.col_labels.index(col_label)
        self._detail_seq += 1
        seq = self._detail_seq
        self._detail_key = self._key(heat)
        self.selected = (row_label, col_label)
        fill = heat.fill(r, c)
        self.detail_title.setText(
            f"{DIM_TITLES[heat.rows_dim]} {row_label} × {DIM_TITLES[heat.cols_dim]} {col_label} ({heat.split}): "
            f"{heat.done[r][c]:,} of {heat.target[r][c]:,} setups"
            + ("" if fill is None else f" ({fill:.0%}), deficit {heat.deficit(r, c):,}"))

        def work():
            return cell_rows(status, heat, row_label, col_label), cell_images(self._lab.catalog, heat, row_label, col_label)

        def done(result) -> None:
            if seq != self._detail_seq:
                return  # another cell was chosen, or the controls changed, meanwhile
            cells, images = result
            self.cell_model.set_rows(cells)
            self.thumbs.clear()
            for image in images:
                pixmap = QPixmap(str(self._lab.paths.store / image["thumb_path"])) if image["thumb_path"] else QPixmap()
                item = QListWidgetItem(QIcon(pixmap), f"#{image['id']}")
                item.setToolTip(f"{image['original_name']}\n{image['scanner']} · bag {image['bag']} · item "
                                f"{image['item'] or '—'}\n{image['captured_at']}")
                self.thumbs.addItem(item)
            self.cell_clicked.emit(row_label, col_label)

        tasks.call(work, done, lambda e: show_error(self, "Quota cell", e), self)


class ProductionView(QWidget):
    """Images per day and cumulative against the monthly target; breakdowns; forecasts."""

    changed = Signal()

    def __init__(self, lab: Lab, parent: QWidget | None = None, settings: QSettings | None = None):
        super().__init__(parent)
        self._lab = lab
        self.settings = settings  # where the save dialogs remember their folders
        self.data: Production | None = None
        self.month_box = QComboBox()
        today = date.today()
        for k in range(12):
            y, m = today.year, today.month - k
            while m <= 0:
                y, m = y - 1, m + 12
            self.month_box.addItem(f"{y}-{m:02d}", f"{y}-{m:02d}")
        self.month_box.currentIndexChanged.connect(lambda _i: self.changed.emit())
        self.target_box = QSpinBox()
        self.target_box.setRange(1, 10_000_000)
        self.target_box.setSingleStep(5000)
        self.target_box.setGroupSeparatorShown(True)
        self.days_edit = QLineEdit()
        self.days_edit.setMaximumWidth(200)
        self.days_edit.setMinimumWidth(self.days_edit.fontMetrics().horizontalAdvance("mon,tue,wed,thu,fri,sat") + 16)
        self.days_edit.setToolTip("Working days, e.g. mon,tue,wed,thu,fri")
        self.apply_button = apply = QPushButton("Apply")
        apply.clicked.connect(self._apply_settings)
        top = QHBoxLayout()
        for label, widget in (("Month", self.month_box), ("Monthly target", self.target_box),
                              ("Working days", self.days_edit)):
            top.addWidget(QLabel(label))
            top.addWidget(widget)
        top.addWidget(apply)
        top.addStretch(1)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)

        self.cumulative_plot = pg.PlotWidget(background="w", title="Cumulative images against the monthly target")
        self.cumulative_plot.addLegend(offset=(10, 10))
        self.target_line = self.cumulative_plot.plot([], [], pen=_series_pen("target", width=2, style=Qt.PenStyle.DashLine),
                                                     name="target")
        self.cumulative_line = self.cumulative_plot.plot([], [], pen=_series_pen("produced", width=3), name="produced")
        self.projection_line = self.cumulative_plot.plot(
            [], [], pen=_series_pen("produced", width=2, style=Qt.PenStyle.DotLine), name="projection at the recent rate")
        self.cumulative_plot.setLabel("left", "images (cumulative)")
        self.empty_text = pg.TextItem("", color=(90, 90, 90), anchor=(0.5, 0.5))
        self.cumulative_plot.addItem(self.empty_text)
        self.daily_plot = pg.PlotWidget(
            background="w", title="Images per day<br><span style='font-size: 8pt'>blue: working day · grey: not a "
                                  "working day · light: today so far</span>")  # two lines: fits a half-screen chart
        self.daily_bars = pg.BarGraphItem(x=[], height=[], width=0.8, brush=colours.SERIES["daily"])
        self.daily_plot.addItem(self.daily_bars)
        self.daily_plot.setLabel("left", "images per day")
        # The quarantine rate on its own axis (right, per cent), not scaled to the bars.
        item = self.daily_plot.plotItem
        self.quarantine_view = pg.ViewBox()
        item.showAxis("right")
        item.scene().addItem(self.quarantine_view)
        item.getAxis("right").linkToView(self.quarantine_view)
        item.getAxis("right").setLabel("quarantined", units="%", color=colours.hex_colour(colours.SERIES["quarantine"]))
        self.quarantine_view.setXLink(item)
        self.quarantine_view.setMouseEnabled(x=False, y=False)
        self.quarantine_line = pg.PlotDataItem([], [], pen=_series_pen("quarantine", width=2), symbol="o", symbolSize=4,
                                               symbolBrush=colours.SERIES["quarantine"])
        self.quarantine_view.addItem(self.quarantine_line)
        item.vb.sigResized.connect(self._align_quarantine_view)
        for plot in (self.cumulative_plot, self.daily_plot):
            plot.setMenuEnabled(False)
            plot.showGrid(y=True, alpha=0.3)
            plot.setMouseEnabled(x=False, y=False)
            plot.hideButtons()
        charts = QWidget()
        c_layout = QVBoxLayout(charts)
        c_layout.setContentsMargins(0, 0, 0, 0)
        c_layout.addWidget(self.cumulative_plot, 1)
        c_layout.addWidget(_ExportBar(self, "production-days", lambda: self.data.days if self.data else [],
                                      plot=self.cumulative_plot, settings=settings))
        c_layout.addWidget(self.daily_plot, 1)
        c_layout.addWidget(_ExportBar(self, "production-daily", lambda: self.data.days if self.data else [],
                                      plot=self.daily_plot, settings=settings))

        self.forecast_model = RowsModel(FORECAST_COLUMNS, self)
        self.forecast_table, _ = make_table(self.forecast_model)
        # the lab-wide forecasts first, then the classes by date (a header click still sorts)
        self.forecast_table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
        self.breakdown_box = QComboBox()
        for title, key in (("Per scanner", "by_scanner"), ("Per station", "by_station"),
                           ("Per technician", "by_technician")):
            self.breakdown_box.addItem(title, key)
        self.breakdown_box.currentIndexChanged.connect(lambda _i: self._show_breakdown())
        self.breakdown_model = RowsModel(BREAKDOWN_COLUMNS, self)
        self.breakdown_table, _ = make_table(self.breakdown_model)
        side = QWidget()
        s_layout = QVBoxLayout(side)
        s_layout.setContentsMargins(0, 0, 0, 0)
        s_layout.addWidget(QLabel("Forecasts at the recent rate (basis in the last column)"))
        s_layout.addWidget(self.forecast_table, 1)
        s_layout.addWidget(_ExportBar(self, "forecast", lambda: self.forecast_model.rows, settings=settings))
        s_layout.addWidget(self.breakdown_box)
        s_layout.addWidget(self.breakdown_table, 1)
        s_layout.addWidget(_ExportBar(self, "production-breakdown", lambda: self.breakdown_model.rows,
                                      settings=settings))
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(charts)
        splitter.addWidget(side)
        splitter.setSizes([500, 690])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addWidget(splitter, 1)

    @property
    def month(self) -> str:
        return self.month_box.currentData()

    def _align_quarantine_view(self) -> None:
        item = self.daily_plot.plotItem
        self.quarantine_view.setGeometry(item.vb.sceneBoundingRect())
        self.quarantine_view.linkedViewChanged(item.vb, self.quarantine_view.XAxis)

    def show_production(self, prod: Production | None) -> None:
        self.data = prod
        if prod is None:
            return
        if not self.target_box.hasFocus():
            self.target_box.setValue(prod.settings.monthly_target)
        if not self.days_edit.hasFocus():
            self.days_edit.setText(",".join(WEEKDAYS[d] for d in prod.settings.working_days))
        n = len(prod.days)
        first = date.fromisoformat(prod.days[0]["day"])
        month_name = f"day of {first:%B %Y}"
        x = np.arange(1, n + 1)
        self.target_line.setData(x, [d["target_cumulative"] for d in prod.days])
        # produced: from the lab's first image (a zero point the day before) up to today, never beyond
        began = prod.target_from.isoformat() if prod.target_from else "9999"
        past = [(k + 1, d["cumulative"]) for k, d in enumerate(prod.days)
                if d["cumulative"] is not None and d["day"] >= began]
        if past and past[0][0] > 1:
            past.insert(0, (past[0][0] - 1, 0))
        self.cumulative_line.setData([k for k, _ in past], [v for _, v in past])
        if prod.month_end_projection is not None and past:
            self.projection_line.setData([past[-1][0], n], [past[-1][1], prod.month_end_projection])
        else:
            self.projection_line.setData([], [])
        high = max([prod.month_target, prod.month_end_projection or 0, *(v for _, v in past)]) or 10
        self.cumulative_plot.setXRange(0.4, n + 0.6, padding=0)
        self.cumulative_plot.setYRange(0, high * 1.08, padding=0)
        self.cumulative_plot.setLabel("bottom", month_name)
        self.empty_text.setText(NO_IMAGES_YET if prod.empty else "")
        self.empty_text.setPos((n + 1) / 2, high * 0.54)
        bars = [(k + 1, d) for k, d in enumerate(prod.days) if d["images"] is not None]
        heights = [d["images"] for _, d in bars]
        brushes = [pg.mkBrush(colours.SERIES["today"] if d["today"] else colours.SERIES["daily"] if d["working"]
                              else colours.SERIES["non_working"]) for _, d in bars]
        self.daily_bars.setOpts(x=[k for k, _ in bars], height=heights, width=0.8, brushes=brushes)
        self.daily_plot.setXRange(0.4, n + 0.6, padding=0)
        self.daily_plot.setYRange(0, max([10, *heights]) * 1.15, padding=0)
        self.daily_plot.setLabel("bottom", month_name)
        rates = [d["quarantine_rate"] * 100 for _, d in bars]
        self.quarantine_line.setData([k for k, _ in bars], rates)
        self.quarantine_view.setYRange(0, max([5.0, *rates]) * 1.2, padding=0)
        self._align_quarantine_view()
        looked = sum(d["quarantined"] or 0 for d in prod.days)
        self.summary.setText(prod.summary() + ("" if prod.empty else
                                               f" · {looked:,} file(s) quarantined this month (purple, right axis)"))
        self.forecast_model.set_rows([{"what": f.what, "remaining_images": f.remaining_images, "rate": f.rate,
                                       "working_days": f.working_days, "eta": f.eta, "basis": f.basis}
                                      for f in prod.forecasts])
        self._show_breakdown()

    def _show_breakdown(self) -> None:
        if self.data is None:
            return
        key = self.breakdown_box.currentData()
        rows = getattr(self.data, key)
        total = sum(r["images"] for r in rows) or 1
        name = {"by_scanner": "scanner", "by_station": "station", "by_technician": "technician"}[key]
        self.breakdown_model.set_rows([{"name": r[name], "images": r["images"], "share": r["images"] / total}
                                       for r in rows])
        # Names stretch once there are some; an empty table keeps its columns at their headers.
        model = self.breakdown_model
        model.columns = [replace(c, stretch=c.key == "name" and bool(rows)) for c in model.columns]
        size_columns(self.breakdown_table, model.columns)

    def _apply_settings(self) -> None:
        target, days = self.target_box.value(), [d for d in self.days_edit.text().replace(" ", "").split(",") if d]
        tasks.call(lambda: set_production_settings(self._lab.catalog, monthly_target=target, working_days=days),
                   lambda _s: self.changed.emit(), lambda e: show_error(self, "Production settings", e), self)


class ClassProgressView(QWidget):
    """Per-class ratio progress against the KPIs; blocking classes stand out."""

    def __init__(self, parent: QWidget | None = None, settings: QSettings | None = None):
        super().__init__(parent)
        self.settings = settings  # where the save dialogs remember their folders
        self.model = PairedRowsModel(CLASS_COLUMNS, CLASS_TEXT, self, row_colour=lambda r: VERDICT_COLOURS.get(r["verdict"]))
        self.table, self.proxy = make_table(self.model)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Filter classes (name, family, verdict)…")
        self.search.textChanged.connect(self.proxy.setFilterFixedString)
        self.blocking = QCheckBox("Only classes that block the next model")
        self.blocking.toggled.connect(lambda _on: self._show())
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        # The legend of the row colours, with how many classes have each verdict.
        self.legend: dict[str, QLabel] = {}
        legend = QHBoxLayout()
        legend.addWidget(QLabel("Verdicts:"))
        for verdict in class_dash.VERDICTS:
            rgb = colours.tint(colours.VERDICT_COLOURS[verdict], VERDICT_TINT)
            label = QLabel(verdict)
            label.setStyleSheet(f"background: {colours.hex_colour(rgb)}; color: #202020; border: 1px solid #999;"
                                " border-radius: 3px; padding: 1px 6px;")
            label.setToolTip("blocks the next model" if verdict in class_dash.BLOCKING else "")
            self.legend[verdict] = label
            legend.addWidget(label)
        legend.addStretch(1)
        self._rows: list[dict] = []
        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addWidget(self.blocking)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(legend)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addWidget(_ExportBar(self, "class-progress", lambda: self.model.rows, class_dash.COLUMNS,
                                    settings=settings))

    def show_classes(self, rows: list[dict]) -> None:
        self._rows = rows
        self._show()

    def _show(self) -> None:
        rows = [r for r in self._rows if r["blocks"]] if self.blocking.isChecked() else self._rows
        self.model.set_rows(rows)
        counts = {v: sum(1 for r in self._rows if r["verdict"] == v) for v in class_dash.VERDICTS}
        blocking = sum(1 for r in self._rows if r["blocks"])
        for verdict, label in self.legend.items():
            label.setText(f"{verdict} ({counts[verdict]})" + (" ■" if verdict in class_dash.BLOCKING else ""))
        self.summary.setText(f"{len(self._rows)} classes · {blocking} block the next model (■: "
                             f"{' or '.join(class_dash.BLOCKING)})" if self._rows else
                             "No classes yet — publish a quota plan (Quotas) to follow each class's progress")
