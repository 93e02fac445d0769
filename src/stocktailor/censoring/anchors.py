"""Stock anchors: the snapshots stock is projected from, back-cast ones included.

An inventory snapshot on date ``s`` is the closing position of that day (after its sales).
The most common export holds one snapshot (at the as-of day) and the sales history before it.
Sales before a store's first snapshot are then *back-cast*: the closing stock of the day before
the back-cast starts is ``snapshot + net units sold from that day to the snapshot`` (a virtual
anchor), as if nothing was received in between. Receipts can only make the true stock lower,
so a back-cast stock is an upper bound: a day whose back-cast closing stock is at most the
threshold was certainly sold out; on every other back-cast day censoring is *unknown*.

Which pairs are back-cast, and from when (``b``): a store x SKU with sales on or before its
store's first snapshot, or with stock at that snapshot; ``b`` is the earlier of the pair's
first sale and the later of the store's first sale and the SKU's first sale in the network
(before the SKU sold anywhere, or the store sold anything, nothing says the shelf held it).
A pair with sales before the first snapshot but no row in it had 0 at that snapshot.
"""

from __future__ import annotations

import datetime as dt
import logging

import polars as pl

from stocktailor.censoring.netdemand import net_daily_demand
from stocktailor.contract import Tables

__all__ = ["KEYS", "anchors", "backcast_pairs", "memo_get", "memo_put", "net_view"]

logger = logging.getLogger(__name__)

KEYS = ["store_id", "sku"]
"""The key of a pair."""

# One-entry memo per derived table: a model's fit/update derives the same anchors, ranged
# pairs and first snapshots from the same tables several times (censoring, rates, size
# curves). Keyed by the identity of the source frames (held in the entry, so ids cannot be
# reused) and the as-of date.
_MEMO: dict[str, tuple[tuple[object, ...], pl.DataFrame]] = {}
# (sales, inventory) frames whose back-cast was already reported in the log.
_REPORTED: list[tuple[pl.DataFrame, pl.DataFrame]] = []


def memo_get(name: str, key: tuple[object, ...]) -> pl.DataFrame | None:
    """The memoised frame ``name`` for ``key`` (frames compared by identity), else None."""
    hit = _MEMO.get(name)
    if hit is None or len(hit[0]) != len(key):
        return None
    if all(
        a is b if isinstance(a, pl.DataFrame) else a == b for a, b in zip(hit[0], key, strict=True)
    ):
        return hit[1]
    return None


def memo_put(name: str, key: tuple[object, ...], frame: pl.DataFrame) -> pl.DataFrame:
    """Remember ``frame`` as ``name`` for ``key``; returns ``frame``."""
    _MEMO[name] = (key, frame)
    return frame


def net_view(tables: Tables, as_of: dt.date) -> pl.LazyFrame:
    """Daily net sales up to ``as_of``: ``date, store_id, sku, units (>= 0), net_units``."""
    daily = net_daily_demand(tables.sales).daily
    return (
        daily.lazy()
        .filter(pl.col("date") <= as_of)
        .select("date", "store_id", "sku", "units", "net_units")
    )


def anchors(tables: Tables, as_of: dt.date) -> pl.DataFrame:
    """Every stock anchor of every store x SKU up to ``as_of``.

    Returns
    -------
    pl.DataFrame
        ``store_id, sku, date, snap, virtual``: the snapshots (``on_hand`` summed per pair and
        day; units), the implied zeros (a pair that sold before its store's first snapshot but
        is not in it) and the back-cast anchors (``virtual`` true, dated the day before the
        back-cast starts, ``snap`` = the back-cast closing stock).
    """
    key: tuple[object, ...] = (tables.inventory, tables.sales, as_of)
    hit = memo_get("anchors", key)
    if hit is not None:
        return hit
    inv = (
        tables.inventory.lazy()
        .filter(pl.col("date") <= as_of)
        .group_by(*KEYS, "date")
        .agg(pl.col("on_hand").sum().cast(pl.Int64).alias("snap"))
        .with_columns(pl.lit(False).alias("virtual"))
        .collect()
    )
    extra = _backcast_anchors(inv, net_view(tables, as_of))
    out = pl.concat([inv, extra]) if extra.height else inv
    if extra.height and not any(s is tables.sales and i is tables.inventory for s, i in _REPORTED):
        _REPORTED[:] = [(tables.sales, tables.inventory)]
        n_virtual = int(extra["virtual"].sum())
        logger.warning(
            "inventory: %d store x SKU pairs sold before their store's first stock snapshot or "
            "are stocked at it; their earlier stock is back-cast from sales (opening = snapshot "
            "+ later sales) and censoring before the snapshot is unknown",
            n_virtual,
        )
    return memo_put("anchors", key, out)


def _backcast_anchors(inv: pl.DataFrame, net: pl.LazyFrame) -> pl.DataFrame:
    """Implied zeros and virtual anchors (see the module docstring)."""
    empty = inv.clear()
    if inv.is_empty():
        return empty
    first = inv.group_by("store_id").agg(pl.col("date").min().alias("F"))
    moved = net.filter(pl.col("net_units") != 0)
    store_first = moved.group_by("store_id").agg(pl.col("date").min().alias("sfs"))
    # Only stores that sold on or before their first snapshot can have a back-cast.
    stores = (
        first.lazy()
        .join(store_first, on="store_id", how="inner")
        .filter(pl.col("sfs") <= pl.col("F"))
        .collect()
    )
    if stores.is_empty():
        return empty
    sku_first = moved.group_by("sku").agg(pl.col("date").min().alias("kfs"))
    early = (
        moved.join(stores.lazy(), on="store_id", how="inner")
        .filter(pl.col("date") <= pl.col("F"))
        .group_by(KEYS)
        .agg(
            pl.col("date").min().alias("pfs"),
            pl.col("net_units").sum().alias("_sold"),
        )
    )
    at_first = (
        inv.lazy()
        .join(stores.lazy(), on="store_id", how="inner")
        .filter(pl.col("date") == pl.col("F"))
        .select(*KEYS, pl.col("snap").alias("snap_f"))
    )
    cand = (
        early.join(at_first, on=KEYS, how="full", coalesce=True)
        .filter(pl.col("pfs").is_not_null() | (pl.col("snap_f") > 0))
        .join(stores.lazy(), on="store_id", how="inner")
        .join(sku_first, on="sku", how="left")
        .with_columns(
            pl.min_horizontal(
                "pfs",
                pl.when(pl.col("kfs").is_not_null()).then(pl.max_horizontal("sfs", "kfs")),
            ).alias("b")
        )
        .filter(pl.col("b").is_not_null() & (pl.col("b") <= pl.col("F")))
        .collect()
    )
    if cand.is_empty():
        return empty
    # Back-cast closing of day b - 1: the snapshot plus the net units sold in [b, F].
    cand = cand.with_columns(
        (pl.col("snap_f").fill_null(0) + pl.col("_sold").fill_null(0))
        .clip(lower_bound=0)
        .cast(pl.Int64)
        .alias("_v")
    )
    virtual = cand.select(
        *KEYS,
        (pl.col("b") - dt.timedelta(days=1)).alias("date"),
        pl.col("_v").alias("snap"),
        pl.lit(True).alias("virtual"),
    )
    zeros = cand.filter(pl.col("snap_f").is_null()).select(
        *KEYS,
        pl.col("F").alias("date"),
        pl.lit(0, pl.Int64).alias("snap"),
        pl.lit(False).alias("virtual"),
    )
    return pl.concat([virtual, zeros]).select(inv.columns)


def backcast_pairs(tables: Tables, as_of: dt.date) -> pl.DataFrame:
    """The store x SKU pairs whose stock before their store's first snapshot is back-cast.

    Returns
    -------
    pl.DataFrame
        ``store_id, sku, backcast_from`` (first back-cast day) and ``opening_stock`` (the
        back-cast opening stock of that day, units); empty when every pair's history starts
        at a snapshot.
    """
    a = anchors(tables, as_of).filter(pl.col("virtual"))
    return a.select(
        *KEYS,
        (pl.col("date") + dt.timedelta(days=1)).alias("backcast_from"),
        pl.col("snap").alias("opening_stock"),
    ).sort(KEYS)
