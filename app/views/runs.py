"""Runs: the training and evaluation runs of the lab, the queue that starts them, and per run its live
curves, per-class results against the KPIs, confusion, worst images, the loop's next ratio steps and
its record.

Everything goes through ``core.runs`` (the same calls as ``xlab run``), never torch: reads and short
writes on app.tasks' pool; working the queue (:func:`core.runs.queue.work`, each run in a process
of its own) as a generator task whose Stop asks the current run to stop cleanly at its next step,
keeping a checkpoint. Queued runs never start silently when the window opens: the area says how
many wait, and Start queue (or :meth:`RunsView.start_queue`) starts them. While the selected run
is running, its curves are read from the catalog every ``LIVE_MS``, whoever runs it.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app import tasks
from app.dialogs import confirm_destructive, show_error
from app.table_model import Column, RowsModel, make_table
from app.views.area import AreaView
from app.views.runs_dialogs import WARNING_STYLE, CompareRunsDialog, NewRunDialog, pct, training_missing, when
from app.views.runs_panels import (
    ConfusionPanel,
    CurvesPanel,
    LoopPanel,
    RecordPanel,
    ResultsPanel,
    WorstImagesPanel,
    remove_from_pyqtgraph,
)
from app.views.runs_queue import ACTIVE, RunQueuePanel
from core import colours
from core.lab import Lab

RELEVANT = ("runs", "run_results", "loop_steps", "dataset_versions", "quota_plans")
LIVE_MS = 1500
STATE_COLOURS = {"running": (90, 130, 200), "cancelling": (240, 170, 50), "failed": (215, 48, 39),
                 "interrupted": (240, 140, 40)}
TABS = ("Curves", "Results", "Confusion", "Worst images", "The loop", "Record")
NO_RUNS = ("No run yet. Freeze a train set in Datasets (a k:1 clone of the test set), then New run… trains a "
           "detector on it and evaluates it per class against the KPIs.")

RUN_COLUMNS = [
    Column("id", "Run"),
    Column("kind", "Kind"),
    Column("state", "State"),
    Column("model", "Model"),
    Column("train", "Train set"),
    Column("test", "Test set"),
    Column("device", "Device", stretch=True),
    Column("AP50", "AP50", pct, tooltip="COCO AP at IoU 0.5 on the test set"),
    Column("started_at", "Started", when),
    Column("created_by", "By", tooltip="Who queued the run"),
]


def load_runs(lab: Lab, probe_lock: bool) -> dict[str, Any]:
    """The runs, who works the queue, and the frozen versions (pool thread). ``probe_lock``: also ask the
    queue's lock who holds it, and mark runs whose runner is gone as interrupted (never while this
    window works the queue: a probe holds the free lock for an instant)."""
    from app.views.datasets import load_versions
    from core.runs.queue import reconcile, runner
    from core.runs.records import list_runs

    who = None
    if probe_lock:
        reconcile(lab)
        who = runner(lab)
    return {"runs": list_runs(lab), "runner": who, "versions": load_versions(lab)}


def load_record(lab: Lab, run_id: int, cpu_warning: bool) -> dict[str, Any]:
    """A run's whole record, its test plan's KPI per class and, for a run still to go to the CPU, the
    warning with its time estimate (pool thread)."""
    from core.datasets.versions import resolve
    from core.quota.plans import plan_classes
    from core.runs.records import get, show

    record = show(lab, run_id)
    plan_id = resolve(lab.catalog, record["test"])["plan_id"]
    kpis = {k["class_name"]: k for k in plan_classes(lab.catalog, plan_id)}
    warning = None
    if cpu_warning and record["state"] in ("queued", *ACTIVE):
        from core.runs.probe import cpu_warning as warn

        warning = warn(lab, get(lab, run_id))
    return {"record": record, "kpis": kpis, "cpu_warning": warning}


class RunsView(AreaView):
    loaded = Signal()  # the list of runs was shown
    probed = Signal(dict)  # the GPU probe's answer
    record_shown = Signal(int)  # the selected run's record filled the tabs
    curves_updated = Signal(int)
    confusion_shown = Signal(int)
    worst_shown = Signal(str)
    image_requested = Signal(int)  # open this image in Labels
    action_done = Signal(str)  # a cancel, resume, reproduce, new run or accept went through; its message
    queue_ended = Signal(str)  # "finished", "stopped", "busy" or "failed"
    relevant_tables = RELEVANT

    def __init__(self, lab: Lab, parent: QWidget | None = None, training_modules: tuple[str, ...] | None = None):
        super().__init__(parent)
        self._lab = lab
        self.missing = training_missing(training_modules) if training_modules else training_missing()
        self.runs: list[dict[str, Any]] = []
        self.versions: list[dict[str, Any]] = []
        self.record: dict[str, Any] | None = None
        self.kpis: dict[str, dict[str, Any]] = {}
        self.dialog: NewRunDialog | CompareRunsDialog | None = None
        self.confirmation = None
        self._start_pending = False
        self._closed = False
        self._pending_select: int | None = None  # a run just queued here, selected once listed
        self._loading = False
        self._record_loading = False
        self._record_stale = False
        self._curves_loading = False
        self._built = False
        self._confusion_for: tuple[int, str] | None = None
        self.queue = RunQueuePanel(lab, self.missing)
        self.queue.probed.connect(self._probed)
        self.queue.probed.connect(self.probed)
        self.queue.start_requested.connect(lambda: self.start_queue())
        self.queue.ended.connect(self._after_queue)
        # -- the runs and what to do with them
        self.new_button = QPushButton("New run…")
        self.new_button.clicked.connect(lambda: self.open_new_run())
        self.cancel_button = QPushButton("Cancel run")
        self.cancel_button.setToolTip("A queued run is taken off the queue; a running one stops at its next step "
                                      "and keeps a checkpoint (Resume goes on from it)")
        self.cancel_button.clicked.connect(lambda: self.cancel_selected())
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Queue an interrupted, cancelled or failed run again, from its last checkpoint")
        self.resume_button.clicked.connect(lambda: self.resume_selected())
        self.reproduce_button = QPushButton("Reproduce")
        self.reproduce_button.setToolTip("Queue a new run with exactly this run's versions, model, parameters and seed")
        self.reproduce_button.clicked.connect(lambda: self.reproduce_selected())
        self.compare_button = QPushButton("Compare…")
        self.compare_button.setToolTip("Select two runs (Ctrl+click): their per-class figures side by side and "
                                       "the diff of their dataset versions")
        self.compare_button.clicked.connect(lambda: self.compare_selected())
        self.status = QLabel("")
        self.status.setWordWrap(True)
        actions = QHBoxLayout()
        for b in (self.new_button, self.cancel_button, self.resume_button, self.reproduce_button, self.compare_button):
            actions.addWidget(b)
        actions.addWidget(self.status, 1)
        self.model = RowsModel(RUN_COLUMNS, self, row_colour=self._row_colour)
        self.table, self.proxy = make_table(self.model)
        self.table.setObjectName("runs")
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.sortByColumn(0, Qt.SortOrder.DescendingOrder)
        self.table.selectionModel().currentRowChanged.connect(lambda _c, _p: self._selected())
        self.table.selectionModel().selectionChanged.connect(lambda _s, _d: self._update_buttons())
        # -- the selected run
        self.header = QLabel(NO_RUNS)
        self.header.setWordWrap(True)
        self.header.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.warning = QLabel("")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet(WARNING_STYLE)
        self.warning.hide()
        self.curves = CurvesPanel()
        self.results = ResultsPanel()
        self.confusion = ConfusionPanel()
        self.worst = WorstImagesPanel()
        self.loop = LoopPanel()
        self.record_panel = RecordPanel()
        self.tabs = QTabWidget()
        for panel, title in zip((self.curves, self.results, self.confusion, self.worst, self.loop, self.record_panel),
                                TABS):
            self.tabs.addTab(panel, title)
        self.tabs.currentChanged.connect(lambda _i: self._tab_shown())
        self.worst.class_chosen.connect(self._read_worst)
        self.worst.image_requested.connect(self.image_requested)
        self.loop.accept_requested.connect(lambda: self.accept_steps())
        detail = QWidget()
        detail_layout = QVBoxLayout(detail)
        detail_layout.setContentsMargins(0, 0, 0, 0)
        detail_layout.addWidget(self.header)
        detail_layout.addWidget(self.warning)
        detail_layout.addWidget(self.tabs, 1)
        body = QSplitter(Qt.Orientation.Vertical)
        body.addWidget(self.table)
        body.addWidget(detail)
        body.setStretchFactor(0, 1)
        body.setStretchFactor(1, 3)
        body.setSizes([170, 470])
        layout = QVBoxLayout(self)
        layout.addWidget(self.queue)
        layout.addLayout(actions)
        layout.addWidget(body, 1)
        self.timer = QTimer(self)
        self.timer.setInterval(LIVE_MS)
        self.timer.timeout.connect(self._read_curves)
        self._update_buttons()

    @staticmethod
    def _row_colour(row: dict[str, Any]) -> QColor | None:
        rgb = STATE_COLOURS.get(row["state"])
        return QColor(*colours.tint(rgb, 0.8)) if rgb else None

    # -- loading ---------------------------------------------------------------------------------------

    def _build(self) -> None:
        """Charts are made when the area is first shown (pyqtgraph stays off start-up)."""
        if self._built:
            return
        self._built = True
        self.curves.build()
        self.results.build()
        self.curves.reset(self.curves.run_id)

    def refresh(self) -> None:
        if self._closed:
            return  # the window is closing: the lab may be closed under a read started now
        self._build()
        self.queue.ask_probe()
        if self._loading:
            self._stale = True
            return
        self._loading = True
        self._stale = False
        lab, probe_lock = self._lab, not self.working
        tasks.call(lambda: load_runs(lab, probe_lock), self._show_runs, self._failed_read, self)

    def _failed_read(self, exc: BaseException) -> None:
        self._loading = False
        show_error(self, "Could not read the runs", exc)
        self.loaded.emit()

    @property
    def probe_info(self) -> dict[str, Any] | None:
        return self.queue.probe_info

    def _probed(self, _info: dict[str, Any]) -> None:
        if self.record is not None and self.record["state"] in ("queued", *ACTIVE):
            self._read_record()  # now the CPU warning can be worked out

    def _show_runs(self, data: dict[str, Any]) -> None:
        self._loading = False
        current = self.selected_id()
        self.runs, self.versions = data["runs"], data["versions"]
        self.model.set_rows(self.runs)
        self.queue.show_runs(self.runs, data["runner"])
        want, self._pending_select = self._pending_select or current, None
        if self.runs:
            # The reset cleared the current row: selecting it again reads its record anew.
            self.select(want if any(r["id"] == want for r in self.runs) else self.runs[0]["id"])
        else:
            self.record = None
            self.header.setText(NO_RUNS)
        self._update_buttons()
        if self._start_pending:
            self._start_pending = False
            self.start_queue()
        if self._stale:
            self.refresh()
        else:
            self.loaded.emit()

    @property
    def working(self) -> bool:
        """This window works the queue now."""
        return self.queue.working

    def queued_count(self) -> int:
        return sum(1 for r in self.runs if r["state"] == "queued")

    # -- selection --------------------------------------------------------------------------------------

    def select(self, run_id: int | None) -> None:
        """Make run ``run_id`` the current one (its tabs show it)."""
        if run_id is None:
            return
        for row in range(self.proxy.rowCount()):
            index = self.proxy.index(row, 0)
            if self.model.rows[self.proxy.mapToSource(index).row()]["id"] == run_id:
                self.table.setCurrentIndex(index)
                self.table.selectRow(row)
                return

    def selected_id(self) -> int | None:
        index = self.table.currentIndex()
        if not index.isValid():
            return None
        return self.model.rows[self.proxy.mapToSource(index).row()]["id"]

    def selected_ids(self) -> list[int]:
        rows = {self.proxy.mapToSource(i).row() for i in self.table.selectionModel().selectedRows()}
        return sorted(self.model.rows[r]["id"] for r in rows)

    def _summary(self, run_id: int | None) -> dict[str, Any] | None:
        return next((r for r in self.runs if r["id"] == run_id), None)

    def _selected(self) -> None:
        run_id = self.selected_id()
        if run_id is None:
            return
        if self.record is None or self.record["id"] != run_id:
            self.curves.reset(run_id)
            self.confusion.clear()
            self._confusion_for = None
            self.worst.set_classes([])
        self._read_record()
        self._update_buttons()

    def _read_record(self) -> None:
        run_id = self.selected_id()
        if run_id is None or self._closed:
            return
        if self._record_loading:
            self._record_stale = True
            return
        self._record_loading, self._record_stale = True, False
        lab = self._lab
        warn = bool(self.probe_info) and not self.probe_info.get("error")
        tasks.call(lambda: load_record(lab, run_id, warn), self._show_record, self._record_failed, self)

    def _record_failed(self, exc: BaseException) -> None:
        self._record_loading = False
        self.header.setText(f"Could not read the run: {exc}")

    def _show_record(self, data: dict[str, Any]) -> None:
        self._record_loading = False
        if self._record_stale or data["record"]["id"] != self.selected_id():
            self._read_record()
            return
        r = self.record = data["record"]
        self.kpis = data["kpis"]
        self.queue.know_epochs(r["id"], r["params"].get("epochs"))
        what = (f"<b>Run {r['id']}</b>: {r['kind']} {r['model']} on {r['train'] or '—'} / {r['test']} — "
                f"<b>{r['state']}</b>" + (f" ({r['message']})" if r["message"] else ""))
        if r["state"] == "queued" and not self.working:
            what += " — Start queue runs it"
        self.header.setText(what)
        self.warning.setText(data["cpu_warning"] or "")
        self.warning.setVisible(bool(data["cpu_warning"]))
        self.results.show_results(r, self.kpis)
        self.loop.show_steps(r, allowed=True)
        self.record_panel.show_record(r)
        if not self.worst.class_box.count() and r["state"] == "done":
            measured = [x["class_name"] for x in self.results.rows if x["positives"] or x["negatives"]]
            # The class to look at first: the first that misses its KPI.
            missing = next((x["class_name"] for x in self.results.rows if x["verdict"] == "misses KPI"), None)
            self.worst.set_classes(measured or r["classes"], prefer=missing)
        if r["state"] in ACTIVE:
            self.timer.start()
        else:
            self.timer.stop()
        self._read_curves()
        self._tab_shown()
        self._update_buttons()
        self.record_shown.emit(r["id"])

    # -- curves -------------------------------------------------------------------------------------------

    def _read_curves(self) -> None:
        from core.runs.records import curves

        run_id = self.curves.run_id
        if run_id is None or self._curves_loading or self._closed:
            return
        self._curves_loading = True
        lab, after = self._lab, self.curves.after_seq
        tasks.call(lambda: curves(lab, run_id, after), lambda events: self._curves_read(run_id, events),
                   self._curves_failed, self)

    def _curves_failed(self, exc: BaseException) -> None:
        self._curves_loading = False
        self.timer.stop()
        self.status.setText(f"Could not read the run's curves: {exc}")

    def _curves_read(self, run_id: int, events: list[dict[str, Any]]) -> None:
        self._curves_loading = False
        self.curves.add(run_id, events)
        record = self.record
        step = self.curves.last_step
        if record is not None and record["id"] == run_id and record["state"] in ACTIVE and step:
            self.queue.show_live(run_id, step, record["params"].get("epochs"))
        self.curves_updated.emit(run_id)

    # -- confusion and worst images ---------------------------------------------------------------------

    def _tab_shown(self) -> None:
        r = self.record
        if r is None:
            return
        title = self.tabs.tabText(self.tabs.currentIndex())
        if r["state"] != "done":
            self.confusion.clear()
            self._confusion_for = None
            return
        if title == "Confusion" and self._confusion_for != (r["id"], r["finished_at"]):
            from core.runs.results import confusion

            self._confusion_for = (r["id"], r["finished_at"])
            lab, run_id = self._lab, r["id"]
            self.confusion.summary.setText("Reading the run's detections…")
            tasks.call(lambda: confusion(lab, run_id), lambda c: self._confusion_read(run_id, c),
                       lambda exc: self.confusion.clear(f"Could not read the confusion: {exc}"), self)
        elif title == "Worst images" and not self.worst.model.rows and self.worst.class_box.currentText():
            self._read_worst(self.worst.class_box.currentText(), self.worst.limit.value())

    def _confusion_read(self, run_id: int, c: dict[str, Any]) -> None:
        if self.record is None or self.record["id"] != run_id:
            return
        self.confusion.show_confusion(c)
        self.confusion_shown.emit(run_id)

    def _read_worst(self, class_name: str, limit: int) -> None:
        from core.runs.results import worst_images

        r = self.record
        if r is None or r["state"] != "done":
            return
        lab, run_id = self._lab, r["id"]
        self.worst.summary.setText(f"Reading the worst images of {class_name}…")

        def shown(rows: list[dict[str, Any]]) -> None:
            if self.record is not None and self.record["id"] == run_id:
                self.worst.show_images(class_name, rows)
                self.worst_shown.emit(class_name)

        tasks.call(lambda: worst_images(lab, run_id, class_name, limit), shown,
                   lambda exc: self.worst.summary.setText(f"Could not read the worst images: {exc}"), self)

    # -- actions ------------------------------------------------------------------------------------------------

    def _update_buttons(self) -> None:
        run = self._summary(self.selected_id())
        state = run["state"] if run else None
        can_train = self.missing is None
        for button in (self.new_button, self.resume_button, self.reproduce_button):
            button.setToolTip(button.toolTip().split("\n\n")[0] + (f"\n\n{self.missing}" if self.missing else ""))
        self.new_button.setEnabled(can_train)
        self.cancel_button.setEnabled(state in ("queued", "running"))
        self.resume_button.setEnabled(can_train and state in ("interrupted", "cancelled", "failed"))
        self.reproduce_button.setEnabled(can_train and run is not None)
        self.compare_button.setEnabled(len(self.selected_ids()) == 2)
        if self.record is not None:
            self.loop.accept_button.setEnabled(any(s["state"] == "proposed" for s in self.record["loop"]))

    def _say(self, message: str) -> None:
        self.status.setText(message)
        self.action_done.emit(message)

    def _act(self, title: str, fn, done) -> None:  # noqa: ANN001 - callables
        """Run a short core write on the pool; ``done(result)`` on the GUI thread says what happened."""
        tasks.call(fn, done, lambda exc: show_error(self, title, exc), self)

    def cancel_selected(self) -> None:
        from core.runs.records import cancel

        run_id, lab = self.selected_id(), self._lab
        if run_id is None:
            return

        def done(state: str) -> None:
            self._say(f"Run {run_id}: {state}" + (" — it stops at its next step and keeps a checkpoint"
                                                  if state == "cancelling" else ""))

        self._act("Cancel run", lambda: cancel(lab, run_id), done)

    def resume_selected(self) -> None:
        from core.runs.records import resume

        run_id, lab = self.selected_id(), self._lab
        if run_id is None:
            return

        def done(_run: dict[str, Any]) -> None:
            self._say(f"Run {run_id} queued again; it goes on from its last checkpoint"
                      + ("" if self.working else " once the queue is started"))

        self._act("Resume run", lambda: resume(lab, run_id), done)

    def reproduce_selected(self) -> None:
        from core.runs.records import reproduce

        run_id, lab = self.selected_id(), self._lab
        if run_id is None:
            return

        def done(run: dict[str, Any]) -> None:
            self._pending_select = run["id"]
            self._say(f"Run {run['id']} queued: a reproduction of run {run_id} (same versions, model, parameters, "
                      f"seed {run['seed']})" + ("" if self.working else "; Start queue runs it"))

        self._act("Reproduce run", lambda: reproduce(lab, run_id), done)

    def compare_selected(self) -> CompareRunsDialog | None:
        ids = self.selected_ids()
        if len(ids) != 2:
            return None
        self.dialog = CompareRunsDialog(self._lab, ids[0], ids[1], self)
        self.dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.dialog.open()
        return self.dialog

    def open_new_run(self) -> NewRunDialog | None:
        if self.missing:
            return None
        finished = [r for r in self.runs if r["state"] == "done" and r["kind"] == "train"]
        self.dialog = NewRunDialog(self._lab, self.versions, finished, self.probe_info, self)
        self.dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.dialog.created.connect(self._run_created)
        self.dialog.open()
        return self.dialog

    def _run_created(self, run: dict[str, Any], start: bool) -> None:
        self._say(f"Run {run['id']} queued: {run['kind']} {run['model']} (seed {run['seed']})")
        self._pending_select = run["id"]
        if start:
            self.start_queue()

    def accept_steps(self):  # -> QMessageBox | None
        """Ask, then publish the plan's next version with the selected run's open ratio steps."""
        r = self.record
        if r is None:
            return None
        steps = [s for s in r["loop"] if s["state"] == "proposed"]
        if not steps:
            return None
        moves = [f"{s['class_name']} {s['ratio_from']}:1 → {s['ratio_to']}:1" for s in steps
                 if s["ratio_to"] != s["ratio_from"]]
        plan = f"{steps[0]['plan_name']} v{steps[0]['plan_version']}"
        self.confirmation = confirm_destructive(
            self, "Accept next steps", f"Publish the next version of {plan} with run {r['id']}'s ratio steps?",
            "Publish", lambda: self._accept(r["id"]),
            details=("Steps up: " + ", ".join(moves) if moves else "No class steps up (all stay).")
            + " The others stay. Who accepted is recorded with each step and in the audit log.")
        return self.confirmation

    def _accept(self, run_id: int) -> None:
        from core.runs.loop import accept

        lab = self._lab

        def done(out: dict[str, Any]) -> None:
            changes = ", ".join(f"{n} → {k}:1" for n, k in sorted(out["changes"].items())) or "no ratio step changed"
            self._say(f"{out['plan']} v{out['version']} published: {changes}")
            self._read_record()

        self._act("Accept next steps", lambda: accept(lab, run_id), done)

    # -- the queue ----------------------------------------------------------------------------------------------

    def start_queue(self) -> tasks.GeneratorTask | None:
        """Work the queue in the background: each queued run in turn, in a process of its own. Returns the
        task; None when training is not installed, the queue is worked here already, or the start waits
        for the list being read (which may probe the queue's lock: the start follows it)."""
        if self.missing or self.working:
            return None
        if self._loading:
            self._start_pending = True
            return None
        task = self.queue.start()
        self._update_buttons()
        return task

    def stop_queue(self) -> None:
        """Ask the running run to stop at its next step, keeping a checkpoint; the queue stops after it."""
        self.queue.stop()

    def _after_queue(self, how: str) -> None:
        self._stale = True
        self.refresh()
        self._update_buttons()
        self.queue_ended.emit(how)

    def shutdown(self) -> None:
        """Window closing: the running run is asked to stop at its next step (it keeps a checkpoint, and
        the next window resumes it); this waits for it, at most the queue's grace period."""
        from core.runs.queue import CANCEL_GRACE_S

        self._closed = True
        self.timer.stop()
        self.queue.shutdown(int((CANCEL_GRACE_S + 15) * 1000))
        if self._built:
            remove_from_pyqtgraph(self)
