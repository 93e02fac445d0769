"""Units sold and in-stock days per store x SKU over a window (censoring-aware exposure)."""

from __future__ import annotations

import datetime as dt

import polars as pl

from stocktailor.censoring import demand_tables
from stocktailor.contract import Tables

__all__ = ["pair_exposure", "snapshot_exposure"]


def snapshot_exposure(
    sales: pl.DataFrame,
    inventory: pl.DataFrame,
    start: dt.date,
    end: dt.date,
) -> pl.DataFrame:
    """Units and in-stock days per (store, sku) from sales and inventory snapshots.

    A snapshot's ``on_hand`` is read as the closing stock of its date. Each snapshot opens an
    interval of days up to the next snapshot (or ``end``). The SKU counts as in stock for the whole
    interval when the snapshot has stock and either the interval's sales did not exhaust it or the
    next snapshot still has stock; otherwise it counts as in stock only up to the interval's last
    sale (when it had stock) or on days with sales (a restock the snapshots did not see).
    Pairs with sales but no snapshot at all count as in stock from their first sale in the window.
    """
    window_sales = sales.filter(pl.col("date").is_between(start, end)).select(
        "date", "store_id", "sku", pl.col("units").cast(pl.Float64).clip(lower_bound=0.0)
    )
    inv = inventory.filter(pl.col("date") <= end).select(
        "date", "store_id", "sku", pl.col("on_hand").cast(pl.Float64)
    )
    day0 = start - dt.timedelta(days=1)
    # the anchor: latest snapshot at or before the day before the window, plus those inside it
    anchor = (
        inv.filter(pl.col("date") <= day0)
        .sort("date")
        .group_by("store_id", "sku")
        .agg(pl.col("date").last(), pl.col("on_hand").last())
    )
    inside = inv.filter(pl.col("date") > day0)
    snaps = pl.concat([anchor.select(inside.columns), inside]).sort("store_id", "sku", "date")
    snaps = snaps.with_columns(
        pl.col("date").shift(-1).over("store_id", "sku").alias("next_date"),
        pl.col("on_hand").shift(-1).over("store_id", "sku").alias("next_on_hand"),
    ).with_columns(
        pl.max_horizontal(pl.col("date") + pl.duration(days=1), pl.lit(start)).alias("first_day"),
        pl.min_horizontal(pl.col("next_date").fill_null(end), pl.lit(end)).alias("last_day"),
    )
    snaps = snaps.filter(pl.col("last_day") >= pl.col("first_day"))
    # sales per interval: join each sale to the latest snapshot strictly before its date
    s = window_sales.sort("date")
    keyed = snaps.select(
        "store_id", "sku", (pl.col("date") + pl.duration(days=1)).alias("interval_start")
    ).sort("interval_start")
    s = s.join_asof(
        keyed,
        left_on="date",
        right_on="interval_start",
        by=["store_id", "sku"],
        strategy="backward",
        check_sortedness=False,
    )
    per_interval = s.group_by("store_id", "sku", "interval_start").agg(
        pl.col("units").sum().alias("units"),
        pl.col("date").filter(pl.col("units") > 0).max().alias("last_sale"),
        (pl.col("units") > 0).sum().cast(pl.Float64).alias("sale_days"),
    )
    snaps = snaps.with_columns((pl.col("date") + pl.duration(days=1)).alias("interval_start")).join(
        per_interval.filter(pl.col("interval_start").is_not_null()),
        on=["store_id", "sku", "interval_start"],
        how="left",
    )
    length = (pl.col("last_day") - pl.col("first_day")).dt.total_days().cast(pl.Float64) + 1.0
    units = pl.col("units").fill_null(0.0)
    full = (pl.col("on_hand") > 0) & (
        (units < pl.col("on_hand")) | (pl.col("next_on_hand").fill_null(0.0) > 0)
    )
    until_last = (pl.col("last_sale") - pl.col("first_day")).dt.total_days().cast(pl.Float64) + 1.0
    exposure = (
        pl.when(full)
        .then(length)
        .when((pl.col("on_hand") > 0) & (units > 0))
        .then(until_last)
        .otherwise(pl.col("sale_days").fill_null(0.0))
    )
    covered = snaps.group_by("store_id", "sku").agg(
        units.sum().alias("units"), exposure.sum().alias("exposure_days")
    )
    # sales of pairs with no snapshot at all (or sales before the first snapshot)
    first_snap = snaps.group_by("store_id", "sku").agg(pl.col("first_day").min().alias("fs"))
    orphan = (
        window_sales.join(first_snap, on=["store_id", "sku"], how="left")
        .filter(pl.col("fs").is_null() | (pl.col("date") < pl.col("fs")))
        .group_by("store_id", "sku")
        .agg(
            pl.col("units").sum().alias("units"),
            (
                (pl.col("fs").first().fill_null(end + dt.timedelta(days=1)) - pl.col("date").min())
                .dt.total_days()
                .cast(pl.Float64)
            ).alias("exposure_days"),
        )
    )
    out = (
        pl.concat([covered, orphan])
        .group_by("store_id", "sku")
        .agg(pl.col("units").sum(), pl.col("exposure_days").sum())
    )
    # a day with a sale is an in-stock day whatever the snapshots say
    return out.with_columns(pl.max_horizontal("exposure_days", pl.lit(0.0)).alias("exposure_days"))


def pair_exposure(
    tables: Tables,
    start: dt.date,
    end: dt.date,
    *,
    in_stock: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Units sold and in-stock days per (store, sku) over ``[start, end]``.

    Parameters
    ----------
    tables
        The network's tables (sales and inventory snapshots are used).
    start, end
        Inclusive window.
    in_stock
        Optional ``date, store_id, sku, in_stock_share`` (0..1 share of the day the SKU was on
        the shelf), e.g. from stockout hours; replaces the snapshot-based estimate.

    Returns
    -------
    pl.DataFrame
        ``store_id, sku, units`` (units over the window from the daily net-demand view: each
        day's returns netted against its sales, a day of surplus returns counted as 0),
        ``exposure_days`` (in-stock days) and ``rate`` (units per in-stock day; null without
        exposure).
    """
    tables = demand_tables(tables)
    if in_stock is not None:
        window = in_stock.filter(pl.col("date").is_between(start, end))
        sold = (
            tables.sales.filter(pl.col("date").is_between(start, end))
            .group_by("store_id", "sku")
            .agg(pl.col("units").cast(pl.Float64).sum().clip(lower_bound=0.0).alias("units"))
        )
        exp = window.group_by("store_id", "sku").agg(
            pl.col("in_stock_share").cast(pl.Float64).sum().alias("exposure_days")
        )
        out = exp.join(sold, on=["store_id", "sku"], how="full", coalesce=True).with_columns(
            pl.col("units").fill_null(0.0), pl.col("exposure_days").fill_null(0.0)
        )
    else:
        out = snapshot_exposure(tables.sales, tables.inventory, start, end)
    return out.with_columns(
        pl.when(pl.col("exposure_days") > 0)
        .then(pl.col("units") / pl.col("exposure_days"))
        .otherwise(None)
        .alias("rate")
    ).sort("store_id", "sku")
