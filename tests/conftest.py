"""Shared fixtures. Every test runs against its own lab folder and settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from hypothesis import settings as hypothesis_settings  # noqa: E402

# No per-example deadline: on a loaded 2-core machine a slow example is not a
# failure (the suites guard real hangs with their own time limits).
hypothesis_settings.register_profile("xlab", deadline=None)
hypothesis_settings.load_profile("xlab")

from core.demo import create_demo_lab  # noqa: E402
from core.lab import Lab  # noqa: E402
from core.resources import resource  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated_user(tmp_path_factory, monkeypatch):
    """Keep tests off the user's real lab and settings."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XLAB_LAB", str(home / "default-lab"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))


@pytest.fixture
def empty_lab(tmp_path) -> Lab:
    lab = Lab.init(tmp_path / "lab")
    yield lab
    lab.close()


@pytest.fixture
def demo_lab(tmp_path) -> Lab:
    """The demo lab's inventory and published plan, no capture sessions yet."""
    lab = create_demo_lab(tmp_path / "demo", plan_sessions=False)
    yield lab
    lab.close()


@pytest.fixture
def demo_inventory_file() -> Path:
    return resource("demo", "inventory.yaml")
