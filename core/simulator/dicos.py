"""DICOS (NEMA IIC 1) objects written with pydicom: a DX radiograph and a
threat detection report (TDR) whose threat boxes point at that radiograph.

The simulated scanner writes these so that the demo and the tests go through
the format real security scanners write. The attributes follow the DICOS DX
and TDR modules that pydicom's dictionary knows; a TDR marked GROUND_TRUTH is
how labels travel between labs.
"""

from __future__ import annotations

import io
from datetime import datetime

import numpy as np

DX_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.501.2.1"
TDR = "1.2.840.10008.5.1.4.1.1.501.3"


def _base(sop_class: str, when: datetime, scanner: str, model: str):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.DICOSVersion = "V03"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = when.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = when.strftime("%H%M%S.%f")
    ds.Manufacturer = "SimScan"
    ds.ManufacturerModelName = model
    ds.StationName = scanner
    ds.DeviceSerialNumber = scanner
    ds.OOIType = "BAGGAGE"
    return ds


def _encode(ds) -> bytes:
    import pydicom

    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def dx_bytes(pixels: np.ndarray, bit_depth: int, scanner: str, model: str, pixel_mm: float,
             when: datetime | None = None) -> tuple[bytes, str]:
    """A DICOS DX object holding a 16-bit grey radiograph; returns (bytes, SOP instance UID)."""
    when = when or datetime.now()
    ds = _base(DX_FOR_PRESENTATION, when, scanner, model)
    ds.Modality = "DX"
    ds.AcquisitionDateTime = when.strftime("%Y%m%d%H%M%S.%f")
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.KVP = "160"
    ds.XRayTubeCurrent = 1.0
    ds.PixelSpacing = [pixel_mm, pixel_mm]
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = bit_depth
    ds.HighBit = bit_depth - 1
    ds.PixelRepresentation = 0
    ds.PixelData = np.ascontiguousarray(pixels, dtype=np.uint16).tobytes()
    return _encode(ds), str(ds.SOPInstanceUID)


def tdr_bytes(dx_uid: str, boxes: list[tuple[str, tuple[int, int, int, int]]], scanner: str, model: str,
              ground_truth: bool = True, when: datetime | None = None) -> bytes:
    """A DICOS TDR whose threats (label, x0, y0, x1, y1) refer to the DX ``dx_uid``."""
    from pydicom.dataset import Dataset

    ds = _base(TDR, when or datetime.now(), scanner, model)
    ds.Modality = "TDR"
    ds.TDRType = "GROUND_TRUTH" if ground_truth else "MACHINE"
    ds.ThreatDetectionAlgorithmAndVersion = "XLab simulator ground truth"
    ds.NumberOfTotalObjects = len(boxes)
    ds.NumberOfAlarmObjects = len(boxes)
    threats = []
    for number, (label, (x0, y0, x1, y1)) in enumerate(boxes, start=1):
        assessment = Dataset()
        assessment.ThreatCategory = "ANOMALY"
        assessment.ThreatCategoryDescription = label
        assessment.ATDAbilityAssessment = "NO_INTERFERENCE"
        assessment.ATDAssessmentFlag = "THREAT"
        assessment.ATDAssessmentProbability = 1.0
        reference = Dataset()
        reference.ReferencedSOPClassUID = DX_FOR_PRESENTATION
        reference.ReferencedSOPInstanceUID = dx_uid
        representation = Dataset()
        representation.ReferencedInstanceSequence = [reference]
        representation.BoundingBoxTopLeftHandCorner = [float(x0), float(y0)]
        representation.BoundingBoxBottomRightHandCorner = [float(x1), float(y1)]
        threat = Dataset()
        threat.PotentialThreatObjectID = number
        threat.ATDAssessmentSequence = [assessment]
        threat.PTORepresentationSequence = [representation]
        threats.append(threat)
    ds.ThreatSequence = threats
    return _encode(ds)
