"""The per-file work of ingest, run in worker processes.

:func:`prepare` reads a file's bytes once, hashes them, decodes once, derives
everything from that decode, and writes the store (or quarantine) copy. It
returns a small record; the single catalog writer in the parent process
commits it. Nothing here touches the catalog.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from core.catalog.failures import catalog_disk_full
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
    metadata_json: str | None = None  # ``metadata`` as JSON, made here so the commit cannot fail on it

    @property
    def captured_at(self) -> str:
        try:
            return datetime.fromtimestamp(self.mtime, timezone.utc).isoformat(timespec="milliseconds")
        except (ValueError, OverflowError, OSError):
            # A modification time out of the calendar's range (a clock or a
            # copy tool gone wrong): the time it is taken is the best known.
            return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


SIDECAR_SUFFIX = ".json"
MAX_SIDECAR_BYTES = 1_000_000


def sidecar_for(path: Path) -> Path | None:
    """The metadata file a scanner may write beside an image: NAME.png.json or NAME.json."""
    for candidate in (path.with_name(path.name + SIDECAR_SUFFIX), path.with_suffix(SIDECAR_SUFFIX)):
        try:
            if candidate != path and candidate.is_file():
                return candidate
        except (OSError, ValueError):
            continue  # e.g. NAME.png.json would be a name longer than the filesystem allows
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
    except RecursionError:
        return {"sidecar_error": f"{sidecar.name} is nested too deeply to be read"}
    if not isinstance(value, dict):
        return {"sidecar_error": f"{sidecar.name} is not a JSON object"}
    return {"sidecar": value}


def _metadata_json(metadata: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The metadata without the sidecar, and the whole as JSON text.

    The sidecar travels as text only: a deeply nested one would not survive
    the trip back from the worker process as objects (pickling recurses). One
    that cannot be written back as JSON is dropped with a note.
    """
    if not metadata:
        return metadata, None
    kept = {k: v for k, v in metadata.items() if k != "sidecar"}
    try:
        return kept, json.dumps(metadata)
    except (ValueError, TypeError, RecursionError) as exc:
        kept["sidecar_error"] = f"the sidecar could not be kept: {type(exc).__name__}"
        return kept, json.dumps(kept, default=str)


MAX_NAME_BYTES = 160  # of a source's name kept in a quarantine file name; filesystems allow 255


def short_name(name: str) -> str:
    """``name`` cut to fit inside a longer file name, keeping its extension."""
    raw = os.fsencode(name)
    if len(raw) <= MAX_NAME_BYTES:
        return name
    stem, dot, ext = raw.rpartition(b".")
    tail = (dot + ext) if dot and len(ext) <= 16 else b""
    return os.fsdecode(raw[: MAX_NAME_BYTES - len(tail)] + tail)


def _quarantine_copy(quarantine_root: Path, source: Path, sha: str, data: bytes) -> Path:
    day = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    target = quarantine_root / day / f"{sha[:16]}_{short_name(source.name)}"
    write_atomic(target, data)
    return target


def is_disk_full(exc: BaseException) -> bool:
    """No space left where ingest writes (the store, the quarantine or the catalog)."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return catalog_disk_full(exc)


def describe(exc: BaseException) -> str:
    """One line saying what went wrong and where in XLab, for a reason and the log."""
    where = ""
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}"
    if isinstance(exc, MemoryError):
        return f"not enough memory to decode it{where}"
    message = str(exc).splitlines()[0][:300] if str(exc) else ""
    return f"{type(exc).__name__}{where}: {message}" if message else f"{type(exc).__name__}{where}"


def store_full(source: str, exc: BaseException, root: str) -> Prepared:
    return Prepared(source, "store_full", reason_code="store_full",
                    reason=f"no space left on the disk of {root} ({exc.strerror if isinstance(exc, OSError) else exc})")


def quarantine_failed(source: str, quarantine_root: str, code: str, reason: str) -> Prepared:
    """Keep a copy of a file XLab failed on, with the reason; if even that fails, refuse it and leave it in place."""
    path = Path(source)
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode):
            return Prepared(source, "reject", reason_code=code, reason=f"{reason}; left where it is")
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        kept = _quarantine_copy(Path(quarantine_root), path, sha, data)
    except Exception as exc:  # noqa: BLE001 - whatever it is, the file must be accounted for
        if is_disk_full(exc):
            return store_full(source, exc, quarantine_root)
        return Prepared(source, "reject", reason_code="refused",
                        reason=f"{reason}; it could not be copied to quarantine either ({describe(exc)}), "
                               "so it was left where it is")
    return Prepared(source, "quarantine", size=len(data), mtime=st.st_mtime, sha256=sha, reason_code=code,
                    reason=reason, quarantine_path=str(kept))


def prepare(source: str, expected: ScannerExpectation | None, store_root: str, quarantine_root: str,
            link: bool = False) -> Prepared:
    """Take one file; never raises.

    ``link``: the source is a drop-folder file ingest will remove after the
    commit, so the store may hard-link it instead of copying its bytes.
    Whatever goes wrong on one file's content or name ends as that file's
    quarantine (or refusal) with the reason, so the files after it are taken.
    A full disk is not the file's fault: it comes back as ``store_full``.
    """
    try:
        return _prepare(source, expected, store_root, quarantine_root, link)
    except Exception as exc:  # noqa: BLE001 - see the docstring
        if is_disk_full(exc):
            return store_full(source, exc, store_root)
        return quarantine_failed(source, quarantine_root, "error", f"XLab could not take this file: {describe(exc)}")


def _prepare(source: str, expected: ScannerExpectation | None, store_root: str, quarantine_root: str,
             link: bool) -> Prepared:
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
        metadata, metadata_json = _metadata_json(decoded.metadata)
        return Prepared(source, "report", **common, format=decoded.format, store_path=store.relative(stored),
                        metadata=metadata, boxes=tuple(decoded.boxes), metadata_json=metadata_json)
    decoded.metadata.update(_read_sidecar(path))
    metadata, metadata_json = _metadata_json(decoded.metadata)
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
        flags=analysis.flags, metadata=metadata, metadata_json=metadata_json,
    )


def read_and_decode(source: str) -> int:
    """The floor the throughput benchmark compares against: read and decode only."""
    with open(source, "rb") as f:
        data = f.read()
    decoded = decode(data)
    return 0 if decoded.pixels is None else decoded.pixels.size
