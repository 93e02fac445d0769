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
    LineValues,
    fixed_shares,
    line_values,
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
    """Final lines with their values (:class:`LineValues`) and lane costs, currency per line."""

    lines: LineSet
    values: LineValues
    unit_cost: FloatArray
    fixed_share: FloatArray

    @staticmethod
    def of(inst: TransferInstance, lines: LineSet, values: LineValues) -> Final:
        """Lines with lane costs; fixed costs shared by the lines' marginal values."""
        uc = inst.unit_cost[lines.src, lines.dst]
        var = values.marginal_gain - values.marginal_loss - lines.units * uc
        _, share = fixed_shares(inst, lines, var)
        return Final(lines, values, uc, share)

    @property
    def variable_net(self) -> FloatArray:
        """Marginal value of each line given every other line, before fixed costs, currency."""
        v = self.values
        out: FloatArray = v.marginal_gain - v.marginal_loss - self.lines.units * self.unit_cost
        return out

    def marginal_net(self, inst: TransferInstance) -> FloatArray:
        """The plan's value with each line minus without it (every other line kept), after
        costs: the lane's fixed cost counts only for a line alone on its lane, currency."""
        n = inst.n_stores
        key = self.lines.src * n + self.lines.dst
        _, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
        alone = cnt[inv] == 1
        fixed = inst.fixed_cost[self.lines.src, self.lines.dst]
        out: FloatArray = self.variable_net - np.where(alone, fixed, 0.0)
        return out

    @property
    def net(self) -> FloatArray:
        """Net benefit of each line (stacked values less lane costs), currency."""
        v = self.values
        out: FloatArray = v.gain - v.loss - self.lines.units * self.unit_cost - self.fixed_share
        return out

    @property
    def objective(self) -> float:
        """The plan's expected value against no moves, after costs, currency (exact)."""
        return float(self.net.sum())


def _per_unit_net(inst: TransferInstance, lines: LineSet, bonus: FloatArray | None) -> FloatArray:
    fin = Final.of(inst, lines, line_values(inst, lines, bonus))
    out: FloatArray = fin.net / np.maximum(lines.units, 1)
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
        # each store's inbound lines, least valuable per unit first (ties: line order); only
        # the store's own lines change while it is trimmed
        live = np.flatnonzero(units > 0)
        live = live[np.lexsort((live, per_unit[live], lines.dst[live]))]
        first = np.searchsorted(lines.dst[live], over, side="left")
        last = np.searchsorted(lines.dst[live], over, side="right")
        for j, a, b in zip(over.tolist(), first.tolist(), last.tolist(), strict=True):
            _trim(units, live[a:b].tolist(), int(net_in[j] - head[j]), pack, min_units)
    keep = units > 0
    return LineSet(lines.sku[keep], lines.src[keep], lines.dst[keep], units[keep])


def _trim(units: IntArray, idx: list[int], excess: int, pack: int, min_units: int) -> None:
    """Cut ``excess`` units off the lines ``idx`` in order (in place), each left in whole
    packs and at least ``min_units`` or dropped."""
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


def _repair_budget(
    inst: TransferInstance, lines: LineSet, budget: float | None, bonus: FloatArray | None
) -> LineSet:
    """Drop lines with the lowest net benefit per currency of cost until within the budget.

    The budget counts store-to-store lines only (a warehouse's shipments are not transfers).
    """
    if budget is None or len(lines) == 0:
        return lines
    keep = np.ones(len(lines), dtype=bool)
    counted = ~inst.is_warehouse[lines.src]
    for _ in range(len(lines)):
        cur = lines.take(keep)
        fin = Final.of(inst, cur, line_values(inst, cur, bonus))
        cost = cur.units * fin.unit_cost + fin.fixed_share
        mine = counted[keep]
        if cost[mine].sum() <= budget + 1e-9:
            break
        ratio = np.where(mine, fin.net / np.maximum(cost, 1e-9), np.inf)
        worst = int(np.lexsort((np.arange(len(cur)), ratio))[0])
        keep[np.nonzero(keep)[0][worst]] = False
    return lines.take(keep)


def _unpaid(inst: TransferInstance, fin: Final) -> npt.NDArray[np.bool_]:
    """Lines to drop: no positive marginal value given every other line (before fixed costs),
    every line of a lane whose lines do not cover its fixed cost, and lines left below the
    minimum net benefit."""
    var = fin.variable_net
    bad = var <= MIN_NET_BENEFIT
    n = inst.n_stores
    key = fin.lines.src * n + fin.lines.dst
    uk, inv = np.unique(key, return_inverse=True)
    lane_val = np.bincount(inv, weights=np.where(bad, 0.0, var))
    fixed = inst.fixed_cost[uk // n, uk % n]
    bad |= (lane_val <= fixed + MIN_NET_BENEFIT)[inv]
    if not bad.any():
        bad = fin.net <= MIN_NET_BENEFIT
    out: npt.NDArray[np.bool_] = bad
    return out


def _settle(inst: TransferInstance, ev: Evaluated, bonus: FloatArray | None) -> Final:
    """Drop lines without a positive marginal net benefit until none is left; only the SKUs
    that lose a line are evaluated again (exact: a line's value depends only on its SKU's
    lines). Dropping a line never lowers another line's marginal value (concave values)."""
    for _ in range(200):
        fin = Final.of(inst, ev.lines, ev.values)
        bad = _unpaid(inst, fin)
        if not bad.any():
            return fin
        touched = np.unique(ev.lines.sku[bad])
        ev = ev.take(~bad)
        redo = np.isin(ev.lines.sku, touched)
        if redo.any():
            again = line_values(inst, ev.lines.take(redo), bonus)
            ev = Evaluated(ev.lines, ev.values.put(redo, again))
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
        fin = Final.of(inst, lines, line_values(inst, lines, bonus))
        bad = _unpaid(inst, fin)
        if not bad.any():
            return fin
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
        limited=inst.store_lanes() if inst.has_warehouses else None,
    )
    if res is None:
        return None
    sku_res = [
        lines_from_flows(m, np.round(f).astype(np.int64))
        for m, f in zip(models, res.flows, strict=True)
    ]
    return LineSet.concat([r for r in sku_res if len(r.units)]), res.objective, res.bound
