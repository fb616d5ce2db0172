"""The window's scheduled backup: once an hour (and a minute after the window
opens) it asks core whether a backup is due (``xlab settings
--backup-every-hours N --backup-dest DIR``) and, if so, runs it in the
background with no dialog; what happened is reported in one line."""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QWidget

from app import tasks
from core.lab import Lab

CHECK_EVERY_MS = 3_600_000
FIRST_CHECK_MS = 60_000  # after start-up, not during it


class ScheduledBackup(QObject):
    reported = Signal(str)  # a line for the status bar: started, done (with its summary) or failed
    finished = Signal(object)  # core.backup.backup.BackupReport

    def __init__(self, lab: Lab, parent: QWidget, first_check_ms: int = FIRST_CHECK_MS):
        super().__init__(parent)
        self._lab = lab
        self._window = parent
        self._task: tasks.GeneratorTask | None = None
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.check_now)
        self._timer.start(CHECK_EVERY_MS)
        QTimer.singleShot(first_check_ms, self, self.check_now)

    @property
    def running(self) -> bool:
        return self._task is not None and self._task.running

    def check_now(self) -> None:
        """Run the backup if one is due (the check reads the catalog off the GUI thread)."""
        from core.backup.schedule import backup_schedule

        if self.running:
            return
        lab = self._lab
        tasks.call(lambda: backup_schedule(lab.catalog), self._checked,
                   lambda exc: self.reported.emit(f"Scheduled backup: could not read its settings ({exc})"), self)

    def _checked(self, schedule) -> None:  # core.backup.schedule.BackupSchedule
        from core.backup.backup import backup

        if self.running or not schedule.due():
            return
        lab, dest = self._lab, schedule.dest
        self.reported.emit(f"Scheduled backup to {dest} running…")
        self._task = tasks.run_task(lambda: backup(lab, dest), title="Scheduled backup", parent=self._window,
                                    show_progress=False, on_finished=self._done, on_failed=self._failed)

    def _done(self, report) -> None:
        self.reported.emit(f"Scheduled backup done: {report.summary()}")
        self.finished.emit(report)

    def _failed(self, exc: BaseException) -> None:
        self.reported.emit(f"Scheduled backup FAILED: {exc} — the dashboards show the last good one's age")

    def stop(self) -> None:
        """Window closing: stop checking, and stop a running backup at its next step
        (the folder keeps the previous complete backup)."""
        self._timer.stop()
        if self.running:
            self._task.cancel()
            self._task.wait(30_000)
