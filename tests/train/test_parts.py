"""The training process's parts on their own: parameters, manifests, events, the CPU estimate, and
what the data loader makes of an image (attenuation, resizing, augmentation of boxes)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from core.errors import RunError, TrainingError
from core.training.events import EventLog, read_events
from core.training.manifest import read_manifest, row_problem, write_manifest
from core.training.params import DEFAULTS, validate
from core.training.probe import cpu_estimate_s


def test_parameters_are_filled_in_and_checked():
    assert validate(None) == DEFAULTS and validate({}) == DEFAULTS
    got = validate({"epochs": 3, "lr": 1, "amp": False, "seed": 5, "optimizer": "sgd", "image_size": 640.0})
    assert got["epochs"] == 3 and got["lr"] == 1.0 and isinstance(got["lr"], float) and got["amp"] is False
    assert got["image_size"] == 640 and isinstance(got["image_size"], int) and got["seed"] == 5
    assert got["batch_size"] == DEFAULTS["batch_size"]
    assert validate({"seed": None})["seed"] is None
    for bad, message in [({"epochs": 2.5}, "'epochs' must be a whole number, not 2.5"),
                         ({"epochs": True}, "'epochs' must be a whole number, not True"),
                         ({"batch_size": 0}, "'batch_size' must be from 1 to 4096, not 0"),
                         ({"lr": float("nan")}, "'lr' must be a number, not nan"),
                         ({"clip_grad": -1}, "'clip_grad' must be at least 0.0, not -1.0"),
                         ({"device": "tpu"}, "'device' must be one of auto, cpu, cuda, not 'tpu'"),
                         ({"augment": 1}, "'augment' must be true or false, not 1"),
                         ({"image_sise": 512}, "unknown training parameter 'image_sise'")]:
        with pytest.raises(TrainingError, match=re.escape(message)) as caught:
            validate(bad)
        assert isinstance(caught.value, RunError)  # the parent's callers catch its run errors
    with pytest.raises(TrainingError, match="must be a mapping"):
        validate([1, 2])


def test_manifests_round_trip_and_name_bad_rows(tmp_path):
    rows = [{"image_id": 1, "path": "/store/a.png", "width": 640, "height": 480,
             "boxes": [[1.5, 2, 30, 40.25, 2]], "negative": False},
            {"image_id": 2, "path": "/store/b.png", "width": 640, "height": 480, "boxes": [], "negative": True}]
    assert write_manifest(tmp_path / "m.jsonl", rows) == 2
    assert read_manifest(tmp_path / "m.jsonl") == rows
    assert not list(tmp_path.glob(".*"))  # written beside and renamed
    row = rows[0]
    for change, problem in [({"boxes": [[5, 5, 5, 9, 1]]}, "box 1 is empty (5, 5, 5, 9)"),
                            ({"boxes": [[0, 0, 9, 9, 0]]}, "box 1's class index must be 1 or more, not 0"),
                            ({"boxes": [[0, 0, 9, 9]]}, "box 1 must be [x0, y0, x1, y1, class_index]"),
                            ({"boxes": [[0, 0, "9", 9, 1]]}, "box 1 has a value that is not a number"),
                            ({"width": 0}, "width must be a whole number of pixels, not 0"),
                            ({"image_id": "7"}, "image_id must be a whole number, not '7'"),
                            ({"negative": True}, "a negative image (clean bag) has no boxes")]:
        assert row_problem({**row, **change}) == problem
    assert row_problem({k: v for k, v in row.items() if k != "path"}) == "'path' is missing"
    assert row_problem(row, classes=1) == "box 1's class index must be 1 to 1, not 2"
    with pytest.raises(TrainingError, match="manifest row 2: 'boxes' is missing"):
        write_manifest(tmp_path / "n.jsonl", [row, {"image_id": 3, "path": "p", "width": 1, "height": 1}])
    assert not (tmp_path / "n.jsonl").exists()
    (tmp_path / "bad.jsonl").write_text(json.dumps(row) + "\n\n{oops\n")
    with pytest.raises(TrainingError, match=r"bad.jsonl, line 3: not a JSON object$"):
        read_manifest(tmp_path / "bad.jsonl")


def test_events_are_read_back_without_a_torn_last_line(tmp_path, capsys):
    log = EventLog(tmp_path)
    log.emit("start", device="cpu")
    log.emit("step", loss=float("nan"), losses={"a": float("inf")})
    assert [e["event"] for e in read_events(tmp_path)] == ["start", "step"]
    assert read_events(tmp_path)[1]["loss"] is None and read_events(tmp_path)[1]["losses"] == {"a": None}
    assert [json.loads(x) for x in capsys.readouterr().out.splitlines()] == read_events(tmp_path / "events.jsonl")
    log.close()
    with (tmp_path / "events.jsonl").open("a") as f:
        f.write('{"event": "epoch", "ep')  # a process killed mid-line
    assert [e["event"] for e in read_events(tmp_path)] == ["start", "step"]
    # The next process's events are not glued to the torn line.
    again = EventLog(tmp_path, echo=False)
    again.emit("start")
    again.emit("done")
    assert again.terminal == "done"
    assert [e["event"] for e in read_events(tmp_path)] == ["start", "step", "start", "done"]
    assert read_events(tmp_path / "none") == []


def test_the_cpu_estimate_scales_with_the_work():
    one = cpu_estimate_s("retinanet_tiny", 1000, 10, 256, threads=1)
    assert one > 0
    assert cpu_estimate_s("retinanet_tiny", 2000, 10, 256, threads=1) == pytest.approx(2 * one)
    assert cpu_estimate_s("retinanet_tiny", 1000, 10, 512, threads=1) == pytest.approx(4 * one)
    assert cpu_estimate_s("retinanet_tiny", 1000, 10, 256, threads=8) < one
    assert cpu_estimate_s("retinanet_resnet50_fpn", 1000, 10, 256, threads=1) > 10 * one
    assert cpu_estimate_s("retinanet_tiny", 0, 10, 256) == 0


def test_an_image_becomes_attenuation_whatever_its_bit_depth():
    from core.training.data import attenuation

    transmission = np.full((64, 64), 1.0)
    transmission[16:48, 16:48] = np.exp(-1.5)  # an object of attenuation 1.5 on the empty belt
    sixteen = attenuation(np.rint(transmission * 60000).astype(np.uint16))
    twelve = attenuation(np.rint(transmission * 4000).astype(np.uint16))
    eight = attenuation(np.rint(transmission * 250).astype(np.uint8))
    for a in (sixteen, twelve, eight):
        assert a.shape == (64, 64, 1) and a.dtype == np.float32
        assert a[0, 0, 0] == 0.0 and a[32, 32, 0] * 3.0 == pytest.approx(1.5, abs=0.01)
    colour = attenuation(np.dstack([np.rint(transmission * 250).astype(np.uint8)] * 3))
    assert colour.shape == (64, 64, 3) and np.allclose(colour[..., 0], eight[..., 0])


def test_augmentation_moves_boxes_with_the_pixels(tmp_path):
    import cv2

    from core.training.data import ManifestImages

    image = np.full((100, 200), 50000, np.uint16)
    image[20:40, 30:90] = 5000  # one dark (attenuating) item
    cv2.imwrite(str(tmp_path / "a.png"), image)
    rows = [{"image_id": 1, "path": str(tmp_path / "a.png"), "width": 200, "height": 100,
             "boxes": [[30, 20, 90, 40, 1]], "negative": False}]
    plain = ManifestImages(rows, 100)[0]
    assert tuple(plain["image"].shape) == (3, 50, 100) and plain["scale"] == (2.0, 2.0)
    assert plain["boxes"].tolist() == [[15, 10, 45, 20]] and plain["labels"].tolist() == [1]
    augmented = ManifestImages(rows, 100, augment=True, seed=3, scale_jitter=0.3, translate=0.2)
    moved = 0
    for epoch in range(12):
        item = augmented[(epoch, 0)]
        assert tuple(item["image"].shape) == (3, 50, 100)
        again = augmented[(epoch, 0)]
        assert (item["image"] == again["image"]).all()  # drawn from (seed, epoch, index) alone
        if not len(item["boxes"]):
            continue  # shifted out of the image
        x0, y0, x1, y1 = (round(v) for v in item["boxes"][0].tolist())
        inside = item["image"][0, max(y0, 0):y1, max(x0, 0):x1]
        # The box still frames the item: dark (high attenuation) inside, air just outside it.
        assert inside.numel() and float(inside.mean()) > 0.5
        ring = item["image"][0].clone()
        ring[max(y0 - 2, 0):y1 + 2, max(x0 - 2, 0):x1 + 2] = 0
        assert float(ring.max()) < 0.05
        moved += [x0, y0, x1, y1] != [15, 10, 45, 20]
    assert moved >= 6


def test_weights_to_fine_tune_from_load_where_they_fit():
    import torch
    from torchvision.models import resnet18

    from core.training.models import build, load_weights

    params = validate({"image_size": 128})
    two = build("retinanet_tiny", 2, params)
    three = build("retinanet_tiny", 3, params)
    loaded, left = load_weights(three, two.state_dict())
    # Everything but the classification head's last layer (its weight and bias: 3 classes, not 2).
    assert left == 2 and loaded == len(two.state_dict()) - 2
    assert torch.equal(three.state_dict()["head.regression_head.bbox_reg.weight"],
                       two.state_dict()["head.regression_head.bbox_reg.weight"])
    # A backbone's own weights (an ImageNet ResNet-18 file, say) land in the detector's backbone.
    backbone = resnet18(weights=None)
    detector = build("retinanet_resnet18_fpn", 2, params)
    loaded, left = load_weights(detector, backbone.state_dict())
    assert left == 2  # the ImageNet classifier (fc) has no place in a detector
    assert torch.equal(detector.state_dict()["backbone.body.layer1.0.conv1.weight"],
                       backbone.state_dict()["layer1.0.conv1.weight"])
    with pytest.raises(ValueError, match="none of its tensors fit"):
        load_weights(detector, {"something.else": torch.zeros(3)})
