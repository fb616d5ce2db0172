"""The Ingest monitor with ingest running in the window's process, on a real demo lab."""

import cv2
import numpy as np
import pytest

from app.main_window import MainWindow
from core.simulator.scanner import simulate




def test_images_from_the_simulated_scanner_appear_live(qtbot, window, demo_lab):
    panel = window.show_area("Ingest")
    assert panel.isVisible()
    window.start_ingest()
    list(simulate(demo_lab, "SCN-C", 3, rate_per_minute=0, seed=4))
    rates = lambda: {r["scanner"]: r["per_minute"] for r in panel.scanner_model.rows}  # noqa: E731
    # the rates and the thumbnails come from one snapshot each refresh; wait for the one after the last image
    qtbot.waitUntil(lambda: panel.thumbs.count() == 3 and rates().get("SCN-C") == 3, timeout=30_000)
    assert rates()["SCN-A"] == 0
    assert "3 images" in panel.status.text()
    assert not panel.thumbs.item(0).icon().isNull()
    assert not list((demo_lab.paths.root / "drop" / "SCN-C").glob("*.png"))
    window.close()
    assert not window._ingest.running


def test_quarantined_files_are_listed_and_can_be_discarded(qtbot, window, demo_lab):
    panel = window.show_area("Ingest")
    window.start_ingest()
    drop = demo_lab.paths.root / "drop" / "SCN-C"
    drop.mkdir(parents=True, exist_ok=True)
    ok, blank = cv2.imencode(".png", np.full((480, 640), 2000, np.uint16))
    (drop / "blank.png").write_bytes(blank.tobytes())
    qtbot.waitUntil(lambda: panel.quarantine_model.rowCount() == 1, timeout=30_000)
    row = panel.quarantine_model.rows[0]
    assert row["reason_code"] == "blank" and row["file"] == "blank.png"
    panel.perform("discard", row["id"])
    qtbot.waitUntil(lambda: panel.quarantine_model.rowCount() == 0, timeout=10_000)
    assert demo_lab.catalog.query_one("SELECT action FROM audit_log WHERE entity = 'quarantine'")["action"] == "discard"


def test_threat_reports_are_counted_as_annotations_not_as_images(qtbot, window, demo_lab):
    panel = window.show_area("Ingest")
    window.start_ingest()
    list(simulate(demo_lab, "SCN-C", 4, rate_per_minute=0, fmt="dicos", seed=5, clean_fraction=0.0))
    reports = lambda: demo_lab.catalog.query_one("SELECT COUNT(*) AS n FROM dicos_reports")["n"]  # noqa: E731
    qtbot.waitUntil(lambda: panel.thumbs.count() == 4 and reports() == 4, timeout=30_000)
    panel.refresh()
    qtbot.waitUntil(lambda: "4 images, 4 reports (annotations)" in panel.status.text(), timeout=10_000)
    window.close()
