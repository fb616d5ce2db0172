"""Users, roles and signing in: every forbidden action of every role is refused, through the CLI
and through core, and nothing is changed by a refused one."""

from __future__ import annotations

import pytest

from core.catalog.db import current_actor
from core.catalog.rights import PERMISSIONS, ROLES, PermissionDeniedError, grant_statements
from core.cli import main
from core.errors import XLabError
from core.lab import Lab
from core.resources import resource
from core.users import add_user, change_user, sign_in

PINS = {"tom": "1111", "mia": "2222", "eli": "3333"}


@pytest.fixture
def staffed(demo_lab, catalog_backend):
    """The demo lab with an administrator (this login) and one user of each other role, with PINs."""
    if catalog_backend == "postgresql":
        pytest.skip("PINs and OS logins are a one-file lab's sign-in; on a server each user is a login role "
                    "(test_the_server_refuses_each_role_by_its_grants_what_core_refuses)")
    add_user(demo_lab, current_actor(), "administrator")
    add_user(demo_lab, "tom", "technician", pin=PINS["tom"])
    add_user(demo_lab, "mia", "manager", pin=PINS["mia"])
    add_user(demo_lab, "eli", "ml_engineer", pin=PINS["eli"])
    return demo_lab


def audit_count(lab: Lab) -> int:
    return lab.catalog.query_one("SELECT COUNT(*) FROM audit_log")[0]


def as_user(monkeypatch, name: str) -> list[str]:
    monkeypatch.setenv("XLAB_PIN", PINS[name])
    return ["--user", name]


def test_an_open_lab_lets_everyone_do_everything_until_its_first_administrator(demo_lab):
    who = sign_in(demo_lab)
    assert who.role is None and all(who.may(p) for p in PERMISSIONS)
    with pytest.raises(XLabError, match="first user of a lab must be an administrator"):
        add_user(demo_lab, "tom", "technician")
    add_user(demo_lab, who.name, "administrator")  # this login (on a server: the server login)
    assert demo_lab.catalog.identity.role == "administrator"  # signed in again as the lab's administrator


def _kpi_file(tmp_path):
    path = tmp_path / "kpi.csv"
    path.write_text("class,run,evaluated_at,positives,detected,negatives,false_alarms\n"
                    "pistol,run-1,2026-11-10,400,372,1000,30\n")
    return str(path)


# (role, command, permission it needs)
FORBIDDEN = [
    ("tom", ["settings", "--monthly-target", "1000"], "settings"),
    ("tom", ["inventory", "import", "{inventory}"], "inventory"),
    ("tom", ["quota", "override", "demo-test-set", "--class", "pistol", "--luggage-type", "carry_on",
             "--clutter", "low", "--scanner-model", "DV-100", "--test", "5"], "quotas"),
    ("tom", ["kpi", "import", "{kpi}"], "kpis"),
    ("tom", ["dataset", "freeze", "t", "--rule", "test"], "datasets"),
    ("tom", ["user", "add", "zed", "--role", "technician"], "users"),
    ("mia", ["dataset", "freeze", "t", "--rule", "test"], "datasets"),
    ("mia", ["user", "set", "tom", "--role", "manager"], "users"),
    ("eli", ["settings", "--monthly-target", "1000"], "settings"),
    ("eli", ["inventory", "import", "{inventory}"], "inventory"),
    ("eli", ["quota", "override", "demo-test-set", "--class", "pistol", "--luggage-type", "carry_on",
             "--clutter", "low", "--scanner-model", "DV-100", "--test", "5"], "quotas"),
    ("eli", ["user", "add", "zed", "--role", "technician"], "users"),
]


@pytest.mark.parametrize(("name", "command", "permission"), FORBIDDEN,
                         ids=[f"{n}-{' '.join(c[:2])}" for n, c, _ in FORBIDDEN])
def test_each_role_is_refused_what_it_may_not_do_through_the_cli(staffed, monkeypatch, tmp_path, capsys,
                                                                 name, command, permission):
    root = str(staffed.paths.root)
    argv = [a.replace("{inventory}", str(resource("demo", "inventory.yaml"))).replace("{kpi}", _kpi_file(tmp_path))
            for a in command]
    before = audit_count(staffed)
    capsys.readouterr()
    assert main([*as_user(monkeypatch, name), *argv, "--lab", root]) == 2
    err = capsys.readouterr().err
    assert f"{name} is signed in as" in err and "may not" in err and PERMISSIONS[permission][0] in err, err
    assert audit_count(staffed) == before  # nothing changed


def test_each_role_does_what_it_may(staffed, monkeypatch, tmp_path, capsys):
    root = str(staffed.paths.root)
    assert main([*as_user(monkeypatch, "mia"), "settings", "--monthly-target", "1000", "--lab", root]) == 0
    assert main([*as_user(monkeypatch, "eli"), "kpi", "import", _kpi_file(tmp_path), "--lab", root]) == 0
    assert main([*as_user(monkeypatch, "tom"), "simulate", "--scanner", "SCN-A", "--count", "2", "--rate", "0",
                 "--lab", root, "--quiet"]) == 0
    drop = staffed.paths.root / "drop" / "SCN-A"
    assert main([*as_user(monkeypatch, "tom"), "ingest", "import", str(drop), "--scanner", "SCN-A", "--lab", root,
                 "--quiet", "--workers", "0"]) == 0
    actors = {r[0] for r in staffed.catalog.query("SELECT DISTINCT actor FROM audit_log")}
    assert {"mia", "eli"} <= actors
    assert staffed.catalog.query_one("SELECT COUNT(*) FROM images")[0] == 2


def test_signing_in_wants_the_users_pin_from_another_login(staffed, monkeypatch, capsys):
    root = str(staffed.paths.root)
    assert main(["--user", "tom", "whoami", "--lab", root]) == 2
    assert "needs tom's PIN" in capsys.readouterr().err
    monkeypatch.setenv("XLAB_PIN", "9999")
    assert main(["--user", "tom", "whoami", "--lab", root]) == 2
    assert "wrong PIN for tom" in capsys.readouterr().err
    assert main([*as_user(monkeypatch, "tom"), "whoami", "--lab", root]) == 0
    assert capsys.readouterr().out.startswith("tom: technician")
    # A user without a PIN signs in only from their own login.
    add_user(staffed, "ann", "manager")
    with pytest.raises(PermissionDeniedError, match="ann has no PIN"):
        Lab.open(staffed.paths.root, user="ann").close()
    # A disabled user signs in no more; the last administrator stays one.
    change_user(staffed, "tom", disabled=True)
    with pytest.raises(PermissionDeniedError, match="tom is disabled"):
        Lab.open(staffed.paths.root, user="tom", pin=PINS["tom"]).close()
    with pytest.raises(XLabError, match="last administrator"):
        change_user(staffed, current_actor(), role="manager")


def test_someone_who_is_not_a_user_reads_but_does_not_write(staffed, capsys):
    root = str(staffed.paths.root)
    assert main(["--user", "ghost", "quota", "status", "--lab", root]) == 0
    assert main(["--user", "ghost", "settings", "--monthly-target", "5", "--lab", root]) == 2
    assert "ghost is not a user of this lab" in capsys.readouterr().err


def test_core_checks_every_write_against_the_role_whatever_called_it(staffed):
    """A write made without asking first (a script calling the catalog) is refused as it commits,
    and rolled back whole."""
    with Lab.open(staffed.paths.root, user="tom", pin=PINS["tom"]) as lab:
        settings = lab.catalog.query("SELECT key, value_json FROM lab_settings ORDER BY key")
        with pytest.raises(PermissionDeniedError, match="may not change the lab's settings"):
            with lab.catalog.write() as txn:
                txn.execute("INSERT INTO lab_settings (key, value_json, changed_at, changed_by) "
                            "VALUES ('monthly_target', '1', '2026-12-07', 'tom') "
                            "ON CONFLICT (key) DO UPDATE SET value_json = '1'")
        assert lab.catalog.query("SELECT key, value_json FROM lab_settings ORDER BY key") == settings
        with pytest.raises(PermissionDeniedError, match="may not add users"):
            with lab.catalog.write() as txn:
                txn.execute("UPDATE users SET role = 'administrator' WHERE name = 'tom'")
    assert staffed.catalog.query_one("SELECT role FROM users WHERE name = 'tom'")[0] == "technician"


def test_every_catalog_table_has_its_rights(staffed):
    """A table added by a migration is named by a permission or derived; else only an administrator
    could write it (and the server would grant it nobody)."""
    from core.catalog.rights import DERIVED_TABLES, _TABLE_PERMISSION

    tables = {r[0] for r in staffed.catalog.query("SELECT name FROM sqlite_master WHERE type = 'table' "
                                                  "AND name NOT LIKE 'sqlite_%' AND name != '_sqlite_migrations'")}
    assert tables - set(_TABLE_PERMISSION) - set(DERIVED_TABLES) == set()
    grants = grant_statements(sorted(tables))
    for role in ROLES:
        assert f"GRANT INSERT ON audit_log TO xlab_{role}" in grants
    assert "GRANT INSERT, UPDATE, DELETE ON quota_cells TO xlab_technician" not in grants
    assert "GRANT INSERT, UPDATE, DELETE ON quota_cells TO xlab_manager" in grants


# -- the server enforces the same rights ------------------------------------------------------------

from tests.pg import postgres_url, skip_reason  # noqa: E402 - the server part of this file


@pytest.mark.skipif(postgres_url() is None, reason=skip_reason())
def test_the_server_refuses_each_role_by_its_grants_what_core_refuses(tmp_path):
    """Direct SQL with a technician's or an ML engineer's credentials: the server's grants refuse
    what the window and the CLI refuse (the audit log takes inserts only, from everyone)."""
    import uuid
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    from tests.pg import fresh_database

    suffix = uuid.uuid4().hex[:8]
    tech, ml, manager = f"xt_{suffix}", f"xm_{suffix}", f"xg_{suffix}"
    try:
        with fresh_database("xlab_roles", migrated=True) as url:
            with Lab.init(tmp_path / "lab", catalog=url) as lab:
                owner = lab.catalog.identity.name
                add_user(lab, owner, "administrator")
                add_user(lab, tech, "technician", password="tech-pw")
                add_user(lab, ml, "ml_engineer", password="ml-pw")
                add_user(lab, manager, "manager", password="mg-pw")
                with lab.catalog.write() as txn:
                    txn.audit("note", "test", "1", None, {"by": "owner"})

            def as_login(name: str, password: str):
                parts = urlsplit(url)
                return psycopg.connect(urlunsplit(parts._replace(netloc=f"{name}:{password}@{parts.hostname}:"
                                                                        f"{parts.port or 5432}")), autocommit=True)

            refused = {
                tech: ["UPDATE quota_cells SET test_target = 1",
                       "INSERT INTO lab_settings (key, value_json, changed_at, changed_by) VALUES ('x', '1', 'now', 'me')",
                       "UPDATE users SET role = 'administrator'",
                       "INSERT INTO dataset_versions (name) VALUES ('x')",
                       "UPDATE audit_log SET actor = 'someone else'",
                       "DELETE FROM audit_log",
                       "TRUNCATE audit_log"],
                ml: ["UPDATE quota_plans SET name = 'x'",
                     "UPDATE threat_classes SET name = name",
                     "UPDATE audit_log SET actor = 'someone else'",
                     "DELETE FROM audit_log"],
                manager: ["INSERT INTO dataset_versions (name) VALUES ('x')",
                          "UPDATE runs SET state = 'done'",
                          "UPDATE users SET role = 'administrator'",
                          "DELETE FROM audit_log"],
            }
            for name, password in ((tech, "tech-pw"), (ml, "ml-pw"), (manager, "mg-pw")):
                with as_login(name, password) as conn:
                    assert conn.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0] >= 4  # reads everything
                    for statement in refused[name]:
                        with pytest.raises(psycopg.errors.InsufficientPrivilege):
                            conn.execute(statement)
            # Through XLab, the same refusal comes from core first, with who may.
            with Lab.open(tmp_path / "lab", user=tech, pin="tech-pw") as lab:
                assert lab.catalog.identity.role == "technician"
                from core.dashboard.production import set_production_settings

                with pytest.raises(PermissionDeniedError, match="ask a manager or an administrator"):
                    set_production_settings(lab.catalog, monthly_target=5)
            # ... and what a role may do, it does on the server (an ingest-side write of a technician).
            with Lab.open(tmp_path / "lab", user=tech, pin="tech-pw") as lab:
                with lab.catalog.write() as txn:
                    txn.audit("note", "test", "2", None, {"by": tech})
                assert lab.catalog.query_one("SELECT actor FROM audit_log ORDER BY id DESC LIMIT 1")[0] == tech
    finally:
        with psycopg.connect(postgres_url(), autocommit=True) as admin:
            for name in (tech, ml, manager):
                admin.execute(f'DROP ROLE IF EXISTS "{name}"')


def test_an_ingest_lock_names_the_signed_in_user(demo_lab, monkeypatch):
    """Another station's window says who ingests: the lab user the ingest process signed in as."""
    from core.ingest.lock import IngestLock, lab_ingest_owners

    monkeypatch.setenv("XLAB_USER", "ana")
    lock = IngestLock.acquire(demo_lab.paths.root, ["SCN-A"])
    try:
        assert lab_ingest_owners(demo_lab)["SCN-A"].user == "ana"
    finally:
        lock.release()
