"""Decode an image file's bytes once, and describe what was found.

Formats: PNG and TIFF (8/16-bit, grey or colour) and JPEG through OpenCV;
DICOM and DICOS through pydicom (uncompressed, RLE, and the JPEG family when
the pylibjpeg plugins are installed). A multi-frame DICOM object is taken by
its first frame; the frame count is kept in the metadata. A DICOS threat
detection report (TDR) carries boxes, not pixels; it is returned as a report.
"""

from __future__ import annotations

import io
import math
import os
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAX_PIXELS = 120_000_000  # no scanner writes more; a larger header is corrupt or hostile
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_PIXELS))
# Bad files are expected here and reported as quarantine reasons; OpenCV's own
# console messages about them would only be noise.
os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")

DICOS_TDR_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.501.3"


class DecodeError(Exception):
    """The bytes are not a usable image; ``code`` is a stable reason code."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass
class Decoded:
    format: str  # png, tiff, jpeg, dicom, dicos
    pixels: np.ndarray | None  # H x W (grey) or H x W x 3 (colour, RGB order)
    bit_depth: int = 8
    metadata: dict[str, Any] = field(default_factory=dict)
    boxes: list[dict[str, Any]] = field(default_factory=list)  # from a TDR
    is_report: bool = False

    @property
    def channels(self) -> int:
        return 1 if self.pixels is None or self.pixels.ndim == 2 else self.pixels.shape[2]


def sniff(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if len(data) > 132 and data[128:132] == b"DICM":
        return "dicom"
    return None


def _png_header(data: bytes) -> tuple[int, int]:
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise DecodeError("truncated", "PNG header is missing or cut short")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _check_complete(fmt: str, data: bytes) -> None:
    """Reject files cut short (still being written, or a copy that broke off)."""
    if fmt == "png":
        width, height = _png_header(data)
        if width * height > MAX_PIXELS:
            raise DecodeError("too_large", f"PNG declares {width}x{height} pixels, more than any scanner writes")
        if b"IEND" not in data[-16:]:
            raise DecodeError("truncated", "PNG is cut short (no end marker): still being written or a broken copy")
        _check_png_chunks(data)
    elif fmt == "jpeg" and not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        raise DecodeError("truncated", "JPEG is cut short (no end marker): still being written or a broken copy")


def _check_png_chunks(data: bytes) -> None:
    """Each chunk must fit in the file: a damaged length makes libpng read (and wait) for gigabytes."""
    at = 8
    while at + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        if at + 12 + length > len(data):
            raise DecodeError("undecodable", f"PNG chunk at byte {at} claims {length} bytes, past the end of the file")
        if kind == b"IEND":
            return
        at += 12 + length
    raise DecodeError("truncated", "PNG chunks do not reach the end marker (a broken copy)")


# Entropy-coded bytes that decode to non-zero coefficients (no 0xFF, so no marker).
_JPEG_PROBE = bytes(range(1, 255)) * 4


def _check_jpeg_scan(data: bytes, pixels: np.ndarray) -> None:
    """Reject a JPEG whose compressed data stops before its last block.

    libjpeg decodes such a file "successfully", with a warning only, filling
    the missing blocks flat (a file cut short and given an end marker looks
    whole). Decoding again with extra entropy-coded bytes before the end
    marker tells them apart: a complete scan ignores the extra bytes (the
    picture is the same); an incomplete one decodes them into its missing
    blocks (the picture changes).
    """
    import cv2

    body = data.rstrip(b"\x00")[:-2]
    probe = cv2.imdecode(np.frombuffer(body + _JPEG_PROBE + b"\xff\xd9", np.uint8), cv2.IMREAD_UNCHANGED)
    if probe is None or probe.shape != pixels.shape or not np.array_equal(probe, pixels):
        raise DecodeError("truncated", "JPEG image data stops before the end of the picture (a broken copy)")


def _imdecode(fmt: str, data: bytes) -> np.ndarray | None:
    import cv2

    try:
        return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        if "MAX_IMAGE_PIXELS" in str(exc):
            raise DecodeError("too_large", f"the {fmt.upper()} header declares more pixels than any scanner writes") from None
        raise DecodeError("undecodable", f"the {fmt.upper()} data cannot be decoded: {str(exc).strip().splitlines()[-1][:200]}") from None


def _raster(fmt: str, data: bytes) -> Decoded:
    _check_complete(fmt, data)
    pixels = _imdecode(fmt, data)
    if pixels is None or pixels.size == 0:
        raise DecodeError("undecodable", f"the {fmt.upper()} data cannot be decoded (corrupt or truncated)")
    if fmt == "jpeg":
        _check_jpeg_scan(data, pixels)
    if pixels.ndim == 3:
        if pixels.shape[2] in (1, 2):  # grey, or grey and alpha
            pixels = pixels[:, :, 0]
        elif pixels.shape[2] in (3, 4):
            pixels = pixels[:, :, 2::-1]  # OpenCV is BGR(A); XLab keeps RGB
        else:
            raise DecodeError("channels", f"{fmt.upper()} has {pixels.shape[2]} channels; X-ray images have 1 or 3")
    if pixels.dtype == np.uint8:
        bits = 8
    elif pixels.dtype == np.uint16:
        bits = 16
    else:
        raise DecodeError("bit_depth", f"{fmt.upper()} sample type {pixels.dtype} is not an X-ray image format")
    return Decoded(fmt, np.ascontiguousarray(pixels), bits)


def _dicom(data: bytes) -> Decoded:
    import pydicom

    try:
        ds = pydicom.dcmread(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - a damaged file raises anything from zlib.error to KeyError
        raise DecodeError("undecodable", f"DICOM data cannot be read: {_first_line(exc)}") from None
    try:
        sop_class = str(ds.get("SOPClassUID", ""))
        metadata = {
            key: str(ds.get(key))[:1000]
            for key in ("SOPClassUID", "SOPInstanceUID", "Modality", "Manufacturer", "ManufacturerModelName",
                        "DeviceSerialNumber", "StationName", "AcquisitionDateTime", "ContentDate", "ContentTime",
                        "KVP", "XRayTubeCurrent", "OperatorsName")
            if key in ds
        }
    except Exception as exc:  # noqa: BLE001 - a value pydicom cannot convert (bad VR, bad length, bad charset)
        raise DecodeError("bad_header", f"DICOM attributes cannot be read: {_first_line(exc)}") from None
    fmt = "dicos" if sop_class.startswith("1.2.840.10008.5.1.4.1.1.501") else "dicom"
    if sop_class == DICOS_TDR_SOP_CLASS:
        try:
            metadata["ground_truth"] = str(ds.get("TDRType", "")) == "GROUND_TRUTH"
            boxes = _tdr_boxes(ds)
        except DecodeError:
            raise
        except Exception as exc:  # noqa: BLE001 - sequences and values of a damaged report
            raise DecodeError("bad_report", f"DICOS threat report cannot be read: {_first_line(exc)}") from None
        return Decoded(fmt, None, 0, metadata, boxes, is_report=True)
    if "PixelData" not in ds:
        raise DecodeError("no_pixels", "DICOM object has no pixel data (not an image)")
    rows, cols = _count(ds, "Rows", None), _count(ds, "Columns", None)
    frames = _count(ds, "NumberOfFrames", 1) or 1
    if rows * cols > MAX_PIXELS or rows * cols * frames > 4 * MAX_PIXELS:
        raise DecodeError("too_large", f"DICOM declares {frames} frame(s) of {cols}x{rows} pixels, more than any scanner writes")
    if rows == 0 or cols == 0:
        raise DecodeError("bad_header", f"DICOM declares an image of {cols}x{rows} pixels")
    try:
        pixels = ds.pixel_array
    except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds for bad pixel data
        raise DecodeError("undecodable", f"DICOM pixel data cannot be decoded: {_first_line(exc)}") from None
    samples = _count(ds, "SamplesPerPixel", 1)
    if pixels.ndim == (3 if samples > 1 else 2) + 1:
        metadata["frames"] = int(pixels.shape[0])
        pixels = pixels[0]
    if not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 3)) or pixels.size == 0:
        raise DecodeError("bad_header", f"DICOM pixel data has shape {pixels.shape}; expected one grey or RGB picture")
    if pixels.dtype.kind not in "ui":
        raise DecodeError("bit_depth", f"DICOM sample type {pixels.dtype} is not an X-ray image format")
    bits = _count(ds, "BitsStored", 8 * pixels.dtype.itemsize)
    if not 1 <= bits <= 8 * pixels.dtype.itemsize:
        raise DecodeError("bit_depth", f"DICOM BitsStored {bits} does not fit its {8 * pixels.dtype.itemsize}-bit samples")
    pixels = pixels.astype(np.uint16 if bits > 8 else np.uint8, copy=False)
    return Decoded(fmt, np.ascontiguousarray(pixels), bits, metadata)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0][:300] if text else "") or type(exc).__name__


def _count(ds: Any, keyword: str, default: int | None) -> int:
    """A whole-number attribute (Rows, NumberOfFrames, ...), or a DecodeError naming it."""
    if keyword not in ds:
        if default is None:
            raise DecodeError("bad_header", f"DICOM image has no {keyword}")
        return default
    value = ds.get(keyword)
    if value is None or value == "":
        if default is None:
            raise DecodeError("bad_header", f"DICOM {keyword} is empty")
        return default
    try:
        number = int(value)
        if number != float(value):
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise DecodeError("bad_header", f"DICOM {keyword} is {str(value)[:40]!r}, not one whole number") from None
    if number < 0:
        raise DecodeError("bad_header", f"DICOM {keyword} is {number}")
    return number


def _tdr_boxes(ds: Any) -> list[dict[str, Any]]:
    """Threat boxes of a DICOS TDR: per threat, its label and bounding box in pixels."""
    boxes = []
    referenced = ""
    for threat in ds.get("ThreatSequence", []):
        label = ""
        for assessment in threat.get("ATDAssessmentSequence", []):
            label = str(assessment.get("ThreatCategoryDescription", "") or assessment.get("ThreatCategory", ""))
        for pto in threat.get("PTORepresentationSequence", []):
            for ref in pto.get("ReferencedInstanceSequence", []):
                referenced = str(ref.get("ReferencedSOPInstanceUID", referenced))
            top_left = pto.get("BoundingBoxTopLeftHandCorner")
            bottom_right = pto.get("BoundingBoxBottomRightHandCorner")
            if top_left is not None and bottom_right is not None:
                (x0, y0), (x1, y1) = _corner(top_left, "top-left"), _corner(bottom_right, "bottom-right")
                boxes.append({"label": label[:200], "x0": x0, "y0": y0, "x1": x1, "y1": y1,
                              "referenced_sop_instance": referenced[:64]})
    return boxes


def _corner(value: Any, which: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in value)
    except (TypeError, ValueError):
        raise DecodeError("bad_report", f"DICOS threat box {which} corner is {str(value)[:40]!r}, not two numbers") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise DecodeError("bad_report", f"DICOS threat box {which} corner is ({x}, {y})")
    return x, y


def decode(data: bytes) -> Decoded:
    if not data:
        raise DecodeError("empty", "the file is empty (0 bytes)")
    fmt = sniff(data)
    if fmt is None:
        raise DecodeError("unknown_format", "not a PNG, TIFF, JPEG or DICOM/DICOS file")
    if fmt == "dicom":
        return _dicom(data)
    return _raster(fmt, data)
