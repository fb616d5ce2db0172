import pytest

from app import tasks


@pytest.fixture(autouse=True)
def _no_leaked_threads(qtbot):
    """Every pooled read must have finished by the end of a test."""
    yield
    assert tasks.wait_for_calls(10_000), "a background call was still running after the test"


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
