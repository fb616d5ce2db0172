"""The ``xlab`` console script: core's CLI, plus ``xlab gui`` for the window.

Qt is imported only when the window is asked for, so headless commands start
fast and run on machines without a display.
"""

from __future__ import annotations

import argparse
import sys

from core.cli import main as cli_main


def open_gui(args: argparse.Namespace) -> int:
    from app.main import run

    return run(lab=args.lab, simulate=getattr(args, "simulate", False), rate=getattr(args, "rate", 12.0))


def main(argv: list[str] | None = None) -> int:
    return cli_main(argv, gui=open_gui)


if __name__ == "__main__":
    sys.exit(main())
