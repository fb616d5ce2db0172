"""Ingest on a full disk, leftovers of killed writes, and the ingest log."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from core.errors import StoreFullError
from core.ingest.actions import list_quarantine
from core.ingest.engine import import_paths, watch
from core.ingest.log import ingest_logging, stop_ingest_logging
from tests.core.ingest_helpers import drop, scan_png, tiny_lab

DEADLINE_S = 60


def _temporaries(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith((".tmp", ".lnk"))]


@pytest.fixture
def full_store(tmp_path):
    """A lab whose store is a 2 MB filesystem of its own, nearly full."""
    lab = tiny_lab(tmp_path / "lab")
    store = lab.paths.store
    store.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        lab.close()
        pytest.skip("needs root to mount a small tmpfs as the store (a real full disk)")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(store)], capture_output=True)
    if mounted.returncode != 0:
        lab.close()
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    filler = store / "filler.bin"
    try:
        with open(filler, "wb") as f:
            f.write(b"\0" * (2 * 1024 * 1024 - 8 * 1024))
    except OSError:
        pass  # full to the last block: what the test wants
    try:
        yield lab, filler
    finally:
        lab.close()
        subprocess.run(["umount", "-l", str(store)], check=False)


def test_watch_pauses_on_a_full_store_and_resumes_when_space_returns(full_store):
    lab, filler = full_store
    sources = [drop(lab, "T1", f"scan_{i}.png", scan_png(500 + i)) for i in range(4)]
    messages = []
    progress = watch(lab, workers=0, settle_s=0.05, poll_s=0.05, full_retry_s=0.2)
    deadline = time.monotonic() + DEADLINE_S
    try:
        for step in progress:
            messages.append(step.message)
            if step.message.startswith("paused"):
                break
            assert time.monotonic() < deadline, "never paused"
        assert "no space left" in messages[-1] and str(lab.paths.store) in messages[-1]
        assert all(p.exists() for p in sources)  # nothing taken, nothing lost
        assert list_quarantine(lab) == []  # a full disk is not the files' fault
        assert _temporaries(lab.paths.store) == []
        filler.unlink()
        for step in progress:
            if step.totals.get("ingested") == 4:
                break
            assert time.monotonic() < deadline, f"never resumed: {step.message}"
    finally:
        progress.close()
    assert not any(p.exists() for p in sources)
    assert lab.catalog.query_one("SELECT COUNT(*) AS n FROM images")["n"] == 4


def test_import_on_a_full_store_stops_with_a_clear_error_and_keeps_the_sources(full_store, tmp_path):
    lab, _ = full_store
    archive = tmp_path / "archive"
    archive.mkdir()
    for i in range(4):
        (archive / f"{i}.png").write_bytes(scan_png(520 + i))
    with pytest.raises(StoreFullError, match="no space left on the disk of .*store.*nothing was lost"):
        list(import_paths(lab, [archive], workers=0))
    assert len(list(archive.iterdir())) == 4
    assert _temporaries(lab.paths.store) == []
    assert list_quarantine(lab) == []


def test_leftovers_of_killed_writes_are_removed_at_start(tmp_path):
    lab = tiny_lab(tmp_path / "lab")
    try:
        store = lab.paths.store
        sha = "ab" * 32
        (store / "ab" / "ab").mkdir(parents=True)
        noted = store / "ab" / "ab" / f".{sha}.png.4242.tmp"
        noted.write_bytes(b"half")
        (store / ".journal").mkdir(exist_ok=True)
        (store / ".journal" / sha).write_text(".png")
        stray = store / "cd" / "ef" / ".cdef.png.17.tmp"  # a version that left one with no note
        stray.parent.mkdir(parents=True)
        stray.write_bytes(b"half")
        link = store / "cd" / "ef" / ".cdef.png.17.lnk"
        link.write_bytes(b"half")
        quarantined = tmp_path / "lab" / "quarantine" / "2026-01-01" / ".x.png.9.tmp"
        quarantined.parent.mkdir(parents=True)
        quarantined.write_bytes(b"half")
        list(watch(lab, once=True, workers=0, settle_s=0.05, poll_s=0.05))
        assert not noted.exists() and not stray.exists() and not link.exists() and not quarantined.exists()
        assert not (store / ".journal" / sha).exists()
    finally:
        lab.close()


def test_the_ingest_log_says_what_became_of_each_file_and_why(tmp_path):
    lab = tiny_lab(tmp_path / "lab")
    path = ingest_logging(lab)
    try:
        assert path == lab.paths.root / "logs" / "ingest.log"
        drop(lab, "T1", "good scan.png", scan_png(600))
        drop(lab, "T1", "empty.png", b"")
        os.utime(lab.paths.drop_folder("T1") / "empty.png", (1e9, 1e9))
        list(watch(lab, once=True, workers=0, settle_s=0.05, poll_s=0.05))
    finally:
        stop_ingest_logging(lab)
        lab.close()
    lines = path.read_text().splitlines()
    good = [line for line in lines if "good scan.png" in line]
    bad = [line for line in lines if "empty.png" in line]
    assert len(good) == 1 and "ingested" in good[0] and " INFO " in good[0]
    assert len(bad) == 1 and "quarantined" in bad[0] and "the file is empty (0 bytes)" in bad[0]
    assert lines[0][:4].isdigit()  # each line starts with its time
