"""Known effects entered as log offsets of the demand model: temperature, price and trends.

Each effect is estimated from the workspace's own history and enters the LightGBM model as a
log offset of the target week against the series' base weeks, so the trees learn only what
the offsets leave: the temperature response per style (pooled across stores, flat beyond the
temperatures seen), the log-log price elasticity (shrunk toward a prior), and the trend slope
per store (shrunk toward the pooled slope).
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import numpy.typing as npt
import polars as pl

from stocktailor.contract import Tables
from stocktailor.demand.history import SS
from stocktailor.signals import SignalWeeks, week_of

__all__ = [
    "TREND_LEADS",
    "estimate_trend_lead",
    "fit_trend_slopes",
    "price_elasticities",
    "price_offset",
    "temperature_curves",
    "temperature_offset",
    "trend_x",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
_SS = SS
WEEKLY_BLOCK = 4
"""Weeks per fixed-effect block of the price elasticity when sales are weekly rows."""


def temperature_curves(
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


def _tbin(bin_c: float = 2.0) -> pl.Expr:
    return (pl.col("temp_c").clip(-20.0, 45.0) / bin_c).floor().cast(pl.Int32).alias("tbin")


def temperature_offset(
    rows: pl.DataFrame, temps: pl.DataFrame, curves: pl.DataFrame
) -> pl.DataFrame:
    """Add ``temp_off``: the style's temperature multiplier of the target week (log) over
    its mean over the base weeks (the 4 weeks before the origin).

    Parameters
    ----------
    rows
        ``store_id, style, origin, week`` (+ anything).
    temps
        ``store_id, week, temp_c`` (history, forecast and climate weeks).
    curves
        :func:`temperature_curves`.
    """
    if curves.is_empty():
        return rows.with_columns(pl.lit(0.0).alias("temp_off"))
    tg = temps.with_columns(_tbin()).select("store_id", "week", "tbin")
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


# ------------------------------------------------------------------------------------------
# price


def _style_day_prices(tables: Tables, as_of: dt.date, start: dt.date) -> pl.DataFrame:
    """Network units and log price paid / full price per style-day (days with sales)."""
    s = tables.sales.filter((pl.col("date") >= start) & (pl.col("date") <= as_of))
    s = s.join(tables.products.select("sku", "style", "full_price"), on="sku", how="inner")
    priced = pl.col("revenue") > 0  # a sale without revenue has an unknown price
    sd = s.group_by("style", "date").agg(
        pl.col("units").sum().cast(pl.Float64).alias("u"),
        (pl.col("units") * pl.col("full_price")).filter(priced).sum().alias("_full"),
        pl.col("revenue").filter(priced).sum().alias("_rev"),
    )
    return sd.with_columns(
        (pl.col("_rev") / pl.col("_full").clip(lower_bound=1e-9))
        .clip(0.05, 2.0)
        .fill_nan(1.0)
        .log()
        .alias("x"),
        (pl.col("u") + 0.5).log().alias("y"),
        week_of("date", as_of).alias("week"),
        pl.col("date").dt.weekday().alias("dow"),
    ).filter((pl.col("u") > 0) & (pl.col("_rev") > 0))


def _per_style_elasticity(
    dm: pl.DataFrame,
    w: FloatArray,
    r: FloatArray,
    x0: FloatArray,
    sigma2: float,
    pooled: float,
    style_sd: float,
) -> pl.DataFrame:
    """Each style's slope of the residual on the log price, shrunk to the pooled one."""
    return (
        dm.select("style")
        .with_columns(pl.Series("sxy", w * x0 * r), pl.Series("sxx", w * x0 * x0))
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


def price_elasticities(
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
    sd = _style_day_prices(tables, as_of, start)
    if sd.height < 20 or float(np.abs(sd["x"].to_numpy()).max()) < 1e-3:
        return prior, empty
    # The fixed effect compares days of one style-week. Weekly sales (one row a week, as
    # chains export them) leave nothing to compare inside a week: the promotion week is then
    # compared with the other weeks of its 4-week block.
    multi = sd.group_by("style", "week").len().select((pl.col("len") > 1).mean()).item()
    sd = sd.with_columns(
        (pl.col("week") if (multi or 0.0) >= 0.5 else pl.col("week") // WEEKLY_BLOCK).alias("_g")
    )
    grp = ["style", "_g"]
    sd = sd.with_columns(pl.col("u").mean().over(grp).alias("w"))
    dows = [pl.col("dow") == i for i in range(2, 8)]
    sd = sd.with_columns([d.cast(pl.Float64).alias(f"_d{i}") for i, d in enumerate(dows)])
    cols = ["y", "x"] + [f"_d{i}" for i in range(6)]
    dm = sd.with_columns([(pl.col(c) - pl.col(c).mean().over(grp)).alias(c) for c in cols])
    # a weekday never sold on (or always alone in its group) has no variation left
    cols = cols[:2] + [c for c in cols[2:] if float(np.abs(dm[c].to_numpy()).max()) > 1e-12]
    w = dm["w"].to_numpy()
    y = dm["y"].to_numpy()
    xm = dm.select(cols[1:]).to_numpy()
    if float(np.abs(xm[:, 0]).max()) < 1e-3:
        return prior, empty
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
    per = _per_style_elasticity(dm, w, r, xm[:, 0], sigma2, pooled, style_sd)
    logger.info(
        "price elasticity: estimate %.2f (se %.2f), pooled %.2f", el_hat, var_b**0.5, pooled
    )
    return pooled, per


def price_offset(
    rows: pl.DataFrame,
    pooled: float,
    per_style: pl.DataFrame | None,
    history_price: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Add ``price_off = -e log(price_factor / base_price)``: the log demand change from the
    series' base weeks (the 4 before the origin) to the target week, with the style's
    elasticity ``e`` (:func:`price_elasticities`).

    The base level already holds the base weeks' price: a style sold at 15 % off all along
    and planned at 15 % off gets no lift (measuring from full price counted its discount
    twice). ``history_price`` is ``style, week, price_factor`` (weeks without a row sold at
    full price); without it the base weeks count as full price.
    """
    rows = (
        rows.join(per_style, on="style", how="left")
        if per_style is not None and per_style.height
        else rows.with_columns(pl.lit(None, pl.Float64).alias("elasticity"))
    )
    if history_price is not None and history_price.height:
        base = (
            rows.select("style", "origin")
            .unique()
            .with_columns(
                pl.int_ranges(pl.col("origin") - 4, pl.col("origin"), dtype=pl.Int32).alias("week")
            )
            .explode("week")
            .join(
                history_price.select("style", "week", "price_factor"),
                on=["style", "week"],
                how="left",
            )
            .group_by("style", "origin")
            .agg(pl.col("price_factor").fill_null(1.0).log().mean().alias("_lpb"))
        )
        rows = rows.join(base, on=["style", "origin"], how="left")
    else:
        rows = rows.with_columns(pl.lit(0.0).alias("_lpb"))
    return rows.with_columns(
        (
            -pl.col("elasticity").fill_null(pooled)
            * (pl.col("price_factor").log() - pl.col("_lpb").fill_null(0.0))
        )
        .clip(-3.0, 3.0)
        .alias("price_off")
    ).drop("elasticity", "_lpb")


# ------------------------------------------------------------------------------------------
# trends


def trend_x(rows: pl.DataFrame, signals: SignalWeeks, lead_days: int) -> pl.DataFrame:
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
    tw = signals.trends(lead_days, base_weeks)
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
            (pl.col("trend") / pl.col("_tb")).log().fill_null(0.0).clip(-1.0, 1.0).alias("trend_x")
        )
        .drop("_tb")
    )


def fit_trend_slopes(
    rows: pl.DataFrame,
    y: FloatArray,
    offset: FloatArray,
    *,
    prior_sd: float,
    prior_mean: float = 1.0,
) -> tuple[float, dict[str, float]]:
    """Trend response per store: Poisson slope of demand on ``trend_x`` given the offset.

    Pooled slope by Newton steps (prior mean ``prior_mean``, sd ``prior_sd``), then each
    store's shrunk toward it (same sd); stores without trend variation get the pooled slope.

    Returns
    -------
    tuple of (float, dict)
        Pooled slope and ``{store_id: slope}``.
    """
    x = rows["trend_x"].to_numpy()
    ok = np.abs(x) > 1e-6
    beta = 0.0
    prior_prec = 1.0 / prior_sd**2
    for _ in range(8):
        mu = np.exp(offset[ok] + beta * x[ok])
        g = float((x[ok] * (y[ok] - mu)).sum()) - prior_prec * (beta - prior_mean)
        h = float((x[ok] ** 2 * mu).sum()) + prior_prec
        beta = float(np.clip(beta + g / h, 0.0, 3.0))
    st = rows["store_id"].to_numpy()
    mu = np.exp(offset + beta * x)
    per = (
        pl.DataFrame({"store_id": st[ok], "g": x[ok] * (y[ok] - mu[ok]), "h": x[ok] ** 2 * mu[ok]})
        .group_by("store_id")
        .agg(pl.col("g").sum(), pl.col("h").sum())
        .with_columns(
            (pl.lit(beta) + pl.col("g") / (pl.col("h") + prior_prec)).clip(0.0, 3.0).alias("beta")
        )
    )
    return beta, dict(zip(per["store_id"], per["beta"], strict=True))


TREND_LEADS = (0, 3, 7, 10, 14, 21, 28)
"""Candidate lags (days) between a trend index and the sales it leads."""


def estimate_trend_lead(
    rows: pl.DataFrame,
    y: FloatArray,
    offset: FloatArray,
    signals: SignalWeeks,
    *,
    leads: tuple[int, ...] = TREND_LEADS,
    prior_sd: float = 0.5,
    min_lr: float = 6.6,
) -> tuple[int | None, float]:
    """The lag (days) by which trend indices lead demand, by likelihood.

    For each lead the training rows get the trend offset ``trend_x`` read at that lead
    (:func:`trend_x`) and a pooled Poisson slope (:func:`fit_trend_slopes`, prior mean 0);
    the lead of the largest log-likelihood gain over no trend is returned when twice that
    gain reaches ``min_lr`` (a likelihood-ratio test at about 1 %), else None: the history
    shows no trend that leads its demand.

    Parameters
    ----------
    rows
        Training rows (``store_id, style, origin, week`` + anything).
    y, offset
        Their demand (units per week) and log offset without any trend term.

    Returns
    -------
    tuple
        The lead in days (or None) and twice the log-likelihood gain at it.
    """
    keys = rows.select(*_SS, "week")
    base = rows.drop("trend", "trend_x", strict=False).select(*_SS, "origin", "week")
    ll0 = float((y * offset - np.exp(offset)).sum())
    best: tuple[int | None, float] = (None, 0.0)
    for lead in leads:
        tw = signals.trends(lead, keys)
        if tw.is_empty():
            return None, 0.0
        r = base.join(tw, on=[*_SS, "week"], how="left", maintain_order="left").with_columns(
            pl.col("trend").fill_null(1.0)
        )
        r = trend_x(r, signals, lead)
        beta, _ = fit_trend_slopes(r, y, offset, prior_sd=prior_sd, prior_mean=0.0)
        eta = offset + beta * r["trend_x"].to_numpy()
        lr = 2.0 * (float((y * eta - np.exp(eta)).sum()) - ll0)
        if lr >= min_lr and lr > best[1]:
            best = (lead, lr)
    logger.info("trend lead: %s days (likelihood ratio %.1f)", best[0], best[1])
    return best
