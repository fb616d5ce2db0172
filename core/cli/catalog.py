"""``xlab catalog``: move a lab's catalog onto the lab's PostgreSQL server, or take a
server catalog back into one SQLite file (an offline copy, a support case)."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.cli.common import Common
from core.cli.output import print_json


def cmd_migrate_to(args: argparse.Namespace) -> int:
    from core.cli.progress import drive_to_result
    from core.lab import move_catalog_to_server

    report = drive_to_result(move_catalog_to_server(args.lab, args.url), args.quiet or args.json)
    if args.json:
        print_json({"ok": report.ok, "counts": report.counts, "mismatches": report.mismatches})
    else:
        print(report.summary())
        if report.ok:
            print("the lab folder now names the server; its old catalog file is kept beside it, renamed "
                  "(nothing writes to it any more)")
    return 0 if report.ok else 1


def cmd_export_sqlite(args: argparse.Namespace) -> int:
    from core.catalog.transfer import export_to_sqlite
    from core.cli.progress import drive_to_result
    from core.errors import CatalogError
    from core.lab import LabPaths, default_lab_dir

    paths = LabPaths(Path(args.lab) if args.lab else default_lab_dir())
    target = paths.catalog_target()
    if not isinstance(target, str):
        raise CatalogError(f"the lab at {paths.root} keeps its catalog in a file already ({target}); "
                           "copy it with 'xlab backup'")
    report = drive_to_result(export_to_sqlite(target, args.output), args.quiet or args.json)
    if args.json:
        print_json({"ok": report.ok, "file": str(args.output), "counts": report.counts,
                    "mismatches": report.mismatches})
    else:
        print(report.summary())
    return 0 if report.ok else 1


def register(subparsers: argparse._SubParsersAction, common: Common) -> None:
    group = subparsers.add_parser("catalog", parents=[common.anywhere],
                                  help="move the catalog between a file and the lab's server")
    commands = group.add_subparsers(dest="catalog_command", required=True, metavar="COMMAND")
    p = commands.add_parser("migrate-to", parents=[common.lab, common.json, common.quiet],
                            help="copy this lab's catalog file into a new database on the server and use it "
                                 "from now on (all history and the audit log; every table compared)")
    p.add_argument("url", metavar="URL", help="postgresql://USER@HOST[:PORT]/DATABASE, a new empty database "
                                              "(no password in it: PGPASSWORD or libpq's password file)")
    p.set_defaults(func=cmd_migrate_to, command_path=("catalog", "migrate-to"))
    p = commands.add_parser("export-sqlite", parents=[common.lab, common.json, common.quiet],
                            help="copy the server catalog, as of one moment, into a new SQLite file")
    p.add_argument("output", metavar="FILE", help="the new file (must not exist)")
    p.set_defaults(func=cmd_export_sqlite, command_path=("catalog", "export-sqlite"))
