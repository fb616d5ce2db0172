"""Frozen dataset versions on a real catalog: the test set, k:1 clones of its mix, the checks at
freeze, immutability, diff, distribution and lineage, each against a straightforward recomputation."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.catalog import dataset_store, label_store
from core.catalog.images import insert_images, update_image
from core.catalog.ingest_store import insert_near_duplicates
from core.datasets import diff as dataset_diff
from core.datasets import versions
from core.datasets.distribution import distribution
from core.errors import CatalogError, DatasetError
from core.lab import Lab, move_catalog_to_server
from core.progress import run_to_end
from core.labels.annotations import add_box, delete_box, labels_of
from tests.bench.seed import seed_catalog
from tests.bench.seed_labels import seed_labels

PLAN = "bench-plan"
# Two classes over a small mix: 2 x (2 luggage x 3 clutter x 3 models x 2 poses) + 18 clean cells.
MIX = {"luggage_type": {"hard_case": 1, "backpack": 1}, "pose": {"flat": 1, "edge_on": 1}}


pytestmark = pytest.mark.both_backends


@pytest.fixture(scope="module")
def template(tmp_path_factory, catalog_backend):
    """The seeded lab's folder; on the server its catalog is moved onto a database each test clones."""
    root = tmp_path_factory.mktemp("datasets") / "lab"
    lab = Lab.init(root)
    seed_catalog(lab, n_classes=2, n_images=1600, items_per_class=6, n_bags=40, mix=MIX)
    seed_labels(lab, boxes_per_image=1.5)
    lab.close()
    if catalog_backend == "sqlite":
        yield root
        return
    from tests.pg import fresh_database

    with fresh_database("xlab_test_datasets") as url:
        run_to_end(move_catalog_to_server(root, url))
        yield root


@contextlib.contextmanager
def copy_of(template: Path, root: Path) -> Iterator[Lab]:
    """A lab of its own, copied from the template (its folder, and on the server its database)."""
    shutil.copytree(template, root)
    with contextlib.ExitStack() as stack:
        address = root / "catalog.url"
        if address.exists():
            from tests.pg import fresh_database

            url = stack.enter_context(fresh_database("xlab_test", template=address.read_text().strip()))
            address.write_text(url + "\n", encoding="utf-8")
        lab = Lab.open(root)
        try:
            yield lab
        finally:
            lab.close()


@pytest.fixture
def lab(template, tmp_path):
    with copy_of(template, tmp_path / "lab") as lab:
        yield lab


def _eligible(lab: Lab, split: str) -> set[int]:
    """The plan's images of a split that pass QA, straight from the rows."""
    conn = lab.catalog.reader()
    plan_id = conn.execute("SELECT id FROM quota_plans WHERE name = ?", (PLAN,)).fetchone()[0]
    cells = {tuple(r) for r in conn.execute(
        "SELECT IFNULL(class_id, 0), luggage_type_id, clutter_level, scanner_model_id, IFNULL(pose_id, 0) "
        "FROM quota_cells WHERE plan_id = ?", (plan_id,))}
    flagged = {r[0] for r in conn.execute("SELECT image_id FROM qa_flags WHERE state = 'open'")}
    out = set()
    for image_id, usable, *key in conn.execute(
            "SELECT i.id, i.usable, IFNULL(t.class_id, 0), b.luggage_type_id, b.clutter_level, s.model_id, "
            "IFNULL(i.pose_id, 0) FROM images i JOIN bags b ON b.id = i.bag_id JOIN scanners s ON s.id = i.scanner_id "
            "LEFT JOIN threat_items t ON t.id = i.item_id WHERE i.split = ?", (split,)):
        if tuple(key) not in cells or not usable or image_id in flagged:
            continue
        labels = labels_of(lab.catalog, image_id)
        if labels.kept or labels.negative:
            out.add(image_id)
    return out


def _cells(lab: Lab, ref: str, subsets: tuple[str, ...]) -> Counter:
    v = versions.resolve(lab.catalog, ref)
    return Counter(tuple(m[2:7]) for m in dataset_store.members(lab.catalog, v["id"]) if m[1] in subsets)


def test_the_test_set_is_the_plans_test_images_that_passed_qa(lab):
    test_ids = sorted(_eligible(lab, "test"))
    with lab.catalog.write() as txn:
        update_image(txn, test_ids[0], {"usable": 0})
        label_store.insert_flags(txn, [(test_ids[1], None, "class_mismatch", "box class is not the item's", 0.9)])
    for box in labels_of(lab.catalog, test_ids[2]).boxes:
        delete_box(lab.catalog, box.annotation_id)
    report = versions.freeze(lab.catalog, "test-set", "test", plan=PLAN)
    members = set(versions.member_ids(lab.catalog, "test-set"))
    assert members == _eligible(lab, "test") == set(test_ids) - set(test_ids[:3])
    assert report.left_out["unusable"] == 1 and report.left_out["qa_flagged"] == 1
    assert report.left_out["unlabelled"] == 1
    assert report.images == len(members) and report.subsets == {"test": len(members)}
    # Its boxes are the kept boxes of its images, and cells short of the plan are listed.
    assert report.boxes == sum(len(labels_of(lab.catalog, i).kept) for i in members)
    assert report.below_target_cells > 0 and report.below_target[0]["missing_setups"] > 0
    assert report.below_target_setups == sum(c["missing_setups"] for c in report.below_target)


def test_train_sets_clone_the_test_mix_nested_and_deterministic(lab):
    versions.freeze(lab.catalog, "test-set", "test", plan=PLAN)
    one = versions.freeze(lab.catalog, "train", "train", plan=PLAN, ratio=1, seed=11, validation=0)
    again = versions.freeze(lab.catalog, "train-again", "train", plan=PLAN, ratio=1, seed=11, validation=0)
    other = versions.freeze(lab.catalog, "train-other", "train", plan=PLAN, ratio=1, seed=12, validation=0)
    two = versions.freeze(lab.catalog, "train", "train", plan=PLAN, ratio=2, seed=11, validation=0)
    ids = {ref: set(versions.member_ids(lab.catalog, ref)) for ref in ("train@1", "train-again", "train-other",
                                                                       "train@2")}
    assert ids["train@1"] == ids["train-again"] and one.content_hash == again.content_hash  # same seed, same set
    assert ids["train@1"] != ids["train-other"] and one.content_hash != other.content_hash
    assert ids["train@1"] < ids["train@2"]  # the 2:1 set contains the 1:1 set
    assert two.images > one.images
    test_cells = _cells(lab, "test-set", ("test",))
    for report, k in ((one, 1), (two, 2)):
        train_cells = _cells(lab, f"train@{report.version}", ("train",))
        # Per class: what was drawn is k x the test images less what was found nowhere.
        per_class_test, per_class_train, short = Counter(), Counter(), Counter()
        for cell, n in test_cells.items():
            per_class_test[cell[0]] += n
        for cell, n in train_cells.items():
            per_class_train[cell[0]] += n
        key_of = {name: key for key, name in dataset_store.names(lab.catalog)["class"].items()} | {"(clean)": 0}
        for c in report.clone:
            short[key_of[c["class_name"]]] += c["short"]
        for class_key, n in per_class_test.items():
            assert per_class_train[class_key] == k * n - short[class_key]


def test_the_clone_matches_every_cell_when_the_pool_allows(lab):
    """Where every cell has enough train images, each cell gets exactly k x its test images."""
    versions.freeze(lab.catalog, "test-set", "test", plan=PLAN)
    report = versions.freeze(lab.catalog, "train", "train", plan=PLAN, ratio=1, seed=3, validation=0.3)
    test_cells = _cells(lab, "test-set", ("test",))
    train_cells = _cells(lab, "train", ("train", "validation"))
    borrowed = {(c["class_name"], c["luggage_type"], c["clutter_level"], c["scanner_model"], c["pose"])
                for c in report.clone}
    names = dataset_store.names(lab.catalog)
    exact = 0
    for cell, n in test_cells.items():
        named = (names["class"].get(cell[0], "(clean)"), names["luggage_type"][cell[1]], cell[2],
                 names["scanner_model"][cell[3]], names["pose"].get(cell[4], "—"))
        if named not in borrowed:
            exact += 1
            assert train_cells[cell] >= n  # its own k x n, plus what neighbours may have taken from it
    assert exact > 50  # the small catalog is sparse: many cells borrow
    assert sum(train_cells.values()) == sum(test_cells.values()) - report.clone_short
    assert report.clone_borrowed == sum(c["borrowed"] for c in report.clone)


def test_validation_is_carved_from_train_by_physical_setup(lab):
    versions.freeze(lab.catalog, "test-set", "test", plan=PLAN)
    versions.freeze(lab.catalog, "train", "train", plan=PLAN, ratio=2, seed=5, validation=0.25)
    v = versions.resolve(lab.catalog, "train")
    side: dict[tuple, set[str]] = defaultdict(set)
    subsets = Counter()
    split = {r["id"]: r["split"] for r in lab.catalog.query("SELECT id, split FROM images")}
    for image_id, subset, *cell, item, bag, _neg, _boxes, _revs in dataset_store.members(lab.catalog, v["id"]):
        side[(item, bag, cell[4])].add(subset)
        subsets[subset] += 1
        assert split[image_id] == "train"  # never from test
    assert all(len(s) == 1 for s in side.values())  # a setup is on one side only
    assert 0.1 < subsets["validation"] / sum(subsets.values()) < 0.45


def test_a_derived_version_keeps_its_parents_images_when_new_ones_arrive(lab):
    versions.freeze(lab.catalog, "test-set", "test", plan=PLAN)
    versions.freeze(lab.catalog, "train", "train", plan=PLAN, ratio=1, seed=9)
    before = set(versions.member_ids(lab.catalog, "train@1"))
    # New train images (same pools as the seed) with labels, sorting anywhere in the draw order.
    rows = lab.catalog.query("SELECT * FROM images WHERE split = 'train' AND item_id IS NOT NULL LIMIT 200")
    with lab.catalog.write() as txn:
        insert_images(txn, [(f"{n:064x}", "store/new.png", "new.png", r["scanner_id"], r["captured_at"],
                             r["ingested_at"], "train", r["item_id"], r["bag_id"], r["pose_id"], 1024, 768, 16, 1,
                             "", 1) for n, r in enumerate(rows)])
    new = {r["id"] for r in lab.catalog.query("SELECT id FROM images WHERE original_name = 'new.png'")}
    seed_labels(lab, 1.0, seed=3, image_ids=new)
    report = versions.freeze(lab.catalog, "train", "train", ratio=2, parent="train@1")
    assert report.seed == 9 and report.parent == "train@1" and report.test_version == "test-set@1"
    after = set(versions.member_ids(lab.catalog, "train@2"))
    assert before < after and after & new


def test_a_physical_object_in_both_splits_is_refused_with_the_list(lab, monkeypatch):
    # A catalog from before split pools (migration 0003) can hold an item in both splits.
    monkeypatch.setattr(dataset_store, "PARALLEL_SCAN_ROWS", 0)  # the boxes are being read in ranges when refused
    test_image = lab.catalog.query_one(
        "SELECT i.*, t.barcode FROM images i JOIN threat_items t ON t.id = i.item_id WHERE split = 'test' LIMIT 1")
    train_bag = lab.catalog.query_one("SELECT bag_id FROM images WHERE split = 'train' LIMIT 1")["bag_id"]
    row = (test_image["scanner_id"], test_image["captured_at"], test_image["captured_at"], test_image["item_id"],
           train_bag, test_image["pose_id"])
    if lab.catalog.dialect == "sqlite":
        conn = sqlite3.connect(lab.catalog.path)
        conn.execute("DROP TRIGGER images_pool_insert")
        conn.execute("INSERT INTO images (sha256, store_path, scanner_id, captured_at, ingested_at, split, item_id, "
                     "bag_id, pose_id) VALUES ('ab' || hex(randomblob(31)), 'x.png', ?, ?, ?, 'train', ?, ?, ?)", row)
        conn.commit()
        conn.close()
    else:  # the server's own trigger, dropped the same way
        import psycopg

        with psycopg.connect(lab.catalog.url, autocommit=True) as conn:
            conn.execute("DROP TRIGGER images_pool_insert ON images")
            conn.execute("INSERT INTO images (sha256, store_path, scanner_id, captured_at, ingested_at, split, item_id, "
                         "bag_id, pose_id) VALUES (md5(random()::text) || md5(random()::text), 'x.png', %s, %s, %s, "
                         "'train', %s, %s, %s)", row)
    with pytest.raises(DatasetError) as refused:
        versions.freeze(lab.catalog, "test-set", "test", plan=PLAN)
    assert f"item {test_image['barcode']}: " in str(refused.value)
    assert any(p.startswith(f"item {test_image['barcode']}: ") and "1 in train" in p for p in refused.value.problems)
    assert versions.list_versions(lab.catalog) == []  # nothing frozen
    assert not [t for t in threading.enumerate() if t.name.startswith("xlab-reader")]


def test_an_image_taken_out_of_the_splits_does_not_make_its_objects_shared(lab):
    # Its item and bag are the test set's; no image of the train split uses them.
    test_ids = sorted(_eligible(lab, "test"))
    with lab.catalog.write() as txn:
        update_image(txn, test_ids[0], {"split": None})
    report = versions.freeze(lab.catalog, "test-set", "test", plan=PLAN)
    assert report.images == len(test_ids) - 1
    assert set(versions.member_ids(lab.catalog, "test-set")) == set(test_ids[1:])


def test_near_duplicates_across_splits_are_reported_and_can_be_left_out(lab):
    test_id = min(_eligible(lab, "test"))
    train_id = min(_eligible(lab, "train"))
    with lab.catalog.write() as txn:
        insert_near_duplicates(txn, [(train_id, test_id, 3, 1)])
    report = versions.freeze(lab.catalog, "test-set", "test", plan=PLAN)
    assert report.near_duplicates == [{"image_id": test_id, "other_id": train_id, "distance": 3}]
    assert test_id in versions.member_ids(lab.catalog, "test-set@1")
    report = versions.freeze(lab.catalog, "test-set", "test", plan=PLAN, exclude_near_duplicates=True)
    assert report.near_duplicates == [] and report.near_duplicates_excluded == 1
    assert report.left_out["near_duplicate_of_other_split"] == 1
    assert test_id not in versions.member_ids(lab.catalog, "test-set@2")
    # The train side sees the same pair from its end.
    train = versions.freeze(lab.catalog, "train", "train", ratio=3, seed=1, parent="test-set@1")
    if train_id in versions.member_ids(lab.catalog, "train"):
        assert {"image_id": train_id, "other_id": test_id, "distance": 3} in train.near_duplicates


def test_the_catalog_refuses_any_change_to_a_frozen_version(lab):
    versions.freeze(lab.catalog, "test-set", "test", plan=PLAN)
    v = versions.resolve(lab.catalog, "test-set")
    image_id = versions.member_ids(lab.catalog, "test-set")[0]
    for statement, params in (
            ("UPDATE dataset_versions SET name = 'other' WHERE id = ?", (v["id"],)),
            ("DELETE FROM dataset_versions WHERE id = ?", (v["id"],)),
            ("UPDATE dataset_parts SET subsets = zeroblob(length(subsets)) WHERE version_id = ?"
             if lab.catalog.dialect == "sqlite" else
             "UPDATE dataset_parts SET subsets = decode(repeat('00', length(subsets)), 'hex') WHERE version_id = ?",
             (v["id"],)),
            ("DELETE FROM dataset_parts WHERE version_id = ?", (v["id"],)),
            ("INSERT INTO dataset_parts SELECT version_id, part + 1, images, first_image, last_image, image_ids,"
             " subsets, cells, item_keys, bag_ids, negatives, boxes, revisions"
             " FROM dataset_parts WHERE version_id = ? LIMIT 1", (v["id"],)),
            ("UPDATE dataset_cells SET clutter_level = 'low' WHERE version_id = ?", (v["id"],)),
            ("DELETE FROM dataset_cells WHERE version_id = ?", (v["id"],)),
            ("INSERT INTO dataset_cells SELECT version_id, cell + 1000, class_key, luggage_type_id, clutter_level,"
             " scanner_model_id, pose_key FROM dataset_cells WHERE version_id = ? LIMIT 1", (v["id"],)),
            ("DELETE FROM dataset_held WHERE version_id = ?", (v["id"],)),
            ("UPDATE dataset_held SET image_id = image_id + 100000 WHERE version_id = ?", (v["id"],))):
        with pytest.raises(CatalogError, match="frozen"):
            with lab.catalog.write() as txn:
                txn.execute(statement, params)
    with pytest.raises(CatalogError, match="frozen dataset version"):
        with lab.catalog.write() as txn:
            txn.execute("DELETE FROM images WHERE id = ?", (image_id,))
    assert versions.resolve(lab.catalog, "test-set")["content_hash"] == v["content_hash"]


def test_a_version_keeps_the_labels_it_was_frozen_with(lab):
    versions.freeze(lab.catalog, "test-set", "test", plan=PLAN)
    v = versions.resolve(lab.catalog, "test-set")
    image_id = next(m[0] for m in dataset_store.members(lab.catalog, v["id"]) if m[-1])
    frozen = {b.revision_id for b in labels_of(lab.catalog, image_id).kept}
    delete_box(lab.catalog, labels_of(lab.catalog, image_id).kept[0].annotation_id)
    add_box(lab.catalog, image_id, "class_000", 5, 5, 50, 50)
    row = next(m for m in dataset_store.members(lab.catalog, v["id"]) if m[0] == image_id)
    assert {int(r) for r in row[-1].split()} == frozen
    assert {b.revision_id for b in labels_of(lab.catalog, image_id, as_of=v["label_seq"]).kept} == frozen


def _recounted_distribution(lab: Lab, ref: str) -> tuple[Counter, Counter, Counter]:
    """Per box class, boxes per image and box sizes, from each member's labels as of the freeze."""
    v = versions.resolve(lab.catalog, ref)
    per_class, per_image, sizes = Counter(), Counter(), Counter()
    buckets = dataset_store.SIZE_BUCKETS
    for image_id, subset, *_rest in dataset_store.members(lab.catalog, v["id"]):
        labels = labels_of(lab.catalog, image_id, as_of=v["label_seq"])
        per_image[(subset, labels.negative, len(labels.kept))] += 1
        for b in labels.kept:
            per_class[(b.class_name, subset)] += 1
            side = ((b.x1 - b.x0) * (b.y1 - b.y0)) ** 0.5
            index = next((i for i, edge in enumerate((16, 32, 64, 128, 256, 512, 1024)) if side < edge), 7)
            sizes[(b.class_name, subset, buckets[index])] += 1
    return per_class, per_image, sizes


def test_distribution_equals_a_recount(lab):
    versions.freeze(lab.catalog, "test-set", "test", plan=PLAN)
    versions.freeze(lab.catalog, "train", "train", plan=PLAN, ratio=1, seed=2)
    for ref in ("test-set", "train"):
        dist = distribution(lab.catalog, ref)
        per_class, per_image, sizes = _recounted_distribution(lab, ref)
        assert Counter({(c["class_name"], c["subset"]): c["boxes"] for c in dist.classes if c["boxes"]}) == per_class
        assert Counter({(r["subset"], r["negative"], r["boxes"]): r["images"] for r in dist.boxes_per_image}) == per_image
        assert Counter({(s["class_name"], s["subset"], s["size"]): s["boxes"] for s in dist.box_sizes}) == sizes
        assert sum(c["images"] for c in dist.cells) == sum(dist.subsets.values()) == versions.resolve(lab.catalog, ref)["images"]


def test_box_sizes_fall_in_their_buckets_at_the_edges(lab):
    """Boxes just under and at each size edge (16, 32, ... 1024 px as the side of a square), and far above."""
    image_id = min(_eligible(lab, "test"))
    with lab.catalog.write() as txn:
        txn.execute("UPDATE images SET width = 8192, height = 8192 WHERE id = ?", (image_id,))
    for edge in (16, 32, 64, 128, 256, 512, 1024):
        for side in (edge - 0.01, edge):
            add_box(lab.catalog, image_id, "class_000", 0, 0, side, side)
    add_box(lab.catalog, image_id, "class_001", 0, 0, 8000, 8000)
    with lab.catalog.write() as txn:  # the label checks flag such boxes; a reviewer accepted them
        label_store.close_flags(txn, [f["id"] for f in label_store.flags_of(txn, [image_id])], "dismissed")
    versions.freeze(lab.catalog, "test-set", "test", plan=PLAN)
    assert image_id in versions.member_ids(lab.catalog, "test-set")
    _per_class, _per_image, sizes = _recounted_distribution(lab, "test-set")
    dist = distribution(lab.catalog, "test-set")
    assert Counter({(s["class_name"], s["subset"], s["size"]): s["boxes"] for s in dist.box_sizes}) == sizes
    assert all(sizes[("class_000", "test", size)] for size in dataset_store.SIZE_BUCKETS)
    assert sizes[("class_001", "test", ">=1024")] == 1


edits = st.lists(st.tuples(st.sampled_from(["delete_box", "add_box", "unusable", "flag", "negative"]),
                           st.integers(min_value=0, max_value=10_000)), min_size=1, max_size=12)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=edits)
def test_diff_equals_a_straightforward_recomputation(template, tmp_path_factory, edits):
    with copy_of(template, tmp_path_factory.mktemp("diff") / "lab") as lab:
        versions.freeze(lab.catalog, "test-set", "test", plan=PLAN)
        members = versions.member_ids(lab.catalog, "test-set")
        for kind, n in edits:
            image_id = members[n % len(members)]
            kept = labels_of(lab.catalog, image_id).kept
            if kind == "delete_box" and kept:
                delete_box(lab.catalog, kept[0].annotation_id)
            elif kind == "add_box":
                add_box(lab.catalog, image_id, "class_001", 10, 10, 60, 40)
            elif kind == "unusable":
                with lab.catalog.write() as txn:
                    update_image(txn, image_id, {"usable": 0})
            elif kind == "flag":
                with lab.catalog.write() as txn:
                    label_store.insert_flags(txn, [(image_id, None, f"test_{n}", "checked by hand", 0.5)])
        versions.freeze(lab.catalog, "test-set", "test", plan=PLAN)
        d = dataset_diff.diff(lab.catalog, "test-set@1", "test-set@2")
        a, b = (versions.resolve(lab.catalog, f"test-set@{n}") for n in (1, 2))
        ids_a, ids_b = set(versions.member_ids(lab.catalog, "test-set@1")), set(versions.member_ids(lab.catalog, "test-set@2"))
        changed = {i for i in ids_a & ids_b
                   if ({x.revision_id for x in labels_of(lab.catalog, i, as_of=a["label_seq"]).kept},
                       labels_of(lab.catalog, i, as_of=a["label_seq"]).negative)
                   != ({x.revision_id for x in labels_of(lab.catalog, i, as_of=b["label_seq"]).kept},
                       labels_of(lab.catalog, i, as_of=b["label_seq"]).negative)}
        assert (d.removed, d.added, d.labels_changed) == (len(ids_a - ids_b), len(ids_b - ids_a), len(changed))
        found = dataset_diff.changed_images(lab.catalog, "test-set@1", "test-set@2")
        assert set(found["removed"]) == ids_a - ids_b and set(found["labels_changed"]) == changed
        assert sum(c["removed"] for c in d.by_class) == d.removed
        assert sum(c["labels_changed"] for c in d.by_cell) == d.labels_changed


def test_lineage_and_listing(lab):
    versions.freeze(lab.catalog, "test-set", "test", plan=PLAN)
    versions.freeze(lab.catalog, "train", "train", ratio=1, seed=4, parent="test-set")
    versions.freeze(lab.catalog, "train", "train", ratio=2, parent="train@1")
    shown = versions.show(lab.catalog, "train@2")
    assert [a["version"] for a in shown["lineage"]["ancestors"]] == ["train@1", "test-set@1"]
    assert shown["rule_json"]["seed"] == 4 and shown["test_version"] == "test-set@1"
    below = versions.lineage(lab.catalog, "test-set@1")["descendants"]
    assert [(d["version"], d["from"]) for d in below] == [("train@1", "test-set@1"), ("train@2", "train@1")]
    listed = versions.list_versions(lab.catalog)
    assert [(v["name"], v["version"], v["rule"]) for v in listed] == [
        ("test-set", 1, "test"), ("train", 1, "train"), ("train", 2, "train")]
    with pytest.raises(Exception, match="has no version 7"):
        versions.resolve(lab.catalog, "train@7")


def test_freeze_refuses_bad_requests_clearly(lab):
    with pytest.raises(DatasetError, match="test set comes first"):
        versions.freeze(lab.catalog, "train", "train", plan=PLAN)
    with pytest.raises(DatasetError, match="'@'"):
        versions.freeze(lab.catalog, "a@b", "test", plan=PLAN)
    with pytest.raises(DatasetError, match="train sets only"):
        versions.freeze(lab.catalog, "t", "test", plan=PLAN, ratio=2)
    report = versions.freeze(lab.catalog, "t", "test", plan=PLAN, dry_run=True)
    assert report.dry_run and report.images > 0 and versions.list_versions(lab.catalog) == []


def test_the_dataset_commands(lab, tmp_path, capsys):
    import json

    from core.cli.main import main

    where = ["--lab", str(lab.paths.root)]
    lab.close()
    assert main(["dataset", "freeze", "train", "--rule", "train", "--plan", PLAN, *where]) == 2
    assert "test set comes first" in capsys.readouterr().err
    assert main(["dataset", "freeze", "test-set", "--rule", "test", "--plan", PLAN, "--json", *where]) == 0
    frozen = json.loads(capsys.readouterr().out)
    assert frozen["version"] == 1 and frozen["images"] > 0
    assert main(["dataset", "freeze", "train", "--rule", "train", "--from", "test-set", "--ratio", "2:1",
                 "--seed", "3", *where]) == 0
    out = capsys.readouterr().out
    assert "train@1 frozen: train set of bench-plan v1" in out and "k per class" in out
    assert main(["dataset", "list", "--json", *where]) == 0
    assert [v["name"] for v in json.loads(capsys.readouterr().out)] == ["test-set", "train"]
    assert main(["dataset", "show", "train@1", *where]) == 0
    assert "derived from test-set@1" in capsys.readouterr().out
    assert main(["dataset", "diff", "test-set", "train", "--json", *where]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["removed"] == frozen["images"] and d["added"] > 0
    assert main(["dataset", "distribution", "test-set", "--json", *where]) == 0
    assert json.loads(capsys.readouterr().out)["subsets"] == {"test": frozen["images"]}
    assert main(["dataset", "show", "nope@2", *where]) == 2
    assert "no dataset named 'nope'" in capsys.readouterr().err
    # Export: the version's images (written here where the seed left only names) and its labels as COCO.
    reopened = Lab.open(where[1])
    try:
        for row in reopened.catalog.query("SELECT store_path FROM images"):
            path = reopened.paths.store / row["store_path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"png")
    finally:
        reopened.close()
    assert main(["dataset", "export", "test-set@1", "--format", "coco", "-o", str(tmp_path / "out"), *where]) == 0
    coco = json.loads((tmp_path / "out" / "annotations.json").read_text())
    assert len(coco["images"]) == frozen["images"] and len(coco["annotations"]) == frozen["boxes"]


def test_members_split_over_several_parts_read_back_whole(lab, monkeypatch):
    # A version's members are stored as arrays in parts; a tiny part size puts this one over many parts.
    monkeypatch.setattr(dataset_store, "PART_IMAGES", 7)
    small = versions.freeze(lab.catalog, "test-set", "test", plan=PLAN)
    monkeypatch.undo()
    whole = versions.freeze(lab.catalog, "test-set", "test", plan=PLAN)
    v1, v2 = (versions.resolve(lab.catalog, f"test-set@{n}") for n in (1, 2))
    parts = lab.catalog.query_one("SELECT COUNT(*) AS n FROM dataset_parts WHERE version_id = ?", (v1["id"],))["n"]
    assert parts == -(-small.images // 7) > 1
    assert versions.member_ids(lab.catalog, "test-set@1") == sorted(_eligible(lab, "test"))
    assert dataset_store.members(lab.catalog, v1["id"]) == dataset_store.members(lab.catalog, v2["id"])
    assert small.content_hash == whole.content_hash
    d = dataset_diff.diff(lab.catalog, "test-set@1", "test-set@2")
    assert (d.added, d.removed, d.labels_changed, d.moved) == (0, 0, 0, 0)
    for image_id, *_rest, revisions in dataset_store.members(lab.catalog, v1["id"])[::50]:
        assert [int(r) for r in revisions.split()] == sorted(
            b.revision_id for b in labels_of(lab.catalog, image_id, as_of=v1["label_seq"]).kept)


def test_images_and_boxes_read_on_several_readers_freeze_the_same_version(lab, monkeypatch):
    # A large catalog's images and boxes are read in id ranges by several readers at once; here every
    # table is "large". On the transaction's own connection alone, the freeze gives the same version.
    monkeypatch.setattr(dataset_store, "SCAN_THREADS", 0)
    serial = versions.freeze(lab.catalog, "test-set", "test", plan=PLAN)
    monkeypatch.setattr(dataset_store, "PARALLEL_SCAN_ROWS", 0)
    monkeypatch.setattr(dataset_store, "SCAN_THREADS", 3)
    parallel = versions.freeze(lab.catalog, "test-set", "test", plan=PLAN)
    v1, v2 = (versions.resolve(lab.catalog, f"test-set@{n}") for n in (1, 2))
    assert parallel.boxes == serial.boxes > 0
    assert dataset_store.members(lab.catalog, v1["id"]) == dataset_store.members(lab.catalog, v2["id"])
    assert parallel.content_hash == serial.content_hash
    # Every image of both splits and every box, whichever range it falls in.
    plan_id = lab.catalog.query_one("SELECT id FROM quota_plans WHERE name = ?", (PLAN,))["id"]
    labelled = [r["image_id"] for r in lab.catalog.query("SELECT image_id FROM label_image_counts ORDER BY image_id")]
    with lab.catalog.write() as txn, dataset_store.Readers(txn.conn) as readers:
        # Readers beside the write are SQLite's fast path; on a server the reads run on the writer.
        assert readers.threads == (3 if lab.catalog.dialect == "sqlite" else 0)
        for split in ("test", "train"):
            alone, ranged = (dataset_store.read_split(txn, plan_id, split, r) for r in (None, readers))
            assert len(alone) == len(ranged) > 0 and alone.cell_keys == ranged.cell_keys
            for column in ("image_ids", "item_ids", "bag_ids", "cells", "states", "negatives", "digests"):
                assert (getattr(alone, column) == getattr(ranged, column)).all(), column
        alone, ranged = (dataset_store.read_boxes(txn, labelled, r).result() for r in (None, readers))
    live = lab.catalog.query_one("SELECT SUM(boxes) AS n FROM label_image_counts")["n"]
    assert len(ranged[0]) == live and all((a == b).all() for a, b in zip(alone, ranged))
    assert not [t for t in threading.enumerate() if t.name.startswith("xlab-reader")]


def test_a_small_pick_looks_its_boxes_up_and_finds_what_reading_them_all_finds(lab):
    labelled = [r["image_id"] for r in lab.catalog.query("SELECT image_id FROM label_image_counts ORDER BY image_id")]
    few = labelled[::37]  # well under a quarter of the labelled images: looked up by id
    with lab.catalog.write() as txn, dataset_store.Readers(txn.conn) as readers:
        looked_up = dataset_store.read_boxes(txn, few, readers).result()
        whole = dataset_store.read_boxes(txn, labelled).result()

    def by_image(ids, boxes):
        out = defaultdict(list)
        for owner, revision, class_id, size in zip(*(b.tolist() for b in boxes)):
            out[ids[owner]].append((revision, class_id, size))
        return out

    assert by_image(few, looked_up) == {i: boxes for i, boxes in by_image(labelled, whole).items() if i in set(few)}
    for image_id, boxes in by_image(few, looked_up).items():
        assert [r for r, *_ in boxes] == sorted(b.revision_id for b in labels_of(lab.catalog, image_id).kept)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-(2 ** 40), 2 ** 40), st.integers(0, 2 ** 50), st.booleans()),
                min_size=1, max_size=6), st.data())
def test_packed_values_read_back_as_their_fields(fields, data):
    # Fields with bounds (or none: read alone) packed into as few 62-bit values as fit, computed by SQLite.
    import numpy as np

    bounds = [(low, low + span) if known else (None, None) for low, span, known in fields]
    rows = data.draw(st.lists(st.tuples(*[
        st.integers(low, high) if low is not None else st.integers(-(2 ** 63), 2 ** 63 - 1) for low, high in bounds]),
        min_size=1, max_size=20))
    packing = dataset_store._Packing([(f"c{n}", low, high) for n, (low, high) in enumerate(bounds)])
    assert len(packing.groups) <= len(fields)
    conn = sqlite3.connect(":memory:")
    conn.execute(f"CREATE TABLE t ({', '.join(f'c{n} INTEGER' for n in range(len(fields)))})")
    conn.executemany(f"INSERT INTO t VALUES ({', '.join('?' * len(fields))})", rows)
    values = [np.array(column, dtype=np.int64) for column in zip(*conn.execute(
        f"SELECT {', '.join(packing.columns())} FROM t ORDER BY rowid").fetchall())]
    assert [f.tolist() for f in packing.unpack(values)] == [list(c) for c in zip(*rows)]
