"""``xlab user``: the lab's users and their roles; ``xlab whoami``: who this command signs in as."""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from core.cli.common import Common, open_lab
from core.cli.output import Column, emit, print_json, when, yes

COLUMNS = [
    Column("name", "User"),
    Column("role_title", "Role"),
    Column("full_name", "Name"),
    Column("has_pin", "PIN", yes),
    Column("disabled", "Disabled", yes),
    Column("added_at", "Added", when),
    Column("added_by", "By"),
]


def _secret(what: str, env: str, asked: bool) -> str | None:
    """A PIN or password: from ``$env`` (scripts, tests), else typed twice at a terminal."""
    value = os.environ.get(env)
    if value or not asked:
        return value or None
    if not sys.stdin.isatty():
        raise SystemExit(f"xlab: give the {what} in ${env} (no terminal to type it at)")
    first = getpass.getpass(f"{what}: ")
    if getpass.getpass(f"{what} again: ") != first:
        raise SystemExit(f"xlab: the two {what}s differ")
    return first


def cmd_list(args: argparse.Namespace) -> int:
    from core.users import list_users

    with open_lab(args) as lab:
        rows = list_users(lab)
    if not rows and not args.json:
        print("No users: the lab is open (anyone may do anything). Add its first administrator: "
              "xlab user add NAME --role administrator")
        return 0
    emit(args, rows, rows, COLUMNS)
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    from core.users import add_user

    with open_lab(args) as lab:
        server = lab.catalog.dialect == "postgresql"
        pin = None if server else _secret("PIN", "XLAB_NEW_PIN", args.pin)
        password = _secret("password", "XLAB_NEW_PASSWORD", args.password) if server else None
        user = add_user(lab, args.name, args.role, full_name=args.full_name or "", pin=pin, password=password,
                        actor=args.user)
    if args.json:
        print_json(user)
    else:
        print(f"{user['name']} added as {user['role_title']}" + (" (with a PIN)" if user["has_pin"] else ""))
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    from core.users import change_user

    with open_lab(args) as lab:
        server = lab.catalog.dialect == "postgresql"
        pin = None if server else _secret("PIN", "XLAB_NEW_PIN", args.pin)
        password = _secret("password", "XLAB_NEW_PASSWORD", args.password) if server else None
        disabled = True if args.disable else False if args.enable else None
        user = change_user(lab, args.name, role=args.role, full_name=args.full_name, disabled=disabled, pin=pin,
                           clear_pin=args.clear_pin, password=password, actor=args.user)
    if args.json:
        print_json(user)
    else:
        state = "disabled" if user["disabled"] else user["role_title"]
        print(f"{user['name']}: {state}" + (", with a PIN" if user["has_pin"] else ""))
    return 0


def cmd_whoami(args: argparse.Namespace) -> int:
    from core.catalog.rights import PERMISSIONS
    from core.users import signed_in

    with open_lab(args) as lab:
        who = signed_in(lab)
        may = [p for p in PERMISSIONS if who.may(p)]
    if args.json:
        print_json({"name": who.name, "role": who.role, "title": who.title, "may": may})
    else:
        print(f"{who.name}: {who.title}")
        for permission in may:
            print(f"  may {PERMISSIONS[permission][0]}")
    return 0


def register(subparsers: argparse._SubParsersAction, common: Common) -> None:
    from core.catalog.rights import ROLE_SUMMARY, ROLES

    user = subparsers.add_parser("user", description=f"The lab's users and roles. {ROLE_SUMMARY}")
    sub = user.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = sub.add_parser("list", help="the users, their roles and whether they have a PIN",
                       parents=[common.lab, common.json])
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("add", help="add a user (the first must be an administrator)", parents=[common.lab, common.json])
    p.add_argument("name", metavar="NAME", help="their login name (on the server: their database role)")
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--full-name", metavar="TEXT")
    p.add_argument("--pin", action="store_true",
                   help="give them a PIN, to sign in at a shared station (typed, or $XLAB_NEW_PIN)")
    p.add_argument("--password", action="store_true",
                   help="server catalog: the password of their new login (typed, or $XLAB_NEW_PASSWORD); "
                        "an existing login of the server keeps its own")
    p.set_defaults(func=cmd_add)
    p = sub.add_parser("set", help="change a user's role, name, PIN or password; disable or enable them",
                       parents=[common.lab, common.json])
    p.add_argument("name", metavar="NAME")
    p.add_argument("--role", choices=ROLES)
    p.add_argument("--full-name", metavar="TEXT")
    p.add_argument("--pin", action="store_true", help="set a new PIN (typed, or $XLAB_NEW_PIN)")
    p.add_argument("--clear-pin", action="store_true", help="remove the PIN (they sign in only from their login)")
    p.add_argument("--password", action="store_true", help="server catalog: set a new password "
                                                           "(typed, or $XLAB_NEW_PASSWORD)")
    state = p.add_mutually_exclusive_group()
    state.add_argument("--disable", action="store_true", help="they may no longer sign in (kept in the history)")
    state.add_argument("--enable", action="store_true")
    p.set_defaults(func=cmd_set)

    p = subparsers.add_parser("whoami", parents=[common.lab, common.json])
    p.set_defaults(func=cmd_whoami)
