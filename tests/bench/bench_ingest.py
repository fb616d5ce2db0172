"""Ingest benchmarks, each printed against a baseline measured in the same run.

    python -m tests.bench.bench_ingest            # full size (several minutes)
    python -m tests.bench.bench_ingest --smoke    # seconds

1. throughput of drop-folder ingest (default settings) on 2048x2048 16-bit PNG
   and TIFF vs the floor of only reading and decoding the same files with the
   same number of processes (target >= 75 %);
2. archive import of 100,000 small images: images/s and memory at 25/50/100 %
   (target: flat);
3. near-duplicate lookup against 2,000,000 stored hashes (target <= 20 ms),
   vs a plain Python scan;
4. file landed -> visible in the catalog, p95 under 300 images/min (target <= 1 s).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from core.catalog.db import Catalog
from core.ingest.engine import import_paths, watch
from core.ingest.neardup import NearDuplicateIndex
from core.ingest.worker import read_and_decode
from core.inventory import import_inventory
from core.inventory.yamlfile import parse_inventory
from core.lab import Lab
from core.simulator.scene import ScannerGeometry, render_scan

INVENTORY = """\
threat_families: [{name: knives}]
threat_classes: [{name: knife_kitchen, family: knives}]
luggage_types: [{name: tray}]
scanner_models:
  - {name: BIG, vendor: SimScan, width: SIZE, height: SIZE, bit_depth: 16, pixel_mm: PITCH}
  - {name: SMALL, vendor: SimScan, width: 96, height: 64, bit_depth: 16, pixel_mm: 8}
  - {name: DX-620, vendor: SimScan, width: 1024, height: 768, bit_depth: 16, pixel_mm: 0.95}
scanners:
  - {name: BIG-1, model: BIG, station: s1}
  - {name: SMALL-1, model: SMALL, station: s2}
  - {name: LIVE-1, model: DX-620, station: s3}
"""


def _lab(root: Path, size: int) -> Lab:
    lab = Lab.init(root)
    text = INVENTORY.replace("SIZE", str(size)).replace("PITCH", f"{700 / size:.4f}")
    import_inventory(lab.catalog, parse_inventory(text.encode(), "bench.yaml"))
    return lab


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _unique_variants(base: np.ndarray, count: int, ext: str, first: int = 0) -> list[bytes]:
    """Distinct files (different bytes) from one rendered scan, numbered from ``first``."""
    out = []
    for i in range(first, first + count):
        variant = base.copy()
        variant[0, : 8] = np.frombuffer(i.to_bytes(16, "little"), dtype=np.uint16)
        ok, buf = cv2.imencode(ext, variant)
        out.append(buf.tobytes())
    return out


def throughput(root: Path, size: int, per_format: int, workers: int) -> dict:
    lab = _lab(root / "tp-lab", size)
    geometry = ScannerGeometry(size, size, 700 / size, 16, False, 1.0, 0.01)
    folder = root / "tp-files"
    folder.mkdir()
    for fmt, ext in (("png", ".png"), ("tiff", ".tif")):
        for i in range(per_format):
            scan = render_scan(geometry, "hard_case", "high", "pistol" if i % 2 else None, "flat", i * 7, "none", seed=i)
            ok, buf = cv2.imencode(ext, scan.high)
            (folder / f"{fmt}_{i:03d}{ext}").write_bytes(buf.tobytes())
    files = sorted(str(p) for p in folder.iterdir())
    for f in files:  # both sides read from the page cache
        Path(f).read_bytes()
    start = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        decoded = list(pool.map(read_and_decode, files, chunksize=1))
    floor_s = time.perf_counter() - start
    # Default settings: the scanner's drop folder, watched (files placed before the clock starts).
    drop_folder = lab.paths.drop_folder("BIG-1")
    drop_folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        (drop_folder / Path(f).name).write_bytes(Path(f).read_bytes())
    os.sync()  # the scanner's writes are on disk before the clock starts, as the floor's are
    start = time.perf_counter()
    last = None
    for last in watch(lab, ["BIG-1"], once=True, workers=workers):
        pass
    ingest_s = time.perf_counter() - start
    assert last is not None and last.totals.get("ingested") == len(files), last.totals
    in_catalog = lab.catalog.query_one("SELECT COUNT(*) AS n FROM images")["n"]
    lab.close()
    return {"files": len(files), "floor_decoded": sum(1 for n in decoded if n == size * size), "ingested": last.totals.get("ingested", 0),
            "in_catalog": in_catalog, "floor_per_s": len(files) / floor_s, "ingest_per_s": len(files) / ingest_s,
            "ratio": floor_s / ingest_s}


def archive(root: Path, count: int, workers: int) -> dict:
    lab = _lab(root / "ar-lab", 256)
    folder = root / "ar-files"
    geometry = ScannerGeometry(96, 64, 8.0, 16, False, 1.0, 0.01)
    luggage, clutter = ("hard_case", "soft_bag", "backpack", "tray", "parcel"), ("low", "medium", "high")
    for chunk in range(0, count, 1000):
        sub = folder / f"{chunk // 1000:04d}"
        sub.mkdir(parents=True)
        for i in range(chunk, min(count, chunk + 1000)):
            # Distinct scans, as an archive holds: different bags, clutter, items and seeds.
            scan = render_scan(geometry, luggage[i % 5], clutter[i % 3], "knife" if i % 3 else "pistol",
                               "flat", (i * 37) % 180, "none", seed=i)
            ok, buf = cv2.imencode(".png", scan.high)
            (sub / f"{i:06d}.png").write_bytes(buf.tobytes())
    marks, rss = {count // 4, count // 2}, {}
    start = time.perf_counter()
    last = None
    for last in import_paths(lab, [folder], scanner="SMALL-1", workers=workers):
        for mark in list(marks):
            if last.done >= mark:
                rss[mark] = _rss_mb()
                marks.discard(mark)
    elapsed = time.perf_counter() - start
    rss[count] = _rss_mb()
    assert last is not None and last.totals.get("ingested") == count, last.totals
    in_catalog = lab.catalog.query_one("SELECT COUNT(*) AS n FROM images")["n"]
    lab.close()
    children_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    written = sum(1 for p in folder.rglob("*.png"))
    return {"count": count, "written": written, "ingested": last.totals.get("ingested", 0), "in_catalog": in_catalog,
            "per_s": count / elapsed, "rss": rss, "children_max_mb": children_mb}


def near_duplicates(stored: int, queries: int) -> dict:
    rng = np.random.default_rng(0)
    hashes = rng.integers(-(2**63), 2**63 - 1, size=stored, dtype=np.int64)
    index = NearDuplicateIndex()
    index.add_many(list(zip(range(stored), hashes.tolist(), ["test"] * stored)))
    probes = [int(h) ^ 0b1011 for h in rng.choice(hashes, queries)]
    start = time.perf_counter()
    found = [index.query(probe) for probe in probes]
    per_query = (time.perf_counter() - start) / queries
    mask = (1 << 64) - 1
    plain = [h & mask for h in hashes.tolist()]
    start = time.perf_counter()
    target = probes[0] & mask
    scanned = [i for i, h in enumerate(plain) if (h ^ target).bit_count() <= 4]
    python_s = time.perf_counter() - start
    # The baseline answers the same question: both must find the same stored images.
    return {"stored": stored, "queries": queries, "ms": per_query * 1000, "python_ms": python_s * 1000,
            "probes_matched": sum(1 for hits in found if hits),
            "index_hits": sorted(m.image_id for m in found[0]), "scan_hits": scanned}


def latency(root: Path, seconds: float, per_minute: float) -> dict:
    lab = _lab(root / "lat-lab", 256)
    base = render_scan(ScannerGeometry(1024, 768, 0.95, 16, True, 1.0, 0.01), "soft_bag", "medium", "pistol", "flat", 0, "none", 3).high
    count = max(3, int(seconds * per_minute / 60))
    payloads = _unique_variants(base, count, ".png")
    drop_folder = lab.paths.drop_folder("LIVE-1")
    drop_folder.mkdir(parents=True, exist_ok=True)
    landed: dict[str, float] = {}
    visible: dict[str, float] = {}
    ingest = watch(lab, ["LIVE-1"])
    stop = threading.Event()

    def run_ingest():
        try:
            for _ in ingest:
                if stop.is_set():
                    break
        finally:
            ingest.close()  # stops the worker processes

    def observe():
        reader = Catalog.open(lab.paths.catalog, create=False)
        while not stop.is_set() or len(visible) < len(landed):
            for (name,) in reader.reader().execute("SELECT original_name FROM images").fetchall():
                visible.setdefault(name, time.perf_counter())
            if len(visible) >= count:
                break
            time.sleep(0.02)
        reader.close()

    ingest_thread = threading.Thread(target=run_ingest, daemon=True)
    observer = threading.Thread(target=observe)
    ingest_thread.start()
    time.sleep(1.5)  # the worker processes start before the burst
    observer.start()
    interval = 60.0 / per_minute
    next_at = time.perf_counter()
    for i, data in enumerate(payloads):
        time.sleep(max(0.0, next_at - time.perf_counter()))
        next_at += interval
        name = f"live_{i:05d}.png"
        temp = drop_folder / f".{name}.part"
        temp.write_bytes(data)
        os.replace(temp, drop_folder / name)
        landed[name] = time.perf_counter()
    observer.join(timeout=60)
    stop.set()
    ingest_thread.join(timeout=30)  # watch() yields at least once a second, then stops
    lab.close()
    delays = sorted(visible[n] - landed[n] for n in landed if n in visible)
    p95 = delays[min(len(delays) - 1, int(0.95 * len(delays)))]
    return {"files": count, "landed": len(landed), "seen": len(delays), "delays_s": delays,
            "p50_s": statistics.median(delays), "p95_s": p95}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    size, per_format, count, stored, seconds = (256, 3, 300, 20_000, 4) if args.smoke else (2048, 60, 100_000, 2_000_000, 60)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t = throughput(root, size, per_format, args.workers)
        print(f"1. ingest throughput, {t['files']} files {size}x{size} 16-bit PNG+TIFF, {args.workers} processes:")
        print(f"   floor (read+decode only) {t['floor_per_s']:7.1f} images/s")
        print(f"   xlab ingest (default)    {t['ingest_per_s']:7.1f} images/s")
        print(f"   ratio: {t['ratio']:.0%} of the floor   target >= 75%")
        a = archive(root, count, args.workers)
        rss = ", ".join(f"{n:,}: {mb:.0f} MB" for n, mb in sorted(a["rss"].items()))
        print(f"2. archive import of {a['count']:,} small images: {a['per_s']:.0f} images/s")
        print(f"   parent memory at {rss}; worker peak {a['children_max_mb']:.0f} MB   target: flat")
        n = near_duplicates(stored, 200)
        print(f"3. near-duplicate lookup against {n['stored']:,} hashes: {n['ms']:.2f} ms per image   target <= 20 ms")
        print(f"   plain Python scan {n['python_ms']:.0f} ms (baseline); ratio {n['python_ms'] / n['ms']:.0f}x")
        lat = latency(root, seconds, 300)
        print(f"4. landed -> visible in the catalog at 300 images/min, {lat['files']} files ({lat['seen']} seen):")
        print(f"   p50 {lat['p50_s']:.3f} s, p95 {lat['p95_s']:.3f} s   target p95 <= 1 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
