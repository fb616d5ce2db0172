"""The one module that owns threads in the GUI.

Core long work is a generator of :class:`core.progress.Progress`; a
:class:`GeneratorTask` runs one in a ``QThread`` and turns its yields into
signals. Cancel is honoured at the next yield (the generator is closed there,
so core's cleanup runs). The progress dialog appears only after 500 ms and is
updated at most 10 times a second. Short reads run through :func:`call` on a
thread pool and call back on the GUI thread.
"""

from __future__ import annotations

import itertools
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QRunnable, Qt, QThread, QThreadPool, QTimer, Signal, Slot
from PySide6.QtWidgets import QProgressDialog, QWidget

from core.progress import Progress

PROGRESS_DELAY_MS = 500
MAX_UPDATES_PER_S = 10


class _GeneratorWorker(QObject):
    # Emitted on the worker thread; payloads travel wrapped in a 1-tuple (a
    # bare None through a queued ``object`` argument upsets PySide's refcounts).
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
                    self.finished.emit((stop.value,))
                    return
                now = time.monotonic()
                if now - last_emit >= 1 / MAX_UPDATES_PER_S:
                    last_emit = now
                    self.progressed.emit((step,))
        except BaseException as exc:  # noqa: BLE001 - reported to the user, never lost
            exc.__xlab_traceback__ = traceback.format_exc()  # type: ignore[attr-defined]
            if generator is not None:
                generator.close()
            self.failed.emit((exc,))
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
        # Cross-thread deliveries land in decorated slots on this (GUI-thread)
        # object, which re-emit on the GUI thread.
        self._worker.progressed.connect(self._progressed, Qt.ConnectionType.QueuedConnection)
        self._worker.finished.connect(self._finished, Qt.ConnectionType.QueuedConnection)
        self._worker.failed.connect(self._failed, Qt.ConnectionType.QueuedConnection)
        self._worker.cancelled.connect(self._cancelled, Qt.ConnectionType.QueuedConnection)
        self._thread.finished.connect(self._ended, Qt.ConnectionType.QueuedConnection)

    @Slot(object)
    def _progressed(self, wrapped: tuple) -> None:
        self.progressed.emit(wrapped[0])

    @Slot(object)
    def _finished(self, wrapped: tuple) -> None:
        self.finished.emit(wrapped[0])

    @Slot(object)
    def _failed(self, wrapped: tuple) -> None:
        self.failed.emit(wrapped[0])

    @Slot()
    def _cancelled(self) -> None:
        self.cancelled.emit()

    @Slot()
    def _ended(self) -> None:
        self.ended.emit()

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


class _Dispatcher(QObject):
    """One long-lived object on the GUI thread that hands pooled results back.

    Workers only emit its signal; no per-call QObject is created or destroyed
    across threads (a per-call emitter freed on a worker while its receiver is
    deleted on the GUI thread crashes Qt).
    """

    delivered = Signal(int, bool, object)

    def __init__(self) -> None:
        super().__init__()
        self._pending: dict[int, tuple[Callable[[Any], None], Callable[[BaseException], None], QObject]] = {}
        self._ids = itertools.count()
        self.delivered.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    def register(self, on_done: Callable[[Any], None], on_failed: Callable[[BaseException], None],
                 context: QObject) -> int:
        call_id = next(self._ids)
        self._pending[call_id] = (on_done, on_failed, context)
        return call_id

    @Slot(int, bool, object)
    def _deliver(self, call_id: int, ok: bool, wrapped: tuple) -> None:
        payload = wrapped[0]  # wrapped: never a bare None across threads
        entry = self._pending.pop(call_id, None)
        if entry is None:
            return
        on_done, on_failed, context = entry
        if not shiboken6.isValid(context):
            return  # the view asking is gone
        (on_done if ok else on_failed)(payload)


_dispatcher: _Dispatcher | None = None


class _Call(QRunnable):
    def __init__(self, fn: Callable[[], Any], call_id: int, dispatcher: _Dispatcher):
        super().__init__()
        self._fn = fn
        self._id = call_id
        self._dispatcher = dispatcher

    def run(self) -> None:
        try:
            result = self._fn()
        except BaseException as exc:  # noqa: BLE001 - reported to the user
            exc.__xlab_traceback__ = traceback.format_exc()  # type: ignore[attr-defined]
            self._dispatcher.delivered.emit(self._id, False, (exc,))
        else:
            self._dispatcher.delivered.emit(self._id, True, (result,))


def call(
    fn: Callable[[], Any],
    on_done: Callable[[Any], None],
    on_failed: Callable[[BaseException], None],
    context: QObject,
) -> None:
    """Run a short read off the GUI thread; ``on_done(result)`` runs on the GUI thread.

    Call from the GUI thread. Callbacks are dropped if ``context`` is destroyed first.
    """
    global _dispatcher
    if _dispatcher is None:
        _dispatcher = _Dispatcher()
    call_id = _dispatcher.register(on_done, on_failed, context)
    QThreadPool.globalInstance().start(_Call(fn, call_id, _dispatcher))


def wait_for_calls(ms: int = 10_000) -> bool:
    """Block until pooled calls finish (shutdown and tests)."""
    return QThreadPool.globalInstance().waitForDone(ms)


GIL_SWITCH_S = 0.001


def favour_the_gui_thread() -> None:
    """Workers (ingest, dashboard reads) hand the interpreter back every 1 ms
    instead of 5, so the window never waits long for its turn."""
    import sys

    sys.setswitchinterval(GIL_SWITCH_S)


def freeze_long_lived() -> None:
    """Move what exists now (modules, the window, loaded caches) out of the
    cycle collector's way: a full collection then scans only newer objects and
    never holds the interpreter (and so the window) for long."""
    import gc

    gc.freeze()
