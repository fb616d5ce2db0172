"""The Dashboards area: the manager's three dashboards (``app.views.dashboards``)
in tabs, live. Its charts (pyqtgraph) are imported and built when the area is
first shown, so they cost nothing at start-up.

Live: a catalog change that concerns them marks them stale; a visible
dashboard reloads at most every ``MIN_REFRESH_MS``. Loading (SQL, aggregation)
runs on the thread pool; the GUI thread only puts the finished numbers of the
tab on screen, and ``last_apply_ms`` records how long that took.
"""

from __future__ import annotations

import time
from datetime import date

from PySide6.QtCore import QSettings, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app import tasks
from app.dialogs import announce_saved, choose_save_path, show_error
from app.views.area import AreaView
from core.lab import Lab

RELEVANT = ("images", "cell_tally", "production_counts", "ingest_events", "kpi_results", "lab_settings",
            "quota_plans", "quota_cells", "quota_plan_classes", "threat_classes", "quarantine", "scanners",
            "threat_families", "threat_items", "bags", "luggage_types", "scanner_models", "poses")
MIN_REFRESH_MS = 2000


class DashboardsView(AreaView):
    loaded = Signal()
    relevant_tables = RELEVANT

    def __init__(self, lab: Lab, parent: QWidget | None = None, settings: QSettings | None = None):
        super().__init__(parent)
        self._lab = lab
        self._settings = settings  # where the save dialogs remember their folders
        self._loading = False
        self._last_load = 0.0
        self.snapshot = None  # the last DashboardSnapshot
        self._dirty: set[int] = set()
        self.last_apply_ms = 0.0
        self.plan_box = QComboBox()
        self.plan_box.setMinimumWidth(220)
        self.plan_box.currentIndexChanged.connect(lambda _i: self.refresh())
        self.report_button = QPushButton("PDF report…")
        self.report_button.setToolTip("The whole dashboard as one PDF for the weekly meeting")
        self.report_button.clicked.connect(self._report)
        self.status = QLabel("")
        self.backup_note = QLabel("")  # the last backup's age
        top = QHBoxLayout()
        top.addWidget(QLabel("Quota plan"))
        top.addWidget(self.plan_box)
        top.addStretch(1)
        top.addWidget(self.backup_note)
        top.addWidget(self.status)
        top.addWidget(self.report_button)
        self.tabs = QTabWidget()
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.tabs, 1)
        self.heatmap = None  # QuotaHeatmapView, ProductionView, ClassProgressView once built
        self.production = None
        self.classes = None
        self._throttle = QTimer(self)
        self._throttle.setSingleShot(True)
        self._throttle.timeout.connect(self.refresh)

    def _build(self) -> None:
        """The charts are made when the area is first shown (pyqtgraph stays off start-up)."""
        if self.heatmap is not None:
            return
        from app.views.dashboards import ClassProgressView, ProductionView, QuotaHeatmapView

        self.heatmap = QuotaHeatmapView(self._lab, settings=self._settings)
        self.production = ProductionView(self._lab, settings=self._settings)
        self.classes = ClassProgressView(settings=self._settings)
        self.tabs.addTab(self.heatmap, "Quota fill")
        self.tabs.addTab(self.production, "Production")
        self.tabs.addTab(self.classes, "Classes")
        self.heatmap.changed.connect(self.refresh)
        self.production.changed.connect(self.refresh)
        self.tabs.currentChanged.connect(self._apply_current)

    def shutdown(self) -> None:
        """Window closing: take the charts out of pyqtgraph's registry of views
        before Qt deletes them (a view left registered is touched after deletion)."""
        self._throttle.stop()
        if self.heatmap is None:
            return
        import pyqtgraph as pg

        for plot in self.findChildren(pg.PlotWidget):
            for item in plot.scene().items():  # extra views too (the quarantine rate's axis)
                if isinstance(item, pg.ViewBox):
                    pg.ViewBox.AllViews.pop(item, None)

    def on_catalog_changed(self, change) -> None:
        """Live: coalesce bursts of changes into one reload at most every MIN_REFRESH_MS."""
        if change.touches(*self.relevant_tables):
            self._stale = True
            if self.isVisible() and not self._throttle.isActive():
                wait = max(0, int(MIN_REFRESH_MS - (time.monotonic() - self._last_load) * 1000))
                self._throttle.start(wait)

    def refresh(self) -> None:
        self._build()
        if self._loading:
            self._stale = True
            return
        self._loading = True
        self._stale = False
        self._last_load = time.monotonic()
        plan_id = self.plan_box.currentData()
        h = self.heatmap
        args = (plan_id, h.rows_dim, h.cols_dim, h.split, h.filters(), self.production.month)
        from app.views.dashboards import load_dashboards

        tasks.call(lambda: load_dashboards(self._lab, *args), self._loaded, self._failed, self)

    def _failed(self, exc: BaseException) -> None:
        self._loading = False
        show_error(self, "Could not read the dashboards", exc)

    def _loaded(self, snap) -> None:  # app.views.dashboards.DashboardSnapshot
        t0 = time.perf_counter()
        self._loading = False
        first = self.snapshot is None
        self.snapshot = snap
        if first:
            tasks.freeze_long_lived()  # the quota status caches are loaded now
        self.plan_box.blockSignals(True)
        self.plan_box.clear()
        for p in snap.plans:
            self.plan_box.addItem(f"{p['name']} v{p['version']}", p["id"])
        self.plan_box.setCurrentIndex(max(0, self.plan_box.findData(snap.plan_id)))
        self.plan_box.blockSignals(False)
        # Only the tab on screen is filled now; the others when they are shown.
        self._dirty = {0, 1, 2}
        self._apply_current()
        self.last_apply_ms = (time.perf_counter() - t0) * 1000
        self.status.setText(f"updated {time.strftime('%H:%M:%S')} (read {snap.load_ms:.0f} ms)")
        self.backup_note.setText(snap.backup.describe(folder=False))
        self.backup_note.setToolTip(f"{snap.backup.describe()}. Schedule backups with: xlab settings "
                                    "--backup-every-hours N --backup-dest DIR")
        self.backup_note.setStyleSheet("color: #b00020; font-weight: bold" if "OVERDUE" in self.backup_note.text()
                                       else "")
        if self._stale:
            self._throttle.start(MIN_REFRESH_MS)
        else:
            self.loaded.emit()

    def _apply_current(self, _index: int = 0) -> None:
        snap, index = self.snapshot, self.tabs.currentIndex()
        if snap is None or index not in self._dirty:
            return
        self._dirty.discard(index)
        if index == 0:
            self.heatmap.show_heatmap(snap.status, snap.heatmap)
        elif index == 1:
            self.production.show_production(snap.production)
        else:
            self.classes.show_classes(snap.classes)

    def _report(self) -> QFileDialog:
        return choose_save_path(self, "Save report", f"xlab-report-{date.today()}.pdf", "PDF (*.pdf)", "reports",
                                self.write_report, self._settings)

    def _report_saved(self, path) -> None:
        self.status.setText(f"report saved: {path}")
        announce_saved(self, path)

    def write_report(self, path: str) -> None:
        """Write the PDF off the GUI thread (charts drawn by matplotlib); say where once written."""
        from core.dashboard.export import write_report

        plan_id = self.plan_box.currentData()
        plan = next((p for p in (self.snapshot.plans if self.snapshot else []) if p["id"] == plan_id), None)
        h = self.heatmap
        tasks.run_task(lambda: _report_task(self._lab, path, plan, self.production.month, h.rows_dim, h.cols_dim,
                                            write_report),
                       title="Writing the report", parent=self,
                       on_finished=self._report_saved,
                       on_failed=lambda e: show_error(self, "Report", e))


def _report_task(lab, path, plan, month, rows, cols, write_report):
    from core.progress import Progress

    yield Progress(0, 1, "writing the report")
    return write_report(lab, path, plan=plan["name"] if plan else None, month=month, rows=rows, cols=cols)
