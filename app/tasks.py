"""The one module that owns threads in the GUI.

Core long work is a generator of :class:`core.progress.Progress`; a
:class:`GeneratorTask` runs one in a ``QThread`` and turns its yields into
signals. Cancel is honoured at the next yield (the generator is closed there,
so core's cleanup runs). The progress dialog appears only after 500 ms and is
updated at most 10 times a second. Short reads run through :func:`call` on a
thread pool and call back on the GUI thread.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Qt, QThread, QThreadPool, QTimer, Signal, Slot
from PySide6.QtWidgets import QProgressDialog, QWidget

from core.progress import Progress

PROGRESS_DELAY_MS = 500
MAX_UPDATES_PER_S = 10


class _GeneratorWorker(QObject):
    progressed = Signal(object)
    finished = Signal(object)
    failed = Signal(object)
    cancelled = Signal()

    def __init__(self, factory: Callable[[], Iterator[Progress]]):
        super().__init__()
        self._factory = factory
        self._cancel = False

    def cancel(self) -> None:
        # Read from the worker thread between yields; a plain bool is enough.
        self._cancel = True

    @Slot()
    def run(self) -> None:
        last_emit = 0.0
        generator = None
        try:
            generator = self._factory()
            while True:
                if self._cancel:
                    generator.close()
                    self.cancelled.emit()
                    return
                try:
                    step = next(generator)
                except StopIteration as stop:
                    self.finished.emit(stop.value)
                    return
                now = time.monotonic()
                if now - last_emit >= 1 / MAX_UPDATES_PER_S:
                    last_emit = now
                    self.progressed.emit(step)
        except BaseException as exc:  # noqa: BLE001 - reported to the user, never lost
            exc.__xlab_traceback__ = traceback.format_exc()  # type: ignore[attr-defined]
            if generator is not None:
                generator.close()
            self.failed.emit(exc)
        finally:
            # Directly, not by a queued signal: the GUI thread may be blocked in wait().
            self.thread().quit()


class GeneratorTask(QObject):
    """A core generator running in its own thread. Keep a reference while it runs."""

    progressed = Signal(object)  # Progress
    finished = Signal(object)  # the generator's return value
    failed = Signal(object)  # the exception
    cancelled = Signal()
    ended = Signal()  # after any of the three above, once the thread has stopped

    def __init__(self, factory: Callable[[], Iterator[Progress]], parent: QObject | None = None):
        super().__init__(parent)
        self._thread = QThread()
        self._worker = _GeneratorWorker(factory)
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.run)
        self._worker.progressed.connect(self.progressed)
        self._worker.finished.connect(self.finished)
        self._worker.failed.connect(self.failed)
        self._worker.cancelled.connect(self.cancelled)
        self._thread.finished.connect(self.ended)

    @property
    def running(self) -> bool:
        return self._thread.isRunning()

    def start(self) -> "GeneratorTask":
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._worker.cancel()

    def wait(self, ms: int = 10_000) -> bool:
        return self._thread.wait(ms)


class ProgressPresenter(QObject):
    """Shows a task's progress in a dialog after 500 ms, with a working Cancel."""

    def __init__(self, task: GeneratorTask, title: str, parent: QWidget | None):
        super().__init__(parent)
        self._task = task
        self._dialog = QProgressDialog(title, "Cancel", 0, 0, parent)
        self._dialog.setWindowTitle(title)
        self._dialog.setWindowModality(Qt.WindowModality.WindowModal)
        self._dialog.setMinimumDuration(PROGRESS_DELAY_MS)
        self._dialog.setAutoClose(False)
        self._dialog.setAutoReset(False)
        self._dialog.canceled.connect(task.cancel)
        self._dialog.reset()  # not shown until the delay has passed with the task still running
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._show)
        self._timer.start(PROGRESS_DELAY_MS)
        task.progressed.connect(self._update)
        task.ended.connect(self._close)

    def _show(self) -> None:
        if self._task.running:
            self._dialog.show()

    def _update(self, step: Progress) -> None:
        if step.total:
            self._dialog.setMaximum(step.total)
            self._dialog.setValue(min(step.done, step.total))
        self._dialog.setLabelText(step.message or f"{step.done} done")

    def _close(self) -> None:
        self._timer.stop()
        self._dialog.close()
        self.deleteLater()

    @property
    def dialog(self) -> QProgressDialog:
        return self._dialog


def run_task(
    factory: Callable[[], Iterator[Progress]],
    *,
    title: str,
    parent: QWidget | None,
    on_finished: Callable[[Any], None] | None = None,
    on_failed: Callable[[BaseException], None] | None = None,
    show_progress: bool = True,
) -> GeneratorTask:
    """Start ``factory()`` in a thread; callbacks run on the GUI thread."""
    task = GeneratorTask(factory, parent)
    if on_finished:
        task.finished.connect(on_finished)
    if on_failed:
        task.failed.connect(on_failed)
    if show_progress:
        ProgressPresenter(task, title, parent)
    return task.start()


class _CallSignals(QObject):
    done = Signal(object)
    failed = Signal(object)


class _Relay(QObject):
    """Lives on the GUI thread, so queued deliveries run the callbacks there."""

    def __init__(self, on_done: Callable[[Any], None], on_failed: Callable[[BaseException], None], parent: QObject):
        super().__init__(parent)
        self._on_done = on_done
        self._on_failed = on_failed

    @Slot(object)
    def deliver(self, result: Any) -> None:
        self.deleteLater()
        self._on_done(result)

    @Slot(object)
    def fail(self, exc: BaseException) -> None:
        self.deleteLater()
        self._on_failed(exc)


class _Call(QRunnable):
    def __init__(self, fn: Callable[[], Any], signals: _CallSignals):
        super().__init__()
        self._fn = fn
        self.signals = signals

    def run(self) -> None:
        try:
            result = self._fn()
        except BaseException as exc:  # noqa: BLE001 - reported to the user
            exc.__xlab_traceback__ = traceback.format_exc()  # type: ignore[attr-defined]
            self.signals.failed.emit(exc)
        else:
            self.signals.done.emit(result)


def call(
    fn: Callable[[], Any],
    on_done: Callable[[Any], None],
    on_failed: Callable[[BaseException], None],
    context: QObject,
) -> None:
    """Run a short read off the GUI thread; ``on_done(result)`` runs on the GUI thread.

    Callbacks are dropped if ``context`` is destroyed first.
    """
    relay = _Relay(on_done, on_failed, context)
    signals = _CallSignals()
    signals.done.connect(relay.deliver)
    signals.failed.connect(relay.fail)
    relay.signals = signals  # keeps the emitter alive until the result is delivered
    QThreadPool.globalInstance().start(_Call(fn, signals))


def wait_for_calls(ms: int = 10_000) -> bool:
    """Block until pooled calls finish (shutdown and tests)."""
    return QThreadPool.globalInstance().waitForDone(ms)
