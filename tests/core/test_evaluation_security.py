"""Detection rate and false-alarm rate over distinct setups, and the threshold chosen on validation."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import EvaluationError
from core.evaluation.security import (
    Detection,
    ImageRecord,
    Truth,
    choose_thresholds,
    detection_rate,
    false_alarm_rate,
    fixed_thresholds,
    measure,
    security_report,
)
from core.quota.sizing import wilson_interval

BOX = (0.0, 0.0, 10.0, 10.0)
FAR = (50.0, 50.0, 60.0, 60.0)  # no overlap with BOX


def threat(image, setup, score=None, box=BOX, cls="knife", split="test", det_cls=None):
    detections = () if score is None else (Detection(det_cls or cls, box, score),)
    return ImageRecord(image, split, truths=(Truth(cls, BOX, setup),), detections=detections)


def clean(image, setup, *detections, split="test"):
    return ImageRecord(image, split, detections=tuple(Detection(c, FAR, s) for c, s in detections), clean_setup=setup)


def test_detection_rate_counts_setups_with_the_share_of_their_images():
    records = [
        # setup A: 4 scans, detected in 3 at τ = 0.5
        threat(1, "A", 0.9), threat(2, "A", 0.8), threat(3, "A", 0.6), threat(4, "A", 0.2),
        # setup B: 2 scans, both detected
        threat(5, "B", 0.7), threat(6, "B", 0.5),
        # setup C: a confident box in the wrong place, and a right box of the wrong class
        threat(7, "C", 0.99, box=FAR), threat(8, "C", 0.99, det_cls="gun"),
    ]
    rate = detection_rate(records, "knife", 0.5)
    assert rate.setups == 3 and rate.images == 8 and rate.image_hits == 5
    assert rate.successes == pytest.approx(0.75 + 1 + 0)
    assert rate.rate == pytest.approx(1.75 / 3)
    assert (rate.low, rate.high) == pytest.approx(wilson_interval(1.75, 3))

    majority = detection_rate(records, "knife", 0.5, setup_rule="majority")
    assert majority.successes == 2 and majority.rate == pytest.approx(2 / 3)
    assert (majority.low, majority.high) == pytest.approx(wilson_interval(2, 3))


def test_iou_of_exactly_one_half_detects():
    half = threat(1, "A", 0.9, box=(0.0, 0.0, 10.0, 5.0))  # IoU 50 / 100
    less = threat(2, "B", 0.9, box=(0.0, 0.0, 10.0, 4.9))
    rate = detection_rate([half, less], "knife", 0.5)
    assert rate.successes == 1 and rate.setups == 2


def test_majority_tie_is_a_miss_for_detection_and_an_alarm_for_false_alarms():
    threats = [threat(1, "A", 0.9), threat(2, "A", 0.1)]
    assert detection_rate(threats, "knife", 0.5, "majority").successes == 0
    assert detection_rate(threats, "knife", 0.5, "fraction").successes == 0.5
    cleans = [clean(3, "bag1", ("knife", 0.9)), clean(4, "bag1")]
    assert false_alarm_rate(cleans, {"knife": 0.5}, "majority").successes == 1
    assert false_alarm_rate(cleans, {"knife": 0.5}, "fraction").successes == 0.5


def test_false_alarm_rate_per_class_and_overall():
    records = [
        clean(1, "bag1", ("knife", 0.7)), clean(2, "bag1"),       # bag1: one of two scans alarms (knife)
        clean(3, "bag2", ("gun", 0.9)),                          # bag2: a gun alarm
        clean(4, "bag3", ("knife", 0.3)),                        # bag3: below τ
        threat(5, "A", 0.99), threat(6, "A", 0.99, box=FAR),     # threat images never count here
    ]
    knife = false_alarm_rate(records, {"knife": 0.5})
    assert knife.setups == 3 and knife.images == 4 and knife.image_hits == 1
    assert knife.rate == pytest.approx(0.5 / 3)
    gun = false_alarm_rate(records, {"gun": 0.95})
    assert gun.rate == 0 and gun.low == 0 and gun.high == pytest.approx(wilson_interval(0, 3)[1])
    assert false_alarm_rate(records, {"knife": 0.5, "gun": 0.95}).rate == pytest.approx(0.5 / 3)
    both = false_alarm_rate(records, {"knife": 0.5, "gun": 0.5})
    assert both.successes == pytest.approx(1.5) and both.image_hits == 2


def _validation_cleans(scores):
    return [clean(i, f"bag{i}", ("knife", s), split="validation") for i, s in enumerate(scores)]


def test_threshold_is_the_lowest_meeting_the_false_alarm_target_on_validation():
    scores = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    records = _validation_cleans(scores) + [threat(100, "A", 0.85, split="validation")]
    point = choose_thresholds(records, {"knife": 0.2})["knife"]
    # At most 2 of 10 clean setups may alarm: τ must be above 0.8, and the lowest such τ is just above it.
    assert point.threshold == math.nextafter(0.8, math.inf)
    assert point.validation_false_alarm.rate == pytest.approx(0.2)
    assert false_alarm_rate(records, {"knife": 0.8}).rate == pytest.approx(0.3)
    assert point.validation_detection.rate == 1.0  # the threat at 0.85 is still detected
    assert "validation" in point.rule and "20.00%" in point.rule

    # A target every detection meets: τ is the lowest score seen (everything alarms).
    assert choose_thresholds(records, {"knife": 1.0})["knife"].threshold == 0.0


def test_threshold_by_the_upper_end_of_the_interval():
    records = _validation_cleans([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    # With 10 clean setups, even no alarm leaves the upper end at 27.8 %.
    with pytest.raises(EvaluationError, match="more clean setups are needed"):
        choose_thresholds(records, {"knife": 0.2}, bound="upper")
    point = choose_thresholds(records, {"knife": 0.3}, bound="upper")["knife"]
    assert wilson_interval(0, 10)[1] <= 0.3 < wilson_interval(1, 10)[1]
    assert point.threshold == math.nextafter(1.0, math.inf)


def test_threshold_is_never_chosen_on_the_test_set():
    records = _validation_cleans([0.2, 0.4]) + [clean(50, "bagX", ("knife", 0.9), split="test")]
    with pytest.raises(EvaluationError, match="chosen on the validation split, never on test images"):
        choose_thresholds(records, {"knife": 0.1})
    with pytest.raises(EvaluationError, match="never on test"):
        choose_thresholds([clean(1, "b", split="test")], {"knife": 0.1})


def test_security_report_chooses_on_validation_and_measures_on_test():
    validation = _validation_cleans([0.2, 0.4, 0.6, 0.8]) + [threat(10, "V", 0.9, split="validation")]
    test = [threat(20, "T1", 0.7), threat(21, "T1", 0.65), threat(22, "T2", 0.5),
            clean(30, "cb1", ("knife", 0.61)), clean(31, "cb2", ("knife", 0.59)), clean(32, "cb3")]
    report = security_report(validation, test, {"knife": 0.25})
    knife = report.classes["knife"]
    assert knife.threshold == math.nextafter(0.6, math.inf)  # 1 of 4 validation clean setups may alarm
    assert knife.detection.setups == 2 and knife.detection.successes == 1  # T1 found in both scans, T2 missed
    assert knife.false_alarm.setups == 3 and knife.false_alarm.successes == 1  # 0.61 alarms, 0.59 does not
    assert report.overall_false_alarm == knife.false_alarm
    data = report.as_dict()
    assert data["classes"]["knife"]["detection"]["rate"] == 0.5 and "validation" in data["rules"]["knife"]

    with pytest.raises(EvaluationError, match="measured on the test split"):
        security_report(validation, validation, {"knife": 0.25})
    with pytest.raises(EvaluationError, match="in both the validation and the test"):
        security_report(validation, [threat(10, "V", 0.9)], {"knife": 0.25})


def test_no_clean_bags_on_validation_is_refused():
    with pytest.raises(EvaluationError, match="no clean-bag images"):
        choose_thresholds([threat(1, "A", 0.5, split="validation")], {"knife": 0.05})


def test_inconsistent_records_are_refused():
    bad = ImageRecord(1, "test", truths=(Truth("knife", BOX, "A"),), clean_setup="bag1")
    with pytest.raises(EvaluationError, match="marked as a clean bag but has 1 true box"):
        detection_rate([bad], "knife", 0.5)
    nan = ImageRecord(2, "test", detections=(Detection("knife", BOX, float("nan")),), clean_setup="bag1")
    with pytest.raises(EvaluationError, match="score nan"):
        false_alarm_rate([nan], {"knife": 0.5})
    with pytest.raises(EvaluationError, match="unknown setup rule"):
        detection_rate([], "knife", 0.5, setup_rule="mean")


def test_fixed_threshold_records_its_reason_and_nothing_to_measure_is_none():
    points = fixed_thresholds(["knife", "gun"], 0.5, "vendor default on the HS-6040 line")
    assert points["gun"].rule == "fixed at 0.5: vendor default on the HS-6040 line"
    report = measure([threat(1, "A", 0.6)], points)
    assert report.classes["knife"].detection.rate == 1.0
    empty = report.classes["gun"].detection
    assert empty.setups == 0 and empty.rate is None and empty.low is None
    with pytest.raises(EvaluationError, match="reason"):
        fixed_thresholds(["knife"], 0.5, " ")


# Properties -------------------------------------------------------------------------------------------------

SCORES = st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.5, 0.7, 0.9, 1.0])
BOXES = st.sampled_from([BOX, (0.0, 0.0, 10.0, 6.0), (2.0, 2.0, 12.0, 12.0), FAR])


@st.composite
def record_sets(draw):
    records = []
    for s in range(draw(st.integers(0, 6))):
        for _ in range(draw(st.integers(1, 4))):
            dets = tuple(Detection(draw(st.sampled_from(["knife", "gun"])), draw(BOXES), draw(SCORES))
                         for _ in range(draw(st.integers(0, 3))))
            records.append(ImageRecord(len(records), "validation", (Truth("knife", BOX, f"setup{s}"),), dets))
    for b in range(draw(st.integers(0, 6))):
        for _ in range(draw(st.integers(1, 3))):
            dets = tuple(Detection(draw(st.sampled_from(["knife", "gun"])), FAR, draw(SCORES))
                         for _ in range(draw(st.integers(0, 2))))
            records.append(ImageRecord(len(records), "validation", (), dets, clean_setup=f"bag{b}"))
    return records


@settings(max_examples=150, deadline=None)
@given(record_sets(), st.sampled_from(["fraction", "majority"]), SCORES, SCORES)
def test_rates_fall_as_the_threshold_rises_and_intervals_hold_them(records, rule, t1, t2):
    lo_t, hi_t = min(t1, t2), max(t1, t2)
    pd_lo, pd_hi = detection_rate(records, "knife", lo_t, rule), detection_rate(records, "knife", hi_t, rule)
    fa_lo = false_alarm_rate(records, {"knife": lo_t, "gun": lo_t}, rule)
    fa_hi = false_alarm_rate(records, {"knife": hi_t, "gun": hi_t}, rule)
    setups = {t.setup for r in records for t in r.truths}
    clean_setups = {r.clean_setup for r in records if r.clean}
    assert pd_lo.setups == pd_hi.setups == len(setups)  # n counts setups, not images
    assert fa_lo.setups == fa_hi.setups == len(clean_setups)
    assert pd_lo.images == sum(len(r.truths) for r in records)
    for rate in (pd_lo, pd_hi, fa_lo, fa_hi):
        if rate.setups:
            assert 0 <= rate.low <= rate.rate <= rate.high <= 1
            assert 0 <= rate.successes <= rate.setups
        else:
            assert rate.rate is None
    if setups:
        assert pd_lo.rate >= pd_hi.rate
    if clean_setups:
        assert fa_lo.rate >= fa_hi.rate
        # Each class's alarms are a part of the overall ones.
        assert false_alarm_rate(records, {"knife": lo_t}, rule).rate <= fa_lo.rate


@settings(max_examples=150, deadline=None)
@given(record_sets(), st.sampled_from([0.0, 0.1, 0.25, 0.5, 1.0]), st.sampled_from(["fraction", "majority"]))
def test_chosen_threshold_meets_the_target_and_no_lower_one_does(records, target, rule):
    if not any(r.clean for r in records):
        with pytest.raises(EvaluationError):
            choose_thresholds(records, {"knife": target}, setup_rule=rule)
        return
    tau = choose_thresholds(records, {"knife": target}, setup_rule=rule)["knife"].threshold
    assert false_alarm_rate(records, {"knife": tau}, rule).rate <= target
    lowest = min([d.score for r in records for d in r.detections if d.class_name == "knife"] + [0.0])
    if tau > lowest:
        assert false_alarm_rate(records, {"knife": math.nextafter(tau, -math.inf)}, rule).rate > target


def test_equal_scans_per_setup_make_the_fraction_rule_the_share_of_images():
    records = [threat(i, f"S{i // 3}", score) for i, score in enumerate([0.9, 0.1, 0.8, 0.2, 0.2, 0.7, 0.6, 0.6, 0.6])]
    rate = detection_rate(records, "knife", 0.5)
    assert rate.rate == pytest.approx(rate.image_hits / rate.images) and rate.setups == 3
