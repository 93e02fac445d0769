"""The season simulator: a day-by-day replay of one season on a network's true demand.

Every location (selling stores first, then warehouses) holds an integer stock vector over the
SKU axis of the truth. Each day:

1. shipments due that day arrive (they are on the shelf from the opening of the day);
2. on a decision day the policy sees a :class:`~stocktailor.simulate.policies.PolicyView`
   (what a retailer knows at the close of the previous day) and returns moves, which leave
   their source at once and arrive after the lane's lead time;
3. customers arrive: demand is a negative-binomial draw around the true rate at the day's
   price (the markdown calendar), customers buy what is on the shelf and the rest is a lost
   sale (with the optional broken-size-run effect, a store missing a core size of a style
   loses a share of the demand for the style's other sizes);
4. after a SKU's last selling day (its ``season_end``) everything left of it, on hand or in
   transit, goes at salvage value.

Demand draws use one random generator per (seed, day), so every policy run on the same seed
meets the same customers (common random numbers) and a policy that moves nothing reproduces
``none`` exactly.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt
import polars as pl

from stocktailor.config import Settings
from stocktailor.contract import Tables
from stocktailor.positions import core_sizes, lane_matrices

if TYPE_CHECKING:
    from stocktailor.simulate.policies import Policy

__all__ = [
    "FloatArray",
    "IntArray",
    "SeasonNetwork",
    "SeasonTruth",
    "SimResult",
    "SimSpace",
    "markdown_factors",
    "simulate",
]

logger = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

_DEMAND_STREAM = 0x5EA5
_BROKEN_STREAM = 0xB50E
_WEATHER_STREAM = 0x3EA7


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
    """A network with a season to simulate (``synth.SyntheticNetwork`` has it)."""

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
class SimSpace:
    """Axis order and static per-SKU / per-location data of a simulation.

    Locations are the selling stores (truth order) followed by warehouses (and any other
    location holding initial stock).
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
    core_size: npt.NDArray[np.bool_]
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


def _core_sizes(
    products: pl.DataFrame, skus: Sequence[str]
) -> tuple[IntArray, npt.NDArray[np.bool_]]:
    """Style index per SKU and whether the SKU is a core size of its style (colour).

    Core sizes are :func:`stocktailor.positions.core_sizes`.
    """
    p = products.select(
        "sku", "style", "color", *(["size_order"] if "size_order" in products.columns else [])
    )
    if "size_order" not in p.columns:
        p = p.with_columns(pl.lit(0, dtype=pl.Int64).alias("size_order"))
    order = pl.DataFrame({"sku": list(skus), "_pos": np.arange(len(skus), dtype=np.int64)})
    p = order.join(p, on="sku", how="left").sort("_pos")
    p = p.with_columns(
        (pl.col("style").cast(pl.String) + "|" + pl.col("color").cast(pl.String)).alias("_sc")
    )
    p = p.with_columns(
        pl.col("_sc").rank("dense").cast(pl.Int64).alias("_g"),
        pl.col("size_order").rank("ordinal").over("_sc").alias("_r"),
        pl.len().over("_sc").alias("_n"),
    )
    core = pl.col("sku").is_in(list(core_sizes(products))).alias("c")
    p = p.with_columns(core)
    return (p["_g"].to_numpy().astype(np.int64) - 1), p["c"].to_numpy().astype(np.bool_)


def build_space(network: SeasonNetwork, settings: Settings) -> tuple[SimSpace, IntArray]:
    """The axis order, static data and initial stock (locations x skus, units) of a network."""
    truth = network.truth
    tables = truth.season_tables
    store_ids = tuple(str(s) for s in truth.store_ids)
    skus = tuple(str(s) for s in truth.skus)
    init = truth.initial_stock
    extra = sorted(set(init["store_id"].unique().to_list()) - set(store_ids))
    wh_known = set(tables.warehouse_ids.to_list())
    warehouses = tuple(sorted(set(extra) | wh_known))
    locs = store_ids + warehouses
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
    products = tables.products
    order = pl.DataFrame({"sku": list(skus)})
    prod = order.join(products, on="sku", how="left")
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
    style_idx, core = _core_sizes(prod, skus)
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
        ``kind`` (allocation or transfer) and ``requested`` units.
    seconds
        Wall time of the run, s.
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


@dataclass
class _History:
    """Simulated sales (sparse per day) and snapshots, to build a retailer's view."""

    n_skus: int
    sales: list[tuple[dt.date, IntArray, IntArray, FloatArray]] = field(default_factory=list)
    snapshots: list[tuple[dt.date, IntArray, IntArray, IntArray]] = field(default_factory=list)
    moves: list[pl.DataFrame] = field(default_factory=list)


def _moves_frame(rows: list[pl.DataFrame]) -> pl.DataFrame:
    schema = {
        "ship_date": pl.Date,
        "arrival_date": pl.Date,
        "sku": pl.String,
        "from_id": pl.String,
        "to_id": pl.String,
        "units": pl.Int64,
        "requested": pl.Int64,
        "cost": pl.Float64,
        "kind": pl.String,
    }
    if not rows:
        return pl.DataFrame(schema=schema)
    return pl.concat(rows, how="vertical").select(list(schema)).cast(schema)  # type: ignore[arg-type]


class _Shipper:
    """Applies moves: checks them against stock, prices them and queues their arrival."""

    def __init__(self, space: SimSpace) -> None:
        self.space = space
        self.li = space.loc_index()
        self.ki = space.sku_index()
        # arrival day index -> (loc, sku, units)
        self.pending: dict[int, list[tuple[IntArray, IntArray, IntArray]]] = {}

    def ship(
        self,
        frame: pl.DataFrame,
        kind: str,
        day_i: int,
        day: dt.date,
        on_hand: IntArray,
        in_transit: IntArray,
    ) -> tuple[pl.DataFrame, int, float, int]:
        """Ship ``frame`` (sku, from_id, to_id, units); return the executed moves.

        Units beyond the source's on-hand stock are cut (a policy cannot ship what is not
        there); the cut is visible as ``requested - units``.
        """
        for col in ("sku", "from_id", "to_id", "units"):
            if col not in frame.columns:
                msg = f"policy decisions ({kind}): column {col!r} is missing"
                raise ValueError(msg)
        f = frame.select("sku", "from_id", "to_id", pl.col("units").cast(pl.Int64))
        f = f.filter((pl.col("units") > 0) & (pl.col("from_id") != pl.col("to_id")))
        if f.height == 0:
            return _moves_frame([]), 0, 0.0, 0
        src = f["from_id"].replace_strict(self.li, return_dtype=pl.Int64, default=-1).to_numpy()
        dst = f["to_id"].replace_strict(self.li, return_dtype=pl.Int64, default=-1).to_numpy()
        k = f["sku"].replace_strict(self.ki, return_dtype=pl.Int64, default=-1).to_numpy()
        for name, arr, col in (
            ("location", src, "from_id"),
            ("location", dst, "to_id"),
            ("sku", k, "sku"),
        ):
            bad = np.flatnonzero(arr < 0)
            if bad.size:
                msg = (
                    f"policy decisions ({kind}): row {int(bad[0]) + 1} column {col!r}: "
                    f"unknown {name} {f[col][int(bad[0])]!r}"
                )
                raise ValueError(msg)
        req = f["units"].to_numpy().astype(np.int64)
        # Serve rows in order; a source's stock is shared by its rows of the same sku.
        units = np.zeros_like(req)
        avail = on_hand.copy()
        order = np.arange(len(req))
        for r in order:
            take = min(int(req[r]), int(avail[src[r], k[r]]))
            if take > 0:
                units[r] = take
                avail[src[r], k[r]] -= take
        keep = units > 0
        np.subtract.at(on_hand, (src[keep], k[keep]), units[keep])
        lead = self.space.lane_lead_days[src, dst]
        cu = self.space.lane_cost_unit[src, dst]
        cs = self.space.lane_cost_shipment[src, dst]
        # Fixed cost once per (from, to) lane used today, allocated over its units.
        lane_key = src * len(self.li) + dst
        lane_units: dict[int, int] = {}
        for key, u in zip(lane_key[keep].tolist(), units[keep].tolist(), strict=True):
            lane_units[key] = lane_units.get(key, 0) + int(u)
        share = np.array(
            [units[r] / lane_units[int(lane_key[r])] if keep[r] else 0.0 for r in order],
            dtype=np.float64,
        )
        cost = units * cu + share * cs
        for lt in np.unique(lead[keep]):
            sel = keep & (lead == lt)
            arr_i = day_i + int(lt)
            np.add.at(in_transit, (dst[sel], k[sel]), units[sel])
            self.pending.setdefault(arr_i, []).append((dst[sel], k[sel], units[sel]))
        out = pl.DataFrame(
            {
                "ship_date": [day] * len(req),
                "arrival_date": [day + dt.timedelta(days=int(x)) for x in lead],
                "sku": f["sku"],
                "from_id": f["from_id"],
                "to_id": f["to_id"],
                "units": units,
                "requested": req,
                "cost": cost,
                "kind": [kind] * len(req),
            }
        ).filter(pl.col("requested") > 0)
        return out, int(units.sum()), float(cost.sum()), len(lane_units)

    def cancel(self, skus: IntArray) -> None:
        """Drop pending arrivals of ``skus`` (their season ended; they were salvaged)."""
        for key, items in list(self.pending.items()):
            kept = []
            for dst, k, u in items:
                keep = ~np.isin(k, skus)
                if keep.any():
                    kept.append((dst[keep], k[keep], u[keep]))
            if kept:
                self.pending[key] = kept
            else:
                del self.pending[key]

    def arrive(self, day_i: int, on_hand: IntArray, in_transit: IntArray) -> None:
        for dst, k, u in self.pending.pop(day_i, []):
            np.add.at(on_hand, (dst, k), u)
            np.subtract.at(in_transit, (dst, k), u)


def _broken_factor(space: SimSpace, shelf: IntArray, effect: float) -> FloatArray:
    """Share of demand kept per (store, sku) under the broken-size-run effect."""
    n_groups = int(space.style_index.max()) + 1 if space.style_index.size else 0
    missing_core = (shelf == 0) & space.core_size[None, :]
    counts = np.zeros((shelf.shape[0], n_groups), dtype=np.int64)
    np.add.at(counts.T, space.style_index, missing_core.T.astype(np.int64))
    broken = counts[:, space.style_index] > 0
    out: FloatArray = np.where(broken, 1.0 - effect, 1.0)
    return out


def simulate(
    network: SeasonNetwork,
    policy: Policy,
    settings: Settings,
    *,
    seed: int,
    policy_name: str | None = None,
    progress: Callable[[int], None] | None = None,
    space: tuple[SimSpace, IntArray] | None = None,
) -> SimResult:
    """Run one season of ``network`` under ``policy``.

    Each SKU sells from ``season_start`` to its own ``season_end`` (products table, capped at
    the network's), at the markdown calendar's price counted back from that day; what is left
    of it then, on hand or in transit, goes at its salvage value.

    Parameters
    ----------
    network
        A network with ``truth`` (see :class:`SeasonNetwork`).
    policy
        Decides moves on each decision day (see :mod:`stocktailor.simulate.policies`).
    settings
        ``settings.simulation`` (decision cadence, broken-size-run effect, view horizons) and
        ``settings.season.markdown_calendar`` are used.
    seed
        Seeds the demand draws: the same seed gives every policy the same customers.
    policy_name
        Label of the run (default: the policy's ``name`` attribute).
    progress
        Called with 1 after each simulated day.
    space
        Precomputed :func:`build_space` result (reused across policies of one seed).

    Returns
    -------
    SimResult
    """
    import time

    from stocktailor.simulate.view import PolicyView

    t0 = time.perf_counter()
    sim = settings.simulation
    sp, stock0 = space if space is not None else build_space(network, settings)
    truth = network.truth
    start, end = network.season_start, network.season_end
    if end < start:
        msg = f"season_end {end} is before season_start {start}"
        raise ValueError(msg)
    n_days = (end - start).days + 1
    days = [start + dt.timedelta(days=i) for i in range(n_days)]
    n_s, n_k = sp.n_stores, len(sp.skus)
    sku_end = sp.sku_end or (end,) * n_k
    pf = markdown_matrix(days, sku_end, settings.season.markdown_calendar)
    end_idx = np.array([(e - start).days for e in sku_end], dtype=np.int64)
    on_hand = stock0.copy()
    in_transit = np.zeros_like(on_hand)
    carried = stock0 > 0
    initial_total = int(stock0.sum())
    shipper = _Shipper(sp)
    hist = _History(n_skus=n_k)
    n_weeks = (n_days + 6) // 7
    agg_store = np.zeros((7, n_weeks, n_s), dtype=np.float64)
    agg_sku = np.zeros((7, n_weeks, n_k), dtype=np.float64)
    salvage_by_store = np.zeros(on_hand.shape[0], dtype=np.int64)
    salvage_by_sku = np.zeros(n_k, dtype=np.int64)
    daily_rows: list[dict[str, Any]] = []
    moves: list[pl.DataFrame] = []
    sold_cum = 0
    salvaged_cum = 0
    decide_s = 0.0
    received_at = np.full(on_hand.shape, -(10**6), dtype=np.int64)
    chunk_rate: FloatArray | None = None
    chunk_start = 0
    name = policy_name or str(getattr(policy, "name", type(policy).__name__))
    for d, day in enumerate(days):
        before = on_hand.copy() if shipper.pending.get(d) else None
        shipper.arrive(d, on_hand, in_transit)
        if before is not None:
            received_at[on_hand > before] = d
            carried |= on_hand > before
        moved_units, cost, shipments = 0, 0.0, 0
        if d % sim.decision_every_days == 0:
            hist.snapshots.append(
                (day - dt.timedelta(days=1), *_sparse_snapshot(on_hand, in_transit, carried))
            )
            view = PolicyView(
                day=day,
                day_index=d,
                season_start=start,
                season_end=end,
                space=sp,
                on_hand=on_hand.copy(),
                in_transit=in_transit.copy(),
                received_days_ago=d - received_at,
                price_factor=pf,
                settings=settings,
                base_tables=network.tables,
                season_tables=truth.season_tables,
                history=hist,
                seed=seed,
            )
            t1 = time.perf_counter()
            decisions = policy.decide(view)
            decide_s += time.perf_counter() - t1
            for kind, frame in (
                ("allocation", decisions.allocation),
                ("transfer", decisions.transfers),
            ):
                if frame is None or frame.height == 0:
                    continue
                done, u, c, n_ship = shipper.ship(frame, kind, d, day, on_hand, in_transit)
                if done.height:
                    moves.append(done)
                moved_units += u
                cost += c
                shipments += n_ship
            before = on_hand.copy()
            shipper.arrive(d, on_hand, in_transit)  # zero-lead moves are on the shelf today
            got = on_hand > before
            received_at[got] = d
            carried |= got | (in_transit > 0)
        # customers
        if chunk_rate is None or d - chunk_start >= chunk_rate.shape[0]:
            chunk_start = d
            last = min(n_days - 1, d + 6)
            chunk_rate = np.asarray(
                truth.expected_demand(day, days[last], price_factor=pf[d : last + 1]),
                dtype=np.float64,
            )
        active = end_idx >= d
        rate = chunk_rate[d - chunk_start]
        if not active.all():
            rate = np.where(active[None, :], rate, 0.0)
        rng = np.random.default_rng([seed, _DEMAND_STREAM, d])
        demand = np.asarray(truth.sample_demand(rate, rng), dtype=np.int64)
        shelf = on_hand[:n_s]
        if sim.broken_size_run_effect > 0.0:
            keep = _broken_factor(sp, shelf, sim.broken_size_run_effect)
            rng_b = np.random.default_rng([seed, _BROKEN_STREAM, d])
            demand = rng_b.binomial(demand, keep).astype(np.int64)
        sold = np.minimum(demand, shelf)
        shelf -= sold
        lost = demand - sold
        price = sp.full_price * pf[d]
        full = pf[d] >= 1.0
        price_full = np.where(full, price, 0.0)
        w = d // 7
        sold_k = sold.sum(axis=0)
        lost_k = lost.sum(axis=0)
        rev_k = sold_k * price
        vals_store = (
            demand.sum(axis=1),
            sold.sum(axis=1),
            sold[:, full].sum(axis=1),
            sold @ price,
            sold @ price_full,
            lost.sum(axis=1),
            lost @ price,
        )
        vals_sku = (
            demand.sum(axis=0),
            sold_k,
            np.where(full, sold_k, 0),
            rev_k,
            sold_k * price_full,
            lost_k,
            lost_k * price,
        )
        for j in range(7):
            agg_store[j, w] += vals_store[j]
            agg_sku[j, w] += vals_sku[j]
        nz = np.flatnonzero(sold)
        if nz.size:
            units_nz = sold.ravel()[nz]
            hist.sales.append((day, nz.astype(np.int64), units_nz, units_nz * price[nz % n_k]))
        n_sold = int(sold_k.sum())
        sold_cum += n_sold
        # SKUs whose season ends today: the rest goes at salvage value
        ending = np.flatnonzero(end_idx == d)
        salv_units, salv_value = 0, 0.0
        if ending.size:
            left = on_hand[:, ending] + in_transit[:, ending]
            salvage_by_store += left.sum(axis=1)
            per_sku = left.sum(axis=0)
            salvage_by_sku[ending] += per_sku
            salv_units = int(per_sku.sum())
            salv_value = float(per_sku @ sp.salvage_value[ending])
            on_hand[:, ending] = 0
            in_transit[:, ending] = 0
            shipper.cancel(ending)
        salvaged_cum += salv_units
        oh, it = int(on_hand.sum()), int(in_transit.sum())
        daily_rows.append(
            {
                "date": day,
                "week": w,
                "price_factor": float(pf[d][active].mean()) if active.any() else 1.0,
                "demand_units": int(demand.sum()),
                "sold_units": n_sold,
                "sold_full_units": int(sold_k[full].sum()),
                "revenue": float(rev_k.sum()),
                "revenue_full": float((sold_k * price_full).sum()),
                "lost_units": int(lost_k.sum()),
                "lost_value": float((lost_k * price).sum()),
                "moved_units": moved_units,
                "transfer_cost": cost,
                "shipments": shipments,
                "on_hand": oh,
                "in_transit": it,
                "sold_cum": sold_cum,
                "salvaged_units": salv_units,
                "salvage_value": salv_value,
                "salvaged_cum": salvaged_cum,
            }
        )
        if oh + it + sold_cum + salvaged_cum != initial_total:
            msg = (
                f"simulator lost units on {day}: {oh}+{it}+{sold_cum}+{salvaged_cum} "
                f"!= {initial_total}"
            )
            raise AssertionError(msg)
        if progress is not None:
            progress(1)
    # anything left (e.g. a SKU whose season_end is before season_start) goes at salvage
    left = on_hand + in_transit
    if left.sum():
        salvage_by_store += left.sum(axis=1)
        per_sku = left.sum(axis=0)
        salvage_by_sku += per_sku
        daily_rows[-1]["salvaged_units"] += int(per_sku.sum())
        daily_rows[-1]["salvage_value"] += float(per_sku @ sp.salvage_value)
        daily_rows[-1]["salvaged_cum"] += int(per_sku.sum())
        daily_rows[-1]["on_hand"] = 0
        daily_rows[-1]["in_transit"] = 0
    daily = pl.DataFrame(daily_rows)
    cols = (
        "demand_units",
        "sold_units",
        "sold_full_units",
        "revenue",
        "revenue_full",
        "lost_units",
        "lost_value",
    )
    by_store = _agg_frame(agg_store, "store_id", list(sp.store_ids), cols)
    by_sku = _agg_frame(agg_sku, "sku", list(sp.skus), cols)
    return SimResult(
        policy=name,
        seed=seed,
        space=sp,
        initial=stock0,
        final_on_hand=on_hand,
        final_in_transit=in_transit,
        daily=daily,
        by_store_week=by_store,
        by_sku_week=by_sku,
        salvage_by_store=salvage_by_store,
        salvage_by_sku=salvage_by_sku,
        moves=_moves_frame(moves),
        seconds=time.perf_counter() - t0,
        decision_seconds=decide_s,
    )


def _sparse_snapshot(
    on_hand: IntArray, in_transit: IntArray, carried: npt.NDArray[np.bool_]
) -> tuple[IntArray, IntArray, IntArray]:
    """Snapshot rows: every cell the location carries (held or received), zeros included."""
    flat_oh = on_hand.ravel()
    flat_it = in_transit.ravel()
    nz = np.flatnonzero(carried.ravel() | (flat_oh != 0) | (flat_it != 0))
    return nz.astype(np.int64), flat_oh[nz].copy(), flat_it[nz].copy()


def _agg_frame(agg: FloatArray, key: str, ids: list[str], cols: Sequence[str]) -> pl.DataFrame:
    n_weeks, n = agg.shape[1], agg.shape[2]
    data: dict[str, Any] = {
        "week": np.repeat(np.arange(n_weeks, dtype=np.int64), n),
        key: ids * n_weeks,
    }
    for j, c in enumerate(cols):
        v = agg[j].ravel()
        data[c] = v.astype(np.int64) if c.endswith("units") else v
    return pl.DataFrame(data)
