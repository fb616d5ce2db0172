"""Decode an image file's bytes once, and describe what was found.

Formats: PNG and TIFF (8/16-bit, grey or colour) and JPEG through OpenCV;
DICOM and DICOS through pydicom (uncompressed, RLE, and the JPEG family when
the pylibjpeg plugins are installed). A multi-frame DICOM object is taken by
its first frame; the frame count is kept in the metadata. A DICOS threat
detection report (TDR) carries boxes, not pixels; it is returned as a report.
"""

from __future__ import annotations

import io
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
DICOS_DX_SOP_CLASSES = ("1.2.840.10008.5.1.4.1.1.501.2.1", "1.2.840.10008.5.1.4.1.1.501.2.2")


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
    elif fmt == "jpeg" and not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        raise DecodeError("truncated", "JPEG is cut short (no end marker): still being written or a broken copy")


def _raster(fmt: str, data: bytes) -> Decoded:
    import cv2

    _check_complete(fmt, data)
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.size == 0:
        raise DecodeError("undecodable", f"the {fmt.upper()} data cannot be decoded (corrupt or truncated)")
    if pixels.ndim == 3:
        if pixels.shape[2] == 4:
            pixels = pixels[:, :, :3]
        pixels = pixels[:, :, ::-1]  # OpenCV is BGR; XLab keeps RGB
        if pixels.shape[2] == 1:
            pixels = pixels[:, :, 0]
    if pixels.dtype == np.uint8:
        bits = 8
    elif pixels.dtype == np.uint16:
        bits = 16
    else:
        raise DecodeError("bit_depth", f"{fmt.upper()} sample type {pixels.dtype} is not an X-ray image format")
    return Decoded(fmt, np.ascontiguousarray(pixels), bits)


def _dicom(data: bytes) -> Decoded:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(io.BytesIO(data))
    except (InvalidDicomError, EOFError, ValueError, struct.error, OSError, KeyError) as exc:
        raise DecodeError("undecodable", f"DICOM data cannot be read: {exc}") from None
    sop_class = str(ds.get("SOPClassUID", ""))
    metadata = {
        key: str(ds.get(key))
        for key in ("SOPClassUID", "SOPInstanceUID", "Modality", "Manufacturer", "ManufacturerModelName",
                    "DeviceSerialNumber", "StationName", "AcquisitionDateTime", "ContentDate", "ContentTime",
                    "KVP", "XRayTubeCurrent", "OperatorsName")
        if key in ds
    }
    fmt = "dicos" if sop_class.startswith("1.2.840.10008.5.1.4.1.1.501") else "dicom"
    if sop_class == DICOS_TDR_SOP_CLASS:
        metadata["ground_truth"] = str(ds.get("TDRType", "")) == "GROUND_TRUTH"
        return Decoded(fmt, None, 0, metadata, _tdr_boxes(ds), is_report=True)
    if "PixelData" not in ds:
        raise DecodeError("no_pixels", "DICOM object has no pixel data (not an image)")
    rows, cols = int(ds.get("Rows", 0)), int(ds.get("Columns", 0))
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if rows * cols > MAX_PIXELS:
        raise DecodeError("too_large", f"DICOM declares {cols}x{rows} pixels, more than any scanner writes")
    try:
        pixels = ds.pixel_array
    except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds for bad pixel data
        raise DecodeError("undecodable", f"DICOM pixel data cannot be decoded: {exc}") from None
    if frames > 1:
        metadata["frames"] = frames
        pixels = pixels[0]
    bits = int(ds.get("BitsStored", 8 * pixels.dtype.itemsize))
    if pixels.dtype.kind not in "ui":
        raise DecodeError("bit_depth", f"DICOM sample type {pixels.dtype} is not an X-ray image format")
    pixels = pixels.astype(np.uint16 if bits > 8 else np.uint8, copy=False)
    return Decoded(fmt, np.ascontiguousarray(pixels), bits, metadata)


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
                boxes.append({"label": label, "x0": float(top_left[0]), "y0": float(top_left[1]),
                              "x1": float(bottom_right[0]), "y1": float(bottom_right[1]),
                              "referenced_sop_instance": referenced})
    return boxes


def decode(data: bytes) -> Decoded:
    if not data:
        raise DecodeError("empty", "the file is empty (0 bytes)")
    fmt = sniff(data)
    if fmt is None:
        raise DecodeError("unknown_format", "not a PNG, TIFF, JPEG or DICOM/DICOS file")
    if fmt == "dicom":
        return _dicom(data)
    return _raster(fmt, data)
