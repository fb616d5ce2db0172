"""``xlab backup DEST``: a consistent copy of a running lab.

Order matters, so that a backup cut short never looks whole:

1. the catalog is copied online (one read transaction: the lab as of one
   commit; ingest goes on) to a temporary name in DEST;
2. the store files that copy refers to, and the lab's quarantine, runs and
   simulator folders, are copied (only those DEST lacks or that changed),
   hashed as they are read; a store file is written before its catalog row is
   committed, so every file the copy refers to exists;
3. the catalog copy takes its place, then the manifest, then ``backup.json``
   (which names the catalog's hash: a catalog without its matching
   backup.json is from a backup that did not finish, and restore says so);
4. files of earlier backups that this one no longer holds are removed;
5. the lab records the backup (setting, audit entry, the audit chain's anchor).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from core.audit.chain import Anchor, record_anchor
from core.backup import files
from core.backup.files import ManifestEntry
from core.catalog import backup_store as store
from core.catalog.db import current_actor, utc_now
from core.catalog.transfer import export_to_sqlite
from core.errors import BackupError
from core.lab import Lab
from core.progress import Progress

# The lab's own folders a backup holds whole (the store is copied by what the catalog refers to).
LAB_FOLDERS = ("quarantine", "runs", "simulator")
LAST_BACKUP_SETTING = "last_backup"
YIELD_EVERY_S = 0.25
MAX_PROBLEMS = 100


@dataclass
class BackupReport:
    dest: Path
    at: str
    files: int = 0
    copied: int = 0
    bytes_copied: int = 0
    removed: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # files of the lab that could not be backed up as they should

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        images = self.counts.get("images", 0)
        line = (f"backup in {self.dest}: {images:,} images, {self.files:,} files "
                f"({self.copied:,} copied now, {self.bytes_copied / 1e6:,.1f} MB; {self.removed:,} no longer needed removed)")
        if self.problems:
            line += f"; {len(self.problems)} problem(s) in the lab: {self.problems[0]}"
        return line


def _check_dest(lab: Lab, dest: Path) -> dict | None:
    """The earlier backup's backup.json in ``dest`` (None for a new folder); refuse unsuitable folders."""
    root = lab.paths.root.resolve()
    resolved = dest.resolve()
    if resolved == root or resolved.is_relative_to(root):
        raise BackupError(f"{dest} is inside the lab folder {root}: back up to another disk or folder")
    if root.is_relative_to(resolved):
        raise BackupError(f"the lab folder {root} is inside {dest}: back up to a folder of its own")
    if not dest.exists():
        return None
    if not dest.is_dir():
        raise BackupError(f"{dest} is a file, not a folder: name a folder for the backup")
    if not (dest / files.INFO).exists():
        if any(p.name != files.LOCK for p in dest.iterdir()):
            raise BackupError(f"{dest} is not empty and holds no XLab backup: name an empty or new folder")
        return None
    info = files.read_info(dest)
    if info.get("lab") != str(root):
        raise BackupError(f"{dest} holds the backup of another lab ({info.get('lab')}): name another folder")
    return info


def _lock(dest: Path) -> int:
    from core.ingest.lock import holder, try_hold

    fd = try_hold(dest / files.LOCK)
    if fd is None:
        who = holder(dest / files.LOCK)
        raise BackupError(f"another backup into {dest} is running ({who.describe() if who else 'another process'}); "
                          "wait for it to finish")
    return fd


def _lab_folder_files(lab: Lab) -> Iterator[tuple[str, Path]]:
    """(path in the backup, source) of every file in the lab's own folders."""
    for name in LAB_FOLDERS:
        base = lab.paths.root / name
        for folder, _, names in os.walk(base):
            for file_name in names:
                if file_name.startswith(".") and file_name.endswith((".tmp", ".lnk", ".part")):
                    continue  # a write in progress: what it becomes is in the next backup
                source = Path(folder) / file_name
                yield source.relative_to(lab.paths.root).as_posix(), source


def backup(lab: Lab, dest: str | Path, *, link: bool = False, actor: str | None = None) -> Iterator[Progress]:
    """Back ``lab`` up into ``dest`` while it runs; returns a :class:`BackupReport`.

    ``dest``: a new or empty folder, or one holding an earlier backup of this
    lab (then only new and changed files are copied). ``link``: hard-link
    store files instead of copying them when ``dest`` is on the same
    filesystem. Any thread; reads the catalog through its own connection and
    writes the lab's record of the backup in one short transaction at the end.
    Closing the generator stops it at its next yield. A backup cut short
    (closed, killed, a full disk) never passes for whole: its catalog does not
    match backup.json, or a file does not match the manifest, and restore says
    so; back up again into the same folder to complete it.
    """
    dest = Path(dest)
    previous = _check_dest(lab, dest)
    dest.mkdir(parents=True, exist_ok=True)
    lock = _lock(dest)
    for stale in dest.glob(f".{files.CATALOG}.*.part"):
        stale.unlink(missing_ok=True)  # left by a backup that was killed (we hold the lock: none runs)
    part = dest / f".{files.CATALOG}.{os.getpid()}.part"
    try:
        report = BackupReport(dest, utc_now())
        yield Progress(0, None, "copying the catalog (online: the lab keeps running)")
        if lab.catalog.dialect == "postgresql":
            # A server catalog is backed up as one SQLite file taken from one snapshot of the server
            # (core.catalog.transfer): restore gives a lab that runs anywhere, and 'xlab catalog
            # migrate-to' puts it back on a server.
            copied = yield from export_to_sqlite(lab.catalog.url, part)
            if not copied.ok:
                raise BackupError(f"the catalog copy did not compare equal to the server's: {copied.summary()}")
        else:
            store.copy_catalog(lab.paths.catalog, part)
        facts = store.copy_facts(part)
        report.counts = facts["counts"]
        old = files.read_manifest(dest) if previous else {}
        manifest: dict[str, ManifestEntry] = {}
        total = sum(facts["counts"].get(t, 0) for t in ("images", "dicos_reports"))
        yield Progress(0, total, f"copying the store ({total:,} images and reports, thumbnails)")
        last_yield = time.monotonic()
        done = 0
        for batch in store.copy_store_files(part):
            for relative, sha in batch:
                done += sha is not None
                _take(f"store/{relative}", lab.paths.store / relative, sha, dest, old, manifest, report,
                      link=link, immutable=True)
                if time.monotonic() - last_yield >= YIELD_EVERY_S:
                    last_yield = time.monotonic()
                    yield Progress(done, total, f"{done:,} of {total:,} store files; {report.copied:,} copied")
        yield Progress(done, total, "copying the quarantine, runs and simulator folders")
        for relative, source in _lab_folder_files(lab):
            _take(relative, source, None, dest, old, manifest, report, link=False, immutable=False)
            if time.monotonic() - last_yield >= YIELD_EVERY_S:
                last_yield = time.monotonic()
                yield Progress(done, total, f"lab folders: {report.copied:,} files copied")
        catalog_sha, catalog_size = files.hash_file(part)
        files.flush_to_disk([dest / relative for relative in manifest] + [part])
        os.replace(part, dest / files.CATALOG)
        report.files = len(manifest)
        files.write_manifest(dest, manifest)
        files.write_info(dest, {
            "format": files.FORMAT, "lab": str(lab.paths.root.resolve()), "at": report.at,
            "by": actor or current_actor(), "host": socket.gethostname(), "schema": facts["schema"],
            "counts": facts["counts"], "catalog_sha256": catalog_sha, "catalog_size": catalog_size,
            "files": report.files, "bytes": sum(e.size for e in manifest.values()),
            "audit_anchor": facts["audit_head"], "problems": report.problems,
        })
        report.removed = _prune(dest, manifest)
        _record(lab, report, facts["audit_head"], actor)
        yield Progress(total, total, report.summary())
        return report
    finally:
        part.unlink(missing_ok=True)
        os.close(lock)


def _take(relative: str, source: Path, sha: str | None, dest: Path, old: dict[str, ManifestEntry],
          manifest: dict[str, ManifestEntry], report: BackupReport, *, link: bool, immutable: bool) -> None:
    """Put one file in the backup (or keep the copy an earlier backup made) and in ``manifest``."""
    target = dest / relative
    try:
        st = source.stat()
    except FileNotFoundError:
        if immutable:
            _problem(report, f"{relative}: the catalog refers to it but it is missing from the lab's store")
        return  # a file of the lab's folders removed since the walk saw it
    known = old.get(relative)
    same = known is not None and known.size == st.st_size and (immutable or known.mtime_ns == st.st_mtime_ns)
    if same and target.exists():
        if sha is not None and known.sha256 != sha:
            _problem(report, f"{relative}: the backup's copy does not match the catalog's hash; copied again")
        else:
            manifest[relative] = known
            return
    try:
        digest, size = files.copy_hashed(source, target, link=link)
    except FileNotFoundError:
        return  # removed while being copied (a run's temporary file)
    except OSError as exc:
        raise BackupError(f"could not write {target}: {exc.strerror or exc}; check the backup disk") from exc
    if sha is not None and digest != sha:
        _problem(report, f"{relative}: the lab's file does not match its hash (damaged on the lab's disk); "
                         "the damaged copy is in the backup")
    manifest[relative] = ManifestEntry(digest, size, st.st_mtime_ns)
    report.copied += 1
    report.bytes_copied += size


def _problem(report: BackupReport, text: str) -> None:
    if len(report.problems) < MAX_PROBLEMS:
        report.problems.append(text)


def _prune(dest: Path, manifest: dict[str, ManifestEntry]) -> int:
    """Remove the files of earlier backups that this one does not hold."""
    removed = 0
    for top in ("store", *LAB_FOLDERS):
        for folder, _, names in os.walk(dest / top):
            for name in names:
                path = Path(folder) / name
                if path.relative_to(dest).as_posix() not in manifest:
                    path.unlink(missing_ok=True)
                    removed += 1
    return removed


def _record(lab: Lab, report: BackupReport, head: dict | None, actor: str | None) -> None:
    from core.catalog import dashboard_store

    value = {"at": report.at, "dest": str(report.dest.resolve()), "files": report.files, "copied": report.copied,
             "images": report.counts.get("images", 0), "problems": len(report.problems)}
    with lab.catalog.write(actor) as txn:
        dashboard_store.set_setting(txn, LAST_BACKUP_SETTING, value)
        if head and head.get("hash"):
            record_anchor(txn, Anchor(head["id"], head["hash"], report.at,
                                      f"the backup of {report.at[:16].replace('T', ' ')} UTC in {report.dest}"))
        txn.audit("backup", "lab", str(report.dest.resolve()), None, value)
        txn.summary.append(f"backed up to {report.dest}")

