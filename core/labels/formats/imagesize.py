"""Image sizes from file headers, for formats (YOLO) whose coordinates are
relative to a size the annotation file does not state."""

from __future__ import annotations

from pathlib import Path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".dcm")


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) of the image at ``path`` without decoding its pixels, or
    None when it cannot be read. Covers 8/16-bit PNG and TIFF, JPEG, BMP (Pillow
    reads only the header) and DICOM (its Rows/Columns)."""
    if path.suffix.lower() == ".dcm":
        return _dicom_size(path)
    try:
        from PIL import Image

        with Image.open(path) as im:
            return im.size
    except Exception:  # noqa: BLE001 - Pillow raises many types for unreadable files
        pass
    # A format Pillow does not know: let OpenCV decode it (slower, but still right).
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        return None
    return int(img.shape[1]), int(img.shape[0])


def _dicom_size(path: Path) -> tuple[int, int] | None:
    try:
        import pydicom

        ds = pydicom.dcmread(path, stop_before_pixels=True)
        return int(ds.Columns), int(ds.Rows)
    except Exception:  # noqa: BLE001 - pydicom raises many types for unreadable files
        return None
