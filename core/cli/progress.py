"""Running core's long generators from the command line: progress, Ctrl-C, SIGTERM."""

from __future__ import annotations

import sys
import time
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


class StatusLine:
    """A progress line on stderr: rewritten in place on a terminal; into a pipe
    or log, a plain line at most once a second (and the last one), so a log of
    a million-file import stays readable."""

    def __init__(self, quiet: bool = False, stream: TextIO | None = None) -> None:
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.terminal = not quiet and self.stream.isatty()
        self._last_print = 0.0
        self._pending = ""

    def update(self, text: str) -> None:
        if self.quiet:
            return
        if self.terminal:
            print(f"\r{text}\x1b[K", end="", flush=True, file=self.stream)
            return
        self._pending = text
        if time.monotonic() - self._last_print >= 1.0:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            print(self._pending, flush=True, file=self.stream)
            self._pending = ""
            self._last_print = time.monotonic()

    def close(self) -> None:
        if self.terminal:
            print(file=self.stream)
        elif not self.quiet:
            self._flush()


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
