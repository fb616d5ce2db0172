"""The ``xlab`` console script: core's CLI, plus ``xlab gui`` for the window.

Qt is imported only when the window is asked for, so headless commands start
fast and run on machines without a display.
"""

from __future__ import annotations

import argparse
import sys

from core.cli import main as cli_main


def open_gui(args: argparse.Namespace) -> int:
    from app.display_check import display_problem

    problem = display_problem()
    if problem is not None:
        # Qt would abort the process (SIGABRT, a core dump) on the same lack.
        print(f"xlab: {problem}", file=sys.stderr)
        return 2
    from app.main import run

    return run(lab=args.lab, simulate=getattr(args, "simulate", False), rate=getattr(args, "rate", 12.0))


def main(argv: list[str] | None = None) -> int:
    return cli_main(argv, gui=open_gui)


if __name__ == "__main__":
    sys.exit(main())
