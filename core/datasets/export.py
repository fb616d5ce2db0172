"""Export of a dataset version as a generator of progress records, for the window.

The labels and the manifest are written by :func:`core.labels.exports.export_labels`
(the same call as ``xlab dataset export``); the images are then copied (or
hard-linked) a batch at a time, with a progress record after each batch, where
the window may stop the export.

Everything is written into a hidden folder beside the chosen one and renamed
into place only once complete, so an export that is cancelled or fails leaves
no half-written folder: the hidden one is removed, and the chosen folder is as
it was (absent, or empty).
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from core.catalog import label_store
from core.datasets.versions import VersionRef, frozen_labels, resolve
from core.errors import LabelError
from core.progress import Progress

# Images copied between two progress records (and two chances to cancel).
BATCH = 50


def export_version_steps(lab, ref: str | VersionRef, fmt: str, out_dir: str | Path, *, link: bool = False,
                         batch: int = BATCH) -> Iterator[Progress]:
    """Write version ``ref`` in ``fmt`` into ``out_dir`` (new or empty), yielding progress;
    returns the :class:`core.labels.exports.ExportReport`. Closing the generator
    (cancel) or an error removes what was written."""
    from core.labels.exports import IMAGE_FOLDER, MANIFEST, export_labels, place_image

    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise LabelError(f"{out} is not an empty folder; export into a new one (nothing there is overwritten)")
    v = resolve(lab.catalog, ref)
    image_ids, revision_ids = frozen_labels(lab.catalog, v)
    total = len(image_ids)
    yield Progress(0, total, f"writing the labels of {v['name']}@{v['version']} as {fmt}")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    existed = out.exists()
    try:
        report = export_labels(lab, fmt, partial, image_ids=image_ids, revision_ids=revision_ids,
                               as_of=v["label_seq"], link=link, with_images=False)
        manifest = json.loads((partial / MANIFEST).read_text())
        names = {m["image_id"]: m["file_name"] for m in manifest["images"]}
        stored = {r["id"]: r["store_path"] for r in label_store.export_images(lab.catalog, list(names))}
        image_root = partial / IMAGE_FOLDER.get(fmt, "")
        for done, (image_id, file_name) in enumerate(names.items(), 1):
            linked = place_image(lab.paths.store / stored[image_id], image_root / file_name, link)
            report.linked += linked
            report.copied += not linked
            if done % batch == 0 or done == len(names):
                yield Progress(done, total, f"{done:,} of {len(names):,} images written")
        if out.exists():
            out.rmdir()  # empty (checked above): the finished folder takes its place
        partial.rename(out)
    except BaseException:
        # Cancelled (GeneratorExit at a yield) or failed: nothing half-written stays.
        shutil.rmtree(partial, ignore_errors=True)
        if existed and not out.exists():
            out.mkdir()  # the empty folder the user chose is left as it was
        raise
    report.out_dir = str(out)
    report.files = [str(out / Path(f).relative_to(partial)) for f in report.files]
    return report
