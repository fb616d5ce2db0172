"""The Audit area on a real demo lab: filters, pages, before/after, an object's
history, export and the chain check in the background (a tampered file is
named); the Dashboards area's backup line and the window's scheduled backup."""

from __future__ import annotations

import csv
import sqlite3

import pytest

from core.audit import log
from core.backup import files
from core.backup.schedule import set_backup_schedule
from core.dashboard.production import set_production_settings
from core.quota.plans import CellKey, override_cell
from tests.app.helpers import show_window
from tests.app.test_screens_fit import column_problems, settle

PLAN = "demo-test-set"


@pytest.fixture
def window(qtbot, demo_lab, settings):
    """The window on a demo lab where mia overrode a quota cell and ana changed the monthly target."""
    override_cell(demo_lab.catalog, PLAN, CellKey("pistol", "hard_case", "low", "SX-100", "flat"), 7, actor="mia")
    set_production_settings(demo_lab.catalog, monthly_target=99_000, actor="ana")
    win = show_window(qtbot, demo_lab, settings)
    yield win
    win.close()


def open_audit(qtbot, window):
    area = window.areas["Audit"]
    with qtbot.waitSignal(area.loaded, timeout=20_000):
        window.show_area("Audit")
    return area


def reload(qtbot, area, action) -> None:
    with qtbot.waitSignal(area.loaded, timeout=20_000):
        action()


def test_the_list_filters_and_shows_before_and_after_side_by_side(qtbot, window, demo_lab):
    area = open_audit(qtbot, window)
    newest = log.entries(demo_lab.catalog, limit=200)
    assert [r["id"] for r in area.rows] == [r["id"] for r in newest]
    assert area.selected()["id"] == newest[0]["id"]  # the newest is selected and shown
    # The filter choices come in their own background read, which may end after the list's.
    qtbot.waitUntil(lambda: area.user_box.findText("mia") >= 0 and area.action_box.findText("override_cell") >= 0,
                    timeout=20_000)
    settle(qtbot, area)
    assert column_problems(area.table) == []

    area.user_box.setCurrentText("mia")
    area.action_box.setCurrentText("override_cell")
    reload(qtbot, area, area.apply_button.click)
    assert [(r["actor"], r["action"]) for r in area.rows] == [("mia", "override_cell")]
    assert '"test_target": null' in area.before_text.toPlainText()
    assert '"test_target": 7' in area.after_text.toPlainText()
    assert "mia" in area.entry_label.text() and "override_cell" in area.entry_label.text()

    area.user_box.setCurrentText("ana")
    area.action_box.setCurrentText("")
    area.entity_box.setCurrentText("lab_settings")
    reload(qtbot, area, area.apply_button.click)
    assert [r["entity_key"] for r in area.rows] == ["monthly_target"]
    area.since_edit.setDate(area.since_edit.date().currentDate().addDays(1))
    reload(qtbot, area, area.apply_button.click)
    assert area.rows == [] and area.mode_label.text() == "No entry matches these filters"
    reload(qtbot, area, area.clear_button.click)
    assert len(area.rows) == len(newest)


def test_history_of_the_selected_object(qtbot, window):
    area = open_audit(qtbot, window)
    area.entity_box.setCurrentText("quota_plan")
    reload(qtbot, area, area.apply_button.click)
    row = next(i for i, r in enumerate(area.rows) if r["entity_key"] == f"{PLAN} v1")
    area.table.selectRow(row)
    reload(qtbot, area, area.history_button.click)
    assert [(r["entity_key"], r["action"]) for r in area.rows] == [(f"{PLAN} v1", "create"),
                                                                   (f"{PLAN} v1", "publish")]
    assert area.back_button.isVisible() and not area.older_button.isEnabled()
    assert area.mode_label.text().startswith(f"History of quota_plan {PLAN} v1")
    reload(qtbot, area, area.back_button.click)
    assert not area.back_button.isVisible() and len(area.rows) > 2


def test_pages_of_a_long_log_and_new_entries_on_the_newest_page(qtbot, window, demo_lab):
    with demo_lab.catalog.write("bulk") as txn:
        for i in range(450):
            txn.audit("update", "images", i, {"n": i}, {"n": i + 1})
    area = open_audit(qtbot, window)
    first = [r["id"] for r in area.rows]
    assert len(first) == 200 and area.older_button.isEnabled() and not area.newer_button.isEnabled()
    reload(qtbot, area, area.older_button.click)
    second = [r["id"] for r in area.rows]
    assert second[0] == first[-1] - 1 and len(second) == 200 and area.newer_button.isEnabled()
    reload(qtbot, area, area.older_button.click)
    assert area.rows[0]["id"] == second[-1] - 1
    reload(qtbot, area, area.newer_button.click)
    assert [r["id"] for r in area.rows] == second and area.newer_button.isEnabled()
    reload(qtbot, area, area.newer_button.click)
    assert [r["id"] for r in area.rows] == first and not area.newer_button.isEnabled()
    # On the newest page, a change made now shows up (the watcher polls the catalog).
    with qtbot.waitSignal(area.loaded, timeout=20_000):
        set_production_settings(demo_lab.catalog, monthly_target=120_000, actor="zoe")
    assert area.rows[0]["actor"] == "zoe"


def test_verify_chain_in_the_background_names_a_tampered_entry(qtbot, window, demo_lab):
    area = open_audit(qtbot, window)
    with qtbot.waitSignal(area.verified, timeout=30_000) as ok:
        area.verify_button.click()
    assert ok.args[0].ok and area.verify_label.text().startswith("audit log intact")
    conn = sqlite3.connect(demo_lab.catalog.path)
    conn.execute("DROP TRIGGER audit_log_no_update")
    conn.execute("UPDATE audit_log SET actor = 'mallory' WHERE id = 3")
    conn.commit()
    conn.close()
    with qtbot.waitSignal(area.verified, timeout=30_000) as broken:
        area.verify_button.click()
    assert not broken.args[0].ok
    assert area.verify_label.text().startswith("audit log TAMPERED: entry 3: its content does not match its hash")
    assert "b00020" in area.verify_label.styleSheet() and area.verify_button.isEnabled()


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_export_writes_the_filtered_entries_in_the_background(qtbot, window, tmp_path, suffix):
    area = open_audit(qtbot, window)
    area.user_box.setCurrentText("mia")
    reload(qtbot, area, area.apply_button.click)
    path = tmp_path / f"audit{suffix}"
    with qtbot.waitSignal(area.exported, timeout=30_000) as done:
        area.export_to(str(path))
    assert done.args[0].entries == len(area.rows) >= 2
    if suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            actors = {r["actor"] for r in csv.DictReader(f)}
    else:
        from openpyxl import load_workbook

        actors = {r[2] for r in list(load_workbook(path, read_only=True).active.values)[1:]}
    assert actors == {"mia"}


def test_the_dashboards_show_the_last_backups_age_and_the_window_runs_a_due_backup(qtbot, window, demo_lab,
                                                                                     tmp_path):
    dashboards = window.areas["Dashboards"]
    with qtbot.waitSignal(dashboards.loaded, timeout=30_000):
        window.show_area("Dashboards")
    assert dashboards.backup_note.text() == "Backup: none yet (none scheduled)"
    dest = tmp_path / "nightly"
    with qtbot.waitSignal(dashboards.loaded, timeout=30_000):
        set_backup_schedule(demo_lab.catalog, every_hours=24, dest=str(dest), actor="ana")
    assert dashboards.backup_note.text() == "Backup: none yet (every 24 h)"
    assert str(dest) in dashboards.backup_note.toolTip()
    with qtbot.waitSignal(window.backups.finished, timeout=60_000) as done:
        window.backups.check_now()
    assert done.args[0].ok and files.read_info(dest)["counts"]["images"] == 0
    assert window.statusBar().currentMessage().startswith("Scheduled backup done: backup in")
    qtbot.waitUntil(lambda: dashboards.backup_note.text() == "Last backup: 0 min ago (every 24 h)", timeout=30_000)
    # Not due again: a second check starts nothing.
    window.backups.check_now()
    qtbot.wait(300)
    assert not window.backups.running
