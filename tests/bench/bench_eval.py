"""COCO evaluation speed: XLab against pycocotools and faster-coco-eval, in one run.

Each evaluator starts from the same two files (a ground truth and a detection
results file) and ends with the summary, so reading the files counts for each.
The figures are seconds and ratios (pycocotools' time / XLab's time: above 1
means XLab is faster). The three answers are compared entry by entry (the
precision and recall arrays), so a fast wrong answer shows.

    PYTHONPATH=. .venv/bin/python -m tests.bench.bench_eval [--images 50000 --classes 20]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def make_dataset(n_images: int, n_classes: int, seed: int = 0) -> tuple[dict, list[dict]]:
    """A ground truth and detections like a detector's: most boxes found with some jitter and a
    few class confusions, false positives everywhere, crowd regions, every area range."""
    rng = np.random.default_rng(seed)
    images = [{"id": i + 1, "width": 640, "height": 480, "file_name": f"{i + 1}.png"} for i in range(n_images)]
    categories = [{"id": c + 1, "name": f"class_{c + 1:02d}"} for c in range(n_classes)]
    annotations, detections = [], []
    per_image = rng.integers(0, 5, n_images)
    for image, n in zip(range(1, n_images + 1), per_image):
        side = rng.choice([12.0, 48.0, 150.0], size=n) * rng.uniform(0.6, 1.4, size=n)
        aspect = rng.uniform(0.5, 2.0, size=n)
        w, h = np.round(side * aspect, 1), np.round(side / aspect, 1)
        x, y = np.round(rng.uniform(0, 500, n), 1), np.round(rng.uniform(0, 350, n), 1)
        cls = rng.integers(1, n_classes + 1, n)
        crowd = rng.random(n) < 0.03
        for j in range(n):
            annotations.append({"id": len(annotations) + 1, "image_id": image, "category_id": int(cls[j]),
                                "bbox": [float(x[j]), float(y[j]), float(w[j]), float(h[j])],
                                "area": float(w[j] * h[j]), "iscrowd": int(crowd[j])})
            if rng.random() < 0.85:
                jitter = rng.normal(0, 0.08, 4) * [w[j], h[j], w[j], h[j]]
                label = int(cls[j]) if rng.random() < 0.9 else int(rng.integers(1, n_classes + 1))
                detections.append({"image_id": image, "category_id": label,
                                   "bbox": [float(x[j] + jitter[0]), float(y[j] + jitter[1]),
                                            float(max(1.0, w[j] + jitter[2])), float(max(1.0, h[j] + jitter[3]))],
                                   "score": round(float(rng.beta(5, 2)), 3)})
        for _ in range(int(rng.integers(0, 7))):
            s = float(rng.choice([10.0, 50.0, 140.0]))
            detections.append({"image_id": image, "category_id": int(rng.integers(1, n_classes + 1)),
                               "bbox": [round(float(rng.uniform(0, 500)), 1), round(float(rng.uniform(0, 350)), 1),
                                        s, s * 0.8],
                               "score": round(float(rng.beta(2, 5)), 3)})
    return {"images": images, "annotations": annotations, "categories": categories}, detections


def reference(gt: dict, dt: list[dict], library: str = "pycocotools") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, stats) from pycocotools or faster-coco-eval, given parsed files."""
    if library == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval as Evaluator
    else:
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as Evaluator
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        if dt:
            coco_dt = coco_gt.loadRes(copy.deepcopy(dt))
        else:
            # pycocotools cannot load an empty results list; this is what it would build.
            coco_dt = COCO()
            coco_dt.dataset = {"images": gt["images"], "categories": gt["categories"], "annotations": []}
            coco_dt.createIndex()
        evaluator = Evaluator(coco_gt, coco_dt, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return (np.asarray(evaluator.eval["precision"]), np.asarray(evaluator.eval["recall"]),
            np.asarray(evaluator.stats[:12]))


def _time_pycocotools(gt_path: Path, dt_path: Path, library: str):
    if library == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval as Evaluator
    else:
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as Evaluator
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(gt_path))
        coco_dt = coco_gt.loadRes(str(dt_path))
        evaluator = Evaluator(coco_gt, coco_dt, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return time.perf_counter() - start, np.asarray(evaluator.eval["precision"]), np.asarray(evaluator.eval["recall"]), \
        np.asarray(evaluator.stats[:12])


def _time_xlab(gt_path: Path, dt_path: Path):
    from core.evaluation.coco import evaluate_files

    start = time.perf_counter()
    result = evaluate_files(gt_path, dt_path)
    overall = result.overall()
    elapsed = time.perf_counter() - start
    return elapsed, result, overall


STATS_KEYS = ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large", "AR1", "AR10", "AR100", "AR_small",
              "AR_medium", "AR_large")


def run(images: int = 50_000, classes: int = 20, seed: int = 0, root: Path | None = None) -> dict:
    gt, dt = make_dataset(images, classes, seed)
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        gt_path, dt_path = Path(tmp) / "gt.json", Path(tmp) / "dt.json"
        gt_path.write_text(json.dumps(gt))
        dt_path.write_text(json.dumps(dt))
        xlab_s, result, overall = _time_xlab(gt_path, dt_path)
        coco_s, coco_p, coco_r, coco_stats = _time_pycocotools(gt_path, dt_path, "pycocotools")
        fast_s, fast_p, fast_r, fast_stats = _time_pycocotools(gt_path, dt_path, "faster-coco-eval")
    ours_stats = np.array([overall[k] for k in STATS_KEYS])
    return {
        "images": images, "classes": classes, "gt_boxes": len(gt["annotations"]), "detections": len(dt),
        "xlab_s": xlab_s, "pycocotools_s": coco_s, "faster_coco_eval_s": fast_s,
        "speedup_vs_pycocotools": coco_s / xlab_s, "speedup_vs_faster_coco_eval": fast_s / xlab_s,
        "max_diff_pycocotools": float(max(np.abs(result.precision - coco_p).max(),
                                          np.abs(result.recall - coco_r).max(),
                                          np.abs(ours_stats - coco_stats).max())),
        "max_diff_faster_coco_eval": float(max(np.abs(result.precision - fast_p).max(),
                                               np.abs(result.recall - fast_r).max(),
                                               np.abs(ours_stats - fast_stats).max())),
        "xlab_stats": ours_stats.tolist(), "pycocotools_stats": coco_stats.tolist(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    r = run(args.images, args.classes, args.seed)
    print(f"COCO evaluation, {r['images']:,} images x {r['classes']} classes, {r['gt_boxes']:,} boxes, "
          f"{r['detections']:,} detections (files read, evaluated, summarised)")
    print(f"  XLab              {r['xlab_s']:8.2f} s")
    print(f"  pycocotools       {r['pycocotools_s']:8.2f} s   XLab is {r['speedup_vs_pycocotools']:.1f}x faster")
    print(f"  faster-coco-eval  {r['faster_coco_eval_s']:8.2f} s   ratio faster-coco-eval/XLab "
          f"{r['speedup_vs_faster_coco_eval']:.2f}")
    print(f"  largest difference: {r['max_diff_pycocotools']:.2e} vs pycocotools, "
          f"{r['max_diff_faster_coco_eval']:.2e} vs faster-coco-eval (target: 1e-6)")
    print(f"  AP {r['xlab_stats'][0]:.4f}  AP50 {r['xlab_stats'][1]:.4f}  AP75 {r['xlab_stats'][2]:.4f}")


if __name__ == "__main__":
    main()
