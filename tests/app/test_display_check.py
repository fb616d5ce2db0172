"""The window's system libraries are checked before Qt loads them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from app.display_check import XCB_LIBRARIES, SystemLibrary, display_problem, uses_xcb

REPO = Path(__file__).resolve().parents[2]
ABSENT = SystemLibrary("libxlab-absent-for-test.so.0", "libxlab-absent0", "xlab-absent")


def test_the_platform_qt_will_use_decides_whether_x11_is_checked():
    assert uses_xcb({"QT_QPA_PLATFORM": "xcb", "DISPLAY": ":0"})
    assert uses_xcb({"DISPLAY": ":0"})
    assert not uses_xcb({"QT_QPA_PLATFORM": "offscreen"})
    assert not uses_xcb({"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0"})


def test_a_missing_library_is_named_with_the_install_commands():
    problem = display_problem({"QT_QPA_PLATFORM": "xcb", "DISPLAY": ":0"}, (*XCB_LIBRARIES[:1], ABSENT))
    assert problem is not None
    assert "libxlab-absent-for-test.so.0" in problem
    assert "apt-get install libxlab-absent0" in problem and "dnf install xlab-absent" in problem
    assert "libxcb.so.1" not in problem.split("lacks:")[1].split("\n")[0]  # present ones are not named


def test_no_display_is_a_clear_line_not_an_abort():
    problem = display_problem({"QT_QPA_PLATFORM": "xcb"}, ())
    assert problem is not None and "DISPLAY" in problem


def test_xlab_gui_without_a_display_exits_2_with_one_message_and_no_core_dump(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(QT_QPA_PLATFORM="xcb", PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, "-m", "app", "gui", "--lab", str(tmp_path / "lab")], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("xlab: ") and "Traceback" not in result.stderr
    assert "X11 libraries" in result.stderr or "DISPLAY" in result.stderr
