"""tests/bench/bench_train.py at smoke size: both figures measured, over what they say."""

import pytest

from tests.bench import bench_train


def test_training_benchmark_smoke(tmp_path):
    r = bench_train.run(model="retinanet_tiny", image_size=128, images=16, epochs=2, batch_size=8, workers=0,
                        threads=1, root=tmp_path)
    loader, train = r["loader"], r["train"]
    # The baseline went through every image of an epoch; the run trained its two epochs.
    assert loader["images"] == 16 and loader["images_per_s"] > 0
    assert train["epochs"] == 2 and len(train["epoch_images_per_s"]) == 2 and train["images_per_s"] > 0
    assert train["images_per_s"] == pytest.approx(train["epoch_images_per_s"][1])  # the first epoch left out
    assert r["headroom"] == pytest.approx(loader["images_per_s"] / train["images_per_s"])
    # Decoding 16 small PNGs cannot be slower than training a detector on them.
    assert r["headroom"] > 1
    if not r["gpu"]:
        assert train["gpu_util"] is None and train["gpu_util_source"] == "n/a" and train["gpu_mem_mb"] is None
    assert not list(tmp_path.iterdir())  # its data set is gone
