"""A run's events: one JSON object a line in ``OUT_DIR/events.jsonl``, also printed to stdout.
Pure (no torch): the run process writes with :class:`EventLog`, anyone reads with :func:`read_events`.

Every event has ``event`` (its kind) and ``t`` (unix time). The kinds, in the order a run writes
them: ``start``, ``warning`` (any time), ``step``, ``epoch``, ``checkpoint``, ``weights``,
``detections``, and exactly one terminal event: ``done``, ``cancelled`` or ``error``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

TERMINAL = ("done", "cancelled", "error")
EVENTS_FILE = "events.jsonl"


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity; a diverged loss is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


class EventLog:
    """Appends events to ``out_dir/events.jsonl`` (each line flushed as written) and, with ``echo``,
    prints them to stdout. One writer: the run process's main thread."""

    def __init__(self, out_dir: str | Path, echo: bool = True):
        self.path = Path(out_dir) / EVENTS_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        # A process killed mid-line left a torn last line: end it, so it stays one bad line that
        # readers skip instead of swallowing this process's first event.
        if self._file.tell() > 0:
            with self.path.open("rb") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    self._file.write("\n")
        self._echo = echo
        self.terminal: str | None = None

    def emit(self, event: str, **fields: Any) -> dict[str, Any]:
        record = {"event": event, "t": round(time.time(), 3), **_finite(fields)}
        line = json.dumps(record, allow_nan=False)
        self._file.write(line + "\n")
        self._file.flush()
        if self._echo:
            try:
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
            except (OSError, ValueError):  # a closed or broken stdout must not stop the run
                self._echo = False
        if event in TERMINAL:
            self.terminal = event
        return record

    def close(self) -> None:
        self._file.close()


def read_events(path: str | Path) -> list[dict[str, Any]]:
    """The events of an ``events.jsonl`` (or of a run folder holding one), in order. A last line
    without its newline (the process is writing it, or was killed while it did) is left out, as is
    any line that is not an event object. A missing file has no events."""
    path = Path(path)
    if path.is_dir():
        path = path / EVENTS_FILE
    return read_events_from(path, 0)[0]


def read_events_from(path: str | Path, offset: int) -> tuple[list[dict[str, Any]], int]:
    """As :func:`read_events`, from byte ``offset`` on (what a parent tailing a live run reads each
    time); returns the events and the offset after the last complete line."""
    try:
        with Path(path).open("rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    out = []
    for line in data[:end].splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "event" in record:
            out.append(record)
    return out, offset + end
