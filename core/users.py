"""The lab's users, their roles, and signing in.

Four roles (core.catalog.rights): technician, manager, ML engineer, administrator. Until the first
user is added the lab is open (everyone may do everything, as before roles); the first user must be
an administrator, so that someone can add the others.

Signing in:

* SQLite: users are the lab's own. By default you are your OS login; ``xlab --user NAME`` (or the
  window's "Sign in…", on a station several people share) signs in as another user with that
  user's PIN (``$XLAB_PIN``, or asked for at a terminal). A user without a PIN signs in only from
  their own login. Core checks each write against the role (core.catalog.db).
* PostgreSQL: each user is a login role of the server, member of their XLab role's group, and the
  server enforces the same rights by its grants; ``xlab --user NAME`` connects as NAME with the
  password in ``$XLAB_PIN``/``$PGPASSWORD`` or the user's password file.

Who signed in travels to the processes a command starts (ingest, the run queue) in ``$XLAB_USER``
and ``$XLAB_PIN``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from typing import TYPE_CHECKING, Any

from core.catalog import user_store as store
from core.catalog.db import current_actor
from core.catalog.rights import ROLE_SUMMARY, ROLE_TITLES, ROLES, Identity, PermissionDeniedError
from core.errors import XLabError

if TYPE_CHECKING:
    from core.lab import Lab

__all__ = ["ROLE_SUMMARY", "ROLE_TITLES", "ROLES", "Identity", "add_user", "change_user", "hand_down",
           "list_users", "login_name", "sign_in", "signed_in"]

_SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1}
MIN_PIN = 4


def login_name() -> str:
    """This process's OS login (who is signed in by default)."""
    return current_actor()


def hash_pin(pin: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def pin_matches(pin: str, stored: str) -> bool:
    try:
        scheme, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    return hmac.compare_digest(hashlib.scrypt(pin.encode(), salt=bytes.fromhex(salt), **_SCRYPT).hex(), digest)


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 63 or not all(c.isalnum() or c in "._-" for c in name) or name[0] in ".-":
        raise XLabError(f"{name!r}: a user name is 1 to 63 letters, digits, '.', '_' or '-' (as a login name)")
    return name


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise XLabError(f"{role!r} is not a role; one of: {', '.join(ROLES)}")
    return role


def _check_pin(pin: str | None) -> str | None:
    if pin is not None and (len(pin) < MIN_PIN or not pin.isdigit()):
        raise XLabError(f"a PIN is at least {MIN_PIN} digits")
    return pin


# -- signing in -----------------------------------------------------------------------------------


def sign_in(lab: Lab, name: str | None = None, pin: str | None = None) -> Identity:
    """Sign ``name`` in to ``lab`` (default: $XLAB_USER, else the OS login) and return who is
    signed in; every later write of ``lab.catalog`` is checked against that user's role.

    Raises :class:`PermissionDeniedError` for a wrong PIN, a PIN-less user signed in from another
    login, or a disabled user. Someone who is not a user may read, not write."""
    catalog = lab.catalog
    login = current_actor()
    if catalog.dialect == "postgresql":
        name = store.server_user(catalog)  # the server checked the password as it connected
    else:
        name = (name or os.environ.get("XLAB_USER") or login).strip()
    if not store.any_user(catalog):
        identity = Identity(name, None)
    else:
        row = store.user(catalog, name)
        if row is None:
            identity = Identity(name, "")
        else:
            if row["disabled"]:
                raise PermissionDeniedError(f"{name} is disabled in this lab; an administrator enables them again")
            if catalog.dialect == "sqlite" and name != login:
                pin = pin if pin is not None else os.environ.get("XLAB_PIN")
                if not row["pin_hash"]:
                    raise PermissionDeniedError(
                        f"{name} has no PIN, so signs in only from their own login (this is {login}); "
                        f"an administrator sets one: 'xlab user pin {name}'")
                if not pin or not pin_matches(pin, row["pin_hash"]):
                    raise PermissionDeniedError(f"wrong PIN for {name}" if pin else
                                                f"signing in as {name} from {login}'s login needs {name}'s PIN "
                                                "($XLAB_PIN, or type it when asked)")
            identity = Identity(name, row["role"], row["full_name"])
    catalog.identity = identity
    return identity


def _refresh(lab: Lab) -> None:
    """After a change to the users: who is signed in, read again (already signed in: no PIN)."""
    who = lab.catalog.identity
    if who is None:
        return
    row = store.user(lab.catalog, who.name)
    lab.catalog.identity = Identity(who.name, row["role"] if row and not row["disabled"] else "",
                                    row["full_name"] if row else "")


def signed_in(lab: Lab) -> Identity:
    """Who is signed in to ``lab`` (signing in the default user first if nobody is)."""
    return lab.catalog.identity or sign_in(lab)


def hand_down(identity: Identity | None, pin: str | None) -> None:
    """Make the processes this one starts sign in as ``identity`` too ($XLAB_USER, $XLAB_PIN)."""
    if identity is None or identity.role is None:
        return  # an open lab: nobody to sign in as
    os.environ["XLAB_USER"] = identity.name
    if pin:
        os.environ["XLAB_PIN"] = pin


# -- administration -------------------------------------------------------------------------------


def list_users(lab: Lab) -> list[dict[str, Any]]:
    """The lab's users (without their PIN hashes), with their role's title."""
    return [{**{k: v for k, v in u.items() if k != "pin_hash"}, "has_pin": bool(u["pin_hash"]),
             "role_title": ROLE_TITLES[u["role"]], "disabled": bool(u["disabled"])} for u in store.users(lab.catalog)]


def _shown(lab: Lab, name: str) -> dict[str, Any]:
    return next(u for u in list_users(lab) if u["name"] == name)


def add_user(lab: Lab, name: str, role: str, *, full_name: str = "", pin: str | None = None,
             password: str | None = None, actor: str | None = None) -> dict[str, Any]:
    """Add a user. The first user of a lab must be an administrator. On a server catalog the user
    becomes a login role with ``password`` (needed for a new login; an existing login, such as the
    server's administrator, keeps its own), member of the role's group."""
    name, role, pin = _check_name(name), _check_role(role), _check_pin(pin)
    server = lab.catalog.dialect == "postgresql"
    lab.catalog.require("users")
    with lab.catalog.write(actor) as txn:
        if store.user(txn, name) is not None:
            raise XLabError(f"{name} is a user of this lab already; 'xlab user set {name} --role ...' changes it")
        if not store.any_user(txn) and role != "administrator":
            raise XLabError("the first user of a lab must be an administrator (who then adds the others): "
                            f"'xlab user add {name} --role administrator'")
        store.add_user(txn, name, role, full_name, hash_pin(pin) if pin else None)
        if server:
            store.server_login(txn, name, role, password)
        after = {"role": role, "full_name": full_name, "pin": bool(pin)}
        txn.audit("add", "user", name, None, after)
        txn.summary.append(f"user {name} added ({ROLE_TITLES[role]})")
    _refresh(lab)
    return _shown(lab, name)


def change_user(lab: Lab, name: str, *, role: str | None = None, full_name: str | None = None,
                disabled: bool | None = None, pin: str | None = None, clear_pin: bool = False,
                password: str | None = None, actor: str | None = None) -> dict[str, Any]:
    """Change a user's role, name, PIN (``clear_pin``: remove it), server password, or disable
    (enable) them. The last enabled administrator stays one."""
    if role is not None:
        _check_role(role)
    _check_pin(pin)
    server = lab.catalog.dialect == "postgresql"
    lab.catalog.require("users")
    with lab.catalog.write(actor) as txn:
        row = store.user(txn, name)
        if row is None:
            raise XLabError(f"{name} is not a user of this lab ('xlab user list')")
        values: dict[str, Any] = {}
        if role is not None and role != row["role"]:
            values["role"] = role
        if full_name is not None and full_name != row["full_name"]:
            values["full_name"] = full_name
        if disabled is not None and int(disabled) != row["disabled"]:
            values["disabled"] = int(disabled)
        if pin is not None:
            values["pin_hash"] = hash_pin(pin)
        elif clear_pin and row["pin_hash"]:
            values["pin_hash"] = None
        if not values and password is None:
            return _shown(lab, name)
        if values:
            store.update_user(txn, name, values)
        if row["role"] == "administrator" and store.administrators(txn) == 0:
            raise XLabError(f"{name} is the lab's last administrator: make another user one first")
        if server and ("role" in values or password is not None):
            store.server_login(txn, name, values.get("role", row["role"]), password)
        if server and "disabled" in values:
            store.server_login_disabled(txn, name, bool(values["disabled"]))
        shown = {k: (bool(v) if k in ("pin_hash", "disabled") else v) for k, v in values.items()}
        before = {k: (bool(row[k]) if k in ("pin_hash", "disabled") else row[k]) for k in values}
        if password is not None:
            shown["password"] = "changed"
        txn.audit("change", "user", name, before, shown)
        txn.summary.append(f"user {name} changed")
    _refresh(lab)
    return _shown(lab, name)
