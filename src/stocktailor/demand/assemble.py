"""Prediction-side pieces of the selecting forecaster: style-to-SKU split, LightGBM means
with switched effects, dormant-pair caps and the calibrated weekly distribution."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from stocktailor.contract import FORECAST_DECIMALS, FORECAST_SCHEMA
from stocktailor.demand.candidates import YEAR, dense_series, row_nanmean, row_nanquantile
from stocktailor.demand.distribution import nb_quantiles
from stocktailor.demand.features import week_start_expr
from stocktailor.demand.history import SS, DemandHistory

__all__ = ["dormant_caps", "lgbm_skus", "split_styles", "weekly_distribution"]


def split_styles(st: pl.DataFrame, shares: pl.DataFrame) -> pl.DataFrame:
    """Style-week means ``mu`` -> ``store_id, sku, week, mean`` with the SKU shares."""
    return st.join(shares, on=SS, how="inner").select(
        "store_id", "sku", "week", (pl.col("mu") * pl.col("sku_share")).alias("mean")
    )


def lgbm_skus(st: pl.DataFrame, shares: pl.DataFrame, effects: frozenset[str]) -> pl.DataFrame:
    """SKU means of LightGBM style rows (:meth:`DemandModel.predict_style`) with ``effects``."""
    off = st["off_base"].to_numpy().copy()
    for e in effects:
        off = off + st[f"off_{e}"].to_numpy()
    mu = np.where(st["base"].to_numpy() > 0, np.exp(st["raw"].to_numpy() + off), 0.0)
    return split_styles(st.select(*SS, "week").with_columns(pl.Series("mu", mu)), shares)


def dormant_caps(hist: DemandHistory, dormant_weeks: int) -> pl.DataFrame:
    """``store_id, sku, cap``: weekly caps of pairs that stopped selling.

    Two kinds of pair are capped (units per week):

    - *dormant*: it sold in the last year of history but not in the last ``dormant_weeks``
      weeks; the cap is the larger of the 90th percentile and the mean of its weekly
      (censoring-corrected) demand over that year;
    - *no longer ranged*: it sold nothing in the last year of history (or in all of it, when
      shorter) and was out of stock through the last ``dormant_weeks`` weeks; the cap is 0.
      Its censored weeks say only that the shelf was empty: a store that has not stocked nor
      sold a SKU for a year has delisted it (a department a store dropped, a SKU no longer
      sent), and imputing its old rate to every empty week forecasts sales that do not come.
      A pair with stock on the shelf is never capped this way (a style ahead of its season).
    """
    n = min(hist.n_weeks, YEAR)
    prods = hist.tables.products.select("sku", "style")
    start = hist.carried.join(prods, on="style", how="inner").select("store_id", "sku", "w0")
    start = start.filter(pl.col("w0") <= -dormant_weeks)
    if start.is_empty() or hist.n_weeks < dormant_weeks:
        return pl.DataFrame(schema={"store_id": pl.String, "sku": pl.String, "cap": pl.Float64})
    # One (pairs x weeks) matrix at a time, each reduced before the next is built: the three
    # held together set the demand step's peak at 1,000 stores x 20,000 SKU-sizes.
    _, u = dense_series(hist.sku_weekly, ["store_id", "sku"], start, n, value="units")
    recent = np.nansum(u[:, n - dormant_weeks :], axis=1)
    sold = np.nansum(u, axis=1)
    del u
    _, out = dense_series(hist.sku_weekly, ["store_id", "sku"], start, n, value="out_days")
    empty = np.nan_to_num(out[:, n - dormant_weeks :], nan=0.0) >= 7.0
    del out
    # Dormant: it sold before, and not in the last weeks (a pair that never sold is not yet
    # selling, e.g. a season's style ahead of its weather; the model forecasts it).
    dormant = (recent <= 0) & (sold > 0)
    unranged = (sold <= 0) & empty.all(axis=1)
    keys, d = dense_series(hist.sku_weekly, ["store_id", "sku"], start, n)
    with np.errstate(all="ignore"):
        q90 = np.nan_to_num(row_nanquantile(d, 0.9), nan=0.0)
        mean = np.nan_to_num(row_nanmean(d), nan=0.0)
    cap = np.where(unranged, 0.0, np.maximum(q90, mean))
    return keys.with_columns(pl.Series("cap", cap)).filter(pl.Series(dormant | unranged))


def weekly_distribution(
    weekly: pl.DataFrame,
    pairs: pl.DataFrame,
    ends: pl.DataFrame,
    caps: pl.DataFrame,
    as_of: dt.date,
    last: dt.date,
) -> pl.DataFrame:
    """Calibrated weekly means, season-end cut, caps, variance and quantiles.

    Parameters
    ----------
    weekly
        ``store_id, sku, week, mean`` (a candidate's units per week).
    pairs
        ``store_id, sku, bias_factor, level_dispersion, week_dispersion``.
    ends
        ``sku, season_end`` (null: runs to ``last``).
    caps
        ``store_id, sku, cap`` (:func:`dormant_caps`).

    Returns
    -------
    pl.DataFrame
        The forecast columns: ``var`` is the week's share of the horizon total's variance
        (``m + phi_w m^2 + phi_L m M``, ``M`` the pair's horizon total), the quantiles those
        of the week alone (variance ``m + (phi_w + phi_L) m^2``).
    """
    sk = (
        weekly.join(
            pairs.select("store_id", "sku", "bias_factor", "level_dispersion", "week_dispersion"),
            on=["store_id", "sku"],
            how="inner",
        )
        .join(ends, on="sku", how="left")
        .join(caps, on=["store_id", "sku"], how="left")
    )
    end_day = pl.min_horizontal(pl.col("season_end").fill_null(pl.lit(last)), pl.lit(last))
    sk = (
        sk.with_columns(week_start_expr(as_of).alias("week_start"))
        .with_columns(
            (((end_day - pl.col("week_start")).dt.total_days() + 1).clip(0, 7) / 7.0).alias("_f")
        )
        .filter(pl.col("_f") > 0)
        .with_columns(
            pl.min_horizontal(
                pl.col("mean") * pl.col("bias_factor").fill_null(1.0),
                pl.col("cap").fill_null(float("inf")),
            )
            .clip(lower_bound=0.0)
            .mul(pl.col("_f"))
            .alias("mean")
        )
    )
    sk = sk.sort("store_id", "sku", "week_start").with_columns(
        pl.col("mean").round(FORECAST_DECIMALS).alias("mean")
    )
    sk = sk.with_columns(pl.col("mean").sum().over("store_id", "sku").alias("_tot"))
    m = sk["mean"].to_numpy()
    phi_l = sk["level_dispersion"].fill_null(0.25).to_numpy()
    phi_w = sk["week_dispersion"].fill_null(0.0).to_numpy()
    var = m + phi_w * m**2 + phi_l * m * sk["_tot"].to_numpy()
    q = nb_quantiles(m, m + (phi_w + phi_l) * m**2, (0.1, 0.5, 0.9))
    out = sk.select("store_id", "sku", "week_start").with_columns(
        pl.Series("mean", m),
        pl.Series("var", np.round(var, FORECAST_DECIMALS)),
        pl.Series("p10", np.round(q[0], FORECAST_DECIMALS)),
        pl.Series("p50", np.round(q[1], FORECAST_DECIMALS)),
        pl.Series("p90", np.round(q[2], FORECAST_DECIMALS)),
    )
    return out.select(list(FORECAST_SCHEMA))
