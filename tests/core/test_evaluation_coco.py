"""XLab's COCO evaluation against pycocotools and faster-coco-eval: every entry of
the precision and recall arrays and every summary figure, to 1e-6."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import InputFileError
from core.evaluation.coco import evaluate, evaluate_records, read_detections, read_ground_truth
from tests.bench.bench_eval import STATS_KEYS, make_dataset, reference

LIBRARIES = ("pycocotools", "faster-coco-eval")


def assert_agrees(gt: dict, dt: list[dict], libraries=LIBRARIES) -> None:
    ours = evaluate_records(gt, dt)
    overall = ours.overall()
    per_class = ours.per_class()
    for library in libraries:
        precision, recall, stats = reference(gt, dt, library)
        np.testing.assert_allclose(ours.precision, precision, atol=1e-6, rtol=0, err_msg=library)
        np.testing.assert_allclose(ours.recall, recall, atol=1e-6, rtol=0, err_msg=library)
        np.testing.assert_allclose([overall[k] for k in STATS_KEYS], stats, atol=1e-6, rtol=0, err_msg=library)
        # Per class, as pycocotools' summarize() would give it for that class alone.
        for k, name in enumerate(ours.category_names):
            s = precision[:, :, k, 0, 2]
            want = float(np.mean(s[s > -1])) if (s > -1).any() else -1.0
            assert per_class[name]["AP"] == pytest.approx(want, abs=1e-6), (library, name)
            s = precision[0, :, k, 0, 2]
            want = float(np.mean(s[s > -1])) if (s > -1).any() else -1.0
            assert per_class[name]["AP50"] == pytest.approx(want, abs=1e-6), (library, name)


# Coordinates and sizes on a coarse grid, so IoUs tie, boxes nest, and areas land on the
# range boundaries (32 x 32 = 1024 is both small and medium; 96 x 96 both medium and large).
SIDES = st.sampled_from([0, 3, 10, 20, 31, 32, 33, 40, 64, 96, 97, 130])
POSITIONS = st.sampled_from([0, 2, 5, 10, 16, 30, 60])
SCORES = st.sampled_from([0.05, 0.3, 0.5, 0.5, 0.7, 0.9, 1.0])


@st.composite
def coco_cases(draw):
    image_ids = draw(st.lists(st.integers(1, 10_000), min_size=1, max_size=6, unique=True))
    category_ids = draw(st.lists(st.integers(1, 500), min_size=1, max_size=7, unique=True))
    box = st.tuples(POSITIONS, POSITIONS, SIDES, SIDES).map(list)
    annotations = []
    for image in image_ids:
        for _ in range(draw(st.integers(0, 6))):  # an image may have no ground truth
            b = draw(box)
            ann = {"id": len(annotations) + 1, "image_id": image, "category_id": draw(st.sampled_from(category_ids)),
                   "bbox": b, "iscrowd": int(draw(st.integers(0, 5)) == 0),
                   "area": draw(st.sampled_from([b[2] * b[3], b[2] * b[3], 500, 1024, 5000, 9216, 20000]))}
            if draw(st.booleans()):
                ann["ignore"] = draw(st.integers(0, 1))  # pycocotools ignores it: so must XLab
            annotations.append(ann)
    detections = []
    for image in image_ids:
        for _ in range(draw(st.integers(0, 8))):  # an image may have no detections
            detections.append({"image_id": image, "category_id": draw(st.sampled_from(category_ids)),
                               "bbox": draw(box), "score": draw(SCORES)})
    # Shuffle the file order: images and annotations need not come sorted.
    order = draw(st.permutations(range(len(annotations))))
    gt = {"images": [{"id": i} for i in draw(st.permutations(image_ids))],
          "annotations": [annotations[i] for i in order],
          "categories": [{"id": c, "name": f"c{c}"} for c in category_ids]}
    return gt, detections


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(coco_cases())
def test_agrees_with_pycocotools_and_faster_coco_eval_on_generated_cases(case):
    gt, dt = case
    assert_agrees(gt, dt)


def test_crowd_region_absorbs_many_detections_and_counts_neither_way():
    gt = {"images": [{"id": 1}], "categories": [{"id": 1, "name": "knife"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 100, 100], "area": 10000,
                           "iscrowd": 1},
                          {"id": 2, "image_id": 1, "category_id": 1, "bbox": [200, 200, 50, 50], "area": 2500,
                           "iscrowd": 0}]}
    # Three detections inside the crowd (IoU = intersection / detection area = 1) score above the true hit.
    dt = [{"image_id": 1, "category_id": 1, "bbox": [10 * i, 10 * i, 20, 20], "score": 0.9} for i in range(3)]
    dt.append({"image_id": 1, "category_id": 1, "bbox": [200, 200, 50, 50], "score": 0.5})
    result = evaluate_records(gt, dt)
    # Not false positives: precision is 1 at every recall point, at every threshold.
    assert result.overall()["AP"] == pytest.approx(1.0)
    assert result.gt_boxes == (1,)
    assert_agrees(gt, dt)


def test_class_without_ground_truth_is_minus_one_and_left_out_of_the_means():
    gt = {"images": [{"id": 1}, {"id": 2}], "categories": [{"id": 1, "name": "gun"}, {"id": 2, "name": "knife"},
                                                           {"id": 3, "name": "taser"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 50, 50], "area": 2500,
                           "iscrowd": 0},
                          {"id": 2, "image_id": 2, "category_id": 2, "bbox": [0, 0, 50, 50], "area": 2500,
                           "iscrowd": 0}]}
    dt = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 50, 50], "score": 0.9},
          {"image_id": 2, "category_id": 3, "bbox": [0, 0, 50, 50], "score": 0.9}]  # taser: no ground truth
    result = evaluate_records(gt, dt)
    per_class = result.per_class()
    assert per_class["gun"]["AP"] == pytest.approx(1.0)
    assert per_class["knife"]["AP"] == 0.0  # missed
    assert per_class["taser"]["AP"] == -1.0 and per_class["taser"]["detections"] == 1
    assert result.overall()["AP"] == pytest.approx(0.5)  # (1 + 0) / 2, the taser left out
    assert_agrees(gt, dt)


def test_no_detections_at_all():
    gt, _ = make_dataset(20, 3, seed=4)
    result = evaluate_records(gt, [])
    assert result.overall()["AP"] == 0.0 and result.overall()["AR100"] == 0.0
    assert_agrees(gt, [])


def test_ties_in_scores_across_images_follow_the_stable_order():
    # Equal scores, one hit and one miss per image, images listed out of id order: the
    # precision curve depends on which of the tied detections comes first.
    gt = {"images": [{"id": 9}, {"id": 3}, {"id": 5}], "categories": [{"id": 1, "name": "knife"}],
          "annotations": [{"id": i + 1, "image_id": img, "category_id": 1, "bbox": [0, 0, 40, 40], "area": 1600,
                           "iscrowd": 0}
                          for i, img in enumerate((9, 3, 5))]}
    dt = []
    for img, hit_first in ((9, True), (3, False), (5, True)):
        hit = {"image_id": img, "category_id": 1, "bbox": [0, 0, 40, 40], "score": 0.5}
        miss = {"image_id": img, "category_id": 1, "bbox": [100, 100, 40, 40], "score": 0.5}
        dt += [hit, miss] if hit_first else [miss, hit]
    assert_agrees(gt, dt)


def test_more_than_max_dets_per_image_and_equal_ious_to_two_boxes():
    rng = np.random.default_rng(3)
    gt = {"images": [{"id": 1}, {"id": 2}], "categories": [{"id": 1, "name": "knife"}, {"id": 2, "name": "gun"}],
          "annotations": []}
    for img in (1, 2):
        for j in range(30):
            x, y = float(rng.integers(0, 300)), float(rng.integers(0, 300))
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": img, "category_id": 1,
                                      "bbox": [x, y, 40.0, 40.0], "area": 1600.0, "iscrowd": 0})
    # Two identical boxes: a detection on them has equal IoU with both (the later one wins).
    gt["annotations"].append({"id": 1000, "image_id": 1, "category_id": 2, "bbox": [0, 0, 30, 30], "area": 900,
                               "iscrowd": 0})
    gt["annotations"].append({"id": 1001, "image_id": 1, "category_id": 2, "bbox": [0, 0, 30, 30], "area": 900,
                               "iscrowd": 0})
    dt = [{"image_id": 1, "category_id": 2, "bbox": [0, 0, 30, 30], "score": 0.8}]
    for img in (1, 2):
        for _ in range(140):  # more than 100: the lowest-scored are dropped per image
            x, y = float(rng.integers(0, 300)), float(rng.integers(0, 300))
            dt.append({"image_id": img, "category_id": 1, "bbox": [x, y, 40.0, 40.0],
                       "score": float(rng.choice([0.2, 0.4, 0.6]))})
    result = evaluate_records(gt, dt)
    assert result.detections == (200, 1)
    assert_agrees(gt, dt)


def _gt(*boxes, crowd=(), areas=None):
    return {"images": [{"id": 1}], "categories": [{"id": 1, "name": "knife"}],
            "annotations": [{"id": i + 1, "image_id": 1, "category_id": 1, "bbox": list(b),
                             "area": (areas or {}).get(i, b[2] * b[3]), "iscrowd": int(i in crowd)}
                            for i, b in enumerate(boxes)]}


def test_a_detection_takes_a_real_box_before_a_better_overlapping_ignored_one():
    # In the medium range the detection overlaps a real box at IoU 0.64, a crowd region (IoU 1
    # by its own area) and, exactly, a box whose area is large: it must take the real one.
    gt = _gt((0, 0, 50, 50), (0, 0, 40, 40), (0, 0, 200, 200), crowd=(2,), areas={1: 20000})
    dt = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 40, 40], "score": 0.9}]
    result = evaluate_records(gt, dt)
    assert result.recall[0, 0, 2, 2] == 1.0  # IoU 0.5, medium, 100 detections: the real box is found
    assert_agrees(gt, dt)


def test_equal_iou_with_two_boxes_goes_to_the_later_box():
    # The first detection sits between two boxes (equal IoU); the second fits only the first box.
    # Taking the later box leaves the first one to the second detection: two hits, not one.
    gt = _gt((0, 0, 20, 20), (10, 0, 20, 20))
    dt = [{"image_id": 1, "category_id": 1, "bbox": [5, 0, 20, 20], "score": 0.9},
          {"image_id": 1, "category_id": 1, "bbox": [0, 0, 20, 20], "score": 0.8}]
    result = evaluate_records(gt, dt)
    assert result.recall[0, 0, 0, 2] == 1.0
    assert_agrees(gt, dt)


def test_missing_area_is_width_times_height():
    gt, dt = make_dataset(30, 2, seed=5)
    without = json.loads(json.dumps(gt))
    for ann in without["annotations"]:
        ann["area"] = ann["bbox"][2] * ann["bbox"][3]
    ours = evaluate_records({**without, "annotations": [{k: v for k, v in a.items() if k != "area"}
                                                        for a in without["annotations"]]}, dt)
    precision, recall, _ = reference(without, dt, "pycocotools")
    np.testing.assert_allclose(ours.precision, precision, atol=1e-6, rtol=0)


def test_generated_detector_output_agrees():
    gt, dt = make_dataset(400, 12, seed=11)
    assert_agrees(gt, dt)


# Malformed files ---------------------------------------------------------------------------------------------


GOOD_GT = {"images": [{"id": 1}], "categories": [{"id": 1, "name": "knife"}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100}]}


@pytest.mark.parametrize("gt, expected", [
    ([], "is a JSON object"),
    ({"images": [{"id": 1}], "annotations": []}, "no 'categories' list"),
    ({**GOOD_GT, "images": [{"id": 1}, {"id": 1}]}, "image id 1 is listed twice"),
    ({**GOOD_GT, "categories": [{"id": 1}]}, "needs a 'name'"),
    ({**GOOD_GT, "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "a"}]}, "used by two categories"),
    ({**GOOD_GT, "annotations": [{"id": 1, "image_id": 2, "category_id": 1, "bbox": [0, 0, 1, 1]}]},
     "image_id 2 is not in 'images'"),
    ({**GOOD_GT, "annotations": [{"id": 1, "image_id": 1, "category_id": 5, "bbox": [0, 0, 1, 1]}]},
     "category_id 5 is not in 'categories'"),
    ({**GOOD_GT, "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, -1, 1]}]},
     "negative width or height"),
    ({**GOOD_GT, "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, float("nan"), 1, 1]}]},
     "not a finite number"),
    ({**GOOD_GT, "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1]}]}, "4 numbers"),
    ({**GOOD_GT, "annotations": [{"id": 1, "image_id": 1, "category_id": 1}]}, "has no 'bbox'"),
    ({**GOOD_GT, "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "area": -4}]},
     "area must be a number of 0 or more"),
    ({**GOOD_GT, "annotations": GOOD_GT["annotations"] * 2}, "annotation id 1 is used twice"),
])
def test_malformed_ground_truth_names_the_problem(gt, expected):
    with pytest.raises(InputFileError) as error:
        read_ground_truth(gt, "gt.json")
    assert any(expected in p.message for p in error.value.problems), error.value.problems


@pytest.mark.parametrize("dt, expected", [
    ({"annotations": []}, "is a JSON list"),
    ([{"image_id": 2, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}], "image_id 2 is not in"),
    ([{"image_id": 1, "category_id": 3, "bbox": [0, 0, 1, 1], "score": 0.5}], "category_id 3 is not in"),
    ([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": float("nan")}], "score must be a finite"),
    ([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, -1], "score": 0.5}], "negative width or height"),
    ([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}], "has no 'score'"),
    ([{"image_id": "1", "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}], "image_id must be an integer"),
    ([{"image_id": 1, "category_id": 1, "bbox": [0, 0, "1", 1], "score": 0.5}], "4 numbers"),
    ([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": True}], "score must be a finite"),
])
def test_malformed_detections_name_the_problem(dt, expected):
    gt = read_ground_truth(GOOD_GT)
    with pytest.raises(InputFileError) as error:
        read_detections(dt, gt, "dt.json")
    assert any(expected in p.message for p in error.value.problems), error.value.problems


def test_every_bad_detection_is_listed_with_its_index():
    gt = read_ground_truth(GOOD_GT)
    dt = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}] * 3
    dt += [{"image_id": 7, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5},
           {"image_id": 1, "category_id": 1, "bbox": [0, 0, -2, 1], "score": 0.5}]
    with pytest.raises(InputFileError) as error:
        read_detections(dt, gt, "dt.json")
    messages = [p.message for p in error.value.problems]
    assert len(messages) == 2
    assert messages[0].startswith("detections[3]:") and messages[1].startswith("detections[4]:")


# Through the real command ----------------------------------------------------------------------------------


def xlab(*args):
    return subprocess.run([sys.executable, "-m", "app", *map(str, args)], capture_output=True, text=True,
                          env=dict(os.environ), timeout=120)


def test_xlab_eval_coco_json_matches_pycocotools(tmp_path):
    gt, dt = make_dataset(150, 5, seed=2)
    gt["categories"].append({"id": 99, "name": "no ground truth"})
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dt.json").write_text(json.dumps(dt))
    run = xlab("eval", "coco", "--gt", tmp_path / "gt.json", "--dt", tmp_path / "dt.json", "--json")
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    precision, _, stats = reference(gt, dt, "pycocotools")
    for key, value in zip(("AP", "AP50", "AP75"), stats[:3]):
        assert out["overall"][key] == pytest.approx(value, abs=1e-6)
    for k, category in enumerate(gt["categories"]):
        s = precision[:, :, k, 0, 2]
        want = float(np.mean(s[s > -1])) if (s > -1).any() else -1.0
        assert out["per_class"][category["name"]]["AP"] == pytest.approx(want, abs=1e-6)
        s = precision[0, :, k, 0, 2]
        want = float(np.mean(s[s > -1])) if (s > -1).any() else -1.0
        assert out["per_class"][category["name"]]["AP50"] == pytest.approx(want, abs=1e-6)

    table = xlab("eval", "coco", "--gt", tmp_path / "gt.json", "--dt", tmp_path / "dt.json")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert max(map(len, lines)) <= 100
    assert any(line.startswith("all classes") and f"{stats[0] * 100:.1f} %" in line for line in lines)
    assert any(line.startswith("no ground truth") and "—" in line for line in lines)


def test_xlab_eval_coco_bad_files_exit_2_with_a_line_per_problem(tmp_path):
    (tmp_path / "gt.json").write_text('{"images": [{"id": 1}],\n "annotations": [,]}')
    (tmp_path / "dt.json").write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1],
                                                   "score": 0.5}]))
    run = xlab("eval", "coco", "--gt", tmp_path / "gt.json", "--dt", tmp_path / "dt.json")
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert f"{tmp_path / 'gt.json'}:2: not valid JSON" in run.stderr

    (tmp_path / "gt.json").write_text(json.dumps(GOOD_GT))
    (tmp_path / "dt.json").write_text('[{"image_id": 1, "category_id": 4, "bbox": [0, 0, 1, 1], "score": NaN},'
                                      ' {"image_id": 3, "category_id": 1, "bbox": [0, 0, -1, 1], "score": 1}]')
    run = xlab("eval", "coco", "--gt", tmp_path / "gt.json", "--dt", tmp_path / "dt.json", "--json")
    assert run.returncode == 2 and run.stdout == ""
    assert "Traceback" not in run.stderr
    problems = [line.strip() for line in run.stderr.splitlines()[1:]]
    assert problems == [
        f"{tmp_path / 'dt.json'}: detections[0]: category_id 4 is not in the ground truth's categories",
        f"{tmp_path / 'dt.json'}: detections[0]: score must be a finite number, got nan",
        f"{tmp_path / 'dt.json'}: detections[1]: image_id 3 is not in the ground truth's images",
        f"{tmp_path / 'dt.json'}: detections[1]: bbox has a negative width or height: [0.0, 0.0, -1.0, 1.0]",
    ]
