"""Censored sales: reconstruct stock, flag stocked-out days, estimate the demand behind them.

Sales are ``min(demand, stock)``: a store that sold out is not a store without customers.
This module rebuilds the stock a store had each day from inventory snapshots and sales, marks
the days on which sales were capped by stock, and estimates the demand rate with a censored
Poisson likelihood whose prior pools the in-stock rate of the store's cluster.

Conventions
-----------
An inventory snapshot on date ``s`` is the closing position of that day (after its sales).
The opening stock of day ``d`` is the last snapshot before ``d`` less the units sold since.
A day is *censored* when its closing stock is at most ``threshold_units`` (the shelf emptied
during the day, or was empty all day). When the units sold exceed the projected stock, an
unrecorded receipt must have happened: the stock is then unknown and the day is treated as
in stock (``opening_stock`` null, ``censored`` false).
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import special

from stocktailor.contract import Tables

__all__ = [
    "censored_poisson_rate",
    "expected_demand_given_at_least",
    "first_snapshots",
    "pair_demand_rates",
    "pooled_expected_demand",
    "ranged_pairs",
    "reconstruct_stock",
    "stock_events",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

_KEYS = ["store_id", "sku"]


def _daily_sales(tables: Tables, as_of: dt.date, start: dt.date | None) -> pl.DataFrame:
    sales = tables.sales.lazy().filter(pl.col("date") <= as_of)
    if start is not None:
        sales = sales.filter(pl.col("date") >= start)
    return (
        sales.group_by(["store_id", "sku", "date"])
        .agg(pl.col("units").sum().cast(pl.Int64))
        .collect()
    )


def _snapshots(tables: Tables, as_of: dt.date) -> pl.DataFrame:
    inv = tables.inventory.filter(pl.col("date") <= as_of)
    return (
        inv.group_by(["store_id", "sku", "date"])
        .agg(pl.col("on_hand").sum().cast(pl.Int64))
        .sort(["store_id", "sku", "date"])
    )


# One-entry memo per derived table: a model's fit/update derives the same ranged pairs and
# first snapshots from the same tables several times (censoring, rates, size curves). Keyed by
# the identity of the source frames (held in the entry, so ids cannot be reused) and as-of.
_MEMO: dict[str, tuple[tuple[object, ...], pl.DataFrame]] = {}


def _memo_get(name: str, key: tuple[object, ...]) -> pl.DataFrame | None:
    hit = _MEMO.get(name)
    if hit is None or len(hit[0]) != len(key):
        return None
    if all(
        a is b if isinstance(a, pl.DataFrame) else a == b for a, b in zip(hit[0], key, strict=True)
    ):
        return hit[1]
    return None


def ranged_pairs(tables: Tables, as_of: dt.date) -> pl.DataFrame:
    """Store x SKU pairs a store ranges: positive stock at a snapshot up to ``as_of`` or a sale.

    Returns
    -------
    pl.DataFrame
        ``store_id, sku`` (unique, sorted); only pairs that also have a snapshot.
    """
    key: tuple[object, ...] = (tables.inventory, tables.sales, as_of)
    hit = _memo_get("ranged", key)
    if hit is not None:
        return hit
    inv = tables.inventory.lazy().filter(pl.col("date") <= as_of)
    stocked = inv.filter(pl.col("on_hand") > 0).select(_KEYS).unique()
    sold = tables.sales.lazy().filter(pl.col("date") <= as_of).select(_KEYS).unique()
    snap = inv.select(_KEYS).unique()
    both = pl.concat([stocked, sold.join(snap, on=_KEYS, how="semi")])
    out = both.unique().sort(_KEYS).collect()
    _MEMO["ranged"] = (key, out)
    return out


def first_snapshots(tables: Tables, as_of: dt.date) -> pl.DataFrame:
    """First snapshot date of every ranged store x SKU pair up to ``as_of``.

    Returns
    -------
    pl.DataFrame
        ``store_id, sku, first`` (one row per pair of :func:`ranged_pairs`).
    """
    key: tuple[object, ...] = (tables.inventory, tables.sales, as_of)
    hit = _memo_get("first", key)
    if hit is not None:
        return hit
    out = (
        tables.inventory.lazy()
        .filter(pl.col("date") <= as_of)
        .join(ranged_pairs(tables, as_of).lazy(), on=_KEYS, how="semi")
        .group_by(_KEYS)
        .agg(pl.col("date").min().alias("first"))
        .collect()
    )
    _MEMO["first"] = (key, out)
    return out


def stock_events(
    tables: Tables,
    as_of: dt.date,
    *,
    start: dt.date | None = None,
    threshold_units: int = 0,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Sparse stock reconstruction: sales days with their stock, and stocked-out days.

    Equivalent to :func:`reconstruct_stock` but without materialising the full daily grid,
    so it scales to networks with hundreds of thousands of store x SKU pairs.

    Parameters
    ----------
    tables
        Validated tables (``sales`` and ``inventory`` are used).
    as_of
        Last day of history (inclusive).
    start
        First day reported (earlier snapshots are still used to project stock).
    threshold_units
        A day whose closing stock is at most this is censored, units.

    Returns
    -------
    sales_days
        ``date, store_id, sku, units, opening_stock, censored`` for every day with sales
        (or returns) after the pair's first snapshot.
    out_days
        ``date, store_id, sku`` for every day without sales whose opening stock was at most
        ``threshold_units`` (censored days with zero sales).
    """
    # One lazy pipeline: polars keeps only the columns the outputs need (this is the peak of
    # a forecast's memory at 1,000 stores x 20,000 SKU-sizes).
    inv = (
        tables.inventory.lazy()
        .filter(pl.col("date") <= as_of)
        .select("store_id", "sku", "date", pl.col("on_hand").cast(pl.Int64))
    )
    sales = (
        tables.sales.lazy()
        .filter(pl.col("date") <= as_of)
        .select("store_id", "sku", "date", pl.col("units").cast(pl.Int64))
    )
    # Integer pair ids keep the sorts and window functions cheap at scale. Only ranged pairs
    # (stock > 0 at some snapshot, or any sale) are tracked: a store that never held a SKU
    # does not range it, and its empty shelf is not a stock-out.
    pairs = (
        ranged_pairs(tables, as_of)
        .sort(_KEYS)
        .with_row_index("pid")
        .with_columns(pl.col("pid").cast(pl.Int64))
    )
    snaps = (
        inv.join(pairs.lazy(), on=_KEYS, how="inner")
        .group_by("pid", "date")
        .agg(pl.col("on_hand").sum().alias("snap"))
    )
    sl = (
        sales.join(pairs.lazy(), on=_KEYS, how="inner")
        .group_by("pid", "date")
        .agg(pl.col("units").sum())
    )
    ev = (
        snaps.join(sl, on=["pid", "date"], how="full", coalesce=True)
        .with_columns(pl.col("units").fill_null(0))
        .sort("pid", "date")
    )
    is_snap = pl.col("snap").is_not_null()
    # Anchor: the last snapshot strictly before the row's date, within the pair.
    same = pl.col("pid") == pl.col("pid").shift(1)
    ev = ev.with_columns(
        pl.when(same).then(pl.col("snap").shift(1)).otherwise(pl.lit(-(2**62))).alias("_prev"),
        (~same | is_snap.shift(1).fill_null(False)).cast(pl.Int64).cum_sum().alias("_seg"),
    ).with_columns(pl.col("_prev").forward_fill())
    ev = ev.with_columns(
        pl.when(pl.col("_prev") == -(2**62)).then(None).otherwise(pl.col("_prev")).alias("base"),
        (pl.col("units").cum_sum() - pl.col("units")).alias("_cum"),
    ).with_columns((pl.col("_cum") - pl.col("_cum").first().over("_seg")).alias("sold_before"))
    proj = pl.col("base") - pl.col("sold_before")
    ev = ev.with_columns(
        pl.when(pl.col("base").is_null() | (proj < pl.col("units")))
        .then(pl.lit(None, pl.Int64))
        .otherwise(proj)
        .alias("opening_stock")
    )
    ev = ev.with_columns(
        (
            pl.col("opening_stock").is_not_null()
            & ((pl.col("opening_stock") - pl.col("units")) <= threshold_units)
        ).alias("censored"),
        pl.when(is_snap)
        .then(pl.col("snap"))
        .otherwise(pl.col("opening_stock") - pl.col("units"))
        .alias("closing"),
        pl.when(pl.col("pid") == pl.col("pid").shift(-1))
        .then(pl.col("date").shift(-1))
        .alias("next_date"),
        pl.when(pl.col("pid") == pl.col("pid").shift(-1))
        .then(pl.col("units").shift(-1))
        .fill_null(0)
        .alias("next_units"),
    )
    ev_df = ev.select(
        "pid",
        "date",
        "units",
        "base",
        "opening_stock",
        "censored",
        "closing",
        "next_date",
        "next_units",
    ).collect()
    del ev
    sales_days = ev_df.filter((pl.col("units") != 0) & pl.col("base").is_not_null()).select(
        "date", "pid", "units", "opening_stock", "censored"
    )
    # Stocked-out gaps: after an event whose closing stock <= threshold, until the next event
    # (a sale means a receipt arrived by then; a snapshot day without sales is still out).
    gaps = ev_df.filter(
        pl.col("closing").is_not_null() & (pl.col("closing") <= threshold_units)
    ).select("pid", "date", "next_date", "next_units")
    del ev_df
    gaps = gaps.with_columns(
        pl.when(pl.col("next_date").is_null())
        .then(pl.lit(as_of))
        .when(pl.col("next_units") == 0)
        .then(pl.col("next_date"))
        .otherwise(pl.col("next_date") - dt.timedelta(days=1))
        .alias("last_out"),
        (pl.col("date") + dt.timedelta(days=1)).alias("first_out"),
    )
    if start is not None:
        # Days before the window are never reported: don't expand them.
        gaps = gaps.with_columns(pl.max_horizontal("first_out", pl.lit(start)).alias("first_out"))
    gaps = gaps.filter(pl.col("last_out") >= pl.col("first_out"))
    out_days = (
        gaps.select("pid", pl.date_ranges("first_out", "last_out", interval="1d").alias("date"))
        .explode("date")
        .unique()
    )
    if start is not None:
        sales_days = sales_days.filter(pl.col("date") >= start)
    sales_days = (
        sales_days.sort("pid", "date")
        .join(pairs, on="pid", how="left")
        .select("date", "store_id", "sku", "units", "opening_stock", "censored")
    )
    out_days = (
        out_days.sort("pid", "date")
        .join(pairs, on="pid", how="left")
        .select("date", "store_id", "sku")
    )
    return sales_days, out_days


def reconstruct_stock(
    tables: Tables,
    as_of: dt.date,
    *,
    start: dt.date | None = None,
    threshold_units: int = 0,
) -> pl.DataFrame:
    """Daily stock and censoring flag per store x SKU.

    Parameters
    ----------
    tables
        Validated tables (``sales`` and ``inventory`` are used).
    as_of
        Last day of history (inclusive).
    start
        First day of the output (default: the day after each pair's first snapshot).
    threshold_units
        A day whose closing stock is at most this is censored, units.

    Returns
    -------
    pl.DataFrame
        ``date, store_id, sku, opening_stock, units, censored``: one row per ranged pair (see
        :func:`ranged_pairs`) and day from the day after the pair's first snapshot to
        ``as_of``. ``opening_stock`` is null (and ``censored`` false) when an unrecorded
        receipt makes the stock unknown.
    """
    snaps = _snapshots(tables, as_of).join(ranged_pairs(tables, as_of), on=_KEYS, how="semi")
    if snaps.is_empty():
        return pl.DataFrame(
            schema={
                "date": pl.Date,
                "store_id": pl.String,
                "sku": pl.String,
                "opening_stock": pl.Int64,
                "units": pl.Int64,
                "censored": pl.Boolean,
            }
        )
    first = snaps.group_by(_KEYS).agg(pl.col("date").min().alias("first"))
    lo = pl.col("first") + dt.timedelta(days=1)
    if start is not None:
        lo = pl.max_horizontal(lo, pl.lit(start))
    grid = (
        first.filter(pl.col("first") < as_of)
        .select(*_KEYS, pl.date_ranges(lo, pl.lit(as_of), interval="1d").alias("date"))
        .explode("date")
        .drop_nulls("date")
    )
    sales = _daily_sales(tables, as_of, None)
    day = grid.join(sales, on=[*_KEYS, "date"], how="left").with_columns(
        pl.col("units").fill_null(0)
    )
    day = day.sort([*_KEYS, "date"])
    # Last snapshot strictly before the day (its closing = this day's base).
    snap_next = snaps.with_columns((pl.col("date") + dt.timedelta(days=1)).alias("anchor"))
    day = day.join_asof(
        snap_next.select(*_KEYS, "anchor", pl.col("on_hand").alias("base")).sort(
            [*_KEYS, "anchor"]
        ),
        left_on="date",
        right_on="anchor",
        by=_KEYS,
        strategy="backward",
        check_sortedness=False,
    )
    day = day.with_columns(
        (pl.col("units").cum_sum().over([*_KEYS, "anchor"]) - pl.col("units")).alias("sold")
    )
    proj = pl.col("base") - pl.col("sold")
    day = day.with_columns(
        pl.when(proj < pl.col("units"))
        .then(pl.lit(None, pl.Int64))
        .otherwise(proj)
        .alias("opening_stock")
    )
    # After an unknown receipt the stock stays unknown until the next snapshot.
    day = day.with_columns(
        pl.col("opening_stock")
        .is_null()
        .cast(pl.Int64)
        .cum_sum()
        .over([*_KEYS, "anchor"])
        .alias("_unk")
    ).with_columns(
        pl.when(pl.col("_unk") > 0)
        .then(pl.lit(None, pl.Int64))
        .otherwise(pl.col("opening_stock"))
        .alias("opening_stock")
    )
    day = day.with_columns(
        (
            pl.col("opening_stock").is_not_null()
            & ((pl.col("opening_stock") - pl.col("units")) <= threshold_units)
        ).alias("censored")
    )
    return day.select("date", "store_id", "sku", "opening_stock", "units", "censored").sort(
        ["store_id", "sku", "date"]
    )


def expected_demand_given_at_least(rate: FloatArray, at_least: FloatArray) -> FloatArray:
    """E[D | D >= y] for D ~ Poisson(rate), elementwise.

    Uses ``E[D | D >= y] = rate * P(D >= y - 1) / P(D >= y)`` (regularised gamma functions),
    which is ``rate`` for ``y = 0``.

    Parameters
    ----------
    rate
        Poisson means, units.
    at_least
        Observed (censored) sales y >= 0, units.
    """
    lam = np.maximum(np.asarray(rate, dtype=np.float64), 1e-9)
    y = np.maximum(np.asarray(at_least, dtype=np.float64), 0.0)
    # P(D >= y) = P(y, lam) (regularised lower gamma) for y >= 1; 1 for y = 0.
    p_y = np.where(y >= 1, special.gammainc(np.maximum(y, 1.0), lam), 1.0)
    p_y1 = np.where(y >= 2, special.gammainc(np.maximum(y - 1, 1.0), lam), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = lam * p_y1 / p_y
    # Far in the tail the ratio underflows: then E[D | D >= y] ~ y + lam / (1 + ...) ~ y + 1.
    bad = ~np.isfinite(out) | (p_y < 1e-300)
    out = np.where(bad, y + 1.0, out)
    return np.maximum(out, y)


def censored_poisson_rate(
    uncensored_units: FloatArray,
    uncensored_days: FloatArray,
    censored_sales: list[FloatArray],
    *,
    prior_rate: FloatArray | None = None,
    prior_days: float = 0.0,
    n_iter: int = 50,
) -> FloatArray:
    """Maximum a posteriori Poisson rate per group with right-censored days (EM).

    Each group has in-stock days (total units and number of days) and censored days on which
    only ``D >= y`` is known. A Gamma prior with mean ``prior_rate`` worth ``prior_days`` days
    pools the group toward, for example, its cluster.

    Parameters
    ----------
    uncensored_units, uncensored_days
        Per group: units sold on in-stock days and the number of those days.
    censored_sales
        Per group: array of sales on each censored day (0 for a day out of stock all day).
    prior_rate
        Per group prior mean, units per day (default: the pooled in-stock rate of all groups).
    prior_days
        Weight of the prior, in days of observation.
    n_iter
        EM iterations.

    Returns
    -------
    numpy.ndarray
        Rate per group, units per day.
    """
    u = np.asarray(uncensored_units, dtype=np.float64)
    n = np.asarray(uncensored_days, dtype=np.float64)
    g = len(u)
    if prior_rate is None:
        pooled = float(u.sum() / max(n.sum(), 1.0))
        prior = np.full(g, pooled)
    else:
        prior = np.asarray(prior_rate, dtype=np.float64)
    n_c = np.array([len(c) for c in censored_sales], dtype=np.float64)
    flat = (
        np.concatenate([np.asarray(c, dtype=np.float64) for c in censored_sales])
        if len(censored_sales)
        else np.zeros(0)
    )
    owner = np.repeat(np.arange(g), n_c.astype(np.int64))
    denom = n + n_c + prior_days
    lam = np.where(
        denom > 0,
        (u + flat_sum(flat, owner, g) + prior_days * prior) / np.maximum(denom, 1e-12),
        prior,
    )
    for _ in range(n_iter):
        if flat.size == 0:
            break
        e = expected_demand_given_at_least(lam[owner], flat)
        new = (u + flat_sum(e, owner, g) + prior_days * prior) / np.maximum(denom, 1e-12)
        new = np.where(denom > 0, new, prior)
        if np.allclose(new, lam, rtol=1e-6, atol=1e-9):
            lam = new
            break
        lam = new
    return np.asarray(lam, dtype=np.float64)


def flat_sum(values: FloatArray, owner: npt.NDArray[np.int64], n_groups: int) -> FloatArray:
    """Sum ``values`` per group index ``owner`` (length ``n_groups``)."""
    return np.bincount(owner, weights=values, minlength=n_groups).astype(np.float64)


def pair_demand_rates(
    tables: Tables,
    as_of: dt.date,
    *,
    start: dt.date,
    clusters: pl.DataFrame | None = None,
    threshold_units: int = 0,
    prior_days: float = 7.0,
    events: tuple[pl.DataFrame, pl.DataFrame] | None = None,
) -> pl.DataFrame:
    """Censoring-aware demand rate per store x SKU over ``[start, as_of]``.

    The rate maximises a censored Poisson likelihood (sell-out days count as ``D >= sales``,
    days out of stock all day carry no information) with a Gamma prior worth ``prior_days``
    days whose mean is the SKU's in-stock rate in the store's cluster (all stores when
    ``clusters`` is None), scaled by the store's overall in-stock selling level.

    Returns
    -------
    pl.DataFrame
        ``store_id, sku, units, in_stock_units, days, in_stock_days, censored_days,
        out_days, rate, demand`` where ``rate`` is units per day, ``demand = rate * days``
        the estimate of demand over the window (units) and ``units`` the observed sales.
    """
    sales_days, out_days = (
        events
        if events is not None
        else stock_events(tables, as_of, start=start, threshold_units=threshold_units)
    )
    first = first_snapshots(tables, as_of)
    n_days_expr = (
        pl.lit(as_of) - pl.max_horizontal(pl.col("first") + dt.timedelta(days=1), pl.lit(start))
    ).dt.total_days() + 1
    pairs = first.with_columns(n_days_expr.clip(lower_bound=0).alias("days")).filter(
        pl.col("days") > 0
    )
    agg = sales_days.group_by(_KEYS).agg(
        pl.col("units").sum().alias("units"),
        pl.col("units").filter(~pl.col("censored")).sum().alias("u_in"),
        pl.col("censored").sum().alias("censored_days"),
    )
    outs = out_days.group_by(_KEYS).agg(pl.len().alias("out_days"))
    pairs = (
        pairs.join(agg, on=_KEYS, how="left")
        .join(outs, on=_KEYS, how="left")
        .with_columns(
            pl.col("units").fill_null(0),
            pl.col("u_in").fill_null(0),
            pl.col("censored_days").fill_null(0).cast(pl.Int64),
            pl.col("out_days").fill_null(0).cast(pl.Int64),
        )
        .with_columns(
            (pl.col("days") - pl.col("censored_days") - pl.col("out_days"))
            .clip(lower_bound=0)
            .alias("in_stock_days")
        )
        .sort(_KEYS)
    )
    # Prior: the SKU's in-stock rate in the store's group, scaled by the store's level.
    if clusters is not None:
        pairs = pairs.join(
            clusters.select("store_id", pl.col("cluster_id").cast(pl.String)),
            on="store_id",
            how="left",
        ).with_columns(pl.col("cluster_id").fill_null("_none"))
    else:
        pairs = pairs.with_columns(pl.lit("_all").alias("cluster_id"))
    pairs = pairs.with_columns(
        (
            pl.col("u_in").sum().over(["cluster_id", "sku"])
            / pl.col("in_stock_days").sum().over(["cluster_id", "sku"]).clip(lower_bound=1)
        ).alias("grp_rate"),
        (
            pl.col("u_in").sum().over("sku")
            / pl.col("in_stock_days").sum().over("sku").clip(lower_bound=1)
        ).alias("net_rate"),
    )
    # Store level: store's in-stock units relative to what its group's SKU rates predict.
    pairs = pairs.with_columns(
        (pl.col("grp_rate") * pl.col("in_stock_days")).alias("_exp_in")
    ).with_columns(
        (
            (pl.col("u_in").sum().over("store_id") + 5.0)
            / (pl.col("_exp_in").sum().over("store_id") + 5.0)
        ).alias("store_level")
    )
    pairs = pairs.with_columns(
        (
            pl.when(pl.col("grp_rate") > 0).then(pl.col("grp_rate")).otherwise(pl.col("net_rate"))
            * pl.col("store_level")
        ).alias("prior_rate")
    )
    cens = sales_days.filter(pl.col("censored")).join(
        pairs.select(*_KEYS).with_row_index("gid"), on=_KEYS, how="inner"
    )
    g = pairs.height
    gid = cens["gid"].to_numpy().astype(np.int64)
    ys = cens["units"].to_numpy().astype(np.float64)
    order = np.argsort(gid, kind="stable")
    counts = np.bincount(gid, minlength=g)
    splits = np.split(ys[order], np.cumsum(counts)[:-1]) if g > 0 else []
    rate = censored_poisson_rate(
        pairs["u_in"].to_numpy().astype(np.float64),
        pairs["in_stock_days"].to_numpy().astype(np.float64),
        splits,
        prior_rate=pairs["prior_rate"].to_numpy().astype(np.float64),
        prior_days=prior_days,
    )
    pairs = pairs.with_columns(pl.Series("rate", rate, dtype=pl.Float64)).with_columns(
        (pl.col("rate") * pl.col("days")).alias("demand")
    )
    return pairs.select(
        "store_id",
        "sku",
        pl.col("units").cast(pl.Int64),
        pl.col("u_in").cast(pl.Int64).alias("in_stock_units"),
        pl.col("days").cast(pl.Int64),
        pl.col("in_stock_days").cast(pl.Int64),
        "censored_days",
        "out_days",
        "rate",
        "demand",
    )


# Factors of the pooled demand model: name -> key expression over the pair-week grid.
_POOLED_FACTORS: dict[str, list[str]] = {
    "sku": ["sku"],
    "store_style": ["store_id", "style"],
    "store_size": ["store_id", "size"],
    "store_week": ["store_id", "week"],
    "style_week": ["style", "week"],
}


def pooled_expected_demand(
    tables: Tables,
    as_of: dt.date,
    start: dt.date,
    *,
    threshold_units: int = 0,
    n_iter: int = 30,
    events: tuple[pl.DataFrame, pl.DataFrame] | None = None,
) -> pl.DataFrame:
    """Expected demand per store x SKU over ``[start, as_of]`` from a pooled censored model.

    The daily demand rate of store ``s``, SKU ``k`` (style ``y``, size ``z``) in week ``w`` is
    modelled as a product of effects shared by many pairs,

        mu = a_k * b_(s, y) * g_(s, z) * f_(s, w) * r_(y, w),

    (SKU, store x style, store x size, store x week footfall, style x week life cycle and
    price) and fitted by maximum likelihood on a censored Poisson likelihood with EM: in-stock
    days count their sales, sell-out days count ``E[D | D >= sales]`` under the current rate,
    days out of stock all day carry no information. A pair's own residual level is shrunk
    toward 1 with a Gamma prior whose strength is estimated from the data (empirical Bayes,
    moments of the pairs' observed / fitted ratios); when the pairs show no excess
    dispersion beyond Poisson the pair's estimate is the pooled one. Every pair borrows from
    thousands of others, so a pair that sold out in the week its demand spiked is not taken
    at its spike (selection) nor at its capped sales (censoring).

    Parameters
    ----------
    tables
        Validated tables (``sales``, ``inventory`` and ``products`` are used).
    as_of
        Last day of history (inclusive).
    start
        First day of the window.
    threshold_units
        A day whose closing stock is at most this is censored, units.
    n_iter
        EM iterations (each one cycles once through the effects).
    events
        Precomputed :func:`stock_events` for the same window.

    Returns
    -------
    pl.DataFrame
        ``store_id, sku, units, days, expected, rate``: observed sales over the window (units),
        tracked days (from the day after the pair's first snapshot), expected demand over
        those days (units) and its mean per day (units per day). Ranged pairs only.
    """
    if start > as_of:
        msg = f"pooled_expected_demand: start {start} is after as_of {as_of}"
        raise ValueError(msg)
    sales_days, out_days = (
        events
        if events is not None
        else stock_events(tables, as_of, start=start, threshold_units=threshold_units)
    )
    sales_days = sales_days.filter(pl.col("date") >= start)
    out_days = out_days.filter(pl.col("date") >= start)
    products = tables.products.select("sku", pl.col("style").cast(pl.String), "size")
    pairs = (
        first_snapshots(tables, as_of)
        .with_columns(
            pl.max_horizontal(pl.col("first") + dt.timedelta(days=1), pl.lit(start)).alias("f0")
        )
        .filter(pl.col("f0") <= as_of)
        .join(products.with_columns(pl.col("size").cast(pl.String)), on="sku", how="inner")
        .sort(_KEYS)
        .with_row_index("pid")
        .with_columns(pl.col("pid").cast(pl.Int64))
    )
    empty = pl.DataFrame(
        schema={
            "store_id": pl.String,
            "sku": pl.String,
            "units": pl.Int64,
            "days": pl.Int64,
            "expected": pl.Float64,
            "rate": pl.Float64,
        }
    )
    if pairs.is_empty():
        return empty
    n_weeks = (as_of - start).days // 7 + 1
    week_of_day = ((pl.lit(as_of) - pl.col("date")).dt.total_days() // 7).alias("week")
    # Pair x week grid with the tracked days of each week (weeks end on as_of).
    grid = (
        pairs.join(pl.DataFrame({"week": pl.Series(range(n_weeks), dtype=pl.Int64)}), how="cross")
        .with_columns((pl.lit(as_of) - pl.duration(days=pl.col("week") * 7)).alias("_end"))
        .with_columns(
            pl.max_horizontal(pl.col("_end") - dt.timedelta(days=6), pl.col("f0")).alias("_lo")
        )
        .with_columns(
            ((pl.col("_end") - pl.col("_lo")).dt.total_days() + 1)
            .clip(lower_bound=0)
            .cast(pl.Float64)
            .alias("days")
        )
        .filter(pl.col("days") > 0)
    )
    ids = pairs.select(*_KEYS, "pid")
    sdw = sales_days.with_columns(week_of_day).join(ids, on=_KEYS, how="inner")
    tally = sdw.group_by("pid", "week").agg(
        pl.col("units").filter(~pl.col("censored")).sum().cast(pl.Float64).alias("u"),
        pl.col("units").sum().cast(pl.Float64).alias("sold"),
        pl.col("censored").sum().cast(pl.Float64).alias("n_cens"),
    )
    outs = (
        out_days.with_columns(week_of_day)
        .join(ids, on=_KEYS, how="inner")
        .group_by("pid", "week")
        .agg(pl.len().cast(pl.Float64).alias("n_out"))
    )
    grid = (
        grid.join(tally, on=["pid", "week"], how="left")
        .join(outs, on=["pid", "week"], how="left")
        .with_columns([pl.col(c).fill_null(0.0) for c in ("u", "sold", "n_cens", "n_out")])
        .sort("pid", "week")
        .with_row_index("cid")
        .with_columns(pl.col("cid").cast(pl.Int64))
    )
    cens = sdw.filter(pl.col("censored")).join(
        grid.select("pid", "week", "cid"), on=["pid", "week"], how="inner"
    )
    c_cell = cens["cid"].to_numpy().astype(np.int64)
    c_y = cens["units"].to_numpy().astype(np.float64)
    n = grid.height
    u = grid["u"].to_numpy()
    days = grid["days"].to_numpy()
    # Days that inform the rate: in-stock days and sell-out days (not days out all day).
    info = np.clip(days - grid["n_out"].to_numpy(), 0.0, None)
    codes: dict[str, npt.NDArray[np.int64]] = {}
    for name, cols in _POOLED_FACTORS.items():
        key = pl.concat_str([pl.col(c).cast(pl.String) for c in cols], separator="\x1f")
        codes[name] = (
            grid.select(key.rank("dense").cast(pl.Int64) - 1).to_series().to_numpy()
        ).astype(np.int64)
    effects = {name: np.ones(int(c.max()) + 1) for name, c in codes.items()}
    effects["sku"] *= max(float(u.sum()) / max(float(info.sum()), 1.0), 1e-6)

    def rate() -> FloatArray:
        m = np.ones(n)
        for name, c in codes.items():
            m = m * effects[name][c]
        return m

    def imputed(m: FloatArray) -> FloatArray:
        y = u.copy()
        if c_cell.size:
            y += np.bincount(
                c_cell, weights=expected_demand_given_at_least(m[c_cell], c_y), minlength=n
            )
        return y

    for _ in range(n_iter):
        y = imputed(rate())
        for name, c in codes.items():
            m = rate()
            num = np.bincount(c, weights=y, minlength=effects[name].size)
            den = np.bincount(c, weights=info * m, minlength=effects[name].size)
            effects[name] = np.where(den > 0, effects[name] * (num + 1e-9) / (den + 1e-9), 1.0)
    m = rate()
    y = imputed(m)
    pid = grid["pid"].to_numpy().astype(np.int64)
    p = pairs.height
    y_p = np.bincount(pid, weights=y, minlength=p)
    m_p = np.bincount(pid, weights=info * m, minlength=p)
    tot_p = np.bincount(pid, weights=days * m, minlength=p)
    days_p = np.bincount(pid, weights=days, minlength=p)
    # Empirical Bayes pair effect: ratio ~ Gamma(kappa, kappa); E[M (r - 1)^2 - 1] = M / kappa.
    ok = m_p > 1.0
    excess = float(np.sum(m_p[ok] * (y_p[ok] / m_p[ok] - 1.0) ** 2 - 1.0))
    inv_kappa = max(excess / max(float(np.sum(m_p[ok])), 1e-12), 0.0)
    if inv_kappa > 0:
        kappa = 1.0 / inv_kappa
        tot_p = tot_p * (y_p + kappa) / (m_p + kappa)
    logger.debug("pooled_expected_demand: %d pairs, pair-effect 1/kappa %.4f", p, inv_kappa)
    sold = np.bincount(pid, weights=grid["sold"].to_numpy(), minlength=p)
    return pairs.select(*_KEYS).with_columns(
        pl.Series("units", np.rint(sold).astype(np.int64)),
        pl.Series("days", np.rint(days_p).astype(np.int64)),
        pl.Series("expected", tot_p),
        pl.Series("rate", tot_p / np.maximum(days_p, 1.0)),
    )
