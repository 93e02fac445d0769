"""Policies: who decides what moves where during a simulated season.

A policy is any object with ``decide(view: PolicyView) -> Decisions``. Built-ins, by name:

``none``
    Moves nothing: the "old way" allocation sells where it was put.
``rule``
    A planner's weeks-of-cover rule, SKU by SKU, like common commercial tools: velocity is the
    recent sales rate; a store holding more than ``rule_donor_multiple`` times its target cover
    gives its excess (and the warehouse gives what it holds) to the stores with the least cover,
    least covered first, ignoring lane costs beyond the minimum transfer quantity.
``stocktailor``
    The product: store clusters, the demand model (refitted every ``refit_every_weeks`` weeks,
    demand sensing in between), the warehouse allocation and the cost-benefit transfer
    optimiser, on the simulator's arrays within a work budget per decision.
``oracle``
    The same optimiser fed the true demand rates (perfect hindsight of the mean, not of the
    draws): the practical upper bound.

Policies are built per run by :func:`make_policy` (a fresh object per seed, so learned state
never leaks between runs).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import polars as pl

from stocktailor.config import Settings
from stocktailor.simulate.core import FloatArray, IntArray, SeasonNetwork
from stocktailor.simulate.sensing import DemandSensor, WeeklyForecast, scale_windows
from stocktailor.simulate.view import PolicyView

__all__ = [
    "POLICIES",
    "Decisions",
    "NonePolicy",
    "OraclePolicy",
    "Policy",
    "RulePolicy",
    "StocktailorPolicy",
    "make_policy",
    "register_policy",
    "screen_candidates",
    "true_windows",
]

logger = logging.getLogger(__name__)

MOVE_COLUMNS = ("sku", "from_id", "to_id", "units")


def _empty_moves() -> pl.DataFrame:
    return pl.DataFrame(
        schema={"sku": pl.String, "from_id": pl.String, "to_id": pl.String, "units": pl.Int64}
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
        return cls(_empty_moves(), None)


class Policy(Protocol):
    """The plug-in interface of the simulator."""

    name: str

    def decide(self, view: PolicyView) -> Decisions:
        """Moves to ship on ``view.day`` given what a retailer knows."""
        ...


PolicyFactory = Callable[[SeasonNetwork, Settings], Policy]
POLICIES: dict[str, PolicyFactory] = {}


def register_policy(name: str, factory: PolicyFactory) -> None:
    """Make ``factory(network, settings)`` available as policy ``name``."""
    POLICIES[name] = factory


def make_policy(name: str, network: SeasonNetwork, settings: Settings) -> Policy:
    """A fresh policy object for one run."""
    try:
        factory = POLICIES[name]
    except KeyError:
        msg = f"unknown policy {name!r}; expected one of {sorted(POLICIES)}"
        raise ValueError(msg) from None
    return factory(network, settings)


class NonePolicy:
    """Moves nothing."""

    name = "none"

    def decide(self, view: PolicyView) -> Decisions:
        return Decisions.nothing()


def northwest_corner(supply: IntArray, need: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    """Greedy matching of ordered donors to ordered receivers.

    The first donor fills the first receiver, then the next, and so on (the north-west
    corner rule), in O(donors + receivers).

    Returns
    -------
    tuple
        ``(donor position, receiver position, units)`` of every non-empty pair.
    """
    cs = np.cumsum(supply)
    cn = np.cumsum(need)
    total = min(int(cs[-1]) if cs.size else 0, int(cn[-1]) if cn.size else 0)
    if total <= 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z, z
    cuts = np.unique(np.concatenate([cs[cs < total], cn[cn < total], [total]]))
    lo = np.concatenate([[0], cuts[:-1]])
    units = cuts - lo
    keep = units > 0
    lo, units = lo[keep], units[keep]
    d = np.searchsorted(cs, lo, side="right")
    r = np.searchsorted(cn, lo, side="right")
    return d.astype(np.int64), r.astype(np.int64), units.astype(np.int64)


class RulePolicy:
    """Weeks-of-cover rebalancing, SKU by SKU (see the module docstring)."""

    name = "rule"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def decide(self, view: PolicyView) -> Decisions:
        sim = self.settings.simulation
        cons = self.settings.constraints
        window = min(sim.rule_window_days, view.day_index)
        if window < 7:
            return Decisions.nothing()  # no sales rate yet
        n_s = view.space.n_stores
        v = view.sales_units(window).astype(np.float64) / window  # units/day
        on_hand = view.on_hand
        stock = (on_hand + view.in_transit)[:n_s].astype(np.float64)
        # a store that sold out looks slow: give it at least half the chain's average rate
        chain = v.mean(axis=0)
        v_eff = np.where(on_hand[:n_s] == 0, np.maximum(v, 0.5 * chain[None, :]), v)
        horizon = min(sim.rule_target_weeks * 7.0, float(view.remaining_days))
        target = np.ceil(v_eff * horizon)
        cover = np.where(v_eff > 0, stock / np.maximum(v_eff, 1e-12), np.inf)
        need = np.maximum(target - stock, 0.0).astype(np.int64)
        need[(v_eff <= 0)] = 0
        movable = view.movable()
        keep = np.maximum(target, cons.presentation_minimum)
        donor = (stock > sim.rule_donor_multiple * target) | (v_eff <= 0)
        excess_s = (
            np.where(donor, np.minimum(movable[:n_s], on_hand[:n_s] - keep), 0)
            .clip(0)
            .astype(np.int64)
        )
        excess_w = movable[n_s:].astype(np.int64)
        locs = view.location_ids
        out_sku: list[np.ndarray] = []
        out_from: list[np.ndarray] = []
        out_to: list[np.ndarray] = []
        out_units: list[np.ndarray] = []
        min_units = cons.min_transfer_units
        pack = cons.pack_size
        has_need = np.flatnonzero(need.sum(axis=0) > 0)
        has_excess = excess_s.sum(axis=0) + excess_w.sum(axis=0) > 0
        for k in has_need:
            if not has_excess[k]:
                continue
            recv = np.flatnonzero(need[:, k] > 0)
            recv = recv[np.argsort(cover[recv, k], kind="stable")]
            ds = np.flatnonzero(excess_s[:, k] > 0)
            ds = ds[np.argsort(-cover[ds, k], kind="stable")]
            dw = np.flatnonzero(excess_w[:, k] > 0) + n_s
            donors = np.concatenate([dw, ds])
            supply = np.concatenate([excess_w[dw - n_s, k], excess_s[ds, k]])
            d, r, u = northwest_corner(supply, need[recv, k])
            u = (u // pack) * pack
            ok = u >= min_units
            if not ok.any():
                continue
            out_sku.append(np.full(int(ok.sum()), k))
            out_from.append(donors[d[ok]])
            out_to.append(recv[r[ok]])
            out_units.append(u[ok])
        if not out_sku:
            return Decisions.nothing()
        ks = np.concatenate(out_sku)
        fr = np.concatenate(out_from)
        to = np.concatenate(out_to)
        frame = pl.DataFrame(
            {
                "sku": pl.Series(list(view.skus), dtype=pl.String).gather(ks),
                "from_id": pl.Series(list(locs), dtype=pl.String).gather(fr),
                "to_id": pl.Series(list(locs), dtype=pl.String).gather(to),
                "units": np.concatenate(out_units).astype(np.int64),
            }
        )
        return Decisions(transfers=frame)


# ---------------------------------------------------------------------------------------------
# Optimiser-driven policies


def forecast_from_rates(
    view: PolicyView,
    weekly_mean: FloatArray,
    weekly_var: FloatArray,
    first_week: dt.date,
) -> pl.DataFrame:
    """A forecast frame (store_id, sku, week_start, mean, var, p10, p50, p90) from arrays.

    ``weekly_mean``/``weekly_var`` have shape (weeks, stores, skus), units per week.
    """
    n_w, _n_s, n_k = weekly_mean.shape
    mean = weekly_mean.reshape(n_w, -1)
    var = weekly_var.reshape(n_w, -1)
    keep = mean.sum(axis=0) > 1e-9
    cells = np.flatnonzero(keep)
    m = mean[:, cells].ravel()
    v = var[:, cells].ravel()
    sd = np.sqrt(np.maximum(v, 0.0))
    weeks = np.repeat(np.arange(n_w), cells.size)
    cell = np.tile(cells, n_w)
    week_start = pl.Series(
        [first_week + dt.timedelta(days=7 * int(i)) for i in range(n_w)], dtype=pl.Date
    ).gather(weeks)
    return pl.DataFrame(
        {
            "store_id": pl.Series(list(view.store_ids), dtype=pl.String).gather(cell // n_k),
            "sku": pl.Series(list(view.skus), dtype=pl.String).gather(cell % n_k),
            "week_start": week_start,
            "mean": m,
            "var": v,
            "p10": np.maximum(m - 1.2816 * sd, 0.0),
            "p50": m,
            "p90": m + 1.2816 * sd,
        }
    )


def _as_moves(frame: pl.DataFrame | None) -> pl.DataFrame | None:
    if frame is None or frame.height == 0:
        return None
    return frame.select(
        pl.col("sku").cast(pl.String),
        pl.col("from_id").cast(pl.String),
        pl.col("to_id").cast(pl.String),
        pl.col("units").cast(pl.Int64),
    )


def with_inbound(tables: Any, as_of: dt.date, moves: pl.DataFrame | None) -> Any:
    """``tables`` with ``moves`` counted as in transit to their destinations at ``as_of``.

    The transfer optimiser then plans store moves on the position after today's allocation.
    """
    if moves is None or moves.height == 0:
        return tables
    inv = tables.inventory
    add = moves.group_by(pl.col("to_id").alias("store_id"), "sku").agg(
        pl.col("units").sum().alias("_add")
    )
    snap = inv.filter(pl.col("date") == as_of)
    rest = inv.filter(pl.col("date") != as_of)
    keys = snap.select("store_id", "sku")
    new_rows = add.join(keys, on=["store_id", "sku"], how="anti").select(
        pl.lit(as_of, dtype=pl.Date).alias("date"),
        "store_id",
        "sku",
        pl.lit(0, dtype=pl.Int64).alias("on_hand"),
        pl.lit(0, dtype=pl.Int64).alias("in_transit"),
    )
    snap = pl.concat([snap, new_rows.select(snap.columns).cast(snap.schema)], how="vertical")
    snap = (
        snap.join(add, on=["store_id", "sku"], how="left")
        .with_columns((pl.col("in_transit") + pl.col("_add").fill_null(0)).alias("in_transit"))
        .drop("_add")
    )
    return tables.replace(inventory=pl.concat([rest, snap], how="vertical"))


@dataclass
class _Static:
    """What the array-native optimiser policies need that does not change during a season."""

    n_stores: int
    store_ids: list[str]
    skus: list[str]
    styles: list[str]
    style_index: IntArray
    style_color: list[str]
    core: npt.NDArray[np.bool_]
    price: FloatArray
    salvage: FloatArray
    unit: FloatArray
    fixed: FloatArray
    lead: IntArray
    dest_lead: IntArray
    home: IntArray
    home_unit: FloatArray
    home_lead: IntArray
    capacity: FloatArray | None
    eligible: npt.NDArray[np.bool_] | None
    sku_end: IntArray


def _static(view: PolicyView, settings: Settings) -> _Static:
    from stocktailor.positions import core_sizes
    from stocktailor.transfers import destination_lead_days, eligibility_matrix

    sp = view.space
    n_s = sp.n_stores
    tables = view.season_tables
    prod = sp.products
    skus = list(sp.skus)
    store_ids = list(sp.store_ids)
    styles = prod["style"].cast(pl.String).to_list()
    style_codes = {s: i for i, s in enumerate(sorted(set(styles)))}
    core_set = core_sizes(prod)
    unit = sp.lane_cost_unit[:n_s, :n_s]
    lead = sp.lane_lead_days[:n_s, :n_s]
    w_unit = sp.lane_cost_unit[n_s:, :n_s]
    if w_unit.shape[0]:
        home = np.argmin(w_unit, axis=0).astype(np.int64)
        home_unit = w_unit[home, np.arange(n_s)]
        home_lead = sp.lane_lead_days[n_s:, :n_s][home, np.arange(n_s)].astype(np.int64)
    else:
        home = np.zeros(n_s, dtype=np.int64)
        home_unit = np.zeros(n_s)
        home_lead = np.zeros(n_s, dtype=np.int64)
    st = pl.DataFrame({"store_id": store_ids}).join(tables.stores, on="store_id", how="left")
    capacity = None
    if settings.constraints.respect_capacity and "capacity_units" in st.columns:
        cap = st["capacity_units"].cast(pl.Float64).fill_null(float("nan")).to_numpy()
        capacity = None if np.isnan(cap).all() else cap
    return _Static(
        n_stores=n_s,
        store_ids=store_ids,
        skus=skus,
        styles=styles,
        style_index=np.array([style_codes[s] for s in styles], dtype=np.int64),
        style_color=[
            f"{a}|{b}" for a, b in zip(styles, prod["color"].cast(pl.String).to_list(), strict=True)
        ],
        core=np.array([k in core_set for k in skus], dtype=bool),
        price=sp.full_price,
        salvage=sp.salvage_value,
        unit=unit,
        fixed=sp.lane_cost_shipment[:n_s, :n_s],
        lead=lead,
        dest_lead=destination_lead_days(lead, unit),
        home=home,
        home_unit=home_unit,
        home_lead=home_lead,
        capacity=capacity,
        eligible=eligibility_matrix(tables.assortment, tables.products, store_ids, skus),
        sku_end=view.sku_end_index(),
    )


def _headroom(st: _Static, stock: IntArray) -> IntArray | None:
    """Units each store may still take in (capacity - units on hand and inbound)."""
    if st.capacity is None:
        return None
    total = stock.sum(axis=1).astype(np.float64)
    big = float(np.iinfo(np.int64).max // 4)
    out: IntArray = np.where(np.isnan(st.capacity), big, st.capacity - total).astype(np.int64)
    return out


class _OptimiserPolicy:
    """Allocation of warehouse stock, then the transfer optimiser, on every decision day.

    Decisions start once ``simulation.min_history_days`` of season sales exist (the demand
    model needs a few weeks); the oracle keeps the same calendar so the two differ only in
    the demand they are fed (:meth:`windows`).

    Every decision works on arrays: the position is the simulator's as a retailer reads it off
    the snapshots (on hand, in transit, and ``movable = on hand - presentation minimum - units
    received in the last min_days_before_retransfer days`` from consecutive snapshots net of
    sales, as :func:`stocktailor.positions.position_at`); warehouse stock goes out with
    :func:`stocktailor.allocation.allocate_arrays` (holdback as
    :func:`stocktailor.allocation.allocate`), then store-to-store moves are planned by
    :func:`stocktailor.transfers.plan_transfers_from_arrays` on the position with that
    allocation counted as inbound, for the SKUs :func:`screen_candidates` keeps.
    """

    name = "optimiser"

    def __init__(self, settings: Settings) -> None:
        solver = settings.solver.model_copy(
            update={"fixed_cost_method": settings.simulation.fixed_cost_method}
        )
        self.settings = settings.model_copy(update={"solver": solver})
        self.timings_: dict[str, float] = {}
        self.cpu_timings_: dict[str, float] = {}
        self._cpu_mark = 0.0
        self.allocated_ = False
        self.static_: _Static | None = None
        # (day index, on hand at the stores, units sold since the previous snapshot)
        self.snapshots_: list[tuple[int, IntArray, IntArray]] = []
        self.stats_: list[dict[str, float]] = []
        self.reviewed_: IntArray | None = None  # last decision day each SKU was reviewed
        self.replenished_: IntArray | None = None  # ... and replenished from the warehouse

    def _time(self, key: str, t0: float) -> None:
        import time

        self.timings_[key] = self.timings_.get(key, 0.0) + time.perf_counter() - t0
        # CPU time of this process since the last mark (wall time is inflated on a busy machine)
        cpu = time.process_time()
        self.cpu_timings_[key] = self.cpu_timings_.get(key, 0.0) + cpu - self._cpu_mark
        self._cpu_mark = cpu

    def ready(self, view: PolicyView) -> bool:
        return view.day_index >= self.settings.simulation.min_history_days

    def budget(self) -> int | None:
        """SKUs per decision the work budget allows (``candidate_max_cells / stores``)."""
        cells = self.settings.simulation.candidate_max_cells
        if cells is None or self.static_ is None:
            return None
        return max(1, cells // max(self.static_.n_stores, 1))

    def prepare(self, view: PolicyView) -> None:
        """Update the demand view before today's decisions (fit, refit, sensing)."""

    def windows(
        self, view: PolicyView, lead: IntArray, cols: IntArray
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """Lead-time and rest-of-season demand of the SKUs ``cols``, ``(stores, cols)`` units.

        ``lead`` is each store's lead time, days: the lead window is ``view.day .. view.day +
        lead - 1``, the rest from then to the SKU's last selling day.
        """
        raise NotImplementedError

    # -- position --------------------------------------------------------------------------

    def _record(self, view: PolicyView) -> None:
        n_s = view.space.n_stores
        prev = self.snapshots_[-1][0] if self.snapshots_ else None
        if prev == view.day_index:
            return
        sold = (
            view.sales_units(view.day_index - prev)
            if prev is not None
            else np.zeros((n_s, len(view.skus)), dtype=np.int64)
        )
        self.snapshots_.append((view.day_index, view.on_hand[:n_s].copy(), sold))
        horizon = view.day_index - 1 - self.settings.constraints.min_days_before_retransfer
        # keep the last snapshot on or before the retransfer window and everything after it
        while len(self.snapshots_) > 2 and self.snapshots_[1][0] - 1 <= horizon:
            self.snapshots_.pop(0)

    def received(self, view: PolicyView) -> IntArray:
        """Units received by each store in the retransfer window, from consecutive snapshots.

        As :func:`stocktailor.positions.position_at`: the snapshots after ``as_of -
        min_days_before_retransfer`` and the one before them; each step's receipts are the
        increase in on hand plus the units sold in between, floored at 0. (A snapshot is
        taken at the opening of every decision day, dated the day before.)
        """
        n_s = view.space.n_stores
        out = np.zeros((n_s, len(view.skus)), dtype=np.int64)
        window_start = view.day_index - 1 - self.settings.constraints.min_days_before_retransfer
        if window_start >= view.day_index - 1:
            return out
        snaps = self.snapshots_
        before = [i for i, sn in enumerate(snaps) if sn[0] - 1 <= window_start]
        start = before[-1] if before else 0
        for i in range(start + 1, len(snaps)):
            _d, oh, sold = snaps[i]
            out += np.maximum(oh - snaps[i - 1][1] + sold, 0)
        return out

    def movable(self, view: PolicyView) -> IntArray:
        """Units each store may ship, as :func:`stocktailor.positions.position_at`."""
        n_s = view.space.n_stores
        cons = self.settings.constraints
        oh = np.maximum(view.on_hand[:n_s], 0)
        mov = np.maximum(oh - cons.presentation_minimum - self.received(view), 0)
        if cons.keep_core_size_run and self.static_ is not None:
            core = self.static_.core[None, :] & (oh > 0)
            mov = np.where(core, np.minimum(mov, oh - 1), mov)
        out: IntArray = mov.astype(np.int64)
        return out

    # -- decisions -------------------------------------------------------------------------

    def decide(self, view: PolicyView) -> Decisions:
        import time

        self._record(view)
        if not self.ready(view):
            return Decisions.nothing()
        self._cpu_mark = time.process_time()
        if self.static_ is None:
            self.static_ = _static(view, self.settings)
        self.prepare(view)
        n_s = view.space.n_stores
        inbound = np.zeros((n_s, len(view.skus)), dtype=np.int64)
        allocation = None
        if view.on_hand[n_s:].sum() > 0:
            # season-start allocation, then replenishment from the holdback on later decisions
            t0 = time.perf_counter()
            allocation = _as_moves(self._allocate(view, inbound))
            self.allocated_ = True
            self._time("allocation", t0)
        t0 = time.perf_counter()
        transfers = _as_moves(self._transfers(view, inbound))
        self._time("transfers", t0)
        return Decisions(transfers=transfers, allocation=allocation)

    def _allocate(self, view: PolicyView, inbound: IntArray) -> pl.DataFrame | None:
        """Warehouse stock to stores, as :func:`stocktailor.allocation.allocate` on arrays.

        Each store is served by its cheapest warehouse; adds the allocated units to
        ``inbound`` (stores x SKUs).
        """
        from stocktailor.allocation import allocate_arrays, holdback_shares

        st = self.static_
        assert st is not None
        n_s = st.n_stores
        supply_total = np.maximum(view.on_hand[n_s:], 0).sum(axis=0)
        cols = np.flatnonzero(supply_total > 0)
        if cols.size == 0:
            return None
        stock = (view.on_hand[:n_s] + view.in_transit[:n_s]).astype(np.int64)
        ml, vl, mr, vr = self.windows(view, st.home_lead, cols)
        budget = self.budget()
        if self.replenished_ is None:
            self.replenished_ = np.full(len(st.skus), -1, dtype=np.int64)
        elif budget is not None and cols.size > budget:
            # replenishment: the SKUs replenished least recently, then the largest shortfall
            short = np.maximum(ml + mr - stock[:, cols], 0.0).sum(axis=0)
            pick = _least_recent_first(self.replenished_[cols], short, budget)
            cols = cols[pick]
            ml, vl, mr, vr = ml[:, pick], vl[:, pick], mr[:, pick], vr[:, pick]
        self.replenished_[cols] = view.day_index
        sol = self.settings.solver
        cons = self.settings.constraints
        hb = holdback_shares(
            ml + mr, vl + vr, sol.holdback_share, sol.holdback_cv_reference, sol.max_holdback_share
        )
        supply = np.floor(supply_total[cols] * (1.0 - hb)).astype(np.int64)
        alloc, _gain = allocate_arrays(
            supply,
            stock[:, cols],
            ml,
            vl,
            mr,
            vr,
            st.price[cols],
            st.salvage[cols],
            st.home_unit,
            eligible=None if st.eligible is None else st.eligible[:, cols],
            headroom=_headroom(st, stock),
            pack_size=cons.pack_size,
            min_units=cons.min_transfer_units,
        )
        r_idx, c_idx = np.nonzero(alloc)
        if r_idx.size == 0:
            return None
        units = alloc[r_idx, c_idx]
        inbound[r_idx, cols[c_idx]] += units
        return pl.DataFrame(
            {
                "sku": pl.Series(st.skus, dtype=pl.String).gather(cols[c_idx]),
                "from_id": pl.Series(list(view.warehouse_ids), dtype=pl.String).gather(
                    st.home[r_idx]
                ),
                "to_id": pl.Series(st.store_ids, dtype=pl.String).gather(r_idx),
                "units": units.astype(np.int64),
            }
        )

    def _transfers(self, view: PolicyView, inbound: IntArray) -> pl.DataFrame | None:
        from stocktailor.transfers import TransferInstance, plan_transfers_from_arrays

        st = self.static_
        assert st is not None
        n_s = st.n_stores
        stock = (view.on_hand[:n_s] + view.in_transit[:n_s] + inbound).astype(np.int64)
        movable = np.minimum(self.movable(view), np.maximum(stock, 0))
        sim = self.settings.simulation
        cols = np.flatnonzero(movable.sum(axis=0) > 0)
        if cols.size == 0:
            return None
        ml, vl, mr, vr = self.windows(view, st.dest_lead, cols)
        if self.reviewed_ is None:
            self.reviewed_ = np.full(len(st.skus), -1, dtype=np.int64)
        kept, _score = screen_candidates(
            stock[:, cols],
            movable[:, cols],
            ml + mr,
            vl + vr,
            st.price[cols],
            st.salvage[cols],
            st.unit,
            sim.candidate_min_gain,
            self.budget(),
            self.reviewed_[cols],
        )
        self.reviewed_[cols[kept]] = view.day_index
        self.stats_.append(
            {"day": float(view.day_index), "skus": float(cols.size), "candidates": float(kept.size)}
        )
        if kept.size == 0:
            return None
        cols = cols[kept]
        inst = TransferInstance(
            store_ids=st.store_ids,
            skus=[st.skus[j] for j in cols],
            styles=[st.styles[j] for j in cols],
            stock=stock[:, cols],
            movable=movable[:, cols],
            mean_lead=ml[:, kept],
            var_lead=vl[:, kept],
            mean_rest=mr[:, kept],
            var_rest=vr[:, kept],
            price=st.price[cols],
            salvage=st.salvage[cols],
            unit_cost=st.unit,
            fixed_cost=st.fixed,
            lead_days=st.lead,
            eligible=None if st.eligible is None else st.eligible[:, cols],
            headroom=_headroom(st, stock),
            season_days=np.maximum(st.sku_end[cols] - (view.day_index - 1), 0).astype(np.float64),
            style_color=[st.style_color[j] for j in cols],
            core_size=st.core[cols],
        )
        frame, _sol = plan_transfers_from_arrays(
            inst,
            view.as_of,
            self.settings,
            products=view.space.products,
            stores=view.space.stores,
        )
        return frame


class StocktailorPolicy(_OptimiserPolicy):
    """Clusters + demand model + allocation + transfer optimiser (the product's pipeline).

    The demand model (and the store clusters) are fitted on the first decision and refitted
    every ``simulation.refit_every_weeks`` weeks; the forecast is kept as dense weekly arrays.
    Between refits the remaining forecast is corrected by demand sensing (``simulation.sensing``:
    in-stock sales since the fit against the forecast of the same cells, per store x style,
    see :mod:`stocktailor.simulate.sensing`), or, with ``simulation.update_between_refits``,
    re-predicted by the last model moved to the new as-of date (``DemandModel.update``).

    The position, allocation and transfers are those of every optimiser policy (see
    ``_OptimiserPolicy``): arrays in, :func:`stocktailor.allocation.allocate_arrays` and
    :func:`stocktailor.transfers.plan_transfers_from_arrays` out.
    """

    name = "stocktailor"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.model_: Any = None
        self.clusters_: pl.DataFrame | None = None
        self.fitted_day_: int | None = None
        self.forecast_: WeeklyForecast | None = None
        self.sensor_: DemandSensor | None = None
        self.ratio_: FloatArray | None = None
        self.last_decision_: int | None = None

    def prepare(self, view: PolicyView) -> None:
        """Fit or refit on schedule, else update the forecast (sensing or model update)."""
        assert self.static_ is not None
        if self.sensor_ is None:
            self.sensor_ = DemandSensor(self.static_.style_index, view.space.n_stores)
        if self._refit_due(view):
            self._refit(view)
        else:
            self._update(view)
        self.last_decision_ = view.day_index

    # -- forecast --------------------------------------------------------------------------

    def _refit_due(self, view: PolicyView) -> bool:
        every = 7 * self.settings.simulation.refit_every_weeks
        return self.fitted_day_ is None or view.day_index - self.fitted_day_ >= every

    def _predict(self, view: PolicyView, tables: Any) -> WeeklyForecast:
        from stocktailor.demand import forecast as demand_forecast
        from stocktailor.demand import markdown_price_plan

        sp = view.space
        n_days = len(view.price_factor)
        n_w = max(1, math.ceil((n_days - view.day_index) / 7))
        fc = WeeklyForecast.empty(view.day_index, n_w, sp.n_stores, len(sp.skus))
        si = {s: i for i, s in enumerate(sp.store_ids)}
        ki = sp.sku_index()
        cfg = self.settings.demand
        if cfg.model == "baseline" or self.model_ is None:
            frame = demand_forecast(tables, view.as_of, self.settings, clusters=self.clusters_)
            fc.add_frame(frame, view.day, si, ki)
            return fc
        plan = markdown_price_plan(tables, view.as_of, self.settings.season.markdown_calendar)
        styles = sorted(set(sp.products["style"].cast(pl.String).to_list()))
        n_parts = max(1, min(self.settings.simulation.predict_partitions, len(styles)))
        for i in range(n_parts):
            part = styles[i::n_parts]
            frame = self.model_.predict(price_plan=plan, styles=part if n_parts > 1 else None)
            fc.add_frame(frame, view.day, si, ki)
        return fc

    def _refit(self, view: PolicyView) -> None:
        import time

        from stocktailor.clustering import StoreClusterer
        from stocktailor.demand import DemandModel

        tables = view.tables()
        if self.clusters_ is None or self.settings.simulation.recluster_on_refit:
            t0 = time.perf_counter()
            try:
                self.clusters_ = (
                    StoreClusterer.from_config(self.settings.clustering)
                    .fit(tables, view.as_of)
                    .labels_
                )
            except ValueError as exc:
                logger.info("stocktailor policy: clustering skipped on %s: %s", view.day, exc)
            self._time("clusters", t0)
        t0 = time.perf_counter()
        cfg = self.settings.demand
        if cfg.model != "baseline":
            self.model_ = DemandModel.from_config(cfg).fit(
                tables, view.as_of, clusters=self.clusters_
            )
        self._time("fit", t0)
        t0 = time.perf_counter()
        self.forecast_ = self._predict(view, tables)
        self._time("predict", t0)
        self.fitted_day_ = view.day_index
        if self.sensor_ is not None:
            self.sensor_.reset()
        self.ratio_ = None

    def _update(self, view: PolicyView) -> None:
        """Between refits: demand sensing, or the model moved to the new as-of date."""
        import time

        sim = self.settings.simulation
        t0 = time.perf_counter()
        if sim.update_between_refits and self.model_ is not None:
            tables = view.tables()
            self.model_.update(tables, view.as_of, clusters=self.clusters_)
            self.forecast_ = self._predict(view, tables)
            self.ratio_ = None
        elif sim.sensing and self.sensor_ is not None and self.forecast_ is not None:
            prev = self.last_decision_
            if prev is not None and prev < view.day_index:
                days = view.day_index - prev
                n_s, n_k = self.sensor_.n_stores, len(view.skus)
                fm, _fv = self.forecast_.window(
                    np.full((n_s, n_k), prev, dtype=np.int64),
                    np.full((n_s, n_k), view.day_index - 1, dtype=np.int64),
                )
                in_stock = (view.on_hand[:n_s] > 0) & (view.received_days_ago[:n_s] >= days)
                self.sensor_.observe(view.sales_units(days), fm, in_stock)
            self.ratio_ = self.sensor_.ratio(sim.sensing_prior_units, sim.sensing_bounds)
        self._time("update", t0)

    def windows(
        self, view: PolicyView, lead: IntArray, cols: IntArray
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """The forecast's lead-time and rest-of-season windows, scaled by the sensing ratios."""
        assert self.forecast_ is not None and self.static_ is not None
        ml, vl, mr, vr = self.forecast_.lead_rest(view.day_index, lead, self.static_.sku_end, cols)
        r = None if self.ratio_ is None else self.ratio_[:, cols]
        ml, vl = scale_windows(ml, vl, r)
        mr, vr = scale_windows(mr, vr, r)
        return ml, vl, mr, vr


def p_at_least(mean: FloatArray, var: FloatArray, k: IntArray) -> FloatArray:
    """P(D >= k) per cell, negative binomial with ``mean``/``var`` (Poisson when var <= mean)."""
    from scipy import stats

    m = np.maximum(mean, 1e-12)
    over = var > m * (1.0 + 1e-9)
    kk = np.asarray(k, dtype=np.float64) - 1.0
    out = np.asarray(stats.poisson.sf(kk, m), dtype=np.float64)
    if over.any():
        mo, vo = m[over], var[over]
        r = mo * mo / (vo - mo)
        out[over] = stats.nbinom.sf(kk[over], r, mo / vo)
    res: FloatArray = np.where(np.asarray(k) <= 0, 1.0, out)
    return res


def _least_recent_first(last: IntArray, score: FloatArray, k: int) -> IntArray:
    """Positions of ``k`` items: the lowest ``last`` first, ties by the highest ``score``."""
    order = np.lexsort((-score, last))
    out: IntArray = np.sort(order[:k]).astype(np.int64)
    return out


def screen_candidates(
    stock: IntArray,
    movable: IntArray,
    mean: FloatArray,
    var: FloatArray,
    price: FloatArray,
    salvage: FloatArray,
    unit_cost: FloatArray,
    min_gain: float | None,
    max_skus: int | None = None,
    last_reviewed: IntArray | None = None,
) -> tuple[IntArray, FloatArray]:
    """The SKUs where a transfer can pay, within a work budget: only they go to the optimiser.

    Moving one unit of a SKU from store ``i`` to store ``j`` gains at most ``(price -
    salvage) * (P(D_j >= S_j + 1) - P(D_i >= S_i))`` less the lane's cost per unit (season
    demand ``D``, stock ``S``; the receiver's lead-time demand, which the unit arrives too late
    for, can only lower the gain). A SKU's *best gain* pairs its strongest receiver with its
    weakest donor (a store with movable units) over the cheapest lane between stores; its
    *score* adds the positive first-unit gains of every receiver against that donor (how much
    there is to move). A SKU is kept when its best gain exceeds ``min_gain``; with
    ``max_skus``, only ``max_skus`` of those: the ones reviewed least recently
    (``last_reviewed``, e.g. the decision day) first, then the highest scores.

    Parameters
    ----------
    stock, movable, mean, var
        Per store x SKU: units now (on hand + inbound), units that may leave, season demand
        mean and variance, units.
    price, salvage
        Currency per unit, per SKU.
    unit_cost
        Lane cost per unit between stores, currency, ``(stores, stores)``.
    min_gain
        Currency per unit; None keeps every SKU (no budget either).
    max_skus
        Keep at most this many SKUs (None: no limit).
    last_reviewed
        When each SKU was last sent to the optimiser (lower = longer ago); default all equal.

    Returns
    -------
    tuple
        ``(positions of the kept SKUs (ascending), score per SKU (currency))``.
    """
    n_k = stock.shape[1]
    if min_gain is None or n_k == 0:
        return np.arange(n_k, dtype=np.int64), np.full(n_k, np.inf)
    margin = np.maximum(price - salvage, 0.0)
    s = np.maximum(stock, 0)
    p_keep = p_at_least(mean, var, s)
    p_add = p_at_least(mean, var, s + 1)
    loss = np.where(movable > 0, p_keep, np.inf).min(axis=0)
    off = unit_cost[~np.eye(unit_cost.shape[0], dtype=bool)]
    cheapest = float(off.min()) if off.size else 0.0
    first = margin[None, :] * (p_add - loss[None, :]) - cheapest  # (stores, skus)
    best = first.max(axis=0) if first.shape[0] else np.full(n_k, -np.inf)
    score = np.where(np.isfinite(best), np.maximum(first, 0.0).sum(axis=0), 0.0)
    keep = np.flatnonzero(np.isfinite(best) & (best > float(min_gain))).astype(np.int64)
    if max_skus is not None and keep.size > max_skus:
        last = np.zeros(n_k, dtype=np.int64) if last_reviewed is None else last_reviewed
        keep = keep[_least_recent_first(last[keep], score[keep], max_skus)]
    return keep, score


class OraclePolicy(_OptimiserPolicy):
    """The same optimiser fed the true demand rates at the calendar's prices.

    The instance (positions, movable units, lanes, eligibility, capacity, candidate SKUs) is
    built exactly as for ``stocktailor``; only the lead-time and rest-of-season demand windows
    are the truth's (negative binomial: ``var = mu + mu^2 / r`` per day, days independent).
    """

    name = "oracle"

    def __init__(self, network: SeasonNetwork, settings: Settings) -> None:
        super().__init__(settings)
        self.network = network
        self.dispersion = float(getattr(network.truth, "dispersion", math.inf))
        self._tot: tuple[FloatArray, FloatArray] | None = None
        self._tot_day = 0

    def ready(self, view: PolicyView) -> bool:
        if not self.settings.simulation.oracle_waits_for_history:
            return True
        return super().ready(view)

    def _totals(self, view: PolicyView) -> tuple[FloatArray, FloatArray]:
        """Sums of the true rate and its square from ``view.day`` to season end, (stores, skus).

        Computed once, then carried forward by subtracting the days that passed.
        """
        n_days = len(view.price_factor)
        i = view.day_index
        if self._tot is None or self._tot_day > i:
            n_s, n_k = view.space.n_stores, len(view.skus)
            m, s2 = np.zeros((n_s, n_k)), np.zeros((n_s, n_k))
            for a in range(i, n_days, 7):
                r = _true_days(self.network, view, a, min(n_days, a + 7))
                m += r.sum(axis=0)
                s2 += (r * r).sum(axis=0)
            self._tot = (m, s2)
        elif self._tot_day < i:
            r = _true_days(self.network, view, self._tot_day, i)
            m = np.maximum(self._tot[0] - r.sum(axis=0), 0.0)
            s2 = np.maximum(self._tot[1] - (r * r).sum(axis=0), 0.0)
            self._tot = (m, s2)
        self._tot_day = i
        return self._tot

    def windows(
        self, view: PolicyView, lead: IntArray, cols: IntArray
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """The truth's lead-time and rest-of-season demand windows (value-weighted).

        As :func:`true_windows`: a store's lead window is its first ``lead`` days from
        ``view.day``, the rest runs to season end; ``var = mean + sum(mu^2) / r``.
        """
        m_tot, s_tot = self._totals(view)
        n_days = len(view.price_factor)
        i = view.day_index
        top = int(lead.max()) if lead.size else 0
        m_lead = np.zeros((lead.size, cols.size))
        s_lead = np.zeros_like(m_lead)
        if top > 0 and i < n_days:
            r = _true_days(self.network, view, i, min(n_days, i + top))[:, :, cols]
            in_lead = np.arange(r.shape[0])[:, None] < lead[None, :]  # (days, stores)
            m_lead = (r * in_lead[:, :, None]).sum(axis=0)
            s_lead = (r * r * in_lead[:, :, None]).sum(axis=0)
        inv = 0.0 if not math.isfinite(self.dispersion) else 1.0 / self.dispersion
        m_rest = np.maximum(m_tot[:, cols] - m_lead, 0.0)
        s_rest = np.maximum(s_tot[:, cols] - s_lead, 0.0)
        return m_lead, m_lead + s_lead * inv, m_rest, m_rest + s_rest * inv


def _true_days(network: SeasonNetwork, view: PolicyView, i0: int, i1: int) -> FloatArray:
    """True rates (days, stores, skus) for season days ``i0..i1-1``, zero after a SKU ends."""
    a = view.season_start + dt.timedelta(days=i0)
    b = view.season_start + dt.timedelta(days=i1 - 1)
    rate = np.asarray(
        network.truth.expected_demand(a, b, price_factor=view.price_factor[i0:i1]),
        dtype=np.float64,
    )
    day_i = np.arange(i0, i1, dtype=np.int64)[:, None]
    selling = day_i <= view.sku_end_index()[None, :]
    weight = selling.astype(np.float64)
    if view.settings.simulation.oracle_value_weighting:
        # the optimiser values every sale at full price: count a markdown sale as the share
        # of a full-price sale's margin over salvage it earns
        price, salvage = view.space.full_price, view.space.salvage_value
        pf = view.price_factor[i0:i1]
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(price > salvage, (pf * price - salvage) / (price - salvage), 1.0)
        weight = weight * np.clip(share, 0.0, 1.0)
    out: FloatArray = rate * weight[:, None, :]
    return out


def true_windows(
    network: SeasonNetwork,
    view: PolicyView,
    rows: IntArray,
    cols: IntArray,
    lead: IntArray,
    dispersion: float,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """True demand during each store's lead time and from arrival to season end.

    Day 0 is ``view.day``; a store's lead window is its first ``lead`` days. Returns
    ``(mean_lead, var_lead, mean_rest, var_rest)`` over ``rows`` x ``cols``, units.
    """
    n_days = len(view.price_factor)
    m_lead = np.zeros((rows.size, cols.size))
    s_lead = np.zeros_like(m_lead)
    m_tot = np.zeros_like(m_lead)
    s_tot = np.zeros_like(m_lead)
    inv = 0.0 if not math.isfinite(dispersion) else 1.0 / dispersion
    i = view.day_index
    while i < n_days:
        j = min(n_days, i + 7)
        r = _true_days(network, view, i, j)[:, rows][:, :, cols]
        m_tot += r.sum(axis=0)
        s_tot += (r * r).sum(axis=0)
        offs = np.arange(i - view.day_index, j - view.day_index)
        in_lead = offs[:, None] < lead[None, :]  # (days, stores)
        if in_lead.any():
            m_lead += (r * in_lead[:, :, None]).sum(axis=0)
            s_lead += (r * r * in_lead[:, :, None]).sum(axis=0)
        i = j
    m_rest = m_tot - m_lead
    s_rest = s_tot - s_lead
    return m_lead, m_lead + s_lead * inv, m_rest, m_rest + s_rest * inv


def true_weekly_demand(
    network: SeasonNetwork, view: PolicyView, dispersion: float
) -> tuple[FloatArray, FloatArray]:
    """True mean and variance of demand per week from ``view.day`` to season end.

    Shape (weeks, stores, skus), units per week; a daily negative binomial with size ``r``
    has variance ``mu + mu^2 / r`` and days are independent.
    """
    n_days = len(view.price_factor)
    n_w = math.ceil((n_days - view.day_index) / 7)
    n_s, n_k = view.space.n_stores, len(view.skus)
    mean = np.zeros((n_w, n_s, n_k), dtype=np.float64)
    var = np.zeros_like(mean)
    inv = 0.0 if not math.isfinite(dispersion) else 1.0 / dispersion
    for w in range(n_w):
        i0 = view.day_index + 7 * w
        i1 = min(n_days, i0 + 7)
        rate = _true_days(network, view, i0, i1)
        mean[w] = rate.sum(axis=0)
        var[w] = mean[w] + (rate**2).sum(axis=0) * inv
    return mean, var


register_policy("none", lambda network, settings: NonePolicy())
register_policy("rule", lambda network, settings: RulePolicy(settings))
register_policy("stocktailor", lambda network, settings: StocktailorPolicy(settings))
register_policy("oracle", lambda network, settings: OraclePolicy(network, settings))
