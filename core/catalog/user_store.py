"""SQL behind the lab's users (core.users): who they are, their role, their PIN's hash."""

from __future__ import annotations

from typing import Any

from core.catalog.db import Catalog, WriteTransaction, utc_now
from core.errors import XLabError

COLUMNS = "name, role, full_name, pin_hash, disabled, added_at, added_by"


def users(catalog: Catalog) -> list[dict[str, Any]]:
    return [dict(zip(COLUMNS.split(", "), r))
            for r in catalog.reader().execute(f"SELECT {COLUMNS} FROM users ORDER BY name").fetchall()]


def user(catalog: Catalog | WriteTransaction, name: str) -> dict[str, Any] | None:
    conn = catalog if isinstance(catalog, WriteTransaction) else catalog.reader()
    row = conn.execute(f"SELECT {COLUMNS} FROM users WHERE name = ?", (name,)).fetchone()
    return dict(zip(COLUMNS.split(", "), row)) if row else None


def any_user(catalog: Catalog | WriteTransaction) -> bool:
    conn = catalog if isinstance(catalog, WriteTransaction) else catalog.reader()
    return conn.execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None


def add_user(txn: WriteTransaction, name: str, role: str, full_name: str, pin_hash: str | None) -> None:
    txn.execute(f"INSERT INTO users ({COLUMNS}) VALUES (?, ?, ?, ?, 0, ?, ?)",
                (name, role, full_name, pin_hash, utc_now(), txn.actor))


def update_user(txn: WriteTransaction, name: str, values: dict[str, Any]) -> None:
    sets = ", ".join(f"{k} = ?" for k in values)
    txn.execute(f"UPDATE users SET {sets} WHERE name = ?", (*values.values(), name))


def administrators(txn: WriteTransaction) -> int:
    return txn.execute("SELECT COUNT(*) FROM users WHERE role = 'administrator' AND disabled = 0").fetchone()[0]


def server_user(catalog: Catalog) -> str:
    """The database role the server connection signed in as (PostgreSQL)."""
    return catalog.reader().execute("SELECT current_user").fetchone()[0]


def server_roles(txn: WriteTransaction, statements: list[str]) -> None:
    """Run role and grant statements on the server (core.catalog.rights), in this transaction."""
    for statement in statements:
        txn.execute(statement)


def ensure_server_groups(conn: Any, tables: list[str]) -> None:
    """Create the group role of each XLab role (once per server: roles are the cluster's) and grant
    each its rights on this catalog's ``tables`` (core.catalog.rights). ``conn``: the owner's
    core.catalog.pg connection, inside a transaction."""
    from core.catalog import rights

    for role in rights.ROLES:
        conn.raw.execute(f"DO $$ BEGIN CREATE ROLE {rights.group_role(role)} NOLOGIN; "
                         "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    for statement in rights.grant_statements(tables):
        conn.raw.execute(statement)


def server_login(txn: WriteTransaction, name: str, role: str, password: str | None) -> None:
    """Make ``name`` a login role of the server, member of ``role``'s group alone (a role change
    moves it); ``password``: set (or changed) when given."""
    from psycopg import sql

    from core.catalog import rights

    raw = txn.conn.raw
    exists = raw.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone() is not None
    if not exists:
        if not password:
            raise XLabError(f"{name} is not a login of the lab's server yet: give them a password")
        raw.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(name), sql.Literal(password)))
    elif password is not None:
        raw.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(name), sql.Literal(password)))
    for other in rights.ROLES:
        raw.execute(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(rights.group_role(other)), sql.Identifier(name)))
    raw.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(rights.group_role(role)), sql.Identifier(name)))


def server_login_disabled(txn: WriteTransaction, name: str, disabled: bool) -> None:
    from psycopg import sql

    raw = txn.conn.raw
    if raw.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone() is not None:
        raw.execute(sql.SQL("ALTER ROLE {} " + ("NOLOGIN" if disabled else "LOGIN")).format(sql.Identifier(name)))
