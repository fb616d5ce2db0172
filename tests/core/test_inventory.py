import pytest

from core.catalog.records import counts
from core.errors import InputFileError
from core.inventory import export_inventory, import_inventory
from core.inventory.yamlfile import parse_inventory

pytestmark = pytest.mark.both_backends

GOOD = """\
threat_families:
  - name: knives
threat_classes:
  - name: knife_folding_open
    family: knives
threat_items:
  - barcode: "00123"
    class: knife_folding_open
luggage_types:
  - name: hard_case
bags:
  - barcode: BG-1
    luggage_type: hard_case
    clutter: medium
scanner_models:
  - name: DX-620
    vendor: SimScan
    width: 1024
    height: 768
    dual_energy: true
scanners:
  - name: SCN-A
    model: DX-620
    station: bench-1
poses:
  - name: flat
"""


def _audit_count(lab):
    return lab.catalog.query_one("SELECT COUNT(*) AS n FROM audit_log")["n"]


def _import_text(lab, text: str, name="inv.yaml"):
    return import_inventory(lab.catalog, parse_inventory(text.encode() if isinstance(text, str) else text, name))


def test_demo_inventory_imports_and_reimport_changes_nothing(empty_lab, demo_inventory_file):
    report = import_inventory(empty_lab.catalog, demo_inventory_file)
    assert report.sections["threat_classes"].created == 20
    assert report.sections["threat_items"].created == 60
    assert report.sections["bags"].created == 90
    assert counts(empty_lab.catalog)["scanners"] == 4
    audits = _audit_count(empty_lab)
    again = import_inventory(empty_lab.catalog, demo_inventory_file)
    assert not again.changed
    assert again.sections["threat_items"].unchanged == 60
    assert _audit_count(empty_lab) == audits


def test_export_then_import_round_trips(empty_lab, demo_lab, tmp_path):
    text = export_inventory(demo_lab.catalog)
    report = _import_text(empty_lab, text)
    assert report.changed
    assert export_inventory(empty_lab.catalog) == text
    assert counts(empty_lab.catalog) == counts(demo_lab.catalog)


def test_barcodes_keep_leading_zeros(empty_lab):
    _import_text(empty_lab, GOOD)
    assert empty_lab.catalog.query_one("SELECT barcode FROM threat_items")["barcode"] == "00123"


def test_an_edit_is_an_update_with_before_and_after_in_the_audit_log(empty_lab):
    _import_text(empty_lab, GOOD)
    report = _import_text(empty_lab, GOOD.replace("clutter: medium", "clutter: high"))
    assert report.sections["bags"].updated == 1
    entry = empty_lab.catalog.query_one("SELECT * FROM audit_log WHERE action = 'update'")
    assert entry["entity"] == "bags" and entry["entity_key"] == "BG-1"
    assert '"medium"' in entry["before_json"] and '"high"' in entry["after_json"]


@pytest.mark.parametrize(
    "text, line, message",
    [
        (GOOD.replace('barcode: BG-1', 'barcode: "00123"'), 12, "already used by a threat item"),
        (GOOD + "  - name: flat\n", 27, "duplicate pose name 'flat' (first at line 26)"),
        (GOOD.replace("class: knife_folding_open", "class: knife_typo"), 7, "unknown threat class 'knife_typo'"),
        (GOOD.replace("width: 1024", "width: -5"), 18, "must be a whole number from 1 to 65,536 (got -5)"),
        (GOOD.replace("clutter: medium", "clutter: extreme"), 14, "must be one of low, medium, high"),
        (GOOD.replace("    station: bench-1\n", ""), 22, "missing required field 'station'"),
        (GOOD.replace("dual_energy: true", "dual_enrgy: true"), 20, "unknown field 'dual_enrgy'"),
        (GOOD.replace("width: 1024", "width: wide"), 18, "must be a whole number"),
        (GOOD.replace("poses:", "poses: [").replace("  - name: flat\n", ""), None, "not valid YAML"),
        ("gizmos:\n  - name: x\n", 1, "unknown section 'gizmos'"),
    ],
)
def test_bad_files_get_a_line_numbered_message_and_change_nothing(demo_lab, text, line, message):
    before_counts, before_audit = counts(demo_lab.catalog), _audit_count(demo_lab)
    with pytest.raises(InputFileError) as caught:
        _import_text(demo_lab, text)
    problems = caught.value.problems
    assert any(message in p.message for p in problems), [str(p) for p in problems]
    if line is not None:
        assert any(p.line == line for p in problems if message in p.message), [str(p) for p in problems]
    assert "nothing was changed" in str(caught.value)
    assert counts(demo_lab.catalog) == before_counts
    assert _audit_count(demo_lab) == before_audit


def test_wrong_encoding_points_at_the_line(empty_lab):
    raw = GOOD.encode().replace(b"hard_case\nbags", b"hard_case \xe9t\xe9\nbags")
    with pytest.raises(InputFileError) as caught:
        _import_text(empty_lab, raw)
    (problem,) = caught.value.problems
    assert problem.line == 10 and "UTF-8" in problem.message
    assert counts(empty_lab.catalog)["luggage_types"] == 0


def test_all_problems_are_reported_at_once(empty_lab):
    bad = GOOD.replace("width: 1024", "width: -5").replace("clutter: medium", "clutter: extreme")
    with pytest.raises(InputFileError) as caught:
        _import_text(empty_lab, bad)
    assert len(caught.value.problems) == 2


def test_a_missing_file_is_a_clear_error(empty_lab, tmp_path):
    with pytest.raises(InputFileError, match="cannot read the file"):
        import_inventory(empty_lab.catalog, tmp_path / "nope.yaml")
