"""Training throughput: does the data loader keep the device fed?

Two figures from one data set of simulated 16-bit scans, in one run:

* training images/s: the real run process (``python -m core.training``) training the model, read
  from its epoch events (the first epoch, with its start-up, left out);
* the baseline: the data loader alone (decode, resize, attenuation, augmentation, collate; pinned
  memory on a GPU), same workers and batch size, images/s over a whole epoch.

``loader headroom`` = loader images/s / training images/s: above 1 the loader outruns the device
(training is device-bound, as it should be); near or below 1 the device waits for data (add
workers). With a GPU, its utilisation is sampled during training (``torch.cuda.utilization()``
through pynvml, else ``nvidia-smi``; "n/a" when neither answers).

    PYTHONPATH=. .venv/bin/python -m tests.bench.bench_train [--model M --image-size 512 --images 256]

Defaults: with a GPU, retinanet_resnet50_fpn at 1024 px, 512 images, 8 workers; on a CPU,
retinanet_tiny at 256 px, 160 images, 2 workers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def make_data(root: Path, images: int, size: int) -> Path:
    from core.training.manifest import write_manifest
    from tests.train.simdata import write_split

    rows = write_split(root / "images", images, seed=5, size=size)
    write_manifest(root / "train.jsonl", rows)
    return root / "train.jsonl"


def loader_rate(manifest: Path, params: dict, epochs: int = 2) -> dict:
    """The data loader alone: images/s over its last epoch (the workers already started)."""
    import torch

    from core.training import data
    from core.training.manifest import read_manifest

    rows = read_manifest(manifest)
    dataset = data.ManifestImages(rows, params["image_size"], augment=params.get("augment", True), seed=1,
                                  scale_jitter=0.2, translate=0.1)
    sampler = data.EpochSampler(len(rows), 1)
    loader = data.loader(dataset, params["batch_size"], params["workers"], torch.cuda.is_available(), sampler)
    count, seconds = 0, 0.0
    for epoch in range(epochs):
        sampler.start(epoch)
        count, t = 0, time.perf_counter()
        for batch in loader:
            count += len(batch["images"])
        seconds = time.perf_counter() - t
    return {"images": count, "seconds": seconds, "images_per_s": count / seconds}


class GpuSampler:
    """GPU utilisation sampled twice a second in a thread while training runs."""

    def __init__(self):
        self.samples: list[float] = []
        self.source = "n/a"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _one(self) -> float | None:
        import torch

        if self.source in ("n/a", "pynvml"):
            try:
                value = float(torch.cuda.utilization(0))
                self.source = "pynvml"
                return value
            except Exception:  # noqa: BLE001 - pynvml missing or the driver does not answer
                if self.source == "pynvml":
                    return None
        try:
            done = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                                   "-i", "0"], capture_output=True, text=True, timeout=5)
            value = float(done.stdout.strip().splitlines()[0])
            self.source = "nvidia-smi"
            return value
        except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
            return None

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            value = self._one()
            if value is not None:
                self.samples.append(value)

    def __enter__(self) -> GpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def mean(self) -> float | None:
        return statistics.fmean(self.samples) if self.samples else None


def train_rate(manifest: Path, out: Path, model: str, params: dict, gpu: bool) -> dict:
    """The run process training ``model``: images/s of its epochs after the first, and GPU use."""
    spec = {"run_id": 0, "kind": "train", "model": model, "classes": ["pistol", "magazine"],
            "manifests": {"train": str(manifest), "validation": None, "test": None}, "params": params,
            "weights": None, "resume": None, "out_dir": str(out)}
    (out.parent / "spec.json").write_text(json.dumps(spec))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    sampler = GpuSampler() if gpu else None
    t = time.perf_counter()
    if sampler:
        with sampler:
            done = subprocess.run([sys.executable, "-m", "core.training", str(out.parent / "spec.json")], cwd=REPO,
                                  env=env, capture_output=True, text=True)
    else:
        done = subprocess.run([sys.executable, "-m", "core.training", str(out.parent / "spec.json")], cwd=REPO,
                              env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    events = [json.loads(line) for line in done.stdout.splitlines()]
    if done.returncode != 0 or not events or events[-1]["event"] != "done":
        raise RuntimeError(f"the training run failed: {events[-1] if events else done.stderr[-2000:]}")
    epochs = [e for e in events if e["event"] == "epoch"]
    steady = epochs[1:] or epochs
    steps = [e for e in events if e["event"] == "step"]
    memory = [e["gpu_mem_mb"] for e in steps if e.get("gpu_mem_mb") is not None]
    return {"device": events[0]["device_name"], "epochs": len(epochs),
            "images_per_s": statistics.fmean(e["images_per_s"] for e in steady),
            "epoch_images_per_s": [e["images_per_s"] for e in epochs], "wall_s": wall,
            "gpu_util": sampler.mean() if sampler else None, "gpu_util_source": sampler.source if sampler else "n/a",
            "gpu_util_samples": len(sampler.samples) if sampler else 0,
            "gpu_mem_mb": max(memory) if memory else None}


def run(model: str | None = None, image_size: int | None = None, images: int | None = None, epochs: int = 3,
        batch_size: int = 8, workers: int | None = None, amp: bool = True, threads: int = 0,
        root: Path | None = None) -> dict:
    """Both figures for one configuration (None: the device's default; ``threads``: the run's torch
    CPU threads, 0 for one per core); see the module's doc."""
    import torch

    gpu = torch.cuda.is_available()
    model = model or ("retinanet_resnet50_fpn" if gpu else "retinanet_tiny")
    image_size = image_size or (1024 if gpu else 256)
    images = images or (512 if gpu else 160)
    workers = workers if workers is not None else (8 if gpu else 2)
    params = {"epochs": epochs, "batch_size": batch_size, "image_size": image_size, "workers": workers, "seed": 1,
              "amp": amp, "validate_every": 0, "threads": threads}
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        folder = Path(tmp)
        manifest = make_data(folder, images, image_size)
        base = loader_rate(manifest, params)
        (folder / "run").mkdir()
        train = train_rate(manifest, folder / "run", model, params, gpu)
    return {"model": model, "image_size": image_size, "images": images, "batch_size": batch_size,
            "workers": workers, "gpu": gpu, "loader": base, "train": train,
            "headroom": base["images_per_s"] / train["images_per_s"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model")
    parser.add_argument("--image-size", type=int)
    parser.add_argument("--images", type=int)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--no-amp", action="store_true")
    args = parser.parse_args(argv)
    r = run(args.model, args.image_size, args.images, args.epochs, args.batch_size, args.workers, not args.no_amp)
    t, b = r["train"], r["loader"]
    print(f"training {r['model']} on {r['images']} simulated 16-bit scans at {r['image_size']} px, batch "
          f"{r['batch_size']}, {r['workers']} loader workers, on {t['device']}:")
    print(f"  training        {t['images_per_s']:8.1f} images/s  (epochs after the first: "
          f"{', '.join(f'{x:.1f}' for x in t['epoch_images_per_s'][1:]) or '-'})")
    print(f"  loader alone    {b['images_per_s']:8.1f} images/s  (baseline: decode, resize, attenuation, "
          f"augmentation, collate)")
    verdict = "the loader keeps up" if r["headroom"] >= 1.5 else "the device waits for data: add workers"
    print(f"  loader headroom {r['headroom']:8.2f}x  ({verdict})")
    if r["gpu"]:
        util = f"{t['gpu_util']:.0f}% ({t['gpu_util_samples']} samples, {t['gpu_util_source']})" \
            if t["gpu_util"] is not None else "n/a"
        memory = f"{t['gpu_mem_mb']:.0f} MB" if t["gpu_mem_mb"] is not None else "n/a"
        print(f"  GPU utilisation {util}; peak memory {memory}")
    else:
        print("  GPU utilisation n/a (no GPU: CPU figures)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
