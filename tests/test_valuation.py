from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from stocktailor.valuation import (
    arrival_tail,
    demand_window,
    expected_sales,
    expected_value,
    marginal_values,
    pmf_table,
    prob_at_least,
)


def _scipy_tail(mean: float, var: float, kmax: int) -> np.ndarray:
    k = np.arange(1, kmax + 1)
    if mean <= 0:
        return np.zeros(kmax)
    if var > mean:
        p = mean / var
        r = mean * mean / (var - mean)
        return stats.nbinom.sf(k - 1, r, p)
    return stats.poisson.sf(k - 1, mean)


def test_prob_at_least_matches_scipy() -> None:
    rng = np.random.default_rng(1)
    mean = np.concatenate([rng.gamma(1.5, 4.0, 200), [0.0, 0.3, 25.0, 80.0]])
    var = mean * rng.uniform(0.5, 4.0, mean.shape[0])
    tail = prob_at_least(mean, var, 120)
    assert tail.shape == (mean.shape[0], 120)
    for i in range(mean.shape[0]):
        np.testing.assert_allclose(tail[i], _scipy_tail(mean[i], var[i], 120), atol=1e-9, rtol=0)


def test_pmf_sums_to_one_and_poisson_hand_value() -> None:
    pmf = pmf_table([2.0], [2.0], 60)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-12)
    assert pmf[0, 0] == pytest.approx(np.exp(-2.0))
    assert pmf[0, 2] == pytest.approx(np.exp(-2.0) * 2.0)


def test_zero_mean_never_sells() -> None:
    assert (prob_at_least([0.0], [0.0], 5) == 0).all()


@settings(max_examples=40, deadline=None)
@given(st.floats(0.0, 60.0), st.floats(0.2, 6.0), st.integers(1, 80))
def test_tail_is_probability_and_non_increasing(mean: float, disp: float, kmax: int) -> None:
    tail = prob_at_least([mean], [mean * disp], kmax)[0]
    assert ((tail >= 0) & (tail <= 1)).all()
    assert (np.diff(tail) <= 1e-15).all()


def test_marginal_and_expected_value_consistent() -> None:
    mean, var = np.array([3.0, 7.5]), np.array([5.0, 7.5])
    tail = prob_at_least(mean, var, 12)
    mv = marginal_values(tail, np.array([100.0, 50.0]), np.array([30.0, 10.0]))
    assert mv[0, 0] == pytest.approx(30.0 + 70.0 * tail[0, 0])
    # E value of S units = salvage*S + (price - salvage) * sum_{k<=S} P(D >= k)
    ev = expected_value(mean, var, [4, 9], [100.0, 50.0], [30.0, 10.0])
    assert ev[0] == pytest.approx(mv[0, :4].sum())
    assert ev[1] == pytest.approx(mv[1, :9].sum())
    # brute force with scipy pmf
    k = np.arange(0, 400)
    p = 3.0 / 5.0
    r = 9.0 / 2.0
    pmf = stats.nbinom.pmf(k, r, p)
    brute = (100.0 * np.minimum(k, 4) + 30.0 * np.maximum(4 - k, 0)) @ pmf
    assert ev[0] == pytest.approx(brute, rel=1e-9)
    assert expected_sales([2.0], [2.0], [0])[0] == 0.0


def test_arrival_tail_matches_brute_force_convolution() -> None:
    x, ml, vl, mr, vr = 4, 1.5, 2.5, 6.0, 9.0
    got = arrival_tail([x], [ml], [vl], [mr], [vr], 8)[0]
    d = np.arange(0, 200)
    pl_ = stats.nbinom.pmf(d, ml * ml / (vl - ml), ml / vl)
    y_p = np.zeros(x + 1)
    for dl, pr in zip(d, pl_, strict=False):
        y_p[max(x - dl, 0)] += pr
    want = np.array(
        [sum(y_p[y] * _scipy_tail(mr, vr, y + k)[-1] for y in range(x + 1)) for k in range(1, 9)]
    )
    np.testing.assert_allclose(got, want, atol=1e-9)
    # no stock: arrivals face the whole rest-of-season demand
    np.testing.assert_allclose(
        arrival_tail([0], [ml], [vl], [mr], [vr], 5)[0], prob_at_least([mr], [vr], 5)[0]
    )


def test_arrival_tail_below_season_tail_of_next_unit() -> None:
    # an arriving unit is never worth more than the store's own next unit over the season
    rng = np.random.default_rng(3)
    x = rng.integers(0, 8, 50)
    ml, mr = rng.uniform(0, 3, 50), rng.uniform(0, 10, 50)
    w1 = arrival_tail(x, ml, ml, mr, mr, 1)[:, 0]
    season = prob_at_least(ml + mr, ml + mr, 20)
    assert (w1 <= season[np.arange(50), x] + 1e-12).all()


def test_demand_window_pro_rata() -> None:
    as_of = dt.date(2026, 1, 1)
    fc = pl.DataFrame(
        {
            "store_id": ["A", "A"],
            "sku": ["x", "x"],
            "week_start": [as_of + dt.timedelta(days=1), as_of + dt.timedelta(days=8)],
            "mean": [7.0, 14.0],
            "var": [14.0, 28.0],
        }
    )
    w = demand_window(fc, as_of + dt.timedelta(days=4), as_of + dt.timedelta(days=9))
    # week 1: days 4..7 -> 4/7, week 2: days 8..9 -> 2/7
    assert w["mean"][0] == pytest.approx(7.0 * 4 / 7 + 14.0 * 2 / 7)
    assert w["var"][0] == pytest.approx(14.0 * 4 / 7 + 28.0 * 2 / 7)
    with pytest.raises(ValueError, match="forecast: missing column 'mean'"):
        demand_window(fc.drop("mean"), as_of, as_of)
