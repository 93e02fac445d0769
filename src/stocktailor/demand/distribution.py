"""Weekly demand distributions: negative-binomial quantiles and window totals.

Every forecast week carries a ``mean`` and a ``var`` (units per week); a negative binomial is
fitted to them (Poisson when ``var <= mean``). :func:`prob_at_least` (the optimiser's
``P(D >= k)``) lives in :mod:`stocktailor.valuation` and is re-exported here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import stats

from stocktailor.valuation import prob_at_least

__all__ = ["nb_quantiles", "prob_at_least", "season_demand"]

FloatArray = npt.NDArray[np.float64]

_QK = 48  # largest quantile (units) found by the pmf recurrence in nb_quantiles


def nb_quantiles(mean: npt.ArrayLike, var: npt.ArrayLike, qs: Sequence[float]) -> list[FloatArray]:
    """Quantiles of the negative binomial with the given mean and variance (Poisson if var<=mean).

    Parameters
    ----------
    mean, var
        Mean and variance, units.
    qs
        Probabilities in (0, 1).

    Returns
    -------
    list of numpy.ndarray
        One array of quantiles (units, whole numbers) per probability.
    """
    m = np.maximum(np.asarray(mean, dtype=np.float64), 0.0)
    v = np.maximum(np.asarray(var, dtype=np.float64), m * (1 + 1e-9))
    over = v > m * (1 + 1e-6)
    qs = list(qs)
    out = [np.zeros_like(m) for _ in qs]
    pos = m > 0
    # Small means (most store x SKU weeks): walk the pmf recurrence up to _QK units for all
    # rows at once; the rest (and any row whose upper quantile lies beyond _QK) via scipy.
    small = pos & (m + 8.0 * np.sqrt(v) < _QK)
    if small.any():
        ms, vs, ov = m[small], v[small], over[small]
        qq = np.where(ov, 1.0 - ms / np.where(ov, vs, 1.0), 0.0)  # 1 - p
        n = np.where(ov, ms * (1.0 - qq) / np.maximum(qq, 1e-300), 0.0)
        pk = np.exp(np.where(ov, n * np.log1p(-np.clip(qq, 0.0, 1.0 - 1e-15)), -ms))
        c = np.where(ov, qq, 0.0)  # pmf ratio p(k+1)/p(k) = (k c + d) / (k + 1)
        d = np.where(ov, n * qq, ms)
        cdf = pk.copy()
        res = [np.zeros(ms.shape) for _ in qs]  # quantile = #{k : F(k) < q}
        qmax = max(qs) * (1 - 1e-12)
        for k in range(_QK):
            for r, q in zip(res, qs, strict=True):
                r += cdf < q * (1 - 1e-12)
            if k % 8 == 7 and bool((cdf >= qmax).all()):
                break
            pk *= (k * c + d) / (k + 1)
            cdf += pk
        for o, r in zip(out, res, strict=True):
            o[small] = r
    for o, q in zip(out, qs, strict=True):
        po = pos & ~small & ~over
        if po.any():
            o[po] = stats.poisson.ppf(q, m[po])
        nb = pos & ~small & over
        if nb.any():
            p = m[nb] / v[nb]
            o[nb] = stats.nbinom.ppf(q, m[nb] * p / (1 - p), p)
    return [o.astype(np.float64) for o in out]


def season_demand(forecast: pl.DataFrame, start: dt.date, end: dt.date) -> pl.DataFrame:
    """Demand over ``[start, end]`` per store x SKU from a weekly forecast.

    Weeks overlapping the window partly count pro rata by days; variances add (weeks are
    treated as independent; the forecast's weekly variances already carry the shared level
    uncertainty, see :class:`DemandModel`).

    Returns
    -------
    pl.DataFrame
        ``store_id, sku, mean, var`` (units over the window).
    """
    if end < start:
        msg = f"season_demand: end {end} is before start {start}"
        raise ValueError(msg)
    ws = pl.col("week_start")
    lo = pl.max_horizontal(ws, pl.lit(start))
    hi = pl.min_horizontal(ws + dt.timedelta(days=6), pl.lit(end))
    frac = ((hi - lo).dt.total_days() + 1).clip(lower_bound=0) / 7.0
    return (
        forecast.with_columns(frac.alias("_f"))
        .filter(pl.col("_f") > 0)
        .group_by("store_id", "sku")
        .agg((pl.col("mean") * pl.col("_f")).sum(), (pl.col("var") * pl.col("_f")).sum())
        .sort("store_id", "sku")
    )
