"""Dashboards on a seeded catalog: values against independent pandas
computations, clicks, exports that open again, live updates."""

import pandas as pd
import pytest

from core.catalog.images import insert_images
from core.lab import Lab
from tests.app.helpers import show_window
from tests.bench.seed import seed_catalog
from tests.core.test_dashboard import pandas_cells


@pytest.fixture
def seeded(tmp_path):
    lab = Lab.init(tmp_path / "lab")
    seed_catalog(lab, n_classes=3, n_images=3000, seed=9)
    yield lab
    lab.close()


@pytest.fixture
def dashboards(qtbot, seeded, settings):
    win = show_window(qtbot, seeded, settings)
    view = win.show_area("Dashboards")
    qtbot.waitUntil(lambda: view.snapshot is not None and view.heatmap.heat is not None, timeout=20_000)
    yield view
    win.close()


def reload(qtbot, view):
    with qtbot.waitSignal(view.loaded, timeout=20_000):
        view.refresh()


def test_heatmap_shows_what_pandas_computes_and_a_click_lists_the_cell(qtbot, dashboards, seeded, tmp_path):
    view = dashboards
    h = view.heatmap
    h.rows_box.setCurrentIndex(h.rows_box.findData("class"))
    h.cols_box.setCurrentIndex(h.cols_box.findData("scanner_model"))
    h.split_box.setCurrentIndex(h.split_box.findData("train"))
    reload(qtbot, view)
    heat = h.heat
    assert (heat.rows_dim, heat.cols_dim, heat.split) == ("class", "scanner_model", "train")
    cells = pandas_cells(seeded, view.snapshot.plan_id)
    expected = cells.groupby(["class_name", "scanner_model"])[["train_target", "train_done"]].sum()
    for (cls, model), v in expected.iterrows():
        r, c = heat.row_labels.index(cls), heat.col_labels.index(model)
        assert (heat.target[r][c], heat.done[r][c]) == (v["train_target"], v["train_done"])
    # the image on screen carries the same fill
    grid = h.image.image
    assert grid.shape == (len(heat.row_labels), len(heat.col_labels))
    r, c = heat.row_labels.index("class_001"), heat.col_labels.index("DX-620")
    assert grid[r, c] == pytest.approx(heat.fill(r, c))
    # click that cell: its quota cells (deficits) and newest images
    with qtbot.waitSignal(h.cell_clicked, timeout=10_000):
        h.select_cell("class_001", "DX-620")
    rows = h.cell_model.rows
    subset = cells[(cells.class_name == "class_001") & (cells.scanner_model == "DX-620")]
    assert len(rows) == len(subset)
    assert sum(r["train_deficit"] for r in rows) == int((subset.train_target - subset.train_done).sum())
    assert h.thumbs.count() > 0 and "deficit" in h.detail_title.text()
    # a filter on another dimension
    h.filter_boxes["clutter"].setCurrentIndex(h.filter_boxes["clutter"].findData("low"))
    reload(qtbot, view)
    low = cells[cells.clutter_level == "low"].groupby(["class_name", "scanner_model"])["train_target"].sum()
    assert sum(map(sum, h.heat.target)) == int(low.sum())
    # exports: CSV, Excel, PNG
    from app.views.dashboards import export_chart_png, export_rows
    from app import tasks

    view.tabs.setCurrentWidget(view.classes)  # a tab is filled when it is shown
    export_rows(view, h.heat.as_rows(), str(tmp_path / "fill.xlsx"))
    export_rows(view, view.classes.model.rows, str(tmp_path / "classes.csv"))
    assert tasks.wait_for_calls(20_000)
    assert len(pd.read_excel(tmp_path / "fill.xlsx")) == len(h.heat.as_rows())
    assert set(pd.read_csv(tmp_path / "classes.csv").class_name) == {"class_000", "class_001", "class_002"}
    export_chart_png(h.plot, str(tmp_path / "fill.png"))
    from PySide6.QtGui import QImage

    image = QImage(str(tmp_path / "fill.png"))
    assert not image.isNull() and image.width() >= 1200


def test_production_and_classes_tabs_match_pandas(qtbot, dashboards, seeded, tmp_path):
    view = dashboards
    p = view.production
    view.tabs.setCurrentWidget(p)
    p.month_box.addItem("2026-03", "2026-03")
    p.month_box.setCurrentIndex(p.month_box.findData("2026-03"))
    reload(qtbot, view)
    images = pd.read_sql("SELECT substr(captured_at, 1, 10) AS day, s.name AS scanner, s.station FROM images i "
                         "JOIN scanners s ON s.id = i.scanner_id", seeded.catalog.reader())
    march = images[images.day.str.startswith("2026-03")]
    x, y = p.cumulative_line.getData()
    assert len(x) == 31 and y[-1] == len(march)
    bars = p.daily_bars.opts["height"]
    assert list(bars) == [int(march[march.day == f"2026-03-{d:02d}"].shape[0]) for d in range(1, 32)]
    p.breakdown_box.setCurrentIndex(p.breakdown_box.findData("by_station"))
    assert {r["name"]: r["images"] for r in p.breakdown_model.rows} == march.groupby("station").size().to_dict()
    assert [r["what"] for r in p.forecast_model.rows][:2] == ["test set complete", "ratio step 1:1 (test set + train at 1x)"]
    # the monthly target is a setting: change it from the tab
    p.target_box.setValue(90_000)
    p.days_edit.setText("mon,tue,wed,thu")
    with qtbot.waitSignal(view.loaded, timeout=20_000):
        p._apply_settings()
    _, target = p.target_line.getData()
    assert target[-1] == 90_000
    # classes: verdicts; blocking classes only
    c = view.classes
    view.tabs.setCurrentWidget(c)
    status_rows = {r["class_name"]: r for r in c.model.rows}
    cells = pandas_cells(seeded, view.snapshot.plan_id)
    per_class = cells[cells.class_name != "(clean)"].groupby("class_name")[["test_target", "test_done"]].sum()
    for name, v in per_class.iterrows():
        assert (status_rows[name]["test_target"], status_rows[name]["test_done"]) == (v.test_target, v.test_done)
        assert status_rows[name]["verdict"] == ("test set incomplete" if v.test_done < v.test_target else status_rows[name]["verdict"])
    c.blocking.setChecked(True)
    assert all(r["blocks"] for r in c.model.rows)
    # one-click PDF report
    out = tmp_path / "weekly.pdf"
    view.write_report(str(out))
    qtbot.waitUntil(lambda: "report saved" in view.status.text(), timeout=30_000)
    from pypdf import PdfReader

    assert "weekly report" in PdfReader(out).pages[0].extract_text()


def test_dashboards_follow_new_images_without_a_click(qtbot, dashboards, seeded):
    view = dashboards
    before = view.snapshot.production.month_images
    today = pd.Timestamp.now().strftime("%Y-%m-%dT%H:%M:%S")
    month = today[:7]
    view.production.month_box.setCurrentIndex(view.production.month_box.findData(month))
    reload(qtbot, view)
    before = view.snapshot.production.month_images
    with seeded.catalog.write() as txn:
        insert_images(txn, [(f"live-{k}", "s", "", 1, today, today, "test", 1, 1, 1, 1, 1, 16, 1, "", 1)
                            for k in range(5)])
    qtbot.waitUntil(lambda: view.snapshot.production.month_images == before + 5, timeout=15_000)
    assert view.last_apply_ms > 0


def test_cell_detail_follows_the_split_and_the_axes(qtbot, dashboards, seeded):
    from app import tasks
    from app.views.dashboards import DETAIL_PROMPT

    view = dashboards
    h = view.heatmap

    def detail_shown():
        return h.detail_title.text() != DETAIL_PROMPT or h.cell_model.rows or h.thumbs.count()

    with qtbot.waitSignal(h.cell_clicked, timeout=10_000):
        h.select_cell("class_001", h.heat.col_labels[0])
    assert detail_shown() and "class_001" in h.detail_title.text()
    # another split: the old cell's detail goes at once, and stays gone after the reload
    h.split_box.setCurrentIndex(h.split_box.findData("train"))
    assert not detail_shown()
    reload(qtbot, view)
    assert h.heat.split == "train" and not detail_shown()
    # a live refresh of the same view refreshes the detail instead
    with qtbot.waitSignal(h.cell_clicked, timeout=10_000):
        h.select_cell("class_002", h.heat.col_labels[0])
    with qtbot.waitSignal(h.cell_clicked, timeout=20_000):
        view.refresh()
    assert "class_002" in h.detail_title.text() and h.cell_model.rows
    # other axes: cleared, even when the cell's detail was still loading
    h.select_cell("class_000", h.heat.col_labels[0])
    h.cols_box.setCurrentIndex(h.cols_box.findData("pose"))
    assert tasks.wait_for_calls(20_000)
    reload(qtbot, view)
    assert h.heat.cols_dim == "pose" and not detail_shown()


def test_one_colour_scale_with_legends(qtbot, dashboards):
    from core import colours

    view = dashboards
    h = view.heatmap
    # the heatmap's colours are the shared scale, and its colour bar says what they mean
    lut = h.image.lut if not callable(h.image.lut) else h.image.lut(h.image.image)
    for fraction in (0.0, 0.5, 1.0):
        assert tuple(int(v) for v in lut[round(fraction * 255)][:3]) == pytest.approx(colours.fill_rgb(fraction), abs=2)
    assert h.colour_bar.axis.labelText == colours.FILL_LABEL
    assert [label for _, label in h.colour_bar.axis._tickLevels[0]] == ["0%", "25%", "50%", "75%", "100%"]
    # table fill columns use the same scale
    from app.table_model import fill_colour

    assert fill_colour(1.0).getRgb()[:3] == colours.tint(colours.fill_rgb(1.0), 0.55)
    # the verdict colours have a legend with counts
    c = view.classes
    view.tabs.setCurrentWidget(c)
    rows = c.model.rows
    for verdict, label in c.legend.items():
        assert colours.hex_colour(colours.tint(colours.VERDICT_COLOURS[verdict], 0.65)) in label.styleSheet()
        assert f"({sum(1 for r in rows if r['verdict'] == verdict)})" in label.text()
    blocked = next(r for r in rows if r["verdict"] == "test set incomplete")
    assert c.model.row_colour(blocked).getRgb()[:3] == colours.tint(colours.VERDICT_COLOURS["test set incomplete"], 0.65)


def test_production_charts_have_axes_and_draw_nothing_after_today(qtbot, dashboards):
    view = dashboards
    p = view.production
    view.tabs.setCurrentWidget(p)
    month = pd.Timestamp.now().strftime("%Y-%m")
    p.month_box.setCurrentIndex(p.month_box.findData(month))
    reload(qtbot, view)
    prod = view.snapshot.production
    today = pd.Timestamp.now().day
    x, _ = p.cumulative_line.getData()
    assert x is None or max(x) <= today
    assert p.daily_bars.opts["x"] == list(range(1, today + 1))
    assert p.cumulative_plot.getAxis("left").labelText == "images (cumulative)"
    assert p.daily_plot.getAxis("left").labelText == "images per day"
    assert p.daily_plot.getAxis("right").labelText == "quarantined"
    assert p.cumulative_plot.getAxis("bottom").labelText.startswith("day of ")
    low, high = p.daily_plot.viewRange()[1]
    assert low == 0 and high >= max([10, *(d["images"] for d in prod.days if d["images"] is not None)])
    assert p.cumulative_plot.viewRange()[1][0] == 0
    assert p.summary.text().startswith(prod.summary())
    assert [c.key for c in p.forecast_model.columns][-1] == "basis"


def test_an_empty_lab_says_what_to_do_next(qtbot, tmp_path, settings):
    from core.dashboard.production import NO_IMAGES_YET

    lab = Lab.init(tmp_path / "empty")
    win = show_window(qtbot, lab, settings)
    try:
        view = win.show_area("Dashboards")
        qtbot.waitUntil(lambda: view.snapshot is not None, timeout=20_000)
        assert "publish a quota plan" in view.heatmap.summary.text()
        view.tabs.setCurrentWidget(view.production)
        p = view.production
        assert NO_IMAGES_YET in p.summary.text() and "behind" not in p.summary.text()
        assert p.empty_text.textItem.toPlainText() == NO_IMAGES_YET
        for plot in (p.cumulative_plot, p.daily_plot):
            low, high = plot.viewRange()[1]
            assert low == 0 and high >= 10  # not pyqtgraph's empty ±0.5
        view.tabs.setCurrentWidget(view.classes)
        assert "publish a quota plan" in view.classes.summary.text()
    finally:
        win.close()
        lab.close()
