"""Table schemas of the data contract and the output schemas (DESIGN.md "The data contract")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

__all__ = [
    "FORECAST_SCHEMA",
    "KINDS",
    "OPTIONAL_TABLES",
    "POST_SOURCES",
    "PRICE_SCOPES",
    "REQUIRED_TABLES",
    "SCOPES",
    "TABLE_SPECS",
    "TRANSFERS_SCHEMA",
    "ColumnSpec",
    "TableSpec",
]


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a table: its name, dtype and whether the file must have it."""

    name: str
    dtype: type[pl.DataType] | pl.DataType
    required: bool = True


@dataclass(frozen=True)
class TableSpec:
    """One table of the contract."""

    name: str
    columns: tuple[ColumnSpec, ...]
    key: tuple[str, ...]
    required: bool = True

    @property
    def required_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def schema(self) -> dict[str, type[pl.DataType] | pl.DataType]:
        """Every column's name and dtype, in contract order (a polars schema)."""
        return {c.name: c.dtype for c in self.columns}


S, D, I, F, B = pl.String, pl.Date, pl.Int64, pl.Float64, pl.Boolean  # noqa: E741

TABLE_SPECS: dict[str, TableSpec] = {
    "stores": TableSpec(
        "stores",
        (
            ColumnSpec("store_id", S),
            ColumnSpec("name", S, False),
            ColumnSpec("kind", S),
            ColumnSpec("city", S, False),
            ColumnSpec("region", S, False),
            ColumnSpec("country", S, False),
            ColumnSpec("latitude", F, False),
            ColumnSpec("longitude", F, False),
            ColumnSpec("format", S, False),
            ColumnSpec("area_sqm", F, False),
            ColumnSpec("capacity_units", I, False),
        ),
        key=("store_id",),
    ),
    "products": TableSpec(
        "products",
        (
            ColumnSpec("sku", S),
            ColumnSpec("style", S),
            ColumnSpec("color", S),
            ColumnSpec("size", S),
            ColumnSpec("category", S),
            ColumnSpec("full_price", F),
            ColumnSpec("unit_cost", F),
            ColumnSpec("salvage_value", F, False),
            ColumnSpec("season_end", D, False),
            ColumnSpec("size_order", I, False),
        ),
        key=("sku",),
    ),
    "sales": TableSpec(
        "sales",
        (
            ColumnSpec("date", D),
            ColumnSpec("store_id", S),
            ColumnSpec("sku", S),
            ColumnSpec("units", I),
            ColumnSpec("revenue", F),
        ),
        key=("date", "store_id", "sku"),
    ),
    "inventory": TableSpec(
        "inventory",
        (
            ColumnSpec("date", D),
            ColumnSpec("store_id", S),
            ColumnSpec("sku", S),
            ColumnSpec("on_hand", I),
            ColumnSpec("in_transit", I, False),
        ),
        key=("date", "store_id", "sku"),
    ),
    "lanes": TableSpec(
        "lanes",
        (
            ColumnSpec("from_id", S),
            ColumnSpec("to_id", S),
            ColumnSpec("cost_per_unit", F),
            ColumnSpec("cost_per_shipment", F),
            ColumnSpec("lead_time_days", I),
        ),
        key=("from_id", "to_id"),
        required=False,
    ),
    "weather": TableSpec(
        "weather",
        (
            ColumnSpec("date", D),
            ColumnSpec("store_id", S),
            ColumnSpec("temp_c", F),
            ColumnSpec("precip_mm", F, False),
            ColumnSpec("is_forecast", B, False),
        ),
        key=("date", "store_id"),
        required=False,
    ),
    "events": TableSpec(
        "events",
        (
            ColumnSpec("start_date", D),
            ColumnSpec("end_date", D),
            ColumnSpec("scope", S),
            ColumnSpec("scope_id", S),
            ColumnSpec("name", S),
            ColumnSpec("kind", S, False),
        ),
        key=("start_date", "scope", "scope_id", "name"),
        required=False,
    ),
    "trends": TableSpec(
        "trends",
        (
            ColumnSpec("date", D),
            ColumnSpec("scope", S),
            ColumnSpec("scope_id", S),
            ColumnSpec("attribute", S),
            ColumnSpec("value", S),
            ColumnSpec("index", F),
        ),
        key=("date", "scope", "scope_id", "attribute", "value"),
        required=False,
    ),
    "posts": TableSpec(
        "posts",
        (
            ColumnSpec("date", D),
            ColumnSpec("scope", S),
            ColumnSpec("scope_id", S),
            ColumnSpec("source", S),
            ColumnSpec("text", S),
            ColumnSpec("engagement", F, False),
            ColumnSpec("author", S, False),
        ),
        key=("date", "scope", "scope_id", "source", "author", "text"),
        required=False,
    ),
    "economy": TableSpec(
        "economy",
        (
            ColumnSpec("date", D),
            ColumnSpec("region", S),
            ColumnSpec("indicator", S),
            ColumnSpec("value", F),
        ),
        key=("date", "region", "indicator"),
        required=False,
    ),
    "assortment": TableSpec(
        "assortment",
        (
            ColumnSpec("store_id", S),
            ColumnSpec("attribute", S),
            ColumnSpec("value", S),
            ColumnSpec("allowed", B),
        ),
        key=("store_id", "attribute", "value"),
        required=False,
    ),
    "price_plan": TableSpec(
        "price_plan",
        (
            ColumnSpec("start_date", D),
            ColumnSpec("end_date", D),
            ColumnSpec("scope", S),
            ColumnSpec("scope_id", S, False),
            ColumnSpec("style", S),
            ColumnSpec("sku", S, False),
            ColumnSpec("price", F, False),
            ColumnSpec("price_factor", F, False),
            ColumnSpec("promotion", B, False),
        ),
        key=("start_date", "scope", "scope_id", "style", "sku"),
        required=False,
    ),
}

REQUIRED_TABLES: tuple[str, ...] = tuple(n for n, s in TABLE_SPECS.items() if s.required)
OPTIONAL_TABLES: tuple[str, ...] = tuple(n for n, s in TABLE_SPECS.items() if not s.required)

# Output files of the contract (DESIGN.md "Outputs"), with the columns stocktailor adds.
FORECAST_SCHEMA: dict[str, Any] = {
    "store_id": pl.String,
    "sku": pl.String,
    "week_start": pl.Date,
    "mean": pl.Float64,
    "var": pl.Float64,
    "p10": pl.Float64,
    "p50": pl.Float64,
    "p90": pl.Float64,
}
"""forecast.parquet: units per week; ``var`` (added) lets a negative binomial be fitted."""

FORECAST_DECIMALS = 6
"""Decimals the forecast's figures are rounded to (1e-6 units per week), and the demand
windows the optimisers read from it. Polars picks a group-by's algorithm, and so the order
of a float sum, from a per-process hash: upstream sums can differ in their last bits from run
to run, and rounded here that noise cannot flip an optimiser tie (same inputs, same plan)."""

TRANSFERS_SCHEMA: dict[str, Any] = {
    "transfer_id": pl.String,
    "sku": pl.String,
    "style": pl.String,
    "color": pl.String,
    "size": pl.String,
    "from_id": pl.String,
    "to_id": pl.String,
    "units": pl.Int64,
    "ship_date": pl.Date,
    "arrival_date": pl.Date,
    "transfer_cost": pl.Float64,
    "expected_gain": pl.Float64,
    "expected_source_loss": pl.Float64,
    "net_benefit": pl.Float64,
    "reason": pl.String,
    "gain_p10": pl.Float64,
    "gain_p90": pl.Float64,
}
"""transfers.csv: money in currency; ``gain_p10``/``gain_p90`` (added) bound the net benefit."""


KINDS: tuple[str, ...] = ("store", "warehouse")
"""Allowed values of ``stores.kind``."""

SCOPES: tuple[str, ...] = ("store", "city", "region", "all")
"""Allowed values of ``events.scope``, ``trends.scope`` and ``posts.scope``."""

POST_SOURCES: tuple[str, ...] = ("social", "influencer", "blog", "other")
"""Allowed values of ``posts.source``."""

PRICE_SCOPES: tuple[str, ...] = ("store", "all")
"""Allowed values of ``price_plan.scope``."""
