"""Returns and the non-negative daily net-demand view of sales.

``sales.units < 0`` are returns (valid data). Demand is never negative, so every reader that
estimates demand from sales (censoring, demand, size curves, clustering) reads this view
instead of the raw table: the units of a store x SKU x day are netted (sales less returns of
that day), and a day whose returns exceed its sales counts as zero demand; the surplus
returns are dropped from the demand and counted in the return rate. Stock reconstruction keeps
the raw net units (``net_units``): a returned unit is back on the shelf.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from stocktailor.contract import Tables

__all__ = ["NET_DEMAND_SCHEMA", "NetDemand", "demand_tables", "net_daily_demand"]

NET_DEMAND_SCHEMA: dict[str, type[pl.DataType]] = {
    "date": pl.Date,
    "store_id": pl.String,
    "sku": pl.String,
    "units": pl.Int64,
    "revenue": pl.Float64,
    "net_units": pl.Int64,
}
"""Columns of :attr:`NetDemand.daily`."""


@dataclass(frozen=True)
class NetDemand:
    """Daily net demand per store x SKU and what the returns took away.

    Attributes
    ----------
    daily
        ``date, store_id, sku, units, revenue, net_units`` (one row per store x SKU x day with
        sales or returns when the sales table has one row per key, as validated tables do;
        no particular order): ``units`` = max(net units, 0), the
        demand target (units per day); ``revenue`` the day's net revenue where ``units > 0``,
        else 0 (currency); ``net_units`` the raw net (negative on a day of surplus returns),
        for stock reconstruction.
    sold_units
        Sum of ``units``: net units sold on days with positive net sales.
    returned_units
        Surplus returns: units returned beyond the day's sales (dropped from the demand).
    """

    daily: pl.DataFrame
    sold_units: int
    returned_units: int

    @property
    def return_rate(self) -> float:
        """Surplus returns per unit sold (0 when nothing was sold)."""
        return self.returned_units / self.sold_units if self.sold_units > 0 else 0.0


# One-entry memo keyed by the identity of the sales frame (held in the entry, so ids cannot
# be reused while it lives): every reader of one plan run asks for the same view.
_MEMO: list[tuple[pl.DataFrame, pl.DataFrame]] = []


def clear_memo() -> None:
    """Forget the memoised view (and the sales frame it holds)."""
    _MEMO.clear()


def _full_view(sales: pl.DataFrame) -> pl.DataFrame:
    if _MEMO and _MEMO[0][0] is sales:
        return _MEMO[0][1]
    if "net_units" in sales.columns:
        # Already a view (e.g. ``demand_tables(tables).sales``): keep it.
        view = sales.select(list(NET_DEMAND_SCHEMA))
    elif not bool(sales.select((pl.col("units") < 0).any()).item()):
        # No returns: the view is the table itself (columns shared, no copy).
        revenue = pl.col("revenue") if "revenue" in sales.columns else pl.lit(0.0)
        view = sales.select(
            "date",
            "store_id",
            "sku",
            pl.col("units").cast(pl.Int64),
            revenue.cast(pl.Float64).alias("revenue"),
            pl.col("units").cast(pl.Int64).alias("net_units"),
        )
    else:
        revenue = pl.col("revenue") if "revenue" in sales.columns else pl.lit(0.0)
        view = (
            sales.lazy()
            .group_by("date", "store_id", "sku")
            .agg(
                pl.col("units").sum().cast(pl.Int64).alias("net_units"),
                revenue.sum().cast(pl.Float64).alias("revenue"),
            )
            .with_columns(pl.col("net_units").clip(lower_bound=0).alias("units"))
            .with_columns(
                pl.when(pl.col("units") > 0).then(pl.col("revenue")).otherwise(0.0).alias("revenue")
            )
            .select(list(NET_DEMAND_SCHEMA))
            .sort("date", "store_id", "sku")
            .collect()
        )
    _MEMO[:] = [(sales, view)]
    return view


def net_daily_demand(
    sales: pl.DataFrame, *, start: dt.date | None = None, end: dt.date | None = None
) -> NetDemand:
    """The non-negative daily net-demand view of a sales table.

    Parameters
    ----------
    sales
        ``date, store_id, sku, units`` (+ ``revenue``) as in the contract, units may be
        negative (returns); several rows per store x SKU x day are netted. A frame that is
        already a view (it has ``net_units``) is returned as it is.
    start, end
        Optional first and last day kept (inclusive).

    Returns
    -------
    NetDemand
        The daily view and the units sold and returned in it.
    """
    view = _full_view(sales)
    if start is not None:
        view = view.filter(pl.col("date") >= start)
    if end is not None:
        view = view.filter(pl.col("date") <= end)
    sums = view.select(
        pl.col("units").sum().alias("sold"),
        (-pl.col("net_units")).clip(lower_bound=0).sum().alias("returned"),
    ).row(0)
    return NetDemand(view, int(sums[0] or 0), int(sums[1] or 0))


def demand_tables(tables: Tables) -> Tables:
    """``tables`` with ``sales`` replaced by its daily net-demand view (units >= 0).

    For readers that take :class:`~stocktailor.contract.Tables` and sum ``sales.units`` as
    demand. The view keeps ``net_units``, so stock reconstruction from it still sees returns.
    """
    if "net_units" in tables.sales.columns:
        return tables
    return tables.replace(sales=net_daily_demand(tables.sales).daily)
