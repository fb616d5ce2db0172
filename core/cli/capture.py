"""Capture: ``xlab plan`` (sessions from the quota deficits) and ``xlab session``
(run a session's checklist step by step, print it)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import date

from core.cli.common import Common, open_lab
from core.cli.output import Column, count, emit, ident, print_json, print_table, say
from core.cli.progress import drive_to_result
from core.errors import XLabError

PLAN_COLUMNS = (
    Column("scanner", "Scanner"),
    Column("date", "Date"),
    Column("shift", "Shift", ident),
    Column("steps", "Steps", count),
    Column("images", "Images", count),
    Column("test", "Test setups", count),
    Column("train", "Train setups", count),
)

SESSION_COLUMNS = (
    Column("id", "ID", ident),
    Column("session_date", "Date"),
    Column("shift", "Shift", ident),
    Column("scanner", "Scanner"),
    Column("station", "Station"),
    Column("status", "Status"),
    Column("technician", "Technician"),
    Column("held_by", "Held by"),
    Column("steps", "Steps", count),
    Column("steps_finished", "Finished", count),
    Column("images_wanted", "Images wanted", count),
)

STEP_COLUMNS = (
    Column("id", "Step", ident),
    Column("position", "#", ident),
    Column("status", "Status"),
    Column("split", "Split"),
    Column("bag", "Bag"),
    Column("item", "Item"),
    Column("class_name", "Class"),
    Column("pose", "Pose"),
    Column("images_done", "Done", count),
    Column("images_wanted", "Wanted", count),
    Column("skip_reason", "Skipped", wrap=True),
    Column("flag_reason", "Flag", wrap=True),
)

SKIP_REASONS = ["item_missing", "bag_damaged", "scanner_fault", "other"]


def _rates(pairs: Sequence[str]) -> dict[str, float]:
    rates = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            rates[name] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name:
            raise XLabError(f"--scanner-rate wants SCANNER=IMAGES_PER_HOUR, not '{pair}'")
    return rates


def cmd_plan(args: argparse.Namespace) -> int:
    from core.capture.planner import PlanOptions, plan_captures

    try:
        start = date.fromisoformat(args.start) if args.start else None
    except ValueError:
        raise XLabError(f"--start wants a date like 2026-11-23, not '{args.start}'") from None
    options = PlanOptions(
        quota_plan=args.quota_plan, start=start, shifts=args.shifts, shifts_per_day=args.shifts_per_day,
        weekends=args.weekends, shift_hours=args.shift_hours, rate_per_hour=args.rate, rates=_rates(args.scanner_rate),
        scanners=tuple(args.scanner or ()), splits=("train", "test") if args.train_first else ("test", "train"),
        test_share=args.test_share, dry_run=args.dry_run)
    with open_lab(args) as lab:
        plan = drive_to_result(plan_captures(lab, options, actor=args.user), args.quiet)
    report = plan.report
    if args.json:
        print_json({"capture_plan_id": plan.id, **report})
        return 0
    rows = [{"scanner": s.scanner, "date": s.session_date, "shift": s.shift, "steps": len(s.steps),
             "images": s.images, "test": sum(1 for st in s.steps if st.split == "test"),
             "train": sum(1 for st in s.steps if st.split == "train")} for s in plan.sessions]
    print_table(rows, PLAN_COLUMNS)
    c = report["changeovers"]
    print()
    say(f"{report['quota_plan']}: {report['sessions']:,} sessions, {report['steps']:,} steps, "
        f"{report['images']:,} images (test {report['setups_by_split']['test']:,}, "
        f"train {report['setups_by_split']['train']:,} setups)")
    say(f"changeovers: {c['repacks']:,} repacks, {c['item_swaps']:,} item swaps, {c['pose_changes']:,} pose changes;"
        f" weighted cost {c['cost']:,} (lower bound {c['lower_bound']:,})")
    if report["unscheduled_setups"]:
        say(f"beyond {args.shifts} shift(s): {report['unscheduled_setups']:,} setups wait for later shifts")
    if report["unplannable_setups"]:
        say(f"cannot plan {report['unplannable_setups']:,} setups in {len(report['unplannable']):,} cells "
            "(no unused item x bag left in the split's pool; add items or bags); see --json")
    if args.dry_run:
        print("dry run: nothing saved")
    return 0


def _technician(args: argparse.Namespace) -> str:
    from core.catalog.db import current_actor

    return args.technician or args.user or current_actor()


def cmd_session_list(args: argparse.Namespace) -> int:
    from core.capture.sessions import list_sessions

    with open_lab(args) as lab:
        rows = list_sessions(lab, args.day, args.scanner)
    emit(args, rows, rows, SESSION_COLUMNS)
    return 0


def cmd_session_show(args: argparse.Namespace) -> int:
    from core.capture.sessions import session_view

    with open_lab(args) as lab:
        view = session_view(lab, args.id)
    if args.json:
        print_json({"session": view.session, "steps": view.steps, "waiting": view.waiting})
        return 0
    s = view.session
    say(f"session #{s['id']} · {s['scanner']} ({s['station']}) · {s['session_date']} shift {s['shift']} · "
        f"{s['status']} · technician {s['technician'] or '-'} · {view.images_done:,}/{view.images_wanted:,} images")
    print_table(view.steps, STEP_COLUMNS)
    if view.waiting:
        say(f"{len(view.waiting)} image(s) arrived before the tags were scanned: "
            f"xlab session assign-waiting {s['id']}")
    return 0


def cmd_session_action(args: argparse.Namespace) -> int:
    from core.capture import sessions as cs

    who = _technician(args)
    here = cs.host_name()  # this workstation: a held session is run from its station only
    with open_lab(args) as lab:
        action = args.session_action
        if action == "start":
            view = cs.start_session(lab, args.id, who, take_over=args.take_over)
            active = view.active
            where = f"step {active['position']}" if active else "no step left"
            print(f"session #{args.id} started by {who}; at {where}")
        elif action == "scan":
            result = cs.scan_barcode(lab, args.id, args.barcode, who, host=here)
            print(result.message)
            return 0 if result.accepted else 3
        elif action == "skip":
            nxt = cs.skip_step(lab, args.id, args.reason, who, args.note or "", host=here)
            print(f"skipped; now at step #{nxt}" if nxt else "skipped; no step left")
        elif action == "flag":
            cs.flag_step(lab, args.id, args.text, who, args.step, host=here)
            print("flagged")
        elif action == "retake":
            cs.retake_image(lab, args.id, args.image, who, host=here)
            print(f"image #{args.image} set aside for a retake")
        elif action == "reassign":
            cs.reassign_image(lab, args.id, args.image, args.step, who, host=here)
            print(f"image #{args.image} moved to {'step #' + str(args.step) if args.step else 'no step'}")
        elif action == "assign-waiting":
            ids = cs.assign_waiting(lab, args.id, who, host=here)
            print(f"{len(ids)} image(s) joined the active step")
        elif action == "undo":
            print(f"undone: {cs.undo_last(lab, args.id, who, host=here)}")
        elif action == "release":
            cs.release_session(lab, args.id, who)
            print(f"session #{args.id} released")
        elif action == "close":
            counts = cs.close_session(lab, args.id, who, host=here)
            print("closed: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    return 0


def cmd_session_checklist(args: argparse.Namespace) -> int:
    from core.capture.checklist import write_checklist

    with open_lab(args) as lab:
        path = write_checklist(lab, args.id, args.output or f"session-{args.id}.pdf")
    print(f"wrote {path}")
    return 0


def _register_plan(subparsers: argparse._SubParsersAction, common: Common) -> None:
    p = subparsers.add_parser("plan", parents=[common.lab, common.json, common.quiet])
    p.add_argument("--quota-plan", metavar="NAME", help="quota plan (default: the newest published)")
    p.add_argument("--start", metavar="DATE", help="date of the first shift (default today)")
    p.add_argument("--shifts", type=int, default=5, help="shifts to schedule ahead (default 5)")
    p.add_argument("--shifts-per-day", type=int, default=1)
    p.add_argument("--weekends", action="store_true", help="also schedule Saturdays and Sundays")
    p.add_argument("--shift-hours", type=float, default=8.0)
    p.add_argument("--rate", type=float, default=60.0, help="images per hour per scanner (default 60)")
    p.add_argument("--scanner-rate", action="append", default=[], metavar="SCANNER=RATE",
                   help="images per hour of one scanner (repeatable)")
    p.add_argument("--scanner", action="append", metavar="NAME", help="plan only these scanners (repeatable)")
    p.add_argument("--train-first", action="store_true", help="schedule train setups before test setups")
    p.add_argument("--test-share", type=float, default=0.5,
                   help="share of items and bags not yet in a split pool that go to test (default 0.5)")
    p.add_argument("--dry-run", action="store_true", help="report the plan without saving it")
    p.set_defaults(func=cmd_plan)


SESSION_ACTIONS = {
    "start": "start or resume a session (one technician at a time)",
    "scan": "a scanned tag: confirms the active step's bag or item (exit 3 when refused)",
    "skip": "skip the active step with a reason",
    "flag": "note a problem on a step",
    "retake": "set an image aside so its step takes one more",
    "reassign": "move an image to another step of the session (or none)",
    "assign-waiting": "give the active step the images that arrived before its tags were scanned",
    "undo": "undo the last scan, skip, flag, retake or move",
    "release": "leave the session open for someone else",
    "close": "close the session (unfinished steps are planned again)",
}


def _register_session(subparsers: argparse._SubParsersAction, common: Common) -> None:
    group = subparsers.add_parser("session", parents=[common.anywhere])
    actions = group.add_subparsers(dest="session_command", required=True, metavar="ACTION")
    p = actions.add_parser("list", parents=[common.lab, common.json],
                           help="sessions of a day (default today; 'all' for every day)")
    p.add_argument("--day", metavar="DATE")
    p.add_argument("--scanner", metavar="NAME")
    p.set_defaults(func=cmd_session_list)
    p = actions.add_parser("show", parents=[common.lab, common.json], help="a session's steps and progress")
    p.add_argument("id", type=int)
    p.set_defaults(func=cmd_session_show)
    p = actions.add_parser("checklist", parents=[common.lab], help="write the session's checklist as a PDF for the bench")
    p.add_argument("id", type=int)
    p.add_argument("-o", "--output", metavar="FILE.pdf")
    p.set_defaults(func=cmd_session_checklist)
    for action, text in SESSION_ACTIONS.items():
        p = actions.add_parser(action, parents=[common.lab], help=text)
        p.add_argument("id", type=int, help="session id")
        if action == "start":
            p.add_argument("--take-over", action="store_true", help="take a session whose holder went silent")
        if action == "scan":
            p.add_argument("barcode")
        if action == "skip":
            p.add_argument("reason", choices=SKIP_REASONS)
            p.add_argument("--note", default="")
        if action == "flag":
            p.add_argument("text")
            p.add_argument("--step", type=int, help="step id (default the active one)")
        if action in ("retake", "reassign"):
            p.add_argument("image", type=int, help="image id")
        if action == "reassign":
            p.add_argument("--step", type=int, help="target step id (none: unassigned)")
        p.add_argument("--technician", help="who runs the session (default --user or your login)")
        p.set_defaults(func=cmd_session_action, session_action=action)


def register(subparsers: argparse._SubParsersAction, common: Common) -> None:
    _register_plan(subparsers, common)
    _register_session(subparsers, common)
