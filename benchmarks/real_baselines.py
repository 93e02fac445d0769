"""Simple baselines and scores for the real-data benchmark (``real_data.py``).

Every baseline sees only the history up to the cut (the demand target of
:func:`real_common.daily_demand_target`: daily net units clipped at 0) and returns weekly
forecasts per store x SKU for the ``n_weeks`` weeks after the cut (week ``k`` covers days
``cut + 1 + 7k .. cut + 7 + 7k``), as a frame ``store_id, sku, week, mean``.
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import polars as pl

KEYS = ["store_id", "sku"]


def _weeks(pairs: pl.DataFrame, n_weeks: int) -> pl.DataFrame:
    weeks = pl.DataFrame({"week": list(range(n_weeks))}, schema={"week": pl.Int64})
    return pairs.join(weeks, how="cross")


def _window_sum(hist: pl.DataFrame, lo: dt.date, hi: dt.date, name: str) -> pl.DataFrame:
    return (
        hist.filter(pl.col("date").is_between(lo, hi))
        .group_by(KEYS)
        .agg(pl.col("units").sum().cast(pl.Float64).alias(name))
    )


def seasonal_naive_week(
    hist: pl.DataFrame, pairs: pl.DataFrame, cut: dt.date, n_weeks: int
) -> pl.DataFrame:
    """Every future week = the last 7 days before the cut."""
    last = _window_sum(hist, cut - dt.timedelta(days=6), cut, "mean")
    return (
        _weeks(pairs, n_weeks)
        .join(last, on=KEYS, how="left")
        .with_columns(pl.col("mean").fill_null(0.0))
    )


def seasonal_naive_year(
    hist: pl.DataFrame, pairs: pl.DataFrame, cut: dt.date, n_weeks: int
) -> pl.DataFrame | None:
    """Week ``k`` = the same 7 days 52 weeks (364 days) earlier; None without that history."""
    first = hist["date"].min()
    if not isinstance(first, dt.date) or first > cut + dt.timedelta(days=1 - 364):
        return None
    parts = []
    for k in range(n_weeks):
        lo = cut + dt.timedelta(days=1 + 7 * k - 364)
        w = _window_sum(hist, lo, lo + dt.timedelta(days=6), "mean")
        parts.append(w.with_columns(pl.lit(k).alias("week")))
    yr = pl.concat(parts).with_columns(pl.col("week").cast(pl.Int64))
    grid = _weeks(pairs, n_weeks).with_columns(pl.col("week").cast(pl.Int64))
    return grid.join(yr, on=[*KEYS, "week"], how="left").with_columns(pl.col("mean").fill_null(0.0))


def mean_4w(hist: pl.DataFrame, pairs: pl.DataFrame, cut: dt.date, n_weeks: int) -> pl.DataFrame:
    """Every future week = the mean week of the last 28 days."""
    last = _window_sum(hist, cut - dt.timedelta(days=27), cut, "mean")
    last = last.with_columns(pl.col("mean") / 4.0)
    return (
        _weeks(pairs, n_weeks)
        .join(last, on=KEYS, how="left")
        .with_columns(pl.col("mean").fill_null(0.0))
    )


def velocity_28d(
    hist: pl.DataFrame,
    inventory: pl.DataFrame,
    pairs: pl.DataFrame,
    cut: dt.date,
    n_weeks: int,
) -> pl.DataFrame:
    """A planner's 28-day velocity: units per day with stock over the last 28 days x 7.

    A day has stock when its closing snapshot is positive (daily snapshots); pairs without a
    snapshot on every one of those days (no daily stock data) use all 28 days, i.e. the 4-week
    mean.
    """
    lo = cut - dt.timedelta(days=27)
    snaps = inventory.filter(pl.col("date").is_between(lo, cut))
    daily = (
        snaps.group_by(KEYS)
        .agg(pl.len().alias("n_snap"), (pl.col("on_hand") > 0).sum().alias("days_in"))
        .filter(pl.col("n_snap") == 28)
    )
    instock = snaps.filter(pl.col("on_hand") > 0).select(*KEYS, "date")
    sold_in = (
        hist.filter(pl.col("date").is_between(lo, cut))
        .join(instock, on=[*KEYS, "date"], how="inner")
        .group_by(KEYS)
        .agg(pl.col("units").sum().alias("sold_in"))
    )
    four = mean_4w(hist, pairs, cut, 1).select(*KEYS, pl.col("mean").alias("m4"))
    v = (
        pairs.join(four, on=KEYS, how="left")
        .join(daily, on=KEYS, how="left")
        .join(sold_in, on=KEYS, how="left")
        .with_columns(
            pl.when(pl.col("days_in") > 0)
            .then(pl.col("sold_in").fill_null(0) / pl.col("days_in") * 7.0)
            .otherwise(pl.col("m4"))
            .fill_null(0.0)
            .alias("mean")
        )
        .select(*KEYS, "mean")
    )
    return (
        _weeks(pairs, n_weeks)
        .join(v, on=KEYS, how="left")
        .with_columns(pl.col("mean").fill_null(0.0))
    )


def _dense(hist: pl.DataFrame, pairs: pl.DataFrame, first: dt.date, cut: dt.date) -> np.ndarray:
    """(pairs, days) daily target matrix from ``first`` to ``cut``."""
    n_days = (cut - first).days + 1
    idx = pairs.with_row_index("i")
    h = hist.filter(pl.col("date").is_between(first, cut)).join(idx, on=KEYS, how="inner")
    mat = np.zeros((pairs.height, n_days))
    day = (h["date"] - first).dt.total_days().to_numpy()
    np.add.at(mat, (h["i"].to_numpy(), day), h["units"].to_numpy().astype(float))
    return mat


def auto_ets(
    hist: pl.DataFrame,
    pairs: pl.DataFrame,
    cut: dt.date,
    n_weeks: int,
    *,
    weekly: bool,
    history_days: int = 364,
) -> tuple[pl.DataFrame, str]:
    """statsforecast AutoETS per pair; returns the weekly forecast and a description.

    ``weekly``: fitted on weekly sums (week ends at the cut), season 52 with at least 104 weeks
    of history, else none. Else fitted on the last ``history_days`` days of daily history,
    season 7, and summed to weeks. Pairs whose history is all zero get 0.
    """
    from statsforecast.models import AutoETS

    first = hist["date"].min()
    assert isinstance(first, dt.date)
    if weekly:
        n_w = ((cut - first).days + 1) // 7
        start = cut - dt.timedelta(days=7 * n_w - 1)
        mat = _dense(hist, pairs, start, cut).reshape(pairs.height, n_w, 7).sum(axis=2)
        season, h = (52 if n_w >= 104 else 1), n_weeks
    else:
        start = max(first, cut - dt.timedelta(days=history_days - 1))
        mat = _dense(hist, pairs, start, cut)
        season, h = 7, 7 * n_weeks
    out = np.zeros((pairs.height, h))
    for i in range(pairs.height):
        y = mat[i]
        if not y.any():
            continue
        try:
            out[i] = AutoETS(season_length=season).fit(y).predict(h)["mean"]
        except Exception as exc:
            logging.getLogger(__name__).debug("AutoETS failed on pair %d: %s", i, exc)
            out[i] = y[-season * 4 :].mean() if season > 1 else y[-4:].mean()
    out = np.clip(out, 0, None)
    if not weekly:
        out = out.reshape(pairs.height, n_weeks, 7).sum(axis=2)
    frame = _weeks(pairs, n_weeks).with_columns(pl.Series("mean", out.ravel()))
    desc = f"AutoETS, {'weekly' if weekly else 'daily'} season {season}"
    return frame, desc


def score(fc: pl.DataFrame, truth: pl.DataFrame) -> dict[str, float]:
    """WAPE of holdout totals per store x SKU, total bias, weekly WAPE and p10-p90 coverage.

    ``fc``: ``store_id, sku, week, mean`` (+ optional ``p10, p90``) over the pair-week grid of
    ``truth`` (``store_id, sku, week, actual``); missing forecasts count as 0.
    """
    j = truth.join(fc, on=[*KEYS, "week"], how="left").with_columns(pl.col("mean").fill_null(0.0))
    tot = j.group_by(KEYS).agg(pl.col("mean").sum(), pl.col("actual").sum())
    a = float(tot["actual"].sum())
    res = {
        "wape": float((tot["mean"] - tot["actual"]).abs().sum()) / a if a else float("nan"),
        "bias": float(tot["mean"].sum()) / a - 1.0 if a else float("nan"),
        "weekly_wape": float((j["mean"] - j["actual"]).abs().sum()) / a if a else float("nan"),
        "forecast_total": float(tot["mean"].sum()),
        "actual_total": a,
    }
    if "frac_in" in j.columns and bool((j["frac_in"] < 1.0).any()):
        # In-stock days only: the week's forecast pro rata to its in-stock days.
        a_in = float(j["actual_in"].sum())
        err = (j["mean"] * j["frac_in"] - j["actual_in"]).abs().sum()
        res["wape_in_stock"] = float(err) / a_in if a_in else float("nan")
    if "p10" in j.columns and "p90" in j.columns:
        has = j.filter(pl.col("p10").is_not_null())
        inside = (has["actual"] >= has["p10"]) & (has["actual"] <= has["p90"])
        res["coverage"] = float(inside.mean()) if has.height else float("nan")  # type: ignore[arg-type]
    return res
