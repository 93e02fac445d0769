"""Signals as features: weather, events, trends, economy, calendar, price, store and product.

Every feature is computed per *week* relative to the as-of date: week ``w`` covers the days
``as_of + 1 + 7w .. as_of + 7 + 7w``, so ``w = 0`` is the first forecast week and ``w = -1``
the last week of history. Signals known in advance (weather forecasts, planned events, the
calendar) are used as they are for future weeks; signals only observed up to the as-of date
(trend indices, economy) are read with a lead and carried forward.
"""

from __future__ import annotations

import datetime as dt
import logging
from functools import cached_property

import numpy as np
import numpy.typing as npt
import polars as pl

from stocktailor.contract import Tables

__all__ = [
    "SignalWeeks",
    "build_features",
    "calendar_weekly",
    "climate_normals",
    "economy_weekly",
    "event_weekly",
    "match_trends",
    "trend_weekly",
    "weather_weekly",
    "week_of",
    "week_start",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

EVENT_KINDS_MAX = 6


def week_of(col: str | pl.Expr, as_of: dt.date) -> pl.Expr:
    """Week index of a date column relative to ``as_of`` (0 = first forecast week)."""
    c = pl.col(col) if isinstance(col, str) else col
    return ((c - pl.lit(as_of)).dt.total_days() - 1).floordiv(7).cast(pl.Int32)


def week_start(week: int, as_of: dt.date) -> dt.date:
    """First day of week ``week`` relative to ``as_of``."""
    return as_of + dt.timedelta(days=1 + 7 * week)


def _stores(tables: Tables) -> pl.DataFrame:
    st = tables.stores.filter(pl.col("kind") == "store")
    cols = ["store_id"] + [c for c in ("city", "region") if c in st.columns]
    out = st.select(cols)
    for c in ("city", "region"):
        if c not in out.columns:
            out = out.with_columns(pl.lit(None, pl.String).alias(c))
    return out


def climate_normals(weather: pl.DataFrame, as_of: dt.date, *, min_days: int = 28) -> pl.DataFrame:
    """Seasonal temperature curve per store fitted to the weather table up to ``as_of``.

    ``temp(day) = mean - amp * cos(2 pi (day_of_year - phase) / 365.25)``: one annual harmonic
    per store (its ``mean`` and ``amp``, amp >= 0) with the coldest day ``phase`` shared by the
    network (grid search over the year), fitted by least squares to ``temp_normal_c`` when the
    table has it, else to the actual temperatures. It carries the climate past the last weather
    forecast, so a summer style's rise is visible to the model weeks ahead.

    Parameters
    ----------
    weather
        ``date, store_id, temp_c`` (+ optional ``temp_normal_c``), degrees C.
    as_of
        Last day used (forecast rows after it are used for their normals only).
    min_days
        Stores with fewer days are left out (no extrapolation from too short a record).

    Returns
    -------
    pl.DataFrame
        ``store_id, mean, amp`` (degrees C) and ``phase`` (day of year), one row per store.
    """
    schema = {"store_id": pl.String, "mean": pl.Float64, "amp": pl.Float64, "phase": pl.Float64}
    has_normal = "temp_normal_c" in weather.columns
    w = weather.select(
        "store_id",
        pl.col("date").dt.ordinal_day().cast(pl.Float64).alias("doy"),
        (pl.col("temp_normal_c") if has_normal else pl.col("temp_c")).alias("y"),
        pl.col("date"),
    ).drop_nulls("y")
    if not has_normal:
        w = w.filter(pl.col("date") <= as_of)
    n = w.group_by("store_id").agg(pl.len().alias("n"))
    w = w.join(n.filter(pl.col("n") >= min_days), on="store_id", how="inner").sort("store_id")
    if w.is_empty():
        return pl.DataFrame(schema=schema)
    ids, inv = np.unique(w["store_id"].to_numpy().astype(str), return_inverse=True)
    doy = w["doy"].to_numpy()
    y = w["y"].to_numpy().astype(np.float64)
    k = len(ids)
    cnt = np.bincount(inv, minlength=k).astype(np.float64)
    ybar = np.bincount(inv, y, k) / cnt
    yc = y - ybar[inv]
    best: tuple[float, float, FloatArray, FloatArray] | None = None
    for ph in np.arange(0.0, 365.0, 2.0):
        c = -np.cos(2.0 * np.pi * (doy - ph) / 365.25)
        cbar = np.bincount(inv, c, k) / cnt
        cc = c - cbar[inv]
        sxx = np.bincount(inv, cc * cc, k)
        sxy = np.bincount(inv, cc * yc, k)
        amp = np.maximum(sxy / np.maximum(sxx, 1e-12), 0.0)
        sse = float(((yc - amp[inv] * cc) ** 2).sum())
        if best is None or sse < best[1]:
            best = (float(ph), sse, amp, ybar - amp * cbar)
    assert best is not None
    ph, _, amp, mean = best
    return pl.DataFrame(
        {"store_id": ids.tolist(), "mean": mean, "amp": amp, "phase": np.full(k, ph)},
        schema=schema,
    )


def weather_weekly(
    tables: Tables, as_of: dt.date, *, normal_days: int = 28, horizon_weeks: int = 0
) -> pl.DataFrame:
    """Weekly weather per store: temperature, anomaly vs the store's normal, precipitation.

    The store's normal is the ``temp_normal_c`` column of the weather table when given (the
    climate normal of that day), else its mean temperature over the ``normal_days`` days
    before the week (before ``as_of + 1`` for future weeks). Weeks after the last weather
    row (past the forecasts) up to ``horizon_weeks - 1`` carry the store's seasonal climate
    (:func:`climate_normals`; anomaly 0, history-mean precipitation) when ``horizon_weeks``
    is positive (default 0: no climate weeks; the demand model uses them for its temperature
    offset, not as tree features).

    Returns
    -------
    pl.DataFrame
        ``store_id, week, temp_c, temp_anom, precip_mm, rain_days`` (degrees C, mm per day,
        days with >= 5 mm). Empty when there is no weather table.
    """
    w = tables.weather
    schema = {
        "store_id": pl.String,
        "week": pl.Int32,
        "temp_c": pl.Float64,
        "temp_anom": pl.Float64,
        "precip_mm": pl.Float64,
        "rain_days": pl.Float64,
    }
    if w is None or w.is_empty():
        return pl.DataFrame(schema=schema)
    has_normal = "temp_normal_c" in w.columns
    w = w.select(
        "date",
        "store_id",
        "temp_c",
        "precip_mm",
        (pl.col("temp_normal_c") if has_normal else pl.lit(None, pl.Float64)).alias("_tn"),
    ).sort("store_id", "date")
    weekly = (
        w.with_columns(week_of("date", as_of).alias("week"))
        .group_by("store_id", "week")
        .agg(
            pl.col("temp_c").mean(),
            (pl.col("temp_c") - pl.col("_tn")).mean().alias("_given_anom"),
            pl.col("precip_mm").mean(),
            (pl.col("precip_mm") >= 5.0).sum().cast(pl.Float64).alias("rain_days"),
        )
    )
    actual = w.filter(pl.col("date") <= as_of)
    # Normal: trailing mean of daily actual temps, evaluated at each week's start.
    daily = actual.with_columns(
        pl.col("temp_c")
        .rolling_mean(window_size=normal_days, min_samples=7)
        .over("store_id")
        .alias("normal")
    ).select("store_id", "date", "normal")
    starts = weekly.select(
        "store_id",
        "week",
        pl.min_horizontal(
            pl.lit(as_of) + pl.duration(days=pl.col("week").cast(pl.Int64) * 7),
            pl.lit(as_of),
        ).alias("ref"),
    ).sort("store_id", "ref")
    starts = starts.join_asof(
        daily.sort("store_id", "date"),
        left_on="ref",
        right_on="date",
        by="store_id",
        strategy="backward",
        check_sortedness=False,
    )
    weekly = weekly.join(starts.select("store_id", "week", "normal"), on=["store_id", "week"])
    # A given climate normal (weather.temp_normal_c) wins over the trailing mean.
    weekly = weekly.with_columns(
        pl.coalesce(pl.col("_given_anom"), pl.col("temp_c") - pl.col("normal"))
        .fill_null(0.0)
        .alias("temp_anom")
    ).select(list(schema))
    if horizon_weeks > 0 and tables.weather is not None:
        weekly = pl.concat([weekly, _climate_weeks(tables.weather, weekly, as_of, horizon_weeks)])
    return weekly.cast(schema)  # type: ignore[arg-type]


def _climate_weeks(
    weather: pl.DataFrame, weekly: pl.DataFrame, as_of: dt.date, horizon_weeks: int
) -> pl.DataFrame:
    """Weeks after each store's last weather row up to ``horizon_weeks - 1``: the climate.

    Temperature = the fitted seasonal normal (:func:`climate_normals`) averaged over the week,
    anomaly 0, precipitation and rain days = the store's history means.
    """
    cols = ["store_id", "week", "temp_c", "temp_anom", "precip_mm", "rain_days"]
    norm = climate_normals(weather, as_of)
    if norm.is_empty():
        return weekly.clear().select(cols)
    hist = weekly.filter(pl.col("week") < 0)
    wet = hist.group_by("store_id").agg(pl.col("precip_mm").mean(), pl.col("rain_days").mean())
    last = weekly.group_by("store_id").agg(pl.col("week").max().alias("_last"))
    fut = (
        last.with_columns(
            pl.int_ranges(
                pl.max_horizontal(pl.col("_last") + 1, pl.lit(0)), horizon_weeks, dtype=pl.Int32
            ).alias("week")
        )
        .explode("week")
        .drop_nulls("week")
        .join(norm, on="store_id", how="inner")
        .join(wet, on="store_id", how="left")
    )
    # Mean of the harmonic over the week's 7 days (day of year of each day, 365.25-day year).
    d0 = pl.lit(as_of) + pl.duration(days=1 + 7 * pl.col("week").cast(pl.Int64))
    doy = d0.dt.ordinal_day().cast(pl.Float64)
    ang = [2.0 * np.pi * (doy + i - pl.col("phase")) / 365.25 for i in range(7)]
    cos_m = pl.sum_horizontal([a.cos() for a in ang]) / 7.0
    return fut.select(
        "store_id",
        "week",
        (pl.col("mean") - pl.col("amp") * cos_m).alias("temp_c"),
        pl.lit(0.0).alias("temp_anom"),
        pl.col("precip_mm").fill_null(0.0),
        pl.col("rain_days").fill_null(0.0),
    ).select(cols)


def _expand_scope(frame: pl.DataFrame, stores: pl.DataFrame) -> pl.DataFrame:
    """Map rows with ``scope, scope_id`` to the stores they apply to (adds ``store_id``)."""
    parts = []
    for scope, col in (("store", "store_id"), ("city", "city"), ("region", "region")):
        sub = frame.filter(pl.col("scope") == scope)
        if sub.height:
            parts.append(
                sub.join(
                    stores.select("store_id", pl.col(col).alias("scope_id"))
                    if col != "store_id"
                    else stores.select("store_id", pl.col("store_id").alias("scope_id")),
                    on="scope_id",
                    how="inner",
                )
            )
    sub = frame.filter(pl.col("scope") == "all")
    if sub.height:
        parts.append(sub.join(stores.select("store_id"), how="cross"))
    if not parts:
        return frame.head(0).with_columns(pl.lit(None, pl.String).alias("store_id"))
    cols = [*frame.columns, "store_id"]
    return pl.concat([p.select(cols) for p in parts])


def event_weekly(tables: Tables, as_of: dt.date) -> pl.DataFrame:
    """Event days per store and week, in total and per kind (the most common kinds).

    Returns
    -------
    pl.DataFrame
        ``store_id, week, event_days, ev_<kind>...`` (days of the week an event covers the
        store; overlapping events count separately).
    """
    ev = tables.events
    if ev is None or ev.is_empty():
        return pl.DataFrame(
            schema={"store_id": pl.String, "week": pl.Int32, "event_days": pl.Float64}
        )
    if "kind" not in ev.columns:
        ev = ev.with_columns(pl.lit("event").alias("kind"))
    ev = ev.with_columns(pl.col("kind").fill_null("event"))
    days = ev.select(
        "scope",
        "scope_id",
        "kind",
        pl.date_ranges("start_date", "end_date", interval="1d").alias("date"),
    ).explode("date")
    days = _expand_scope(days, _stores(tables))
    days = days.with_columns(week_of("date", as_of).alias("week"))
    kinds = (
        ev.group_by("kind").len().sort(["len", "kind"], descending=[True, False])["kind"].to_list()
    )[:EVENT_KINDS_MAX]
    out = days.group_by("store_id", "week").agg(
        pl.len().cast(pl.Float64).alias("event_days"),
        *[(pl.col("kind") == k).sum().cast(pl.Float64).alias(f"ev_{_safe(k)}") for k in kinds],
    )
    return out


def _code(s: pl.Series) -> pl.Series:
    """Stable integer code of a string column (rank among its sorted distinct values)."""
    return s.cast(pl.String).rank("dense").cast(pl.Int32)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in str(name).lower())


def match_trends(tables: Tables) -> pl.DataFrame:
    """Which trend series (attribute, value) apply to which style.

    A product matches when its column ``attribute`` equals ``value``; for ``tags`` (a
    ``;``-separated list) when ``value`` is one of its tags.

    Returns
    -------
    pl.DataFrame
        ``attribute, value, style`` (unique).
    """
    tr = tables.trends
    if tr is None or tr.is_empty():
        return pl.DataFrame(schema={"attribute": pl.String, "value": pl.String, "style": pl.String})
    prods = tables.products
    pairs = tr.select("attribute", "value").unique()
    out = []
    for attr in sorted(pairs["attribute"].unique().to_list()):
        if attr not in prods.columns:
            logger.warning("trends: attribute %r is not a products column; ignored", attr)
            continue
        vals = pairs.filter(pl.col("attribute") == attr).select("value")
        col = pl.col(attr).cast(pl.String)
        if attr == "tags":
            pv = prods.select("style", col.str.split(";").alias("value")).explode("value")
            pv = pv.with_columns(pl.col("value").str.strip_chars())
        else:
            pv = prods.select("style", col.alias("value"))
        m = pv.join(vals, on="value", how="inner").select(
            pl.lit(attr).alias("attribute"), "value", "style"
        )
        out.append(m)
    if not out:
        return pl.DataFrame(schema={"attribute": pl.String, "value": pl.String, "style": pl.String})
    return pl.concat(out).unique().sort("attribute", "value", "style")


def trend_weekly(
    tables: Tables,
    as_of: dt.date,
    *,
    lead_days: int = 10,
    keys: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Trend index per store, style and week, read ``lead_days`` earlier (trends lead sales).

    The index of week ``w`` is the mean index over that week's days shifted back by
    ``lead_days``; only values up to ``as_of`` are used, the last known week is carried forward.
    Each series is divided by its own mean up to ``as_of``; several matching series are averaged.

    Parameters
    ----------
    keys
        Optional ``store_id, style, week`` rows to compute (other columns ignored). Without
        it every store x matched style x week to 60 is returned, which at 1,000 stores and a
        network-wide trend is hundreds of millions of rows: pass the rows you need.

    Returns
    -------
    pl.DataFrame
        ``store_id, style, week, trend`` (1.0 = the series' usual level).
    """
    schema = {"store_id": pl.String, "style": pl.String, "week": pl.Int32, "trend": pl.Float64}
    tr = tables.trends
    if tr is None or tr.is_empty():
        return pl.DataFrame(schema=schema)
    links = match_trends(tables)
    if links.is_empty():
        return pl.DataFrame(schema=schema)
    tr = tr.filter(pl.col("date") <= as_of)
    key = ["scope", "scope_id", "attribute", "value"]
    tr = tr.with_columns(
        (pl.col("index") / pl.col("index").mean().over(key)).alias("rel"),
        week_of(pl.col("date") + dt.timedelta(days=lead_days), as_of).alias("week"),
    )
    wk = tr.group_by([*key, "week"]).agg(pl.col("rel").mean())
    # Carry the last known week forward over the forecast horizon (up to 60 weeks).
    last = wk.sort("week").group_by(key).agg(pl.col("rel").last(), pl.col("week").max())
    future = (
        last.with_columns(pl.int_ranges(pl.col("week") + 1, 60, dtype=pl.Int32).alias("week"))
        .explode("week")
        .drop_nulls("week")
    )
    wk = pl.concat([wk, future.select(wk.columns)])
    # Sum and count of matching series per scope x style x week; a store averages over the
    # series of its own scopes (store, city, region, all). Expanding to stores only for the
    # rows asked keeps memory in proportion to them.
    all_scope = pl.when(pl.col("scope") == "all").then(pl.lit("*")).otherwise(pl.col("scope_id"))
    sw = (
        wk.with_columns(all_scope.cast(pl.String).alias("scope_id"))
        .join(links, on=["attribute", "value"], how="inner")
        .group_by("scope", "scope_id", "style", "week")
        .agg(pl.col("rel").sum().alias("_s"), pl.len().alias("_n"))
    )
    st = _stores(tables)
    smap = pl.concat(
        [
            st.select("store_id", pl.lit("store").alias("scope"), pl.col("store_id").alias("sid")),
            st.select("store_id", pl.lit("city").alias("scope"), pl.col("city").alias("sid")),
            st.select("store_id", pl.lit("region").alias("scope"), pl.col("region").alias("sid")),
            st.select("store_id", pl.lit("all").alias("scope"), pl.lit("*").alias("sid")),
        ]
    ).rename({"sid": "scope_id"})
    if keys is None:
        rows = sw.join(smap, on=["scope", "scope_id"], how="inner")
    else:
        rows = (
            keys.select("store_id", "style", pl.col("week").cast(pl.Int32))
            .unique()
            .join(smap, on="store_id", how="inner")
            .join(sw, on=["scope", "scope_id", "style", "week"], how="inner")
        )
    out = rows.group_by("store_id", "style", "week").agg(
        (pl.col("_s").sum() / pl.col("_n").sum()).alias("trend")
    )
    return out.select(list(schema)).cast(schema)  # type: ignore[arg-type]


def economy_weekly(tables: Tables, as_of: dt.date) -> pl.DataFrame:
    """Economy indicators per store and week (the store's region; carried forward).

    Returns
    -------
    pl.DataFrame
        ``store_id, week, econ_<indicator>...`` (indicator units as given).
    """
    ec = tables.economy
    if ec is None or ec.is_empty():
        return pl.DataFrame(schema={"store_id": pl.String, "week": pl.Int32})
    ec = ec.filter(pl.col("date") <= as_of).with_columns(week_of("date", as_of).alias("week"))
    wk = ec.group_by("region", "indicator", "week").agg(pl.col("value").mean())
    inds = sorted(wk["indicator"].unique().to_list())
    wide = wk.pivot(on="indicator", index=["region", "week"], values="value").rename(
        {i: f"econ_{_safe(i)}" for i in inds}
    )
    cols = [f"econ_{_safe(i)}" for i in inds]
    lo_val = wide["week"].min()
    lo = int(lo_val) if isinstance(lo_val, int) else 0
    grid = (
        wide.select("region")
        .unique()
        .join(pl.DataFrame({"week": pl.int_range(lo, 60, dtype=pl.Int32, eager=True)}), how="cross")
    )
    wide = (
        grid.join(wide, on=["region", "week"], how="left")
        .sort("region", "week")
        .with_columns([pl.col(c).forward_fill().over("region") for c in cols])
    )
    st = _stores(tables)
    out = st.select("store_id", "region").join(wide, on="region", how="inner")
    return out.select("store_id", "week", *cols)


def calendar_weekly(weeks: pl.Series, as_of: dt.date) -> pl.DataFrame:
    """Calendar features of weeks: ISO week of year and month of the week's first day."""
    ws = pl.lit(as_of) + pl.duration(days=1 + 7 * pl.col("week").cast(pl.Int64))
    return (
        pl.DataFrame({"week": weeks.cast(pl.Int32)})
        .unique()
        .with_columns(
            ws.dt.week().cast(pl.Int32).alias("week_of_year"),
            ws.dt.month().cast(pl.Int32).alias("month"),
        )
    )


class SignalWeeks:
    """The weekly signal tables of one as-of date, each computed once on first use.

    A forecast joins the same weekly weather, events and economy onto its training rows, its
    prediction rows and their origins; building them once per as-of date and handing this
    object down keeps them consistent and cheap.

    Parameters
    ----------
    tables
        Validated tables (the signal tables are read).
    as_of
        The as-of date that defines week 0.
    """

    def __init__(self, tables: Tables, as_of: dt.date) -> None:
        self.tables = tables
        self.as_of = as_of

    @cached_property
    def weather(self) -> pl.DataFrame:
        """:func:`weather_weekly` (history and forecast weeks)."""
        return weather_weekly(self.tables, self.as_of)

    @cached_property
    def climate(self) -> pl.DataFrame:
        """:func:`weather_weekly` with the seasonal climate carried to week 59."""
        return weather_weekly(self.tables, self.as_of, horizon_weeks=60)

    @cached_property
    def events(self) -> pl.DataFrame:
        """:func:`event_weekly`."""
        return event_weekly(self.tables, self.as_of)

    @cached_property
    def economy(self) -> pl.DataFrame:
        """:func:`economy_weekly`."""
        return economy_weekly(self.tables, self.as_of)

    def trends(self, lead_days: int, keys: pl.DataFrame | None = None) -> pl.DataFrame:
        """:func:`trend_weekly` for the rows ``keys`` (not cached: it depends on them)."""
        return trend_weekly(self.tables, self.as_of, lead_days=lead_days, keys=keys)


def build_features(
    tables: Tables,
    as_of: dt.date,
    keys: pl.DataFrame,
    *,
    clusters: pl.DataFrame | None = None,
    trend_lead_days: int = 10,
    use: frozenset[str] | None = None,
    weeks: SignalWeeks | None = None,
) -> pl.DataFrame:
    """Join every signal onto ``keys`` (``store_id, style, week``), keyed by week.

    Parameters
    ----------
    tables
        Validated tables.
    as_of
        The as-of date that defines week 0.
    keys
        Frame with at least ``store_id, style, week`` (Int32).
    clusters
        Optional ``store_id, cluster_id``.
    trend_lead_days
        Days by which trend indices lead sales.
    use
        Signal groups to include (``weather, events, trends, economy, calendar, store,
        product``); default all.
    weeks
        The weekly signal tables of ``tables`` at ``as_of`` when already built (default:
        built here).

    Returns
    -------
    pl.DataFrame
        ``keys`` with the feature columns added (nulls where a signal is absent).
    """
    groups = (
        use
        if use is not None
        else frozenset({"weather", "events", "trends", "economy", "calendar", "store", "product"})
    )
    sw = weeks if weeks is not None else SignalWeeks(tables, as_of)
    out = keys
    if "weather" in groups:
        out = out.join(sw.weather, on=["store_id", "week"], how="left")
    if "events" in groups:
        ev = sw.events
        out = out.join(ev, on=["store_id", "week"], how="left").with_columns(
            [pl.col(c).fill_null(0.0) for c in ev.columns if c not in ("store_id", "week")]
        )
    if "trends" in groups:
        out = out.join(
            sw.trends(trend_lead_days, keys),
            on=["store_id", "style", "week"],
            how="left",
        ).with_columns(pl.col("trend").fill_null(1.0))
    if "economy" in groups:
        out = out.join(sw.economy, on=["store_id", "week"], how="left")
    if "calendar" in groups:
        out = out.join(calendar_weekly(keys["week"], as_of), on="week", how="left")
    if "store" in groups:
        st = tables.stores.filter(pl.col("kind") == "store")
        num = [
            c
            for c, t in st.schema.items()
            if t.is_numeric() and c not in ("latitude", "longitude", "capacity_units")
        ]
        sf = st.select("store_id", *num).rename({c: f"store_{c}" for c in num})
        if "format" in st.columns:
            sf = sf.with_columns(_code(st["format"]).alias("store_fmt"))
        if clusters is not None:
            sf = (
                sf.join(
                    clusters.select("store_id", pl.col("cluster_id").cast(pl.String).alias("_cl")),
                    on="store_id",
                    how="left",
                )
                .with_columns(pl.col("_cl").rank("dense").cast(pl.Int32).alias("cluster"))
                .drop("_cl")
            )
        out = out.join(sf, on="store_id", how="left")
    if "product" in groups:
        pr = (
            tables.products.group_by("style")
            .agg(
                pl.col("category").first(),
                pl.col("full_price").mean().alias("style_price"),
                pl.len().alias("style_skus"),
            )
            .with_columns(pl.col("category").rank("dense").cast(pl.Int32).alias("category_code"))
            .drop("category")
        )
        out = out.join(pr, on="style", how="left")
    return out
