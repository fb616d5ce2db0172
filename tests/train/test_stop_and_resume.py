"""Stopping a run and going on: a cancel (the cancel file, or SIGTERM) ends it cleanly with a
checkpoint; a kill -9 leaves its last epoch's checkpoint; a resume goes on from where it stopped,
and on the CPU ends with exactly the model an uninterrupted run ends with. Unreadable
images are skipped with a warning naming them, in every run alike."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from core.training.events import read_events
from core.training.manifest import write_manifest
from tests.train.conftest import FAST, kinds, make_spec, run, start

PARAMS = {**FAST, "epochs": 2, "validate_every": 0}


@pytest.fixture
def small(sim, tmp_path) -> dict[str, Path]:
    """32 training scans, a broken PNG and a file that is gone (34 rows: 5 steps an epoch)."""
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    rows = list(sim.rows["train"][:32])
    rows.insert(5, {**rows[0], "image_id": 9001, "path": str(broken)})
    rows.insert(20, {**rows[0], "image_id": 9002, "path": str(tmp_path / "gone.png")})
    write_manifest(tmp_path / "small.jsonl", rows)
    return {"train": tmp_path / "small.jsonl"}


def wait_for(process: subprocess.Popen, kind: str) -> dict:
    """Read the run's stdout up to its first event of ``kind``."""
    for line in process.stdout:
        event = json.loads(line)
        if event["event"] == kind:
            return event
    raise AssertionError(f"the run ended without a '{kind}' event: {process.stderr.read()[-2000:]}")


def finish(process: subprocess.Popen) -> int:
    process.communicate(timeout=300)
    return process.returncode


def state_dict(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def cancel_then_resume(small: dict[str, Path], out: Path) -> None:
    """Cancel with the file after the first step; resume to the end."""
    spec = make_spec(out, small, PARAMS)
    process = start(spec)
    first = wait_for(process, "step")
    assert first["epoch"] == 1
    (out / "cancel").touch()
    assert finish(process) == 0
    events = read_events(out)
    assert kinds(events)[-1] == "cancelled" and "error" not in kinds(events)
    checkpoint = Path(events[-1]["checkpoint"])
    assert checkpoint == out / "checkpoints" / "last.pt" and checkpoint.is_file()
    stopped = [e for e in events if e["event"] == "checkpoint"][-1]
    assert stopped["epoch"] == 1 and 1 <= stopped["step_in_epoch"] < 5  # within the first epoch
    assert "epoch" not in kinds(events)

    (out / "cancel").unlink()
    resumed = run(make_spec(out, small, PARAMS, resume=checkpoint))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    after = resumed.events[len(events):]
    assert kinds(after)[0] == "start" and kinds(after)[-1] == "done"
    assert after[0]["resume"] == str(checkpoint)
    steps = [e["step"] for e in after if e["event"] == "step"]
    assert steps[0] == stopped["step"] + 1 and steps[-1] <= 10
    assert [e["epoch"] for e in resumed.events if e["event"] == "epoch"] == [1, 2]  # no epoch twice


def kill_then_resume(small: dict[str, Path], out: Path) -> None:
    """kill -9 after the first epoch's checkpoint; resume to the end from it."""
    process = start(make_spec(out, small, PARAMS))
    saved = wait_for(process, "checkpoint")
    process.kill()
    assert finish(process) == -signal.SIGKILL
    assert saved["epoch"] == 1 and saved["step_in_epoch"] == 0 and saved["step"] == 5
    assert not {"done", "cancelled", "error"} & set(kinds(read_events(out)))
    again = run(make_spec(out, small, PARAMS, resume=Path(saved["path"])))
    assert again.returncode == 0 and kinds(again.events)[-1] == "done"
    assert [e["epoch"] for e in again.events if e["event"] == "epoch"] == [1, 2]
    assert kinds(again.events).count("start") == 2


def terminate(small: dict[str, Path], out: Path) -> None:
    """SIGTERM (what the parent's end sends) after the first step: a clean stop, like the cancel file."""
    process = start(make_spec(out, small, PARAMS))
    wait_for(process, "step")
    process.send_signal(signal.SIGTERM)
    assert finish(process) == 0
    events = read_events(out)
    assert kinds(events)[-1] == "cancelled" and "error" not in kinds(events)
    assert Path(events[-1]["checkpoint"]).is_file()
    assert [e for e in events if e["event"] == "checkpoint"][-1]["step"] >= 1


def test_cancel_kill_and_resume_end_where_an_uninterrupted_run_ends(small, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    # The runs side by side (one torch thread each): the uninterrupted one and the stopped ones.
    whole = start(make_spec(tmp_path / "whole", small, PARAMS))
    with ThreadPoolExecutor(3) as pool:
        stopped = [pool.submit(cancel_then_resume, small, tmp_path / "cancelled"),
                   pool.submit(kill_then_resume, small, tmp_path / "killed"),
                   pool.submit(terminate, small, tmp_path / "terminated")]
        for future in stopped:
            future.result()

    assert finish(whole) == 0
    uninterrupted = read_events(tmp_path / "whole")
    assert kinds(uninterrupted)[-1] == "done"
    # Every unreadable file named once in a warning, and the run went on.
    warnings = [e["message"] for e in uninterrupted if e["event"] == "warning"]
    assert len(warnings) == 2
    assert any("broken.png" in w and "cut short" in w for w in warnings)
    assert any("gone.png" in w and "No such file" in w for w in warnings)

    reference = state_dict(tmp_path / "whole" / "model.pt")
    for folder in ("cancelled", "killed"):
        ended = state_dict(tmp_path / folder / "model.pt")
        assert ended.keys() == reference.keys()
        different = [k for k in reference if not (ended[k] == reference[k]).all()]
        assert not different, f"{folder}: {different[:5]}"
