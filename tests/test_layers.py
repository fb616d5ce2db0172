"""The layering holds: the import-linter contracts in pyproject.toml (core is headless, app
reaches the catalog through core services), and no SQL outside core/catalog."""

import ast
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_import_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 kept, 0 broken" in result.stdout


def test_headless_cli_does_not_import_qt_or_heavy_libraries():
    code = (
        "import sys; from app.launcher import main; import core.cli, core.quota.plans, core.inventory;"
        "heavy = [m for m in ('PySide6', 'torch', 'cv2', 'pandas') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


SQL_TEXT = re.compile(r"^\s*(SELECT\b.*\bFROM\b|INSERT INTO|UPDATE \w+ SET|DELETE FROM|CREATE (TABLE|INDEX|TRIGGER|VIEW)"
                      r"|DROP |ALTER TABLE|PRAGMA |BEGIN\b|COMMIT\b|WITH \w+ AS)", re.S)
SQL_CALLS = {"execute", "executemany", "executescript", "query", "query_one"}


def _sql_outside_the_catalog() -> list[str]:
    found = []
    for path in sorted([*REPO.glob("core/**/*.py"), *REPO.glob("app/**/*.py")]):
        if path.is_relative_to(REPO / "core" / "catalog"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL_TEXT.match(node.value):
                found.append(f"{where}: SQL text {node.value[:40]!r}")
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SQL_CALLS
                  and node.args and isinstance(node.args[0], (ast.Constant, ast.JoinedStr))):
                found.append(f"{where}: .{node.func.attr}() called with SQL")
    return found


def test_no_sql_outside_the_catalog_layer():
    assert _sql_outside_the_catalog() == []


def test_the_sql_check_finds_sql(tmp_path):
    """The check above is not vacuous: the catalog layer itself is full of what it looks for."""
    sample = ast.parse((REPO / "core" / "catalog" / "quota_store.py").read_text(encoding="utf-8"))
    assert any(isinstance(n, ast.Constant) and isinstance(n.value, str) and SQL_TEXT.match(n.value)
               for n in ast.walk(sample))
