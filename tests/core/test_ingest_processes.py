"""One ingest per scanner across processes, and decode workers that never
outlive the process that started them. Real processes and real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.errors import IngestRunningError
from core.ingest.engine import watch
from core.ingest.lock import IngestLock, lab_ingest_owners
from tests.core.ingest_helpers import drop, install_decoder_mishap, scan_png, tiny_lab

REPO = Path(__file__).resolve().parents[2]


def _xlab(*args: str) -> list[str]:
    return [sys.executable, "-m", "app", *args]


def _children(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (Linux /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                parents[int(entry)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _start_watch(lab_root: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(_xlab("ingest", "watch", "--lab", str(lab_root), "--workers", "2"), cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


@pytest.fixture
def watched_lab(tmp_path):
    """A lab whose ingest runs in another process, its decode pool started."""
    lab = tiny_lab(tmp_path / "lab")
    proc = _start_watch(lab.paths.root)
    try:
        _wait_for(lambda: lab_ingest_owners(lab), 60, "the other process to take the scanners")
        drop(lab, "T1", "first.png", scan_png(1))
        _wait_for(lambda: lab.catalog.query_one("SELECT count(*) AS n FROM images")["n"] == 1, 60,
                  "the other process to ingest a file")
        _wait_for(lambda: len(_children(proc.pid)) >= 2, 30, "the decode workers")
        yield lab, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        lab.close()


def test_a_second_ingest_on_the_same_scanners_is_refused_naming_the_first(watched_lab):
    lab, proc = watched_lab
    owners = lab_ingest_owners(lab)
    assert set(owners) == {"T1", "T2"} and {o.pid for o in owners.values()} == {proc.pid}
    with pytest.raises(IngestRunningError) as refused:
        next(watch(lab, once=True, workers=0))
    assert f"process {proc.pid}" in str(refused.value) and "T1" in str(refused.value)
    # Through the command line: one clear line, exit 2, no traceback.
    result = subprocess.run(_xlab("ingest", "watch", "--lab", str(lab.paths.root), "--once"), cwd=REPO,
                            capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert result.returncode == 2
    assert "ingest already runs" in result.stderr and "Traceback" not in result.stderr
    # The file the first process took is in the catalog once; nothing was ingested twice.
    assert lab.catalog.query_one("SELECT count(*) AS n FROM ingest_events WHERE outcome = 'ingested'")["n"] == 1


def test_scanners_are_taken_over_only_once_their_owner_is_gone(watched_lab):
    lab, proc = watched_lab
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    # The kill released the lock: the next ingest takes the scanners at once.
    _wait_for(lambda: not lab_ingest_owners(lab), 10, "the lock to be released")
    lock = IngestLock.acquire(lab.paths.root, ["T1", "T2"])
    try:
        assert set(lab_ingest_owners(lab)) == {"T1", "T2"}  # now held by this process
    finally:
        lock.release()


def test_different_scanners_can_be_ingested_by_different_processes(tmp_path):
    lab = tiny_lab(tmp_path / "lab")
    try:
        first = IngestLock.acquire(lab.paths.root, ["T1"])
        second = IngestLock.acquire(lab.paths.root, ["T2"])
        with pytest.raises(IngestRunningError):
            IngestLock.acquire(lab.paths.root, ["T2"])
        first.release()
        second.release()
        IngestLock.acquire(lab.paths.root, ["T1", "T2"]).release()
    finally:
        lab.close()


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL, signal.SIGINT])
def test_decode_workers_end_with_their_parent(watched_lab, how):
    lab, proc = watched_lab
    workers = _children(proc.pid)
    assert workers
    # SIGINT as Ctrl-C in a terminal, which signals the whole foreground group.
    if how == signal.SIGINT:
        os.killpg(proc.pid, how)
    else:
        os.kill(proc.pid, how)
    # The supervisor's pipe closes: no worker holds the parent's stderr open.
    stderr = proc.stderr.read().decode()
    proc.wait(15)
    _wait_for(lambda: not any(_alive(pid) for pid in workers), 5, f"decode workers {sorted(workers)} to end")
    if how != signal.SIGKILL:
        # Stopped cleanly, like Ctrl-C: its clean-up ran and released the scanners.
        assert proc.returncode == 0 and "stopped after" in stderr and "Traceback" not in stderr
        assert not lab_ingest_owners(lab)


def test_a_file_that_hangs_its_decoder_is_quarantined_and_ingest_goes_on(tmp_path, monkeypatch):
    from core.ingest.actions import list_quarantine

    install_decoder_mishap(tmp_path, monkeypatch, "hang", "HANG-MY-DECODER")
    lab = tiny_lab(tmp_path / "lab")
    try:
        for i in range(4):
            drop(lab, "T1", f"good_{i}.png", scan_png(400 + i))
        drop(lab, "T1", "stuck.png", scan_png(410) + b"HANG-MY-DECODER")
        steps: list = []
        # A hang must fail this test, not block the suite.
        runner = threading.Thread(target=lambda: steps.extend(
            watch(lab, once=True, workers=2, settle_s=0.05, poll_s=0.05, file_time_limit_s=3)), daemon=True)
        runner.start()
        runner.join(120)
        assert not runner.is_alive(), "ingest hung on a file whose decoder never returns"
        assert steps[-1].totals == {"ingested": 4, "quarantined": 1}
        (held,) = list_quarantine(lab)
        assert held["source_path"].endswith("stuck.png") and "hung" in held["reason"]
        assert not list(lab.paths.drop_folder("T1").iterdir())
    finally:
        lab.close()


def test_a_start_never_takes_another_ingests_files_in_flight_for_leftovers(tmp_path):
    """Two processes ingest one store (different scanners, or an archive import
    beside a watch): the second's start-up clean-up must not remove what the
    first has written and not yet committed."""
    from core.ingest.engine import Ingestor
    from core.store import ContentStore

    lab = tiny_lab(tmp_path / "lab")
    try:
        first = Ingestor(lab, workers=0)
        store = ContentStore(lab.paths.store)
        sha = "ab" * 32
        store.begin(sha, ".png")  # the first process is between its store write and its commit
        in_flight = store.put(sha, ".png", b"not yet committed")
        second = Ingestor(lab, workers=0)
        assert second.reconcile() == []
        assert in_flight.exists() and (store.journal / sha).exists()
        second.close()
        first.close()
        # The first process was killed before its commit: the next start, alone, cleans up.
        third = Ingestor(lab, workers=0)
        assert third.reconcile() == [sha]
        assert not in_flight.exists()
        third.close()
    finally:
        lab.close()
