"""The catalog on a PostgreSQL server (core.catalog.pg): the SQL translation, rows and cursors as
sqlite3 gives them, errors a lab manager can act on, a dropped connection, one writer at a time
across processes, and changes reaching another station. The translation tests need no server;
the others skip with one reason where there is none (tests.pg)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

import pytest

from core.catalog import Catalog
from core.catalog.pg import translate
from core.errors import CatalogError
from tests.pg import database_url, fresh_database, postgres_url, skip_reason

pytestmark = pytest.mark.both_backends

needs_server = pytest.mark.skipif(postgres_url() is None, reason=skip_reason())


# -- translation (no server) ----------------------------------------------------------------

@pytest.mark.parametrize(("sql", "params", "expected"), [
    ("SELECT a FROM t WHERE b = ? AND c = ?", "qmark", "SELECT a FROM t WHERE b = %s AND c = %s"),
    # a '?' or ':x' inside a string literal or a quoted name is text, not a parameter
    ("SELECT '?', \"a?\" FROM t WHERE b = ?", "qmark", "SELECT '?', \"a?\" FROM t WHERE b = %s"),
    ("SELECT 'it''s ?' || ?", "qmark", "SELECT 'it''s ?' || %s"),
    ("SELECT * FROM t WHERE at > '10:30' AND id = :id", "named", "SELECT * FROM t WHERE at > '10:30' AND id = %(id)s"),
    ("SELECT CAST(x AS TEXT)::text FROM t WHERE y = :y", "named", "SELECT CAST(x AS TEXT)::text FROM t WHERE y = %(y)s"),
    # psycopg reads % only when there are parameters: doubled then, everywhere, literals included
    ("SELECT 7 % 3 FROM t WHERE name LIKE 'a%' AND id = ?", "qmark",
     "SELECT 7 %% 3 FROM t WHERE name LIKE 'a%%' AND id = %s"),
    ("SELECT 7 % 3 FROM t WHERE name LIKE 'a%'", "none", "SELECT 7 % 3 FROM t WHERE name LIKE 'a%'"),
    ("SELECT IFNULL(a, 'IFNULL(') FROM t", "none", "SELECT COALESCE(a, 'IFNULL(') FROM t"),
    ("SELECT MAX(a, b), MAX(c) FROM t", "none", "SELECT GREATEST(a, b), MAX(c) FROM t"),
    ("SELECT group_concat(id) FROM t", "none", "SELECT string_agg(CAST(id AS TEXT), ',') FROM t"),
    # text AS BLOB is its bytes; a real AS INTEGER truncates (PostgreSQL would round); others stay
    ("SELECT CAST(group_concat(h, '') AS BLOB) FROM t", "none",
     "SELECT convert_to(string_agg(CAST(h AS TEXT), ''), 'UTF8') FROM t"),
    ("SELECT CAST(a * 1.5 AS INTEGER), CAST(b AS REAL) FROM t", "none",
     "SELECT CAST(TRUNC(a * 1.5) AS BIGINT), CAST(b AS REAL) FROM t"),
    ("INSERT OR IGNORE INTO t (a) VALUES (?)", "qmark", "INSERT INTO t (a) VALUES (%s) ON CONFLICT DO NOTHING"),
    ("DELETE FROM temp.pick", "none", "DELETE FROM pg_temp.pick"),
    ("SELECT a FROM t WHERE b IS ?", "qmark", "SELECT a FROM t WHERE b IS NOT DISTINCT FROM %s"),
    # words in a literal stay as they are
    ("SELECT 'this is it' FROM t WHERE a IS NULL", "none", "SELECT 'this is it' FROM t WHERE a IS NULL"),
    ("BEGIN DEFERRED", "none", "BEGIN ISOLATION LEVEL REPEATABLE READ"),
])
def test_sqlite_sql_is_translated_for_the_server(sql, params, expected):
    assert " ".join(translate(sql, params).split()) == expected


# -- the adapter on a server ------------------------------------------------------------------

@pytest.fixture
def server_catalog():
    if postgres_url() is None:
        pytest.skip(skip_reason())
    with fresh_database("xlab_test", migrated=True) as url:
        catalog = Catalog.open(url)
        yield catalog
        catalog.close()


def test_rows_answer_by_position_and_by_name_and_sums_come_back_as_sqlite_gives_them(server_catalog):
    row = server_catalog.query_one("SELECT 1 AS a, 'x' AS b")
    assert (row[0], row["b"], tuple(row), row.keys(), dict(row)) == (1, "x", (1, "x"), ["a", "b"], {"a": 1, "b": "x"})
    with pytest.raises(IndexError, match="no such column: c"):
        row["c"]
    sums = server_catalog.query_one("SELECT SUM(v) AS s, AVG(v) AS m, SUM(v) / 2.0 AS h FROM (VALUES (1), (2)) AS t(v)")
    assert (sums["s"], sums["m"], sums["h"]) == (3, 1.5, 1.5) and type(sums["s"]) is int


def test_percent_signs_and_question_marks_in_literals_run_as_written(server_catalog):
    reader = server_catalog.reader()
    assert tuple(reader.execute("SELECT '100%', 7 % 3, '?'").fetchone()) == ("100%", 1, "?")
    assert tuple(reader.execute("SELECT '100%', 7 % 3, '?', ?", ("p",)).fetchone()) == ("100%", 1, "?", "p")
    assert tuple(reader.execute("SELECT ':x %', :x", {"x": 5}).fetchone()) == (":x %", 5)


def test_cursors_work_as_sqlite3s(server_catalog):
    with server_catalog.write() as txn:
        first = txn.execute("INSERT INTO luggage_types (name) VALUES (?)", ("tray",)).lastrowid
        txn.executemany("INSERT INTO luggage_types (name) VALUES (?)", [("crate",), ("bin",), ("box",)])
        assert txn.execute("UPDATE luggage_types SET name = name || '!' WHERE id > ?", (first,)).rowcount == 3
        assert txn.execute("INSERT INTO luggage_types (name) VALUES ('case')").lastrowid == first + 4
    cursor = server_catalog.reader().execute("SELECT id, name FROM luggage_types ORDER BY id")
    assert [d[0] for d in cursor.description] == ["id", "name"]
    assert [r["name"] for r in cursor.fetchmany(2)] == ["tray", "crate!"]
    assert [r[1] for r in cursor] == ["bin!", "box!", "case"]
    assert cursor.fetchone() is None and cursor.fetchall() == []


def test_refusals_are_the_catalogs_as_on_sqlite_and_bugs_stay_loud(server_catalog):
    import psycopg

    with server_catalog.write() as txn:
        txn.execute("INSERT INTO luggage_types (name) VALUES ('tray')")
    with pytest.raises(CatalogError, match="^the catalog refused the change: duplicate key"):
        with server_catalog.write() as txn:
            txn.execute("INSERT INTO luggage_types (name) VALUES ('tray')")
    with pytest.raises(psycopg.errors.UndefinedTable):
        server_catalog.query("SELECT * FROM no_such_table")
    assert [r["name"] for r in server_catalog.query("SELECT name FROM luggage_types")] == ["tray"]


@needs_server
@pytest.mark.parametrize(("change", "says"), [
    (lambda url: url.replace(":5432", ":1"), "is the server running"),
    (lambda url: database_url(url, "xlab_no_such_database"), "the database is not on that server"),
    (lambda url: url.replace("postgres@", "xlab_no_such_user@"), "the server has no such user"),
])
def test_a_catalog_that_cannot_be_reached_says_what_to_check(change, says):
    url = change(postgres_url())
    with pytest.raises(CatalogError, match=f"^cannot reach the lab's catalog server .*{says}"):
        Catalog.open(url)


def _terminate(pid: int) -> None:
    import psycopg

    with psycopg.connect(postgres_url(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))


def test_a_dropped_connection_fails_one_action_and_the_next_connects_again(server_catalog):
    catalog = server_catalog
    catalog.query("SELECT 1")
    _terminate(catalog._writer.backend_pid)
    _terminate(catalog.reader().backend_pid)
    with pytest.raises(CatalogError, match="lost the connection to the lab's catalog server .*nothing of the change"):
        with catalog.write() as txn:
            txn.execute("INSERT INTO luggage_types (name) VALUES ('tray')")
    with pytest.raises(CatalogError, match="lost the connection"):
        catalog.query("SELECT 1")
    # inside a transaction cut off, nothing more runs until the caller's ROLLBACK
    writer = catalog._writer
    writer.execute("BEGIN")
    writer.execute("INSERT INTO luggage_types (name) VALUES ('lost')")
    _terminate(writer.backend_pid)
    with pytest.raises(CatalogError, match="nothing of the change was kept"):
        writer.execute("INSERT INTO luggage_types (name) VALUES ('lost too')")
    with pytest.raises(CatalogError, match="in the middle of a change"):
        writer.execute("INSERT INTO luggage_types (name) VALUES ('outside any transaction')")
    writer.execute("ROLLBACK")
    with catalog.write() as txn:
        txn.execute("INSERT INTO luggage_types (name) VALUES ('crate')")
    assert [r["name"] for r in catalog.query("SELECT name FROM luggage_types")] == ["crate"]


def test_after_the_listener_was_dropped_every_table_is_named_changed(server_catalog):
    catalog = server_catalog
    _terminate(catalog._listener.backend_pid)
    outcomes = []
    for _ in range(50):
        try:
            change = catalog.outside_change()
        except CatalogError as exc:
            outcomes.append(str(exc))
            continue
        if change is not None:
            break
        time.sleep(0.05)
    assert change is not None and {"images", "quota_cells", "audit_log"} <= change.tables
    assert all("lost the connection" in o for o in outcomes) and len(outcomes) <= 1
    other = Catalog.open(catalog.target)
    try:
        with other.write() as txn:
            txn.execute("INSERT INTO poses (name) VALUES ('upside_down')")
        assert _wait_for_outside(catalog).tables == {"poses"}
    finally:
        other.close()


# -- one writer at a time, across processes ------------------------------------------------

_APPENDER = """
import sys
from core.catalog import Catalog
catalog = Catalog.open(sys.argv[1])
for n in range(int(sys.argv[3])):
    with catalog.write(actor=sys.argv[2]) as txn:
        txn.audit("test", "entry", f"{sys.argv[2]}-{n}")
catalog.close()
"""


def test_processes_appending_to_the_audit_log_at_once_keep_one_chain(new_catalog):
    """Each entry reads the last one and chains to it: only one writer at a time (SQLite's
    BEGIN IMMEDIATE; the server's advisory lock) keeps two from chaining to the same entry."""
    from core.audit.chain import verify_chain
    from core.progress import run_to_end

    target = new_catalog()
    Catalog.open(target).close()
    procs = [subprocess.Popen([sys.executable, "-c", _APPENDER, str(target), f"station-{i}", "40"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(4)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err for _, err in results]
    catalog = Catalog.open(target)
    try:
        report = run_to_end(verify_chain(catalog))
        assert report.ok and report.entries == 160, report.summary()
        per_station = {r[0]: r[1] for r in catalog.query("SELECT actor, COUNT(*) FROM audit_log GROUP BY actor")}
        assert per_station == {f"station-{i}": 40 for i in range(4)}
    finally:
        catalog.close()


# -- changes reach other stations --------------------------------------------------------------

def _wait_for_outside(catalog: Catalog, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        change = catalog.outside_change()
        if change is not None:
            return change
        time.sleep(0.005)
    raise AssertionError(f"no change arrived in {timeout} s")


def test_another_stations_writes_are_seen_and_our_own_never_come_back(new_catalog, capsys):
    """Two Catalogs on one catalog stand for two stations. Prints how long a committed write
    took to be seen by the other (polled as the window does, here every 5 ms)."""
    target = new_catalog()
    dashboard, station = Catalog.open(target), Catalog.open(target)
    try:
        latencies = []
        for n in range(20):
            with station.write() as txn:
                txn.execute("INSERT INTO luggage_types (name) VALUES (?)", (f"type-{n}",))
            committed = time.perf_counter()
            change = _wait_for_outside(dashboard)
            latencies.append(time.perf_counter() - committed)
            assert change.tables == {"luggage_types"} and change.outside
        with dashboard.write() as txn:
            txn.execute("INSERT INTO poses (name) VALUES ('upside_down')")
        time.sleep(0.1)
        assert dashboard.outside_change() is None
        assert _wait_for_outside(station).tables == {"poses"}
    finally:
        dashboard.close()
        station.close()
    with capsys.disabled():
        print(f"\n[{dashboard.dialect}] committed -> seen at another station: "
              f"p50 {statistics.median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms")
