"""Our files read by reference parsers (pycocotools, globox), and files the
reference writers made read by ours. globox reads and writes COCO, YOLO
(darknet), Pascal VOC and CVAT; it has no Label Studio support."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings

from core.labels.formats import coco, cvat, voc, yolo
from core.labels.model import LabelSet
from tests.core.labels.labelsets import assert_same, carried, label_sets, make_images, scratch

globox = pytest.importorskip("globox")
# pycocotools' mask decoding warns about numpy 2's copy keyword; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
EXAMPLES = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _boxes_by_image(annset) -> dict[str, list[tuple]]:
    return {a.image_id: [(b.label, *b.ltrb) for b in a.boxes] for a in annset}


def _expected(labels: LabelSet, fmt: str, shift: float = 0.0) -> dict[str, list[tuple]]:
    return {im.file_name: [(b.label, b.x0 + shift, b.y0 + shift, b.x1, b.y1) for b in im.boxes]
            for im in carried(labels, fmt).images}


def _close(got: dict, want: dict, tol: float = 1e-6) -> None:
    assert sorted(got) == sorted(want)
    for name in want:
        assert len(got[name]) == len(want[name]), name
        for g, w in zip(got[name], want[name]):
            assert g[0] == w[0] and all(abs(a - b) <= tol for a, b in zip(g[1:], w[1:])), (name, g, w)


def _globox_set(labels: LabelSet, shift: float = 0.0):
    from globox import Annotation, AnnotationSet, BoundingBox

    return AnnotationSet([
        Annotation(im.file_name, image_size=(im.width, im.height),
                   boxes=[BoundingBox.create(label=b.label, coords=(b.x0 + shift, b.y0 + shift, b.x1, b.y1))
                          for b in im.boxes])
        for im in labels.images if im.boxes or im.negative])


def _plain(labels: LabelSet, score: bool = False) -> LabelSet:
    """What globox keeps: label and corners, and COCO's score (no flags, no rotation)."""
    return LabelSet(tuple(dataclasses.replace(im, boxes=tuple(
        dataclasses.replace(b, iscrowd=False, difficult=False, truncated=False, score=b.score if score else None)
        for b in im.boxes)) for im in labels.images), labels.categories)


@EXAMPLES
@given(label_sets(rotation=True))
def test_pycocotools_loads_our_coco(labels):
    from pycocotools.coco import COCO

    want = carried(labels, "coco")
    with scratch() as d:
        [path] = coco.write(labels, d)
        api = COCO(str(path))
    assert len(api.imgs) == len(want.images)
    assert len(api.anns) == sum(len(im.boxes) for im in want.images)
    assert [c["name"] for c in api.loadCats(api.getCatIds())] == list(want.categories)
    names = {c["id"]: c["name"] for c in api.loadCats(api.getCatIds())}
    by_name = {im.file_name: im for im in want.images}
    for img in api.loadImgs(api.getImgIds()):
        im = by_name[img["file_name"]]
        assert (img["width"], img["height"]) == (im.width, im.height)
        anns = api.loadAnns(api.getAnnIds(imgIds=[img["id"]]))
        assert [(names[a["category_id"]], a["iscrowd"]) for a in anns] == \
            [(b.label, int(b.iscrowd)) for b in im.boxes]
        for a, b in zip(anns, im.boxes):
            x, y, w, h = a["bbox"]
            assert (x, y, x + w, y + h) == pytest.approx((b.x0, b.y0, b.x1, b.y1), abs=1e-9)
            # The polygon written for mask tools rasterises inside the box.
            ys, xs = api.annToMask(a).nonzero()
            assert xs.size or w < 2 or h < 2
            assert all(b.x0 - 1 <= x <= b.x1 for x in xs) and all(b.y0 - 1 <= y <= b.y1 for y in ys)


@EXAMPLES
@given(label_sets(rotation=True))
def test_globox_reads_our_coco_and_we_read_its(labels):
    with scratch() as d:
        [path] = coco.write(labels, d)
        theirs = globox.AnnotationSet.from_coco(path)
        _close(_boxes_by_image(theirs), _expected(labels, "coco"))
        theirs.save_coco(d / "globox.json", auto_ids=True)
        result = coco.read(d / "globox.json")
    assert result.ok, result.problems
    # globox keeps the category ids it read, so every category, in its own order.
    assert_same(result.labels, _plain(carried(labels, "coco"), score=True), ordered_categories=False)


@EXAMPLES
@given(label_sets(flat=True))
def test_globox_reads_our_yolo_and_we_read_its(labels):
    with scratch() as d:
        yolo.write(labels, d / "ours", classes_txt=True)
        make_images(labels, d / "ours" / "images")
        theirs = globox.AnnotationSet.from_yolo_v5(d / "ours" / "labels", image_folder=d / "ours" / "images",
                                                        image_extension=".png")
        # Ultralytics layout (a score goes last): globox's "yolo_v5"; it names classes by index.
        got = {k: [(labels.categories[int(b[0])], *b[1:]) for b in v] for k, v in _boxes_by_image(theirs).items()}
        _close(got, {k: v for k, v in _expected(labels, "yolo").items() if k in _labelled(labels)})
        # globox writes a flat folder of .txt; with the images and classes.txt beside them it is a YOLO set.
        mine = _globox_set(labels)
        mine.save_yolo_v5(d / "theirs", label_to_id={n: i for i, n in enumerate(labels.categories)})
        make_images(labels, d / "theirs")
        (d / "theirs" / "classes.txt").write_text("".join(n + "\n" for n in labels.categories))
        result = yolo.read(d / "theirs")
    assert result.ok, result.problems
    assert_same(result.labels, _plain(carried(labels, "yolo")))


def _labelled(labels: LabelSet) -> set[str]:
    return {im.file_name for im in labels.images if im.boxes or im.negative}


@EXAMPLES
@given(label_sets(flat=True))  # globox names an image by <filename> alone
def test_globox_reads_our_voc_and_we_read_its(labels):
    if not _labelled(labels):
        return
    with scratch() as d:
        voc.write(labels, d / "ours")
        theirs = globox.AnnotationSet.from_pascal_voc(d / "ours", recursive=True)
        got = _boxes_by_image(theirs)
        # globox takes VOC corners as written (1-based inclusive): ours, shifted by one at the near edge.
        want = _expected(labels, "voc", shift=1.0)
        _close(got, want)
        _globox_set(labels, shift=1.0).save_pascal_voc(d / "theirs")
        result = voc.read(d / "theirs")
    assert result.ok, result.problems
    assert_same(result.labels, _plain(carried(labels, "voc")), ordered_categories=False)


@EXAMPLES
@given(label_sets())
def test_globox_reads_our_cvat_and_we_read_its(labels):
    with scratch() as d:
        [path] = cvat.write(labels, d)
        theirs = globox.AnnotationSet.from_cvat(path)
        _close(_boxes_by_image(theirs), _expected(labels, "cvat"))
        _globox_set(labels).save_cvat(d / "globox.xml")
        result = cvat.read(d / "globox.xml")
    assert result.ok, result.problems
    want = _plain(carried(labels, "cvat"))
    assert_same(result.labels, LabelSet(want.images, tuple(dict.fromkeys(b.label for im in want.images
                                                                         for b in im.boxes))))
