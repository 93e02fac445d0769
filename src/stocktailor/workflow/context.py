"""Stock context for publishing: on hand and season-to-date sales per location and SKU."""

from __future__ import annotations

import datetime as dt

import polars as pl

from stocktailor.config import Settings
from stocktailor.contract import Tables
from stocktailor.positions import position_at

__all__ = ["stock_context"]


def stock_context(tables: Tables, as_of: dt.date, settings: Settings | None = None) -> pl.DataFrame:
    """Return ``store_id, sku, on_hand, sold_units`` for :func:`publish_run`'s ``positions``.

    Parameters
    ----------
    tables
        Validated tables.
    as_of
        The plan's date: on hand is the position at the end of that day.
    settings
        ``season.start`` bounds the season-to-date sales (default: the first sales date).

    Returns
    -------
    polars.DataFrame
        ``on_hand`` (units, from :func:`stocktailor.positions.position_at`) and ``sold_units``
        (net units sold from season start to ``as_of``, floored at 0), Int64, for every
        location x SKU with stock or sales.
    """
    cfg = settings or Settings()
    pos = position_at(tables, as_of, cfg.constraints).select("store_id", "sku", "on_hand")
    sales = tables.sales.filter(pl.col("date") <= as_of)
    if cfg.season.start is not None:
        sales = sales.filter(pl.col("date") >= cfg.season.start)
    sold = sales.group_by("store_id", "sku").agg(
        pl.col("units").sum().clip(lower_bound=0).cast(pl.Int64).alias("sold_units")
    )
    return (
        pos.join(sold, on=["store_id", "sku"], how="full", coalesce=True)
        .with_columns(
            pl.col("on_hand").fill_null(0).cast(pl.Int64),
            pl.col("sold_units").fill_null(0).cast(pl.Int64),
        )
        .sort("store_id", "sku")
    )
