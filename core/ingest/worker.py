"""The per-file work of ingest, run in worker processes.

:func:`prepare` reads a file's bytes once, hashes them, decodes once, derives
everything from that decode, and writes the store (or quarantine) copy. It
returns a small record; the single catalog writer in the parent process
commits it. Nothing here touches the catalog.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from core.ingest.analysis import ScannerExpectation, analyse
from core.ingest.decode import DecodeError, decode
from core.store import ContentStore, write_atomic

# A truncated file modified within this many seconds is taken to be still
# being written and retried; older, it is quarantined.
STILL_WRITING_S = 30.0

EXTENSIONS = {"png": ".png", "tiff": ".tif", "jpeg": ".jpg", "dicom": ".dcm", "dicos": ".dcs"}


@dataclass(frozen=True)
class Prepared:
    source: str
    kind: str  # image, report, quarantine, reject, retry (still being written)
    size: int = 0
    mtime: float = 0.0
    sha256: str | None = None
    format: str = ""
    store_path: str = ""  # relative to the store root
    thumb_path: str = ""
    width: int = 0
    height: int = 0
    bit_depth: int = 0
    channels: int = 0
    phash: int | None = None
    flags: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    boxes: tuple[dict[str, Any], ...] = ()
    reason_code: str = ""
    reason: str = ""
    quarantine_path: str = ""  # where the bad file's bytes were kept

    @property
    def captured_at(self) -> str:
        return datetime.fromtimestamp(self.mtime, timezone.utc).isoformat(timespec="milliseconds")


SIDECAR_SUFFIX = ".json"
MAX_SIDECAR_BYTES = 1_000_000


def sidecar_for(path: Path) -> Path | None:
    """The metadata file a scanner may write beside an image: NAME.png.json or NAME.json."""
    for candidate in (path.with_name(path.name + SIDECAR_SUFFIX), path.with_suffix(SIDECAR_SUFFIX)):
        if candidate != path and candidate.is_file():
            return candidate
    return None


def _read_sidecar(path: Path) -> dict[str, Any]:
    import json

    sidecar = sidecar_for(path)
    if sidecar is None:
        return {}
    try:
        if sidecar.stat().st_size > MAX_SIDECAR_BYTES:
            return {"sidecar_error": f"{sidecar.name} is larger than 1 MB; not read"}
        value = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return {"sidecar_error": f"{sidecar.name} could not be read: {exc}"}
    if not isinstance(value, dict):
        return {"sidecar_error": f"{sidecar.name} is not a JSON object"}
    return {"sidecar": value}


def _quarantine_copy(quarantine_root: Path, source: Path, sha: str, data: bytes) -> Path:
    day = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    target = quarantine_root / day / f"{sha[:16]}_{source.name}"
    write_atomic(target, data)
    return target


def prepare(source: str, expected: ScannerExpectation | None, store_root: str, quarantine_root: str,
            link: bool = False) -> Prepared:
    """``link``: the source is a drop-folder file ingest will remove after the
    commit, so the store may hard-link it instead of copying its bytes."""
    path = Path(source)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return Prepared(source, "reject", reason_code="vanished", reason="the file disappeared before it could be read")
    if stat.S_ISLNK(info.st_mode):
        return Prepared(source, "quarantine", size=0, mtime=info.st_mtime, reason_code="symlink",
                        reason="a symbolic link, not a file a scanner wrote; moved to quarantine untouched")
    if not stat.S_ISREG(info.st_mode):
        return Prepared(source, "reject", reason_code="not_a_file", reason="not a regular file")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except PermissionError:
        return Prepared(source, "reject", size=info.st_size, mtime=info.st_mtime, reason_code="unreadable",
                        reason="permission denied: XLab cannot read this file; fix its permissions and it will be taken")
    except OSError as exc:
        return Prepared(source, "reject", size=info.st_size, mtime=info.st_mtime, reason_code="unreadable",
                        reason=f"cannot read the file: {exc.strerror or exc}")
    sha = hashlib.sha256(data).hexdigest()
    common = dict(size=len(data), mtime=info.st_mtime, sha256=sha)
    signature = (info.st_size, info.st_mtime_ns) if link else None
    link_from = path if link else None
    store = ContentStore(Path(store_root))
    try:
        decoded = decode(data)
    except DecodeError as exc:
        if link and exc.code == "truncated" and time.time() - info.st_mtime < STILL_WRITING_S:
            # A drop-folder file cut short but written to recently: a scanner
            # still writing. Try again later. (Nothing writes archive files.)
            return Prepared(source, "retry", **common, reason_code=exc.code, reason=str(exc))
        kept = _quarantine_copy(Path(quarantine_root), path, sha, data)
        return Prepared(source, "quarantine", **common, reason_code=exc.code, reason=str(exc), quarantine_path=str(kept))
    ext = EXTENSIONS[decoded.format]
    if decoded.is_report:
        store.begin(sha, ext)
        stored = store.put(sha, ext, data, link_from, signature)
        return Prepared(source, "report", **common, format=decoded.format, store_path=store.relative(stored),
                        metadata=decoded.metadata, boxes=tuple(decoded.boxes))
    decoded.metadata.update(_read_sidecar(path))
    analysis = analyse(decoded.pixels, decoded.bit_depth, expected)
    if analysis.fatal:
        kept = _quarantine_copy(Path(quarantine_root), path, sha, data)
        return Prepared(source, "quarantine", **common, format=decoded.format,
                        reason_code=",".join(p.code for p in analysis.fatal),
                        reason="; ".join(p.message for p in analysis.fatal), quarantine_path=str(kept),
                        width=analysis.width, height=analysis.height)
    store.begin(sha, ext)
    stored = store.put(sha, ext, data, link_from, signature)
    thumb = store.put_thumb(sha, analysis.thumbnail_png)
    return Prepared(
        source, "image", **common, format=decoded.format, store_path=store.relative(stored),
        thumb_path=store.relative(thumb), width=analysis.width, height=analysis.height,
        bit_depth=decoded.bit_depth, channels=decoded.channels, phash=analysis.phash,
        flags=analysis.flags, metadata=decoded.metadata,
    )


def read_and_decode(source: str) -> int:
    """The floor the throughput benchmark compares against: read and decode only."""
    with open(source, "rb") as f:
        data = f.read()
    decoded = decode(data)
    return 0 if decoded.pixels is None else decoded.pixels.size
