"""Evaluating detection results: ``xlab eval coco``."""

from __future__ import annotations

import argparse
from typing import Any

from core.cli.common import Common
from core.cli.output import Column, count, emit, percent, say


def metric(value: Any) -> str:
    """A COCO figure as a percentage; pycocotools' -1 (no ground truth to measure it on) as a dash."""
    return "—" if value is None or value < 0 else percent(value)


COCO_COLUMNS = (
    Column("class_name", "Class"),
    Column("gt_boxes", "Boxes", count),
    Column("detections", "Detections", count),
    Column("AP", "AP", metric, right=True),
    Column("AP50", "AP50", metric, right=True),
    Column("AP75", "AP75", metric, right=True),
    Column("AP_small", "AP small", metric, right=True),
    Column("AP_medium", "AP medium", metric, right=True),
    Column("AP_large", "AP large", metric, right=True),
    Column("AR100", "AR100", metric, right=True),
    Column("recall50", "Recall @0.5", metric, right=True),
)


def cmd_coco(args: argparse.Namespace) -> int:
    from core.evaluation.coco import evaluate_files

    result = evaluate_files(args.gt, args.dt)
    per_class = result.per_class()
    overall = result.overall()
    rows = [{"class_name": name, **values} for name, values in per_class.items()]
    rows.append({"class_name": "all classes", **overall, "gt_boxes": sum(result.gt_boxes),
                 "detections": sum(result.detections)})
    emit(args, result.as_dict(), rows, COCO_COLUMNS)
    if not args.json:
        say(f"{result.images:,} images. AP: mean over IoU 0.50:0.95 at up to 100 detections per image; "
            "— : no ground-truth box to measure it on (left out of the means over classes).")
    return 0


def register(subparsers: argparse._SubParsersAction, common: Common) -> None:
    group = subparsers.add_parser("eval", parents=[common.anywhere])
    actions = group.add_subparsers(dest="action", required=True)
    p = actions.add_parser("coco", parents=[common.json],
                           help="COCO AP/AR of a detection results file against its ground truth (as pycocotools)")
    p.add_argument("--gt", required=True, metavar="GT.json", help="COCO ground truth (images, annotations, categories)")
    p.add_argument("--dt", required=True, metavar="DETECTIONS.json",
                   help="detection results: a list of {image_id, category_id, bbox [x,y,w,h], score}")
    p.set_defaults(func=cmd_coco)
