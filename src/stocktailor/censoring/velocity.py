"""A censoring-aware velocity forecast: the fallback when history is too short to learn from.

Each store x SKU sells at its censored-Poisson rate (:func:`~stocktailor.censoring.rates.
pair_demand_rates`, pooled toward the SKU's rate in the store's cluster) every day of the
horizon; a store that sells a SKU it has no stock records for sells at its observed rate.
Weekly demand is Poisson (variance = mean).
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
from scipy import stats

from stocktailor.censoring.netdemand import net_daily_demand
from stocktailor.censoring.rates import pair_demand_rates
from stocktailor.contract import FORECAST_SCHEMA, Tables

__all__ = ["velocity_forecast"]


def velocity_forecast(
    tables: Tables,
    as_of: dt.date,
    *,
    clusters: pl.DataFrame | None = None,
    history_days: int = 84,
    horizon_weeks: int = 8,
    threshold_units: int = 0,
) -> pl.DataFrame:
    """Weekly forecast per store x SKU from each pair's censoring-aware daily rate.

    Parameters
    ----------
    tables
        Validated tables.
    as_of
        Last day of history; weeks start on ``as_of + 1 + 7i``.
    clusters
        Optional ``store_id, cluster_id`` (the rate's prior pools within a cluster).
    history_days
        Days of history used (at most), days.
    horizon_weeks
        Weeks forecast for SKUs without a ``season_end``; a SKU with one is forecast to it
        (its last week counts only the days up to it).
    threshold_units
        A day whose closing stock is at most this is censored, units.

    Returns
    -------
    pl.DataFrame
        ``store_id, sku, week_start, mean, var, p10, p50, p90`` (units per week) for selling
        stores.
    """
    start = as_of - dt.timedelta(days=history_days - 1)
    sales = net_daily_demand(tables.sales, start=start, end=as_of).daily
    first = sales["date"].min()
    if isinstance(first, dt.date):
        start = max(start, first)
    rates = pair_demand_rates(
        tables, as_of, start=start, clusters=clusters, threshold_units=threshold_units
    ).select("store_id", "sku", "rate")
    days = (as_of - start).days + 1
    seen = sales.group_by("store_id", "sku").agg(
        (pl.col("units").sum().cast(pl.Float64) / days).alias("_seen")
    )
    stores = tables.store_ids.implode()
    pairs = (
        rates.join(seen, on=["store_id", "sku"], how="full", coalesce=True)
        .select("store_id", "sku", pl.coalesce("rate", "_seen").fill_null(0.0).alias("rate"))
        .filter(pl.col("store_id").is_in(stores))
    )
    pr = tables.products
    ends = pr.select(
        "sku",
        pl.col("season_end")
        if "season_end" in pr.columns
        else pl.lit(None, pl.Date).alias("season_end"),
    )
    last = as_of + dt.timedelta(days=7 * horizon_weeks)
    known = ends["season_end"].drop_nulls().max()
    if isinstance(known, dt.date):
        last = max(last, known)
    n_w = max(0, math.ceil((last - as_of).days / 7))
    weeks = pl.DataFrame(
        {"week_start": [as_of + dt.timedelta(days=1 + 7 * i) for i in range(n_w)]},
        schema={"week_start": pl.Date},
    )
    default_end = pl.lit(as_of + dt.timedelta(days=7 * horizon_weeks), dtype=pl.Date)
    grid = (
        pairs.join(ends, on="sku", how="left")
        .with_columns(pl.col("season_end").fill_null(default_end))
        .join(weeks, how="cross")
        .with_columns(
            (pl.col("season_end") - pl.col("week_start"))
            .dt.total_days()
            .add(1)
            .clip(0, 7)
            .cast(pl.Float64)
            .alias("_days")
        )
        .filter(pl.col("_days") > 0)
        .with_columns((pl.col("rate") * pl.col("_days")).alias("mean"))
    )
    mean = grid["mean"].to_numpy().astype(np.float64)
    q = {
        name: np.where(mean > 0, stats.poisson.ppf(p, np.maximum(mean, 1e-12)), 0.0)
        for name, p in (("p10", 0.1), ("p50", 0.5), ("p90", 0.9))
    }
    out = grid.select("store_id", "sku", "week_start", "mean").with_columns(
        pl.col("mean").alias("var"), *(pl.Series(k, v, dtype=pl.Float64) for k, v in q.items())
    )
    cols = [pl.col(c).cast(t) for c, t in FORECAST_SCHEMA.items()]
    return out.select(cols).sort("store_id", "sku", "week_start")
