"""Files of a backup: hashing while copying, the manifest, backup.json.

``manifest.tsv``: one line per file of the backup besides the catalog and
backup.json: ``sha256 <TAB> size <TAB> mtime_ns <TAB> path`` (path relative to
the backup folder, ``/``-separated). ``mtime_ns`` is the source file's when it
was copied: a later backup copies again a file of the lab's own folders (runs,
quarantine) whose size or time changed; store files are named by their
content and never change.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import BackupError
from core.store import write_atomic

MANIFEST = "manifest.tsv"
INFO = "backup.json"
CATALOG = "catalog.sqlite"
LOCK = ".backup.lock"
FORMAT = 1
BLOCK = 1 << 20


@dataclass(frozen=True)
class ManifestEntry:
    sha256: str
    size: int
    mtime_ns: int


def hash_file(path: Path) -> tuple[str, int]:
    """(SHA-256, size) of the file, read a block at a time."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(BLOCK), b""):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def copy_hashed(source: Path, target: Path, *, link: bool = False) -> tuple[str, int]:
    """Copy ``source`` to ``target`` (whole or not at all), hashing what was
    copied; returns (SHA-256, size) of the copy.

    Not fsynced one by one (that costs more than the copy): call
    :func:`flush_to_disk` once the files are written, before anything
    points at them. ``link``: hard-link instead when both are on one
    filesystem (no second copy of the bytes: it guards against deletion, not
    against a failing disk); the file is still read once for its hash.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        if link:
            try:
                os.link(source, temp)
            except OSError:
                link = False
            else:
                os.replace(temp, target)
                return hash_file(target)
        digest = hashlib.sha256()
        size = 0
        with open(source, "rb") as src, open(temp, "wb") as out:
            for block in iter(lambda: src.read(BLOCK), b""):
                digest.update(block)
                size += len(block)
                out.write(block)
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    return digest.hexdigest(), size


def flush_to_disk(paths: list[Path]) -> None:
    """Make the files written so far survive a power cut: one ``sync`` of the
    system's buffers where there is one (POSIX), else each file's own fsync."""
    if hasattr(os, "sync"):
        os.sync()
        return
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        except FileNotFoundError:
            continue
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read_manifest(folder: Path) -> dict[str, ManifestEntry]:
    """The manifest of the backup in ``folder`` (empty when it has none)."""
    path = folder / MANIFEST
    out: dict[str, ManifestEntry] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return out
    for number, line in enumerate(text.splitlines(), 1):
        if not line:
            continue
        parts = line.split("\t", 3)
        try:
            entry = ManifestEntry(parts[0], int(parts[1]), int(parts[2]))
            relative = parts[3]
        except (IndexError, ValueError):
            raise BackupError(f"{path}:{number}: not a manifest line; the backup is damaged — "
                              "make a new one with 'xlab backup'") from None
        # A restore writes where the manifest says: only below the new lab's folder.
        if relative.startswith(("/", "\\")) or ":" in relative or ".." in relative.replace("\\", "/").split("/"):
            raise BackupError(f"{path}:{number}: '{relative}' points outside the backup; the manifest is damaged "
                              "or was edited — do not restore this backup")
        out[relative] = entry
    return out


def write_manifest(folder: Path, entries: dict[str, ManifestEntry]) -> None:
    lines = [f"{e.sha256}\t{e.size}\t{e.mtime_ns}\t{p}\n" for p, e in sorted(entries.items())]
    write_atomic(folder / MANIFEST, "".join(lines).encode("utf-8"))


def read_info(folder: Path) -> dict[str, Any]:
    """backup.json of the backup in ``folder``; :class:`BackupError` when it is not one."""
    path = folder / INFO
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"{folder} is not an XLab backup (it has no {INFO})") from None
    except (OSError, ValueError) as exc:
        raise BackupError(f"{path} cannot be read ({exc}); the backup is damaged") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise BackupError(f"{path} is not a backup this XLab can read (format {info.get('format')!r}, "
                          f"expected {FORMAT})" if isinstance(info, dict) else f"{path} is damaged")
    return info


def write_info(folder: Path, info: dict[str, Any]) -> None:
    write_atomic(folder / INFO, json.dumps(info, indent=1, sort_keys=True).encode("utf-8"))
