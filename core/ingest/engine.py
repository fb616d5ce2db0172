"""Ingest: watch drop folders (or walk an archive), prepare files in worker
processes, and commit them through the catalog's single writer.

Crash safety, in order, for every file:

1. a worker writes the store copy (journal note first, atomic rename, fsync);
2. the parent commits the image row, its event, near-duplicate flags and step
   link in one transaction;
3. only then is the file removed from the drop folder, and the note dropped.

A kill between 1 and 2 leaves a note: :meth:`Ingestor.reconcile` (run at every
start) removes the unknown store files, and the source, still in the drop
folder, is taken again. A kill between 2 and 3 leaves the source: taken again,
it is recognised by its hash as already stored (a duplicate event, no second
row). So every file ends in the catalog exactly once, or still in its folder.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.catalog import ingest_store as sql
from core.catalog.db import utc_now
from core.errors import UnknownNameError
from core.ingest.analysis import ScannerExpectation
from core.ingest.lock import IngestLock
from core.ingest.neardup import DEFAULT_MAX_DISTANCE, NearDuplicateIndex
from core.ingest.pool import decode_pool
from core.ingest.worker import SIDECAR_SUFFIX, Prepared, prepare, sidecar_for
from core.lab import Lab
from core.progress import Progress
from core.store import ContentStore

TEMP_SUFFIXES = (".part", ".tmp", ".partial", ".crdownload", "~")
SETTLE_S = 0.25
MAX_NEAR_DUPLICATES = 10
# A file not modified for this long when first seen is complete already.
QUIET_AGE_S = 1.0


def is_temporary(name: str) -> bool:
    """Names ingest never takes as images: temporary files and metadata sidecars."""
    return name.startswith(".") or name.endswith(TEMP_SUFFIXES) or name.endswith(SIDECAR_SUFFIX)


@dataclass(frozen=True)
class ScannerInfo:
    id: int
    name: str
    station: str
    drop_folder: Path
    expectation: ScannerExpectation


@dataclass(frozen=True)
class Outcome:
    source: str
    outcome: str  # ingested, duplicate, quarantined, rejected
    sha256: str | None = None
    image_id: int | None = None
    detail: str = ""
    scanner: str | None = None


@dataclass(frozen=True)
class IngestProgress(Progress):
    """Progress of ingest, with what the monitor shows."""

    outcomes: tuple[Outcome, ...] = ()
    queue: dict[str, int] = field(default_factory=dict)  # files waiting per scanner
    totals: dict[str, int] = field(default_factory=dict)  # per outcome, since start


def lab_scanners(lab: Lab) -> dict[str, ScannerInfo]:
    out = {}
    for r in sql.scanners(lab.catalog):
        drop = Path(r["drop_folder"])
        if not drop.is_absolute():
            drop = lab.paths.root / drop
        out[r["name"]] = ScannerInfo(r["id"], r["name"], r["station"], drop,
                                     ScannerExpectation(r["model"], r["width"], r["height"], r["bit_depth"]))
    return out


class Ingestor:
    """Commits prepared files. One per process; use it from one thread."""

    def __init__(self, lab: Lab, *, workers: int | None = None, remove_sources: bool = True,
                 max_distance: int = DEFAULT_MAX_DISTANCE):
        self.lab = lab
        self.store = ContentStore(lab.paths.store)
        self.quarantine_root = lab.paths.root / "quarantine"
        self.remove_sources = remove_sources
        self.max_distance = max_distance
        self.workers = (os.cpu_count() or 1) if workers is None else workers
        self._pool: ProcessPoolExecutor | None = None
        self._index: NearDuplicateIndex | None = None
        self._class_ids = sql.class_ids(lab.catalog)

    # -- set-up ---------------------------------------------------------------

    def reconcile(self) -> list[str]:
        """Undo the store writes of an ingest that was killed before its commit."""
        return self.store.reconcile(lambda sha: sql.image_id_for_sha(self.lab.catalog, sha) is not None
                                    or self.lab.catalog.query_one("SELECT 1 FROM dicos_reports WHERE sha256 = ?", (sha,)) is not None)

    @property
    def index(self) -> NearDuplicateIndex:
        if self._index is None:
            index = NearDuplicateIndex(self.max_distance)
            index.add_many(sql.phash_table(self.lab.catalog))
            self._index = index
        return self._index

    def submit(self, source: str, scanner: ScannerInfo | None) -> Future:
        args = (source, scanner.expectation if scanner else None, str(self.store.root), str(self.quarantine_root),
                self.remove_sources)
        if self.workers == 0:
            future: Future = Future()
            future.set_result(prepare(*args))
            return future
        if self._pool is None:
            self._pool = decode_pool(self.workers)
        return self._pool.submit(prepare, *args)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    # -- commit ---------------------------------------------------------------

    def commit(self, batch: list[tuple[Prepared, ScannerInfo | None]]) -> list[Outcome]:
        """Commit prepared files in one transaction, then remove their sources."""
        if not batch:
            return []
        outcomes: list[Outcome] = []
        try:
            with self.lab.catalog.write() as txn:
                for prepared, scanner in batch:
                    outcomes.append(self._commit_one(txn, prepared, scanner))
                if any(p.kind == "report" for p, _ in batch) or any(o.outcome == "ingested" for o in outcomes):
                    sql.link_reports(txn, self._class_ids)
        except BaseException:
            self._index = None  # rows it may have gained were rolled back
            raise
        for (prepared, _), outcome in zip(batch, outcomes):
            if prepared.sha256 and prepared.kind in ("image", "report"):
                self.store.done(prepared.sha256)
            if self.remove_sources and outcome.outcome != "rejected" and prepared.reason_code != "symlink":
                source = Path(prepared.source)
                sidecar = sidecar_for(source) if outcome.outcome != "quarantined" else None
                source.unlink(missing_ok=True)
                if sidecar is not None:
                    sidecar.unlink(missing_ok=True)  # its content is in the image's metadata
        return outcomes

    def _commit_one(self, txn, p: Prepared, scanner: ScannerInfo | None) -> Outcome:
        scanner_id = scanner.id if scanner else None
        name = scanner.name if scanner else None
        if p.kind == "reject":
            sql.insert_event(txn, scanner_id, p.source, p.sha256, "rejected", detail=p.reason)
            return Outcome(p.source, "rejected", p.sha256, None, p.reason, name)
        if p.kind == "quarantine":
            kept = p.quarantine_path
            if p.reason_code == "symlink":
                target = self.quarantine_root / "links" / f"{int(time.time() * 1000)}_{Path(p.source).name}"
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(p.source, target)
                kept = str(target)
            sql.insert_quarantine(txn, scanner_id, p.source, kept, p.sha256, p.size, p.reason_code, p.reason)
            sql.insert_event(txn, scanner_id, p.source, p.sha256, "quarantined", detail=p.reason)
            return Outcome(p.source, "quarantined", p.sha256, None, p.reason, name)
        existing = sql.image_id_for_sha(txn, p.sha256)
        if p.kind == "report":
            boxes = list(p.boxes)
            uid = boxes[0]["referenced_sop_instance"] if boxes else ""
            made = sql.insert_report(txn, p.sha256, p.store_path, uid, p.metadata.get("ground_truth", True), boxes)
            outcome = "ingested" if made else "duplicate"
            sql.insert_event(txn, scanner_id, p.source, p.sha256, outcome, detail=f"DICOS TDR, {len(boxes)} threat box(es)")
            return Outcome(p.source, outcome, p.sha256, None, f"TDR with {len(boxes)} box(es)", name)
        if existing is not None:
            sql.insert_event(txn, scanner_id, p.source, p.sha256, "duplicate", existing, "byte-identical to a stored image")
            return Outcome(p.source, "duplicate", p.sha256, existing, "byte-identical to a stored image", name)
        step = sql.active_step(txn, scanner_id) if scanner_id is not None else None
        split = step["split"] if step else None
        # The closest few are enough to show and to judge a split leak.
        matches = self.index.query(p.phash, closest=MAX_NEAR_DUPLICATES) if p.phash is not None else []
        flags = list(p.flags)
        if matches:
            flags.append("near_duplicate")
            if split and any(m.split and m.split != split for m in matches):
                flags.append("split_leak")
        row = {
            "sha256": p.sha256, "store_path": p.store_path, "original_name": Path(p.source).name,
            "source_path": p.source, "scanner_id": scanner_id, "captured_at": p.captured_at, "ingested_at": utc_now(),
            "split": split, "item_id": step["item_id"] if step else None, "bag_id": step["bag_id"] if step else None,
            "pose_id": step["pose_id"] if step else None, "step_id": step["id"] if step else None,
            "technician": step["technician"] if step else None,
            "width": p.width, "height": p.height, "bit_depth": p.bit_depth, "channels": p.channels,
            "quality_flags": ",".join(flags), "usable": 1, "phash": p.phash, "thumb_path": p.thumb_path,
            "format": p.format, "sop_instance_uid": p.metadata.get("SOPInstanceUID"),
            "metadata_json": json.dumps(p.metadata) if p.metadata else None,
        }
        image_id = sql.insert_image(txn, row)
        if matches:
            sql.insert_near_duplicates(txn, [
                (image_id, m.image_id, m.distance, int(bool(split and m.split and m.split != split))) for m in matches
            ])
        if p.phash is not None:
            self.index.add(image_id, p.phash, split)  # dropped whole if the transaction fails
        if step:
            sql.complete_step_if_full(txn, step)
        detail = f"step {step['id']}" if step else "unassigned"
        if matches:
            detail += f"; near-duplicate of {len(matches)} image(s)"
        sql.insert_event(txn, scanner_id, p.source, p.sha256, "ingested", image_id, detail)
        return Outcome(p.source, "ingested", p.sha256, image_id, detail, name)


# -- drivers -------------------------------------------------------------------


class _Readiness:
    """A file is ready once its size and modification time have held still
    for ``settle_s``, or at once if it was renamed into the folder (how
    scanners finish a write) or has not been modified for ``QUIET_AGE_S``."""

    def __init__(self, settle_s: float):
        self.settle_s = settle_s
        self._seen: dict[str, tuple[int, int, float]] = {}
        self.rejected: dict[str, tuple[int, int]] = {}
        self.renamed: set[str] = set()  # filled by the watchdog thread
        self._deferred: dict[str, float] = {}
        self._lock = threading.Lock()

    def defer(self, path: str, seconds: float) -> None:
        """Look at ``path`` again only after ``seconds`` (a file still being written)."""
        self._deferred[path] = time.monotonic() + seconds
        self._seen.pop(path, None)

    def note_renamed(self, path: str) -> None:
        with self._lock:
            self.renamed.add(path)

    def observe(self, folder: Path, now: float) -> tuple[list[str], int]:
        ready, waiting = [], 0
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            return [], 0
        with self._lock:
            renamed, self.renamed = self.renamed, set()
        wall = time.time()
        for entry in entries:
            if is_temporary(entry.name):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if entry.is_dir(follow_symlinks=False):
                continue
            key = entry.path
            signature = (st.st_size, st.st_mtime_ns)
            if self.rejected.get(key) == signature:
                continue
            waiting += 1
            if self._deferred.get(key, 0) > now:
                continue
            previous = self._seen.get(key)
            if previous is None and st.st_size > 0 and (key in renamed or wall - st.st_mtime >= QUIET_AGE_S):
                self._seen[key] = (*signature, now - self.settle_s)
                ready.append(key)
            elif previous is None or previous[:2] != signature:
                self._seen[key] = (*signature, now)
            elif now - previous[2] >= self.settle_s:
                ready.append(key)
        return ready, waiting

    def forget(self, path: str) -> None:
        self._seen.pop(path, None)


def _wake_on_events(folders: list[Path], wake: threading.Event, readiness: "_Readiness"):
    """Start a watchdog observer that sets ``wake`` on any change and tells
    ``readiness`` which files were renamed into place; None if unavailable."""
    try:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer
    except ImportError:
        return None

    class _Handler(FileSystemEventHandler):
        def on_any_event(self, event) -> None:  # noqa: ANN001 - watchdog API
            if event.event_type == "moved" and not event.is_directory:
                readiness.note_renamed(os.fsdecode(event.dest_path))
            wake.set()

    observer = Observer()
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        observer.schedule(_Handler(), str(folder), recursive=False)
    observer.daemon = True
    observer.start()
    return observer


def watch(
    lab: Lab,
    scanner_names: Iterable[str] | None = None,
    *,
    once: bool = False,
    workers: int | None = None,
    settle_s: float = SETTLE_S,
    poll_s: float = 1.0,
    batch_size: int = 32,
) -> Iterator[IngestProgress]:
    """Ingest every file the scanners write into their drop folders.

    Runs until closed (``once``: until the folders are empty). Watchdog events
    wake it at once; a poll every ``poll_s`` catches what events miss (network
    shares). Each yield reports one committed batch, or, when idle, the queue
    once per ``poll_s``, so a caller can stop it at any time.
    """
    all_scanners = lab_scanners(lab)
    names = list(scanner_names) if scanner_names else list(all_scanners)
    unknown = [n for n in names if n not in all_scanners]
    if unknown:
        raise UnknownNameError(f"unknown scanner(s): {', '.join(unknown)} (known: {', '.join(all_scanners) or 'none'})")
    scanners = [all_scanners[n] for n in names]
    lock = IngestLock.acquire(lab.paths.root, names)
    try:
        ingestor = Ingestor(lab, workers=workers)
        ingestor.reconcile()
        readiness = _Readiness(settle_s)
        wake = threading.Event()
        observer = _wake_on_events([s.drop_folder for s in scanners], wake, readiness)
    except BaseException:
        lock.release()
        raise
    in_flight: dict[Future, tuple[str, ScannerInfo]] = {}
    limit = max(2, 3 * max(1, ingestor.workers))
    totals: dict[str, int] = {}
    done = 0
    last_yield = time.monotonic()
    try:
        while True:
            now = time.monotonic()
            queue: dict[str, int] = {}
            for scanner in scanners:
                ready, waiting = readiness.observe(scanner.drop_folder, now)
                queue[scanner.name] = waiting
                busy = {path for path, _ in in_flight.values()}
                for path in ready:
                    if path not in busy and len(in_flight) < limit:
                        in_flight[ingestor.submit(path, scanner)] = (path, scanner)
            if once and not in_flight and not any(queue.values()):
                return
            if in_flight:
                finished, _ = wait(list(in_flight), timeout=min(poll_s, settle_s), return_when=FIRST_COMPLETED)
            else:
                finished = set()
                wake.wait(min(poll_s, settle_s) if any(queue.values()) else poll_s)
                wake.clear()
            if not finished:
                if time.monotonic() - last_yield >= poll_s:
                    last_yield = time.monotonic()
                    yield IngestProgress(done, None, "waiting for files", (), queue, dict(totals))
                continue
            batch = []
            for future in list(finished)[:batch_size]:
                path, scanner = in_flight.pop(future)
                prepared = future.result()
                readiness.forget(path)
                if prepared.kind == "retry":
                    readiness.defer(path, 2.0)
                else:
                    batch.append((prepared, scanner))
            if not batch:
                continue
            outcomes = ingestor.commit(batch)
            for (prepared, _), outcome in zip(batch, outcomes):
                totals[outcome.outcome] = totals.get(outcome.outcome, 0) + 1
                if outcome.outcome == "rejected":
                    try:
                        st = os.stat(prepared.source, follow_symlinks=False)
                        readiness.rejected[prepared.source] = (st.st_size, st.st_mtime_ns)
                    except FileNotFoundError:
                        pass
            done += len(outcomes)
            summary = ", ".join(f"{n} {k}" for k, n in sorted(totals.items()))
            last_yield = time.monotonic()
            yield IngestProgress(done, None, f"{done} files: {summary}", tuple(outcomes), queue, dict(totals))
    finally:
        if observer is not None:
            observer.stop()
            observer.join(timeout=2)
        ingestor.close()
        lock.release()


def _walk(paths: Iterable[str | Path]) -> Iterator[str]:
    for root in paths:
        root = Path(root)
        if root.is_file() or root.is_symlink():
            yield str(root)
            continue
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                if not is_temporary(name):
                    yield os.path.join(folder, name)


def import_paths(
    lab: Lab,
    paths: Iterable[str | Path],
    *,
    scanner: str | None = None,
    workers: int | None = None,
    batch_size: int = 64,
) -> Iterator[IngestProgress]:
    """One-off import of an existing archive (files and folders, recursive).

    Sources are left where they are. Memory stays flat: at most a few batches
    of small records are in flight, whatever the archive's size.
    """
    paths = [Path(p) for p in paths]
    missing = [str(p) for p in paths if not p.exists() and not p.is_symlink()]
    if missing:
        raise UnknownNameError(f"no such file or folder: {', '.join(missing)}")
    info = None
    if scanner is not None:
        scanners = lab_scanners(lab)
        if scanner not in scanners:
            raise UnknownNameError(f"unknown scanner '{scanner}' (known: {', '.join(scanners) or 'none'})")
        info = scanners[scanner]
    total = sum(1 for _ in _walk(paths))
    ingestor = Ingestor(lab, workers=workers, remove_sources=False)
    ingestor.reconcile()
    in_flight: set[Future] = set()
    limit = max(2, 4 * max(1, ingestor.workers))
    totals: dict[str, int] = {}
    done = 0
    files = _walk(paths)
    exhausted = False
    try:
        while not exhausted or in_flight:
            while not exhausted and len(in_flight) < limit:
                path = next(files, None)
                if path is None:
                    exhausted = True
                    break
                in_flight.add(ingestor.submit(path, info))
            if not in_flight:
                break
            finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
            # Commit in batches: one transaction per batch, not per file.
            while len(finished) < batch_size and in_flight and exhausted is False and len(in_flight) >= limit // 2:
                more, in_flight = wait(in_flight, timeout=0.05, return_when=FIRST_COMPLETED)
                if not more:
                    break
                finished |= more
            outcomes = ingestor.commit([(f.result(), info) for f in finished])
            for outcome in outcomes:
                totals[outcome.outcome] = totals.get(outcome.outcome, 0) + 1
            done += len(outcomes)
            summary = ", ".join(f"{n} {k}" for k, n in sorted(totals.items()))
            yield IngestProgress(done, total, f"{done}/{total}: {summary}", tuple(outcomes), {}, dict(totals))
    finally:
        ingestor.close()
    return totals
