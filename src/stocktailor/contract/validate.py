"""Validate raw tables against the contract: cast, check references and values, fill defaults."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import polars as pl

from stocktailor.contract.checks import (
    _cast_table,
    _check_keys,
    _check_known,
    _check_nonnegative,
    _check_products,
    _check_stores,
    _fill_spec_columns,
    _Source,
)
from stocktailor.contract.parsing import _show
from stocktailor.contract.posts import check_posts
from stocktailor.contract.price_plan import _check_price_plan
from stocktailor.contract.specs import REQUIRED_TABLES, SCOPES, TABLE_SPECS
from stocktailor.contract.tables import ContractError, Tables

__all__ = ["validate_tables"]


def validate_tables(
    raw: Mapping[str, pl.DataFrame | None],
    *,
    sources: Mapping[str, str] | None = None,
    salvage_fraction: float = 0.3,
    season_end: dt.date | None = None,
    horizon_days: int = 7,
) -> Tables:
    """Validate raw tables against the contract, cast them and fill defaults.

    Parameters
    ----------
    raw
        Table name -> frame as read (all-string columns from CSV, or typed from Parquet).
        Optional tables may be absent or None.
    sources
        Table name -> file name used in error messages (default: the table name).
    salvage_fraction
        ``products.salvage_value`` default as a share of ``full_price`` (0..1).
    season_end
        ``products.season_end`` default (last full-price day); without it a missing
        ``season_end`` stays empty (a never-ending assortment).
    horizon_days
        Sales may be dated at most this many days after the latest inventory snapshot, days.

    Returns
    -------
    Tables
        Frames with the contract dtypes, spec columns first (absent optional ones as nulls,
        defaults filled), then the extra attribute columns with inferred types. Row order is
        kept.

    Raises
    ------
    ContractError
        On the first problem found, naming the file, the 1-based data row (header
        excluded), the column and what was expected.
    """
    srcs = dict(sources or {})
    unknown = sorted(n for n in raw if n not in TABLE_SPECS)
    if unknown:
        msg = f"unknown table {unknown[0]!r}; the tables are: {', '.join(TABLE_SPECS)}"
        raise ContractError(msg, file=srcs.get(unknown[0]))
    for name in REQUIRED_TABLES:
        if raw.get(name) is None:
            msg = f"missing required table {name!r} (add {name}.csv or {name}.parquet)"
            raise ContractError(msg)
    src = {name: _Source(name, srcs) for name in TABLE_SPECS}
    frames: dict[str, pl.DataFrame] = {}
    for name, spec in TABLE_SPECS.items():
        frame = raw.get(name)
        if frame is not None:
            cast = _cast_table(spec, frame, src[name])
            if cast.height:  # an optional table with a header and no rows is absent
                frames[name] = cast

    frames["stores"] = _check_stores(frames["stores"], src["stores"])
    frames["products"] = _fill_spec_columns(
        TABLE_SPECS["products"],
        _check_products(frames["products"], src["products"], salvage_fraction, season_end),
    )
    for name, frame in frames.items():
        _check_keys(frame, TABLE_SPECS[name], src[name])
    _check_references(frames, src)
    _check_sales_inventory(frames, src, horizon_days)
    _check_optional(frames, src)
    if "posts" in frames:
        frames["posts"] = check_posts(frames["posts"], src["posts"])
    if "price_plan" in frames:
        frames["price_plan"] = _check_price_plan(
            frames["price_plan"], src["price_plan"], frames["stores"], frames["products"], src
        )
    return Tables(**{n: _fill_spec_columns(TABLE_SPECS[n], f) for n, f in frames.items()})


def _check_references(frames: dict[str, pl.DataFrame], src: dict[str, _Source]) -> None:
    """Every store_id and sku refers to a row of stores / products."""
    store_ids = frames["stores"]["store_id"]
    skus = frames["products"]["sku"]
    stores_file = src["stores"].file
    for name in ("sales", "inventory", "weather", "assortment"):
        if name in frames:
            _check_known(frames[name], src[name], "store_id", store_ids, "store_id", stores_file)
    for name in ("sales", "inventory"):
        _check_known(frames[name], src[name], "sku", skus, "sku", src["products"].file)
    if "lanes" in frames:
        lanes, ls = frames["lanes"], src["lanes"]
        for c in ("from_id", "to_id"):
            _check_known(lanes, ls, c, store_ids, "location", stores_file)
        ls.check(
            lanes,
            pl.col("from_id") == pl.col("to_id"),
            "to_id",
            lambda v: f"a lane from {_show(v)} to itself",
        )
        _check_nonnegative(lanes, ls, ["cost_per_unit", "cost_per_shipment", "lead_time_days"])


def _check_sales_inventory(
    frames: dict[str, pl.DataFrame], src: dict[str, _Source], horizon_days: int
) -> None:
    """Sales at stores only and not past the stock counts; inventory non-negative."""
    stores, sales, inventory = frames["stores"], frames["sales"], frames["inventory"]
    stores_file = src["stores"].file
    warehouses = stores.filter(pl.col("kind") == "warehouse")["store_id"]
    src["sales"].check(
        sales,
        pl.col("store_id").is_in(warehouses.implode()),
        "store_id",
        lambda v: (
            f"{_show(v)} is a warehouse (kind 'warehouse' in {stores_file}); "
            "sales are recorded at stores only"
        ),
    )
    latest_snapshot = inventory["date"].max()
    if isinstance(latest_snapshot, dt.date):
        limit = latest_snapshot + dt.timedelta(days=horizon_days)
        src["sales"].check(
            sales,
            pl.col("date") > limit,
            "date",
            lambda v: (
                f"sales dated {_show(v)} are more than {horizon_days} days "
                f"(season.horizon_days) after the latest inventory snapshot "
                f"({latest_snapshot.isoformat()})"
            ),
        )
    _check_nonnegative(inventory, src["inventory"], ["on_hand", "in_transit"])
    in_transit = (
        pl.col("in_transit").fill_null(0)
        if "in_transit" in inventory.columns
        else pl.lit(0, dtype=pl.Int64).alias("in_transit")
    )
    frames["inventory"] = inventory.with_columns(in_transit)


def _check_optional(frames: dict[str, pl.DataFrame], src: dict[str, _Source]) -> None:
    """Weather, events, trends and assortment: values, scopes and attributes."""
    if "weather" in frames:
        weather = frames["weather"]
        _check_nonnegative(weather, src["weather"], ["precip_mm"])
        last_sale = frames["sales"]["date"].max()
        forecast = pl.col("date") > pl.lit(last_sale, dtype=pl.Date)
        frames["weather"] = weather.with_columns(
            pl.coalesce("is_forecast", forecast).alias("is_forecast")
            if "is_forecast" in weather.columns
            else forecast.alias("is_forecast")
        )
    store_ids = frames["stores"]["store_id"]
    stores_file = src["stores"].file
    for name in ("events", "trends", "posts"):
        if name not in frames:
            continue
        frame, s = frames[name].with_columns(pl.col("scope").str.to_lowercase()), src[name]
        frames[name] = frame
        s.check(
            frame,
            ~pl.col("scope").is_in(SCOPES),
            "scope",
            lambda v: f"expected one of store, city, region, all; got {_show(v)}",
        )
        s.check(
            frame,
            (pl.col("scope") != "all") & pl.col("scope_id").is_null(),
            "scope_id",
            lambda v: "expected an id (a store_id, city or region), got an empty cell",
        )
        s.check(
            frame,
            (pl.col("scope") == "store") & ~pl.col("scope_id").is_in(store_ids.implode()),
            "scope_id",
            lambda v: f"unknown store_id {_show(v)} (not in {stores_file})",
        )
    if "events" in frames:
        src["events"].check(
            frames["events"],
            pl.col("end_date") < pl.col("start_date"),
            "end_date",
            lambda v: f"end_date {_show(v)} is before start_date",
        )
    products = frames["products"]
    for name in ("trends", "assortment"):
        if name in frames:
            src[name].check(
                frames[name],
                ~pl.col("attribute").is_in(products.columns),
                "attribute",
                lambda v: (
                    f"expected a column of {src['products'].file} "
                    f"({', '.join(products.columns)}), got {_show(v)}"
                ),
            )
