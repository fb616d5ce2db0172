"""What the commands print: tables sized to the terminal, prose lines, JSON.

A table is described once, next to its command, as a tuple of :class:`Column`
(the row key, the label a technician reads, and how to show the value). The
terminal gets human labels, percentages and thousands separators in at most
:data:`MAX_WIDTH` columns; ``--json`` gets the rows as they came from core
(fractions as numbers, snake_case keys), so scripts see no change.

``rich`` is imported only when a table is printed.
"""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

# Wide enough for the widest table, narrow enough to read beside another window.
MAX_WIDTH = 100


def text(value: Any) -> str:
    return "" if value is None else str(value)


def words(value: Any) -> str:
    """Names the code spells in snake_case (sections, outcomes), as words."""
    return text(value).replace("_", " ")


def count(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def ident(value: Any) -> str:
    """A record id, as typed back into a command: no thousands separator."""
    return text(value)


def percent(value: Any) -> str:
    """A fraction 0..1 as a percentage: 0.875 → "87.5 %"."""
    return "" if value is None else f"{value * 100:.1f} %"


def decimal(value: Any) -> str:
    return "" if value is None else f"{value:,.2f}"


def yes(value: Any) -> str:
    return "yes" if value else ""


def when(value: Any) -> str:
    """An ISO timestamp (stored in UTC) as local date and minute."""
    if not value:
        return ""
    try:
        return datetime.fromisoformat(str(value)).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return str(value)


@dataclass(frozen=True)
class Column:
    """One table column: ``key`` in the row, ``label`` in the header, ``format``
    for the value. Numbers align right. ``wrap`` lets long text take several
    lines (reasons, explanations); otherwise it is cut with an ellipsis."""

    key: str
    label: str
    format: Callable[[Any], str] = text
    wrap: bool = False
    right: bool | None = None  # None: numbers (count, ident, percent, decimal) right, text left

    @property
    def justify(self) -> str:
        right = self.format in (count, ident, percent, decimal) if self.right is None else self.right
        return "right" if right else "left"


def width(stream: TextIO | None = None) -> int:
    """Columns to print in: the terminal's, up to MAX_WIDTH; MAX_WIDTH when piped."""
    stream = stream or sys.stdout
    if _is_terminal(stream):
        return max(20, min(shutil.get_terminal_size().columns, MAX_WIDTH))
    return MAX_WIDTH


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[Column], out: TextIO | None = None) -> None:
    """Rows as an aligned table that fits :func:`width`; "(none)" when empty."""
    out = out or sys.stdout
    if not rows:
        print("(none)", file=out)
        return
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    terminal = _is_terminal(out)
    # No colour codes when piped; Text (not markup strings) so that a value like
    # "[0.85, 0.93]" prints as it is.
    console = Console(file=out, width=width(out), color_system="auto" if terminal else None,
                      force_terminal=terminal, highlight=False, emoji=False)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1), collapse_padding=True,
                  header_style="bold" if terminal else "")
    cells = [[column.format(row.get(column.key)) for column in columns] for row in rows]
    # A column empty in every row (no step skipped, no KPI result yet) leaves room for the others.
    shown = [i for i in range(len(columns)) if any(row[i] for row in cells)]
    labels = _fit_labels([columns[i] for i in shown], [[row[i] for row in cells] for i in shown], width(out))
    for i, label in zip(shown, labels):
        column = columns[i]
        if column.justify == "right":
            # Numbers are never cut (their label wrapped instead, see _fit_labels).
            table.add_column(Text(label, justify="right"), justify="right", no_wrap=True)
        else:
            # When the table is still too wide, explanations wrap; names (a class, a pose) are cut
            # with "…" only as a last resort.
            table.add_column(Text(label), overflow="fold" if column.wrap else "ellipsis",
                             no_wrap=not column.wrap)
    for row in cells:
        table.add_row(*(Text(row[i]) for i in shown))
    console.print(table)


def _fit_labels(columns: Sequence[Column], values: Sequence[Sequence[str]], room: int) -> list[str]:
    """Labels put on several lines ("Test\ntarget"), the one that overhangs its
    values most first, until the table fits ``room`` or no label is wider than
    its values."""
    labels = [column.label for column in columns]
    widest = [max(map(len, v)) for v in values]

    def width_of(label: str) -> int:
        return max(map(len, label.splitlines()))

    def total() -> int:
        return sum(max(width_of(label), w) for label, w in zip(labels, widest)) + 2 * (len(labels) - 1)

    while total() > room:
        overhang = [(width_of(label) - w, i) for i, (label, w) in enumerate(zip(labels, widest))
                    if width_of(label) > max(w, *map(len, label.split()))]
        if not overhang:
            break
        _, i = max(overhang)
        labels[i] = textwrap.fill(columns[i].label, max(widest[i], *map(len, columns[i].label.split())))
    return labels


def say(line: str, out: TextIO | None = None) -> None:
    """A line of prose under or over a table, wrapped to the same width."""
    out = out or sys.stdout
    # A no-break space keeps "5.0 %" on one line (textwrap breaks only at ASCII spaces).
    lines = textwrap.fill(line.replace(" %", "\xa0%"), width(out), break_on_hyphens=False)
    print(lines.replace("\xa0%", " %"), file=out)


def print_json(data: Any, out: TextIO | None = None) -> None:
    print(json.dumps(data, indent=1, default=str), file=out or sys.stdout)


def emit(args: Any, data: Any, rows: Sequence[dict], columns: Sequence[Column]) -> None:
    """``data`` as JSON with ``--json``, else ``rows`` as a table of ``columns``."""
    if args.json:
        print_json(data)
    else:
        print_table(rows, columns)
