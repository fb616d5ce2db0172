"""The quota plan spec: the manager's KPIs and deployment mix, as a YAML file.

Example (every key optional except ``name``)::

    name: test-set
    images_per_setup: 1
    defaults:
      detection_rate: 0.90      # KPI the test set must measure
      half_width: 0.03          # ± of the 95 % interval
      confidence: 0.95
      max_false_alarm_rate: 0.05
      sizing: wilson            # or: demonstration (with misses_allowed)
      ratio_step: 1             # train:test, per class
    clean:                      # clean bags measure the false-alarm rate
      false_alarm_rate: 0.05
      half_width: 0.02
    mix:                        # marginal weights; a missing dimension is uniform
      luggage_type: {hard_case: 3, soft_bag: 2}
      clutter: {low: 1, medium: 2, high: 1}
    classes:                    # missing: every active class, with the defaults
      knife_folding_open: {detection_rate: 0.95, half_width: 0.02}
      pistol: {test_setups: 600, mix: {pose: {flat: 2, edge_on: 1}}}
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.errors import InputFileError, InputProblem

DIMENSIONS = ("luggage_type", "clutter", "scanner_model", "pose")


@dataclass(frozen=True)
class KpiSpec:
    detection_rate: float = 0.90
    half_width: float = 0.03
    confidence: float = 0.95
    max_false_alarm_rate: float = 0.05
    sizing: str = "wilson"
    misses_allowed: int = 0
    ratio_step: int = 1
    test_setups: int | None = None  # overrides the computed size


@dataclass(frozen=True)
class CleanSpec:
    false_alarm_rate: float = 0.05
    half_width: float = 0.02
    confidence: float = 0.95
    setups: int | None = None


@dataclass
class PlanSpec:
    name: str
    images_per_setup: int = 1
    note: str = ""
    defaults: KpiSpec = field(default_factory=KpiSpec)
    clean: CleanSpec = field(default_factory=CleanSpec)
    mix: dict[str, dict[str, float]] = field(default_factory=dict)
    classes: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-class KPI fields and 'mix'

    def kpi_for(self, class_name: str) -> KpiSpec:
        overrides = {k: v for k, v in self.classes.get(class_name, {}).items() if k != "mix"}
        return KpiSpec(**{**asdict(self.defaults), **overrides})

    def mix_for(self, class_name: str | None) -> dict[str, dict[str, float]]:
        merged = {k: dict(v) for k, v in self.mix.items()}
        if class_name is not None:
            merged.update(self.classes.get(class_name, {}).get("mix", {}))
        return merged

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "PlanSpec":
        data = json.loads(text)
        return cls(
            name=data["name"],
            images_per_setup=data["images_per_setup"],
            note=data.get("note", ""),
            defaults=KpiSpec(**data["defaults"]),
            clean=CleanSpec(**data["clean"]),
            mix=data["mix"],
            classes=data["classes"],
        )


_KPI_FIELDS = {
    "detection_rate": (float, lambda v: 0 < v < 1, "between 0 and 1"),
    "half_width": (float, lambda v: 0 < v < 0.5, "between 0 and 0.5"),
    "confidence": (float, lambda v: 0 < v < 1, "between 0 and 1"),
    "max_false_alarm_rate": (float, lambda v: 0 <= v < 1, "between 0 and 1"),
    "sizing": (str, lambda v: v in ("wilson", "demonstration"), "wilson or demonstration"),
    "misses_allowed": (int, lambda v: v >= 0, "0 or more"),
    "ratio_step": (int, lambda v: v >= 0, "0 or more (train:test)"),
    "test_setups": (int, lambda v: v >= 0, "0 or more"),
}
_CLEAN_FIELDS = {
    "false_alarm_rate": (float, lambda v: 0 < v < 1, "between 0 and 1"),
    "half_width": (float, lambda v: 0 < v < 0.5, "between 0 and 0.5"),
    "confidence": (float, lambda v: 0 < v < 1, "between 0 and 1"),
    "setups": (int, lambda v: v >= 0, "0 or more"),
}


class _Checker:
    def __init__(self, source: str):
        self.source = source
        self.problems: list[InputProblem] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(InputProblem(self.source, None, f"{path}: {message}"))

    def value(self, path: str, value: Any, kind: type, ok: Any, expected: str) -> Any:
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool):
            self.problem(path, f"must be {kind.__name__} ({expected}), got {value!r}")
            return None
        if not ok(value):
            self.problem(path, f"must be {expected}, got {value!r}")
            return None
        return value

    def fields(self, path: str, data: Any, allowed: dict, extra: tuple[str, ...] = ()) -> dict[str, Any]:
        if not isinstance(data, dict):
            self.problem(path, "must be a mapping")
            return {}
        out = {}
        for key, value in data.items():
            if key in extra:
                continue
            if key not in allowed:
                self.problem(f"{path}.{key}", f"unknown key (allowed: {', '.join(allowed)})")
                continue
            checked = self.value(f"{path}.{key}", value, *allowed[key])
            if checked is not None:
                out[key] = checked
        return out

    def mix(self, path: str, data: Any) -> dict[str, dict[str, float]]:
        if not isinstance(data, dict):
            self.problem(path, "must be a mapping of dimension → {value: weight}")
            return {}
        out: dict[str, dict[str, float]] = {}
        for dim, weights in data.items():
            if dim not in DIMENSIONS:
                self.problem(f"{path}.{dim}", f"unknown mix dimension (use {', '.join(DIMENSIONS)})")
                continue
            if not isinstance(weights, dict) or not weights:
                self.problem(f"{path}.{dim}", "must map values to weights")
                continue
            clean: dict[str, float] = {}
            for name, weight in weights.items():
                checked = self.value(f"{path}.{dim}.{name}", weight, float, lambda v: v >= 0, "a weight of 0 or more")
                if checked is not None:
                    clean[str(name)] = checked
            if clean and sum(clean.values()) <= 0:
                self.problem(f"{path}.{dim}", "weights must not all be 0")
            out[dim] = clean
        return out


def parse_plan_spec(raw: bytes, source: str) -> PlanSpec:
    checker = _Checker(source)
    try:
        data = yaml.safe_load(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise InputFileError([InputProblem(source, None, "not UTF-8 text; save the file as UTF-8")])
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputFileError([InputProblem(source, mark.line + 1 if mark else None, f"not valid YAML: {getattr(exc, 'problem', exc)}")])
    if not isinstance(data, dict):
        raise InputFileError([InputProblem(source, None, "expected a mapping with at least 'name:'")])
    allowed_top = {"name", "images_per_setup", "note", "defaults", "clean", "mix", "classes"}
    for key in data:
        if key not in allowed_top:
            checker.problem(str(key), f"unknown key (allowed: {', '.join(sorted(allowed_top))})")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        checker.problem("name", "the plan needs a name")
        name = ""
    ips = checker.value("images_per_setup", data.get("images_per_setup", 1), int, lambda v: v >= 1, "1 or more")
    defaults = checker.fields("defaults", data.get("defaults", {}), _KPI_FIELDS)
    clean = checker.fields("clean", data.get("clean", {}), _CLEAN_FIELDS)
    mix = checker.mix("mix", data.get("mix", {}))
    classes: dict[str, dict[str, Any]] = {}
    raw_classes = data.get("classes", {}) or {}
    if not isinstance(raw_classes, dict):
        checker.problem("classes", "must map class names to their settings")
        raw_classes = {}
    for class_name, settings in raw_classes.items():
        settings = settings or {}
        entry = checker.fields(f"classes.{class_name}", settings, _KPI_FIELDS, extra=("mix",))
        if isinstance(settings, dict) and "mix" in settings:
            entry["mix"] = checker.mix(f"classes.{class_name}.mix", settings["mix"])
        classes[str(class_name)] = entry
    if checker.problems:
        raise InputFileError(checker.problems)
    return PlanSpec(
        name=name.strip(),
        images_per_setup=ips,
        note=str(data.get("note", "") or ""),
        defaults=KpiSpec(**defaults),
        clean=CleanSpec(**clean),
        mix=mix,
        classes=classes,
    )


def read_plan_spec(path: str | Path) -> PlanSpec:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputFileError([InputProblem(str(path), None, f"cannot read the file: {exc.strerror or exc}")])
    return parse_plan_spec(raw, str(path))
