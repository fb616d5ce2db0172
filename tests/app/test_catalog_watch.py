"""The watcher brings each write, this process's or another program's, to the
views as a Change naming the tables it changed; a view reloads only when one
of them is a table it shows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.catalog_watch import CatalogWatcher
from app.views.ingest import IngestMonitorPanel
from app.views.inventory import InventoryView
from core.catalog import ingest_store
from core.catalog.records import INVENTORY_TABLES

REPO = Path(__file__).resolve().parents[2]


def _xlab(lab, *args: str) -> None:
    """Run the real xlab command: another process writing the same catalog."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run([sys.executable, "-m", "app", *args, "--lab", str(lab.paths.root)], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.fixture
def watched(qtbot, empty_lab):
    """An Inventory view and an Ingest panel on screen, fed by a fast-polling watcher;
    ``reloads`` counts each view's refreshes from then on."""
    watcher = CatalogWatcher(empty_lab.catalog, poll_ms=20)
    views = {"inventory": InventoryView(empty_lab), "ingest": IngestMonitorPanel(empty_lab)}
    reloads = dict.fromkeys(views, 0)
    for name, view in views.items():
        qtbot.addWidget(view)
        with qtbot.waitSignal(view.loaded, timeout=10_000):
            view.show()
        real = view.refresh

        def counted(real=real, name=name):
            reloads[name] += 1
            real()

        view.refresh = counted
        watcher.changed.connect(view.on_catalog_changed)
    yield watcher, views, reloads
    watcher.stop()


def test_another_programs_write_names_its_tables_and_reloads_only_the_views_showing_them(
        qtbot, empty_lab, watched, demo_inventory_file):
    watcher, views, reloads = watched
    with qtbot.waitSignal(watcher.changed, timeout=10_000) as signal:
        _xlab(empty_lab, "settings", "--monthly-target", "99000")
    change = signal.args[0]
    assert change.outside and change.tables == {"lab_settings", "audit_log"}
    assert reloads == {"inventory": 0, "ingest": 0}  # neither shows settings

    with qtbot.waitSignals([views["inventory"].loaded, views["ingest"].loaded], timeout=10_000), \
            qtbot.waitSignal(watcher.changed, timeout=10_000) as signal:
        _xlab(empty_lab, "inventory", "import", str(demo_inventory_file))
    assert signal.args[0].tables == {*INVENTORY_TABLES, "audit_log"}
    # Both show inventory (the Ingest panel lists scanners); one reload each.
    assert reloads == {"inventory": 1, "ingest": 1}


def test_this_processes_ingest_event_reloads_the_ingest_panel_not_the_inventory(qtbot, empty_lab, watched):
    watcher, views, reloads = watched
    with qtbot.waitSignal(views["ingest"].loaded, timeout=10_000), \
            qtbot.waitSignal(watcher.changed, timeout=10_000) as signal:
        with empty_lab.catalog.write() as txn:
            ingest_store.insert_event(txn, None, "/drop/notes.txt", None, "rejected", detail="not an image")
    assert signal.args[0].tables == {"ingest_events"} and not signal.args[0].outside
    assert reloads == {"inventory": 0, "ingest": 1}
