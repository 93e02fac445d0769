"""Demand model: censoring-aware store x SKU weekly demand distributions.

A global LightGBM model learns weekly demand at style x store level across the network. Its
target is *demand*, not sales: days on which the store sold out or was out of stock are
imputed with the censored-Poisson rate of :mod:`stocktailor.censoring`. Each series carries
a multiplicative base (its recent censoring-corrected level, shrunk toward the style's level
in the store's cluster), given to LightGBM as an offset (``init_score``), so the trees learn
how weather, events, trends, price, the calendar and the product lifecycle move demand away
from that base. Style forecasts are split to colour and size with the store's colour mix and
size curve (:mod:`stocktailor.sizecurves`), and every week gets a negative-binomial
distribution (``mean``, ``var``, ``p10/p50/p90``).

statsforecast baselines (:func:`baseline_forecast`) are kept as benchmark references.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import stats

from stocktailor.censoring import (
    expected_demand_given_at_least,
    first_snapshots,
    pair_demand_rates,
    pooled_expected_demand,
    stock_events,
    velocity_forecast,
)
from stocktailor.config import DemandConfig, Settings
from stocktailor.contract import FORECAST_SCHEMA, Tables
from stocktailor.signals import build_features, trend_weekly, weather_weekly, week_of
from stocktailor.sizecurves import SizeCurveEstimator
from stocktailor.valuation import prob_at_least  # re-exported: the optimiser's P(D >= k)

__all__ = [
    "FORECAST_COLUMNS",
    "SIGNAL_GROUPS",
    "DemandModel",
    "HistoryTooShortError",
    "baseline_forecast",
    "censored_weekly_demand",
    "forecast",
    "forecast_parts",
    "markdown_price_plan",
    "nb_quantiles",
    "pair_expected_demand",
    "prob_at_least",
    "season_demand",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
Progress = Callable[[int], None]

FORECAST_COLUMNS = ("store_id", "sku", "week_start", "mean", "var", "p10", "p50", "p90")
SIGNAL_GROUPS = frozenset(
    {"weather", "events", "trends", "economy", "calendar", "store", "product", "price"}
)
_FORECAST_SCHEMA = FORECAST_SCHEMA
_SS = ["store_id", "style"]


# ------------------------------------------------------------------------------------------
# distributions


_QK = 48  # largest quantile (units) found by the pmf recurrence in nb_quantiles


class HistoryTooShortError(ValueError):
    """The history holds no training example (too few weeks with sales and stock)."""


def nb_quantiles(mean: npt.ArrayLike, var: npt.ArrayLike, qs: Sequence[float]) -> list[FloatArray]:
    """Quantiles of the negative binomial with the given mean and variance (Poisson if var<=mean).

    Parameters
    ----------
    mean, var
        Mean and variance, units.
    qs
        Probabilities in (0, 1).

    Returns
    -------
    list of numpy.ndarray
        One array of quantiles (units, whole numbers) per probability.
    """
    m = np.maximum(np.asarray(mean, dtype=np.float64), 0.0)
    v = np.maximum(np.asarray(var, dtype=np.float64), m * (1 + 1e-9))
    over = v > m * (1 + 1e-6)
    qs = list(qs)
    out = [np.zeros_like(m) for _ in qs]
    pos = m > 0
    # Small means (most store x SKU weeks): walk the pmf recurrence up to _QK units for all
    # rows at once; the rest (and any row whose upper quantile lies beyond _QK) via scipy.
    small = pos & (m + 8.0 * np.sqrt(v) < _QK)
    if small.any():
        ms, vs, ov = m[small], v[small], over[small]
        qq = np.where(ov, 1.0 - ms / np.where(ov, vs, 1.0), 0.0)  # 1 - p
        n = np.where(ov, ms * (1.0 - qq) / np.maximum(qq, 1e-300), 0.0)
        pk = np.exp(np.where(ov, n * np.log1p(-np.clip(qq, 0.0, 1.0 - 1e-15)), -ms))
        c = np.where(ov, qq, 0.0)  # pmf ratio p(k+1)/p(k) = (k c + d) / (k + 1)
        d = np.where(ov, n * qq, ms)
        cdf = pk.copy()
        res = [np.zeros(ms.shape) for _ in qs]  # quantile = #{k : F(k) < q}
        qmax = max(qs) * (1 - 1e-12)
        for k in range(_QK):
            for r, q in zip(res, qs, strict=True):
                r += cdf < q * (1 - 1e-12)
            if k % 8 == 7 and bool((cdf >= qmax).all()):
                break
            pk *= (k * c + d) / (k + 1)
            cdf += pk
        for o, r in zip(out, res, strict=True):
            o[small] = r
    for o, q in zip(out, qs, strict=True):
        po = pos & ~small & ~over
        if po.any():
            o[po] = stats.poisson.ppf(q, m[po])
        nb = pos & ~small & over
        if nb.any():
            p = m[nb] / v[nb]
            o[nb] = stats.nbinom.ppf(q, m[nb] * p / (1 - p), p)
    return [o.astype(np.float64) for o in out]


def season_demand(forecast: pl.DataFrame, start: dt.date, end: dt.date) -> pl.DataFrame:
    """Demand over ``[start, end]`` per store x SKU from a weekly forecast.

    Weeks overlapping the window partly count pro rata by days; variances add (weeks are
    treated as independent; the forecast's weekly variances already carry the shared level
    uncertainty, see :class:`DemandModel`).

    Returns
    -------
    pl.DataFrame
        ``store_id, sku, mean, var`` (units over the window).
    """
    if end < start:
        msg = f"season_demand: end {end} is before start {start}"
        raise ValueError(msg)
    ws = pl.col("week_start")
    lo = pl.max_horizontal(ws, pl.lit(start))
    hi = pl.min_horizontal(ws + dt.timedelta(days=6), pl.lit(end))
    frac = ((hi - lo).dt.total_days() + 1).clip(lower_bound=0) / 7.0
    return (
        forecast.with_columns(frac.alias("_f"))
        .filter(pl.col("_f") > 0)
        .group_by("store_id", "sku")
        .agg((pl.col("mean") * pl.col("_f")).sum(), (pl.col("var") * pl.col("_f")).sum())
        .sort("store_id", "sku")
    )


# ------------------------------------------------------------------------------------------
# history -> weekly demand


def _weekly_demand(
    tables: Tables,
    as_of: dt.date,
    start: dt.date,
    *,
    clusters: pl.DataFrame | None,
    threshold: int,
    censoring: bool,
    prior_days: float,
    events: tuple[pl.DataFrame, pl.DataFrame],
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Weekly censoring-corrected demand per store x SKU, and per-pair rates.

    Returns ``(weekly, rates, level)``; weekly has ``store_id, sku, week, units, demand,
    cens_days, out_days, in_stock_share`` (sparse: weeks with sales or out-of-stock days);
    level has ``store_id, sku, lam, E7`` (the pair's level relative to the style index and
    its tracked exposure, so ``lam * E7`` is its expected demand over the history).
    """
    sales_days, out_days = events
    rates = pair_demand_rates(
        tables,
        as_of,
        start=start,
        clusters=clusters,
        threshold_units=threshold,
        prior_days=prior_days,
        events=events,
    )
    sku_style = tables.products.select("sku", "style")
    # Pair-week tallies: in-stock units, censored (sell-out) days, out-of-stock days.
    sdw = sales_days.with_columns(week_of("date", as_of).alias("week"))
    pw = sdw.group_by("store_id", "sku", "week").agg(
        pl.col("units").sum().cast(pl.Float64).alias("units"),
        pl.col("units").filter(~pl.col("censored")).sum().cast(pl.Float64).alias("u_in"),
        pl.col("censored").sum().cast(pl.Float64).alias("cens_days"),
    )
    od = (
        out_days.with_columns(week_of("date", as_of).alias("week"))
        .group_by("store_id", "sku", "week")
        .agg(pl.len().cast(pl.Float64).alias("out_days"))
    )
    pw = (
        pw.join(od, on=["store_id", "sku", "week"], how="full", coalesce=True)
        .with_columns(
            [pl.col(c).fill_null(0.0) for c in ("units", "u_in", "cens_days", "out_days")]
        )
        .join(sku_style, on="sku", how="inner")
    )
    # Tracked pairs per style and week (from the pair's first tracked week on).
    w_lo = week_of(pl.lit(start), as_of)
    first = (
        first_snapshots(tables, as_of)
        .join(sku_style, on="sku", how="inner")
        .with_columns(
            pl.max_horizontal(week_of(pl.col("first") + dt.timedelta(days=1), as_of), w_lo).alias(
                "fw"
            )
        )
    )
    tracked = (
        first.group_by("style", "fw")
        .agg(pl.len().alias("n"))
        .sort("style", "fw")
        .with_columns(pl.col("n").cum_sum().over("style").alias("n_pairs"))
    )
    # Style index R(style, week): in-stock units per in-stock pair-day across the network.
    sw = pw.group_by("style", "week").agg(
        pl.col("u_in").sum(), (pl.col("cens_days") + pl.col("out_days")).sum().alias("lost")
    )
    n_w = int(-(start - as_of).days // 7) + 1
    grid = (
        tracked.select("style")
        .unique()
        .join(pl.DataFrame({"week": pl.Series(range(-n_w, 0), dtype=pl.Int32)}), how="cross")
    )
    grid = grid.join_asof(
        tracked.select("style", pl.col("fw").cast(pl.Int32).alias("week"), "n_pairs").sort("week"),
        on="week",
        by="style",
        strategy="backward",
        check_sortedness=False,
    ).with_columns(pl.col("n_pairs").fill_null(0))
    grid = (
        grid.join(sw, on=["style", "week"], how="left")
        .with_columns(pl.col("u_in").fill_null(0.0), pl.col("lost").fill_null(0.0))
        .with_columns(
            (pl.col("n_pairs") * 7.0 - pl.col("lost")).clip(lower_bound=0.0).alias("exp_days")
        )
        .sort("style", "week")
    )
    grid = grid.with_columns(
        pl.when(pl.col("exp_days") >= 7.0)
        .then(pl.col("u_in") / pl.col("exp_days"))
        .otherwise(None)
        .alias("R")
    ).with_columns(pl.col("R").forward_fill().backward_fill().over("style").fill_null(0.0))
    grid = grid.with_columns(
        (pl.col("R") / pl.col("R").mean().over("style").clip(lower_bound=1e-12)).alias("R")
    ).filter(pl.col("n_pairs") > 0)
    r_idx = grid.select("style", "week", "R")
    # Pair level relative to the style index: lam = (U + a prior) / (E + a).
    pw = pw.join(r_idx, on=["style", "week"], how="left").with_columns(pl.col("R").fill_null(1.0))
    # Tracked exposure E7 = 7 x sum of R over the weeks from the pair's first week on: a
    # suffix sum per style looked up at that week (a pairs x weeks join is ~3 GB at scale).
    suffix = (
        r_idx.sort("style", "week", descending=[False, True])
        .with_columns((7.0 * pl.col("R")).cum_sum().over("style").alias("E7"))
        .select("style", pl.col("week").alias("fw"), "E7")
        .sort("fw")
    )
    fr = (
        first.select("store_id", "sku", "style", pl.col("fw").cast(pl.Int32))
        .sort("fw")
        .join_asof(suffix, on="fw", by="style", strategy="forward", check_sortedness=False)
        .drop_nulls("E7")
        .select("store_id", "sku", "E7")
    )
    lost_e = pw.group_by("store_id", "sku").agg(
        ((pl.col("cens_days") + pl.col("out_days")) * pl.col("R")).sum().alias("El"),
        pl.col("u_in").sum().alias("U"),
    )
    lam = (
        fr.join(lost_e, on=["store_id", "sku"], how="left")
        .join(rates.select("store_id", "sku", "rate"), on=["store_id", "sku"], how="left")
        .with_columns(
            pl.col("El").fill_null(0.0), pl.col("U").fill_null(0.0), pl.col("rate").fill_null(0.0)
        )
        .with_columns(
            (
                (pl.col("U") + prior_days * pl.col("rate"))
                / ((pl.col("E7") - pl.col("El")).clip(lower_bound=0.0) + prior_days + 1e-9)
            ).alias("lam")
        )
        .select("store_id", "sku", "lam", "E7")
    )
    sd = (
        sdw.join(sku_style, on="sku", how="inner")
        .join(r_idx, on=["style", "week"], how="left")
        .join(lam.select("store_id", "sku", "lam"), on=["store_id", "sku"], how="left")
    )
    lam_d = (sd["lam"].fill_null(0.0) * sd["R"].fill_null(1.0)).to_numpy()
    y = sd["units"].to_numpy().astype(np.float64)
    cens = sd["censored"].to_numpy()
    dem = y.copy()
    if censoring and cens.any():
        dem[cens] = expected_demand_given_at_least(lam_d[cens], y[cens])
    sd = sd.with_columns(pl.Series("dem", dem))
    wk = sd.group_by("store_id", "sku", "week").agg(pl.col("dem").sum().alias("demand"))
    wk = (
        pw.join(wk, on=["store_id", "sku", "week"], how="left")
        .join(lam.select("store_id", "sku", "lam"), on=["store_id", "sku"], how="left")
        .with_columns(pl.col("demand").fill_null(0.0), pl.col("lam").fill_null(0.0))
    )
    if censoring:
        wk = wk.with_columns(
            (pl.col("demand") + pl.col("out_days") * pl.col("lam") * pl.col("R")).alias("demand")
        )
    else:
        wk = wk.with_columns(pl.col("units").alias("demand"))
    wk = wk.with_columns(
        (1.0 - (pl.col("out_days") + 0.5 * pl.col("cens_days")) / 7.0)
        .clip(0.0, 1.0)
        .alias("in_stock_share")
    ).select(
        "store_id", "sku", "week", "units", "demand", "cens_days", "out_days", "in_stock_share"
    )
    return wk, rates, lam


def censored_weekly_demand(
    tables: Tables,
    as_of: dt.date,
    start: dt.date,
    *,
    clusters: pl.DataFrame | None = None,
    threshold_units: int = 0,
    prior_days: float = 7.0,
) -> pl.DataFrame:
    """Censoring-corrected weekly demand per store x SKU over ``[start, as_of]``.

    Sell-out days count ``E[D | D >= sales]`` and days out of stock the pair's level times the
    style's network in-stock rate of that week (see :class:`DemandModel`). This is realised
    demand, the model's training target; a sell-out week is selected by its own demand spike,
    so against *expected* demand it overshoots: :func:`pair_expected_demand` gives the
    smoothed expected total per pair.

    Returns
    -------
    pl.DataFrame
        ``store_id, sku, week, units, demand, cens_days, out_days, in_stock_share`` (units per
        week; ``week`` relative to ``as_of``, -1 = the last week).
    """
    events = stock_events(tables, as_of, start=start, threshold_units=threshold_units)
    wk, _, _ = _weekly_demand(
        tables,
        as_of,
        start,
        clusters=clusters,
        threshold=threshold_units,
        censoring=True,
        prior_days=prior_days,
        events=events,
    )
    return wk


def pair_expected_demand(
    tables: Tables,
    as_of: dt.date,
    start: dt.date,
    *,
    clusters: pl.DataFrame | None = None,
    threshold_units: int = 0,
    prior_days: float = 7.0,
    method: Literal["pooled", "level"] = "pooled",
) -> pl.DataFrame:
    """Expected demand per store x SKU over ``[start, as_of]``, censoring-aware.

    ``method="pooled"`` (default): :func:`stocktailor.censoring.pooled_expected_demand`, a
    censored Poisson model of SKU x store-style x store-size x store-week x style-week
    effects with an empirical-Bayes pair effect (``clusters`` and ``prior_days`` unused).
    ``method="level"``: the pair's level ``lam`` of the weekly reconstruction (in-stock units
    over in-stock exposure, shrunk toward its cluster's rate with ``prior_days``) times its
    tracked exposure to the style index. Both give the expected demand of the history,
    including the days it was out of stock, without the noise of daily sales.

    Returns
    -------
    pl.DataFrame
        ``store_id, sku, units, expected`` (units over the window; tracked pairs only).
    """
    events = stock_events(tables, as_of, start=start, threshold_units=threshold_units)
    if method == "pooled":
        pooled = pooled_expected_demand(
            tables, as_of, start, threshold_units=threshold_units, events=events
        )
        return pooled.select("store_id", "sku", pl.col("units").cast(pl.Float64), "expected").sort(
            "store_id", "sku"
        )
    if method != "level":
        msg = f"pair_expected_demand: method must be 'pooled' or 'level', got {method!r}"
        raise ValueError(msg)
    wk, _, lam = _weekly_demand(
        tables,
        as_of,
        start,
        clusters=clusters,
        threshold=threshold_units,
        censoring=True,
        prior_days=prior_days,
        events=events,
    )
    units = wk.group_by("store_id", "sku").agg(pl.col("units").sum())
    return (
        lam.join(units, on=["store_id", "sku"], how="left")
        .with_columns(
            pl.col("units").fill_null(0.0),
            (pl.col("lam") * pl.col("E7")).alias("expected"),
        )
        .select("store_id", "sku", "units", "expected")
    )


def _price_weekly(tables: Tables, as_of: dt.date, start: dt.date) -> pl.DataFrame:
    """Units-weighted price paid / full price per style and week (network)."""
    s = tables.sales.filter(
        (pl.col("date") >= start) & (pl.col("date") <= as_of) & (pl.col("units") > 0)
    )
    s = s.join(tables.products.select("sku", "style", "full_price"), on="sku", how="inner")
    return (
        s.with_columns(week_of("date", as_of).alias("week"))
        .group_by("style", "week")
        .agg(
            (
                pl.col("revenue").sum()
                / (pl.col("units") * pl.col("full_price")).sum().clip(lower_bound=1e-9)
            ).alias("price_factor")
        )
        .with_columns(pl.col("price_factor").clip(0.05, 2.0))
    )


def _temperature_curves(
    grid: pl.DataFrame,
    temps: pl.DataFrame,
    *,
    bin_c: float = 2.0,
    smooth_units: float = 30.0,
    n_iter: int = 12,
) -> pl.DataFrame:
    """Demand response to temperature per style, pooled across stores (log multiplier).

    ``demand[s, w] ~ Poisson(exp(a[s] + g[style, bin(temp[s, w])]))`` with a level ``a`` per
    store x style series and a curve ``g`` over ``bin_c``-degree bins, fitted by exact
    coordinate (Poisson) updates; each bin is shrunk toward its neighbours with a weight of
    ``smooth_units`` units, and bins past the temperatures a style was seen at take the value
    of the nearest seen bin (flat: no extrapolation of a slope). Pooling across stores makes a
    warm store's April inform a cool store's June.

    Parameters
    ----------
    grid
        ``store_id, style, week, demand`` (history weeks, units per week).
    temps
        ``store_id, week, temp_c`` (degrees C; history and future weeks).

    Returns
    -------
    pl.DataFrame
        ``style, tbin, g`` (``tbin = floor(temp / bin_c)``; ``g`` centred on the style's
        demand-weighted history).
    """
    schema = {"style": pl.String, "tbin": pl.Int32, "g": pl.Float64}
    tb = (pl.col("temp_c").clip(-20.0, 45.0) / bin_c).floor().cast(pl.Int32).alias("tbin")
    h = (
        grid.select("store_id", "style", "week", "demand")
        .join(temps.select("store_id", "week", "temp_c"), on=["store_id", "week"], how="inner")
        .drop_nulls("temp_c")
        .with_columns(tb)
    )
    h = h.filter(pl.col("demand").sum().over(_SS) > 0)
    if h.is_empty():
        return pl.DataFrame(schema=schema)
    styles = h["style"].unique().sort()
    bins_all = temps.drop_nulls("temp_c").select(tb)["tbin"]
    lo = int(min(int(h["tbin"].min()), int(bins_all.min())))  # type: ignore[arg-type]
    hi = int(max(int(h["tbin"].max()), int(bins_all.max())))  # type: ignore[arg-type]
    nb = hi - lo + 1
    h = h.with_columns(
        pl.col("style").cast(pl.Enum(styles.to_list())).to_physical().cast(pl.Int64).alias("k"),
        pl.struct(_SS).rank("dense").cast(pl.Int64).alias("p"),
    )
    k = h["k"].to_numpy()
    p = h["p"].to_numpy() - 1
    b = h["tbin"].to_numpy().astype(np.int64) - lo
    d = h["demand"].to_numpy().astype(np.float64)
    n_k, n_p = len(styles), int(p.max()) + 1
    kb = k * nb + b
    g = np.zeros(n_k * nb)
    dp = np.bincount(p, d, n_p)
    dkb = np.bincount(kb, d, n_k * nb).reshape(n_k, nb)
    seen = dkb > 0
    for _ in range(n_iter):
        a = np.log(dp / np.maximum(np.bincount(p, np.exp(g[kb]), n_p), 1e-12))
        e = np.bincount(kb, np.exp(a[p]), n_k * nb).reshape(n_k, nb)
        mle = np.where(seen, np.log((dkb + 0.5) / (e + 0.5)), 0.0)
        gg = g.reshape(n_k, nb).copy()
        for _sweep in range(3):
            left = np.concatenate([gg[:, :1], gg[:, :-1]], axis=1)
            right = np.concatenate([gg[:, 1:], gg[:, -1:]], axis=1)
            nbr = 0.5 * (left + right)
            gg = np.where(seen, (dkb * mle + smooth_units * nbr) / (dkb + smooth_units), nbr)
        # Centre on the style's demand-weighted history (the level lives in ``a``).
        gg -= ((gg * dkb).sum(1) / np.maximum(dkb.sum(1), 1e-12))[:, None]
        g = gg.ravel()
    gg = g.reshape(n_k, nb)
    # Flat beyond the seen range of each style.
    idx = np.arange(nb)
    first = np.where(seen.any(1), seen.argmax(1), 0)
    last = np.where(seen.any(1), nb - 1 - seen[:, ::-1].argmax(1), nb - 1)
    cl = np.clip(idx[None, :], first[:, None], last[:, None])
    gg = np.take_along_axis(gg, cl, axis=1)
    return pl.DataFrame(
        {
            "style": np.repeat(styles.to_numpy(), nb),
            "tbin": np.tile(np.arange(lo, hi + 1), n_k).astype(np.int32),
            "g": gg.ravel(),
        },
        schema=schema,
    )


def _price_elasticities(
    tables: Tables,
    as_of: dt.date,
    start: dt.date,
    *,
    prior: float,
    prior_sd: float,
    style_sd: float = 0.4,
) -> tuple[float, pl.DataFrame]:
    """Log-log price elasticity of demand from the history's price variation.

    Daily network units per style are regressed on the log price paid / full price of that
    style-day, with a fixed effect per style x week (level, lifecycle, weather) and per
    weekday: ``log(units + 0.5) = FE + beta * log(price_factor)``, weighted by the style-week's
    mean units. The pooled ``-beta`` is shrunk toward ``prior`` (precision weights, prior sd
    ``prior_sd``); each style's own estimate is shrunk toward the pooled one (sd
    ``style_sd``). Without price variation (no promotion in the history) the prior is returned.

    Returns
    -------
    tuple of (float, pl.DataFrame)
        Pooled elasticity (> 0 means demand rises as price falls) and ``style, elasticity``.
    """
    empty = pl.DataFrame(schema={"style": pl.String, "elasticity": pl.Float64})
    s = tables.sales.filter((pl.col("date") >= start) & (pl.col("date") <= as_of))
    s = s.join(tables.products.select("sku", "style", "full_price"), on="sku", how="inner")
    sd = s.group_by("style", "date").agg(
        pl.col("units").sum().cast(pl.Float64).alias("u"),
        (pl.col("units") * pl.col("full_price")).sum().alias("_full"),
        pl.col("revenue").sum().alias("_rev"),
    )
    sd = sd.with_columns(
        (pl.col("_rev") / pl.col("_full").clip(lower_bound=1e-9))
        .clip(0.05, 2.0)
        .fill_nan(1.0)
        .log()
        .alias("x"),
        (pl.col("u") + 0.5).log().alias("y"),
        week_of("date", as_of).alias("week"),
        pl.col("date").dt.weekday().alias("dow"),
    ).filter(pl.col("u") > 0)
    if sd.height < 20 or float(np.abs(sd["x"].to_numpy()).max()) < 1e-3:
        return prior, empty
    grp = ["style", "week"]
    sd = sd.with_columns(pl.col("u").mean().over(grp).alias("w"))
    dows = [pl.col("dow") == i for i in range(2, 8)]
    sd = sd.with_columns([d.cast(pl.Float64).alias(f"_d{i}") for i, d in enumerate(dows)])
    cols = ["y", "x"] + [f"_d{i}" for i in range(6)]
    dm = sd.with_columns([(pl.col(c) - pl.col(c).mean().over(grp)).alias(c) for c in cols])
    w = dm["w"].to_numpy()
    y = dm["y"].to_numpy()
    xm = dm.select(cols[1:]).to_numpy()
    sw = np.sqrt(w)
    coef, *_ = np.linalg.lstsq(xm * sw[:, None], y * sw, rcond=None)
    resid = y - xm @ coef
    n_grp = sd.select(grp).n_unique()
    dof = max(len(y) - n_grp - xm.shape[1], 1)
    sigma2 = float((w * resid**2).sum() / dof)
    xtx = (xm * w[:, None]).T @ xm
    try:
        var_b = float(np.linalg.inv(xtx)[0, 0] * sigma2)
    except np.linalg.LinAlgError:
        return prior, empty
    el_hat = -float(coef[0])
    p0, p1 = 1.0 / prior_sd**2, 1.0 / max(var_b, 1e-12)
    pooled = float(np.clip((p0 * prior + p1 * el_hat) / (p0 + p1), 0.0, 5.0))
    # Per style: the weekday effects fixed, slope of the residual on x, shrunk to the pooled.
    r = y - xm[:, 1:] @ coef[1:]
    x0 = xm[:, 0]
    per = (
        dm.select("style")
        .with_columns(
            pl.Series("sxy", w * x0 * r), pl.Series("sxx", w * x0 * x0), pl.Series("n", w * 0 + 1)
        )
        .group_by("style")
        .agg(pl.col("sxy").sum(), pl.col("sxx").sum())
        .with_columns((-pl.col("sxy") / pl.col("sxx").clip(lower_bound=1e-12)).alias("e_hat"))
        .with_columns((pl.col("sxx") / sigma2).alias("prec"))
        .with_columns(
            (
                (pl.col("prec") * pl.col("e_hat") + pooled / style_sd**2)
                / (pl.col("prec") + 1.0 / style_sd**2)
            )
            .clip(0.0, 5.0)
            .alias("elasticity")
        )
        .select("style", "elasticity")
        .sort("style")
    )
    logger.info(
        "price elasticity: estimate %.2f (se %.2f), pooled %.2f", el_hat, var_b**0.5, pooled
    )
    return pooled, per


# ------------------------------------------------------------------------------------------
# model


class DemandModel:
    """Global censoring-aware LightGBM demand model with negative-binomial weekly output.

    Parameters
    ----------
    config
        Demand settings (defaults: :class:`~stocktailor.config.DemandConfig`).
    random_state
        Seed of LightGBM's bagging and of training-row subsampling.
    signals
        Signal groups used as features (subset of :data:`SIGNAL_GROUPS`); default all.
        Removing one is how the ablation benchmarks measure what a signal is worth.
    censoring
        Impute demand on censored days (True) or take sales as demand (False).

    Attributes
    ----------
    booster_
        The trained LightGBM booster (style x store x week, Poisson with log-base offset).
    features_
        Feature names, in booster order.
    dispersion_
        Weekly negative-binomial shape term ``phi`` (var = mean + phi * mean^2).
    level_dispersion_
        Shared level uncertainty ``phi_L`` (the season total has var += phi_L * total^2).
    as_of_
        As-of date of the current state (``fit`` or the last ``update``).
    size_curves_
        The fitted :class:`~stocktailor.sizecurves.SizeCurveEstimator`.
    elasticity_, style_elasticity_
        Pooled log-log price elasticity and ``style, elasticity`` (price offset; only with the
        ``price`` signal and ``price_offset``).
    trend_beta_, store_trend_beta_
        Pooled trend slope and ``{store_id: slope}`` (trend offset; only with ``trends``).
    """

    def __init__(
        self,
        config: DemandConfig | None = None,
        *,
        random_state: int = 0,
        signals: frozenset[str] | None = None,
        censoring: bool = True,
    ) -> None:
        self.config = config if config is not None else DemandConfig()
        self.random_state = random_state
        self.signals = SIGNAL_GROUPS if signals is None else frozenset(signals)
        unknown = self.signals - SIGNAL_GROUPS
        if unknown:
            msg = f"DemandModel: unknown signal groups {sorted(unknown)}"
            raise ValueError(msg)
        self.censoring = censoring

    # -- state building ------------------------------------------------------------------

    def _prepare(self, tables: Tables, as_of: dt.date, clusters: pl.DataFrame | None) -> None:
        cfg = self.config
        first_sale = tables.sales["date"].min()
        start = as_of - dt.timedelta(days=cfg.history_days - 1)
        if isinstance(first_sale, dt.date):
            start = max(start, first_sale)
        # Align the window to whole weeks ending at as_of.
        n_weeks = max(1, ((as_of - start).days + 1) // 7)
        start = as_of - dt.timedelta(days=7 * n_weeks - 1)
        self._tables = tables
        self.as_of_ = as_of
        self._clusters = clusters
        events = stock_events(
            tables, as_of, start=start, threshold_units=cfg.censor_threshold_units
        )
        # Daily negative-binomial excess dispersion of SKU sales on in-stock days (moments;
        # zero-sales days enter through the in-stock day count).
        sq = (
            events[0]
            .filter(~pl.col("censored"))
            .group_by("store_id", "sku")
            .agg((pl.col("units").cast(pl.Float64) ** 2).sum().alias("s2"))
        )
        wk, _rates, _ = _weekly_demand(
            tables,
            as_of,
            start,
            clusters=clusters,
            threshold=cfg.censor_threshold_units,
            censoring=self.censoring,
            prior_days=cfg.censor_prior_days,
            events=events,
        )
        # Size curves (from in-stock days) now, so the daily stock events can be freed before
        # the weekly grids are built: at 1,000 stores x 20,000 SKU-sizes they are ~1 GB.
        self.size_curves_ = SizeCurveEstimator(
            prior_strength=cfg.size_prior_strength,
            history_days=(as_of - start).days + 1,
            random_state=self.random_state,
        ).fit(tables, as_of, clusters=clusters, events=events)
        del events
        mom = (
            _rates.join(sq, on=["store_id", "sku"], how="left")
            .filter(pl.col("in_stock_days") >= 7)
            .with_columns(
                (pl.col("in_stock_units") / pl.col("in_stock_days")).alias("m"),
                pl.col("s2").fill_null(0.0),
            )
            .with_columns(
                (
                    (pl.col("s2") - pl.col("in_stock_days") * pl.col("m") ** 2)
                    / (pl.col("in_stock_days") - 1)
                ).alias("v")
            )
        )
        num = float(((mom["v"] - mom["m"]) * mom["in_stock_days"]).sum())
        den = float((mom["m"] ** 2 * mom["in_stock_days"]).sum())
        self._phi_daily = max(num / den, 0.0) if den > 0 else 0.0
        prods = tables.products.select("sku", "style", "color", "size")
        wk = wk.join(prods, on="sku", how="inner")
        self._sku_weekly = wk
        # Carried store x style pairs and the first week each was stocked.
        carried = (
            first_snapshots(tables, as_of)
            .join(prods.select("sku", "style"), on="sku", how="inner")
            .group_by(_SS)
            .agg(pl.col("first").min())
        )
        sold = wk.group_by(_SS).agg(pl.col("week").min().alias("w_sold"))
        carried = carried.join(sold, on=_SS, how="full", coalesce=True)
        carried = carried.with_columns(
            pl.max_horizontal(
                week_of(pl.col("first") + dt.timedelta(days=1), as_of).fill_null(-n_weeks),
                pl.lit(-n_weeks, pl.Int32),
            ).alias("w0")
        ).with_columns(pl.min_horizontal("w0", pl.col("w_sold").fill_null(0)).alias("w0"))
        stores = set(tables.store_ids.to_list())
        carried = carried.filter(pl.col("store_id").is_in(stores)).select(*_SS, "w0").sort(_SS)
        self._carried = carried
        # Full weekly grid of history per carried pair.
        grid = (
            carried.with_columns(pl.int_ranges("w0", 0, dtype=pl.Int32).alias("week"))
            .explode("week")
            .drop_nulls("week")
        )
        st = wk.group_by([*_SS, "week"]).agg(
            pl.col("demand").sum(),
            pl.col("units").sum(),
            (pl.col("in_stock_share") * pl.col("demand")).sum().alias("_isw"),
        )
        grid = (
            grid.join(st, on=[*_SS, "week"], how="left")
            .with_columns(
                pl.col("demand").fill_null(0.0),
                pl.col("units").fill_null(0.0),
            )
            .with_columns(
                (pl.col("_isw") / pl.col("demand").clip(lower_bound=1e-9))
                .fill_null(1.0)
                .alias("in_stock_share")
            )
            .drop("_isw")
        )
        self._grid = grid.sort([*_SS, "week"])
        self._n_weeks = n_weeks
        self._price = _price_weekly(tables, as_of, start)
        # Style info: launch week, season end.
        pr = tables.products
        season_end = (
            pr.group_by("style").agg(pl.col("season_end").max())
            if "season_end" in pr.columns
            else pr.select("style").unique().with_columns(pl.lit(None, pl.Date).alias("season_end"))
        )
        launch = wk.group_by("style").agg(pl.col("week").min().alias("launch_week"))
        self._style_info = season_end.join(launch, on="style", how="left").with_columns(
            pl.col("launch_week").fill_null(0)
        )
        # Origin features: state of each series at the start of each week (from earlier weeks).
        self._origin = self._origin_features(self._grid)
        self._origin_now: pl.DataFrame | None = None
        # Colour mix x size curves for disaggregation.
        self._shares = self._sku_shares(tables, clusters)

    def _origin_features(self, grid: pl.DataFrame) -> pl.DataFrame:
        """Per (store, style, week o): features from weeks < o (the origin state)."""
        cfg = self.config
        g = grid.sort([*_SS, "week"])
        d = pl.col("demand")
        g = g.with_columns(
            d.shift(1).over(_SS).alias("d_l1"),
            d.shift(2).over(_SS).alias("d_l2"),
            d.shift(1).rolling_mean(4, min_samples=1).over(_SS).alias("d_m4"),
            d.shift(1).rolling_sum(4, min_samples=1).over(_SS).alias("_s4"),
            d.shift(1).rolling_mean(12, min_samples=1).over(_SS).alias("d_m12"),
            d.shift(1).ewm_mean(half_life=2.0, ignore_nulls=True).over(_SS).alias("d_ewm"),
            pl.col("week").cum_count().over(_SS).alias("_n"),
            pl.col("in_stock_share").shift(1).over(_SS).alias("instock_l1"),
        )
        g = g.with_columns((pl.col("_n") - 1).clip(upper_bound=4).cast(pl.Float64).alias("_n4"))
        # Cluster (or network) mean per store-week of the style, and store level.
        if self._clusters is not None:
            g = g.join(
                self._clusters.select("store_id", pl.col("cluster_id").cast(pl.String)),
                on="store_id",
                how="left",
            ).with_columns(pl.col("cluster_id").fill_null("_none"))
        else:
            g = g.with_columns(pl.lit("_all").alias("cluster_id"))
        g = g.with_columns(
            pl.col("d_m4").mean().over(["cluster_id", "style", "week"]).alias("grp_m4"),
        )
        lvl = (
            g.filter(pl.col("d_m4").is_not_null())
            .group_by("store_id")
            .agg(((pl.col("d_m4").sum() + 1.0) / (pl.col("grp_m4").sum() + 1.0)).alias("store_lvl"))
        )
        g = g.join(lvl, on="store_id", how="left").with_columns(pl.col("store_lvl").fill_null(1.0))
        a = cfg.base_prior_weeks
        prior = pl.col("grp_m4").fill_null(0.0) * pl.col("store_lvl")
        g = g.with_columns(
            ((pl.col("_s4").fill_null(0.0) + a * prior) / (pl.col("_n4") + a)).alias("base")
        )
        # Style momentum across the network (lifecycle).
        net = g.group_by("style", "week").agg(d.sum().alias("_net")).sort("style", "week")
        net = net.with_columns(
            (
                (pl.col("_net").shift(1) + pl.col("_net").shift(2) + 1.0)
                / (pl.col("_net").shift(3) + pl.col("_net").shift(4) + 1.0)
            )
            .log()
            .over("style")
            .alias("style_slope"),
            (pl.col("_net").shift(1) / pl.col("_net").shift(1).mean().over("style"))
            .over("style")
            .alias("style_rel"),
        )
        # Lifecycle: OLS slope of log network style demand over the 6 weeks before the origin.
        ly = (pl.col("_net") + 1.0).log().shift(1)
        tt = pl.col("week").cast(pl.Float64).shift(1)
        win = 6
        net = (
            net.with_columns(ly.over("style").alias("_y"), tt.over("style").alias("_t"))
            .with_columns(
                pl.col("_y").rolling_sum(win, min_samples=3).over("style").alias("_sy"),
                pl.col("_t").rolling_sum(win, min_samples=3).over("style").alias("_st"),
                (pl.col("_t") * pl.col("_y"))
                .rolling_sum(win, min_samples=3)
                .over("style")
                .alias("_sty"),
                (pl.col("_t") ** 2).rolling_sum(win, min_samples=3).over("style").alias("_stt"),
                pl.col("_t")
                .rolling_sum(win, min_samples=3)
                .over("style")
                .is_not_null()
                .alias("_ok"),
                pl.col("_t")
                .is_not_null()
                .cast(pl.Int32)
                .rolling_sum(win, min_samples=3)
                .over("style")
                .alias("_k"),
            )
            .with_columns(
                (
                    (pl.col("_k") * pl.col("_sty") - pl.col("_st") * pl.col("_sy"))
                    / (pl.col("_k") * pl.col("_stt") - pl.col("_st") ** 2).clip(lower_bound=1e-9)
                )
                .fill_null(0.0)
                .clip(-0.35, 0.15)
                .alias("life_slope")
            )
        )
        g = g.join(
            net.select("style", "week", "style_slope", "style_rel", "life_slope"),
            on=["style", "week"],
        )
        g = g.with_columns(
            (pl.col("d_l1") / (pl.col("base") + 1e-3)).alias("r_l1"),
            (pl.col("d_m12") / (pl.col("base") + 1e-3)).alias("r_m12"),
            (pl.col("d_ewm") / (pl.col("base") + 1e-3)).alias("r_ewm"),
        )
        keep = [
            "store_id",
            "style",
            "week",
            "base",
            "d_l1",
            "d_m4",
            "d_m12",
            "d_ewm",
            "r_l1",
            "r_m12",
            "r_ewm",
            "instock_l1",
            "style_slope",
            "style_rel",
            "_n4",
            "life_slope",
        ]
        # The origin one week past the last history week (for prediction): append week 0.
        out = g.select(keep)
        return out

    def _origin_at(self, week: int) -> pl.DataFrame:
        """Origin features for origin week ``week`` (0 = now), incl. the state after history."""
        if week < 0:
            return self._origin.filter(pl.col("week") == week)
        # The state now is the same for every prediction until the next _prepare: build once.
        if self._origin_now is not None:
            return self._origin_now
        # Build the state at week 0 by appending a placeholder row to each series.
        ext = pl.concat(
            [
                self._grid,
                self._carried.select(
                    *_SS,
                    pl.lit(0, pl.Int32).alias("week"),
                    pl.lit(0.0).alias("demand"),
                    pl.lit(0.0).alias("units"),
                    pl.lit(1.0).alias("in_stock_share"),
                ),
            ],
            how="diagonal",
        ).select(*_SS, "week", "demand", "units", "in_stock_share")
        now = self._origin_features(ext).filter(pl.col("week") == 0)
        self._origin_now = now
        return now

    def _sku_shares(self, tables: Tables, clusters: pl.DataFrame | None) -> pl.DataFrame:
        """Share of each SKU in its store x style demand: colour mix x size curve."""
        cfg = self.config
        pr = tables.products.select("sku", "style", "color", "size")
        if "size_group" in tables.products.columns:
            pr = pr.with_columns(tables.products["size_group"].cast(pl.String))
        else:
            from stocktailor.sizecurves import size_group_of

            pr = pr.with_columns(size_group_of(tables.products).alias("size_group"))
        wk = self._sku_weekly
        col_d = wk.group_by("store_id", "style", "color").agg(pl.col("demand").sum().alias("dc"))
        net_c = wk.group_by("style", "color").agg(pl.col("demand").sum().alias("nc"))
        colors = pr.select("style", "color").unique()
        net_c = colors.join(net_c, on=["style", "color"], how="left").with_columns(
            (
                (pl.col("nc").fill_null(0.0) + 0.5)
                / (pl.col("nc").fill_null(0.0) + 0.5).sum().over("style")
            ).alias("net_share")
        )
        pairs = self._carried.select(_SS)
        sc = pairs.join(net_c.select("style", "color", "net_share"), on="style", how="inner")
        sc = sc.join(col_d, on=["store_id", "style", "color"], how="left").with_columns(
            pl.col("dc").fill_null(0.0)
        )
        a = cfg.color_prior_units
        sc = sc.with_columns(
            ((pl.col("dc") + a * pl.col("net_share")) / (pl.col("dc").sum().over(_SS) + a)).alias(
                "color_share"
            )
        )
        curves = self.size_curves_.store_curves()
        sk = sc.join(pr, on=["style", "color"], how="inner")
        sk = sk.join(curves, on=["store_id", "size_group", "size"], how="left").with_columns(
            pl.col("share").fill_null(pl.col("share").mean().over(["size_group", "size"]))
        )
        sk = sk.with_columns(pl.col("share").fill_null(1.0))
        sk = sk.with_columns(
            (pl.col("share") / pl.col("share").sum().over([*_SS, "color"])).alias("size_share")
        )
        sk = sk.with_columns((pl.col("color_share") * pl.col("size_share")).alias("sku_share"))
        return sk.select("store_id", "style", "sku", "sku_share")

    def _rows(
        self,
        origin_week: int,
        target_weeks: Sequence[int],
        price: pl.DataFrame | None,
        styles: Sequence[str] | None = None,
    ) -> pl.DataFrame:
        """Feature rows for one origin and several target weeks (optionally some styles)."""
        org = self._origin_at(origin_week)
        if styles is not None:
            org = org.filter(pl.col("style").is_in(list(styles)))
        tw = pl.DataFrame({"week": pl.Series(list(target_weeks), dtype=pl.Int32)})
        rows = org.rename({"week": "origin"}).join(tw, how="cross")
        rows = rows.with_columns((pl.col("week") - pl.col("origin")).alias("h"))
        return self._decorate(rows, price)

    def _decorate(self, rows: pl.DataFrame, price: pl.DataFrame | None) -> pl.DataFrame:
        sig = self.signals
        tables, as_of = self._tables, self.as_of_
        groups = frozenset(s for s in sig if s != "price")
        rows = build_features(
            tables,
            as_of,
            rows,
            clusters=self._clusters,
            trend_lead_days=self.config.trend_lead_days,
            use=groups,
        )
        # Trend at origin (what the base already contains) vs target week.
        if "trends" in sig and "trend" in rows.columns:
            tr_o = (
                rows.select(*_SS, "origin")
                .unique()
                .join(
                    build_features(
                        tables,
                        as_of,
                        rows.select(*_SS, pl.col("origin").alias("week") - 1).unique(),
                        trend_lead_days=self.config.trend_lead_days,
                        use=frozenset({"trends"}),
                    ).rename({"week": "_ow", "trend": "trend_origin"}),
                    left_on=[*_SS, pl.col("origin") - 1],
                    right_on=[*_SS, "_ow"],
                    how="left",
                )
            )
            rows = rows.join(
                tr_o.select(*_SS, "origin", "trend_origin"), on=[*_SS, "origin"], how="left"
            ).with_columns(
                (pl.col("trend") / pl.col("trend_origin").fill_null(1.0)).alias("trend_ratio")
            )
            if self.config.trend_offset:
                rows = self._trend_x(rows)
        if "weather" in sig and self.config.temperature_offset:
            rows = self._temp_offset(rows)
        if "weather" in sig and "temp_anom" in rows.columns:
            w = rows.select("store_id", "origin").unique()
            ww = build_features(
                tables,
                as_of,
                w.select(
                    "store_id", pl.lit("").alias("style"), (pl.col("origin") - 1).alias("week")
                ),
                use=frozenset({"weather"}),
            ).select(
                "store_id",
                (pl.col("week") + 1).alias("origin"),
                pl.col("temp_anom").alias("temp_anom_origin"),
                pl.col("temp_c").alias("temp_origin"),
            )
            rows = rows.join(ww, on=["store_id", "origin"], how="left")
        if "price" in sig:
            p = self._price
            if price is not None:
                p = pl.concat([p, price.select("style", "week", "price_factor")], how="vertical")
                p = p.unique(["style", "week"], keep="last")
            rows = rows.join(p, on=["style", "week"], how="left")
            rows = rows.join(
                self._price.select(
                    "style",
                    (pl.col("week") + 1).alias("origin"),
                    pl.col("price_factor").alias("price_origin"),
                ),
                on=["style", "origin"],
                how="left",
            )
            # Weeks without sales or a plan sell at full price.
            rows = rows.with_columns(
                pl.col("price_factor").fill_null(1.0),
                pl.col("price_origin").fill_null(1.0),
            ).with_columns(
                (pl.col("price_factor") / pl.col("price_origin")).log().alias("log_price_ratio")
            )
            if self.config.price_offset:
                rows = self._price_offset(rows)
        if "calendar" in sig:
            info = self._style_info
            rows = rows.join(info, on="style", how="left")
            ws = pl.lit(as_of) + pl.duration(days=1 + 7 * pl.col("week").cast(pl.Int64))
            rows = rows.with_columns(
                ((pl.col("season_end") - ws).dt.total_days() / 7.0).alias("weeks_to_end"),
                (pl.col("week") - pl.col("launch_week")).cast(pl.Float64).alias("weeks_live"),
            ).drop("season_end", "launch_week")
        return rows

    def _price_offset(self, rows: pl.DataFrame) -> pl.DataFrame:
        """Add ``price_off = -e log(price_factor)``: the log demand change at the target week's
        price factor, with the style's elasticity ``e`` (:func:`_price_elasticities`).

        Only the target side: a promotion inside the base weeks is left to the trees (the
        price-ratio features); deflating the base as well cost 0.01-0.02 WAPE on ``default``.
        """
        el = getattr(self, "style_elasticity_", None)
        pooled = float(getattr(self, "elasticity_", self.config.price_elasticity_prior))
        rows = (
            rows.join(el, on="style", how="left")
            if el is not None and el.height
            else rows.with_columns(pl.lit(None, pl.Float64).alias("elasticity"))
        )
        return rows.with_columns(
            (-pl.col("elasticity").fill_null(pooled) * pl.col("price_factor").log())
            .clip(-3.0, 3.0)
            .alias("price_off")
        ).drop("elasticity")

    def _trend_x(self, rows: pl.DataFrame) -> pl.DataFrame:
        """Add ``trend_x``: log of the target week's trend index (read at its lead) over its
        mean over the base weeks (the 4 before the origin); 0 for unmatched series."""
        base_weeks = (
            rows.select(*_SS, "origin")
            .unique()
            .with_columns(
                pl.int_ranges(pl.col("origin") - 4, pl.col("origin"), dtype=pl.Int32).alias("week")
            )
            .explode("week")
        )
        # Only the rows' base weeks: the full store x style x week table is too big at scale.
        tw = trend_weekly(
            self._tables, self.as_of_, lead_days=self.config.trend_lead_days, keys=base_weeks
        )
        if tw.is_empty():
            return rows.with_columns(pl.lit(0.0).alias("trend_x"))
        tb = (
            base_weeks.join(tw, on=[*_SS, "week"], how="inner")
            .group_by([*_SS, "origin"])
            .agg(pl.col("trend").mean().alias("_tb"))
        )
        return (
            rows.join(tb, on=[*_SS, "origin"], how="left")
            .with_columns(
                (pl.col("trend") / pl.col("_tb"))
                .log()
                .fill_null(0.0)
                .clip(-1.0, 1.0)
                .alias("trend_x")
            )
            .drop("_tb")
        )

    def _fit_trend_beta(self, rows: pl.DataFrame, y: FloatArray, offset: FloatArray) -> None:
        """Trend response per store: Poisson slope of demand on ``trend_x`` given the offset.

        Pooled slope by Newton steps, then each store's shrunk toward it (prior sd
        ``trend_beta_sd``); stores without trend variation get the pooled slope.
        """
        cfg = self.config
        x = rows["trend_x"].to_numpy()
        ok = np.abs(x) > 1e-6
        beta = 0.0
        prior_prec = 1.0 / cfg.trend_beta_sd**2
        for _ in range(8):
            mu = np.exp(offset[ok] + beta * x[ok])
            g = float((x[ok] * (y[ok] - mu)).sum()) - prior_prec * (beta - 1.0)
            h = float((x[ok] ** 2 * mu).sum()) + prior_prec
            beta = float(np.clip(beta + g / h, 0.0, 3.0))
        st = rows["store_id"].to_numpy()
        mu = np.exp(offset + beta * x)
        per = (
            pl.DataFrame(
                {
                    "store_id": st[ok],
                    "g": x[ok] * (y[ok] - mu[ok]),
                    "h": x[ok] ** 2 * mu[ok],
                }
            )
            .group_by("store_id")
            .agg(pl.col("g").sum(), pl.col("h").sum())
            .with_columns(
                (pl.lit(beta) + pl.col("g") / (pl.col("h") + prior_prec))
                .clip(0.0, 3.0)
                .alias("beta")
            )
        )
        self.trend_beta_ = beta
        self.store_trend_beta_ = dict(zip(per["store_id"], per["beta"], strict=True))

    def _temp_state(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Weekly temperatures incl. the climate past the forecasts, and the style curves."""
        key = (id(self._grid), self.as_of_)
        cached = getattr(self, "_temp_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1], cached[2]
        temps = weather_weekly(self._tables, self.as_of_, horizon_weeks=60).select(
            "store_id", "week", "temp_c"
        )
        curves = _temperature_curves(self._grid, temps) if temps.height else pl.DataFrame()
        self._temp_cache = (key, temps, curves)
        return temps, curves

    def _temp_offset(self, rows: pl.DataFrame) -> pl.DataFrame:
        """Add ``temp_off``: the style's temperature multiplier of the target week (log) over
        its mean over the base weeks (the 4 weeks before the origin)."""
        temps, curves = self._temp_state()
        if curves.is_empty():
            return rows.with_columns(pl.lit(0.0).alias("temp_off"))
        tb = (pl.col("temp_c").clip(-20.0, 45.0) / 2.0).floor().cast(pl.Int32).alias("tbin")
        tg = temps.with_columns(tb).select("store_id", "week", "tbin")
        keys = rows.select(*_SS, "origin").unique()
        bw = (
            keys.with_columns(
                pl.int_ranges(pl.col("origin") - 4, pl.col("origin"), dtype=pl.Int32).alias("week")
            )
            .explode("week")
            .join(tg, on=["store_id", "week"], how="inner")
            .join(curves, on=["style", "tbin"], how="inner")
            .group_by([*_SS, "origin"])
            .agg(pl.col("g").exp().mean().log().alias("_gb"))
        )
        out = (
            rows.join(tg.rename({"tbin": "_tb"}), on=["store_id", "week"], how="left")
            .join(curves.rename({"tbin": "_tb", "g": "_gt"}), on=["style", "_tb"], how="left")
            .join(bw, on=[*_SS, "origin"], how="left")
        )
        return out.with_columns(
            (pl.col("_gt") - pl.col("_gb")).fill_null(0.0).clip(-1.5, 1.5).alias("temp_off")
        ).drop("_tb", "_gt", "_gb")

    def _offset(self, rows: pl.DataFrame) -> FloatArray:
        """log of the series base, extrapolated along the style's lifecycle slope."""
        base = np.log(np.maximum(rows["base"].to_numpy(), 1e-3))
        for c in ("temp_off", "price_off"):
            if c in rows.columns:
                base = base + rows[c].to_numpy()
        if "trend_x" in rows.columns and hasattr(self, "trend_beta_"):
            b = rows["store_id"].replace_strict(
                self.store_trend_beta_, default=self.trend_beta_, return_dtype=pl.Float64
            )
            base = base + b.to_numpy() * rows["trend_x"].to_numpy()
        if self.config.lifecycle_offset:
            slope = rows["life_slope"].fill_null(0.0).to_numpy() * self.config.lifecycle_damping
            base = base + slope * (rows["h"].to_numpy() + 2.5)
        return np.asarray(base, dtype=np.float64)

    def _feature_names(self, rows: pl.DataFrame) -> list[str]:
        drop = {
            "store_id",
            "style",
            "week",
            "origin",
            "demand",
            "units",
            "in_stock_share",
            "trend_origin",
            "cluster_id",
            "temp_off",
            "price_off",
            "trend_x",
        }
        return [c for c in rows.columns if c not in drop and rows[c].dtype.is_numeric()]

    # -- public API ----------------------------------------------------------------------

    def _training_rows(self) -> pl.DataFrame:
        """Sampled (series, origin, target week) training rows with features and target.

        Candidates are every carried series with a positive base at each training origin,
        times the target weeks after it; at most ``max_train_rows`` are drawn uniformly
        *before* features are built, so the cost does not grow with the network (at 1,000
        stores x 20,000 SKU-sizes there are ~30M candidates).
        """
        cfg = self.config
        n_weeks = self._n_weeks
        origins = [o for o in range(-1, -n_weeks, -1) if o > -n_weeks + 1][: cfg.train_origins]
        cands: list[tuple[pl.DataFrame, list[int]]] = []
        for o in origins:
            targets = [t for t in range(o, 0) if t - o < cfg.max_horizon_weeks]
            if targets:
                org = self._origin_at(o).filter(pl.col("base") > 0)
                cands.append((org.rename({"week": "origin"}), targets))
        if not cands:
            msg = (
                f"DemandModel.fit: sales history before {self.as_of_} is too short "
                f"({n_weeks} weeks); need at least 3 weeks"
            )
            raise HistoryTooShortError(msg)
        sizes = np.array([org.height * len(tg) for org, tg in cands], dtype=np.int64)
        total = int(sizes.sum())
        rng = np.random.default_rng(self.random_state)
        take = (
            np.arange(total, dtype=np.int64)
            if total <= cfg.max_train_rows
            else np.sort(rng.choice(total, cfg.max_train_rows, replace=False))
        )
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        parts = []
        for i, (org, tg) in enumerate(cands):
            sel = take[(take >= bounds[i]) & (take < bounds[i + 1])] - bounds[i]
            if sel.size == 0:
                continue
            weeks = np.asarray(tg, dtype=np.int32)[sel % len(tg)]
            part = org[sel // len(tg)].with_columns(pl.Series("week", weeks, dtype=pl.Int32))
            parts.append(part.with_columns((pl.col("week") - pl.col("origin")).alias("h")))
        rows = pl.concat(parts).join(
            self._grid.select(*_SS, "week", "demand", "in_stock_share"),
            on=[*_SS, "week"],
            how="inner",
            maintain_order="left",
        )
        return self._decorate(rows, None)

    def fit(
        self,
        tables: Tables,
        as_of: dt.date,
        clusters: pl.DataFrame | None = None,
        progress: Progress | None = None,
    ) -> DemandModel:
        """Train on history up to ``as_of`` (inclusive).

        Parameters
        ----------
        tables
            Validated tables.
        as_of
            Last day of history.
        clusters
            Optional ``store_id, cluster_id`` used to pool sparse series.
        progress
            Called with 1 per finished stage (5 stages).
        """
        import lightgbm as lgb

        cfg = self.config
        self._prepare(tables, as_of, clusters)
        if "price" in self.signals and cfg.price_offset:
            self.elasticity_, self.style_elasticity_ = _price_elasticities(
                tables,
                as_of,
                as_of - dt.timedelta(days=7 * self._n_weeks - 1),
                prior=cfg.price_elasticity_prior,
                prior_sd=cfg.price_elasticity_prior_sd,
            )
        if progress is not None:
            progress(1)
        rows = self._training_rows()
        if rows.height < 10:  # LightGBM cannot bag fewer rows (shapes fix)
            msg = f"DemandModel.fit: {rows.height} training rows in the history before {as_of}"
            raise HistoryTooShortError(msg)
        if progress is not None:
            progress(1)
        self.features_ = self._feature_names(rows)
        x = rows.select(self.features_).to_numpy().astype(np.float32)
        y = rows["demand"].to_numpy()
        for attr in ("trend_beta_", "store_trend_beta_"):
            if hasattr(self, attr):
                delattr(self, attr)
        offset = self._offset(rows)
        if "trend_x" in rows.columns:
            self._fit_trend_beta(rows, y, offset)
            offset = self._offset(rows)
        params = {
            "objective": "poisson",
            "learning_rate": cfg.learning_rate,
            "num_leaves": cfg.num_leaves,
            "min_data_in_leaf": cfg.min_data_in_leaf,
            "feature_fraction": 0.9,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "lambda_l2": 1.0,
            "seed": self.random_state,
            "deterministic": True,
            "force_row_wise": True,
            "max_bin": cfg.max_bin,
            "num_threads": cfg.num_threads,
            "verbose": -1,
        }
        ds = lgb.Dataset(x, y, init_score=offset, feature_name=self.features_, free_raw_data=True)
        self.booster_ = lgb.train(params, ds, num_boost_round=cfg.num_boost_round)
        if progress is not None:
            progress(1)
        mu = np.exp(self.booster_.predict(x, raw_score=True) + offset)
        # Dispersion: weekly phi by moments; level phi from 4-week sums per series-origin.
        r2 = (y - mu) ** 2 - mu
        phi = float(max(r2.sum() / max(float((mu**2).sum()), 1e-9), 0.0))
        agg = (
            rows.select(*_SS, "origin", "h")
            .with_columns(pl.Series("y", y), pl.Series("mu", mu))
            .filter(pl.col("h") < 4)
            .group_by([*_SS, "origin"])
            .agg(pl.col("y").sum(), pl.col("mu").sum(), (pl.col("mu") ** 2).sum().alias("mu2"))
        )
        ys, ms, m2 = (agg[c].to_numpy() for c in ("y", "mu", "mu2"))
        lvl = ((ys - ms) ** 2 - ms - phi * m2).sum() / max(float((ms**2).sum()), 1e-9)
        # SKU-level weekly dispersion from daily in-stock sales (7 iid NB days a week).
        phi = max(phi, self._phi_daily / 7.0)
        self.dispersion_ = phi * cfg.dispersion_scale
        self.level_dispersion_ = float(max(lvl, 0.0)) * cfg.dispersion_scale + cfg.level_cv**2
        if progress is not None:
            progress(1)
        logger.info(
            "demand model fitted: %d rows, %d features, phi=%.3f, phi_L=%.3f",
            rows.height,
            len(self.features_),
            self.dispersion_,
            self.level_dispersion_,
        )
        return self

    def for_prediction(self) -> DemandModel:
        """A copy that holds only what :meth:`predict` needs.

        The SKU-level history (weekly SKU demand, training origins) and the sales and
        inventory tables are dropped, so the copy is what a partitioned forecast ships to each
        worker: the booster, the style x store history and the state of every series now, SKU
        shares, prices and the signal tables. It can predict but not :meth:`update` or be
        refitted.
        """
        if not hasattr(self, "booster_"):
            msg = "DemandModel.for_prediction: call fit() first"
            raise ValueError(msg)
        self._origin_at(0)
        slim = copy.copy(self)
        tb = self._tables
        slim._tables = tb.replace(sales=tb.sales.clear(), inventory=tb.inventory.clear())
        slim._sku_weekly = self._sku_weekly.clear()
        slim._origin = self._origin.clear()
        return slim

    def update(
        self,
        tables: Tables,
        as_of: dt.date,
        clusters: pl.DataFrame | None = None,
    ) -> DemandModel:
        """Move to a new as-of date without retraining the booster (features are rebuilt).

        Cheap weekly refresh for backtests: censoring, base levels, shares, signals and the
        temperature curves are recomputed from ``tables`` up to ``as_of``; the trees,
        dispersion, price elasticities and trend slopes are kept.
        """
        if not hasattr(self, "booster_"):
            msg = "DemandModel.update: call fit() first"
            raise ValueError(msg)
        self._prepare(tables, as_of, clusters if clusters is not None else self._clusters)
        return self

    def predict(
        self,
        until: dt.date | None = None,
        progress: Progress | None = None,
        *,
        price_plan: pl.DataFrame | None = None,
        styles: Sequence[str] | None = None,
    ) -> pl.DataFrame:
        """Weekly demand distribution per store x SKU from ``as_of + 1`` on.

        Parameters
        ----------
        until
            Last day forecast (default: the latest ``season_end`` of the products). Each SKU
            is forecast up to its own ``season_end``; a week cut by it counts only its days.
        progress
            Called with 1 when done (prediction is vectorised).
        price_plan
            Optional ``style, week_start, price_factor`` (price paid / full price) for future
            weeks, e.g. planned markdowns; default: full price (1.0).
        styles
            Only these styles (used to partition prediction).

        Returns
        -------
        pl.DataFrame
            ``store_id, sku, week_start, mean, var, p10, p50, p90`` (units per week).
        """
        if not hasattr(self, "booster_"):
            msg = "DemandModel.predict: call fit() first"
            raise ValueError(msg)
        as_of = self.as_of_
        pr = self._tables.products
        ends = (
            pr.select("sku", "style", "season_end")
            if "season_end" in pr.columns
            else (pr.select("sku", "style").with_columns(pl.lit(None, pl.Date).alias("season_end")))
        )
        last = until
        if last is None:
            mx = ends["season_end"].max()
            last = mx if isinstance(mx, dt.date) else as_of + dt.timedelta(days=7 * 8)
        n_w = max(0, math.ceil(((last - as_of).days) / 7))
        if n_w == 0:
            return pl.DataFrame(schema=_FORECAST_SCHEMA)
        plan = None
        if price_plan is not None:
            plan = price_plan.select(
                "style",
                week_of(pl.col("week_start") - dt.timedelta(days=0), as_of).alias("week"),
                pl.col("price_factor").cast(pl.Float64),
            )
        rows = self._rows(0, list(range(n_w)), plan, styles)
        x = rows.select(self.features_).to_numpy().astype(np.float32)
        base = rows["base"].to_numpy()
        mu = np.exp(self.booster_.predict(x, raw_score=True) + self._offset(rows))
        mu = np.where(base > 0, mu, 0.0)
        st = rows.select(*_SS, "week").with_columns(pl.Series("mu", mu))
        sk = st.join(self._shares, on=_SS, how="inner").join(
            ends.select("sku", "season_end"), on="sku", how="left"
        )
        ws = pl.lit(as_of) + pl.duration(days=1 + 7 * pl.col("week").cast(pl.Int64))
        end_day = pl.min_horizontal(pl.col("season_end").fill_null(pl.lit(last)), pl.lit(last))
        sk = (
            sk.with_columns(ws.alias("week_start"))
            .with_columns(
                (((end_day - pl.col("week_start")).dt.total_days() + 1).clip(0, 7) / 7.0).alias(
                    "_f"
                )
            )
            .filter(pl.col("_f") > 0)
        )
        sk = sk.with_columns((pl.col("mu") * pl.col("sku_share") * pl.col("_f")).alias("mean"))
        tot = sk.group_by("store_id", "sku").agg(pl.col("mean").sum().alias("_tot"))
        sk = sk.join(tot, on=["store_id", "sku"], how="left")
        m = sk["mean"].to_numpy()
        var = m + self.dispersion_ * m**2 + self.level_dispersion_ * m * sk["_tot"].to_numpy()
        q = nb_quantiles(m, var, self.config.quantiles)
        out = sk.select("store_id", "sku", "week_start").with_columns(
            pl.Series("mean", m),
            pl.Series("var", var),
            pl.Series("p10", q[0]),
            pl.Series("p50", q[1]),
            pl.Series("p90", q[2]),
        )
        if progress is not None:
            progress(1)
        return out.sort("store_id", "sku", "week_start").select(list(_FORECAST_SCHEMA))


# ------------------------------------------------------------------------------------------
# partitioned forecast


def _predict_part(
    styles: list[str], *, model: DemandModel, until: dt.date | None, price_plan: pl.DataFrame | None
) -> pl.DataFrame:
    return model.predict(until, price_plan=price_plan, styles=styles)


def markdown_price_plan(
    tables: Tables, as_of: dt.date, markdown_calendar: Sequence[tuple[int, float]]
) -> pl.DataFrame:
    """Future price factors per style from a markdown calendar.

    ``markdown_calendar`` is ``(weeks before season end, price factor)`` steps: a week that
    starts within ``n`` weeks of the style's ``season_end`` sells at the factor of the smallest
    such ``n``.

    Returns
    -------
    pl.DataFrame
        ``style, week_start, price_factor``.
    """
    pr = tables.products
    if "season_end" not in pr.columns:
        return pl.DataFrame(
            schema={"style": pl.String, "week_start": pl.Date, "price_factor": pl.Float64}
        )
    se = pr.group_by("style").agg(pl.col("season_end").max()).drop_nulls()
    rows = []
    steps = sorted(markdown_calendar)
    for style, end in se.iter_rows():
        n = max(0, math.ceil(((end - as_of).days) / 7))
        for i in range(n):
            ws = as_of + dt.timedelta(days=1 + 7 * i)
            weeks_before = (end - ws).days / 7.0
            f = 1.0
            for wb, fac in steps:
                if weeks_before < wb:
                    f = fac
                    break
            rows.append((style, ws, float(f)))
    return pl.DataFrame(
        rows,
        schema={"style": pl.String, "week_start": pl.Date, "price_factor": pl.Float64},
        orient="row",
    )


_PART_SHARES = 200_000
"""Store x SKU series per prediction partition at most (about 3M weekly rows, 250 MB)."""


def forecast_parts(
    tables: Tables,
    as_of: dt.date,
    settings: Settings,
    clusters: pl.DataFrame | None = None,
    engine: Any | None = None,
    progress: Progress | None = None,
    *,
    model: DemandModel | None = None,
) -> Iterator[pl.DataFrame]:
    """Fit (or reuse) the demand model, then yield the forecast one style group at a time.

    The model is fitted before this returns; prediction runs through ``engine.imap``
    (in-process by default), so at most a few partitions are held at once: a caller that
    writes each part out (e.g. :func:`stocktailor.workspace.write_parts`) forecasts networks
    whose weekly forecast does not fit in memory. Parts cover disjoint styles and are each
    sorted by ``store_id, sku, week_start``.

    Yields
    ------
    pl.DataFrame
        ``store_id, sku, week_start, mean, var, p10, p50, p90`` (units per week).
    """
    from stocktailor.engine import LocalEngine

    cfg = settings.demand
    if cfg.model == "baseline":
        return iter([baseline_forecast(tables, as_of, method="auto_ets")])
    m = model if model is not None else DemandModel(cfg, random_state=cfg.random_state)
    if model is None or not hasattr(model, "booster_"):
        try:
            m.fit(tables, as_of, clusters=clusters, progress=progress)
        except HistoryTooShortError:
            # Nothing to learn from yet: censoring-aware velocity (shapes fallback).
            return iter([velocity_forecast(tables, as_of, clusters=clusters)])
    elif model.as_of_ != as_of:
        m.update(tables, as_of, clusters=clusters)
    plan = markdown_price_plan(tables, as_of, settings.season.markdown_calendar)
    styles = sorted(tables.products["style"].unique().to_list())
    by_size = math.ceil(m._shares.height / _PART_SHARES)
    n_parts = max(1, min(max(settings.engine.partitions, by_size), len(styles)))
    parts = [styles[i::n_parts] for i in range(n_parts)]
    eng = engine if engine is not None else LocalEngine()
    return eng.imap(
        _predict_part,
        parts,
        progress=progress,
        model=m.for_prediction(),
        until=None,
        price_plan=plan,
    )


def forecast(
    tables: Tables,
    as_of: dt.date,
    settings: Settings,
    clusters: pl.DataFrame | None = None,
    engine: Any | None = None,
    progress: Progress | None = None,
    *,
    model: DemandModel | None = None,
) -> pl.DataFrame:
    """Fit (or reuse) the demand model and forecast every store x SKU to season end.

    Prediction is partitioned by style group through the engine (in-process by default),
    see :func:`forecast_parts`. The markdown calendar of ``settings.season`` gives the future
    price factors.

    Returns
    -------
    pl.DataFrame
        ``store_id, sku, week_start, mean, var, p10, p50, p90`` (units per week).
    """
    parts = forecast_parts(tables, as_of, settings, clusters, engine, progress, model=model)
    res = [r for r in parts if r.height]
    if not res:
        return pl.DataFrame(schema=_FORECAST_SCHEMA)
    return pl.concat(res).sort("store_id", "sku", "week_start")


# ------------------------------------------------------------------------------------------
# statsforecast baselines


BaselineMethod = Literal[
    "seasonal_naive", "auto_ets", "auto_ets_weekly", "croston", "adida", "naive"
]


def baseline_forecast(
    tables: Tables,
    as_of: dt.date,
    method: BaselineMethod = "seasonal_naive",
    *,
    until: dt.date | None = None,
    history_days: int = 84,
    n_jobs: int = 1,
) -> pl.DataFrame:
    """statsforecast reference forecast on daily sales per store x SKU (sales = demand).

    Parameters
    ----------
    method
        ``seasonal_naive`` (weekly season), ``auto_ets`` (AutoETS, weekly season),
        ``auto_ets_weekly`` (AutoETS without season on weekly sums: the same history in
        seconds instead of minutes; each forecast week is cut at the SKU's ``season_end``),
        ``croston`` (CrostonOptimized), ``adida`` (ADIDA), ``naive``.
    until
        Last day (default: the latest ``season_end``).
    history_days
        Days of daily history fitted.

    Returns
    -------
    pl.DataFrame
        The forecast columns; ``var = mean`` (Poisson) and Poisson quantiles.
    """
    from statsforecast import StatsForecast
    from statsforecast.models import ADIDA, AutoETS, CrostonOptimized, Naive, SeasonalNaive

    pr = tables.products
    last = until
    if last is None:
        mx = pr["season_end"].max() if "season_end" in pr.columns else None
        last = mx if isinstance(mx, dt.date) else as_of + dt.timedelta(days=56)
    h = (last - as_of).days
    if h <= 0:
        return pl.DataFrame(schema=_FORECAST_SCHEMA)
    start = as_of - dt.timedelta(days=history_days - 1)
    inv = tables.inventory.filter(pl.col("date") <= as_of).select("store_id", "sku").unique()
    stores = set(tables.store_ids.to_list())
    inv = inv.filter(pl.col("store_id").is_in(stores))
    weekly = method == "auto_ets_weekly"
    n_w = history_days // 7
    step = week_of("date", as_of) if weekly else pl.col("date")
    sales = (
        tables.sales.filter((pl.col("date") >= start) & (pl.col("date") <= as_of))
        .group_by("store_id", "sku", step.alias("t"))
        .agg(pl.col("units").sum().cast(pl.Float64))
    )
    pairs = pl.concat([inv, sales.select("store_id", "sku").unique()]).unique()
    steps = pl.DataFrame(
        {"t": pl.Series(range(-n_w, 0), dtype=pl.Int32)}
        if weekly
        else {"t": pl.date_range(start, as_of, "1d", eager=True)}
    )
    panel = (
        pairs.join(steps, how="cross")
        .join(sales, on=["store_id", "sku", "t"], how="left")
        .with_columns(pl.col("units").fill_null(0.0))
        .with_columns((pl.col("store_id") + "\x1f" + pl.col("sku")).alias("unique_id"))
        .sort("unique_id", "t")
    )
    models: dict[str, Any] = {
        "seasonal_naive": SeasonalNaive(season_length=7),
        "auto_ets": AutoETS(season_length=7),
        "auto_ets_weekly": AutoETS(season_length=1),
        "croston": CrostonOptimized(),
        "adida": ADIDA(),
        "naive": Naive(),
    }
    if method not in models:
        msg = f"baseline_forecast: unknown method {method!r}; expected one of {sorted(models)}"
        raise ValueError(msg)
    mdl = models[method]
    # Weekly steps get dates of an arbitrary Sunday-anchored calendar; only their order counts.
    ds = (
        pl.lit(dt.datetime(2000, 1, 2)) + pl.duration(weeks=pl.col("t") + n_w)
        if weekly
        else pl.col("t")
    )
    df = panel.select(
        "unique_id", ds.cast(pl.Datetime("ns")).alias("ds"), pl.col("units").alias("y")
    ).to_pandas()
    sf = StatsForecast(models=[mdl], freq="W-SUN" if weekly else "D", n_jobs=n_jobs)
    raw: Any = sf.forecast(df=df, h=-(-h // 7) if weekly else h)
    fc = (raw if isinstance(raw, pl.DataFrame) else pl.from_pandas(raw)).rename({str(mdl): "yhat"})
    fc = (
        fc.with_columns(pl.col("yhat").clip(lower_bound=0.0))
        .with_columns(
            pl.col("unique_id").str.split_exact("\x1f", 1).struct.rename_fields(["store_id", "sku"])
        )
        .unnest("unique_id")
    )
    if weekly:
        w = pl.col("ds").rank("dense").over(["store_id", "sku"]).cast(pl.Int64) - 1
        ws = pl.lit(as_of) + pl.duration(days=1 + 7 * w)
        fc = fc.with_columns(ws.alias("week_start"))
        end = pl.min_horizontal(pl.col("season_end").fill_null(pl.lit(last)), pl.lit(last))
        days_in = ((end - pl.col("week_start")).dt.total_days() + 1).clip(0, 7) / 7.0
        if "season_end" not in pr.columns:
            fc = fc.with_columns(pl.lit(None, pl.Date).alias("season_end"))
        else:
            fc = fc.join(pr.select("sku", "season_end"), on="sku", how="left")
        wk = fc.with_columns((pl.col("yhat") * days_in).alias("mean")).filter(pl.col("mean") > 0)
        wk = wk.with_columns(pl.col("mean").alias("var"))
    else:
        fc = fc.with_columns(pl.col("ds").cast(pl.Date).alias("date"))
        if "season_end" in pr.columns:
            fc = fc.join(pr.select("sku", "season_end"), on="sku", how="left").filter(
                pl.col("season_end").is_null() | (pl.col("date") <= pl.col("season_end"))
            )
        fc = fc.with_columns(week_of("date", as_of).alias("week"))
        wk = fc.group_by("store_id", "sku", "week").agg(pl.col("yhat").sum().alias("mean"))
        wk = wk.with_columns(
            (pl.lit(as_of) + pl.duration(days=1 + 7 * pl.col("week").cast(pl.Int64))).alias(
                "week_start"
            ),
            pl.col("mean").alias("var"),
        )
    m = wk["mean"].to_numpy()
    q = nb_quantiles(m, m, (0.1, 0.5, 0.9))
    out = wk.with_columns(pl.Series("p10", q[0]), pl.Series("p50", q[1]), pl.Series("p90", q[2]))
    return out.select(list(_FORECAST_SCHEMA)).sort("store_id", "sku", "week_start")
