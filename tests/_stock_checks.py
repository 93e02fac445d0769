"""Checks of a generated network's stock accounting, shared by the synth tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import polars as pl

from stocktailor.contract import Tables

__all__ = ["assert_snapshots_follow_sales"]


def assert_snapshots_follow_sales(
    t: Tables, initial: pl.DataFrame, days: Iterable[dt.date], skip_store: str | None = None
) -> None:
    """Each inventory snapshot on ``days`` equals the initial stock (``store_id, sku, units``)
    minus the net sales up to that day (``skip_store``'s rows not checked)."""
    inventory = t.inventory
    if skip_store is not None:
        inventory = inventory.filter(pl.col("store_id") != skip_store)
    for day in days:
        snap = inventory.filter(pl.col("date") == day)
        upto = (
            t.sales.filter(pl.col("date") <= day)
            .group_by("store_id", "sku")
            .agg(pl.col("units").sum().alias("net"))
        )
        chk = (
            snap.select("store_id", "sku", "on_hand")
            .join(initial, on=["store_id", "sku"], how="left")
            .join(upto, on=["store_id", "sku"], how="left")
            .with_columns(pl.col("net").fill_null(0))
        )
        assert (chk["on_hand"] == chk["units"] - chk["net"]).all(), day
