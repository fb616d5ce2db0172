"""The ``xlab`` parser and entry point.

The commands live in one module per area (``lab``, ``inventory``, ``quota``,
``ingest``, ``capture``, ``dashboard``), each with ``register(subparsers,
common)``. :data:`COMMANDS` lists the top-level commands, their area and their
one-line help: enough for ``xlab --help`` and to route a command, so an area's
module is imported and its arguments built only when one of its commands runs.
argparse looks up gettext translations for every parser and argument it
creates (a file-system search each time under a UTF-8 locale); building all
~50 parsers for every ``xlab sizing`` cost more than the command.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from core.cli.common import Common, common_options, resolve
from core.cli.progress import stop_on_sigterm
from core.errors import XLabError

GuiLauncher = Callable[[argparse.Namespace], int]

# command: (area module, help). Order is the order of `xlab --help`.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("lab", "create a lab folder and its catalog (or migrate an existing one)"),
    "inventory": ("inventory", "import or export the lab inventory (YAML)"),
    "quota": ("quota", "test-set quota plans: create, publish, show, status"),
    "ingest": ("ingest", "take scanner images into the store and catalog"),
    "quarantine": ("ingest", "files ingest refused, with their reasons"),
    "sizing": ("lab", "test positives needed for a KPI (Wilson or demonstration)"),
    "simulate": ("lab", "write simulated scans into a scanner's drop folder"),
    "plan": ("capture", "plan capture sessions from the quota deficits (test first)"),
    "session": ("capture", "capture sessions: list, run a checklist step by step, print"),
    "dashboard": ("dashboard", "the manager's dashboards as tables (or CSV/Excel with --export)"),
    "report": ("dashboard", "the weekly PDF report: classes, quota fill, production, forecasts"),
    "settings": ("lab", "show or change the monthly production target and working days"),
    "kpi": ("dashboard", "per-class KPI results on the test set"),
    "eval": ("evaluation", "evaluate detection results: COCO AP/AR per class (as pycocotools)"),
    "annotations": ("labels", "import, export and review boxes (COCO, YOLO, VOC, CVAT, Label Studio)"),
    "class": ("labels", "class changes with history: rename, move to a family, merge, split by item"),
    "dataset": ("datasets", "frozen dataset versions: freeze test and k:1 train sets, list, show, diff, export"),
    "run": ("runs", "training and evaluation runs: train, eval, queue, results, compare, the next ratio steps"),
    "audit": ("audit", "the audit log: list with filters, history of one object, export, verify the hash chain"),
    "backup": ("backup", "back up the lab (catalog and store, with a manifest of hashes) while it runs"),
    "restore": ("backup", "restore a backup into a new lab folder"),
    "catalog": ("catalog", "move the catalog onto the lab's PostgreSQL server, or back into one file"),
    "user": ("users", "the lab's users and their roles (technician, manager, ML engineer, administrator)"),
    "whoami": ("users", "who this command signs in as, and what their role may do"),
    "verify": ("backup", "check the catalog, the audit chain and every stored file against its hash"),
    "demo": ("lab", "create the demo lab and run its simulated scanners (with the GUI)"),
    "gui": ("lab", "open the XLab window"),
}


class _Subcommands(argparse._SubParsersAction):  # noqa: SLF001 - argparse's documented extension point
    """Subcommands that record the command path (``quota status``) and, at the
    top level, build an area's parsers only when one of its commands is used."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.common: Common | None = None
        self._pending: dict[str, str] = {}  # declared command → its area, not registered yet

    def declare(self, name: str, area: str, help: str) -> None:  # noqa: A002 - argparse's name
        super().add_parser(name, help=help)
        self._pending[name] = area

    def add_parser(self, name: str, **kwargs) -> argparse.ArgumentParser:
        if name not in self._pending:
            return super().add_parser(name, **kwargs)
        # The area registers a declared command: its parser replaces the bare
        # one; the help line stays the declared one.
        kwargs.pop("help", None)
        kwargs.setdefault("prog", f"{self._prog_prefix} {name}")
        parser = self._parser_class(**kwargs)
        self._name_parser_map[name] = parser
        del self._pending[name]
        return parser

    def load(self, name: str) -> None:
        area = self._pending.get(name)
        if area is None:
            return
        declared = [n for n, a in self._pending.items() if a == area]
        importlib.import_module(f"core.cli.{area}").register(self, self.common)
        missing = [n for n in declared if n in self._pending]
        if missing:
            raise RuntimeError(f"core.cli.{area} did not register {', '.join(missing)}")

    def load_all(self) -> None:
        for name in list(self._pending):
            self.load(name)

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # noqa: ANN001 - argparse API
        self.load(values[0])
        super().__call__(parser, namespace, values, option_string)
        namespace.command_path = [values[0], *vars(namespace).get("command_path", [])]


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.register("action", "parsers", _Subcommands)


def build_parser(complete: bool = False) -> argparse.ArgumentParser:
    """The ``xlab`` parser; ``complete``: with every command's arguments built
    now (for tests and tools that walk it), not when the command is used."""
    common = common_options()
    parser = _Parser(prog="xlab", description="XLab: run an X-ray data production lab.",
                     parents=[common.anywhere])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=_Parser)
    commands.common = common
    for name, (area, text) in COMMANDS.items():
        commands.declare(name, area, text)
    if complete:
        commands.load_all()
    return parser


def main(argv: Sequence[str] | None = None, gui: GuiLauncher | None = None) -> int:
    """Entry point. ``gui`` opens the window (given by the app package)."""
    parser = build_parser()
    args = resolve(parser.parse_args(None if argv is None else [str(a) for a in argv]), parser)
    args.open_window = gui
    stop_on_sigterm()
    try:
        return args.func(args)
    except XLabError as exc:
        print(f"xlab: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Output piped into e.g. `head`, which stopped reading: not an error.
        sys.stderr.close()
        return 0
