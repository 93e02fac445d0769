"""The chain's own buy and allocation, and the selling history up to the as-of date."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from stocktailor.synth._common import FloatArray, IntArray
from stocktailor.synth.foreign._spec import ForeignSpec
from stocktailor.synth.foreign._truth import draw_baskets, store_shock
from stocktailor.synth.foreign._world import foreign_rng

__all__ = ["Allocation", "History", "allocate", "run_history"]

_MAX_RETURN_LAG = 28


@dataclass
class Allocation:
    """Opening stock: store pairs and the distribution centre."""

    ps: IntArray  # store index of each stocked pair
    pk: IntArray  # SKU index
    units: IntArray
    warehouse: IntArray  # (K,)


def allocate(
    spec: ForeignSpec, rate_at_price: FloatArray, area: FloatArray, sku_style: IntArray, seed: int
) -> Allocation:
    """Buy ``stock_cover`` x the planned window demand ``rate_at_price`` (style-level planning
    error, sd 0.25) and split the store part over the stores that range a SKU by floor area
    (the chain's rule)."""
    rng = foreign_rng(seed, "alloc")
    ranged = rate_at_price.max(axis=0) > 0  # (S, K)
    ps, pk = np.nonzero(ranged)
    total = rate_at_price.sum(axis=(0, 1))
    err = np.exp(rng.normal(0.0, 0.25, size=int(sku_style.max()) + 1))[sku_style]
    plan = spec.stock_cover * total * err
    area_sum = np.bincount(pk, weights=area[ps], minlength=total.size)
    x = plan[pk] * (1.0 - spec.warehouse_share) * area[ps] / np.maximum(area_sum[pk], 1e-9)
    units = np.floor(x + rng.random(x.shape)).astype(np.int64)
    store_total = np.bincount(pk, weights=units, minlength=total.size)
    warehouse = np.maximum(0, np.round(plan - store_total)).astype(np.int64)
    keep = units > 0
    return Allocation(ps[keep].astype(np.int64), pk[keep].astype(np.int64), units[keep], warehouse)


@dataclass
class History:
    """Net daily sales per stocked pair and the inventory snapshots."""

    sales_day: IntArray
    sales_pair: IntArray
    sales_units: IntArray  # net of returns (may be negative)
    snap_days: list[int]  # day index of each snapshot (-1 = the evening before the season)
    snap_stock: list[IntArray]
    final: IntArray
    returned: int  # units returned in the history


def _is_snapshot(spec: ForeignSpec, t: int) -> bool:
    as_idx = spec.history_days - 1
    if t == as_idx:
        return True
    if spec.snapshots == "daily":
        return True
    if spec.snapshots == "weekly":
        return (spec.season_start + dt.timedelta(days=t)).weekday() == 6
    return False


def run_history(
    spec: ForeignSpec, rate_at_price: FloatArray, alloc: Allocation, seed: int
) -> History:
    """Sell day by day to the as-of date: sales = min(demand, stock); returns come back later."""
    rng = foreign_rng(seed, "history")
    n_days = spec.history_days
    n_stores = rate_at_price.shape[1]
    stock = alloc.units.copy()
    pending = np.zeros((n_days + _MAX_RETURN_LAG + 1, stock.size), dtype=np.int64)
    days, pairs, units = [], [], []
    snap_days: list[int] = []
    snap_stock: list[IntArray] = []
    if spec.snapshots != "single":
        snap_days.append(-1)
        snap_stock.append(stock.copy())
    returned = 0
    for t in range(n_days):
        mu = rate_at_price[t][alloc.ps, alloc.pk]
        demand = draw_baskets(mu, rng, store_shock(n_stores, rng)[alloc.ps])
        sold = np.minimum(demand, stock)
        stock -= sold
        back = pending[t]
        stock += back
        returned += int(back.sum())
        if spec.return_rate > 0:
            ret = rng.binomial(sold, spec.return_rate)
            for i in np.flatnonzero(ret):
                lags = 2 + np.minimum(rng.geometric(1.0 / 6.0, size=int(ret[i])) - 1, 26)
                np.add.at(pending[:, i], t + lags, 1)
        net = sold - back
        nz = np.flatnonzero((sold > 0) | (back > 0))
        if nz.size:
            days.append(np.full(nz.size, t, dtype=np.int64))
            pairs.append(nz.astype(np.int64))
            units.append(net[nz])
        if spec.unrecorded_receipts and (spec.season_start + dt.timedelta(days=t)).weekday() == 2:
            np.maximum(stock, (alloc.units + 1) // 2, out=stock)
        if _is_snapshot(spec, t):
            snap_days.append(t)
            snap_stock.append(stock.copy())
    empty = np.zeros(0, dtype=np.int64)
    return History(
        sales_day=np.concatenate(days) if days else empty,
        sales_pair=np.concatenate(pairs) if pairs else empty,
        sales_units=np.concatenate(units) if units else empty,
        snap_days=snap_days,
        snap_stock=snap_stock,
        final=stock,
        returned=returned,
    )
