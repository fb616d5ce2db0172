"""The xlab command, run as a real subprocess."""

import json
import os
import subprocess
import sys

import pytest

from core.resources import resource


def xlab(*args, lab=None, check=True):
    env = dict(os.environ)
    if lab is not None:
        env["XLAB_LAB"] = str(lab)
    result = subprocess.run([sys.executable, "-m", "app", *map(str, args)], capture_output=True, text=True, env=env, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"xlab {args} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def test_init_import_plan_show_status(tmp_path):
    lab = tmp_path / "lab"
    assert "lab ready" in xlab("init", "--lab", lab).stdout
    out = xlab("inventory", "import", resource("demo", "inventory.yaml"), "--json", lab=lab).stdout
    assert json.loads(out)["threat_items"]["created"] == 60
    assert "no changes" in xlab("inventory", "import", resource("demo", "inventory.yaml"), lab=lab).stdout
    assert "v1: draft" in xlab("quota", "plan", resource("demo", "plan.yaml"), lab=lab).stdout
    assert "v1: published" in xlab("quota", "publish", "demo-test-set", lab=lab).stdout
    show = json.loads(xlab("quota", "show", "demo-test-set", "--json", lab=lab).stdout)
    pistol = next(c for c in show["classes"] if c["class_name"] == "pistol")
    assert pistol["required_setups"] == 315 and "Wilson" in pistol["basis"]
    status = json.loads(xlab("quota", "status", "--json", lab=lab).stdout)
    # the shared options also before the command (with $XLAB_LAB pointing elsewhere)
    assert json.loads(xlab("--lab", lab, "--json", "quota", "status", lab=tmp_path / "other").stdout) == status
    table = xlab("--lab", lab, "quota", "status").stdout
    assert "Test fill" in table and "0.0 %" in table and max(map(len, table.splitlines())) <= 100
    assert status["totals"]["test_done"] == 0 and status["totals"]["test_target"] > 0
    cells = json.loads(xlab("quota", "status", "--cells", "--class", "pistol", "--json", lab=lab).stdout)
    assert sum(c["test_target"] for c in cells) == 315
    out = xlab("quota", "override", "demo-test-set", "--class", "pistol", "--luggage-type", "tray", "--clutter", "low",
               "--scanner-model", "SX-100", "--pose", "flat", "--test", "9", lab=lab).stdout
    assert "v2 (draft)" in out
    exported = xlab("inventory", "export", lab=lab).stdout
    assert exported.startswith("# XLab lab inventory") and "TI-0060" in exported


def test_domain_errors_are_a_message_and_exit_2(tmp_path):
    lab = tmp_path / "lab"
    missing = xlab("quota", "status", lab=lab, check=False)
    assert missing.returncode == 2 and "no XLab lab" in missing.stderr and "Traceback" not in missing.stderr
    xlab("init", lab=lab)
    bad = tmp_path / "bad.yaml"
    bad.write_text("luggage_types:\n  - name: tray\nbags:\n  - barcode: B1\n    luggage_type: trolley\n    clutter: low\n")
    result = xlab("inventory", "import", bad, lab=lab, check=False)
    assert result.returncode == 2
    assert f"{bad}:4: unknown luggage type 'trolley'" in result.stderr
    assert "nothing was changed" in result.stderr


def test_sizing_and_simulate(tmp_path):
    assert xlab("sizing", "--rate", "0.9", "--half-width", "0.03").stdout.startswith("483 ")
    demo = json.loads(xlab("sizing", "--rate", "0.95", "--method", "demonstration", "--json").stdout)
    assert demo["required"] == 59
    lab = tmp_path / "lab"
    xlab("demo", "--headless", "--count", "2", "--rate", "0", "--quiet", lab=lab)
    xlab("simulate", "--scanner", "SCN-C", "--count", "2", "--rate", "0", "--format", "tiff16", lab=lab)
    assert len(list((lab / "drop" / "SCN-C").glob("*.tif"))) == 2


@pytest.mark.parametrize("args", [["--help"], ["quota", "--help"], ["inventory", "import", "--help"]])
def test_help(args):
    assert xlab(*args).returncode == 0
