"""A window on a lab whose scanners another process ingests is a viewer."""

from __future__ import annotations

from core.ingest.lock import IngestLock
from tests.app.helpers import show_window


def test_a_window_on_a_lab_ingested_elsewhere_says_who_and_does_not_ingest(qtbot, demo_lab, settings):
    lock = IngestLock.acquire(demo_lab.paths.root, ["SCN-A", "SCN-C"])
    try:
        win = show_window(qtbot, demo_lab, settings)
        who = win.ingest_elsewhere()
        assert who is not None and "SCN-A, SCN-C" in who
        win.start_ingest()  # what `xlab gui` / `xlab demo` do at start
        assert not win.ingest.run_here.isChecked()
        assert win._ingest is None  # nothing started
        assert win.viewer_note.isVisible()
        assert win.viewer_note.text() == "Viewer: ingest runs in another XLab (SCN-A, SCN-C)"
        assert f"Ingested by: {who}." in win.viewer_note.toolTip()  # who, where and since when
    finally:
        lock.release()
    # Once the other process is gone, this window may ingest.
    assert win.ingest_elsewhere() is None
    win.close()
