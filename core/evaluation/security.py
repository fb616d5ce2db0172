"""The security metrics the KPIs are written in: detection rate and false-alarm rate.

Pure functions over plain records (:class:`ImageRecord`); the caller builds them
from the catalog and a run's detections.

Detection rate (Pd) of a class at the operating threshold τ
    A true box of class *c* is **detected** when a detection of class *c* with
    score ≥ τ overlaps it at IoU ≥ 0.5. There is no one-to-one matching: one
    alarm box may detect two items if it overlaps each at 0.5. (For the usual
    image with one threat item this is the brief's "an image of class c counts
    as detected when ...".)

False-alarm rate of a class at τ
    The share of **clean-bag** images with an alarm of class *c* (a detection
    of class *c* with score ≥ τ_c, anywhere). Overall: the share with an alarm
    of any evaluated class, each at its own τ. Images of threat bags count for
    neither false-alarm rate; images that are neither clean nor labelled
    count for nothing.

Setups, not images
    Repeated scans of one setup are not independent trials (docs/method.md), so
    the rates and their Wilson intervals count **distinct setups**: for a true
    box, the setup of its item (item × bag × pose × scanner model); for a
    clean image, its clean setup (bag × scanner model; the caller's key).
    The interval's *n* is the number of setups. Each setup contributes

    * ``"fraction"`` (default): the share of its images detected (alarmed), so
      a setup seen in 3 of 4 scans counts 0.75. The rate is the mean over
      setups; with the same number of images per setup (a plan's
      ``images_per_setup``) it equals the share of images, and nothing is
      thrown away as a majority vote would.
    * ``"majority"``: 1 when more than half of its images are detected
      (alarmed), else 0; a tie counts as missed for detection and as alarmed
      for false alarms (the side a KPI should not be flattered on).

The operating threshold
    τ is chosen per class on the **validation** split, never on the test set:
    :func:`choose_thresholds` refuses records of any other split. The rule is
    recorded with the threshold: the lowest τ whose false-alarm rate on the
    validation clean bags is at or below the class's target (``bound="point"``)
    or whose Wilson upper bound is (``bound="upper"``, the cautious reading).
    The false-alarm rate only changes at the clean images' scores, so the
    lowest such τ is the smallest float above the highest clean score that
    still breaks the target; when even alarming on every detection meets the
    target, τ is the lowest score seen (or 0). :func:`fixed_thresholds`
    records a threshold set by hand instead. :func:`security_report` chooses τ
    on validation records and reports on test records.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.errors import EvaluationError
from core.quota.sizing import wilson_interval

DETECTION_IOU = 0.5
SETUP_RULES = ("fraction", "majority")
BOUNDS = ("point", "upper")

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels, x1/y1 exclusive (as core.labels.model)


@dataclass(frozen=True)
class Truth:
    """A threat item's true box in one image, and the setup it was scanned in."""

    class_name: str
    box: Box
    setup: Hashable  # (item, bag, pose, scanner model)


@dataclass(frozen=True)
class Detection:
    class_name: str
    box: Box
    score: float


@dataclass(frozen=True)
class ImageRecord:
    """One image, its true boxes and a model's detections on it.

    ``clean_setup`` is set (bag × scanner model, or the caller's key) for an
    image of a clean bag, which then has no truths; ``split`` is the image's
    dataset split (``validation``, ``test``...).
    """

    image: Hashable
    split: str
    truths: tuple[Truth, ...] = ()
    detections: tuple[Detection, ...] = ()
    clean_setup: Hashable | None = None

    @property
    def clean(self) -> bool:
        return self.clean_setup is not None


@dataclass(frozen=True)
class Rate:
    """A rate over distinct setups with its Wilson interval.

    ``setups`` is the interval's *n*; ``successes`` the detected (alarmed)
    setups, fractional under the ``fraction`` rule; ``images`` and
    ``image_hits`` are the raw counts behind them. ``rate``, ``low`` and
    ``high`` are None when there is nothing to measure on.
    """

    setups: int
    successes: float
    images: int
    image_hits: int
    rate: float | None
    low: float | None
    high: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"setups": self.setups, "successes": self.successes, "images": self.images,
                "image_hits": self.image_hits, "rate": self.rate, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class OperatingPoint:
    """A class's threshold τ and how it was set (in words, for the record)."""

    class_name: str
    threshold: float
    rule: str
    validation_false_alarm: Rate | None = None
    validation_detection: Rate | None = None


@dataclass(frozen=True)
class ClassSecurity:
    """One class at its operating point: what a KPI result records."""

    class_name: str
    threshold: float
    detection: Rate
    false_alarm: Rate

    def as_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "detection": self.detection.as_dict(),
                "false_alarm": self.false_alarm.as_dict()}


@dataclass(frozen=True)
class SecurityReport:
    classes: dict[str, ClassSecurity]
    overall_false_alarm: Rate
    operating_points: dict[str, OperatingPoint]
    setup_rule: str
    confidence: float
    notes: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {"classes": {name: c.as_dict() for name, c in self.classes.items()},
                "overall_false_alarm": self.overall_false_alarm.as_dict(),
                "rules": {name: p.rule for name, p in self.operating_points.items()},
                "setup_rule": self.setup_rule, "confidence": self.confidence}


# ---------------------------------------------------------------------------------------------------------------


def iou(a: Box, b: Box) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def _check_records(records: Sequence[ImageRecord]) -> None:
    problems = []
    for r in records:
        if r.clean and r.truths:
            problems.append(f"image {r.image} is marked as a clean bag but has {len(r.truths)} true box(es)")
        for d in r.detections:
            if not math.isfinite(d.score):
                problems.append(f"image {r.image}: a {d.class_name} detection has score {d.score}")
    if problems:
        shown = "; ".join(problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise EvaluationError(f"the evaluation records are inconsistent: {shown}{more}")


def _check_rule(setup_rule: str) -> None:
    if setup_rule not in SETUP_RULES:
        raise EvaluationError(f"unknown setup rule '{setup_rule}' (use {' or '.join(SETUP_RULES)})")


def _best_scores(records: Iterable[ImageRecord], class_name: str) -> tuple[list[Hashable], list[float]]:
    """Per true box of the class: its setup and the best score of a same-class detection at IoU ≥ 0.5
    (-inf when none): the box is detected at τ exactly when that score is ≥ τ."""
    setups, best = [], []
    for r in records:
        mine = [d for d in r.detections if d.class_name == class_name]
        for t in r.truths:
            if t.class_name != class_name:
                continue
            setups.append(t.setup)
            best.append(max((d.score for d in mine if iou(d.box, t.box) >= DETECTION_IOU), default=-math.inf))
    return setups, best


def _clean_scores(records: Iterable[ImageRecord], classes: Sequence[str]) -> tuple[list[Hashable], list[dict]]:
    """Per clean image: its setup and its highest score per class (classes without a detection left out)."""
    wanted = set(classes)
    setups, scores = [], []
    for r in records:
        if not r.clean:
            continue
        top: dict[str, float] = {}
        for d in r.detections:
            if d.class_name in wanted and d.score > top.get(d.class_name, -math.inf):
                top[d.class_name] = d.score
        setups.append(r.clean_setup)
        scores.append(top)
    return setups, scores


def _rate(setups: Sequence[Hashable], hits: Sequence[bool], setup_rule: str, confidence: float,
          ties_hit: bool) -> Rate:
    per_setup: dict[Hashable, list[int]] = defaultdict(lambda: [0, 0])
    for setup, hit in zip(setups, hits):
        counts = per_setup[setup]
        counts[0] += bool(hit)
        counts[1] += 1
    if setup_rule == "fraction":
        successes = math.fsum(h / n for h, n in per_setup.values())
    else:
        successes = float(sum(1 for h, n in per_setup.values() if 2 * h > n or (ties_hit and 2 * h == n)))
    n = len(per_setup)
    if n == 0:
        return Rate(0, 0.0, 0, 0, None, None, None)
    rate = successes / n
    low, high = wilson_interval(successes, n, confidence)
    # At a rate of exactly 0 or 1 the interval's end is the rate up to rounding; keep the rate inside it.
    return Rate(n, successes, len(hits), int(sum(map(bool, hits))), rate, min(low, rate), max(high, rate))


def detection_rate(records: Sequence[ImageRecord], class_name: str, threshold: float, setup_rule: str = "fraction",
                   confidence: float = 0.95) -> Rate:
    """Pd of ``class_name`` at ``threshold`` over distinct setups (module docstring)."""
    _check_rule(setup_rule)
    _check_records(records)
    setups, best = _best_scores(records, class_name)
    return _rate(setups, [b >= threshold for b in best], setup_rule, confidence, ties_hit=False)


def false_alarm_rate(records: Sequence[ImageRecord], thresholds: Mapping[str, float], setup_rule: str = "fraction",
                     confidence: float = 0.95) -> Rate:
    """Share of clean-bag images with an alarm of any class in ``thresholds``, each at its own τ,
    over distinct clean setups. One class in ``thresholds``: that class's false-alarm rate."""
    _check_rule(setup_rule)
    _check_records(records)
    setups, scores = _clean_scores(records, list(thresholds))
    hits = [any(s >= thresholds[c] for c, s in top.items()) for top in scores]
    return _rate(setups, hits, setup_rule, confidence, ties_hit=True)


def choose_thresholds(validation: Sequence[ImageRecord], max_false_alarm: Mapping[str, float],
                      bound: str = "point", setup_rule: str = "fraction",
                      confidence: float = 0.95) -> dict[str, OperatingPoint]:
    """Per class, the lowest τ meeting its false-alarm target on the validation clean bags.

    Refuses records of any split but ``validation``: a threshold picked on the
    test set makes the test-set rates optimistic.
    """
    _check_rule(setup_rule)
    if bound not in BOUNDS:
        raise EvaluationError(f"unknown bound '{bound}' (use {' or '.join(BOUNDS)})")
    wrong = [r for r in validation if r.split != "validation"]
    if wrong:
        splits = sorted({r.split for r in wrong})
        raise EvaluationError(
            f"the operating threshold is chosen on the validation split, never on {' or '.join(splits)} images: "
            f"{len(wrong)} of the records given are not validation images (first: image {wrong[0].image}, "
            f"split {wrong[0].split})")
    _check_records(validation)
    for name, target in max_false_alarm.items():
        if not 0 <= target <= 1:
            raise EvaluationError(f"the false-alarm target of {name} must be between 0 and 1, got {target}")
    setups, scores = _clean_scores(validation, list(max_false_alarm))
    if not setups:
        raise EvaluationError("the validation records have no clean-bag images: the false-alarm rate cannot be "
                              "measured there, so no threshold can be chosen for it")
    points = {}
    for name, target in max_false_alarm.items():
        top = [s.get(name, -math.inf) for s in scores]

        def rate_at(tau: float) -> Rate:
            return _rate(setups, [s >= tau for s in top], setup_rule, confidence, ties_hit=True)

        def meets(tau: float) -> bool:
            r = rate_at(tau)
            return (r.rate if bound == "point" else r.high) <= target

        # The rate changes only at the clean images' scores; it falls as τ rises. Find the lowest
        # clean score v_j whose rate meets the target; τ is then just above the clean score below it.
        if not meets(math.inf):
            silent = rate_at(math.inf)
            raise EvaluationError(
                f"{name}: even with no alarm at all, the upper end of the false-alarm interval over "
                f"{silent.setups} validation clean setups is {silent.high:.2%}, above the target {target:.2%}: "
                "more clean setups are needed to choose a threshold this way")
        values = sorted({s for s in top if s > -math.inf})
        every_score = [d.score for r in validation for d in r.detections if d.class_name == name]
        lowest_seen = min(every_score + [0.0])
        if meets(lowest_seen):
            tau = lowest_seen
        else:
            # Here some clean score breaks the target: meets(values[j]) is False below some j* ≥ 1
            # and True from j* on (True above every value).
            lo, hi = 0, len(values)
            while lo < hi:
                mid = (lo + hi) // 2
                if meets(values[mid]):
                    hi = mid
                else:
                    lo = mid + 1
            tau = math.nextafter(values[lo - 1], math.inf)
        kind = "false-alarm rate" if bound == "point" else f"upper end of the {confidence:.0%} Wilson interval"
        rule = (f"lowest τ with the {kind} on the validation clean bags at most {target:.2%} "
                f"({setup_rule} rule over setups)")
        points[name] = OperatingPoint(name, tau, rule, rate_at(tau),
                                      detection_rate(validation, name, tau, setup_rule, confidence))
    return points


def fixed_thresholds(classes: Iterable[str], threshold: float, reason: str) -> dict[str, OperatingPoint]:
    """A threshold set by hand for every class, with the reason recorded (e.g. the deployed scanner's setting)."""
    if not reason.strip():
        raise EvaluationError("a fixed threshold needs its reason recorded (who set it and why)")
    return {c: OperatingPoint(c, threshold, f"fixed at {threshold:g}: {reason.strip()}") for c in classes}


def measure(records: Sequence[ImageRecord], points: Mapping[str, OperatingPoint], setup_rule: str = "fraction",
            confidence: float = 0.95) -> SecurityReport:
    """Pd and false-alarm rate per class at its operating point, and the overall false-alarm rate."""
    _check_rule(setup_rule)
    _check_records(records)
    thresholds = {name: p.threshold for name, p in points.items()}
    classes = {name: ClassSecurity(name, tau, detection_rate(records, name, tau, setup_rule, confidence),
                                   false_alarm_rate(records, {name: tau}, setup_rule, confidence))
               for name, tau in thresholds.items()}
    return SecurityReport(classes, false_alarm_rate(records, thresholds, setup_rule, confidence), dict(points),
                          setup_rule, confidence)


def security_report(validation: Sequence[ImageRecord], test: Sequence[ImageRecord],
                    max_false_alarm: Mapping[str, float], bound: str = "point", setup_rule: str = "fraction",
                    confidence: float = 0.95) -> SecurityReport:
    """τ chosen per class on ``validation`` (:func:`choose_thresholds`), rates measured on ``test``.

    Refuses test records of another split and images present in both.
    """
    not_test = [r for r in test if r.split != "test"]
    if not_test:
        raise EvaluationError(f"the report is measured on the test split: {len(not_test)} of the records given "
                              f"as test are {not_test[0].split} images (first: image {not_test[0].image})")
    shared = {r.image for r in validation} & {r.image for r in test}
    if shared:
        raise EvaluationError(f"{len(shared)} image(s) are in both the validation and the test records "
                              f"(e.g. {sorted(map(str, shared))[0]}): the threshold would be tuned on test images")
    points = choose_thresholds(validation, max_false_alarm, bound, setup_rule, confidence)
    return measure(test, points, setup_rule, confidence)
