"""Annotation import and export: matching, class maps, all or nothing, round trips, the CLI."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.errors import InputFileError, LabelImportError
from core.labels import annotations as A
from core.labels.exports import export_labels
from core.labels.imports import import_labels
from core.labels.formats import FORMATS
from tests.core.ingest_helpers import tiny_lab

INVENTORY = """\
threat_families: [{name: knives}, {name: guns}]
threat_classes: [{name: knife_kitchen, family: knives}, {name: handgun, family: guns}]
threat_items: [{barcode: TI-1, class: knife_kitchen}]
luggage_types: [{name: tray}]
bags: [{barcode: BG-1, luggage_type: tray, clutter: low}]
scanner_models: [{name: TINY, vendor: SimScan, width: 96, height: 64, bit_depth: 16, pixel_mm: 8}]
scanners: [{name: T1, model: TINY, station: bench-1}]
poses: [{name: flat}]
"""
REPO = Path(__file__).resolve().parents[2]


def new_lab(root: Path):
    return tiny_lab(root, INVENTORY)


@pytest.fixture
def lab(tmp_path):
    lab = new_lab(tmp_path / "lab")
    yield lab
    lab.close()


def public_set(root: Path) -> tuple[Path, Path, Path]:
    """A small public-style data set: images in subfolders, COCO boxes with its own class names, a map."""
    images = root / "images"
    names = ["train/a.png", "train/b.png", "val/c.png", "val/d.png"]
    for n, name in enumerate(names):
        (images / name).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(images / name), (np.random.default_rng(n).random((64, 96)) * 60000).astype(np.uint16))
    coco = {
        "images": [{"id": n + 1, "file_name": name, "width": 96, "height": 64} for n, name in enumerate(names)],
        "categories": [{"id": 1, "name": "Knife"}, {"id": 2, "name": "Gun"}, {"id": 3, "name": "Pliers"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 15], "area": 300, "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 2, "bbox": [40, 20, 30, 30], "area": 900, "iscrowd": 0},
            {"id": 3, "image_id": 2, "category_id": 2, "bbox": [5, 6, 30, 20], "area": 600, "iscrowd": 1},
            {"id": 4, "image_id": 3, "category_id": 3, "bbox": [1, 1, 10, 10], "area": 100, "iscrowd": 0},
        ],
    }
    (root / "annotations.json").write_text(json.dumps(coco))
    (root / "map.yaml").write_text("source: PublicSet\nclasses:\n  Knife: knife_kitchen\n  Gun: handgun\n  Pliers: ~\n")
    return root / "annotations.json", images, root / "map.yaml"


def labels_by_hash(lab) -> dict[str, tuple]:
    out = {}
    for r in lab.catalog.query("SELECT id, sha256 FROM images"):
        labels = A.labels_of(lab.catalog, r["id"])
        out[r["sha256"]] = (labels.negative, sorted((b.class_name, round(b.x0, 3), round(b.y0, 3), round(b.x1, 3),
                                                     round(b.y1, 3), b.iscrowd) for b in labels.boxes))
    return out


def snapshot(lab) -> list[str]:
    conn = sqlite3.connect(lab.catalog.path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def test_a_public_set_is_ingested_matched_by_path_mapped_and_reimported_without_change(lab, tmp_path):
    annotations, images, class_map = public_set(tmp_path / "set")
    report = import_labels(lab, "coco", annotations, images_dir=images, map_path=class_map, workers=0)
    assert report.ingest == {"ingested": 4}
    assert report.counts["images_matched"] == 4 and report.counts["boxes_added"] == 3
    assert report.counts["ignored_class_boxes"] == 1 and report.counts["negatives_added"] == 1  # d.png: no object
    rows = {r["rel_path"]: r["id"] for r in lab.catalog.query("SELECT id, rel_path FROM images")}
    assert set(rows) == {"train/a.png", "train/b.png", "val/c.png", "val/d.png"}
    a = A.labels_of(lab.catalog, rows["train/a.png"])
    assert sorted((b.class_name, b.x0, b.y0, b.x1, b.y1, b.source) for b in a.boxes) == [
        ("handgun", 40, 20, 70, 50, "import"), ("knife_kitchen", 10, 10, 30, 25, "import")]
    assert A.labels_of(lab.catalog, rows["train/b.png"]).boxes[0].iscrowd
    assert A.labels_of(lab.catalog, rows["val/d.png"]).negative
    # The map is kept for the source; the same file again (no --map) writes nothing new.
    clock = A.clock(lab.catalog)
    again = import_labels(lab, "coco", annotations, images_dir=images, workers=0)
    assert again.source == "PublicSet" and again.ingest == {"duplicate": 4}
    assert again.counts["boxes_kept"] == 3 and again.counts["boxes_added"] == again.counts["boxes_removed"] == 0
    assert A.clock(lab.catalog) == clock
    assert lab.catalog.query_one("SELECT COUNT(*) AS n FROM audit_log WHERE entity = 'label_imports'")["n"] == 2


def test_an_import_with_problems_changes_nothing_and_names_every_problem(lab, tmp_path):
    annotations, images, class_map = public_set(tmp_path / "set")
    before = snapshot(lab)
    with pytest.raises(LabelImportError) as refused:
        import_labels(lab, "coco", annotations, images_dir=images, workers=0)  # no map: Knife, Gun, Pliers unknown
    text = str(refused.value)
    assert "unknown class 'Gun' (2 box(es), first on image 'train/a.png'" in text and "unknown class 'Pliers'" in text
    assert snapshot(lab) == before  # not even the images were ingested
    # Images the catalog does not have, with no --images: unmatched, each named.
    with pytest.raises(LabelImportError) as refused:
        import_labels(lab, "coco", annotations, map_path=class_map)
    assert len(refused.value.problems) == 4 and "image 'val/c.png'" in str(refused.value)
    assert snapshot(lab) == before
    # --skip-bad writes what matches and reports the rest.
    import_labels(lab, "coco", annotations, images_dir=images, map_path=class_map, workers=0)
    (images / "extra").mkdir()
    coco = json.loads(annotations.read_text())
    coco["images"].append({"id": 9, "file_name": "missing.png", "width": 96, "height": 64})
    coco["annotations"].append({"id": 9, "image_id": 9, "category_id": 1, "bbox": [1, 1, 5, 5]})
    coco["annotations"].append({"id": 10, "image_id": 4, "category_id": 1, "bbox": [1, 1, 5, 5]})
    annotations.write_text(json.dumps(coco))
    report = import_labels(lab, "coco", annotations, map_path=class_map, skip_bad=True)
    assert report.counts["images_unmatched"] == 1 and report.counts["boxes_added"] == 1
    assert any("missing.png" in p for p in report.problems)


def test_a_class_map_is_read_with_line_numbers_and_kept_with_its_history(lab, tmp_path):
    annotations, images, class_map = public_set(tmp_path / "set")
    class_map.write_text("source: PublicSet\nclasses:\n  Knife: knife_kitchen\n  Gun: pistol\n  Pliers: [a]\n")
    with pytest.raises(InputFileError) as refused:
        import_labels(lab, "coco", annotations, images_dir=images, map_path=class_map, workers=0)
    lines = sorted(p.line for p in refused.value.problems)
    assert lines == [4, 5] and "'Gun' maps to 'pistol', which is no lab class" in str(refused.value)
    class_map.write_text("source: PublicSet\nclasses:\n  Knife: knife_kitchen\n  Gun: handgun\n  Pliers: ~\n")
    import_labels(lab, "coco", annotations, images_dir=images, map_path=class_map, workers=0)
    class_map.write_text("source: PublicSet\nclasses:\n  Gun: knife_kitchen\n")
    import_labels(lab, "coco", annotations, images_dir=images, map_path=class_map, workers=0)
    from core.catalog import label_store

    history = [(h["external"], h["class_name"], h["previous_class_name"])
               for h in label_store.class_map_history(lab.catalog, "PublicSet")]
    assert ("Gun", "knife_kitchen", "handgun") in history and len(history) == 4


def test_an_ambiguous_file_name_is_reported(lab, tmp_path):
    annotations, images, class_map = public_set(tmp_path / "set")
    import_labels(lab, "coco", annotations, images_dir=images, map_path=class_map, workers=0)
    coco = {"images": [{"id": 1, "file_name": "elsewhere/a.png", "width": 96, "height": 64}],
            "categories": [{"id": 1, "name": "knife_kitchen"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]}]}
    other = tmp_path / "other.json"
    other.write_text(json.dumps(coco))
    assert import_labels(lab, "coco", other).counts["images_matched"] == 1  # a.png: one catalog image by that name
    cv2.imwrite(str(images / "val" / "a.png"), (np.random.default_rng(99).random((64, 96)) * 60000).astype(np.uint16))
    import_labels(lab, "coco", annotations, images_dir=images, map_path=class_map, workers=0)
    with pytest.raises(LabelImportError, match="2 catalog images have this file name"):
        import_labels(lab, "coco", other)


@pytest.mark.parametrize("fmt", FORMATS)
def test_import_export_import_round_trip(tmp_path, fmt):
    annotations, images, class_map = public_set(tmp_path / "set")
    first = new_lab(tmp_path / "first")
    second = new_lab(tmp_path / "second")
    try:
        import_labels(first, "coco", annotations, images_dir=images, map_path=class_map, workers=0)
        out = tmp_path / fmt
        report = export_labels(first, fmt, out)
        # c.png holds only a class the map leaves out: not labelled, not exported.
        assert report.images == 3 and report.boxes == 3 and report.copied == 3
        manifest = json.loads((out / "manifest.json").read_text())
        folder = out / manifest["image_folder"]
        import hashlib

        for entry in manifest["images"]:
            assert hashlib.sha256((folder / entry["file_name"]).read_bytes()).hexdigest() == entry["sha256"]
        # PATH is the export's folder (its manifest.json is not read as annotations).
        again = import_labels(second, fmt, out, images_dir=folder, workers=0)
        assert again.counts["images_matched"] >= 3
        theirs, ours = labels_by_hash(first), labels_by_hash(second)
        for sha, (negative, boxes) in theirs.items():
            assert ours.get(sha, (False,))[0] == negative, fmt  # the clean image stays a labelled negative
            if boxes:
                assert ours[sha][1] == [b[:5] + ((b[5],) if fmt == "coco" else ours[sha][1][i][5:]) for i, b in enumerate(boxes)], fmt
        # Paths relative to the folder they were imported from, both times.
        assert {r["rel_path"] for r in second.catalog.query("SELECT rel_path FROM images")} >= {"train/a.png", "train/b.png", "val/d.png"}
    finally:
        first.close()
        second.close()


def test_coco_export_reads_back_with_pycocotools(lab, tmp_path):
    from pycocotools.coco import COCO

    annotations, images, class_map = public_set(tmp_path / "set")
    import_labels(lab, "coco", annotations, images_dir=images, map_path=class_map, workers=0)
    export_labels(lab, "coco", tmp_path / "out", link=True)
    coco = COCO(str(tmp_path / "out" / "annotations.json"))
    by_name = {im["file_name"]: im["id"] for im in coco.dataset["images"]}
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[by_name["train/a.png"]]))
    assert sorted(a["bbox"] for a in anns) == [[10, 10, 20, 15], [40, 20, 30, 30]]
    assert [a["iscrowd"] for a in coco.loadAnns(coco.getAnnIds(imgIds=[by_name["train/b.png"]]))] == [1]
    assert os.stat(tmp_path / "out" / "train" / "a.png").st_nlink == 2  # hard-linked from the store


def test_the_cli_imports_exports_lists_and_reviews(tmp_path):
    annotations, images, class_map = public_set(tmp_path / "set")
    lab = new_lab(tmp_path / "lab")
    lab.close()

    def xlab(*args):
        env = {**os.environ, "XLAB_LAB": str(tmp_path / "lab")}
        return subprocess.run([sys.executable, "-m", "core.cli", *map(str, args)], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=120)

    refused = xlab("annotations", "import", "--format", "coco", annotations, "--images", images, "--json")
    assert refused.returncode == 2 and "unknown class 'Gun'" in refused.stderr
    assert json.loads(refused.stdout)["written"] is False
    done = xlab("annotations", "import", "--format", "coco", annotations, "--images", images, "--map", class_map,
                "--json", "--workers", "0")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["counts"]["boxes_added"] == 3
    listed = [xlab("--json", "annotations", "list", image) for image in (1, 2, 3, 4)]
    assert all(r.returncode == 0 for r in listed)
    assert sorted(len(json.loads(r.stdout)["boxes"]) for r in listed) == [0, 0, 1, 2]
    exported = xlab("annotations", "export", "--format", "coco", "-o", tmp_path / "out", "--json")
    assert exported.returncode == 0 and json.loads(exported.stdout)["boxes"] == 3
    assert (tmp_path / "out" / "annotations.json").exists()
    flags = xlab("annotations", "qa", "--open")
    assert flags.returncode == 0, flags.stderr
