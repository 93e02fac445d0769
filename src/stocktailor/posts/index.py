"""Matched posts -> a daily index per attribute value x scope, its novelty, and trend rows."""

from __future__ import annotations

import datetime as dt

import polars as pl

from stocktailor.contract.specs import POST_SOURCES

__all__ = ["daily_index", "rising", "trend_rows"]

SERIES = ["scope", "scope_id", "attribute", "value"]


def daily_index(
    posts: pl.DataFrame,
    matches: pl.DataFrame,
    as_of: dt.date,
    *,
    source_weights: tuple[float, ...] = (1.0, 2.0, 1.5, 0.5),
    smoothing_days: int = 7,
    baseline_days: int = 28,
    prior_per_day: float = 1.0,
    min_posts: int = 20,
) -> pl.DataFrame:
    """Daily weighted post volume per scope x attribute value, smoothed, with novelty.

    A post weighs its source's weight times ``1 + log1p(engagement)`` (1 without
    engagement). Every series runs daily from the first post to ``as_of`` (days without
    posts count 0).

    Returns
    -------
    pl.DataFrame
        ``scope, scope_id, attribute, value, date, posts`` (matched posts that day),
        ``volume`` (weighted posts that day), ``index`` (trailing ``smoothing_days`` mean of
        the volume plus ``prior_per_day``: weighted posts per day) and ``novelty`` (the index
        over its own mean in the ``baseline_days`` before the smoothing window; 1 = as usual).
    """
    schema = {
        **dict.fromkeys(SERIES, pl.String),
        "date": pl.Date,
        "posts": pl.Int64,
        "volume": pl.Float64,
        "index": pl.Float64,
        "novelty": pl.Float64,
    }
    posts = posts.filter(pl.col("date") <= as_of)
    if posts.is_empty() or matches.is_empty():
        return pl.DataFrame(schema=schema)
    weight = pl.col("source").replace_strict(
        list(POST_SOURCES),
        list(source_weights),
        default=source_weights[-1],
        return_dtype=pl.Float64,
    )
    if "engagement" in posts.columns:
        weight = weight * (1.0 + pl.col("engagement").cast(pl.Float64).fill_null(0.0).log1p())
    p = posts.with_row_index("row").select(
        pl.col("row").cast(pl.Int64),
        "date",
        "scope",
        pl.col("scope_id").fill_null("all"),
        weight.alias("w"),
    )
    m = matches.join(p, on="row", how="inner")
    daily = m.group_by([*SERIES, "date"]).agg(
        pl.len().cast(pl.Int64).alias("posts"), pl.col("w").sum().alias("volume")
    )
    keep = daily.group_by(SERIES).agg(pl.col("posts").sum()).filter(pl.col("posts") >= min_posts)
    daily = daily.join(keep.select(SERIES), on=SERIES, how="semi")
    if daily.is_empty():
        return pl.DataFrame(schema=schema)
    start = posts["date"].min()
    assert isinstance(start, dt.date)
    days = pl.DataFrame({"date": pl.date_range(start, as_of, "1d", eager=True)})
    grid = keep.select(SERIES).join(days, how="cross")
    full = (
        grid.join(daily, on=[*SERIES, "date"], how="left")
        .with_columns(pl.col("posts").fill_null(0), pl.col("volume").fill_null(0.0))
        .sort([*SERIES, "date"])
    )
    idx = pl.col("volume").rolling_mean(smoothing_days, min_samples=1).over(SERIES) + prior_per_day
    full = full.with_columns(idx.alias("index"))
    base = (
        pl.col("index")
        .shift(smoothing_days)
        .rolling_mean(baseline_days, min_samples=1)
        .over(SERIES)
    )
    full = full.with_columns((pl.col("index") / base).fill_null(1.0).alias("novelty"))
    return full.select(list(schema))


def trend_rows(index: pl.DataFrame, existing: pl.DataFrame | None) -> pl.DataFrame:
    """The index as rows of the ``trends`` table (series the retailer already gives are kept
    as given: derived rows never duplicate a trends key).

    Returns
    -------
    pl.DataFrame
        ``date, scope, scope_id, attribute, value, index``.
    """
    rows = index.select(
        "date",
        "scope",
        pl.when(pl.col("scope") == "all")
        .then(None)
        .otherwise(pl.col("scope_id"))
        .alias("scope_id"),
        "attribute",
        "value",
        "index",
    )
    if existing is not None and not existing.is_empty():
        given = (
            existing.select(SERIES)
            .unique()
            .with_columns(
                pl.when(pl.col("scope") == "all")
                .then(None)
                .otherwise(pl.col("scope_id"))
                .alias("scope_id")
            )
        )
        rows = rows.join(given, on=SERIES, how="anti", nulls_equal=True)
    return rows.sort("date", "scope", "scope_id", "attribute", "value", nulls_last=True)


def rising(index: pl.DataFrame, as_of: dt.date, *, top: int = 10, days: int = 10) -> pl.DataFrame:
    """The series rising most on ``as_of``: index now over the index ``days`` earlier.

    Returns
    -------
    pl.DataFrame
        ``scope, scope_id, attribute, value, index, change, novelty, posts, text`` where
        ``text`` reads like "posts about bright sneaker in Portland up 3.1x in 10 days".
    """
    now = index.filter(pl.col("date") == as_of)
    before = index.filter(pl.col("date") == as_of - dt.timedelta(days=days)).select(
        *SERIES, pl.col("index").alias("before")
    )
    recent = (
        index.filter(pl.col("date") > as_of - dt.timedelta(days=days))
        .group_by(SERIES)
        .agg(pl.col("posts").sum())
    )
    out = (
        now.drop("posts")
        .join(before, on=SERIES, how="left")
        .join(recent, on=SERIES, how="left")
        .with_columns((pl.col("index") / pl.col("before")).fill_null(1.0).alias("change"))
    )
    where = (
        pl.when(pl.col("scope") == "all")
        .then(pl.lit("everywhere"))
        .when(pl.col("scope") == "store")
        .then(pl.lit("at store ") + pl.col("scope_id"))
        .otherwise(pl.lit("in ") + pl.col("scope_id"))
    )
    word = pl.when(pl.col("change") >= 1.0).then(pl.lit("up")).otherwise(pl.lit("down"))
    ratio = pl.when(pl.col("change") >= 1.0).then(pl.col("change")).otherwise(1 / pl.col("change"))
    text = pl.format(
        "posts about {} {} {} {}x in {} days",
        pl.col("value").str.replace_all("-", " "),
        where,
        word,
        ratio.round(1),
        pl.lit(days),
    )
    return (
        out.with_columns(text.alias("text"))
        .sort(["change", *SERIES], descending=[True, False, False, False, False])
        .head(top)
        .select(*SERIES, "index", "change", "novelty", "posts", "text")
    )
