"""Ingest monitor: images arriving live, per-scanner rate and queue, quarantine."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QStyledItemDelegate,
    QVBoxLayout,
    QWidget,
)

from app import tasks
from app.dialogs import confirm_destructive, show_error
from app.table_model import Column, RowsModel, make_table
from app.views.area import AreaView
from core.ingest.actions import discard, retry
from core.ingest.engine import IngestProgress
from core.ingest.monitor import IngestSnapshot, ingest_snapshot
from core.lab import Lab

RELEVANT = ("images", "quarantine", "ingest_events", "scanners", "scanner_models")
THUMBS_SHOWN = 48

def _count(v: Any) -> str:
    return f"{v:,}"


# Columns sized to their content; the name (scanners) or the free text (the
# reason, the file's path) takes the rest of the width and elides, whole in its tooltip.
SCANNER_COLUMNS = [
    Column("scanner", "Scanner", stretch=True),
    Column("station", "Station"),
    Column("model", "Model"),
    Column("per_minute", "Images\nlast minute", _count, tooltip="Images ingested in the last minute"),
    Column("last_hour", "Images\nlast hour", _count),
    Column("queue", "Waiting", _count, tooltip="Files in the drop folder not yet taken"),
]
QUARANTINE_COLUMNS = [
    Column("id", "#"),
    Column("at", "When", lambda v: (v or "")[:19].replace("T", " ")),
    Column("scanner", "Scanner"),
    Column("reason_code", "Check"),
    Column("reason", "Reason", stretch=True),
    Column("source_path", "File", stretch=True),
]


class ElideMiddleDelegate(QStyledItemDelegate):
    """A path keeps its folder's start and its file name; the middle gives way."""

    def initStyleOption(self, option, index) -> None:  # noqa: N802 - Qt API
        super().initStyleOption(option, index)
        option.textElideMode = Qt.TextElideMode.ElideMiddle


def load_snapshot(lab: Lab, since_id: int) -> IngestSnapshot:
    return ingest_snapshot(lab, since_id, THUMBS_SHOWN)


def today_text(t: dict[str, int]) -> str:
    """Images and threat reports apart: a report is annotations for an image, not one more image."""
    return (f"Today: {t.get('images', 0)} images, {t.get('reports', 0)} reports (annotations), "
            f"{t.get('duplicate', 0)} duplicates, {t.get('quarantined', 0)} quarantined, "
            f"{t.get('rejected', 0)} left in place (unreadable or skipped)")


class IngestMonitorPanel(AreaView):
    loaded = Signal()
    run_here_toggled = Signal(bool)
    relevant_tables = RELEVANT

    def __init__(self, lab: Lab, parent: QWidget | None = None):
        super().__init__(parent)
        self._lab = lab
        self._last_id = 0
        self._loading = False

        self.run_here = QCheckBox("Run ingest on this workstation")
        self.run_here.toggled.connect(self.run_here_toggled)
        self.status = QLabel("")
        top = QHBoxLayout()
        top.addWidget(self.run_here)
        top.addWidget(self.status, 1)

        self.scanner_model = RowsModel(SCANNER_COLUMNS, self)
        self.scanner_table, _ = make_table(self.scanner_model)
        self.scanner_table.setMaximumHeight(170)

        self.thumbs = QListWidget()
        self.thumbs.setViewMode(QListView.ViewMode.IconMode)
        self.thumbs.setIconSize(QSize(150, 112))
        self.thumbs.setGridSize(QSize(170, 150))
        self.thumbs.setResizeMode(QListView.ResizeMode.Adjust)
        self.thumbs.setMovement(QListView.Movement.Static)
        self.thumbs.setWordWrap(True)
        self.thumbs.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)

        self.quarantine_model = RowsModel(QUARANTINE_COLUMNS, self)
        self.quarantine_table, self.quarantine_proxy = make_table(self.quarantine_model)
        self.quarantine_table.setItemDelegateForColumn(len(QUARANTINE_COLUMNS) - 1,
                                                       ElideMiddleDelegate(self.quarantine_table))
        self.retry_button = QPushButton("Retry checks")
        self.accept_button = QPushButton("Accept anyway…")
        self.accept_button.setToolTip("Take the file although its size or bit depth does not match its scanner model")
        self.discard_button = QPushButton("Discard…")
        self.retry_button.clicked.connect(lambda: self._act("retry"))
        self.accept_button.clicked.connect(lambda: self._act("accept"))
        self.discard_button.clicked.connect(lambda: self._act("discard"))
        self.quarantine_title = QLabel("Quarantine")
        actions = QHBoxLayout()
        actions.addWidget(self.quarantine_title)
        actions.addStretch(1)
        for button in (self.retry_button, self.accept_button, self.discard_button):
            actions.addWidget(button)
        quarantine_box = QWidget()
        q_layout = QVBoxLayout(quarantine_box)
        q_layout.setContentsMargins(0, 0, 0, 0)
        q_layout.addLayout(actions)
        q_layout.addWidget(self.quarantine_table)

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.thumbs)
        splitter.addWidget(quarantine_box)
        splitter.setSizes([330, 170])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.scanner_table)
        layout.addWidget(QLabel("Arriving images (newest first)"))
        layout.addWidget(splitter, 1)

    # -- data -------------------------------------------------------------

    def refresh(self) -> None:
        if self._loading:
            self._stale = True
            return
        self._loading = True
        self._stale = False
        since = self._last_id
        tasks.call(lambda: load_snapshot(self._lab, since), self._show, self._failed, self)

    def _failed(self, exc: BaseException) -> None:
        self._loading = False
        show_error(self, "Could not read ingest status", exc)

    def _show(self, snapshot: IngestSnapshot) -> None:
        self._loading = False
        self.scanner_model.set_rows(snapshot.scanners)
        for image in reversed(snapshot.recent):
            self._add_thumbnail(image)
        while self.thumbs.count() > THUMBS_SHOWN:
            self.thumbs.takeItem(self.thumbs.count() - 1)
        self.quarantine_model.set_rows(snapshot.quarantine)
        self.quarantine_title.setText(f"Quarantine: {len(snapshot.quarantine)} file(s) held")
        self.status.setText(today_text(snapshot.totals_today))
        if self._stale:
            self.refresh()
        else:
            self.loaded.emit()

    def _add_thumbnail(self, image: dict[str, Any]) -> None:
        if image["id"] <= self._last_id:
            return
        self._last_id = image["id"]
        pixmap = QPixmap(str(self._lab.paths.store / image["thumb_path"])) if image["thumb_path"] else QPixmap()
        when = (image["captured_at"] or "")[11:19]
        item = QListWidgetItem(QIcon(pixmap), f"{image['scanner'] or '?'} {when}\n{image['split'] or 'unassigned'}")
        flags = image["quality_flags"]
        item.setToolTip(f"{image['original_name']}\nscanner {image['scanner']}, captured {image['captured_at']}"
                        f"\nsplit: {image['split'] or 'unassigned'}" + (f"\nflags: {flags}" if flags else ""))
        if "split_leak" in flags:
            item.setBackground(Qt.GlobalColor.red)
        elif "near_duplicate" in flags:
            item.setBackground(Qt.GlobalColor.yellow)
        self.thumbs.insertItem(0, item)

    def on_ingest_progress(self, step: IngestProgress) -> None:
        """Queue depths straight from the ingest running in this process."""
        for row in self.scanner_model.rows:
            if row["scanner"] in step.queue:
                row["queue"] = step.queue[row["scanner"]]
        self.scanner_model.layoutChanged.emit()

    # -- quarantine actions ---------------------------------------------------

    def _selected_quarantine(self) -> dict[str, Any] | None:
        rows = self.quarantine_table.selectionModel().selectedRows()
        if not rows:
            return None
        return self.quarantine_model.rows[self.quarantine_proxy.mapToSource(rows[0]).row()]

    def _act(self, action: str) -> None:
        row = self._selected_quarantine()
        if row is None:
            self.status.setText("Select a quarantined file first")
            return
        if action in ("discard", "accept"):
            verb = "Discard" if action == "discard" else "Accept"
            note = ("The kept copy stays on disk; the audit log records that you discarded it."
                    if action == "discard" else "It will be catalogued despite: " + row["reason"])
            confirm_destructive(self, f"{verb} quarantined file", f"{verb} {row['file']}?", verb,
                                lambda: self.perform(action, row["id"]), note)
            return
        self.perform(action, row["id"])

    def perform(self, action: str, quarantine_id: int) -> None:
        def work():
            if action == "discard":
                discard(self._lab, quarantine_id)
                return f"#{quarantine_id} discarded"
            outcome = retry(self._lab, quarantine_id, accept=action == "accept")
            return f"#{quarantine_id}: {outcome.outcome}"

        tasks.call(work, self.status.setText, lambda e: show_error(self, "Quarantine", e), self)
