"""``xlab dataset``: freeze, list, show, diff, distribution and export of dataset versions."""

from __future__ import annotations

import argparse

from core.cli.common import Common, open_lab
from core.cli.output import Column, count, emit, ident, print_json, print_table, say, when, words

FORMATS = ("coco", "yolo", "voc", "cvat", "labelstudio")
# Rows of a long list shown in a table (--json has them all).
SHOWN = 20

LIST_COLUMNS = (
    Column("name", "Dataset"),
    Column("version", "Version", ident),
    Column("rule", "Rule"),
    Column("plan", "Quota plan"),
    Column("images", "Images", count),
    Column("boxes", "Boxes", count),
    Column("parent", "From"),
    Column("frozen_by", "Frozen by"),
    Column("frozen_at", "Frozen", when),
)

COUNT_COLUMNS = (Column("what", "What", words), Column("n", "Count", count))

CELL_BELOW_COLUMNS = (
    Column("class_name", "Class"),
    Column("luggage_type", "Luggage"),
    Column("clutter_level", "Clutter"),
    Column("scanner_model", "Scanner model"),
    Column("pose", "Pose"),
    Column("target_setups", "Target setups", count),
    Column("setups", "Setups", count),
    Column("missing_setups", "Missing", count),
)

CLONE_COLUMNS = (
    Column("class_name", "Class"),
    Column("luggage_type", "Luggage"),
    Column("clutter_level", "Clutter"),
    Column("scanner_model", "Scanner model"),
    Column("pose", "Pose"),
    Column("wanted", "Wanted", count),
    Column("own", "From cell", count),
    Column("borrowed", "Borrowed", count),
    Column("short", "Short", count),
)

NEAR_COLUMNS = (Column("image_id", "Image", ident), Column("other_id", "Other split's image", ident),
                Column("distance", "Distance (bits)", count))

DIFF_COLUMNS = (
    Column("class_name", "Class"),
    Column("added", "Added", count),
    Column("removed", "Removed", count),
    Column("labels_changed", "Labels changed", count),
    Column("moved", "Moved subset", count),
)

DIFF_CELL_COLUMNS = (
    Column("class_name", "Class"),
    Column("luggage_type", "Luggage"),
    Column("clutter_level", "Clutter"),
    Column("scanner_model", "Scanner model"),
    Column("pose", "Pose"),
    Column("added", "Added", count),
    Column("removed", "Removed", count),
    Column("labels_changed", "Labels changed", count),
    Column("moved", "Moved", count),
)

CLASS_COLUMNS = (
    Column("class_name", "Class"),
    Column("subset", "Subset"),
    Column("images", "Images", count),
    Column("boxes", "Boxes", count),
)

DIST_CELL_COLUMNS = (
    Column("class_name", "Class"),
    Column("subset", "Subset"),
    Column("luggage_type", "Luggage"),
    Column("clutter_level", "Clutter"),
    Column("scanner_model", "Scanner model"),
    Column("pose", "Pose"),
    Column("images", "Images", count),
    Column("setups", "Setups", count),
    Column("boxes", "Boxes", count),
)

PER_IMAGE_COLUMNS = (Column("subset", "Subset"), Column("kind", "Image"), Column("boxes", "Boxes", count),
                     Column("images", "Images", count))

SIZE_COLUMNS = (Column("class_name", "Class"), Column("subset", "Subset"), Column("size", "Box side (px)"),
                Column("boxes", "Boxes", count))


def _table(title: str, rows: list[dict], columns: tuple[Column, ...]) -> None:
    say(title)
    print_table(rows[:SHOWN], columns)
    if len(rows) > SHOWN:
        say(f"... and {len(rows) - SHOWN:,} more (--json lists them all)")


def cmd_freeze(args: argparse.Namespace) -> int:
    from core.datasets.versions import freeze

    with open_lab(args) as lab:
        report = freeze(lab.catalog, args.name, args.rule, plan=args.plan, ratio=args.ratio, seed=args.seed,
                        parent=args.parent, exclude_near_duplicates=args.exclude_near_duplicates,
                        validation=args.validation, dry_run=args.dry_run, actor=args.user)
    if args.json:
        print_json(report.as_dict())
        return 0
    what = "would freeze (dry run, nothing written)" if report.dry_run else "frozen"
    say(f"{report.name}@{report.version} {what}: {report.rule} set of {report.plan}, {report.images:,} images, "
        f"{report.boxes:,} boxes, labels as of {report.label_seq}"
        + (f", seed {report.seed}" if report.seed is not None else "")
        + (f", cloning {report.test_version}" if report.test_version else "")
        + (f", from {report.parent}" if report.parent else ""))
    print_table([{"what": f"{k} images", "n": v} for k, v in report.subsets.items()]
                + [{"what": f"left out: {k}", "n": v} for k, v in report.left_out.items() if v], COUNT_COLUMNS)
    if report.ratio:
        say("k per class (train:test): " + ", ".join(f"{c} {k}" for c, k in report.ratio.items()))
    if report.near_duplicates:
        _table(f"{len(report.near_duplicates):,} near-duplicate pair(s) across the splits "
               "(--exclude-near-duplicates leaves them out):", report.near_duplicates, NEAR_COLUMNS)
    if report.near_duplicates_excluded:
        say(f"{report.near_duplicates_excluded:,} image(s) left out as near-duplicates of the other split")
    if report.clone_borrowed or report.clone_short:
        _table(f"clone of the test mix: {report.clone_borrowed:,} image(s) borrowed from the nearest cells, "
               f"{report.clone_short:,} not found:", report.clone, CLONE_COLUMNS)
    if report.below_target_cells:
        _table(f"{report.below_target_cells:,} cell(s) below the plan's target, {report.below_target_setups:,} "
               "setup(s) missing:", report.below_target, CELL_BELOW_COLUMNS)
    else:
        say("every cell of the plan meets its target")
    if not report.dry_run:
        say(f"content hash {report.content_hash}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from core.datasets.versions import list_versions

    with open_lab(args) as lab:
        rows = list_versions(lab.catalog, args.name)
    emit(args, rows, rows, LIST_COLUMNS)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from core.datasets.versions import show

    with open_lab(args) as lab:
        data = show(lab.catalog, args.ref)
    if args.json:
        print_json(data)
        return 0
    report = data["report"]
    say(f"{data['name']}@{data['version']}: {data['rule']} set of {data['plan']}, {data['images']:,} images, "
        f"{data['boxes']:,} boxes; frozen by {data['frozen_by']} on {when(data['frozen_at'])}; "
        f"labels as of {data['label_seq']}" + (f"; seed {data['seed']}" if data["seed"] is not None else ""))
    say(f"content hash {data['content_hash']}")
    ancestors = " ← ".join(a["version"] for a in data["lineage"]["ancestors"])
    if ancestors:
        say(f"derived from {ancestors}")
    if data["test_version"]:
        say(f"clones the test mix of {data['test_version']}")
    for d in data["lineage"]["descendants"]:
        say(f"{d['version']} ({d['rule']}) derives from {d['from']}")
    print_table([{"what": f"{k} images", "n": v} for k, v in report["subsets"].items()]
                + [{"what": f"left out: {k}", "n": v} for k, v in report["left_out"].items() if v]
                + [{"what": "near-duplicate pairs across splits", "n": len(report["near_duplicates"])},
                   {"what": "cells below target", "n": report["below_target_cells"]},
                   {"what": "setups missing", "n": report["below_target_setups"]}], COUNT_COLUMNS)
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from core.datasets.diff import diff

    with open_lab(args) as lab:
        d = diff(lab.catalog, args.a, args.b)
    if args.json:
        print_json(d.as_dict())
        return 0
    say(f"{d.a} → {d.b}: {d.added:,} added, {d.removed:,} removed, {d.labels_changed:,} with changed labels, "
        f"{d.moved:,} moved between train and validation")
    if args.cells:
        _table("by cell:", d.by_cell, DIFF_CELL_COLUMNS)
    else:
        print_table(d.by_class, DIFF_COLUMNS)
    if d.boxes_by_class:
        say("boxes of the changed images: " + ", ".join(
            f"{b['class_name']} −{b['boxes_gone']:,} +{b['boxes_new']:,}" for b in d.boxes_by_class))
    return 0


def cmd_distribution(args: argparse.Namespace) -> int:
    from core.datasets.distribution import distribution

    with open_lab(args) as lab:
        dist = distribution(lab.catalog, args.ref)
    if args.json:
        print_json(dist.as_dict())
        return 0
    say(f"{dist.version}: " + ", ".join(f"{n:,} {s} images" for s, n in dist.subsets.items()))
    if args.cells:
        _table("per cell:", dist.cells, DIST_CELL_COLUMNS)
        return 0
    print_table(dist.classes, CLASS_COLUMNS)
    per_image = [{"subset": r["subset"], "kind": "negative" if r["negative"] else "threat", "boxes": r["boxes"],
                  "images": r["images"]} for r in dist.boxes_per_image]
    _table("boxes per image:", per_image, PER_IMAGE_COLUMNS)
    _table("box sizes (side of a square of the same area):", dist.box_sizes, SIZE_COLUMNS)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from core.datasets.versions import export

    with open_lab(args) as lab:
        report = export(lab, args.ref, args.format, args.output, link=args.link)
    data = report.as_dict()
    emit(args, data, [{"what": k, "n": v} for k, v in data.items() if isinstance(v, int) and v], COUNT_COLUMNS)
    if not args.json:
        say(f"{args.ref} as {args.format} written to {report.out_dir}")
    return 0


def _ratio(text: str) -> int:
    try:
        value = int(text.split(":")[0])
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a ratio: give k (e.g. 2) or k:1") from None
    if value < 1 or (":" in text and text.split(":", 1)[1] != "1"):
        raise argparse.ArgumentTypeError(f"'{text}': give k as a whole number from 1 (e.g. 2 or 2:1)")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number (e.g. 0.1)") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"'{text}': the validation fraction is at least 0 and below 1")
    return value


def register(subparsers: argparse._SubParsersAction, common: Common) -> None:
    group = subparsers.add_parser("dataset", parents=[common.anywhere])
    actions = group.add_subparsers(dest="action", required=True)
    p = actions.add_parser("freeze", parents=[common.lab, common.json],
                           help="freeze the next version of a data set: the test set, or a k:1 train set")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--rule", required=True, choices=("test", "train"),
                   help="test: the plan's test images that passed QA; train: k:1 clone of the test mix")
    p.add_argument("--plan", metavar="PLAN", help="quota plan NAME or NAME@VERSION (default: the --from version's)")
    p.add_argument("--ratio", type=_ratio, metavar="K", help="train:test k for every class (default: each class's ratio step)")
    p.add_argument("--seed", type=int, metavar="S", help="seed of the train draw (default: --from's, else new; recorded)")
    p.add_argument("--from", dest="parent", metavar="VERSION",
                   help="NAME[@VERSION] this version derives from: a train set clones that test set, or keeps that train set's images")
    p.add_argument("--validation", type=_fraction, metavar="F",
                   help="train: fraction of physical setups carved out as validation (default 0.1)")
    p.add_argument("--exclude-near-duplicates", action="store_true",
                   help="leave out images with a near-duplicate in the other split (reported either way)")
    p.add_argument("--dry-run", action="store_true", help="show what would be frozen; write nothing")
    p.set_defaults(func=cmd_freeze)
    p = actions.add_parser("list", parents=[common.lab, common.json], help="frozen versions")
    p.add_argument("name", nargs="?", help="only this data set's versions")
    p.set_defaults(func=cmd_list)
    p = actions.add_parser("show", parents=[common.lab, common.json],
                           help="a version: rule, hash, lineage, what its freeze reported")
    p.add_argument("ref", metavar="NAME[@VERSION]")
    p.set_defaults(func=cmd_show)
    p = actions.add_parser("diff", parents=[common.lab, common.json],
                           help="images added and removed, labels changed, by class (or --cells)")
    p.add_argument("a", metavar="A", help="NAME[@VERSION]")
    p.add_argument("b", metavar="B", help="NAME[@VERSION]")
    p.add_argument("--cells", action="store_true", help="one row per quota cell")
    p.set_defaults(func=cmd_diff)
    p = actions.add_parser("distribution", parents=[common.lab, common.json],
                           help="labels per class, per cell (--cells), boxes per image, box sizes")
    p.add_argument("ref", metavar="NAME[@VERSION]")
    p.add_argument("--cells", action="store_true", help="one row per quota cell and subset")
    p.set_defaults(func=cmd_distribution)
    p = actions.add_parser("export", parents=[common.lab, common.json],
                           help="write a version's images and labels in a format, with a manifest of hashes")
    p.add_argument("ref", metavar="NAME[@VERSION]")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="a new (or empty) folder")
    p.add_argument("--link", action="store_true", help="hard-link the images instead of copying (same disk only)")
    p.set_defaults(func=cmd_export)
