"""``xlab annotations``: import, export, list an image's labels, the QA flags."""

from __future__ import annotations

import argparse
import sys

from core.cli.common import Common, open_lab
from core.cli.output import Column, count, emit, ident, print_json, say, when, words

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
    emit(args, report.as_dict(), _counts_rows(report.counts) + _counts_rows({f"flag {k}": v for k, v in report.flags.items()}),
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
