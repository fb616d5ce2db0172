"""``xlab restore BACKUP TARGET``: a new lab from a backup, every file checked.

The target must be new or empty: a restore never mixes into a lab. Every
file is checked against the manifest as it is copied, and the catalog
against the hash backup.json recorded; on any mismatch (or Cancel) what was
written is removed and the target is left as it was. The restored lab
schedules no backups of its own (it would write over the original lab's
backups) until someone sets them again.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from core.backup import files
from core.errors import BackupError
from core.lab import Lab
from core.progress import Progress

YIELD_EVERY_S = 0.25


@dataclass(frozen=True)
class RestoreReport:
    root: Path
    backup_at: str
    files: int
    bytes: int
    images: int
    migrated: list[str]
    shared_drop_folders: list[str]  # scanners whose drop folder is outside the lab: the original's too

    def summary(self) -> str:
        newer = f"; catalog upgraded ({', '.join(self.migrated)})" if self.migrated else ""
        shared = (f". Scanners {', '.join(self.shared_drop_folders)} write to drop folders outside the lab, which "
                  "this lab will ingest too: if the original lab still runs, change them (inventory) before "
                  "starting ingest here" if self.shared_drop_folders else "")
        return (f"restored the backup of {self.backup_at[:16].replace('T', ' ')} UTC into {self.root}: "
                f"{self.images:,} images, {self.files:,} files ({self.bytes / 1e6:,.1f} MB), each checked "
                f"against its hash{newer}{shared}")


def _check_target(target: Path) -> bool:
    """Whether ``target`` existed (empty); refuse one with anything in it."""
    if not target.exists():
        return False
    if not target.is_dir():
        raise BackupError(f"{target} is a file: restore into a new or empty folder")
    if any(target.iterdir()):
        raise BackupError(f"{target} is not empty: restore into a new or empty folder (a restore never "
                          "writes into an existing lab)")
    return True


def restore(backup_dir: str | Path, target: str | Path, *, actor: str | None = None) -> Iterator[Progress]:
    """Make a new lab at ``target`` from the backup in ``backup_dir``; returns a :class:`RestoreReport`.

    Any thread. Closing the generator (or a damaged file) removes what it wrote.
    """
    source, target = Path(backup_dir), Path(target)
    info = files.read_info(source)
    _newer_migrations(info)
    existed = _check_target(target)
    manifest = files.read_manifest(source)
    if len(manifest) != info.get("files"):
        raise BackupError(f"{source}'s manifest lists {len(manifest):,} files, backup.json {info.get('files')}: "
                          "the backup was cut short; make a new one with 'xlab backup'")
    yield Progress(0, None, "checking the backup's catalog")
    try:
        catalog_sha, _ = files.hash_file(source / files.CATALOG)
    except FileNotFoundError:
        raise BackupError(f"{source} has no {files.CATALOG}: the backup is incomplete") from None
    if catalog_sha != info.get("catalog_sha256"):
        raise BackupError(f"{source / files.CATALOG} is not the catalog backup.json describes (a backup that "
                          "did not finish, or a damaged file): make a new backup with 'xlab backup'")
    target.mkdir(parents=True, exist_ok=True)
    try:
        total, done, size = len(manifest), 0, 0
        last_yield = time.monotonic()
        yield Progress(0, total, f"copying {total:,} files, each checked against the manifest")
        for relative, entry in manifest.items():
            path = source / relative
            try:
                digest, n = files.copy_hashed(path, target / relative)
            except FileNotFoundError:
                raise BackupError(f"{path} is missing from the backup: it is damaged; restore an older backup "
                                  "or back the lab up again") from None
            if digest != entry.sha256 or n != entry.size:
                raise BackupError(f"{path} does not match its hash in the manifest: the backup is damaged; "
                                  "restore an older backup or back the lab up again")
            done += 1
            size += n
            if time.monotonic() - last_yield >= YIELD_EVERY_S:
                last_yield = time.monotonic()
                yield Progress(done, total, f"{done:,} of {total:,} files restored")
        digest, _ = files.copy_hashed(source / files.CATALOG, target / files.CATALOG)
        if digest != catalog_sha:
            raise BackupError(f"{source / files.CATALOG} changed while it was being restored: try again")
        files.flush_to_disk([target / relative for relative in manifest] + [target / files.CATALOG])
        yield Progress(done, total, "opening the restored catalog")
        report = _open_restored(target, info, done, size, actor)
        yield Progress(done, total, report.summary())
        return report
    except BaseException:
        _undo(target, existed)
        raise


def _open_restored(target: Path, info: dict, n_files: int, size: int, actor: str | None) -> RestoreReport:
    from core.audit.chain import Anchor, record_anchor
    from core.backup import schedule
    from core.catalog import backup_store as store
    from core.catalog import ingest_store

    with Lab.init(target) as lab:  # brings an older backup's catalog to this XLab's schema
        anchor = info.get("audit_anchor")
        with lab.catalog.write(actor) as txn:
            moved = store.rebase_quarantine(txn, str(info.get("lab", "")), str(target.resolve()))
            schedule.clear_in(txn)
            if anchor and anchor.get("hash"):
                record_anchor(txn, Anchor(int(anchor["id"]), str(anchor["hash"]), str(info["at"]),
                                          f"the backup of {str(info['at'])[:16].replace('T', ' ')} UTC restored here"))
            txn.audit("restore", "lab", str(target.resolve()), None,
                      {"backup_at": info["at"], "from_lab": info.get("lab"), "files": n_files,
                       "quarantine_paths_moved": moved})
            txn.summary.append("restored from a backup")
        shared = [s["name"] for s in ingest_store.scanners(lab.catalog)
                  if s["drop_folder"] and Path(s["drop_folder"]).is_absolute()]
    return RestoreReport(target, str(info["at"]), n_files, size, int(info.get("counts", {}).get("images", 0)),
                         _newer_migrations(info), shared)


def _newer_migrations(info: dict) -> list[str]:
    """The migrations this XLab applies to the backup's catalog; refuse a backup of a newer XLab."""
    from core.catalog.migrations import names

    known = names()
    schema = info.get("schema")
    if schema not in known:
        raise BackupError(f"the backup was made by a newer XLab (catalog schema {schema}): update XLab, "
                          "then restore")
    return known[known.index(schema) + 1:]


def _undo(target: Path, existed: bool) -> None:
    """Remove what the restore wrote, leaving ``target`` as it was (absent, or empty)."""
    if existed:
        for child in target.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
    else:
        shutil.rmtree(target, ignore_errors=True)
