"""A small lab with a tiny scanner, and image files shaped like its output."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from core.inventory import import_inventory
from core.inventory.yamlfile import parse_inventory
from core.lab import Lab
from core.simulator.scene import ScannerGeometry, render_scan

TINY_INVENTORY = """\
threat_families: [{name: knives}]
threat_classes: [{name: knife_kitchen, family: knives}]
threat_items: [{barcode: TI-1, class: knife_kitchen}, {barcode: TI-2, class: knife_kitchen}]
luggage_types: [{name: tray}]
bags: [{barcode: BG-1, luggage_type: tray, clutter: low}, {barcode: BG-2, luggage_type: tray, clutter: high}]
scanner_models: [{name: TINY, vendor: SimScan, width: 96, height: 64, bit_depth: 16, pixel_mm: 8}]
scanners: [{name: T1, model: TINY, station: bench-1}, {name: T2, model: TINY, station: bench-2}]
poses: [{name: flat}]
"""
GEOMETRY = ScannerGeometry(96, 64, 8.0, 16, False, 1.0, 0.01)


def tiny_lab(root: Path, inventory: str = TINY_INVENTORY) -> Lab:
    """A new lab at ``root`` with ``inventory`` (YAML text) imported."""
    lab = Lab.init(root)
    import_inventory(lab.catalog, parse_inventory(inventory.encode(), "tiny.yaml"))
    return lab


def scan_png(seed: int, class_name: str | None = "knife_kitchen") -> bytes:
    scan = render_scan(GEOMETRY, "tray", "low", class_name, "flat", 0, "none", seed)
    ok, buf = cv2.imencode(".png", scan.high)
    assert ok
    return buf.tobytes()


def drop(lab: Lab, scanner: str, name: str, data: bytes) -> Path:
    folder = lab.paths.drop_folder(scanner)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


def encode(pixels: np.ndarray, ext: str) -> bytes:
    ok, buf = cv2.imencode(ext, pixels)
    assert ok
    return buf.tobytes()


# What a hostile file does to a decoder, installed in the decode worker
# processes (they import sitecustomize at start) for files holding a marker.
DECODER_MISHAPS = {
    # what a segfaulting decoder or the kernel's out-of-memory killer does
    "crash": "os.kill(os.getpid(), signal.SIGKILL)",
    # hung inside C code that holds the interpreter lock: no Python signal
    # handler or thread can run (pause() waits for ever)
    "hang": "ctypes.CDLL(None).pause()",
}
_DECODER_HOOK = '''
import ctypes
import os
import signal

if os.environ.get("XLAB_TEST_DECODER_MARKER"):
    import core.ingest.decode as decode_module

    _real = decode_module.decode

    def decode(data):
        if os.environ["XLAB_TEST_DECODER_MARKER"].encode() in data:
            {mishap}
        return _real(data)

    decode_module.decode = decode
'''


def install_decoder_mishap(tmp_path: Path, monkeypatch, mishap: str, marker: str) -> None:
    """Decode workers started after this meet ``mishap`` on any file containing ``marker``."""
    hook = tmp_path / "decoder_hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_DECODER_HOOK.format(mishap=DECODER_MISHAPS[mishap]))
    repo = Path(__file__).resolve().parents[2]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(hook), str(repo)]))
    monkeypatch.setenv("XLAB_TEST_DECODER_MARKER", marker)
