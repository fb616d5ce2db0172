"""The main window: navigation between areas, status bar, simulated scanners."""

from __future__ import annotations

from PySide6.QtCore import QSettings, QSize, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QLabel,
    QListWidget,
    QListWidgetItem,
    QHBoxLayout,
    QMainWindow,
    QPushButton,
    QStackedWidget,
    QWidget,
)

from app import tasks
from app.catalog_watch import CatalogWatcher
from app.dialogs import show_error
from app.rights import Rights, SignInDialog
from app.scheduled_backup import ScheduledBackup
from app.views.audit import AuditView
from app.views.dashboards_area import DashboardsView
from app.views.datasets import DatasetsView
from app.views.ingest import IngestMonitorPanel
from app.views.inventory import InventoryView
from app.views.lab_setup import install_menus
from app.views.labels import LabelReviewView
from app.views.quotas import QuotaPlansView
from app.views.runs import RunsView
from app.views.today import TodayChecklistView
from core.lab import Lab
from core.progress import Progress

AREAS = ("Today", "Dashboards", "Ingest", "Quotas", "Inventory", "Labels", "Datasets", "Runs", "Audit")


class MainWindow(QMainWindow):
    ready = Signal()  # the first area has shown its data

    def __init__(self, lab: Lab, parent: QWidget | None = None, settings: QSettings | None = None):
        super().__init__(parent)
        self.lab = lab
        self.setWindowTitle(f"XLab — {lab.paths.root}")
        self.setMinimumSize(QSize(1024, 640))
        self.watcher = CatalogWatcher(lab.catalog, self)

        self.nav = QListWidget()
        self.nav.setFixedWidth(150)
        self.nav.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.nav.setIconSize(QSize(20, 20))
        self.stack = QStackedWidget()
        self.today = TodayChecklistView(lab, settings=settings)
        self.dashboards = DashboardsView(lab, settings=settings)
        self.ingest = IngestMonitorPanel(lab)
        self.quotas = QuotaPlansView(lab)
        self.inventory = InventoryView(lab)
        self.labels = LabelReviewView(lab)
        self.datasets = DatasetsView(lab, settings=settings)
        self.runs = RunsView(lab)
        self.audit = AuditView(lab, settings=settings)
        self.areas: dict[str, QWidget] = {"Today": self.today, "Dashboards": self.dashboards, "Ingest": self.ingest, "Quotas": self.quotas, "Inventory": self.inventory, "Labels": self.labels, "Datasets": self.datasets, "Runs": self.runs, "Audit": self.audit}
        for index, name in enumerate(AREAS):
            item = QListWidgetItem(name)
            item.setSizeHint(QSize(140, 40))
            item.setToolTip(f"{name} (Ctrl+{index + 1})")
            self.nav.addItem(item)
            self.stack.addWidget(self.areas[name])
            action = QAction(self)
            action.setShortcut(QKeySequence(f"Ctrl+{index + 1}"))
            action.triggered.connect(lambda _=False, i=index: self.nav.setCurrentRow(i))
            self.addAction(action)
        self.nav.currentRowChanged.connect(self.stack.setCurrentIndex)
        for view in self.areas.values():
            self.watcher.changed.connect(view.on_catalog_changed)
        for view in self.areas.values():
            view.loaded.connect(self._first_load)
        self.ingest.run_here_toggled.connect(self._toggle_ingest)
        self.runs.image_requested.connect(self.open_in_labels)

        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.nav)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        self.scanner_status = QLabel("")
        self.statusBar().addPermanentWidget(self.scanner_status)
        self.viewer_note = QLabel("")
        self.viewer_note.setStyleSheet("font-weight: bold")
        self.viewer_note.hide()
        self.statusBar().addPermanentWidget(self.viewer_note)
        self.statusBar().showMessage(f"Lab: {lab.paths.root}")
        # Who is signed in; the buttons their role may not use are disabled, saying why.
        self.rights = Rights(self, lab.catalog)
        self.user_button = QPushButton(self.rights.label())
        self.user_button.setFlat(True)
        self.user_button.setToolTip("Sign in as another user of this lab (a station several people share)")
        self.user_button.clicked.connect(self.sign_in)
        self.statusBar().addPermanentWidget(self.user_button)
        self.rights.install()
        self.nav.currentRowChanged.connect(lambda _row: self.rights.install())
        self._simulation: tasks.GeneratorTask | None = None
        self._ingest: tasks.GeneratorTask | None = None
        self._announced = False
        self.backups = ScheduledBackup(lab, self)
        self.backups.reported.connect(lambda line: self.statusBar().showMessage(line, 60_000))
        install_menus(self)
        self.nav.setCurrentRow(0)

    def _first_load(self) -> None:
        if not self._announced:
            self._announced = True
            tasks.freeze_long_lived()
            self.ready.emit()

    def show_area(self, name: str) -> QWidget:
        self.nav.setCurrentRow(AREAS.index(name))
        return self.areas[name]

    def sign_in(self) -> SignInDialog:
        """Ask for a user's name and PIN, and sign them in here (non-modal; returns the dialog)."""
        server = self.lab.catalog.dialect == "postgresql"
        dialog = SignInDialog(self, server=server)

        def accepted() -> None:
            from core.errors import XLabError
            from core.users import hand_down, sign_in

            if server:
                dialog.message.setText("On the lab's server each user signs in with their own login: start XLab "
                                       "with 'xlab gui --user NAME' (the password is asked for).")
                dialog.show()
                return
            try:
                who = sign_in(self.lab, dialog.name.text().strip(), dialog.pin.text())
            except XLabError as exc:
                dialog.message.setText(str(exc))
                dialog.show()
                return
            hand_down(who, dialog.pin.text())
            self._signed_in_changed()
            self.statusBar().showMessage(f"Signed in as {who.name} ({who.title})", 10_000)
            dialog.close()

        dialog.accepted.connect(accepted)
        dialog.open()
        self._sign_in_dialog = dialog
        return dialog

    def show_users(self):  # -> UsersDialog
        """The lab's users and roles (File ▸ Users and roles…); non-modal, returns the dialog."""
        from app.views.users import UsersDialog

        dialog = self._users_dialog = UsersDialog(self.lab, self)
        dialog.finished.connect(lambda _r: self._signed_in_changed())
        dialog.open()
        return dialog

    def _signed_in_changed(self) -> None:
        """Users changed (a first administrator, a role): what the window offers follows."""
        self.user_button.setText(self.rights.label())
        self.rights.refresh(self._reenable)
        who = self.lab.catalog.identity
        if who is not None and who.role:
            self.today.technician.setText(who.name)  # who runs the checklist here now

    def _reenable(self) -> None:
        for view in self.areas.values():
            update = getattr(view, "_update_buttons", None)
            if callable(update):
                update()

    def open_in_labels(self, image_id: int) -> None:
        """Show image ``image_id`` in the Labels area's viewer (a run's worst images open there)."""
        self.show_area("Labels")
        self.labels.open_image(image_id)

    # -- simulated scanners ---------------------------------------------------

    def start_simulation(self, rate_per_minute: float) -> None:
        from core.demo import run_demo_scanners

        self._simulation = tasks.run_task(
            lambda: run_demo_scanners(self.lab, rate_per_minute), title="Simulated scanners",
            parent=self, show_progress=False,
            on_failed=lambda e: show_error(self, "Simulated scanners stopped", e),
        )
        self._simulation.progressed.connect(self._simulated)
        self.scanner_status.setText(f"Simulated scanners: starting ({rate_per_minute:g}/min each)")

    def _simulated(self, step: Progress) -> None:
        self.scanner_status.setText(f"Simulated scanners: {step.done} files written — {step.message}")

    # -- ingest in this process ---------------------------------------------------

    def start_ingest(self) -> None:
        if self.ingest.run_here.isChecked():
            return
        self.ingest.run_here.setChecked(True)  # starts it through _toggle_ingest

    def ingest_elsewhere(self) -> str | None:
        """Who ingests this lab in another process, or None."""
        from core.ingest.lock import describe_owners, lab_ingest_owners

        if self._ingest is not None and self._ingest.running:
            return None
        owners = lab_ingest_owners(self.lab)
        return describe_owners(owners) if owners else None

    def show_viewer_mode(self, who: str) -> None:
        """This window only shows the lab: another process ingests it."""
        # Short on the status bar (two stations' descriptions overflow 1366 px); whole in the tooltip.
        scanners = ", ".join(part.split(" by ")[0] for part in who.split("; "))
        self.viewer_note.setText(f"Viewer: ingest runs in another XLab ({scanners})")
        self.viewer_note.setToolTip(
            f"Ingested by: {who}.\nOne process ingests a scanner's drop folder at a time. This window shows the "
            "lab and updates as images arrive; to ingest here, stop the other XLab first.")
        self.viewer_note.show()

    def _toggle_ingest(self, on: bool) -> None:
        from core.ingest.engine import watch
        from core.ingest.log import ingest_logging

        if on and (self._ingest is None or not self._ingest.running):
            who = self.ingest_elsewhere()
            if who is not None:
                self.ingest.run_here.setChecked(False)
                self.show_viewer_mode(who)
                return
            self.viewer_note.hide()
            ingest_logging(self.lab)
            self._ingest = tasks.run_task(
                lambda: watch(self.lab), title="Ingest", parent=self, show_progress=False,
                on_failed=self._ingest_failed,
            )
            self._ingest.progressed.connect(self.ingest.on_ingest_progress)
            self.statusBar().showMessage("Ingest running on this workstation", 5000)
        elif not on and self._ingest is not None:
            self._ingest.cancel()

    def _ingest_failed(self, exc: BaseException) -> None:
        from core.errors import IngestRunningError

        self.ingest.run_here.setChecked(False)
        if isinstance(exc, IngestRunningError):
            self.show_viewer_mode(exc.who)  # another XLab started ingest first
            return
        show_error(self, "Ingest stopped", exc)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.runs.shutdown()  # the running run stops at its next step, keeping a checkpoint
        for task in (self._simulation, self._ingest):
            if task is not None and task.running:
                task.cancel()
        for task in (self._simulation, self._ingest):
            if task is not None:
                task.wait(10_000)
        self.backups.stop()
        self.audit.shutdown()
        self.watcher.stop()
        self.labels.shutdown()  # a box moved by the keys in the last moment is saved
        tasks.wait_for_calls(5000)
        self.today.shutdown()
        self.dashboards.shutdown()
        self.datasets.shutdown()
        super().closeEvent(event)
