"""Feature rows of the global demand model: the origin state of a series, and the signals.

A training or prediction row is (store x style series, origin week ``o``, target week ``w``,
horizon ``h = w - o``). Origin features describe the series from the weeks before ``o`` only
(lags, rolling means, the series' *base* level shrunk toward its cluster, the style's
network momentum and lifecycle slope); signal features describe the target week (weather,
events, trends, economy, calendar, store and product attributes, price).
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from stocktailor.censoring import with_cluster_id
from stocktailor.demand.history import SS, DemandHistory
from stocktailor.signals import build_features

__all__ = [
    "ORIGIN_COLUMNS",
    "calendar_features",
    "origin_features",
    "origin_now",
    "price_features",
    "signal_features",
]

ORIGIN_COLUMNS = (
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
)


def _series_state(
    g: pl.DataFrame, clusters: pl.DataFrame | None, prior_weeks: float
) -> pl.DataFrame:
    """Lags, rolling means and the base level of each series at each origin week."""
    d = pl.col("demand")
    g = g.with_columns(
        d.shift(1).over(SS).alias("d_l1"),
        d.shift(2).over(SS).alias("d_l2"),
        d.shift(1).rolling_mean(4, min_samples=1).over(SS).alias("d_m4"),
        d.shift(1).rolling_sum(4, min_samples=1).over(SS).alias("_s4"),
        d.shift(1).rolling_mean(12, min_samples=1).over(SS).alias("d_m12"),
        d.shift(1).ewm_mean(half_life=2.0, ignore_nulls=True).over(SS).alias("d_ewm"),
        pl.col("week").cum_count().over(SS).alias("_n"),
        pl.col("in_stock_share").shift(1).over(SS).alias("instock_l1"),
    )
    g = g.with_columns((pl.col("_n") - 1).clip(upper_bound=4).cast(pl.Float64).alias("_n4"))
    # Cluster (or network) mean per store-week of the style, and store level.
    g = with_cluster_id(g, clusters)
    g = g.with_columns(
        pl.col("d_m4").mean().over(["cluster_id", "style", "week"]).alias("grp_m4"),
    )
    lvl = (
        g.filter(pl.col("d_m4").is_not_null())
        .group_by("store_id")
        .agg(((pl.col("d_m4").sum() + 1.0) / (pl.col("grp_m4").sum() + 1.0)).alias("store_lvl"))
    )
    g = g.join(lvl, on="store_id", how="left").with_columns(pl.col("store_lvl").fill_null(1.0))
    prior = pl.col("grp_m4").fill_null(0.0) * pl.col("store_lvl")
    return g.with_columns(
        (
            (pl.col("_s4").fill_null(0.0) + prior_weeks * prior) / (pl.col("_n4") + prior_weeks)
        ).alias("base")
    )


def _style_momentum(g: pl.DataFrame) -> pl.DataFrame:
    """Network demand of each style by week with its momentum (``style_slope``, ``style_rel``)
    and lifecycle slope (``life_slope``: OLS slope of log demand over the 6 weeks before)."""
    d = pl.col("demand")
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
    ly = (pl.col("_net") + 1.0).log().shift(1)
    tt = pl.col("week").cast(pl.Float64).shift(1)
    win = 6

    def roll(e: pl.Expr) -> pl.Expr:
        return e.rolling_sum(win, min_samples=3).over("style")

    net = (
        net.with_columns(ly.over("style").alias("_y"), tt.over("style").alias("_t"))
        .with_columns(
            roll(pl.col("_y")).alias("_sy"),
            roll(pl.col("_t")).alias("_st"),
            roll(pl.col("_t") * pl.col("_y")).alias("_sty"),
            roll(pl.col("_t") ** 2).alias("_stt"),
            roll(pl.col("_t").is_not_null().cast(pl.Int32)).alias("_k"),
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
    return net.select("style", "week", "style_slope", "style_rel", "life_slope")


def origin_features(
    grid: pl.DataFrame, clusters: pl.DataFrame | None, prior_weeks: float
) -> pl.DataFrame:
    """Per (store, style, week o): features from weeks < o (the origin state).

    Parameters
    ----------
    grid
        ``store_id, style, week, demand, in_stock_share`` (units per week).
    clusters
        Optional ``store_id, cluster_id``: a series' base is shrunk toward its cluster.
    prior_weeks
        Weight of the cluster level in a series' base, weeks.

    Returns
    -------
    pl.DataFrame
        :data:`ORIGIN_COLUMNS`.
    """
    g = _series_state(grid.sort([*SS, "week"]), clusters, prior_weeks)
    g = g.join(_style_momentum(g), on=["style", "week"])
    g = g.with_columns(
        (pl.col("d_l1") / (pl.col("base") + 1e-3)).alias("r_l1"),
        (pl.col("d_m12") / (pl.col("base") + 1e-3)).alias("r_m12"),
        (pl.col("d_ewm") / (pl.col("base") + 1e-3)).alias("r_ewm"),
    )
    return g.select(ORIGIN_COLUMNS)


def origin_now(
    grid: pl.DataFrame, carried: pl.DataFrame, clusters: pl.DataFrame | None, prior_weeks: float
) -> pl.DataFrame:
    """The origin state one week past the history (origin week 0, for prediction)."""
    ext = pl.concat(
        [
            grid,
            carried.select(
                *SS,
                pl.lit(0, pl.Int32).alias("week"),
                pl.lit(0.0).alias("demand"),
                pl.lit(0.0).alias("units"),
                pl.lit(1.0).alias("in_stock_share"),
            ),
        ],
        how="diagonal",
    ).select(*SS, "week", "demand", "units", "in_stock_share")
    return origin_features(ext, clusters, prior_weeks).filter(pl.col("week") == 0)


def signal_features(
    rows: pl.DataFrame, hist: DemandHistory, use: frozenset[str], trend_lead_days: int
) -> pl.DataFrame:
    """Join the signal groups ``use`` onto ``rows`` (``store_id, style, origin, week``), plus
    the trend at the origin (``trend_ratio``) and the weather of the week before the origin
    (``temp_anom_origin, temp_origin``)."""
    tables, as_of, sw = hist.tables, hist.as_of, hist.signals
    groups = frozenset(s for s in use if s != "price")
    rows = build_features(
        tables,
        as_of,
        rows,
        clusters=hist.clusters,
        trend_lead_days=trend_lead_days,
        use=groups,
        weeks=sw,
    )
    if "trends" in use and "trend" in rows.columns:
        # Trend at origin (what the base already contains) vs target week.
        ow = build_features(
            tables,
            as_of,
            rows.select(*SS, pl.col("origin").alias("week") - 1).unique(),
            trend_lead_days=trend_lead_days,
            use=frozenset({"trends"}),
            weeks=sw,
        ).rename({"week": "_ow", "trend": "trend_origin"})
        tr_o = (
            rows.select(*SS, "origin")
            .unique()
            .join(ow, left_on=[*SS, pl.col("origin") - 1], right_on=[*SS, "_ow"], how="left")
        )
        rows = rows.join(
            tr_o.select(*SS, "origin", "trend_origin"), on=[*SS, "origin"], how="left"
        ).with_columns(
            (pl.col("trend") / pl.col("trend_origin").fill_null(1.0)).alias("trend_ratio")
        )
    return rows


def weather_origin(rows: pl.DataFrame, hist: DemandHistory) -> pl.DataFrame:
    """Add the weather of the week before each origin (``temp_anom_origin, temp_origin``)."""
    w = rows.select("store_id", "origin").unique()
    ww = build_features(
        hist.tables,
        hist.as_of,
        w.select("store_id", pl.lit("").alias("style"), (pl.col("origin") - 1).alias("week")),
        use=frozenset({"weather"}),
        weeks=hist.signals,
    ).select(
        "store_id",
        (pl.col("week") + 1).alias("origin"),
        pl.col("temp_anom").alias("temp_anom_origin"),
        pl.col("temp_c").alias("temp_origin"),
    )
    return rows.join(ww, on=["store_id", "origin"], how="left")


def price_features(
    rows: pl.DataFrame, hist: DemandHistory, plan: pl.DataFrame | None
) -> pl.DataFrame:
    """Add the target week's ``price_factor`` (history, else ``plan``, else 1.0), the origin's
    (``price_origin``) and ``log_price_ratio``.

    Parameters
    ----------
    plan
        ``style, week, price_factor`` for future weeks (or None: full price).
    """
    p = hist.price
    if plan is not None:
        p = pl.concat([p, plan.select("style", "week", "price_factor")], how="vertical")
        p = p.unique(["style", "week"], keep="last")
    rows = rows.join(p, on=["style", "week"], how="left")
    rows = rows.join(
        hist.price.select(
            "style",
            (pl.col("week") + 1).alias("origin"),
            pl.col("price_factor").alias("price_origin"),
        ),
        on=["style", "origin"],
        how="left",
    )
    # Weeks without sales or a plan sell at full price.
    return rows.with_columns(
        pl.col("price_factor").fill_null(1.0),
        pl.col("price_origin").fill_null(1.0),
    ).with_columns((pl.col("price_factor") / pl.col("price_origin")).log().alias("log_price_ratio"))


def calendar_features(rows: pl.DataFrame, hist: DemandHistory) -> pl.DataFrame:
    """Add ``weeks_to_end`` (to the style's season end; null without one) and ``weeks_live``."""
    rows = rows.join(hist.style_info, on="style", how="left")
    ws = pl.lit(hist.as_of) + pl.duration(days=1 + 7 * pl.col("week").cast(pl.Int64))
    return rows.with_columns(
        ((pl.col("season_end") - ws).dt.total_days() / 7.0).alias("weeks_to_end"),
        (pl.col("week") - pl.col("launch_week")).cast(pl.Float64).alias("weeks_live"),
    ).drop("season_end", "launch_week")


def week_start_expr(as_of: dt.date) -> pl.Expr:
    """``week_start`` of the ``week`` column (the first day of each week)."""
    return pl.lit(as_of) + pl.duration(days=1 + 7 * pl.col("week").cast(pl.Int64))
