"""The top of the Runs area: what this machine runs on (the GPU probe), who works the run queue, how
many runs wait, Start queue / Stop, and the running run's progress line.

It owns the one background task of the area: :func:`core.runs.queue.work` as a generator task,
each run in a process of its own. Stop never closes that generator (closing it at a yield would
leave the run's process going with nobody recording it): it sets the flag ``work`` polls as its
``cancelled``, so the run stops at its next step, keeps a checkpoint, and the work ends.
"""

from __future__ import annotations

import threading
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app import tasks
from app.dialogs import show_error
from app.views.runs_dialogs import probe_summary
from app.views.runs_panels import progress_line
from core.lab import Lab

ACTIVE = ("running", "cancelling")
FINISHED = ("done", "cancelled", "failed", "interrupted")
START_TIP = ("Start the queued runs one at a time, each in a process of its own; Stop asks the current run to "
             "stop at its next step, keeping a checkpoint")


class RunQueuePanel(QWidget):
    probed = Signal(dict)  # the GPU probe's answer
    start_requested = Signal()  # Start queue was clicked (the area starts it when its reads allow)
    ended = Signal(str)  # the work ended: "finished", "stopped", "busy" (another process works it) or "failed"

    def __init__(self, lab: Lab, missing: str | None, parent: QWidget | None = None):
        super().__init__(parent)
        self._lab = lab
        self.missing = missing
        self.probe_info: dict[str, Any] | None = None
        self.runner: str | None = None  # who else works the queue, as its lock says
        self.task: tasks.GeneratorTask | None = None
        self._stop = threading.Event()
        self._probing = False
        self._live_line = False  # the progress line shows a run another process works
        self._epochs: dict[int, int] = {}  # run id: its epochs, for the progress line
        self.probe_label = QLabel(missing or "Asking the GPU probe…")
        self.probe_label.setWordWrap(True)
        self.runner_label = QLabel("")
        self.queued_label = QLabel("")
        self.queued_label.setStyleSheet("font-weight: bold")
        self.button = QPushButton("Start queue")
        self.button.setToolTip(missing or START_TIP)
        self.button.clicked.connect(self._clicked)
        self.progress = QLabel("")
        self.progress.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        machine = QHBoxLayout()
        machine.addWidget(self.probe_label, 1)
        machine.addWidget(self.runner_label)
        queue = QHBoxLayout()
        queue.addWidget(self.queued_label)
        queue.addWidget(self.button)
        queue.addWidget(self.progress, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(machine)
        layout.addLayout(queue)

    # -- the probe --------------------------------------------------------------------------------------

    def ask_probe(self) -> None:
        """Ask the GPU probe once (a separate process imports torch; pool thread waits for it)."""
        if self._probing or self.probe_info is not None or self.missing:
            return
        from core.runs.probe import probe

        self._probing = True
        tasks.call(probe, self._probed, lambda exc: self._probed({"error": f"the GPU probe failed: {exc}"}), self)

    def _probed(self, info: dict[str, Any]) -> None:
        self._probing = False
        self.probe_info = info
        text, style = probe_summary(info)
        self.probe_label.setText(text)
        self.probe_label.setStyleSheet(style)
        self.probed.emit(info)

    # -- what the queue holds ---------------------------------------------------------------------------

    @property
    def working(self) -> bool:
        """This window works the queue now."""
        return self.task is not None and self.task.running

    def show_runs(self, runs: list[dict[str, Any]], runner: str | None) -> None:
        """The runs as just read, and who works the queue (``runner`` is only asked while this window
        does not work it)."""
        if not self.working:
            self.runner = runner
        queued = sum(1 for r in runs if r["state"] == "queued")
        active = [r for r in runs if r["state"] in ACTIVE]
        if self.working:
            self.runner_label.setText("This window works the queue")
            doing = f"working: run {active[0]['id']}" if active else "working the queue"
            self.queued_label.setText(f"{doing}, {queued} more queued" if queued else doing)
        else:
            self.runner_label.setText(f"The queue is worked by {self.runner}" if self.runner else
                                      "Nobody works the queue")
            self.queued_label.setText(f"{queued} run(s) queued" if queued else "No run queued")
            if not active and self._live_line:
                self.progress.setText("")  # the run another process worked has ended
                self._live_line = False
        self.button.setText("Stop" if self.working else "Start queue")
        elsewhere = self.runner is not None and not self.working
        self.button.setEnabled(not self.missing and (self.working or (queued > 0 and not elsewhere)))
        self.button.setToolTip(self.missing or (f"The queue is worked by {self.runner}" if elsewhere else START_TIP))

    def show_live(self, run_id: int, step: dict[str, Any], epochs: int | None) -> None:
        """The last step of a run another process works (read from the catalog with its curves)."""
        if not self.working:
            self.progress.setText(progress_line(run_id, step, epochs))
            self._live_line = True

    def know_epochs(self, run_id: int, epochs: int | None) -> None:
        if epochs:
            self._epochs[run_id] = epochs

    # -- working it -----------------------------------------------------------------------------------------

    def _clicked(self) -> None:
        if self.working:
            self.stop()
        else:
            self.start_requested.emit()

    def start(self) -> tasks.GeneratorTask | None:
        """Work the queue in the background; None when training is not installed or it is worked here already."""
        from core.runs.queue import work

        if self.missing or self.working:
            return None
        self._stop.clear()
        lab, stop = self._lab, self._stop
        task = tasks.GeneratorTask(lambda: work(lab, cancelled=stop.is_set), self)
        task.progressed.connect(self._progress)
        task.finished.connect(lambda _r: self._over("stopped" if stop.is_set() else "finished"))
        task.failed.connect(self._failed)
        self.task = task.start()
        self.runner = None
        self._live_line = False
        self.progress.setText("Starting the queue…")
        self.runner_label.setText("This window works the queue")
        self.button.setText("Stop")
        self.button.setEnabled(True)
        return task

    def stop(self) -> None:
        """Ask the running run to stop at its next step (it keeps a checkpoint and can be resumed); the
        work ends after it."""
        if self.working:
            self._stop.set()
            self.button.setEnabled(False)
            self.progress.setText("Stopping: the run finishes its step and keeps a checkpoint…")

    def _progress(self, p) -> None:  # noqa: ANN001 - core.runs.queue.RunProgress
        if p.event is not None and p.event["event"] == "step":
            self.progress.setText(progress_line(p.run_id, p.event, self._epochs.get(p.run_id)))
        elif p.message:
            self.progress.setText(f"Run {p.run_id}: {p.message}" if p.run_id else p.message)
        elif p.state in FINISHED:
            self.progress.setText(f"Run {p.run_id}: {p.state}")

    def _over(self, how: str) -> None:
        self.progress.setText("The queue is stopped: the run was cancelled at its next step; Resume goes on from its "
                              "last checkpoint" if how == "stopped" else "Queue done: no run left to start")
        self._end(how)

    def _failed(self, exc: BaseException) -> None:
        from core.errors import RunnerBusyError

        if isinstance(exc, RunnerBusyError):
            self.runner = exc.owner
            self.progress.setText(str(exc))
            self._end("busy")
            return
        self.progress.setText(f"The queue stopped: {exc}")
        show_error(self, "Run queue", exc)
        self._end("failed")

    def _end(self, how: str) -> None:
        self.task = None
        self.button.setText("Start queue")
        self.ended.emit(how)

    def shutdown(self, wait_ms: int) -> None:
        """The window is closing: stop the run at its next step and wait for the work to end (at most
        ``wait_ms``)."""
        task = self.task
        if task is not None and task.running:
            self._stop.set()
            task.wait(wait_ms)
