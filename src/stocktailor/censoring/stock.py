"""Daily stock and censoring flags per store x SKU, from snapshots and net sales.

The opening stock of day ``d`` is the last anchor before ``d`` (a snapshot, or a back-cast
anchor, see :mod:`stocktailor.censoring.anchors`) less the net units sold since (returns put
units back). A day is *censored* when its closing stock is at most ``threshold_units`` (the
shelf emptied during the day, or was empty all day). When the units sold exceed the projected
stock, an unrecorded receipt must have happened: the stock is then unknown and the day is
treated as in stock (``opening_stock`` null, ``censored`` false). On back-cast days
censoring is unknown unless the back-cast stock (an upper bound) proves a sell-out.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from stocktailor.censoring.anchors import KEYS, anchors, memo_get, memo_put, net_view
from stocktailor.contract import Tables

__all__ = ["first_snapshots", "ranged_pairs", "reconstruct_stock", "stock_events"]

_NONE = -(2**62)


def ranged_pairs(tables: Tables, as_of: dt.date) -> pl.DataFrame:
    """Store x SKU pairs a store ranges: positive stock at an anchor up to ``as_of`` or a sale.

    Returns
    -------
    pl.DataFrame
        ``store_id, sku`` (unique, sorted); only pairs that also have an anchor (a snapshot,
        an implied zero or a back-cast anchor).
    """
    key: tuple[object, ...] = (tables.inventory, tables.sales, as_of)
    hit = memo_get("ranged", key)
    if hit is not None:
        return hit
    anc = anchors(tables, as_of).lazy()
    stocked = anc.filter(pl.col("snap") > 0).select(KEYS).unique()
    sold = net_view(tables, as_of).select(KEYS).unique()
    both = pl.concat([stocked, sold.join(anc.select(KEYS).unique(), on=KEYS, how="semi")])
    return memo_put("ranged", key, both.unique().sort(KEYS).collect())


def first_snapshots(tables: Tables, as_of: dt.date) -> pl.DataFrame:
    """First anchor date of every ranged store x SKU pair up to ``as_of``.

    The first snapshot, or the day before the back-cast starts (tracking starts the day after).

    Returns
    -------
    pl.DataFrame
        ``store_id, sku, first`` (one row per pair of :func:`ranged_pairs`).
    """
    key: tuple[object, ...] = (tables.inventory, tables.sales, as_of)
    hit = memo_get("first", key)
    if hit is not None:
        return hit
    out = (
        anchors(tables, as_of)
        .lazy()
        .join(ranged_pairs(tables, as_of).lazy(), on=KEYS, how="semi")
        .group_by(KEYS)
        .agg(pl.col("date").min().alias("first"))
        .collect()
    )
    return memo_put("first", key, out)


def _pair_ids(tables: Tables, as_of: dt.date) -> pl.DataFrame:
    # Integer pair ids keep the sorts and window functions cheap at scale. Only ranged pairs
    # (stock > 0 at some anchor, or any sale) are tracked: a store that never held a SKU does
    # not range it, and its empty shelf is not a stock-out.
    return (
        ranged_pairs(tables, as_of)
        .sort(KEYS)
        .with_row_index("pid")
        .with_columns(pl.col("pid").cast(pl.Int64))
    )


def _events(tables: Tables, as_of: dt.date, pairs: pl.DataFrame, threshold: int) -> pl.DataFrame:
    """Anchors and sales days of every pair with their projected stock and censoring."""
    snaps = (
        anchors(tables, as_of)
        .lazy()
        .join(pairs.lazy(), on=KEYS, how="inner")
        .group_by("pid", "date")
        .agg(pl.col("snap").sum(), pl.col("virtual").any())
    )
    sl = (
        net_view(tables, as_of)
        .join(pairs.lazy(), on=KEYS, how="inner")
        .group_by("pid", "date")
        .agg(pl.col("units").sum(), pl.col("net_units").sum().alias("net"))
    )
    ev = (
        snaps.join(sl, on=["pid", "date"], how="full", coalesce=True)
        .with_columns(pl.col("units").fill_null(0), pl.col("net").fill_null(0))
        .sort("pid", "date")
    )
    is_snap = pl.col("snap").is_not_null()
    # Anchor: the last anchor strictly before the row's date, within the pair.
    same = pl.col("pid") == pl.col("pid").shift(1)
    ev = ev.with_columns(
        pl.when(same).then(pl.col("snap").shift(1)).otherwise(pl.lit(_NONE)).alias("_prev"),
        pl.when(same).then(pl.col("virtual").shift(1)).otherwise(pl.lit(False)).alias("_virt"),
        (~same | is_snap.shift(1).fill_null(False)).cast(pl.Int64).cum_sum().alias("_seg"),
    ).with_columns(pl.col("_prev").forward_fill(), pl.col("_virt").forward_fill())
    ev = ev.with_columns(
        pl.when(pl.col("_prev") == _NONE).then(None).otherwise(pl.col("_prev")).alias("base"),
        (pl.col("net").cum_sum() - pl.col("net")).alias("_cum"),
    ).with_columns((pl.col("_cum") - pl.col("_cum").first().over("_seg")).alias("sold_before"))
    proj = pl.col("base") - pl.col("sold_before")
    ev = ev.with_columns(
        pl.when(pl.col("base").is_null() | (proj < pl.col("units")))
        .then(pl.lit(None, pl.Int64))
        .otherwise(proj)
        .alias("opening_stock")
    )
    nxt = pl.col("pid") == pl.col("pid").shift(-1)
    ev = ev.with_columns(
        (
            pl.col("opening_stock").is_not_null()
            & ((pl.col("opening_stock") - pl.col("net")) <= threshold)
        ).alias("censored"),
        pl.when(is_snap)
        .then(pl.col("snap"))
        .otherwise(pl.col("opening_stock") - pl.col("net"))
        .alias("closing"),
        pl.when(nxt).then(pl.col("date").shift(-1)).alias("next_date"),
        pl.when(nxt).then(pl.col("net").shift(-1)).fill_null(0).alias("next_units"),
    )
    return ev.select(
        "pid",
        "date",
        "units",
        "base",
        "opening_stock",
        "censored",
        (
            pl.col("opening_stock").is_not_null()
            & (~pl.col("_virt").fill_null(False) | pl.col("censored"))
        ).alias("censoring_known"),
        "closing",
        "next_date",
        "next_units",
    ).collect()


def _out_days(
    ev: pl.DataFrame, as_of: dt.date, start: dt.date | None, threshold: int
) -> pl.DataFrame:
    """Stocked-out days without sales: after an event whose closing stock <= threshold, until
    the next event (a sale means a receipt arrived by then; a snapshot day without sales is
    still out)."""
    gaps = ev.filter(pl.col("closing").is_not_null() & (pl.col("closing") <= threshold)).select(
        "pid", "date", "next_date", "next_units"
    )
    gaps = gaps.with_columns(
        pl.when(pl.col("next_date").is_null())
        .then(pl.lit(as_of))
        .when(pl.col("next_units") == 0)
        .then(pl.col("next_date"))
        .otherwise(pl.col("next_date") - dt.timedelta(days=1))
        .alias("last_out"),
        (pl.col("date") + dt.timedelta(days=1)).alias("first_out"),
    )
    if start is not None:
        # Days before the window are never reported: don't expand them.
        gaps = gaps.with_columns(pl.max_horizontal("first_out", pl.lit(start)).alias("first_out"))
    gaps = gaps.filter(pl.col("last_out") >= pl.col("first_out"))
    return (
        gaps.select("pid", pl.date_ranges("first_out", "last_out", interval="1d").alias("date"))
        .explode("date")
        .unique()
    )


def stock_events(
    tables: Tables,
    as_of: dt.date,
    *,
    start: dt.date | None = None,
    threshold_units: int = 0,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Sparse stock reconstruction: sales days with their stock, and stocked-out days.

    Equivalent to :func:`reconstruct_stock` but without materialising the full daily grid,
    so it scales to networks with hundreds of thousands of store x SKU pairs. Sales are read
    through :func:`~stocktailor.censoring.net_daily_demand`: ``units`` is the day's net demand
    (>= 0), the stock moves by the net units (returns included).

    Parameters
    ----------
    tables
        Validated tables (``sales`` and ``inventory`` are used).
    as_of
        Last day of history (inclusive).
    start
        First day reported (earlier snapshots are still used to project stock).
    threshold_units
        A day whose closing stock is at most this is censored, units.

    Returns
    -------
    sales_days
        ``date, store_id, sku, units, opening_stock, censored, censoring_known`` for every
        day with net sales (``units > 0``) after the pair's first anchor. ``censoring_known``
        is false where the stock is unknown or back-cast without proof of a sell-out
        (``censored`` is then false: the day's sales are taken as its demand).
    out_days
        ``date, store_id, sku`` for every day without sales whose opening stock was at most
        ``threshold_units`` (censored days with zero sales).
    """
    pairs = _pair_ids(tables, as_of)
    ev = _events(tables, as_of, pairs, threshold_units)
    sales_days = ev.filter((pl.col("units") > 0) & pl.col("base").is_not_null()).select(
        "date", "pid", "units", "opening_stock", "censored", "censoring_known"
    )
    out_days = _out_days(ev, as_of, start, threshold_units)
    del ev
    if start is not None:
        sales_days = sales_days.filter(pl.col("date") >= start)
    sales_days = (
        sales_days.sort("pid", "date")
        .join(pairs, on="pid", how="left")
        .select("date", "store_id", "sku", "units", "opening_stock", "censored", "censoring_known")
    )
    out_days = (
        out_days.sort("pid", "date")
        .join(pairs, on="pid", how="left")
        .select("date", "store_id", "sku")
    )
    return sales_days, out_days


_DAILY_SCHEMA = {
    "date": pl.Date,
    "store_id": pl.String,
    "sku": pl.String,
    "opening_stock": pl.Int64,
    "units": pl.Int64,
    "censored": pl.Boolean,
    "backcast": pl.Boolean,
}


def reconstruct_stock(
    tables: Tables,
    as_of: dt.date,
    *,
    start: dt.date | None = None,
    threshold_units: int = 0,
) -> pl.DataFrame:
    """Daily stock and censoring flag per store x SKU.

    Parameters
    ----------
    tables
        Validated tables (``sales`` and ``inventory`` are used).
    as_of
        Last day of history (inclusive).
    start
        First day of the output (default: the day after each pair's first anchor).
    threshold_units
        A day whose closing stock is at most this is censored, units.

    Returns
    -------
    pl.DataFrame
        ``date, store_id, sku, opening_stock, units, censored, backcast``: one row per ranged
        pair (see :func:`ranged_pairs`) and day from the day after the pair's first anchor to
        ``as_of``; ``units`` is the day's net demand (>= 0). ``opening_stock`` is null (and
        ``censored`` false) when an unrecorded receipt makes the stock unknown. ``backcast``
        marks days before the store's first snapshot (stock back-cast from later sales); there
        ``censored`` is null (unknown) unless the back-cast stock proves a sell-out.
    """
    snaps = anchors(tables, as_of).join(ranged_pairs(tables, as_of), on=KEYS, how="semi")
    if snaps.is_empty():
        return pl.DataFrame(schema=_DAILY_SCHEMA)
    first = snaps.group_by(KEYS).agg(pl.col("date").min().alias("first"))
    lo = pl.col("first") + dt.timedelta(days=1)
    if start is not None:
        lo = pl.max_horizontal(lo, pl.lit(start))
    grid = (
        first.filter(pl.col("first") < as_of)
        .select(*KEYS, pl.date_ranges(lo, pl.lit(as_of), interval="1d").alias("date"))
        .explode("date")
        .drop_nulls("date")
    )
    sales = net_view(tables, as_of).collect()
    day = (
        grid.join(sales, on=[*KEYS, "date"], how="left")
        .with_columns(pl.col("units").fill_null(0), pl.col("net_units").fill_null(0))
        .sort([*KEYS, "date"])
    )
    # Last anchor strictly before the day (its closing = this day's base).
    snap_next = snaps.with_columns((pl.col("date") + dt.timedelta(days=1)).alias("anchor"))
    day = day.join_asof(
        snap_next.select(*KEYS, "anchor", pl.col("snap").alias("base"), "virtual").sort(
            [*KEYS, "anchor"]
        ),
        left_on="date",
        right_on="anchor",
        by=KEYS,
        strategy="backward",
        check_sortedness=False,
    )
    return _project_days(day, threshold_units)


def _project_days(day: pl.DataFrame, threshold: int) -> pl.DataFrame:
    """Opening stock and censoring of each grid day from its anchor (see reconstruct_stock)."""
    seg = [*KEYS, "anchor"]
    day = day.with_columns(
        (pl.col("net_units").cum_sum().over(seg) - pl.col("net_units")).alias("sold")
    )
    proj = pl.col("base") - pl.col("sold")
    day = day.with_columns(
        pl.when(proj < pl.col("units"))
        .then(pl.lit(None, pl.Int64))
        .otherwise(proj)
        .alias("opening_stock")
    )
    # After an unknown receipt the stock stays unknown until the next snapshot.
    day = day.with_columns(
        pl.col("opening_stock").is_null().cast(pl.Int64).cum_sum().over(seg).alias("_unk")
    ).with_columns(
        pl.when(pl.col("_unk") > 0)
        .then(pl.lit(None, pl.Int64))
        .otherwise(pl.col("opening_stock"))
        .alias("opening_stock")
    )
    censored = pl.col("opening_stock").is_not_null() & (
        (pl.col("opening_stock") - pl.col("net_units")) <= threshold
    )
    backcast = pl.col("virtual").fill_null(False)
    day = day.with_columns(
        pl.when(backcast & ~censored).then(None).otherwise(censored).alias("censored"),
        backcast.alias("backcast"),
    )
    return day.select(list(_DAILY_SCHEMA)).sort([*KEYS, "date"])
