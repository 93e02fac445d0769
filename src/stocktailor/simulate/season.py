"""The season simulator: a day-by-day replay of one season on a network's true demand.

Every location (selling stores first, then warehouses) holds an integer stock vector over the
SKU axis of the truth. Each day:

1. **arrivals**: shipments due that day arrive (they are on the shelf from the opening of the
   day);
2. **decisions**: on a decision day the policy sees a
   :class:`~stocktailor.simulate.view.PolicyView` (what a retailer knows at the close of the
   previous day) and returns moves, which leave their source at once and arrive after the
   lane's lead time;
3. **customers**: demand is a negative-binomial draw around the true rate at the day's price
   (the markdown calendar), customers buy what is on the shelf and the rest is a lost sale
   (with the optional broken-size-run effect, a store missing a core size of a style loses a
   share of the demand for the style's other sizes);
4. **salvage**: after a SKU's last selling day (its ``season_end``) everything left of it, on
   hand or in transit, goes at salvage value.

Demand draws use one random generator per (seed, day), so every policy run on the same seed
meets the same customers (common random numbers) and two policies that move the same stock
meet them with the same shelves.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from stocktailor.config import Settings
from stocktailor.simulate._types import (
    SALES_COLUMNS,
    BoolArray,
    FloatArray,
    History,
    IntArray,
    SeasonNetwork,
    SimResult,
    SimSpace,
)
from stocktailor.simulate.customers import DaySales, DemandStream, sell
from stocktailor.simulate.decisions import Policy
from stocktailor.simulate.shipping import Shipper, moves_frame
from stocktailor.simulate.space import SeasonCalendar, build_space
from stocktailor.simulate.view import PolicyView

__all__ = ["SALES_COLUMNS", "simulate_season"]


@dataclass
class _Run:
    """The state of one season in progress (one policy, one seed)."""

    network: SeasonNetwork
    settings: Settings
    seed: int
    space: SimSpace
    initial: IntArray
    days: list[dt.date]
    price_factor: FloatArray
    calendar: tuple[tuple[int, float], ...]
    end_index: IntArray
    on_hand: IntArray
    in_transit: IntArray
    carried: BoolArray
    received_at: IntArray
    shipper: Shipper
    history: History
    agg_store: FloatArray
    agg_sku: FloatArray
    salvage_by_store: IntArray
    salvage_by_sku: IntArray
    daily_rows: list[dict[str, Any]] = field(default_factory=list)
    moves: list[pl.DataFrame] = field(default_factory=list)
    sold_cum: int = 0
    salvaged_cum: int = 0
    decide_seconds: float = 0.0


def _start(
    network: SeasonNetwork, settings: Settings, seed: int, space: tuple[SimSpace, IntArray] | None
) -> _Run:
    sp, stock0 = space if space is not None else build_space(network, settings)
    cal = SeasonCalendar.of(network, settings, sp)
    n_s, n_k = sp.n_stores, len(sp.skus)
    n_weeks = (len(cal.days) + 6) // 7
    on_hand = stock0.copy()
    return _Run(
        network=network,
        settings=settings,
        seed=seed,
        space=sp,
        initial=stock0,
        days=list(cal.days),
        price_factor=cal.price_factor,
        calendar=cal.calendar,
        end_index=cal.end_index,
        on_hand=on_hand,
        in_transit=np.zeros_like(on_hand),
        carried=stock0 > 0,
        received_at=np.full(on_hand.shape, -(10**6), dtype=np.int64),
        shipper=Shipper(sp),
        history=History(n_skus=n_k),
        agg_store=np.zeros((len(SALES_COLUMNS), n_weeks, n_s), dtype=np.float64),
        agg_sku=np.zeros((len(SALES_COLUMNS), n_weeks, n_k), dtype=np.float64),
        salvage_by_store=np.zeros(on_hand.shape[0], dtype=np.int64),
        salvage_by_sku=np.zeros(n_k, dtype=np.int64),
    )


def _arrivals(run: _Run, d: int) -> None:
    """Step 1: shipments due today are on the shelf from the opening of the day."""
    before = run.on_hand.copy() if run.shipper.pending.get(d) else None
    run.shipper.arrive(d, run.on_hand, run.in_transit)
    if before is not None:
        run.received_at[run.on_hand > before] = d
        run.carried |= run.on_hand > before


def _view(run: _Run, d: int) -> PolicyView:
    truth = run.network.truth
    return PolicyView(
        day=run.days[d],
        day_index=d,
        season_start=run.network.season_start,
        season_end=run.network.season_end,
        space=run.space,
        on_hand=run.on_hand.copy(),
        in_transit=run.in_transit.copy(),
        received_days_ago=d - run.received_at,
        price_factor=run.price_factor,
        settings=run.settings,
        base_tables=run.network.tables,
        season_tables=truth.season_tables,
        history=run.history,
        seed=run.seed,
        markdown_calendar=run.calendar,
    )


def _decisions(run: _Run, d: int, policy: Policy) -> tuple[int, float, int]:
    """Step 2: the policy decides on what it knows; its moves leave at once.

    Returns ``(units moved, transfer cost (currency), shipments)``.
    """
    day = run.days[d]
    snap = _sparse_snapshot(run.on_hand, run.in_transit, run.carried)
    run.history.snapshots.append((day - dt.timedelta(days=1), *snap))
    view = _view(run, d)
    t1 = time.perf_counter()
    decisions = policy.decide(view)
    run.decide_seconds += time.perf_counter() - t1
    moved, cost, shipments = 0, 0.0, 0
    for kind, frame in (("allocation", decisions.allocation), ("transfer", decisions.transfers)):
        if frame is None or frame.height == 0:
            continue
        done, u, c, n_ship = run.shipper.ship(frame, kind, d, day, run.on_hand, run.in_transit)
        if done.height:
            run.moves.append(done)
        moved += u
        cost += c
        shipments += n_ship
    before = run.on_hand.copy()
    run.shipper.arrive(d, run.on_hand, run.in_transit)  # zero-lead moves are on the shelf today
    got = run.on_hand > before
    run.received_at[got] = d
    run.carried |= got | (run.in_transit > 0)
    return moved, cost, shipments


def _customers(run: _Run, d: int, demand: IntArray) -> DaySales:
    """Step 3: customers buy what is on the shelf; sales are recorded for the history."""
    n_s, n_k = run.space.n_stores, len(run.space.skus)
    sales = sell(
        run.space,
        run.on_hand[:n_s],
        demand,
        run.price_factor[d],
        seed=run.seed,
        day_index=d,
        broken_effect=run.settings.simulation.broken_size_run_effect,
    )
    w = d // 7
    for j in range(len(SALES_COLUMNS)):
        run.agg_store[j, w] += sales.by_store[j]
        run.agg_sku[j, w] += sales.by_sku[j]
    nz = np.flatnonzero(sales.sold)
    if nz.size:
        units_nz = sales.sold.ravel()[nz]
        run.history.sales.append(
            (run.days[d], nz.astype(np.int64), units_nz, units_nz * sales.price[nz % n_k])
        )
    run.sold_cum += int(sales.by_sku[1].sum())
    return sales


def _salvage(run: _Run, d: int) -> tuple[int, float]:
    """Step 4: SKUs whose season ends today go at salvage value, on hand or in transit."""
    ending = np.flatnonzero(run.end_index == d)
    units, value = 0, 0.0
    if ending.size:
        left = run.on_hand[:, ending] + run.in_transit[:, ending]
        run.salvage_by_store += left.sum(axis=1)
        per_sku = left.sum(axis=0)
        run.salvage_by_sku[ending] += per_sku
        units = int(per_sku.sum())
        value = float(per_sku @ run.space.salvage_value[ending])
        run.on_hand[:, ending] = 0
        run.in_transit[:, ending] = 0
        run.shipper.cancel(ending)
    run.salvaged_cum += units
    return units, value


def _record_day(
    run: _Run, d: int, sales: DaySales, moved: tuple[int, float, int], salvaged: tuple[int, float]
) -> None:
    active = run.end_index >= d
    pf = run.price_factor[d]
    oh, it = int(run.on_hand.sum()), int(run.in_transit.sum())
    k = sales.by_sku
    run.daily_rows.append(
        {
            "date": run.days[d],
            "week": d // 7,
            "price_factor": float(pf[active].mean()) if active.any() else 1.0,
            "demand_units": int(k[0].sum()),
            "sold_units": int(k[1].sum()),
            "sold_full_units": int(k[1][sales.full].sum()),
            "revenue": float(k[3].sum()),
            "revenue_full": float(k[4].sum()),
            "lost_units": int(k[5].sum()),
            "lost_value": float(k[6].sum()),
            "moved_units": moved[0],
            "transfer_cost": moved[1],
            "shipments": moved[2],
            "on_hand": oh,
            "in_transit": it,
            "sold_cum": run.sold_cum,
            "salvaged_units": salvaged[0],
            "salvage_value": salvaged[1],
            "salvaged_cum": run.salvaged_cum,
        }
    )
    initial_total = int(run.initial.sum())
    if oh + it + run.sold_cum + run.salvaged_cum != initial_total:
        msg = (
            f"simulator lost units on {run.days[d]}: {oh}+{it}+{run.sold_cum}+"
            f"{run.salvaged_cum} != {initial_total}"
        )
        raise AssertionError(msg)


def _finish(run: _Run, name: str, seconds: float) -> SimResult:
    # anything left (e.g. a SKU whose season_end is before season_start) goes at salvage
    left = run.on_hand + run.in_transit
    rows = run.daily_rows
    if left.sum():
        run.salvage_by_store += left.sum(axis=1)
        per_sku = left.sum(axis=0)
        run.salvage_by_sku += per_sku
        rows[-1]["salvaged_units"] += int(per_sku.sum())
        rows[-1]["salvage_value"] += float(per_sku @ run.space.salvage_value)
        rows[-1]["salvaged_cum"] += int(per_sku.sum())
        rows[-1]["on_hand"] = 0
        rows[-1]["in_transit"] = 0
    sp = run.space
    return SimResult(
        policy=name,
        seed=run.seed,
        space=sp,
        initial=run.initial,
        final_on_hand=run.on_hand,
        final_in_transit=run.in_transit,
        daily=pl.DataFrame(rows),
        by_store_week=_agg_frame(run.agg_store, "store_id", list(sp.store_ids)),
        by_sku_week=_agg_frame(run.agg_sku, "sku", list(sp.skus)),
        salvage_by_store=run.salvage_by_store,
        salvage_by_sku=run.salvage_by_sku,
        moves=moves_frame(run.moves),
        seconds=seconds,
        decision_seconds=run.decide_seconds,
    )


def simulate_season(
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
    the network's), at the markdown calendar's price counted back from that day (the
    network's own ``markdown_calendar``, else ``settings.season.markdown_calendar``); what is
    left of it then, on hand or in transit, goes at its salvage value.

    Parameters
    ----------
    network
        A network with ``truth`` (see :class:`~stocktailor.simulate.SeasonNetwork`).
    policy
        Decides moves on each decision day (see :mod:`stocktailor.simulate.policies`).
    settings
        ``settings.simulation`` (decision cadence, broken-size-run effect, view horizons) and
        ``settings.season.markdown_calendar`` (when the network declares none) are used.
    seed
        Seeds the demand draws: the same seed gives every policy the same customers.
    policy_name
        Label of the run (default: the policy's ``name`` attribute).
    progress
        Called with 1 after each simulated day.
    space
        Precomputed :func:`~stocktailor.simulate.build_space` result (reused across policies
        of one seed).

    Returns
    -------
    SimResult
    """
    t0 = time.perf_counter()
    run = _start(network, settings, seed, space)
    every = settings.simulation.decision_every_days
    customers = DemandStream(network.truth, run.days, run.price_factor, run.end_index, seed)
    name = policy_name or str(getattr(policy, "name", type(policy).__name__))
    for d in range(len(run.days)):
        _arrivals(run, d)
        moved = _decisions(run, d, policy) if d % every == 0 else (0, 0.0, 0)
        sales = _customers(run, d, customers.draw(d))
        salvaged = _salvage(run, d)
        _record_day(run, d, sales, moved, salvaged)
        if progress is not None:
            progress(1)
    return _finish(run, name, time.perf_counter() - t0)


def _sparse_snapshot(
    on_hand: IntArray, in_transit: IntArray, carried: BoolArray
) -> tuple[IntArray, IntArray, IntArray]:
    """Snapshot rows: every cell the location carries (held or received), zeros included."""
    flat_oh = on_hand.ravel()
    flat_it = in_transit.ravel()
    nz = np.flatnonzero(carried.ravel() | (flat_oh != 0) | (flat_it != 0))
    return nz.astype(np.int64), flat_oh[nz].copy(), flat_it[nz].copy()


def _agg_frame(agg: FloatArray, key: str, ids: list[str]) -> pl.DataFrame:
    n_weeks, n = agg.shape[1], agg.shape[2]
    data: dict[str, Any] = {
        "week": np.repeat(np.arange(n_weeks, dtype=np.int64), n),
        key: ids * n_weeks,
    }
    for j, c in enumerate(SALES_COLUMNS):
        v = agg[j].ravel()
        data[c] = v.astype(np.int64) if c.endswith("units") else v
    return pl.DataFrame(data)
