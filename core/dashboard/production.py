"""Production against the monthly target, per scanner, station and technician;
quarantine rate; forecasts of when the test set and each ratio step complete.

Reads the trigger-kept production counters (one row per day, scanner and
technician), never the images table.
"""

from __future__ import annotations

import calendar
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

from core.catalog import dashboard_store as sql
from core.catalog.db import Catalog
from core.errors import XLabError
from core.quota.status import QuotaStatus

DEFAULT_MONTHLY_TARGET = 130_000
DEFAULT_WORKING_DAYS = (0, 1, 2, 3, 4)  # Monday..Friday
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
RECENT_WORKING_DAYS = 10  # the rate a forecast extrapolates
RATIO_STEPS = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class ProductionSettings:
    monthly_target: int = DEFAULT_MONTHLY_TARGET
    working_days: tuple[int, ...] = DEFAULT_WORKING_DAYS

    def is_working(self, day: date) -> bool:
        return day.weekday() in self.working_days


def production_settings(catalog: Catalog) -> ProductionSettings:
    values = sql.settings(catalog)
    return ProductionSettings(int(values.get("monthly_target", DEFAULT_MONTHLY_TARGET)),
                              tuple(values.get("working_days", DEFAULT_WORKING_DAYS)))


def set_production_settings(catalog: Catalog, *, monthly_target: int | None = None,
                            working_days: list[str] | None = None, actor: str | None = None) -> ProductionSettings:
    """Change the monthly target and/or the working days (names: mon..sun); audited."""
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
    with catalog.write(actor) as txn:
        for key, value in changes.items():
            before = sql.set_setting(txn, key, value)
            txn.audit("set", "lab_settings", key, before, value)
    return production_settings(catalog)


@dataclass(frozen=True)
class Forecast:
    what: str
    remaining_images: int
    working_days: float | None  # None: nothing produced recently, no forecast
    eta: date | None


@dataclass(frozen=True)
class Production:
    month: str  # YYYY-MM
    settings: ProductionSettings
    days: list[dict]  # day, images, cumulative, target_cumulative, working, quarantined, quarantine_rate
    by_scanner: list[dict]
    by_station: list[dict]
    by_technician: list[dict]
    month_images: int
    month_target_to_date: int
    recent_rate: float  # images per working day over the recent working days
    forecasts: list[Forecast]

    @property
    def month_working_days(self) -> int:
        return sum(1 for d in self.days if d["working"])


def _month_bounds(month: str) -> tuple[date, date]:
    try:
        first = date.fromisoformat(f"{month}-01")
    except ValueError:
        raise XLabError(f"a month looks like 2026-11, not '{month}'") from None
    return first, first.replace(day=calendar.monthrange(first.year, first.month)[1])


def _add_working_days(start: date, n: float, settings: ProductionSettings) -> date:
    day, left = start, math.ceil(n)
    while left > 0:
        day += timedelta(days=1)
        if settings.is_working(day):
            left -= 1
    return day


def production(catalog: Catalog, status: QuotaStatus | None, month: str | None = None,
               today: date | None = None) -> Production:
    """The month's production (default: this month) and forecasts from the quota status."""
    today = today or date.today()
    settings = production_settings(catalog)
    first, last = _month_bounds(month or today.strftime("%Y-%m"))
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
        if first.isoformat() <= day <= last.isoformat():
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

    n_working = sum(1 for k in range((last - first).days + 1) if settings.is_working(first + timedelta(days=k)))
    per_working_day = settings.monthly_target / n_working if n_working else 0.0
    days, cumulative, target_cum = [], 0, 0.0
    for k in range((last - first).days + 1):
        day = first + timedelta(days=k)
        key = day.isoformat()
        working = settings.is_working(day)
        cumulative += per_day.get(key, 0)
        target_cum += per_working_day if working else 0.0
        days.append({"day": key, "images": per_day.get(key, 0), "cumulative": cumulative,
                     "target_cumulative": round(target_cum), "working": working,
                     "quarantined": quarantined.get(key, 0),
                     "quarantine_rate": quarantined.get(key, 0) / looked_at[key] if looked_at.get(key) else 0.0})
    to_date = [d for d in days if d["day"] <= today.isoformat()]
    month_target_to_date = to_date[-1]["target_cumulative"] if to_date else 0

    # Recent rate: the last RECENT_WORKING_DAYS working days before today (today is not over).
    recent, day = [], today - timedelta(days=1)
    while len(recent) < RECENT_WORKING_DAYS and day >= date.fromisoformat(lo):
        if settings.is_working(day):
            recent.append(per_day.get(day.isoformat(), 0))
        day -= timedelta(days=1)
    rate = sum(recent) / len(recent) if recent else 0.0
    forecasts = _forecasts(status, rate, today, settings) if status is not None else []

    def ranked(totals: dict, names: tuple[str, ...]) -> list[dict]:
        out = [dict(zip(names, k if isinstance(k, tuple) else (k,)), images=v) for k, v in totals.items()]
        return sorted(out, key=lambda r: (-r["images"], tuple(str(r[n]) for n in names)))

    return Production(first.strftime("%Y-%m"), settings, days, ranked(scanner_tot, ("scanner", "station")),
                      ranked(station_tot, ("station",)), ranked(tech_tot, ("technician",)), cumulative,
                      month_target_to_date, rate, forecasts)


def _forecasts(status: QuotaStatus, rate: float, today: date, settings: ProductionSettings) -> list[Forecast]:
    totals = status.totals()
    ips = status.images_per_setup
    test_left = (totals["test_target"] - totals["test_done"]) * ips
    out = []

    def forecast(what: str, remaining: int) -> Forecast:
        if remaining <= 0:
            return Forecast(what, 0, 0.0, today)
        if rate <= 0:
            return Forecast(what, remaining, None, None)
        days = remaining / rate
        return Forecast(what, remaining, days, _add_working_days(today, days, settings))

    out.append(forecast("test set complete", test_left))
    for k in RATIO_STEPS:
        train_left = max(0, k * totals["test_target"] - totals["train_done"]) * ips
        out.append(forecast(f"ratio step {k}:1 (test set + train at {k}x)", test_left + train_left))
    return out
