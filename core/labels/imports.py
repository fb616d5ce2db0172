"""Annotation imports: a format's labels matched to catalog images and written as revisions.

Order of work, so that a refused import changes nothing it need not:

1. read the class map (``--map``) and the annotation files (``core.labels.formats``);
2. map every label to a lab class: the map given, else the map stored for the
   same source by an earlier import, else a class of the same name. Unknown
   names are problems (one line per name, with its first record);
3. with ``images_dir``: the image files under it that the catalog lacks are
   ingested as an outside source (``core.ingest.engine.import_paths`` with no
   scanner: no scanner-model checks, the same hashing, dedupe and quarantine),
   and each image remembers its path relative to that folder;
4. each labelled image is matched to a catalog image by content hash (when the
   format gives one), by relative path, or by file name (a name several catalog
   images share is ambiguous: a problem);
5. one transaction writes the class map, the import record, the revisions and
   the label checks' flags, with an audit entry.

Problems refuse the whole import (:class:`LabelImportError`, nothing written
beyond images ingested in step 3, which stay catalogued) unless ``skip_bad``:
then the records with problems are left out and the rest is written, every
problem still reported. Importing the same file twice changes nothing the
second time: a box equal to a live one is kept, and boxes an earlier import
wrote that the file no longer has get a deleting revision.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.catalog import Catalog
from core.catalog import ingest_store
from core.catalog import label_store as store
from core.errors import InputProblem, LabelImportError
from core.inputs import Problems, Text, is_missing, parse_yaml, read_bytes, shown
from core.labels.model import LabelBox, LabelImage, ReadResult

# Files under --images DIR taken as images (annotation files beside them are not).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".dcm", ".dcs", ".dicom")
# Coordinates closer than this are the same box (formats round differently).
SAME_BOX_PX = 0.01
# An image whose size in the file differs from the catalog's by more than this is a different image.
SIZE_TOLERANCE_PX = 1


@dataclass
class ImportReport:
    """What an import read, matched and wrote (or would have written)."""

    format: str
    path: str
    source: str
    images_dir: str | None
    written: bool = False
    import_id: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    ingest: dict[str, int] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ClassMap:
    source: str | None
    classes: dict[str, str | None]  # external name -> lab class (None: leave its boxes out)


def read_class_map(path: str | Path, class_names: set[str]) -> ClassMap:
    """Read a class map YAML; raises InputFileError with line numbers.

    Either ``{external: class}`` or ``{source: NAME, classes: {external: class}}``;
    an empty class (``~``) leaves that name's boxes out on purpose.
    """
    problems = Problems(str(path))
    raw = read_bytes(path, problems)
    root = parse_yaml(raw, problems) if raw is not None else None
    source = None
    classes: dict[str, str | None] = {}
    if root is not None and not root.is_mapping:
        problems.add(root.line, "expected a mapping of external class names to lab classes")
    elif root is not None:
        body = root
        if "classes" in root.value:
            body = root.value["classes"]
            if "source" in root.value:
                source, problem = Text().check(root.value["source"])
                if problem:
                    problems.add(root.value["source"].line, f"'source' {problem}")
            extra = set(root.value) - {"classes", "source"}
            for key in sorted(extra):
                problems.add(root.value[key].line, f"unknown key '{shown(key)}' (allowed: source, classes)")
        if not body.is_mapping:
            problems.add(body.line, "'classes' must map external class names to lab classes")
        else:
            for external, node in body.value.items():
                if is_missing(node):
                    classes[str(external)] = None
                    continue
                name, problem = Text().check(node)
                if problem:
                    problems.add(node.line, f"class for '{shown(str(external))}' {problem}")
                elif name not in class_names:
                    problems.add(node.line, f"'{shown(str(external))}' maps to '{shown(name)}', which is no lab class "
                                            f"(known: {', '.join(sorted(class_names)) or 'none'})")
                else:
                    classes[str(external)] = name
    problems.raise_if_any()
    return ClassMap(source, classes)


def _where(image: LabelImage, box: LabelBox | None = None) -> str:
    out = f"image '{image.file_name}'" + (f" (record {image.ext_id})" if image.ext_id else "")
    if box is not None and box.ext_id:
        out += f", object {box.ext_id}"
    return out


def _image_files(root: Path) -> list[Path]:
    out = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out += [Path(folder) / f for f in sorted(files)
                if f.lower().endswith(IMAGE_SUFFIXES) and not f.startswith(".")]
    return out


def _ingest(lab, images_dir: Path, workers: int | None, progress: Callable[[str], None] | None
            ) -> tuple[dict[str, int], dict[str, str], dict[str, int]]:
    """Ingest DIR's image files; returns (relative path -> image id, relative path ->
    why it was not taken, outcome totals)."""
    from core.ingest.engine import import_paths

    files = _image_files(images_dir)
    taken: dict[str, int] = {}
    refused: dict[str, str] = {}
    totals: dict[str, int] = {}
    if files:
        for step in import_paths(lab, files, scanner=None, workers=workers):
            totals = dict(step.totals)
            if progress:
                progress(step.message)
            for outcome in step.outcomes:
                rel = Path(outcome.source).relative_to(images_dir).as_posix()
                if outcome.image_id is not None:
                    taken[rel] = outcome.image_id
                else:
                    refused[rel] = f"{outcome.outcome}: {outcome.detail}"
        with lab.catalog.write() as txn:
            store.set_rel_paths(txn, sorted((i, rel) for rel, i in taken.items()))
    return taken, refused, totals


def _annotation_files(fmt: str, path: Path) -> Path:
    """The file to read for a folder XLab exported: its JSON formats would read the
    export's ``manifest.json`` as one more annotation file."""
    from core.labels.exports import MANIFEST

    manifest = path / MANIFEST
    if not (path.is_dir() and manifest.is_file()):
        return path
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
        files = [f for f in data["files"] if f.endswith(".json")] if data.get("format") == fmt else []
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return path
    return path / files[0] if len(files) == 1 and (path / files[0]).is_file() else path


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a["class_id"] == b["class_id"] and all(abs(a[k] - b[k]) <= SAME_BOX_PX for k in ("x0", "y0", "x1", "y1"))


def import_labels(lab, fmt: str, path: str | Path, *, images_dir: str | Path | None = None,
                  map_path: str | Path | None = None, source: str | None = None, skip_bad: bool = False,
                  actor: str | None = None, workers: int | None = None,
                  progress: Callable[[str], None] | None = None, box_source: str = "import") -> ImportReport:
    """Import the annotations at ``path`` (a file, or a folder of the format's files).

    Returns the report; raises :class:`LabelImportError` (with the report) when
    refused. ``lab`` is a :class:`core.lab.Lab` (ingest needs its store).
    ``box_source``: the label source of boxes without a score (``ground_truth``
    for a reference such as the simulator's; scored boxes are ``model``).
    """
    lab.catalog.require("labels")
    from core.labels import formats

    catalog: Catalog = lab.catalog
    path = Path(path)
    if fmt not in formats.FORMATS:
        raise LabelImportError([InputProblem(str(path), None, f"unknown format '{fmt}' (use {', '.join(formats.FORMATS)})")],
                               None)
    if not path.exists():
        raise LabelImportError([InputProblem(str(path), None, "no such file or folder")], None)
    root = Path(images_dir) if images_dir is not None else None
    if root is not None and not root.is_dir():
        raise LabelImportError([InputProblem(str(root), None, "the --images folder does not exist")], None)
    class_ids = store.class_ids(catalog)
    given = read_class_map(map_path, set(class_ids)) if map_path is not None else ClassMap(None, {})
    source = (source or given.source or store.last_import_source(catalog, str(path))
              or (path.stem if path.is_file() else path.name) or "import")
    report = ImportReport(fmt, str(path), source, None if root is None else str(root))
    problems: list[InputProblem] = []

    def problem(file: str, where: str, message: str) -> None:
        line = int(where[5:]) if where.startswith("line ") and where[5:].isdigit() else None
        problems.append(InputProblem(file, line, message if line else (f"{where}: {message}" if where else message)))

    result: ReadResult = formats.read(fmt, _annotation_files(fmt, path))
    report.counts.update(result.counts)
    for p in result.problems:
        if p.fatal:
            problem(p.file, p.where, p.message)
        else:
            report.problems.append(str(p))

    # Labels to lab classes.
    stored = store.class_map(catalog, source)
    mapping: dict[str, int | None] = {}
    for external in sorted({b.label for im in result.labels.images for b in im.boxes} | set(result.labels.categories)):
        if external in given.classes:
            mapping[external] = None if given.classes[external] is None else class_ids[given.classes[external]]
        elif external in stored:
            mapping[external] = stored[external]
        elif external in class_ids:
            mapping[external] = class_ids[external]
    unknown: dict[str, list] = {}
    for im in result.labels.images:
        for b in im.boxes:
            if b.label not in mapping:
                unknown.setdefault(b.label, []).append((im, b))
    for label, where in sorted(unknown.items()):
        im, b = where[0]
        problem(str(path), "", f"unknown class '{shown(label)}' ({len(where)} box(es), first on {_where(im, b)}); "
                               f"map it to a lab class in --map (known: {', '.join(sorted(class_ids))})")
    report.counts["unknown_class_boxes"] = sum(len(v) for v in unknown.values())

    # Images that can never match: not in the catalog's names, not under --images.
    if problems and not skip_bad:
        raise LabelImportError(problems, report)

    taken, refused = {}, {}
    if root is not None:
        taken, refused, report.ingest = _ingest(lab, root, workers, progress)

    matched: dict[int, list[LabelImage]] = {}
    unmatched = ambiguous = 0
    for im in result.labels.images:
        image_id = ingest_store.image_id_for_sha(catalog, im.sha256.lower()) if im.sha256 else None
        if image_id is None:
            image_id = taken.get(im.file_name)
        if image_id is None:
            by_path = store.images_by_rel_path(catalog, im.file_name)
            image_id = by_path[0] if len(by_path) == 1 else None
        if image_id is None:
            by_name = store.images_by_name(catalog, Path(im.file_name).name)
            if len(by_name) > 1:
                ambiguous += 1
                problem(str(path), "", f"{_where(im)}: {len(by_name)} catalog images have this file name "
                                       f"(#{', #'.join(map(str, by_name[:5]))}); give --images DIR to match by path")
                continue
            image_id = by_name[0] if by_name else None
        if image_id is None:
            unmatched += 1
            why = f" (not taken from --images: {refused[im.file_name]})" if im.file_name in refused else ""
            problem(str(path), "", f"{_where(im)}: no catalog image with this content hash, path or name{why}")
            continue
        row = store.image(catalog, image_id)
        if im.width and im.height and row["width"] and row["height"] and (
                abs(im.width - row["width"]) > SIZE_TOLERANCE_PX or abs(im.height - row["height"]) > SIZE_TOLERANCE_PX):
            problem(str(path), "", f"{_where(im)} is {im.width} x {im.height} in the file but catalog image "
                                   f"#{image_id} is {row['width']} x {row['height']}: not the same image")
            continue
        matched.setdefault(image_id, []).append(im)
    report.counts.update(images_matched=len(matched), images_unmatched=unmatched, images_ambiguous=ambiguous)
    if problems and not skip_bad:
        if taken:
            report.problems.append(f"{len(taken)} image(s) under {root} are in the catalog now (kept); no labels were written")
        raise LabelImportError(problems, report)
    report.problems += [str(p) for p in problems]

    with catalog.write(actor) as txn:
        if given.classes:
            store.save_class_map(txn, source, {k: (None if v is None else class_ids[v]) for k, v in given.classes.items()})
        import_id = store.insert_import(txn, fmt, str(path), source, report.images_dir, {}, report.problems)
        rows: list[dict[str, Any]] = []
        negatives: list[int] = []
        added = kept = removed = ignored = 0
        current: dict[int, list[dict[str, Any]]] = {}
        for b in store.current_boxes(txn, sorted(matched)):
            current.setdefault(b["image_id"], []).append(b)
        for image_id, images in matched.items():
            wanted: list[dict[str, Any]] = []
            for im in images:
                for b in im.boxes:
                    if b.label in unknown:
                        continue
                    class_id = mapping[b.label]
                    if class_id is None:
                        ignored += 1
                        continue
                    new = {"image_id": image_id, "class_id": class_id, "label": b.label, "x0": b.x0, "y0": b.y0,
                           "x1": b.x1, "y1": b.y1, "iscrowd": int(b.iscrowd), "difficult": int(b.difficult),
                           "truncated": int(b.truncated), "score": b.score, "rotation": b.rotation,
                           "source": box_source if b.score is None else "model", "qa_state": "unreviewed",
                           "deleted": 0, "note": f"{source}: {b.ext_id}" if b.ext_id else source}
                    if not any(_same(new, w) for w in wanted):
                        wanted.append(new)
            live = current.get(image_id, [])
            for new in wanted:
                if any(_same(new, old) for old in live):
                    kept += 1
                else:
                    rows.append(new)
                    added += 1
            for old in live:
                if old["source"] in ("import", "model") and not any(_same(old, new) for new in wanted):
                    rows.append({k: old[k] for k in store.BOX_FIELDS} | {"annotation_id": old["annotation_id"],
                                                                       "deleted": 1, "note": f"not in {source}"})
                    removed += 1
            if any(im.negative for im in images) and not wanted:
                negatives.append(image_id)
        from core.labels.annotations import write_revisions
        from core.labels.qa import check_images

        write_revisions(txn, rows, import_id)
        already = store.negatives(txn, negatives)
        fresh = [i for i in negatives if i not in already]
        if fresh:
            first = store.reserve_seqs(txn, len(fresh))
            for n, image_id in enumerate(fresh):
                store.insert_image_label(txn, image_id, True, "import", first + n, import_id)
        report.counts.update(boxes_added=added, boxes_kept=kept, boxes_removed=removed, ignored_class_boxes=ignored,
                             negatives_added=len(fresh))
        store.update_import_counts(txn, import_id, report.counts)
        report.flags = check_images(txn, sorted(matched))
        txn.audit("import", "label_imports", import_id, None,
                  {"format": fmt, "path": str(path), "source": source, "counts": report.counts})
    report.written, report.import_id = True, import_id
    return report
