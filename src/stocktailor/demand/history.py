"""The prepared history of one as-of date: censoring-corrected weekly demand and its grids.

:func:`prepare_history` reads the tables once per as-of date and builds everything the
demand model, the candidates of the selecting forecaster and the size curves need: the sparse
stock events (:func:`stocktailor.censoring.stock_events`), per-pair censored rates, the weekly
censoring-corrected demand per store x SKU, the weekly grid per carried store x style, the
network price paid per style and week, each style's launch week and season end, and the
weekly signal tables (:class:`stocktailor.signals.SignalWeeks`). Weeks are indexed relative
to ``as_of`` (week ``w`` covers ``as_of + 1 + 7w .. as_of + 7 + 7w``; -1 = the last week).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import polars as pl

from stocktailor.censoring import (
    clear_memos as clear_censoring_memos,
)
from stocktailor.censoring import (
    demand_tables,
    expected_demand_given_at_least,
    first_snapshots,
    pair_demand_rates,
    pooled_expected_demand,
    stock_events,
)
from stocktailor.contract import Tables
from stocktailor.signals import SignalWeeks, week_of

__all__ = [
    "SS",
    "DemandHistory",
    "censored_weekly_demand",
    "clear_memos",
    "demand_view",
    "events_until",
    "history_start",
    "pair_expected_demand",
    "prepare_history",
    "price_weekly",
    "with_backcast_snapshots",
]

SS = ["store_id", "style"]
"""The series key of the style-level model."""

Events = tuple[pl.DataFrame, pl.DataFrame]


@dataclass
class DemandHistory:
    """Everything derived from the sales and inventory history up to ``as_of``.

    Attributes
    ----------
    tables
        The tables it was built from.
    as_of
        Last day of history.
    start
        First day of the window (whole weeks ending at ``as_of``).
    n_weeks
        Weeks in the window.
    clusters
        ``store_id, cluster_id`` used to pool sparse series (or None).
    events
        :func:`stock_events` over the window (``None`` once released, see
        :meth:`release_events`: at 1,000 stores x 20,000 SKU-sizes they are ~1 GB).
    rates
        :func:`stocktailor.censoring.pair_demand_rates` per store x SKU.
    sku_weekly
        ``store_id, sku, week, units, demand, cens_days, out_days, in_stock_share, units_in,
        demand_sold, style, color, size`` (sparse: weeks with sales or out-of-stock days;
        units per week).
    phi_daily
        Daily negative-binomial excess dispersion of SKU sales on in-stock days.
    carried
        ``store_id, style, w0``: carried store x style pairs and their first week.
    grid
        ``store_id, style, week, demand, units, in_stock_share``: every week of every
        carried pair from ``w0`` to -1 (units per week).
    price
        ``style, week, price_factor``: network price paid / full price per style-week.
    style_info
        ``style, season_end, launch_week``.
    signals
        The weekly signal tables at ``as_of``.
    """

    tables: Tables
    as_of: dt.date
    start: dt.date
    n_weeks: int
    clusters: pl.DataFrame | None
    events: Events | None
    rates: pl.DataFrame
    sku_weekly: pl.DataFrame
    phi_daily: float
    carried: pl.DataFrame
    grid: pl.DataFrame
    price: pl.DataFrame
    style_info: pl.DataFrame
    signals: SignalWeeks = field(repr=False)

    def release_events(self) -> None:
        """Drop the daily stock events (needed only by the size curves and censoring)."""
        self.events = None

    def last_weeks(self, n: int) -> DemandHistory:
        """The same history cut to its last ``n`` weeks (itself when it is not longer).

        The weekly frames are filtered; censored rates and dispersion keep the whole window.
        """
        if n >= self.n_weeks:
            return self
        keep = pl.col("week") >= -n
        wk = self.sku_weekly.filter(keep)
        launch = wk.group_by("style").agg(pl.col("week").min().alias("launch_week"))
        info = (
            self.style_info.drop("launch_week")
            .join(launch, on="style", how="left")
            .with_columns(pl.col("launch_week").fill_null(0))
            .sort("style")
        )
        return DemandHistory(
            tables=self.tables,
            as_of=self.as_of,
            start=self.as_of - dt.timedelta(days=7 * n - 1),
            n_weeks=n,
            clusters=self.clusters,
            events=self.events,
            rates=self.rates,
            sku_weekly=wk,
            phi_daily=self.phi_daily,
            carried=self.carried.with_columns(pl.max_horizontal("w0", pl.lit(-n, pl.Int32))),
            grid=self.grid.filter(keep),
            price=self.price.filter(keep),
            style_info=info,
            signals=self.signals,
        )


# One-entry memo of the last canonical view (inputs and output held, so identities cannot be
# reused while it lives): every reader of one plan run asks for the same view, and the stock
# memos of stocktailor.censoring are keyed by the identity of its frames.
_VIEW: list[tuple[tuple[pl.DataFrame, ...], tuple[pl.DataFrame, ...]]] = []


def clear_memos() -> None:
    """Forget the memoised demand view and the memos of :mod:`stocktailor.censoring`.

    They hold the tables they were built from (a date's sales and inventory, and their
    sorted copies): call this when done with those tables, e.g. after a plan run's step.
    """
    _VIEW.clear()
    clear_censoring_memos()


def _frames(tables: Tables) -> tuple[pl.DataFrame, ...]:
    return (tables.sales, tables.inventory, tables.products, tables.stores)


def demand_view(tables: Tables) -> Tables:
    """``tables`` with sales as the non-negative daily net-demand view (the demand target) and
    every table in a canonical row order.

    The view is :func:`stocktailor.censoring.demand_tables` (returns netted within the day,
    surplus returns dropped). Sales and inventory are sorted by all their columns, products by
    SKU and stores by id, so that the same data in another row order gives the same forecast
    (same inputs, same outputs). Idempotent: a view is returned as it is.
    """
    key = _frames(tables)
    for inputs, done in _VIEW:
        if all(a is b for a, b in zip(done, key, strict=True)):
            return tables
        if all(a is b for a, b in zip(inputs, key, strict=True)):
            return _with_frames(tables, done)
    t = demand_tables(tables)
    canon = _with_frames(
        t,
        (
            t.sales.sort(t.sales.columns),
            t.inventory.sort(t.inventory.columns),
            t.products.sort("sku"),
            t.stores.sort("store_id"),
        ),
    )
    _VIEW[:] = [(key, _frames(canon))]
    return canon


def _with_frames(tables: Tables, frames: tuple[pl.DataFrame, ...]) -> Tables:
    sales, inventory, products, stores = frames
    return tables.replace(sales=sales, inventory=inventory, products=products, stores=stores)


def events_until(events: Events, tables: Tables, as_of: dt.date) -> Events:
    """The stock events of a later as-of date cut to ``as_of``: what :func:`stock_events`
    returns at ``as_of`` (days up to it, pairs ranged by then), without recomputing them."""
    from stocktailor.censoring import ranged_pairs

    pairs = ranged_pairs(tables, as_of)
    keys = ["store_id", "sku"]
    sales_days, out_days = events
    return (
        sales_days.filter(pl.col("date") <= as_of).join(pairs, on=keys, how="semi"),
        out_days.filter(pl.col("date") <= as_of).join(pairs, on=keys, how="semi"),
    )


def with_backcast_snapshots(tables: Tables, as_of: dt.date) -> Tables:
    """``tables`` with each back-cast pair's opening stock as an inventory snapshot.

    With one stock snapshot at ``as_of`` (the common export), earlier positions are back-cast
    from later sales; an earlier as-of date (a validation origin) would see no snapshot at all
    and no history. The back-cast opening stock (dated the day before the back-cast starts)
    is a position known at ``as_of``: as a snapshot row it lets every origin track the pair.
    Tables without a back-cast are returned unchanged.
    """
    from stocktailor.censoring import backcast_pairs

    bc = backcast_pairs(tables, as_of)
    if bc.is_empty():
        return tables
    inv = tables.inventory
    rows = bc.select(
        (pl.col("backcast_from") - dt.timedelta(days=1)).alias("date"),
        "store_id",
        "sku",
        pl.col("opening_stock").alias("on_hand"),
    )
    rows = rows.with_columns(
        [pl.lit(None).alias(c) for c in inv.columns if c not in rows.columns]
    ).select([pl.col(c).cast(inv.schema[c]) for c in inv.columns])
    merged = pl.concat([inv, rows]).unique(["date", "store_id", "sku"], keep="first")
    return tables.replace(inventory=merged.sort("date", "store_id", "sku"))


def history_start(tables: Tables, as_of: dt.date, history_days: int) -> tuple[dt.date, int]:
    """First day and number of whole weeks of the window ending at ``as_of``.

    The window is at most ``history_days`` long, starts no earlier than the first sale, and
    is aligned to whole weeks ending at ``as_of`` (at least one week).
    """
    first_sale = tables.sales["date"].min()
    start = as_of - dt.timedelta(days=history_days - 1)
    if isinstance(first_sale, dt.date):
        start = max(start, first_sale)
    n_weeks = max(1, ((as_of - start).days + 1) // 7)
    return as_of - dt.timedelta(days=7 * n_weeks - 1), n_weeks


def prepare_history(
    tables: Tables,
    as_of: dt.date,
    *,
    clusters: pl.DataFrame | None = None,
    history_days: int = 364,
    threshold_units: int = 0,
    censoring: bool = True,
    prior_days: float = 7.0,
    events: Events | None = None,
) -> DemandHistory:
    """Build the :class:`DemandHistory` of ``tables`` at ``as_of``.

    Parameters
    ----------
    clusters
        Optional ``store_id, cluster_id`` (pooling of censored rates and base levels).
    history_days
        Longest window, days.
    threshold_units
        A day whose closing stock is at most this is censored, units.
    censoring
        Impute demand on censored days (True) or take sales as demand (False).
    prior_days
        Weight of the cluster prior in a pair's censored rate, days.
    events
        :func:`stock_events` of ``tables`` at ``as_of`` from the window's start (or a later
        date's, cut with :func:`events_until`) when already computed.
    """
    tables = demand_view(tables)
    start, n_weeks = history_start(tables, as_of, history_days)
    if events is None:
        events = stock_events(tables, as_of, start=start, threshold_units=threshold_units)
    else:
        events = (
            events[0].filter(pl.col("date") >= start),
            events[1].filter(pl.col("date") >= start),
        )
    wk, rates, _ = weekly_demand(
        tables,
        as_of,
        start,
        clusters=clusters,
        threshold=threshold_units,
        censoring=censoring,
        prior_days=prior_days,
        events=events,
    )
    prods = tables.products.select("sku", "style", "color", "size")
    # Every frame handed down is sorted by its key: a join's or group-by's row order changes
    # with polars' per-process hashing, and a float sum's last bits with the order, so the
    # same inputs would not give the same plan in every process.
    wk = wk.join(prods, on="sku", how="inner").sort("store_id", "sku", "week")
    carried = _carried(tables, as_of, wk, n_weeks)
    return DemandHistory(
        tables=tables,
        as_of=as_of,
        start=start,
        n_weeks=n_weeks,
        clusters=clusters,
        events=events,
        rates=rates.sort("store_id", "sku"),
        sku_weekly=wk,
        phi_daily=_phi_daily(events, rates),
        carried=carried,
        grid=_style_grid(carried, wk),
        price=price_weekly(tables, as_of, start).sort("style", "week"),
        style_info=_style_info(tables, wk).sort("style"),
        signals=SignalWeeks(tables, as_of),
    )


def _phi_daily(events: Events, rates: pl.DataFrame) -> float:
    """Daily negative-binomial excess dispersion of SKU sales on in-stock days (moments;
    zero-sales days enter through the in-stock day count)."""
    sq = (
        events[0]
        .filter(~pl.col("censored"))
        .group_by("store_id", "sku")
        .agg((pl.col("units").cast(pl.Float64) ** 2).sum().alias("s2"))
    )
    mom = (
        rates.join(sq, on=["store_id", "sku"], how="left")
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
    return max(num / den, 0.0) if den > 0 else 0.0


def _carried(tables: Tables, as_of: dt.date, wk: pl.DataFrame, n_weeks: int) -> pl.DataFrame:
    """Carried store x style pairs and the first week each was stocked (or sold)."""
    carried = (
        first_snapshots(tables, as_of)
        .join(tables.products.select("sku", "style"), on="sku", how="inner")
        .group_by(SS)
        .agg(pl.col("first").min())
    )
    sold = wk.group_by(SS).agg(pl.col("week").min().alias("w_sold"))
    carried = carried.join(sold, on=SS, how="full", coalesce=True)
    carried = carried.with_columns(
        pl.max_horizontal(
            week_of(pl.col("first") + dt.timedelta(days=1), as_of).fill_null(-n_weeks),
            pl.lit(-n_weeks, pl.Int32),
        ).alias("w0")
    ).with_columns(pl.min_horizontal("w0", pl.col("w_sold").fill_null(0)).alias("w0"))
    stores = set(tables.store_ids.to_list())
    return carried.filter(pl.col("store_id").is_in(stores)).select(*SS, "w0").sort(SS)


def _style_grid(carried: pl.DataFrame, wk: pl.DataFrame) -> pl.DataFrame:
    """Full weekly grid of history per carried store x style (units per week)."""
    grid = (
        carried.with_columns(pl.int_ranges("w0", 0, dtype=pl.Int32).alias("week"))
        .explode("week")
        .drop_nulls("week")
    )
    st = wk.group_by([*SS, "week"]).agg(
        pl.col("demand").sum(),
        pl.col("units").sum(),
        (pl.col("in_stock_share") * pl.col("demand")).sum().alias("_isw"),
    )
    grid = (
        grid.join(st, on=[*SS, "week"], how="left")
        .with_columns(pl.col("demand").fill_null(0.0), pl.col("units").fill_null(0.0))
        .with_columns(
            (pl.col("_isw") / pl.col("demand").clip(lower_bound=1e-9))
            .fill_null(1.0)
            .alias("in_stock_share")
        )
        .drop("_isw")
    )
    return grid.sort([*SS, "week"])


def _style_info(tables: Tables, wk: pl.DataFrame) -> pl.DataFrame:
    """``style, season_end, launch_week`` (season end null when the products have none)."""
    pr = tables.products
    season_end = (
        pr.group_by("style").agg(pl.col("season_end").max())
        if "season_end" in pr.columns
        else pr.select("style").unique().with_columns(pl.lit(None, pl.Date).alias("season_end"))
    )
    launch = wk.group_by("style").agg(pl.col("week").min().alias("launch_week"))
    return season_end.join(launch, on="style", how="left").with_columns(
        pl.col("launch_week").fill_null(0)
    )


def price_weekly(tables: Tables, as_of: dt.date, start: dt.date) -> pl.DataFrame:
    """Units-weighted price paid / full price per style and week (network; sales with
    revenue only)."""
    # A sale without revenue has an unknown price, not a free one.
    s = tables.sales.filter(
        (pl.col("date") >= start)
        & (pl.col("date") <= as_of)
        & (pl.col("units") > 0)
        & (pl.col("revenue") > 0)
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


# ------------------------------------------------------------------------------------------
# weekly censoring-corrected demand


def _pair_weeks(
    tables: Tables, as_of: dt.date, events: Events
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Sales days with their week, and pair-week tallies: ``units, u_in`` (in-stock units),
    ``cens_days`` (sell-out days), ``out_days`` (days out of stock), ``style``."""
    sales_days, out_days = events
    sku_style = tables.products.select("sku", "style")
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
    # Sorted so that every float sum over these rows adds its terms in one order: a join's
    # row order changes from process to process (hashing), and with it the last bits.
    return sdw.sort("store_id", "sku", "date"), pw.sort("store_id", "sku", "week")


def _style_index(
    tables: Tables, as_of: dt.date, start: dt.date, pw: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Style index ``R(style, week)``: in-stock units per in-stock pair-day across the network
    (mean 1 per style), and each pair's first tracked week ``fw``."""
    sku_style = tables.products.select("sku", "style")
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
    # Tracked pairs per style and week (from the pair's first tracked week on).
    tracked = (
        first.group_by("style", "fw")
        .agg(pl.len().alias("n"))
        .sort("style", "fw")
        .with_columns(pl.col("n").cum_sum().over("style").alias("n_pairs"))
    )
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
    return grid.select("style", "week", "R"), first


def _pair_levels(
    pw: pl.DataFrame,
    r_idx: pl.DataFrame,
    first: pl.DataFrame,
    rates: pl.DataFrame,
    prior_days: float,
) -> pl.DataFrame:
    """Pair level relative to the style index, ``lam = (U + a rate) / (E - E_lost + a)``, and
    its tracked exposure ``E7`` (``store_id, sku, lam, E7``)."""
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
    return (
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


def weekly_demand(
    tables: Tables,
    as_of: dt.date,
    start: dt.date,
    *,
    clusters: pl.DataFrame | None,
    threshold: int,
    censoring: bool,
    prior_days: float,
    events: Events,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Weekly censoring-corrected demand per store x SKU, and per-pair rates.

    Returns ``(weekly, rates, level)``; weekly has ``store_id, sku, week, units, demand,
    cens_days, out_days, in_stock_share, units_in, demand_sold`` (sparse: weeks with sales or
    out-of-stock days; ``units_in`` = units sold on days that did not sell out,
    ``demand_sold`` = demand of the days with sales, sell-out days at ``E[D | D >= sales]``);
    level has ``store_id, sku, lam, E7`` (the pair's level relative to the style index and
    its tracked exposure, so ``lam * E7`` is its expected demand over the history).
    """
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
    sdw, pw = _pair_weeks(tables, as_of, events)
    r_idx, first = _style_index(tables, as_of, start, pw)
    pw = pw.join(r_idx, on=["style", "week"], how="left").with_columns(pl.col("R").fill_null(1.0))
    lam = _pair_levels(pw, r_idx, first, rates, prior_days)
    # Sell-out days count E[D | D >= sales] at the pair's level of that week.
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
        .with_columns(pl.col("demand").alias("demand_sold"))
    )
    # Days out of stock count the pair's level times the style's index of that week.
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
        "store_id",
        "sku",
        "week",
        "units",
        "demand",
        "cens_days",
        "out_days",
        "in_stock_share",
        pl.col("u_in").alias("units_in"),
        "demand_sold",
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
    style's network in-stock rate of that week. This is realised demand, the model's training
    target; a sell-out week is selected by its own demand spike, so against *expected* demand
    it overshoots: :func:`pair_expected_demand` gives the smoothed expected total per pair.

    Returns
    -------
    pl.DataFrame
        ``store_id, sku, week, units, demand, cens_days, out_days, in_stock_share, units_in,
        demand_sold`` (units per week; ``week`` relative to ``as_of``, -1 = the last week).
    """
    events = stock_events(tables, as_of, start=start, threshold_units=threshold_units)
    wk, _, _ = weekly_demand(
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
    wk, _, lam = weekly_demand(
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
