"""What the model sees: manifest images decoded, resized, turned into attenuation, augmented, batched.

Loaded by the run process only (it imports torch). The data loader's workers run this, so the
device gets whole batches while the next ones are decoded.

Input: every image becomes the log attenuation ``-ln(I / I_air)`` of what the scanner measured,
divided by :data:`ATTENUATION_SCALE`, in three channels. ``I_air`` is the image's own empty-belt
level (a high percentile: the brightest pixels are the belt with nothing on it), so 12-bit and 16-bit
scanners and their gains give the same numbers for the same bag. A grey image (8 or 16 bits) gives
the same attenuation in its three channels; a pseudo-colour image gives one per colour channel
(air is 0 in every channel, as in grey). Resizing averages intensities before the logarithm, as a
coarser detector pixel would.

Augmentation (training only, with ``augment``): flips both ways (a bag lies on the belt any way
round), a zoom and a shift (what a different pixel pitch and position on the belt give). Nothing
changes the intensities: the values are physics, and the colours of pseudo-colour images encode the
material, so colour jitter would teach the wrong materials. Each image's augmentation is drawn from
``(seed, epoch, index)`` alone, so it does not depend on the number of workers or on a resume.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from core.ingest.decode import DecodeError, decode

ATTENUATION_SCALE = 3.0
MIN_TRANSMISSION = 1e-4
AIR_PERCENTILE = 99.5
# A box cut by a shift keeps its label when this much of it stays in the image.
MIN_VISIBLE = 0.4
MIN_BOX_PX = 2.0


def resized_size(width: int, height: int, image_size: int) -> tuple[int, int]:
    """(width, height) with the longest side ``image_size`` and the aspect kept."""
    r = image_size / max(width, height)
    return max(1, round(width * r)), max(1, round(height * r))


def attenuation(pixels: np.ndarray) -> np.ndarray:
    """Log attenuation / :data:`ATTENUATION_SCALE` (float32, H x W x C) of decoded pixels (uint8/16,
    H x W or H x W x 3)."""
    image = pixels.astype(np.float32)
    if image.ndim == 2:
        image = image[:, :, None]
    step = max(1, int(math.sqrt(image.shape[0] * image.shape[1] / 65536)))
    air = max(float(np.percentile(image[::step, ::step], AIR_PERCENTILE)), 1.0)
    np.multiply(image, 1.0 / air, out=image)
    np.clip(image, MIN_TRANSMISSION, 1.0, out=image)
    np.log(image, out=image)
    np.multiply(image, -1.0 / ATTENUATION_SCALE, out=image)
    return image


def _affine(rng: np.random.Generator, width: int, height: int, scale_jitter: float,
            translate: float) -> np.ndarray:
    """A 2x3 map (output from input pixels): flips, a zoom about the centre, a shift."""
    fx = -1.0 if rng.random() < 0.5 else 1.0
    fy = -1.0 if rng.random() < 0.5 else 1.0
    s = rng.uniform(1.0 - scale_jitter, 1.0 + scale_jitter) if scale_jitter else 1.0
    tx = rng.uniform(-translate, translate) * width if translate else 0.0
    ty = rng.uniform(-translate, translate) * height if translate else 0.0
    cx, cy = width / 2, height / 2
    return np.array([[s * fx, 0.0, cx - s * fx * cx + tx],
                     [0.0, s * fy, cy - s * fy * cy + ty]], np.float64)


def _boxes_through(m: np.ndarray, boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Boxes (N x 5) mapped by an axis-aligned affine map, clipped to the image; boxes left mostly
    outside it (or thinner than :data:`MIN_BOX_PX`) are dropped."""
    if not len(boxes):
        return boxes
    xs = boxes[:, [0, 2]] * m[0, 0] + m[0, 2]
    ys = boxes[:, [1, 3]] * m[1, 1] + m[1, 2]
    x0, x1 = xs.min(axis=1), xs.max(axis=1)
    y0, y1 = ys.min(axis=1), ys.max(axis=1)
    area = (x1 - x0) * (y1 - y0)
    cx0, cy0 = np.clip(x0, 0, width), np.clip(y0, 0, height)
    cx1, cy1 = np.clip(x1, 0, width), np.clip(y1, 0, height)
    kept = ((cx1 - cx0) * (cy1 - cy0) >= MIN_VISIBLE * area) & (cx1 - cx0 >= MIN_BOX_PX) & (cy1 - cy0 >= MIN_BOX_PX)
    return np.stack([cx0, cy0, cx1, cy1, boxes[:, 4]], axis=1)[kept]


class ManifestImages(torch.utils.data.Dataset):
    """The images of a manifest as model inputs. An index is ``i`` (no augmentation) or
    ``(epoch, i)`` (augmented from ``(seed, epoch, i)`` when ``augment``).

    An item: ``{"index", "image": float32 C x H x W, "boxes": float32 N x 4 (resized pixels),
    "labels": int64 N, "scale": (sx, sy) from resized to original pixels}``, or for a file that
    cannot be used ``{"index", "skipped": path, "reason": ...}`` (the run warns and goes on).
    """

    def __init__(self, rows: list[dict[str, Any]], image_size: int, *, augment: bool = False, seed: int = 0,
                 scale_jitter: float = 0.0, translate: float = 0.0):
        self.rows = rows
        self.image_size = image_size
        self.augment = augment
        self.seed = seed
        self.scale_jitter = scale_jitter
        self.translate = translate

    def __len__(self) -> int:
        return len(self.rows)

    def load(self, i: int) -> np.ndarray:
        """The decoded pixels of row ``i``. Raises ValueError with the reason it cannot be used."""
        row = self.rows[i]
        try:
            data = Path(row["path"]).read_bytes()
        except OSError as exc:
            raise ValueError(exc.strerror or str(exc)) from None
        try:
            decoded = decode(data)
        except DecodeError as exc:
            raise ValueError(str(exc)) from None
        if decoded.pixels is None:
            raise ValueError("it holds no image (a threat detection report)")
        h, w = decoded.pixels.shape[:2]
        if (w, h) != (row["width"], row["height"]):
            raise ValueError(f"it is {w}x{h} pixels, the manifest says {row['width']}x{row['height']}")
        return decoded.pixels

    def __getitem__(self, index: int | tuple[int, int]) -> dict[str, Any]:
        epoch, i = index if isinstance(index, tuple) else (None, index)
        row = self.rows[i]
        try:
            pixels = self.load(i)
        except ValueError as exc:
            return {"index": i, "skipped": row["path"], "reason": str(exc)}
        w, h = resized_size(row["width"], row["height"], self.image_size)
        if (w, h) != (row["width"], row["height"]):
            pixels = cv2.resize(pixels, (w, h), interpolation=cv2.INTER_AREA)
        image = attenuation(pixels)
        r = np.array([w / row["width"], h / row["height"]], np.float32)
        boxes = np.asarray(row["boxes"], np.float32).reshape(-1, 5)
        boxes[:, [0, 2]] *= r[0]
        boxes[:, [1, 3]] *= r[1]
        if self.augment and epoch is not None:
            rng = np.random.default_rng([self.seed, epoch, i])
            m = _affine(rng, w, h, self.scale_jitter, self.translate)
            # Air (0) fills what the shift uncovers, as the empty belt would.
            image = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                   borderValue=0.0)
            if image.ndim == 2:
                image = image[:, :, None]
            boxes = _boxes_through(m, boxes, w, h)
        tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        if tensor.shape[0] == 1:
            tensor = tensor.expand(3, -1, -1)
        return {"index": i, "image": tensor, "boxes": torch.from_numpy(np.ascontiguousarray(boxes[:, :4])),
                "labels": torch.from_numpy(boxes[:, 4].astype(np.int64)), "scale": (1 / float(r[0]), 1 / float(r[1]))}


def collate(items: list[dict[str, Any]]) -> dict[str, list]:
    """A batch: the usable items' images, targets and indexes, and the skipped items apart."""
    used = [it for it in items if "image" in it]
    return {"images": [it["image"] for it in used],
            "targets": [{"boxes": it["boxes"], "labels": it["labels"]} for it in used],
            "indexes": [it["index"] for it in used], "scales": [it["scale"] for it in used],
            "skipped": [(it["skipped"], it["reason"]) for it in items if "skipped" in it]}


class EpochSampler(torch.utils.data.Sampler):
    """``(epoch, i)`` indexes in an order drawn from ``(seed, epoch)``; :meth:`start` sets the epoch
    and how many of its first items to pass over (a resume within the epoch). Iterated in the main
    process, so it may be changed between epochs while the workers live on."""

    def __init__(self, n: int, seed: int, shuffle: bool = True):
        self.n, self.seed, self.shuffle = n, seed, shuffle
        self.epoch, self.offset = 0, 0

    def start(self, epoch: int, offset: int = 0) -> None:
        self.epoch, self.offset = epoch, offset

    def order(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.n)
        return np.random.default_rng([self.seed, epoch, 7]).permutation(self.n)

    def __iter__(self):
        for i in self.order(self.epoch)[self.offset:]:
            yield self.epoch, int(i)

    def __len__(self) -> int:
        return max(0, self.n - self.offset)


def _worker_start(worker_id: int) -> None:
    # One OpenCV thread per loader process: the workers are the parallelism (torch sets its own
    # threads to one there already).
    cv2.setNumThreads(1)


def loader(dataset: ManifestImages, batch_size: int, workers: int, pin: bool,
           sampler: torch.utils.data.Sampler | None = None) -> torch.utils.data.DataLoader:
    """A data loader over ``dataset`` (in manifest order when no sampler)."""
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, collate_fn=collate,
        pin_memory=pin, persistent_workers=workers > 0 and sampler is not None,
        worker_init_fn=_worker_start if workers > 0 else None,
        prefetch_factor=4 if workers > 0 else None)
