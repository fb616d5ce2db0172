"""Cold start of the window to interactive with data shown, against a bare Qt window.

    python -m tests.bench.bench_startup            # 7 runs each
    python -m tests.bench.bench_startup --runs 2   # smoke size

Each run is a new process: from spawn until the window's first area has
shown the demo lab's data (``MainWindow.ready``, printed as ``XLAB_READY``
with the seconds since the process's first import) versus until an empty
PySide6 window is shown. Every process must exit cleanly.
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


def _spawn(args: list[str], env: dict) -> tuple[float, float | None]:
    """Seconds from spawn to ready, and the process's own count since its first import (None: not given)."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    ready = reported = None
    for line in proc.stdout:
        if line.startswith("XLAB_READY"):
            ready = time.perf_counter() - start
            fields = line.split()
            reported = float(fields[1]) if len(fields) > 1 else None
            break
    code = proc.wait(timeout=60)
    if ready is None or code != 0:
        raise RuntimeError(f"{args} never became ready or failed (exit {code}): {proc.stderr.read()}")
    return ready, reported


def run(runs: int) -> dict:
    env = dict(os.environ, XLAB_STARTUP_PROBE="1")
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    with tempfile.TemporaryDirectory() as tmp:
        lab = Path(tmp) / "lab"
        subprocess.run([sys.executable, "-m", "app", "demo", "--headless", "--count", "0", "--lab", str(lab)],
                       check=True, capture_output=True, env=env)
        xlab = [_spawn([sys.executable, "-m", "app", "gui", "--lab", str(lab)], env) for _ in range(runs)]
        bare = [_spawn([sys.executable, "-c", BARE], env) for _ in range(runs)]
    xlab_s, bare_s = statistics.median(t for t, _ in xlab), statistics.median(t for t, _ in bare)
    return {"xlab_s": xlab_s, "bare_s": bare_s, "runs": runs, "ratio": xlab_s / bare_s,
            "xlab_runs": [t for t, _ in xlab], "xlab_reported": [r for _, r in xlab],
            "bare_runs": [t for t, _ in bare]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    r = run(args.runs)
    print(f"cold start to interactive window with data (median of {r['runs']} new processes, {os.environ.get('QT_QPA_PLATFORM', 'offscreen')}):")
    print(f"  xlab gui on the demo lab {r['xlab_s']:.3f} s   target <= 1.5 s")
    print(f"  bare PySide6 window      {r['bare_s']:.3f} s (baseline)")
    print(f"  ratio: {r['ratio']:.2f}x the bare window")
    return 0


if __name__ == "__main__":
    sys.exit(main())
