"""Pool thin store x SKU demand rates toward the store's cluster.

A store x SKU with few in-stock days or few sales has a noisy rate. :func:`cluster_pooled_rates`
shrinks it toward a prior built from the store's group (its cluster, or the whole chain):

``prior(s, sku) = group_rate(sku) * scale(s)``, with ``group_rate`` the group's pooled units per
in-stock day of the SKU and ``scale(s)`` the store's observed / expected units over all its SKUs
(so a small store is not pulled up to a big store's level), and

``pooled = (units + prior_days * prior) / (exposure_days + prior_days)``

the gamma-Poisson posterior mean with a prior worth ``prior_days`` in-stock days. ``prior_days``
is tuned, when not given, by a split-half check: rates from the first half of the window must
predict the second half's units (Poisson deviance).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Literal

import numpy as np
import polars as pl

from stocktailor.clustering.exposure import pair_exposure
from stocktailor.contract import Tables

__all__ = ["PRIOR_DAYS_GRID", "cluster_pooled_rates", "pool_rates"]

logger = logging.getLogger(__name__)

PRIOR_DAYS_GRID: tuple[float, ...] = (0.0, 1.0, 2.0, 4.0, 7.0, 14.0, 28.0, 56.0, 112.0, 224.0)
"""Prior strengths (in-stock days) tried when tuning."""


def _with_prior(pairs: pl.DataFrame, groups: pl.DataFrame | None) -> pl.DataFrame:
    """Add ``prior_rate`` (units/day) to ``pairs`` (``store_id, sku, units, exposure_days``)."""
    if groups is None:
        p = pairs.with_columns(pl.lit(0, dtype=pl.Int64).alias("_g"))
    else:
        p = pairs.join(
            groups.select("store_id", pl.col("cluster_id").cast(pl.Int64).alias("_g")),
            on="store_id",
            how="left",
        ).with_columns(pl.col("_g").fill_null(-1))
    grp = (
        p.group_by("_g", "sku")
        .agg(pl.col("units").sum().alias("_gu"), pl.col("exposure_days").sum().alias("_ge"))
        .with_columns(
            pl.when(pl.col("_ge") > 0)
            .then(pl.col("_gu") / pl.col("_ge"))
            .otherwise(0.0)
            .alias("_gr")
        )
    )
    p = p.join(grp.select("_g", "sku", "_gr"), on=["_g", "sku"], how="left")
    scale = (
        p.group_by("store_id")
        .agg(
            pl.col("units").sum().alias("_su"),
            (pl.col("exposure_days") * pl.col("_gr")).sum().alias("_se"),
        )
        .with_columns(
            pl.when(pl.col("_se") > 0)
            .then((pl.col("_su") + 1.0) / (pl.col("_se") + 1.0))
            .otherwise(1.0)
            .alias("_scale")
        )
    )
    return (
        p.join(scale.select("store_id", "_scale"), on="store_id", how="left")
        .with_columns((pl.col("_gr") * pl.col("_scale")).alias("prior_rate"))
        .drop("_g", "_gr", "_scale")
    )


def pool_rates(
    pairs: pl.DataFrame,
    groups: pl.DataFrame | None,
    prior_days: float,
) -> pl.DataFrame:
    """Shrink each pair's rate toward its group prior.

    Parameters
    ----------
    pairs
        ``store_id, sku, units, exposure_days`` (units over the window, in-stock days).
    groups
        ``store_id, cluster_id`` (pool within clusters) or None (pool over the whole chain).
    prior_days
        Weight of the prior, in in-stock days (0 = no pooling, the raw rate).

    Returns
    -------
    pl.DataFrame
        ``pairs`` + ``raw_rate`` (units per in-stock day, 0 without exposure), ``prior_rate`` and
        ``pooled_rate`` (units per day).
    """
    p = _with_prior(pairs, groups)
    raw = (
        pl.when(pl.col("exposure_days") > 0)
        .then(pl.col("units") / pl.col("exposure_days"))
        .otherwise(0.0)
    )
    pooled = (pl.col("units") + prior_days * pl.col("prior_rate")) / (
        pl.col("exposure_days") + prior_days
    )
    return p.with_columns(
        raw.alias("raw_rate"),
        (
            pl.when(pl.col("exposure_days") + prior_days > 0)
            .then(pooled)
            .otherwise(pl.col("prior_rate"))
        ).alias("pooled_rate"),
    )


def _deviance(rate: np.ndarray, exposure: np.ndarray, units: np.ndarray) -> float:
    """Poisson deviance of ``units`` against ``rate * exposure`` (rates floored at 1e-6/day)."""
    mu = np.maximum(rate * exposure, 1e-6)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(units > 0, units * np.log(units / mu), 0.0)
    return float(2.0 * np.sum(term - (units - mu)))


def _tune_prior_days(
    tables: Tables,
    start: dt.date,
    end: dt.date,
    groups: pl.DataFrame | None,
    in_stock: pl.DataFrame | None,
) -> float:
    days = (end - start).days + 1
    mid = start + dt.timedelta(days=days // 2 - 1)
    first = pair_exposure(tables, start, mid, in_stock=in_stock)
    second = pair_exposure(tables, mid + dt.timedelta(days=1), end, in_stock=in_stock).select(
        "store_id", "sku", pl.col("units").alias("u2"), pl.col("exposure_days").alias("e2")
    )
    p = (
        _with_prior(first.select("store_id", "sku", "units", "exposure_days"), groups)
        .join(second, on=["store_id", "sku"], how="inner")
        .filter(pl.col("e2") > 0)
    )
    if p.is_empty():
        return 7.0
    u = p["units"].to_numpy()
    e = p["exposure_days"].to_numpy()
    prior = p["prior_rate"].fill_null(0.0).to_numpy()
    u2 = p["u2"].to_numpy()
    e2 = p["e2"].to_numpy()
    best, best_dev = PRIOR_DAYS_GRID[0], np.inf
    for k in PRIOR_DAYS_GRID:
        denom = e + k
        rate = np.where(denom > 0, (u + k * prior) / np.where(denom > 0, denom, 1.0), prior)
        dev = _deviance(rate, e2, u2)
        if dev < best_dev - 1e-9:
            best, best_dev = k, dev
    return float(best)


def cluster_pooled_rates(
    tables: Tables,
    as_of: dt.date,
    clusters: pl.DataFrame | None,
    *,
    window_days: int = 84,
    prior_days: float | None = None,
    level: Literal["cluster", "chain", "none"] = "cluster",
    in_stock: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Censoring-aware store x SKU demand rates pooled within clusters.

    Parameters
    ----------
    tables
        The network's tables (sales and inventory snapshots).
    as_of
        Last day of the window.
    clusters
        ``store_id, cluster_id`` (e.g. ``StoreClusterer.labels_``); needed for
        ``level="cluster"``.
    window_days
        Days of history, ending at ``as_of``.
    prior_days
        Prior strength in in-stock days; None tunes it on the window (split-half deviance).
    level
        ``"cluster"`` shrinks toward the store's cluster, ``"chain"`` toward the whole chain,
        ``"none"`` returns the raw in-stock rate.
    in_stock
        Optional daily in-stock shares (see :func:`~stocktailor.clustering.pair_exposure`).

    Returns
    -------
    pl.DataFrame
        ``store_id, sku, units, exposure_days, raw_rate, prior_rate, pooled_rate, prior_days``;
        rates in units per (in-stock) day, for every store x SKU with sales or stock in the
        window.
    """
    if level == "cluster" and clusters is None:
        msg = "cluster_pooled_rates: level='cluster' needs clusters (store_id, cluster_id)"
        raise ValueError(msg)
    start = as_of - dt.timedelta(days=window_days - 1)
    pairs = pair_exposure(tables, start, as_of, in_stock=in_stock).select(
        "store_id", "sku", "units", "exposure_days"
    )
    groups = clusters if level == "cluster" else None
    if level == "none":
        k = 0.0
    elif prior_days is None:
        k = _tune_prior_days(tables, start, as_of, groups, in_stock)
    else:
        k = float(prior_days)
    logger.info("clustering: pooled rates (%s) with prior worth %.1f days", level, k)
    out = pool_rates(pairs, groups, k)
    return (
        out.with_columns(pl.lit(k).alias("prior_days"))
        .select(
            "store_id",
            "sku",
            "units",
            "exposure_days",
            "raw_rate",
            "prior_rate",
            "pooled_rate",
            "prior_days",
        )
        .sort("store_id", "sku")
    )
