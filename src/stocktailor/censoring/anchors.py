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

from stocktailor.censoring.netdemand import clear_memo, net_daily_demand
from stocktailor.contract import Tables

__all__ = [
    "KEYS",
    "anchors",
    "backcast_pairs",
    "clear_memos",
    "has_backcast",
    "has_returns",
    "memo_get",
    "memo_put",
    "net_view",
]

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


def clear_memos() -> None:
    """Forget every memoised frame of this package (and the source frames the memos hold).

    A memo entry holds its source tables, so it keeps a whole date's sales and inventory
    alive after their reader has dropped them: a caller done with a set of tables (a plan
    run's step) clears the memos to give that memory back.
    """
    _MEMO.clear()
    _REPORTED.clear()
    clear_memo()


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


def has_returns(tables: Tables) -> bool:
    """True when some store x SKU x day nets to negative units (surplus returns)."""
    daily = net_daily_demand(tables.sales).daily
    return bool(daily.select((pl.col("net_units") < 0).any()).item())


def has_backcast(tables: Tables, as_of: dt.date) -> bool:
    """True when some pair's stock before its store's first snapshot is back-cast."""
    return _extra_anchors(tables, as_of).height > 0


def anchors(tables: Tables, as_of: dt.date) -> pl.LazyFrame:
    """Every stock anchor of every store x SKU up to ``as_of`` (lazy: the inventory is scanned).

    Returns
    -------
    pl.LazyFrame
        ``store_id, sku, date, snap, virtual``: the snapshot rows (``on_hand``, units; several
        rows of one pair and day are summed by the readers), the implied zeros (a pair that
        sold before its store's first snapshot but is not in it) and the back-cast anchors
        (``virtual`` true, dated the day before the back-cast starts, ``snap`` = the back-cast
        closing stock).
    """
    inv = (
        tables.inventory.lazy()
        .filter(pl.col("date") <= as_of)
        .select(*KEYS, "date", pl.col("on_hand").cast(pl.Int64).alias("snap"))
    )
    extra = _extra_anchors(tables, as_of)
    if extra.is_empty():
        return inv.with_columns(pl.lit(False).alias("virtual"))
    return pl.concat([inv.with_columns(pl.lit(False).alias("virtual")), extra.lazy()])


def _extra_anchors(tables: Tables, as_of: dt.date) -> pl.DataFrame:
    """The back-cast anchors and implied zeros (memoised; empty when nothing is back-cast)."""
    key: tuple[object, ...] = (tables.inventory, tables.sales, as_of)
    hit = memo_get("extra_anchors", key)
    if hit is not None:
        return hit
    extra = _backcast_anchors(tables, as_of)
    if extra.height and not any(s is tables.sales and i is tables.inventory for s, i in _REPORTED):
        _REPORTED[:] = [(tables.sales, tables.inventory)]
        logger.warning(
            "inventory: %d store x SKU pairs sold before their store's first stock snapshot or "
            "are stocked at it; their earlier stock is back-cast from sales (opening = snapshot "
            "+ later sales) and censoring before the snapshot is unknown",
            int(extra["virtual"].sum()),
        )
    return memo_put("extra_anchors", key, extra)


def _backcast_anchors(tables: Tables, as_of: dt.date) -> pl.DataFrame:
    """Implied zeros and virtual anchors (see the module docstring)."""
    empty = pl.DataFrame(
        schema={
            "store_id": pl.String,
            "sku": pl.String,
            "date": pl.Date,
            "snap": pl.Int64,
            "virtual": pl.Boolean,
        }
    )
    inv = tables.inventory.lazy().filter(pl.col("date") <= as_of)
    first = inv.group_by("store_id").agg(pl.col("date").min().alias("F"))
    moved = net_view(tables, as_of).filter(pl.col("net_units") != 0)
    store_first = moved.group_by("store_id").agg(pl.col("date").min().alias("sfs"))
    # Only stores that sold on or before their first snapshot can have a back-cast.
    stores = (
        first.join(store_first, on="store_id", how="inner")
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
        .agg(pl.col("date").min().alias("pfs"), pl.col("net_units").sum().alias("_sold"))
    )
    at_first = (
        inv.join(stores.lazy(), on="store_id", how="inner")
        .filter(pl.col("date") == pl.col("F"))
        .group_by(KEYS)
        .agg(pl.col("on_hand").sum().cast(pl.Int64).alias("snap_f"))
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
    return pl.concat([virtual, zeros]).select(list(empty.columns))


def backcast_pairs(tables: Tables, as_of: dt.date) -> pl.DataFrame:
    """The store x SKU pairs whose stock before their store's first snapshot is back-cast.

    Returns
    -------
    pl.DataFrame
        ``store_id, sku, backcast_from`` (first back-cast day) and ``opening_stock`` (the
        back-cast opening stock of that day, units); empty when every pair's history starts
        at a snapshot.
    """
    a = _extra_anchors(tables, as_of).filter(pl.col("virtual"))
    return a.select(
        *KEYS,
        (pl.col("date") + dt.timedelta(days=1)).alias("backcast_from"),
        pl.col("snap").alias("opening_stock"),
    ).sort(KEYS)
