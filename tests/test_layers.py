"""The import-linter contracts in pyproject.toml hold (core is headless, app uses core for SQL)."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_import_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_headless_cli_does_not_import_qt_or_heavy_libraries():
    code = (
        "import sys; from app.launcher import main; import core.cli, core.quota.plans, core.inventory;"
        "heavy = [m for m in ('PySide6', 'torch', 'cv2', 'pandas') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
