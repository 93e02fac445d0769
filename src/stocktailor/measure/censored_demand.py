"""The demand of a measurement's cells, re-estimated on the measured period (the part of the
stock-ledger counterfactual, :mod:`stocktailor.measure.ledger`, that sold-out days need).

Demand of a cell-day is Poisson(``theta x m``): ``m`` the SKU's daily demand per store of the
day, ``theta`` the cell's level, estimated by EM over its sold-out days with a gamma prior at
the store's level. Pure numpy.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import stats

__all__ = ["conditional_mean", "demand_model", "moving_sum", "sku_rate"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def moving_sum(x: FloatArray, window: int) -> FloatArray:
    """Centred moving sum along the days (``window`` days, truncated at the edges)."""
    n = x.shape[1]
    c = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(x, axis=1)], axis=1)
    lo = np.clip(np.arange(n) - window // 2, 0, n)
    hi = np.clip(np.arange(n) - window // 2 + window, 0, n)
    out: FloatArray = c[:, hi] - c[:, lo]
    return out


def sku_rate(
    sold: IntArray,
    uncensored: npt.NDArray[np.bool_],
    sku: IntArray,
    n_skus: int,
    window: int,
    prior_cell_days: float = 28.0,
) -> FloatArray:
    """Daily demand per store of each SKU, units per day, smoothed over ``window`` days.

    From the SKU's uncensored cell-days of the window, shrunk (``prior_cell_days`` of
    weight) toward the SKU's season rate times the day's factor over every SKU (the sales of
    all uncensored cell-days over their SKUs' season rates). When most cells of a SKU have
    sold out (late in a season, when markdowns lift demand) the few left say little of the
    day; the network's other SKUs still do.
    """
    n_days = sold.shape[1]
    num = np.zeros((n_skus, n_days))
    den = np.zeros((n_skus, n_days))
    np.add.at(num, sku, np.where(uncensored, sold, 0).astype(np.float64))
    np.add.at(den, sku, uncensored.astype(np.float64))
    num_s = moving_sum(num, window)
    den_s = moving_sum(den, window)
    base = num.sum(axis=1) / np.maximum(den.sum(axis=1), 1.0)
    expected = (den * base[:, None]).sum(axis=0)
    day_num = moving_sum(num.sum(axis=0)[None, :], window)[0]
    day_den = moving_sum(expected[None, :], window)[0]
    factor = np.where(day_den > 0, day_num / np.maximum(day_den, 1e-12), 1.0)
    prior = base[:, None] * factor[None, :]
    rate: FloatArray = (num_s + prior_cell_days * prior) / (den_s + prior_cell_days)
    return np.maximum(rate, 1e-6)


def conditional_mean(lo: FloatArray, lam: FloatArray) -> FloatArray:
    """``E[D | D >= lo]`` for ``D ~ Poisson(lam)``: ``lam P(D >= lo - 1) / P(D >= lo)``
    (``lo`` where that tail is too small to divide by), at least ``lo``, units."""
    tail = stats.poisson.sf(lo - 1, lam)
    cond = np.where(
        tail > 1e-300, lam * stats.poisson.sf(lo - 2, lam) / np.maximum(tail, 1e-300), lo
    )
    out: FloatArray = np.maximum(cond, lo)
    return out


def _theta(
    s: FloatArray, cen: npt.NDArray[np.bool_], m: FloatArray, prior: tuple[FloatArray, float]
) -> tuple[FloatArray, FloatArray]:
    """Gamma posterior ``(shape, rate)`` of each cell's demand level by EM over censored days.

    Demand of a cell-day is Poisson(theta x m) (``m`` 0 on days the cell does not sell); a
    sold-out day (``cen``) says only demand >= sales ``s``, so its expected demand given theta
    replaces the sales (E-step) before theta is re-estimated (M-step, with a gamma prior of
    mean ``prior[0]`` worth ``prior[1]`` units), 25 times.
    """
    prior_mean, prior_strength = prior
    exposure = m.sum(axis=1)
    a0 = prior_strength
    b0 = prior_strength / np.maximum(prior_mean, 1e-6)
    theta = np.maximum(prior_mean, 1e-6)
    for i in range(26):
        lam = theta[:, None] * m
        demand = np.where(cen, conditional_mean(s, lam), np.where(m > 0, s, 0.0))
        if i == 25:
            break
        theta = (a0 + demand.sum(axis=1)) / (b0 + exposure)
    return a0 + demand.sum(axis=1), b0 + exposure


def demand_model(
    sold: IntArray,
    censored: npt.NDArray[np.bool_],
    selling: npt.NDArray[np.bool_],
    loc_i: IntArray,
    sku_i: IntArray,
    prior_strength: float,
    window: int,
    prior_cell_days: float,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per cell-day SKU rate ``m`` and the gamma posterior ``(shape, rate)`` of cell levels."""
    uncensored = selling & ~censored
    rate = sku_rate(sold, uncensored, sku_i, int(sku_i.max()) + 1, window, prior_cell_days)
    rate = rate[sku_i]
    # the store's level: its uncensored sales over the SKUs' rates on the same cell-days
    n_locs = int(loc_i.max()) + 1
    num = np.zeros(n_locs)
    den = np.zeros(n_locs)
    np.add.at(num, loc_i, np.where(uncensored, sold, 0).sum(axis=1))
    np.add.at(den, loc_i, np.where(uncensored, rate, 0.0).sum(axis=1))
    store_level = np.where(den > 0, (num + 1.0) / (den + 1.0), 1.0)[loc_i]
    shape, rate_post = _theta(
        sold.astype(np.float64),
        censored & selling,
        np.where(selling, rate, 0.0),
        (store_level, prior_strength),
    )
    return rate, shape, rate_post
