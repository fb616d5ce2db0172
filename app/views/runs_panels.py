"""The tabs of the Runs area's selected run: live curves, per-class results against the KPIs, the
confusion view, the worst images per class, the loop's next steps, and the run's record.

Each panel only shows what it is handed (read by the area on the pool thread); the charts
(pyqtgraph) are built on :meth:`build`, when the area is first shown.
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.table_model import Column, RowsModel, make_table
from app.views.runs_dialogs import pct, when
from core import colours

# One class a row in the per-class charts: tall enough for its name on the axis.
ROW_PX = 20
CHART_MARGIN_PX = 70
MEETS = (40, 160, 80)
MISSES = (215, 48, 39)
TARGET = (60, 60, 60)
NOT_EVALUATED = "Shown once the run has finished and been evaluated on its test set."


def remove_from_pyqtgraph(widget: QWidget) -> None:
    """Take the charts under ``widget`` out of pyqtgraph's registry of views before Qt deletes them."""
    import pyqtgraph as pg

    for view in widget.findChildren(pg.GraphicsView):
        for item in view.scene().items():
            if isinstance(item, pg.ViewBox):
                pg.ViewBox.AllViews.pop(item, None)


def _note(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    return label


# -- curves ----------------------------------------------------------------------------------------------


class CurvesPanel(QWidget):
    """Loss per step, validation AP50 per epoch, images/s per step: appended to as events arrive."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.run_id: int | None = None
        self.after_seq = 0
        self.steps: list[dict[str, Any]] = []
        self.epochs: list[dict[str, Any]] = []
        self.note = _note("")
        self.plots: list[Any] = []
        self._layout = QVBoxLayout(self)
        self._layout.addWidget(self.note)
        self._row = QHBoxLayout()
        self._layout.addLayout(self._row, 1)

    def build(self) -> None:
        import pyqtgraph as pg

        for title, left in (("Training loss per step", "loss"), ("Validation AP50 per epoch", "AP50 (%)"),
                            ("Throughput", "images/s")):
            plot = pg.PlotWidget(background="w", title=title)
            plot.setMenuEnabled(False)
            plot.setLabel("left", left)
            plot.setLabel("bottom", "epoch" if "epoch" in title else "step")
            plot.showGrid(x=True, y=True, alpha=0.2)
            self._row.addWidget(plot)
            self.plots.append(plot)
        self.loss_curve = self.plots[0].plot([], [], pen=pg.mkPen(colours.SERIES["daily"], width=2))
        self.epoch_loss = self.plots[0].plot([], [], pen=None, symbol="o", symbolSize=7,
                                             symbolBrush=colours.SERIES["target"])
        self.ap50_curve = self.plots[1].plot([], [], pen=pg.mkPen(colours.SERIES["produced"], width=2), symbol="o",
                                             symbolSize=7, symbolBrush=colours.SERIES["produced"])
        self.plots[1].setYRange(0, 100)
        self.speed_curve = self.plots[2].plot([], [], pen=pg.mkPen(colours.SERIES["quarantine"], width=2))

    def reset(self, run_id: int | None) -> None:
        self.run_id, self.after_seq = run_id, 0
        self.steps, self.epochs = [], []
        self._draw()

    def add(self, run_id: int, events: list[dict[str, Any]]) -> None:
        """Append the run's events after :attr:`after_seq` (those of another run are dropped)."""
        if run_id != self.run_id:
            return
        for e in events:
            if e["seq"] <= self.after_seq:
                continue
            self.after_seq = e["seq"]
            (self.steps if e["event"] == "step" else self.epochs).append(e)
        self._draw()

    @property
    def last_step(self) -> dict[str, Any] | None:
        return self.steps[-1] if self.steps else None

    def _draw(self) -> None:
        if not self.steps and not self.epochs:
            self.note.setText("No curves: the run has not trained a step yet." if self.run_id else "")
        else:
            last = self.epochs[-1] if self.epochs else None
            self.note.setText(f"{len(self.steps):,} step records, {len(self.epochs):,} epoch(s)"
                              + (f"; last epoch {last['epoch']}: loss {last.get('loss') or 0:.4f} in "
                                 f"{last.get('seconds') or 0:.0f} s" if last else ""))
        if not self.plots:
            return
        steps = [e for e in self.steps if e.get("loss") is not None]
        self.loss_curve.setData([e["step"] for e in steps], [e["loss"] for e in steps])
        per_epoch = {e["epoch"]: e.get("steps_per_epoch") for e in self.steps}
        known = [e for e in self.epochs if e.get("loss") is not None and per_epoch.get(e["epoch"])]
        self.epoch_loss.setData([e["epoch"] * per_epoch[e["epoch"]] for e in known], [e["loss"] for e in known])
        val = [e for e in self.epochs if (e.get("val") or {}).get("AP50") is not None]
        self.ap50_curve.setData([e["epoch"] for e in val], [100 * e["val"]["AP50"] for e in val])
        speed = [e for e in self.steps if e.get("images_per_s") is not None]
        self.speed_curve.setData([e["step"] for e in speed], [e["images_per_s"] for e in speed])


def progress_line(run_id: int, step: dict[str, Any], epochs: int | None = None) -> str:
    """A running run's last step as one line: epoch, step, loss, images/s, time left."""
    eta = step.get("eta_s")
    left = "—" if eta is None else f"{int(eta // 3600)}:{int(eta % 3600 // 60):02d}:{int(eta % 60):02d}"
    loss = step.get("loss")
    return (f"Run {run_id}: epoch {step.get('epoch')}" + (f"/{epochs}" if epochs else "")
            + f", step {step.get('step')}, loss {'—' if loss is None else f'{loss:.4f}'}, "
            f"{step.get('images_per_s') or 0:.1f} images/s, about {left} left")


# -- results -------------------------------------------------------------------------------------------


def verdict(row: dict[str, Any], kpi: dict[str, Any] | None) -> str:
    if row["pd"] is None:
        return "not measured"
    if kpi is None:
        return "no KPI"
    far_ok = row["far"] is None or row["far"] <= kpi["max_false_alarm_rate"]
    return "meets KPI" if row["pd"] >= kpi["detection_rate"] and far_ok else "misses KPI"


def _interval(row: dict[str, Any], low: str, high: str) -> str:
    return "" if row[low] is None else f"{100 * row[low]:.0f}–{100 * row[high]:.0f}%"


RESULT_COLUMNS = [
    Column("class_name", "Class", stretch=True),
    Column("positives", "Setups", tooltip="Distinct test setups (item × bag × pose × scanner model) of the class"),
    Column("pd", "Pd", pct, tooltip="Detection rate over the setups at the class's threshold τ"),
    Column("pd_interval", "Pd 95%", tooltip="Wilson score interval of the detection rate"),
    Column("target", "Target", pct, tooltip="The KPI's minimum detection rate"),
    Column("far", "False alarms", pct, tooltip="Share of clean-bag setups alarmed on by this class"),
    Column("far_max", "Max", pct, tooltip="The KPI's maximum false-alarm rate"),
    Column("ap50", "AP50", pct),
    Column("threshold", "τ", lambda v: "—" if v is None else f"{v:.3f}"),
    Column("verdict", "Verdict"),
]


def result_rows(record: dict[str, Any], kpis: dict[str, dict[str, Any]], split: str) -> list[dict[str, Any]]:
    """The run's per-class rows of ``split`` with their KPI targets and verdicts."""
    out = []
    for r in record["results"]:
        if r["split"] != split:
            continue
        kpi = kpis.get(r["class_name"])
        out.append({**r, "pd_interval": _interval(r, "pd_low", "pd_high"),
                    "target": kpi and kpi["detection_rate"], "far_max": kpi and kpi["max_false_alarm_rate"],
                    "verdict": verdict(r, kpi)})
    return sorted(out, key=lambda r: r["class_name"])


class ResultsPanel(QWidget):
    """Per class: Pd with its Wilson interval against the KPI target, the false-alarm rate against its
    maximum (charts, one class a row), and the table with AP50 and the operating threshold τ."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.rows: list[dict[str, Any]] = []
        self._record: dict[str, Any] | None = None
        self._kpis: dict[str, dict[str, Any]] = {}
        self.split = QComboBox()
        self.split.currentIndexChanged.connect(lambda _i: self._show())
        self.summary = _note("")
        self.model = RowsModel(RESULT_COLUMNS, self, row_colour=self._row_colour)
        self.table, _ = make_table(self.model)
        self.table.setObjectName("run_results")
        self.chart_holder = QScrollArea()
        self.chart_holder.setWidgetResizable(True)
        self.chart_holder.setMinimumWidth(360)
        self.chart_holder.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.chart = None
        top = QHBoxLayout()
        top.addWidget(QLabel("Split"))
        top.addWidget(self.split)
        top.addWidget(self.summary, 1)
        caption = _note("Pd with its 95% interval, │ the KPI's target; false alarms on clean bags, │ the maximum. "
                        "Green meets the KPI, red misses it.")
        chart_side = QWidget()
        chart_layout = QVBoxLayout(chart_side)
        chart_layout.setContentsMargins(0, 0, 0, 0)
        chart_layout.addWidget(caption)
        chart_layout.addWidget(self.chart_holder, 1)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(chart_side)
        split.addWidget(self.table)
        split.setSizes([440, 760])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(split, 1)

    @staticmethod
    def _row_colour(row: dict[str, Any]) -> QColor | None:
        rgb = {"meets KPI": MEETS, "misses KPI": MISSES}.get(row["verdict"])
        return QColor(*colours.tint(rgb, 0.8)) if rgb else None

    def build(self) -> None:
        import pyqtgraph as pg

        self.chart = pg.GraphicsLayoutWidget()
        self.chart.setBackground("w")
        self.pd_plot = self.chart.addPlot()
        self.far_plot = self.chart.addPlot()
        self.far_plot.setYLink(self.pd_plot)
        self.far_plot.getAxis("left").setStyle(showValues=False)
        self.far_plot.getAxis("left").setWidth(6)
        self.chart.ci.layout.setColumnStretchFactor(0, 3)
        self.chart.ci.layout.setColumnStretchFactor(1, 2)
        for plot in (self.pd_plot, self.far_plot):
            plot.setMenuEnabled(False)
            plot.setMouseEnabled(x=False, y=False)
            plot.hideButtons()
            plot.showGrid(x=True, alpha=0.2)
            # The rates on top: with many classes the chart scrolls, and the top is what shows first.
            plot.showAxis("top")
            plot.hideAxis("bottom")
            plot.getAxis("top").setStyle(tickFont=QFont("sans", 8))
        self.chart_holder.setWidget(self.chart)

    def show_results(self, record: dict[str, Any], kpis: dict[str, dict[str, Any]]) -> None:
        self._record, self._kpis = record, kpis
        splits = [s for s in ("test", "validation") if any(r["split"] == s for r in record["results"])]
        current = self.split.currentText()
        self.split.blockSignals(True)
        self.split.clear()
        self.split.addItems(splits)
        self.split.setCurrentIndex(max(0, self.split.findText(current)))
        self.split.blockSignals(False)
        self._show()

    def _show(self) -> None:
        record = self._record
        if record is None:
            return
        split = self.split.currentText() or "test"
        self.rows = result_rows(record, self._kpis, split)
        self.model.set_rows(self.rows)
        if not self.rows:
            self.summary.setText(NOT_EVALUATED if record["state"] != "done" else "This run has no per-class results.")
        else:
            counts = {v: sum(1 for r in self.rows if r["verdict"] == v) for v in ("meets KPI", "misses KPI")}
            coco = (record.get("metrics") or {}).get("coco") or {}
            self.summary.setText(
                f"{split.capitalize()} split: {counts['meets KPI']} class(es) meet their KPI, {counts['misses KPI']} "
                f"miss it, {len(self.rows) - sum(counts.values())} not measured; AP {pct(coco.get('AP'))}, "
                f"AP50 {pct(coco.get('AP50'))}, false-alarm rate {pct(record['metrics'].get('false_alarm_rate'))}")
        self._draw()

    def _draw(self) -> None:
        if self.chart is None:
            return
        import numpy as np
        import pyqtgraph as pg

        rows = self.rows
        n = len(rows)
        self.chart.setMinimumHeight(max(160, n * ROW_PX + CHART_MARGIN_PX))
        ys = [n - 1 - i for i in range(n)]  # the first class at the top
        ticks = [[(y, r["class_name"]) for y, r in zip(ys, rows)]]
        for plot, key, low, high, limit in ((self.pd_plot, "pd", "pd_low", "pd_high", "target"),
                                            (self.far_plot, "far", "far_low", "far_high", "far_max")):
            plot.clear()
            plot.getAxis("left").setTicks(ticks)
            shown = [(y, r) for y, r in zip(ys, rows) if r[key] is not None]
            if shown:
                brushes = [pg.mkBrush(_colour(r[key], r[limit], higher_is_better=key == "pd")) for _y, r in shown]
                plot.addItem(pg.ErrorBarItem(x=np.array([r[key] for _y, r in shown]),
                                             y=np.array([y for y, _r in shown], dtype=float),
                                             left=np.array([r[key] - r[low] for _y, r in shown]),
                                             right=np.array([r[high] - r[key] for _y, r in shown]), beam=0.25,
                                             pen=pg.mkPen((120, 120, 120), width=1)))
                plot.addItem(pg.ScatterPlotItem(x=[r[key] for _y, r in shown], y=[y for y, _r in shown], size=8,
                                                brush=brushes, pen=pg.mkPen(None)))
            marks = [(r[limit], y) for y, r in zip(ys, rows) if r[limit] is not None]
            if marks:
                xs = [x for x, _y in marks for _ in (0, 1)]
                line_ys = [v for _x, y in marks for v in (y - 0.4, y + 0.4)]
                plot.addItem(pg.PlotDataItem(xs, line_ys, connect="pairs", pen=pg.mkPen(TARGET, width=2)))
            top = 1.0 if key == "pd" else _far_scale(rows)
            plot.getAxis("top").setTicks([[(top * f, f"{top * f:.0%}") for f in (0, 0.5, 1.0)]])
            plot.setXRange(0, top, padding=0.03)
            plot.setYRange(-0.6, max(0, n - 1) + 0.6, padding=0)


def _colour(value: float, limit: float | None, higher_is_better: bool) -> tuple[int, int, int]:
    if limit is None:
        return (150, 150, 150)
    return MEETS if (value >= limit if higher_is_better else value <= limit) else MISSES


def _far_scale(rows: list[dict[str, Any]]) -> float:
    """The false-alarm chart's right end: room for the maxima and the rates measured (their intervals,
    often wide on few clean bags, may run off it), at least 10%."""
    highest = max([0.0, *(1.5 * r["far_max"] for r in rows if r["far_max"] is not None),
                   *(1.2 * r["far"] for r in rows if r["far"] is not None)])
    return min(1.0, max(0.1, highest))


# -- confusion ----------------------------------------------------------------------------------------------


class ConfusionPanel(QWidget):
    """True class × the class the run alarmed with (IoU ≥ 0.5 at its threshold) and 'missed'; the last row,
    the clean bags each class alarmed on. Each cell is shaded by its share of the row."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.data: dict[str, Any] | None = None
        self.summary = _note(NOT_EVALUATED)
        self.table = QTableWidget()
        self.table.setObjectName("confusion")
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)

    def clear(self, text: str = NOT_EVALUATED) -> None:
        self.data = None
        self.summary.setText(text)
        self.table.clear()
        self.table.setRowCount(0)
        self.table.setColumnCount(0)

    def show_confusion(self, c: dict[str, Any]) -> None:
        self.data = c
        matrix, alarms = c["matrix"], c["false_alarms"]
        rows = [t for t in c["classes"] if sum(matrix[t].values())]
        # The true classes always have their column (their diagonal), even when nothing was found.
        said = {name for t in rows for name in matrix[t] if name != "missed"} | set(alarms) | set(rows)
        columns = [name for name in c["classes"] if name in said] + ["missed"]
        self.table.clear()
        self.table.setRowCount(len(rows) + 1)
        self.table.setColumnCount(len(columns))
        self.table.setHorizontalHeaderLabels(columns)
        self.table.setVerticalHeaderLabels([*rows, "(clean bags)"])
        for i, true in enumerate(rows):
            total = sum(matrix[true].values())
            for j, name in enumerate(columns):
                self._cell(i, j, matrix[true].get(name, 0), total, good=name == true)
        clean_total = max(1, sum(alarms.values()))
        for j, name in enumerate(columns):
            if name != "missed":
                self._cell(len(rows), j, alarms.get(name, 0), clean_total, good=False)
        boxes = sum(sum(matrix[t].values()) for t in rows)
        missed = sum(matrix[t].get("missed", 0) for t in rows)
        self.summary.setText(
            f"{boxes:,} threat box(es) of {len(rows)} class(es) on the test images: {boxes - missed:,} alarmed on "
            f"(by their own class or another), {missed:,} missed; {sum(alarms.values()):,} false alarm(s) on clean "
            "bags. Rows: the true class; columns: the class alarmed with at its threshold (IoU ≥ 0.5).")

    def _cell(self, row: int, column: int, value: int, total: int, good: bool) -> None:
        item = QTableWidgetItem(f"{value:,}" if value else "")
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if value:
            share = value / max(total, 1)
            item.setBackground(QBrush(QColor(*colours.tint(MEETS if good else MISSES, 1 - 0.65 * share))))
            item.setToolTip(f"{value:,} of {total:,} ({share:.0%})")
        self.table.setItem(row, column, item)


# -- worst images ---------------------------------------------------------------------------------------------


WHY = {"missed": "missed: no detection of the class over its box scored τ or more",
       "false alarm": "false alarm: a clean bag alarmed on at τ or more"}
WORST_COLUMNS = [
    Column("image_id", "Image", lambda v: f"#{v}"),
    Column("kind", "Why", lambda v: WHY.get(v, v), stretch=True),
    Column("score", "Best score", lambda v: f"{v:.3f}",
           tooltip="Missed: the best score of a detection overlapping the box; false alarm: the top score"),
    Column("threshold", "τ", lambda v: f"{v:.3f}"),
]


class WorstImagesPanel(QWidget):
    """Pick a class: its test images the run did worst on. Double-click opens one in Labels."""

    class_chosen = Signal(str, int)  # class, how many
    image_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.class_box = QComboBox()
        self.class_box.setMinimumContentsLength(18)
        self.limit = QSpinBox()
        self.limit.setRange(1, 500)
        self.limit.setValue(20)
        self.summary = _note(NOT_EVALUATED)
        self.model = RowsModel(WORST_COLUMNS, self)
        self.table, self.proxy = make_table(self.model)
        self.table.setObjectName("worst_images")
        self.table.setSortingEnabled(False)  # the core's order: lowest score missed first
        self.table.doubleClicked.connect(self._open)
        top = QHBoxLayout()
        top.addWidget(QLabel("Class"))
        top.addWidget(self.class_box)
        top.addWidget(QLabel("at most"))
        top.addWidget(self.limit)
        top.addWidget(self.summary, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addWidget(_note("Double-click an image to open it in Labels, with its boxes."))
        self.class_box.currentIndexChanged.connect(lambda _i: self._ask())
        self.limit.editingFinished.connect(self._ask)

    def set_classes(self, classes: list[str], prefer: str | None = None) -> None:
        was = prefer or self.class_box.currentText()
        self.class_box.blockSignals(True)
        self.class_box.clear()
        self.class_box.addItems(classes)
        self.class_box.setCurrentIndex(max(0, self.class_box.findText(was)))
        self.class_box.blockSignals(False)
        self.model.set_rows([])
        self.summary.setText("" if classes else NOT_EVALUATED)

    def _ask(self) -> None:
        if self.class_box.currentText():
            self.class_chosen.emit(self.class_box.currentText(), self.limit.value())

    def show_images(self, class_name: str, rows: list[dict[str, Any]]) -> None:
        if class_name != self.class_box.currentText():
            return
        self.model.set_rows(rows)
        missed = sum(1 for r in rows if r["kind"] == "missed")
        self.summary.setText(f"{class_name}: {missed} missed, {len(rows) - missed} false alarm(s) on clean bags"
                             if rows else f"{class_name}: no missed box and no false alarm at its threshold")

    def _open(self, index) -> None:  # noqa: ANN001 - QModelIndex
        self.image_requested.emit(self.model.rows[self.proxy.mapToSource(index).row()]["image_id"])


# -- the loop ------------------------------------------------------------------------------------------------


LOOP_COLUMNS = [
    Column("class_name", "Class"),
    Column("verdict", "Verdict"),
    Column("ratio_from", "Step", lambda v: f"{v}:1"),
    Column("ratio_to", "Next", lambda v: f"{v}:1"),
    Column("state", "State"),
    Column("decided_by", "Accepted by", lambda v: v or ""),
    Column("decided_at", "When", when),
    Column("new_plan", "Plan", tooltip="The plan version the accepted steps published"),
    Column("reason", "Why", stretch=True),
]


class LoopPanel(QWidget):
    """Per class: the verdict, the step it is at and the next, and why; 'Accept next steps' publishes them."""

    accept_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.steps: list[dict[str, Any]] = []
        self.summary = _note(NOT_EVALUATED)
        self.accept_button = QPushButton("Accept next steps…")
        self.accept_button.setToolTip("Publish the plan's next version with these ratio steps: the train targets "
                                      "of the classes that miss their KPI grow, the others stay")
        self.accept_button.clicked.connect(self.accept_requested)
        self.model = RowsModel(LOOP_COLUMNS, self, row_colour=self._row_colour)
        self.table, self.proxy = make_table(self.model)
        self.table.setObjectName("loop_steps")
        self.reason = _note("")
        self.reason.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table.selectionModel().currentRowChanged.connect(lambda current, _p: self._show_reason(current))
        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        top.addWidget(self.accept_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.reason)

    def _show_reason(self, index) -> None:  # noqa: ANN001 - QModelIndex
        if not index.isValid():
            self.reason.setText("")
            return
        s = self.model.rows[self.proxy.mapToSource(index).row()]
        self.reason.setText(f"<b>{s['class_name']}</b> ({s['verdict']}, {s['ratio_from']}:1 → {s['ratio_to']}:1): "
                            f"{s['reason']}")

    @staticmethod
    def _row_colour(row: dict[str, Any]) -> QColor | None:
        rgb = {"meets KPI": MEETS, "misses KPI": MISSES, "misses KPI at cap": MISSES}.get(row["verdict"])
        return QColor(*colours.tint(rgb, 0.8)) if rgb else None

    def show_steps(self, record: dict[str, Any], allowed: bool) -> None:
        self.steps = [{**s, "new_plan": f"{s['plan_name']} v{s['new_plan_version']}" if s["new_plan_version"] else ""}
                      for s in record["loop"]]
        self.model.set_rows(self.steps)
        open_steps = [s for s in self.steps if s["state"] == "proposed"]
        moves = [s for s in open_steps if s["ratio_to"] != s["ratio_from"]]
        self.accept_button.setEnabled(bool(open_steps) and allowed)
        first = next((n for n, s in enumerate(self.steps) if s["ratio_to"] != s["ratio_from"]), 0)
        if self.steps:
            self.table.selectRow(self.proxy.mapFromSource(self.model.index(first, 0)).row())
        if not self.steps:
            self.summary.setText(NOT_EVALUATED)
        elif open_steps:
            plan = f"{open_steps[0]['plan_name']} v{open_steps[0]['plan_version']}"
            self.summary.setText(
                f"Proposed on {plan}: {len(moves)} class(es) step up to more train data ("
                + (", ".join(f"{s['class_name']} {s['ratio_to']}:1" for s in moves[:6]) or "none")
                + (", …" if len(moves) > 6 else "") + "), the others stay.")
        else:
            decided = self.steps[0]
            who = decided["decided_by"] or "—"
            state = decided["state"]
            self.summary.setText(f"These steps were {state}" + (f" by {who} on {when(decided['decided_at'])}" if
                                                                 decided["decided_at"] else "")
                                 + (f": {decided['new_plan']} published." if decided["new_plan"] else "."))


# -- the record -------------------------------------------------------------------------------------------------


def record_text(r: dict[str, Any]) -> str:
    """Everything needed to reproduce the run, as plain text."""
    env = r.get("env") or {}
    lines = [
        f"Run {r['id']}: {r['kind']} {r['model']} — {r['state']}" + (f" ({r['message']})" if r["message"] else ""),
        f"Train set: {r['train'] or '—'}    Test set: {r['test']}",
        f"Queued {when(r['created_at'])} by {r['created_by']}; started {when(r['started_at']) or '—'}; "
        f"finished {when(r['finished_at']) or '—'}; attempts {r['attempts']}",
        f"Seed: {r['seed']}",
        f"Code: {r['code_version']}",
        f"Device: {r['device'] or '—'}; torch {env.get('torch', '—')}, torchvision {env.get('torchvision', '—')}, "
        f"CUDA {env.get('cuda') or '—'}, mixed precision {env.get('amp', '—')}",
    ]
    if env.get("images"):
        lines.append("Images: " + ", ".join(f"{n:,} {s}" for s, n in env["images"].items()))
    if env.get("warning"):
        lines.append(f"Warning at start: {env['warning']}")
    if r["source_run"]:
        lines.append(f"Model of run {r['source_run']}")
    if r["weights"]:
        lines.append(f"Started from: {r['weights']}  (sha256 {r['weights_sha256']})")
    elif r["kind"] == "train":
        lines.append("Started from: nothing (trained from scratch)")
    lines.append(f"Final model sha256: {r['model_sha256'] or '—'}")
    lines.append(f"Folder: {r['run_dir']}")
    if r["note"]:
        lines.append(f"Note: {r['note']}")
    lines.append("")
    lines.append("Parameters:")
    lines += [f"  {k} = {json.dumps(v)}" for k, v in sorted(r["params"].items())]
    rules = (r.get("metrics") or {}).get("threshold_rules") or {}
    if rules:
        lines.append("")
        lines.append("Operating thresholds τ (chosen on the validation split):")
        thresholds = r["metrics"].get("thresholds") or {}
        lines += [f"  {name}: {thresholds.get(name, 0):.3f} — {rule}" for name, rule in sorted(rules.items())]
    return "\n".join(lines)


class RecordPanel(QPlainTextEdit):
    """The run's record: parameters, seed, code version, environment, weights and model digests."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setReadOnly(True)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        font = QFont("monospace")
        font.setStyleHint(QFont.StyleHint.Monospace)
        self.setFont(font)

    def show_record(self, record: dict[str, Any]) -> None:
        self.setPlainText(record_text(record))
