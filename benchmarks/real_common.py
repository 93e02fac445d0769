"""Shared parts of the real-data converters and of ``real_data.py``: write a contract data folder,
cut it at a holdout start, and the daily demand target.

A converted folder holds one Parquet file per contract table plus ``meta.json`` (ignored by
``stocktailor ingest``: not a table name) that records the source, licence, attribution, the
mapping choices and the columns filled with placeholders because the contract of the installed
version requires them while the data does not have them (``placeholders``). ``meta["stock"]`` says
what the inventory table means: ``"daily"`` (closing snapshots every day, derived from the data)
or ``"none"`` (the data has no stock: one stand-in snapshot at the end, rebuilt at the cut date
by :func:`stand_in_snapshot`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

KEYS = ["store_id", "sku"]
TABLE_FILES = (
    "stores",
    "products",
    "sales",
    "inventory",
    "lanes",
    "weather",
    "events",
    "trends",
    "economy",
    "assortment",
    "price_plan",
    "posts",
    "executions",
)


def contract_requires(table: str, column: str) -> bool:
    """Whether the installed stocktailor contract requires ``table.column``.

    Converters only fill a column the data lacks (store coordinates, season end) when the
    installed contract requires it, and record the placeholder in ``meta.json``.
    """
    from stocktailor import contract

    specs: dict[str, Any] = contract.TABLE_SPECS
    spec = specs.get(table)
    if spec is None:
        return False
    return column in spec.required_columns


def write_folder(out: Path, tables: dict[str, pl.DataFrame], meta: dict[str, Any]) -> None:
    """Write ``NAME.parquet`` per table and ``meta.json`` into ``out`` (replaced if present)."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name, frame in tables.items():
        frame.write_parquet(out / f"{name}.parquet")
    rows = {name: frame.height for name, frame in tables.items()}
    (out / "meta.json").write_text(json.dumps({**meta, "rows": rows}, indent=2, default=str))


def convert_main(
    doc: str | None,
    attribution: str,
    add_options: Callable[[argparse.ArgumentParser], None],
    convert: Callable[[argparse.Namespace], dict[str, pl.DataFrame]],
) -> None:
    """A converter's command line: ``convert --out DIR`` (plus ``add_options``) runs
    ``convert(args)`` and prints the rows of each table it wrote."""
    ap = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("convert", help="write a contract data folder")
    c.add_argument("--out", type=Path, required=True)
    add_options(c)
    a = ap.parse_args()
    tables = convert(a)
    for name, frame in tables.items():
        print(f"{name:<11} {frame.height:>10,} rows")
    print(f"wrote {a.out} ({attribution})")


def read_meta(folder: Path) -> dict[str, Any]:
    path = folder / "meta.json"
    if not path.exists():
        return {}
    meta: dict[str, Any] = json.loads(path.read_text())
    return meta


def read_tables(folder: Path) -> dict[str, pl.DataFrame]:
    """Every table file of a data folder as read (no validation)."""
    out: dict[str, pl.DataFrame] = {}
    for name in TABLE_FILES:
        pq, csv = folder / f"{name}.parquet", folder / f"{name}.csv"
        if pq.exists():
            out[name] = pl.read_parquet(pq)
        elif csv.exists():
            out[name] = pl.read_csv(csv, try_parse_dates=True)
    return out


def runs_to_ranges(
    daily: pl.DataFrame, keys: list[str], values: list[str], date: str = "date"
) -> pl.DataFrame:
    """Collapse consecutive days with equal ``values`` per ``keys`` into date ranges.

    Returns ``keys, start_date, end_date, values`` (end inclusive); a gap of a missing day
    starts a new range.
    """
    d = daily.sort(*keys, date)
    prev_day = pl.col(date).shift(1).over(keys)
    new = (pl.col(date) - prev_day).dt.total_days().ne(1).fill_null(True)
    for v in values:
        new = new | pl.col(v).ne(pl.col(v).shift(1).over(keys)).fill_null(True)
    d = d.with_columns(new.cast(pl.Int32).cum_sum().alias("_run"))
    return (
        d.group_by(*keys, "_run", maintain_order=True)
        .agg(
            pl.col(date).min().alias("start_date"),
            pl.col(date).max().alias("end_date"),
            *[pl.col(v).first() for v in values],
        )
        .drop("_run")
    )


def daily_demand_target(sales: pl.DataFrame) -> pl.DataFrame:
    """The contract's demand target: daily net units per store x SKU clipped at 0.

    Returns within a day net against that day's sales; surplus returns are dropped (they are
    not negative demand). Returns ``store_id, sku, date, units``.
    """
    return (
        sales.group_by("store_id", "sku", "date")
        .agg(pl.col("units").sum())
        .with_columns(pl.col("units").clip(lower_bound=0))
    )


def stand_in_snapshot(sales: pl.DataFrame, cut: dt.date, cover_days: int) -> pl.DataFrame:
    """One snapshot at ``cut`` for data without stock: every pair sold before ``cut`` gets
    ``max(1, units sold in the last cover_days days)`` (an invented position that claims no
    stockout; the data says nothing about stock)."""
    hist = sales.filter(pl.col("date") <= cut)
    recent = (
        hist.filter(pl.col("date") > cut - dt.timedelta(days=cover_days))
        .group_by(KEYS)
        .agg(pl.col("units").sum().alias("recent"))
    )
    pairs = hist.select(KEYS).unique()
    return (
        pairs.join(recent, on=KEYS, how="left")
        .select(
            pl.lit(cut).alias("date"),
            *KEYS,
            pl.col("recent").fill_null(0).clip(lower_bound=1).cast(pl.Int64).alias("on_hand"),
        )
        .sort(KEYS)
    )


def _cut_inventory(
    inv: pl.DataFrame, sales: pl.DataFrame, cut: dt.date, meta: dict[str, Any], stock: str
) -> pl.DataFrame:
    if meta.get("stock") == "none":
        return stand_in_snapshot(sales, cut, int(meta.get("stand_in_cover_days", 28)))
    inv = inv.filter(pl.col("date") <= cut)
    if stock == "single":
        # The most common export: one position per pair, dated at the plan date.
        inv = (
            inv.sort("date")
            .group_by(KEYS)
            .agg(pl.all().last())
            .with_columns(pl.lit(cut).alias("date"))
            .select(inv.columns)
        )
    return inv


def _cut_price_plan(plan: pl.DataFrame, cut: dt.date) -> pl.DataFrame:
    """Rows marked ``known_in_advance = false`` (realised prices) end at the cut; the rest
    (planned prices and promotions) stay. The marker column is dropped."""
    if "known_in_advance" not in plan.columns:
        return plan
    known = pl.col("known_in_advance").fill_null(True)
    return (
        plan.filter(known | (pl.col("start_date") <= cut))
        .with_columns(
            pl.when(known)
            .then(pl.col("end_date"))
            .otherwise(pl.min_horizontal("end_date", pl.lit(cut)))
            .alias("end_date")
        )
        .drop("known_in_advance")
    )


def cut_folder(
    src: Path, dst: Path, cut: dt.date, *, weather_days: int = 14, stock: str = "as-is"
) -> dict[str, pl.DataFrame]:
    """Write the history a retailer would have on ``cut`` (its end of day) into ``dst``.

    Dated facts after ``cut`` are dropped (sales, inventory, trends, economy); plan-known future
    rows stay: ``events``, ``price_plan`` (the retailer's planned prices and promotions; rows a
    converter marks ``known_in_advance = false`` end at the cut) and
    ``weather`` up to ``weather_days`` after the cut, marked ``is_forecast``. ``stock="single"``
    keeps only the latest snapshot per pair, dated at the cut (the most common export).

    Returns the full (uncut) tables, from which the caller takes the truth.
    """
    meta = read_meta(src)
    full = read_tables(src)
    cut_t: dict[str, pl.DataFrame] = {}
    for name, frame in full.items():
        if name == "sales":
            frame = frame.filter(pl.col("date") <= cut)
        elif name == "inventory":
            frame = _cut_inventory(frame, full["sales"], cut, meta, stock)
        elif name == "weather":
            frame = frame.filter(pl.col("date") <= cut + dt.timedelta(days=weather_days))
            frame = frame.with_columns((pl.col("date") > cut).alias("is_forecast"))
        elif name == "price_plan":
            frame = _cut_price_plan(frame, cut)
        elif name in ("trends", "economy", "posts") and "date" in frame.columns:
            frame = frame.filter(pl.col("date") <= cut)
        if frame.height:
            cut_t[name] = frame
    write_folder(dst, cut_t, {**meta, "cut": cut.isoformat(), "stock_mode": stock})
    return full
