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

Ranges (anything outside is refused with its line, before any work starts):
``name`` 1-100 characters, ``note`` up to 2,000; ``images_per_setup`` 1-100;
``detection_rate``, ``confidence``, clean ``false_alarm_rate`` strictly between
0 and 1; ``max_false_alarm_rate`` from 0 to below 1; ``half_width`` strictly
between 0 and 0.5; ``misses_allowed`` 0-100; ``ratio_step`` 1-20 (train:test);
``test_setups`` and clean ``setups`` 0-1,000,000; mix weights finite, 0 to
1,000,000, not all 0 in a dimension; class and mix value names 1-100 characters.
No text may hold control characters. The file itself is read by
:mod:`core.inputs` (size, encoding, nesting, no aliases, no duplicate keys).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.inputs import MAX_NAME, MAX_NOTE, Located, Number, OneOf, Problems, Rule, Text, Whole, is_missing, parse_yaml, read_bytes, shown

DIMENSIONS = ("luggage_type", "clutter", "scanner_model", "pose")

# Upper bounds that keep every plan computable in moments (sizing and mix
# expansion work grows with them).
MAX_MISSES = 100
MAX_RATIO_STEP = 20
MAX_SETUPS = 1_000_000
MAX_IMAGES_PER_SETUP = 100
MAX_WEIGHT = 1_000_000


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


# The documented range of every field (see core.inputs for the rules).
_KPI_FIELDS: dict[str, Rule] = {
    "detection_rate": Number(0, 1, lo_open=True, hi_open=True),
    "half_width": Number(0, 0.5, lo_open=True, hi_open=True),
    "confidence": Number(0, 1, lo_open=True, hi_open=True),
    "max_false_alarm_rate": Number(0, 1, hi_open=True),
    "sizing": OneOf(("wilson", "demonstration")),
    "misses_allowed": Whole(0, MAX_MISSES),
    "ratio_step": Whole(1, MAX_RATIO_STEP),
    "test_setups": Whole(0, MAX_SETUPS),
}
_CLEAN_FIELDS: dict[str, Rule] = {
    "false_alarm_rate": Number(0, 1, lo_open=True, hi_open=True),
    "half_width": Number(0, 0.5, lo_open=True, hi_open=True),
    "confidence": Number(0, 1, lo_open=True, hi_open=True),
    "setups": Whole(0, MAX_SETUPS),
}
_TOP_FIELDS: dict[str, Rule] = {
    "name": Text(MAX_NAME),
    "note": Text(MAX_NOTE, blank_ok=True),
    "images_per_setup": Whole(1, MAX_IMAGES_PER_SETUP),
}
_WEIGHT = Number(0, MAX_WEIGHT)
_NAME = Text(MAX_NAME)


class _Checker:
    def __init__(self, problems: Problems):
        self.problems = problems

    def problem(self, node: Located, path: str, message: str) -> None:
        self.problems.add(node.line, f"{path}: {message}")

    def mapping(self, path: str, node: Located | None, what: str) -> dict[str, Located]:
        if node is None or is_missing(node):
            return {}
        if not node.is_mapping:
            self.problem(node, path, f"must be a mapping of {what}")
            return {}
        return node.value

    def fields(self, path: str, node: Located | None, allowed: dict[str, Rule], extra: tuple[str, ...] = ()) -> dict[str, Any]:
        out = {}
        for key, value in self.mapping(path, node, "settings").items():
            where = f"{path}.{shown(key)}" if path else shown(key)
            if key in extra:
                continue
            if key not in allowed:
                self.problem(value, where, f"unknown key (allowed: {', '.join([*allowed, *extra])})")
                continue
            if is_missing(value):
                continue
            checked, problem = allowed[key].check(value)
            if problem:
                self.problem(value, where, problem)
            else:
                out[key] = checked
        return out

    def mix(self, path: str, node: Located | None) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for dim, weights in self.mapping(path, node, "dimension → {value: weight}").items():
            where = f"{path}.{shown(dim)}"
            if dim not in DIMENSIONS:
                self.problem(weights, where, f"unknown mix dimension (use {', '.join(DIMENSIONS)})")
                continue
            if not weights.is_mapping or not weights.value:
                self.problem(weights, where, "must map values to weights")
                continue
            clean: dict[str, float] = {}
            for name, weight in weights.value.items():
                _, name_problem = _NAME.check(Located(weight.line, name, name))
                checked, problem = _WEIGHT.check(weight)
                if name_problem or problem:
                    self.problem(weight, f"{where}.{shown(name)}", f"name {name_problem}" if name_problem else problem)
                else:
                    clean[name] = checked
            if len(clean) == len(weights.value) and sum(clean.values()) <= 0:
                self.problem(weights, where, "weights must not all be 0")
            out[dim] = clean
        return out


def parse_plan_spec(raw: bytes, source: str) -> PlanSpec:
    """The spec in ``raw``, every value range-checked; :class:`InputFileError`
    lists every problem with its line."""
    problems = Problems(source)
    root = parse_yaml(raw, problems)
    problems.raise_if_any()
    if not root.is_mapping:
        problems.add(root.line, "expected a mapping with at least 'name:'")
        problems.raise_if_any()
    checker = _Checker(problems)
    data = root.value
    allowed_top = (*_TOP_FIELDS, "defaults", "clean", "mix", "classes")
    top = checker.fields("", root, _TOP_FIELDS, extra=allowed_top[len(_TOP_FIELDS):])
    if is_missing(data.get("name")):
        problems.add(data["name"].line if "name" in data else root.line, "name: the plan needs a name")
    defaults = checker.fields("defaults", data.get("defaults"), _KPI_FIELDS)
    clean = checker.fields("clean", data.get("clean"), _CLEAN_FIELDS)
    mix = checker.mix("mix", data.get("mix"))
    classes: dict[str, dict[str, Any]] = {}
    for class_name, settings in checker.mapping("classes", data.get("classes"), "class names to their settings").items():
        path = f"classes.{shown(class_name)}"
        _, name_problem = _NAME.check(Located(settings.line, class_name, class_name))
        if name_problem:
            checker.problem(settings, path, f"class name {name_problem}")
            continue
        entry = checker.fields(path, settings, _KPI_FIELDS, extra=("mix",))
        if settings.is_mapping and "mix" in settings.value:
            entry["mix"] = checker.mix(f"{path}.mix", settings.value["mix"])
        classes[class_name] = entry
    problems.raise_if_any()
    return PlanSpec(
        name=top["name"],
        images_per_setup=top.get("images_per_setup", 1),
        note=top.get("note", ""),
        defaults=KpiSpec(**defaults),
        clean=CleanSpec(**clean),
        mix=mix,
        classes=classes,
    )


def read_plan_spec(path: str | Path) -> PlanSpec:
    problems = Problems(str(path))
    raw = read_bytes(path, problems)
    problems.raise_if_any()
    return parse_plan_spec(raw, str(path))
