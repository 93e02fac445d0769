"""The stock-ledger counterfactual: what executed lines earned, from the sales that followed.

The design (documented in ``docs/measurement.md``): customers' demand does not depend on where
the stock is, so the sales of a (store, SKU) cell without a move follow from its sales with the
move. For each cell a group of lines touched, the cell's day-by-day stock available is rebuilt
from the opening stock, every executed move and the sales (the ledger); the counterfactual
cell has that stock shifted by the group's units (less at a destination from the arrival day,
more at a source from the ship day) and sells ``min(demand, available)`` each day, where

- on a day the cell did not sell out, demand is the observed sales (exact);
- on a day it sold out, demand is at least the sales: it is drawn from the cell's demand
  re-estimated on the whole measured period (a Poisson rate ``theta x m``: ``m`` the SKU's
  daily demand per store of the day, ``theta`` the cell's level, estimated by EM over its
  censored days with a gamma prior at the store's level), conditioned on being at least the
  sales.

The drawn replicates (the cell levels drawn from their posterior, then the censored demand)
give the interval. The measured value of a group is the margin its cells earned over the
counterfactual (price of the day minus salvage value, per extra unit sold: a unit not sold
stays in the network and is salvaged) minus the group's transfer cost.

Everything here is pure: frames in, frames out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import stats

__all__ = ["LEDGER_COLUMNS", "Ledger", "build_ledger", "ledger_uplift"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

LEDGER_COLUMNS = (
    "group",
    "lines",
    "units",
    "cost",
    "estimated",
    "measured",
    "measured_low",
    "measured_high",
    "measured_sd",
)


@dataclass(frozen=True)
class Ledger:
    """Daily stock and sales of the cells of a measurement, with their demand model.

    Attributes
    ----------
    days
        The measured days, ``start..until``.
    locations, skus
        Cell axes: ``cells[i] = (locations[loc[i]], skus[sku[i]])``.
    loc, sku
        Location and SKU position of each cell.
    available
        Units on the shelf at the opening of each day after that day's arrivals and departures,
        ``(cells, days)``.
    sold
        Units sold, ``(cells, days)``.
    censored
        The cell sold out that day (demand may have been higher), ``(cells, days)``.
    selling
        The cell is a selling location and its SKU still sells that day, ``(cells, days)``.
    margin
        Price of the day minus the SKU's salvage value, currency per unit, ``(cells, days)``.
    rate
        The SKU's daily demand per store ``m``, units per day, ``(cells, days)``.
    theta_shape, theta_rate
        Gamma posterior of each cell's demand level ``theta`` (demand = theta x rate).
    """

    days: tuple[dt.date, ...]
    locations: tuple[str, ...]
    skus: tuple[str, ...]
    loc: IntArray
    sku: IntArray
    available: IntArray
    sold: IntArray
    censored: npt.NDArray[np.bool_]
    selling: npt.NDArray[np.bool_]
    margin: FloatArray
    rate: FloatArray
    theta_shape: FloatArray
    theta_rate: FloatArray

    def cell_index(self) -> dict[tuple[str, str], int]:
        return {
            (self.locations[int(a)], self.skus[int(b)]): i
            for i, (a, b) in enumerate(zip(self.loc, self.sku, strict=True))
        }


def _day_pos(dates: pl.Series, start: dt.date) -> IntArray:
    days = dates.cast(pl.Date).cast(pl.Int64).to_numpy()
    return (days - (start - dt.date(1970, 1, 1)).days).astype(np.int64)


def _dense(
    frame: pl.DataFrame,
    loc_col: str,
    value: str,
    date_col: str,
    cells: dict[tuple[str, str], int],
    start: dt.date,
    n_days: int,
) -> IntArray:
    """Sum ``value`` of ``frame`` into a ``(cells, days)`` array (rows outside are dropped)."""
    out = np.zeros((len(cells), n_days), dtype=np.int64)
    if frame.height == 0:
        return out
    pos = _day_pos(frame[date_col], start)
    keys = zip(frame[loc_col].to_list(), frame["sku"].to_list(), strict=True)
    idx = np.array([cells.get(k, -1) for k in keys], dtype=np.int64)
    ok = (idx >= 0) & (pos >= 0) & (pos < n_days)
    np.add.at(out, (idx[ok], pos[ok]), frame[value].to_numpy()[ok].astype(np.int64))
    return out


def _prices(
    sales: pl.DataFrame, products: pl.DataFrame, skus: tuple[str, ...], start: dt.date, n_days: int
) -> FloatArray:
    """Price per unit of each SKU each day: the day's revenue / units over all stores, carried
    forward (and back) over days without sales; the full price when the SKU never sold."""
    full = dict(zip(products["sku"].to_list(), products["full_price"].to_list(), strict=True))
    ki = {k: i for i, k in enumerate(skus)}
    price = np.full((len(skus), n_days), np.nan)
    s = sales.filter(pl.col("units") > 0, pl.col("sku").is_in(list(skus)))
    if s.height:
        g = s.group_by("sku", "date").agg(pl.col("revenue").sum() / pl.col("units").sum())
        pos = _day_pos(g["date"], start)
        kk = np.array([ki[x] for x in g["sku"].to_list()], dtype=np.int64)
        ok = (pos >= 0) & (pos < n_days)
        price[kk[ok], pos[ok]] = g["revenue"].to_numpy()[ok]
    for i, k in enumerate(skus):
        row = price[i]
        have = np.flatnonzero(~np.isnan(row))
        if have.size == 0:
            row[:] = float(full.get(k) or 0.0)
            continue
        # carry the last price forward, and the first one back
        last = np.maximum.accumulate(np.where(np.isnan(row), -1, np.arange(n_days)))
        row[:] = np.where(last >= 0, row[np.maximum(last, 0)], row[have[0]])
    return price


def _moving_sum(x: FloatArray, window: int) -> FloatArray:
    """Centred moving sum along the days (``window`` days, truncated at the edges)."""
    n = x.shape[1]
    c = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(x, axis=1)], axis=1)
    lo = np.clip(np.arange(n) - window // 2, 0, n)
    hi = np.clip(np.arange(n) - window // 2 + window, 0, n)
    out: FloatArray = c[:, hi] - c[:, lo]
    return out


def _sku_rate(
    sold: IntArray, uncensored: npt.NDArray[np.bool_], sku: IntArray, n_skus: int, window: int
) -> FloatArray:
    """Daily demand per store of each SKU (uncensored cell-days), smoothed over ``window`` days."""
    n_days = sold.shape[1]
    num = np.zeros((n_skus, n_days))
    den = np.zeros((n_skus, n_days))
    np.add.at(num, sku, np.where(uncensored, sold, 0).astype(np.float64))
    np.add.at(den, sku, uncensored.astype(np.float64))
    num_s = _moving_sum(num, window)
    den_s = _moving_sum(den, window)
    total = num.sum(axis=1, keepdims=True) / np.maximum(den.sum(axis=1, keepdims=True), 1.0)
    rate = np.where(den_s > 0, num_s / np.maximum(den_s, 1e-12), total)
    return np.maximum(rate, 1e-6)


def _theta(
    ledger_sold: IntArray,
    censored: npt.NDArray[np.bool_],
    selling: npt.NDArray[np.bool_],
    rate: FloatArray,
    prior_mean: FloatArray,
    prior_strength: float,
    iterations: int = 25,
) -> tuple[FloatArray, FloatArray]:
    """Gamma posterior ``(shape, rate)`` of each cell's demand level by EM over censored days.

    Demand of a cell-day is Poisson(theta x rate); a sold-out day says only demand >= sales, so
    its expected demand given theta replaces the sales (E-step) before theta is re-estimated
    (M-step, with a gamma prior of mean ``prior_mean`` worth ``prior_strength`` units).
    """
    m = np.where(selling, rate, 0.0)
    exposure = m.sum(axis=1)
    a0 = prior_strength
    b0 = prior_strength / np.maximum(prior_mean, 1e-6)
    theta = np.maximum(prior_mean, 1e-6)
    s = ledger_sold.astype(np.float64)
    cen = censored & selling
    for _ in range(iterations):
        lam = theta[:, None] * m
        # E[D | D >= s] for Poisson(lam): lam * P(D >= s-1) / P(D >= s)
        tail_s = stats.poisson.sf(s - 1, lam)
        tail_s1 = stats.poisson.sf(s - 2, lam)
        cond = np.where(tail_s > 1e-300, lam * tail_s1 / np.maximum(tail_s, 1e-300), s)
        demand = np.where(cen, np.maximum(cond, s), np.where(selling, s, 0.0))
        theta = (a0 + demand.sum(axis=1)) / (b0 + exposure)
    lam = theta[:, None] * m
    tail_s = stats.poisson.sf(s - 1, lam)
    tail_s1 = stats.poisson.sf(s - 2, lam)
    cond = np.where(tail_s > 1e-300, lam * tail_s1 / np.maximum(tail_s, 1e-300), s)
    demand = np.where(cen, np.maximum(cond, s), np.where(selling, s, 0.0))
    return a0 + demand.sum(axis=1), b0 + exposure


def _demand_model(
    sold: IntArray,
    censored: npt.NDArray[np.bool_],
    selling: npt.NDArray[np.bool_],
    loc_i: IntArray,
    sku_i: IntArray,
    prior_strength: float,
    window: int,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per cell-day SKU rate ``m`` and the gamma posterior ``(shape, rate)`` of cell levels."""
    uncensored = selling & ~censored
    rate = _sku_rate(sold, uncensored, sku_i, int(sku_i.max()) + 1, window)[sku_i]
    # the store's level: its uncensored sales over the SKUs' rates on the same cell-days
    n_locs = int(loc_i.max()) + 1
    num = np.zeros(n_locs)
    den = np.zeros(n_locs)
    np.add.at(num, loc_i, np.where(uncensored, sold, 0).sum(axis=1))
    np.add.at(den, loc_i, np.where(uncensored, rate, 0.0).sum(axis=1))
    store_level = np.where(den > 0, (num + 1.0) / (den + 1.0), 1.0)[loc_i]
    shape, rate_post = _theta(sold, censored, selling, rate, store_level, prior_strength)
    return rate, shape, rate_post


def _end_positions(
    products: pl.DataFrame, keep: list[str], start: dt.date, n_days: int
) -> IntArray:
    """Last selling day of each SKU as a day position (the last measured day by default)."""
    end_pos = np.full(len(keep), n_days - 1, dtype=np.int64)
    if "season_end" in products.columns:
        ends = dict(zip(products["sku"].to_list(), products["season_end"].to_list(), strict=True))
        for j, k in enumerate(keep):
            e = ends.get(k)
            if isinstance(e, dt.date):
                end_pos[j] = min(n_days - 1, (e - start).days)
    return end_pos


def build_ledger(
    moves: pl.DataFrame,
    sales: pl.DataFrame,
    stock: pl.DataFrame,
    products: pl.DataFrame,
    stores: list[str],
    start: dt.date,
    until: dt.date,
    *,
    skus: list[str] | None = None,
    prior_strength: float = 2.0,
    rate_window_days: int = 7,
) -> Ledger:
    """The daily ledger of every (location, SKU) cell of ``skus`` from ``start`` to ``until``.

    Parameters
    ----------
    moves
        Every executed move of the period: ``ship_date, arrival_date, sku, from_id, to_id,
        units`` (units leave on the ship date and are on the shelf from the arrival date).
    sales
        ``date, store_id, sku, units, revenue`` (units per day; revenue currency).
    stock
        ``store_id, sku, units`` on hand at the opening of ``start`` (warehouses included).
    products
        ``sku, full_price, salvage_value`` (currency per unit) and optionally ``season_end``
        (the SKU's last selling day; what is left then is salvaged).
    stores
        The selling locations (others hold stock but have no customers).
    start, until
        The measured days, inclusive.
    skus
        SKUs to keep (default: every SKU of ``moves``).
    prior_strength
        Weight of the store-level prior of a cell's demand level, units.
    rate_window_days
        Smoothing window of the SKU's daily demand per store, days.
    """
    if until < start:
        msg = f"measurement: until {until} is before the start {start}"
        raise ValueError(msg)
    n_days = (until - start).days + 1
    days = tuple(start + dt.timedelta(days=i) for i in range(n_days))
    keep = sorted(set(skus if skus is not None else moves["sku"].to_list()))
    store_set = set(stores)
    locs = sorted(
        store_set
        | set(moves["from_id"].to_list())
        | set(moves["to_id"].to_list())
        | set(stock["store_id"].to_list())
    )
    cells = {(a, k): i for i, (a, k) in enumerate((a, k) for a in locs for k in keep)}
    loc_i = np.repeat(np.arange(len(locs), dtype=np.int64), len(keep))
    sku_i = np.tile(np.arange(len(keep), dtype=np.int64), len(locs))
    opening = _dense(
        stock.with_columns(pl.lit(start).alias("date")),
        "store_id",
        "units",
        "date",
        cells,
        start,
        n_days,
    )[:, 0]
    mv = moves.filter(pl.col("sku").is_in(keep), pl.col("units") > 0)
    arrive = _dense(mv, "to_id", "units", "arrival_date", cells, start, n_days)
    depart = _dense(mv, "from_id", "units", "ship_date", cells, start, n_days)
    sale = sales.filter(pl.col("sku").is_in(keep))
    sold = np.maximum(_dense(sale, "store_id", "units", "date", cells, start, n_days), 0)
    # available at opening of day t = opening + arrivals(<=t) - departures(<=t) - sales(<t)
    cum_sold_before = np.cumsum(sold, axis=1) - sold
    available = opening[:, None] + np.cumsum(arrive - depart, axis=1) - cum_sold_before
    available = np.maximum(available, sold)
    is_store = np.array([locs[int(a)] in store_set for a in loc_i], dtype=bool)
    end_pos = _end_positions(products, keep, start, n_days)
    selling = is_store[:, None] & (np.arange(n_days)[None, :] <= end_pos[sku_i][:, None])
    censored = selling & (sold >= available)
    price = _prices(sales, products, tuple(keep), start, n_days)
    salv = dict(zip(products["sku"].to_list(), products["salvage_value"].to_list(), strict=True))
    salvage = np.array([float(salv.get(k) or 0.0) for k in keep])
    margin = np.maximum(price - salvage[:, None], 0.0)[sku_i]
    rate, shape, rate_post = _demand_model(
        sold, censored, selling, loc_i, sku_i, prior_strength, rate_window_days
    )
    return Ledger(
        days=days,
        locations=tuple(locs),
        skus=tuple(keep),
        loc=loc_i,
        sku=sku_i,
        available=available.astype(np.int64),
        sold=sold,
        censored=censored,
        selling=selling,
        margin=margin,
        rate=rate,
        theta_shape=shape,
        theta_rate=rate_post,
    )


def _group_shifts(ledger: Ledger, lines: pl.DataFrame) -> tuple[IntArray, IntArray, IntArray]:
    """Cells of a group, the day each shift starts and its units (+ more stock in the
    counterfactual at a source, - less at a destination), one row per (cell, start)."""
    ci = ledger.cell_index()
    start = ledger.days[0]
    cells, first, delta = [], [], []
    for row in lines.iter_rows(named=True):
        u = int(row["units"])
        if u <= 0:
            continue
        for loc, day, sign in (
            (row["from_id"], row["ship_date"], 1),
            (row["to_id"], row["arrival_date"], -1),
        ):
            c = ci.get((str(loc), str(row["sku"])))
            if c is None:
                continue
            cells.append(c)
            first.append((day - start).days)
            delta.append(sign * u)
    return (
        np.array(cells, dtype=np.int64),
        np.array(first, dtype=np.int64),
        np.array(delta, dtype=np.int64),
    )


def _run_cells(
    ledger: Ledger,
    uniq: IntArray,
    shift: IntArray,
    t0: int,
    replicates: int,
    rng: np.random.Generator,
) -> FloatArray:
    """Margin of ``uniq`` cells over their counterfactual (stock shifted by ``shift``)."""
    n_days = len(ledger.days)
    avail = ledger.available[uniq]
    sold = ledger.sold[uniq].astype(np.float64)
    cen = ledger.censored[uniq]
    sell = ledger.selling[uniq]
    margin = ledger.margin[uniq]
    theta = rng.gamma(
        ledger.theta_shape[uniq], 1.0 / ledger.theta_rate[uniq], (replicates, uniq.size)
    )
    gap = np.zeros((replicates, uniq.size))  # cumulative (sold - counterfactual sold)
    value = np.zeros(replicates)
    for t in range(t0, n_days):
        if not sell[:, t].any():
            continue
        cf_avail = np.maximum(avail[:, t] + shift[:, t] + gap, 0.0)
        s = sold[:, t]
        need = cen[:, t] & sell[:, t]
        demand = np.broadcast_to(s, gap.shape).copy()
        more = need[None, :] & (cf_avail > s[None, :])
        if more.any():
            lam = theta[more] * np.broadcast_to(ledger.rate[uniq, t], gap.shape)[more]
            lo = np.broadcast_to(s, gap.shape)[more]
            # demand given demand >= sales: the sales plus a Poisson excess with the
            # conditional mean's excess (E[D | D >= s] = lam P(D >= s-1) / P(D >= s))
            tail = stats.poisson.sf(lo - 1, lam)
            cond = np.where(tail > 1e-300, lam * stats.poisson.sf(lo - 2, lam) / tail, lo)
            demand[more] = lo + rng.poisson(np.maximum(cond - lo, 0.0))
        cf_sold = np.where(sell[:, t][None, :], np.minimum(demand, cf_avail), 0.0)
        diff = s[None, :] - cf_sold
        gap += diff
        value += diff @ margin[:, t]
    return value


def _simulate_group(
    ledger: Ledger, lines: pl.DataFrame, replicates: int, rng: np.random.Generator
) -> FloatArray:
    """Margin of the group's cells over their counterfactual, one value per replicate.

    Cells are independent given their shifts; only a cell with more stock in the
    counterfactual (a source) that sold out after the group's first day needs demand draws,
    the others are computed once.
    """
    cells, first, delta = _group_shifts(ledger, lines)
    if cells.size == 0:
        return np.zeros(replicates)
    uniq, inv = np.unique(cells, return_inverse=True)
    n_days = len(ledger.days)
    shift = np.zeros((uniq.size, n_days + 1), dtype=np.int64)
    np.add.at(shift, (inv, np.clip(first, 0, n_days)), delta)
    shift = np.cumsum(shift[:, :n_days], axis=1)
    t0 = int(max(0, first.min()))
    drawn = (shift > 0).any(axis=1) & ledger.censored[uniq, t0:].any(axis=1)
    value = np.zeros(replicates)
    if (~drawn).any():
        value += _run_cells(ledger, uniq[~drawn], shift[~drawn], t0, 1, rng)[0]
    if drawn.any():
        value += _run_cells(ledger, uniq[drawn], shift[drawn], t0, replicates, rng)
    return value


def ledger_uplift(
    ledger: Ledger,
    lines: pl.DataFrame,
    *,
    group: str = "group",
    replicates: int = 200,
    level: float = 0.9,
    random_state: int = 0,
) -> pl.DataFrame:
    """Measured value of each group of executed lines against its counterfactual.

    Parameters
    ----------
    ledger
        From :func:`build_ledger`.
    lines
        Executed lines: ``group`` (any key; e.g. the decision date or a line id), ``sku,
        from_id, to_id, units, ship_date, arrival_date, cost`` (currency) and ``estimated``
        (the line's net benefit at approval, currency; may be null).
    group
        The grouping column: each group's lines are removed together.
    replicates
        Draws of the censored demand.
    level
        Coverage of the interval (0.9: the 5th to 95th percentile).
    random_state
        Seeds the draws.

    Returns
    -------
    polars.DataFrame
        One row per group: ``group`` (the key, named as in ``lines``), ``lines, units, cost,
        estimated, measured, measured_low, measured_high, measured_sd`` (currency; measured is
        the mean of the replicates minus the cost).
    """
    rng = np.random.default_rng(random_state)
    rows = []
    lo_q, hi_q = (1.0 - level) / 2.0, 1.0 - (1.0 - level) / 2.0
    for (key,), part in lines.sort(group).group_by(group, maintain_order=True):
        draws = _simulate_group(ledger, part, replicates, rng)
        cost = float(part["cost"].sum())
        est = part["estimated"]
        net = draws - cost
        rows.append(
            {
                group: key,
                "lines": part.height,
                "units": int(part["units"].sum()),
                "cost": cost,
                "estimated": None if est.null_count() == est.len() else float(est.sum()),
                "measured": float(net.mean()),
                "measured_low": float(np.quantile(net, lo_q)),
                "measured_high": float(np.quantile(net, hi_q)),
                "measured_sd": float(net.std()),
            }
        )
    schema = {group: lines.schema[group]} | {
        "lines": pl.Int64,
        "units": pl.Int64,
        "cost": pl.Float64,
        "estimated": pl.Float64,
        "measured": pl.Float64,
        "measured_low": pl.Float64,
        "measured_high": pl.Float64,
        "measured_sd": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema)
