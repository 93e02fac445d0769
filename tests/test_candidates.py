"""The simple candidates of the selecting forecaster, on series worked out by hand."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stocktailor.demand.candidates import croston_sba, row_nanmean, row_nanquantile, ses, tsb

NAN = np.nan


def test_ses_of_a_constant_series_is_the_constant() -> None:
    assert ses(np.array([[5.0, 5.0, 5.0], [NAN, NAN, NAN]])).tolist() == [5.0, 0.0]


def test_croston_and_tsb_by_hand() -> None:
    y = np.array([[0.0, 4.0, 0.0, 4.0]])
    # sizes 4, 4; intervals 1 then 2 -> p = 1 + 0.1 (2 - 1) = 1.1; SBA factor 0.95
    assert croston_sba(y)[0] == pytest.approx(0.95 * 4.0 / 1.1)
    # p: 0 -> 0.1 -> 0.09 -> 0.181; z = 4
    assert tsb(y)[0] == pytest.approx(0.181 * 4.0)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.one_of(st.just(NAN), st.floats(0.0, 1e4, allow_nan=False)), min_size=1, max_size=30)
)
def test_candidates_stay_finite_on_any_series(values: list[float]) -> None:
    y = np.array([values])
    for out in (ses(y), croston_sba(y), tsb(y)):
        assert np.isfinite(out).all()


def test_row_nanquantile_and_nanmean_are_numpys_bit_for_bit() -> None:
    rng = np.random.default_rng(3)
    y = rng.poisson(2.0, size=(3000, 13)).astype(np.float64) * rng.uniform(0.5, 3.0, (3000, 1))
    y[rng.uniform(size=y.shape) < 0.2] = 0.0
    starts = rng.integers(0, 14, size=3000)  # NaN before each series' start, as dense_series
    y[np.arange(13)[None, :] < starts[:, None]] = NAN
    y[:5] = NAN  # rows without values
    y[5] = [NAN] * 12 + [4.0]  # one value
    y[6] = -0.0
    for q in (0.9, 0.5, 0.0, 1.0, 0.1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # numpy warns of the empty rows
            want = np.nanquantile(y, q, axis=1)
        got = row_nanquantile(y, q, rows_per_chunk=1000)
        np.testing.assert_array_equal(got, want)
        assert np.array_equal(np.signbit(got), np.signbit(want))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.nanmean(y, axis=1)
    np.testing.assert_array_equal(row_nanmean(y, rows_per_chunk=1000), means)
