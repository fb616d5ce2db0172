"""Image pyramids for the viewer, cached in the content store beside the thumbnails.

A pyramid holds an image at 1/2, 1/4, ... of its size, down to at most
256 pixels a side, with its histogram (for the window presets) and, for a
dual-energy scan, the pseudo-colour view at the same levels. A viewer that
shows a 2048² image in a window never needs more than one of these levels to
fill the screen, so it can paint from the cache without decoding the image;
only zooming past the finest cached level needs the decoded full image
(level 0), which is never cached (the stored file is that level).

Cache: ``STORE/pyramids/ab/<sha256>.npz`` (uncompressed: loading is a read,
not a decompression). It is content-addressed like the image, so it is never
stale; a missing, unreadable or older-format file is rebuilt from the image.
About 2.8 MB for a 2048² 16-bit image (a third of its raw size), written only
for images someone looks at. Nothing here touches the catalog.

Threads: everything here reads or decodes files; call it off the GUI thread.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import XLabError

FORMAT_VERSION = 1
SMALLEST_SIDE = 256  # the coarsest level is at most this big
_SHA = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class ImageChannels:
    """Decoded pixels: ``high`` is the grey image (uint8/uint16, H x W) or a colour
    file's RGB (uint8, H x W x 3); ``low`` the low-energy channel of a dual-energy scan."""

    high: np.ndarray
    low: np.ndarray | None = None

    @property
    def kind(self) -> str:
        return "rgb" if self.high.ndim == 3 else "grey"


@dataclass(frozen=True)
class Pyramid:
    width: int
    height: int
    kind: str  # "grey" (uint8/uint16 levels) or "rgb" (uint8 H x W x 3 levels)
    levels: dict[int, np.ndarray]  # k -> the image reduced 2**k times (0: full size, when decoded)
    hist: np.ndarray | None  # grey images: counts per stored value
    pseudo: dict[int, np.ndarray] = field(default_factory=dict)  # dual energy: RGB view per level

    @property
    def coarsest(self) -> int:
        return max(self.levels)

    @property
    def entries(self) -> int:
        """Stored values a window table must cover (256 for 8-bit and colour, 65,536 for 16-bit)."""
        return 65536 if self.levels[self.coarsest].dtype == np.uint16 else 256

    def level_for(self, scale: float) -> int:
        """The coarsest level that still has a pixel per screen pixel at ``scale``
        (screen pixels per image pixel); may be finer than what is loaded."""
        k = 0
        while k < self.coarsest and 2.0 ** -(k + 1) >= scale:
            k += 1
        return k


def store_location(path: Path) -> tuple[Path, str] | None:
    """(store root, sha256) for a file of the content store (``STORE/ab/cd/<sha>.<ext>``), else None."""
    path = Path(path)
    sha = path.name.split(".", 1)[0]
    if not _SHA.fullmatch(sha) or path.parent.name != sha[2:4] or path.parent.parent.name != sha[:2]:
        return None
    return path.parents[2], sha


def cache_path(store_root: Path, sha: str) -> Path:
    return Path(store_root) / "pyramids" / sha[:2] / f"{sha}.npz"


def decode_file(path: Path) -> ImageChannels:
    """Read and decode an image file (the viewer's one way to decode a whole image).

    Raises XLabError with what to do when the file is missing or not an image.
    """
    from core.ingest.decode import DecodeError, decode

    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise XLabError(f"image file {path} is missing from the store: restore the store from its backup") from None
    except OSError as exc:
        raise XLabError(f"image file {path} cannot be read ({exc.strerror}): check the disk and its permissions") from None
    try:
        decoded = decode(data)
    except DecodeError as exc:
        raise XLabError(f"image file {path} cannot be shown: {exc}") from None
    if decoded.pixels is None:
        raise XLabError(f"{path} is a threat report, not an image: open the radiograph it refers to")
    return ImageChannels(decoded.pixels)


def _halve(pixels: np.ndarray) -> np.ndarray:
    import cv2

    h, w = pixels.shape[:2]
    return cv2.resize(pixels, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA)


def _reduce(full: np.ndarray) -> dict[int, np.ndarray]:
    """Levels 1.. of an image (none for an image already small)."""
    levels = {}
    current, k = full, 0
    while max(current.shape[:2]) > SMALLEST_SIDE:
        current, k = _halve(current), k + 1
        levels[k] = np.ascontiguousarray(current)
    return levels


def build(channels: ImageChannels) -> Pyramid:
    """A pyramid with every level, the full image (level 0) included."""
    from core.imaging import pseudocolour, windowing

    high = channels.high
    h, w = high.shape[:2]
    levels = {0: high, **_reduce(high)}
    hist = windowing.histogram(high) if channels.kind == "grey" else None
    pseudo = {}
    if channels.kind == "grey" and pseudocolour.available(channels.low, high):
        rgb = pseudocolour.render(channels.low, high)
        pseudo = {0: rgb, **_reduce(rgb)}
    return Pyramid(w, h, channels.kind, levels, hist, pseudo)


def save(pyramid: Pyramid, path: Path) -> None:
    """Write the cached levels (all but level 0) atomically; a derived file, so no fsync."""
    from core.store import write_atomic

    meta = {"version": FORMAT_VERSION, "width": pyramid.width, "height": pyramid.height, "kind": pyramid.kind}
    arrays = {"meta": np.array(json.dumps(meta))}
    arrays.update({f"level_{k}": a for k, a in pyramid.levels.items() if k > 0})
    arrays.update({f"pseudo_{k}": a for k, a in pyramid.pseudo.items() if k > 0})
    if pyramid.hist is not None:
        arrays["hist"] = pyramid.hist
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_atomic(Path(path), buffer.getvalue(), durable=False)


def load(path: Path) -> Pyramid | None:
    """The cached pyramid, or None when it is missing, unreadable or of an older format
    (the caller rebuilds it; the image itself is the truth)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            if meta.get("version") != FORMAT_VERSION:
                return None
            levels = {int(name[6:]): npz[name] for name in npz.files if name.startswith("level_")}
            pseudo = {int(name[7:]): npz[name] for name in npz.files if name.startswith("pseudo_")}
            hist = npz["hist"] if "hist" in npz.files else None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    width, height, kind = meta["width"], meta["height"], meta["kind"]
    for k, level in levels.items():
        expected = (-(-height // 2 ** k), -(-width // 2 ** k))
        if level.shape[:2] != expected:
            return None  # a damaged or foreign file: rebuild rather than show it misplaced
    if not levels or (kind == "grey" and hist is None):
        return None
    return Pyramid(width, height, kind, levels, hist, pseudo)


@dataclass(frozen=True)
class ImageSource:
    """Where a viewer's pixels come from: a file of the content store, or a
    provider of channels (a dual-energy scan's two channels, an array in memory).

    ``cache``: the pyramid file (for a store file, beside its thumbnail; for a
    provider, where the caller wants it, or None for no cache).
    """

    path: Path | None = None
    provider: Callable[[], ImageChannels] | None = None
    cache: Path | None = None
    thumbnail: Path | None = None

    @classmethod
    def from_store(cls, path: Path) -> "ImageSource":
        path = Path(path)
        where = store_location(path)
        if where is None:
            return cls(path=path)
        from core.store import ContentStore

        root, sha = where
        return cls(path=path, cache=cache_path(root, sha), thumbnail=ContentStore(root).thumb_path(sha))

    @classmethod
    def from_channels(cls, provider: Callable[[], ImageChannels], cache: Path | None = None) -> "ImageSource":
        return cls(provider=provider, cache=None if cache is None else Path(cache))

    def decode(self) -> ImageChannels:
        """The whole image, decoded (slow: never on the GUI thread)."""
        if self.path is not None:
            return decode_file(self.path)
        assert self.provider is not None
        return self.provider()

    def cached(self) -> Pyramid | None:
        """The cached pyramid, without decoding (None: not cached, or unusable)."""
        return None if self.cache is None else load(self.cache)

    def full(self, refresh_cache: bool = False) -> Pyramid:
        """Decode and return the whole pyramid (level 0 included); with
        ``refresh_cache``, or when the cache file is missing, (re)write it."""
        pyramid = build(self.decode())
        if self.cache is not None and len(pyramid.levels) > 1 and (refresh_cache or not self.cache.is_file()):
            save(pyramid, self.cache)
        return pyramid

    def ensure_cached(self) -> bool:
        """Build the cache if it is missing or unusable (prefetching the next image
        of a queue). Returns True when a pyramid was built."""
        if self.cache is None or self.cached() is not None:
            return False
        self.full(refresh_cache=True)
        return True

    def thumbnail_pixels(self) -> np.ndarray | None:
        """The ingest thumbnail (uint8 grey, or RGB), or None."""
        import cv2

        if self.thumbnail is None or not self.thumbnail.is_file():
            return None
        pixels = cv2.imread(str(self.thumbnail), cv2.IMREAD_UNCHANGED)
        if pixels is None or pixels.dtype != np.uint8:
            return None
        if pixels.ndim == 3:
            pixels = np.ascontiguousarray(pixels[:, :, 2::-1]) if pixels.shape[2] >= 3 else pixels[:, :, 0]
        return pixels
