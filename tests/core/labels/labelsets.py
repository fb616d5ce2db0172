"""Hypothesis strategies for label sets, and what each format can carry of one."""

from __future__ import annotations

import dataclasses
import tempfile
from contextlib import contextmanager
from pathlib import Path

from hypothesis import strategies as st

from core.labels.formats.collect import rotated_corners
from core.labels.model import LabelBox, LabelImage, LabelSet

NAME_CHARS = st.characters(categories=("Lu", "Ll", "Nd"), include_characters="_-ÄéßДж火")


@st.composite
def boxes(draw, labels: list[str], width: int, height: int, rotation: bool) -> LabelBox:
    label = draw(st.sampled_from(labels))
    flags = dict(iscrowd=draw(st.booleans()), difficult=draw(st.booleans()), truncated=draw(st.booleans()),
                 score=draw(st.none() | st.floats(0, 1)))
    if rotation and draw(st.booleans()):
        side = min(width, height) / 4
        cx = draw(st.floats(width / 4, 3 * width / 4))
        cy = draw(st.floats(height / 4, 3 * height / 4))
        w, h = draw(st.floats(0.5, side)), draw(st.floats(0.5, side))
        angle = draw(st.floats(1, 359))
        pts = rotated_corners(cx, cy, w, h, angle)
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        return LabelBox(label, min(xs), min(ys), max(xs), max(ys), rotation=angle, rotated_rect=(cx, cy, w, h),
                        **flags)
    # Pixel-grid corners half the time (what people draw), any float the rest.
    grid = draw(st.booleans())
    coord = (lambda lo, hi: st.integers(int(lo), int(hi)).map(float)) if grid else st.floats
    x0 = draw(coord(0, width - 1))
    y0 = draw(coord(0, height - 1))
    x1 = draw(coord(x0 + 1, width))
    y1 = draw(coord(y0 + 1, height))
    return LabelBox(label, x0, y0, x1, y1, **flags)


@st.composite
def label_sets(draw, rotation: bool = False, flat: bool = False) -> LabelSet:
    categories = draw(st.lists(st.text(NAME_CHARS, min_size=1, max_size=10), min_size=1, max_size=5, unique=True))
    stems = draw(st.lists(st.text(NAME_CHARS, min_size=1, max_size=12), min_size=1, max_size=6,
                          unique_by=str.casefold))
    images = []
    for i, stem in enumerate(stems):
        folder = "" if flat else draw(st.sampled_from(["", "train/", "val/sub/", "каталог/"]))
        width, height = draw(st.integers(8, 400)), draw(st.integers(8, 400))
        bs = tuple(draw(st.lists(boxes(categories, width, height, rotation), max_size=4)))
        negative = not bs and draw(st.booleans())
        images.append(LabelImage(f"{folder}{stem}.png", width, height, bs, negative=negative))
    return LabelSet(tuple(images), tuple(categories))


def carried(labels: LabelSet, fmt: str) -> LabelSet:
    """What ``fmt`` keeps of ``labels`` through write and read (module docstrings)."""
    keep = {
        "coco": dict(flags=("iscrowd", "difficult", "truncated"), score=True, rotation=False, unlabelled=False),
        "yolo": dict(flags=(), score=True, rotation=False, unlabelled=True),
        "voc": dict(flags=("difficult", "truncated"), score=False, rotation=False, unlabelled=False),
        "cvat": dict(flags=("iscrowd", "difficult", "truncated"), score=False, rotation=True, unlabelled=False),
        "labelstudio": dict(flags=(), score=True, rotation=True, unlabelled=True),
    }[fmt]
    images = []
    for im in labels.images:
        if not im.boxes and not im.negative and not keep["unlabelled"]:
            continue
        bs = []
        for b in im.boxes:
            changes = {f: False for f in ("iscrowd", "difficult", "truncated") if f not in keep["flags"]}
            if not keep["score"]:
                changes["score"] = None
            if not keep["rotation"]:
                changes.update(rotation=0.0, rotated_rect=None)
            bs.append(dataclasses.replace(b, ext_id=None, **changes))
        size = (im.width, im.height)
        if fmt == "labelstudio" and not im.boxes:
            size = (None, None)  # Label Studio states sizes only on regions
        images.append(dataclasses.replace(im, width=size[0], height=size[1], boxes=tuple(bs), ext_id=None))
    categories = labels.categories
    if fmt in ("voc", "labelstudio"):  # no category list in the files: the labels used, in order
        used = []
        for im in images:
            for b in im.boxes:
                if b.label not in used:
                    used.append(b.label)
        categories = tuple(used)
    return LabelSet(tuple(images), tuple(categories))


def assert_same(got: LabelSet, want: LabelSet, tol: float = 1e-6, ordered_categories: bool = True) -> None:
    """Same images (any order), same boxes (in order) to ``tol`` pixels, same categories."""
    if ordered_categories:
        assert got.categories == want.categories
    else:
        assert sorted(got.categories) == sorted(want.categories)
    g = {im.file_name: im for im in got.images}
    w = {im.file_name: im for im in want.images}
    assert sorted(g) == sorted(w)
    for name, wi in w.items():
        gi = g[name]
        assert (gi.width, gi.height, gi.negative) == (wi.width, wi.height, wi.negative), name
        assert len(gi.boxes) == len(wi.boxes), name
        for gb, wb in zip(gi.boxes, wi.boxes):
            gb = dataclasses.replace(gb, ext_id=None)
            for f in ("x0", "y0", "x1", "y1"):
                assert abs(getattr(gb, f) - getattr(wb, f)) <= tol, (name, f, gb, wb)
            assert (gb.label, gb.iscrowd, gb.difficult, gb.truncated) == \
                (wb.label, wb.iscrowd, wb.difficult, wb.truncated), (name, gb, wb)
            assert (gb.score is None) == (wb.score is None) and abs((gb.score or 0) - (wb.score or 0)) <= 1e-12
            assert abs(gb.rotation - wb.rotation) <= 1e-9, (gb, wb)
            assert (gb.rotated_rect is None) == (wb.rotated_rect is None)
            if wb.rotated_rect is not None:
                assert all(abs(a - b) <= tol for a, b in zip(gb.rotated_rect, wb.rotated_rect)), (gb, wb)


def make_images(labels: LabelSet, folder: Path) -> None:
    """Real (blank, 16-bit) PNG files of each image's size, for formats that read sizes from images."""
    import numpy as np
    from PIL import Image

    for im in labels.images:
        p = folder / im.file_name
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((im.height, im.width), np.uint16)).save(p)


@contextmanager
def scratch():
    """A fresh folder per hypothesis example (pytest's tmp_path is one per test)."""
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)
