"""The data contract: table schemas, the in-memory bundle of tables, validation errors.

Column names are exact; extra columns are kept as attributes. Dtypes after validation:
ids and text are ``pl.String``, dates ``pl.Date``, quantities ``pl.Int64``, money and
measurements ``pl.Float64``, flags ``pl.Boolean``.

Modules: :mod:`~stocktailor.contract.specs` (schemas), :mod:`~stocktailor.contract.tables`
(:class:`Tables`, :class:`ContractError`), :mod:`~stocktailor.contract.parsing` (raw columns
to dtypes), :mod:`~stocktailor.contract.sizes` (size ladders),
:mod:`~stocktailor.contract.checks` (single-table checks),
:mod:`~stocktailor.contract.price_plan` (the price plan) and
:mod:`~stocktailor.contract.validate` (:func:`validate_tables`).
"""

from __future__ import annotations

from stocktailor.contract.price_plan import PRICE_PLAN_RESOLVED, resolve_price_plan
from stocktailor.contract.sizes import size_order
from stocktailor.contract.specs import (
    FORECAST_DECIMALS,
    FORECAST_SCHEMA,
    KINDS,
    OPTIONAL_TABLES,
    POST_SOURCES,
    PRICE_SCOPES,
    REQUIRED_TABLES,
    SCOPES,
    TABLE_SPECS,
    TRANSFERS_SCHEMA,
    ColumnSpec,
    TableSpec,
)
from stocktailor.contract.tables import ContractError, Tables
from stocktailor.contract.validate import validate_tables

__all__ = [
    "FORECAST_DECIMALS",
    "FORECAST_SCHEMA",
    "KINDS",
    "OPTIONAL_TABLES",
    "POST_SOURCES",
    "PRICE_PLAN_RESOLVED",
    "PRICE_SCOPES",
    "REQUIRED_TABLES",
    "SCOPES",
    "TABLE_SPECS",
    "TRANSFERS_SCHEMA",
    "ColumnSpec",
    "ContractError",
    "TableSpec",
    "Tables",
    "resolve_price_plan",
    "size_order",
    "validate_tables",
]
