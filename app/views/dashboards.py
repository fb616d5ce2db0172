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
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSize, Qt, Signal
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
from app.dialogs import show_error
from app.table_model import Column, RowsModel, make_table, percent
from core.dashboard import classes as class_dash
from core.dashboard.heatmap import DIMENSIONS, Heatmap, cell_rows, quota_heatmap
from core.dashboard.production import WEEKDAYS, Production, production, set_production_settings
from core.lab import Lab
from core.quota.plans import list_plans
from core.quota.status import QuotaStatus, quota_status

DIM_TITLES = {"class": "Class", "luggage_type": "Luggage type", "clutter": "Clutter", "scanner_model": "Scanner model",
              "pose": "Pose"}
VERDICT_COLOURS = {"test set incomplete": QColor(255, 205, 205), "train incomplete": QColor(255, 225, 190),
                   "awaiting evaluation": None, "meets KPI": QColor(205, 240, 205),
                   "needs next step": QColor(255, 245, 190)}


def _pct(v: Any) -> str:
    return "—" if v is None else f"{v:.1%}"


CLASS_COLUMNS = [
    Column("class_name", "Class"), Column("verdict", "Verdict"),
    Column("test_fill", "Test fill", percent, fill=True),
    Column("test_done", "Test"), Column("test_target", "Test target"),
    Column("train_done", "Train"), Column("train_target", "Train target"),
    Column("ratio", "Train:test", lambda v: f"{v:.2f}"),
    Column("ratio_step", "Step", lambda v: f"{v}:1", tooltip="The ratio step the class is on"),
    Column("detection_rate", "Detection", _pct, tooltip="Latest KPI result on the test set"),
    Column("dr_low", "95% CI low", _pct), Column("dr_high", "95% CI high", _pct),
    Column("dr_target", "Target", _pct),
    Column("false_alarm_rate", "False alarms", _pct), Column("far_max", "Max FA", _pct),
    Column("run", "Run"), Column("family", "Family"),
]
CELL_COLUMNS = [
    Column("class_name", "Class"), Column("luggage_type", "Luggage"), Column("clutter_level", "Clutter"),
    Column("scanner_model", "Model"), Column("pose", "Pose"),
    Column("test_target", "Test target"), Column("test_setups", "Test"), Column("test_deficit", "Test deficit"),
    Column("train_target", "Train target"), Column("train_setups", "Train"), Column("train_deficit", "Train deficit"),
]
FORECAST_COLUMNS = [Column("what", "Complete when"), Column("remaining_images", "Images left"),
                    Column("working_days", "Working days", lambda v: "—" if v is None else f"{v:.1f}"),
                    Column("eta", "Expected", lambda v: "no recent production" if v is None else str(v))]


@dataclass(frozen=True)
class DashboardSnapshot:
    plans: list[dict]
    plan_id: int | None
    status: QuotaStatus | None
    heatmap: Heatmap | None
    production: Production | None
    classes: list[dict]
    load_ms: float


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
    return DashboardSnapshot(plans, plan_id, status, heat, prod, classes, (time.perf_counter() - t0) * 1000)


def _fill_lut() -> np.ndarray:
    """Red (0 %) → amber → green (100 %), 256 entries."""
    f = np.linspace(0, 1, 256)
    r = np.where(f < 0.5, 235, 235 - (f - 0.5) * 2 * 185)
    g = np.where(f < 0.5, 70 + f * 2 * 150, 220 - (f - 0.5) * 2 * 40)
    b = np.full(256, 70.0)
    return np.stack([r, g, b], axis=1).astype(np.uint8)


def _save_chart(parent: QWidget, plot: pg.PlotWidget, name: str) -> str | None:
    path, _ = QFileDialog.getSaveFileName(parent, "Save chart", f"{name}.png", "PNG image (*.png)")
    if path:
        export_chart_png(plot, path)
    return path or None


def export_chart_png(plot: pg.PlotWidget, path: str) -> None:
    from pyqtgraph.exporters import ImageExporter

    exporter = ImageExporter(plot.plotItem)
    exporter.parameters()["width"] = max(1200, int(plot.width() * 1.5))
    exporter.export(path)


class _ExportBar(QWidget):
    """CSV / Excel (and PNG) buttons under a table or chart."""

    def __init__(self, parent: QWidget, name: str, rows, columns=None, plot: pg.PlotWidget | None = None):
        super().__init__(parent)
        self._name, self._rows, self._columns, self._plot = name, rows, columns, plot
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
            button.clicked.connect(lambda: _save_chart(self, plot, name))
            layout.addWidget(button)

    def _save(self, suffix: str) -> None:
        filters = {".csv": "CSV (*.csv)", ".xlsx": "Excel (*.xlsx)"}
        path, _ = QFileDialog.getSaveFileName(self, "Export table", f"{self._name}{suffix}", filters[suffix])
        if path:
            export_rows(self, self._rows(), path, self._columns)


def export_rows(parent: QWidget, rows: list[dict], path: str, columns=None) -> None:
    from core.dashboard.export import export_table

    tasks.call(lambda: export_table(rows, path, columns), lambda p: None,
               lambda e: show_error(parent, "Export", e), parent)


class QuotaHeatmapView(QWidget):
    """The heatmap tab: two dimensions, filters, split; click a cell for its detail."""

    changed = Signal()  # a control changed: reload
    cell_clicked = Signal(str, str)

    def __init__(self, lab: Lab, parent: QWidget | None = None):
        super().__init__(parent)
        self._lab = lab
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
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setLookupTable(_fill_lut())
        self.image.setLevels((0.0, 1.0))
        self.plot.addItem(self.image)
        self._labels: list[pg.TextItem] = []
        self.plot.scene().sigMouseClicked.connect(self._clicked)

        self.detail_title = QLabel("Click a cell to see its quota cells, deficits and images")
        self.detail_title.setWordWrap(True)
        self.cell_model = RowsModel(CELL_COLUMNS, self)
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
        d_layout.addWidget(_ExportBar(self, "quota-cells", lambda: self.cell_model.rows))

        left = QWidget()
        l_layout = QVBoxLayout(left)
        l_layout.setContentsMargins(0, 0, 0, 0)
        l_layout.addWidget(self.plot, 1)
        l_layout.addWidget(_ExportBar(self, "quota-fill", lambda: self.heat.as_rows() if self.heat else [],
                                      plot=self.plot))
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(detail)
        splitter.setSizes([620, 480])
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(self.summary)
        layout.addWidget(splitter, 1)

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
        self.changed.emit()

    # -- showing --
    def show_heatmap(self, status: QuotaStatus | None, heat: Heatmap | None) -> None:
        self.status, self.heat = status, heat
        self._fill_filter_choices(status)
        for label in self._labels:
            label.setVisible(False)
        if heat is None or not heat.row_labels:
            self.image.clear()
            self.summary.setText("No published quota plan yet" if heat is None else "No cells match the filters")
            return
        n_rows, n_cols = len(heat.row_labels), len(heat.col_labels)
        grid = np.full((n_rows, n_cols), np.nan)
        for r in range(n_rows):
            for c in range(n_cols):
                fill = heat.fill(r, c)
                if fill is not None:
                    grid[r, c] = fill
        shown = np.nan_to_num(grid, nan=-1.0)
        lut = np.vstack([[[235, 235, 235]], _fill_lut()]).astype(np.uint8)
        self.image.setLookupTable(lut)
        self.image.setLevels((-1.0 / 256, 1.0))
        self.image.setImage(shown, autoLevels=False)
        self.image.setRect(QRectF(0, 0, n_cols, n_rows))
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
                            self._labels.append(pg.TextItem("", color=(20, 20, 20), anchor=(0.5, 0.5)))
                            self.plot.addItem(self._labels[-1])
                        label = self._labels[used]
                        label.setText(f"{grid[r, c]:.0%}")
                        label.setPos(c + 0.5, r + 0.5)
                        label.setVisible(True)
                        used += 1
        done, target = heat.totals()
        self.summary.setText(
            f"{heat.split.capitalize()} split: {done:,} of {target:,} setups ({done / target:.0%}) · "
            f"{DIM_TITLES[heat.rows_dim]} × {DIM_TITLES[heat.cols_dim]} · grey: no target" if target else "")

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
        fill = heat.fill(r, c)
        self.detail_title.setText(
            f"{DIM_TITLES[heat.rows_dim]} {row_label} × {DIM_TITLES[heat.cols_dim]} {col_label} ({heat.split}): "
            f"{heat.done[r][c]:,} of {heat.target[r][c]:,} setups"
            + ("" if fill is None else f" ({fill:.0%}), deficit {heat.deficit(r, c):,}"))
        where = {heat.rows_dim: [row_label], heat.cols_dim: [col_label], **heat.filters}
        split = heat.split

        def work():
            from core.catalog import dashboard_store

            return cell_rows(status, heat, row_label, col_label), dashboard_store.cell_images(
                self._lab.catalog, split, where, 40)

        def done(result) -> None:
            cells, images = result
            self.cell_model.set_rows(cells)
            self.cell_table.resizeColumnsToContents()
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

    def __init__(self, lab: Lab, parent: QWidget | None = None):
        super().__init__(parent)
        self._lab = lab
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
        self.days_edit.setToolTip("Working days, e.g. mon,tue,wed,thu,fri")
        apply = QPushButton("Apply")
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

        self.cumulative_plot = pg.PlotWidget(background="w", title="Cumulative images vs monthly target")
        self.cumulative_plot.addLegend(offset=(10, 10))
        self.cumulative_line = self.cumulative_plot.plot([], [], pen=pg.mkPen((30, 120, 50), width=3), name="produced")
        self.target_line = self.cumulative_plot.plot([], [], pen=pg.mkPen((200, 80, 60), width=2, style=Qt.PenStyle.DashLine),
                                                     name="target")
        self.daily_plot = pg.PlotWidget(background="w", title="Images per day (grey: not a working day) · quarantine rate")
        self.daily_bars = pg.BarGraphItem(x=[], height=[], width=0.8, brush=(90, 130, 200))
        self.daily_plot.addItem(self.daily_bars)
        self.quarantine_line = self.daily_plot.plot([], [], pen=pg.mkPen((200, 60, 60), width=2), symbol="o",
                                                    symbolSize=4, name="quarantined")
        for plot in (self.cumulative_plot, self.daily_plot):
            plot.setMenuEnabled(False)
            plot.showGrid(y=True, alpha=0.3)
        charts = QWidget()
        c_layout = QVBoxLayout(charts)
        c_layout.setContentsMargins(0, 0, 0, 0)
        c_layout.addWidget(self.cumulative_plot, 1)
        c_layout.addWidget(_ExportBar(self, "production-days", lambda: self.data.days if self.data else [],
                                      plot=self.cumulative_plot))
        c_layout.addWidget(self.daily_plot, 1)
        c_layout.addWidget(_ExportBar(self, "production-daily", lambda: self.data.days if self.data else [],
                                      plot=self.daily_plot))

        self.forecast_model = RowsModel(FORECAST_COLUMNS, self)
        self.forecast_table, _ = make_table(self.forecast_model)
        self.breakdown_box = QComboBox()
        for title, key in (("Per scanner", "by_scanner"), ("Per station", "by_station"),
                           ("Per technician", "by_technician")):
            self.breakdown_box.addItem(title, key)
        self.breakdown_box.currentIndexChanged.connect(lambda _i: self._show_breakdown())
        self.breakdown_model = RowsModel([Column("name", "Name"), Column("images", "Images"),
                                          Column("share", "Share", percent)], self)
        self.breakdown_table, _ = make_table(self.breakdown_model)
        side = QWidget()
        s_layout = QVBoxLayout(side)
        s_layout.setContentsMargins(0, 0, 0, 0)
        s_layout.addWidget(QLabel("Forecast at the recent rate"))
        s_layout.addWidget(self.forecast_table, 1)
        s_layout.addWidget(_ExportBar(self, "forecast", lambda: self.forecast_model.rows))
        s_layout.addWidget(self.breakdown_box)
        s_layout.addWidget(self.breakdown_table, 1)
        s_layout.addWidget(_ExportBar(self, "production-breakdown", lambda: self.breakdown_model.rows))
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(charts)
        splitter.addWidget(side)
        splitter.setSizes([700, 420])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addWidget(splitter, 1)

    @property
    def month(self) -> str:
        return self.month_box.currentData()

    def show_production(self, prod: Production | None) -> None:
        self.data = prod
        if prod is None:
            return
        if not self.target_box.hasFocus():
            self.target_box.setValue(prod.settings.monthly_target)
        if not self.days_edit.hasFocus():
            self.days_edit.setText(",".join(WEEKDAYS[d] for d in prod.settings.working_days))
        x = np.arange(1, len(prod.days) + 1)
        self.cumulative_line.setData(x, [d["cumulative"] for d in prod.days])
        self.target_line.setData(x, [d["target_cumulative"] for d in prod.days])
        heights = [d["images"] for d in prod.days]
        brushes = [pg.mkBrush((90, 130, 200) if d["working"] else (190, 190, 190)) for d in prod.days]
        self.daily_bars.setOpts(x=x, height=heights, width=0.8, brushes=brushes)
        top = max(heights) if any(heights) else 1
        self.quarantine_line.setData(x, [d["quarantine_rate"] * top for d in prod.days])
        looked = sum(d["quarantined"] for d in prod.days)
        ahead = prod.month_images - prod.month_target_to_date
        self.summary.setText(
            f"{prod.month}: {prod.month_images:,} images of {prod.settings.monthly_target:,} "
            f"({prod.month_working_days} working days) · {abs(ahead):,} {'ahead of' if ahead >= 0 else 'behind'} "
            f"the target to date ({prod.month_target_to_date:,}) · recent rate {prod.recent_rate:,.0f} per working day "
            f"· {looked:,} file(s) quarantined this month (red line: daily quarantine rate, scaled to the bars)")
        self.forecast_model.set_rows([{"what": f.what, "remaining_images": f.remaining_images,
                                       "working_days": f.working_days, "eta": f.eta} for f in prod.forecasts])
        self.forecast_table.resizeColumnsToContents()
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

    def _apply_settings(self) -> None:
        target, days = self.target_box.value(), [d for d in self.days_edit.text().replace(" ", "").split(",") if d]
        tasks.call(lambda: set_production_settings(self._lab.catalog, monthly_target=target, working_days=days),
                   lambda _s: self.changed.emit(), lambda e: show_error(self, "Production settings", e), self)


class ClassProgressView(QWidget):
    """Per-class ratio progress against the KPIs; blocking classes stand out."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = RowsModel(CLASS_COLUMNS, self, row_colour=lambda r: VERDICT_COLOURS.get(r["verdict"]))
        self.table, self.proxy = make_table(self.model)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Filter classes (name, family, verdict)…")
        self.search.textChanged.connect(self.proxy.setFilterFixedString)
        self.blocking = QCheckBox("Only classes that block the next model")
        self.blocking.toggled.connect(lambda _on: self._show())
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self._rows: list[dict] = []
        self._sized = False
        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addWidget(self.blocking)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addWidget(_ExportBar(self, "class-progress", lambda: self.model.rows, class_dash.COLUMNS))

    def show_classes(self, rows: list[dict]) -> None:
        self._rows = rows
        self._show()

    def _show(self) -> None:
        rows = [r for r in self._rows if r["blocks"]] if self.blocking.isChecked() else self._rows
        self.model.set_rows(rows)
        if rows and not self._sized:
            self._sized = True
            self.table.resizeColumnsToContents()
        counts = {v: sum(1 for r in self._rows if r["verdict"] == v) for v in class_dash.VERDICTS}
        blocking = sum(1 for r in self._rows if r["blocks"])
        self.summary.setText(f"{len(self._rows)} classes · {blocking} block the next model (red: test set "
                             "incomplete, orange: train incomplete) · "
                             + " · ".join(f"{n} {v}" for v, n in counts.items() if n))
