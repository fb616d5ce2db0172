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

import errno
import os
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, CancelledError, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from core.catalog.failures import is_catalog_error
from core.catalog import ingest_store as sql
from core.catalog import label_store
from core.catalog.db import utc_now
from core.errors import StoreFullError, UnknownNameError
from core.ingest import log as ingest_log
from core.ingest.analysis import ScannerExpectation
from core.ingest.lock import IngestLock, StoreUse
from core.ingest.neardup import DEFAULT_MAX_DISTANCE, NearDuplicateIndex
from core.ingest.pool import FILE_TIME_LIMIT_S, decode_pool, run_limited
from core.ingest.worker import (
    SIDECAR_SUFFIX,
    Prepared,
    describe,
    is_disk_full,
    prepare,
    quarantine_failed,
    short_name,
    sidecar_for,
)
from core.lab import Lab
from core.progress import Progress
from core.store import ContentStore, remove_temporaries

TEMP_SUFFIXES = (".part", ".tmp", ".partial", ".crdownload", "~")
SETTLE_S = 0.25
MAX_NEAR_DUPLICATES = 10
# A file not modified for this long when first seen is complete already.
QUIET_AGE_S = 1.0
# With the store's disk full, watch tries again this often.
FULL_RETRY_S = 10.0


def is_temporary(name: str) -> bool:
    """Names ingest never takes as images: temporary files and metadata sidecars."""
    return name.startswith(".") or name.endswith(TEMP_SUFFIXES) or name.endswith(SIDECAR_SUFFIX)


def waiting_files(folder: Path) -> list[str]:
    """The files in a drop folder that ingest has yet to take (none if the folder is missing)."""
    try:
        return [e.path for e in os.scandir(folder) if e.is_file(follow_symlinks=False) and not is_temporary(e.name)]
    except (FileNotFoundError, NotADirectoryError):
        return []


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
    outcome: str  # ingested, duplicate, quarantined, rejected (left in place), skipped (import: not a file to take)
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
                 max_distance: int = DEFAULT_MAX_DISTANCE, file_time_limit_s: float = FILE_TIME_LIMIT_S):
        self.lab = lab
        self.file_time_limit_s = file_time_limit_s
        self.store = ContentStore(lab.paths.store)
        self.quarantine_root = lab.paths.root / "quarantine"
        self.remove_sources = remove_sources
        self.max_distance = max_distance
        self.workers = (os.cpu_count() or 1) if workers is None else workers
        self._pool: ProcessPoolExecutor | None = None
        self._pool_generation = 0  # which pool a future came from (see pool_broke)
        self._index: NearDuplicateIndex | None = None
        self._class_ids = sql.class_ids(lab.catalog)
        self._store_use = StoreUse(lab.paths.root)
        self.log = ingest_log.for_lab(lab.paths.root)
        self.kept_in_place: set[str] = set()  # taken, but could not be removed from the drop folder
        self._link_targets: dict[str, str] = {}  # where a quarantined link goes once its commit holds

    # -- set-up ---------------------------------------------------------------

    def reconcile(self) -> list[str]:
        """Undo the store writes of an ingest that was killed before its commit,
        and remove the temporary files such an ingest (or a full disk) left."""
        if not self._store_use.alone():
            self.log.info("another XLab process is ingesting into this store: leftovers of killed ingests "
                          "are removed at a start with no other ingest running")
            return []
        try:
            for folder in (self.quarantine_root, *(self.quarantine_root.glob("*"))):
                remove_temporaries(folder)
            return self.store.reconcile(lambda sha: sql.image_id_for_sha(self.lab.catalog, sha) is not None
                                        or sql.report_exists(self.lab.catalog, sha))
        finally:
            self._store_use.shared()

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
        return self._pool.submit(run_limited, prepare, self.file_time_limit_s, *args)

    @property
    def pool_generation(self) -> int:
        return self._pool_generation

    def pool_broke(self, generation: int) -> None:
        """A worker process of pool ``generation`` died: the next submit starts a new pool."""
        if generation != self._pool_generation:
            return  # that pool was replaced already
        self._pool_generation += 1
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._store_use.release()

    # -- commit ---------------------------------------------------------------

    def commit(self, batch: list[tuple[Prepared, ScannerInfo | None]]) -> list[Outcome]:
        """Commit prepared files in one transaction, then remove their sources.

        If the transaction fails, nothing of it is kept and the files are
        committed again one by one, so one file the catalog cannot take
        (quarantined with the reason) does not cost the others. Raises
        :class:`StoreFullError` when the catalog's disk is full (nothing of
        the batch committed; the sources stay).
        """
        if not batch:
            return []
        try:
            outcomes = self._commit_together(batch)
        except Exception as exc:  # noqa: BLE001 - retried file by file below
            if is_disk_full(exc):
                raise self._full(exc) from None
            if len(batch) > 1:
                return [self.commit([one])[0] for one in batch]
            outcomes = [self._commit_failed(batch[0], exc)]
        for (prepared, _), outcome in zip(batch, outcomes):
            if prepared.sha256 and prepared.kind in ("image", "report"):
                self.store.done(prepared.sha256)
            if not self.remove_sources or outcome.outcome in ("rejected", "skipped"):
                pass
            elif prepared.reason_code == "symlink":
                self._move_link(prepared.source)
            else:
                self._remove_source(Path(prepared.source), outcome.outcome != "quarantined")
            self._log(outcome)
        return outcomes

    def _commit_together(self, batch: list[tuple[Prepared, ScannerInfo | None]]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        try:
            with self.lab.catalog.write() as txn:
                label_clock = label_store.clock(txn)
                for prepared, scanner in batch:
                    outcomes.append(self._commit_one(txn, prepared, scanner))
                if any(p.kind == "report" for p, _ in batch) or any(o.outcome == "ingested" for o in outcomes):
                    sql.link_reports(txn, self._class_ids)
                    self._check_labels(txn, outcomes, label_clock)
        except BaseException:
            self._index = None  # rows it may have gained were rolled back
            raise
        return outcomes

    def _check_labels(self, txn, outcomes: list[Outcome], label_clock: int) -> None:
        """Run the label checks (``core.labels.qa``) on the images this batch brought
        or labelled (its TDR boxes), in the batch's transaction. Under a savepoint:
        checks that fail are undone and logged, and the batch commits without them
        (``xlab annotations qa`` catches up later)."""
        from core.labels.qa import check_images

        try:
            with txn.savepoint("label_checks"):
                touched = {o.image_id for o in outcomes if o.outcome == "ingested" and o.image_id is not None}
                touched.update(label_store.images_changed_since(txn, label_clock))
                check_images(txn, sorted(touched))
        except Exception as exc:  # noqa: BLE001 - the ingest must not fail for its label checks
            # A failure that ended the whole transaction (disk full) makes the
            # rollback raise too: then the batch is retried file by file, as for any failure.
            self.log.warning("label checks skipped for a batch of %d file(s): %s", len(outcomes), describe(exc))

    def _commit_failed(self, item: tuple[Prepared, ScannerInfo | None], exc: Exception) -> Outcome:
        """One file the catalog could not take: keep it in quarantine with the reason (or refuse it)."""
        prepared, scanner = item
        reason = f"the catalog could not record this file: {describe(exc)}"
        if prepared.kind == "quarantine" and prepared.quarantine_path:
            fallback = Prepared(prepared.source, "quarantine", size=prepared.size, mtime=prepared.mtime,
                                sha256=prepared.sha256, reason_code="error", reason=f"{prepared.reason}; {reason}",
                                quarantine_path=prepared.quarantine_path)
        else:
            fallback = quarantine_failed(prepared.source, str(self.quarantine_root), "error", reason)
        if fallback.kind == "store_full":
            raise StoreFullError(self.full_message(fallback.reason))
        try:
            return self._commit_together([(fallback, scanner)])[0]
        except Exception as again:  # noqa: BLE001 - not even an event can be written for it
            if is_disk_full(again):
                raise self._full(again) from None
            return Outcome(prepared.source, "rejected", prepared.sha256, None,
                           f"{reason}; not recorded either ({describe(again)}); left where it is",
                           scanner.name if scanner else None)

    def _link_target(self, source: str) -> str:
        target = self.quarantine_root / "links" / f"{time.time_ns() // 1000}_{short_name(Path(source).name)}"
        self._link_targets[source] = str(target)
        return str(target)

    def _move_link(self, source: str) -> None:
        target = Path(self._link_targets.pop(source))
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(source, target)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                os.symlink(os.readlink(source), target)  # the drop folder is on another filesystem
                os.unlink(source)
        except OSError as exc:
            self.kept_in_place.add(source)
            self.log.warning("%s: a link quarantined, but it could not be moved (%s); it is left there",
                             source, exc.strerror or exc)

    def _remove_source(self, source: Path, with_sidecar: bool) -> None:
        try:
            sidecar = sidecar_for(source) if with_sidecar else None
            source.unlink(missing_ok=True)
            if sidecar is not None:
                sidecar.unlink(missing_ok=True)  # its content is in the image's metadata
        except OSError as exc:
            self.kept_in_place.add(str(source))
            self.log.warning("%s: taken, but could not be removed from its folder (%s); it is left there",
                             source, exc.strerror or exc)

    def _log(self, outcome: Outcome) -> None:
        level = 20 if outcome.outcome in ("ingested", "duplicate") else 30  # INFO, WARNING
        scanner = f" [{outcome.scanner}]" if outcome.scanner else ""
        self.log.log(level, "%s%s: %s (%s)", outcome.source, scanner, outcome.outcome, outcome.detail)

    def full_message(self, what: str) -> str:
        return (f"ingest stopped taking files: {what}. Free space on that disk; "
                "nothing was lost (files not taken are still in their folders)")

    def _full(self, exc: BaseException) -> StoreFullError:
        where = self.store.root
        if is_catalog_error(exc):
            # A server catalog's disk is the server's, not the lab folder's.
            where = self.lab.catalog.where if self.lab.catalog.dialect == "postgresql" else self.lab.paths.root
        return StoreFullError(self.full_message(f"no space left on the disk of {where} ({describe(exc)})"))

    def record_skipped(self, skipped: list[tuple[str, str]], scanner: ScannerInfo | None) -> list[Outcome]:
        """Account for files an import does not take (hidden files, links to folders, ...)."""
        if not skipped:
            return []
        name = scanner.name if scanner else None
        outcomes = [Outcome(path, "skipped", None, None, reason, name) for path, reason in skipped]
        try:
            with self.lab.catalog.write() as txn:
                for path, reason in skipped:
                    # The catalog's events know no 'skipped': a file not taken and left in place is 'rejected'.
                    sql.insert_event(txn, scanner.id if scanner else None, path, None, "rejected", detail=f"skipped: {reason}")
        except Exception as exc:  # noqa: BLE001 - the summary and the log still account for them
            if is_disk_full(exc):
                raise self._full(exc) from None
            self.log.warning("could not record %d skipped file(s): %s", len(skipped), describe(exc))
        for outcome in outcomes:
            self._log(outcome)
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
                # Moved once the commit holds (a rolled-back batch must not have moved it);
                # an import leaves its sources where they are.
                kept = self._link_target(p.source) if self.remove_sources else p.source
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
            "metadata_json": p.metadata_json,
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


class _Flight:
    """Files being prepared in the worker processes.

    A worker process that dies (a decoder crash, the kernel's out-of-memory
    killer) fails every file then in flight, and nothing says which file was
    to blame. Those files are taken again one at a time, each alone in the
    pool: a file that kills a worker while alone is the culprit and is
    quarantined, not retried for ever; the others go through.
    """

    def __init__(self, ingestor: Ingestor, limit: int):
        self.ingestor = ingestor
        self.limit = limit
        self.running: dict[Future, tuple[str, ScannerInfo | None, int]] = {}  # path, scanner, pool generation
        self.suspects: dict[str, ScannerInfo | None] = {}
        self.alone: str | None = None  # the suspect running by itself

    def __len__(self) -> int:
        return len(self.running) + len(self.suspects)

    def busy(self) -> set[str]:
        return {path for path, _, _ in self.running.values()} | set(self.suspects)

    def has_room(self) -> bool:
        return not self.suspects and self.alone is None and len(self.running) < self.limit

    def add(self, path: str, scanner: ScannerInfo | None) -> None:
        for _ in range(2):
            generation = self.ingestor.pool_generation
            try:
                self.running[self.ingestor.submit(path, scanner)] = (path, scanner, generation)
                return
            except BrokenProcessPool:
                self.ingestor.pool_broke(generation)  # it broke between two submits: a new pool
        self.suspects[path] = scanner

    def collect(self, timeout: float | None, batch_size: int, linger: bool = False) -> list[tuple[Prepared, ScannerInfo | None]]:
        """Files whose preparation ended (at most ``batch_size``), waiting at most ``timeout`` for the first.

        ``linger``: wait a little for more while many are in flight, so they commit in one transaction.
        """
        if not self.running and self.suspects:
            self._next_suspect()
        if not self.running:
            return []
        finished, pending = wait(list(self.running), timeout=timeout, return_when=FIRST_COMPLETED)
        while linger and finished and len(finished) < batch_size and len(pending) >= self.limit // 2:
            more, pending = wait(pending, timeout=0.05, return_when=FIRST_COMPLETED)
            if not more:
                break
            finished |= more
        out = []
        for future in list(finished)[:batch_size]:
            path, scanner, generation = self.running.pop(future)
            alone, self.alone = self.alone == path, (None if self.alone == path else self.alone)
            try:
                prepared = future.result()
            except (BrokenProcessPool, CancelledError):
                self.ingestor.pool_broke(generation)
                if not alone:
                    self.suspects[path] = scanner
                    continue
                prepared = quarantine_failed(path, str(self.ingestor.quarantine_root), "crashed",
                                             f"the decoder process crashed or hung (over {self.ingestor.file_time_limit_s:g} s) on this file "
                                             "(a damaged or hostile file)")
            except Exception as exc:  # noqa: BLE001 - the worker's answer could not come back
                prepared = quarantine_failed(path, str(self.ingestor.quarantine_root), "error",
                                             f"XLab could not take this file: {describe(exc)}")
            out.append((prepared, scanner))
        if not self.running and self.suspects:
            self._next_suspect()
        return out

    def _next_suspect(self) -> None:
        path = next(iter(self.suspects))
        scanner = self.suspects.pop(path)
        self.add(path, scanner)
        if any(p == path for p, _, _ in self.running.values()):
            self.alone = path


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
    full_retry_s: float = FULL_RETRY_S,
    file_time_limit_s: float = FILE_TIME_LIMIT_S,
) -> Iterator[IngestProgress]:
    """Ingest every file the scanners write into their drop folders.

    Runs until closed (``once``: until the folders are empty). Watchdog events
    wake it at once; a poll every ``poll_s`` catches what events miss (network
    shares). Each yield reports one committed batch, or, when idle, the queue
    once per ``poll_s``, so a caller can stop it at any time.

    One file never stops it: whatever fails on a file quarantines that file.
    A full disk pauses it (files stay in their folders) and it tries again
    every ``full_retry_s``; with ``once`` it raises :class:`StoreFullError`.
    """
    all_scanners = lab_scanners(lab)
    names = list(scanner_names) if scanner_names else list(all_scanners)
    unknown = [n for n in names if n not in all_scanners]
    if unknown:
        raise UnknownNameError(f"unknown scanner(s): {', '.join(unknown)} (known: {', '.join(all_scanners) or 'none'})")
    scanners = [all_scanners[n] for n in names]
    lock = IngestLock.acquire(lab.paths.root, names)
    try:
        ingestor = Ingestor(lab, workers=workers, file_time_limit_s=file_time_limit_s)
        ingestor.reconcile()
        readiness = _Readiness(settle_s)
        wake = threading.Event()
        observer = _wake_on_events([s.drop_folder for s in scanners], wake, readiness)
    except BaseException:
        lock.release()
        raise
    flight = _Flight(ingestor, max(2, 3 * max(1, ingestor.workers)))
    totals: dict[str, int] = {}
    done = 0
    last_yield = time.monotonic()
    paused = ""  # why ingest waits for disk space
    paused_until = 0.0
    ingestor.log.info("ingest watch started: %s", ", ".join(f"{s.name} <- {s.drop_folder}" for s in scanners))
    try:
        while True:
            now = time.monotonic()
            queue: dict[str, int] = {}
            for scanner in scanners:
                ready, waiting = readiness.observe(scanner.drop_folder, now)
                queue[scanner.name] = waiting
                if now < paused_until:
                    continue
                busy = flight.busy()
                for path in ready:
                    if path not in busy and flight.has_room():
                        flight.add(path, scanner)
            if once and not flight and not any(queue.values()):
                return
            if flight:
                results = flight.collect(min(poll_s, settle_s), batch_size)
            else:
                results = []
                wake.wait(min(poll_s, settle_s) if any(queue.values()) and now >= paused_until else poll_s)
                wake.clear()
            if not results:
                if time.monotonic() - last_yield >= poll_s:
                    last_yield = time.monotonic()
                    message = f"paused: {paused}" if paused else "waiting for files"
                    yield IngestProgress(done, None, message, (), queue, dict(totals))
                continue
            batch = []
            full = ""
            for prepared, scanner in results:
                readiness.forget(prepared.source)
                if prepared.kind == "retry":
                    readiness.defer(prepared.source, 2.0)
                elif prepared.kind == "store_full":
                    full = ingestor.full_message(prepared.reason)
                    readiness.defer(prepared.source, full_retry_s)
                else:
                    batch.append((prepared, scanner))
            try:
                outcomes = ingestor.commit(batch)
            except StoreFullError as exc:
                full, outcomes = str(exc), []
                for prepared, _ in batch:
                    readiness.defer(prepared.source, full_retry_s)
            for (prepared, _), outcome in zip(batch, outcomes):
                totals[outcome.outcome] = totals.get(outcome.outcome, 0) + 1
                if outcome.outcome == "rejected" or prepared.source in ingestor.kept_in_place:
                    # Left in the folder: look again only once the file changes.
                    ingestor.kept_in_place.discard(prepared.source)
                    try:
                        st = os.stat(prepared.source, follow_symlinks=False)
                        readiness.rejected[prepared.source] = (st.st_size, st.st_mtime_ns)
                    except OSError:
                        pass
            done += len(outcomes)
            if full:
                if once:
                    ingestor.log.error("ingest watch stopped: %s", full)
                    raise StoreFullError(full)
                if not paused:
                    ingestor.log.error("paused: %s; trying again every %g s", full, full_retry_s)
                paused, paused_until = full, time.monotonic() + full_retry_s
            elif paused and outcomes:
                ingestor.log.warning("space returned: ingest resumed")
                paused = ""
            summary = ", ".join(f"{n} {k}" for k, n in sorted(totals.items()))
            last_yield = time.monotonic()
            message = f"paused: {paused}" if paused else f"{done} files: {summary}"
            yield IngestProgress(done, None, message, tuple(outcomes), queue, dict(totals))
    finally:
        if observer is not None:
            observer.stop()
            observer.join(timeout=2)
        ingestor.close()
        lock.release()


def _walk(paths: Iterable[str | Path]) -> Iterator[tuple[str, str]]:
    """Every file under ``paths``, as (path, why it is skipped: empty if it is to be taken).

    Nothing given is passed over in silence: hidden and temporary files,
    sidecars, links to folders and folders that cannot be read come out
    with the reason they are not taken.
    """
    for root in paths:
        root = Path(root)
        if not root.is_dir():
            yield str(root), ""  # named by the user: taken whatever its name (a link to a file is quarantined)
            continue
        unreadable: list[OSError] = []
        for folder, dirs, files in os.walk(root, onerror=unreadable.append):
            while unreadable:
                error = unreadable.pop()
                yield str(error.filename), f"folder cannot be read ({error.strerror or error}); nothing in it was taken"
            dirs.sort()
            for name in list(dirs):
                path = os.path.join(folder, name)
                if os.path.islink(path):
                    dirs.remove(name)
                    yield path, "a link to a folder: not followed (import the folder it points to instead)"
            for name in sorted(files):
                yield os.path.join(folder, name), _skip_reason(name)
        while unreadable:
            error = unreadable.pop()
            yield str(error.filename), f"folder cannot be read ({error.strerror or error}); nothing in it was taken"


def _skip_reason(name: str) -> str:
    if name.endswith(SIDECAR_SUFFIX):
        return "a metadata sidecar (read with the image it describes), not an image"
    if name.startswith("."):
        return "a hidden file (name starts with a dot)"
    if is_temporary(name):
        return "a temporary file (still being written or left by a copy)"
    return ""


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
    flight = _Flight(ingestor, max(2, 4 * max(1, ingestor.workers)))
    totals: dict[str, int] = {}
    done = 0
    files = _walk(paths)
    exhausted = False
    ingestor.log.info("ingest import started: %d file(s) under %s", total, ", ".join(map(str, paths)))
    try:
        while not exhausted or flight:
            skipped: list[tuple[str, str]] = []
            while not exhausted and flight.has_room() and len(skipped) < batch_size:
                item = next(files, None)
                if item is None:
                    exhausted = True
                    break
                path, skip = item
                if skip:
                    skipped.append((path, skip))
                else:
                    flight.add(path, info)
            outcomes = ingestor.record_skipped(skipped, info)
            # Commit in batches: one transaction per batch, not per file.
            results = flight.collect(None, batch_size, linger=not exhausted) if flight and not skipped else []
            full = [p for p, _ in results if p.kind == "store_full"]
            outcomes += ingestor.commit([(p, s) for p, s in results if p.kind != "store_full"])
            for outcome in outcomes:
                totals[outcome.outcome] = totals.get(outcome.outcome, 0) + 1
            done += len(outcomes)
            if full:
                raise StoreFullError(ingestor.full_message(
                    f"{full[0].reason}; {done} of {total} file(s) were dealt with before, the rest were not taken "
                    "(run the import again: what is stored already is recognised)"))
            if not outcomes:
                continue
            summary = ", ".join(f"{n} {k}" for k, n in sorted(totals.items()))
            yield IngestProgress(done, total, f"{done}/{total}: {summary}", tuple(outcomes), {}, dict(totals))
        ingestor.log.info("ingest import finished: %s", ", ".join(f"{n} {k}" for k, n in sorted(totals.items())))
    except StoreFullError as exc:
        ingestor.log.error("ingest import stopped: %s", exc)
        raise
    finally:
        ingestor.close()
    return totals
