"""Network-wide solve: per-SKU flows, fixed lane costs across SKUs, constraints, line P&L.

1. exact min-cost flows per SKU without fixed lane costs (and the LP-relaxation bound), on an
   evenly spaced sample of styles for large networks (:mod:`._partition`);
2. lane choice across SKUs with closing rounds (:mod:`._lanes`);
3. every SKU on the chosen lanes with the minimum-quantity step, through the engine
   (:mod:`._minqty`);
4. capacity, budget and positivity of every line (:mod:`._finalise`), and on small networks a
   HiGHS MIP started from the plan.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from stocktailor.config import Settings
from stocktailor.engine import Engine, LocalEngine
from stocktailor.transfers._finalise import (
    Final,
    bonus_matrix,
    finalise,
    flow_objective,
    mip_lines,
)
from stocktailor.transfers._flow import SkuResult
from stocktailor.transfers._instance import TransferInstance
from stocktailor.transfers._lanes import LaneChoice, nearest_mask
from stocktailor.transfers._lines import Evaluated, LineSet
from stocktailor.transfers._minqty import FinishArgs, finish_pass
from stocktailor.transfers._partition import (
    PartOut,
    flatten,
    partition_skus,
    parts_for,
    prune_mask,
    run_step,
    uses_closed,
)

__all__ = ["TransferSolution", "prepare", "solve_instance", "transfer_bounds"]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class TransferSolution:
    """The chosen plan with its P&L and how good it is.

    Attributes
    ----------
    lines
        The transfer lines (instance index space).
    gain, source_loss, unit_cost, fixed_share, net_benefit, gain_p10, gain_p90
        Per line, currency: marginal expected gain at the destination and loss at the source
        (given every other line), lane cost per unit, the line's share of its lane's fixed
        cost (allocated by units), net benefit ``gain - source_loss - units * unit_cost -
        fixed_share`` and the 10%/90% mid-quantiles of the gain (containing ``gain``).
    lead_days
        Per line lead time, days.
    objective
        The plan's expected value against no moves after costs, currency: every destination's
        and source's total and each lane's fixed cost once. Each line's ``net_benefit`` is its
        marginal value given every other line, so the lines add up to at most the objective
        (less where lines share a destination or source, whose values are concave).
    lp_bound
        Upper bound on the best achievable objective over the candidate lanes (LP relaxation of
        the fixed-charge model with big-M = the source's movable units over all SKUs; never above
        the no-fixed-cost optimum), currency. It ignores minimum quantity and pack size.
    gap
        ``(lp_bound - objective) / lp_bound`` (0 when the bound is 0).
    no_fixed_objective
        Optimum without fixed lane costs or cross-SKU constraints, currency (exact).
    mip_objective, mip_bound
        HiGHS MIP objective and dual bound when the MIP ran, currency.
    method
        ``"flow"`` (no fixed costs), ``"heuristic"`` (lane greedy + re-solve) or ``"mip"``.
    timings
        Seconds per phase.
    """

    lines: LineSet
    gain: FloatArray
    source_loss: FloatArray
    unit_cost: FloatArray
    fixed_share: FloatArray
    net_benefit: FloatArray
    gain_p10: FloatArray
    gain_p90: FloatArray
    lead_days: IntArray
    objective: float
    lp_bound: float
    gap: float
    no_fixed_objective: float
    method: str
    mip_objective: float | None = None
    mip_bound: float | None = None
    heuristic_objective: float | None = None
    timings: dict[str, float] = field(default_factory=dict)
    marginal_net_benefit: FloatArray | None = None
    value_sd: FloatArray | None = None
    """Per line, currency: standard deviation of the line's value under the demand
    distribution (its units sold at the destination less those the source would have sold)."""
    """Per line, currency: the plan's value with the line minus without it, every other line
    kept (equal to ``net_benefit`` for a line alone at both ends and on its lane; the lane's
    fixed cost counts only for a line alone on its lane)."""

    @property
    def transfer_cost(self) -> FloatArray:
        out: FloatArray = self.lines.units * self.unit_cost + self.fixed_share
        return out


def prepare(
    inst: TransferInstance, settings: Settings
) -> tuple[TransferInstance, BoolArray | None, FloatArray | None]:
    """The instance without sources below the minimum line, the candidate lanes (None = all)
    and the per-unit surcharge of the LP relaxation (None without fixed costs)."""
    sol = settings.solver
    n = inst.n_stores
    # a source with fewer movable units than the minimum line cannot ship that SKU at all
    few = (inst.movable > 0) & (inst.movable < settings.constraints.min_transfer_units)
    if few.any():
        inst = replace(inst, movable=np.where(few, 0, inst.movable))
    base_open: BoolArray | None = None
    partners = sol.candidate_partners
    if partners is None and n > sol.large_network_stores:
        partners = sol.large_network_partners
    if partners is not None and n > 1:
        # partners among stores; a warehouse serves every store
        wh = inst.is_warehouse
        cost = np.where(wh[:, None] | wh[None, :], np.inf, inst.unit_cost)
        base_open = nearest_mask(cost, partners) & ~wh[None, :]
        base_open[wh, :] = True
        if inst.lane_mask is not None:
            base_open &= inst.lane_mask
    # LP relaxation of the fixed-charge model with big-M = all movable units of the source
    # (valid: a lane never carries more than its source can give over all SKUs); computed in
    # the same pass by solving each SKU a second time with the surcharge fixed / M
    bound_extra: FloatArray | None = None
    if (inst.fixed_cost > 0).any():
        big_m = np.maximum(inst.movable.sum(axis=1), 1).astype(np.float64)
        bound_extra = inst.fixed_cost / big_m[:, None]
    return inst, base_open, bound_extra


def transfer_bounds(
    inst: TransferInstance, settings: Settings | None = None, *, engine: Engine | None = None
) -> tuple[float, float]:
    """The no-fixed-cost optimum and the LP-relaxation bound over every SKU, currency.

    The same pass as step 1 of :func:`solve_instance` without a lane sample (one more
    min-cost flow per SKU for the bound): for a large network planned on a sample, where the
    plan itself reports no bound.
    """
    settings = settings or Settings()
    inst, base_open, bound_extra = prepare(inst, settings)
    parts = partition_skus(inst.styles, max(settings.engine.partitions, 1))
    outs = run_step(
        engine or LocalEngine(),
        parts,
        inst,
        lane_open=base_open,
        penalty=settings.solver.broken_size_run_penalty,
        bound_extra=bound_extra,
        curves=False,
    )
    no_fixed = float(sum(o.objective for o in outs))
    bound = float(sum(o.bound for o in outs)) if bound_extra is not None else no_fixed
    return no_fixed, min(bound, no_fixed)


@dataclass(frozen=True)
class _Sample:
    """Step 1's partitions: all SKUs, or an evenly spaced sample of styles (large networks),
    with the SKU columns left for the final pass."""

    parts: list[IntArray]
    rest: IntArray
    sampled: bool
    scale: float


def _sample(inst: TransferInstance, settings: Settings, has_fixed: bool) -> _Sample:
    """On large networks the lanes are valued on an evenly spaced sample of styles; the other
    SKUs are solved once the lanes are chosen (no bound then: it needs every SKU)."""
    parts = partition_skus(inst.styles, max(settings.engine.partitions, 1))
    style_names = sorted(set(inst.styles))
    cap = settings.solver.lane_sample_styles
    if cap is None or len(style_names) <= cap or not has_fixed:
        return _Sample(parts, np.zeros(0, dtype=np.int64), False, 1.0)
    step = len(style_names) / cap
    keep = {style_names[int(i * step)] for i in range(cap)}
    first = np.array([j for j, st in enumerate(inst.styles) if st in keep], dtype=np.int64)
    rest = np.array([j for j, st in enumerate(inst.styles) if st not in keep], dtype=np.int64)
    parts = parts_for(inst, first, len(parts))
    # lane values of a sample stand for all SKUs: scale them by the share of SKUs sampled
    scale = inst.n_skus / max(sum(p.shape[0] for p in parts), 1)
    return _Sample(parts, rest, True, scale)


def _close_after_sample(
    eng: Engine,
    inst: TransferInstance,
    choice: LaneChoice,
    results: dict[int, SkuResult],
    evaluated: Evaluated,
    args: FinishArgs,
) -> tuple[dict[int, SkuResult], Evaluated]:
    """Lanes chosen on the sample that do not pay with every SKU are closed once more."""
    for _ in range(2):
        bad = choice.close_unpaid(results, 1.0)
        if bad.shape[0] == 0:
            break
        affected = sorted(k for k, r in results.items() if uses_closed(r, choice.lane_open))
        redo, redo_eval = finish_pass(eng, inst, choice.lane_open, affected, {}, args)
        for k in affected:
            results.pop(k, None)
        results.update(redo)
        stale = np.isin(evaluated.lines.sku, np.array(affected, dtype=np.int64))
        evaluated = Evaluated.concat([evaluated.take(~stale), redo_eval])
        choice.rounds += 1
    return results, evaluated


def _try_mip(
    inst: TransferInstance,
    settings: Settings,
    method: str,
    final: Final,
    reduced: BoolArray | None,
    base_open: BoolArray | None,
    bonus: FloatArray | None,
) -> tuple[Final, str, float | None, float | None]:
    """The MIP on a reduced lane set for small networks (None: not run), started from the
    finished plan; its plan replaces ``final`` when worth more."""
    if reduced is None:
        return final, "", None, None
    sol = settings.solver
    mres = mip_lines(
        inst,
        settings,
        reduced,
        base_open,
        sol.broken_size_run_penalty,
        final.lines,
        forced=method == "mip",
    )
    if mres is None:
        return final, "", None, None
    lines, mip_obj, mip_bound = mres
    mip_final = finalise(inst, lines, settings, bonus)
    transit = np.intersect1d(
        mip_final.lines.src * inst.n_skus + mip_final.lines.sku,
        mip_final.lines.dst * inst.n_skus + mip_final.lines.sku,
    )
    if transit.shape[0] == 0 and mip_final.objective > final.objective + 1e-9:
        return mip_final, "mip", mip_obj, mip_bound
    return final, "", mip_obj, mip_bound


def _bounds(
    outs: list[PartOut], bound_extra: FloatArray | None, sampled: bool
) -> tuple[float, float]:
    """No-fixed-cost optimum and LP bound of step 1 (nan on a sample)."""
    if sampled:
        return float("nan"), float("nan")
    no_fixed = float(sum(o.objective for o in outs))
    lp_bound = float(sum(o.bound for o in outs)) if bound_extra is not None else no_fixed
    return no_fixed, min(lp_bound, no_fixed)


def solve_instance(
    inst: TransferInstance,
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    method: str | None = None,
    progress: Callable[[int], None] | None = None,
    lane_premium: FloatArray | None = None,
) -> TransferSolution:
    """Plan transfers for an array instance (see :class:`TransferInstance`).

    Parameters
    ----------
    inst
        The problem.
    settings
        Constraints (lane limits, pack size, min units, capacity, budget) and solver options.
    engine
        Where the per-SKU flows run (default in-process); partitions are groups of styles.
    method
        ``"auto"``, ``"heuristic"`` or ``"mip"`` (default ``settings.solver.fixed_cost_method``).
    progress
        Called with the number of partitions finished.
    lane_premium
        ``(n, n)`` currency per shipment added to each lane's fixed cost while the plan is
        chosen (e.g. lanes planners keep rejecting), so a lane opens only when its lines
        together clear its cost and the premium. The lines' P&L is reported with the lanes'
        real costs; the bound is then not reported (nan: it bounds the penalised problem).

    Returns
    -------
    TransferSolution
    """
    settings = settings or Settings()
    sol = settings.solver
    eng: Engine = engine or LocalEngine()
    method = method or sol.fixed_cost_method
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    inst, base_open, bound_extra = prepare(inst, settings)
    real = inst
    if lane_premium is not None and (lane_premium > 0).any():
        inst, bound_extra = replace(inst, fixed_cost=inst.fixed_cost + lane_premium), None
    has_fixed = bool((inst.fixed_cost > 0).any())
    smp = _sample(inst, settings, has_fixed)
    if not sol.lp_bound or smp.sampled:
        bound_extra = None
    # 1. exact flows without fixed costs (+ the bound), on the lane-valuation sample
    outs = run_step(
        eng,
        smp.parts,
        inst,
        lane_open=base_open,
        penalty=sol.broken_size_run_penalty,
        bound_extra=bound_extra,
        progress=progress,
    )
    no_fixed, lp_bound = _bounds(outs, bound_extra, smp.sampled)
    first_lanes = _used_lanes(inst.n_stores, flatten(outs).values())
    timings["flow"] = time.perf_counter() - t0
    # 2. lane choice across SKUs + closing rounds (on the sample, cached curves, in process)
    t1 = time.perf_counter()
    choice = _choose_lanes(inst, settings, outs, base_open, smp.scale, has_fixed)
    timings["lane_choice"] = time.perf_counter() - t1
    # 3. every SKU on the chosen lanes, with the minimum-quantity step, then the constraints
    # that couple SKUs and the positivity of every line
    t2 = time.perf_counter()
    results, evaluated, bonus = _final_pass(eng, inst, settings, choice, outs, base_open, smp)
    heuristic_objective = flow_objective(real, results)
    reduced = _mip_lanes(inst, settings, method, first_lanes, results)
    del outs, results, first_lanes  # step 1's cached curves and the flows: freed before framing
    choice.curves, choice.results = {}, {}
    final = finalise(inst, evaluated.lines, settings, bonus, pre=evaluated)
    del evaluated
    timings["min_quantity"] = time.perf_counter() - t2
    timings["lanes"] = time.perf_counter() - t1
    # 4. MIP on a reduced lane set for small networks, started from the finished heuristic plan
    t3 = time.perf_counter()
    final, got, mip_obj, mip_bound = _try_mip(
        inst, settings, method, final, reduced, base_open, bonus
    )
    used_method = got or ("heuristic" if has_fixed else "flow")
    timings["mip"] = time.perf_counter() - t3
    timings["total"] = time.perf_counter() - t0
    if inst is not real:  # the premium chose the lanes; the lines pay the lanes' real costs
        final = Final.of(real, final.lines, final.values)
        inst, lp_bound = real, float("nan")
    return _solution(
        inst,
        final,
        lp_bound,
        no_fixed,
        used_method,
        choice.rounds,
        timings,
        mip_obj=mip_obj,
        mip_bound=mip_bound,
        heuristic_objective=heuristic_objective,
    )


def _mip_lanes(
    inst: TransferInstance,
    settings: Settings,
    method: str,
    first_lanes: BoolArray,
    results: dict[int, SkuResult],
) -> BoolArray | None:
    """The MIP's reduced lane set (step 1's lanes and the final flows'); None when the MIP
    does not run (``method`` "heuristic", a large network under "auto", or no flows)."""
    auto_small = method == "auto" and inst.n_stores <= settings.solver.mip_max_stores
    if not results or not (method == "mip" or auto_small):
        return None
    return first_lanes | _used_lanes(inst.n_stores, results.values())


def _used_lanes(n: int, results: Iterable[SkuResult]) -> BoolArray:
    """``(n, n)``: the lanes the results ship on."""
    out = np.zeros((n, n), dtype=bool)
    for r in results:
        out[r.src, r.dst] = True
    return out


def _choose_lanes(
    inst: TransferInstance,
    settings: Settings,
    outs: list[PartOut],
    base_open: BoolArray | None,
    scale: float,
    has_fixed: bool,
) -> LaneChoice:
    """Step 2: the lanes that open, from step 1's flows (see :class:`LaneChoice`)."""
    n = inst.n_stores
    cons = settings.constraints
    lane_open = np.ones((n, n), dtype=bool) if base_open is None else base_open.copy()
    np.fill_diagonal(lane_open, False)
    choice = LaneChoice(
        inst,
        lane_open,
        flatten(outs),
        {cv.sku: cv for o in outs for cv in o.curves},
        scale,
        cons.max_outbound_lanes_per_store,
        cons.max_inbound_lanes_per_store,
        settings.solver.max_lane_rounds,
    )
    choice.choose(has_fixed)
    return choice


def _final_pass(
    eng: Engine,
    inst: TransferInstance,
    settings: Settings,
    choice: LaneChoice,
    outs: list[PartOut],
    base_open: BoolArray | None,
    smp: _Sample,
) -> tuple[dict[int, SkuResult], Evaluated, FloatArray | None]:
    """Step 3: every SKU on the chosen lanes with the minimum-quantity step, in partitions
    through the engine (curves rebuilt in the workers unless the engine runs in this
    process). Returns the flows, the lines rounded to packs and the minimum with their
    values (for :func:`finalise`) and the size-run bonus."""
    cons = settings.constraints
    pack = max(cons.pack_size, 1)
    min_units = max(cons.min_transfer_units, 1)
    bonus = bonus_matrix(inst, settings.solver.broken_size_run_penalty)
    curves = {cv.sku: cv for o in outs for cv in o.curves}
    args = FinishArgs(
        curves=curves if isinstance(eng, LocalEngine) else {},
        bonus=bonus,
        min_units=min_units,
        pack=pack,
        force_units=-(-min_units // pack) * pack,
        n_parts=len(smp.parts),
        cached=set(curves),
        first_prune=prune_mask(inst, base_open),
    )
    cols = sorted(choice.results) + smp.rest.tolist()
    results, evaluated = finish_pass(eng, inst, choice.lane_open, cols, choice.results, args)
    if smp.sampled and results and (inst.fixed_cost > 0).any():
        results, evaluated = _close_after_sample(eng, inst, choice, results, evaluated, args)
    return results, evaluated, bonus


def _solution(
    inst: TransferInstance,
    final: Final,
    lp_bound: float,
    no_fixed: float,
    method: str,
    rounds: int,
    timings: dict[str, float],
    *,
    mip_obj: float | None,
    mip_bound: float | None,
    heuristic_objective: float,
) -> TransferSolution:
    lines = final.lines
    objective = final.objective
    bound = max(lp_bound, objective) if np.isfinite(lp_bound) else float("nan")
    logger.info(
        "transfers: %d lines, objective %.2f, bound %.2f, method %s, %d lane rounds",
        len(lines),
        objective,
        bound,
        method,
        rounds,
    )
    return TransferSolution(
        lines=lines,
        gain=final.values.gain,
        source_loss=final.values.loss,
        unit_cost=final.unit_cost,
        fixed_share=final.fixed_share,
        net_benefit=final.net,
        gain_p10=final.values.g10,
        gain_p90=final.values.g90,
        lead_days=inst.lead_days[lines.src, lines.dst].astype(np.int64),
        objective=objective,
        lp_bound=bound,
        gap=(bound - objective) / bound if bound > 0 else (0.0 if bound == 0 else float("nan")),
        no_fixed_objective=no_fixed,
        method=method,
        mip_objective=mip_obj,
        mip_bound=mip_bound,
        heuristic_objective=heuristic_objective,
        timings=timings,
        marginal_net_benefit=final.marginal_net(inst),
        value_sd=final.values.value_sd,
    )
