"""Hand-written sample files (tests/data/labels/, written from each format's
documentation) with their edge cases: what is read, what is counted, and where
each problem is reported."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.labels.formats import read

DATA = Path(__file__).resolve().parents[2] / "data" / "labels"


def _boxes(result, name):
    [im] = [i for i in result.labels.images if i.file_name == name]
    return [(b.label, *(pytest.approx(v, abs=1e-6) for v in (b.x0, b.y0, b.x1, b.y1))) for b in im.boxes], im


def _where(result):
    return sorted((Path(p.file).name, p.where, p.fatal) for p in result.problems)


def test_coco_sample():
    r = read("coco", DATA / "coco")
    assert r.labels.categories == ("handgun", "knife", "scissors")
    boxes, im = _boxes(r, "train/bag_0001.png")
    assert boxes == [("handgun", 100, 50, 180.5, 90), ("knife", 600, 400, 640, 480), ("knife", 10, 10, 40, 30)]
    assert [b.iscrowd for b in im.boxes] == [False, False, True]
    boxes, im = _boxes(r, "val/Koffer_ä_ножницы.png")  # polygon-only, RLE-only (zero bbox), then a scored box
    assert boxes == [("scissors", 20, 30, 35, 40), ("scissors", 10, 10, 12, 15), ("handgun", 5, 6, 12, 14)]
    assert im.boxes[2].score == 0.87
    assert _boxes(r, "train/clean_0002.png")[1].negative
    assert {k: r.counts.get(k) for k in ("crowd", "segmentation_only", "boxes_outside_clipped",
                                         "degenerate_dropped")} == dict.fromkeys(
        ("crowd", "boxes_outside_clipped", "degenerate_dropped"), 1) | {"segmentation_only": 2}
    assert _where(r) == [("annotations.json", f"annotation id {i}", False) for i in (11, 13, 14, 15)]


def test_yolo_sample():
    r = read("yolo", DATA / "yolo" / "data.yaml")
    assert r.labels.categories == ("handgun", "knife", "Schere")
    boxes, im = _boxes(r, "train/bag_001.png")  # a 64x48 16-bit PNG
    assert boxes == [("handgun", 24, 12, 40, 36), ("knife", 3.2, 2.4, 9.6, 7.2)] and im.boxes[1].score == 0.66
    assert _boxes(r, "train/clean_002.png")[1].negative  # empty .txt
    unlabelled = _boxes(r, "val/unlabelled.tif")[1]  # 16-bit TIFF with no .txt
    assert (unlabelled.width, unlabelled.height, unlabelled.negative) == (20, 30, False)
    boxes, _ = _boxes(r, "val/ножницы.png")  # a segment line, then a box clipped at the right edge
    assert boxes == [("Schere", 16, 10, 32, 20), ("knife", 68, 16, 80, 24)]
    assert _where(r) == [("orphan.txt", "", True), ("ножницы.txt", "line 2", True),
                         ("ножницы.txt", "line 3", False), ("ножницы.txt", "line 5", True)]
    assert "class index 7 is out of range" in str(r.problems[0])


def test_voc_sample():
    r = read("voc", DATA / "voc")
    boxes, im = _boxes(r, "000001.jpg")
    # 1-based inclusive corners: xmin 48 is 0-based 47; the handgun is clipped at the 500-pixel bottom.
    assert boxes == [("knife", 47, 239, 195, 371), ("handgun", 7, 11, 352, 500)]
    assert [(b.truncated, b.difficult) for b in im.boxes] == [(True, False), (False, True)]
    assert _boxes(r, "sub/Gepäck_leer.png")[1].negative
    assert _where(r) == [("000001.xml", "line 26", False), ("000001.xml", "line 38", False)]
    assert r.counts["degenerate_dropped"] == 1 and r.counts["difficult"] == r.counts["truncated"] == 1


def test_cvat_sample():
    r = read("cvat", DATA / "cvat" / "annotations.xml")
    assert r.labels.categories == ("handgun", "knife")
    boxes, im = _boxes(r, "scans/bag_01.png")
    knife = im.boxes[1]
    assert knife.rotation == 30 and knife.difficult and knife.rotated_rect == (550, 320, 100, 40)
    assert boxes[0] == ("handgun", 100, 200, 300.5, 260)
    assert _boxes(r, "scans/clean_02.png")[1].negative
    assert _where(r) == [("annotations.xml", "line 21", False), ("annotations.xml", "line 33", True),
                         ("annotations.xml", "line 34", False)]
    assert r.counts["occluded"] == 1 and r.counts["non_box_shapes"] == 1


def test_labelstudio_sample():
    r = read("labelstudio", DATA / "labelstudio" / "export.json")
    names = [im.file_name for im in r.labels.images]
    assert names == ["bag_0001.png", "scans/Gepäck/clean_0002.png", "unseen_0003.png", "batch7/bag_0004.png"]
    boxes, im = _boxes(r, "bag_0001.png")  # the last live annotation; percent of 1000 x 500
    assert boxes == [("handgun", 100, 100, 400, 300), ("knife", 400, 250, 500, 350)]
    assert im.boxes[1].rotation == 90
    assert _boxes(r, "scans/Gepäck/clean_0002.png")[1].negative
    assert not _boxes(r, "unseen_0003.png")[1].negative
    assert _boxes(r, "batch7/bag_0004.png")[0] == [("scissors", 180, 10, 200, 20)]  # rectangle + labels by id
    assert r.counts["other_results_ignored"] == 1


def test_coco_folder_merges_files_and_reports_conflicts(tmp_path):
    import json

    doc = json.loads((DATA / "coco" / "annotations.json").read_text())
    shutil.copy(DATA / "coco" / "annotations.json", tmp_path / "train.json")
    doc["images"][0]["width"] = 100  # the same image with another size: a conflict
    doc["images"] = doc["images"][:2]
    doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] == 1]
    doc["categories"] = [{"id": 9, "name": "knife"}, {"id": 1, "name": "handgun"}]
    for a in doc["annotations"]:
        a["category_id"] = 9
    (tmp_path / "val.json").write_text(json.dumps(doc))
    r = read("coco", tmp_path)
    conflicts = [p for p in r.problems if p.file.endswith("val.json")]
    assert [(p.where, p.fatal) for p in conflicts] == [("image id 1", True), ("image id 2", False)] + \
        [(f"annotation id {i}", True) for i in (10, 11, 12)]
    assert "640x480 in train.json" in conflicts[0].message
    assert r.labels.categories == ("handgun", "knife", "scissors")
