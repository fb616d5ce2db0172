"""The app shell on a real demo lab: Quotas and Inventory views, live refresh."""

from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

from app.main_window import AREAS, MainWindow
from core.catalog.images import insert_images
from core.catalog.records import all_rows
from core.quota.plans import CellKey, override_cell




PLACEHOLDER_WORDS = ("coming soon", "not yet available", "not implemented", "under construction", "placeholder",
                     "todo", "lorem ipsum")


def _texts_on_screen(view) -> list[str]:
    """Every text a user can read in ``view``: labels, buttons, group and tab titles, field hints."""
    from PySide6.QtWidgets import QAbstractButton, QGroupBox, QLabel, QLineEdit, QTabWidget

    texts = [w.text() for w in view.findChildren(QLabel) + view.findChildren(QAbstractButton)]
    texts += [w.title() for w in view.findChildren(QGroupBox)]
    texts += [w.placeholderText() for w in view.findChildren(QLineEdit)]
    texts += [t.tabText(i) for t in view.findChildren(QTabWidget) for i in range(t.count())]
    return texts


def _area_view_classes() -> set[type]:
    """The area views that exist in app/views."""
    import importlib
    import inspect
    import pkgutil

    import app.views
    from app.views.area import AreaView

    found = set()
    for module in pkgutil.iter_modules(app.views.__path__):
        mod = importlib.import_module(f"app.views.{module.name}")
        found |= {c for _, c in inspect.getmembers(mod, inspect.isclass)
                  if issubclass(c, AreaView) and c is not AreaView and c.__module__ == mod.__name__}
    return found


def test_only_working_areas_are_offered(qtbot, demo_lab, settings):
    """Each navigation entry, clicked, shows its area, which loads the lab's data and
    shows no placeholder; every area view that exists is offered, and nothing else."""
    from PySide6.QtCore import Qt

    window = MainWindow(demo_lab, settings=settings)
    qtbot.addWidget(window)
    loads = {name: 0 for name in window.areas}
    for name, view in window.areas.items():
        view.loaded.connect(lambda n=name: loads.__setitem__(n, loads[n] + 1))
    with qtbot.waitSignal(window.ready, timeout=10_000):
        window.resize(1366, 768)
        window.show()
    names = [window.nav.item(i).text() for i in range(window.nav.count())]
    assert names == list(AREAS) and len(set(names)) == len(names) == window.stack.count()
    assert {type(v) for v in window.areas.values()} == _area_view_classes()
    first = names[0]
    assert loads[first] >= 1 and window.stack.currentWidget() is window.areas[first]
    for row in [*range(1, len(names)), 0]:
        name = names[row]
        view = window.areas[name]
        before = loads[name]
        if row:
            assert before == 0, f"{name} loaded before it was shown"
        rect = window.nav.visualItemRect(window.nav.item(row))
        qtbot.mouseClick(window.nav.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        assert window.stack.currentWidget() is view and view.isVisible(), name
        qtbot.waitUntil(lambda: loads[name] > 0, timeout=20_000)
        shown = [t for t in _texts_on_screen(view) if any(w in t.lower() for w in PLACEHOLDER_WORDS)]
        assert not shown, f"{name} shows placeholder text: {shown}"
    window.close()


def open_quotas(qtbot, window):
    with qtbot.waitSignal(window.quotas.loaded, timeout=10_000):
        window.show_area("Quotas")
    return window.quotas


def test_quotas_show_per_class_targets_with_their_basis(qtbot, window):
    quotas = open_quotas(qtbot, window)
    rows = {r["class_name"]: r for r in quotas.class_model.rows}
    assert len(rows) == 21  # 20 classes + clean bags
    assert rows["pistol"]["required_setups"] == 315 and rows["pistol"]["test_target"] == 315
    assert "Wilson" in rows["pistol"]["basis"]
    assert rows["knife_folding_closed"]["ratio"] == "2:1"
    assert rows["(clean)"]["test_target"] == 626
    assert "demo-test-set v1" in quotas.summary.text()
    # the first class is selected and its cells shown
    assert quotas.cell_model.rowCount() > 0
    quotas.select_class("pistol")
    cells = quotas.cell_model.rows
    assert {c["class_name"] for c in cells} == {"pistol"}
    assert sum(c["test_target"] for c in cells) == 315


def test_quotas_refresh_when_images_arrive(qtbot, window, demo_lab):
    quotas = open_quotas(qtbot, window)
    ids = {t: {r.get("barcode") or r["name"]: r["id"] for r in all_rows(demo_lab.catalog, t)} for t in ("threat_items", "bags", "poses", "scanners")}
    rows = [(f"img{i}", "p", "", ids["scanners"]["SCN-A"], "t", "t", "test", ids["threat_items"]["TI-0019"],
             ids["bags"][f"BG-000{i}"], ids["poses"]["flat"], 1, 1, 16, 1, "", 1) for i in range(1, 4)]
    with qtbot.waitSignal(quotas.loaded, timeout=10_000):
        with demo_lab.catalog.write() as txn:
            insert_images(txn, rows)
    pistol = next(r for r in quotas.class_model.rows if r["class_name"] == "pistol")
    assert pistol["test_done"] == 3


def test_a_new_plan_version_appears_in_the_plan_list(qtbot, window, demo_lab):
    open_quotas(qtbot, window)
    with qtbot.waitSignal(window.quotas.loaded, timeout=10_000):
        override_cell(demo_lab.catalog, "demo-test-set", CellKey("pistol", "tray", "low", "SX-100", "flat"), 7)
    labels = [window.quotas.plan_combo.itemText(i) for i in range(window.quotas.plan_combo.count())]
    assert labels == ["demo-test-set v1 (published)", "demo-test-set v2 (draft)"]
    window.quotas.plan_combo.setCurrentIndex(1)
    qtbot.waitUntil(lambda: "v2" in window.quotas.summary.text(), timeout=10_000)


def test_inventory_view_lists_and_imports(qtbot, window, tmp_path):
    inventory = window.show_area("Inventory")
    qtbot.waitUntil(lambda: inventory.models["threat_items"].rowCount() == 60, timeout=10_000)
    assert inventory.tabs.tabText(2) == "Threat items (60)"
    extra = tmp_path / "extra.yaml"
    extra.write_text("luggage_types:\n  - name: duffel\n")
    with qtbot.waitSignal(inventory.loaded, timeout=10_000):
        with qtbot.waitSignal(inventory.imported, timeout=10_000):
            inventory.start_import(str(extra))
    assert "1 created" in inventory.status.text()
    assert any(r["name"] == "duffel" for r in inventory.models["luggage_types"].rows)


def test_a_bad_import_shows_the_problems_and_changes_nothing(qtbot, window, tmp_path, demo_lab):
    inventory = window.show_area("Inventory")
    bad = tmp_path / "bad.yaml"
    bad.write_text("bags:\n  - barcode: BG-0001\n    luggage_type: trolley\n    clutter: low\n")
    task = inventory.start_import(str(bad))
    qtbot.waitUntil(lambda: inventory.findChild(QMessageBox) is not None, timeout=10_000)
    box = inventory.findChild(QMessageBox)
    assert "nothing was changed" in box.text()
    assert f"{bad}:2: unknown luggage type 'trolley'" in box.detailedText()
    assert "refused" in inventory.status.text()
    task.wait()
    box.close()


def test_window_fits_1366x768(window):
    assert window.minimumSize().width() <= 1366 and window.minimumSize().height() <= 768
    assert window.size().width() <= 1366 and window.size().height() <= 768


def test_export_writes_the_inventory(qtbot, window, tmp_path):
    inventory = window.show_area("Inventory")
    target = tmp_path / "out.yaml"
    inventory.export_to(str(target))
    qtbot.waitUntil(lambda: "Exported" in inventory.status.text(), timeout=10_000)
    assert "TI-0060" in Path(target).read_text()


def test_simulated_scanners_write_files_and_stop_on_close(qtbot, window, demo_lab):
    from datetime import date

    from core.capture.planner import PlanOptions, plan_captures

    for _ in plan_captures(demo_lab, PlanOptions(start=date.today(), weekends=True, shifts=1)):
        pass  # simulated technicians run today's sessions
    window.start_simulation(0)
    qtbot.waitUntil(lambda: "files written" in window.scanner_status.text(), timeout=30_000)
    window.close()
    assert not window._simulation.running
    written = [p for p in (demo_lab.paths.root / "drop").rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert written
