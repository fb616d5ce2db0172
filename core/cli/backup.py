"""``xlab backup``, ``xlab restore``, ``xlab verify``: keep the lab safe and prove it whole."""

from __future__ import annotations

import argparse

from core.cli.common import Common, open_lab
from core.cli.output import print_json


def cmd_backup(args: argparse.Namespace) -> int:
    from core.backup.backup import backup
    from core.backup.schedule import backup_schedule
    from core.cli.progress import drive_to_result
    from core.errors import BackupError

    with open_lab(args) as lab:
        schedule = backup_schedule(lab.catalog)
        if args.if_due and not schedule.due():
            print(f"no backup due: {schedule.describe()}")
            return 0
        dest = args.dest or schedule.dest
        if not dest:
            raise BackupError("name the backup folder (xlab backup DEST), or set one: "
                              "xlab settings --backup-every-hours N --backup-dest DIR")
        report = drive_to_result(backup(lab, dest, link=args.link, actor=args.user), args.quiet or args.json)
    if args.json:
        print_json({"ok": report.ok, "dest": str(report.dest), "at": report.at, "files": report.files,
                    "copied": report.copied, "bytes_copied": report.bytes_copied, "removed": report.removed,
                    "counts": report.counts, "problems": report.problems})
    else:
        print(report.summary())
        for problem in report.problems[1:]:
            print(f"  {problem}")
    return 0 if report.ok else 1


def cmd_restore(args: argparse.Namespace) -> int:
    from core.backup.restore import restore
    from core.cli.progress import drive_to_result

    report = drive_to_result(restore(args.backup, args.target, actor=args.user), args.quiet)
    print(report.summary())
    print(f"open it with: xlab gui --lab {report.root}   (check it with: xlab verify --lab {report.root})")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from core.backup.verify import verify_lab
    from core.cli.progress import drive_to_result

    with open_lab(args) as lab:
        report = drive_to_result(verify_lab(lab), args.quiet or args.json)
    if args.json:
        print_json(report.as_json())
        return 0 if report.ok else 1
    print(report.summary())
    for kind in ("catalog", "missing", "damaged", "extra"):
        for line in getattr(report, kind):
            print(f"  {kind}: {line}")
        listed = len(getattr(report, kind))
        if kind != "catalog" and report.counts[kind] > listed:
            print(f"  … and {report.counts[kind] - listed:,} more {kind}")
    if report.chain is not None:
        for b in report.chain.breaks:
            print(f"  audit: entry {b.entry_id}: {b.problem}")
    return 0 if report.ok else 1


def register(subparsers: argparse._SubParsersAction, common: Common) -> None:
    p = subparsers.add_parser("backup", parents=[common.lab, common.json, common.quiet])
    p.add_argument("dest", nargs="?", metavar="DEST",
                   help="backup folder: new, empty, or an earlier backup of this lab (only changes are copied); "
                        "default: the scheduled backup's folder")
    p.add_argument("--link", action="store_true",
                   help="hard-link store files instead of copying when DEST is on the lab's disk (saves space; "
                        "guards against deletion, not against a failing disk)")
    p.add_argument("--if-due", action="store_true",
                   help="only if the scheduled backup is due (for cron or Task Scheduler, run hourly)")
    p.set_defaults(func=cmd_backup)

    p = subparsers.add_parser("restore", parents=[common.lab, common.quiet])
    p.add_argument("backup", metavar="BACKUP", help="a folder written by 'xlab backup'")
    p.add_argument("target", metavar="NEW_LAB", help="the new lab's folder (must be new or empty)")
    p.set_defaults(func=cmd_restore)

    p = subparsers.add_parser("verify", parents=[common.lab, common.json, common.quiet])
    p.set_defaults(func=cmd_verify)
