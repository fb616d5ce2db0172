"""``xlab inventory import FILE`` / ``export [FILE]``: the lab inventory as YAML."""

from __future__ import annotations

import argparse
import sys

from core.cli.common import Common, open_lab
from core.cli.output import Column, count, emit, words

IMPORT_COLUMNS = (
    Column("section", "Section", words),
    Column("created", "Created", count),
    Column("updated", "Updated", count),
    Column("unchanged", "Unchanged", count),
    Column("not_in_file", "Not in file", count),
)


def cmd_import(args: argparse.Namespace) -> int:
    from core.inventory import import_inventory

    with open_lab(args) as lab:
        report = import_inventory(lab.catalog, args.file, actor=args.user)
    rows = [{"section": name, **vars(r)} for name, r in report.sections.items()]
    emit(args, report.as_dict(), rows, IMPORT_COLUMNS)
    if not args.json:
        print("no changes" if not report.changed else "inventory updated")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from core.inventory import export_inventory

    with open_lab(args) as lab:
        text = export_inventory(lab.catalog)
    if args.file in (None, "-"):
        sys.stdout.write(text)
    else:
        with open(args.file, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"wrote {args.file}")
    return 0


def register(subparsers: argparse._SubParsersAction, common: Common) -> None:
    group = subparsers.add_parser("inventory", parents=[common.anywhere])
    actions = group.add_subparsers(dest="action", required=True)
    p = actions.add_parser("import", parents=[common.lab, common.json],
                           help="create/update inventory from a YAML file (all or nothing)")
    p.add_argument("file")
    p.set_defaults(func=cmd_import)
    p = actions.add_parser("export", parents=[common.lab], help="write the inventory as YAML (stdout or FILE)")
    p.add_argument("file", nargs="?")
    p.set_defaults(func=cmd_export)
