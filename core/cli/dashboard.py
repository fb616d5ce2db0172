"""The manager's views: ``xlab dashboard`` (heatmap, production, classes),
``xlab report`` (the weekly PDF) and ``xlab kpi`` (per-class KPI results)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from core.cli.common import Common, open_lab
from core.cli.output import Column, count, emit, ident, percent, say, words, yes

# The heatmap's first two columns are its two dimensions, named as the user chose them.
DIMENSION_LABELS = {"class": "Class", "luggage_type": "Luggage type", "clutter": "Clutter",
                    "scanner_model": "Scanner model", "pose": "Pose"}
HEATMAP_VALUE_COLUMNS = (
    Column("target", "Target", count),
    Column("done", "Done", count),
    Column("deficit", "Deficit", count),
    Column("fill", "Fill", percent),
    Column("images", "Images", count),
)


def ratio(value: Any) -> str:
    """Train setups per test setup, as the ratio steps are written: "1.5:1"."""
    return "" if value is None else f"{value:.1f}:1"


def step(value: Any) -> str:
    return "" if value is None else f"{value}:1"


# The terminal shows the columns that decide; --json and --export have them all
# (core.dashboard.classes.COLUMNS), with the interval and the run.
CLASS_COLUMNS = (
    Column("class_name", "Class"),
    Column("test_fill", "Test fill", percent),
    Column("ratio", "Ratio", ratio, right=True),
    Column("ratio_step", "Step", step, right=True),
    Column("detection_rate", "Detection", percent),
    Column("dr_target", "Detection target", percent),
    Column("false_alarm_rate", "False alarms", percent),
    Column("far_max", "False alarm max", percent),
    Column("verdict", "Verdict", wrap=True),
    Column("blocks", "Blocks", yes),
)

PRODUCTION_COLUMNS = {
    "days": (
        Column("day", "Day"),
        Column("images", "Images", count),
        Column("cumulative", "Cumulative", count),
        Column("target_cumulative", "Target to date", count),
        Column("working", "Working day", yes),
        Column("today", "Today", yes),
        Column("quarantined", "Quarantined", count),
        Column("quarantine_rate", "Quarantine rate", percent),
    ),
    "scanners": (Column("scanner", "Scanner"), Column("station", "Station"), Column("images", "Images", count)),
    "stations": (Column("station", "Station"), Column("images", "Images", count)),
    "technicians": (Column("technician", "Technician"), Column("images", "Images", count)),
    "forecasts": (
        Column("what", "Milestone", wrap=True),
        Column("remaining_images", "Images to go", count),
        Column("working_days", "Working days", count),
        Column("eta", "Expected"),
    ),
}

KPI_COLUMNS = (
    Column("id", "ID", ident),
    Column("class_name", "Class"),
    Column("run_label", "Run"),
    Column("evaluated_at", "Evaluated"),
    Column("positives", "Positives", count),
    Column("detected", "Detected", count),
    Column("negatives", "Negatives", count),
    Column("false_alarms", "False alarms", count),
    Column("ratio_step", "Step", step, right=True),
    Column("source", "Source", words),
    Column("recorded_by", "Recorded by"),
)


def _where(pairs: Sequence[str]) -> dict[str, list[str]]:
    from core.errors import XLabError

    where: dict[str, list[str]] = {}
    for pair in pairs:
        key, sep, values = pair.partition("=")
        if not sep or not values:
            raise XLabError(f"--where wants DIMENSION=VALUE[,VALUE...], not '{pair}'")
        where.setdefault(key, []).extend(v for v in values.split(",") if v)
    return where


def _export_or_print(args: argparse.Namespace, rows: list[dict], columns: Sequence[Column],
                     export_columns: Sequence[str] | None = None) -> None:
    if args.export:
        from core.dashboard.export import export_table

        print(f"wrote {export_table(rows, args.export, export_columns)}")
    else:
        emit(args, rows, rows, columns)


def cmd_dashboard(args: argparse.Namespace) -> int:
    from core.quota.plans import resolve_plan
    from core.quota.status import quota_status

    with open_lab(args) as lab:
        plan = resolve_plan(lab.catalog, args.plan)
        status = quota_status(lab.catalog, plan["id"])
        if args.view == "heatmap":
            from core.dashboard.heatmap import quota_heatmap

            heat = quota_heatmap(status, args.rows, args.cols, args.split, _where(args.where))
            columns = (Column(heat.rows_dim, DIMENSION_LABELS.get(heat.rows_dim, words(heat.rows_dim))),
                       Column(heat.cols_dim, DIMENSION_LABELS.get(heat.cols_dim, words(heat.cols_dim))),
                       *HEATMAP_VALUE_COLUMNS)
            _export_or_print(args, heat.as_rows(), columns)
            done, target = heat.totals()
            if not args.json and not args.export:
                print()
                say(f"{heat.split}: {done:,} of {target:,} setups")
        elif args.view == "classes":
            from core.dashboard.classes import COLUMNS, class_progress

            rows = class_progress(lab.catalog, status)
            if args.blocking:
                rows = [r for r in rows if r["blocks"]]
            _export_or_print(args, rows, CLASS_COLUMNS, COLUMNS)
        else:
            from core.dashboard.production import production

            prod = production(lab.catalog, status, args.month)
            table = {"days": prod.days, "scanners": prod.by_scanner, "stations": prod.by_station,
                     "technicians": prod.by_technician,
                     "forecasts": [{"what": f.what, "remaining_images": f.remaining_images,
                                    "working_days": None if f.working_days is None else round(f.working_days, 1),
                                    "eta": f.eta} for f in prod.forecasts]}[args.table]
            _export_or_print(args, table, PRODUCTION_COLUMNS[args.table])
            if not args.json and not args.export:
                from core.backup.schedule import backup_schedule

                print()
                say(prod.summary())
                say(backup_schedule(lab.catalog).describe())
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from core.dashboard.export import write_report

    with open_lab(args) as lab:
        path = write_report(lab, args.output, plan=args.plan, month=args.month, rows=args.rows, cols=args.cols)
    print(f"wrote {path}")
    return 0


def cmd_kpi_import(args: argparse.Namespace) -> int:
    from core.dashboard.classes import import_kpi_results

    with open_lab(args) as lab:
        n = import_kpi_results(lab.catalog, args.file, actor=args.user)
    print(f"recorded {n} result(s)")
    return 0


def cmd_kpi_list(args: argparse.Namespace) -> int:
    from core.dashboard.classes import kpi_results

    with open_lab(args) as lab:
        rows = kpi_results(lab.catalog)
    emit(args, rows, rows, KPI_COLUMNS)
    return 0


def register(subparsers: argparse._SubParsersAction, common: Common) -> None:
    group = subparsers.add_parser("dashboard", parents=[common.anywhere])
    views = group.add_subparsers(dest="view", required=True, metavar="VIEW")
    shared = [common.lab, common.json]
    p = views.add_parser("heatmap", parents=shared, help="quota fill for two dimensions, the others as filters")
    p.add_argument("--rows", default="class", help="class, luggage_type, clutter, scanner_model or pose")
    p.add_argument("--cols", default="luggage_type")
    p.add_argument("--split", choices=["test", "train"], default="test")
    p.add_argument("--where", action="append", default=[], metavar="DIM=V[,V]", help="filter (repeatable)")
    p2 = views.add_parser("production", parents=shared,
                          help="images per day, per scanner, station, technician; forecasts")
    p2.add_argument("--month", metavar="YYYY-MM")
    p2.add_argument("--table", choices=list(PRODUCTION_COLUMNS), default="days")
    p3 = views.add_parser("classes", parents=shared, help="per-class ratio progress against the KPIs, with verdicts")
    p3.add_argument("--blocking", action="store_true", help="only classes that block the next model")
    for p in (p, p2, p3):
        p.add_argument("--plan", metavar="NAME", help="quota plan (default: the newest published)")
        p.add_argument("--export", metavar="FILE", help="write the table as .csv or .xlsx")
        p.set_defaults(func=cmd_dashboard)

    p = subparsers.add_parser("report", parents=[common.lab])
    p.add_argument("-o", "--output", default="xlab-report.pdf", metavar="FILE.pdf")
    p.add_argument("--plan", metavar="NAME")
    p.add_argument("--month", metavar="YYYY-MM")
    p.add_argument("--rows", default="class")
    p.add_argument("--cols", default="luggage_type")
    p.set_defaults(func=cmd_report)

    group = subparsers.add_parser("kpi", parents=[common.anywhere])
    actions = group.add_subparsers(dest="kpi_command", required=True, metavar="ACTION")
    p = actions.add_parser("import", parents=[common.lab],
                           help="record results of an evaluation done elsewhere (CSV; all or nothing)")
    p.add_argument("file")
    p.set_defaults(func=cmd_kpi_import)
    p = actions.add_parser("list", parents=[common.json, common.lab], help="every recorded result")
    p.set_defaults(func=cmd_kpi_list)
