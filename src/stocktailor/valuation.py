"""Value of stock under uncertain demand: P(D >= k) tables and marginal unit values.

Demand over a window is modelled as a negative binomial with the given mean and variance
(Poisson when ``var <= mean``). A unit sold before season end earns ``price``; a unit left at
season end is worth ``salvage``. With demand ``D`` the expected value of holding ``S`` units is
``price * E[min(D, S)] + salvage * E[(S - D)+]``, concave in ``S``; the marginal value of the k-th
unit is ``salvage + (price - salvage) * P(D >= k)``.

Everything here is vectorised numpy over rows (one row = one store x SKU): the pmf comes from the
recurrence ``pmf(k) = pmf(k - 1) * ratio(k)`` evaluated in log space, never from ``scipy.stats``
per element.
"""

from __future__ import annotations

import datetime as dt
from typing import overload

import numpy as np
import numpy.typing as npt
import polars as pl

__all__ = [
    "arrival_tail",
    "demand_window",
    "expected_sales",
    "expected_value",
    "marginal_values",
    "pmf_table",
    "prob_at_least",
    "window_share",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_MIN_MEAN = 1e-12


def _as_float(a: npt.ArrayLike) -> FloatArray:
    return np.atleast_1d(np.asarray(a, dtype=np.float64))


def pmf_table(mean: npt.ArrayLike, var: npt.ArrayLike, kmax: int) -> FloatArray:
    """Probability mass P(D = k) for k = 0..kmax.

    Parameters
    ----------
    mean, var
        Demand mean and variance per row, units (shape ``(n,)``).
    kmax
        Largest count tabulated, units.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, kmax + 1)``; column k holds P(D = k).
    """
    if kmax < 0:
        msg = f"kmax must be >= 0, got {kmax}"
        raise ValueError(msg)
    m = np.maximum(_as_float(mean), 0.0)
    v = _as_float(var)
    if m.shape != v.shape:
        msg = f"mean and var must have the same shape, got {m.shape} and {v.shape}"
        raise ValueError(msg)
    n = m.shape[0]
    out = np.zeros((n, kmax + 1), dtype=np.float64)
    if n == 0:
        return out
    zero = m <= _MIN_MEAN
    nb = (v > m * (1.0 + 1e-9)) & ~zero
    pois = ~nb & ~zero
    k = np.arange(1, kmax + 1, dtype=np.float64)
    logs = np.zeros((n, kmax + 1), dtype=np.float64)
    if pois.any():
        mp = m[pois][:, None]
        logs[pois, 0] = -m[pois]
        if kmax:
            logs[pois, 1:] = np.log(mp) - np.log(k)[None, :]
    if nb.any():
        mn, vn = m[nb], v[nb]
        p = mn / vn  # success probability
        r = mn * mn / (vn - mn)  # size
        logs[nb, 0] = r * np.log(p)
        if kmax:
            logs[nb, 1:] = (
                np.log((k[None, :] - 1.0 + r[:, None]) / k[None, :]) + np.log1p(-p)[:, None]
            )
    np.cumsum(logs, axis=1, out=logs)
    out = np.exp(logs)
    out[zero, :] = 0.0
    out[zero, 0] = 1.0
    return out


def prob_at_least(mean: npt.ArrayLike, var: npt.ArrayLike, kmax: int) -> FloatArray:
    """P(D >= k) for k = 1..kmax, negative binomial (Poisson when var <= mean).

    Parameters
    ----------
    mean, var
        Demand mean and variance per row, units over the window (shape ``(n,)``).
    kmax
        Largest k, units.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, kmax)``; column ``k - 1`` holds P(D >= k), non-increasing along a row.
    """
    pmf = pmf_table(mean, var, max(kmax - 1, 0))
    if kmax == 0:
        return np.zeros((pmf.shape[0], 0), dtype=np.float64)
    cdf = np.cumsum(pmf, axis=1)  # P(D <= k), k = 0..kmax-1
    tail: FloatArray = np.clip(1.0 - cdf, 0.0, 1.0)
    # P(D >= k) = 1 - P(D <= k - 1); keep monotone despite rounding
    return np.minimum.accumulate(tail, axis=1)


def marginal_values(tail: FloatArray, price: npt.ArrayLike, salvage: npt.ArrayLike) -> FloatArray:
    """Marginal value of the k-th unit, ``salvage + (price - salvage) * P(D >= k)``.

    Parameters
    ----------
    tail
        P(D >= k) table, shape ``(n, kmax)``.
    price, salvage
        Currency per unit, broadcastable to ``(n,)``.

    Returns
    -------
    numpy.ndarray
        Currency per unit, shape ``(n, kmax)``.
    """
    p = _as_float(price)
    s = _as_float(salvage)
    p2 = p[:, None] if p.shape[0] == tail.shape[0] and np.ndim(price) else p[0]
    s2 = s[:, None] if s.shape[0] == tail.shape[0] and np.ndim(salvage) else s[0]
    out: FloatArray = s2 + (p2 - s2) * tail
    return out


def expected_sales(mean: npt.ArrayLike, var: npt.ArrayLike, stock: npt.ArrayLike) -> FloatArray:
    """E[min(D, S)] per row, units (sum of P(D >= k) for k = 1..S)."""
    s = np.maximum(np.atleast_1d(np.asarray(stock, dtype=np.int64)), 0)
    kmax = int(s.max()) if s.size else 0
    tail = prob_at_least(mean, var, kmax)
    csum = np.concatenate([np.zeros((tail.shape[0], 1)), np.cumsum(tail, axis=1)], axis=1)
    out: FloatArray = csum[np.arange(s.shape[0]), s]
    return out


def expected_value(
    mean: npt.ArrayLike,
    var: npt.ArrayLike,
    stock: npt.ArrayLike,
    price: npt.ArrayLike,
    salvage: npt.ArrayLike,
) -> FloatArray:
    """Expected value of holding S units, ``price E[min(D,S)] + salvage E[(S-D)+]``, currency."""
    s = np.maximum(np.atleast_1d(np.asarray(stock, dtype=np.float64)), 0.0)
    sold = expected_sales(mean, var, s.astype(np.int64))
    p = _as_float(price)
    sv = _as_float(salvage)
    out: FloatArray = p * sold + sv * (s - sold)
    return out


def arrival_tail(
    stock: npt.ArrayLike,
    mean_lead: npt.ArrayLike,
    var_lead: npt.ArrayLike,
    mean_rest: npt.ArrayLike,
    var_rest: npt.ArrayLike,
    kmax: int,
) -> FloatArray:
    """P(D_rest >= Y + k), k = 1..kmax, where Y = (stock - D_lead)+ is what is left at arrival.

    Units that arrive after a lead time only sell once the stock already at the store covers
    the demand during the lead time; what is left of that stock is sold first. The result is
    the exact convolution over the distribution of Y (D_lead and D_rest independent).

    Parameters
    ----------
    stock
        Units at the destination now (on hand + in transit), shape ``(n,)``.
    mean_lead, var_lead
        Demand during the lead time, units.
    mean_rest, var_rest
        Demand from arrival to season end, units.
    kmax
        Number of arriving units tabulated.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, kmax)``, non-increasing along a row.
    """
    x = np.maximum(np.atleast_1d(np.asarray(stock, dtype=np.int64)), 0)
    n = x.shape[0]
    if kmax <= 0:
        return np.zeros((n, 0), dtype=np.float64)
    xmax = int(x.max()) if n else 0
    if xmax == 0:
        return prob_at_least(mean_rest, var_rest, kmax)
    rest = _rest_table(mean_rest, var_rest, x, kmax)  # column c -> P(D_rest >= c + 1)
    ml = np.maximum(np.atleast_1d(np.asarray(mean_lead, dtype=np.float64)), 0.0)
    vl = np.atleast_1d(np.asarray(var_lead, dtype=np.float64))
    lead_pmf, dcap = _lead_pmf(ml, vl, xmax - 1)  # P(D_lead = d), d = 0..dcap
    out = np.zeros((n, kmax), dtype=np.float64)
    below = np.zeros(n, dtype=np.float64)  # accumulated P(Y >= 1)
    # P(Y = X - d) = P(D_lead = d) for d < X: the loop runs over whichever is shorter, the
    # lead demand's support (rows gathered at their own offsets) or the stock (slices). Each
    # pass touches only the rows with mass at it (the others would add exact zeros), so every
    # row sums the same terms in the same order as a pass over all rows
    if 2 * (dcap + 1) < xmax:
        windows = np.lib.stride_tricks.sliding_window_view(rest, kmax, axis=1)
        for d in range(dcap + 1):
            act = np.flatnonzero(d < x)
            _accumulate(out, below, act, lead_pmf[act, d], windows, x[act] - d)
    else:
        for y in range(1, xmax + 1):
            lead = x - y
            act = np.flatnonzero((lead >= 0) & (lead <= dcap))
            _accumulate(out, below, act, lead_pmf[act, lead[act]], rest[:, y : y + kmax], None)
    p0 = np.clip(1.0 - below, 0.0, 1.0)
    out += p0[:, None] * rest[:, :kmax]
    result: FloatArray = np.minimum.accumulate(np.clip(out, 0.0, 1.0), axis=1)
    return result


def _rest_table(mean: npt.ArrayLike, var: npt.ArrayLike, x: IntArray, kmax: int) -> FloatArray:
    """:func:`prob_at_least` with ``x.max() + kmax`` columns, each row computed only up to
    the columns it uses (``x + kmax``; the others are left unset): rows are grouped by the
    power of two at or above their stock. A row's figures do not depend on the table's
    width (each is computed along its own row, left to right)."""
    m = np.atleast_1d(np.asarray(mean, dtype=np.float64))
    v = np.atleast_1d(np.asarray(var, dtype=np.float64))
    xmax = int(x.max())
    out = np.empty((x.shape[0], xmax + kmax), dtype=np.float64)
    width = np.minimum(2 ** np.ceil(np.log2(np.maximum(x, 1))).astype(np.int64), xmax) + kmax
    for w in np.unique(width).tolist():
        rows = np.flatnonzero(width == w)
        out[rows, :w] = prob_at_least(m[rows], v[rows], w)
    return out


def _accumulate(
    out: FloatArray,
    below: FloatArray,
    rows: npt.NDArray[np.intp],
    py: FloatArray,
    table: FloatArray,
    col: npt.NDArray[np.int64] | None,
) -> None:
    """``out[r] += py * table[r, col]`` (``table[r]`` without ``col``) and ``below[r] += py``
    for the rows ``rows`` where ``py`` (P(Y = y) of the pass) is not zero."""
    nz = py != 0.0
    if not nz.any():
        return
    rows, py = rows[nz], py[nz]
    below[rows] += py
    vals = table[rows] if col is None else table[rows, col[nz]]
    out[rows] += py[:, None] * vals


def _lead_pmf(mean: FloatArray, var: FloatArray, cap: int) -> tuple[FloatArray, int]:
    """P(D = d) for d = 0..dcap, ``dcap <= cap`` the smallest support that leaves less than
    1e-13 of any row's mass beyond it (demand during a lead time is short: a few units)."""
    dcap = int(min(cap, np.ceil((mean + 10.0 * np.sqrt(np.maximum(var, mean)) + 8.0).max())))
    while True:
        pmf = pmf_table(mean, var, max(dcap, 0))
        if dcap >= cap or (1.0 - pmf.sum(axis=1)).max() < 1e-13:
            return pmf, max(dcap, 0)
        dcap = min(cap, 2 * dcap + 1)


def window_share(start: dt.date | pl.Expr, end: dt.date | pl.Expr) -> pl.Expr:
    """Share of a forecast week (``week_start .. week_start + 6``) inside ``[start, end]``.

    ``start`` and ``end`` are dates or expressions over the forecast's columns; the result is
    the number of the week's days in the window over 7 (0 without overlap).
    """
    s = start if isinstance(start, pl.Expr) else pl.lit(start, dtype=pl.Date)
    e = end if isinstance(end, pl.Expr) else pl.lit(end, dtype=pl.Date)
    ws = pl.col("week_start")
    lo = pl.max_horizontal(ws, s)
    hi = pl.min_horizontal(ws + pl.duration(days=6), e)
    days = ((hi - lo).dt.total_days() + 1).clip(lower_bound=0).cast(pl.Float64)
    return days / 7.0


@overload
def demand_window(
    forecast: pl.DataFrame, start: dt.date | pl.Expr, end: dt.date | pl.Expr
) -> pl.DataFrame: ...


@overload
def demand_window(
    forecast: pl.LazyFrame, start: dt.date | pl.Expr, end: dt.date | pl.Expr
) -> pl.LazyFrame: ...


def demand_window(
    forecast: pl.DataFrame | pl.LazyFrame,
    start: dt.date | pl.Expr,
    end: dt.date | pl.Expr,
) -> pl.DataFrame | pl.LazyFrame:
    """Demand over ``[start, end]`` (inclusive) from a weekly forecast, pro rata for partial weeks.

    Parameters
    ----------
    forecast
        ``store_id, sku, week_start, mean, var`` (units per week; a week is
        ``week_start .. week_start + 6``). ``var`` defaults to ``mean`` when absent. A
        LazyFrame (e.g. a scan of a forecast written in partitions) gives a LazyFrame back, so
        a large forecast is aggregated without being loaded whole.
    start, end
        First and last day, dates or expressions over the forecast columns (e.g. a per-row
        season end joined on).

    Returns
    -------
    polars.DataFrame
        ``store_id, sku, mean, var`` units over the window (a week contributes the share of its
        days inside the window to both mean and var); pairs with no overlap get 0.
    """
    cols = forecast.collect_schema().names()
    for col in ("store_id", "sku", "week_start", "mean"):
        if col not in cols:
            msg = f"forecast: missing column {col!r}"
            raise ValueError(msg)
    f = forecast.lazy()
    if "var" not in cols:
        f = f.with_columns(pl.col("mean").alias("var"))
    out = (
        f.with_columns(window_share(start, end).alias("_share"))
        .group_by("store_id", "sku")
        .agg(
            (pl.col("mean").cast(pl.Float64) * pl.col("_share")).sum().alias("mean"),
            (pl.col("var").cast(pl.Float64) * pl.col("_share")).sum().alias("var"),
        )
        .sort("store_id", "sku")
    )
    return out if isinstance(forecast, pl.LazyFrame) else out.collect()
