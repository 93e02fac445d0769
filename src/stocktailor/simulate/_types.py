"""Shared types of the simulator: arrays, the network protocols, the axes and the history.

Every other module of :mod:`stocktailor.simulate` builds on these; this module imports none of
them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import polars as pl

from stocktailor.contract import Tables

__all__ = [
    "SALES_COLUMNS",
    "BoolArray",
    "FloatArray",
    "History",
    "IntArray",
    "SeasonNetwork",
    "SeasonTruth",
    "SimResult",
    "SimSpace",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

SALES_COLUMNS = (
    "demand_units",
    "sold_units",
    "sold_full_units",
    "revenue",
    "revenue_full",
    "lost_units",
    "lost_value",
)
"""Sales columns of :attr:`SimResult.by_store_week` and :attr:`SimResult.by_sku_week`."""


class SeasonTruth(Protocol):
    """What the simulator needs from a network's ground truth (``synth.Truth`` has it)."""

    @property
    def store_ids(self) -> Sequence[str]:
        """Selling stores in array axis order."""
        ...

    @property
    def skus(self) -> Sequence[str]:
        """SKUs in array axis order."""
        ...

    @property
    def initial_stock(self) -> pl.DataFrame:
        """``store_id, sku, units`` at season start, warehouses included."""
        ...

    @property
    def season_tables(self) -> Tables:
        """Static tables plus the whole season's signal tables."""
        ...

    def expected_demand(self, start: dt.date, end: dt.date, price_factor: Any = None) -> FloatArray:
        """True mean demand, units per day, shape (days, stores, skus), ``start..end`` inclusive."""
        ...

    def sample_demand(self, rate: FloatArray, rng: np.random.Generator) -> IntArray:
        """Integer demand draws around ``rate`` (same shape)."""
        ...


class SeasonNetwork(Protocol):
    """A network with a season to simulate (``synth.SyntheticNetwork`` has it).

    A network may also carry ``markdown_calendar`` (``(weeks before season end, price
    factor)`` steps): the prices its season is sold at. Without it the simulator uses
    ``settings.season.markdown_calendar``.
    """

    @property
    def tables(self) -> Tables:
        """What a retailer has at ``as_of`` (history before the season is reused)."""
        ...

    @property
    def season_start(self) -> dt.date: ...

    @property
    def season_end(self) -> dt.date: ...

    @property
    def truth(self) -> SeasonTruth: ...


@dataclass(frozen=True)
class SimSpace:
    """Axis order and static per-SKU / per-location data of a simulation.

    Locations are the selling stores (truth order) followed by warehouses (and any other
    location holding initial stock).

    Attributes
    ----------
    full_price, salvage_value
        Currency per unit, per SKU.
    lane_cost_unit, lane_cost_shipment, lane_lead_days
        ``(locations, locations)``: currency per unit, currency per shipment, days.
    style_index, core_size
        Style-colour group per SKU and whether the SKU is a core size of it (the
        broken-size-run effect).
    sku_end
        Last selling day of each SKU (empty: the season's end for every SKU).
    """

    store_ids: tuple[str, ...]
    warehouse_ids: tuple[str, ...]
    skus: tuple[str, ...]
    full_price: FloatArray
    salvage_value: FloatArray
    products: pl.DataFrame
    stores: pl.DataFrame
    lane_cost_unit: FloatArray
    lane_cost_shipment: FloatArray
    lane_lead_days: IntArray
    style_index: IntArray
    core_size: BoolArray
    sku_end: tuple[dt.date, ...] = ()

    @property
    def location_ids(self) -> tuple[str, ...]:
        return self.store_ids + self.warehouse_ids

    @property
    def n_stores(self) -> int:
        return len(self.store_ids)

    def loc_index(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.location_ids)}

    def sku_index(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.skus)}


@dataclass
class History:
    """Simulated sales (sparse per day) and snapshots, to build a retailer's view.

    Attributes
    ----------
    sales
        ``(day, flat store x sku index, units, revenue)`` per selling day.
    snapshots
        ``(date, flat location x sku index, on hand, in transit)`` per decision day, dated the
        day before (the close of the day the retailer knows).
    """

    n_skus: int
    sales: list[tuple[dt.date, IntArray, IntArray, FloatArray]] = field(default_factory=list)
    snapshots: list[tuple[dt.date, IntArray, IntArray, IntArray]] = field(default_factory=list)


@dataclass
class SimResult:
    """Everything one policy run on one seed produced.

    Attributes
    ----------
    policy, seed
        Which run.
    space
        Axis order and static data.
    initial
        Initial stock, units, (locations, skus).
    final_on_hand, final_in_transit
        What is left after the last day and the salvage (zero unless a policy left stock of a
        SKU past its season end), (locations, skus).
    daily
        One row per day: ``date, week, price_factor`` (mean over SKUs still selling),
        ``demand_units, sold_units, sold_full_units, revenue, revenue_full, lost_units,
        lost_value, moved_units, transfer_cost, shipments, on_hand, in_transit, sold_cum,
        salvaged_units, salvage_value, salvaged_cum`` (salvage happens on each SKU's season
        end); ``on_hand + in_transit + sold_cum + salvaged_cum`` equals the initial units on
        every row.
    by_store_week, by_sku_week
        Sales by ``week`` and ``store_id`` / ``sku``: ``demand_units, sold_units,
        sold_full_units, revenue, revenue_full, lost_units, lost_value``.
    salvage_by_store, salvage_by_sku
        Units salvaged at season end per location (where they were, or travelling to) / SKU.
    moves
        Every executed move: ``ship_date, arrival_date, sku, from_id, to_id, units,
        cost`` (cost: units x cost per unit + the shipment's fixed cost allocated by units),
        ``kind`` (allocation or transfer), ``requested`` units and ``estimated`` (the line's
        net benefit as the policy estimated it, currency; null when it gives none).
    seconds, decision_seconds
        Wall time of the run and of the policy's decisions, s.
    info
        Extra facts of the run (timings, candidates; ``upper_bound`` for the ``bound`` run).
    """

    policy: str
    seed: int
    space: SimSpace
    initial: IntArray
    final_on_hand: IntArray
    final_in_transit: IntArray
    daily: pl.DataFrame
    by_store_week: pl.DataFrame
    by_sku_week: pl.DataFrame
    salvage_by_store: IntArray
    salvage_by_sku: IntArray
    moves: pl.DataFrame
    seconds: float = 0.0
    decision_seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
