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
    stacked_model,
    with_lane_lower_bounds,
)
from stocktailor.transfers._instance import TransferInstance
from stocktailor.transfers._mip import solve_mip
from stocktailor.valuation import arrival_tail, prob_at_least

__all__ = [
    "LineSet",
    "TransferSolution",
    "partition_skus",
    "solve_instance",
    "transfer_bounds",
]

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
    curves: bool = True,
) -> _PartOut:
    """Solve the SKUs ``cols`` independently (top-level so Dask can pickle it).

    With ``bound_extra`` (currency per unit per lane) each SKU is solved a second time with
    that surcharge on its lanes, giving its share of the LP-relaxation bound.
    """
    min_out, min_in = cheapest_lanes(inst.unit_cost)
    bonus = size_run_bonus(inst, cols, penalty) if penalty > 0 else None
    prune: BoolArray | None = None  # lanes the curves are pruned against (None = all)
    if lane_open is not None or inst.lane_mask is not None:
        prune = np.ones((inst.n_stores, inst.n_stores), dtype=bool)
        for mask in (lane_open, inst.lane_mask):
            if mask is not None:
                prune &= mask
        np.fill_diagonal(prune, False)
    results: list[SkuResult] = []
    kept: list[SkuCurves] = []
    total = 0.0
    bound = 0.0
    for a, s in enumerate(cols):
        cv = build_sku_curves(
            inst,
            int(s),
            bonus=None if bonus is None else bonus[:, a],
            min_out=min_out,
            min_in=min_in,
            lane_open=prune,
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
        if curves:
            results.append(res)
            kept.append(cv)
    return _PartOut(results, kept, total, bound)


def _lanes_of(
    cv: SkuCurves, lf: IntArray, lt: IntArray, lc: FloatArray, n: int
) -> tuple[IntArray, IntArray, FloatArray]:
    """The open lanes of ``cv`` that can pay on their first unit (the same test as the model's),
    sorted by key ``from * n + to``."""
    pos_s = np.full(n, -1, dtype=np.int64)
    pos_d = np.full(n, -1, dtype=np.int64)
    pos_s[cv.src] = np.arange(cv.src.shape[0])
    pos_d[cv.dst] = np.arange(cv.dst.shape[0])
    i, j = pos_s[lf], pos_d[lt]
    sel = (i >= 0) & (j >= 0)
    i, j = i[sel], j[sel]
    ok = cv.gain[j, 0] - cv.loss[i, 0] - lc[sel] > 1e-9
    return lf[sel][ok], lt[sel][ok], lc[sel][ok]


def _components(lf: IntArray, lt: IntArray, n: int) -> IntArray:
    """Connected component of every lane in the graph of sources and destinations (labels are
    small integers, not necessarily consecutive)."""
    k = lf.shape[0]
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    _, a = np.unique(lf, return_inverse=True)
    _, b = np.unique(lt, return_inverse=True)
    ns = int(a.max()) + 1
    b = b + ns
    lab = np.arange(int(b.max()) + 1, dtype=np.int64)
    while True:  # min-label propagation; the diameter of a component bounds the rounds
        e = np.minimum(lab[a], lab[b])
        new = lab.copy()
        np.minimum.at(new, a, e)
        np.minimum.at(new, b, e)
        new = new[new]  # pointer jumping
        if np.array_equal(new, lab):
            break
        lab = new
    out: IntArray = lab[a]
    return out


def _solve_on_lanes(
    cv: SkuCurves,
    lf: IntArray,
    lt: IntArray,
    lc: FloatArray,
    n: int,
    *,
    force: IntArray | None = None,
    force_units: int = 0,
) -> SkuResult | None:
    """Optimal lines of one SKU on the listed lanes (None when nothing moves); lanes in
    ``force`` (keys ``from * n + to``) carry at least ``force_units`` units when feasible."""
    model = model_from_lane_list(cv, lf, lt, lc, n, force=force, force_units=force_units)
    if model is None:
        return None
    flows = solve_sku(model)
    if not (flows > 0).any():
        return None
    return lines_from_flows(model, flows)


def _take(r: SkuResult, mask: npt.NDArray[Any]) -> SkuResult:
    return SkuResult(
        sku=r.sku,
        src=r.src[mask],
        dst=r.dst[mask],
        units=r.units[mask],
        gain=r.gain[mask],
        loss=r.loss[mask],
        unit_cost=r.unit_cost[mask],
        objective=float((r.gain[mask] - r.loss[mask] - r.units[mask] * r.unit_cost[mask]).sum()),
    )


def _join(sku: int, parts: list[SkuResult]) -> SkuResult | None:
    parts = [p for p in parts if p.units.shape[0]]
    if not parts:
        return None
    out = SkuResult(
        sku=sku,
        src=np.concatenate([p.src for p in parts]),
        dst=np.concatenate([p.dst for p in parts]),
        units=np.concatenate([p.units for p in parts]),
        gain=np.concatenate([p.gain for p in parts]),
        loss=np.concatenate([p.loss for p in parts]),
        unit_cost=np.concatenate([p.unit_cost for p in parts]),
        objective=0.0,
    )
    order = np.lexsort((out.dst, out.src))
    return _take(out, order)


def _solve_options(
    cv: SkuCurves,
    options: list[tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]],
    within: npt.NDArray[np.bool_],
    lanes: tuple[IntArray, IntArray, FloatArray],
    n: int,
    force_units: int,
) -> list[SkuResult | None]:
    """One SKU re-solved on the lanes ``within`` under each option (allowed lanes, forced
    lanes), all options as independent copies in one min-cost flow."""
    lf, lt, lc = lanes
    uses = [within & al for al, _ in options]
    st = stacked_model(cv, [(lf[u], lt[u], lc[u]) for u in uses], n)
    if st is None:  # nothing to move in any option, or lanes the model would drop
        keys = lf * n + lt
        return [
            _solve_on_lanes(cv, lf[u], lt[u], lc[u], n, force=keys[u & fo], force_units=force_units)
            for u, (_, fo) in zip(uses, options, strict=True)
        ]
    model, copy = st
    if force_units > 0:
        flagged = np.concatenate([fo[u] for u, (_, fo) in zip(uses, options, strict=True)])
        model = with_lane_lower_bounds(model, flagged, force_units, n)
    flows = solve_sku(model)
    res = lines_from_flows(model, flows)
    line_copy = copy[flows > 0]
    return [_take(res, line_copy == oi) for oi in range(len(options))]


def _min_quantity(
    cv: SkuCurves,
    r: SkuResult,
    lanes: tuple[IntArray, IntArray, FloatArray],
    n: int,
    *,
    min_units: int,
    pack: int,
    force_units: int,
) -> SkuResult | None:
    """Lines below the minimum quantity of one SKU, handled by re-solves on its lanes.

    The SKU's lanes fall apart into connected components (sources and destinations joined by
    open lanes) whose flows are independent, so only the components holding a small line are
    re-solved, and each takes the best of three re-solves: (a) forbid the small lines' lanes
    (units go elsewhere), (b) force them up to the minimum (lane lower bounds), (c) keep only
    the component's current lanes, all forced to the minimum (creates no new small line). (a)
    and (b) may leave new small lines, so a second round applies (c).
    """
    lf, lt, _ = lanes
    keys = lf * n + lt  # sorted
    lab = _components(lf, lt, n)
    nl = keys.shape[0]
    nlab = int(lab.max()) + 1 if nl else 0
    allow = np.ones(nl, dtype=bool)  # lanes the SKU may use
    force = np.zeros(nl, dtype=bool)  # lanes forced up to the minimum
    cur: SkuResult | None = r
    for rnd in range(2):
        if cur is None:
            return None
        small = (cur.units // pack) * pack < min_units
        if not small.any():
            break
        at = np.searchsorted(keys, cur.src * n + cur.dst)
        line_comp = lab[at]
        bad = np.unique(line_comp[small])
        is_bad = np.zeros(nlab, dtype=bool)
        is_bad[bad] = True
        in_bad = is_bad[lab]
        is_small = np.zeros(nl, dtype=bool)
        is_small[at[small]] = True
        support = np.zeros(nl, dtype=bool)
        support[at] = True
        options: list[tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]] = []
        if rnd == 0:
            options.append((allow & ~is_small, force))
            options.append((allow, force | is_small))
        options.append((allow & support, support.copy()))
        best_v = np.full(bad.shape[0], -np.inf)
        best_o = np.zeros(bad.shape[0], dtype=np.int64)
        got = _solve_options(cv, options, in_bad, lanes, n, force_units)
        for oi, g in enumerate(got):
            v: FloatArray = np.zeros(bad.shape[0])
            if g is not None and g.units.shape[0]:
                gc = np.searchsorted(bad, lab[np.searchsorted(keys, g.src * n + g.dst)])
                val = g.gain - g.loss - g.units * g.unit_cost
                v = np.bincount(gc, weights=val, minlength=bad.shape[0]).astype(np.float64)
            better = v > best_v + 1e-9
            best_v[better] = v[better]
            best_o[better] = oi
        parts = [_take(cur, ~is_bad[line_comp])]
        for oi, (al, fo) in enumerate(options):
            comps = bad[best_o == oi]
            if comps.shape[0] == 0:
                continue
            chosen = np.zeros(nlab, dtype=bool)
            chosen[comps] = True
            sel = chosen[lab]
            allow[sel] = al[sel]
            force[sel] = fo[sel]
            g = got[oi]
            if g is not None:
                gl = lab[np.searchsorted(keys, g.src * n + g.dst)]
                parts.append(_take(g, chosen[gl]))
        cur = _join(cv.sku, parts)
    return cur


@dataclass(frozen=True)
class _Finish:
    """One final-pass task: SKU columns to solve on the open lanes (listed), their results
    already optimal on those lanes and their cached curves where known."""

    cols: IntArray
    lane_from: IntArray
    lane_to: IntArray
    lane_cost: FloatArray
    current: dict[int, SkuResult]
    curves: dict[int, SkuCurves]
    min_units: int
    pack: int
    force_units: int
    first: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """SKUs whose curves the calling process holds from step 1: rebuilt (when not shipped)
    with step 1's pruning, ``first_prune``, so every engine gives the same curves."""
    first_prune: BoolArray | None = None


def _finish_partition(
    task: _Finish, *, inst: TransferInstance, bonus: FloatArray | None = None
) -> _FinishOut:
    """Solve SKUs on the open lanes and apply the minimum-quantity step (top-level for Dask)."""
    n = inst.n_stores
    cheap: tuple[FloatArray, FloatArray] | None = None
    open_ = np.zeros((n, n), dtype=bool)
    open_[task.lane_from, task.lane_to] = True
    out: list[SkuResult] = []
    first = set(task.first.tolist())
    for s in task.cols.tolist():
        cv = task.curves.get(s)
        if cv is None:
            if cheap is None:
                cheap = cheapest_lanes(inst.unit_cost)
            cv = build_sku_curves(
                inst,
                s,
                bonus=None if bonus is None else bonus[:, s],
                min_out=cheap[0],
                min_in=cheap[1],
                lane_open=task.first_prune if s in first else open_,
            )
        if cv is None:
            continue
        lanes = _lanes_of(cv, task.lane_from, task.lane_to, task.lane_cost, n)
        r = task.current.get(s)
        if r is not None and not np.isin(r.src * n + r.dst, lanes[0] * n + lanes[1]).all():
            r = None
        if r is None:
            r = _solve_on_lanes(cv, *lanes, n)
        if r is not None:
            r = _min_quantity(
                cv,
                r,
                lanes,
                n,
                min_units=task.min_units,
                pack=task.pack,
                force_units=task.force_units,
            )
        if r is not None:
            out.append(r)
    lines = _round_lines(LineSet.concat(out), task.pack, task.min_units)
    return _FinishOut(out, _Evaluated(lines, *evaluate_lines(inst, lines, bonus)))


@dataclass(frozen=True)
class _Evaluated:
    """Lines rounded to packs and the minimum, with their exact gain, loss and gain band."""

    lines: LineSet
    gain: FloatArray
    loss: FloatArray
    g10: FloatArray
    g90: FloatArray

    def take(self, mask: npt.NDArray[Any]) -> _Evaluated:
        return _Evaluated(
            self.lines.take(mask), self.gain[mask], self.loss[mask], self.g10[mask], self.g90[mask]
        )

    @staticmethod
    def concat(parts: Sequence[_Evaluated]) -> _Evaluated:
        """Concatenate and sort by SKU (stable: each SKU's lines keep their order)."""
        ls = [p.lines for p in parts]
        lines = LineSet(
            np.concatenate([x.sku for x in ls] or [np.zeros(0, dtype=np.int64)]),
            np.concatenate([x.src for x in ls] or [np.zeros(0, dtype=np.int64)]),
            np.concatenate([x.dst for x in ls] or [np.zeros(0, dtype=np.int64)]),
            np.concatenate([x.units for x in ls] or [np.zeros(0, dtype=np.int64)]),
        )
        order = np.argsort(lines.sku, kind="stable")

        def cat(name: str) -> FloatArray:
            out: FloatArray = np.concatenate([getattr(p, name) for p in parts] or [np.zeros(0)])
            return out[order]

        return _Evaluated(lines.take(order), cat("gain"), cat("loss"), cat("g10"), cat("g90"))


@dataclass(frozen=True)
class _FinishOut:
    results: list[SkuResult]
    evaluated: _Evaluated


def _finish(
    eng: Engine,
    inst: TransferInstance,
    lane_open: BoolArray,
    cols: list[int],
    *,
    current: dict[int, SkuResult],
    curves: dict[int, SkuCurves],
    bonus: FloatArray | None,
    min_units: int,
    pack: int,
    force_units: int,
    n_parts: int,
    cached: set[int] | None = None,
    first_prune: BoolArray | None = None,
) -> tuple[dict[int, SkuResult], _Evaluated]:
    """Every SKU in ``cols`` on the open lanes with the minimum-quantity step, partitioned by
    style through the engine. Results in ``current`` that use only open lanes are kept as the
    starting point; the others are re-solved. Also returns the lines rounded to packs and the
    minimum quantity with their exact P&L (evaluated in the partitions: SKUs are separable)."""
    if not cols:
        return {}, _Evaluated.concat([])
    open_ = lane_open if inst.lane_mask is None else lane_open & inst.lane_mask
    lf, lt = np.nonzero(open_)
    lf, lt = lf.astype(np.int64), lt.astype(np.int64)
    lc = inst.unit_cost[lf, lt]
    arr = np.array(sorted(cols), dtype=np.int64)
    tasks = []
    for p in _parts_for(inst, arr, n_parts):
        ks = p.tolist()
        tasks.append(
            _Finish(
                cols=p,
                lane_from=lf,
                lane_to=lt,
                lane_cost=lc,
                current={
                    k: current[k]
                    for k in ks
                    if k in current and not _uses_closed(current[k], open_)
                },
                curves={k: curves[k] for k in ks if k in curves},
                min_units=min_units,
                pack=pack,
                force_units=force_units,
                first=np.array([k for k in ks if cached and k in cached], dtype=np.int64),
                first_prune=first_prune,
            )
        )
    done: list[_FinishOut]
    if isinstance(eng, LocalEngine):
        shared: dict[str, Any] = {"inst": inst}
        if bonus is not None:
            shared["bonus"] = bonus
        done = eng.map(_finish_partition, tasks, **shared)
    else:
        items = [
            _Sliced(t.cols, inst.take_skus(t.cols), t, None if bonus is None else bonus[:, t.cols])
            for t in tasks
        ]
        done = eng.map(_finish_sliced, items)
    results = {r.sku: r for part in done for r in part.results}
    return results, _Evaluated.concat([part.evaluated for part in done])


def _to_global(r: SkuResult, cols: IntArray) -> SkuResult:
    return replace(r, sku=int(cols[r.sku]))


@dataclass(frozen=True)
class _Sliced:
    """A task with its own slice of the instance: a distributed engine then ships each SKU
    column once instead of broadcasting the whole instance to every worker for every map."""

    cols: IntArray
    inst: TransferInstance
    task: Any = None
    bonus: FloatArray | None = None


def _solve_sliced(
    item: _Sliced,
    *,
    penalty: float,
    lane_open: BoolArray | None = None,
    bound_extra: FloatArray | None = None,
    curves: bool = True,
) -> _PartOut:
    """:func:`_solve_partition` on a slice, SKU indices mapped back to the full instance."""
    local = np.arange(item.cols.shape[0], dtype=np.int64)
    out = _solve_partition(
        local,
        inst=item.inst,
        penalty=penalty,
        lane_open=lane_open,
        bound_extra=bound_extra,
        curves=curves,
    )
    return _PartOut(
        [_to_global(r, item.cols) for r in out.results],
        [replace(cv, sku=int(item.cols[cv.sku])) for cv in out.curves],
        out.objective,
        out.bound,
    )


def _finish_sliced(item: _Sliced) -> _FinishOut:
    """:func:`_finish_partition` on a slice, SKU indices mapped back to the full instance."""
    task: _Finish = item.task
    pos = {int(g): a for a, g in enumerate(item.cols.tolist())}
    local = replace(
        task,
        cols=np.arange(item.cols.shape[0], dtype=np.int64),
        current={pos[k]: replace(r, sku=pos[k]) for k, r in task.current.items()},
        curves={pos[k]: replace(cv, sku=pos[k]) for k, cv in task.curves.items()},
        first=np.array([pos[int(k)] for k in task.first], dtype=np.int64),
    )
    out = _finish_partition(local, inst=item.inst, bonus=item.bonus)
    ev = out.evaluated
    lines = LineSet(item.cols[ev.lines.sku], ev.lines.src, ev.lines.dst, ev.lines.units)
    return _FinishOut(
        [_to_global(r, item.cols) for r in out.results],
        _Evaluated(lines, ev.gain, ev.loss, ev.g10, ev.g90),
    )


def _run(
    engine: Engine,
    parts: list[IntArray],
    inst: TransferInstance,
    *,
    lane_open: BoolArray | None,
    penalty: float,
    bound_extra: FloatArray | None = None,
    progress: Callable[[int], None] | None = None,
    curves: bool = True,
) -> list[_PartOut]:
    """Step 1 over the partitions; ``curves=False`` keeps only the objectives (bound pass)."""
    if not parts:
        return []
    shared: dict[str, Any] = {"penalty": penalty}
    if not curves:
        shared["curves"] = False
    # None is passed by leaving the keyword out (engines may scatter shared values)
    if lane_open is not None:
        shared["lane_open"] = lane_open
    if bound_extra is not None:
        shared["bound_extra"] = bound_extra
    if isinstance(engine, LocalEngine):
        return engine.map(_solve_partition, parts, progress=progress, inst=inst, **shared)
    items = [_Sliced(p, inst.take_skus(p)) for p in parts]
    return engine.map(_solve_sliced, items, progress=progress, **shared)


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


def _put(a: FloatArray, mask: npt.NDArray[np.bool_], values: FloatArray) -> FloatArray:
    out = a.copy()
    out[mask] = values
    return out


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
    inst: TransferInstance,
    lines: LineSet,
    settings: Settings,
    bonus: FloatArray | None,
    *,
    pre: _Evaluated | None = None,
) -> tuple[LineSet, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Round, repair budget and capacity, drop lines without positive net benefit.

    ``pre`` = ``lines`` already rounded, with their P&L: without a budget or capacity to
    repair only the SKUs that lose a line are evaluated again (exact: a line's value depends
    only on the other lines of its SKU).
    """
    c = settings.constraints
    cap = c.respect_capacity and inst.headroom is not None
    if pre is not None and c.transfer_budget is None and not cap:
        ev = pre
        for _ in range(200):
            uc, share = _fixed_shares(inst, ev.lines)
            net = ev.gain - ev.loss - ev.lines.units * uc - share
            bad = net <= MIN_NET_BENEFIT
            if not bad.any():
                band = np.stack([ev.g10, ev.g90])
                return ev.lines, ev.gain, ev.loss, uc, share, net, band
            touched = np.unique(ev.lines.sku[bad])
            ev = ev.take(~bad)
            redo = np.isin(ev.lines.sku, touched)
            if redo.any():
                g, lo, a, b = evaluate_lines(inst, ev.lines.take(redo), bonus)
                ev = _Evaluated(
                    ev.lines,
                    _put(ev.gain, redo, g),
                    _put(ev.loss, redo, lo),
                    _put(ev.g10, redo, a),
                    _put(ev.g90, redo, b),
                )
        msg = "transfer lines did not settle to positive net benefit"
        raise RuntimeError(msg)
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


def _prepare(
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
        base_open = _nearest_mask(inst.unit_cost, partners)
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
    inst, base_open, bound_extra = _prepare(inst, settings)
    parts = partition_skus(inst.styles, max(settings.engine.partitions, 1))
    outs = _run(
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
    inst, base_open, bound_extra = _prepare(inst, settings)
    parts = partition_skus(inst.styles, max(settings.engine.partitions, 1))
    penalty = sol.broken_size_run_penalty
    has_fixed = bool((inst.fixed_cost > 0).any())
    if not sol.lp_bound:
        bound_extra = None
    # on large networks the lanes are valued on an evenly spaced sample of styles; the other
    # SKUs are solved once the lanes are chosen (no bound then: it needs every SKU)
    style_names = sorted(set(inst.styles))
    cap = sol.lane_sample_styles
    sampled = cap is not None and len(style_names) > cap and has_fixed
    rest_cols: IntArray = np.zeros(0, dtype=np.int64)
    if sampled and cap is not None:
        step = len(style_names) / cap
        keep = {style_names[int(i * step)] for i in range(cap)}
        first_cols = np.array([j for j, st in enumerate(inst.styles) if st in keep], dtype=np.int64)
        rest_cols = np.array(
            [j for j, st in enumerate(inst.styles) if st not in keep], dtype=np.int64
        )
        parts = _parts_for(inst, first_cols, len(parts))
        bound_extra = None
    # 1. exact flows without fixed costs (+ the bound), on the lane-valuation sample
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
    # 2. lane choice across SKUs + closing rounds (on the sample, cached curves, in process)
    t1 = time.perf_counter()
    lane_open = np.ones((n, n), dtype=bool) if base_open is None else base_open.copy()
    np.fill_diagonal(lane_open, False)
    rounds = 0
    pack = max(cons.pack_size, 1)
    min_units = max(cons.min_transfer_units, 1)
    force_units = -(-min_units // pack) * pack
    # lane values of a sample stand for all SKUs: scale them by the share of SKUs sampled
    scale = inst.n_skus / max(sum(p.shape[0] for p in parts), 1) if sampled else 1.0
    curves = {cv.sku: cv for o in outs for cv in o.curves}

    def lane_scores(res: dict[int, SkuResult], factor: float) -> tuple[IntArray, FloatArray]:
        """Per used lane: key and value (scaled by ``factor``) less its fixed cost."""
        keys, value, _ = _lane_values(res, n)
        return keys, value * factor - inst.fixed_cost[keys // n, keys % n]

    def resolve(affected: list[int]) -> None:
        """Re-solve cached SKUs on the open lanes (in the calling process)."""
        open_ = lane_open if inst.lane_mask is None else lane_open & inst.lane_mask
        lf, lt = np.nonzero(open_)
        lc = inst.unit_cost[lf, lt]
        for k in affected:
            results.pop(k, None)
            rk = _solve_on_lanes(curves[k], lf, lt, lc, n)
            if rk is not None:
                results[k] = rk

    def close_rounds() -> int:
        done = 0
        for done in range(1, sol.max_lane_rounds + 1):  # noqa: B007
            affected = sorted(k for k, r in results.items() if _uses_closed(r, lane_open))
            if not affected:
                break
            resolve(affected)
            keys, score = lane_scores(results, scale)
            bad = keys[(score <= 0) & (inst.fixed_cost[keys // n, keys % n] > 0)]
            lane_open[bad // n, bad % n] = False
        return done

    if results:
        first_keys, first_score = lane_scores(results, scale)
        first_results = dict(results)
        first_fixed = inst.fixed_cost[first_keys // n, first_keys % n]
        chosen = _select_lanes(
            first_keys, first_score + first_fixed, first_fixed, n, max_out, max_in
        )
        lane_open &= chosen
        rounds = close_rounds()
        if has_fixed:
            # open lanes nobody uses are closed; then try adding back lanes that paid in step
            # 1, where both stores still have lane slots, and close again what does not pay
            used = np.zeros((n, n), dtype=bool)
            for r in results.values():
                used[r.src, r.dst] = True
            lane_open &= used
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
                    keys, score = lane_scores(results, scale)
                    bad = keys[(score <= 0) & (inst.fixed_cost[keys // n, keys % n] > 0)]
                    lane_open[bad // n, bad % n] = False
                    rounds += close_rounds()
    timings["lane_choice"] = time.perf_counter() - t1
    # 3. every SKU on the chosen lanes, with the minimum-quantity step, in partitions through
    # the engine (curves rebuilt in the workers unless the engine runs in this process)
    t2 = time.perf_counter()
    local = isinstance(eng, LocalEngine)
    bonus = _bonus_matrix(inst, penalty)
    first_prune: BoolArray | None = None  # step 1's pruning (see _solve_partition)
    if base_open is not None or inst.lane_mask is not None:
        first_prune = np.ones((n, n), dtype=bool)
        for mask in (base_open, inst.lane_mask):
            if mask is not None:
                first_prune &= mask
        np.fill_diagonal(first_prune, False)
    fin_args: dict[str, Any] = {
        "cached": set(curves),
        "first_prune": first_prune,
        "curves": curves if local else {},
        "bonus": bonus,
        "min_units": min_units,
        "pack": pack,
        "force_units": force_units,
        "n_parts": len(parts),
    }
    results, evaluated = _finish(
        eng, inst, lane_open, sorted(results) + rest_cols.tolist(), current=results, **fin_args
    )
    if sampled and has_fixed and results:
        # lanes chosen on the sample that do not pay with every SKU are closed once more
        for _ in range(2):
            keys, score = lane_scores(results, 1.0)
            bad = keys[(score <= 0) & (inst.fixed_cost[keys // n, keys % n] > 0)]
            if bad.shape[0] == 0:
                break
            lane_open[bad // n, bad % n] = False
            affected = sorted(k for k, r in results.items() if _uses_closed(r, lane_open))
            redo, redo_eval = _finish(eng, inst, lane_open, affected, current={}, **fin_args)
            for k in affected:
                results.pop(k, None)
            results.update(redo)
            stale = np.isin(evaluated.lines.sku, np.array(affected, dtype=np.int64))
            evaluated = _Evaluated.concat([evaluated.take(~stale), redo_eval])
            rounds += 1
    timings["min_quantity"] = time.perf_counter() - t2
    timings["lanes"] = time.perf_counter() - t1
    heur_obj = _flow_objective(inst, results)
    timings["lp_bound"] = 0.0
    t4 = time.perf_counter()
    final = _finalise(inst, evaluated.lines, settings, bonus, pre=evaluated)
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
