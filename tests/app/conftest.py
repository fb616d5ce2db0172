import pytest

from app import tasks


@pytest.fixture(autouse=True)
def _no_leaked_threads(qtbot):
    """Every pooled read must have finished by the end of a test."""
    yield
    assert tasks.wait_for_calls(10_000), "a background call was still running after the test"
