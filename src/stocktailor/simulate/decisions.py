"""What a policy is and what it returns: the plug-in interface of the simulator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import polars as pl

from stocktailor.simulate.view import PolicyView

__all__ = ["MOVE_COLUMNS", "Decisions", "Policy", "as_moves", "empty_moves"]

MOVE_COLUMNS = ("sku", "from_id", "to_id", "units")


def empty_moves() -> pl.DataFrame:
    """A moves frame without rows: ``sku, from_id, to_id, units``."""
    return pl.DataFrame(
        schema={"sku": pl.String, "from_id": pl.String, "to_id": pl.String, "units": pl.Int64}
    )


def as_moves(frame: pl.DataFrame | None) -> pl.DataFrame | None:
    """``frame`` reduced to the move columns with their types (None when empty)."""
    if frame is None or frame.height == 0:
        return None
    return frame.select(
        pl.col("sku").cast(pl.String),
        pl.col("from_id").cast(pl.String),
        pl.col("to_id").cast(pl.String),
        pl.col("units").cast(pl.Int64),
    )


@dataclass(frozen=True)
class Decisions:
    """What a policy decides on one day.

    Attributes
    ----------
    transfers
        Store-to-store (or warehouse-to-store) moves: at least ``sku, from_id, to_id, units``.
    allocation
        Warehouse allocation lines (same columns); shipped before the transfers.
    """

    transfers: pl.DataFrame | None = None
    allocation: pl.DataFrame | None = None

    @classmethod
    def nothing(cls) -> Decisions:
        return cls(empty_moves(), None)


class Policy(Protocol):
    """The plug-in interface of the simulator."""

    name: str

    def decide(self, view: PolicyView) -> Decisions:
        """Moves to ship on ``view.day`` given what a retailer knows."""
        ...
