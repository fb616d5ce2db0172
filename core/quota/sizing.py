"""How many independent test positives (or clean bags) a KPI needs.

Wilson score interval
---------------------
For ``n`` independent trials with observed rate ``p`` and ``z`` the two-sided
normal quantile of the confidence level::

    centre = (p + z²/2n) / (1 + z²/n)
    spread = z / (1 + z²/n) * sqrt(p(1-p)/n + z²/4n²)
    [L, U] = centre ± spread

:func:`wilson_sample_size` returns the smallest ``n`` for which *both* ends lie
within the half-width ``h`` of ``p``: ``p - L <= h`` and ``U - p <= h``. Near
1 the interval is skewed (its centre is pulled towards 0.5), so the lower side
is the binding one and the textbook normal approximation ``n = z²p(1-p)/h²``
understates the need: 0.90 ± 0.03 at 95 % takes 482 positives, not 385.

Demonstration view
------------------
:func:`demonstration_sample_size` answers "how many positives, with at most
``k`` misses, make the one-sided exact (Clopper-Pearson) lower bound reach the
target rate": the smallest ``n`` with ``P(misses <= k | rate = target) <= 1 - c``.
Zero misses at 0.95 and 95 % confidence gives 59.

The ``n`` counts distinct setups (item x bag x pose): repeated scans of one
setup are not independent trials.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

from core.errors import SizingError

MAX_N = 10_000_000
MAX_MISSES = 1000  # the demonstration's cost grows with it


def z_two_sided(confidence: float) -> float:
    _check_open_unit("confidence", confidence)
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def _check_open_unit(name: str, value: float) -> None:
    if not 0 < value < 1:
        raise SizingError(f"{name} must be between 0 and 1 (exclusive), got {value}")


def wilson_interval(successes: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for ``successes`` out of ``n`` trials."""
    if n <= 0:
        raise SizingError("the interval needs at least one trial")
    z = z_two_sided(confidence)
    p = successes / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    spread = z / denominator * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - spread), min(1.0, centre + spread)


def _wilson_within(p: float, n: int, z: float, half_width: float) -> bool:
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    spread = z / denominator * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return p - (centre - spread) <= half_width and (centre + spread) - p <= half_width


def wilson_sample_size(rate: float, half_width: float, confidence: float = 0.95) -> int:
    """Smallest n whose Wilson interval around ``rate`` lies within ``±half_width``."""
    _check_open_unit("rate", rate)
    if not 0 < half_width < 0.5:
        raise SizingError(f"half-width must be between 0 and 0.5, got {half_width}")
    z = z_two_sided(confidence)
    # The widths shrink monotonically in n: bracket, then bisect.
    low, high = 1, 1
    while not _wilson_within(rate, high, z, half_width):
        low, high = high, high * 2
        if high > MAX_N:
            raise SizingError(f"a half-width of {half_width} at rate {rate} needs more than {MAX_N:,} samples")
    while low < high:
        mid = (low + high) // 2
        if _wilson_within(rate, mid, z, half_width):
            high = mid
        else:
            low = mid + 1
    return high


def normal_sample_size(rate: float, half_width: float, confidence: float = 0.95) -> int:
    """The textbook normal-approximation size, shown for comparison only."""
    _check_open_unit("rate", rate)
    z = z_two_sided(confidence)
    return math.ceil(z * z * rate * (1 - rate) / (half_width * half_width))


def _binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), summed in log space for stability."""
    if p <= 0:
        return 1.0
    if p >= 1:
        return 1.0 if k >= n else 0.0
    log_p, log_q = math.log(p), math.log1p(-p)
    total = 0.0
    for i in range(0, min(k, n) + 1):
        log_term = math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q
        total += math.exp(log_term)
    return min(1.0, total)


def demonstration_sample_size(target_rate: float, misses_allowed: int = 0, confidence: float = 0.95) -> int:
    """Smallest n such that n - k detections out of n show rate >= target (one-sided).

    P(misses <= k) falls as n grows, so the search brackets by doubling and then
    bisects: about 2·log2(n) evaluations of O(k) each, whatever the inputs.
    """
    _check_open_unit("target rate", target_rate)
    _check_open_unit("confidence", confidence)
    if not 0 <= misses_allowed <= MAX_MISSES:
        raise SizingError(f"misses allowed must be from 0 to {MAX_MISSES}, got {misses_allowed}")
    alpha = 1 - confidence
    miss_rate = 1 - target_rate

    def enough(n: int) -> bool:
        return _binomial_cdf(misses_allowed, n, miss_rate) <= alpha

    low = high = misses_allowed + 1
    while not enough(high):
        low, high = high + 1, high * 2
        if high > MAX_N:
            if enough(MAX_N):
                high = MAX_N
                break
            raise SizingError(f"demonstrating {target_rate} with {misses_allowed} misses needs more than {MAX_N:,} samples")
    while low < high:
        mid = (low + high) // 2
        if enough(mid):
            high = mid
        else:
            low = mid + 1
    return high


@dataclass(frozen=True)
class SizingResult:
    """Required test size for one KPI, with the figures that justify it."""

    method: str  # 'wilson' or 'demonstration'
    rate: float
    half_width: float
    confidence: float
    misses_allowed: int
    required: int
    normal_approximation: int
    interval_at_required: tuple[float, float]

    def basis(self) -> str:
        if self.method == "demonstration":
            return (
                f"demonstrate ≥{self.rate:.3f} with ≤{self.misses_allowed} misses "
                f"at {self.confidence:.0%} (one-sided exact)"
            )
        lo, hi = self.interval_at_required
        return (
            f"Wilson {self.confidence:.0%}: {self.rate:.3f} ±{self.half_width:.3f} "
            f"→ [{lo:.3f}, {hi:.3f}] (normal approx. {self.normal_approximation})"
        )


def size_kpi(
    rate: float,
    half_width: float,
    confidence: float = 0.95,
    method: str = "wilson",
    misses_allowed: int = 0,
) -> SizingResult:
    if method == "wilson":
        n = wilson_sample_size(rate, half_width, confidence)
    elif method == "demonstration":
        n = demonstration_sample_size(rate, misses_allowed, confidence)
    else:
        raise SizingError(f"unknown sizing method '{method}' (use wilson or demonstration)")
    successes = n - misses_allowed if method == "demonstration" else rate * n
    return SizingResult(
        method=method,
        rate=rate,
        half_width=half_width,
        confidence=confidence,
        misses_allowed=misses_allowed,
        required=n,
        normal_approximation=normal_sample_size(rate, half_width, confidence),
        interval_at_required=wilson_interval(successes, n, confidence),
    )
