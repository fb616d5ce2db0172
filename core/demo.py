"""The demo lab: shipped inventory and plan, and all its scanners simulated."""

from __future__ import annotations

import threading
import time
from datetime import date
from collections.abc import Iterator
from pathlib import Path

from core.catalog.records import all_rows
from core.errors import XLabError
from core.inventory import import_inventory
from core.catalog import quota_store
from core.lab import Lab
from core.progress import Progress, run_to_end
from core.quota.plans import create_plan, publish_plan
from core.quota.spec import read_plan_spec
from core.resources import resource
from core.capture.planner import PlanOptions, plan_captures
from core.capture.sessions import (
    HEARTBEAT_S,
    SessionBusyError,
    close_session,
    heartbeat,
    list_sessions,
    scan_barcode,
    session_view,
    start_session,
)
from core.simulator.scanner import Setup, session_setups, simulate


# In the demo the person at the window runs this station's session (scanning
# its tags in Today); simulated technicians run the others.
DEMO_STATION = "SCN-A"
# The PNG/TIFF scanners' ground truth is imported after this many files, or
# this long, whichever comes first (the window shows labels within a minute).
GROUND_TRUTH_EVERY_FILES = 16
GROUND_TRUTH_EVERY_S = 20.0
# How long the end of a headless run waits for ingest to take the last files.
DRAIN_S = 60.0
# The starter batch: one test session of this many steps (one image each, the
# plan's cap) on the scanner with the smallest images, a train session that
# mirrors it with train-pool objects, frozen as these two versions, so a new
# lab's Datasets and Labels areas have something to show.
STARTER_STEPS = 24
STARTER_TEST, STARTER_TRAIN = "demo-test", "demo-train"
# A starter image ingest has not taken after this long is left behind (the demo goes on).
STARTER_FILE_S = 15.0
# Each demo scanner writes the format at its index (SCN-C: DICOS with ground-truth TDRs).
SCANNER_FORMATS = ("png16", "tiff16", "dicos", "pseudo_png")


def create_demo_lab(root: str | Path | None = None, actor: str = "demo", plan_sessions: bool = True,
                    starter_datasets: bool = False, starter_run: bool = False) -> Lab:
    """Make (or bring up to date) the demo lab; idempotent. ``plan_sessions``:
    plan today's capture sessions when none is open. ``starter_datasets``
    (``xlab demo``, the window's demo lab): see :func:`make_starter_datasets`.
    ``starter_run``: also queue :func:`queue_starter_run` (when training is
    installed). Off by default, so a demo lab made for a test holds no images."""
    lab = Lab.init(root)
    import_inventory(lab.catalog, resource("demo", "inventory.yaml"), actor=actor)
    spec = read_plan_spec(resource("demo", "plan.yaml"))
    if quota_store.find_plan(lab.catalog, spec.name, published_only=True) is None:
        create_plan(lab.catalog, spec, actor=actor)
        publish_plan(lab.catalog, spec.name, actor=actor)
    if starter_datasets:
        make_starter_datasets(lab, spec.name, actor=actor)
    if starter_run:
        queue_starter_run(lab, actor=actor)
    if plan_sessions and not list_sessions(lab, include_closed=False):
        run_to_end(plan_captures(lab, PlanOptions(quota_plan=spec.name, start=date.today(), shifts=1, weekends=True),
                                 actor=actor))
    return lab


def simulated_technician(lab: Lab, scanner: str, name: str) -> Iterator[Setup | None]:
    """A technician who starts today's session on ``scanner``, scans each step's
    tags, and puts in what the step wants (None while there is nothing to do)."""
    follow = session_setups(lab, scanner)
    last_beat = 0.0
    while True:
        sessions = [s for s in list_sessions(lab, scanner=scanner, include_closed=False)]
        session = next((s for s in sessions if s["held_by"] == name), None)
        if session is None:
            free = next((s for s in sessions if not s["held_by"]), None)
            if free is None:
                yield None
                continue
            try:
                start_session(lab, free["id"], name, host="demo")
            except SessionBusyError:
                yield None
                continue
            session = free
        elif time.monotonic() - last_beat > HEARTBEAT_S:
            heartbeat(lab, session["id"], name, host="demo")
            last_beat = time.monotonic()
        step = session_view(lab, session["id"]).active
        if step is None:
            close_session(lab, session["id"], name)
            yield None
            continue
        if step["confirmed_at"] is None:
            for tag in (step["bag"], step["item"]):
                if tag:
                    scan_barcode(lab, session["id"], tag, name)
        yield next(follow)


def run_demo_scanners(
    lab: Lab, rate_per_minute: float = 12.0, count: int | None = None, seed: int = 0, with_ingest: bool = False
) -> Iterator[Progress]:
    """Every scanner of the lab writing at ``rate_per_minute``, interleaved.

    Each scanner captures its session's steps: ``DEMO_STATION`` once the
    person at the window has scanned the step's tags, the others run by
    simulated technicians. ``with_ingest`` (no window) also runs ingest on a
    thread of its own so the steps fill, and a simulated technician runs
    ``DEMO_STATION`` too; a run of ``count`` files then waits for ingest to
    take the last ones. Stops after ``count`` files in all (never if None);
    each yield is one file written.

    Labels arrive as a lab's would: the DICOS scanner's in its ground-truth
    TDRs (ingest), the others' as the simulator's ground truth imported every
    few files (:class:`GroundTruthImport`) and once more at the end.
    """
    names = [s["name"] for s in all_rows(lab.catalog, "scanners")]
    streams = [
        simulate(lab, name, None, rate_per_minute=0, fmt=SCANNER_FORMATS[i % len(SCANNER_FORMATS)],
                 write_mode="slow" if i == 1 else "rename", seed=seed + i,
                 setups=session_setups(lab, name) if name == DEMO_STATION and not with_ingest
                 else simulated_technician(lab, name, f"sim-{name.lower()}"))
        for i, name in enumerate(names)
    ]
    interval = 60.0 / (rate_per_minute * max(1, len(streams))) if rate_per_minute > 0 else 0.0
    written = 0
    turn = 0
    last_done = [0] * len(streams)
    stop = threading.Event()
    failure: list[BaseException] = []
    ingest = (threading.Thread(target=_ingest_until, args=(lab, stop, failure), daemon=True, name="demo-ingest")
              if with_ingest else None)
    if ingest is not None:
        ingest.start()
    truth = GroundTruthImport(lab)
    next_at = time.monotonic()
    finished = False
    try:
        while streams and (count is None or written < count):
            if failure:
                raise XLabError(f"ingest stopped: {failure[0]}") from failure[0]
            index = turn % len(streams)
            turn += 1
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            step = next(streams[index])
            if step.done == last_done[index]:
                continue  # that scanner waits for its technician
            last_done[index] = step.done
            next_at = max(next_at + interval, time.monotonic())
            written += 1
            truth.wrote()
            yield Progress(written, count, step.message)
        finished = True
    finally:
        for stream in streams:
            stream.close()
        if ingest is not None and finished and not failure:
            _drain(lab, stop)
        stop.set()
        if ingest is not None:
            ingest.join(30)
        truth.run()


def _drain(lab: Lab, stop: threading.Event) -> None:
    """Wait (up to DRAIN_S) until the drop folders hold no file ingest has yet to take."""
    from core.ingest.engine import waiting_files

    folders = [lab.paths.drop_folder(s["name"]) for s in all_rows(lab.catalog, "scanners")]
    deadline = time.monotonic() + DRAIN_S
    while time.monotonic() < deadline and not stop.is_set():
        if not any(waiting_files(folder) for folder in folders):
            return
        time.sleep(0.2)


class GroundTruthImport:
    """The simulator's ground truth of the PNG and TIFF scanners, imported through
    the same path as any lab's labels (``core.labels.imports``, COCO, matched by
    file name, boxes with source ``ground_truth``; a clean bag is a labelled
    negative). DICOS files are left out: their truth comes in their TDRs.

    A record waits until ingest has catalogued its image. Each import writes
    its COCO file under ``LAB/simulator/ground_truth_imports``. Not thread-safe:
    one per scanner loop.
    """

    def __init__(self, lab: Lab):
        self.lab = lab
        self.done: set[str] = set()
        self.files = 0
        self.last = time.monotonic()

    def wrote(self) -> None:
        """One more file written: import when enough files or time went by."""
        self.files += 1
        if self.files >= GROUND_TRUTH_EVERY_FILES or time.monotonic() - self.last >= GROUND_TRUTH_EVERY_S:
            self.run()

    def run(self) -> int:
        """Import the records whose images are in the catalog now; returns how many.
        A refused import is left for the next run (the demo goes on)."""
        import json
        import logging

        from core.catalog import label_store
        from core.labels.formats import coco
        from core.labels.imports import import_labels
        from core.labels.model import LabelBox, LabelImage, LabelSet

        self.files, self.last = 0, time.monotonic()
        folder = self.lab.paths.ground_truth
        if not folder.is_dir():
            return 0
        images, names = [], []
        for path in sorted(folder.glob("*/*.json")):
            if path.name in self.done:
                continue
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # being written; next time
            if record.get("format") == "dicos" or (record.get("class_name") and not record.get("box")):
                self.done.add(path.name)  # in its TDR; or an item the render could not place: nothing to say
                continue
            found = label_store.images_by_name(self.lab.catalog, record["file"])
            if len(found) != 1:
                continue  # not ingested yet
            if label_store.image_box_counts(self.lab.catalog, found) or label_store.negatives(self.lab.catalog, found):
                self.done.add(path.name)  # labelled already (a clean bag's step; an earlier run)
                continue
            row = label_store.image(self.lab.catalog, found[0])
            boxes = (LabelBox(record["class_name"], *map(float, record["box"])),) if record.get("class_name") else ()
            images.append(LabelImage(record["file"], row["width"], row["height"], boxes, negative=not boxes))
            names.append(path.name)
        if not images:
            return 0
        categories = tuple(sorted({b.label for im in images for b in im.boxes}))
        out = self.lab.paths.root / "simulator" / "ground_truth_imports"
        (written,) = coco.write(LabelSet(tuple(images), categories), out,
                                file_name=f"ground_truth_{time.strftime('%Y%m%d_%H%M%S')}_{len(self.done):06d}.json")
        try:
            import_labels(self.lab, "coco", written, source="simulator", box_source="ground_truth", actor="simulator")
        except XLabError as exc:
            logging.getLogger(__name__).warning("demo ground truth not imported (%s); tried again later", exc)
            return 0
        self.done.update(names)
        return len(images)


def _ingest_until(lab: Lab, stop: threading.Event, failure: list[BaseException]) -> None:
    from core.ingest.engine import watch
    from core.ingest.log import ingest_logging

    ingest_logging(lab)
    progress = watch(lab)
    try:
        for _ in progress:
            if stop.is_set():
                break
    except BaseException as exc:  # noqa: BLE001 - reported by the scanner loop
        failure.append(exc)
    finally:
        progress.close()


# -- the starter batch ----------------------------------------------------------


def make_starter_datasets(lab: Lab, plan: str, *, actor: str = "demo", seed: int = 7) -> dict[str, object]:
    """The demo lab's first datasets, made the way a lab makes them.

    On a lab with no capture session yet: a test session of ``STARTER_STEPS``
    steps planned from ``plan`` on the scanner with the smallest images, then a
    train session mirroring it step for step with train-pool objects (same
    class, luggage type x clutter, pose), each run by a simulated technician,
    written into the drop folder in the scanner's format and ingested from it;
    the simulator's ground truth is imported (DICOS: it came in the TDRs).
    Then ``demo-test`` (rule test) and ``demo-train`` (rule train, 1:1 clone of
    ``demo-test``) are frozen from ``plan``.

    Idempotent: an existing version is not frozen again; nothing is captured
    on a lab that has sessions. Cells below target are in the freeze reports
    (returned, by version name), never hidden; a capture or freeze that cannot
    be done is logged as one line and the demo goes on. Calling thread.
    """
    import logging

    from core.datasets.versions import freeze, list_versions

    log = logging.getLogger(__name__)
    have = {v["name"] for v in list_versions(lab.catalog)}
    if {STARTER_TEST, STARTER_TRAIN} <= have:
        return {}
    if not list_sessions(lab):
        try:
            _capture_starter(lab, plan, actor, seed)
        except XLabError as exc:
            log.warning("demo starter batch not captured (%s); the demo goes on without it", exc)
    reports: dict[str, object] = {}
    for name, rule in ((STARTER_TEST, "test"), (STARTER_TRAIN, "train")):
        if name in have:
            continue
        options: dict = {"plan": plan, "actor": actor}
        if rule == "train":
            if STARTER_TEST not in have and STARTER_TEST not in reports:
                log.warning("demo dataset %s not frozen: it clones %s, which is not frozen", name, STARTER_TEST)
                continue
            options.update(parent=STARTER_TEST, ratio=1, seed=seed)
        try:
            # A version with no image would stand in the way of the first real one.
            if freeze(lab.catalog, name, rule, dry_run=True, **options).images == 0:
                log.warning("demo dataset %s not frozen: no %s image has passed label QA yet", name, rule)
                continue
            reports[name] = freeze(lab.catalog, name, rule, **options)
        except XLabError as exc:
            log.warning("demo dataset %s not frozen: %s", name, exc)
    return reports


# The demo's run: a small detector from scratch on the starter train set at
# small images, which trains on a CPU in a few minutes. What it shows is the
# loop (curves, per-class verdicts against the KPIs, the next ratio steps),
# not a good model: 24 images of 20 classes teach little.
STARTER_RUN = {"model": "retinanet_tiny",
               # One thread: the demo's scanners and ingest share the CPU, and two threads
               # fighting them run many times slower than one.
               "params": {"epochs": 6, "image_size": 256, "batch_size": 4, "seed": 7, "threads": 1}}


def queue_starter_run(lab: Lab, *, actor: str = "demo") -> dict | None:
    """Queue the demo's training run on ``demo-train`` (evaluated on ``demo-test``) when training is
    installed, the starter versions exist and the lab has no run yet; returns the run, else None
    (the reason logged). Whoever works the queue starts it (the window's Runs area, ``xlab run work``)."""
    import logging

    from core.datasets.versions import list_versions
    from core.runs.queue import missing_training_modules
    from core.runs.records import RunRequest, create_run, list_runs

    log = logging.getLogger(__name__)
    if missing_training_modules():
        log.info("demo run not queued: training is not installed (pip install -e '.[train]')")
        return None
    if list_runs(lab):
        return None
    if not any(v["name"] == STARTER_TRAIN for v in list_versions(lab.catalog)):
        log.warning("demo run not queued: %s is not frozen", STARTER_TRAIN)
        return None
    try:
        return create_run(lab, RunRequest("train", STARTER_RUN["model"], train=STARTER_TRAIN,
                                          params=dict(STARTER_RUN["params"]),
                                          note="the demo's first run: the loop on simulated data"), actor)
    except XLabError as exc:
        log.warning("demo run not queued: %s", exc)
        return None


def _starter_scanner(lab: Lab) -> tuple[str, str]:
    """The scanner with the smallest images (the fastest to simulate and ingest), and its demo format."""
    models = {m["id"]: m["width"] * m["height"] for m in all_rows(lab.catalog, "scanner_models")}
    scanners = all_rows(lab.catalog, "scanners")
    if not scanners:
        raise XLabError("the demo inventory has no scanner")
    index = min(range(len(scanners)), key=lambda i: (models.get(scanners[i]["model_id"], 0), i))
    return scanners[index]["name"], SCANNER_FORMATS[index % len(SCANNER_FORMATS)]


def _capture_starter(lab: Lab, plan: str, actor: str, seed: int) -> None:
    from core.capture.sessions import open_session
    from core.catalog import capture_store

    scanner, fmt = _starter_scanner(lab)
    technician = f"sim-{scanner.lower()}"
    run_to_end(plan_captures(lab, PlanOptions(
        quota_plan=plan, start=date.today(), shifts=1, weekends=True, shift_hours=1.0,
        rate_per_hour=float(STARTER_STEPS), scanners=(scanner,), splits=("test",)), actor=actor))
    planned = list_sessions(lab, scanner=scanner, include_closed=False)
    if not planned:
        raise XLabError(f"the quota plan '{plan}' has no test setup left for {scanner}")
    test_steps = capture_store.steps_of(lab.catalog, planned[0]["id"])
    _run_starter_session(lab, scanner, fmt, technician, seed)
    train = _train_mirror(lab, test_steps)
    if not train:
        raise XLabError("the inventory has no train-pool item or bag to mirror the test session with")
    open_session(lab, scanner, technician, train, actor=actor, host="demo")
    _run_starter_session(lab, scanner, fmt, technician, seed + 1)
    GroundTruthImport(lab).run()


def _train_mirror(lab: Lab, test_steps: list[dict]) -> list:
    """The test steps again with train-pool objects: each test bag replaced by a train bag of
    its luggage type and clutter, each item by a train item of its class (one for one, so the
    session still packs each bag once); a step with no counterpart is left out."""
    from collections import defaultdict

    from core.capture.sessions import StepSpec
    from core.catalog import capture_store

    objects = capture_store.planner_objects(lab.catalog)
    pools = {(kind, oid): split for kind, oid, split in objects["pools"]}
    class_of = {i[0]: i[2] for i in objects["items"]}
    stratum_of = {b[0]: (b[2], b[3]) for b in objects["bags"]}
    train_items, train_bags = defaultdict(list), defaultdict(list)
    for item_id, barcode, class_id in objects["items"]:
        if pools.get(("item", item_id)) == "train":
            train_items[class_id].append(barcode)
    for bag_id, barcode, luggage, clutter in objects["bags"]:
        if pools.get(("bag", bag_id)) == "train":
            train_bags[(luggage, clutter)].append(barcode)
    taken: dict[object, int] = defaultdict(int)

    def counterpart(pool: dict, key, chosen: dict, original: int) -> str | None:
        if original not in chosen:
            candidates = pool.get(key) or []
            chosen[original] = candidates[taken[key] % len(candidates)] if candidates else None
            taken[key] += 1
        return chosen[original]

    bags: dict[int, str | None] = {}
    items: dict[int, str | None] = {}
    out = []
    for st in test_steps:
        bag = counterpart(train_bags, stratum_of[st["bag_id"]], bags, st["bag_id"])
        item = (counterpart(train_items, class_of[st["item_id"]], items, st["item_id"])
                if st["item_id"] is not None else None)
        if bag is None or (st["item_id"] is not None and item is None):
            continue
        out.append(StepSpec(bag, item, st["pose"], "train", st["images_wanted"]))
    return out


def _run_starter_session(lab: Lab, scanner: str, fmt: str, technician: str, seed: int) -> None:
    """A simulated technician runs the scanner's open session to its end, each file
    ingested from the drop folder before the next step (so it joins its step)."""
    from core.ingest.engine import waiting_files, watch

    stream = simulate(lab, scanner, None, rate_per_minute=0, fmt=fmt, seed=seed,
                      setups=simulated_technician(lab, scanner, technician))
    # The simulator renames each file into place whole, so ingest need not wait for it to settle.
    ingest = watch(lab, [scanner], workers=0, settle_s=0.02, poll_s=0.02)
    folder = lab.paths.drop_folder(scanner)
    settled: set[str] = set()  # files ingest left in the folder (rejected)
    written = 0
    idle_since = time.monotonic()
    try:
        while list_sessions(lab, scanner=scanner, include_closed=False):
            progress = next(stream)
            if progress.done == written:
                # The technician closed the session (the loop ends), or waits on a file
                # ingest set aside or quarantined (the step never fills).
                if time.monotonic() - idle_since > STARTER_FILE_S:
                    raise XLabError(f"the starter session on {scanner} stopped filling; closed as it is")
                continue
            written = progress.done
            deadline = time.monotonic() + STARTER_FILE_S
            while time.monotonic() < deadline:
                left = set(waiting_files(folder)) - settled
                if not left:
                    break
                settled |= {o.source for o in next(ingest).outcomes if o.outcome == "rejected"}
            else:
                raise XLabError(f"ingest did not take the starter batch's file in {folder} within {STARTER_FILE_S:g} s")
            idle_since = time.monotonic()
    finally:
        stream.close()
        ingest.close()
        for session in list_sessions(lab, scanner=scanner, include_closed=False):
            if session["held_by"] == technician:
                close_session(lab, session["id"], technician)
