import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import PlanError
from core.quota.mix import expand, largest_remainder

weights = st.lists(st.integers(0, 9), min_size=1, max_size=5).filter(lambda w: sum(w) > 0)


def _array(cells, shape):
    a = np.zeros(shape, dtype=int)
    for key, value in cells.items():
        a[key] = value
    return a


def _marginal(a, dim):
    return a.sum(axis=tuple(i for i in range(a.ndim) if i != dim)).tolist()


@given(st.integers(0, 5000), st.lists(weights, min_size=1, max_size=4))
@settings(max_examples=300, deadline=None)
def test_class_total_and_every_marginal_are_exact(total, dims):
    cells = expand(total, dims)
    a = _array(cells, tuple(len(w) for w in dims))
    assert a.sum() == total
    assert (a >= 0).all()
    for d, w in enumerate(dims):
        assert _marginal(a, d) == largest_remainder(total, w)
        for v, weight in enumerate(w):
            if weight == 0:
                assert _marginal(a, d)[v] == 0


@given(st.integers(0, 2000), weights)
def test_largest_remainder_sums_and_stays_within_one(total, w):
    parts = largest_remainder(total, w)
    assert sum(parts) == total
    exact = [total * x / sum(w) for x in w]
    assert all(abs(p - e) < 1 for p, e in zip(parts, exact))


@given(
    st.integers(50, 3000),
    st.lists(st.lists(st.integers(1, 9), min_size=2, max_size=4), min_size=2, max_size=4),
    st.data(),
)
@settings(max_examples=200, deadline=None)
def test_overrides_are_kept_and_the_class_total_stays_exact(total, dims, data):
    shape = tuple(len(w) for w in dims)
    cell = tuple(data.draw(st.integers(0, s - 1)) for s in shape)
    value = data.draw(st.integers(0, total))
    cells = expand(total, dims, {cell: value})
    a = _array(cells, shape)
    assert a[cell] == value
    assert a.sum() == total
    assert (a >= 0).all()


def test_small_override_keeps_marginals_exact():
    dims = [[3, 2, 1], [1, 2, 1], [2, 1]]
    base = _array(expand(600, dims), (3, 3, 2))
    cells = expand(600, dims, {(0, 0, 0): base[0, 0, 0] + 5})
    a = _array(cells, (3, 3, 2))
    for d, w in enumerate(dims):
        assert _marginal(a, d) == largest_remainder(600, w)
    assert a[0, 0, 0] == base[0, 0, 0] + 5


def test_impossible_overrides_are_refused():
    with pytest.raises(PlanError, match="more than the class total"):
        expand(10, [[1, 1]], {(0,): 11})
    with pytest.raises(PlanError, match="weights"):
        expand(10, [[0, 0]])


@pytest.mark.parametrize("bad", [float("inf"), float("nan"), -1.0])
def test_non_finite_or_negative_weights_are_refused_not_looped_on(bad):
    # An infinite weight once made the rounding loop count to 2**63.
    with pytest.raises(PlanError, match="finite, non-negative weights"):
        expand(100, [[1.0, bad], [1.0]])
    with pytest.raises(PlanError, match="finite, non-negative weights"):
        largest_remainder(100, [1.0, bad])


def test_expansions_too_large_to_compute_quickly_are_refused_up_front():
    with pytest.raises(PlanError, match="cells per class"):
        expand(10, [[1.0] * 100, [1.0] * 3, [1.0] * 20, [1.0] * 10])
    with pytest.raises(PlanError, match="class total must be from 0"):
        expand(10**12, [[1.0, 2.0]])
