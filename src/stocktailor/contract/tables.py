"""The validated bundle of tables and the contract's error."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, cast

import polars as pl

from stocktailor.contract.specs import TABLE_SPECS

__all__ = ["ContractError", "Tables"]

# Every character str.splitlines breaks on, written as its escape: the message quotes header
# names and cells from the retailer's file, and a log line or a CLI error must stay one line.
_LINE_BREAKS = str.maketrans({ch: repr(ch)[1:-1] for ch in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"})


class ContractError(ValueError):
    """A table breaks the data contract.

    The message names the file, the row (1-based data row, header excluded, when known),
    the column and what was expected, on one line.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        parts = [
            p
            for p in (
                file,
                f"row {row}" if row is not None else None,
                f"column {column!r}" if column else None,
            )
            if p
        ]
        prefix = ", ".join(parts)
        text = f"{prefix}: {message}" if prefix else message
        super().__init__(text.translate(_LINE_BREAKS))
        self.file = file
        self.row = row
        self.column = column
        self.detail = message


@dataclass(frozen=True)
class Tables:
    """The validated tables of one network, as polars frames (optional ones may be None)."""

    stores: pl.DataFrame
    products: pl.DataFrame
    sales: pl.DataFrame
    inventory: pl.DataFrame
    lanes: pl.DataFrame | None = None
    weather: pl.DataFrame | None = None
    events: pl.DataFrame | None = None
    trends: pl.DataFrame | None = None
    posts: pl.DataFrame | None = None
    economy: pl.DataFrame | None = None
    assortment: pl.DataFrame | None = None
    price_plan: pl.DataFrame | None = None

    def get(self, name: str) -> pl.DataFrame | None:
        """Return table ``name`` (None when an optional table is absent)."""
        if name not in TABLE_SPECS:
            msg = f"unknown table {name!r}; expected one of {sorted(TABLE_SPECS)}"
            raise KeyError(msg)
        frame: pl.DataFrame | None = getattr(self, name)
        return frame

    def items(self) -> list[tuple[str, pl.DataFrame]]:
        """(name, frame) of every table present, in contract order."""
        return [(n, f) for n in TABLE_SPECS if (f := self.get(n)) is not None]

    def replace(self, **frames: pl.DataFrame | None) -> Tables:
        """A copy with some tables replaced."""
        return dataclasses.replace(self, **cast(dict[str, Any], frames))

    @property
    def store_ids(self) -> pl.Series:
        """Ids of selling stores (kind == 'store')."""
        return self.stores.filter(pl.col("kind") == "store")["store_id"]

    @property
    def warehouse_ids(self) -> pl.Series:
        """Ids of warehouses (kind == 'warehouse')."""
        return self.stores.filter(pl.col("kind") == "warehouse")["store_id"]

    def latest_sales_date(self) -> object:
        """The latest sales date (the default as-of date)."""
        return self.sales["date"].max()
