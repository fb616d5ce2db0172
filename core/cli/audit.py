"""``xlab audit``: the audit log — list with filters, one object's history, one
entry in full, export to CSV/Excel, and the tamper check of its hash chain.

``--by U`` filters the entries made by U (``--user``, shared by every command, signs in).
"""

from __future__ import annotations

import argparse
import json

from core.cli.common import Common, open_lab
from core.cli.output import Column, ident, print_json, print_table, say, when

LIST_COLUMNS = (
    Column("id", "ID", ident),
    Column("at", "When", when),
    Column("actor", "User"),
    Column("action", "Action"),
    Column("entity", "Object"),
    Column("entity_key", "Key", wrap=True),
    Column("change", "Change", wrap=True),
)


def _filter(args: argparse.Namespace):
    from core.audit.log import AuditFilter

    return AuditFilter(user=args.by, entity=args.entity, key=args.key, action=args.action, since=args.since,
                       until=args.until)


def _print_entries(args: argparse.Namespace, rows: list[dict]) -> None:
    if args.json:
        print_json(rows)
    else:
        print_table(rows, LIST_COLUMNS)


def cmd_list(args: argparse.Namespace) -> int:
    from core.audit.log import entries

    with open_lab(args) as lab:
        rows = entries(lab.catalog, _filter(args), args.limit, before_id=args.before)
    _print_entries(args, rows)
    if not args.json and len(rows) == args.limit:
        say(f"newest {args.limit} shown; older ones: --before {rows[-1]['id']}")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from core.audit.log import history

    with open_lab(args) as lab:
        rows = history(lab.catalog, args.entity_name, args.object_key)
    _print_entries(args, rows)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from core.audit.log import entry

    with open_lab(args) as lab:
        row = entry(lab.catalog, args.id)
    if args.json:
        print_json(row)
        return 0
    print(f"entry {row['id']}: {row['actor']} {row['action']} {row['entity']} {row['entity_key']!r} at {when(row['at'])}")
    for side in ("before", "after"):
        print(f"{side}:")
        print(json.dumps(row[side], indent=1, ensure_ascii=False, default=str) if row[side] is not None else " (none)")
    print(f"hash: {row['hash'] or '(none)'}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from core.audit.log import export
    from core.cli.progress import drive_to_result

    with open_lab(args) as lab:
        report = drive_to_result(export(lab.catalog, _filter(args), args.output), args.quiet)
    print(f"wrote {report.entries:,} entries to {report.path}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from core.audit.chain import verify_chain
    from core.cli.progress import drive_to_result

    with open_lab(args) as lab:
        report = drive_to_result(verify_chain(lab.catalog), args.quiet or args.json)
    if args.json:
        print_json(report.as_json())
    else:
        print(report.summary())
        for b in report.breaks[1:]:
            print(f"  entry {b.entry_id}: {b.problem}")
        if report.more_breaks:
            print(f"  … and {report.more_breaks} more")
    return 0 if report.ok else 1


def _add_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--by", metavar="USER", help="only the entries made by this user")
    p.add_argument("--entity", metavar="OBJECT",
                   help="kind of object: images, annotations, threat_classes (or class), quota_plan, quota_cell, ...")
    p.add_argument("--key", metavar="KEY", help="the object's id or name, as listed in the Key column")
    p.add_argument("--action", metavar="ACTION", help="create, update, publish, review, ...")
    p.add_argument("--since", metavar="DATE", help="from this date or date-time (local time), included")
    p.add_argument("--until", metavar="DATE", help="up to this date (the whole day) or date-time, included")


def register(subparsers: argparse._SubParsersAction, common: Common) -> None:
    group = subparsers.add_parser("audit", parents=[common.anywhere])
    actions = group.add_subparsers(dest="audit_command", required=True, metavar="ACTION")

    p = actions.add_parser("list", parents=[common.lab, common.json], help="entries, newest first, with filters (--by U: those made by U)")
    _add_filters(p)
    p.add_argument("--limit", type=int, default=50, metavar="N")
    p.add_argument("--before", type=int, metavar="ID", help="only entries older than this one (the next page)")
    p.set_defaults(func=cmd_list)

    p = actions.add_parser("history", parents=[common.lab, common.json],
                           help="every change to one object, oldest first (an image with its boxes, a class under "
                                "all its names, a quota plan's versions and cells)")
    p.add_argument("entity_name", metavar="OBJECT", help="images, annotations, class, quota_plan, quota_cell, ...")
    p.add_argument("object_key", metavar="KEY", help="its id or name")
    p.set_defaults(func=cmd_history)

    p = actions.add_parser("show", parents=[common.lab, common.json], help="one entry, before and after in full")
    p.add_argument("id", type=int)
    p.set_defaults(func=cmd_show)

    p = actions.add_parser("export", parents=[common.lab, common.quiet],
                           help="write the entries (with filters; --by U: those made by U) to CSV or Excel, oldest first")
    _add_filters(p)
    p.add_argument("-o", "--output", required=True, metavar="FILE.csv|FILE.xlsx")
    p.set_defaults(func=cmd_export)

    p = actions.add_parser("verify", parents=[common.lab, common.json, common.quiet],
                           help="recompute the hash chain: exit 1 naming the first entry changed, removed or added "
                                "behind XLab's back")
    p.set_defaults(func=cmd_verify)
