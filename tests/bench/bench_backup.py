"""Backup and verify against plain copying and hashing of the same files.

    python -m tests.bench.bench_backup [--images 2000] [--kb 512] [--repeats 3]

Seeds a lab of ``--images`` stored files of ``--kb`` KB each (random bytes,
catalogued with their real SHA-256), then, best of ``--repeats``:

* backup: ``xlab backup`` into a new folder (online catalog copy, every file
  copied and hashed, manifest) against the baseline of copying the same
  store folder with ``shutil.copytree`` and the catalog with ``shutil.copy``
  (no hashing, no consistency);
* incremental: a second backup into the same folder with nothing new, against
  the first;
* verify: ``xlab verify`` (catalog checks, audit chain, every file hashed,
  extras looked up) against hashing the same files alone.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

from core.backup.backup import backup
from core.backup.files import hash_file
from core.backup.verify import verify_lab
from core.catalog.images import insert_images
from core.catalog.records import all_rows
from core.lab import Lab
from core.progress import run_to_end
from core.store import ContentStore
from tests.bench.seed import seed_catalog


def seed_lab(root: Path, n: int, kb: int) -> Lab:
    lab = Lab.init(root)
    seed_catalog(lab, n_classes=2, n_images=0)
    store = ContentStore(lab.paths.store)
    scanner = all_rows(lab.catalog, "scanners")[0]["id"]
    rows = []
    for i in range(n):
        data = os.urandom(kb * 1024)
        sha = hashlib.sha256(data).hexdigest()
        path = store.image_path(sha, ".png")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        at = f"2026-03-{1 + i % 28:02d}T10:00:00+00:00"
        rows.append((sha, store.relative(path), f"img_{i}.png", scanner, at, at, None, None, None, None,
                     1024, 768, 16, 1, "", 1))
    with lab.catalog.write("bench") as txn:
        insert_images(txn, rows)
    return lab


def _best(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def run(images: int = 2000, kb: int = 512, repeats: int = 3, root: Path | None = None) -> dict:
    root = Path(root or tempfile.mkdtemp(prefix="xlab-bench-backup-"))
    lab = seed_lab(root / "lab", images, kb)
    counter = iter(range(10**6))
    try:
        def fresh_backup():
            return run_to_end(backup(lab, root / f"backup-{next(counter)}"))

        def plain_copy():
            dest = root / f"copy-{next(counter)}"
            shutil.copytree(lab.paths.store, dest / "store")
            shutil.copy(lab.paths.catalog, dest / "catalog.sqlite")

        backup_s, report = _best(fresh_backup, repeats)
        copy_s, _ = _best(plain_copy, repeats)
        again_s, again = _best(lambda: run_to_end(backup(lab, root / "backup-0")), repeats)
        verify_s, checked = _best(lambda: run_to_end(verify_lab(lab)), repeats)
        paths = [lab.paths.store / r["store_path"] for r in lab.catalog.query("SELECT store_path FROM images")]
        hash_s, _ = _best(lambda: [hash_file(p) for p in paths], repeats)
    finally:
        lab.close()
    mb = images * kb / 1024
    return {"images": images, "mb": mb, "backup_s": backup_s, "copy_s": copy_s, "backup_ratio": backup_s / copy_s,
            "files": report.files, "copied": report.copied, "incremental_s": again_s, "incremental_copied": again.copied,
            "incremental_ratio": again_s / backup_s, "verify_s": verify_s, "verify_ok": checked.ok,
            "verified": checked.checked, "hash_s": hash_s, "verify_ratio": verify_s / hash_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--kb", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    r = run(args.images, args.kb, args.repeats)
    print(f"{r['images']:,} stored files, {r['mb']:,.0f} MB; baselines measured in this run")
    print(f"  backup: {r['backup_s']:.2f} s ({r['mb'] / r['backup_s']:,.0f} MB/s, {r['copied']:,} files) vs plain "
          f"copy {r['copy_s']:.2f} s (x{r['backup_ratio']:.2f})")
    print(f"  incremental, nothing new: {r['incremental_s']:.2f} s, {r['incremental_copied']} copied "
          f"(x{r['incremental_ratio']:.3f} of a full backup)")
    print(f"  verify: {r['verify_s']:.2f} s ({r['verified']:,} files, {'ok' if r['verify_ok'] else 'PROBLEMS'}) "
          f"vs hashing alone {r['hash_s']:.2f} s (x{r['verify_ratio']:.2f})")


if __name__ == "__main__":
    main()
