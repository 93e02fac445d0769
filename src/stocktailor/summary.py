"""Network summaries: stock, cover and stockouts by group, for the CLI and the dashboard."""

from __future__ import annotations

import datetime as dt

import polars as pl

from stocktailor.contract import Tables
from stocktailor.positions import position_at

__all__ = ["kpis_by_policy", "network_summary"]


def network_summary(
    tables: Tables,
    as_of: dt.date,
    *,
    groups: pl.DataFrame | None = None,
    group_column: str = "group",
    velocity_days: int = 28,
) -> pl.DataFrame:
    """Stock position, weeks of cover and stockout share per store group.

    Parameters
    ----------
    tables
        Validated tables.
    as_of
        Positions as :func:`stocktailor.positions.position_at` gives them.
    groups
        ``store_id`` and ``group_column``; default: one group ``all``.
    velocity_days
        Days of sales before ``as_of`` that define the sales rate, days.

    Returns
    -------
    pl.DataFrame
        ``group, stores, skus_carried, on_hand (units), units_per_week (units per week),
        weeks_of_cover (weeks), stockout_share`` (share of carried store x SKU with nothing on
        hand; a store carries a SKU it has held or sold in the window).
    """
    stores = tables.stores.filter(pl.col("kind") == "store").select("store_id")
    if groups is None:
        groups = stores.with_columns(pl.lit("all").alias(group_column))
    groups = groups.select("store_id", pl.col(group_column).cast(pl.String).alias("group"))

    pos = position_at(tables, as_of).select("store_id", "sku", "on_hand")
    sales = tables.sales.filter(pl.col("date") <= as_of)
    start = as_of - dt.timedelta(days=velocity_days - 1)
    window = (
        sales.filter(pl.col("date") >= start)
        .group_by("store_id", "sku")
        .agg(pl.col("units").sum().alias("units_window"))
    )
    carried = (
        pos.join(window, on=["store_id", "sku"], how="full", coalesce=True)
        .with_columns(pl.col("on_hand").fill_null(0), pl.col("units_window").fill_null(0))
        .filter((pl.col("on_hand") > 0) | (pl.col("units_window") > 0))
        .join(groups, on="store_id", how="inner")
    )
    out = (
        carried.group_by("group")
        .agg(
            pl.col("store_id").n_unique().alias("stores"),
            pl.len().alias("skus_carried"),
            pl.col("on_hand").sum().alias("on_hand"),
            (pl.col("units_window").sum() * 7.0 / velocity_days).alias("units_per_week"),
            (pl.col("on_hand") == 0).mean().alias("stockout_share"),
        )
        .with_columns(
            pl.when(pl.col("units_per_week") > 0)
            .then(pl.col("on_hand") / pl.col("units_per_week"))
            .otherwise(None)
            .alias("weeks_of_cover")
        )
        .select(
            "group",
            "stores",
            "skus_carried",
            "on_hand",
            "units_per_week",
            "weeks_of_cover",
            "stockout_share",
        )
        .sort("group")
    )
    return out


def kpis_by_policy(table: pl.DataFrame) -> pl.DataFrame:
    """Turn a ``policy`` x KPI table into KPI rows with one column per policy (for printing)."""
    values = table.drop("policy").cast(pl.Float64)
    return values.transpose(
        include_header=True, header_name="kpi", column_names=table["policy"].to_list()
    )
