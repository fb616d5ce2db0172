"""Progress records yielded by long-running core generators.

Every long task in core is a generator of :class:`Progress`; each ``yield`` is
also the point where the caller may stop it (``generator.close()``), so work
between two yields must leave the catalog consistent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Progress:
    done: int
    total: int | None
    message: str = ""

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, self.done / self.total)


def run_to_end(generator: Iterator[Progress]) -> Any:
    """Drive a core generator to its end (no progress shown); returns its return value."""
    while True:
        try:
            next(generator)
        except StopIteration as stop:
            return stop.value
