"""The command line's shape: shared options in either position, tables that fit
100 columns with human labels, JSON unchanged, a light start."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from datetime import date

import pytest

from core.cli import build_parser, main
from core.cli.common import resolve
from tests.conftest import REPO

SHARED = {"--lab": "/labs/one", "--user": "ana", "--json": None, "--quiet": None}


def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command path, parser) of every runnable command, read from the parser itself."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _leaves(sub, (*path, name))
            return
    yield path, parser


def _sample(action: argparse.Action) -> str:
    if action.choices:
        return str(list(action.choices)[0])
    return "1" if action.type in (int, float) else "x"


def _required(parser: argparse.ArgumentParser) -> list[str]:
    """The least a command needs to parse: its positionals and required options."""
    args: list[str] = []
    for action in parser._actions:
        if not action.option_strings and action.nargs != "?":
            args.append(_sample(action))
        elif action.option_strings and action.required:
            args += [action.option_strings[-1], _sample(action)]
    return args


def _option_args(option: str) -> list[str]:
    return [option] if SHARED[option] is None else [option, SHARED[option]]


def _commands_with_shared_options():
    parser = build_parser(complete=True)
    out = []
    for path, leaf in _leaves(parser):
        for option in SHARED:
            if option in leaf._option_string_actions:
                out.append(pytest.param(path, option, id=f"{' '.join(path)} {option}"))
    return out


@pytest.mark.parametrize(("path", "option"), _commands_with_shared_options())
def test_shared_options_work_before_and_after_the_command(path, option):
    parser = build_parser()
    leaf = dict(_leaves(build_parser(complete=True)))[path]
    tail = [*path, *_required(leaf)]
    before = resolve(parser.parse_args([*_option_args(option), *tail]), parser)
    after = resolve(build_parser().parse_args([*tail, *_option_args(option)]), parser)
    assert vars(before) == vars(after)
    dest = option.lstrip("-")
    assert getattr(before, dest) == (SHARED[option] if SHARED[option] is not None else True)


def test_every_command_takes_lab_before_it_and_the_later_value_wins(monkeypatch):
    monkeypatch.delenv("XLAB_LAB")
    parser = build_parser()
    args = resolve(parser.parse_args(["--lab", "A", "quota", "status", "--lab", "B"]), parser)
    assert args.lab == "B"
    args = resolve(parser.parse_args(["--lab", "A", "quota", "status"]), parser)
    assert args.lab == "A" and args.json is False and args.user is None
    assert resolve(parser.parse_args(["quota", "status"]), parser).lab is None
    monkeypatch.setenv("XLAB_LAB", "/from/env")
    assert resolve(parser.parse_args(["quota", "status"]), parser).lab == "/from/env"


def test_json_or_quiet_where_a_command_has_none_is_refused(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--json", "init"])
    assert exited.value.code == 2 and "'xlab init' has no --json output" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["quota", "--quiet", "list"])
    assert "'xlab quota list' has no --quiet option" in capsys.readouterr().err


def test_the_declared_commands_are_what_the_areas_register():
    from core.cli.main import COMMANDS

    full = build_parser(complete=True)
    registered = {name: sub for action in full._subparsers._group_actions for name, sub in action.choices.items()}
    assert list(registered) == list(COMMANDS)
    for name, sub in registered.items():
        assert sub.get_default("func") or sub._subparsers, f"{name} was never registered by its area"


# -- tables -----------------------------------------------------------------

RULE = re.compile(r"^─+$")
SNAKE = re.compile(r"\b[a-z]+_[a-z_]+\b")
PERCENT = re.compile(r"\b\d+\.\d %")


@pytest.fixture
def busy_lab(demo_lab, tmp_path):
    """The demo lab with capture sessions, a quarantined file and KPI results."""
    root = str(demo_lab.paths.root)
    assert main(["plan", "--lab", root, "--start", "2026-11-23", "--shifts", "1", "--quiet"]) == 0
    bad = tmp_path / "incoming" / "not-an-image.png"
    bad.parent.mkdir()
    bad.write_bytes(b"this is not a PNG" * 10)
    assert main(["ingest", "import", str(bad.parent), "--lab", root, "--quiet", "--workers", "0"]) == 0
    assert main(["simulate", "--scanner", "SCN-A", "--count", "2", "--rate", "0", "--lab", root, "--quiet"]) == 0
    drop = demo_lab.paths.root / "drop" / "SCN-A"
    assert main(["ingest", "import", str(drop), "--scanner", "SCN-A", "--lab", root, "--quiet", "--workers", "0"]) == 0
    kpi = tmp_path / "kpi.csv"
    kpi.write_text("class,run,evaluated_at,positives,detected,negatives,false_alarms\n"
                   "pistol,run-1,2026-11-10,400,372,1000,30\n")
    assert main(["kpi", "import", str(kpi), "--lab", root]) == 0
    return root


TABLES = [
    (["inventory", "import", "{inventory}"], False),
    (["quota", "list"], False),
    (["quota", "show"], False),
    (["quota", "status"], True),
    (["quota", "status", "--cells"], True),
    (["session", "list", "--day", "all"], False),
    (["session", "show", "1"], False),
    (["quarantine", "list", "--all"], False),
    (["kpi", "list"], False),
    (["dashboard", "heatmap", "--rows", "class", "--cols", "pose"], True),
    (["dashboard", "classes"], True),
    # The month the simulated scans of busy_lab were taken in (today's), so that each table has rows.
    *[(["dashboard", "production", "--month", date.today().strftime("%Y-%m"), "--table", t], t == "days")
      for t in ("days", "scanners", "stations", "technicians", "forecasts")],
    (["plan", "--dry-run", "--start", "2026-11-30", "--shifts", "1", "--quiet"], False),
]


def test_every_table_fits_100_columns_with_human_labels(busy_lab, demo_inventory_file, capsys):
    capsys.readouterr()
    for command, has_percent in TABLES:
        argv = [a.replace("{inventory}", str(demo_inventory_file)) for a in command]
        assert main([*argv, "--lab", busy_lab]) == 0, capsys.readouterr().err
        out = capsys.readouterr().out
        lines = out.splitlines()
        assert max(map(len, lines)) <= 100, f"xlab {' '.join(command)}:\n{out}"
        rules = [i for i, line in enumerate(lines) if RULE.match(line.strip())]
        assert rules, f"xlab {' '.join(command)} printed no table:\n{out}"
        header = lines[:rules[0]]
        assert not any(SNAKE.search(line) for line in header[-4:]), f"snake_case header:\n{out}"
        assert "\x1b[" not in out  # no colour codes into a pipe
        if has_percent:
            assert PERCENT.search(out), f"no percentage in xlab {' '.join(command)}:\n{out}"
            assert not re.search(r"\b0\.\d{3}\b", out), f"raw fraction in xlab {' '.join(command)}:\n{out}"


def test_json_keeps_raw_numbers_and_keys(busy_lab, capsys):
    capsys.readouterr()
    assert main(["quota", "status", "--lab", busy_lab, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert isinstance(data["totals"]["test_fill"], float) and 0 <= data["totals"]["test_fill"] <= 1
    assert {"class_name", "test_target", "test_fill"} <= set(data["classes"][0])
    assert main(["--json", "dashboard", "classes", "--lab", busy_lab]) == 0
    rows = json.loads(capsys.readouterr().out)
    pistol = next(r for r in rows if r["class_name"] == "pistol")
    assert pistol["detection_rate"] == pytest.approx(0.93) and "dr_low" in pistol
    assert main(["--lab", busy_lab, "quarantine", "list", "--json"]) == 0
    held = json.loads(capsys.readouterr().out)
    assert held[0]["reason_code"] and held[0]["source_path"].endswith("not-an-image.png")


def test_a_long_reason_wraps_inside_the_width(busy_lab, capsys):
    capsys.readouterr()
    assert main(["quota", "show", "--lab", busy_lab]) == 0
    out = capsys.readouterr().out
    assert max(map(len, out.splitlines())) <= 100
    # the Wilson basis (about 60 characters) is whole, on one line or two
    assert "Wilson 95%" in out and "one-sided" in out


def test_plan_progress_goes_to_stderr_and_json_stays_parseable(demo_lab, capsys):
    root = str(demo_lab.paths.root)
    assert main(["plan", "--lab", root, "--start", "2026-11-23", "--shifts", "1", "--dry-run", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["sessions"] > 0
    assert "[1/4] choosing setups" in captured.err


def test_a_simple_command_imports_only_its_area():
    code = ("import sys; from app.launcher import main; rc = main(['sizing', '--rate', '0.9']);"
            "print(sorted(m for m in sys.modules if m.startswith('core.cli.') or m in ('rich', 'core.lab')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "['core.cli.common', 'core.cli.lab', 'core.cli.main', 'core.cli.output', " \
                                   "'core.cli.progress']"


def test_progress_into_a_pipe_is_plain_lines_at_most_once_a_second():
    import io

    from core.cli.progress import StatusLine

    log = io.StringIO()
    status = StatusLine(stream=log)
    for n in range(1, 1001):
        status.update(f"[{n}/1000] file {n}")
    status.close()
    lines = log.getvalue().splitlines()
    assert lines[0] == "[1/1000] file 1" and lines[-1] == "[1000/1000] file 1000"
    assert len(lines) < 10 and "\r" not in log.getvalue() and "\x1b" not in log.getvalue()
