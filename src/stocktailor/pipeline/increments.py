"""Cut a network's history into a base data folder and daily increments.

For trying and testing the daily loop (``ingest`` the base, then ``ingest --append`` one
increment and ``run`` per day) on a network whose whole history is known, e.g. a synthetic one
(``stocktailor generate --daily N``). The base holds the history up to ``cut``; increment
``d`` holds what a retailer's feed sends on the morning after day ``cut + d``: that day's
sales, the inventory snapshots taken that day, the day's trends and economy rows, the day's
weather as an actual and the weather forecast for ``forecast_days`` ahead. Undated tables
(stores, products, lanes, events, assortment, ...) go into the base only.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from stocktailor.contract import Tables
from stocktailor.partstore import is_dated

__all__ = ["split_increments", "write_folder"]


def split_increments(
    tables: Tables, cut: dt.date, days: int, *, forecast_days: int = 14
) -> tuple[dict[str, pl.DataFrame], list[dict[str, pl.DataFrame]]]:
    """The base tables up to ``cut`` and ``days`` daily increments after it.

    Weather rows after the day they are sent on are flagged ``is_forecast`` (a forecast is
    sent ``forecast_days`` ahead and replaced by the actual on its day).

    Returns
    -------
    tuple
        ``(base, increments)``: table name -> frame; increment ``i`` covers day ``cut + i + 1``.
    """
    base: dict[str, pl.DataFrame] = {}
    incs: list[dict[str, pl.DataFrame]] = [{} for _ in range(days)]
    for name, frame in tables.items():
        if not is_dated(name):
            base[name] = frame
            continue
        if name == "weather":
            horizon = cut + dt.timedelta(days=forecast_days)
            base[name] = _flag(frame.filter(pl.col("date") <= horizon), cut)
            for i in range(days):
                day = cut + dt.timedelta(days=i + 1)
                ahead = day + dt.timedelta(days=forecast_days)
                rows = frame.filter((pl.col("date") == day) | (pl.col("date") == ahead))
                if rows.height:
                    incs[i][name] = _flag(rows, day)
            continue
        base[name] = frame.filter(pl.col("date") <= cut)
        for i in range(days):
            day = cut + dt.timedelta(days=i + 1)
            rows = frame.filter(pl.col("date") == day)
            if rows.height:
                incs[i][name] = rows
    return base, incs


def _flag(weather: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    return weather.with_columns((pl.col("date") > pl.lit(day, dtype=pl.Date)).alias("is_forecast"))


def write_folder(tables: dict[str, pl.DataFrame], folder: Path) -> Path:
    """Write tables as ``NAME.parquet`` files of a data folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.write_parquet(folder / f"{name}.parquet")
    return folder
