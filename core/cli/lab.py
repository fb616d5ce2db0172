"""The lab itself: ``init``, ``demo``, ``gui``, ``simulate``, ``sizing``, ``settings``."""

from __future__ import annotations

import argparse

from core.cli.common import Common, open_lab
from core.cli.output import print_json
from core.cli.progress import drive
from core.errors import XLabError


def cmd_init(args: argparse.Namespace) -> int:
    from core.lab import Lab

    with Lab.init(args.lab, catalog=args.catalog) as lab:
        applied = lab.catalog.applied_migrations()
        print(f"lab ready at {lab.paths.root}, catalog {lab.catalog.where} "
              f"(schema: {applied[-1] if applied else 'empty'})")
    return 0


def cmd_sizing(args: argparse.Namespace) -> int:
    from core.quota.sizing import size_kpi

    result = size_kpi(args.rate, args.half_width, args.confidence, args.method, args.misses)
    if args.json:
        print_json({"required": result.required, "normal_approximation": result.normal_approximation,
                    "interval_at_required": result.interval_at_required, "basis": result.basis()})
    else:
        print(f"{result.required} independent setups — {result.basis()}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from core.simulator.scanner import simulate

    with open_lab(args) as lab:
        drive(simulate(lab, args.scanner, args.count or None, rate_per_minute=args.rate, fmt=args.format,
                       write_mode=args.write_mode, seed=args.seed, clean_fraction=args.clean_fraction), args.quiet)
    return 0


def cmd_settings(args: argparse.Namespace) -> int:
    from core.dashboard.production import WEEKDAYS, production_settings, set_production_settings

    with open_lab(args) as lab:
        if args.monthly_target is not None or args.working_days is not None:
            days = args.working_days.split(",") if args.working_days is not None else None
            settings = set_production_settings(lab.catalog, monthly_target=args.monthly_target, working_days=days,
                                               actor=args.user)
        else:
            settings = production_settings(lab.catalog)
        from core.backup.schedule import backup_schedule, set_backup_schedule

        if args.backup_every_hours is not None or args.backup_dest is not None:
            set_backup_schedule(lab.catalog, every_hours=args.backup_every_hours, dest=args.backup_dest,
                                actor=args.user)
        backup = backup_schedule(lab.catalog).describe()
        from core.runs.loop import ratio_cap, set_ratio_cap

        if args.ratio_cap is not None:
            set_ratio_cap(lab, args.ratio_cap, args.user)
        cap = ratio_cap(lab)
    print(f"ratio cap: {cap}:1 (the loop proposes no ratio step above it)")
    print(f"monthly target: {settings.monthly_target:,} images; working days: "
          f"{','.join(WEEKDAYS[d] for d in settings.working_days)}")
    print(backup)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from core.demo import create_demo_lab, run_demo_scanners
    from core.errors import IngestRunningError
    from core.ingest.lock import describe_owners, lab_ingest_owners

    lab = create_demo_lab(args.lab, starter_datasets=not args.no_datasets,
                          starter_run=not args.no_datasets and not args.no_run)
    root = lab.paths.root
    print(f"demo lab ready at {root}")
    if args.headless or args.open_window is None:
        owners = lab_ingest_owners(lab)
        if owners:
            lab.close()
            raise IngestRunningError(owners, describe_owners(owners))
        try:
            drive(run_demo_scanners(lab, args.rate, args.count, with_ingest=True), args.quiet)
        finally:
            lab.close()
        return 0
    lab.close()
    args.lab = str(root)
    args.simulate = True
    return args.open_window(args)


def cmd_gui(args: argparse.Namespace) -> int:
    if args.open_window is None:
        raise XLabError("this XLab was installed without the window; use the headless commands")
    return args.open_window(args)


def register(subparsers: argparse._SubParsersAction, common: Common) -> None:
    p = subparsers.add_parser("init", parents=[common.lab])
    p.add_argument("--catalog", metavar="URL",
                   help="keep the catalog on the lab's PostgreSQL server: postgresql://USER@HOST[:PORT]/DATABASE "
                        "(the lab folder, on a share every station mounts, holds the store and this address)")
    p.set_defaults(func=cmd_init)

    p = subparsers.add_parser("sizing", parents=[common.json])
    p.add_argument("--rate", type=float, required=True, help="target detection (or false-alarm) rate")
    p.add_argument("--half-width", type=float, default=0.03)
    p.add_argument("--confidence", type=float, default=0.95)
    p.add_argument("--method", choices=("wilson", "demonstration"), default="wilson")
    p.add_argument("--misses", type=int, default=0, help="misses allowed (demonstration)")
    p.set_defaults(func=cmd_sizing)

    p = subparsers.add_parser("simulate", parents=[common.lab, common.quiet])
    p.add_argument("--scanner", required=True)
    p.add_argument("--count", type=int, default=10, help="files to write (0: until Ctrl-C)")
    p.add_argument("--rate", type=float, default=60.0, help="images per minute (0: as fast as possible)")
    p.add_argument("--format", choices=("png16", "tiff16", "pseudo_png", "dicos"), default="png16",
                   help="dicos: a DICOS DX radiograph, plus a ground-truth TDR when a threat is in the bag")
    p.add_argument("--write-mode", choices=("rename", "slow"), default="rename")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--clean-fraction", type=float, default=0.2)
    p.set_defaults(func=cmd_simulate)

    p = subparsers.add_parser("settings", parents=[common.lab])
    p.add_argument("--monthly-target", type=int, metavar="IMAGES")
    p.add_argument("--working-days", metavar="mon,tue,...")
    p.add_argument("--ratio-cap", type=int, metavar="K", help="highest train:test ratio step the loop proposes (1-20)")
    p.add_argument("--backup-every-hours", type=int, metavar="N",
                   help="back the lab up every N hours (0: no scheduled backup); the window runs it when due, "
                        "or run 'xlab backup --if-due' hourly from the system's scheduler")
    p.add_argument("--backup-dest", metavar="DIR", help="the scheduled backup's folder")
    p.set_defaults(func=cmd_settings)

    p = subparsers.add_parser("demo", parents=[common.lab, common.quiet])
    p.add_argument("--headless", action="store_true", help="no window: run the scanners in this terminal")
    p.add_argument("--rate", type=float, default=12.0, help="images per minute per scanner")
    p.add_argument("--count", type=int, default=None, help="stop after this many files (headless)")
    p.add_argument("--no-datasets", action="store_true",
                   help="a new demo lab without its starter batch and frozen demo-test/demo-train")
    p.add_argument("--no-run", action="store_true",
                   help="do not queue the demo's training run on demo-train (queued when training is installed; "
                        "the window's Runs area starts it, or 'xlab run work')")
    p.set_defaults(func=cmd_demo)

    p = subparsers.add_parser("gui", parents=[common.lab])
    p.add_argument("--simulate", action="store_true", help="also run the lab's simulated scanners")
    p.add_argument("--rate", type=float, default=12.0, help="simulated images per minute per scanner")
    p.set_defaults(func=cmd_gui)
