"""Corrupt and hostile annotation files: every variant becomes problems (with
the file and where), none raises, each is read within a time limit."""

from __future__ import annotations

import copy
import json
import math
import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.labels.formats import coco, collect, cvat, labelstudio, read, voc, yolo
from core.labels.model import LabelBox, LabelImage, LabelSet, ReadResult
from tests.core.labels.labelsets import make_images, scratch

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SAMPLE = LabelSet((
    LabelImage("a/bag.png", 64, 48, (LabelBox("gun", 1, 2, 30, 40, iscrowd=True),
                                     LabelBox("knife", 5, 6, 7, 8, rotation=20.0, rotated_rect=(6, 7, 2, 2)))),
    LabelImage("clean.png", 32, 32, negative=True),
), ("gun", "knife"))
BAD_VALUES = st.sampled_from([None, "x", "", [], {}, [1, 2], True, -5, 0, math.nan, math.inf, -math.inf, 1e308,
                              10 ** 40, "1e999", "NaN", {"a": [1]}])
TIME_LIMIT_S = 5.0


def _read_quietly(fmt: str, path) -> ReadResult:
    start = time.perf_counter()
    result = read(fmt, path)  # must not raise
    assert time.perf_counter() - start < TIME_LIMIT_S
    assert isinstance(result, ReadResult)
    for p in result.problems:
        assert p.file and p.message and "\n" not in p.message
    for im in result.labels.images:  # whatever was kept is a valid box
        for b in im.boxes:
            assert all(math.isfinite(v) for v in (b.x0, b.y0, b.x1, b.y1)) and b.x1 > b.x0 and b.y1 > b.y0
            if im.width is not None:
                assert 0 <= b.x0 and b.x1 <= im.width and 0 <= b.y0 and b.y1 <= im.height
    return result


def _paths(doc, prefix=()):
    """Every (path, value) in a JSON document."""
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, prefix + (i,))


def _mutate(doc, path, action, value):
    if not path:
        return value
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    if action == "delete":
        del parent[path[-1]]
    elif action == "duplicate" and isinstance(parent, list):
        parent.append(json.loads(json.dumps(parent[path[-1]], allow_nan=True)))
    else:
        parent[path[-1]] = value
    return doc


def _json_variants(fmt):
    @FUZZ
    @given(data=st.data())
    def check(data):
        with scratch() as d:
            [path, *_] = (coco if fmt == "coco" else labelstudio).write(SAMPLE, d)
            doc = json.loads(path.read_text())
            paths = list(_paths(doc))
            for _ in range(data.draw(st.integers(1, 3))):
                paths = list(_paths(doc)) if isinstance(doc, (dict, list)) else [()]
                target = data.draw(st.sampled_from(paths))
                # A copy: a later mutation may reach into the value, which must not change
                # BAD_VALUES' own objects (hypothesis then sees other data for the same choices).
                doc = _mutate(doc, target, data.draw(st.sampled_from(["set", "delete", "duplicate"])),
                              copy.deepcopy(data.draw(BAD_VALUES)))
            path.write_text(json.dumps(doc, allow_nan=True))
            _read_quietly(fmt, path)
    return check


test_coco_corrupt_values = _json_variants("coco")
test_labelstudio_corrupt_values = _json_variants("labelstudio")


def _xml_variants(fmt):
    @FUZZ
    @given(data=st.data())
    def check(data):
        with scratch() as d:
            [path, *_] = (cvat if fmt == "cvat" else voc).write(SAMPLE, d)
            text = path.read_text(encoding="utf-8")
            # Replace attribute values or element texts with garbage.
            for _ in range(data.draw(st.integers(1, 3))):
                spots = [m.span(1) for m in re.finditer(r'="([^"]*)"', text)] + \
                        [m.span(1) for m in re.finditer(r'>([^<>\s][^<>]*)<', text)]
                a, b = data.draw(st.sampled_from(spots))
                junk = data.draw(st.sampled_from(["", "nan", "inf", "-1", "1e400", "abc", "0", "99999999999",
                                                  "&amp;", "x&lt;y"]))
                text = text[:a] + junk + text[b:]
            path.write_text(text, encoding="utf-8")
            _read_quietly(fmt, path)
    return check


test_cvat_corrupt_values = _xml_variants("cvat")
test_voc_corrupt_values = _xml_variants("voc")


@pytest.mark.parametrize("fmt", ["coco", "labelstudio", "cvat", "voc"])
def test_truncated_files_are_fatal_problems(fmt, tmp_path):
    module = {"coco": coco, "labelstudio": labelstudio, "cvat": cvat, "voc": voc}[fmt]
    [path, *_] = module.write(SAMPLE, tmp_path)
    data = path.read_bytes()
    for cut in range(1, len(data) - 2, max(1, len(data) // 60)):
        path.write_bytes(data[:cut])
        result = _read_quietly(fmt, path)
        assert not result.ok, cut
        assert result.fatal[0].where.startswith("line ") or result.fatal[0].where == "", result.fatal


@FUZZ
@given(lines=st.lists(st.lists(st.sampled_from(["0", "1", "7", "-1", "0.5", "nan", "inf", "1e400", "x", "2.5",
                                                 "-0.5", "1.5", "0x10", "١"]), max_size=9), max_size=6))
def test_yolo_corrupt_lines(lines):
    with scratch() as d:
        yolo.write(SAMPLE, d)
        make_images(SAMPLE, d / "images")
        txt = d / "labels" / "a" / "bag.txt"
        txt.write_text("\n".join(" ".join(t) for t in lines))
        result = _read_quietly("yolo", d)
    # Each non-empty line is a box or a problem at its line.
    n_lines = sum(1 for t in lines if t)
    [im] = [i for i in result.labels.images if i.file_name == "a/bag.png"]
    at_lines = {p.where for p in result.problems if p.file.endswith("bag.txt")}
    handled = result.counts.get("degenerate_dropped", 0)
    assert len(im.boxes) + len([w for w in at_lines if w.startswith("line")]) + handled >= n_lines


@pytest.mark.parametrize("fmt,name", [("cvat", "annotations.xml"), ("voc", "a.xml")])
@pytest.mark.parametrize("attack", ["bomb", "external", "parameter"])
def test_hostile_xml_is_refused_quickly(fmt, name, attack, tmp_path):
    root = "annotations" if fmt == "cvat" else "annotation"
    doctype = {
        "bomb": '<!DOCTYPE lolz [<!ENTITY lol "lol">' + "".join(
            f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 if i > 1 else "")) * 10}">' for i in range(1, 10)) + "]>",
        "external": '<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
        "parameter": '<!DOCTYPE foo [<!ENTITY % p SYSTEM "http://example.invalid/x.dtd"> %p;]>',
    }[attack]
    body = "&lol9;" if attack == "bomb" else "&xxe;" if attack == "external" else ""
    (tmp_path / name).write_text(f'<?xml version="1.0"?>\n{doctype}\n<{root}><filename>{body}</filename></{root}>')
    result = _read_quietly(fmt, tmp_path / name)
    [problem] = result.problems
    assert problem.fatal and "DOCTYPE" in problem.message and problem.where == "line 2"


@pytest.mark.parametrize("fmt,name", [("coco", "annotations.json"), ("labelstudio", "export.json")])
def test_file_over_the_size_cap_is_refused_with_a_message(fmt, name, tmp_path, monkeypatch):
    monkeypatch.setattr(collect, "MAX_FILE_BYTES", 1000)
    (tmp_path / name).write_text("[" + " " * 2000 + "]")
    [problem] = read(fmt, tmp_path / name).problems
    assert problem.fatal and "split it into several files" in problem.message


def test_coco_specific_corruptions_are_named(tmp_path):
    doc = {"images": [{"id": 1, "file_name": "a.png", "width": 10, "height": 10},
                      {"id": 1, "file_name": "b.png", "width": 10, "height": 10},
                      {"id": 2, "file_name": "c.png", "width": -4, "height": 10}],
           "categories": [{"id": 1, "name": "gun"}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, math.nan, 2]},
                           {"id": 2, "image_id": 9, "category_id": 1, "bbox": [0, 0, 1, 1]},
                           {"id": 3, "image_id": 1, "category_id": 4, "bbox": [0, 0, 1, 1]},
                           {"id": 3, "image_id": 1, "category_id": 1, "bbox": "0 0 1 1"},
                           {"id": 5, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1e400, 1]}]}
    (tmp_path / "annotations.json").write_text(json.dumps(doc))
    r = coco.read(tmp_path / "annotations.json")
    got = [(p.where, p.fatal, p.message.split(" ")[0]) for p in r.problems]
    assert got == [("image id 1", True, "image"), ("image id 2", True, "width/height"),
                   ("annotation id 1", True, "bbox"), ("annotation id 2", True, "refers"),
                   ("annotation id 3", True, "refers"), ("annotation id 3", False, "annotation"),
                   ("annotation id 3", True, "bbox"), ("annotation id 5", True, "bbox")]
    assert r.counts["duplicate_ids"] == 2 and r.labels.images[0].boxes == ()
