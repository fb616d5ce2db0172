"""The demo lab's labels: every simulated scanner's images arrive labelled through the lab's own paths
(DICOS TDRs at ingest; the PNG/TIFF scanners' ground truth imported as COCO)."""

from __future__ import annotations

from collections import Counter

from core.labels import annotations as A
from core.labels import qa


def test_a_short_headless_demo_ends_with_labelled_images_from_every_scanner(tmp_path):
    from core.demo import create_demo_lab, run_demo_scanners
    from core.progress import run_to_end

    lab = create_demo_lab(tmp_path / "demo")
    try:
        run_to_end(run_demo_scanners(lab, rate_per_minute=0, count=20, seed=3, with_ingest=True))
        rows = [dict(r) for r in lab.catalog.query(
            """SELECT i.id, s.name AS scanner, i.format, i.item_id, i.step_id, c.name AS item_class
               FROM images i JOIN scanners s ON s.id = i.scanner_id
               LEFT JOIN threat_items t ON t.id = i.item_id LEFT JOIN threat_classes c ON c.id = t.class_id""")]
        assert {r["scanner"] for r in rows} == {"SCN-A", "SCN-B", "SCN-C", "SCN-D"}
        kinds = Counter()
        for r in rows:
            labels = A.labels_of(lab.catalog, r["id"])
            if r["item_id"] is None:
                assert labels.negative and labels.boxes == (), r
                kinds["clean"] += 1
            else:
                assert [(b.class_name, b.source) for b in labels.boxes] == [(r["item_class"], "ground_truth")], r
                kinds[r["scanner"]] += 1
        # Threat images of every scanner got their boxes; the three non-DICOS ones through an import.
        assert all(kinds[s] for s in ("SCN-A", "SCN-B", "SCN-C", "SCN-D")), kinds
        imported = {r["name"] for r in lab.catalog.query(
            """SELECT DISTINCT s.name FROM annotation_revisions a JOIN label_imports l ON l.id = a.import_id
               JOIN images i ON i.id = a.image_id JOIN scanners s ON s.id = i.scanner_id
               WHERE l.source = 'simulator' AND l.format = 'coco'""")}
        assert imported == {"SCN-A", "SCN-B", "SCN-D"}
        # The label checks ran at ingest, and no threat image is left flagged "no box".
        open_flags = Counter(f["code"] for f in qa.queue(lab.catalog))
        assert open_flags["missing_box"] == 0, open_flags
        assert lab.catalog.query_one("SELECT COUNT(*) AS n FROM qa_flags WHERE code = 'missing_box'")["n"] > 0
    finally:
        lab.close()
