"""Running core's long generators from the command line: progress, Ctrl-C, SIGTERM."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any, TextIO

from core.progress import Progress


def drive(progress: Iterator[Progress], quiet: bool = False, out: TextIO | None = None) -> int:
    """Run a core generator to the end, a line per step; returns the last ``done``.

    Ctrl-C (or SIGTERM, see :func:`stop_on_sigterm`) stops it at its next
    yield, where the catalog is consistent, and says how far it got.
    """
    done = 0
    last = None
    try:
        for step in progress:
            done = step.done
            if not quiet and (step.done, step.message) != last:
                last = (step.done, step.message)
                total = f"/{step.total}" if step.total else ""
                print(f"[{step.done}{total}] {step.message}", flush=True, file=out or sys.stdout)
    except KeyboardInterrupt:
        progress.close()
        print(f"stopped after {done}", file=sys.stderr)
    return done


def drive_to_result(progress: Iterator[Progress], quiet: bool = False) -> Any:
    """Like :func:`drive` for a generator that returns a result (the planner):
    progress goes to stderr, so stdout holds only the result (JSON stays
    parseable). Ctrl-C stops it at its next yield, says how far it got and
    stops the command (exit 130): a partial result is not worth printing."""
    done = 0
    try:
        while True:
            try:
                step = next(progress)
            except StopIteration as stop:
                return stop.value
            done = step.done
            if not quiet:
                total = f"/{step.total}" if step.total else ""
                print(f"[{step.done}{total}] {step.message}", flush=True, file=sys.stderr)
    except KeyboardInterrupt:
        progress.close()
        print(f"stopped after {done}", file=sys.stderr)
        raise


def stop_on_sigterm() -> None:
    """SIGTERM (a supervisor, systemd, ``kill``) stops like Ctrl-C: the running
    command's clean-up runs, so ingest shuts its decode processes down and
    releases its scanners."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        def interrupt(signum, frame):  # noqa: ANN001, ARG001 - signal API
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, interrupt)
