"""Constraints that couple SKUs, enforced on the chosen lines, and the MIP refinement.

Store capacity (net inflow over all SKUs), the transfer budget, pack size and minimum quantity
are applied to the lines of the flow solution; every line is then re-checked for a positive net
benefit. On small networks a HiGHS MIP over a reduced lane set may replace the plan.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from stocktailor.config import Settings
from stocktailor.transfers._flow import (
    SkuModel,
    SkuResult,
    build_sku_model,
    cheapest_lanes,
    lines_from_flows,
    size_run_bonus,
)
from stocktailor.transfers._instance import TransferInstance
from stocktailor.transfers._lanes import lane_values
from stocktailor.transfers._lines import (
    MIN_NET_BENEFIT,
    Evaluated,
    LineSet,
    evaluate_lines,
    fixed_shares,
    round_lines,
)
from stocktailor.transfers._mip import solve_mip
from stocktailor.transfers._partition import partition_skus

__all__ = ["Final", "bonus_matrix", "finalise", "flow_objective", "mip_lines"]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Final:
    """Final lines with their P&L (currency per line) and the 10/90% gain band."""

    lines: LineSet
    gain: FloatArray
    loss: FloatArray
    unit_cost: FloatArray
    fixed_share: FloatArray
    net: FloatArray
    g10: FloatArray
    g90: FloatArray

    @property
    def objective(self) -> float:
        return float(self.net.sum())


def _put(a: FloatArray, mask: npt.NDArray[np.bool_], values: FloatArray) -> FloatArray:
    out = a.copy()
    out[mask] = values
    return out


def _per_unit_net(inst: TransferInstance, lines: LineSet, bonus: FloatArray | None) -> FloatArray:
    gain, loss, _, _ = evaluate_lines(inst, lines, bonus)
    uc, share = fixed_shares(inst, lines)
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
        uc, share = fixed_shares(inst, cur)
        cost = cur.units * uc + share
        if cost.sum() <= budget + 1e-9:
            break
        gain, loss, _, _ = evaluate_lines(inst, cur, bonus)
        ratio = (gain - loss - cost) / np.maximum(cost, 1e-9)
        worst = int(np.lexsort((np.arange(len(cur)), ratio))[0])
        keep[np.nonzero(keep)[0][worst]] = False
    return lines.take(keep)


def _settle(inst: TransferInstance, ev: Evaluated, bonus: FloatArray | None) -> Final:
    """Drop lines without a positive net benefit until none is left; only the SKUs that lose
    a line are evaluated again (exact: a line's value depends only on its SKU's lines)."""
    for _ in range(200):
        uc, share = fixed_shares(inst, ev.lines)
        net = ev.gain - ev.loss - ev.lines.units * uc - share
        bad = net <= MIN_NET_BENEFIT
        if not bad.any():
            return Final(ev.lines, ev.gain, ev.loss, uc, share, net, ev.g10, ev.g90)
        touched = np.unique(ev.lines.sku[bad])
        ev = ev.take(~bad)
        redo = np.isin(ev.lines.sku, touched)
        if redo.any():
            g, lo, a, b = evaluate_lines(inst, ev.lines.take(redo), bonus)
            ev = Evaluated(
                ev.lines,
                _put(ev.gain, redo, g),
                _put(ev.loss, redo, lo),
                _put(ev.g10, redo, a),
                _put(ev.g90, redo, b),
            )
    msg = "transfer lines did not settle to positive net benefit"
    raise RuntimeError(msg)


def finalise(
    inst: TransferInstance,
    lines: LineSet,
    settings: Settings,
    bonus: FloatArray | None,
    *,
    pre: Evaluated | None = None,
) -> Final:
    """Round, repair budget and capacity, drop lines without positive net benefit.

    ``pre`` = ``lines`` already rounded, with their P&L: without a budget or capacity to
    repair only the SKUs that lose a line are evaluated again.
    """
    c = settings.constraints
    cap = c.respect_capacity and inst.headroom is not None
    if pre is not None and c.transfer_budget is None and not cap:
        return _settle(inst, pre, bonus)
    lines = round_lines(lines, c.pack_size, c.min_transfer_units)
    for _ in range(200):
        # dropping an outbound line raises a store's net inflow, so capacity is re-checked
        lines = _repair_budget(inst, lines, c.transfer_budget, bonus)
        if c.respect_capacity:  # after the budget: dropping lines can raise net inflow
            lines = _repair_capacity(inst, lines, c.pack_size, c.min_transfer_units, bonus)
        gain, loss, g10, g90 = evaluate_lines(inst, lines, bonus)
        uc, share = fixed_shares(inst, lines)
        net = gain - loss - lines.units * uc - share
        bad = net <= MIN_NET_BENEFIT
        if not bad.any():
            return Final(lines, gain, loss, uc, share, net, g10, g90)
        lines = lines.take(~bad)
    msg = "transfer lines did not settle to positive net benefit"
    raise RuntimeError(msg)


def flow_objective(inst: TransferInstance, results: dict[int, SkuResult]) -> float:
    """Net benefit of flow results after unit and fixed lane costs, currency."""
    if not results:
        return 0.0
    n = inst.n_stores
    keys, _, _ = lane_values(results, n)
    fixed = float(inst.fixed_cost[keys // n, keys % n].sum())
    return float(sum(r.objective for r in results.values())) - fixed


def bonus_matrix(inst: TransferInstance, penalty: float) -> FloatArray | None:
    """Broken-size-run bonus of a first received unit, ``(n, m)`` currency (None = off)."""
    if penalty <= 0 or inst.style_color is None or inst.core_size is None:
        return None
    out = np.zeros((inst.n_stores, inst.n_skus))
    for cols in partition_skus(inst.styles, 1):
        out[:, cols] = size_run_bonus(inst, cols, penalty)
    return out


def _start_flows(models: list[SkuModel], start_lines: LineSet, n: int) -> dict[int, FloatArray]:
    """Flows of ``start_lines`` on each model's lanes (the MIP's starting point)."""
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
    return start


def mip_lines(
    inst: TransferInstance,
    settings: Settings,
    reduced: BoolArray,
    base_open: BoolArray | None,
    penalty: float,
    start_lines: LineSet,
    *,
    forced: bool = False,
) -> tuple[LineSet, float, float] | None:
    """The HiGHS MIP on the lanes ``reduced`` (and ``base_open``), started from
    ``start_lines``: its lines, objective and dual bound (None when skipped or infeasible)."""
    cons = settings.constraints
    lane_open = reduced if base_open is None else reduced & base_open
    min_out, min_in = cheapest_lanes(inst.unit_cost)
    bonus = bonus_matrix(inst, penalty)
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
    start = _start_flows(models, start_lines, inst.n_stores)
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
