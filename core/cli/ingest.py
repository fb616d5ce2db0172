"""``xlab ingest`` (import, watch, assign) and ``xlab quarantine`` (list, retry, discard)."""

from __future__ import annotations

import argparse

from core.cli.common import Common, open_lab
from core.cli.output import Column, count, emit, ident, when, words
from core.cli.progress import StatusLine, drive
from core.errors import XLabError

TOTALS_COLUMNS = (
    Column("outcome", "Outcome", words),
    Column("files", "Files", count),
)

QUARANTINE_COLUMNS = (
    Column("id", "ID", ident),
    Column("at", "When", when),
    Column("scanner", "Scanner"),
    Column("status", "Status"),
    Column("reason", "Reason", wrap=True),
    Column("source_path", "Source file", wrap=True),
)


def cmd_import(args: argparse.Namespace) -> int:
    from core.ingest.engine import import_paths
    from core.ingest.log import ingest_logging

    with open_lab(args) as lab:
        ingest_logging(lab)
        totals: dict[str, int] = {}
        # Progress on stderr: stdout keeps the totals (or JSON).
        status = StatusLine(args.quiet)
        try:
            for step in import_paths(lab, args.paths, scanner=args.scanner, workers=args.workers):
                totals = step.totals
                status.update(f"[{step.done}/{step.total}] {step.message}")
        finally:
            status.close()
    emit(args, totals, [{"outcome": k, "files": v} for k, v in sorted(totals.items())], TOTALS_COLUMNS)
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    from core.ingest.engine import watch
    from core.ingest.log import ingest_logging

    with open_lab(args) as lab:
        ingest_logging(lab)
        drive(watch(lab, args.scanner or None, once=args.once, workers=args.workers), args.quiet)
    return 0


def cmd_assign(args: argparse.Namespace) -> int:
    from core.ingest.actions import assign

    with open_lab(args) as lab:
        assign(lab, args.image, args.step, actor=args.user)
    print(f"image #{args.image} assigned to step #{args.step}")
    return 0


def cmd_quarantine_list(args: argparse.Namespace) -> int:
    from core.ingest.actions import list_quarantine

    with open_lab(args) as lab:
        rows = list_quarantine(lab, None if args.all else "held")
    emit(args, rows, rows, QUARANTINE_COLUMNS)
    return 0


def cmd_quarantine_retry(args: argparse.Namespace) -> int:
    from core.ingest.actions import retry

    with open_lab(args) as lab:
        outcome = retry(lab, args.id, accept=args.accept, actor=args.user)
    print(f"quarantined file #{args.id}: {outcome.outcome} (image {outcome.image_id})")
    return 0


def cmd_quarantine_discard(args: argparse.Namespace) -> int:
    from core.ingest.actions import discard

    if not args.yes:
        raise XLabError("discarding needs --yes (the kept copy stays on disk; the audit log records who discarded it)")
    with open_lab(args) as lab:
        discard(lab, args.id, actor=args.user)
    print(f"quarantined file #{args.id}: discarded")
    return 0


def register(subparsers: argparse._SubParsersAction, common: Common) -> None:
    group = subparsers.add_parser("ingest", parents=[common.anywhere])
    actions = group.add_subparsers(dest="action", required=True)
    p = actions.add_parser("import", parents=[common.lab, common.json, common.quiet],
                           help="one-off import of files or folders (recursive); sources are left in place")
    p.add_argument("paths", nargs="+")
    p.add_argument("--scanner", help="scanner that wrote them (enables size and bit-depth checks)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: one per core)")
    p.set_defaults(func=cmd_import)
    p = actions.add_parser("watch", parents=[common.lab, common.quiet],
                           help="ingest what the scanners write into their drop folders, until Ctrl-C")
    p.add_argument("--scanner", action="append", help="only this scanner (repeatable; default: all)")
    p.add_argument("--once", action="store_true", help="stop when the drop folders are empty")
    p.add_argument("--workers", type=int, default=None)
    p.set_defaults(func=cmd_watch)
    p = actions.add_parser("assign", parents=[common.lab],
                           help="give an unassigned image a capture step's class, item, bag, pose, split")
    p.add_argument("image", type=int)
    p.add_argument("--step", type=int, required=True)
    p.set_defaults(func=cmd_assign)

    group = subparsers.add_parser("quarantine", parents=[common.anywhere])
    actions = group.add_subparsers(dest="action", required=True)
    p = actions.add_parser("list", parents=[common.lab, common.json], help="held files (or --all)")
    p.add_argument("--all", action="store_true")
    p.set_defaults(func=cmd_quarantine_list)
    p = actions.add_parser("retry", parents=[common.lab], help="run the checks again on the kept copy")
    p.add_argument("id", type=int)
    p.add_argument("--accept", action="store_true", help="take it despite a size or bit-depth mismatch")
    p.set_defaults(func=cmd_quarantine_retry)
    p = actions.add_parser("discard", parents=[common.lab], help="mark discarded (the copy stays on disk; audited)")
    p.add_argument("id", type=int)
    p.add_argument("--yes", action="store_true")
    p.set_defaults(func=cmd_quarantine_discard)
