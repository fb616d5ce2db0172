"""The audit log: chained as it is written (and for the entries of a catalog
from before the chain), tampering found by `xlab audit verify` after direct
edits of the SQLite file, filters, per-object history and exports."""

from __future__ import annotations

import csv
import json
import sqlite3
from datetime import date, timedelta

import pytest

from core.audit import log
from core.audit.chain import Anchor, verify_chain
from core.catalog import Catalog
from core.catalog.audit_chain import entry_hash
from core.cli import main
from core.errors import AuditError, CatalogError
from core.ingest.engine import watch
from core.labels import annotations as A
from core.labels.classes import rename_class
from core.progress import run_to_end
from tests.core.catalog_versions import catalog_before
from tests.core.ingest_helpers import drop, scan_png, tiny_lab

pytestmark = pytest.mark.both_backends


def chain_rows(catalog: Catalog) -> list[dict]:
    cursor = catalog.reader().execute("SELECT * FROM audit_log ORDER BY id")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, r)) for r in cursor.fetchall()]


def assert_chained(rows: list[dict]) -> None:
    prev = ""
    for row in rows:
        assert row["prev_hash"] == prev, row
        assert row["hash"] == entry_hash(prev, row), row
        prev = row["hash"]


@pytest.fixture
def lab(tmp_path):
    """A tiny lab with two ingested images, a box drawn, edited and reviewed by different people."""
    lab = tiny_lab(tmp_path / "lab")
    for seed in (1, 2):
        drop(lab, "T1", f"scan{seed}.png", scan_png(seed))
    list(watch(lab, once=True, workers=0, settle_s=0.05, poll_s=0.05))
    images = [r["id"] for r in lab.catalog.query("SELECT id FROM images ORDER BY id")]
    assert len(images) == 2
    box = A.add_box(lab.catalog, images[0], "knife_kitchen", 10, 10, 40, 30, actor="ana")
    A.edit_box(lab.catalog, box.annotation_id, coords=(12, 10, 42, 30), actor="ben")
    A.set_qa_state(lab.catalog, box.annotation_id, "accepted", actor="cleo")
    A.add_box(lab.catalog, images[1], "knife_kitchen", 5, 5, 20, 20, actor="ana")
    yield lab
    lab.close()


def verify_cli(root, capsys) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(["audit", "verify", "--lab", str(root), "--quiet"])
    return rc, capsys.readouterr().out


# -- the chain ---------------------------------------------------------------------------------


def test_every_entry_carries_the_hash_of_the_one_before(lab, capsys):
    rows = chain_rows(lab.catalog)
    assert len(rows) > 10 and rows[0]["prev_hash"] == ""
    assert_chained(rows)
    report = run_to_end(verify_chain(lab.catalog))
    assert report.ok and report.entries == len(rows) and report.head_id == rows[-1]["id"]
    rc, out = verify_cli(lab.paths.root, capsys)
    assert rc == 0 and out.startswith(f"audit log intact: {len(rows)} entries")


def test_an_entry_undone_with_its_transaction_leaves_the_chain_whole(lab):
    with pytest.raises(RuntimeError):
        with lab.catalog.write("ana") as txn:
            txn.audit("update", "images", 1, {"a": 1}, {"a": 2})
            raise RuntimeError("the rest of the change failed")
    with lab.catalog.write("ana") as txn:
        with pytest.raises(ValueError), txn.savepoint("part"):
            txn.audit("update", "images", 1, {"a": 1}, {"a": 3})
            raise ValueError
        txn.audit("update", "images", 1, {"a": 1}, {"a": 4})
    assert_chained(chain_rows(lab.catalog))


def test_migration_0010_chains_the_entries_written_before_it_and_keeps_the_log_append_only(lab, tmp_path):
    source = lab.catalog.path
    old = catalog_before(source, tmp_path / "before.sqlite", "0010_audit_chain")
    conn = sqlite3.connect(old)
    written = conn.execute("SELECT id, at, actor, action, entity, entity_key, before_json, after_json"
                           " FROM audit_log ORDER BY id").fetchall()
    conn.close()
    catalog = Catalog.open(old)
    try:
        rows = chain_rows(catalog)
        assert [tuple(r[k] for k in ("id", "at", "actor", "action", "entity", "entity_key", "before_json",
                                     "after_json")) for r in rows] == written
        assert_chained(rows)
        with pytest.raises(CatalogError, match="append-only"):
            with catalog.write() as txn:
                txn.execute("UPDATE audit_log SET actor = 'x' WHERE id = 1")
        with catalog.write("dan") as txn:  # new entries go on from the filled chain
            txn.audit("update", "images", 1, None, {"x": 1})
        assert_chained(chain_rows(catalog))
    finally:
        catalog.close()


def _tamper(path, *statements: str) -> None:
    """Edit the catalog file behind XLab's back, as someone with the file and sqlite3 could."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
    conn.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    for statement in statements:
        conn.execute(statement)
    conn.close()


TAMPERING = {
    "changed": (["UPDATE audit_log SET actor = 'mallory' WHERE id = 5"], 5,
                "its content does not match its hash: it was changed after it was written"),
    "changed_after": (["UPDATE audit_log SET after_json = '{\"qa_state\": \"rejected\"}' WHERE id = "
                       "(SELECT MAX(id) FROM audit_log WHERE action = 'review')"], None,
                      "its content does not match its hash"),
    "removed": (["DELETE FROM audit_log WHERE id = 7"], 8, "entry 7 before it is missing: removed from the log"),
    "forged": (["INSERT INTO audit_log (at, actor, action, entity, entity_key, after_json) VALUES "
                "('2026-01-01T00:00:00.000+00:00', 'mallory', 'publish', 'quota_plan', 'p v1', '{}')"], "new",
               "it has no hash: it was added to the catalog file outside XLab"),
    "forged_with_a_copied_hash": (
        ["INSERT INTO audit_log (at, actor, action, entity, entity_key, prev_hash, hash) "
         "SELECT at, 'mallory', action, entity, entity_key, prev_hash, hash FROM audit_log WHERE id = 3"], "new",
        "its content does not match its hash"),
    "replaced": (["DELETE FROM audit_log WHERE id = 6",
                  "INSERT INTO audit_log (id, at, actor, action, entity, entity_key, prev_hash, hash) SELECT 6, at, "
                  "actor, action, entity, entity_key, prev_hash, hash FROM audit_log WHERE id = 2"], 6,
                 "its content does not match its hash"),
    "first_removed": (["DELETE FROM audit_log WHERE id = 1"], 2, "entry 1 before it is missing"),
}


@pytest.mark.parametrize("how", list(TAMPERING))
def test_tampering_with_the_file_is_found_naming_the_first_broken_entry(lab, capsys, how):
    statements, broken, problem = TAMPERING[how]
    before = chain_rows(lab.catalog)
    _tamper(lab.catalog.path, *statements)
    if broken == "new":
        broken = before[-1]["id"] + 1
    elif broken is None:
        broken = next(r["id"] for r in reversed(before) if r["action"] == "review")
    rc, out = verify_cli(lab.paths.root, capsys)
    assert rc == 1
    first = out.splitlines()[0]
    assert first.startswith(f"audit log TAMPERED: entry {broken}: {problem}"), out
    report = run_to_end(verify_chain(lab.catalog))
    assert not report.ok and report.breaks[0].entry_id == broken
    # One problem per tampering; a replaced entry also carries a hash the next one does not follow.
    assert [b.entry_id for b in report.breaks] == ([broken, broken + 1] if how == "replaced" else [broken])


def test_entries_cut_off_the_end_are_found_against_the_backup_anchor(lab, capsys):
    head = chain_rows(lab.catalog)[-1]
    anchor = Anchor(head["id"], head["hash"], "2026-01-01", "the backup of test")
    assert run_to_end(verify_chain(lab.catalog, anchor)).ok
    _tamper(lab.catalog.path, f"DELETE FROM audit_log WHERE id >= {head['id'] - 1}")
    assert run_to_end(verify_chain(lab.catalog)).ok  # the chain alone cannot see a cut end
    report = run_to_end(verify_chain(lab.catalog, anchor))
    assert not report.ok and report.breaks[0].entry_id == head["id"]
    assert "it is missing, yet the backup of test recorded it" in report.summary()


def test_the_json_report_says_what_broke(lab, capsys):
    _tamper(lab.catalog.path, "DELETE FROM audit_log WHERE id = 4")
    capsys.readouterr()
    assert main(["audit", "verify", "--lab", str(lab.paths.root), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["breaks"] == [{"id": 5, "problem": "entry 4 before it is missing: "
                                                                              "removed from the log"}]


# -- the viewer: filters, history, export ----------------------------------------------------------


def test_filters_by_user_object_action_and_dates(lab):
    everyone = log.entries(lab.catalog, limit=1000)
    assert [e["id"] for e in everyone] == sorted((e["id"] for e in everyone), reverse=True)
    by_ben = log.entries(lab.catalog, log.AuditFilter(user="ben"))
    assert [(e["action"], e["entity"]) for e in by_ben] == [("edit", "annotations")]
    assert "x0: 10.0 → 12.0" in by_ben[0]["change"] and by_ben[0]["before"]["x0"] == 10.0
    reviews = log.entries(lab.catalog, log.AuditFilter(entity="annotation", action="review"))
    assert [e["actor"] for e in reviews] == ["cleo"] and reviews[0]["after"] == {"qa_state": "accepted"}
    box = reviews[0]["entity_key"]
    assert {e["action"] for e in log.entries(lab.catalog, log.AuditFilter(entity="annotations", key=box))} == {
        "add", "edit", "review"}
    today = date.today()
    assert len(log.entries(lab.catalog, log.AuditFilter(since=str(today), until=str(today)), 1000)) == len(everyone)
    assert log.entries(lab.catalog, log.AuditFilter(since=str(today + timedelta(days=1)))) == []
    assert log.entries(lab.catalog, log.AuditFilter(until=str(today - timedelta(days=1)))) == []
    with pytest.raises(AuditError, match="--since wants a date"):
        log.entries(lab.catalog, log.AuditFilter(since="last tuesday"))
    with pytest.raises(AuditError, match="not before --until"):
        log.entries(lab.catalog, log.AuditFilter(since=str(today), until=str(today - timedelta(days=2))))
    assert log.choices(lab.catalog)["user"] == sorted({e["actor"] for e in everyone})


def test_pages_walk_the_whole_log_both_ways(lab):
    everyone = [e["id"] for e in log.entries(lab.catalog, limit=1000)]
    pages, before = [], None
    while True:
        page = log.entries(lab.catalog, limit=3, before_id=before)
        if not page:
            break
        pages.append([e["id"] for e in page])
        before = page[-1]["id"]
    assert [i for p in pages for i in p] == everyone and all(len(p) == 3 for p in pages[:-1])
    # Back from the last page: the page before it again.
    assert [e["id"] for e in log.entries(lab.catalog, limit=3, after_id=pages[-1][0])] == pages[-2]


def test_an_images_history_holds_its_boxes_and_a_class_its_former_names(lab):
    image = lab.catalog.query_one("SELECT MIN(id) AS id FROM images")["id"]
    history = log.history(lab.catalog, "image", image)
    assert [(e["actor"], e["action"]) for e in history] == [("ana", "add"), ("ben", "edit"), ("cleo", "review")]
    assert all(e["entity"] == "annotations" for e in history)  # not the other image's box
    rename_class(lab.catalog, "knife_kitchen", "knife_chef", actor="dan")
    rename_class(lab.catalog, "knife_chef", "knife_cook", actor="eve")
    history = log.history(lab.catalog, "threat_class", "knife_cook")
    assert [e["entity_key"] for e in history][:1] == ["knife_kitchen"]  # created under its first name
    assert [(e["actor"], e["before"], e["after"]) for e in history if e["action"] == "update"
            and e["entity"] == "threat_classes"] == [
        ("dan", {"name": "knife_kitchen"}, {"name": "knife_chef"}),
        ("eve", {"name": "knife_chef"}, {"name": "knife_cook"})]
    with pytest.raises(AuditError, match="by its id"):
        log.history(lab.catalog, "images", "scan1.png")


def test_a_plans_history_holds_its_versions_and_a_cells_override(demo_lab, capsys):
    from core.quota.plans import CellKey, override_cell

    plan = demo_lab.catalog.query_one("SELECT name FROM quota_plans")["name"]
    key = CellKey("pistol", "hard_case", "low", "SX-100", "flat")
    override_cell(demo_lab.catalog, plan, key, 7, actor="mia")
    history = log.history(demo_lab.catalog, "quota_plan", plan)
    # Every version: the override drafted v2.
    assert [(e["entity_key"], e["action"]) for e in history] == [
        (f"{plan} v1", "create"), (f"{plan} v1", "publish"), (f"{plan} v2", "create")]
    cells = log.history(demo_lab.catalog, "quota_cell", f"{plan} v2")
    assert [(e["actor"], e["before"], e["after"]) for e in cells] == [("mia", {"test_target": None},
                                                                       {"test_target": 7})]
    capsys.readouterr()
    assert main(["audit", "history", "quota_cell", f"{plan} v2", "--lab", str(demo_lab.paths.root)]) == 0
    out = capsys.readouterr().out
    assert "mia" in out and "override_cell" in out and max(map(len, out.splitlines())) <= 100


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_export_writes_the_filtered_entries_oldest_first(lab, tmp_path, suffix):
    path = tmp_path / "out" / f"audit{suffix}"
    report = run_to_end(log.export(lab.catalog, log.AuditFilter(user="ana"), path))
    expected = list(reversed(log.entries(lab.catalog, log.AuditFilter(user="ana"))))
    assert report.entries == len(expected) == 2
    if suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    else:
        from openpyxl import load_workbook

        sheet = load_workbook(path, read_only=True).active
        values = list(sheet.values)
        rows = [dict(zip(values[0], r)) for r in values[1:]]
    assert [int(r["id"]) for r in rows] == [e["id"] for e in expected]
    assert json.loads(rows[0]["after"])["x0"] == 10.0 and rows[0]["hash"] == expected[0]["hash"]
    assert list(path.parent.iterdir()) == [path]  # no temporary file left


def test_a_cancelled_export_leaves_no_file_and_bad_names_are_refused(lab, tmp_path):
    from core.catalog import audit_store

    with lab.catalog.write("bulk") as txn:
        for i in range(2500):  # more than one export batch
            txn.audit("update", "images", i, {"n": i}, {"n": i + 1})
    out = tmp_path / "out"
    steps = log.export(lab.catalog, log.AuditFilter(), out / "all.csv")
    next(steps)
    next(steps)
    steps.close()
    assert list(out.iterdir()) == []
    assert len(next(audit_store.ascending(lab.catalog, audit_store.Conditions()))) == 2000
    with pytest.raises(AuditError, match="export to .csv or .xlsx"):
        run_to_end(log.export(lab.catalog, log.AuditFilter(), out / "audit.pdf"))


def test_the_cli_lists_with_filters_and_pages(lab, capsys):
    root = str(lab.paths.root)
    capsys.readouterr()
    assert main(["audit", "list", "--lab", root, "--by", "ana", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["actor"] for r in rows} == {"ana"} and len(rows) == 2
    assert main(["audit", "list", "--lab", root, "--limit", "2"]) == 0
    out = capsys.readouterr().out
    assert "newest 2 shown; older ones: --before" in out and max(map(len, out.splitlines())) <= 100
    assert main(["audit", "list", "--lab", root, "--entity", "class", "--since", "tomorrow"]) == 2
    assert "--since wants a date" in capsys.readouterr().err
    assert main(["audit", "show", "9999", "--lab", root]) == 2
    assert "no audit entry 9999" in capsys.readouterr().err
    assert main(["audit", "export", "-o", str(lab.paths.root / "a.csv"), "--lab", root, "--action", "review",
                 "--quiet"]) == 0
    assert "wrote 1 entries" in capsys.readouterr().out
