"""Backup, restore and verify on real labs: a backup taken while another
process ingests restores into a lab where nothing is missing and nothing is
extra; damaged, missing and stray store files are found; damaged backups
and unsuitable folders are refused with what to do; the schedule."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.backup import files
from core.backup.backup import backup
from core.backup.restore import restore
from core.backup.schedule import backup_schedule, set_backup_schedule
from core.backup.verify import verify_lab
from core.cli import main
from core.errors import BackupError
from core.ingest.engine import watch
from core.ingest.lock import lab_ingest_owners
from core.lab import Lab
from core.progress import run_to_end
from tests.core.ingest_helpers import drop, scan_png, tiny_lab

REPO = Path(__file__).resolve().parents[2]


def images(lab: Lab) -> int:
    return lab.catalog.query_one("SELECT COUNT(*) AS n FROM images")["n"]


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def lab(tmp_path):
    """A tiny lab with three ingested images (their thumbnails) and a quarantined file."""
    lab = tiny_lab(tmp_path / "lab")
    for seed in (1, 2, 3):
        drop(lab, "T1", f"scan{seed}.png", scan_png(seed))
    drop(lab, "T1", "broken.png", b"\x89PNG not really")
    list(watch(lab, once=True, workers=0, settle_s=0.05, poll_s=0.05))
    assert images(lab) == 3
    assert lab.catalog.query_one("SELECT COUNT(*) AS n FROM quarantine")["n"] == 1
    yield lab
    lab.close()


def verified(root: Path):
    with Lab.open(root) as restored:
        return run_to_end(verify_lab(restored))


# -- while the lab runs ----------------------------------------------------------------------------


@pytest.fixture
def live_ingest(tmp_path):
    """A lab ingested by another process (`xlab ingest watch`) while a thread keeps dropping scans."""
    lab = tiny_lab(tmp_path / "live")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "app", "ingest", "watch", "--lab", str(lab.paths.root),
                             "--workers", "1", "--quiet"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    stop = threading.Event()

    def scanner() -> None:
        seed = 0
        while not stop.is_set():
            seed += 1
            drop(lab, "T1" if seed % 2 else "T2", f"live{seed:04d}.png", scan_png(seed))
            stop.wait(0.05)

    dropping = threading.Thread(target=scanner, daemon=True)
    try:
        wait_for(lambda: lab_ingest_owners(lab), 60, "the ingest process to take the scanners")
        dropping.start()
        wait_for(lambda: images(lab) >= 5, 60, "the first images")
        yield lab, stop
    finally:
        stop.set()
        dropping.join(10)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
        lab.close()


def test_a_backup_during_a_live_ingest_restores_with_nothing_missing_and_nothing_extra(live_ingest, tmp_path):
    lab, stop = live_ingest
    dest = tmp_path / "backup"
    steps = backup(lab, dest)
    assert "copying the catalog" in next(steps).message
    assert "copying the store" in next(steps).message  # the catalog is copied: the backup's moment
    at_copy = images(lab)
    # Ingest goes on while the store is copied: images newer than the copy must not leak in.
    wait_for(lambda: images(lab) >= at_copy + 3, 60, "ingest to commit more images during the backup")
    first = run_to_end(steps)
    assert first.ok and first.counts["images"] >= 5
    info = files.read_info(dest)
    assert info["counts"]["images"] == first.counts["images"] < images(lab)

    # A second backup into the same folder, still live, copies only what is new.
    wait_for(lambda: images(lab) >= info["counts"]["images"] + 3, 60, "more images")
    second = run_to_end(backup(lab, dest))
    assert second.ok and second.counts["images"] > first.counts["images"]
    assert 0 < second.copied < second.files  # the earlier files were kept, not copied again
    stop.set()

    report = run_to_end(restore(dest, tmp_path / "restored"))
    assert report.images == second.counts["images"] and report.files == second.files
    check = verified(tmp_path / "restored")
    assert check.ok, check.as_json()
    assert check.counts == {"missing": 0, "damaged": 0, "extra": 0}
    assert check.checked == second.counts["images"] and check.chain.ok
    with Lab.open(tmp_path / "restored") as restored:
        assert images(restored) == second.counts["images"]
        for row in restored.catalog.query("SELECT store_path, thumb_path FROM images"):
            assert (restored.paths.store / row["store_path"]).is_file()
            assert (restored.paths.store / row["thumb_path"]).is_file()
    # The live lab itself is whole too (its ingest may still hold files in flight: not extras).
    live = run_to_end(verify_lab(lab))
    assert live.ok, live.as_json()


# -- verify ----------------------------------------------------------------------------------------


def test_verify_finds_damaged_missing_and_stray_store_files(lab, capsys):
    assert run_to_end(verify_lab(lab)).ok
    rows = lab.catalog.query("SELECT id, store_path, thumb_path FROM images ORDER BY id")
    damaged = lab.paths.store / rows[0]["store_path"]
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: same size, other content
    damaged.write_bytes(bytes(data))
    (lab.paths.store / rows[1]["store_path"]).unlink()
    (lab.paths.store / rows[2]["thumb_path"]).unlink()
    stray = lab.paths.store / "ab" / "cd" / ("abcd" + "0" * 60 + ".png")
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"nobody's")
    (lab.paths.store / "notes.txt").write_text("not a store file")
    # Not extras: the pyramid cache, and a file an ingest is writing (noted in the journal).
    (lab.paths.store / "pyramids" / "ab").mkdir(parents=True)
    (lab.paths.store / "pyramids" / "ab" / "x.npz").write_bytes(b"cache")
    in_flight = "ef" * 32
    (lab.paths.store / "ef" / "ef").mkdir(parents=True)
    (lab.paths.store / "ef" / "ef" / f"{in_flight}.png").write_bytes(b"being ingested")
    (lab.paths.store / ".journal").mkdir(exist_ok=True)
    (lab.paths.store / ".journal" / in_flight).write_text(".png")

    report = run_to_end(verify_lab(lab))
    assert not report.ok and report.checked == 1  # the third image; its thumbnail is what is missing
    assert report.counts == {"missing": 2, "damaged": 1, "extra": 2}
    assert f"image {rows[0]['id']}: {rows[0]['store_path']} does not match its hash" in report.damaged[0]
    assert any(f"image {rows[1]['id']}: {rows[1]['store_path']} is not in the store" in m for m in report.missing)
    assert any("thumbnail" in m for m in report.missing)
    assert sorted(report.extra) == sorted([f"{stray.relative_to(lab.paths.store).as_posix()}: no image or report "
                                           "has this file", "notes.txt: not a file XLab stores"])
    capsys.readouterr()
    assert main(["verify", "--lab", str(lab.paths.root), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("LAB HAS PROBLEMS") and "damaged: image" in out


def test_verify_reports_a_damaged_catalog_and_a_tampered_audit_log(lab, capsys):
    import sqlite3

    conn = sqlite3.connect(lab.catalog.path)
    conn.execute("DROP TRIGGER audit_log_no_delete")
    conn.execute("DELETE FROM audit_log WHERE id = 2")
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("UPDATE images SET scanner_id = 999 WHERE id = (SELECT MIN(id) FROM images)")
    conn.commit()
    conn.close()
    report = run_to_end(verify_lab(lab))
    assert not report.ok and report.chain.breaks[0].entry_id == 3
    assert any("images row" in p and "scanners row that does not exist" in p for p in report.catalog)


# -- backup and restore ----------------------------------------------------------------------------


def test_restore_brings_the_quarantine_along_and_schedules_no_backups(lab, tmp_path, capsys):
    set_backup_schedule(lab.catalog, every_hours=24, dest=str(tmp_path / "scheduled"), actor="ana")
    run_to_end(backup(lab, tmp_path / "scheduled"))
    report = run_to_end(restore(tmp_path / "scheduled", tmp_path / "restored"))
    assert report.images == 3 and report.shared_drop_folders == []  # drop folders inside the lab: its own
    with Lab.open(tmp_path / "restored") as restored:
        held = restored.catalog.query_one("SELECT stored_path FROM quarantine")["stored_path"]
        assert held.startswith(str((tmp_path / "restored").resolve())) and Path(held).read_bytes().startswith(b"\x89PNG")
        schedule = backup_schedule(restored.catalog)
        assert schedule.every_hours == 0 and schedule.last is None and not schedule.due()
        restored_entry = restored.catalog.query_one(
            "SELECT actor, after_json FROM audit_log WHERE action = 'restore'")
        assert json.loads(restored_entry["after_json"])["from_lab"] == str(lab.paths.root.resolve())
    assert verified(tmp_path / "restored").ok


def test_a_damaged_backup_is_refused_and_leaves_no_lab_behind(lab, tmp_path):
    dest = tmp_path / "backup"
    run_to_end(backup(lab, dest))
    stored = next(p for p in (dest / "store").rglob("*.png") if "thumbs" not in p.parts)
    good = stored.read_bytes()
    stored.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    target = tmp_path / "restored"
    with pytest.raises(BackupError, match=f"{stored.name} does not match its hash in the manifest"):
        run_to_end(restore(dest, target))
    assert not target.exists()
    stored.write_bytes(good)
    target.mkdir()
    (target / "something").write_text("x")
    with pytest.raises(BackupError, match="is not empty"):
        run_to_end(restore(dest, target))
    (target / "something").unlink()
    steps = restore(dest, target)  # cancelled half-way: the empty folder is left as it was
    next(steps)
    next(steps)
    steps.close()
    assert target.is_dir() and list(target.iterdir()) == []
    # A catalog that is not the one backup.json describes: a backup that did not finish.
    (dest / files.CATALOG).write_bytes((dest / files.CATALOG).read_bytes() + b"\0" * 512)
    with pytest.raises(BackupError, match="not the catalog backup.json describes"):
        run_to_end(restore(dest, target))
    with pytest.raises(BackupError, match="is not an XLab backup"):
        run_to_end(restore(tmp_path, tmp_path / "other"))


def test_a_manifest_pointing_outside_the_backup_is_refused(lab, tmp_path):
    dest = tmp_path / "backup"
    run_to_end(backup(lab, dest))
    manifest = (dest / files.MANIFEST).read_text()
    first = manifest.splitlines()[0].rsplit("\t", 1)[0]
    (dest / files.MANIFEST).write_text(manifest + f"{first}\t../../outside.png\n")
    with pytest.raises(BackupError, match="points outside the backup"):
        run_to_end(restore(dest, tmp_path / "restored"))
    assert not (tmp_path / "restored").exists() and not (tmp_path / "outside.png").exists()


def test_backup_folders_that_would_mix_things_are_refused(lab, tmp_path):
    with pytest.raises(BackupError, match="inside the lab folder"):
        run_to_end(backup(lab, lab.paths.root / "backups"))
    busy = tmp_path / "photos"
    busy.mkdir()
    (busy / "holiday.jpg").write_bytes(b"jpg")
    with pytest.raises(BackupError, match="not empty and holds no XLab backup"):
        run_to_end(backup(lab, busy))
    other = tiny_lab(tmp_path / "other")
    try:
        run_to_end(backup(other, tmp_path / "b"))
        with pytest.raises(BackupError, match="holds the backup of another lab"):
            run_to_end(backup(lab, tmp_path / "b"))
    finally:
        other.close()
    # Two backups into one folder at once: the second is told who runs the first.
    steps = backup(lab, tmp_path / "c")
    next(steps)
    with pytest.raises(BackupError, match="another backup into .* is running"):
        run_to_end(backup(lab, tmp_path / "c"))
    steps.close()
    assert run_to_end(backup(lab, tmp_path / "c")).ok


def test_an_incremental_backup_copies_only_changes_and_drops_what_the_lab_no_longer_has(lab, tmp_path):
    dest = tmp_path / "backup"
    first = run_to_end(backup(lab, dest))
    assert first.copied == first.files > 6  # 3 images, 3 thumbnails, the quarantined file
    stray = dest / "store" / "zz" / "old.png"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"from an earlier backup")
    second = run_to_end(backup(lab, dest))
    assert second.copied == 0 and second.removed == 1 and not stray.exists()
    manifest = files.read_manifest(dest)
    assert len(manifest) == second.files and all((dest / p).is_file() for p in manifest)
    for path, entry in manifest.items():
        assert files.hash_file(dest / path) == (entry.sha256, entry.size)


def test_the_schedule_and_the_last_backups_age(lab, tmp_path, capsys):
    root = str(lab.paths.root)
    assert backup_schedule(lab.catalog).describe() == "Backup: none yet (none scheduled)"
    capsys.readouterr()
    assert main(["settings", "--lab", root, "--backup-every-hours", "6"]) == 2
    assert "needs a folder: add --backup-dest" in capsys.readouterr().err
    assert main(["settings", "--lab", root, "--backup-every-hours", "6", "--backup-dest",
                 str(tmp_path / "nightly")]) == 0
    assert "every 6 h to" in capsys.readouterr().out
    assert backup_schedule(lab.catalog).due()
    assert main(["backup", "--lab", root, "--if-due", "--quiet"]) == 0
    assert "backup in" in capsys.readouterr().out and (tmp_path / "nightly" / files.INFO).exists()
    schedule = backup_schedule(lab.catalog)
    assert not schedule.due() and schedule.describe().startswith("Last backup: 0 min ago")
    assert main(["backup", "--lab", root, "--if-due"]) == 0
    assert capsys.readouterr().out.startswith("no backup due")
    from datetime import datetime, timedelta, timezone

    later = datetime.now(timezone.utc) + timedelta(hours=8)
    assert schedule.due(later) and "OVERDUE" in schedule.describe(later)
    actions = [r["key"] for r in lab.catalog.query(
        "SELECT entity_key AS key FROM audit_log WHERE entity = 'lab_settings' AND action = 'set'")]
    assert actions == ["backup_every_hours", "backup_dest"]
