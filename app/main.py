"""Start the window: ``xlab gui`` and ``xlab demo`` end here."""

from __future__ import annotations

import os
import sys
import time

_T0 = time.perf_counter()


# Every window this process opened, and its lab (closed when the app ends).
_windows: list = []


def run(lab: str | None = None, simulate: bool = False, rate: float = 12.0) -> int:
    from PySide6.QtWidgets import QApplication

    from app.dialogs import show_error
    from core.errors import LabNotFoundError, XLabError
    from core.lab import Lab, default_lab_dir

    app = QApplication.instance() or QApplication(sys.argv)
    app.setApplicationName("XLab")
    app.setOrganizationName("XLab")
    from app import tasks

    tasks.favour_the_gui_thread()
    _close_on_signals(app)
    from core.errors import PermissionDeniedError

    try:
        opened = Lab.open(lab)
    except PermissionDeniedError as exc:
        # --user NAME without their PIN (or a wrong one): the window opens as this login, which
        # reads, and asks for NAME's PIN at once.
        wanted = os.environ.pop("XLAB_USER", "")
        os.environ.pop("XLAB_PIN", None)
        try:
            opened = Lab.open(lab)
        except XLabError as again:
            box = show_error(None, "XLab", again)
            box.finished.connect(app.quit)
            return app.exec()
        window = open_window(opened, simulate, rate)
        dialog = window.sign_in()
        dialog.name.setText(wanted)
        dialog.message.setText(f"Type {wanted}'s PIN to sign in as them." if "needs" in str(exc) else str(exc))
        dialog.pin.setFocus()
        return _exec(app)
    except LabNotFoundError as exc:
        chooser = choose_lab(lab or str(default_lab_dir()), _sentence(str(exc).split(";")[0]), rate)
        chooser.rejected.connect(app.quit)
        chooser.show()
        return _exec(app)
    except XLabError as exc:
        box = show_error(None, "XLab", exc)
        box.finished.connect(app.quit)
        return app.exec()
    open_window(opened, simulate, rate)
    return _exec(app)


def choose_lab(requested: str, reason: str, rate: float = 12.0):
    """No lab yet: offer to make one (or the demo) rather than only say so.
    The window opens on the lab the user makes; the demo with its scanners running."""
    from app.views.lab_setup import NewLabDialog
    from core.lab import Lab

    chooser = NewLabDialog(requested, reason=reason)
    chooser.lab_ready.connect(lambda root, demo: open_window(Lab.open(root), simulate=demo, rate=rate))
    return chooser


def _close_on_signals(app) -> None:  # noqa: ANN001 - QApplication
    """SIGTERM (a plain ``kill``, a session logout) and Ctrl-C close the windows
    as the user would, so ingest and the simulated scanners stop cleanly."""
    import signal

    from PySide6.QtCore import QTimer

    def close(signum, frame) -> None:  # noqa: ANN001, ARG001 - signal API
        QTimer.singleShot(0, app.closeAllWindows)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, close)
    # Python runs a signal handler only when it next runs bytecode; while Qt
    # waits for events that is never, unless a timer hands it the thread.
    ticker = QTimer(app)
    ticker.timeout.connect(_tick)
    ticker.start(250)


def _tick() -> None:
    pass


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _exec(app) -> int:
    code = app.exec()
    for window in _windows:
        window.lab.close()
    return code


def open_window(opened, simulate: bool = False, rate: float = 12.0):
    """The main window on an open lab (kept, and its lab closed, until the app ends)."""
    from PySide6.QtCore import QTimer

    from app.main_window import MainWindow

    window = MainWindow(opened)
    _windows.append(window)
    window.resize(1366, 768)
    if os.environ.get("XLAB_STARTUP_PROBE"):
        # For the start-up benchmark: report when the first view has data, then quit.
        def report() -> None:
            print(f"XLAB_READY {time.perf_counter() - _T0:.4f}", flush=True)
            QTimer.singleShot(0, window.close)

        window.ready.connect(report)
    window.show()
    elsewhere = window.ingest_elsewhere()
    if elsewhere is not None:
        # A second window on a lab that another XLab ingests only shows it:
        # its simulated technicians would fight the first one's for sessions.
        window.show_viewer_mode(elsewhere)
    elif simulate:
        window.start_simulation(rate)
        window.start_ingest()
        # The demo's queued run (xlab demo queues one when training is installed) starts
        # in the background, so a new user sees its curves and verdicts in Runs.
        window.runs.start_queue()
    return window
