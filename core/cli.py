"""The ``xlab`` command line: every capability of core, headless.

Each command parses its arguments, calls one core function, prints a table
(or JSON with ``--json``) and turns a domain error into a message and exit
code 2. No logic lives here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from core.errors import XLabError
from core.progress import Progress, run_to_end

GuiLauncher = Callable[[argparse.Namespace], int]


def _lab_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lab", metavar="DIR", default=os.environ.get("XLAB_LAB"),
                        help="lab folder (catalog and image store); default $XLAB_LAB or the per-user data folder")


def _json_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None, out=None) -> None:
    out = out or sys.stdout
    if not rows:
        print("(none)", file=out)
        return
    columns = list(columns or rows[0].keys())

    def fmt(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3f}"
        return "" if value is None else str(value)

    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)), file=out)


def _emit(args: argparse.Namespace, data: Any, rows: Sequence[dict] | None = None, columns: Sequence[str] | None = None) -> None:
    if args.json:
        print(json.dumps(data, indent=1, default=str))
    else:
        print_table(rows if rows is not None else data, columns)


def _drive(progress: Iterator[Progress], quiet: bool = False) -> int:
    """Run a core generator to the end (Ctrl-C stops it at the next yield)."""
    done = 0
    last = None
    try:
        for step in progress:
            done = step.done
            if not quiet and (step.done, step.message) != last:
                last = (step.done, step.message)
                total = f"/{step.total}" if step.total else ""
                print(f"[{step.done}{total}] {step.message}", flush=True)
    except KeyboardInterrupt:
        progress.close()
        print(f"stopped after {done}", file=sys.stderr)
    return done


# -- commands ---------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    from core.lab import Lab

    with Lab.init(args.lab) as lab:
        applied = lab.catalog.applied_migrations()
        print(f"lab ready at {lab.paths.root} (schema: {applied[-1] if applied else 'empty'})")
    return 0


def _open_lab(args: argparse.Namespace):
    from core.lab import Lab

    return Lab.open(args.lab)


def cmd_inventory_import(args: argparse.Namespace) -> int:
    from core.inventory import import_inventory

    with _open_lab(args) as lab:
        report = import_inventory(lab.catalog, args.file, actor=args.user)
    rows = [{"section": name, **vars(r)} for name, r in report.sections.items()]
    _emit(args, report.as_dict(), rows)
    if not args.json:
        print("no changes" if not report.changed else "inventory updated")
    return 0


def cmd_inventory_export(args: argparse.Namespace) -> int:
    from core.inventory import export_inventory

    with _open_lab(args) as lab:
        text = export_inventory(lab.catalog)
    if args.file in (None, "-"):
        sys.stdout.write(text)
    else:
        with open(args.file, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"wrote {args.file}")
    return 0


def cmd_quota_plan(args: argparse.Namespace) -> int:
    from core.quota.plans import create_plan, publish_plan
    from core.quota.spec import read_plan_spec

    spec = read_plan_spec(args.spec)
    with _open_lab(args) as lab:
        ref = create_plan(lab.catalog, spec, actor=args.user)
        if args.publish:
            ref = publish_plan(lab.catalog, spec.name, actor=args.user)
    print(f"quota plan {ref.name} v{ref.version}: {ref.status}")
    return 0


def cmd_quota_publish(args: argparse.Namespace) -> int:
    from core.quota.plans import publish_plan

    with _open_lab(args) as lab:
        ref = publish_plan(lab.catalog, args.name, actor=args.user)
    print(f"quota plan {ref.name} v{ref.version}: published")
    return 0


def cmd_quota_override(args: argparse.Namespace) -> int:
    from core.quota.plans import CellKey, override_cell

    key = CellKey(None if args.cls == "clean" else args.cls, args.luggage_type, args.clutter,
                  args.scanner_model, args.pose)
    target = None if args.release else args.test
    if target is None and not args.release:
        raise XLabError("give --test N, or --release to undo an override")
    with _open_lab(args) as lab:
        ref = override_cell(lab.catalog, args.name, key, target, actor=args.user)
    print(f"quota plan {ref.name} v{ref.version} ({ref.status}): cell updated, class rebalanced")
    return 0


def cmd_quota_list(args: argparse.Namespace) -> int:
    from core.quota.plans import list_plans

    with _open_lab(args) as lab:
        plans = list_plans(lab.catalog)
    columns = ["name", "version", "status", "clean_setups", "images_per_setup", "created_by", "created_at", "published_at"]
    _emit(args, plans, [{c: p[c] for c in columns} for p in plans], columns)
    return 0


def cmd_quota_show(args: argparse.Namespace) -> int:
    from core.quota.plans import plan_classes, resolve_plan

    with _open_lab(args) as lab:
        plan = resolve_plan(lab.catalog, args.name, args.version)
        classes = plan_classes(lab.catalog, plan["id"])
    columns = ["class_name", "family_name", "detection_rate", "half_width", "confidence", "sizing",
               "required_setups", "normal_approximation", "test_setups", "ratio_step", "train_total", "basis"]
    data = {"plan": {k: v for k, v in plan.items() if k != "spec_json"}, "classes": classes}
    if args.json:
        print(json.dumps(data, indent=1, default=str))
        return 0
    print(f"{plan['name']} v{plan['version']} ({plan['status']}), {plan['images_per_setup']} image(s) per setup; "
          f"clean bags: {plan['clean_setups']} setups for false-alarm rate "
          f"{plan['clean_false_alarm_rate']} ±{plan['clean_half_width']}")
    print_table(classes, columns)
    return 0


def cmd_quota_status(args: argparse.Namespace) -> int:
    from core.quota.plans import resolve_plan
    from core.quota.status import quota_status

    with _open_lab(args) as lab:
        plan = resolve_plan(lab.catalog, args.name, args.version)
        status = quota_status(lab.catalog, plan["id"])
    if args.cells:
        rows = status.as_dicts()
        if args.cls:
            rows = [r for r in rows if r["class_name"] == args.cls]
        columns = ["class_name", "luggage_type", "clutter_level", "scanner_model", "pose", "test_target",
                   "test_setups", "test_images", "test_fill", "test_deficit", "train_target", "train_setups", "train_deficit"]
        _emit(args, rows, rows, columns)
        return 0
    rows = status.by_class()
    if args.cls:
        rows = [r for r in rows if r["class_name"] == args.cls]
    if not args.json:
        t = status.totals()
        print(f"{plan['name']} v{plan['version']}: {t['cells']} cells; test {t['test_done']}/{t['test_target']} setups "
              f"({t['test_fill']:.1%}), train {t['train_done']}/{t['train_target']} ({t['train_fill']:.1%})")
    _emit(args, {"totals": status.totals(), "classes": rows}, rows)
    return 0


def cmd_sizing(args: argparse.Namespace) -> int:
    from core.quota.sizing import size_kpi

    result = size_kpi(args.rate, args.half_width, args.confidence, args.method, args.misses)
    data = {"required": result.required, "normal_approximation": result.normal_approximation,
            "interval_at_required": result.interval_at_required, "basis": result.basis()}
    if args.json:
        print(json.dumps(data, indent=1))
    else:
        print(f"{result.required} independent setups — {result.basis()}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from core.simulator.scanner import simulate

    with _open_lab(args) as lab:
        _drive(simulate(lab, args.scanner, args.count, rate_per_minute=args.rate, fmt=args.format,
                        write_mode=args.write_mode, seed=args.seed, clean_fraction=args.clean_fraction), args.quiet)
    return 0


def cmd_ingest_paths(args: argparse.Namespace) -> int:
    from core.ingest.engine import import_paths
    from core.ingest.log import ingest_logging

    with _open_lab(args) as lab:
        ingest_logging(lab)
        totals = {}
        for step in import_paths(lab, args.paths, scanner=args.scanner, workers=args.workers):
            totals = step.totals
            if not args.quiet:
                print(f"\r[{step.done}/{step.total}] {step.message}", end="", flush=True, file=sys.stderr)
        if not args.quiet:
            print(file=sys.stderr)
    _emit(args, totals, [{"outcome": k, "files": v} for k, v in sorted(totals.items())])
    return 0


def cmd_ingest_watch(args: argparse.Namespace) -> int:
    from core.ingest.engine import watch
    from core.ingest.log import ingest_logging

    with _open_lab(args) as lab:
        ingest_logging(lab)
        _drive(watch(lab, args.scanner or None, once=args.once, workers=args.workers), args.quiet)
    return 0


def cmd_quarantine_list(args: argparse.Namespace) -> int:
    from core.ingest.actions import list_quarantine

    with _open_lab(args) as lab:
        rows = list_quarantine(lab, None if args.all else "held")
    columns = ["id", "at", "scanner", "status", "reason_code", "reason", "source_path", "stored_path"]
    _emit(args, rows, rows, columns)
    return 0


def cmd_quarantine_retry(args: argparse.Namespace) -> int:
    from core.ingest.actions import retry

    with _open_lab(args) as lab:
        outcome = retry(lab, args.id, accept=args.accept, actor=args.user)
    print(f"quarantined file #{args.id}: {outcome.outcome} (image {outcome.image_id})")
    return 0


def cmd_quarantine_discard(args: argparse.Namespace) -> int:
    from core.ingest.actions import discard

    if not args.yes:
        raise XLabError("discarding needs --yes (the kept copy stays on disk; the audit log records who discarded it)")
    with _open_lab(args) as lab:
        discard(lab, args.id, actor=args.user)
    print(f"quarantined file #{args.id}: discarded")
    return 0


def cmd_ingest_assign(args: argparse.Namespace) -> int:
    from core.ingest.actions import assign

    with _open_lab(args) as lab:
        assign(lab, args.image, args.step, actor=args.user)
    print(f"image #{args.image} assigned to step #{args.step}")
    return 0


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
    from datetime import date

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
    with _open_lab(args) as lab:
        plan = run_to_end(plan_captures(lab, options, actor=args.user))
    report = plan.report
    if args.json:
        print(json.dumps({"capture_plan_id": plan.id, **report}, indent=1, default=str))
        return 0
    rows = [{"scanner": s.scanner, "date": s.session_date, "shift": s.shift, "steps": len(s.steps),
             "images": s.images, "test": sum(1 for st in s.steps if st.split == "test"),
             "train": sum(1 for st in s.steps if st.split == "train")} for s in plan.sessions]
    print_table(rows)
    c = report["changeovers"]
    print(f"\n{report['quota_plan']}: {report['sessions']} sessions, {report['steps']} steps, {report['images']} images"
          f" (test {report['setups_by_split']['test']}, train {report['setups_by_split']['train']} setups)")
    print(f"changeovers: {c['repacks']} repacks, {c['item_swaps']} item swaps, {c['pose_changes']} pose changes;"
          f" weighted cost {c['cost']} (lower bound {c['lower_bound']})")
    if report["unscheduled_setups"]:
        print(f"beyond {args.shifts} shift(s): {report['unscheduled_setups']} setups wait for later shifts")
    if report["unplannable_setups"]:
        print(f"cannot plan {report['unplannable_setups']} setups in {len(report['unplannable'])} cells "
              "(no unused item x bag left in the split's pool; add items or bags); see --json")
    if args.dry_run:
        print("dry run: nothing saved")
    return 0


def _technician(args: argparse.Namespace) -> str:
    from core.catalog.db import current_actor

    return args.technician or args.user or current_actor()


def cmd_session_list(args: argparse.Namespace) -> int:
    from core.capture.sessions import list_sessions

    with _open_lab(args) as lab:
        rows = list_sessions(lab, args.day, args.scanner)
    columns = ["id", "session_date", "shift", "scanner", "station", "status", "technician", "held_by", "steps",
               "steps_finished", "images_wanted"]
    _emit(args, rows, rows, columns)
    return 0


def cmd_session_show(args: argparse.Namespace) -> int:
    from core.capture.sessions import session_view

    with _open_lab(args) as lab:
        view = session_view(lab, args.id)
    if args.json:
        print(json.dumps({"session": view.session, "steps": view.steps, "waiting": view.waiting}, indent=1, default=str))
        return 0
    s = view.session
    print(f"session #{s['id']} · {s['scanner']} ({s['station']}) · {s['session_date']} shift {s['shift']} · "
          f"{s['status']} · technician {s['technician'] or '-'} · {view.images_done}/{view.images_wanted} images")
    print_table(view.steps, ["id", "position", "status", "split", "bag", "item", "class_name", "pose",
                             "images_done", "images_wanted", "confirmed_at", "skip_reason", "flag_reason"])
    if view.waiting:
        print(f"{len(view.waiting)} image(s) arrived before the tags were scanned: xlab session assign-waiting {s['id']}")
    return 0


def cmd_session_action(args: argparse.Namespace) -> int:
    from core.capture import sessions as cs

    who = _technician(args)
    with _open_lab(args) as lab:
        action = args.action
        if action == "start":
            view = cs.start_session(lab, args.id, who, take_over=args.take_over)
            active = view.active
            where = f"step {active['position']}" if active else "no step left"
            print(f"session #{args.id} started by {who}; at {where}")
        elif action == "scan":
            result = cs.scan_barcode(lab, args.id, args.barcode, who)
            print(result.message)
            return 0 if result.accepted else 3
        elif action == "skip":
            nxt = cs.skip_step(lab, args.id, args.reason, who, args.note or "")
            print(f"skipped; now at step #{nxt}" if nxt else "skipped; no step left")
        elif action == "flag":
            cs.flag_step(lab, args.id, args.text, who, args.step)
            print("flagged")
        elif action == "retake":
            cs.retake_image(lab, args.id, args.image, who)
            print(f"image #{args.image} set aside for a retake")
        elif action == "reassign":
            cs.reassign_image(lab, args.id, args.image, args.step, who)
            print(f"image #{args.image} moved to {'step #' + str(args.step) if args.step else 'no step'}")
        elif action == "assign-waiting":
            ids = cs.assign_waiting(lab, args.id, who)
            print(f"{len(ids)} image(s) joined the active step")
        elif action == "undo":
            print(f"undone: {cs.undo_last(lab, args.id, who)}")
        elif action == "release":
            cs.release_session(lab, args.id, who)
            print(f"session #{args.id} released")
        elif action == "close":
            counts = cs.close_session(lab, args.id, who)
            print("closed: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    return 0


def cmd_session_checklist(args: argparse.Namespace) -> int:
    from core.capture.checklist import write_checklist

    with _open_lab(args) as lab:
        path = write_checklist(lab, args.id, args.output or f"session-{args.id}.pdf")
    print(f"wrote {path}")
    return 0


def _where(pairs: Sequence[str]) -> dict[str, list[str]]:
    where: dict[str, list[str]] = {}
    for pair in pairs:
        key, sep, values = pair.partition("=")
        if not sep or not values:
            raise XLabError(f"--where wants DIMENSION=VALUE[,VALUE...], not '{pair}'")
        where.setdefault(key, []).extend(v for v in values.split(",") if v)
    return where


def _export_or_print(args: argparse.Namespace, rows: list[dict], columns: Sequence[str] | None = None) -> None:
    if getattr(args, "export", None):
        from core.dashboard.export import export_table

        print(f"wrote {export_table(rows, args.export, columns)}")
    else:
        _emit(args, rows, rows, columns)


def cmd_dashboard(args: argparse.Namespace) -> int:
    from core.quota.plans import resolve_plan
    from core.quota.status import quota_status

    with _open_lab(args) as lab:
        plan = resolve_plan(lab.catalog, args.plan)
        status = quota_status(lab.catalog, plan["id"])
        if args.view == "heatmap":
            from core.dashboard.heatmap import quota_heatmap

            heat = quota_heatmap(status, args.rows, args.cols, args.split, _where(args.where))
            _export_or_print(args, heat.as_rows())
            done, target = heat.totals()
            if not args.json and not args.export:
                print(f"\n{heat.split}: {done:,} of {target:,} setups")
        elif args.view == "classes":
            from core.dashboard.classes import COLUMNS, class_progress

            rows = class_progress(lab.catalog, status)
            if args.blocking:
                rows = [r for r in rows if r["blocks"]]
            _export_or_print(args, rows, COLUMNS)
        else:
            from core.dashboard.production import production

            prod = production(lab.catalog, status, args.month)
            table = {"days": prod.days, "scanners": prod.by_scanner, "stations": prod.by_station,
                     "technicians": prod.by_technician,
                     "forecasts": [{"what": f.what, "remaining_images": f.remaining_images,
                                    "working_days": None if f.working_days is None else round(f.working_days, 1),
                                    "eta": f.eta} for f in prod.forecasts]}[args.table]
            _export_or_print(args, table)
            if not args.json and not args.export:
                print(f"\n{prod.summary()}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from core.dashboard.export import write_report

    with _open_lab(args) as lab:
        path = write_report(lab, args.output, plan=args.plan, month=args.month, rows=args.rows, cols=args.cols)
    print(f"wrote {path}")
    return 0


def cmd_settings(args: argparse.Namespace) -> int:
    from core.dashboard.production import WEEKDAYS, production_settings, set_production_settings

    with _open_lab(args) as lab:
        if args.monthly_target is not None or args.working_days is not None:
            days = args.working_days.split(",") if args.working_days is not None else None
            settings = set_production_settings(lab.catalog, monthly_target=args.monthly_target, working_days=days,
                                               actor=args.user)
        else:
            settings = production_settings(lab.catalog)
    print(f"monthly target: {settings.monthly_target:,} images; working days: "
          f"{','.join(WEEKDAYS[d] for d in settings.working_days)}")
    return 0


def cmd_kpi(args: argparse.Namespace) -> int:
    from core.dashboard.classes import import_kpi_results, kpi_results

    with _open_lab(args) as lab:
        if args.kpi_command == "import":
            n = import_kpi_results(lab.catalog, args.file, actor=args.user)
            print(f"recorded {n} result(s)")
            return 0
        rows = kpi_results(lab.catalog)
    _emit(args, rows)
    return 0


def cmd_demo(args: argparse.Namespace, gui: GuiLauncher | None) -> int:
    from core.demo import create_demo_lab, run_demo_scanners
    from core.errors import IngestRunningError
    from core.ingest.lock import describe_owners, lab_ingest_owners

    lab = create_demo_lab(args.lab)
    root = lab.paths.root
    print(f"demo lab ready at {root}")
    if args.headless or gui is None:
        owners = lab_ingest_owners(lab)
        if owners:
            lab.close()
            raise IngestRunningError(owners, describe_owners(owners))
        try:
            _drive(run_demo_scanners(lab, args.rate, args.count, with_ingest=True), args.quiet)
        finally:
            lab.close()
        return 0
    lab.close()
    args.lab = str(root)
    args.simulate = True
    return gui(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xlab", description="XLab: run an X-ray data production lab.")
    parser.add_argument("--user", default=None, help="name recorded in the audit log (default: your login)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("init", help="create a lab folder and its catalog (or migrate an existing one)")
    _lab_arg(p)
    p.set_defaults(func=cmd_init)

    inv = sub.add_parser("inventory", help="import or export the lab inventory (YAML)")
    inv_sub = inv.add_subparsers(dest="action", required=True)
    p = inv_sub.add_parser("import", help="create/update inventory from a YAML file (all or nothing)")
    p.add_argument("file")
    _lab_arg(p)
    _json_arg(p)
    p.set_defaults(func=cmd_inventory_import)
    p = inv_sub.add_parser("export", help="write the inventory as YAML (stdout or FILE)")
    p.add_argument("file", nargs="?")
    _lab_arg(p)
    p.set_defaults(func=cmd_inventory_export)

    quota = sub.add_parser("quota", help="test-set quota plans: create, publish, show, status")
    q_sub = quota.add_subparsers(dest="action", required=True)
    p = q_sub.add_parser("plan", help="draft a plan (or its next version) from a spec file")
    p.add_argument("spec")
    p.add_argument("--publish", action="store_true", help="publish it right away")
    _lab_arg(p)
    p.set_defaults(func=cmd_quota_plan)
    p = q_sub.add_parser("publish", help="publish the latest draft of a plan (then it is immutable)")
    p.add_argument("name")
    _lab_arg(p)
    p.set_defaults(func=cmd_quota_publish)
    p = q_sub.add_parser("override", help="fix one cell's test target and rebalance its class")
    p.add_argument("name")
    p.add_argument("--class", dest="cls", required=True, help="threat class, or 'clean'")
    p.add_argument("--luggage-type", required=True)
    p.add_argument("--clutter", required=True)
    p.add_argument("--scanner-model", required=True)
    p.add_argument("--pose", help="pose (not for clean)")
    p.add_argument("--test", type=int, help="test target in setups")
    p.add_argument("--release", action="store_true", help="remove the override")
    _lab_arg(p)
    p.set_defaults(func=cmd_quota_override)
    p = q_sub.add_parser("list", help="all plans and versions")
    _lab_arg(p)
    _json_arg(p)
    p.set_defaults(func=cmd_quota_list)
    for action, func, text in (("show", cmd_quota_show, "per-class KPIs, sizes and their statistical basis"),
                               ("status", cmd_quota_status, "target vs captured per class (or --cells)")):
        p = q_sub.add_parser(action, help=text)
        p.add_argument("name", nargs="?", help="plan name (default: newest published)")
        p.add_argument("--version", type=int)
        if action == "status":
            p.add_argument("--cells", action="store_true", help="one row per quota cell")
            p.add_argument("--class", dest="cls", help="only this class")
        _lab_arg(p)
        _json_arg(p)
        p.set_defaults(func=func)

    ingest = sub.add_parser("ingest", help="take scanner images into the store and catalog")
    i_sub = ingest.add_subparsers(dest="action", required=True)
    p = i_sub.add_parser("import", help="one-off import of files or folders (recursive); sources are left in place")
    p.add_argument("paths", nargs="+")
    p.add_argument("--scanner", help="scanner that wrote them (enables size and bit-depth checks)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: one per core)")
    p.add_argument("--quiet", action="store_true")
    _lab_arg(p)
    _json_arg(p)
    p.set_defaults(func=cmd_ingest_paths)
    p = i_sub.add_parser("watch", help="ingest what the scanners write into their drop folders, until Ctrl-C")
    p.add_argument("--scanner", action="append", help="only this scanner (repeatable; default: all)")
    p.add_argument("--once", action="store_true", help="stop when the drop folders are empty")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--quiet", action="store_true")
    _lab_arg(p)
    p.set_defaults(func=cmd_ingest_watch)
    p = i_sub.add_parser("assign", help="give an unassigned image a capture step's class, item, bag, pose, split")
    p.add_argument("image", type=int)
    p.add_argument("--step", type=int, required=True)
    _lab_arg(p)
    p.set_defaults(func=cmd_ingest_assign)

    quarantine = sub.add_parser("quarantine", help="files ingest refused, with their reasons")
    qr_sub = quarantine.add_subparsers(dest="action", required=True)
    p = qr_sub.add_parser("list", help="held files (or --all)")
    p.add_argument("--all", action="store_true")
    _lab_arg(p)
    _json_arg(p)
    p.set_defaults(func=cmd_quarantine_list)
    p = qr_sub.add_parser("retry", help="run the checks again on the kept copy")
    p.add_argument("id", type=int)
    p.add_argument("--accept", action="store_true", help="take it despite a size or bit-depth mismatch")
    _lab_arg(p)
    p.set_defaults(func=cmd_quarantine_retry)
    p = qr_sub.add_parser("discard", help="mark discarded (the copy stays on disk; audited)")
    p.add_argument("id", type=int)
    p.add_argument("--yes", action="store_true")
    _lab_arg(p)
    p.set_defaults(func=cmd_quarantine_discard)

    p = sub.add_parser("sizing", help="test positives needed for a KPI (Wilson or demonstration)")
    p.add_argument("--rate", type=float, required=True, help="target detection (or false-alarm) rate")
    p.add_argument("--half-width", type=float, default=0.03)
    p.add_argument("--confidence", type=float, default=0.95)
    p.add_argument("--method", choices=("wilson", "demonstration"), default="wilson")
    p.add_argument("--misses", type=int, default=0, help="misses allowed (demonstration)")
    _json_arg(p)
    p.set_defaults(func=cmd_sizing)

    p = sub.add_parser("simulate", help="write simulated scans into a scanner's drop folder")
    p.add_argument("--scanner", required=True)
    p.add_argument("--count", type=int, default=10, help="files to write (0: until Ctrl-C)")
    p.add_argument("--rate", type=float, default=60.0, help="images per minute (0: as fast as possible)")
    p.add_argument("--format", choices=("png16", "tiff16", "pseudo_png", "dicos"), default="png16",
                   help="dicos: a DICOS DX radiograph, plus a ground-truth TDR when a threat is in the bag")
    p.add_argument("--write-mode", choices=("rename", "slow"), default="rename")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--clean-fraction", type=float, default=0.2)
    p.add_argument("--quiet", action="store_true")
    _lab_arg(p)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("plan", help="plan capture sessions from the quota deficits (test first)")
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
    _json_arg(p)
    _lab_arg(p)
    p.set_defaults(func=cmd_plan)

    session = sub.add_parser("session", help="capture sessions: list, run a checklist step by step, print")
    s_sub = session.add_subparsers(dest="session_command", required=True, metavar="ACTION")
    p = s_sub.add_parser("list", help="sessions of a day (default today; 'all' for every day)")
    p.add_argument("--day", metavar="DATE")
    p.add_argument("--scanner", metavar="NAME")
    _json_arg(p)
    _lab_arg(p)
    p.set_defaults(func=cmd_session_list)
    p = s_sub.add_parser("show", help="a session's steps and progress")
    p.add_argument("id", type=int)
    _json_arg(p)
    _lab_arg(p)
    p.set_defaults(func=cmd_session_show)
    p = s_sub.add_parser("checklist", help="write the session's checklist as a PDF for the bench")
    p.add_argument("id", type=int)
    p.add_argument("-o", "--output", metavar="FILE.pdf")
    _lab_arg(p)
    p.set_defaults(func=cmd_session_checklist)
    actions = {
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
    for action, text in actions.items():
        p = s_sub.add_parser(action, help=text)
        p.add_argument("id", type=int, help="session id")
        if action == "start":
            p.add_argument("--take-over", action="store_true", help="take a session whose holder went silent")
        if action == "scan":
            p.add_argument("barcode")
        if action == "skip":
            p.add_argument("reason", choices=["item_missing", "bag_damaged", "scanner_fault", "other"])
            p.add_argument("--note", default="")
        if action == "flag":
            p.add_argument("text")
            p.add_argument("--step", type=int, help="step id (default the active one)")
        if action in ("retake", "reassign"):
            p.add_argument("image", type=int, help="image id")
        if action == "reassign":
            p.add_argument("--step", type=int, help="target step id (none: unassigned)")
        p.add_argument("--technician", help="who runs the session (default --user or your login)")
        _lab_arg(p)
        p.set_defaults(func=cmd_session_action, action=action)

    dash = sub.add_parser("dashboard", help="the manager's dashboards as tables (or CSV/Excel with --export)")
    d_sub = dash.add_subparsers(dest="view", required=True, metavar="VIEW")
    p = d_sub.add_parser("heatmap", help="quota fill for two dimensions, the others as filters")
    p.add_argument("--rows", default="class", help="class, luggage_type, clutter, scanner_model or pose")
    p.add_argument("--cols", default="luggage_type")
    p.add_argument("--split", choices=["test", "train"], default="test")
    p.add_argument("--where", action="append", default=[], metavar="DIM=V[,V]", help="filter (repeatable)")
    p2 = d_sub.add_parser("production", help="images per day, per scanner, station, technician; forecasts")
    p2.add_argument("--month", metavar="YYYY-MM")
    p2.add_argument("--table", choices=["days", "scanners", "stations", "technicians", "forecasts"], default="days")
    p3 = d_sub.add_parser("classes", help="per-class ratio progress against the KPIs, with verdicts")
    p3.add_argument("--blocking", action="store_true", help="only classes that block the next model")
    for p in (p, p2, p3):
        p.add_argument("--plan", metavar="NAME", help="quota plan (default: the newest published)")
        p.add_argument("--export", metavar="FILE", help="write the table as .csv or .xlsx")
        _json_arg(p)
        _lab_arg(p)
        p.set_defaults(func=cmd_dashboard)

    p = sub.add_parser("report", help="the weekly PDF report: classes, quota fill, production, forecasts")
    p.add_argument("-o", "--output", default="xlab-report.pdf", metavar="FILE.pdf")
    p.add_argument("--plan", metavar="NAME")
    p.add_argument("--month", metavar="YYYY-MM")
    p.add_argument("--rows", default="class")
    p.add_argument("--cols", default="luggage_type")
    _lab_arg(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("settings", help="show or change the monthly production target and working days")
    p.add_argument("--monthly-target", type=int, metavar="IMAGES")
    p.add_argument("--working-days", metavar="mon,tue,...")
    _lab_arg(p)
    p.set_defaults(func=cmd_settings)

    kpi = sub.add_parser("kpi", help="per-class KPI results on the test set")
    k_sub = kpi.add_subparsers(dest="kpi_command", required=True, metavar="ACTION")
    p = k_sub.add_parser("import", help="record results of an evaluation done elsewhere (CSV; all or nothing)")
    p.add_argument("file")
    _lab_arg(p)
    p.set_defaults(func=cmd_kpi)
    p = k_sub.add_parser("list", help="every recorded result")
    _json_arg(p)
    _lab_arg(p)
    p.set_defaults(func=cmd_kpi)

    p = sub.add_parser("demo", help="create the demo lab and run its simulated scanners (with the GUI)")
    p.add_argument("--headless", action="store_true", help="no window: run the scanners in this terminal")
    p.add_argument("--rate", type=float, default=12.0, help="images per minute per scanner")
    p.add_argument("--count", type=int, default=None, help="stop after this many files (headless)")
    p.add_argument("--quiet", action="store_true")
    _lab_arg(p)
    p.set_defaults(func=None, demo=True)

    p = sub.add_parser("gui", help="open the XLab window")
    _lab_arg(p)
    p.add_argument("--simulate", action="store_true", help="also run the lab's simulated scanners")
    p.add_argument("--rate", type=float, default=12.0, help="simulated images per minute per scanner")
    p.set_defaults(func=None, gui=True)
    return parser


def _stop_on_sigterm() -> None:
    """SIGTERM (a supervisor, systemd, ``kill``) stops like Ctrl-C: the running
    command's clean-up runs, so ingest shuts its decode processes down and
    releases its scanners."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        def interrupt(signum, frame):  # noqa: ANN001, ARG001 - signal API
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, interrupt)


def main(argv: Sequence[str] | None = None, gui: GuiLauncher | None = None) -> int:
    """Entry point. ``gui`` opens the window (given by the app package)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _stop_on_sigterm()
    if getattr(args, "count", None) == 0 and args.command == "simulate":
        args.count = None
    try:
        if getattr(args, "demo", False):
            return cmd_demo(args, gui)
        if getattr(args, "gui", False):
            if gui is None:
                raise XLabError("this XLab was installed without the window; use the headless commands")
            return gui(args)
        return args.func(args)
    except XLabError as exc:
        print(f"xlab: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Output piped into e.g. `head`, which stopped reading: not an error.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
