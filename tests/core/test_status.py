"""Quota status stays equal to an independent pandas computation as the catalog changes."""

import pytest

from core.catalog.images import delete_image_row, insert_images, update_image
from core.catalog.tally import rebuild_tallies
from core.inventory import import_inventory
from core.inventory.yamlfile import parse_inventory
from core.lab import Lab
from core.quota.plans import resolve_plan
from core.quota.status import quota_status
from tests.bench.bench_quota_status import check_same
from tests.bench.seed import in_pool, seed_catalog

pytestmark = pytest.mark.both_backends


@pytest.fixture
def seeded(tmp_path):
    lab = Lab.init(tmp_path / "lab")
    seed_catalog(lab, n_classes=3, n_images=500, seed=11)
    yield lab, resolve_plan(lab.catalog, "bench-plan")["id"]
    lab.close()


def test_incremental_refresh_follows_inserts_updates_deletes_and_rebuilds(seeded):
    lab, plan_id = seeded
    check_same(lab, plan_id)  # first, cold read
    ids = [r[0] for r in lab.catalog.reader().execute("SELECT id FROM images ORDER BY id LIMIT 40").fetchall()]
    with lab.catalog.write() as txn:
        for image_id, bag_id, item_id in txn.execute(
                f"SELECT id, bag_id, item_id FROM images WHERE id IN ({','.join(map(str, ids[:10]))})").fetchall():
            update_image(txn, image_id, {"split": "train", "bag_id": in_pool(bag_id, "train"),
                                         "item_id": item_id and in_pool(item_id, "train")})
        for image_id in ids[10:20]:
            delete_image_row(txn, image_id)
        for image_id in ids[20:30]:
            update_image(txn, image_id, {"usable": 0})
        insert_images(txn, [(f"extra{i}", "s", "", 1, "t", "t", "test", 1, 1, 1, 1, 1, 16, 1, "", 1) for i in range(5)])
    check_same(lab, plan_id)
    # An inventory correction moves images to other cells: a full rebuild.
    lab.catalog.reader()
    moved = parse_inventory(b"bags:\n  - barcode: BG-00000\n    luggage_type: tray\n    clutter: high\n", "fix.yaml")
    import_inventory(lab.catalog, moved)
    check_same(lab, plan_id)
    with lab.catalog.write() as txn:
        rebuild_tallies(txn)
    check_same(lab, plan_id)


def test_one_class_only(seeded):
    lab, plan_id = seeded
    full = quota_status(lab.catalog, plan_id)
    class_id = next(r[1] for r in full.rows if r[1] is not None)
    subset = quota_status(lab.catalog, plan_id, class_id)
    assert subset.rows == [r for r in full.rows if r[1] == class_id]
