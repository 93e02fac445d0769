"""The final pass: every SKU on the chosen lanes, with minimum-quantity re-solves.

The minimum line quantity is not convex, so it is handled after the flow: a SKU's lanes fall
apart into connected components whose flows are independent, and each component holding a
line below the minimum takes the best of a few re-solves (see :func:`min_quantity`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from stocktailor.engine import Engine, LocalEngine
from stocktailor.transfers._flow import (
    SkuCurves,
    SkuResult,
    build_sku_curves,
    cheapest_lanes,
    lines_from_flows,
    model_from_lane_list,
    solve_sku,
    stacked_model,
    with_lane_lower_bounds,
)
from stocktailor.transfers._instance import TransferInstance
from stocktailor.transfers._lines import Evaluated, LineSet, round_lines
from stocktailor.transfers._partition import Sliced, parts_for, to_global, uses_closed

__all__ = [
    "FinishArgs",
    "FinishOut",
    "FinishTask",
    "both_ways",
    "components",
    "finish_partition",
    "finish_pass",
    "finish_sliced",
    "join_results",
    "lanes_of",
    "min_quantity",
    "solve_on_lanes",
    "take_result",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Lanes = tuple[IntArray, IntArray, FloatArray]


def lanes_of(cv: SkuCurves, lf: IntArray, lt: IntArray, lc: FloatArray, n: int) -> Lanes:
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


def components(lf: IntArray, lt: IntArray, n: int) -> IntArray:
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


def solve_on_lanes(
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


def take_result(r: SkuResult, mask: npt.NDArray[Any]) -> SkuResult:
    """The lines of ``r`` selected by ``mask`` (objective recomputed)."""
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


def join_results(sku: int, parts: list[SkuResult]) -> SkuResult | None:
    """One SKU's results concatenated, lines sorted by (from, to)."""
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
    return take_result(out, order)


Option = tuple[BoolArray, BoolArray]
"""(allowed lanes, lanes forced up to the minimum), one flag per lane of the SKU."""


def solve_options(
    cv: SkuCurves,
    options: list[Option],
    within: BoolArray,
    lanes: Lanes,
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
            solve_on_lanes(cv, lf[u], lt[u], lc[u], n, force=keys[u & fo], force_units=force_units)
            for u, (_, fo) in zip(uses, options, strict=True)
        ]
    model, copy = st
    if force_units > 0:
        flagged = np.concatenate([fo[u] for u, (_, fo) in zip(uses, options, strict=True)])
        model = with_lane_lower_bounds(model, flagged, force_units, n)
    flows = solve_sku(model)
    res = lines_from_flows(model, flows)
    line_copy = copy[flows > 0]
    return [take_result(res, line_copy == oi) for oi in range(len(options))]


def _free_left(
    cv: SkuCurves, cur: SkuResult, outside: npt.NDArray[np.bool_], free: BoolArray
) -> SkuCurves:
    """``cv`` with each free source's units less what it ships on the lines ``outside``."""
    if not (outside & free[cur.src]).any():
        return cv
    n = free.shape[0]
    used = np.bincount(cur.src[outside], weights=cur.units[outside], minlength=n)
    left = np.maximum(cv.src_units - used[cv.src].astype(np.int64), 0)
    return replace(cv, src_units=np.where(free[cv.src], left, cv.src_units))


def _option_values(
    got: list[SkuResult | None], bad: IntArray, lab: IntArray, keys: IntArray, n: int
) -> FloatArray:
    """Value of each option in each bad component, ``(options, components)`` currency."""
    out = np.zeros((len(got), bad.shape[0]))
    for oi, g in enumerate(got):
        if g is not None and g.units.shape[0]:
            gc = np.searchsorted(bad, lab[np.searchsorted(keys, g.src * n + g.dst)])
            val = g.gain - g.loss - g.units * g.unit_cost
            out[oi] = np.bincount(gc, weights=val, minlength=bad.shape[0])
    return out


def _best_options(
    got: list[SkuResult | None],
    bad: IntArray,
    lab: IntArray,
    keys: IntArray,
    n: int,
    free_left: tuple[BoolArray, IntArray] | None,
) -> IntArray:
    """Per bad component, the option with the highest value (the first of equals).

    A free source's units are shared by the components: when the components' best options
    together would ship more than it has left (``free_left``: free flags and units left per
    store), every component takes the one option best over all of them.
    """
    vals = _option_values(got, bad, lab, keys, n)
    best_o = np.zeros(bad.shape[0], dtype=np.int64)
    best_v = vals[0].copy()
    for oi in range(1, vals.shape[0]):
        better = vals[oi] > best_v + 1e-9
        best_v[better] = vals[oi][better]
        best_o[better] = oi
    if free_left is None or np.unique(best_o).shape[0] < 2:
        return best_o
    free, left = free_left
    used = np.zeros(n)
    for oi, g in enumerate(got):
        if g is None or g.units.shape[0] == 0:
            continue
        gc = np.searchsorted(bad, lab[np.searchsorted(keys, g.src * n + g.dst)])
        mine = (best_o[gc] == oi) & free[g.src]
        used += np.bincount(g.src[mine], weights=g.units[mine], minlength=n)
    if (used <= left).all():
        return best_o
    total = vals.sum(axis=1)
    return np.full(bad.shape[0], int(np.argmax(total > total.max() - 1e-9)), dtype=np.int64)


def min_quantity(
    cv: SkuCurves,
    r: SkuResult,
    lanes: Lanes,
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

    A source that loses nothing by shipping (a warehouse, or a store's dead stock) does not
    join the destinations it serves into one component: each of its lanes belongs to its
    destination's component, and a re-solve may use only the units such a source does not
    ship to the other components.
    """
    lf, lt, _ = lanes
    keys = lf * n + lt  # sorted
    free = np.zeros(n, dtype=bool)
    free[cv.src[~(cv.loss[:, 0] > 0)]] = True
    # a free source's lanes get a node of their own each: they join only their destination
    lab = components(np.where(free[lf], n + np.arange(lf.shape[0]), lf), lt, 2 * n + lf.shape[0])
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
        is_small = np.zeros(nl, dtype=bool)
        is_small[at[small]] = True
        support = np.zeros(nl, dtype=bool)
        support[at] = True
        options: list[Option] = []
        if rnd == 0:
            options.append((allow & ~is_small, force))
            options.append((allow, force | is_small))
        options.append((allow & support, support.copy()))
        cv_left = _free_left(cv, cur, ~is_bad[line_comp], free)
        got = solve_options(cv_left, options, is_bad[lab], lanes, n, force_units)
        left = np.zeros(n, dtype=np.int64)
        left[cv_left.src] = cv_left.src_units
        best_o = _best_options(got, bad, lab, keys, n, (free, left) if free.any() else None)
        parts = [take_result(cur, ~is_bad[line_comp])]
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
                parts.append(take_result(g, chosen[gl]))
        cur = join_results(cv.sku, parts)
    return cur


@dataclass(frozen=True)
class FinishTask:
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


@dataclass(frozen=True)
class FinishOut:
    """Results of one final-pass task and its lines with their P&L."""

    results: list[SkuResult]
    evaluated: Evaluated


def finish_partition(
    task: FinishTask, *, inst: TransferInstance, bonus: FloatArray | None = None
) -> FinishOut:
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
        lanes = lanes_of(cv, task.lane_from, task.lane_to, task.lane_cost, n)
        r = task.current.get(s)
        if r is not None and not np.isin(r.src * n + r.dst, lanes[0] * n + lanes[1]).all():
            r = None
        if r is None:
            r = solve_on_lanes(cv, *lanes, n)
        if r is not None:
            r = min_quantity(
                cv,
                r,
                lanes,
                n,
                min_units=task.min_units,
                pack=task.pack,
                force_units=task.force_units,
            )
        if r is not None and both_ways(r).shape[0]:
            r = _without_transit(inst, s, r, task, open_, bonus)
        if r is not None:
            out.append(r)
    lines = round_lines(LineSet.concat(out), task.pack, task.min_units)
    return FinishOut(out, Evaluated.of(inst, lines, bonus))


def both_ways(r: SkuResult) -> IntArray:
    """Stores that both receive and ship the SKU in ``r``."""
    out: IntArray = np.intersect1d(r.src, r.dst)
    return out


def _without_transit(
    inst: TransferInstance,
    s: int,
    r: SkuResult,
    task: FinishTask,
    open_: BoolArray,
    bonus: FloatArray | None,
) -> SkuResult | None:
    """Re-solve SKU ``s`` with the stores that both receive and ship it barred from shipping.

    Shipping a unit out of a store and receiving one is never worth it in the value model (a
    unit arriving later is worth at most the unit held); it happens only as a route around
    lane limits, and a planner should not see a store ship what it receives.
    """
    n = inst.n_stores
    one = inst.take_skus(np.array([s], dtype=np.int64))
    barred = np.zeros(n, dtype=bool)
    for _ in range(3):
        barred[both_ways(r)] = True
        local = replace(one, movable=np.where(barred[:, None], 0, one.movable))
        cv = build_sku_curves(
            local,
            0,
            bonus=None if bonus is None else bonus[:, [s]][:, 0],
            lane_open=open_,
        )
        if cv is None:
            return None
        lanes = lanes_of(cv, task.lane_from, task.lane_to, task.lane_cost, n)
        got = solve_on_lanes(cv, *lanes, n)
        if got is None:
            return None
        got = min_quantity(
            cv,
            got,
            lanes,
            n,
            min_units=task.min_units,
            pack=task.pack,
            force_units=task.force_units,
        )
        if got is None:
            return None
        r = replace(got, sku=s)
        if both_ways(r).shape[0] == 0:
            return r
    return None


def finish_sliced(item: Sliced) -> FinishOut:
    """:func:`finish_partition` on a slice, SKU indices mapped back to the full instance."""
    task: FinishTask = item.task
    pos = {int(g): a for a, g in enumerate(item.cols.tolist())}
    local = replace(
        task,
        cols=np.arange(item.cols.shape[0], dtype=np.int64),
        current={pos[k]: replace(r, sku=pos[k]) for k, r in task.current.items()},
        curves={pos[k]: replace(cv, sku=pos[k]) for k, cv in task.curves.items()},
        first=np.array([pos[int(k)] for k in task.first], dtype=np.int64),
    )
    out = finish_partition(local, inst=item.inst, bonus=item.bonus)
    ev = out.evaluated
    lines = LineSet(item.cols[ev.lines.sku], ev.lines.src, ev.lines.dst, ev.lines.units)
    return FinishOut(
        [to_global(r, item.cols) for r in out.results],
        Evaluated(lines, ev.values),
    )


@dataclass(frozen=True)
class FinishArgs:
    """What every final-pass task shares."""

    curves: dict[int, SkuCurves]
    bonus: FloatArray | None
    min_units: int
    pack: int
    force_units: int
    n_parts: int
    cached: set[int] = field(default_factory=set)
    first_prune: BoolArray | None = None


def finish_pass(
    eng: Engine,
    inst: TransferInstance,
    lane_open: BoolArray,
    cols: list[int],
    current: dict[int, SkuResult],
    args: FinishArgs,
) -> tuple[dict[int, SkuResult], Evaluated]:
    """Every SKU in ``cols`` on the open lanes with the minimum-quantity step, partitioned by
    style through the engine. Results in ``current`` that use only open lanes are kept as the
    starting point; the others are re-solved. Also returns the lines rounded to packs and the
    minimum quantity with their exact P&L (evaluated in the partitions: SKUs are separable)."""
    if not cols:
        return {}, Evaluated.concat([])
    open_ = lane_open if inst.lane_mask is None else lane_open & inst.lane_mask
    lf, lt = np.nonzero(open_)
    lf, lt = lf.astype(np.int64), lt.astype(np.int64)
    lc = inst.unit_cost[lf, lt]
    arr = np.array(sorted(cols), dtype=np.int64)
    tasks = []
    for p in parts_for(inst, arr, args.n_parts):
        ks = p.tolist()
        tasks.append(
            FinishTask(
                cols=p,
                lane_from=lf,
                lane_to=lt,
                lane_cost=lc,
                current={
                    k: current[k] for k in ks if k in current and not uses_closed(current[k], open_)
                },
                curves={k: args.curves[k] for k in ks if k in args.curves},
                min_units=args.min_units,
                pack=args.pack,
                force_units=args.force_units,
                first=np.array([k for k in ks if k in args.cached], dtype=np.int64),
                first_prune=args.first_prune,
            )
        )
    done: list[FinishOut]
    if isinstance(eng, LocalEngine):
        shared: dict[str, Any] = {"inst": inst}
        if args.bonus is not None:
            shared["bonus"] = args.bonus
        done = eng.map(finish_partition, tasks, **shared)
    else:
        bonus = args.bonus
        items = [
            Sliced(t.cols, inst.take_skus(t.cols), t, None if bonus is None else bonus[:, t.cols])
            for t in tasks
        ]
        done = eng.map(finish_sliced, items)
    results = {r.sku: r for part in done for r in part.results}
    return results, Evaluated.concat([part.evaluated for part in done])
