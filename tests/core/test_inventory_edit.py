"""Single-entry inventory edits (the window's entry editor) go through the import's checks."""

import pytest

from core.catalog.records import all_rows, counts
from core.errors import InputFileError, UnknownNameError
from core.inventory.edit import entry, save_entry, set_class_active
from core.quota.plans import create_plan
from core.quota.spec import PlanSpec


def _audit(lab):
    return lab.catalog.query("SELECT action, entity, entity_key FROM audit_log ORDER BY id")


def test_entries_are_added_one_by_one_into_an_empty_lab(empty_lab):
    cat = empty_lab.catalog
    save_entry(cat, "threat_families", {"name": "knives", "description": ""})
    save_entry(cat, "threat_classes", {"name": "knife_open", "family": "knives", "active": True})
    save_entry(cat, "threat_items", {"barcode": "00042", "class": "knife_open", "description": "red handle"})
    save_entry(cat, "luggage_types", {"name": "backpack"})
    save_entry(cat, "bags", {"barcode": "BG-1", "luggage_type": "backpack", "clutter": "high"})
    save_entry(cat, "scanner_models", {"name": "DX", "vendor": "Sim", "width": 64, "height": 48})
    save_entry(cat, "scanners", {"name": "SCN-A", "model": "DX", "station": "bench 1"})
    assert counts(cat)["threat_items"] == 1 and counts(cat)["scanners"] == 1
    assert entry(cat, "threat_items", "00042")["class"] == "knife_open"
    assert all_rows(cat, "scanners")[0]["drop_folder"] == "drop/SCN-A"
    assert [a["action"] for a in _audit(empty_lab)].count("create") == 7


def test_an_edit_updates_with_before_and_after(demo_lab):
    cat = demo_lab.catalog
    bag = entry(cat, "bags", "BG-0001")
    new_clutter = "high" if bag["clutter"] != "high" else "low"
    report = save_entry(cat, "bags", {**bag, "clutter": new_clutter}, actor="ana")
    assert report.sections["bags"].updated == 1
    assert entry(cat, "bags", "BG-0001")["clutter"] == new_clutter
    last = demo_lab.catalog.query_one("SELECT * FROM audit_log ORDER BY id DESC LIMIT 1")
    assert (last["action"], last["entity_key"], last["actor"]) == ("update", "BG-0001", "ana")


def test_a_bad_entry_is_refused_with_every_problem_and_changes_nothing(demo_lab):
    cat = demo_lab.catalog
    before = counts(cat)
    with pytest.raises(InputFileError) as caught:
        save_entry(cat, "bags", {"barcode": "TI-0001", "luggage_type": "trolley", "clutter": "extreme"})
    messages = [p.message for p in caught.value.problems]
    assert any("clutter" in m and "extreme" in m for m in messages), messages
    with pytest.raises(InputFileError) as caught:
        save_entry(cat, "bags", {"barcode": "TI-0001", "luggage_type": "trolley", "clutter": "low"})
    messages = [p.message for p in caught.value.problems]
    assert any("unknown luggage type 'trolley'" in m for m in messages), messages
    assert any("already used by a threat item" in m for m in messages), messages
    assert counts(cat) == before


def test_a_retired_class_is_left_out_of_new_plans_and_can_come_back(demo_lab):
    cat = demo_lab.catalog
    set_class_active(cat, "pistol", False)
    assert entry(cat, "threat_classes", "pistol")["active"] is False
    ref = create_plan(cat, PlanSpec(name="without-pistol"))
    classes = {r["class_name"] for r in cat.query(
        "SELECT c.name AS class_name FROM quota_plan_classes q JOIN threat_classes c ON c.id = q.class_id "
        "WHERE q.plan_id = ?", (ref.id,))}
    assert "pistol" not in classes and len(classes) == 19
    set_class_active(cat, "pistol", True)
    assert entry(cat, "threat_classes", "pistol")["active"] is True
    with pytest.raises(UnknownNameError):
        set_class_active(cat, "no_such_class", False)
