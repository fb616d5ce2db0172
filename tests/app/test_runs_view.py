"""The Runs area on the demo lab's frozen starter versions, with real runs: a tiny detector trained
on the CPU by the real queue and run process (in the template, and from the window's Start queue),
read back through core.runs into the table, the curves, the per-class results against the KPIs,
the confusion view, the worst images (opened in Labels), the loop and the record."""

from __future__ import annotations

import shutil
import time

import pytest
from PySide6.QtCore import QItemSelectionModel, QTimer
from PySide6.QtWidgets import QAbstractItemView, QMessageBox

from app.views.runs import TABS, RunsView
from app.views.runs_dialogs import INSTALL_HINT, training_missing
from core.catalog.db import current_actor
from core.lab import Lab
from core.runs import loop, queue, records, results
from core.runs.records import RunRequest
from tests.app.helpers import show_window

TINY = {"epochs": 1, "image_size": 64, "batch_size": 4, "seed": 3, "workers": 0}
MISSING = "xlab_no_such_module"
RUN_S = 240  # a tiny run on a busy 2-core machine, with its evaluation


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """The demo lab with demo-test@1, demo-train@1 and run 1: a tiny detector trained and evaluated."""
    from core.demo import create_demo_lab

    root = tmp_path_factory.mktemp("runs_view") / "demo"
    lab = create_demo_lab(root, starter_datasets=True, plan_sessions=False)
    run = records.create_run(lab, RunRequest("train", "retinanet_tiny", train="demo-train@1", params=TINY), "tester")
    progress = list(queue.work(lab, "tester", only=run["id"]))
    assert progress[-1].state == "done", [p.message for p in progress if p.message]
    lab.close()
    return root


@pytest.fixture
def lab(template, tmp_path):
    from tests.app.conftest import _closed_after_background_calls

    shutil.copytree(template, tmp_path / "lab")
    lab = Lab.open(tmp_path / "lab")
    yield lab
    _closed_after_background_calls(lab)


def open_runs(qtbot, lab, settings):
    window = show_window(qtbot, lab, settings)
    area = window.runs
    with qtbot.waitSignal(area.loaded, timeout=20_000):
        window.show_area("Runs")
    return window, area


def state_of(area: RunsView, run_id: int) -> str | None:
    return next((r["state"] for r in area.model.rows if r["id"] == run_id), None)


def select(qtbot, area: RunsView, run_id: int) -> None:
    if area.record is not None and area.record["id"] == run_id and area.selected_id() == run_id:
        return
    with qtbot.waitSignal(area.record_shown, timeout=20_000, check_params_cb=lambda i: i == run_id):
        area.select(run_id)


def show_tab(area: RunsView, title: str) -> None:
    area.tabs.setCurrentIndex(TABS.index(title))


# -- without training --------------------------------------------------------------------------------------


def test_the_missing_training_message_names_the_module_and_the_install_command(monkeypatch, tmp_path):
    import sys

    assert training_missing() is None  # this machine has the [train] extra
    assert training_missing(("json",)) is None
    message = training_missing(("json", MISSING))
    assert INSTALL_HINT in message and MISSING in message and "json" not in message.split("Missing:")[1]
    # With a trainer bundle, the bundle is what has to be there (torch is in it, not in XLab).
    monkeypatch.setenv(queue.TRAINER_ENV, str(tmp_path / "xlab-trainer"))
    message = training_missing()
    assert "trainer bundle" in message and str(tmp_path / "xlab-trainer") in message
    monkeypatch.setenv(queue.TRAINER_ENV, sys.executable)
    assert training_missing(("json", MISSING)) is None


def test_without_training_the_run_buttons_are_off_and_say_why(qtbot, lab):
    area = RunsView(lab, training_modules=("torch", MISSING))
    qtbot.addWidget(area)
    with qtbot.waitSignal(area.loaded, timeout=20_000):
        area.resize(1200, 700)
        area.show()
    assert INSTALL_HINT in area.queue.probe_label.text()
    for button in (area.new_button, area.resume_button, area.reproduce_button, area.queue.button):
        assert not button.isEnabled()
        assert INSTALL_HINT in button.toolTip(), button.text()
    assert area.open_new_run() is None and area.start_queue() is None and not area.working
    # What was run is still there to read.
    assert [r["id"] for r in area.model.rows] == [1]
    qtbot.waitUntil(lambda: area.record is not None and len(area.results.rows) == 20, timeout=20_000)


# -- a finished run ----------------------------------------------------------------------------------------


def test_the_table_lists_the_runs_and_the_probe_says_where_they_go(qtbot, lab, settings):
    from core.runs.probe import probe

    records.reproduce(lab, 1, "tester")
    window, area = open_runs(qtbot, lab, settings)
    try:
        listed = records.list_runs(lab)
        assert [r["id"] for r in area.model.rows] == [r["id"] for r in listed] == [2, 1]
        assert [r["state"] for r in area.model.rows] == ["queued", "done"]
        # Queued runs wait for Start queue: nothing starts when the window opens.
        assert area.queue.queued_label.text() == "1 run(s) queued" and area.queue.button.isEnabled()
        assert area.queue.button.text() == "Start queue" and not area.working
        assert area.queue.runner_label.text() == "Nobody works the queue"
        qtbot.waitUntil(lambda: area.probe_info is not None, timeout=150_000)
        info = probe()
        text = area.queue.probe_label.text()
        if info["devices"]:
            assert info["devices"][0]["name"] in text and "driver" in text
        else:
            assert "No GPU: runs go to the CPU" in text
            # The queued run says how long it would take on the CPU.
            select(qtbot, area, 2)
            qtbot.waitUntil(lambda: "goes to the CPU, about" in area.warning.text(), timeout=20_000)
        assert state_of(area, 2) == "queued"
    finally:
        window.close()


def test_a_finished_runs_results_confusion_worst_images_loop_and_record(qtbot, lab, settings):
    window, area = open_runs(qtbot, lab, settings)
    try:
        select(qtbot, area, 1)
        record = records.show(lab, 1)
        # Results: one row per class of the test split, with its interval and its plan's KPI.
        show_tab(area, "Results")
        rows = {r["class_name"]: r for r in area.results.rows}
        test = {r["class_name"]: r for r in record["results"] if r["split"] == "test"}
        assert set(rows) == set(test) == set(record["classes"])
        assert rows["pistol"]["target"] == 0.95 and rows["pistol"]["far_max"] == 0.05
        for name, r in rows.items():
            assert r["pd"] == test[name]["pd"] and r["positives"] == test[name]["positives"]
            if r["pd"] is None:
                assert r["verdict"] == "not measured" and r["pd_interval"] == ""
            else:
                assert r["verdict"] == ("meets KPI" if r["pd"] >= r["target"] and r["far"] <= r["far_max"]
                                        else "misses KPI")
        import pyqtgraph as pg

        bars = [i for i in area.results.pd_plot.items if isinstance(i, pg.ErrorBarItem)]
        measured = [r for r in rows.values() if r["pd"] is not None]
        assert len(bars) == 1 and len(bars[0].opts["x"]) == len(measured)
        # Confusion: the true classes with boxes, and the clean bags.
        with qtbot.waitSignal(area.confusion_shown, timeout=20_000):
            show_tab(area, "Confusion")
        c = results.confusion(lab, 1)
        true = [t for t in c["classes"] if sum(c["matrix"][t].values())]
        table = area.confusion.table
        assert table.rowCount() == len(true) + 1
        assert table.verticalHeaderItem(table.rowCount() - 1).text() == "(clean bags)"
        missed = [table.horizontalHeaderItem(j).text() for j in range(table.columnCount())].index("missed")
        for i, name in enumerate(true):
            cell = table.item(i, missed).text()
            assert int(cell or 0) == c["matrix"][name].get("missed", 0)
        # Worst images, first of a class that misses its KPI: the core's list; a double-click opens one in Labels.
        with qtbot.waitSignal(area.worst_shown, timeout=20_000):
            show_tab(area, "Worst images")
        shown_class = area.worst.class_box.currentText()
        assert rows[shown_class]["verdict"] == "misses KPI" and rows[shown_class]["pd"] < 1
        expected = results.worst_images(lab, 1, shown_class, area.worst.limit.value())
        assert area.worst.model.rows == expected and expected[0]["kind"] == "missed"
        with qtbot.waitSignal(window.labels.image_shown, timeout=20_000) as opened:
            index = area.worst.proxy.index(0, 0)
            area.worst.table.doubleClicked.emit(index)
        assert opened.args == [expected[0]["image_id"]]
        assert window.stack.currentWidget() is window.labels
        window.show_area("Runs")
        # The loop: the run's proposals; accepting publishes the plan's next version, recording who.
        show_tab(area, "The loop")
        steps = loop.proposals(lab, 1)
        assert [(s["class_name"], s["ratio_to"]) for s in area.loop.steps] == \
            [(s["class_name"], s["ratio_to"]) for s in steps]
        assert area.loop.accept_button.isEnabled() and "step up" in area.loop.summary.text()
        assert "next ratio step" in area.loop.reason.text()
        area.loop.accept_button.click()
        box = area.confirmation
        assert isinstance(box, QMessageBox) and box.defaultButton() is box.button(QMessageBox.StandardButton.Cancel)
        publish = next(b for b in box.buttons() if b.text() == "Publish")
        with qtbot.waitSignal(area.action_done, timeout=20_000) as done:
            publish.click()
        assert "demo-test-set v2 published" in done.args[0]
        qtbot.waitUntil(lambda: area.loop.steps and {s["state"] for s in area.loop.steps} == {"accepted"},
                        timeout=20_000)
        assert {s["decided_by"] for s in area.loop.steps} == {current_actor()}
        assert {s["new_plan"] for s in area.loop.steps} == {"demo-test-set v2"}
        assert not area.loop.accept_button.isEnabled()
        assert f"accepted by {current_actor()}" in area.loop.summary.text()
        # The record: what reproduces the run.
        show_tab(area, "Record")
        text = area.record_panel.toPlainText()
        for fact in (f"Seed: {record['seed']}", record["code_version"], record["model_sha256"], "image_size = 64",
                     str(record["env"]["torch"])):
            assert fact in text, fact
    finally:
        window.close()


def test_cancel_reproduce_and_compare_call_through(qtbot, lab, settings):
    from core.datasets.versions import freeze

    freeze(lab.catalog, "demo-train", "train", plan="demo-test-set", parent="demo-test@1", ratio=1, seed=8,
           validation=0.3, actor="tester")
    other = records.create_run(lab, RunRequest("train", "retinanet_tiny", train="demo-train@2", params=TINY))
    window, area = open_runs(qtbot, lab, settings)
    try:
        select(qtbot, area, 1)
        with qtbot.waitSignal(area.action_done, timeout=20_000) as done:
            area.reproduce_button.click()
        assert "a reproduction of run 1" in done.args[0]
        copy = max(r["id"] for r in records.list_runs(lab))
        again = records.show(lab, copy)
        assert again["state"] == "queued" and again["seed"] == 3 and again["train"] == "demo-train@1"
        qtbot.waitUntil(lambda: state_of(area, copy) == "queued" and area.selected_id() == copy, timeout=20_000)
        assert not area.working  # reproducing queues; Start queue runs it
        select(qtbot, area, copy)
        assert area.cancel_button.isEnabled() and not area.resume_button.isEnabled()
        with qtbot.waitSignal(area.action_done, timeout=20_000) as done:
            area.cancel_button.click()
        assert done.args[0] == f"Run {copy}: cancelled"
        qtbot.waitUntil(lambda: state_of(area, copy) == "cancelled", timeout=20_000)
        assert records.show(lab, copy)["state"] == "cancelled"
        # Compare: two runs selected.
        area.table.clearSelection()
        for run_id in (1, other["id"]):
            row = next(r for r in range(area.proxy.rowCount())
                       if area.model.rows[area.proxy.mapToSource(area.proxy.index(r, 0)).row()]["id"] == run_id)
            area.table.selectionModel().select(
                area.proxy.index(row, 0), QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows)
        assert area.selected_ids() == [1, other["id"]] and area.compare_button.isEnabled()
        area.compare_button.click()
        dialog = area.dialog
        qtbot.waitUntil(lambda: dialog.comparison is not None, timeout=20_000)
        expected = records.compare(lab, 1, other["id"])
        assert [r["class_name"] for r in dialog.model.rows] == [r["class_name"] for r in expected["classes"]]
        text = dialog.summary.text()
        assert "demo-train@1 → demo-train@2" in text and "Test set: both on demo-test@1" in text
        dialog.close()
    finally:
        window.close()


def test_the_new_run_dialog_queues_the_run_it_shows(qtbot, lab, settings):
    from core.errors import XLabError

    window, area = open_runs(qtbot, lab, settings)
    try:
        qtbot.waitUntil(lambda: area.probe_info is not None, timeout=150_000)
        dialog = area.open_new_run()
        assert dialog.train.currentData() == "demo-train@1" and dialog.kind == "train"
        if not area.probe_info.get("devices"):
            assert dialog.model.currentData() == "retinanet_tiny" and "goes to the CPU, about" in dialog.estimate.text()
        dialog.seed.setText("abc")
        with pytest.raises(XLabError, match="not a whole number"):
            dialog.request()
        dialog.seed.setText("11")
        dialog.epochs.setValue(2)
        dialog.image_size.setValue(96)
        dialog.note.setText("from the dialog")
        dialog.start_now.setChecked(False)
        with qtbot.waitSignal(area.action_done, timeout=30_000) as done:
            dialog.queue_button.click()
        run_id = int(done.args[0].split()[1])
        record = records.show(lab, run_id)
        assert record["state"] == "queued" and record["seed"] == 11 and record["note"] == "from the dialog"
        assert record["params"]["epochs"] == 2 and record["params"]["image_size"] == 96
        assert record["train"] == "demo-train@1" and record["test"] == "demo-test@1"
        qtbot.waitUntil(lambda: area.selected_id() == run_id and state_of(area, run_id) == "queued", timeout=20_000)
        assert not area.working and area.queue.queued_label.text() == "1 run(s) queued"
        # An evaluation of run 1's model on the test set.
        dialog = area.open_new_run()
        dialog.eval_kind.setChecked(True)
        dialog.train.setCurrentIndex(dialog.train.findData(None))
        with pytest.raises(XLabError, match="needs a test set"):
            dialog.request()
        dialog.test.setCurrentIndex(dialog.test.findData("demo-test@1"))
        with pytest.raises(XLabError, match="model to evaluate"):
            dialog.request()
        dialog.source_run.setCurrentIndex(dialog.source_run.findData(1))
        dialog.start_now.setChecked(False)
        with qtbot.waitSignal(area.action_done, timeout=30_000) as done:
            dialog.queue_button.click()
        evaluation = records.show(lab, int(done.args[0].split()[1]))
        assert evaluation["kind"] == "eval" and evaluation["source_run"] == 1 and evaluation["test"] == "demo-test@1"
        assert evaluation["weights_sha256"] == records.show(lab, 1)["model_sha256"]
        qtbot.waitUntil(lambda: area.queue.queued_label.text() == "2 run(s) queued", timeout=20_000)
    finally:
        window.close()


# -- the queue, worked by the window --------------------------------------------------------------------------


def test_the_queue_works_in_the_background_with_live_curves_stop_and_resume(qtbot, lab, settings):
    """Start queue trains in a process of its own while the window stays responsive; Stop keeps a
    checkpoint and Resume goes on from it to the end."""
    # One image a step. Stop is asked as soon as the run is taken, before its first step ends (loading
    # torch and the model takes seconds): the run stops at that step and checkpoints as it stops,
    # however fast the machine (a Stop after the first step seen could land after the last).
    run = records.create_run(lab, RunRequest("train", "retinanet_tiny", train="demo-train@1",
                                             params={**TINY, "epochs": 2, "batch_size": 1}))
    window, area = open_runs(qtbot, lab, settings)
    gaps: list[float] = []
    lines: set[str] = set()
    last = [time.monotonic()]

    def tick() -> None:
        now = time.monotonic()
        gaps.append(now - last[0])
        last[0] = now
        lines.add(area.queue.progress.text())

    beat = QTimer()
    beat.timeout.connect(tick)
    try:
        select(qtbot, area, run["id"])
        assert state_of(area, run["id"]) == "queued" and area.queue.button.text() == "Start queue"
        beat.start(50)
        area.queue.button.click()
        assert area.working and area.queue.button.text() == "Stop"
        qtbot.waitUntil(lambda: area.queue.progress.text().startswith(f"Run {run['id']}: run {run['id']} started"),
                        timeout=RUN_S * 1000)
        with qtbot.waitSignal(area.queue_ended, timeout=RUN_S * 1000) as ended:
            area.queue.button.click()  # Stop
        assert ended.args == ["stopped"]
        qtbot.waitUntil(lambda: state_of(area, run["id"]) not in ("running", "cancelling"), timeout=20_000)
        assert state_of(area, run["id"]) == "cancelled", records.show(lab, run["id"])
        # The step it stopped at is recorded and drawn.
        select(qtbot, area, run["id"])
        qtbot.waitUntil(lambda: len(area.curves.steps) >= 1, timeout=20_000)
        assert area.resume_button.isEnabled() and not area.cancel_button.isEnabled()
        with qtbot.waitSignal(area.action_done, timeout=20_000):
            area.resume_button.click()
        qtbot.waitUntil(lambda: state_of(area, run["id"]) == "queued" and area.queue.button.isEnabled(),
                        timeout=20_000)
        # Live: while the resumed run trains, the record says so and the curves are read on a timer.
        live: list[bool] = []
        area.record_shown.connect(lambda _id: live.append(area.record["state"] == "running"
                                                          and area.timer.isActive()))
        with qtbot.waitSignal(area.queue_ended, timeout=RUN_S * 1000) as ended:
            area.start_queue()
        assert ended.args == ["finished"]
        qtbot.waitUntil(lambda: area.record is not None and area.record["id"] == run["id"]
                        and area.record["state"] == "done" and bool(area.results.rows), timeout=30_000)
        qtbot.waitUntil(lambda: len(area.curves.epochs) == 2, timeout=20_000)
        assert any(live), "the running run was never shown as running with its curves read live"
        steps = [t for t in lines if t.startswith(f"Run {run['id']}: epoch")]
        assert steps and all("images/s" in t and "left" in t for t in steps), lines
        assert records.show(lab, run["id"])["attempts"] == 2
        assert not area.timer.isActive() and area.queue.queued_label.text() == "No run queued"
    finally:
        beat.stop()
        window.close()
    # The window took its turn at least every second throughout (the run is another process).
    assert gaps and max(gaps) < 1.0, f"the window was held for {max(gaps):.2f} s"


def test_closing_the_window_stops_the_run_at_its_next_step_resumable(qtbot, lab, settings):
    # Long enough that it is still running when the window closes, however fast the machine.
    run = records.create_run(lab, RunRequest("train", "retinanet_tiny", train="demo-train@1",
                                             params={**TINY, "batch_size": 1, "epochs": 50}))
    window, area = open_runs(qtbot, lab, settings)
    select(qtbot, area, run["id"])
    task = area.start_queue()
    qtbot.waitUntil(lambda: len(area.curves.steps) >= 1, timeout=RUN_S * 1000)
    window.close()
    assert not task.running
    record = records.show(lab, run["id"])
    assert record["state"] == "cancelled" and "resume" in record["message"]
    assert queue.runner(lab) is None
    assert records.resume(lab, run["id"])["state"] == "queued"  # its checkpoint is there


# -- fit ---------------------------------------------------------------------------------------------------------


def test_the_area_fits_1366x768(qtbot, lab, settings):
    from tests.app.test_screens_fit import column_problems, settle, visible_views

    window, area = open_runs(qtbot, lab, settings)
    try:
        select(qtbot, area, 1)
        problems = []
        for title in TABS:
            if title == "Confusion":
                with qtbot.waitSignal(area.confusion_shown, timeout=20_000):
                    show_tab(area, title)
            elif title == "Worst images":
                with qtbot.waitSignal(area.worst_shown, timeout=20_000):
                    show_tab(area, title)
            else:
                show_tab(area, title)
            settle(qtbot, area)
            views = [v for v in visible_views(area) if isinstance(v, QAbstractItemView)]
            problems += [p for v in views for p in column_problems(v)]
        assert window.width() <= 1366 and window.height() <= 768
        needs, has = area.minimumSizeHint(), window.stack.size()
        assert needs.width() <= has.width() and needs.height() <= has.height(), f"needs {needs}, has {has}"
        assert not problems, "\n".join(problems)
    finally:
        window.close()
