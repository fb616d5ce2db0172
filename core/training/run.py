"""One training or evaluation run, in its own process: ``python -m core.training SPEC.json``.

It reads its spec (:mod:`core.training.spec`), its manifests and the image files they name, and
writes only in the run's folder: ``events.jsonl`` (:mod:`core.training.events`), ``checkpoints/
last.pt``, ``model.pt`` and ``detections-<split>.json``. It never opens the catalog: the process that
started it records its events.

Training: the data loader's workers decode and augment (:mod:`core.training.data`) while the device
trains; SGD or AdamW with a linear warm-up and a cosine decay per step; mixed precision
(``torch.autocast`` and a gradient scaler) on a GPU. A checkpoint (model, optimizer, schedule,
scaler, epoch, step within it, the loss so far, RNG state, spec) is written at each epoch's end, every
``checkpoint_minutes`` within one, and on cancel; a run given it as ``resume`` goes on from that
step in the same order of batches and the same augmentations, so on the CPU it ends where an
uninterrupted run would. After training: ``model.pt`` (the final state_dict) and the detections on the
validation and test images, in COCO results format, boxes in original image pixels, scores down to
``score_threshold`` (the parent chooses the operating threshold).

Cancel: the file ``OUT_DIR/cancel`` or SIGTERM/SIGINT; checked after every step (and between
prediction batches), the run writes a checkpoint and ends with ``cancelled`` (exit code 0).

Exit codes: 0 after ``done`` or ``cancelled``, 1 after ``error`` (its message is one line; an
unexpected failure's traceback goes to stderr, which the parent keeps in ``process.log``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from core.errors import TrainingError
from core.training.events import EventLog
from core.training.manifest import read_manifest
from core.training.spec import Spec, check, load_raw

CANCEL_FILE = "cancel"
STEP_EVENT_EVERY_S = 0.5
# Consecutive steps with a loss that is not a number before the run gives up.
MAX_BAD_STEPS = 20
CHECKPOINT_FORMAT = 1
# Where training stands: epoch (0-based, in progress), steps and images (``position``) done in it,
# steps in all, the epoch's loss so far, its seconds before a stop.
STATE_KEYS = ("epoch", "step_in_epoch", "position", "step", "loss_sum", "loss_steps", "seconds")


class Cancelled(Exception):
    """Raised inside the run when a stop was asked; the run has already kept what it can."""


class StopWatch:
    """Whether a stop was asked: the cancel file, or SIGTERM/SIGINT (caught, so they stop cleanly)."""

    def __init__(self, out_dir: Path):
        self.file = out_dir / CANCEL_FILE
        self.signalled = False
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, frame) -> None:  # noqa: ANN001
        self.signalled = True

    def asked(self) -> bool:
        return self.signalled or self.file.exists()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _lr_factor(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return 0.01 + 0.99 * step / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


class Run:
    """The run a spec describes; :meth:`execute` does it and returns its terminal event's kind."""

    def __init__(self, spec: Spec, log: EventLog, stop: StopWatch):
        self.spec, self.log, self.stop = spec, log, stop
        # The manifests first: a bad row is refused before seconds go into loading torch.
        self.rows = {split: read_manifest(path, len(spec.classes)) if path else []
                     for split, path in spec.manifests.items()}
        import torch

        self.torch = torch
        self.params = dict(spec.params)
        if self.params["seed"] is None:
            self.params["seed"] = random.SystemRandom().randrange(2 ** 31)
        self.seed = self.params["seed"]
        if self.params["threads"]:
            torch.set_num_threads(self.params["threads"])
        self.checkpoint_path = spec.out_dir / "checkpoints" / "last.pt"
        self.warned: set[str] = set()
        self.device = self._device()
        self.amp = bool(self.params["amp"]) and self.device.type == "cuda"
        self.pin = self.device.type == "cuda"

    # --- set-up -------------------------------------------------------------------------------

    def _device(self):  # noqa: ANN202
        torch = self.torch
        wanted = self.params["device"]
        if wanted == "cuda" and not torch.cuda.is_available():
            raise TrainingError(f"device 'cuda' was asked but this machine has no usable CUDA GPU "
                                f"(torch {torch.__version__}, CUDA build {torch.version.cuda or 'none'}); "
                                "use device auto or cpu")
        if wanted in ("auto", "cuda") and torch.cuda.is_available():
            # Batches come in few shapes (padded to multiples of 32): tuning each once pays off.
            torch.backends.cudnn.benchmark = True
            torch.set_float32_matmul_precision("high")
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def _environment(self) -> dict[str, Any]:
        import torchvision

        torch = self.torch
        env: dict[str, Any] = {"device": str(self.device), "torch": torch.__version__,
                               "torchvision": torchvision.__version__, "cuda": torch.version.cuda, "amp": self.amp}
        if self.device.type == "cuda":
            env["device"] = f"cuda:{self.device.index}"
            env["device_name"] = torch.cuda.get_device_name(self.device)
        else:
            import platform

            env["device_name"] = f"CPU ({platform.processor() or platform.machine()}, "\
                                 f"{torch.get_num_threads()} threads)"
            if self.spec.kind == "train" and not torch.cuda.is_available():
                from core.training.probe import cpu_estimate_s

                seconds = cpu_estimate_s(self.spec.model, len(self.rows["train"]), self.params["epochs"],
                                         self.params["image_size"], torch.get_num_threads())
                env["warning"] = (f"no CUDA GPU here: training runs on the CPU, about "
                                  f"{max(1, round(seconds / 60))} min for {len(self.rows['train'])} images x "
                                  f"{self.params['epochs']} epochs at {self.params['image_size']} px "
                                  f"({self.spec.model}); a GPU is many times faster")
        return env

    def warn(self, message: str) -> None:
        self.log.emit("warning", message=message)

    def _warn_skipped(self, skipped: list[tuple[str, str]]) -> None:
        for path, reason in skipped:
            if path not in self.warned:
                self.warned.add(path)
                self.warn(f"image {path} skipped: {reason}")

    def _model(self):  # noqa: ANN202
        from core.training.models import build

        self.torch.manual_seed(self.seed)
        return build(self.spec.model, len(self.spec.classes), self.params).to(self.device)

    def _load_state(self, path: Path) -> dict[str, Any]:
        try:
            state = self.torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same clear message
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise TrainingError(f"{path} is not a PyTorch weights file this run can read ({first})") from None
        if not isinstance(state, dict):
            raise TrainingError(f"{path} does not hold a state_dict (a mapping of tensor names to tensors)")
        return state

    def _initial_weights(self, model) -> dict[str, Any]:  # noqa: ANN001
        from core.training.models import load_weights

        path = self.spec.weights
        state = self._load_state(path)
        if isinstance(state.get("model"), dict):  # a checkpoint of a run
            state = state["model"]
        try:
            loaded, left = load_weights(model, state)
        except ValueError as exc:
            raise TrainingError(f"weights file {path} does not fit {self.spec.model}: {exc}") from None
        if self.spec.kind == "eval" and (left or loaded < len(model.state_dict())):
            raise TrainingError(f"weights file {path} is not a whole {self.spec.model} for these "
                                f"{len(self.spec.classes)} classes ({loaded} of its tensors fit, "
                                f"{len(model.state_dict())} are needed)")
        if left:
            self.warn(f"weights file {path}: {left} of its {loaded + left} tensors do not fit "
                      f"{self.spec.model} and were left out (they start untrained)")
        return {"path": str(path), "sha256": _sha256(path), "tensors_loaded": loaded, "tensors_left_out": left}

    # --- the run ------------------------------------------------------------------------------

    def execute(self) -> str:
        torch = self.torch
        random.seed(self.seed)
        torch.manual_seed(self.seed)
        env = self._environment()
        images = {split: len(rows) for split, rows in self.rows.items()}
        model = self._model()
        weights = self._initial_weights(model) if self.spec.weights else None
        self.log.emit("start", run_id=self.spec.run_id, kind=self.spec.kind, model=self.spec.model, **env,
                      images=images, params=self.params, classes=list(self.spec.classes), init_weights=weights,
                      resume=str(self.spec.resume) if self.spec.resume else None)
        if self.spec.kind == "train":
            self.train(model)
            self._write_weights(model)
        for split in ("validation", "test"):
            if self.rows[split]:
                self._write_detections(model, split)
        self.log.emit("done")
        return "done"

    def train(self, model) -> None:  # noqa: ANN001
        from core.training import data

        torch, p = self.torch, self.params
        rows = self.rows["train"]
        if not rows:
            raise TrainingError(f"the train manifest {self.spec.manifests['train']} lists no images")
        dataset = data.ManifestImages(rows, p["image_size"], augment=p["augment"], seed=self.seed,
                                      scale_jitter=p["scale_jitter"], translate=p["translate"])
        sampler = data.EpochSampler(len(rows), self.seed)
        loader = data.loader(dataset, p["batch_size"], p["workers"], self.pin, sampler)
        steps_per_epoch = math.ceil(len(rows) / p["batch_size"])
        total = steps_per_epoch * p["epochs"]
        # A short run cannot spend a hundred steps warming up: at most a fifth of it.
        warmup = min(p["warmup_steps"], total // 5)
        params = [q for q in model.parameters() if q.requires_grad]
        if p["optimizer"] == "adamw":
            optimizer = torch.optim.AdamW(params, lr=p["lr"], weight_decay=p["weight_decay"])
        else:
            optimizer = torch.optim.SGD(params, lr=p["lr"], momentum=p["momentum"], weight_decay=p["weight_decay"])
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(s, warmup, total))
        scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        state = {"epoch": 0, "step_in_epoch": 0, "position": 0, "step": 0, "loss_sum": 0.0, "loss_steps": 0,
                 "seconds": 0.0}
        if self.spec.resume:
            state = self._resume(model, optimizer, scheduler, scaler)
        started = time.monotonic()
        last_event = 0.0
        window_images, window_start = 0, time.monotonic()
        bad_steps = 0
        next_checkpoint = time.monotonic() + p["checkpoint_minutes"] * 60
        for epoch in range(state["epoch"], p["epochs"]):
            model.train()
            sampler.start(epoch, state["position"])
            epoch_start, epoch_images = time.monotonic(), 0
            for batch in loader:
                self._warn_skipped(batch["skipped"])
                if batch["images"]:
                    images = [im.to(self.device, non_blocking=self.pin) for im in batch["images"]]
                    targets = [{k: v.to(self.device, non_blocking=self.pin) for k, v in t.items()}
                               for t in batch["targets"]]
                    with torch.autocast(self.device.type, enabled=self.amp):
                        losses = model(images, targets)
                    loss = sum(losses.values())
                    optimizer.zero_grad(set_to_none=True)
                    if torch.isfinite(loss):
                        bad_steps = 0
                        scaler.scale(loss).backward()
                        if p["clip_grad"]:
                            scaler.unscale_(optimizer)
                            torch.nn.utils.clip_grad_norm_(params, p["clip_grad"])
                        scaler.step(optimizer)
                        scaler.update()
                        state["loss_sum"] += float(loss.detach())
                        state["loss_steps"] += 1
                    else:
                        bad_steps += 1
                        if bad_steps >= MAX_BAD_STEPS:
                            raise TrainingError(f"training diverged: the loss was not a number for {bad_steps} "
                                                f"steps in a row (epoch {epoch + 1}); lower lr (now {p['lr']})")
                        self.warn(f"step {state['step'] + 1}: the loss is not a number; step skipped")
                    n = len(images)
                    epoch_images += n
                    window_images += n
                lr = optimizer.param_groups[0]["lr"]
                scheduler.step()
                state["position"] += len(batch["indexes"]) + len(batch["skipped"])
                state["step"] += 1
                state["step_in_epoch"] += 1
                now = time.monotonic()
                if batch["images"] and (now - last_event >= STEP_EVENT_EVERY_S or state["step_in_epoch"] == 1):
                    done_here = state["step"] - (state.get("resumed_step") or 0)
                    self.log.emit("step", epoch=epoch + 1, step=state["step"], steps_per_epoch=steps_per_epoch,
                                  loss=float(loss.detach()), losses={k: float(v.detach()) for k, v in losses.items()},
                                  lr=lr,
                                  images_per_s=window_images / max(now - window_start, 1e-9),
                                  **self._gpu(), eta_s=(now - started) / max(done_here, 1) * (total - state["step"]))
                    last_event, window_images, window_start = now, 0, now
                if self.stop.asked():
                    state["seconds"] += time.monotonic() - epoch_start
                    path = self._checkpoint(model, optimizer, scheduler, scaler, state)
                    self.log.emit("cancelled", checkpoint=str(path))
                    raise Cancelled
                if now >= next_checkpoint:
                    self._checkpoint(model, optimizer, scheduler, scaler, state)
                    next_checkpoint = now + p["checkpoint_minutes"] * 60
            trained = time.monotonic() - epoch_start
            if epoch_images == 0 and state["loss_steps"] == 0:
                raise TrainingError("no image of the train manifest could be read (see the warnings)")
            val = None
            last = epoch + 1 == p["epochs"]
            if self.rows["validation"] and p["validate_every"] and ((epoch + 1) % p["validate_every"] == 0 or last):
                try:
                    val = self._validate(model)
                except Cancelled:  # the epoch's training is kept; its validation is left undone
                    val = None
            self.log.emit("epoch", epoch=epoch + 1, loss=state["loss_sum"] / max(state["loss_steps"], 1), val=val,
                          seconds=state["seconds"] + trained, images_per_s=epoch_images / max(trained, 1e-9))
            state.update(epoch=epoch + 1, step_in_epoch=0, position=0, loss_sum=0.0, loss_steps=0, seconds=0.0)
            self._checkpoint(model, optimizer, scheduler, scaler, state)
            if self.stop.asked():
                self.log.emit("cancelled", checkpoint=str(self.checkpoint_path))
                raise Cancelled

    def _gpu(self) -> dict[str, Any]:
        torch = self.torch
        if self.device.type != "cuda":
            return {"gpu_mem_mb": None, "gpu_util": None}
        mem = torch.cuda.max_memory_allocated(self.device) / 2 ** 20
        torch.cuda.reset_peak_memory_stats(self.device)
        try:
            util = float(torch.cuda.utilization(self.device))
        except Exception:  # noqa: BLE001 - needs pynvml and a driver that answers; optional
            util = None
        return {"gpu_mem_mb": round(mem, 1), "gpu_util": util}

    # --- checkpoints --------------------------------------------------------------------------

    def _checkpoint(self, model, optimizer, scheduler, scaler, state: dict[str, Any]) -> Path:  # noqa: ANN001
        torch = self.torch
        self.checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
        rng = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state_all()
        payload = {"format": CHECKPOINT_FORMAT, "model_name": self.spec.model, "classes": list(self.spec.classes),
                   "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                   "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "rng": rng,
                   "spec": json.dumps(self.spec.raw), "seed": self.seed,
                   **{k: state[k] for k in STATE_KEYS}}
        # Written beside and renamed: a process killed while writing leaves the previous one whole.
        temp = self.checkpoint_path.with_name(self.checkpoint_path.name + ".part")
        torch.save(payload, temp)
        os.replace(temp, self.checkpoint_path)
        self.log.emit("checkpoint", path=str(self.checkpoint_path), epoch=state["epoch"] + (state["step_in_epoch"] > 0),
                      step=state["step"], step_in_epoch=state["step_in_epoch"])
        return self.checkpoint_path

    def _resume(self, model, optimizer, scheduler, scaler) -> dict[str, Any]:  # noqa: ANN001
        torch = self.torch
        path = self.spec.resume
        saved = self._load_state(path)
        if saved.get("format") != CHECKPOINT_FORMAT or "model" not in saved:
            raise TrainingError(f"{path} is not a checkpoint of an XLab run (use it as 'weights' to start from it)")
        if saved["model_name"] != self.spec.model or saved["classes"] != list(self.spec.classes):
            raise TrainingError(f"checkpoint {path} is of a {saved['model_name']} for classes "
                                f"{', '.join(saved['classes'])}; this run is a {self.spec.model} for "
                                f"{', '.join(self.spec.classes)}")
        before = json.loads(saved["spec"]).get("params") or {}
        if before.get("seed") is not None and before.get("seed") != self.seed:
            self.warn(f"resumed with seed {self.seed}, the checkpoint's run had {before['seed']}: "
                      "the batches that follow differ from the original run's")
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        if saved["scaler"] and self.amp:  # a CPU run's (disabled) scaler saved nothing
            scaler.load_state_dict(saved["scaler"])
        torch.set_rng_state(saved["rng"]["torch"])
        if self.device.type == "cuda" and "cuda" in saved["rng"]:
            torch.cuda.set_rng_state_all(saved["rng"]["cuda"])
        state = {k: saved[k] for k in STATE_KEYS}
        state["resumed_step"] = state["step"]
        return state

    # --- predictions --------------------------------------------------------------------------

    def predict(self, model, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:  # noqa: ANN001
        """Detections on ``rows`` in COCO results format, boxes in original pixels, rounded."""
        from core.training import data

        torch, p = self.torch, self.params
        dataset = data.ManifestImages(rows, p["image_size"])
        loader = data.loader(dataset, p["batch_size"], min(p["workers"], max(1, len(rows) // p["batch_size"])),
                             self.pin)
        classes = len(self.spec.classes)
        out: list[dict[str, Any]] = []
        model.eval()
        with torch.inference_mode():
            for batch in loader:
                self._warn_skipped(batch["skipped"])
                if not batch["images"]:
                    continue
                images = [im.to(self.device, non_blocking=self.pin) for im in batch["images"]]
                # In float32 even with amp: half precision would round box corners by up to a pixel.
                found = model(images)
                for index, (sx, sy), result in zip(batch["indexes"], batch["scales"], found):
                    image_id = rows[index]["image_id"]
                    boxes = result["boxes"].float().cpu().numpy()
                    for (x0, y0, x1, y1), label, score in zip(boxes, result["labels"].tolist(),
                                                               result["scores"].float().cpu().tolist()):
                        if 1 <= label <= classes:
                            out.append({"image_id": image_id, "category_id": int(label),
                                        "bbox": [round(float(x0) * sx, 2), round(float(y0) * sy, 2),
                                                 round(float(x1 - x0) * sx, 2), round(float(y1 - y0) * sy, 2)],
                                        "score": round(float(score), 5)})
                if self.stop.asked():
                    raise Cancelled
        return out

    def _validate(self, model) -> dict[str, Any]:  # noqa: ANN001
        from core.evaluation.coco import evaluate_records

        rows = self.rows["validation"]
        found = self.predict(model, rows)
        result = evaluate_records(_ground_truth(rows, self.spec.classes), found)

        def value(x: float) -> float | None:
            return None if x < 0 else round(x, 5)

        overall = result.overall()
        return {"AP": value(overall["AP"]), "AP50": value(overall["AP50"]),
                "per_class": {name: {"AP": value(c["AP"]), "AP50": value(c["AP50"])}
                              for name, c in result.per_class().items()}}

    def _write_weights(self, model) -> None:  # noqa: ANN001
        path = self.spec.out_dir / "model.pt"
        temp = path.with_name(path.name + ".part")
        self.torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, temp)
        os.replace(temp, path)
        self.log.emit("weights", path=str(path), sha256=_sha256(path))

    def _write_detections(self, model, split: str) -> None:  # noqa: ANN001
        found = self.predict(model, self.rows[split])
        path = self.spec.out_dir / f"detections-{split}.json"
        temp = path.with_name(path.name + ".part")
        temp.write_text(json.dumps(found), encoding="utf-8")
        os.replace(temp, path)
        self.log.emit("detections", split=split, path=str(path), images=len(self.rows[split]),
                      detections=len(found))


def _ground_truth(rows: list[dict[str, Any]], classes: tuple[str, ...]) -> dict[str, Any]:
    """A COCO ground truth of manifest rows (boxes to [x, y, w, h])."""
    annotations = []
    for r in rows:
        for x0, y0, x1, y1, c in r["boxes"]:
            annotations.append({"id": len(annotations) + 1, "image_id": r["image_id"], "category_id": int(c),
                                "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0), "iscrowd": 0})
    return {"images": [{"id": r["image_id"], "width": r["width"], "height": r["height"]} for r in rows],
            "categories": [{"id": n + 1, "name": name} for n, name in enumerate(classes)],
            "annotations": annotations}


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:500] if text else type(exc).__name__


def main(argv: list[str]) -> int:
    """Run the spec ``argv[0]``; returns the exit code (0 done or cancelled, 1 error)."""
    if len(argv) != 1:
        print("usage: python -m core.training SPEC.json", file=sys.stderr)
        return 1
    log: EventLog | None = None
    try:
        raw = load_raw(argv[0])
        out_dir = raw.get("out_dir")
        if isinstance(out_dir, str) and out_dir:
            log = EventLog(out_dir)
        spec = check(raw)
        spec.out_dir.mkdir(parents=True, exist_ok=True)
        run = Run(spec, log, StopWatch(spec.out_dir))
        try:
            run.execute()
        except Cancelled:
            if log.terminal is None:
                log.emit("cancelled", checkpoint=str(run.checkpoint_path) if run.checkpoint_path.is_file() else None)
        return 0
    except TrainingError as exc:
        message = str(exc)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        message = f"the run could not read or write a file{where}: {exc.strerror or exc}"
    except Exception as exc:  # noqa: BLE001 - the run ends with one clear line whatever happened
        traceback.print_exc(file=sys.stderr)
        message = _one_line(exc)
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(exc, torch.cuda.OutOfMemoryError):
            message = ("the GPU ran out of memory; lower batch_size or image_size "
                       "(or train a smaller model)")
    try:
        if log is not None:
            log.emit("error", message=message)
            return 1
    except OSError:  # the run's folder cannot take it (disk full): stdout still can
        pass
    print(json.dumps({"event": "error", "t": round(time.time(), 3), "message": message}), flush=True)
    return 1
