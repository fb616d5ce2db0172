"""The simulated scanner: picks setups from the inventory, renders, writes files.

Files land in the scanner's drop folder the way a real unit writes them:
``rename`` writes a hidden ``.NAME.part`` then renames it (what most scanners
do), ``slow`` writes the final name in chunks over about half a second (what a
network share looks like), so ingest meets both. Ground truth (class, item,
bag, pose, threat box) goes to a separate folder that ingest never reads.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from core.catalog.records import all_rows
from core.errors import UnknownNameError, XLabError
from core.lab import Lab
from core.progress import Progress
from core.simulator import dicos
from core.simulator.physics import pseudo_colour
from core.simulator.scene import ScannerGeometry, render_scan

FORMATS = ("png16", "tiff16", "pseudo_png", "dicos")
WRITE_MODES = ("rename", "slow")


@dataclass(frozen=True)
class Setup:
    bag: str
    luggage_type: str
    clutter: str
    item: str | None
    class_name: str | None
    pose: str | None
    placement: str
    rotation_deg: float
    occlusion: str


@dataclass(frozen=True)
class SimulatedScanner:
    name: str
    model: str
    geometry: ScannerGeometry
    drop_folder: Path


def scanner_for(lab: Lab, name: str) -> SimulatedScanner:
    scanners = {s["name"]: s for s in all_rows(lab.catalog, "scanners")}
    if name not in scanners:
        known = ", ".join(sorted(scanners)) or "none; import the inventory first"
        raise UnknownNameError(f"no scanner named '{name}' (known: {known})")
    row = scanners[name]
    model = next(m for m in all_rows(lab.catalog, "scanner_models") if m["id"] == row["model_id"])
    drop = Path(row["drop_folder"])
    if not drop.is_absolute():
        drop = lab.paths.root / drop
    geometry = ScannerGeometry(
        width=model["width"], height=model["height"], pixel_mm=model["pixel_mm"],
        bit_depth=model["bit_depth"], dual_energy=bool(model["dual_energy"]),
        gain=model["gain"], noise=model["noise"],
    )
    return SimulatedScanner(name, model["name"], geometry, drop)


def random_setups(lab: Lab, rng: np.random.Generator, clean_fraction: float = 0.2) -> Iterator[Setup]:
    """An endless stream of setups drawn from the lab's inventory."""
    bags = all_rows(lab.catalog, "bags")
    items = all_rows(lab.catalog, "threat_items")
    poses = all_rows(lab.catalog, "poses")
    if not bags:
        raise XLabError("the inventory has no bags to scan; import the inventory first")
    luggage = {r["id"]: r["name"] for r in all_rows(lab.catalog, "luggage_types")}
    classes = {r["id"]: r["name"] for r in all_rows(lab.catalog, "threat_classes")}
    while True:
        bag = bags[int(rng.integers(len(bags)))]
        if not items or not poses or rng.random() < clean_fraction:
            yield Setup(bag["barcode"], luggage[bag["luggage_type_id"]], bag["clutter_level"], None, None, None, "flat", 0.0, "none")
            continue
        item = items[int(rng.integers(len(items)))]
        pose = poses[int(rng.integers(len(poses)))]
        yield Setup(
            bag["barcode"], luggage[bag["luggage_type_id"]], bag["clutter_level"], item["barcode"],
            classes[item["class_id"]], pose["name"], pose["placement"], pose["rotation_deg"], pose["occlusion"],
        )


def session_setups(lab: Lab, scanner_name: str) -> Iterator[Setup | None]:
    """What a careful technician puts in the scanner: the setup of the running
    session's confirmed active step, as many times as the step wants images
    (plus one per image set aside for a retake); None while there is nothing
    to scan (tags not confirmed yet, or the step's images are in flight)."""
    from core.catalog import capture_store

    written: dict[int, int] = {}
    while True:
        step = capture_store.scanner_active_step(lab.catalog, scanner_name)
        if step is None or written.get(step["id"], 0) >= step["images_wanted"] + step["images_set_aside"]:
            yield None
            continue
        written[step["id"]] = written.get(step["id"], 0) + 1
        yield Setup(
            step["bag"], step["luggage_type"], step["clutter"], step["item"], step["class_name"], step["pose"],
            step["placement"] or "flat", step["rotation_deg"] or 0.0, step["occlusion"] or "none",
        )


def _encode(fmt: str, high: np.ndarray, low: np.ndarray | None, bit_depth: int) -> bytes:
    import cv2

    if fmt == "png16":
        ok, buf = cv2.imencode(".png", high)
    elif fmt == "tiff16":
        ok, buf = cv2.imencode(".tif", high)
    elif fmt == "pseudo_png":
        rgb = pseudo_colour(low if low is not None else high, high)
        ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    else:
        raise XLabError(f"unknown image format '{fmt}' (use {', '.join(FORMATS)})")
    if not ok:
        raise XLabError(f"could not encode a {fmt} image")
    return buf.tobytes()


def _write(path: Path, data: bytes, mode: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "rename":
        temp = path.with_name(f".{path.name}.part")
        with open(temp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    elif mode == "slow":
        chunk = max(1, len(data) // 8)
        with open(path, "wb") as f:
            for start in range(0, len(data), chunk):
                f.write(data[start:start + chunk])
                f.flush()
                time.sleep(0.06)
    else:
        raise XLabError(f"unknown write mode '{mode}' (use {', '.join(WRITE_MODES)})")


def simulate(
    lab: Lab,
    scanner_name: str,
    count: int | None,
    *,
    rate_per_minute: float = 60.0,
    fmt: str = "png16",
    write_mode: str = "rename",
    seed: int = 0,
    clean_fraction: float = 0.2,
    setups: Iterator[Setup | None] | None = None,
) -> Iterator[Progress]:
    """Write ``count`` scans (forever if None) into the scanner's drop folder.

    A generator: each yield reports one file written and is where the caller
    may stop. Deterministic per ``seed`` (file contents, not names or times).
    """
    if fmt not in FORMATS:
        raise XLabError(f"unknown image format '{fmt}' (use {', '.join(FORMATS)})")
    scanner = scanner_for(lab, scanner_name)
    rng = np.random.default_rng(seed)
    stream = setups if setups is not None else random_setups(lab, rng, clean_fraction)
    truth_dir = lab.paths.ground_truth / scanner.name
    truth_dir.mkdir(parents=True, exist_ok=True)
    interval = 60.0 / rate_per_minute if rate_per_minute > 0 else 0.0
    extension = {"tiff16": ".tif", "dicos": ".dcs"}.get(fmt, ".png")
    next_at = time.monotonic()
    written = 0
    while count is None or written < count:
        setup = next(stream)
        if setup is None:  # nothing to scan yet (see session_setups)
            time.sleep(0.25)
            yield Progress(written, count, f"{scanner.name}: waiting for the technician")
            continue
        scan_seed = int(rng.integers(2**63 - 1))
        scan = render_scan(scanner.geometry, setup.luggage_type, setup.clutter, setup.class_name,
                           setup.placement, setup.rotation_deg, setup.occlusion, scan_seed)
        stamp = datetime.now().strftime("%Y%m%d_%H%M%S_%f")[:-3]
        name = f"{scanner.name}_{stamp}_{written:06d}{extension}"
        report = None
        if fmt == "dicos":
            data, uid = dicos.dx_bytes(scan.high, scanner.geometry.bit_depth, scanner.name, scanner.model,
                                       scanner.geometry.pixel_mm)
            if scan.box is not None:
                report = dicos.tdr_bytes(uid, [(setup.class_name, scan.box)], scanner.name, scanner.model)
        else:
            data = _encode(fmt, scan.high, scan.low, scanner.geometry.bit_depth)
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        next_at = max(next_at + interval, time.monotonic())
        truth = {"file": name, "scanner": scanner.name, "model": scanner.model, "seed": scan_seed,
                 "box": scan.box, "format": fmt, **asdict(setup)}
        (truth_dir / f"{name}.json").write_text(json.dumps(truth, indent=1))
        _write(scanner.drop_folder / name, data, write_mode)
        if report is not None:
            # A real scanner's ATR writes its report beside the image; here it is ground truth.
            _write(scanner.drop_folder / name.replace(".dcs", "_tdr.dcs"), report, write_mode)
        written += 1
        yield Progress(written, count, f"{scanner.name}: wrote {name}")
