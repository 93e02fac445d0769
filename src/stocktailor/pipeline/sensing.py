"""The daily forecast update between refits: demand sensing on the stored forecast.

The demand model is fitted on refit days only (``pipeline.refit_every_days``). On the days in
between, the forecast of the last refit is brought to the new as-of date in two moves, both
part by part (a part never needs the rest of the forecast):

1. **Sensing.** Per store x style, the in-stock units sold since the refit day against the
   forecast of the same cells and days give a ratio, shrunk towards the style's network ratio
   (itself shrunk towards 1) with a credibility prior of ``pipeline.sensing_prior_units``
   forecast units and clipped to ``pipeline.sensing_bounds``: the simulator's sensing
   (:func:`stocktailor.simulate.sensing.sensing_ratio`). A cell counts when its stock on the
   refit day covered the window's demand with room to spare (:data:`SENSING_COVER_SD`): a
   cell that ran out sold less than its demand, and choosing cells by their stock at the
   end of the window would keep only the slow sellers.
2. **Re-dating.** The weekly forecast (weeks from the refit day + 1) is cut into weeks from
   the as-of date + 1, pro rata by days (the rule of :func:`stocktailor.valuation.demand_window`:
   a week gives each of its days 1/7 of its mean and variance), and the mean scaled by the
   ratio, the variance as ``r mean + r^2 (var - mean)``
   (:func:`stocktailor.simulate.sensing.scale_windows`); the quantiles follow from the
   negative binomial of the new mean and variance.

The update is exact when nothing was sold since the refit (ratio 1, re-dating only). How far
it drifts from a refit on the as-of date is measured in ``docs/benchmarks.md`` (pipeline
section) and bounded by a test (``tests/test_pipeline_runner.py``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from stocktailor.config import Settings
from stocktailor.contract import Tables
from stocktailor.demand import FORECAST_COLUMNS, nb_quantiles
from stocktailor.positions import position_at
from stocktailor.simulate.sensing import scale_windows, sensing_ratio

__all__ = [
    "PROFILE_WEEKS",
    "SENSING_COVER_SD",
    "day_share",
    "redate_part",
    "sensing_ratios",
    "weekday_profile",
]

PROFILE_WEEKS = 8
"""Weeks of network sales the weekday profile is read from."""

SENSING_COVER_SD = 3.0
"""A cell's sales count when its stock on the refit day was at least the window's forecast
mean plus this many standard deviations plus one unit (it could not run out in the window)."""


def weekday_profile(
    tables: Tables, fitted_on: dt.date, weeks: int = PROFILE_WEEKS
) -> tuple[float, ...]:
    """Share of a week's units sold on each weekday (Monday first), from the network's sales.

    Read from the ``weeks`` whole weeks ending on ``fitted_on``; uniform (1/7 each) with less
    than two weeks of sales. A weekly forecast spreads over its days by this profile: a
    window of Tuesday to Thursday expects less than 3/7 of its week where weekends sell more.
    """
    first = fitted_on - dt.timedelta(days=7 * weeks - 1)
    days = (
        tables.sales.lazy()
        .filter(pl.col("date").is_between(first, fitted_on))
        .group_by("date")
        .agg(pl.col("units").sum().clip(lower_bound=0).cast(pl.Float64))
        .collect()
    )
    seen = days.height
    if seen < 14 or float(days["units"].sum()) <= 0:
        return tuple([1.0 / 7] * 7)
    by_day = days.group_by(pl.col("date").dt.weekday().alias("wd")).agg(pl.col("units").sum())
    units = np.zeros(7)
    units[by_day["wd"].to_numpy() - 1] = by_day["units"].to_numpy()
    return tuple(float(u) for u in units / units.sum())


def day_share(profile: Sequence[float], first: dt.date, n_days: int) -> float:
    """Share of a week's demand on the ``n_days`` days from ``first`` (by the weekday profile)."""
    return float(sum(profile[(first + dt.timedelta(days=t)).weekday()] for t in range(n_days)))


def _in_stock_sales(tables: Tables, fitted_on: dt.date, day: dt.date) -> pl.DataFrame:
    """Units sold per store x SKU on days ``fitted_on + 1 .. day`` (daily net, clipped at 0)."""
    return (
        tables.sales.lazy()
        .filter(pl.col("date").is_between(fitted_on + dt.timedelta(days=1), day))
        .group_by("date", "store_id", "sku")
        .agg(pl.col("units").sum().clip(lower_bound=0))
        .group_by("store_id", "sku")
        .agg(pl.col("units").sum().cast(pl.Float64).alias("sold"))
        .collect()
    )


def sensing_ratios(
    tables: Tables,
    forecast: pl.LazyFrame,
    fitted_on: dt.date,
    day: dt.date,
    settings: Settings,
    profile: Sequence[float],
) -> pl.DataFrame:
    """Sensing ratio per store x style for the days after ``fitted_on`` up to ``day``.

    Parameters
    ----------
    tables
        Tables up to ``day`` at least.
    forecast
        The weekly forecast made on ``fitted_on`` (``store_id, sku, week_start, mean``),
        units per week; read as a scan.
    fitted_on, day
        The refit day and the as-of date (``day > fitted_on``).
    profile
        Weekday shares of a week's demand (:func:`weekday_profile`): the forecast of the days
        since the refit is their share of their weeks.

    Returns
    -------
    pl.DataFrame
        ``store_id, style, ratio, sold, forecast`` for every store and style of the
        forecast: in-stock units sold and forecast in the window, and the ratio (1 when nothing
        was observed anywhere for the style).
    """
    cfg = settings.pipeline
    q, o = divmod((day - fitted_on).days, 7)
    first = fitted_on + dt.timedelta(days=1)
    early = day_share(profile, first, o)
    week = ((pl.col("week_start") - pl.lit(first)).dt.total_days() // 7).alias("_w")
    share = pl.when(pl.col("_w") < q).then(1.0).when(pl.col("_w") == q).then(early).otherwise(0.0)
    window = (
        forecast.with_columns(week)
        .filter(pl.col("_w") <= q)
        .group_by("store_id", "sku")
        .agg((pl.col("mean") * share).sum(), (pl.col("var") * share).sum())
        .collect()
    )
    styles = tables.products.select("sku", "style")
    # A cell counts when its stock on the refit day covered the window's demand with room to
    # spare: chosen before the window, so a cell that sold fast is not dropped for running
    # out (keeping only cells still in stock at the end would keep the slow sellers only).
    stock = position_at(tables, fitted_on, settings.constraints).select(
        "store_id", "sku", pl.col("on_hand").alias("_stock")
    )
    cover = pl.col("fc") + SENSING_COVER_SD * pl.col("_var").sqrt() + 1.0
    cells = (
        window.select("store_id", "sku", pl.col("mean").alias("fc"), pl.col("var").alias("_var"))
        .join(_in_stock_sales(tables, fitted_on, day), on=["store_id", "sku"], how="left")
        .join(stock, on=["store_id", "sku"], how="left")
        .join(styles, on="sku", how="inner")
        .with_columns(
            pl.col("sold").fill_null(0.0),
            (pl.col("_stock").fill_null(0).cast(pl.Float64) >= cover).alias("_in"),
        )
        .with_columns(
            pl.when("_in").then("sold").otherwise(0.0).alias("sold"),
            pl.when("_in").then("fc").otherwise(0.0).alias("fc"),
        )
        .group_by("store_id", "style")
        .agg(pl.col("sold").sum(), pl.col("fc").sum())
    )
    store_ids = sorted(cells["store_id"].unique().to_list())
    style_ids = sorted(cells["style"].unique().to_list())
    si = {s: i for i, s in enumerate(store_ids)}
    gi = {g: j for j, g in enumerate(style_ids)}
    sold = np.zeros((len(store_ids), len(style_ids)))
    fc = np.zeros_like(sold)
    rows = np.array([si[s] for s in cells["store_id"].to_list()], dtype=np.int64)
    cols = np.array([gi[g] for g in cells["style"].to_list()], dtype=np.int64)
    sold[rows, cols] = cells["sold"].to_numpy()
    fc[rows, cols] = cells["fc"].to_numpy()
    ratio, _network = sensing_ratio(sold, fc, cfg.sensing_prior_units, cfg.sensing_bounds)
    return pl.DataFrame(
        {
            "store_id": np.repeat(np.array(store_ids, dtype=object), len(style_ids)).tolist(),
            "style": np.tile(np.array(style_ids, dtype=object), len(store_ids)).tolist(),
            "ratio": ratio.ravel(),
            "sold": sold.ravel(),
            "forecast": fc.ravel(),
        },
        schema={
            "store_id": pl.String,
            "style": pl.String,
            "ratio": pl.Float64,
            "sold": pl.Float64,
            "forecast": pl.Float64,
        },
    )


def redate_part(
    source: str,
    *,
    target_dir: str,
    fitted_on: dt.date,
    day: dt.date,
    ratios: pl.DataFrame,
    styles: pl.DataFrame,
    quantiles: Sequence[float],
    profile: Sequence[float] = (1 / 7,) * 7,
) -> int:
    """Update one forecast part from ``fitted_on`` to ``day``; write it to ``target``.

    A top-level function so an engine can run it on a worker (the part is read and written
    there; only the ratios travel).

    Parameters
    ----------
    source
        A part (Parquet file) of the forecast made on ``fitted_on``.
    target_dir
        Where its update is written, under the same file name.
    ratios
        ``store_id, style, ratio`` (see :func:`sensing_ratios`); pairs absent keep ratio 1.
    styles
        ``sku, style``.
    quantiles
        The three quantile levels of ``p10, p50, p90``.
    profile
        Weekday shares of a week's demand (:func:`weekday_profile`): a new week takes the
        share of each old week's demand that falls on its days.

    Returns
    -------
    int
        Rows written.
    """
    q, o = divmod((day - fitted_on).days, 7)
    first = fitted_on + dt.timedelta(days=1)
    early = day_share(profile, first, o)
    part = pl.scan_parquet(source).with_columns(
        ((pl.col("week_start") - pl.lit(first)).dt.total_days() // 7).alias("_w")
    )
    pieces = [part.with_columns((pl.col("_w") - q).alias("_j"), pl.lit(1.0 - early).alias("_f"))]
    if o:
        pieces.append(
            part.with_columns((pl.col("_w") - q - 1).alias("_j"), pl.lit(early).alias("_f"))
        )
    weekly = (
        pl.concat(pieces)
        .filter(pl.col("_j") >= 0)
        .group_by("store_id", "sku", "_j")
        .agg(
            (pl.col("mean") * pl.col("_f")).sum().alias("mean"),
            (pl.col("var") * pl.col("_f")).sum().alias("var"),
        )
        .join(styles.lazy(), on="sku", how="left")
        .join(
            ratios.lazy().select("store_id", "style", "ratio"), on=["store_id", "style"], how="left"
        )
        .with_columns(
            pl.col("ratio").fill_null(1.0),
            (pl.lit(day + dt.timedelta(days=1)) + pl.duration(days=7 * pl.col("_j"))).alias(
                "week_start"
            ),
        )
        .sort("store_id", "sku", "week_start")
        .collect()
    )
    mean, var = scale_windows(
        weekly["mean"].to_numpy(), weekly["var"].to_numpy(), weekly["ratio"].to_numpy()
    )
    qs = nb_quantiles(mean, var, quantiles)
    out = weekly.select("store_id", "sku", "week_start").with_columns(
        pl.Series("mean", mean),
        pl.Series("var", var),
        pl.Series("p10", qs[0]),
        pl.Series("p50", qs[1]),
        pl.Series("p90", qs[2]),
    )
    out.select(list(FORECAST_COLUMNS)).write_parquet(Path(target_dir) / Path(source).name)
    return out.height
