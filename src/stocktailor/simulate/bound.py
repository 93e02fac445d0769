"""``bound``: an upper bound on the profit of any policy, from a linear programme.

With the season's demand draws known in advance (the same common random numbers every policy
meets), the whole season's allocation and transfer problem is a linear programme, solved per
SKU with HiGHS (:mod:`highspy`). Its optimum is a profit **no feasible policy can beat**.

Why it is a bound
-----------------
Fix a seed. The simulator's customers are policy-independent: the demand of day ``t`` at store
``i`` for SKU ``k`` is a draw ``D[t, i, k]`` made with its own generator (broken-size-run
thinning, when on, only removes customers, so the unthinned draw is an upper limit on them).
Take any policy, however clever, and the trajectory it produces in the simulator: the units
it ships on each decision day along each lane, the units sold, the stock left. Write it as
flows in a time-expanded network of one SKU:

- a node ``(t, l)`` per season day ``t <= last selling day`` and location ``l`` (stores and
  warehouses): the stock at the opening of day ``t`` after that day's arrivals;
- a *hold* arc ``(t, l) -> (t + 1, l)``: the stock carried to the next day;
- a *ship* arc ``(t, l) -> (t + lead[l, m], m)`` on every decision day ``t`` (``t %
  decision_every_days == 0``, the only days the simulator lets a policy move stock), at the
  lane's cost per unit;
- a *sale* arc out of ``(t, i)`` for a store ``i``, at most ``D[t, i, k]`` units, each earning
  ``price * factor[t] - salvage`` (the day's markdown price less the salvage value the unit
  would otherwise fetch);
- the initial stock enters at the day-0 nodes; whatever is left anywhere (on hand, or in
  transit past the last selling day) is salvaged, which the gains above already count as the
  base: ``profit = salvage value of all units + sum of sale gains - unit transfer costs``.

The policy's trajectory satisfies every constraint of this programme (stock is conserved; a
move leaves on a decision day from stock on hand and arrives after the lane's lead time; sales
never exceed the draws; lane costs are those the simulator charges), so its profit is at most
the programme's optimum. The programme **relaxes**:

1. fixed shipment costs (``cost_per_shipment``, paid by the simulator once per lane and
   decision day) are dropped: they are >= 0, so dropping them can only raise the optimum;
2. forced sales: the simulator sells whatever is on the shelf; the programme may keep a unit
   back (with markdown factors that never rise, keeping a unit back never pays, so this only
   admits ties);
3. every planning rule the simulator does not enforce (presentation minimum, retransfer window,
   minimum transfer, pack size, store capacity, assortment eligibility, the demand model's
   waiting for history): they restrict policies, not the season, so a policy obeying them has
   a trajectory inside the same feasible set;
4. integrality: the constraint matrix is a network matrix (each arc has one +1 and one -1), so
   the relaxation is exact: an optimal vertex ships whole units (:class:`BoundPolicy` replays it).

Hence, under the same draws, lead times, costs, salvage values and markdowns, **bound >= the
profit of every policy**, and a policy's share of the bound's uplift over ``rule`` measures
its distance to the best possible plan, not to another heuristic. The bound knows the draws, a
thing no real policy can know, so no policy is expected to reach it.

The programme separates by SKU (no constraint links two SKUs once fixed costs and capacity are
relaxed). Its size per SKU is about ``locations^2 x decision days`` ship arcs: fine for a
small network (60 stores: about 1 s per SKU), too large for ``scale``; the setting
``simulation.bound_max_cells`` refuses networks above a size.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from stocktailor.config import Settings
from stocktailor.highs import silent_highs
from stocktailor.simulate._types import FloatArray, IntArray, SeasonNetwork, SimSpace
from stocktailor.simulate.customers import DemandStream
from stocktailor.simulate.decisions import Decisions
from stocktailor.simulate.space import SeasonCalendar, build_space
from stocktailor.simulate.view import PolicyView

__all__ = ["BoundPolicy", "SeasonBound", "demand_draws", "season_bound"]

logger = logging.getLogger(__name__)


def demand_draws(
    network: SeasonNetwork,
    settings: Settings,
    seed: int,
    space: tuple[SimSpace, IntArray] | None = None,
) -> IntArray:
    """The customers a season of ``network`` meets on ``seed``, ``(days, stores, skus)``, units.

    These are the draws :func:`~stocktailor.simulate.simulate_season` makes (before the
    optional broken-size-run thinning), whatever the policy.
    """
    sp, _stock = space if space is not None else build_space(network, settings)
    cal = SeasonCalendar.of(network, settings, sp)
    stream = DemandStream(network.truth, cal.days, cal.price_factor, cal.end_index, seed)
    out = np.zeros((len(cal.days), sp.n_stores, len(sp.skus)), dtype=np.int64)
    for d in range(len(cal.days)):
        out[d] = stream.draw(d)
    return out


@dataclass(frozen=True)
class SeasonBound:
    """The LP bound of one season (one network, one seed).

    Attributes
    ----------
    upper_bound
        Profit no policy can beat, currency: ``salvage_base + sku_gain.sum()``.
    salvage_base
        Salvage value of every unit of the season, currency.
    sku_gain
        Optimal sale gains less unit transfer costs per SKU, currency.
    plan
        An optimal plan: ``day_index, sku, from_id, to_id, units``.
    seconds
        Wall time of the draws and the LPs, s.
    """

    upper_bound: float
    salvage_base: float
    sku_gain: FloatArray
    plan: pl.DataFrame
    seconds: float


@dataclass(frozen=True)
class _Arcs:
    """Ship arcs of every decision day: tail/head location, day, lead (days), cost per unit."""

    day: IntArray
    src: IntArray
    dst: IntArray
    lead: IntArray
    cost: FloatArray


def _ship_arcs(space: SimSpace, n_days: int, every: int) -> _Arcs:
    n_loc = len(space.location_ids)
    src, dst = np.nonzero(~np.eye(n_loc, dtype=bool))
    days = np.arange(0, n_days, every, dtype=np.int64)
    return _Arcs(
        day=np.repeat(days, src.size),
        src=np.tile(src, days.size).astype(np.int64),
        dst=np.tile(dst, days.size).astype(np.int64),
        lead=np.tile(space.lane_lead_days[src, dst], days.size).astype(np.int64),
        cost=np.tile(space.lane_cost_unit[src, dst], days.size).astype(np.float64),
    )


def _solve_sku(
    h: Any,
    init: IntArray,
    demand: IntArray,
    gain: FloatArray,
    arcs: _Arcs,
    last: int,
) -> tuple[float, IntArray, IntArray]:
    """The LP of one SKU (see the module docstring).

    Parameters
    ----------
    h
        The HiGHS instance (its model is replaced).
    init
        Initial units per location.
    demand
        Draws per (day, store), units.
    gain
        ``price * factor - salvage`` per day, currency per unit.
    arcs
        Ship arcs of every decision day.
    last
        Last selling day (index).

    Returns
    -------
    tuple
        ``(optimal value (currency), positions of the ship arcs used, their units)``.
    """
    import highspy

    n_loc = init.size
    n_days = last + 1
    # hold arcs (t, l) -> (t + 1, l)
    hold_tail = np.arange((n_days - 1) * n_loc, dtype=np.int64)
    # ship arcs leaving on a decision day and arriving by the last selling day
    arrive = arcs.day + arcs.lead
    ship = np.flatnonzero(arrive <= last)
    ship_tail = arcs.day[ship] * n_loc + arcs.src[ship]
    ship_head = arrive[ship] * n_loc + arcs.dst[ship]
    # sale arcs where a customer comes and a sale gains over salvage
    t_s, i_s = np.nonzero((demand[:n_days] > 0) & (gain[:n_days, None] > 0))
    tails = np.concatenate([hold_tail, ship_tail, t_s * n_loc + i_s])
    heads = np.concatenate([hold_tail + n_loc, ship_head])
    n2 = heads.size
    n_col = tails.size
    cost = np.concatenate([np.zeros(hold_tail.size), -arcs.cost[ship], gain[t_s]])
    upper = np.concatenate([np.full(n2, np.inf), demand[t_s, i_s].astype(np.float64)])
    # column-wise matrix: -1 at the tail, +1 at the head (rows sorted within a column)
    start = np.concatenate([np.arange(0, 2 * n2 + 1, 2), 2 * n2 + np.arange(1, n_col - n2 + 1)])
    lo, hi = np.minimum(tails[:n2], heads), np.maximum(tails[:n2], heads)
    index = np.concatenate([np.stack([lo, hi], axis=1).ravel(), tails[n2:]])
    sign = np.where(lo == tails[:n2], -1.0, 1.0)
    value = np.concatenate([np.stack([sign, -sign], axis=1).ravel(), -np.ones(n_col - n2)])
    # inflow - outflow >= -initial units (free disposal: what is left is salvaged)
    row_lower = np.zeros(n_days * n_loc)
    row_lower[:n_loc] = -init.astype(np.float64)
    lp = highspy.HighsLp()
    lp.num_col_ = n_col
    lp.num_row_ = row_lower.size
    lp.col_cost_ = cost
    lp.col_lower_ = np.zeros(n_col)
    lp.col_upper_ = upper
    lp.row_lower_ = row_lower
    lp.row_upper_ = np.full(row_lower.size, np.inf)
    lp.sense_ = highspy.ObjSense.kMaximize
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = start.astype(np.int32)
    lp.a_matrix_.index_ = index.astype(np.int32)
    lp.a_matrix_.value_ = value
    h.clearModel()
    h.passModel(lp)
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        status = h.modelStatusToString(h.getModelStatus())
        msg = f"bound: the season LP of a SKU did not solve ({status})"
        raise RuntimeError(msg)
    x = np.asarray(h.getSolution().col_value, dtype=np.float64)
    flows = np.rint(x[hold_tail.size : hold_tail.size + ship.size]).astype(np.int64)
    used = np.flatnonzero(flows > 0)
    return float(h.getInfo().objective_function_value), ship[used], flows[used]


def season_bound(
    network: SeasonNetwork,
    settings: Settings,
    seed: int,
    space: tuple[SimSpace, IntArray] | None = None,
) -> SeasonBound:
    """Solve the season LP of every SKU (see the module docstring).

    Raises
    ------
    ValueError
        When the network has more than ``simulation.bound_max_cells`` stores x SKUs.
    """
    t0 = time.perf_counter()
    sp, stock0 = space if space is not None else build_space(network, settings)
    cells = sp.n_stores * len(sp.skus)
    limit = settings.simulation.bound_max_cells
    if cells > limit:
        msg = (
            f"bound: the network has {sp.n_stores} stores x {len(sp.skus)} SKUs = {cells:,} "
            f"cells, more than simulation.bound_max_cells ({limit:,}); the LP bound is for "
            "small networks"
        )
        raise ValueError(msg)
    cal = SeasonCalendar.of(network, settings, sp)
    draws = demand_draws(network, settings, seed, (sp, stock0))
    arcs = _ship_arcs(sp, len(cal.days), settings.simulation.decision_every_days)
    gains = np.zeros(len(sp.skus))
    h = silent_highs()
    h.setOptionValue("simplex_strategy", 1)  # dual simplex: a vertex, so whole units
    plan: list[tuple[IntArray, IntArray, IntArray]] = []
    for k in range(len(sp.skus)):
        last = int(min(cal.end_index[k], len(cal.days) - 1))
        gain = sp.full_price[k] * cal.price_factor[:, k] - sp.salvage_value[k]
        if last < 0 or stock0[:, k].sum() == 0:
            continue
        value, used, units = _solve_sku(h, stock0[:, k], draws[:, :, k], gain, arcs, last)
        gains[k] = value
        if used.size:
            plan.append((used, units, np.full(used.size, k, dtype=np.int64)))
    salvage = float(stock0.sum(axis=0) @ sp.salvage_value)
    frame = _plan_frame(sp, arcs, plan)
    seconds = time.perf_counter() - t0
    logger.info(
        "bound: seed %s, %d SKUs, upper bound %.2f, %d plan lines, %.1f s",
        seed,
        len(sp.skus),
        salvage + gains.sum(),
        frame.height,
        seconds,
    )
    return SeasonBound(
        upper_bound=salvage + float(gains.sum()),
        salvage_base=salvage,
        sku_gain=gains,
        plan=frame,
        seconds=seconds,
    )


def _plan_frame(
    sp: SimSpace, arcs: _Arcs, plan: list[tuple[IntArray, IntArray, IntArray]]
) -> pl.DataFrame:
    schema = {
        "day_index": pl.Int64,
        "sku": pl.String,
        "from_id": pl.String,
        "to_id": pl.String,
        "units": pl.Int64,
    }
    if not plan:
        return pl.DataFrame(schema=schema)
    used = np.concatenate([p[0] for p in plan])
    locs = pl.Series(list(sp.location_ids), dtype=pl.String)
    return pl.DataFrame(
        {
            "day_index": arcs.day[used],
            "sku": pl.Series(list(sp.skus), dtype=pl.String).gather(
                np.concatenate([p[2] for p in plan])
            ),
            "from_id": locs.gather(arcs.src[used]),
            "to_id": locs.gather(arcs.dst[used]),
            "units": np.concatenate([p[1] for p in plan]),
        },
        schema=schema,
    ).sort("day_index", "sku", "from_id", "to_id")


class BoundPolicy:
    """Computes the season's LP bound on its first decision and ships the LP's plan.

    The replay is a feasible perfect-foresight plan (its profit is below the bound by the fixed
    shipment costs and any units the simulator's customers take that the plan kept back);
    ``bound_`` holds the :class:`SeasonBound`, whose ``upper_bound`` is what the KPIs compare
    policies with.
    """

    name = "bound"

    def __init__(self, network: SeasonNetwork, settings: Settings) -> None:
        self.network = network
        self.settings = settings
        self.bound_: SeasonBound | None = None

    def decide(self, view: PolicyView) -> Decisions:
        if self.bound_ is None:
            self.bound_ = season_bound(self.network, self.settings, view.seed)
        plan = self.bound_.plan
        today = plan.filter(pl.col("day_index") == view.day_index).drop("day_index")
        if today.height == 0:
            return Decisions.nothing()
        wh = pl.col("from_id").is_in(list(view.warehouse_ids))
        return Decisions(transfers=today.filter(~wh), allocation=today.filter(wh))
