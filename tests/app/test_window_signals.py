"""The window stops cleanly on SIGTERM and Ctrl-C: ingest ends, its workers
with it, and the scanners are free for the next XLab. A real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.ingest.lock import lab_ingest_owners
from core.lab import Lab
from tests.core.test_ingest_processes import _alive, _children, _wait_for

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT])
def test_the_demo_window_closes_cleanly_on_a_signal(tmp_path, how):
    root = tmp_path / "demo"
    env = dict(os.environ, PYTHONPATH=str(REPO), QT_QPA_PLATFORM="offscreen")
    proc = subprocess.Popen([sys.executable, "-m", "app", "demo", "--lab", str(root), "--rate", "120"], cwd=REPO,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        _wait_for(lambda: (root / "catalog.sqlite").exists(), 120, "the demo lab")
        lab = Lab.open(root)
        try:
            _wait_for(lambda: lab_ingest_owners(lab), 120, "the window to start ingest")
            _wait_for(lambda: len(_children(proc.pid)) >= 1, 120, "the decode workers")
            workers = _children(proc.pid)
            time.sleep(0.5)  # let the window settle into its event loop
            os.kill(proc.pid, how)
            stderr = proc.communicate(timeout=60)[1].decode()
            assert proc.returncode == 0, stderr
            assert "Traceback" not in stderr
            _wait_for(lambda: not any(_alive(pid) for pid in workers), 5, "the decode workers to end")
            assert not lab_ingest_owners(lab)
        finally:
            lab.close()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
