"""Ingest killed with SIGKILL at random moments, over and over: nothing lost, nothing twice."""

import hashlib
import os
import random
import signal
import subprocess
import sys
import time

from core.lab import Lab
from core.store import ContentStore
from tests.core.ingest_helpers import drop, scan_png, tiny_lab

FILES = 1000
KILLS = 22


def _state(lab_root, expected):
    lab = Lab.open(lab_root)
    try:
        assert lab.catalog.integrity_check() == "ok"
        rows = lab.catalog.reader().execute("SELECT sha256 FROM images").fetchall()
        in_catalog = [r[0] for r in rows]
        assert len(in_catalog) == len(set(in_catalog)), "an image is in the catalog twice"
        waiting = {hashlib.sha256(p.read_bytes()).hexdigest() for p in lab.paths.drop_folder("T1").iterdir()
                   if not p.name.startswith(".")}
        lost = set(expected) - set(in_catalog) - waiting
        assert not lost, f"{len(lost)} file(s) neither in the catalog nor in the drop folder"
        return len(in_catalog)
    finally:
        lab.close()


def _wait_for_images(lab_root, proc, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        lab = Lab.open(lab_root)
        try:
            if lab.catalog.reader().execute("SELECT 1 FROM images LIMIT 1").fetchone():
                return
        finally:
            lab.close()
        time.sleep(0.1)


def test_sigkill_at_random_moments_loses_and_duplicates_nothing(tmp_path):
    root = tmp_path / "lab"
    lab = tiny_lab(root)
    expected = []
    for i in range(FILES):
        data = scan_png(1000 + i)
        expected.append(hashlib.sha256(data).hexdigest())
        drop(lab, "T1", f"img_{i:04d}.png", data)
    lab.close()
    assert len(set(expected)) == FILES
    command = [sys.executable, "-m", "app", "ingest", "watch", "--once", "--quiet", "--workers", "1", "--lab", str(root)]
    rng = random.Random(7)
    progress = []
    for kill in range(KILLS):
        proc = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if kill == 0:
            # On a loaded machine start-up alone can outlast the random delay:
            # the first kill waits for work to be under way.
            _wait_for_images(root, proc)
        time.sleep(rng.uniform(0.4, 2.5))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the parent and its worker process, mid-whatever
        proc.wait()
        progress.append(_state(root, expected))
    assert progress[-1] > progress[0] > 0  # the kills landed while work was being done
    final = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr
    assert _state(root, expected) == FILES
    lab = Lab.open(root)
    try:
        store = ContentStore(lab.paths.store)
        known = {r[0] for r in lab.catalog.reader().execute("SELECT sha256 FROM images")}
        assert store.orphans(lambda sha: sha in known) == []
        assert not [p for p in (store.root / ".journal").iterdir() if not p.name.startswith(".")]
        assert list(lab.paths.drop_folder("T1").glob("*.png")) == []
    finally:
        lab.close()
