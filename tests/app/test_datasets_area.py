"""The Datasets area on a real lab (labelled test and train images, a published plan):
the freeze wizard's preview is the core's dry run, Freeze needs an explicit click,
the list, lineage, distribution and diff show what core computes, and the export
writes its files with progress while a Cancel leaves nothing behind."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest
import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox, QProgressDialog

from core.datasets import versions
from core.datasets.diff import diff
from core.datasets.distribution import distribution
from core.datasets.export import export_version_steps
from core.lab import Lab
from tests.app.helpers import show_window
from tests.app.test_screens_fit import column_problems, settle, visible_views
from tests.bench.seed import seed_catalog
from tests.bench.seed_labels import seed_labels

PLAN = "bench-plan"
MIX = {"luggage_type": {"hard_case": 1, "backpack": 1}, "pose": {"flat": 1, "edge_on": 1}}


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    root = tmp_path_factory.mktemp("datasets_area") / "lab"
    lab = Lab.init(root)
    seed_catalog(lab, n_classes=2, n_images=500, items_per_class=4, n_bags=30, mix=MIX)
    seed_labels(lab, boxes_per_image=1.5)
    for row in lab.catalog.query("SELECT store_path FROM images"):  # the seed leaves only names
        path = lab.paths.store / row["store_path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"png")
    lab.close()
    return root


@pytest.fixture
def lab(template, tmp_path):
    from tests.app.conftest import _closed_after_background_calls

    shutil.copytree(template, tmp_path / "lab")
    lab = Lab.open(tmp_path / "lab")
    yield lab
    _closed_after_background_calls(lab)


def open_datasets(qtbot, lab, settings):
    window = show_window(qtbot, lab, settings)
    area = window.areas["Datasets"]
    with qtbot.waitSignal(area.loaded, timeout=20_000):
        window.show_area("Datasets")
    return window, area


def preview(qtbot, wizard):
    with qtbot.waitSignal(wizard.previewed, timeout=20_000) as blocker:
        wizard.preview_button.click()
    return blocker.args[0]


def test_empty_state_says_what_to_do_and_opens_the_wizard(qtbot, lab, settings):
    window, area = open_datasets(qtbot, lab, settings)
    try:
        assert area.pages.currentWidget() is area.empty
        assert "Freeze the test set" in area.empty.message.text()
        area.empty_button.click()
        assert area.wizard is not None and area.wizard.isVisible() and area.wizard.rule == "test"
        assert area.wizard.plan.currentText() == f"{PLAN} v1"
        area.wizard.reject()
    finally:
        window.close()


def test_the_preview_is_the_dry_run_and_only_a_click_on_freeze_freezes(qtbot, lab, settings):
    window, area = open_datasets(qtbot, lab, settings)
    try:
        wizard = area.open_wizard("test")
        shown = preview(qtbot, wizard)
        dry = versions.freeze(lab.catalog, "test-set", "test", plan=f"{PLAN}@1", dry_run=True)
        assert shown.images == dry.images > 0 and shown.dry_run
        assert wizard.class_model.rows == dry.classes and dry.classes
        assert sum(r["images"] for r in wizard.class_model.rows) == dry.images
        assert sum(r["boxes"] for r in wizard.class_model.rows) == dry.boxes
        assert wizard.below_model.rows == dry.below_target and dry.below_target_cells > 0
        assert f"{dry.below_target_cells:,} cell(s) below the plan's target" in wizard.warnings.text()
        assert f"{dry.images:,} images" in wizard.summary.text()
        assert versions.list_versions(lab.catalog) == []  # a preview writes nothing
        # Enter in the confirmation is Cancel: nothing frozen.
        box = wizard.confirm()
        qtbot.waitUntil(box.isVisible)
        assert box.defaultButton() is box.escapeButton()
        qtbot.keyClick(box, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: not shiboken6.isValid(box) or not box.isVisible())
        tasks_settled()
        assert versions.list_versions(lab.catalog) == [] and wizard.isVisible()
        # The Freeze button of the confirmation freezes what was previewed.
        box = wizard.confirm()
        freeze_button = next(b for b in box.buttons() if b.text() == "Freeze")
        with qtbot.waitSignal(wizard.frozen, timeout=20_000) as frozen:
            freeze_button.click()
        report = frozen.args[0]
        assert (report.images, report.boxes, report.classes) == (dry.images, dry.boxes, dry.classes)
        assert [(v["name"], v["version"]) for v in versions.list_versions(lab.catalog)] == [("test-set", 1)]
        qtbot.waitUntil(lambda: [r["ref"] for r in area.model.rows] == ["test-set@1"], timeout=20_000)
        assert area.pages.currentIndex() == 0 and area.selected_ref() == "test-set@1"
        row = area.model.rows[0]
        assert (row["test"], row["boxes"], row["hash"]) == (report.images, report.boxes, report.content_hash[:12])
    finally:
        window.close()


def tasks_settled():
    from app import tasks

    assert tasks.wait_for_calls(10_000)
    QApplication.processEvents()


def test_a_train_preview_keeps_its_seed_and_shows_near_duplicates(qtbot, lab, settings):
    from core.catalog.ingest_store import insert_near_duplicates

    versions.freeze(lab.catalog, "test-set", "test", plan=PLAN)
    test_id = versions.member_ids(lab.catalog, "test-set")[0]
    train_id = lab.catalog.query_one("SELECT id FROM images WHERE split = 'train' LIMIT 1")["id"]
    with lab.catalog.write() as txn:
        insert_near_duplicates(txn, [(train_id, test_id, 3, 1)])
    window, area = open_datasets(qtbot, lab, settings)
    try:
        wizard = area.open_wizard("train")
        wizard.ratio.setValue(1)
        wizard.validation.setValue(0.2)
        wizard.parent_box.setCurrentIndex(wizard.parent_box.findData("test-set@1"))
        shown = preview(qtbot, wizard)
        dry = versions.freeze(lab.catalog, "train", "train", parent="test-set@1", ratio=1, seed=shown.seed,
                              validation=0.2, dry_run=True)
        assert shown.seed is not None and wizard.class_model.rows == dry.classes
        assert set(shown.subsets) == {"train", "validation"}
        assert wizard.near_model.rows == dry.near_duplicates
        if dry.near_duplicates:
            assert "near-duplicate pair(s) across the splits" in wizard.warnings.text()
        box = wizard.confirm()
        with qtbot.waitSignal(wizard.frozen, timeout=20_000) as frozen:
            next(b for b in box.buttons() if b.text() == "Freeze").click()
        assert frozen.args[0].content_hash == dry.content_hash  # the previewed draw, same seed
    finally:
        window.close()


def test_a_physical_object_in_both_splits_is_refused_with_the_list(qtbot, lab, settings):
    test_image = lab.catalog.query_one(
        "SELECT i.*, t.barcode FROM images i JOIN threat_items t ON t.id = i.item_id WHERE split = 'test' LIMIT 1")
    train_bag = lab.catalog.query_one("SELECT bag_id FROM images WHERE split = 'train' LIMIT 1")["bag_id"]
    conn = sqlite3.connect(lab.catalog.path)  # a catalog from before split pools could hold this
    conn.execute("DROP TRIGGER images_pool_insert")
    conn.execute("INSERT INTO images (sha256, store_path, scanner_id, captured_at, ingested_at, split, item_id, bag_id,"
                 " pose_id) VALUES ('ab' || hex(randomblob(31)), 'x.png', ?, ?, ?, 'train', ?, ?, ?)",
                 (test_image["scanner_id"], test_image["captured_at"], test_image["captured_at"],
                  test_image["item_id"], train_bag, test_image["pose_id"]))
    conn.commit()
    conn.close()
    window, area = open_datasets(qtbot, lab, settings)
    try:
        wizard = area.open_wizard("test")
        refusal = preview(qtbot, wizard)
        assert "refused" in str(refusal) and wizard.report is None
        assert f"item {test_image['barcode']}: " in wizard.refused.toPlainText()
        assert wizard.refused.isVisible() and not wizard.freeze_button.isEnabled()
        assert wizard.confirm() is None and versions.list_versions(lab.catalog) == []
    finally:
        window.close()


@pytest.fixture
def frozen_lab(lab):
    versions.freeze(lab.catalog, "test-set", "test", plan=PLAN)
    versions.freeze(lab.catalog, "train", "train", ratio=1, seed=4, parent="test-set")
    versions.freeze(lab.catalog, "train", "train", ratio=2, parent="train@1")
    return lab


def test_list_lineage_distribution_and_diff_show_cores_numbers(qtbot, frozen_lab, settings):
    lab = frozen_lab
    window, area = open_datasets(qtbot, lab, settings)
    try:
        assert [r["ref"] for r in area.model.rows] == ["test-set@1", "train@1", "train@2"]
        listed = {f"{v['name']}@{v['version']}": v for v in versions.list_versions(lab.catalog)}
        for row in area.model.rows:
            subsets = distribution(lab.catalog, row["ref"]).subsets
            assert [row[s] for s in ("test", "train", "validation")] == [subsets.get(s) for s in
                                                                          ("test", "train", "validation")]
            assert row["parent"] == listed[row["ref"]]["parent"]
        # Lineage: test-set@1 → train@1 → train@2.
        root = area.lineage.topLevelItem(0)
        assert area.lineage.topLevelItemCount() == 1 and root.text(0) == "test-set@1"
        assert root.child(0).text(0) == "train@1" and root.child(0).child(0).text(0) == "train@2"
        # Distribution of the selected version: chart and table.
        area.tabs.setCurrentIndex(1)
        with qtbot.waitSignal(area.distribution_shown, timeout=20_000):
            area.select("train@1")
        core = distribution(lab.catalog, "train@1")
        assert area.distribution.as_dict() == core.as_dict()
        assert area.dist_models["classes"].rows == core.classes
        cats, values, x_label, y_label = area.chart_data()
        assert (x_label, y_label) == ("class", "boxes")
        assert sum(sum(v) for v in values.values()) == sum(c["boxes"] for c in core.classes)
        assert area.plot.getAxis("left").labelText == "boxes" and area.plot.getAxis("bottom").labelText == "class"
        area.chart_box.setCurrentIndex(area.chart_box.findData("sizes"))
        assert area.dist_models["sizes"].rows == core.box_sizes
        assert sum(sum(v) for v in area.chart_data()[1].values()) == sum(s["boxes"] for s in core.box_sizes)
        assert f"{lab.catalog.query_one('SELECT content_hash FROM dataset_versions WHERE name = ? AND version = 1', ('train',))['content_hash']}" in area.details.text()
        # Diff of two chosen versions equals core's.
        with qtbot.waitSignal(area.diff_shown, timeout=20_000):
            area.compare("train@1", "train@2")
        d = diff(lab.catalog, "train@1", "train@2")
        assert area.diff.as_dict() == d.as_dict() and d.added > 0
        assert area.diff_class_model.rows == d.by_class and area.diff_cell_model.rows == d.by_cell
        assert f"{d.added:,} image(s) added" in area.diff_summary.text()
        area.diff_cells.setChecked(True)
        assert area.diff_tables.currentIndex() == 1
    finally:
        window.close()


def test_export_writes_the_files_and_cancel_leaves_nothing(qtbot, frozen_lab, settings, tmp_path):
    lab = frozen_lab
    window, area = open_datasets(qtbot, lab, settings)
    try:
        out = tmp_path / "exports" / "train-v2-coco"
        seen = []
        with qtbot.waitSignal(area.export_ended, timeout=30_000) as ended:
            task = area.export("train@2", "coco", out)
            task.progressed.connect(seen.append)
        assert ended.args == ["finished"] and seen
        v = versions.resolve(lab.catalog, "train@2")
        coco = json.loads((out / "annotations.json").read_text())
        assert len(coco["images"]) == v["images"] and len(coco["annotations"]) == v["boxes"]
        manifest = json.loads((out / "manifest.json").read_text())
        assert all((out / m["file_name"]).is_file() for m in manifest["images"])
        assert area.saved_box.isVisible() and area.saved_box.open_button.text() == "Open folder"
        assert area.saved_box.folder_url.toLocalFile() == str(out.resolve())
        area.saved_box.close()
        assert sorted(p.name for p in out.parent.iterdir()) == ["train-v2-coco"]
        # Cancel: no folder, no partial one. The copy of a few hundred small files
        # outruns a click, so the Cancel (what the progress dialog's button calls)
        # comes from the worker's first progress record, on the worker thread.
        area.export_batch = 1
        cancelled = tmp_path / "exports" / "cancelled"
        earlier = set(area.findChildren(QProgressDialog))
        with qtbot.waitSignal(area.export_ended, timeout=30_000) as ended:
            task = area.export("train@2", "yolo", cancelled)
            task._worker.progressed.connect(lambda _step: task.cancel(), Qt.ConnectionType.DirectConnection)
        assert ended.args == ["cancelled"]
        dialog, = [d for d in area.findChildren(QProgressDialog) if d not in earlier]
        assert not dialog.isVisible()
        area.export_task.wait()
        assert sorted(p.name for p in out.parent.iterdir()) == ["train-v2-coco"]
    finally:
        window.close()


def test_an_export_closed_midway_removes_what_it_wrote(frozen_lab, tmp_path):
    """The core generator, stopped between two batches (what Cancel does), leaves the chosen folder as it was."""
    out = tmp_path / "exports" / "empty-folder"
    out.mkdir(parents=True)
    steps = export_version_steps(frozen_lab, "train@2", "voc", out, batch=5)
    next(steps)
    second = next(steps)
    assert second.done == 5 and any(p.name.startswith(".empty-folder.partial") for p in out.parent.iterdir())
    steps.close()
    assert sorted(p.name for p in out.parent.iterdir()) == ["empty-folder"] and not any(out.iterdir())


def test_the_area_with_versions_fits_1366x768(qtbot, frozen_lab, settings):
    window, area = open_datasets(qtbot, frozen_lab, settings)
    try:
        problems = []
        for tab in range(area.tabs.count()):
            area.tabs.setCurrentIndex(tab)
            if tab == 2:
                with qtbot.waitSignal(area.diff_shown, timeout=20_000):
                    area.compare("test-set@1", "train@2")
            settle(qtbot, area)
            problems += [p for v in visible_views(area) for p in column_problems(v)]
        assert window.width() <= 1366 and window.height() <= 768
        needs, has = area.minimumSizeHint(), window.stack.size()
        assert needs.width() <= has.width() and needs.height() <= has.height(), f"needs {needs}, has {has}"
        assert not problems, "\n".join(problems)
    finally:
        window.close()
