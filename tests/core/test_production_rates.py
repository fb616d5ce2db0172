"""Production rates and forecasts on the lab's working-day calendar: today's
partial day, a lab that began mid-month, an empty lab, and the report's charts
(labelled axes, each series on a scale that fits it)."""

from datetime import date, datetime

import pytest

from core.catalog.images import insert_images
from core.dashboard.charts import heatmap_figure, production_figure
from core.dashboard.export import write_report
from core.dashboard.heatmap import quota_heatmap
from core.dashboard.production import NO_IMAGES_YET, production
from core.lab import Lab
from core.quota.plans import resolve_plan
from core.quota.status import quota_status
from tests.core.test_dashboard import small_lab  # noqa: F401 - fixture

# Monday 2026-11-23, 12:30: half of the 08:00-17:00 working day is gone.
NOW = datetime(2026, 11, 23, 12, 30)


def add_images(lab, per_day: dict[str, int]) -> None:
    rows, k = [], 0
    for day, n in per_day.items():
        for _ in range(n):
            at = f"{day}T10:00:{k % 60:02d}"
            rows.append((f"img-{k}", "s", f"{k}.png", 1, at, at, None, None, None, None, 64, 64, 16, 1, "", 1))
            k += 1
    with lab.catalog.write() as txn:
        insert_images(txn, rows)


def status_of(lab):
    return quota_status(lab.catalog, resolve_plan(lab.catalog, None)["id"])


def test_a_lab_that_began_last_week_counts_today_for_the_share_of_its_hours(small_lab):
    lab = small_lab
    # Wed-Fri last week, nothing at the weekend, 45 so far today
    add_images(lab, {"2026-11-18": 100, "2026-11-19": 200, "2026-11-20": 300, "2026-11-23": 45})
    prod = production(lab.catalog, status_of(lab), now=NOW)
    rate = 645 / 3.5  # three whole working days and half of today
    assert prod.recent_rate == pytest.approx(rate)
    assert prod.rate.basis == (f"{rate:,.0f}/working day over the last 3 working days (Nov 18–20) and today so far "
                               "(50% of its working hours): 645 images")
    # the target counts from the lab's first image: 130,000 over November's 21 working days,
    # from the 18th: 9 working days (18-20, 23-27, 30)
    per_day = 130_000 / 21
    assert prod.target_from == date(2026, 11, 18) and prod.month_target == round(9 * per_day)
    assert prod.month_target_to_date == round(3.5 * per_day)
    assert prod.days[0]["target_cumulative"] == 0
    # month end: today's other half and the 5 working days after it at that rate
    assert prod.month_end_projection == round(645 + 5.5 * rate)
    # nothing drawn after today
    assert [d["cumulative"] for d in prod.days[21:24]] == [600, 645, None]  # Nov 22, 23 (today), 24
    assert all(d["images"] is None for d in prod.days[23:])
    # forecasts extrapolate that rate, today's other half first; each ratio step too
    status = status_of(lab)
    totals = status.totals()
    test_left = (totals["test_target"] - totals["test_done"]) * status.images_per_setup
    f = prod.forecasts[0]
    assert f.what == "test set complete" and f.remaining_images == test_left > 0
    assert f.working_days == pytest.approx(test_left / rate) and f.basis == prod.rate.basis
    assert f.eta == date(2026, 11, 23)  # a few setups at 184 a day: done this afternoon
    steps = prod.forecasts[1:6]
    for k, step in enumerate(steps, start=1):
        train_left = max(0, k * totals["test_target"] - totals["train_done"]) * status.images_per_setup
        assert step.what.startswith(f"ratio step {k}:1") and step.remaining_images == test_left + train_left
        assert step.working_days == pytest.approx(step.remaining_images / rate)
    # these images have no class: no class has a recent rate, and says so
    per_class = prod.forecasts[6:]
    assert {f.what for f in per_class} == {"test set of class_000", "test set of class_001"}
    assert all(f.eta is None and "no test images of" in f.basis for f in per_class)
    assert "behind" in prod.summary() and "projected month end" in prod.summary()


def test_images_only_today_give_a_rate_and_forecasts(small_lab):
    lab = small_lab
    add_images(lab, {"2026-11-23": 300})
    prod = production(lab.catalog, status_of(lab), now=NOW)
    assert prod.recent_rate == pytest.approx(600)  # 300 in half a working day
    assert prod.rate.basis.startswith("600/working day over today so far (50% of its working hours)")
    assert all(f.eta is not None for f in prod.forecasts[:6])
    # the month began before the lab: not "behind" for the 1st-20th
    assert prod.month_target_to_date == round(0.5 * 130_000 / 21)
    # early in the morning, a few images do not extrapolate to thousands a day
    early = production(lab.catalog, status_of(lab), now=datetime(2026, 11, 23, 8, 5))
    assert early.recent_rate == pytest.approx(300 * 9)  # counted as one working hour


def test_an_empty_lab_says_what_to_do_next(tmp_path):
    lab = Lab.init(tmp_path / "empty")
    try:
        prod = production(lab.catalog, None, now=NOW)
        assert prod.empty and prod.summary() == f"2026-11: {NO_IMAGES_YET}."
        assert prod.rate.per_working_day is None and prod.rate.basis == NO_IMAGES_YET
        assert prod.month_images == 0 and prod.by_technician == [] and prod.forecasts == []
        fig = production_figure(prod)
        top, bottom, quarantine = fig.axes
        assert top.get_ylim()[0] == 0 and top.get_ylim()[1] > 0 and bottom.get_ylim() == (0, pytest.approx(11.5))
        assert any(NO_IMAGES_YET in t.get_text() for t in top.texts)
    finally:
        lab.close()


def test_report_charts_have_labelled_axes_on_scales_that_fit(small_lab, tmp_path):
    lab = small_lab
    add_images(lab, {"2026-11-18": 100, "2026-11-19": 200, "2026-11-20": 300, "2026-11-23": 45})
    prod = production(lab.catalog, status_of(lab), now=NOW)
    fig = production_figure(prod)
    top, bottom, quarantine = fig.axes
    assert top.get_ylabel() == "images (cumulative)" and bottom.get_ylabel() == "images per day"
    assert quarantine.get_ylabel() == "quarantined" and bottom.get_xlabel() == "day of November 2026"
    # daily bars on their own scale (not the month's target), cumulative up to the target
    assert 300 <= bottom.get_ylim()[1] <= 400
    assert top.get_ylim()[1] >= prod.month_target and top.get_ylim()[0] == 0
    produced = next(line for line in top.get_lines() if line.get_label().startswith("produced"))
    assert max(produced.get_xdata()) == 23  # not drawn into the future
    heat = quota_heatmap(status_of(lab), "class", "luggage_type")
    hfig = heatmap_figure(heat, 200, 120)
    grid_ax, bar_ax = hfig.axes
    assert grid_ax.get_ylabel() == "class" and grid_ax.get_xlabel() == "luggage type"
    assert bar_ax.get_ylabel().startswith("fill (% of target setups)")
    assert [t.get_text() for t in bar_ax.get_yticklabels()] == ["0%", "25%", "50%", "75%", "100%"]
    from pypdf import PdfReader

    path = write_report(lab, tmp_path / "r.pdf", now=NOW)
    pages = PdfReader(path).pages
    assert len(pages[1].images) == 1 and len(pages[2].images) == 1  # the charts are images
    text = pages[2].extract_text()
    assert "Production 2026-11" in text and "over the last 3 working days" in text
