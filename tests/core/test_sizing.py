import math

import pytest

from core.errors import SizingError
from core.quota.sizing import (
    demonstration_sample_size,
    normal_sample_size,
    size_kpi,
    wilson_interval,
    wilson_sample_size,
)


def _within(rate, n, h, confidence=0.95):
    lo, hi = wilson_interval(rate * n, n, confidence)
    return rate - lo <= h and hi - rate <= h


@pytest.mark.parametrize(
    "rate, half_width, expected",
    [
        # The brief's figures: "about 482" and "about 194". The strict
        # both-ends condition gives 483 (at 482 the lower end is 0.03003 away)
        # and 196.
        (0.90, 0.03, 483),
        (0.90, 0.05, 196),
        (0.95, 0.03, 315),
        (0.50, 0.05, 381),
    ],
)
def test_wilson_known_values(rate, half_width, expected):
    n = wilson_sample_size(rate, half_width)
    assert n == expected
    assert _within(rate, n, half_width)
    assert not _within(rate, n - 1, half_width)


def test_wilson_is_the_smallest_n_by_brute_force():
    for rate, h in [(0.9, 0.04), (0.8, 0.05), (0.97, 0.02), (0.05, 0.02)]:
        brute = next(n for n in range(1, 20_000) if all(_within(rate, m, h) for m in range(n, n + 5)))
        assert wilson_sample_size(rate, h) == brute


def test_normal_approximation_understates_near_one():
    assert normal_sample_size(0.90, 0.03) == 385
    assert wilson_sample_size(0.90, 0.03) > normal_sample_size(0.90, 0.03)


def test_wilson_interval_matches_the_textbook_formula():
    # 45/50 at 95 %: the Wilson interval is [0.7864, 0.9565] (Newcombe 1998 style).
    lo, hi = wilson_interval(45, 50)
    assert lo == pytest.approx(0.7864, abs=1e-4)
    assert hi == pytest.approx(0.9565, abs=1e-4)


def test_demonstration_zero_misses_at_095_is_59():
    assert demonstration_sample_size(0.95, 0, 0.95) == 59
    # k misses: P(misses <= k | 0.95) <= 0.05 first holds at n
    n = demonstration_sample_size(0.95, 1, 0.95)
    p = lambda m: sum(math.comb(m, i) * 0.05**i * 0.95 ** (m - i) for i in range(2))
    assert p(n) <= 0.05 < p(n - 1)


def test_bad_kpis_are_refused_with_a_message():
    with pytest.raises(SizingError, match="rate"):
        wilson_sample_size(1.2, 0.03)
    with pytest.raises(SizingError, match="half-width"):
        wilson_sample_size(0.9, 0.0)
    with pytest.raises(SizingError, match="sizing method"):
        size_kpi(0.9, 0.03, method="magic")


def test_basis_text_names_the_interval():
    result = size_kpi(0.90, 0.03)
    assert result.required == 483
    assert "Wilson" in result.basis() and "385" in result.basis()


def _linear_demonstration(rate, k, confidence):
    q = 1 - rate
    n = k + 1
    while sum(math.comb(n, i) * q**i * (1 - q) ** (n - i) for i in range(k + 1)) > 1 - confidence:
        n += 1
    return n


@pytest.mark.parametrize("rate, k, confidence", [(0.95, 0, 0.95), (0.9, 3, 0.9), (0.99, 2, 0.95), (0.8, 10, 0.99), (0.5, 0, 0.6)])
def test_demonstration_search_finds_the_smallest_n(rate, k, confidence):
    assert demonstration_sample_size(rate, k, confidence) == _linear_demonstration(rate, k, confidence)


def test_demonstration_work_is_bounded_whatever_the_inputs():
    import time

    started = time.monotonic()
    assert demonstration_sample_size(0.95, 1000, 0.95) > 1000
    with pytest.raises(SizingError, match="misses allowed must be from 0 to 1000"):
        demonstration_sample_size(0.95, 1_000_000, 0.95)
    with pytest.raises(SizingError, match="more than 10,000,000 samples"):
        demonstration_sample_size(1 - 1e-9, 50, 0.999999)
    assert time.monotonic() - started < 5
