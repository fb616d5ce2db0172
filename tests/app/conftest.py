import pytest

from app import tasks


@pytest.fixture(autouse=True)
def _no_leaked_threads(qtbot):
    """Every pooled read must have finished by the end of a test."""
    yield
    assert tasks.wait_for_calls(10_000), "a background call was still running after the test"


def _closed_after_background_calls(lab):
    """Close ``lab`` only once no background read uses its catalog (a pooled
    Today or dashboard refresh may still be running when a test ends: closing
    a connection under a running query can crash the process)."""
    assert tasks.wait_for_calls(10_000), "a background call was still running after the test"
    lab.close()


@pytest.fixture
def demo_lab(tmp_path):
    """The demo lab's inventory and published plan, no capture sessions yet (closed after background reads)."""
    from core.demo import create_demo_lab

    lab = create_demo_lab(tmp_path / "demo", plan_sessions=False)
    yield lab
    _closed_after_background_calls(lab)


@pytest.fixture
def empty_lab(tmp_path):
    from core.lab import Lab

    lab = Lab.init(tmp_path / "lab")
    yield lab
    _closed_after_background_calls(lab)


@pytest.fixture
def settings(tmp_path):
    """Window settings in a file of the test's own (never the user's)."""
    from PySide6.QtCore import QSettings

    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, demo_lab, settings):
    """The main window on a demo lab, shown at 1366x768 with its first area loaded."""
    from tests.app.helpers import show_window

    win = show_window(qtbot, demo_lab, settings)
    yield win
    win.close()
