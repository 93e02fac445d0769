"""Network-wide solve: per-SKU flows, fixed lane costs across SKUs, constraints, line P&L."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from stocktailor.config import Settings
from stocktailor.engine import Engine, LocalEngine
from stocktailor.transfers._flow import (
    SkuCurves,
    SkuModel,
    SkuResult,
    build_sku_curves,
    build_sku_model,
    cheapest_lanes,
    lines_from_flows,
    model_from_curves,
    model_from_lane_list,
    size_run_bonus,
    solve_sku,
    solve_sku_objective,
)
from stocktailor.transfers._instance import TransferInstance
from stocktailor.transfers._mip import solve_mip
from stocktailor.valuation import arrival_tail, prob_at_least

__all__ = ["LineSet", "TransferSolution", "partition_skus", "solve_instance"]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

MIN_NET_BENEFIT = 0.01
"""Smallest net benefit a line must keep, currency (strictly positive after rounding to cents)."""


@dataclass(frozen=True)
class LineSet:
    """Transfer lines as parallel arrays (index space of a :class:`TransferInstance`)."""

    sku: IntArray
    src: IntArray
    dst: IntArray
    units: IntArray

    @staticmethod
    def empty() -> LineSet:
        z = np.zeros(0, dtype=np.int64)
        return LineSet(z, z, z, z)

    @staticmethod
    def concat(results: Sequence[SkuResult]) -> LineSet:
        if not results:
            return LineSet.empty()
        return LineSet(
            np.concatenate([np.full(r.units.shape[0], r.sku, dtype=np.int64) for r in results]),
            np.concatenate([r.src for r in results]).astype(np.int64),
            np.concatenate([r.dst for r in results]).astype(np.int64),
            np.concatenate([r.units for r in results]).astype(np.int64),
        )

    def take(self, mask: npt.NDArray[Any]) -> LineSet:
        return LineSet(self.sku[mask], self.src[mask], self.dst[mask], self.units[mask])

    def __len__(self) -> int:
        return int(self.units.shape[0])


@dataclass(frozen=True)
class TransferSolution:
    """The chosen plan with its P&L and how good it is.

    Attributes
    ----------
    lines
        The transfer lines (instance index space).
    gain, source_loss, unit_cost, fixed_share, net_benefit, gain_p10, gain_p90
        Per line, currency: expected gain at the destination, expected loss at the source,
        lane cost per unit, the line's share of its lane's fixed cost (allocated by units), net
        benefit ``gain - source_loss - units * unit_cost - fixed_share`` and a 10-90% band of
        the gain.
    lead_days
        Per line lead time, days.
    objective
        Total net benefit of the lines, currency.
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

    @property
    def transfer_cost(self) -> FloatArray:
        out: FloatArray = self.lines.units * self.unit_cost + self.fixed_share
        return out


# ---------------------------------------------------------------------------------------------
# partitions


def partition_skus(styles: Sequence[str], n_parts: int) -> list[IntArray]:
    """Group SKU columns by style into at most ``n_parts`` balanced partitions.

    A style never spans two partitions (size-run effects and future style-level coupling stay
    inside one task). Deterministic: styles sorted, assigned greedily to the lightest partition.
    """
    by_style: dict[str, list[int]] = {}
    for i, s in enumerate(styles):
        by_style.setdefault(s, []).append(i)
    n_parts = max(1, min(n_parts, len(by_style)))
    loads = [0] * n_parts
    parts: list[list[int]] = [[] for _ in range(n_parts)]
    for style in sorted(by_style, key=lambda k: (-len(by_style[k]), k)):
        j = min(range(n_parts), key=lambda q: (loads[q], q))
        parts[j].extend(by_style[style])
        loads[j] += len(by_style[style])
    return [np.array(sorted(p), dtype=np.int64) for p in parts if p]


@dataclass(frozen=True)
class _PartOut:
    results: list[SkuResult]
    curves: list[SkuCurves]  # of the SKUs with flow, reused by the lane-closing re-solves
    objective: float  # no-fixed-cost optimum of the partition, currency
    bound: float  # optimum with the fixed-cost surcharge (LP relaxation), currency


def _solve_partition(
    cols: IntArray,
    *,
    inst: TransferInstance,
    penalty: float,
    lane_open: BoolArray | None = None,
    bound_extra: FloatArray | None = None,
) -> _PartOut:
    """Solve the SKUs ``cols`` independently (top-level so Dask can pickle it).

    With ``bound_extra`` (currency per unit per lane) each SKU is solved a second time with
    that surcharge on its lanes, giving its share of the LP-relaxation bound.
    """
    min_out, min_in = cheapest_lanes(inst.unit_cost)
    bonus = size_run_bonus(inst, cols, penalty) if penalty > 0 else None
    results: list[SkuResult] = []
    curves: list[SkuCurves] = []
    total = 0.0
    bound = 0.0
    for a, s in enumerate(cols):
        cv = build_sku_curves(
            inst,
            int(s),
            bonus=None if bonus is None else bonus[:, a],
            min_out=min_out,
            min_in=min_in,
        )
        if cv is None:
            continue
        model = model_from_curves(cv, inst.unit_cost, lane_open=lane_open, lane_mask=inst.lane_mask)
        if model is None:
            continue
        flows = solve_sku(model)
        if bound_extra is not None:
            surcharge = bound_extra[model.src[model.lane_i], model.dst[model.lane_j]]
            bound += solve_sku_objective(model, surcharge)
        if not (flows > 0).any():
            continue
        res = lines_from_flows(model, flows)
        total += res.objective
        results.append(res)
        curves.append(cv)
    return _PartOut(results, curves, total, bound)


@dataclass(frozen=True)
class _Resolve:
    """One re-solve task: cached curves, the open lanes as a list, forbidden lanes per SKU and
    lanes forced up to ``force_units`` per SKU."""

    curves: list[SkuCurves]
    lane_from: IntArray
    lane_to: IntArray
    lane_cost: FloatArray
    n: int
    forbid: dict[int, IntArray]
    force: dict[int, IntArray] = field(default_factory=dict)
    force_units: int = 0
    only: dict[int, IntArray] = field(default_factory=dict)


def _resolve_partition(task: _Resolve) -> list[SkuResult]:
    """Re-solve SKUs from their cached curves on the open lanes (top-level for Dask)."""
    out: list[SkuResult] = []
    keys = task.lane_from * task.n + task.lane_to
    for cv in task.curves:
        lf, lt, lc = task.lane_from, task.lane_to, task.lane_cost
        allowed = task.only.get(cv.sku)
        if allowed is not None:
            sel = np.isin(keys, allowed)
            lf, lt, lc = lf[sel], lt[sel], lc[sel]
        model = model_from_lane_list(
            cv,
            lf,
            lt,
            lc,
            task.n,
            forbid=task.forbid.get(cv.sku),
            force=task.force.get(cv.sku),
            force_units=task.force_units,
        )
        if model is None:
            continue
        flows = solve_sku(model)
        if (flows > 0).any():
            out.append(lines_from_flows(model, flows))
    return out


def _run(
    engine: Engine,
    parts: list[IntArray],
    inst: TransferInstance,
    *,
    lane_open: BoolArray | None,
    penalty: float,
    bound_extra: FloatArray | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[_PartOut]:
    if not parts:
        return []
    shared: dict[str, Any] = {"inst": inst, "penalty": penalty}
    # None is passed by leaving the keyword out (engines may scatter shared values)
    if lane_open is not None:
        shared["lane_open"] = lane_open
    if bound_extra is not None:
        shared["bound_extra"] = bound_extra
    return engine.map(_solve_partition, parts, progress=progress, **shared)


# ---------------------------------------------------------------------------------------------
# fixed lane costs


def _lane_values(results: dict[int, SkuResult], n: int) -> tuple[IntArray, FloatArray, IntArray]:
    """Per used lane: key, summed net value before fixed cost (currency), units."""
    if not results:
        z = np.zeros(0, dtype=np.int64)
        return z, np.zeros(0), z
    rs = [results[k] for k in sorted(results)]
    keys = np.concatenate([r.src * n + r.dst for r in rs])
    val = np.concatenate([r.gain - r.loss - r.units * r.unit_cost for r in rs])
    units = np.concatenate([r.units for r in rs])
    uk, inv = np.unique(keys, return_inverse=True)
    value: FloatArray = np.bincount(inv, weights=val).astype(np.float64)
    lane_units: IntArray = np.bincount(inv, weights=units).astype(np.int64)
    return uk.astype(np.int64), value, lane_units


def _select_lanes(
    keys: IntArray,
    value: FloatArray,
    fixed: FloatArray,
    n: int,
    max_out: int | None,
    max_in: int | None,
) -> BoolArray:
    """Greedy lane choice by value - fixed cost, within the per-store lane limits."""
    score = value - fixed
    order = np.lexsort((keys, -score))
    out_deg = np.zeros(n, dtype=np.int64)
    in_deg = np.zeros(n, dtype=np.int64)
    open_ = np.zeros((n, n), dtype=bool)
    lo = max_out if max_out is not None else n
    li = max_in if max_in is not None else n
    for idx in order:
        if score[idx] <= 0 and fixed[idx] > 0:
            continue
        i, j = divmod(int(keys[idx]), n)
        if out_deg[i] >= lo or in_deg[j] >= li:
            continue
        open_[i, j] = True
        out_deg[i] += 1
        in_deg[j] += 1
    return open_


def _parts_for(inst: TransferInstance, cols: IntArray, n_parts: int) -> list[IntArray]:
    """Style partitions of the SKU columns ``cols``."""
    sub = partition_skus([inst.styles[int(c)] for c in cols], n_parts)
    return [np.sort(cols[p]) for p in sub]


def _flatten(parts: list[_PartOut]) -> dict[int, SkuResult]:
    return {r.sku: r for p in parts for r in p.results}


def _uses_closed(r: SkuResult, lane_open: BoolArray) -> bool:
    return bool((~lane_open[r.src, r.dst]).any())


# ---------------------------------------------------------------------------------------------
# evaluation of final lines


def _chunks(q: IntArray, max_cells: int = 2_000_000) -> list[IntArray]:
    """Row groups (sorted by q) whose ``rows * max(q)`` stays below ``max_cells``."""
    order = np.argsort(q, kind="stable")
    out: list[IntArray] = []
    start = 0
    nrow = order.shape[0]
    while start < nrow:
        end = start + 1
        step = 256
        while end < nrow:
            nxt = min(nrow, end + step)
            if (nxt - start) * max(int(q[order[nxt - 1]]), 1) > max_cells:
                break
            end = nxt
        out.append(order[start:end])
        start = end
    return out


def evaluate_lines(
    inst: TransferInstance, lines: LineSet, bonus: FloatArray | None = None
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Expected gain, source loss and the 10%/90% gain band of every line, currency.

    Gains and losses are exact for the totals each destination receives / each source ships
    (per SKU) and are split between the lines pro rata to units.
    """
    nl = len(lines)
    if nl == 0:
        z = np.zeros(0)
        return z, z, z, z
    m = inst.n_skus
    margin = inst.price - inst.salvage
    dkey = lines.dst * m + lines.sku
    ud, dinv = np.unique(dkey, return_inverse=True)
    q = np.bincount(dinv, weights=lines.units).astype(np.int64)
    d_store, d_sku = ud // m, ud % m
    g_tot = np.zeros(ud.shape[0])
    n10 = np.zeros(ud.shape[0])
    n90 = np.zeros(ud.shape[0])
    for rows in _chunks(q):
        st, sk, qq = d_store[rows], d_sku[rows], q[rows]
        kmax = int(qq.max())
        tail = arrival_tail(
            np.maximum(inst.stock[st, sk], 0),
            inst.mean_lead[st, sk],
            inst.var_lead[st, sk],
            inst.mean_rest[st, sk],
            inst.var_rest[st, sk],
            kmax,
        )
        inside = np.arange(kmax)[None, :] < qq[:, None]
        g_tot[rows] = (tail * inside).sum(axis=1)
        n10[rows] = ((tail > 0.9) & inside).sum(axis=1)
        n90[rows] = ((tail > 0.1) & inside).sum(axis=1)
    mg = margin[d_sku]
    bon = np.zeros(ud.shape[0]) if bonus is None else bonus[d_store, d_sku]
    share_d = lines.units / np.maximum(q[dinv], 1)
    gain = (mg * g_tot + bon)[dinv] * share_d
    g10 = (mg * n10 + bon)[dinv] * share_d
    g90 = (mg * n90 + bon)[dinv] * share_d
    skey = lines.src * m + lines.sku
    us, sinv = np.unique(skey, return_inverse=True)
    o = np.bincount(sinv, weights=lines.units).astype(np.int64)
    s_store, s_sku = us // m, us % m
    x = np.maximum(inst.stock[s_store, s_sku], 0)
    l_tot = np.zeros(us.shape[0])
    for rows in _chunks(x):
        st, sk = s_store[rows], s_sku[rows]
        xx, oo = x[rows], o[rows]
        kmax = int(xx.max())
        tail = prob_at_least(
            inst.mean_lead[st, sk] + inst.mean_rest[st, sk],
            inst.var_lead[st, sk] + inst.var_rest[st, sk],
            kmax,
        )
        csum = np.concatenate([np.zeros((rows.shape[0], 1)), np.cumsum(tail, axis=1)], axis=1)
        r = np.arange(rows.shape[0])
        l_tot[rows] = csum[r, xx] - csum[r, np.maximum(xx - oo, 0)]
    loss = (margin[s_sku] * l_tot)[sinv] * (lines.units / np.maximum(o[sinv], 1))
    return gain, loss, g10, g90


def _fixed_shares(inst: TransferInstance, lines: LineSet) -> tuple[FloatArray, FloatArray]:
    """Unit cost per line and its share of the lane's fixed cost (by units), currency."""
    n = inst.n_stores
    uc = inst.unit_cost[lines.src, lines.dst]
    if len(lines) == 0:
        return uc, np.zeros(0)
    key = lines.src * n + lines.dst
    uk, inv = np.unique(key, return_inverse=True)
    lane_units = np.bincount(inv, weights=lines.units)
    fixed = inst.fixed_cost[uk // n, uk % n]
    share = fixed[inv] * lines.units / np.maximum(lane_units[inv], 1)
    return uc, share


# ---------------------------------------------------------------------------------------------
# constraints after the flow


def _round_lines(lines: LineSet, pack: int, min_units: int) -> LineSet:
    u = (lines.units // pack) * pack
    keep = u >= max(min_units, 1)
    return LineSet(lines.sku[keep], lines.src[keep], lines.dst[keep], u[keep])


def _per_unit_net(inst: TransferInstance, lines: LineSet, bonus: FloatArray | None) -> FloatArray:
    gain, loss, _, _ = evaluate_lines(inst, lines, bonus)
    uc, share = _fixed_shares(inst, lines)
    out: FloatArray = (gain - loss - share) / np.maximum(lines.units, 1) - uc
    return out


def _repair_capacity(
    inst: TransferInstance, lines: LineSet, pack: int, min_units: int, bonus: FloatArray | None
) -> LineSet:
    """Trim the least valuable inbound lines of stores whose net inflow exceeds headroom."""
    if inst.headroom is None or len(lines) == 0:
        return lines
    n = inst.n_stores
    head = np.maximum(inst.headroom, 0)
    units = lines.units.copy()
    for _ in range(50):
        net_in = np.bincount(lines.dst, weights=units, minlength=n) - np.bincount(
            lines.src, weights=units, minlength=n
        )
        over = np.nonzero(net_in > head)[0]
        if over.shape[0] == 0:
            break
        per_unit = _per_unit_net(inst, LineSet(lines.sku, lines.src, lines.dst, units), bonus)
        for j in over:
            excess = int(net_in[j] - head[j])
            idx = np.nonzero((lines.dst == j) & (units > 0))[0]
            idx = idx[np.lexsort((idx, per_unit[idx]))]
            for li in idx:
                if excess <= 0:
                    break
                cut = min(int(units[li]), excess)
                new = units[li] - cut
                new = (new // pack) * pack
                if new < min_units:
                    new = 0
                excess -= int(units[li] - new)
                units[li] = new
    keep = units > 0
    return LineSet(lines.sku[keep], lines.src[keep], lines.dst[keep], units[keep])


def _repair_budget(
    inst: TransferInstance, lines: LineSet, budget: float | None, bonus: FloatArray | None
) -> LineSet:
    """Drop lines with the lowest net benefit per currency of cost until within the budget."""
    if budget is None or len(lines) == 0:
        return lines
    keep = np.ones(len(lines), dtype=bool)
    for _ in range(len(lines)):
        cur = lines.take(keep)
        uc, share = _fixed_shares(inst, cur)
        cost = cur.units * uc + share
        if cost.sum() <= budget + 1e-9:
            break
        gain, loss, _, _ = evaluate_lines(inst, cur, bonus)
        ratio = (gain - loss - cost) / np.maximum(cost, 1e-9)
        worst = int(np.lexsort((np.arange(len(cur)), ratio))[0])
        keep[np.nonzero(keep)[0][worst]] = False
    return lines.take(keep)


def _finalise(
    inst: TransferInstance, lines: LineSet, settings: Settings, bonus: FloatArray | None
) -> tuple[LineSet, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    c = settings.constraints
    lines = _round_lines(lines, c.pack_size, c.min_transfer_units)
    for _ in range(200):
        # dropping an outbound line raises a store's net inflow, so capacity is re-checked
        lines = _repair_budget(inst, lines, c.transfer_budget, bonus)
        if c.respect_capacity:  # after the budget: dropping lines can raise net inflow
            lines = _repair_capacity(inst, lines, c.pack_size, c.min_transfer_units, bonus)
        gain, loss, g10, g90 = evaluate_lines(inst, lines, bonus)
        uc, share = _fixed_shares(inst, lines)
        net = gain - loss - lines.units * uc - share
        bad = net <= MIN_NET_BENEFIT
        if not bad.any():
            return lines, gain, loss, uc, share, net, np.stack([g10, g90])
        lines = lines.take(~bad)
    msg = "transfer lines did not settle to positive net benefit"
    raise RuntimeError(msg)


# ---------------------------------------------------------------------------------------------
# the solve


def solve_instance(
    inst: TransferInstance,
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    method: str | None = None,
    progress: Callable[[int], None] | None = None,
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

    Returns
    -------
    TransferSolution
    """
    settings = settings or Settings()
    sol = settings.solver
    cons = settings.constraints
    eng: Engine = engine or LocalEngine()
    method = method or sol.fixed_cost_method
    n = inst.n_stores
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    # a source with fewer movable units than the minimum line cannot ship that SKU at all
    few = (inst.movable > 0) & (inst.movable < cons.min_transfer_units)
    if few.any():
        inst = replace(inst, movable=np.where(few, 0, inst.movable))
    parts = partition_skus(inst.styles, max(settings.engine.partitions, 1))
    penalty = sol.broken_size_run_penalty
    lane_mask = inst.lane_mask
    base_open: BoolArray | None = None
    partners = sol.candidate_partners
    if partners is None and n > sol.large_network_stores:
        partners = sol.large_network_partners
    if partners is not None and n > 1:
        base_open = _nearest_mask(inst.unit_cost, partners)
        if lane_mask is not None:
            base_open &= lane_mask
    has_fixed = bool((inst.fixed_cost > 0).any())
    # LP relaxation of the fixed-charge model with big-M = all movable units of the source
    # (valid: a lane never carries more than its source can give over all SKUs); computed in
    # the same pass by solving each SKU a second time with the surcharge fixed / M
    bound_extra: FloatArray | None = None
    if sol.lp_bound and has_fixed:
        big_m = np.maximum(inst.movable.sum(axis=1), 1).astype(np.float64)
        bound_extra = inst.fixed_cost / big_m[:, None]
    # on large networks the lanes are valued on an evenly spaced sample of styles; the other
    # SKUs are solved once the lanes are chosen (no bound then: it needs every SKU)
    style_names = sorted(set(inst.styles))
    cap = sol.lane_sample_styles
    sampled = cap is not None and len(style_names) > cap and has_fixed
    rest_parts: list[IntArray] = []
    if sampled and cap is not None:
        step = len(style_names) / cap
        keep = {style_names[int(i * step)] for i in range(cap)}
        first_cols = np.array([j for j, st in enumerate(inst.styles) if st in keep], dtype=np.int64)
        rest_cols = np.array(
            [j for j, st in enumerate(inst.styles) if st not in keep], dtype=np.int64
        )
        parts = _parts_for(inst, first_cols, len(parts))
        rest_parts = _parts_for(inst, rest_cols, len(parts))
        bound_extra = None
    # 1. exact flows without fixed costs (+ the bound)
    outs = _run(
        eng,
        parts,
        inst,
        lane_open=base_open,
        penalty=penalty,
        bound_extra=bound_extra,
        progress=progress,
    )
    results = _flatten(outs)
    no_fixed = float(sum(o.objective for o in outs))
    lp_bound = float(sum(o.bound for o in outs)) if bound_extra is not None else no_fixed
    lp_bound = min(lp_bound, no_fixed)
    if sampled:
        no_fixed = lp_bound = float("nan")
    first_lanes = np.zeros((n, n), dtype=bool)
    for r in results.values():
        first_lanes[r.src, r.dst] = True
    timings["flow"] = time.perf_counter() - t0
    max_out = cons.max_outbound_lanes_per_store
    max_in = cons.max_inbound_lanes_per_store
    # 2. lane choice across SKUs + re-solve
    t1 = time.perf_counter()
    lane_open = np.ones((n, n), dtype=bool) if base_open is None else base_open.copy()
    np.fill_diagonal(lane_open, False)
    rounds = 0
    forbid: dict[int, IntArray] = {}
    force: dict[int, IntArray] = {}
    only: dict[int, IntArray] = {}
    pack = max(cons.pack_size, 1)
    force_units = -(-max(cons.min_transfer_units, 1) // pack) * pack

    curves = {cv.sku: cv for o in outs for cv in o.curves}

    def resolve(
        affected: list[int],
        open_mask: BoolArray | None = None,
        target: dict[int, SkuResult] | None = None,
        forbid_: dict[int, IntArray] | None = None,
        force_: dict[int, IntArray] | None = None,
        only_: dict[int, IntArray] | None = None,
    ) -> None:
        mask = lane_open if open_mask is None else open_mask
        fb = forbid if forbid_ is None else forbid_
        fc = force if force_ is None else force_
        on = only if only_ is None else only_
        into = results if target is None else target
        sub = partition_skus([inst.styles[k] for k in affected], len(parts))
        for k in affected:
            into.pop(k, None)
        open_ = mask if inst.lane_mask is None else mask & inst.lane_mask
        lf, lt = np.nonzero(open_)
        lc = inst.unit_cost[lf, lt]
        tasks = []
        for p in sub:
            skus_p = [affected[i] for i in p]
            tasks.append(
                _Resolve(
                    curves=[curves[k] for k in skus_p],
                    lane_from=lf,
                    lane_to=lt,
                    lane_cost=lc,
                    n=n,
                    forbid={k: fb[k] for k in skus_p if k in fb},
                    force={k: fc[k] for k in skus_p if k in fc},
                    force_units=force_units,
                    only={k: on[k] for k in skus_p if k in on},
                )
            )
        done = (LocalEngine() if sol.resolve_in_process else eng).map(_resolve_partition, tasks)
        into.update({r.sku: r for part in done for r in part})

    if results:
        keys, value, _ = _lane_values(results, n)
        first_keys, first_value = keys, value
        first_results = dict(results)
        fixed = inst.fixed_cost[keys // n, keys % n]
        chosen = _select_lanes(keys, value, fixed, n, max_out, max_in)
        lane_open &= chosen
        if rest_parts:
            more = _run(eng, rest_parts, inst, lane_open=lane_open, penalty=penalty)
            results.update(_flatten(more))
            curves.update({cv.sku: cv for o in more for cv in o.curves})

        def close_rounds() -> int:
            done = 0
            for done in range(1, sol.max_lane_rounds + 1):  # noqa: B007
                affected = [k for k, r in results.items() if _uses_closed(r, lane_open)]
                if not affected:
                    break
                resolve(affected)
                keys, value, _ = _lane_values(results, n)
                fixed = inst.fixed_cost[keys // n, keys % n]
                bad = keys[(value - fixed <= 0) & (fixed > 0)]
                lane_open[bad // n, bad % n] = False
            return done

        rounds = close_rounds()
        if has_fixed:
            # open lanes nobody uses are closed; then try adding back lanes that paid in step
            # 1, where both stores still have lane slots, and close again what does not pay
            used = np.zeros((n, n), dtype=bool)
            for r in results.values():
                used[r.src, r.dst] = True
            lane_open &= used
            first_score = first_value - inst.fixed_cost[first_keys // n, first_keys % n]
            order = np.lexsort((first_keys, -first_score))
            out_deg = lane_open.sum(axis=1)
            in_deg = lane_open.sum(axis=0)
            added = np.zeros((n, n), dtype=bool)
            for idx in order:
                if first_score[idx] <= 0:
                    break
                i, j = divmod(int(first_keys[idx]), n)
                if lane_open[i, j] or out_deg[i] >= max_out or in_deg[j] >= max_in:
                    continue
                lane_open[i, j] = added[i, j] = True
                out_deg[i] += 1
                in_deg[j] += 1
            if added.any():
                affected = sorted(
                    k
                    for k in curves
                    if k in first_results
                    and added[first_results[k].src, first_results[k].dst].any()
                )
                if affected:
                    resolve(affected)
                    keys, value, _ = _lane_values(results, n)
                    fixed = inst.fixed_cost[keys // n, keys % n]
                    bad = keys[(value - fixed <= 0) & (fixed > 0)]
                    lane_open[bad // n, bad % n] = False
                    rounds += close_rounds()
        # lines below the minimum quantity. Per SKU the best of three re-solves: (a) forbid
        # those lanes (units go elsewhere), (b) force them up to the minimum (lower bounds),
        # (c) keep only the SKU's current lanes, all forced to the minimum (creates no new
        # small line). (a) and (b) may leave new small lines; the last round applies (c).
        timings["lane_choice"] = time.perf_counter() - t1
        empty = np.zeros(0, dtype=np.int64)
        mq_rounds = 2
        for rnd in range(mq_rounds):
            small_of: dict[int, IntArray] = {}
            support_of: dict[int, IntArray] = {}
            for k, r in results.items():
                small = (r.units // cons.pack_size) * cons.pack_size < cons.min_transfer_units
                if small.any():
                    small_of[k] = r.src[small] * n + r.dst[small]
                    support_of[k] = np.unique(r.src * n + r.dst)
            logger.debug("min-quantity round %d: %d SKUs with small lines", rnd, len(small_of))
            if not small_of:
                break
            affected = sorted(small_of)
            options: list[tuple[dict[int, IntArray], dict[int, IntArray], dict[int, IntArray]]]
            options = []
            if rnd < mq_rounds - 1:
                options.append(
                    (
                        {k: np.union1d(forbid.get(k, empty), small_of[k]) for k in affected},
                        {},
                        {},
                    )
                )
                options.append(
                    ({}, {k: np.union1d(force.get(k, empty), small_of[k]) for k in affected}, {})
                )
            options.append(({}, dict(support_of), dict(support_of)))
            best: dict[int, SkuResult | None] = {}
            best_v = dict.fromkeys(affected, -np.inf)
            best_opt: dict[int, int] = {}
            for oi, (fb_o, fc_o, on_o) in enumerate(options):
                got: dict[int, SkuResult] = {}
                resolve(
                    affected,
                    lane_open,
                    got,
                    {**forbid, **fb_o},
                    {**force, **fc_o},
                    {**only, **on_o},
                )
                for k in affected:
                    rk = got.get(k)
                    v = rk.objective if rk is not None else 0.0
                    if v > best_v[k] + 1e-9:
                        best_v[k], best[k], best_opt[k] = v, rk, oi
            logger.debug(
                "min-quantity round %d: option wins %s",
                rnd,
                np.bincount(list(best_opt.values()), minlength=len(options)).tolist(),
            )
            for k in affected:
                fb_o, fc_o, on_o = options[best_opt[k]]
                for store, upd in ((forbid, fb_o), (force, fc_o), (only, on_o)):
                    if k in upd:
                        store[k] = upd[k]
                results.pop(k, None)
                rk = best[k]
                if rk is not None:
                    results[k] = rk
    timings["lanes"] = time.perf_counter() - t1
    heur_lines = LineSet.concat([results[k] for k in sorted(results)])
    heur_obj = _flow_objective(inst, results)
    timings["lp_bound"] = 0.0
    t4 = time.perf_counter()
    bonus = _bonus_matrix(inst, penalty)
    final = _finalise(inst, heur_lines, settings, bonus)
    timings["finalise"] = time.perf_counter() - t4
    # 4. MIP on a reduced lane set for small networks, started from the finished heuristic plan
    used_method = "heuristic" if has_fixed else "flow"
    mip_obj: float | None = None
    mip_bound: float | None = None
    use_mip = method == "mip" or (method == "auto" and n <= sol.mip_max_stores)
    t3 = time.perf_counter()
    if use_mip and results:
        reduced = first_lanes.copy()
        for r in results.values():
            reduced[r.src, r.dst] = True
        mres = _mip_lines(
            inst, settings, reduced, base_open, penalty, final[0], forced=method == "mip"
        )
        if mres is not None:
            mip_lines, mip_obj, mip_bound = mres
            mip_final = _finalise(inst, mip_lines, settings, bonus)
            if float(mip_final[5].sum()) > float(final[5].sum()) + 1e-9:
                final = mip_final
                used_method = "mip"
    timings["mip"] = time.perf_counter() - t3
    lines, gain, loss, uc, share, net, band = final
    timings["total"] = time.perf_counter() - t0
    objective = float(net.sum())
    bound = max(lp_bound, objective) if np.isfinite(lp_bound) else float("nan")
    logger.info(
        "transfers: %d lines, objective %.2f, bound %.2f, method %s, %d lane rounds",
        len(lines),
        objective,
        bound,
        used_method,
        rounds,
    )
    return TransferSolution(
        lines=lines,
        gain=gain,
        source_loss=loss,
        unit_cost=uc,
        fixed_share=share,
        net_benefit=net,
        gain_p10=band[0],
        gain_p90=band[1],
        lead_days=inst.lead_days[lines.src, lines.dst].astype(np.int64),
        objective=objective,
        lp_bound=bound,
        gap=(bound - objective) / bound if bound > 0 else (0.0 if bound == 0 else float("nan")),
        no_fixed_objective=no_fixed,
        method=used_method,
        mip_objective=mip_obj,
        mip_bound=mip_bound,
        heuristic_objective=heur_obj,
        timings=timings,
    )


def _flow_objective(inst: TransferInstance, results: dict[int, SkuResult]) -> float:
    """Net benefit of flow results after unit and fixed lane costs, currency."""
    if not results:
        return 0.0
    n = inst.n_stores
    keys, _, _ = _lane_values(results, n)
    fixed = float(inst.fixed_cost[keys // n, keys % n].sum())
    return float(sum(r.objective for r in results.values())) - fixed


def _bonus_matrix(inst: TransferInstance, penalty: float) -> FloatArray | None:
    if penalty <= 0 or inst.style_color is None or inst.core_size is None:
        return None
    out = np.zeros((inst.n_stores, inst.n_skus))
    for cols in partition_skus(inst.styles, 1):
        out[:, cols] = size_run_bonus(inst, cols, penalty)
    return out


def _nearest_mask(unit_cost: FloatArray, k: int) -> BoolArray:
    """Lanes between each store and its ``k`` cheapest partners (either direction)."""
    n = unit_cost.shape[0]
    c = unit_cost + np.where(np.eye(n, dtype=bool), np.inf, 0.0)
    k = min(k, n - 1)
    idx = np.argsort(c, axis=1, kind="stable")[:, :k]
    mask = np.zeros((n, n), dtype=bool)
    mask[np.repeat(np.arange(n), k), idx.ravel()] = True
    out: BoolArray = mask | mask.T
    return out


def _mip_lines(
    inst: TransferInstance,
    settings: Settings,
    reduced: BoolArray,
    base_open: BoolArray | None,
    penalty: float,
    start_lines: LineSet,
    *,
    forced: bool = False,
) -> tuple[LineSet, float, float] | None:
    cons = settings.constraints
    lane_open = reduced if base_open is None else reduced & base_open
    cost = inst.unit_cost
    min_out, min_in = cheapest_lanes(cost)
    bonus = _bonus_matrix(inst, penalty)
    models: list[SkuModel] = []
    for s in range(inst.n_skus):
        mdl = build_sku_model(
            inst,
            s,
            lane_open=lane_open,
            min_out=min_out,
            min_in=min_in,
            bonus=None if bonus is None else bonus[:, s],
        )
        if mdl is not None:
            models.append(mdl)
    size = sum(int(m.src_units.sum()) + int(m.dst_units.sum()) + m.lane_i.shape[0] for m in models)
    if not forced and size > settings.solver.mip_max_variables:
        logger.info("MIP skipped: %d variables > mip_max_variables", size)
        return None
    n = inst.n_stores
    start: dict[int, FloatArray] = {}
    by_sku: dict[int, dict[int, int]] = {}
    for k, i, j, u in zip(
        start_lines.sku.tolist(),
        start_lines.src.tolist(),
        start_lines.dst.tolist(),
        start_lines.units.tolist(),
        strict=True,
    ):
        by_sku.setdefault(k, {})[i * n + j] = u
    for mi, mdl in enumerate(models):
        lookup = by_sku.get(mdl.sku)
        if lookup is None:
            continue
        keys = (mdl.src[mdl.lane_i] * n + mdl.dst[mdl.lane_j]).tolist()
        start[mi] = np.array([lookup.get(k, 0) for k in keys], dtype=np.float64)
    res = solve_mip(
        inst,
        models,
        start=start if settings.solver.mip_warm_start else None,
        max_out=cons.max_outbound_lanes_per_store,
        max_in=cons.max_inbound_lanes_per_store,
        budget=cons.transfer_budget,
        respect_capacity=cons.respect_capacity,
        time_limit_s=settings.solver.mip_time_limit_s,
        min_units=max(cons.min_transfer_units, 1),
    )
    if res is None:
        return None
    sku_res = [
        lines_from_flows(m, np.round(f).astype(np.int64))
        for m, f in zip(models, res.flows, strict=True)
    ]
    return LineSet.concat([r for r in sku_res if len(r.units)]), res.objective, res.bound
