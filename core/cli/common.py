"""Options every command shares (``--lab``, ``--user``, ``--station``, ``--json``, ``--quiet``).

They are accepted before or after the command: ``xlab --lab L quota status``
and ``xlab quota status --lab L`` mean the same. Each is declared on the
top-level parser, on each command group and on each command that uses it, all
with ``default=argparse.SUPPRESS``: a parser then sets the option only when it
is given there, so a command's parser never overwrites with its default a
value given earlier. :func:`resolve` is the one place that fills in the
defaults afterwards.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from dataclasses import dataclass

# Set on a command's parser when it takes --json / --quiet: the top-level and
# group parsers accept them for any command, so resolve() refuses them where
# the command has no such output.
_TAKES_JSON = "_takes_json"
_TAKES_QUIET = "_takes_quiet"


def _parent() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)


def _add_lab(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lab", metavar="DIR",
                        help="lab folder (catalog and image store); default $XLAB_LAB or the per-user data folder")
    parser.add_argument("--user", metavar="NAME",
                        help="sign in as this user of the lab (default $XLAB_USER or your login); another "
                             "user's PIN comes from $XLAB_PIN or is asked for (on a server catalog: the password)")
    parser.add_argument("--station", metavar="NAME",
                        help="this station's name, where sessions are held (default $XLAB_STATION or the host name)")


def _add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _add_quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


@dataclass(frozen=True)
class Common:
    """Parent parsers, given to ``add_parser(..., parents=[...])``.

    ``lab``: --lab, --user and --station (every command that opens a lab); ``json`` and
    ``quiet`` for the commands with those outputs; ``anywhere``: all four, for
    the top-level parser and command groups (``quota``, ``session``...).
    """

    lab: argparse.ArgumentParser
    json: argparse.ArgumentParser
    quiet: argparse.ArgumentParser
    anywhere: argparse.ArgumentParser


def common_options() -> Common:
    lab, as_json, quiet, anywhere = _parent(), _parent(), _parent(), _parent()
    _add_lab(lab)
    _add_json(as_json)
    as_json.set_defaults(**{_TAKES_JSON: True})
    _add_quiet(quiet)
    quiet.set_defaults(**{_TAKES_QUIET: True})
    _add_lab(anywhere)
    _add_json(anywhere)
    _add_quiet(anywhere)
    return Common(lab, as_json, quiet, anywhere)


def resolve(args: argparse.Namespace, parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Final values of the shared options, wherever they were given."""
    command = " ".join(getattr(args, "command_path", ()) or [args.command])
    takes_json = vars(args).pop(_TAKES_JSON, False)
    takes_quiet = vars(args).pop(_TAKES_QUIET, False)
    if getattr(args, "json", False) and not takes_json:
        parser.error(f"'xlab {command}' has no --json output")
    if getattr(args, "quiet", False) and not takes_quiet:
        parser.error(f"'xlab {command}' has no --quiet option")
    args.json = getattr(args, "json", False)
    args.quiet = getattr(args, "quiet", False)
    args.user = getattr(args, "user", None)
    args.lab = getattr(args, "lab", None) or os.environ.get("XLAB_LAB") or None
    station = (getattr(args, "station", None) or "").strip()
    if station:
        # Through the environment: core.lab.station_name reads it, and so do the processes
        # this command starts (ingest, a run, the window's).
        os.environ["XLAB_STATION"] = station
    args.station = station or None
    if args.user:
        # As --station: core.lab.Lab.open signs in as $XLAB_USER, and so do the processes this
        # command starts and the window it opens.
        os.environ["XLAB_USER"] = args.user
    return args


def open_lab(args: argparse.Namespace):
    """The lab named by ``--lab`` (or $XLAB_LAB, or the per-user default)."""
    from core.lab import Lab
    from core.users import hand_down

    from core.catalog.rights import PermissionDeniedError

    pin = os.environ.get("XLAB_PIN")
    try:
        lab = Lab.open(args.lab, user=args.user, pin=pin)
    except PermissionDeniedError as exc:
        if pin is not None or not args.user or not sys.stdin.isatty() or "needs" not in str(exc):
            raise
        pin = getpass.getpass(f"{args.user}'s PIN: ")  # at a terminal: asked, not put on the command line
        lab = Lab.open(args.lab, user=args.user, pin=pin)
    # The processes this command starts (ingest, the run queue) sign in as the same user.
    hand_down(lab.catalog.identity, pin)
    return lab
