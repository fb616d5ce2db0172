"""``xlab verify``: is the lab whole?

* the catalog file: SQLite's integrity and foreign-key checks;
* the audit log: its hash chain (core.audit.chain);
* every image and DICOS report the catalog has: its file is in the store with
  the SHA-256 recorded (read in blocks), and its thumbnail is there;
* nothing extra: every file in the store belongs to an image or a report.
  The ``pyramids/`` cache (derived, rebuilt on demand), the journal, and files
  an ingest is writing right now (noted in the journal, not committed yet)
  are not counted.

Runs beside a working lab: it only reads, an image committed meanwhile is
checked too, and one being written is not taken for an extra.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.audit.chain import ChainReport, verify_chain
from core.backup.files import hash_file
from core.catalog import backup_store as store
from core.lab import Lab
from core.progress import Progress

BATCH = 2000
YIELD_EVERY_S = 0.25
MAX_LISTED = 100  # of each kind of problem; the counts are whole
# Store entries that hold no image: the derived pyramid cache, ingest's journal and marker.
NOT_IMAGES = frozenset({"pyramids", ".journal", ".swept"})


@dataclass
class VerifyReport:
    checked: int = 0  # images and reports whose file was hashed
    bytes: int = 0
    catalog: list[str] = field(default_factory=list)
    chain: ChainReport | None = None
    missing: list[str] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {"missing": 0, "damaged": 0, "extra": 0})

    @property
    def ok(self) -> bool:
        return not (self.catalog or self.counts["missing"] or self.counts["damaged"] or self.counts["extra"]
                    or (self.chain is not None and not self.chain.ok))

    def add(self, kind: str, text: str) -> None:
        self.counts[kind] += 1
        listed = getattr(self, kind)
        if len(listed) < MAX_LISTED:
            listed.append(text)

    def summary(self) -> str:
        files = (f"{self.checked:,} stored files match their hashes ({self.bytes / 1e6:,.1f} MB read); "
                 f"{self.counts['missing']:,} missing, {self.counts['damaged']:,} damaged, "
                 f"{self.counts['extra']:,} extra")
        catalog = "catalog file intact" if not self.catalog else f"CATALOG FILE DAMAGED: {self.catalog[0]}"
        chain = self.chain.summary() if self.chain else "audit log not checked"
        verdict = "lab verified" if self.ok else "LAB HAS PROBLEMS"
        return f"{verdict}: {catalog}; {chain}; {files}"

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "checked": self.checked, "bytes": self.bytes, "catalog": self.catalog,
                "audit": self.chain.as_json() if self.chain else None, "counts": self.counts,
                "missing": self.missing, "damaged": self.damaged, "extra": self.extra}


def verify_lab(lab: Lab) -> Iterator[Progress]:
    """Check ``lab`` (see the module's docstring); returns a :class:`VerifyReport`.

    Any thread; reads only (through the calling thread's read connection).
    Each yield is a place to stop.
    """
    report = VerifyReport()
    yield Progress(0, None, "checking the catalog file (SQLite integrity and references)")
    report.catalog = store.integrity_problems(lab.catalog)
    report.chain = yield from verify_chain(lab.catalog)
    total = store.stored_file_count(lab.catalog)
    yield from _check_files(lab, report, total)
    yield from _find_extras(lab, report)
    yield Progress(report.checked, max(total, report.checked), report.summary())
    return report


def _check_files(lab: Lab, report: VerifyReport, total: int) -> Iterator[Progress]:
    root = lab.paths.store
    last_yield = time.monotonic()
    yield Progress(0, total, f"checking {total:,} stored files against their hashes")
    for table, what in (("images", "image"), ("dicos_reports", "DICOS report")):
        after = 0
        while True:
            rows = store.stored_files(lab.catalog, table, after, BATCH)
            if not rows:
                break
            for row in rows:
                after = row["id"]
                path = root / row["store_path"]
                try:
                    digest, size = hash_file(path)
                except FileNotFoundError:
                    report.add("missing", f"{what} {row['id']}: {row['store_path']} is not in the store")
                    continue
                report.bytes += size
                if digest != row["sha256"]:
                    report.add("damaged", f"{what} {row['id']}: {row['store_path']} does not match its hash "
                                          "(damaged on disk; restore it from a backup)")
                else:
                    report.checked += 1
                if row["thumb_path"] and not (root / row["thumb_path"]).is_file():
                    report.add("missing", f"{what} {row['id']}: its thumbnail {row['thumb_path']} is not in the store")
                if time.monotonic() - last_yield >= YIELD_EVERY_S:
                    last_yield = time.monotonic()
                    done = report.checked + report.counts["damaged"]
                    yield Progress(done, max(total, done), f"{done:,} of {total:,} stored files checked")


def _find_extras(lab: Lab, report: VerifyReport) -> Iterator[Progress]:
    """Store files no image or report refers to, looked up a batch of hashes at a time."""
    root = lab.paths.store
    journal = root / ".journal"
    yield Progress(report.checked, None, "looking for files in the store that the catalog does not know")
    pending: list[tuple[str, Path]] = []

    def settle() -> None:
        known = store.known_hashes(lab.catalog, [sha for sha, _ in pending])
        for sha, path in pending:
            if sha in known or (journal / sha).exists():
                continue  # an ingest is writing it: not committed yet
            # Committed (and its journal note removed) between the two looks above?
            if sha in store.known_hashes(lab.catalog, [sha]):
                continue
            report.add("extra", f"{path.relative_to(root).as_posix()}: no image or report has this file")
        pending.clear()

    for path in _store_files(root):
        name = path.name
        sha = name[:64]
        if not _looks_stored(path.relative_to(root).parts, sha):
            report.add("extra", f"{path.relative_to(root).as_posix()}: not a file XLab stores")
            continue
        pending.append((sha, path))
        if len(pending) >= BATCH:
            settle()
            yield Progress(report.checked, None, f"{report.counts['extra']:,} extra files so far")
    settle()


def _store_files(root: Path) -> Iterator[Path]:
    for folder, dirs, names in os.walk(root):
        if Path(folder) == root:
            dirs[:] = [d for d in dirs if d not in NOT_IMAGES]
            names = [n for n in names if n not in NOT_IMAGES]
        for name in names:
            if name.startswith(".") and name.endswith((".tmp", ".lnk")):
                continue  # a write in progress (or a leftover ingest removes at its next start)
            yield Path(folder) / name


def _looks_stored(parts: tuple[str, ...], sha: str) -> bool:
    """``ab/cd/<sha>.ext`` or ``thumbs/ab/<sha>.png``, the places the content store writes."""
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        return False
    if len(parts) == 3 and parts[0] == sha[:2] and parts[1] == sha[2:4]:
        return True
    return len(parts) == 3 and parts[0] == "thumbs" and parts[1] == sha[:2]
