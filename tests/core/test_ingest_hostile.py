"""Hostile and broken files: every one is accounted for, none stops ingest.

A generated corpus (every attribute decoding reads, mangled in turn; cut and
damaged rasters; hostile sidecars and names) goes through ``ingest import``
(the CLI, in a subprocess) and ``watch``; a decoder that kills its worker
process, a catalog that refuses one file, and hypothesis-made bytes follow.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import cv2
import numpy as np
import pydicom
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataelem import DataElement
from pydicom.tag import Tag

from core.ingest.actions import list_quarantine
from core.ingest.engine import import_paths, watch
from core.ingest.worker import prepare
from core.lab import Lab
from core.simulator import dicos
from tests.core.ingest_helpers import encode, install_decoder_mishap, scan_png, tiny_lab

RUN_LIMIT_S = 240  # a hang fails the test instead of blocking the suite


def _pixels(seed: int) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(scan_png(seed), np.uint8), cv2.IMREAD_UNCHANGED)


def _run(generator_factory, limit_s: float = RUN_LIMIT_S) -> list:
    """Drive an ingest generator on a thread; fail (not hang) past ``limit_s``."""
    result: dict = {}

    def target() -> None:
        try:
            result["steps"] = list(generator_factory())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            result["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(limit_s)
    assert not thread.is_alive(), f"ingest still running after {limit_s} s: a hang"
    if "error" in result:
        raise result["error"]
    return result["steps"]


# -- the corpus -----------------------------------------------------------------

def _reencode(data: bytes, mangle) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(data))
    mangle(ds)
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=False)
    return buffer.getvalue()


def _set(keyword: str, vr: str | None, value):
    tag = Tag(keyword)

    def mangle(ds) -> None:
        if vr is None:
            del ds[tag]
        else:
            ds[tag] = DataElement(tag, vr, value)
    return mangle


# How each attribute is spoiled: text, two values, nothing, too big, negative, zero, missing, bytes.
SPOILS = {
    "text": ("LO", "abc"), "two": ("LO", ["2", "3"]), "empty": ("LO", None), "huge": ("UL", 4_000_000_000),
    "negative": ("SS", -5), "zero": ("US", 0), "missing": (None, None), "bytes": ("OB", b"\xff\xfe\x00\x01"),
}
DX_ATTRIBUTES = (
    "Rows", "Columns", "NumberOfFrames", "BitsStored", "BitsAllocated", "HighBit", "SamplesPerPixel",
    "PixelRepresentation", "PhotometricInterpretation", "PlanarConfiguration", "PixelData", "SOPClassUID",
    "SOPInstanceUID", "Modality", "Manufacturer", "ManufacturerModelName", "DeviceSerialNumber", "StationName",
    "AcquisitionDateTime", "ContentDate", "ContentTime", "KVP", "XRayTubeCurrent", "OperatorsName",
)


def _tdr_mangle(path: tuple[str, ...], vr: str | None, value):
    """Spoil an attribute inside the report's first threat (``path``: sequence keywords, then the attribute)."""
    def mangle(ds) -> None:
        node = ds
        for keyword in path[:-1]:
            node = node[keyword].value[0]
        _set(path[-1], vr, value)(node)
    return mangle


def hostile_corpus() -> dict[str, bytes]:
    corpus: dict[str, bytes] = {}
    pixels = _pixels(3)
    dx, uid = dicos.dx_bytes(pixels, 16, "T1", "TINY", 8.0)
    for attribute in DX_ATTRIBUTES:
        for spoil, (vr, value) in SPOILS.items():
            try:
                corpus[f"dx_{attribute}_{spoil}.dcs"] = _reencode(dx, _set(attribute, vr, value))
            except Exception:  # noqa: BLE001 - pydicom will not write this combination; others cover it
                continue
    corpus["dx_short_pixels.dcs"] = _reencode(dx, lambda ds: setattr(ds, "PixelData", ds.PixelData[: len(ds.PixelData) // 2]))
    corpus["dx_frames_more_than_data.dcs"] = _reencode(dx, _set("NumberOfFrames", "IS", "3"))
    corpus["dx_rgb_claimed.dcs"] = _reencode(dx, _set("SamplesPerPixel", "US", 3))
    corpus["dx_float_bits.dcs"] = _reencode(dx, _set("BitsAllocated", "US", 32))
    corpus["dx_cut.dcs"] = dx[: len(dx) // 3]
    meta_end = dx.index(b"\x08\x00\x16\x00")  # first dataset element after the file meta
    corpus["dx_deflated_garbage.dcm"] = (
        dx[:meta_end].replace(b"1.2.840.10008.1.2.1\x00", b"1.2.840.10008.1.2.1.99") + os.urandom(500))
    corpus["dx_deflated_zlib_bomb.dcm"] = (
        dx[:meta_end].replace(b"1.2.840.10008.1.2.1\x00", b"1.2.840.10008.1.2.1.99")
        + zlib.compress(b"\x00" * 5_000_000)[2:-4])

    tdr = dicos.tdr_bytes(uid, [("knife_kitchen", (1, 2, 30, 40))], "T1", "TINY")
    corner = ("ThreatSequence", "PTORepresentationSequence", "BoundingBoxTopLeftHandCorner")
    for spoil, (vr, value) in {
        "one_value": ("FL", [1.0]), "text": ("LO", "abc"), "three": ("FL", [1.0, 2.0, 3.0]), "empty": ("FL", None),
        "nan": ("FL", [float("nan"), 1.0]), "inf": ("FL", [float("inf"), 1.0]), "missing": (None, None),
        "bytes": ("OB", b"\x00\x01"), "two_texts": ("LO", ["a", "b"]),
    }.items():
        corpus[f"tdr_corner_{spoil}.dcs"] = _reencode(tdr, _tdr_mangle(corner, vr, value))
    corpus["tdr_threats_text.dcs"] = _reencode(tdr, _set("ThreatSequence", "LO", "not a sequence"))
    corpus["tdr_reference_two.dcs"] = _reencode(tdr, _tdr_mangle(
        ("ThreatSequence", "PTORepresentationSequence", "ReferencedInstanceSequence", "ReferencedSOPInstanceUID"),
        "UI", ["1.2", "1.3"]))
    corpus["tdr_label_bytes.dcs"] = _reencode(tdr, _tdr_mangle(
        ("ThreatSequence", "ATDAssessmentSequence", "ThreatCategoryDescription"), "OB", b"\xff\x00"))
    corpus["tdr_type_number.dcs"] = _reencode(tdr, _set("TDRType", "US", 7))

    png = encode(pixels, ".png")
    jpeg = encode((pixels >> 8).astype(np.uint8), ".jpg")
    jpeg_big = encode(cv2.resize((pixels >> 8).astype(np.uint8), (480, 320)), ".jpg")
    ok, buf = cv2.imencode(".jpg", cv2.resize((pixels >> 8).astype(np.uint8), (480, 320)), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    progressive = buf.tobytes()
    tiff = _tiff_ifd_first(pixels)
    for fraction in (0.05, 0.2, 0.33, 0.5, 0.7, 0.9, 0.99):
        corpus[f"png_cut_{fraction}.png"] = png[: int(len(png) * fraction)]
        corpus[f"png_cut_{fraction}_iend.png"] = png[: int(len(png) * fraction)] + png[-12:]
        corpus[f"jpeg_cut_{fraction}.jpg"] = jpeg[: int(len(jpeg) * fraction)]
        corpus[f"jpeg_cut_{fraction}_eoi.jpg"] = jpeg_big[: int(len(jpeg_big) * fraction)] + b"\xff\xd9"
        corpus[f"jpeg_progressive_cut_{fraction}_eoi.jpg"] = progressive[: int(len(progressive) * fraction)] + b"\xff\xd9"
        corpus[f"tiff_cut_{fraction}.tif"] = tiff[: int(len(tiff) * fraction)]
    for offset in (8, 12, 16, 20, 24, 29, 33, 40, 60, 100, len(png) // 2, len(png) - 8):
        corpus[f"png_flip_{offset}.png"] = _flip(png, offset)
    for offset in (2, 4, 6, 20, 100, 160, 200, len(jpeg) // 2, len(jpeg) - 3):
        corpus[f"jpeg_flip_{offset}.jpg"] = _flip(jpeg, offset)
    for offset in (2, 4, 8, 10, 20, 30, 40, 60, 90, 120, len(tiff) - 20):
        corpus[f"tiff_flip_{offset}.tif"] = _flip(tiff, offset)
    corpus["tiff_100000x100000.tif"] = _tiff_claiming(tiff, 100_000, 100_000)
    corpus["tiff_0x0.tif"] = _tiff_claiming(tiff, 0, 0)
    corpus["png_100000x100000.png"] = _png_claiming(png, 100_000, 100_000)
    corpus["png_0x0.png"] = _png_claiming(png, 0, 0)
    corpus["png_bad_crc.png"] = _flip(png, png.index(b"IDAT") + 4 + struct.unpack(">I", png[png.index(b"IDAT") - 4:][:4])[0])
    corpus["png_grey_alpha.png"] = _grey_alpha_png(pixels)
    corpus["png_one_pixel.png"] = encode(pixels[:1, :1], ".png")
    corpus["png_one_row.png"] = encode(pixels[:1, :], ".png")
    corpus["png_one_column.png"] = encode(pixels[:, :1], ".png")
    corpus["tiff_float.tif"] = encode(pixels.astype(np.float32), ".tif")
    corpus["tiff_four_channels.tif"] = _tiff_four_channels(pixels)
    for magic, name in ((b"\x89PNG\r\n\x1a\n", "png"), (b"II*\x00", "tiff"), (b"MM\x00*", "tiffbe"),
                        (b"\xff\xd8\xff", "jpeg"), (b"\x00" * 128 + b"DICM", "dicm")):
        corpus[f"magic_only_{name}.bin"] = magic
        corpus[f"magic_then_zeros_{name}.bin"] = magic + b"\x00" * 300
        corpus[f"magic_then_ff_{name}.bin"] = magic + b"\xff" * 300
    return corpus


def _flip(data: bytes, offset: int) -> bytes:
    spoiled = bytearray(data)
    spoiled[offset] ^= 0xA5
    return bytes(spoiled)


def _tiff_ifd_first(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "TIFF")  # PIL writes the directory first, then the strips
    return buffer.getvalue()


def _tiff_entries(data: bytes):
    offset = struct.unpack("<I", data[4:8])[0]
    count = struct.unpack("<H", data[offset:offset + 2])[0]
    for i in range(count):
        at = offset + 2 + 12 * i
        yield at, struct.unpack("<HHI", data[at:at + 8])


def _tiff_claiming(data: bytes, width: int, height: int) -> bytes:
    spoiled = bytearray(data)
    for at, (tag, kind, _) in _tiff_entries(data):
        if tag in (256, 257):
            value = width if tag == 256 else height
            spoiled[at + 2:at + 4] = struct.pack("<H", 4)  # LONG, whatever the writer chose
            spoiled[at + 8:at + 12] = struct.pack("<I", value)
    return bytes(spoiled)


def _png_claiming(data: bytes, width: int, height: int) -> bytes:
    spoiled = bytearray(data)
    spoiled[16:24] = struct.pack(">II", width, height)
    spoiled[29:33] = struct.pack(">I", zlib.crc32(bytes(spoiled[12:29])))
    return bytes(spoiled)


def _grey_alpha_png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.dstack([(pixels >> 8).astype(np.uint8)] * 2), "LA").save(buffer, "PNG")
    return buffer.getvalue()


def _tiff_four_channels(pixels: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".tif", np.dstack([pixels] * 4))
    return buf.tobytes()


def hostile_sidecars() -> dict[str, bytes]:
    """Sidecars beside good images: name of the image -> the sidecar's bytes."""
    return {
        "deep_list.png": b"[" * 200_000 + b"]" * 200_000,
        "deep_object.png": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        "deep_but_readable.png": (b'{"a":' * 900 + b"1" + b"}" * 900),
        "not_utf8.png": b'{"name": "\xff\xfe"}',
        "array.png": b"[1, 2, 3]",
        "nan.png": b'{"kv": NaN, "ma": Infinity}',
        "huge_int.png": b'{"n": ' + b"9" * 5000 + b"}",
        "too_big.png": b'{"pad": "' + b"x" * 1_200_000 + b'"}',
        "empty.png": b"",
        "binary.png": os.urandom(300),
    }


HOSTILE_NAMES = {
    "a" * 250 + ".png": "ingested",
    "é" * 124 + ".png": "ingested",
    "line\nbreak.png": "ingested",
    "-rf.png": "ingested",
    "   .png": "ingested",
}


def write_corpus(folder: Path) -> dict[str, str]:
    """Write the whole hostile corpus into ``folder``; returns file name -> what it is (for messages)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, data in hostile_corpus().items():
        (folder / name).write_bytes(data)
        written[name] = "corpus"
    for i, (name, sidecar) in enumerate(hostile_sidecars().items()):
        (folder / name).write_bytes(scan_png(100 + i))
        (folder / f"{name}.json").write_bytes(sidecar)
        written[name] = "image with a hostile sidecar"
    (folder / "sidecar_is_folder.png").write_bytes(scan_png(130))
    (folder / "sidecar_is_folder.png.json").mkdir()
    written["sidecar_is_folder.png"] = "image whose sidecar is a folder"
    for i, name in enumerate(HOSTILE_NAMES):
        (folder / name).write_bytes(scan_png(140 + i))
        written[name] = "hostile name"
    raw = os.fsencode(folder) + b"/not-utf8-\xff\xfe.png"
    with open(raw, "wb") as f:
        f.write(scan_png(150))
    written[os.fsdecode(b"not-utf8-\xff\xfe.png")] = "non-UTF-8 name"
    far = folder / "mtime_far_future.png"
    far.write_bytes(scan_png(151))
    try:
        os.utime(far, (1e12, 1e12))  # year 33658: out of the calendar's range
    except OSError:
        pass
    written["mtime_far_future.png"] = "modification time out of range"
    return written


def _accounted(lab: Lab, folder: Path, names: dict[str, str]) -> dict[str, str]:
    """Each file's outcome from the catalog's events (by source path)."""
    rows = lab.catalog.query("SELECT source_path, outcome FROM ingest_events")
    by_name = {}
    for row in rows:
        by_name[Path(row["source_path"]).name] = row["outcome"]
    from core.catalog.ingest_store import catalog_text

    missing = [n for n in names if catalog_text(n) not in by_name]
    assert not missing, f"{len(missing)} file(s) with no event: {missing[:10]}"
    return by_name


def test_the_corpus_has_well_over_a_hundred_kinds_of_bad_file():
    assert len(hostile_corpus()) + len(hostile_sidecars()) + len(HOSTILE_NAMES) > 250


# -- through the CLI and through watch ---------------------------------------------

def test_cli_import_of_the_hostile_corpus_exits_0_with_a_summary(tmp_path):
    lab = tiny_lab(tmp_path / "lab")
    lab.close()
    archive = tmp_path / "archive"
    names = write_corpus(archive)
    result = subprocess.run(
        [sys.executable, "-m", "app", "ingest", "import", str(archive), "--lab", str(tmp_path / "lab"), "--quiet",
         "--json", "--workers", "2"],
        capture_output=True, timeout=RUN_LIMIT_S)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-3000:]
    assert b"Traceback" not in result.stderr, result.stderr.decode(errors="replace")[-3000:]
    totals = json.loads(result.stdout)
    assert sum(totals.values()) == len(names) + len(hostile_sidecars()), totals  # the sidecars are skipped, and said so
    assert totals["skipped"] == len(hostile_sidecars())
    assert totals["quarantined"] > 150 and totals["ingested"] >= len(HOSTILE_NAMES)
    lab = Lab.open(tmp_path / "lab")
    try:
        outcomes = _accounted(lab, archive, names)
        for name, expected in HOSTILE_NAMES.items():
            assert outcomes[name] == expected, name
        assert outcomes["not-utf8-\\xff\\xfe.png"] == "ingested"
        for name in hostile_sidecars():
            assert outcomes[name] == "ingested", name  # a bad sidecar is noted, the image is taken
        sidecar_notes = [json.loads(r["metadata_json"]) for r in lab.catalog.query(
            "SELECT metadata_json FROM images WHERE original_name IN ('deep_list.png', 'deep_object.png', 'not_utf8.png')")]
        assert len(sidecar_notes) == 3 and all("sidecar_error" in m for m in sidecar_notes)
        assert lab.catalog.integrity_check() == "ok"
    finally:
        lab.close()
    assert len(list(archive.iterdir())) == len(names) + len(hostile_sidecars()) + 1  # import leaves every source


def test_watch_takes_the_hostile_corpus_and_empties_the_drop_folder(tmp_path):
    lab = tiny_lab(tmp_path / "lab")
    try:
        drop_folder = lab.paths.drop_folder("T1")
        names = write_corpus(drop_folder)
        old = 1_000_000_000  # long written: a cut file is broken, not still being written
        for entry in os.scandir(drop_folder):
            if entry.name != "mtime_far_future.png":
                os.utime(entry.path, (old, old), follow_symlinks=False)
        steps = _run(lambda: watch(lab, once=True, workers=2, settle_s=0.05, poll_s=0.05, batch_size=64))
        totals = steps[-1].totals
        assert sum(totals.values()) == len(names), totals
        assert totals.get("rejected", 0) == 0
        outcomes = _accounted(lab, drop_folder, names)
        assert outcomes["dx_Rows_text.dcs"] == outcomes["tdr_corner_one_value.dcs"] == "quarantined"
        left = sorted(p.name for p in drop_folder.iterdir())
        assert left == ["sidecar_is_folder.png.json"]  # the folder is not ingest's to remove
        held = {Path(r["source_path"]).name: r for r in list_quarantine(lab)}
        assert all(r["reason"] and os.path.lexists(r["stored_path"]) for r in held.values())
        expected = {
            "dx_Rows_text.dcs": "bad_header", "dx_Columns_two.dcs": "bad_header", "dx_NumberOfFrames_text.dcs": "bad_header",
            "dx_Rows_empty.dcs": "bad_header",
            "tdr_corner_one_value.dcs": "bad_report", "tdr_corner_text.dcs": "bad_report", "tdr_corner_nan.dcs": "bad_report",
            "tiff_100000x100000.tif": "too_large", "dx_short_pixels.dcs": "undecodable",
            "jpeg_cut_0.33_eoi.jpg": "truncated", "jpeg_progressive_cut_0.5_eoi.jpg": "truncated",
            "png_cut_0.5_iend.png": "undecodable", "png_bad_crc.png": "undecodable", "tiff_cut_0.5.tif": "undecodable",
        }
        assert {n: held[n]["reason_code"] for n in expected} == expected
        assert {"dx_deflated_garbage.dcm", "dx_deflated_zlib_bomb.dcm"} <= set(held)
    finally:
        lab.close()


# -- a worker that dies, a catalog that refuses one file ------------------------------------

def test_a_file_that_kills_its_worker_process_is_quarantined_and_the_rest_go_through(tmp_path, monkeypatch):
    install_decoder_mishap(tmp_path, monkeypatch, "crash", "KILL-MY-DECODER")
    lab = tiny_lab(tmp_path / "lab")
    try:
        folder = lab.paths.drop_folder("T1")
        folder.mkdir(parents=True)
        for i in range(6):
            (folder / f"good_{i}.png").write_bytes(scan_png(200 + i))
        (folder / "poison.png").write_bytes(scan_png(210) + b"KILL-MY-DECODER")
        steps = _run(lambda: watch(lab, once=True, workers=2, settle_s=0.05, poll_s=0.05))
        assert steps[-1].totals == {"ingested": 6, "quarantined": 1}
        (held,) = list_quarantine(lab)
        assert held["reason_code"] == "crashed" and held["source_path"].endswith("poison.png")
        assert Path(held["stored_path"]).read_bytes().endswith(b"KILL-MY-DECODER")
        assert not list(folder.iterdir())
    finally:
        lab.close()


def test_a_file_the_catalog_refuses_is_quarantined_and_its_batch_is_kept(tmp_path):
    lab = tiny_lab(tmp_path / "lab")
    try:
        with lab.catalog.write() as txn:  # a catalog rule this one file breaks
            txn.execute("CREATE TRIGGER refuse_poison BEFORE INSERT ON images WHEN NEW.original_name = 'poison.png' "
                        "BEGIN SELECT RAISE(ABORT, 'refused by a catalog rule'); END")
        folder = lab.paths.drop_folder("T1")
        folder.mkdir(parents=True)
        for i in range(5):
            (folder / f"good_{i}.png").write_bytes(scan_png(300 + i))
        (folder / "poison.png").write_bytes(scan_png(310))
        steps = _run(lambda: watch(lab, once=True, workers=0, settle_s=0.05, poll_s=0.05, batch_size=64))
        assert steps[-1].totals == {"ingested": 5, "quarantined": 1}
        (held,) = list_quarantine(lab)
        assert "refused by a catalog rule" in held["reason"] and Path(held["stored_path"]).exists()
        assert not list(folder.iterdir())
        assert not list((lab.paths.store / ".journal").iterdir())  # the refused file's store copy is not left noted
    finally:
        lab.close()


# -- skipped files, cut files ------------------------------------------------------------

def test_import_accounts_for_hidden_files_links_to_folders_and_temporary_files(tmp_path):
    lab = tiny_lab(tmp_path / "lab")
    try:
        archive = tmp_path / "archive"
        (archive / "sub").mkdir(parents=True)
        (archive / ".hidden.png").write_bytes(scan_png(400))
        (archive / "copying.png.part").write_bytes(scan_png(401))
        (archive / "sub" / "real.png").write_bytes(scan_png(402))
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        (elsewhere / "x.png").write_bytes(scan_png(403))
        os.symlink(elsewhere, archive / "link_to_folder")
        steps = _run(lambda: import_paths(lab, [archive], workers=0))
        assert steps[-1].total == 4
        assert steps[-1].totals == {"ingested": 1, "skipped": 3}
        reasons = {Path(o.source).name: o.detail for step in steps for o in step.outcomes if o.outcome == "skipped"}
        assert set(reasons) == {".hidden.png", "copying.png.part", "link_to_folder"}
        assert "hidden" in reasons[".hidden.png"] and "link to a folder" in reasons["link_to_folder"]
        events = lab.catalog.query("SELECT detail FROM ingest_events WHERE detail LIKE 'skipped:%'")
        assert len(events) == 3
        # Named on its own, a link to a folder is followed: the user asked for it.
        again = _run(lambda: import_paths(lab, [archive / "link_to_folder"], workers=0))
        assert again[-1].totals == {"ingested": 1}
    finally:
        lab.close()


def test_a_jpeg_cut_short_and_given_an_end_marker_is_not_taken_as_whole(tmp_path):
    lab = tiny_lab(tmp_path / "lab")
    try:
        picture = cv2.resize((_pixels(5) >> 8).astype(np.uint8), (480, 320))
        whole = encode(picture, ".jpg")
        archive = tmp_path / "archive"
        archive.mkdir()
        (archive / "whole.jpg").write_bytes(whole)
        (archive / "third.jpg").write_bytes(whole[: len(whole) // 3] + b"\xff\xd9")
        steps = _run(lambda: import_paths(lab, [archive], workers=0))
        assert steps[-1].totals == {"ingested": 1, "quarantined": 1}
        (held,) = list_quarantine(lab)
        assert held["reason_code"] == "truncated" and held["source_path"].endswith("third.jpg")
    finally:
        lab.close()


# -- hypothesis: any bytes, behind any magic number -----------------------------------------

MAGICS = [b"", b"\x89PNG\r\n\x1a\n", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", b"II*\x00", b"MM\x00*", b"\xff\xd8\xff",
          b"\x00" * 128 + b"DICM"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(magic=st.sampled_from(MAGICS), body=st.binary(max_size=3000))
def test_any_bytes_end_as_an_outcome_never_an_exception(tmp_path, magic, body):
    path = tmp_path / "any.bin"
    path.write_bytes(magic + body)
    os.utime(path, (1_000_000_000, 1_000_000_000))
    prepared = prepare(str(path), None, str(tmp_path / "store"), str(tmp_path / "quarantine"))
    assert prepared.kind in ("image", "quarantine")
    if prepared.kind == "quarantine":
        assert prepared.reason and Path(prepared.quarantine_path).exists()
