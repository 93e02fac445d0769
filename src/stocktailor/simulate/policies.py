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
    The product: store clusters, the demand model (refitted every ``refit_every_weeks`` weeks),
    the warehouse allocation at season start and the cost-benefit transfer optimiser.
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
import polars as pl

from stocktailor.config import Settings
from stocktailor.contract import FORECAST_SCHEMA
from stocktailor.simulate.core import FloatArray, IntArray, SeasonNetwork
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


class _OptimiserPolicy:
    """Allocation of warehouse stock, then the transfer optimiser on every decision day.

    Decisions start once ``simulation.min_history_days`` of season sales exist (the demand
    model needs a few weeks); the oracle keeps the same calendar so the two differ only in
    the demand they are fed.
    """

    name = "optimiser"

    def __init__(self, settings: Settings) -> None:
        solver = settings.solver.model_copy(
            update={"fixed_cost_method": settings.simulation.fixed_cost_method}
        )
        self.settings = settings.model_copy(update={"solver": solver})
        self.timings_: dict[str, float] = {}
        self.allocated_ = False

    def _time(self, key: str, t0: float) -> None:
        import time

        self.timings_[key] = self.timings_.get(key, 0.0) + time.perf_counter() - t0

    def ready(self, view: PolicyView) -> bool:
        return view.day_index >= self.settings.simulation.min_history_days

    def allocate(self, view: PolicyView) -> pl.DataFrame | None:
        """Warehouse allocation lines (first decision with warehouse stock only)."""
        return None

    def transfers(self, view: PolicyView, allocation: pl.DataFrame | None) -> pl.DataFrame | None:
        raise NotImplementedError

    def decide(self, view: PolicyView) -> Decisions:
        import time

        if not self.ready(view):
            return Decisions.nothing()
        allocation = None
        if view.on_hand[view.space.n_stores :].sum() > 0:
            # season-start allocation, then replenishment from the holdback on later decisions
            t0 = time.perf_counter()
            allocation = _as_moves(self.allocate(view))
            self.allocated_ = True
            self._time("allocation", t0)
        t0 = time.perf_counter()
        transfers = _as_moves(self.transfers(view, allocation))
        self._time("transfers", t0)
        return Decisions(transfers=transfers, allocation=allocation)


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


class StocktailorPolicy(_OptimiserPolicy):
    """Clusters + demand model + optimiser (the product's pipeline).

    The store clusters and the demand model are refitted every ``refit_every_weeks`` weeks;
    in between the last forecast is reused (weeks already past drop out), or, with
    ``simulation.update_between_refits``, the model is moved to the new as-of date without
    retraining (``DemandModel.update``) and predicts again.
    """

    name = "stocktailor"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.model_: Any = None
        self.clusters_: pl.DataFrame | None = None
        self.fitted_day_: int | None = None
        self.forecast_: pl.DataFrame | None = None
        self.forecast_day_: int | None = None

    def _refit_due(self, view: PolicyView) -> bool:
        every = 7 * self.settings.simulation.refit_every_weeks
        return self.fitted_day_ is None or view.day_index - self.fitted_day_ >= every

    def forecast(self, view: PolicyView) -> pl.DataFrame:
        """The demand forecast at ``view.as_of`` (refit or update on schedule)."""
        import time

        from stocktailor.demand import DemandModel
        from stocktailor.demand import forecast as demand_forecast

        if self.forecast_ is not None and self.forecast_day_ == view.day_index:
            return self.forecast_
        reuse = not self.settings.simulation.update_between_refits
        if self.forecast_ is not None and reuse and not self._refit_due(view):
            # keep the weekly forecast; weeks already past drop out
            return self.forecast_.filter(pl.col("week_start") > view.as_of)
        tables = view.tables()
        if self._refit_due(view):
            t0 = time.perf_counter()
            from stocktailor.clustering import StoreClusterer

            try:
                self.clusters_ = (
                    StoreClusterer(random_state=self.settings.clustering.random_state)
                    .fit(tables, view.as_of)
                    .labels_
                )
            except ValueError as exc:
                logger.info("stocktailor policy: clustering skipped on %s: %s", view.day, exc)
            self._time("clusters", t0)
            self.model_ = DemandModel(
                self.settings.demand, random_state=self.settings.demand.random_state
            )
            self.fitted_day_ = view.day_index
        t0 = time.perf_counter()
        self.forecast_ = demand_forecast(
            tables, view.as_of, self.settings, clusters=self.clusters_, model=self.model_
        )
        self.forecast_day_ = view.day_index
        self._time("forecast", t0)
        return self.forecast_

    def allocate(self, view: PolicyView) -> pl.DataFrame | None:
        from stocktailor.allocation import allocate

        fc = self.forecast(view)
        out: pl.DataFrame = allocate(
            view.tables(), view.as_of, fc, self.settings, clusters=self.clusters_
        )
        return out

    def transfers(self, view: PolicyView, allocation: pl.DataFrame | None) -> pl.DataFrame | None:
        from stocktailor.transfers import plan_transfers

        fc = self.forecast(view)
        tables = with_inbound(view.tables(), view.as_of, allocation)
        out: pl.DataFrame = plan_transfers(
            tables, view.as_of, fc, self.settings, clusters=self.clusters_
        )
        return out


class OraclePolicy(_OptimiserPolicy):
    """The same optimiser fed the true demand rates at the calendar's prices.

    The instance (positions, movable units, lanes, eligibility, capacity) is built exactly as
    for ``stocktailor``; only the lead-time and rest-of-season demand windows are replaced by
    the truth's (negative binomial: ``var = mu + mu^2 / r`` per day, days independent).
    """

    name = "oracle"

    def __init__(self, network: SeasonNetwork, settings: Settings) -> None:
        super().__init__(settings)
        self.network = network
        self.dispersion = float(getattr(network.truth, "dispersion", math.inf))
        self._weekly: tuple[FloatArray, FloatArray] | None = None

    def ready(self, view: PolicyView) -> bool:
        if not self.settings.simulation.oracle_waits_for_history:
            return True
        return super().ready(view)

    def allocate(self, view: PolicyView) -> pl.DataFrame | None:
        from stocktailor.allocation import allocate

        mean, var = true_weekly_demand(self.network, view, self.dispersion)
        fc = forecast_from_rates(view, mean, var, view.day)
        out: pl.DataFrame = allocate(view.tables(history_days=35), view.as_of, fc, self.settings)
        return out

    def transfers(self, view: PolicyView, allocation: pl.DataFrame | None) -> pl.DataFrame | None:
        import dataclasses

        from stocktailor.transfers import build_instance, plan_transfers_from_arrays

        tables = with_inbound(view.tables(history_days=35), view.as_of, allocation)
        empty = pl.DataFrame(schema=FORECAST_SCHEMA)
        inst = build_instance(tables, view.as_of, empty, self.settings)
        if inst.n_skus == 0:
            return None
        si = view.space.loc_index()
        ki = view.space.sku_index()
        rows = np.array([si[s] for s in inst.store_ids], dtype=np.int64)
        cols = np.array([ki[k] for k in inst.skus], dtype=np.int64)
        from stocktailor.transfers import destination_lead_days

        lead = destination_lead_days(inst.lead_days, inst.unit_cost)
        windows = true_windows(self.network, view, rows, cols, lead, self.dispersion)
        inst = dataclasses.replace(
            inst,
            mean_lead=windows[0],
            var_lead=windows[1],
            mean_rest=windows[2],
            var_rest=windows[3],
        )
        frame, _sol = plan_transfers_from_arrays(
            inst, view.as_of, self.settings, products=tables.products, stores=tables.stores
        )
        return frame


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
