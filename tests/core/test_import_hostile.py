"""Hostile input to every import command: each malformed file is refused with
exit 2, one line per problem naming the file, no traceback, the catalog
unchanged, and quickly (a hang fails the test).

The malformed files are generated: for every field of a base file that holds
every field, each mangle (wrong type, negative, zero, huge, inf/nan, Unicode
digits, empty, long, control characters, missing, duplicated, unknown extra)
whose value the field's documented range refuses; plus whole-file hostility.
The ranges below are written out here, as documented, not taken from the code.
"""

from __future__ import annotations

import contextlib
import csv
import io
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.cli import main
from core.inventory import SECTIONS, import_inventory
from core.lab import Lab
from core.resources import resource

# -- base files holding every field ------------------------------------------------

INVENTORY = {
    "threat_families": {"name": "fam_h", "description": "a family"},
    "threat_classes": {"name": "class_h", "family": "fam_h", "description": "a class", "active": "true"},
    "threat_items": {"barcode": "'00777'", "class": "class_h", "description": "an item"},
    "luggage_types": {"name": "lug_h", "description": "a luggage type"},
    "bags": {"barcode": "BAG-H", "luggage_type": "lug_h", "clutter": "low", "description": "a bag"},
    "scanner_models": {"name": "MOD-H", "vendor": "V", "views": "2", "dual_energy": "true", "width": "640",
                       "height": "480", "bit_depth": "16", "pixel_mm": "1.5", "gain": "1.0", "noise": "0.01"},
    "scanners": {"name": "SCN-H", "model": "MOD-H", "station": "bench-h", "drop_folder": "drop/SCN-H"},
    "poses": {"name": "pose_h", "placement": "angled", "rotation_deg": "30", "occlusion": "none", "description": "d"},
}
# (kind, required, ...): text (blank_ok), ref, choice, bool, int (lo, hi), float (lo, hi, lo_open, hi_open), date
INVENTORY_RANGES = {
    "name": ("text", True, False), "barcode": ("text", True, False), "vendor": ("text", True, False),
    "station": ("text", True, False), "description": ("text", False, True), "drop_folder": ("text", False, False),
    "family": ("ref", True), "class": ("ref", True), "luggage_type": ("ref", True), "model": ("ref", True),
    "clutter": ("choice", True), "placement": ("choice", False), "occlusion": ("choice", False),
    "bit_depth": ("choice", False), "active": ("bool", False), "dual_energy": ("bool", False),
    "views": ("int", False, 1, 16), "width": ("int", True, 1, 65536), "height": ("int", True, 1, 65536),
    "pixel_mm": ("float", False, 0, 100, True, False), "gain": ("float", False, 0, 1000, True, False),
    "noise": ("float", False, 0, 1, False, False), "rotation_deg": ("float", False, -360, 360, False, False),
}

PLAN = """\
name: hostile-plan
note: "a note on the plan"
images_per_setup: 1
defaults:
  detection_rate: 0.9
  half_width: 0.05
  confidence: 0.95
  max_false_alarm_rate: 0.05
  sizing: wilson
  misses_allowed: 0
  ratio_step: 1
  test_setups: 10
clean:
  false_alarm_rate: 0.05
  half_width: 0.05
  confidence: 0.95
  setups: 10
mix:
  luggage_type:
    hard_case: 3
    soft_bag: 2
  clutter:
    low: 1
classes:
  pistol:
    detection_rate: 0.95
    half_width: 0.05
    confidence: 0.95
    max_false_alarm_rate: 0.05
    sizing: demonstration
    misses_allowed: 1
    ratio_step: 2
    test_setups: 10
"""
_KPI = {"detection_rate": ("float", False, 0, 1, True, True), "half_width": ("float", False, 0, 0.5, True, True),
        "confidence": ("float", False, 0, 1, True, True), "max_false_alarm_rate": ("float", False, 0, 1, False, True),
        "sizing": ("choice", False), "misses_allowed": ("int", False, 0, 100), "ratio_step": ("int", False, 1, 20),
        "test_setups": ("int", False, 0, 1_000_000)}
PLAN_RANGES = {
    "name": ("text", True, False), "note": ("text", False, True), "images_per_setup": ("int", False, 1, 100),
    **{f"defaults.{k}": v for k, v in _KPI.items()}, **{f"classes.pistol.{k}": v for k, v in _KPI.items()},
    "clean.false_alarm_rate": ("float", False, 0, 1, True, True), "clean.half_width": ("float", False, 0, 0.5, True, True),
    "clean.confidence": ("float", False, 0, 1, True, True), "clean.setups": ("int", False, 0, 1_000_000),
    "mix.luggage_type.hard_case": ("float", False, 0, 1e6, False, False),  # missing: the other weight remains
    "mix.luggage_type.soft_bag": ("float", False, 0, 1e6, False, False),
    "mix.clutter.low": ("float", True, 0, 1e6, True, False),  # the only weight: 0 leaves none
}

KPI_HEADER = ["class", "run", "evaluated_at", "positives", "detected", "negatives", "false_alarms", "ratio_step"]
KPI_ROW = ["pistol", "run-h", "2026-11-10", "400", "372", "1000", "30", "1"]
KPI_RANGES = {
    "class": ("ref", True), "run": ("text", False, True), "evaluated_at": ("date", True),
    "positives": ("int", True, 372, 10**8), "detected": ("int", True, 0, 400),  # detected <= positives
    "negatives": ("int", True, 30, 10**8), "false_alarms": ("int", True, 0, 1000), "ratio_step": ("int", False, 1, 20),
}

# -- mangles: (label, YAML text, CSV text, accepted(range) -> bool) -----------------


def _in_range(spec, value) -> bool:
    kind = spec[0]
    if kind == "int":
        return isinstance(value, int) and spec[2] <= value <= spec[3]
    if kind == "float":
        lo, hi, lo_open, hi_open = spec[2:]
        return (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi)
    return False


def _number(value):
    return lambda spec: spec[0] in ("int", "float") and _in_range(spec, value)


def _as_text(spec) -> bool:
    return spec[0] == "text"


def _empty(spec) -> bool:  # written with nothing after it: the same as absent
    return not spec[1]


def _blank(spec) -> bool:  # '' : a blank text
    return spec[0] == "text" and spec[2]


_LONG = "x" * 5000
MANGLES = [
    ("list", "[1, 2]", "[1, 2]", _as_text),  # CSV: that is just text
    ("negative", "-5", "-5", lambda s: _as_text(s) or _number(-5)(s)),
    ("zero", "0", "0", lambda s: _as_text(s) or _number(0)(s)),
    ("huge int", "99999999999999999999", "99999999999999999999", _as_text),
    ("enormous int", "1" + "0" * 5000, "1" + "0" * 5000, lambda s: False),
    ("fraction", "1.5", "1.5", lambda s: _as_text(s) or (s[0] == "float" and _number(1.5)(s))),
    ("inf", ".inf", "inf", _as_text),
    ("nan", ".nan", "nan", _as_text),
    ("unicode digit", "²", "²", _as_text),
    ("quoted number", "'12'", None, _as_text),
    ("empty", "", "", lambda s: _empty(s) or (s[0] == "text" and s[2])),
    ("blank", "''", None, _blank),
    ("long", f"'{_LONG}'", _LONG, lambda s: False),
    ("control char", '"a\\x01b"', "a\x01b", lambda s: False),
    ("not a date", "not-a-date-at-all", "not-a-date-at-all", _as_text),
    ("bad date", "2026-13-45", "2026-13-45", lambda s: s[0] != "date"),  # only dates need this one
]
STRUCTURAL = [("missing", lambda s: not s[1]), ("duplicated", lambda s: False), ("unknown extra", lambda s: False)]


# A field read by the same rule and code as one already mangled in full (a
# section's name, a class's own KPI) gets these only, to keep the run short.
REPEATED = {"list", "negative", "inf", "empty", "long", "control char", "missing", "duplicated", "unknown extra"}


def _mangles(spec, has_quoting: bool, repeated: bool = False):
    """(label, text) of each mangle the field's range refuses; text None: structural."""
    for label, yaml_text, csv_text, accepted in MANGLES:
        text = yaml_text if has_quoting else csv_text
        # a reference to any mangled name is unknown, so always refused
        if text is not None and (spec[0] == "ref" or not accepted(spec)) and (label in REPEATED or not repeated):
            yield label, text
    for label, accepted in STRUCTURAL:
        if not accepted(spec):
            yield label, None


def _inventory_text(section=None, field=None, label=None, value=None) -> str:
    out = []
    for name, entry in INVENTORY.items():
        out.append(f"{name}:\n-\n")
        for key, raw in entry.items():
            line = f"  {key}: {raw}\n"
            if name == section and key == field:
                if label == "missing":
                    continue
                if label == "duplicated":
                    line += line
                elif label == "unknown extra":
                    line += "  colour: red\n"
                else:
                    line = f"  {key}: {value}\n"
            out.append(line)
    return "".join(out)


def _plan_text(path=None, label=None, value=None) -> str:
    out, stack = [], []
    for line in PLAN.splitlines(keepends=True):
        indent = (len(line) - len(line.lstrip())) // 2
        key, _, rest = line.strip().partition(":")
        stack[indent:] = [key]
        if ".".join(stack) == path:
            pad = "  " * indent
            if label == "missing":
                continue
            if label == "duplicated":
                line += line
            elif label == "unknown extra":
                line += f"{pad}colour: red\n"
            else:
                line = f"{pad}{key}: {value}\n"
        out.append(line)
    return "".join(out)


def _kpi_text(field=None, label=None, value=None) -> str:
    header, row = list(KPI_HEADER), list(KPI_ROW)
    if field is not None:
        i = header.index(field)
        if label == "missing":
            del header[i], row[i]
        elif label == "duplicated":
            header.append(field), row.append(row[i])
        elif label == "unknown extra":
            header.append("colour"), row.append("red")
        else:
            row[i] = value
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([header, row])
    return buf.getvalue()


def test_every_range_names_a_field_of_its_base_file():
    """A mangle of a field the base lacks would test nothing."""
    for path in PLAN_RANGES:
        assert _plan_text(path, "missing") != PLAN, path
    assert {s.name: {f.name for f in s.fields} for s in SECTIONS} == {k: set(v) for k, v in INVENTORY.items()}


def _field_cases():
    """One case per field: the field's mangled files, as (label, text)."""
    seen = set()
    for section, entry in INVENTORY.items():
        for field in entry:
            files = [(label, _inventory_text(section, field, label, value))
                     for label, value in _mangles(INVENTORY_RANGES[field], True, field in seen)]
            seen.add(field)
            yield pytest.param("inventory", files, id=f"inventory-{section}.{field}")
    for field, spec in PLAN_RANGES.items():
        repeated = field.startswith("classes.") and field.split(".")[-1] not in ("misses_allowed", "ratio_step")
        files = [(label, _plan_text(field, label, value)) for label, value in _mangles(spec, True, repeated)]
        yield pytest.param("plan", files, id=f"plan-{field}")
    for field, spec in KPI_RANGES.items():
        files = [(label, _kpi_text(field, label, value)) for label, value in _mangles(spec, False)]
        yield pytest.param("kpi", files, id=f"kpi-{field}")


# -- whole-file hostility -----------------------------------------------------------

BASE = {"inventory": _inventory_text(), "plan": _plan_text(), "kpi": _kpi_text()}
SUFFIX = {"inventory": ".yaml", "plan": ".yaml", "kpi": ".csv"}
COMMAND = {"inventory": ["inventory", "import"], "plan": ["quota", "plan"], "kpi": ["kpi", "import"]}
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("abcdefgh", "bcdefghi"))


def _whole_file(kind: str):
    base = BASE[kind].encode()
    cut = BASE[kind].index("note on" if kind == "plan" else ("run-h" if kind == "kpi" else "an item")) + 3
    yield "binary garbage", bytes(range(256)) * 8
    yield "non-UTF-8", base.replace(b"a", b"\xe9", 1)
    yield "empty", b""
    yield "whitespace only", b"  \n\n\t\n"
    yield "NUL bytes", base + b"\x00\x00"
    yield "deeply nested", b"[" * 10_000
    yield "deeply nested mapping", b"".join(b"  " * i + b"k:\n" for i in range(2000))
    yield "alias bomb", BOMB.encode()
    yield "huge field", base.replace(b"\n", b"," + b"y" * 200_000 + b"\n", 1) if kind == "kpi" else base + b"zz: " + b"y" * 200_000 + b"\n"
    yield "too large", b"# " + b"z" * (5 * 1024 * 1024) + b"\n" + base
    yield "truncated", base[: cut if kind != "kpi" else base.rindex(b",")].replace(b"'00777'", b"'00777")
    bad_value = {"inventory": b"0.01", "plan": b"0.95", "kpi": b"372"}[kind]
    yield "CRLF with a bad value", base.replace(b"\n", b"\r\n").replace(bad_value, b"-1", 1)
    yield "python tag", b"!!python/object/apply:os.system ['true']\n"
    yield "top-level list", b"- 1\n- 2\n"
    yield "two documents", base + b"---\n" + base
    yield "duplicate entry", {
        "kpi": base + base.split(b"\n", 1)[1],
        "plan": base + b"  pistol:\n    ratio_step: 3\n",
        "inventory": base.replace(b"threat_classes:\n-\n", b"threat_classes:\n-\n  name: class_h\n  family: fam_h\n-\n"),
    }[kind]


# -- running them -------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _c_locale(monkeypatch):
    # argparse asks gettext for translations on every sub-parser; in the C
    # locale that lookup is cheap, which keeps these ~700 CLI runs within budget.
    monkeypatch.setenv("LANGUAGE", "C")


@pytest.fixture(scope="module")
def lab_root(tmp_path_factory) -> Path:
    """A lab with the demo inventory; every case must leave it as it is."""
    root = tmp_path_factory.mktemp("hostile") / "lab"
    with Lab.init(root) as lab:
        import_inventory(lab.catalog, resource("demo", "inventory.yaml"))
    return root


def snapshot(root: Path) -> dict[str, list]:
    with contextlib.closing(sqlite3.connect(root / "catalog.sqlite")) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: sorted(db.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}


@contextlib.contextmanager
def deadline(seconds: float):
    """Interrupt a hang in this process (a test that fails, not one that waits forever)."""

    def expired(*_):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def refusal_problem(lab_root: Path, path: Path, capsys, kind: str, raw: bytes, watcher: sqlite3.Connection) -> tuple[str | None, str]:
    """Run one import of ``raw``: (what is wrong with how it was refused or None, stderr)."""
    path.write_bytes(raw)
    version = watcher.execute("PRAGMA data_version").fetchone()
    started = time.monotonic()
    with deadline(10):
        code = main([*COMMAND[kind], str(path), "--lab", str(lab_root)])
    elapsed = time.monotonic() - started
    err = capsys.readouterr().err
    problem = None
    if code != 2:
        problem = f"exit {code}: {err[-300:]}"
    elif "Traceback" in err:
        problem = "traceback"
    elif not any(line.strip().startswith(f"{path}") for line in err.splitlines()):
        problem = f"no problem line naming the file: {err[:300]}"
    elif len(err) > 20_000:
        problem = "message too long (one short line per problem, never the whole value)"
    # Another connection's commit changes this connection's data_version.
    elif watcher.execute("PRAGMA data_version").fetchone() != version:
        problem = "the catalog changed"
    elif elapsed > 5:
        problem = f"took {elapsed:.1f} s"
    return problem, err


@pytest.fixture
def refuse(lab_root, tmp_path, capsys):
    """``refuse(kind, [(label, bytes), ...])`` checks every refusal and returns their
    stderr; the whole catalog is compared before and after as well."""
    before = snapshot(lab_root)
    with contextlib.closing(sqlite3.connect(lab_root / "catalog.sqlite")) as watcher:

        def run_all(kind: str, files: list[tuple[str, bytes]]) -> list[str]:
            path = tmp_path / f"hostile{SUFFIX[kind]}"
            failures, errs = [], []
            for label, raw in files:
                problem, err = refusal_problem(lab_root, path, capsys, kind, raw, watcher)
                errs.append(err)
                if problem:
                    failures.append(f"{label}: {problem}")
            assert not failures, "\n".join(failures)
            return errs

        yield run_all
    assert snapshot(lab_root) == before


@pytest.mark.parametrize("kind, files", list(_field_cases()))
def test_every_mangled_field_is_refused(refuse, kind, files):
    assert files
    refuse(kind, [(label, text.encode()) for label, text in files])


@pytest.mark.parametrize("kind", list(BASE))
def test_hostile_files_are_refused(refuse, kind):
    refuse(kind, list(_whole_file(kind)))


def test_problem_lines_point_at_the_value(refuse):
    (err,) = refuse("plan", [("inf", _plan_text("mix.luggage_type.soft_bag", "x", ".inf").encode())])
    assert "hostile.yaml:21: mix.luggage_type.soft_bag: must be a number from 0 to 1e+06 (got inf)" in err
    (err,) = refuse("kpi", [("date", _kpi_text("evaluated_at", "x", "not-a-date-at-all").encode())])
    assert "hostile.csv:2: evaluated_at must be an ISO-8601 date" in err
    text = _inventory_text("scanner_models", "width", "x", "99999999999999999999")
    line = text.splitlines().index("  width: 99999999999999999999") + 1
    (err,) = refuse("inventory", [("huge", text.encode())])
    assert f"hostile.yaml:{line}: scanner model field 'width' must be a whole number from 1 to 65,536" in err
    text = _inventory_text("poses", "rotation_deg", "x", "400")
    line = text.splitlines().index("  rotation_deg: 400") + 1
    (err,) = refuse("inventory", [("CRLF", text.replace("\n", "\r\n").encode())])
    assert f"hostile.yaml:{line}: pose field 'rotation_deg' must be a number from -360 to 360 (got 400)" in err


def test_base_files_and_their_harmless_variants_import(tmp_path, capsys):
    """The bases hold valid values only (so each mangle is what is refused), and
    a BOM, CRLF line ends or a trailing blank line change nothing."""
    for variant, transform in [("plain", lambda b: b), ("BOM", lambda b: b"\xef\xbb\xbf" + b),
                               ("CRLF", lambda b: b.replace(b"\n", b"\r\n")), ("blank line", lambda b: b + b"\n\n")]:
        root = tmp_path / variant / "lab"
        with Lab.init(root) as lab:
            import_inventory(lab.catalog, resource("demo", "inventory.yaml"))
        for kind in ("inventory", "plan", "kpi"):
            path = tmp_path / variant / f"base{SUFFIX[kind]}"
            path.write_bytes(transform(BASE[kind].encode()))
            assert main([*COMMAND[kind], str(path), "--lab", str(root)]) == 0, capsys.readouterr().err
        with contextlib.closing(sqlite3.connect(root / "catalog.sqlite")) as db:
            assert db.execute("SELECT barcode FROM threat_items WHERE barcode = '00777'").fetchone() == ("00777",)
            assert db.execute("SELECT evaluated_at, ratio_step FROM kpi_results").fetchall() == [("2026-11-10", 1)]
            assert db.execute("SELECT COUNT(*) FROM quota_plans WHERE name = 'hostile-plan'").fetchone() == (1,)


def test_demo_files_import_through_the_cli(tmp_path, capsys):
    root = tmp_path / "lab"
    assert main(["init", "--lab", str(root)]) == 0
    assert main(["inventory", "import", str(resource("demo", "inventory.yaml")), "--lab", str(root)]) == 0
    assert main(["quota", "plan", str(resource("demo", "plan.yaml")), "--lab", str(root), "--publish"]) == 0
    assert "v1: published" in capsys.readouterr().out


def _xlab() -> list[str]:
    script = Path(sys.executable).parent / "xlab"
    return [str(script)] if script.exists() else [sys.executable, "-m", "app"]


@pytest.mark.parametrize(
    "kind, raw",
    [
        pytest.param("plan", _plan_text("mix.luggage_type.hard_case", "x", ".inf").encode(), id="plan-inf-weight"),
        pytest.param("plan", _plan_text("classes.pistol.misses_allowed", "x", "1000000").encode(), id="plan-misses-1e6"),
        pytest.param("plan", _plan_text("defaults.ratio_step", "x", "1000000000").encode(), id="plan-ratio-step-1e9"),
        pytest.param("inventory", b"[" * 10_000, id="inventory-deeply-nested"),
        pytest.param("kpi", _kpi_text("ratio_step", "x", "²").encode(), id="kpi-unicode-digit"),
    ],
)
def test_real_xlab_refuses_and_returns(lab_root, tmp_path, kind, raw):
    path = tmp_path / f"hostile{SUFFIX[kind]}"
    path.write_bytes(raw)
    before = snapshot(lab_root)
    result = subprocess.run([*_xlab(), *COMMAND[kind], str(path), "--lab", str(lab_root)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"  {path}:" in result.stderr
    assert snapshot(lab_root) == before
