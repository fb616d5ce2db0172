"""Quotas: the plan's per-class targets with their statistical basis, and cell status."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app import tasks
from app.dialogs import show_error
from app.views.area import AreaView, EmptyStatePanel
from app.table_model import Column, RowsModel, make_table, percent
from core.lab import Lab
from core.quota.plans import list_plans, plan_classes
from core.quota.status import quota_status

if TYPE_CHECKING:
    from app.views.plan_editor import PlanSpecEditorDialog

# Tables whose change can alter what this view shows.
RELEVANT = ("quota_plans", "quota_cells", "quota_plan_classes", "images", "cell_tally", "threat_classes",
            "threat_families", "luggage_types", "scanner_models", "poses")

def count(value: Any) -> str:
    return "" if value is None else f"{value:,}"


CLASS_COLUMNS = [
    Column("class_name", "Class"),
    Column("family_name", "Family"),
    Column("kpi", "KPI", tooltip="Detection rate the test set must measure, ± half-width at the confidence level"),
    Column("required_setups", "Required", count, tooltip="Independent setups (item × bag × pose) the KPI needs"),
    Column("normal_approximation", "Normal\napprox.", count,
           tooltip="Textbook normal approximation, for comparison: understates near 1"),
    Column("test_target", "Test\ntarget", count),
    Column("test_done", "Test\ndone", count, tooltip="Distinct setups captured for the test split (capped per cell)"),
    Column("test_fill", "Test\nfill", percent, fill=True),
    Column("ratio", "Train:test"),
    Column("train_target", "Train\ntarget", count),
    Column("train_done", "Train\ndone", count),
    Column("train_fill", "Train\nfill", percent, fill=True),
    Column("basis", "Statistical\nbasis", stretch=True),
]

# The class is the one selected above, so the cells table leaves it out.
CELL_COLUMNS = [
    Column("luggage_type", "Luggage"),
    Column("clutter_level", "Clutter"),
    Column("scanner_model", "Scanner\nmodel"),
    Column("pose", "Pose", stretch=True),
    Column("test_target", "Test\ntarget", count),
    Column("test_setups", "Test\nsetups", count),
    Column("test_images", "Test\nimages", count),
    Column("test_fill", "Test\nfill", percent, fill=True),
    Column("test_deficit", "Test\nshort", count, tooltip="Setups the test split still lacks"),
    Column("train_target", "Train\ntarget", count),
    Column("train_setups", "Train\nsetups", count),
    Column("train_fill", "Train\nfill", percent, fill=True),
    Column("train_deficit", "Train\nshort", count, tooltip="Setups the train split still lacks"),
    Column("overridden", "Overridden", lambda v: "yes" if v else "", tooltip="Target set by hand (xlab quota override)"),
]


@dataclass(frozen=True)
class QuotaSnapshot:
    plan: dict[str, Any]
    classes: list[dict[str, Any]]
    cells: list[dict[str, Any]]
    totals: dict[str, Any]


def load_snapshot(lab: Lab, plan_id: int) -> QuotaSnapshot:
    """Everything the view shows, read in one go (runs off the GUI thread)."""
    plan = next(p for p in list_plans(lab.catalog) if p["id"] == plan_id)
    status = quota_status(lab.catalog, plan_id)
    fills = {c["class_name"]: c for c in status.by_class()}
    classes = []
    for row in plan_classes(lab.catalog, plan_id):
        fill = fills.get(row["class_name"], {})
        classes.append({
            **row,
            "kpi": (f"≥{row['detection_rate']:.2f}, ≤{row['misses_allowed']} miss @ {row['confidence']:.0%}"
                    if row["sizing"] == "demonstration"
                    else f"{row['detection_rate']:.2f} ±{row['half_width']:.2f} @ {row['confidence']:.0%}"),
            "ratio": f"{row['ratio_step']}:1",
            "test_target": fill.get("test_target", 0), "test_done": fill.get("test_done", 0),
            "test_fill": fill.get("test_fill"), "train_target": fill.get("train_target", 0),
            "train_done": fill.get("train_done", 0), "train_fill": fill.get("train_fill"),
        })
    clean = fills.get("(clean)")
    if clean:
        classes.append({
            "class_name": "(clean)", "family_name": "", "required_setups": plan["clean_setups"],
            "kpi": f"FAR {plan['clean_false_alarm_rate']:.2f} ±{plan['clean_half_width']:.2f} @ {plan['clean_confidence']:.0%}",
            "ratio": "1:1", "basis": "clean bags size the false-alarm rate (Wilson)",
            **{k: clean[k] for k in ("test_target", "test_done", "test_fill", "train_target", "train_done", "train_fill")},
        })
    return QuotaSnapshot(plan, classes, status.as_dicts(), status.totals())


NO_PLAN = ("<b>No published quota plan</b> — write the plan spec (the KPIs each class must meet and the "
           "deployment mix), validate it and publish it. Capture planning and the dashboards follow from it.<br>"
           "The plan covers the inventory's active threat classes, so import the inventory first.")


class QuotaPlansView(AreaView):
    """Browse quota plans: per-class targets and their basis, and each class's cells."""

    loaded = Signal()  # a snapshot was shown
    relevant_tables = RELEVANT

    def __init__(self, lab: Lab, parent: QWidget | None = None):
        super().__init__(parent)
        self._lab = lab
        self._snapshot: QuotaSnapshot | None = None
        self._loading = False

        self.plan_combo = QComboBox()
        self.plan_combo.setMinimumWidth(260)
        self.plan_combo.currentIndexChanged.connect(lambda _: self.refresh())
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.new_button = QPushButton("New plan…")
        self.new_button.setToolTip("Write a plan spec (KPIs and deployment mix), validate it, create a draft or publish")
        self.new_button.clicked.connect(lambda: self.new_plan())
        self.edit_button = QPushButton("Edit plan…")
        self.edit_button.setToolTip("The chosen plan's spec in the editor: saving makes a draft (the next version if published)")
        self.edit_button.clicked.connect(lambda: self.edit_plan())
        self.summary = QLabel("")
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.test_bar = QProgressBar()
        self.test_bar.setFormat("test %p%")
        self.train_bar = QProgressBar()
        self.train_bar.setFormat("train %p%")
        for bar in (self.test_bar, self.train_bar):
            bar.setMaximumWidth(180)
        top = QHBoxLayout()
        self.plan_label = QLabel("Plan:")
        top.addWidget(self.plan_label)
        top.addWidget(self.plan_combo)
        top.addWidget(self.refresh_button)
        top.addWidget(self.new_button)
        top.addWidget(self.edit_button)
        top.addWidget(self.test_bar)
        top.addWidget(self.train_bar)
        top.addStretch(1)

        self.class_model = RowsModel(CLASS_COLUMNS, self)
        self.class_table, self.class_proxy = make_table(self.class_model)
        self.class_table.selectionModel().selectionChanged.connect(lambda *_: self._show_cells())
        self.cell_model = RowsModel(CELL_COLUMNS, self)
        self.cell_table, self.cell_proxy = make_table(self.cell_model)
        self.cell_filter = QLineEdit()
        self.cell_filter.setPlaceholderText("Filter cells (luggage, clutter, model, pose)…")
        self.cell_filter.textChanged.connect(self.cell_proxy.setFilterFixedString)
        self.cell_title = QLabel("Cells: select a class above")

        cells_box = QWidget()
        cells_layout = QVBoxLayout(cells_box)
        cells_layout.setContentsMargins(0, 0, 0, 0)
        header = QHBoxLayout()
        header.addWidget(self.cell_title)
        header.addStretch(1)
        header.addWidget(self.cell_filter)
        cells_layout.addLayout(header)
        cells_layout.addWidget(self.cell_table)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.class_table)
        splitter.addWidget(cells_box)
        splitter.setSizes([320, 240])

        plan_page = QWidget()
        plan_layout = QVBoxLayout(plan_page)
        plan_layout.setContentsMargins(0, 0, 0, 0)
        plan_layout.addWidget(self.summary)
        plan_layout.addWidget(splitter, 1)
        self.empty = EmptyStatePanel(NO_PLAN)
        self.empty.add_action("New plan…", lambda: self.new_plan())
        self.pages = QStackedWidget()
        self.pages.addWidget(plan_page)
        self.pages.addWidget(self.empty)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.pages, 1)
        self.editor = None  # the open PlanSpecEditorDialog, if any

    # -- data ---------------------------------------------------------------

    def _fill_plans(self) -> None:
        plans = list_plans(self._lab.catalog)
        current = self.plan_combo.currentData()
        self.plan_combo.blockSignals(True)
        self.plan_combo.clear()
        for plan in sorted(plans, key=lambda p: (p["status"] != "published", p["name"], -p["version"])):
            self.plan_combo.addItem(f"{plan['name']} v{plan['version']} ({plan['status']})", plan["id"])
        index = self.plan_combo.findData(current) if current is not None else 0
        self.plan_combo.setCurrentIndex(max(0, index))
        self.plan_combo.blockSignals(False)

    def refresh(self) -> None:
        if self._loading:
            self._stale = True
            return
        self._fill_plans()
        plan_id = self.plan_combo.currentData()
        self.edit_button.setEnabled(plan_id is not None)
        for widget in (self.plan_label, self.plan_combo, self.refresh_button, self.test_bar, self.train_bar):
            widget.setVisible(plan_id is not None)  # nothing to choose or fill yet
        if plan_id is None:
            self.summary.setText("")
            self.pages.setCurrentWidget(self.empty)
            self.class_model.set_rows([])
            self.cell_model.set_rows([])
            self._stale = False
            self.loaded.emit()
            return
        self.pages.setCurrentIndex(0)
        self._loading = True
        self._stale = False
        tasks.call(lambda: load_snapshot(self._lab, plan_id), self._show, self._failed, self)

    def _failed(self, exc: BaseException) -> None:
        self._loading = False
        show_error(self, "Could not load the quota plan", exc)

    def _show(self, snapshot: QuotaSnapshot) -> None:
        self._loading = False
        selected = self._selected_class()
        self._snapshot = snapshot
        plan, totals = snapshot.plan, snapshot.totals
        self.summary.setText(
            f"<b>{plan['name']} v{plan['version']}</b> — {plan['status']}"
            f"{' by ' + plan['published_by'] if plan.get('published_by') else ''}; "
            f"{totals['cells']:,} cells; test {totals['test_done']:,} / {totals['test_target']:,} setups, "
            f"train {totals['train_done']:,} / {totals['train_target']:,}; "
            f"{plan['images_per_setup']} image(s) per setup. {plan['note']}"
        )
        self.test_bar.setValue(round(100 * totals["test_fill"]))
        self.train_bar.setValue(round(100 * totals["train_fill"]))
        self.class_model.set_rows(snapshot.classes)
        if selected:
            self.select_class(selected)
        elif snapshot.classes:
            self.class_table.selectRow(0)
        else:
            self._show_cells()
        if self._stale:
            self.refresh()
        else:
            self.loaded.emit()

    def _selected_class(self) -> str | None:
        rows = self.class_table.selectionModel().selectedRows()
        if not rows:
            return None
        return self.class_model.rows[self.class_proxy.mapToSource(rows[0]).row()]["class_name"]

    def select_class(self, name: str) -> None:
        for row, entry in enumerate(self.class_model.rows):
            if entry["class_name"] == name:
                self.class_table.selectRow(self.class_proxy.mapFromSource(self.class_model.index(row, 0)).row())
                return

    def _show_cells(self) -> None:
        name = self._selected_class()
        if self._snapshot is None or name is None:
            self.cell_model.set_rows([])
            self.cell_title.setText("Cells: select a class above")
            return
        cells = [c for c in self._snapshot.cells if c["class_name"] == name]
        self.cell_model.set_rows(cells)
        short = sum(1 for c in cells if c["test_deficit"] > 0)
        self.cell_title.setText(f"Cells of <b>{name}</b>: {len(cells)} cells, {short} short of their test target")

    # -- writing plans --------------------------------------------------------

    def new_plan(self) -> "PlanSpecEditorDialog":
        from app.views.plan_editor import template

        names = {p["name"] for p in list_plans(self._lab.catalog)}
        name = "test-set" if "test-set" not in names else f"test-set-{len(names) + 1}"
        return self._open_editor(template(name))

    def edit_plan(self) -> "PlanSpecEditorDialog | None":
        from app.views.plan_editor import spec_yaml
        from core.quota.spec import PlanSpec

        plan_id = self.plan_combo.currentData()
        plan = next((p for p in list_plans(self._lab.catalog) if p["id"] == plan_id), None)
        if plan is None:
            return None
        return self._open_editor(spec_yaml(PlanSpec.from_json(plan["spec_json"])))

    def _open_editor(self, text: str):
        from app.views.plan_editor import PlanSpecEditorDialog

        self.editor = PlanSpecEditorDialog(self._lab, text, self)
        self.editor.plan_saved.connect(self._plan_saved)
        self.editor.open()
        return self.editor

    def _plan_saved(self, ref) -> None:
        # Show the plan just written; the catalog change refreshes the list.
        self._fill_plans()
        index = self.plan_combo.findData(ref.id)
        if index >= 0:
            self.plan_combo.setCurrentIndex(index)
