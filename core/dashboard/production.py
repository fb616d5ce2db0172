"""Production against the monthly target, per scanner, station and technician;
quarantine rate; forecasts of the month's end, of when the test set (of the
lab and of each class) and each ratio step complete.

Rates are per *working day* of the lab's calendar (lab settings: monthly
target, working days, working hours) and always come with their basis
(which days, how many images), so a manager can tell a forecast from a guess.
Today is not over: it counts for the share of its working hours gone by.

Reads the trigger-kept production counters (one row per day, scanner and
technician); only the per-class rates read the images of the recent working
days (by the capture-time index).
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from core.catalog import dashboard_store as sql
from core.catalog.db import Catalog
from core.errors import XLabError
from core.quota.status import QuotaStatus

DEFAULT_MONTHLY_TARGET = 130_000
DEFAULT_WORKING_DAYS = (0, 1, 2, 3, 4)  # Monday..Friday
DEFAULT_WORKING_HOURS = (8, 17)  # 08:00 to 17:00
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
RECENT_WORKING_DAYS = 10  # the rate a forecast extrapolates
RATIO_STEPS = (1, 2, 3, 4, 5)
NO_IMAGES_YET = "no images yet — start a capture session or import an archive"


@dataclass(frozen=True)
class ProductionSettings:
    monthly_target: int = DEFAULT_MONTHLY_TARGET
    working_days: tuple[int, ...] = DEFAULT_WORKING_DAYS
    working_hours: tuple[int, int] = DEFAULT_WORKING_HOURS

    def is_working(self, day: date) -> bool:
        return day.weekday() in self.working_days

    def elapsed(self, moment: datetime) -> float:
        """The share (0..1) of ``moment``'s working hours gone by at ``moment``."""
        start, end = self.working_hours
        hours = moment.hour + moment.minute / 60 + moment.second / 3600
        return max(0.0, min(1.0, (hours - start) / (end - start)))


def production_settings(catalog: Catalog) -> ProductionSettings:
    values = sql.settings(catalog)
    return ProductionSettings(int(values.get("monthly_target", DEFAULT_MONTHLY_TARGET)),
                              tuple(values.get("working_days", DEFAULT_WORKING_DAYS)),
                              tuple(values.get("working_hours", DEFAULT_WORKING_HOURS)))


def set_production_settings(catalog: Catalog, *, monthly_target: int | None = None,
                            working_days: list[str] | None = None, working_hours: tuple[int, int] | None = None,
                            actor: str | None = None) -> ProductionSettings:
    """Change the monthly target, the working days (names: mon..sun) and/or the
    working hours (start, end: whole hours 0..24); audited."""
    catalog.require("settings")
    changes = {}
    if monthly_target is not None:
        if monthly_target <= 0:
            raise XLabError("the monthly target must be a positive number of images")
        changes["monthly_target"] = int(monthly_target)
    if working_days is not None:
        unknown = [d for d in working_days if d.lower()[:3] not in WEEKDAYS]
        if unknown or not working_days:
            raise XLabError(f"working days are names like mon,tue,wed (got {', '.join(unknown) or 'none'})")
        changes["working_days"] = sorted({WEEKDAYS.index(d.lower()[:3]) for d in working_days})
    if working_hours is not None:
        start, end = working_hours
        if not 0 <= start < end <= 24:
            raise XLabError(f"working hours run from a start to a later end, within 0-24 (got {start}-{end})")
        changes["working_hours"] = [int(start), int(end)]
    with catalog.write(actor) as txn:
        for key, value in changes.items():
            before = sql.set_setting(txn, key, value)
            txn.audit("set", "lab_settings", key, before, value)
    return production_settings(catalog)


def _short(day: date) -> str:
    return f"{calendar.month_abbr[day.month]} {day.day}"


def _span(first: date, last: date) -> str:
    if first == last:
        return _short(first)
    if (first.year, first.month) == (last.year, last.month):
        return f"{_short(first)}–{last.day}"
    return f"{_short(first)}–{_short(last)}"


@dataclass(frozen=True)
class Rate:
    """Images per working day over the recent working days, and what that rests on."""

    per_working_day: float | None  # None: no images yet, no rate
    images: int  # images in the basis
    working_days: float  # full working days, plus the share of today gone by
    full_days: int  # working days before today in the basis
    first: date | None
    last: date | None
    today_share: float | None  # None: today is not part of the basis
    last_full: date | None = None  # the newest working day before today in the basis
    days: tuple[date, ...] = ()  # the days the rate counts

    @property
    def basis(self) -> str:
        """E.g. '412/working day over the last 3 working days (Nov 19–21) and today so far (40% of its hours)'."""
        if self.per_working_day is None or self.first is None or self.last is None:
            return NO_IMAGES_YET
        parts = []
        if self.full_days:
            parts.append(f"the last {self.full_days} working day{'s' if self.full_days != 1 else ''} "
                         f"({_span(self.first, self.last_full or self.last)})")
        if self.today_share == 1.0:
            parts.append(f"today ({_short(self.last)}, a whole working day)")
        elif self.today_share is not None:
            parts.append(f"today so far ({self.today_share:.0%} of its working hours)")
        return (f"{self.per_working_day:,.0f}/working day over {' and '.join(parts)}: "
                f"{self.images:,} images")


@dataclass(frozen=True)
class Forecast:
    what: str
    remaining_images: int
    working_days: float | None  # None: nothing produced recently, no forecast
    eta: date | None
    rate: float | None = None  # images per working day the forecast extrapolates
    basis: str = ""


@dataclass(frozen=True)
class Production:
    month: str  # YYYY-MM
    settings: ProductionSettings
    # day, images, cumulative, target_cumulative, working, today, quarantined, quarantine_rate;
    # a day after today has images, cumulative and quarantine_rate None (nothing to draw yet)
    days: list[dict]
    by_scanner: list[dict]
    by_station: list[dict]
    by_technician: list[dict]
    month_images: int
    month_target_to_date: int  # what the target asks by now (today pro-rated by its hours gone)
    recent_rate: float  # images per working day over the recent working days (0 with no images)
    forecasts: list[Forecast]
    rate: Rate
    month_target: int  # this month's target: the monthly target, less the working days before the lab began
    target_from: date | None  # the first day the target counts (the lab's first image, or the month's first day)
    month_end_projection: int | None  # images by the month's end at the recent rate; None: month not current
    first_image_day: date | None  # the lab's first image; None: no images yet

    @property
    def month_working_days(self) -> int:
        return sum(1 for d in self.days if d["working"])

    @property
    def empty(self) -> bool:
        return self.first_image_day is None

    @property
    def ahead(self) -> int:
        return self.month_images - self.month_target_to_date

    def summary(self) -> str:
        """One line for the window, the command line and the report."""
        if self.empty:
            return f"{self.month}: {NO_IMAGES_YET}."
        parts = [f"{self.month}: {self.month_images:,} images of {self.month_target:,}"
                 + ("" if self.month_target == self.settings.monthly_target else
                    f" (monthly target {self.settings.monthly_target:,}, counted from the lab's first image "
                    f"on {_short(self.target_from)})" if self.target_from else "")]
        if self.month_target:
            parts.append(f"{abs(self.ahead):,} {'ahead of' if self.ahead >= 0 else 'behind'} the target to date "
                         f"({self.month_target_to_date:,})")
        if self.month_end_projection is not None:
            parts.append(f"projected month end {self.month_end_projection:,}"
                         + (f" ({self.month_end_projection / self.month_target:.0%} of target)" if self.month_target else ""))
        parts.append(f"rate {self.rate.basis}")
        return " · ".join(parts)


def _month_bounds(month: str) -> tuple[date, date]:
    try:
        first = date.fromisoformat(f"{month}-01")
    except ValueError:
        raise XLabError(f"a month looks like 2026-11, not '{month}'") from None
    return first, first.replace(day=calendar.monthrange(first.year, first.month)[1])


def _recent_rate(per_day: dict[str, int], today: date, share: float, start: date | None,
                 settings: ProductionSettings) -> Rate:
    """The rate over the last RECENT_WORKING_DAYS working days up to today, none
    before the lab's first image; today weighs the share of its hours gone by."""
    if start is None or start > today:
        return Rate(None, 0, 0.0, 0, None, None, None)
    days: list[date] = []
    weight, today_share = 0.0, None
    today_images = per_day.get(today.isoformat(), 0)
    if settings.is_working(today) or today_images:
        if share > 0 or today_images:
            # at least an hour's worth: a few early images do not make a huge rate
            hours = settings.working_hours[1] - settings.working_hours[0]
            today_share = max(share, 1.0 / hours) if share < 1.0 else 1.0
            days.append(today)
            weight += today_share
    full = 0
    day = today - timedelta(days=1)
    while full < RECENT_WORKING_DAYS - (1 if days else 0) and day >= start:
        if settings.is_working(day):
            days.append(day)
            weight += 1.0
            full += 1
        day -= timedelta(days=1)
    if not days or weight <= 0:
        return Rate(None, 0, 0.0, 0, None, None, None)
    images = sum(per_day.get(d.isoformat(), 0) for d in days)
    full_days = [d for d in days if d != today]
    return Rate(images / weight, images, weight, full, min(days), max(days), today_share,
                max(full_days) if full_days else None, tuple(sorted(days)))


def _eta(remaining: float, rate: float, today: date, share: float, settings: ProductionSettings) -> tuple[float, date]:
    """Working days needed and the day the work is done, today's remaining hours first."""
    days = remaining / rate
    left = days - ((1.0 - share) if settings.is_working(today) else 0.0)
    day = today
    while left > 1e-9:
        day += timedelta(days=1)
        if settings.is_working(day):
            left -= 1.0
    return days, day


def production(catalog: Catalog, status: QuotaStatus | None, month: str | None = None,
               today: date | None = None, now: datetime | None = None) -> Production:
    """The month's production (default: this month) and forecasts from the quota status.

    ``now`` (default: the clock) says how much of today's working hours are gone;
    a ``today`` other than now's date is taken as over."""
    now = now or datetime.now()
    today = today or now.date()
    settings = production_settings(catalog)
    share = settings.elapsed(now) if today == now.date() else 1.0  # a day other than now's is over
    first, last = _month_bounds(month or today.strftime("%Y-%m"))
    start_text = sql.first_production_day(catalog)
    start = date.fromisoformat(start_text) if start_text else None
    recent_from = today - timedelta(days=RECENT_WORKING_DAYS * 7 // max(1, len(settings.working_days)) + 7)
    lo = min(first, recent_from).isoformat()
    rows = sql.production_by(catalog, lo, max(last, today).isoformat())
    outcomes = sql.ingest_outcomes_by_day(catalog, first.isoformat(), last.isoformat())

    per_day: dict[str, int] = defaultdict(int)
    scanner_tot: dict[tuple, int] = defaultdict(int)
    station_tot: dict[str, int] = defaultdict(int)
    tech_tot: dict[str, int] = defaultdict(int)
    for day, scanner, station, technician, images in rows:
        per_day[day] += images
        if first.isoformat() <= day <= min(last, today).isoformat():
            scanner_tot[(scanner, station)] += images
            station_tot[station] += images
            tech_tot[technician or "(no session)"] += images
    quarantined: dict[str, int] = defaultdict(int)
    looked_at: dict[str, int] = defaultdict(int)
    for day, outcome, files in outcomes:
        if outcome in ("ingested", "quarantined"):
            looked_at[day] += files
        if outcome == "quarantined":
            quarantined[day] += files

    # The target accrues per working day, from the lab's first image when that
    # falls in this month (a lab that began on the 23rd is not behind for the 1st-22nd);
    # a lab with no images yet accrues from today.
    n_working = sum(1 for k in range((last - first).days + 1) if settings.is_working(first + timedelta(days=k)))
    per_working_day = settings.monthly_target / n_working if n_working else 0.0
    target_from = max(first, start or today)
    days, cumulative, target_cum = [], 0, 0.0
    month_target_to_date = 0.0
    for k in range((last - first).days + 1):
        day = first + timedelta(days=k)
        key = day.isoformat()
        working = settings.is_working(day)
        accrues = working and day >= target_from
        future = day > today
        if accrues and day == today:
            month_target_to_date = target_cum + per_working_day * share
        target_cum += per_working_day if accrues else 0.0
        if not future:
            cumulative += per_day.get(key, 0)
            if day < today:
                month_target_to_date = target_cum
        days.append({"day": key, "images": None if future else per_day.get(key, 0),
                     "cumulative": None if future else cumulative,
                     "target_cumulative": round(target_cum), "working": working, "today": day == today,
                     "quarantined": None if future else quarantined.get(key, 0),
                     "quarantine_rate": None if future else
                     (quarantined.get(key, 0) / looked_at[key] if looked_at.get(key) else 0.0)})
    month_target = round(target_cum)

    rate = _recent_rate(per_day, today, share, start, settings)
    projection = None
    if first <= today <= last and rate.per_working_day is not None:
        rest = sum(1 for d in days if d["working"] and d["day"] > today.isoformat())
        rest += (1.0 - share) if settings.is_working(today) else 0.0
        projection = round(cumulative + rate.per_working_day * rest)
    forecasts = (_forecasts(catalog, status, rate, today, share, settings) if status is not None else [])

    def ranked(totals: dict, names: tuple[str, ...]) -> list[dict]:
        out = [dict(zip(names, k if isinstance(k, tuple) else (k,)), images=v) for k, v in totals.items()]
        return sorted(out, key=lambda r: (-r["images"], tuple(str(r[n]) for n in names)))

    return Production(first.strftime("%Y-%m"), settings, days, ranked(scanner_tot, ("scanner", "station")),
                      ranked(station_tot, ("station",)), ranked(tech_tot, ("technician",)), cumulative,
                      round(month_target_to_date), rate.per_working_day or 0.0, forecasts, rate, month_target,
                      target_from if start is not None else None, projection, start)


def _forecasts(catalog: Catalog, status: QuotaStatus, rate: Rate, today: date, share: float,
               settings: ProductionSettings) -> list[Forecast]:
    totals = status.totals()
    ips = status.images_per_setup

    def forecast(what: str, remaining: int, per_day: float | None, basis: str) -> Forecast:
        if remaining <= 0:
            return Forecast(what, 0, 0.0, today, per_day, basis)
        if not per_day:
            return Forecast(what, remaining, None, None, per_day, basis)
        days, eta = _eta(remaining, per_day, today, share, settings)
        return Forecast(what, remaining, days, eta, per_day, basis)

    lab_basis = rate.basis
    test_left = (totals["test_target"] - totals["test_done"]) * ips
    out = [forecast("test set complete", test_left, rate.per_working_day, lab_basis)]
    for k in RATIO_STEPS:
        train_left = max(0, k * totals["test_target"] - totals["train_done"]) * ips
        out.append(forecast(f"ratio step {k}:1 (test set + train at {k}x)", test_left + train_left,
                            rate.per_working_day, lab_basis))
    # Each class at its own recent rate of test images.
    recent: dict[str, int] = defaultdict(int)
    if rate.first is not None and rate.last is not None:
        basis_days = {d.isoformat() for d in rate.days}
        for day, name, split, n in sql.class_split_images(catalog, rate.first.isoformat(), rate.last.isoformat()):
            if split == "test" and day in basis_days:
                recent["clean bags" if name == "(clean)" else name] += n
    per_class = []
    for entry in status.by_class():
        name = "clean bags" if entry["class_name"] == "(clean)" else entry["class_name"]
        left = (entry["test_target"] - entry["test_done"]) * ips
        if not entry["test_target"]:
            continue
        per_day = recent[name] / rate.working_days if rate.working_days else None
        basis = (f"{per_day:,.1f} test images/working day of {name} over the same days: {recent[name]:,} images"
                 if per_day else f"no test images of {name} in the recent working days")
        per_class.append(forecast(f"test set of {name}", left, per_day, basis))
    per_class.sort(key=lambda f: (f.eta is None, f.eta or today, f.what))
    return out + per_class
