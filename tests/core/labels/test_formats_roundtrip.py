"""Write -> read gives back what each format can carry, for generated label sets
(negatives, crowd, flags, scores, rotation, unicode names, subfolders)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings

from core.labels.formats import coco, cvat, labelstudio, voc, yolo
from core.labels.model import LabelBox, LabelImage, LabelSet
from tests.core.labels.labelsets import assert_same, carried, label_sets, make_images, scratch

EXAMPLES = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@EXAMPLES
@given(label_sets(rotation=True))
def test_coco_round_trip(labels):
    with scratch() as d:
        [path] = coco.write(labels, d)
        result = coco.read(path)
    assert result.ok, result.problems
    assert_same(result.labels, carried(labels, "coco"))


@EXAMPLES
@given(label_sets())
def test_yolo_round_trip(labels):
    with scratch() as d:
        yolo.write(labels, d)
        make_images(labels, d / "images")
        result = yolo.read(d)
    assert result.ok, result.problems
    assert_same(result.labels, carried(labels, "yolo"))


@EXAMPLES
@given(label_sets())
def test_voc_round_trip(labels):
    with scratch() as d:
        voc.write(labels, d)
        result = voc.read(d)
    if not carried(labels, "voc").images:  # nothing labelled: no file written, and an empty folder is refused
        assert [p.message for p in result.problems] == ["no Pascal VOC .xml file in this folder"]
        return
    assert result.ok, result.problems
    # VOC has no category list: the labels used, in the order the files are read.
    assert_same(result.labels, carried(labels, "voc"), ordered_categories=False)


@EXAMPLES
@given(label_sets(rotation=True))
def test_cvat_round_trip(labels):
    with scratch() as d:
        [path] = cvat.write(labels, d)
        result = cvat.read(path)
    assert result.ok, result.problems
    assert_same(result.labels, carried(labels, "cvat"))


@EXAMPLES
@given(label_sets(rotation=True))
def test_labelstudio_round_trip(labels):
    with scratch() as d:
        path, _config = labelstudio.write(labels, d)
        result = labelstudio.read(path)
    assert result.ok, result.problems
    assert_same(result.labels, carried(labels, "labelstudio"))


def test_voc_corners_are_one_based_inclusive(tmp_path):
    """A box over 0-based pixel columns 10..19 and rows 5..9 is VOC's 11..20 x 6..10."""
    labels = LabelSet((LabelImage("a.png", 64, 32, (LabelBox("knife", 10, 5, 20, 10),)),), ("knife",))
    [path] = voc.write(labels, tmp_path)
    text = path.read_text()
    for tag, v in (("xmin", 11), ("ymin", 6), ("xmax", 20), ("ymax", 10)):
        assert f"<{tag}>{v}</{tag}>" in text
    assert voc.read(tmp_path).labels == LabelSet((LabelImage("a.png", 64, 32, (LabelBox("knife", 10, 5, 20, 10),)),),
                                                ("knife",))


def test_labelstudio_rotation_is_about_the_top_left_corner(tmp_path):
    """A 40% x 20% rectangle at (50%, 50%) of a 100x100 image turned 90 degrees
    about its top-left corner covers x 30..50, y 50..90."""
    task = [{"id": 1, "data": {"image": "/data/upload/3/0a1b2c3d-bag.png"}, "annotations": [{"id": 1, "result": [
        {"id": "r", "type": "rectanglelabels", "original_width": 100, "original_height": 100,
         "value": {"x": 50, "y": 50, "width": 40, "height": 20, "rotation": 90, "rectanglelabels": ["gun"]}}]}]}]
    (tmp_path / "export.json").write_text(json.dumps(task))
    result = labelstudio.read(tmp_path / "export.json")
    [im] = result.labels.images
    assert im.file_name == "bag.png"
    [b] = im.boxes
    assert (b.x0, b.y0, b.x1, b.y1) == pytest.approx((30, 50, 50, 90))
    assert b.rotation == 90 and b.rotated_rect == pytest.approx((40, 70, 40, 20))


def test_coco_writer_leaves_out_unlabelled_images_and_keeps_negatives(tmp_path):
    labels = LabelSet((LabelImage("clean.png", 8, 8, negative=True), LabelImage("unknown.png", 8, 8)), ("gun",))
    [path] = coco.write(labels, tmp_path)
    doc = json.loads(path.read_text())
    assert [i["file_name"] for i in doc["images"]] == ["clean.png"] and doc["annotations"] == []
    assert coco.read(path).labels.images == (LabelImage("clean.png", 8, 8, negative=True, ext_id="1"),)
    assert coco.read(path, empty_is_negative=False).labels.images[0].negative is False
