"""Censoring-aware demand rates: the censored Poisson likelihood and per-pair rates.

Sell-out days say only ``D >= sales``; days out of stock all day say nothing. The rate of a
group maximises a censored Poisson likelihood (EM) with a Gamma prior that pools the group
toward, for example, its cluster's in-stock rate.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import special

from stocktailor.censoring.anchors import KEYS
from stocktailor.censoring.stock import first_snapshots, stock_events
from stocktailor.contract import Tables

__all__ = [
    "censored_poisson_rate",
    "expected_demand_given_at_least",
    "flat_sum",
    "pair_demand_rates",
    "with_cluster_id",
]

FloatArray = npt.NDArray[np.float64]
_KEYS = KEYS


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
    pairs = _with_prior(pairs, clusters)
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


def with_cluster_id(frame: pl.DataFrame, clusters: pl.DataFrame | None) -> pl.DataFrame:
    """Add ``cluster_id`` (String) from ``clusters`` (``store_id, cluster_id``) by
    ``store_id``: ``"_none"`` for a store without one, ``"_all"`` everywhere when ``clusters``
    is None."""
    if clusters is None:
        return frame.with_columns(pl.lit("_all").alias("cluster_id"))
    return frame.join(
        clusters.select("store_id", pl.col("cluster_id").cast(pl.String)),
        on="store_id",
        how="left",
    ).with_columns(pl.col("cluster_id").fill_null("_none"))


def _with_prior(pairs: pl.DataFrame, clusters: pl.DataFrame | None) -> pl.DataFrame:
    """Add ``prior_rate``: the SKU's in-stock rate in the store's group (cluster, else all
    stores), scaled by the store's in-stock selling level, units per day."""
    pairs = with_cluster_id(pairs, clusters)
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
    return pairs
