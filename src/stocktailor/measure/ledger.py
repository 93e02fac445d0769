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
from functools import cached_property

import numpy as np
import numpy.typing as npt
import polars as pl

from stocktailor.measure.censored_demand import conditional_mean, demand_model

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
class MoveLog:
    """Every move of the ledger's SKUs in the order they were served (one row per move).

    Attributes
    ----------
    ship, arrive
        Day positions of the ship and arrival dates (may fall outside the ledger's days).
    src, dst
        Cell of the source and the destination (``-1``: not a cell of the ledger).
    units, requested
        Units shipped, and units asked for (more when the source ran short).
    unit_cost
        Transfer cost per unit of the move, currency per unit.
    keys
        ``(ship_date, sku, from_id, to_id)`` of each move, to find a group's lines in the log.
    """

    ship: IntArray
    arrive: IntArray
    src: IntArray
    dst: IntArray
    units: IntArray
    requested: IntArray
    unit_cost: FloatArray
    keys: tuple[tuple[dt.date, str, str, str], ...]

    @cached_property
    def rows_by_key(self) -> dict[tuple[dt.date, str, str, str], list[int]]:
        """The log's rows of each ``(ship_date, sku, from_id, to_id)``, in order."""
        out: dict[tuple[dt.date, str, str, str], list[int]] = {}
        for r, k in enumerate(self.keys):
            out.setdefault(k, []).append(r)
        return out


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
    moves
        The move log (later moves of a counterfactual are served again from its stock).
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
    moves: MoveLog | None = None

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


def _margins(
    sales: pl.DataFrame, products: pl.DataFrame, keep: list[str], start: dt.date, n_days: int
) -> FloatArray:
    """Price of the day minus salvage value per SKU and day, currency per unit."""
    price = _prices(sales, products, tuple(keep), start, n_days)
    salv = dict(zip(products["sku"].to_list(), products["salvage_value"].to_list(), strict=True))
    salvage = np.array([float(salv.get(k) or 0.0) for k in keep])
    out: FloatArray = np.maximum(price - salvage[:, None], 0.0)
    return out


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


def _stock_and_sales(
    moves: pl.DataFrame,
    sales: pl.DataFrame,
    stock: pl.DataFrame,
    cells: dict[tuple[str, str], int],
    start: dt.date,
    n_days: int,
) -> tuple[IntArray, IntArray]:
    """Units on the shelf after each day's moves (at least the day's sales) and units sold,
    ``(cells, days)``."""
    opening = _dense(
        stock.with_columns(pl.lit(start).alias("date")),
        "store_id",
        "units",
        "date",
        cells,
        start,
        n_days,
    )[:, 0]
    mv = moves.filter(pl.col("units") > 0)
    arrive = _dense(mv, "to_id", "units", "arrival_date", cells, start, n_days)
    depart = _dense(mv, "from_id", "units", "ship_date", cells, start, n_days)
    sold = np.maximum(_dense(sales, "store_id", "units", "date", cells, start, n_days), 0)
    # available at opening of day t = opening + arrivals(<=t) - departures(<=t) - sales(<t)
    cum_sold_before = np.cumsum(sold, axis=1) - sold
    available = opening[:, None] + np.cumsum(arrive - depart, axis=1) - cum_sold_before
    return np.maximum(available, sold).astype(np.int64), sold


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
    rate_prior_cell_days: float = 28.0,
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
    rate_prior_cell_days
        Weight of the day's factor over every SKU in a SKU's daily rate, cell-days.
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
    available, sold = _stock_and_sales(
        moves.filter(pl.col("sku").is_in(keep)),
        sales.filter(pl.col("sku").is_in(keep)),
        stock,
        cells,
        start,
        n_days,
    )
    is_store = np.array([locs[int(a)] in store_set for a in loc_i], dtype=bool)
    end_pos = _end_positions(products, keep, start, n_days)
    selling = is_store[:, None] & (np.arange(n_days)[None, :] <= end_pos[sku_i][:, None])
    censored = selling & (sold >= available)
    margin = _margins(sales, products, keep, start, n_days)[sku_i]
    rate, shape, rate_post = demand_model(
        sold,
        censored,
        selling,
        loc_i,
        sku_i,
        prior_strength,
        rate_window_days,
        rate_prior_cell_days,
    )
    log = _move_log(moves.filter(pl.col("sku").is_in(keep)), cells, start)
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
        moves=log,
    )


def _move_log(moves: pl.DataFrame, cells: dict[tuple[str, str], int], start: dt.date) -> MoveLog:
    """The ledger's moves in their order (rows asked for but not shipped kept: a
    counterfactual with more stock at their source ships them)."""
    req = pl.col("requested") if "requested" in moves.columns else pl.col("units")
    cost = pl.col("cost") if "cost" in moves.columns else pl.lit(0.0)
    mv = moves.select(
        "ship_date",
        "arrival_date",
        pl.col("sku").cast(pl.String),
        pl.col("from_id").cast(pl.String),
        pl.col("to_id").cast(pl.String),
        pl.col("units").cast(pl.Int64).clip(lower_bound=0),
        pl.max_horizontal(req.cast(pl.Int64), pl.col("units").cast(pl.Int64)).alias("requested"),
        cost.cast(pl.Float64).fill_null(0.0).alias("cost"),
    ).filter(pl.col("requested") > 0)
    units = mv["units"].to_numpy().astype(np.int64)
    costs = mv["cost"].to_numpy().astype(np.float64)
    shipped = units > 0
    mean_cost = float(costs[shipped].sum() / units[shipped].sum()) if shipped.any() else 0.0
    unit_cost = np.where(shipped, costs / np.maximum(units, 1), mean_cost)
    skus, src_ids, dst_ids = mv["sku"].to_list(), mv["from_id"].to_list(), mv["to_id"].to_list()
    return MoveLog(
        ship=_day_pos(mv["ship_date"], start),
        arrive=_day_pos(mv["arrival_date"], start),
        src=np.array([cells.get(k, -1) for k in zip(src_ids, skus, strict=True)], dtype=np.int64),
        dst=np.array([cells.get(k, -1) for k in zip(dst_ids, skus, strict=True)], dtype=np.int64),
        units=units,
        requested=mv["requested"].to_numpy().astype(np.int64),
        unit_cost=unit_cost.astype(np.float64),
        keys=tuple(zip(mv["ship_date"].to_list(), skus, src_ids, dst_ids, strict=True)),
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


def _counterfactual_sold(
    cf_avail: FloatArray,
    s: FloatArray,
    censored: npt.NDArray[np.bool_],
    theta: FloatArray,
    rate: FloatArray,
    rng: np.random.Generator,
) -> FloatArray:
    """Units the counterfactual cells sell on one day, ``(replicates, cells)``.

    ``min(demand, cf_avail)``: demand is the day's sales ``s`` except where the cell sold out
    (``censored``) and the counterfactual has more stock; there it is the sales plus a Poisson
    excess with the excess of ``E[D | D >= s]`` under Poisson(``theta x rate``).
    """
    demand = np.broadcast_to(s, cf_avail.shape).copy()
    more = censored[None, :] & (cf_avail > s[None, :])
    if more.any():
        lam = (theta * rate[None, :])[more]
        lo = np.broadcast_to(s, cf_avail.shape)[more]
        cond = conditional_mean(lo, lam)
        demand[more] = lo + rng.poisson(np.maximum(cond - lo, 0.0))
    out: FloatArray = np.minimum(demand, cf_avail)
    return out


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
        cf_sold = _counterfactual_sold(cf_avail, s, need, theta, ledger.rate[uniq, t], rng)
        diff = s[None, :] - np.where(sell[:, t][None, :], cf_sold, 0.0)
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


def _match_rows(log: MoveLog, lines: pl.DataFrame) -> tuple[IntArray, pl.DataFrame]:
    """Rows of the move log that are the group's lines, and the lines not found there."""
    used: set[int] = set()
    rows: list[int] = []
    missing: list[int] = []
    keys = zip(
        lines["ship_date"].to_list(),
        lines["sku"].cast(pl.String).to_list(),
        lines["from_id"].cast(pl.String).to_list(),
        lines["to_id"].cast(pl.String).to_list(),
        lines["units"].to_list(),
        strict=True,
    )
    for i, (d, k, a, b, u) in enumerate(keys):
        cand = [r for r in log.rows_by_key.get((d, k, a, b), []) if r not in used]
        same = [r for r in cand if int(log.units[r]) == int(u)]
        pick = same or cand
        if pick and int(u) > 0:
            used.add(pick[0])
            rows.append(pick[0])
        elif int(u) > 0:
            missing.append(i)
    return np.array(sorted(rows), dtype=np.int64), lines[missing]


def _propagated_group(
    ledger: Ledger,
    lines: pl.DataFrame,
    replicates: int,
    rng: np.random.Generator,
) -> FloatArray:
    """Margin of the group over its counterfactual, with every later move served again.

    Without the group, a destination has fewer units and a source more; each later move of
    the same SKUs ships what its source has in the counterfactual (``min(requested,
    stock)``, rows in their logged order), so a move the group's units made possible is cut
    and one its departure cut ships in full, and the difference travels on to that move's
    destination. Cost follows the shipped units (per unit). One value per replicate.
    """
    log = ledger.moves
    assert log is not None
    n_days = len(ledger.days)
    group_rows, missing = _match_rows(log, lines)
    # the lines the log does not hold shift their cells' stock as fixed moves
    empty = np.zeros(0, dtype=np.int64)
    cells, first, delta = _group_shifts(ledger, missing) if missing.height else (empty,) * 3
    ends = np.concatenate([log.src[group_rows], log.dst[group_rows], cells])
    sku_ids = np.unique(ledger.sku[ends[ends >= 0]])
    if sku_ids.size == 0:
        return np.zeros(replicates)
    sub = np.flatnonzero(np.isin(ledger.sku, sku_ids))
    local = np.full(ledger.sku.size, -1, dtype=np.int64)
    local[sub] = np.arange(sub.size)
    n = sub.size
    inc = np.zeros((n, n_days + 1), dtype=np.int64)
    np.add.at(inc, (local[cells], np.clip(first, 0, n_days)), delta)
    t0 = int(max(0, first.min())) if first.size else n_days
    in_group = np.zeros(log.units.size, dtype=bool)
    in_group[group_rows] = True
    if group_rows.size:
        t0 = min(t0, int(max(0, log.ship[group_rows].min())))
    src_l = np.where(log.src >= 0, local[np.maximum(log.src, 0)], -1)
    dst_l = np.where(log.dst >= 0, local[np.maximum(log.dst, 0)], -1)
    todo = np.flatnonzero(((src_l >= 0) | (dst_l >= 0)) & (log.ship >= t0) & (log.ship < n_days))
    todo = todo[np.argsort(log.ship[todo], kind="stable")]
    by_day = np.split(todo, np.flatnonzero(np.diff(log.ship[todo])) + 1) if todo.size else []
    rows_of = {int(log.ship[r[0]]): r for r in by_day if r.size}
    avail = ledger.available[sub]
    sold = ledger.sold[sub].astype(np.float64)
    cen, sell, margin, rate = (
        ledger.censored[sub],
        ledger.selling[sub],
        ledger.margin[sub],
        ledger.rate[sub],
    )
    theta = rng.gamma(ledger.theta_shape[sub], 1.0 / ledger.theta_rate[sub], (replicates, n))
    dl = np.zeros((replicates, n))  # counterfactual stock minus real stock, units
    pending: dict[int, list[tuple[int, FloatArray]]] = {}
    value = np.zeros(replicates)
    for t in range(t0, n_days):
        moved = np.flatnonzero(inc[:, t])
        if moved.size:
            dl[:, moved] += inc[moved, t]
        for c, diff in pending.pop(t, []):
            dl[:, c] += diff
        rows = rows_of.get(t)
        if rows is not None:
            value -= _serve_again(log, rows, in_group, src_l, dst_l, avail, dl, t, pending)
        touched = np.flatnonzero((dl != 0.0).any(axis=0) & sell[:, t])
        if touched.size == 0:
            continue
        cf_avail = np.maximum(avail[touched, t] + dl[:, touched], 0.0)
        s = sold[touched, t]
        cf_sold = _counterfactual_sold(
            cf_avail, s, cen[touched, t], theta[:, touched], rate[touched, t], rng
        )
        diff = s[None, :] - cf_sold
        dl[:, touched] += diff
        value += diff @ margin[touched, t]
    return value


def _serve_again(
    log: MoveLog,
    rows: IntArray,
    in_group: npt.NDArray[np.bool_],
    src_l: IntArray,
    dst_l: IntArray,
    avail: IntArray,
    dl: FloatArray,
    t: int,
    pending: dict[int, list[tuple[int, FloatArray]]],
) -> FloatArray:
    """Serve day ``t``'s moves again from the counterfactual stock of their sources (in
    place: ``dl`` and ``pending`` arrivals); returns the real transfer cost above the
    counterfactual's (currency per replicate: positive when the counterfactual ships less)."""
    cost = np.zeros(dl.shape[0])
    src = src_l[rows]
    for x in np.unique(src[src >= 0]):
        mine = rows[src == x]
        if not in_group[mine].any() and not dl[:, x].any():
            continue
        # stock before the day's departures: after them (the ledger) plus what left
        rem = np.maximum(avail[x, t] + log.units[mine].sum() + dl[:, x], 0.0)
        for r in mine:
            cf = np.zeros_like(rem) if in_group[r] else np.minimum(float(log.requested[r]), rem)
            rem -= cf
            diff = cf - float(log.units[r])
            if not diff.any():
                continue
            dl[:, x] -= diff
            if not in_group[r]:
                cost -= diff * float(log.unit_cost[r])
            y = int(dst_l[r])
            if y < 0:
                continue
            if int(log.arrive[r]) <= t:
                dl[:, y] += diff
            else:
                pending.setdefault(int(log.arrive[r]), []).append((y, diff))
    return cost


def ledger_uplift(
    ledger: Ledger,
    lines: pl.DataFrame,
    *,
    group: str = "group",
    replicates: int = 200,
    level: float = 0.9,
    random_state: int = 0,
    propagate: bool = False,
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
    propagate
        Serve the later moves again from the counterfactual stock (see
        :func:`_propagated_group`); False (the default) keeps them as they were.

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
    log = ledger.moves if propagate else None
    for (key,), part in lines.sort(group).group_by(group, maintain_order=True):
        draws = (
            _propagated_group(ledger, part, replicates, rng)
            if log is not None
            else _simulate_group(ledger, part, replicates, rng)
        )
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
