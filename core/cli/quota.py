"""``xlab quota``: test-set quota plans (create, publish, override, list, show, status)."""

from __future__ import annotations

import argparse

from core.cli.common import Common, open_lab
from core.cli.output import Column, count, emit, percent, print_json, print_table, say, when
from core.errors import XLabError

LIST_COLUMNS = (
    Column("name", "Plan"),
    Column("version", "Version", count),
    Column("status", "Status"),
    Column("clean_setups", "Clean setups", count),
    Column("images_per_setup", "Images per setup", count),
    Column("created_by", "Created by"),
    Column("published_at", "Published", when),
)

# Family, method, rate, half-width and confidence are in the basis text or
# beside it in --json; the table keeps the counts.
SHOW_COLUMNS = (
    Column("class_name", "Class"),
    Column("required_setups", "Required", count),
    Column("test_setups", "Test setups", count),
    Column("ratio_step", "Ratio step", count),
    Column("train_total", "Train total", count),
    Column("basis", "Statistical basis", wrap=True),
)

STATUS_COLUMNS = (
    Column("class_name", "Class"),
    Column("test_target", "Test target", count),
    Column("test_done", "Test done", count),
    Column("test_fill", "Test fill", percent),
    Column("test_deficit", "Test deficit", count),
    Column("train_target", "Train target", count),
    Column("train_done", "Train done", count),
    Column("train_fill", "Train fill", percent),
    Column("train_deficit", "Train deficit", count),
)

# Eleven columns would not fit 100: done setups are target less deficit, and
# --json has every field.
CELL_COLUMNS = (
    Column("class_name", "Class"),
    Column("luggage_type", "Luggage"),
    Column("clutter_level", "Clutter"),
    Column("scanner_model", "Scanner model"),
    Column("pose", "Pose"),
    Column("test_target", "Test target", count),
    Column("test_fill", "Test fill", percent),
    Column("test_deficit", "Test deficit", count),
    Column("train_deficit", "Train deficit", count),
)


def cmd_plan(args: argparse.Namespace) -> int:
    from core.quota.plans import create_plan, publish_plan
    from core.quota.spec import read_plan_spec

    spec = read_plan_spec(args.spec)
    with open_lab(args) as lab:
        ref = create_plan(lab.catalog, spec, actor=args.user)
        if args.publish:
            ref = publish_plan(lab.catalog, spec.name, actor=args.user)
    print(f"quota plan {ref.name} v{ref.version}: {ref.status}")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from core.quota.plans import publish_plan

    with open_lab(args) as lab:
        ref = publish_plan(lab.catalog, args.name, actor=args.user)
    print(f"quota plan {ref.name} v{ref.version}: published")
    return 0


def cmd_override(args: argparse.Namespace) -> int:
    from core.quota.plans import CellKey, override_cell

    if args.test is None and not args.release:
        raise XLabError("give --test N, or --release to undo an override")
    key = CellKey(None if args.cls == "clean" else args.cls, args.luggage_type, args.clutter,
                  args.scanner_model, args.pose)
    with open_lab(args) as lab:
        ref = override_cell(lab.catalog, args.name, key, None if args.release else args.test, actor=args.user)
    print(f"quota plan {ref.name} v{ref.version} ({ref.status}): cell updated, class rebalanced")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from core.quota.plans import list_plans

    with open_lab(args) as lab:
        plans = list_plans(lab.catalog)
    keys = ("name", "version", "status", "clean_setups", "images_per_setup", "created_by", "created_at",
            "published_at")
    emit(args, [{k: p[k] for k in keys} for p in plans], plans, LIST_COLUMNS)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from core.quota.plans import plan_classes, resolve_plan

    with open_lab(args) as lab:
        plan = resolve_plan(lab.catalog, args.name, args.version)
        classes = plan_classes(lab.catalog, plan["id"])
    if args.json:
        print_json({"plan": {k: v for k, v in plan.items() if k != "spec_json"}, "classes": classes})
        return 0
    say(f"{plan['name']} v{plan['version']} ({plan['status']}), {plan['images_per_setup']} image(s) per setup; "
        f"clean bags: {plan['clean_setups']:,} setups for false-alarm rate "
        f"{percent(plan['clean_false_alarm_rate'])} ±{percent(plan['clean_half_width'])}")
    print_table(classes, SHOW_COLUMNS)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from core.quota.plans import resolve_plan
    from core.quota.status import quota_status

    with open_lab(args) as lab:
        plan = resolve_plan(lab.catalog, args.name, args.version)
        status = quota_status(lab.catalog, plan["id"])
    rows = status.as_dicts() if args.cells else status.by_class()
    if args.cls:
        rows = [r for r in rows if r["class_name"] == args.cls]
    if args.cells:
        emit(args, rows, rows, CELL_COLUMNS)
        return 0
    if not args.json:
        t = status.totals()
        say(f"{plan['name']} v{plan['version']}: {t['cells']:,} cells; test {t['test_done']:,}/{t['test_target']:,} "
            f"setups ({percent(t['test_fill'])}), train {t['train_done']:,}/{t['train_target']:,} "
            f"({percent(t['train_fill'])})")
    emit(args, {"totals": status.totals(), "classes": rows}, rows, STATUS_COLUMNS)
    return 0


def register(subparsers: argparse._SubParsersAction, common: Common) -> None:
    group = subparsers.add_parser("quota", parents=[common.anywhere])
    actions = group.add_subparsers(dest="action", required=True)
    p = actions.add_parser("plan", parents=[common.lab], help="draft a plan (or its next version) from a spec file")
    p.add_argument("spec")
    p.add_argument("--publish", action="store_true", help="publish it right away")
    p.set_defaults(func=cmd_plan)
    p = actions.add_parser("publish", parents=[common.lab],
                           help="publish the latest draft of a plan (then it is immutable)")
    p.add_argument("name")
    p.set_defaults(func=cmd_publish)
    p = actions.add_parser("override", parents=[common.lab], help="fix one cell's test target and rebalance its class")
    p.add_argument("name")
    p.add_argument("--class", dest="cls", required=True, help="threat class, or 'clean'")
    p.add_argument("--luggage-type", required=True)
    p.add_argument("--clutter", required=True)
    p.add_argument("--scanner-model", required=True)
    p.add_argument("--pose", help="pose (not for clean)")
    p.add_argument("--test", type=int, help="test target in setups")
    p.add_argument("--release", action="store_true", help="remove the override")
    p.set_defaults(func=cmd_override)
    p = actions.add_parser("list", parents=[common.lab, common.json], help="all plans and versions")
    p.set_defaults(func=cmd_list)
    for action, func, text in (("show", cmd_show, "per-class KPIs, sizes and their statistical basis"),
                               ("status", cmd_status, "target vs captured per class (or --cells)")):
        p = actions.add_parser(action, parents=[common.lab, common.json], help=text)
        p.add_argument("name", nargs="?", help="plan name (default: newest published)")
        p.add_argument("--version", type=int)
        if action == "status":
            p.add_argument("--cells", action="store_true", help="one row per quota cell")
            p.add_argument("--class", dest="cls", help="only this class")
        p.set_defaults(func=func)
