"""Expected demand per store x SKU from a pooled, censoring-aware multiplicative model."""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import numpy.typing as npt
import polars as pl

from stocktailor.censoring.anchors import KEYS
from stocktailor.censoring.rates import expected_demand_given_at_least
from stocktailor.censoring.stock import first_snapshots, stock_events
from stocktailor.contract import Tables

__all__ = ["pooled_expected_demand"]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
_KEYS = KEYS


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
    grid, cens = _pair_week_grid(pairs, sales_days, out_days, as_of, start)
    m, y, info, days = _fit_effects(grid, cens, n_iter)
    pid = grid["pid"].to_numpy().astype(np.int64)
    p = pairs.height
    y_p = np.bincount(pid, weights=y, minlength=p).astype(np.float64)
    m_p = np.bincount(pid, weights=info * m, minlength=p).astype(np.float64)
    tot_p = np.bincount(pid, weights=days * m, minlength=p).astype(np.float64)
    days_p = np.bincount(pid, weights=days, minlength=p).astype(np.float64)
    tot_p, inv_kappa = _shrink_pairs(y_p, m_p, tot_p)
    logger.debug("pooled_expected_demand: %d pairs, pair-effect 1/kappa %.4f", p, inv_kappa)
    sold = np.bincount(pid, weights=grid["sold"].to_numpy(), minlength=p)
    return pairs.select(*_KEYS).with_columns(
        pl.Series("units", np.rint(sold).astype(np.int64)),
        pl.Series("days", np.rint(days_p).astype(np.int64)),
        pl.Series("expected", tot_p),
        pl.Series("rate", tot_p / np.maximum(days_p, 1.0)),
    )


def _pair_week_grid(
    pairs: pl.DataFrame,
    sales_days: pl.DataFrame,
    out_days: pl.DataFrame,
    as_of: dt.date,
    start: dt.date,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Pair x week cells (weeks end on ``as_of``) with their tallies, and the censored days.

    Returns ``grid`` (``pid, week, cid, days, u, sold, n_cens, n_out`` + the factor columns)
    and ``cens`` (``cid, units`` of every sell-out day).
    """
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
    return grid, cens


def _fit_effects(
    grid: pl.DataFrame, cens: pl.DataFrame, n_iter: int
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """EM over the multiplicative effects of :data:`_POOLED_FACTORS`.

    Returns the fitted daily rate ``m`` of each cell, its imputed demand ``y`` (units), the
    informative days ``info`` and the tracked days ``days``.
    """
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
    return m, imputed(m), info, days


def _shrink_pairs(y_p: FloatArray, m_p: FloatArray, tot_p: FloatArray) -> tuple[FloatArray, float]:
    """Empirical Bayes pair effect: ratio ~ Gamma(kappa, kappa); E[M (r - 1)^2 - 1] = M / kappa.

    ``y_p`` imputed demand and ``m_p`` pooled expectation over informative days, ``tot_p``
    pooled expectation over all tracked days (units); returns ``tot_p`` shrunk toward each
    pair's own ratio and ``1 / kappa`` (0: no excess dispersion, the pooled estimate).
    """
    ok = m_p > 1.0
    excess = float(np.sum(m_p[ok] * (y_p[ok] / m_p[ok] - 1.0) ** 2 - 1.0))
    inv_kappa = max(excess / max(float(np.sum(m_p[ok])), 1e-12), 0.0)
    if inv_kappa > 0:
        kappa = 1.0 / inv_kappa
        tot_p = tot_p * (y_p + kappa) / (m_p + kappa)
    return tot_p, inv_kappa
