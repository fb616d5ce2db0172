"""The background-work module: generators become signals, Cancel works, errors arrive."""

import threading
import time

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton, QWidget

from app import tasks
from core.errors import XLabError
from core.progress import Progress


def counting(n, delay=0.0, fail_at=None, closed=None):
    try:
        for i in range(n):
            if fail_at == i:
                raise XLabError("disk full")
            time.sleep(delay)
            yield Progress(i + 1, n, f"step {i + 1}")
        return "result"
    finally:
        if closed is not None:
            closed.set()


def test_generator_runs_off_the_gui_thread_and_returns(qtbot):
    threads = []

    def factory():
        threads.append(threading.get_ident())
        return counting(5)

    task = tasks.GeneratorTask(factory)
    with qtbot.waitSignal(task.finished, timeout=5000) as blocker:
        task.start()
    assert blocker.args == ["result"]
    assert threads and threads[0] != threading.get_ident()
    assert task.wait()


def test_cancel_stops_at_the_next_yield_and_closes_the_generator(qtbot):
    closed = threading.Event()
    task = tasks.GeneratorTask(lambda: counting(10_000, delay=0.001, closed=closed))
    with qtbot.waitSignal(task.progressed, timeout=5000):
        task.start()
    with qtbot.waitSignal(task.cancelled, timeout=5000):
        task.cancel()
    assert closed.is_set()
    assert task.wait()


def test_errors_arrive_as_a_signal(qtbot):
    task = tasks.GeneratorTask(lambda: counting(5, fail_at=2))
    with qtbot.waitSignal(task.failed, timeout=5000) as blocker:
        task.start()
    assert isinstance(blocker.args[0], XLabError)
    task.wait()


def test_progress_updates_are_throttled(qtbot):
    seen = []
    task = tasks.GeneratorTask(lambda: counting(2000, delay=0.0002))
    task.progressed.connect(seen.append)
    with qtbot.waitSignal(task.finished, timeout=10_000):
        task.start()
    task.wait()
    elapsed_updates_cap = 10 * 2 + 2  # about 0.4-1 s of work at most 10/s, generous
    assert 1 <= len(seen) <= elapsed_updates_cap


def test_dialog_stays_hidden_for_short_work_and_cancel_button_cancels(qtbot):
    parent = QWidget()
    qtbot.addWidget(parent)
    quick = tasks.GeneratorTask(lambda: counting(3))
    presenter = tasks.ProgressPresenter(quick, "Quick", parent)
    dialog = presenter.dialog
    with qtbot.waitSignal(quick.ended, timeout=5000):
        quick.start()
    assert not dialog.isVisible()

    slow = tasks.GeneratorTask(lambda: counting(100_000, delay=0.001))
    presenter = tasks.ProgressPresenter(slow, "Slow", parent)
    slow.start()
    qtbot.waitUntil(lambda: presenter.dialog.isVisible(), timeout=3000)
    cancel_button = presenter.dialog.findChild(QPushButton)
    with qtbot.waitSignal(slow.cancelled, timeout=5000):
        qtbot.mouseClick(cancel_button, Qt.MouseButton.LeftButton)
    slow.wait()


def test_call_delivers_on_the_gui_thread(qtbot):
    parent = QWidget()
    qtbot.addWidget(parent)
    where = {}

    def done(result):
        where["thread"] = threading.get_ident()
        where["result"] = result

    tasks.call(lambda: threading.get_ident(), done, pytest.fail, parent)
    qtbot.waitUntil(lambda: "result" in where, timeout=5000)
    assert where["thread"] == threading.get_ident()
    assert where["result"] != threading.get_ident()


def test_qt_calling_python_keeps_none_alive():
    """Guards the PySide6 pin: a build that loses a reference to None on each
    call from Qt into Python aborts a window within minutes."""
    import subprocess
    import sys

    script = (
        "import sys, time\n"
        "from PySide6.QtCore import QCoreApplication, QTimer\n"
        "app = QCoreApplication([])\n"
        "t = QTimer(); t.setInterval(0); t.timeout.connect(lambda: None); t.start()\n"
        "before = sys.getrefcount(None); end = time.time() + 0.5\n"
        "while time.time() < end: app.processEvents()\n"
        "sys.exit(0 if sys.getrefcount(None) >= before - 100 else 3)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                            env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-500:]
