"""The ``xlab`` command line: every capability of core, headless.

Each command parses its arguments, calls one core function, prints a table
(or JSON with ``--json``) and turns a domain error into one line on stderr and
exit code 2. No logic lives here. One module per area registers its commands;
see :mod:`core.cli.main` for the parser and :mod:`core.cli.output` for tables.
"""

from core.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
