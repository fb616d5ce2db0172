import hashlib
import os
import threading
import time

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from core.capture import StepSpec, open_session, steps
from core.capture.sessions import scan_barcode
from core.ingest.actions import QuarantineError, assign, discard, list_quarantine, retry
from core.ingest.engine import import_paths, watch
from core.store import ContentStore
from tests.core.ingest_helpers import GEOMETRY, drop, encode, scan_png, tiny_lab

pytestmark = pytest.mark.both_backends


@pytest.fixture
def lab(tmp_path):
    lab = tiny_lab(tmp_path / "lab")
    yield lab
    lab.close()


def run_once(lab, **kw):
    return list(watch(lab, once=True, workers=0, settle_s=0.05, poll_s=0.05, **kw))


def images(lab):
    return [dict(r) for r in lab.catalog.query("SELECT * FROM images ORDER BY id")]


def test_files_are_stored_by_hash_catalogued_and_removed_from_the_drop_folder(lab):
    data = [scan_png(i) for i in range(3)]
    for i, d in enumerate(data):
        drop(lab, "T1", f"scan_{i}.png", d)
    progress = run_once(lab)
    assert progress[-1].totals == {"ingested": 3}
    rows = images(lab)
    assert {r["sha256"] for r in rows} == {hashlib.sha256(d).hexdigest() for d in data}
    store = ContentStore(lab.paths.store)
    for row in rows:
        assert (store.root / row["store_path"]).read_bytes() in data
        assert (store.root / row["thumb_path"]).exists()
        assert (row["width"], row["height"], row["bit_depth"], row["channels"]) == (96, 64, 16, 1)
        assert row["split"] is None and row["step_id"] is None  # no active step: unassigned
        assert row["phash"] is not None and row["original_name"].startswith("scan_")
    assert list(lab.paths.drop_folder("T1").iterdir()) == []
    assert not list((store.root / ".journal").iterdir())
    day = rows[0]["captured_at"][:10]
    assert lab.catalog.query_one("SELECT images FROM production_counts WHERE day = ?", (day,))["images"] == 3


def test_a_byte_identical_file_is_recorded_not_stored_twice(lab):
    data = scan_png(1)
    drop(lab, "T1", "a.png", data)
    run_once(lab)
    drop(lab, "T2", "again.png", data)
    progress = run_once(lab)
    assert progress[-1].totals == {"duplicate": 1}
    assert len(images(lab)) == 1
    event = lab.catalog.query_one("SELECT * FROM ingest_events WHERE outcome = 'duplicate'")
    assert event["image_id"] == images(lab)[0]["id"] and event["source_path"].endswith("again.png")


def test_a_file_still_being_written_is_not_read_half_way(lab):
    data = scan_png(2)
    path = lab.paths.drop_folder("T1") / "slow.png"
    path.parent.mkdir(parents=True, exist_ok=True)

    def slow_writer():
        with open(path, "wb") as f:
            for start in range(0, len(data), 512):
                f.write(data[start:start + 512])
                f.flush()
                time.sleep(0.03)

    writer = threading.Thread(target=slow_writer)
    writer.start()
    time.sleep(0.05)
    progress = list(watch(lab, once=True, workers=0, settle_s=0.3, poll_s=0.05))
    writer.join()
    assert progress[-1].totals == {"ingested": 1}
    assert images(lab)[0]["sha256"] == hashlib.sha256(data).hexdigest()


def confirm(lab, session, technician, *tags):
    for tag in tags:
        assert scan_barcode(lab, session, tag, technician).accepted


def test_images_join_the_active_step_once_its_tags_are_scanned_and_steps_advance(lab):
    session = open_session(lab, "T1", "ana", [StepSpec("BG-1", "TI-1", "flat", "test", 2), StepSpec("BG-2", None, None, "train", 1)])
    drop(lab, "T1", "early.png", scan_png(9, "knife_kitchen"))
    run_once(lab)
    assert images(lab)[0]["step_id"] is None  # arrived before the tags were scanned
    confirm(lab, session, "ana", "TI-1", "BG-1")
    for i in range(3):
        drop(lab, "T1", f"s{i}.png", scan_png(10 + i, None if i == 2 else "knife_kitchen"))
        run_once(lab)
        if i == 1:
            assert steps(lab, session)[1]["status"] == "active"
            confirm(lab, session, "ana", "BG-2")
    rows = images(lab)[1:]
    assert [r["split"] for r in rows] == ["test", "test", "train"]
    assert [r["technician"] for r in rows] == ["ana"] * 3
    assert rows[2]["item_id"] is None
    assert [s["status"] for s in steps(lab, session)] == ["done", "done"]
    # an image from the other scanner is not linked to T1's session
    drop(lab, "T2", "other.png", scan_png(20))
    run_once(lab)
    assert images(lab)[-1]["step_id"] is None


def test_near_duplicates_are_flagged_and_a_split_leak_is_visible(lab):
    confirm(lab, open_session(lab, "T1", "ana", [StepSpec("BG-1", "TI-1", "flat", "test", 1)]), "ana", "BG-1", "TI-1")
    base = cv2_decode(scan_png(5))
    drop(lab, "T1", "orig.png", encode(base, ".png"))
    run_once(lab)
    confirm(lab, open_session(lab, "T2", "bo", [StepSpec("BG-2", "TI-2", "flat", "train", 1)]), "bo", "BG-2", "TI-2")
    noisy = np.clip(base.astype(np.int32) + np.random.default_rng(0).integers(-40, 40, base.shape), 0, 65535).astype(np.uint16)
    drop(lab, "T2", "resaved.png", encode(noisy, ".png"))
    run_once(lab)
    first, second = images(lab)
    assert "near_duplicate" in second["quality_flags"] and "split_leak" in second["quality_flags"]
    pair = lab.catalog.query_one("SELECT * FROM near_duplicates")
    assert (pair["image_id"], pair["other_id"], pair["cross_split"]) == (second["id"], first["id"], 1)
    # an unrelated scan is not a near-duplicate
    drop(lab, "T1", "other.png", scan_png(99, None))
    run_once(lab)
    assert "near_duplicate" not in images(lab)[-1]["quality_flags"]


def cv2_decode(data):
    import cv2

    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)


def _dicom(pixels: np.ndarray, frames: int = 1, sop_class: str = "1.2.840.10008.5.1.4.1.1.1.1", with_pixels: bool = True) -> bytes:
    import io

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.Manufacturer = "SimScan"
    if with_pixels:
        ds.Rows, ds.Columns = pixels.shape[-2:]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        if frames > 1:
            ds.NumberOfFrames = frames
        ds.PixelData = pixels.tobytes()
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def test_dicom_single_and_multi_frame(lab):
    pixels = cv2_decode(scan_png(7))
    drop(lab, "T1", "one.dcm", _dicom(pixels))
    drop(lab, "T1", "multi.dcm", _dicom(np.stack([pixels, pixels[::-1]]), frames=2))
    run_once(lab)
    rows = images(lab)
    assert [r["format"] for r in rows] == ["dicom", "dicom"]
    assert all((r["width"], r["height"], r["bit_depth"]) == (96, 64, 16) for r in rows)
    assert any('"frames": 2' in (r["metadata_json"] or "") for r in rows)
    assert all('"Manufacturer": "SimScan"' in r["metadata_json"] for r in rows)


BAD_CORPUS = {
    "random.png": os.urandom(3000),
    "random.tif": b"II*\x00" + os.urandom(2000),
    "empty.png": b"",
    "text.jpg": b"hello, this is not an image",
}


def test_bad_inputs_are_quarantined_with_a_reason_and_never_crash(lab, tmp_path):
    good = scan_png(3)
    corpus = dict(BAD_CORPUS)
    corpus["truncated.png"] = good[: len(good) // 2]
    tif = encode(cv2_decode(good), ".tif")
    corpus["truncated.tif"] = tif[: len(tif) // 3]
    corpus["cut.jpg"] = encode((cv2_decode(good) >> 8).astype(np.uint8), ".jpg")[:-200]
    dcm = _dicom(cv2_decode(good))
    corpus["truncated.dcm"] = dcm[: len(dcm) - 4000]
    corpus["no_pixels.dcm"] = _dicom(cv2_decode(good), with_pixels=False)
    huge = bytearray(good)
    huge[16:24] = (200_000).to_bytes(4, "big") + (200_000).to_bytes(4, "big")
    corpus["huge.png"] = bytes(huge)
    corpus["blank.png"] = encode(np.full((64, 96), 30000, np.uint16), ".png")
    corpus["saturated.png"] = encode(np.full((64, 96), 65535, np.uint16), ".png")
    corpus["wrong size.png"] = encode(cv2_decode(scan_png(4))[:32, :48], ".png")
    corpus["eight_bit.png"] = encode((cv2_decode(good) >> 8).astype(np.uint8), ".png")
    corpus["ünïcødé ☢ name.png"] = good  # odd name, valid content: taken
    old = time.time() - 120  # long finished: a file cut short now is broken, not still being written
    for name, data in corpus.items():
        os.utime(drop(lab, "T1", name, data), (old, old))
    target = tmp_path / "elsewhere.png"
    target.write_bytes(scan_png(8))
    os.symlink(target, lab.paths.drop_folder("T1") / "link.png")
    run_once(lab)
    held = {os.path.basename(r["source_path"]): r for r in list_quarantine(lab)}
    expected = {
        "random.png": "unknown_format", "random.tif": "undecodable", "empty.png": "empty", "text.jpg": "unknown_format",
        "truncated.png": "truncated", "truncated.tif": "undecodable", "cut.jpg": "truncated",
        "truncated.dcm": "undecodable", "no_pixels.dcm": "no_pixels", "huge.png": "too_large", "blank.png": "blank",
        "saturated.png": "saturated", "wrong size.png": "wrong_size", "eight_bit.png": "bit_depth", "link.png": "symlink",
    }
    assert {name: held[name]["reason_code"] for name in expected} == expected
    for row in held.values():
        assert row["reason"]  # a sentence a technician can act on
        assert os.path.lexists(row["stored_path"])  # the bytes (or the link) are kept
    assert [r["original_name"] for r in images(lab)] == ["ünïcødé ☢ name.png"]
    assert target.exists()  # the link was moved, not followed
    assert not [p for p in lab.paths.drop_folder("T1").iterdir()]
    assert lab.catalog.integrity_check() == "ok"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_files_are_reported_and_left_in_place(lab):
    path = drop(lab, "T1", "locked.png", scan_png(1))
    path.chmod(0)
    try:
        progress = run_once(lab)
    finally:
        path.chmod(0o644)
    assert progress[-1].totals == {"rejected": 1}
    assert path.exists()


def test_quarantine_retry_accept_and_discard_are_audited(lab):
    drop(lab, "T1", "small.png", encode(cv2_decode(scan_png(4))[:32, :48], ".png"))
    drop(lab, "T1", "blank.png", encode(np.full((64, 96), 30000, np.uint16), ".png"))
    run_once(lab)
    held = {os.path.basename(r["source_path"]): r["id"] for r in list_quarantine(lab)}
    with pytest.raises(QuarantineError, match="still fails"):
        retry(lab, held["small.png"], actor="ana")
    outcome = retry(lab, held["small.png"], accept=True, actor="ana")
    assert outcome.outcome == "ingested"
    assert images(lab)[0]["width"] == 48
    with pytest.raises(QuarantineError, match="still fails: blank"):
        retry(lab, held["blank.png"], accept=True)
    discard(lab, held["blank.png"], actor="bo")
    with pytest.raises(QuarantineError, match="already discarded"):
        discard(lab, held["blank.png"])
    assert list_quarantine(lab) == []
    audit = [(r["actor"], r["action"]) for r in lab.catalog.query("SELECT actor, action FROM audit_log WHERE entity = 'quarantine' ORDER BY id")]
    assert audit == [("ana", "accept"), ("bo", "discard")]


def test_assign_moves_an_unassigned_image_into_a_step_and_its_quota_cell(lab):
    drop(lab, "T1", "x.png", scan_png(6))
    run_once(lab)
    session = open_session(lab, "T2", "bo", [StepSpec("BG-2", "TI-2", "flat", "train", 5)])
    step_id = steps(lab, session)[0]["id"]
    image_id = images(lab)[0]["id"]
    assign(lab, image_id, step_id, actor="bo")
    row = images(lab)[0]
    assert (row["split"], row["step_id"]) == ("train", step_id)
    assert lab.catalog.query_one("SELECT SUM(images) AS n FROM cell_tally WHERE split = 'train'")["n"] == 1


def test_archive_import_leaves_sources_and_skips_what_is_stored(lab, tmp_path):
    archive = tmp_path / "archive" / "2025" / "03"
    archive.mkdir(parents=True)
    for i in range(5):
        (archive / f"{i}.png").write_bytes(scan_png(30 + i))
    (archive / "notes.txt").write_text("not an image")
    progress = list(import_paths(lab, [tmp_path / "archive"], scanner="T1", workers=0))
    assert progress[-1].total == 6 and progress[-1].totals == {"ingested": 5, "quarantined": 1}
    assert len(list(archive.iterdir())) == 6
    again = list(import_paths(lab, [tmp_path / "archive"], workers=0))
    assert again[-1].totals == {"duplicate": 5, "quarantined": 1}


def test_catalog_reads_are_never_blocked_while_ingest_writes(lab):
    from core.catalog.ingest_store import recent_images

    for i in range(40):
        drop(lab, "T1", f"b{i}.png", scan_png(100 + i))
    errors, reads = [], [0]
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            try:
                recent_images(lab.catalog)
                reads[0] += 1
            except Exception as exc:  # noqa: BLE001 - the assertion reports it
                errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    list(watch(lab, once=True, workers=2, settle_s=0.05, poll_s=0.05))
    stop.set()
    thread.join()
    assert errors == [] and reads[0] > 10
    assert len(images(lab)) == 40


def test_dicos_dx_and_its_ground_truth_tdr_become_an_image_with_annotations(tmp_path):
    from core.demo import create_demo_lab
    from core.simulator.scanner import simulate

    lab = create_demo_lab(tmp_path / "demo")
    try:
        list(simulate(lab, "SCN-C", 4, rate_per_minute=0, fmt="dicos", seed=2, clean_fraction=0))
        files = sorted(p.name for p in lab.paths.drop_folder("SCN-C").iterdir())
        assert len([f for f in files if f.endswith("_tdr.dcs")]) == 4
        run_once(lab)
        rows = images(lab)
        assert len(rows) == 4 and {r["format"] for r in rows} == {"dicos"}
        assert all(r["sop_instance_uid"] for r in rows)
        annotations = [dict(r) for r in lab.catalog.query(
            "SELECT a.*, c.name AS class_name FROM annotations a JOIN threat_classes c ON c.id = a.class_id")]
        assert len(annotations) == 4 and {a["source"] for a in annotations} == {"ground_truth"}
        truth = {}
        for f in (lab.paths.ground_truth / "SCN-C").iterdir():
            import json

            t = json.loads(f.read_text())
            truth[t["class_name"]] = t["box"]
        for a in annotations:
            assert [a["x0"], a["y0"], a["x1"], a["y1"]] in [[float(v) for v in b] for b in truth.values()]
            assert a["class_name"] in truth
        assert lab.catalog.query_one("SELECT COUNT(*) AS n FROM dicos_reports WHERE image_id IS NOT NULL")["n"] == 4
    finally:
        lab.close()


def test_a_writer_that_stalls_is_waited_for_not_quarantined(lab):
    data = scan_png(12)
    path = lab.paths.drop_folder("T1") / "stalled.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: len(data) // 2])
    old = time.time() - 5  # looks quiet: taken at once, found cut short, retried later
    os.utime(path, (old, old))

    def finish():
        time.sleep(1.0)
        with open(path, "ab") as f:
            f.write(data[len(data) // 2:])

    writer = threading.Thread(target=finish)
    writer.start()
    progress = list(watch(lab, once=True, workers=0, settle_s=0.1, poll_s=0.05))
    writer.join()
    assert progress[-1].totals == {"ingested": 1}
    assert list_quarantine(lab) == []
    assert images(lab)[0]["sha256"] == hashlib.sha256(data).hexdigest()


def test_sidecar_metadata_is_recorded_and_the_sidecar_is_not_an_image(lab):
    drop(lab, "T1", "with_meta.png", scan_png(40))
    drop(lab, "T1", "with_meta.png.json", b'{"operator": "ana", "belt_speed_m_s": 0.2}')
    drop(lab, "T1", "broken_meta.png", scan_png(41))
    drop(lab, "T1", "broken_meta.json", b'{not json')
    progress = run_once(lab)
    assert progress[-1].totals == {"ingested": 2}
    meta = {r["original_name"]: r["metadata_json"] for r in images(lab)}
    assert '"operator": "ana"' in meta["with_meta.png"]
    assert "sidecar_error" in meta["broken_meta.png"]
    assert list(lab.paths.drop_folder("T1").iterdir()) == []
