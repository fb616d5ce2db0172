"""Start the window: ``xlab gui`` and ``xlab demo`` end here."""

from __future__ import annotations

import os
import sys
import time

_T0 = time.perf_counter()


def run(lab: str | None = None, simulate: bool = False, rate: float = 12.0) -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.dialogs import show_error
    from app.main_window import MainWindow
    from core.errors import XLabError
    from core.lab import Lab

    app = QApplication.instance() or QApplication(sys.argv)
    app.setApplicationName("XLab")
    app.setOrganizationName("XLab")
    from app import tasks

    tasks.favour_the_gui_thread()
    try:
        opened = Lab.open(lab)
    except XLabError as exc:
        box = show_error(None, "XLab", exc)
        box.finished.connect(app.quit)
        return app.exec()
    window = MainWindow(opened)
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
    code = app.exec()
    opened.close()
    return code
