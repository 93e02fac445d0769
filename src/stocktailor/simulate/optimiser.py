"""The optimiser policies' shared machinery: allocation, then the transfer optimiser, on arrays.

:class:`OptimiserPolicy` is the base of ``stocktailor`` (:mod:`.stocktailor_policy`) and
``same-optimiser-true-demand`` (:mod:`.true_demand`): both build the same instance from the
simulator's arrays and differ only in the demand windows they feed it (:meth:`windows`).
:func:`screen_candidates` is the work budget's screen: the SKUs where a transfer can pay.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from stocktailor.config import Settings
from stocktailor.positions import core_sizes, movable_units, receipts_between
from stocktailor.simulate._types import BoolArray, FloatArray, IntArray
from stocktailor.simulate.decisions import Decisions, as_moves
from stocktailor.simulate.view import PolicyView

__all__ = [
    "OptimiserPolicy",
    "OptimiserStatic",
    "headroom",
    "least_recent_first",
    "optimiser_static",
    "p_at_least",
    "screen_candidates",
]


@dataclass
class OptimiserStatic:
    """What the array-native optimiser policies need that does not change during a season."""

    n_stores: int
    store_ids: list[str]
    skus: list[str]
    styles: list[str]
    style_index: IntArray
    style_color: list[str]
    core: BoolArray
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
    eligible: BoolArray | None
    sku_end: IntArray


def optimiser_static(view: PolicyView, settings: Settings) -> OptimiserStatic:
    """What the optimiser policies need of the network that does not change in a season."""
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
    return OptimiserStatic(
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


def headroom(st: OptimiserStatic, stock: IntArray) -> IntArray | None:
    """Units each store may still take in (capacity - units on hand and inbound)."""
    if st.capacity is None:
        return None
    total = stock.sum(axis=1).astype(np.float64)
    big = float(np.iinfo(np.int64).max // 4)
    out: IntArray = np.where(np.isnan(st.capacity), big, st.capacity - total).astype(np.int64)
    return out


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


def least_recent_first(last: IntArray, score: FloatArray, k: int) -> IntArray:
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
        keep = keep[least_recent_first(last[keep], score[keep], max_skus)]
    return keep, score


class OptimiserPolicy:
    """Allocation of warehouse stock, then the transfer optimiser, on every decision day.

    Decisions start once ``simulation.min_history_days`` of season sales exist (the demand
    model needs a few weeks); same-optimiser-true-demand keeps the same calendar so the two
    differ only in the demand they are fed (:meth:`windows`).

    Every decision works on arrays: the position is the simulator's as a retailer reads it off
    the snapshots (on hand, in transit, and ``movable = on hand - presentation minimum - units
    received in the last min_days_before_retransfer days`` from consecutive snapshots net of
    sales, as :func:`stocktailor.positions.position_at`). With ``solver.joint_warehouse``
    (the product's default) warehouse stock less the holdback and the stores' movable stock
    are planned in one optimisation, as :func:`stocktailor.transfers.plan_network` does
    (:func:`stocktailor.transfers.add_warehouses`, ``solve_instance``, ``plan_frames``), for
    the SKUs :func:`screen_candidates` keeps and the warehouse's SKUs within the budget;
    without it (or once the warehouse is empty) warehouse stock goes out with
    :func:`stocktailor.allocation.allocate_arrays` first, then store-to-store moves are
    planned by :func:`stocktailor.transfers.plan_transfers_from_arrays` on the position with
    that allocation counted as inbound.
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
        self.static_: OptimiserStatic | None = None
        # (day index, on hand at the stores, units sold since the previous snapshot)
        self.snapshots_: list[tuple[int, IntArray, IntArray]] = []
        self.stats_: list[dict[str, float]] = []
        self.reviewed_: IntArray | None = None  # last decision day each SKU was reviewed
        self.replenished_: IntArray | None = None  # ... and replenished from the warehouse

    def _time(self, key: str, t0: float) -> None:
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
            out += receipts_between(snaps[i - 1][1], oh, sold)
        return out

    def movable(self, view: PolicyView) -> IntArray:
        """Units each store may ship, as :func:`stocktailor.positions.position_at`."""
        n_s = view.space.n_stores
        oh = np.maximum(view.on_hand[:n_s], 0)
        core = None if self.static_ is None else self.static_.core[None, :]
        return movable_units(oh, self.received(view), self.settings.constraints, core)

    # -- decisions -------------------------------------------------------------------------

    def decide(self, view: PolicyView) -> Decisions:
        self._record(view)
        if not self.ready(view):
            return Decisions.nothing()
        self._cpu_mark = time.process_time()
        if self.static_ is None:
            self.static_ = optimiser_static(view, self.settings)
        self.prepare(view)
        n_s = view.space.n_stores
        if self.settings.solver.joint_warehouse and view.on_hand[n_s:].sum() > 0:
            # the product's joint plan: warehouses are sources of the same flow network
            t0 = time.perf_counter()
            allocation, transfers = self._joint(view)
            self.allocated_ = True
            self._time("joint", t0)
            return Decisions(transfers=as_moves(transfers), allocation=as_moves(allocation))
        inbound = np.zeros((n_s, len(view.skus)), dtype=np.int64)
        allocation = None
        if view.on_hand[n_s:].sum() > 0:
            # season-start allocation, then replenishment from the holdback on later decisions
            t0 = time.perf_counter()
            allocation = as_moves(self._allocate(view, inbound))
            self.allocated_ = True
            self._time("allocation", t0)
        t0 = time.perf_counter()
        transfers = as_moves(self._transfers(view, inbound))
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
            pick = least_recent_first(self.replenished_[cols], short, budget)
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
            headroom=headroom(st, stock),
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

    def _joint_skus(
        self, view: PolicyView, stock: IntArray, movable: IntArray, wh: IntArray, lead: IntArray
    ) -> IntArray:
        """SKUs of a joint decision within the work budget.

        The transfer candidates (:func:`screen_candidates` on the stores' movable stock,
        least recently reviewed first) and the warehouse's SKUs: all of them on the first
        decision (the initial allocation), then the least recently replenished, largest
        expected shortfall first.
        """
        st = self.static_
        assert st is not None
        n_k = len(st.skus)
        if self.reviewed_ is None:
            self.reviewed_ = np.full(n_k, -1, dtype=np.int64)
        budget = self.budget()
        cols_t = np.flatnonzero(movable.sum(axis=0) > 0)
        kept = np.zeros(0, dtype=np.int64)
        if cols_t.size:
            ml, vl, mr, vr = self.windows(view, lead, cols_t)
            kept, _score = screen_candidates(
                stock[:, cols_t],
                movable[:, cols_t],
                ml + mr,
                vl + vr,
                st.price[cols_t],
                st.salvage[cols_t],
                st.unit,
                self.settings.simulation.candidate_min_gain,
                budget,
                self.reviewed_[cols_t],
            )
        cols_t = cols_t[kept]
        self.reviewed_[cols_t] = view.day_index
        cols_w = np.flatnonzero(wh.sum(axis=0) > 0)
        if self.replenished_ is None:
            self.replenished_ = np.full(n_k, -1, dtype=np.int64)
        elif budget is not None and cols_w.size > budget:
            ml, _vl, mr, _vr = self.windows(view, lead, cols_w)
            short = np.maximum(ml + mr - stock[:, cols_w], 0.0).sum(axis=0)
            cols_w = cols_w[least_recent_first(self.replenished_[cols_w], short, budget)]
        self.replenished_[cols_w] = view.day_index
        cols: IntArray = np.union1d(cols_t, cols_w).astype(np.int64)
        self.stats_.append(
            {
                "day": float(view.day_index),
                "skus": float(np.count_nonzero((movable.sum(axis=0) + wh.sum(axis=0)) > 0)),
                "candidates": float(cols.size),
            }
        )
        return cols

    def _joint(self, view: PolicyView) -> tuple[pl.DataFrame | None, pl.DataFrame | None]:
        """Allocation and transfers in one optimisation, as the product's joint plan
        (:func:`stocktailor.transfers.plan_network` on arrays): the warehouses' stock less
        the holdback is a source of the same network as the stores' movable stock.
        """
        from stocktailor.transfers import (
            add_warehouses,
            destination_lead_days,
            holdback_shares,
            plan_frames,
            solve_instance,
        )

        st = self.static_
        assert st is not None
        sp = view.space
        n_s = st.n_stores
        stock = (view.on_hand[:n_s] + view.in_transit[:n_s]).astype(np.int64)
        movable = np.minimum(self.movable(view), np.maximum(stock, 0))
        wh = np.maximum(view.on_hand[n_s:], 0).astype(np.int64)
        lead = destination_lead_days(sp.lane_lead_days, sp.lane_cost_unit)[:n_s]
        cols = self._joint_skus(view, stock, movable, wh, lead)
        if cols.size == 0:
            return None, None
        windows = self.windows(view, lead, cols)
        sol = self.settings.solver
        hb = holdback_shares(
            windows[0] + windows[2],
            windows[1] + windows[3],
            sol.holdback_share,
            sol.holdback_cv_reference,
            sol.max_holdback_share,
        )
        wh_c = wh[:, cols]
        inst = add_warehouses(
            self._instance(view, stock, movable, cols, windows),
            list(sp.warehouse_ids),
            wh_c,
            np.floor(wh_c * (1.0 - hb)[None, :]).astype(np.int64),
            sp.lane_cost_unit,
            sp.lane_cost_shipment,
            sp.lane_lead_days,
        )
        solution = solve_instance(inst, self.settings)
        return plan_frames(
            inst,
            solution,
            view.as_of,
            sp.products,
            sp.stores,
            currency=self.settings.economics.currency,
        )

    def _instance(
        self,
        view: PolicyView,
        stock: IntArray,
        movable: IntArray,
        cols: IntArray,
        windows: tuple[FloatArray, FloatArray, FloatArray, FloatArray],
    ) -> Any:
        """The stores' transfer instance of the SKUs ``cols`` (``windows`` are theirs)."""
        from stocktailor.transfers import TransferInstance

        st = self.static_
        assert st is not None
        ml, vl, mr, vr = windows
        return TransferInstance(
            store_ids=st.store_ids,
            skus=[st.skus[j] for j in cols],
            styles=[st.styles[j] for j in cols],
            stock=stock[:, cols],
            movable=movable[:, cols],
            mean_lead=ml,
            var_lead=vl,
            mean_rest=mr,
            var_rest=vr,
            price=st.price[cols],
            salvage=st.salvage[cols],
            unit_cost=st.unit,
            fixed_cost=st.fixed,
            lead_days=st.lead,
            eligible=None if st.eligible is None else st.eligible[:, cols],
            headroom=headroom(st, stock),
            season_days=np.maximum(st.sku_end[cols] - (view.day_index - 1), 0).astype(np.float64),
            style_color=[st.style_color[j] for j in cols],
            core_size=st.core[cols],
        )

    def _transfers(self, view: PolicyView, inbound: IntArray) -> pl.DataFrame | None:
        from stocktailor.transfers import plan_transfers_from_arrays

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
        windows = (ml[:, kept], vl[:, kept], mr[:, kept], vr[:, kept])
        inst = self._instance(view, stock, movable, cols, windows)
        frame, _sol = plan_transfers_from_arrays(
            inst,
            view.as_of,
            self.settings,
            products=view.space.products,
            stores=view.space.stores,
        )
        return frame
