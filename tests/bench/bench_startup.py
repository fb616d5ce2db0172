"""Cold start of the window to interactive with data shown, against a bare Qt window.

    python -m tests.bench.bench_startup            # 7 runs each
    python -m tests.bench.bench_startup --runs 2   # smoke size

Each run is a new process: from spawn until the Quotas view has shown the
demo plan (``XLAB_READY``) versus until an empty PySide6 window is shown.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BARE = """
import sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMainWindow
app = QApplication(sys.argv)
w = QMainWindow()
w.resize(1366, 768)
w.show()
def ready():
    print("XLAB_READY", flush=True)
    w.close()
QTimer.singleShot(0, ready)
app.exec()
"""


def _spawn(args: list[str], env: dict) -> float:
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    ready = None
    for line in proc.stdout:
        if line.startswith("XLAB_READY"):
            ready = time.perf_counter() - start
            break
    proc.wait(timeout=60)
    if ready is None:
        raise RuntimeError(f"{args} never became ready: {proc.stderr.read()}")
    return ready


def run(runs: int) -> dict:
    env = dict(os.environ, XLAB_STARTUP_PROBE="1")
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    with tempfile.TemporaryDirectory() as tmp:
        lab = Path(tmp) / "lab"
        subprocess.run([sys.executable, "-m", "app", "demo", "--headless", "--count", "0", "--lab", str(lab)],
                       check=True, capture_output=True, env=env)
        xlab = [_spawn([sys.executable, "-m", "app", "gui", "--lab", str(lab)], env) for _ in range(runs)]
        bare = [_spawn([sys.executable, "-c", BARE], env) for _ in range(runs)]
    return {"xlab_s": statistics.median(xlab), "bare_s": statistics.median(bare), "runs": runs}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    r = run(args.runs)
    print(f"cold start to interactive window with data (median of {r['runs']} new processes, {os.environ.get('QT_QPA_PLATFORM', 'offscreen')}):")
    print(f"  xlab gui on the demo lab {r['xlab_s']:.3f} s   target <= 1.5 s")
    print(f"  bare PySide6 window      {r['bare_s']:.3f} s (baseline)")
    print(f"  ratio: {r['xlab_s'] / r['bare_s']:.2f}x the bare window")
    return 0


if __name__ == "__main__":
    sys.exit(main())
