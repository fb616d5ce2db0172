"""The decode worker processes, and their tie to the process that started them.

A worker must never outlive ingest: a stray worker keeps decoding files
nobody commits and holds its parent's stderr open, so a supervisor waiting on
that pipe hangs. When the parent ends normally the pool is shut down; when it
is killed (SIGKILL, a crash) nothing in it runs, so each worker watches for
itself: on Linux the kernel sends it SIGTERM when its parent dies
(``PR_SET_PDEATHSIG``), and everywhere a thread checks once a second whether
its parent is still the one it started with, and ends the worker if not.
"""

from __future__ import annotations

import faulthandler
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

PARENT_CHECK_S = 1.0
# No file takes this long to decode; one that does is hung in a decoder
# (a hostile file), and its worker ends so that ingest goes on.
FILE_TIME_LIMIT_S = 60.0
_PR_SET_PDEATHSIG = 1


def signal_when_parent_dies() -> None:
    """In a child process: the kernel sends it SIGTERM when its parent dies (Linux; elsewhere nothing)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            pass


def _end_with_parent(parent_pid: int) -> None:
    signal_when_parent_dies()  # where it cannot be set, the polling thread below still ends the worker
    if os.getppid() != parent_pid:
        os._exit(0)  # the parent died before the line above took effect

    def watch_parent() -> None:
        while True:
            if os.getppid() != parent_pid:
                # A worker's work is never half-committed: the parent commits.
                # Leaving at once is safe; the parent's next start reconciles.
                os._exit(0)
            threading.Event().wait(PARENT_CHECK_S)

    threading.Thread(target=watch_parent, name="xlab-parent-watch", daemon=True).start()


def _start_worker(parent_pid: int) -> None:
    _end_with_parent(parent_pid)
    # Ctrl-C in a terminal signals the whole process group; the parent
    # decides what stops, and a worker's traceback would only be noise.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Decode workers yield the CPU to the window and the scanners' writers:
    # ingest keeps up with a burst a little later rather than freeze the GUI.
    try:
        os.nice(5)
    except (AttributeError, OSError):
        pass


def decode_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` decode processes that end when this process ends.

    spawn, not fork: the GUI process has threads that fork would copy half-way.
    """
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_worker, initargs=(os.getpid(),))


_watchdog_sink = None


def run_limited(function: Callable[..., Any], limit_s: float, *args: Any) -> Any:
    """Run ``function(*args)`` in a worker; if it has not returned after
    ``limit_s`` the worker process ends, as if it had crashed.

    faulthandler's watchdog is a thread of C code that needs no Python lock,
    so it also ends a worker hung inside a C decoder that never returns.
    """
    global _watchdog_sink
    if _watchdog_sink is None:
        _watchdog_sink = open(os.devnull, "w")  # noqa: SIM115 - kept for the worker's life
    faulthandler.dump_traceback_later(limit_s, exit=True, file=_watchdog_sink)
    try:
        return function(*args)
    finally:
        faulthandler.cancel_dump_traceback_later()
