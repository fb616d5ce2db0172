"""``xlab annotations``: import, export, list an image's labels, the QA flags; ``xlab class``: class changes."""

from __future__ import annotations

import argparse
import sys

from core.cli.common import Common, open_lab
from core.cli.output import Column, count, emit, ident, print_json, print_table, say, when, words

FORMATS = ("coco", "yolo", "voc", "cvat", "labelstudio")

COUNT_COLUMNS = (
    Column("what", "What", words),
    Column("n", "Count", count),
)

BOX_COLUMNS = (
    Column("annotation_id", "Box", ident),
    Column("class_name", "Class"),
    Column("corners", "Corners (x0, y0 - x1, y1)"),
    Column("source", "Source", words),
    Column("qa_state", "Review", words),
    Column("actor", "By"),
    Column("created_at", "When", when),
)

FLAG_COLUMNS = (
    Column("id", "Flag", ident),
    Column("risk", "Risk", lambda v: f"{v:.2f}", right=True),
    Column("image_id", "Image", ident),
    Column("code", "Check", words),
    Column("state", "State"),
    Column("reason", "Reason", wrap=True),
)


def _counts_rows(counts: dict[str, int]) -> list[dict]:
    return [{"what": k, "n": v} for k, v in sorted(counts.items()) if v]


def cmd_import(args: argparse.Namespace) -> int:
    from core.cli.progress import StatusLine
    from core.errors import LabelImportError
    from core.labels.imports import import_labels

    with open_lab(args) as lab:
        status = StatusLine(args.quiet)
        try:
            report = import_labels(lab, args.format, args.path, images_dir=args.images, map_path=args.map,
                                   source=args.source, skip_bad=args.skip_bad, actor=args.user,
                                   workers=args.workers, progress=lambda m: status.update(f"images: {m}"))
        except LabelImportError as exc:
            if args.json and exc.report is not None:
                print_json(exc.report.as_dict())
            raise
        finally:
            status.close()
    if args.json:
        print_json(report.as_dict())
        return 0
    print_table(_counts_rows(report.counts) + _counts_rows({f"flag {k}": v for k, v in report.flags.items()}),
                COUNT_COLUMNS)
    for line in report.problems:
        say(line, sys.stderr)
    say(f"import #{report.import_id} from source '{report.source}' written")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from core.labels.exports import export_labels

    with open_lab(args) as lab:
        report = export_labels(lab, args.format, args.output, link=args.link)
    data = report.as_dict()
    emit(args, data, _counts_rows({k: v for k, v in data.items() if isinstance(v, int)}), COUNT_COLUMNS)
    if not args.json:
        say(f"{args.format} written to {report.out_dir} ({len(report.files)} file(s) besides the images)")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from core.labels.annotations import labels_of

    with open_lab(args) as lab:
        labels = labels_of(lab.catalog, args.image, as_of=args.as_of)
    boxes = [b.as_dict() | {"corners": f"{b.x0:g}, {b.y0:g} - {b.x1:g}, {b.y1:g}"} for b in labels.boxes]
    data = {"image_id": labels.image_id, "negative": labels.negative, "as_of": labels.as_of, "boxes": boxes}
    emit(args, data, boxes, BOX_COLUMNS)
    if not args.json and labels.negative:
        say("labelled negative: no object in this image")
    return 0


def cmd_qa(args: argparse.Namespace) -> int:
    from core.labels.qa import queue, run_checks

    with open_lab(args) as lab:
        checked = run_checks(lab.catalog, full=args.recheck, actor=args.user)
        flags = queue(lab.catalog, "open" if args.open else None, limit=args.limit)
    emit(args, flags, flags, FLAG_COLUMNS)
    if not args.json:
        say(f"{checked} image(s) checked now; riskiest first")
    return 0


def register(subparsers: argparse._SubParsersAction, common: Common) -> None:
    group = subparsers.add_parser("annotations", parents=[common.anywhere])
    actions = group.add_subparsers(dest="action", required=True)
    p = actions.add_parser("import", parents=[common.lab, common.json, common.quiet],
                           help="import boxes from COCO, YOLO, VOC, CVAT or Label Studio files (all or nothing)")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("path", metavar="PATH", help="the annotation file, or the folder holding the format's files")
    p.add_argument("--images", metavar="DIR",
                   help="folder of the images: those not in the catalog are ingested first (paths kept relative to DIR)")
    p.add_argument("--map", metavar="MAP.yaml", help="external class name → lab class (kept for the next import)")
    p.add_argument("--source", metavar="NAME", help="name the class map is kept under (default: the map's, or PATH's name)")
    p.add_argument("--skip-bad", action="store_true", help="write what is good and report the rest")
    p.add_argument("--workers", type=int, default=None, help="worker processes for ingesting --images")
    p.set_defaults(func=cmd_import)
    p = actions.add_parser("export", parents=[common.lab, common.json],
                           help="write the current labels and their images in a format, with a manifest of hashes")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="a new (or empty) folder")
    p.add_argument("--link", action="store_true", help="hard-link the images instead of copying (same disk only)")
    p.set_defaults(func=cmd_export)
    p = actions.add_parser("list", parents=[common.lab, common.json], help="an image's boxes (now or as of a clock value)")
    p.add_argument("image", type=int, metavar="IMAGE")
    p.add_argument("--as-of", type=int, default=None, metavar="SEQ", help="the label clock value to read at")
    p.set_defaults(func=cmd_list)
    p = actions.add_parser("qa", parents=[common.lab, common.json],
                           help="run the label checks on what changed, then list their flags (riskiest first)")
    p.add_argument("--open", action="store_true", help="only flags not yet resolved or dismissed")
    p.add_argument("--recheck", action="store_true", help="check every image again, not only what changed")
    p.add_argument("--limit", type=int, default=500)
    p.set_defaults(func=cmd_qa)
    _register_class(subparsers, common)


# -- xlab class: class changes with history ------------------------------------------------

PLAN_COLUMNS = (
    Column("plan", "Quota plan"),
    Column("versions", "Versions concerned", lambda v: ", ".join(f"v{n}" for n in v)),
    Column("latest", "Latest"),
    Column("draft", "Drafted now", lambda v: "" if v is None else f"v{v} (publish it to use it)"),
)

HISTORY_COLUMNS = (
    Column("id", "#", ident),
    Column("at", "When", when),
    Column("actor", "By"),
    Column("action", "Change"),
    Column("class_name", "Class"),
    Column("what", "What", wrap=True),
)


def _split_rule(values: list[str]) -> dict[str, list[str]]:
    from core.errors import LabelError

    into: dict[str, list[str]] = {}
    for value in values:
        name, sep, items = value.partition(":")
        if not name.strip():
            raise LabelError(f"--into '{value}': use CLASS or CLASS:ITEM,ITEM")
        into.setdefault(name.strip(), []).extend(i.strip() for i in items.split(",") if i.strip())
    return into


def _show_change(args: argparse.Namespace, change) -> int:
    data = change.as_dict()
    if args.json:
        print_json(data)
        return 0
    counts = {"boxes re-classed": change.boxes_changed, "items moved": change.items_moved,
              "boxes left for review": change.boxes_for_review, "class map entries moved": change.class_maps_moved,
              "KPI results on the old class": len(change.kpi_results)}
    print_table(_counts_rows(counts), COUNT_COLUMNS)
    if change.plans:
        print_table([p | {"latest": f"v{p['latest_version']} ({p['latest_status']})"} for p in change.plans],
                    PLAN_COLUMNS)
        if not change.drafted and change.action != "move":
            say("the plans above still use the old class: run again with --update-plans to draft their next "
                "versions, or edit them with 'xlab quota plan'")
    for r in change.kpi_results:
        say(f"KPI result #{r['id']} ({r['run_label']}, {r['evaluated_at'][:10]}) was measured on class "
            f"'{change.class_name}' before this change")
    say(f"class {change.class_name}: {change.action} recorded in the class history")
    return 0


def cmd_class_change(args: argparse.Namespace) -> int:
    from core.labels import classes

    with open_lab(args) as lab:
        if args.action == "rename":
            change = classes.rename_class(lab.catalog, args.name, args.new_name, update_plans=args.update_plans,
                                          actor=args.user)
        elif args.action == "move":
            change = classes.move_class(lab.catalog, args.name, args.family, actor=args.user)
        elif args.action == "merge":
            change = classes.merge_classes(lab.catalog, args.name, args.into, update_plans=args.update_plans,
                                           actor=args.user)
        else:
            change = classes.split_class(lab.catalog, args.name, _split_rule(args.into), rest=args.rest,
                                         review=args.review, family=args.family, update_plans=args.update_plans,
                                         actor=args.user)
    return _show_change(args, change)


def cmd_class_history(args: argparse.Namespace) -> int:
    from core.labels.classes import history

    with open_lab(args) as lab:
        rows = history(lab.catalog, args.name)
    shown_rows = [r | {"what": ", ".join(f"{k} {v}" for k, v in r["detail"].items()
                                         if k in ("from", "to", "into", "rest", "review", "boxes_changed",
                                                  "items_moved", "drafted") and v not in (None, [], {}, False))}
                  for r in rows]
    emit(args, rows, shown_rows, HISTORY_COLUMNS)
    return 0


def _register_class(subparsers: argparse._SubParsersAction, common: Common) -> None:
    group = subparsers.add_parser("class", parents=[common.anywhere])
    actions = group.add_subparsers(dest="action", required=True)
    plans = argparse.ArgumentParser(add_help=False)
    plans.add_argument("--update-plans", action="store_true",
                       help="draft the next version of each quota plan concerned (publish it yourself)")
    p = actions.add_parser("rename", parents=[common.lab, common.json, plans], help="rename a class")
    p.add_argument("name", metavar="CLASS")
    p.add_argument("new_name", metavar="NEW_NAME")
    p.set_defaults(func=cmd_class_change)
    p = actions.add_parser("move", parents=[common.lab, common.json], help="move a class to another family")
    p.add_argument("name", metavar="CLASS")
    p.add_argument("family", metavar="FAMILY")
    p.set_defaults(func=cmd_class_change, update_plans=False)
    p = actions.add_parser("merge", parents=[common.lab, common.json, plans],
                           help="merge a class into another: its boxes and items become the other's; it is retired")
    p.add_argument("name", metavar="CLASS")
    p.add_argument("into", metavar="INTO_CLASS")
    p.set_defaults(func=cmd_class_change)
    p = actions.add_parser("split", parents=[common.lab, common.json, plans],
                           help="split a class into new classes by physical item; boxes follow their image's item")
    p.add_argument("name", metavar="CLASS")
    p.add_argument("--into", action="append", default=[], metavar="NEW:ITEM,ITEM",
                   help="a new class and the barcodes of the items that go to it (repeat for each class)")
    p.add_argument("--rest", metavar="NEW", help="the new class of every item not named and of boxes no item decides")
    p.add_argument("--review", action="store_true",
                   help="leave boxes no item decides on the retired class, flagged 'class split: review'")
    p.add_argument("--family", metavar="FAMILY", help="family of the new classes (default: the split class's)")
    p.set_defaults(func=cmd_class_change)
    p = actions.add_parser("history", parents=[common.lab, common.json], help="class changes, oldest first")
    p.add_argument("name", metavar="CLASS", nargs="?")
    p.set_defaults(func=cmd_class_history)
