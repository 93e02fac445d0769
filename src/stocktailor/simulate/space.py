"""The simulation's axes and static data, and the markdown calendar as price factors."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from stocktailor.config import Settings
from stocktailor.positions import core_sizes, lane_matrices
from stocktailor.simulate._types import BoolArray, FloatArray, IntArray, SeasonNetwork, SimSpace

__all__ = [
    "SeasonCalendar",
    "build_space",
    "markdown_calendar_of",
    "markdown_factors",
    "markdown_matrix",
    "style_core_sizes",
]


def markdown_calendar_of(
    network: SeasonNetwork, settings: Settings
) -> tuple[tuple[int, float], ...]:
    """The markdown calendar a network's season is sold at.

    The network's own ``markdown_calendar`` when it declares one (a fashion scenario's
    clearance), else ``settings.season.markdown_calendar`` (default: no markdowns).
    """
    own = getattr(network, "markdown_calendar", None)
    cal = own if own is not None else settings.season.markdown_calendar
    return tuple((int(w), float(f)) for w, f in cal)


def markdown_factors(
    days: Sequence[dt.date], season_end: dt.date, calendar: Sequence[tuple[int, float]]
) -> FloatArray:
    """Price factor per day from a markdown calendar.

    Parameters
    ----------
    days
        Selling days.
    season_end
        Last selling day.
    calendar
        ``(weeks before season end, price factor)`` steps: a day less than ``7 * weeks`` days
        before ``season_end`` sells at ``factor`` times full price (the lowest active step wins).

    Returns
    -------
    numpy.ndarray
        Price factor per day (1.0 = full price).
    """
    out = np.ones(len(days), dtype=np.float64)
    for i, day in enumerate(days):
        left = (season_end - day).days
        for weeks, factor in calendar:
            if left < 7 * weeks:
                out[i] = min(out[i], float(factor))
    return out


def markdown_matrix(
    days: Sequence[dt.date], sku_end: Sequence[dt.date], calendar: Sequence[tuple[int, float]]
) -> FloatArray:
    """Price factor per (day, sku) from each SKU's own season end (1.0 after it ends)."""
    n_d = len(days)
    out = np.ones((n_d, len(sku_end)), dtype=np.float64)
    if n_d == 0:
        return out
    start = days[0]
    ends = np.array([(e - start).days for e in sku_end], dtype=np.int64)
    d = np.arange(n_d, dtype=np.int64)[:, None]
    left = ends[None, :] - d
    for weeks, factor in calendar:
        hit = (left >= 0) & (left < 7 * weeks)
        out = np.where(hit, np.minimum(out, float(factor)), out)
    return out


@dataclass(frozen=True)
class SeasonCalendar:
    """The days of a season and the prices they sell at.

    Attributes
    ----------
    days
        Every day from ``season_start`` to ``season_end``.
    price_factor
        Price factor per (day, sku): the markdown calendar counted back from each SKU's end.
    end_index
        Last selling day per SKU, days since season start.
    calendar
        The markdown calendar applied (see :func:`markdown_calendar_of`).
    """

    days: tuple[dt.date, ...]
    price_factor: FloatArray
    end_index: IntArray
    calendar: tuple[tuple[int, float], ...]

    @classmethod
    def of(cls, network: SeasonNetwork, settings: Settings, space: SimSpace) -> SeasonCalendar:
        """The calendar of ``network``'s season on ``space``'s SKU axis.

        Prices are the network's declared ones when it has ``price_factor(start, end)``
        (``(days, skus)`` in ``truth.skus`` order: its markdowns and promotions), else the
        markdown calendar of :func:`markdown_calendar_of` counted back from each SKU's end.
        """
        start, end = network.season_start, network.season_end
        if end < start:
            msg = f"season_end {end} is before season_start {start}"
            raise ValueError(msg)
        days = tuple(start + dt.timedelta(days=i) for i in range((end - start).days + 1))
        sku_end = space.sku_end or (end,) * len(space.skus)
        calendar = markdown_calendar_of(network, settings)
        end_index = np.array([(e - start).days for e in sku_end], dtype=np.int64)
        declared = getattr(network, "price_factor", None)
        if callable(declared):
            pf = np.asarray(declared(start, end), dtype=np.float64)
            if pf.shape != (len(days), len(space.skus)):
                msg = (
                    f"network.price_factor: shape {pf.shape}, expected (days, skus) = "
                    f"({len(days)}, {len(space.skus)})"
                )
                raise ValueError(msg)
            selling = np.arange(len(days))[:, None] <= end_index[None, :]
            pf = np.where(selling, pf, 1.0)
        else:
            pf = markdown_matrix(days, sku_end, calendar)
        return cls(days=days, price_factor=pf, end_index=end_index, calendar=calendar)


def style_core_sizes(products: pl.DataFrame, skus: Sequence[str]) -> tuple[IntArray, BoolArray]:
    """Style-colour index per SKU and whether the SKU is a core size of it.

    Core sizes are :func:`stocktailor.positions.core_sizes` (the broken-size-run effect of the
    simulated customers).
    """
    order = pl.DataFrame({"sku": list(skus), "_pos": np.arange(len(skus), dtype=np.int64)})
    p = order.join(products.select("sku", "style", "color"), on="sku", how="left").sort("_pos")
    sc = pl.col("style").cast(pl.String) + "|" + pl.col("color").cast(pl.String)
    p = p.with_columns(
        sc.rank("dense").cast(pl.Int64).alias("_g"),
        pl.col("sku").is_in(list(core_sizes(products))).alias("c"),
    )
    return (p["_g"].to_numpy().astype(np.int64) - 1), p["c"].to_numpy().astype(np.bool_)


def _initial_stock(
    network: SeasonNetwork, locs: tuple[str, ...], skus: tuple[str, ...]
) -> IntArray:
    init = network.truth.initial_stock
    li = {s: i for i, s in enumerate(locs)}
    ki = {s: i for i, s in enumerate(skus)}
    stock = np.zeros((len(locs), len(skus)), dtype=np.int64)
    loc_i = init["store_id"].replace_strict(li, return_dtype=pl.Int64, default=-1).to_numpy()
    sku_i = init["sku"].replace_strict(ki, return_dtype=pl.Int64, default=-1).to_numpy()
    if (loc_i < 0).any() or (sku_i < 0).any():
        msg = "truth.initial_stock: a row names a sku outside truth.skus"
        raise ValueError(msg)
    units = init["units"].to_numpy().astype(np.int64)
    if (units < 0).any():
        msg = "truth.initial_stock: column 'units' must be >= 0"
        raise ValueError(msg)
    np.add.at(stock, (loc_i, sku_i), units)
    return stock


def build_space(network: SeasonNetwork, settings: Settings) -> tuple[SimSpace, IntArray]:
    """The axis order, static data and initial stock (locations x skus, units) of a network."""
    truth = network.truth
    tables = truth.season_tables
    store_ids = tuple(str(s) for s in truth.store_ids)
    skus = tuple(str(s) for s in truth.skus)
    extra = sorted(set(truth.initial_stock["store_id"].unique().to_list()) - set(store_ids))
    warehouses = tuple(sorted(set(extra) | set(tables.warehouse_ids.to_list())))
    locs = store_ids + warehouses
    stock = _initial_stock(network, locs, skus)
    prod = pl.DataFrame({"sku": list(skus)}).join(tables.products, on="sku", how="left")
    if prod["full_price"].null_count():
        msg = "products: a sku of truth.skus has no row (sku)"
        raise ValueError(msg)
    full = prod["full_price"].to_numpy().astype(np.float64)
    if "salvage_value" in prod.columns and prod["salvage_value"].null_count() == 0:
        salvage = prod["salvage_value"].to_numpy().astype(np.float64)
    else:
        salvage = full * settings.economics.salvage_fraction
    unit, ship, lead = lane_matrices(tables, settings, list(locs))
    net_end = network.season_end
    if "season_end" in prod.columns:
        sku_end = tuple(
            min(e, net_end) if e is not None else net_end for e in prod["season_end"].to_list()
        )
    else:
        sku_end = (net_end,) * len(skus)
    style_idx, core = style_core_sizes(prod, skus)
    space = SimSpace(
        store_ids=store_ids,
        warehouse_ids=warehouses,
        skus=skus,
        full_price=full,
        salvage_value=salvage,
        products=prod,
        stores=tables.stores,
        lane_cost_unit=unit,
        lane_cost_shipment=ship,
        lane_lead_days=lead,
        style_index=style_idx,
        core_size=core,
        sku_end=sku_end,
    )
    return space, stock
