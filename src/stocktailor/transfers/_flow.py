"""Per-SKU value curves and the exact min-cost flow over candidate lanes.

For one SKU the problem without fixed lane costs is separable and concave: the k-th unit a
source ships costs it ``loss_i(k) = (price - salvage) * P(D_i >= X_i - k + 1)`` (increasing in
k), the k-th unit a destination receives is worth ``gain_j(k) = (price - salvage) *
P(D_rest_j >= Y_j + k)`` with ``Y_j = (X_j - D_lead_j)+`` (decreasing in k), and a unit on lane
(i, j) costs ``c_ij``. Salvage cancels between the two sides. That is a min-cost flow with
unit-capacity arcs for the curves, solved exactly by OR-Tools ``SimpleMinCostFlow`` on integer
micro-currency costs.

Pruning is exact: a source unit whose loss plus the cheapest lane out is at least the best
first-unit gain anywhere never moves; a destination unit whose gain is at most the cheapest
first-unit loss plus lane in never arrives; a lane whose first-unit margin
``gain_j(1) - loss_i(1) - c_ij`` is not positive never carries flow (every later unit is worse).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from ortools.graph.python import min_cost_flow

from stocktailor.transfers._instance import TransferInstance
from stocktailor.valuation import arrival_tail, prob_at_least

__all__ = [
    "SCALE",
    "SkuCurves",
    "SkuModel",
    "SkuResult",
    "build_sku_curves",
    "build_sku_model",
    "cheapest_lanes",
    "lines_from_flows",
    "model_from_curves",
    "model_from_lane_list",
    "size_run_bonus",
    "solve_sku",
    "solve_sku_objective",
    "stacked_model",
    "with_lane_lower_bounds",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

SCALE = 1_000_000
"""Costs inside the flow solver are integer micro-currency units."""

_EPS = 1e-9


@dataclass(frozen=True)
class SkuModel:
    """Candidate sources, destinations, their value curves and lanes for one SKU.

    ``loss`` and ``gain`` are padded ``(ns, U)`` / ``(nd, K)`` arrays in currency per unit
    (excess over salvage); only the first ``src_units[i]`` / ``dst_units[j]`` entries of a row
    are used.
    """

    sku: int
    src: IntArray
    src_units: IntArray
    loss: FloatArray
    dst: IntArray
    dst_units: IntArray
    gain: FloatArray
    lane_i: IntArray
    lane_j: IntArray
    lane_cost: FloatArray
    lane_cap: IntArray
    lane_low: IntArray | None = None
    """Smallest flow each lane must carry (None = 0), units: the minimum-quantity re-solve
    forces a line up to the minimum instead of forbidding it."""


@dataclass(frozen=True)
class SkuResult:
    """Optimal flows of one SKU: one entry per line (lane with positive flow)."""

    sku: int
    src: IntArray  # global store index
    dst: IntArray
    units: IntArray
    gain: FloatArray  # currency, attributed pro rata within the destination
    loss: FloatArray  # currency, attributed pro rata within the source
    unit_cost: FloatArray  # currency per unit of the lane
    objective: float  # gain - loss - units * unit_cost, currency


def size_run_bonus(inst: TransferInstance, cols: IntArray, penalty: float) -> FloatArray:
    """Extra value of a first unit of a missing core size, currency, ``(n, len(cols))``."""
    n = inst.n_stores
    out = np.zeros((n, cols.shape[0]), dtype=np.float64)
    if penalty <= 0 or inst.style_color is None or inst.core_size is None:
        return out
    keys = [inst.style_color[c] for c in cols]
    for a, c in enumerate(cols):
        if not inst.core_size[c]:
            continue
        missing = inst.stock[:, c] <= 0
        if not missing.any():
            continue
        others = [int(cols[b]) for b in range(cols.shape[0]) if b != a and keys[b] == keys[a]]
        if not others:
            continue
        rows = np.nonzero(missing)[0]
        val = np.zeros(rows.shape[0], dtype=np.float64)
        for t in others:
            x = inst.stock[rows, t]
            if not (x > 0).any():
                continue
            kmax = int(x.max())
            tail = prob_at_least(inst.mean_rest[rows, t], inst.var_rest[rows, t], kmax)
            csum = np.concatenate([np.zeros((rows.shape[0], 1)), np.cumsum(tail, axis=1)], axis=1)
            sold = csum[np.arange(rows.shape[0]), x]
            val += (inst.price[t] - inst.salvage[t]) * sold
        out[rows, a] = penalty * val
    return out


@dataclass(frozen=True)
class SkuCurves:
    """Candidate sources and destinations of one SKU with their value curves (no lanes).

    Curves do not depend on which lanes are open, so lane-closing rounds reuse them.
    """

    sku: int
    src: IntArray
    src_units: IntArray
    loss: FloatArray
    dst: IntArray
    dst_units: IntArray
    gain: FloatArray


def _p_zero(mean: FloatArray, var: FloatArray) -> FloatArray:
    """P(D = 0) for the negative binomial / Poisson of :mod:`stocktailor.valuation`."""
    m = np.maximum(mean, 0.0)
    m = np.where(m > 1e-12, m, 0.0)  # no demand (denormal rates would underflow the log)
    nb = (var > m * (1.0 + 1e-9)) & (m > 0)
    out = np.exp(-m)
    if nb.any():
        mn, vn = m[nb], var[nb]
        out[nb] = np.exp(mn * mn / (vn - mn) * np.log(mn / vn))
    return out


def build_sku_curves(
    inst: TransferInstance,
    s: int,
    *,
    bonus: FloatArray | None = None,
    min_out: FloatArray | None = None,
    min_in: FloatArray | None = None,
    lane_open: BoolArray | None = None,
) -> SkuCurves | None:
    """Candidate sources / destinations of SKU column ``s`` and their curves (exact pruning).

    Parameters
    ----------
    bonus
        ``(n,)`` currency added to the first received unit (broken size runs).
    min_out, min_in
        Cheapest lane cost out of / into each store, ``(n,)`` (precomputed for speed).
    lane_open
        ``(n, n)`` bool, the lanes the curves will be used with (None = all). With it the
        pruning is per store: a source unit is kept only if its loss plus some open lane's
        cost is below that lane's destination's first-unit gain, and a destination unit only
        if its gain beats some open lane's source first-unit loss plus the lane's cost. The
        curves are then valid for any subset of those lanes.
    """
    margin = float(inst.price[s] - inst.salvage[s])
    if margin <= 0:
        return None
    src = np.nonzero(inst.movable[:, s] > 0)[0]
    if lane_open is not None:
        src = src[lane_open[src].any(axis=1)]
    if src.shape[0] == 0:
        return None
    if min_out is None or min_in is None:
        min_out, min_in = cheapest_lanes(inst.unit_cost)
    first = _first_gains(inst, s, margin, src, bonus, min_in, lane_open)
    if first is None:
        return None
    cand, w1 = first
    sources = _sources(inst, s, margin, src, cand, w1, min_out, lane_open)
    if sources is None:
        return None
    src, units_s, loss, live = sources
    # destinations whose first unit can beat the cheapest source + lane
    if lane_open is None:
        thr_c = float((loss[:, 0]).min()) + min_in[cand]
    else:
        sc = np.ix_(src, cand)
        thr_c = np.where(lane_open[sc], loss[:, :1] + inst.unit_cost[sc], np.inf).min(axis=0)
    d_ok = w1 - thr_c > _EPS
    dests = _dest_curves(inst, s, margin, cand[d_ok], thr_c[d_ok], int(units_s.sum()), bonus)
    if dests is None:
        return None
    dst, units_d, gain = dests
    # no source ships more than all destinations can take (exact; bounds a warehouse's curve)
    units_s = np.minimum(units_s, int(units_d.sum()))
    width = int(units_s.max())
    if width > loss.shape[1]:  # only sources without demand (loss 0) reach past the table
        pad = np.where(live[:, None], np.inf, 0.0) * np.ones((1, width - loss.shape[1]))
        loss = np.concatenate([loss, pad], axis=1)
    return SkuCurves(s, src, units_s, loss[:, :width], dst, units_d, gain)


def _first_gains(
    inst: TransferInstance,
    s: int,
    margin: float,
    src: IntArray,
    bonus: FloatArray | None,
    min_in: FloatArray,
    lane_open: BoolArray | None,
) -> tuple[IntArray, FloatArray] | None:
    """Candidate destinations of SKU ``s`` and the value of a first unit arriving there."""
    elig = np.ones(inst.n_stores, dtype=bool) if inst.eligible is None else inst.eligible[:, s]
    # cheap upper bound of the first-unit gain, P(D_rest >= 1), screens out most stores
    ub = margin * (1.0 - _p_zero(inst.mean_rest[:, s], inst.var_rest[:, s]))
    if bonus is not None:
        ub = ub + bonus
    ok_d = elig & ~inst.is_warehouse & (ub > min_in + _EPS)
    if lane_open is not None:
        ok_d &= lane_open[src].any(axis=0)
    cand = np.nonzero(ok_d)[0]
    if cand.shape[0] == 0:
        return None
    w1 = (
        margin
        * arrival_tail(
            np.maximum(inst.stock[cand, s], 0),
            inst.mean_lead[cand, s],
            inst.var_lead[cand, s],
            inst.mean_rest[cand, s],
            inst.var_rest[cand, s],
            1,
        )[:, 0]
    )
    if bonus is not None:
        w1 = w1 + bonus[cand]
    return cand, w1


def _sources(
    inst: TransferInstance,
    s: int,
    margin: float,
    src: IntArray,
    cand: IntArray,
    w1: FloatArray,
    min_out: FloatArray,
    lane_open: BoolArray | None,
) -> tuple[IntArray, IntArray, FloatArray, BoolArray] | None:
    """Sources of SKU ``s`` whose units can pay somewhere: stores, units, loss curves (the
    k-th unit shipped costs ``margin * P(D >= X - k + 1)``) and which sources have demand.

    A source without demand (a warehouse) loses nothing by shipping: its curve is 0 for any
    number of units, so its table may be narrower than its unit count.
    """
    mv = inst.movable[src, s]
    mean = inst.mean_lead[src, s] + inst.mean_rest[src, s]
    live = mean > 1e-12
    width = int(mv[live].max()) if live.any() else 1
    k = np.arange(width)
    loss = np.where(k[None, :] < mv[:, None], 0.0, np.inf)
    if live.any():
        rows = np.nonzero(live)[0]
        xs = np.maximum(inst.stock[src[rows], s], 0)
        var = inst.var_lead[src[rows], s] + inst.var_rest[src[rows], s]
        tail = prob_at_least(mean[rows], var, int(xs.max()))
        col = xs[:, None] - 1 - k[None, :]  # P(D >= X - k) sits in column X - k - 1
        valid = k[None, :] < mv[rows][:, None]
        loss[rows] = margin * np.where(
            valid, tail[np.arange(rows.shape[0])[:, None], np.maximum(col, 0)], np.inf
        )
    if lane_open is None:
        thr_s = float(w1.max()) - min_out[src]
    else:
        sc = np.ix_(src, cand)
        thr_s = np.where(lane_open[sc], w1[None, :] - inst.unit_cost[sc], -np.inf).max(axis=1)
    units_s = (loss < thr_s[:, None] - _EPS).sum(axis=1)
    # a source without demand ships any number of units at no loss
    units_s = np.where(live, units_s, np.where(thr_s > _EPS, mv, 0)).astype(np.int64)
    keep = units_s > 0
    if not keep.any():
        return None
    loss = loss[keep]
    units_s = units_s[keep]
    live_k = live[keep]
    cap = int(units_s[live_k].max()) if live_k.any() else 1
    return src[keep], units_s, loss[:, : max(min(cap, loss.shape[1]), 1)], live_k


def _dest_curves(
    inst: TransferInstance,
    s: int,
    margin: float,
    dst: IntArray,
    thr: FloatArray,
    total: int,
    bonus: FloatArray | None,
) -> tuple[IntArray, IntArray, FloatArray] | None:
    """Destination units of SKU ``s`` that can pay (gain above ``thr``) and their curves."""
    if dst.shape[0] == 0:
        return None
    x = np.maximum(inst.stock[dst, s], 0)
    mr, vr = inst.mean_rest[dst, s], inst.var_rest[dst, s]
    # how many arriving units can pay: try a width from the demand spread, widen if needed
    width = int(min(total, np.ceil((mr + 8.0 * np.sqrt(np.maximum(vr, mr)) + 4.0).max())))
    while True:
        tail_d = arrival_tail(x, inst.mean_lead[dst, s], inst.var_lead[dst, s], mr, vr, width)
        gain = margin * tail_d
        if bonus is not None:
            gain[:, 0] += bonus[dst]
            gain = np.minimum.accumulate(gain, axis=1)
        if width >= total or not (gain[:, -1] > thr + _EPS).any():
            break
        width = min(total, 2 * width)
    units_d = (gain > thr[:, None] + _EPS).sum(axis=1).astype(np.int64)
    dkeep = units_d > 0
    dst, units_d, gain = dst[dkeep], units_d[dkeep], gain[dkeep]
    if dst.shape[0] == 0:
        return None
    return dst, units_d, gain[:, : int(units_d.max())]


def model_from_curves(
    cv: SkuCurves,
    unit_cost: FloatArray,
    *,
    lane_open: BoolArray | None = None,
    lane_mask: BoolArray | None = None,
    forbid: IntArray | None = None,
) -> SkuModel | None:
    """Add the lanes that can pay on their first unit (and are open) to ``cv``."""
    n = unit_cost.shape[0]
    src, dst = cv.src, cv.dst
    if lane_open is not None or lane_mask is not None:
        allowed = np.ones((src.shape[0], dst.shape[0]), dtype=bool)
        if lane_open is not None:
            allowed &= lane_open[np.ix_(src, dst)]
        if lane_mask is not None:
            allowed &= lane_mask[np.ix_(src, dst)]
        li, lj = np.nonzero(allowed)
    else:
        li, lj = np.nonzero(np.ones((src.shape[0], dst.shape[0]), dtype=bool))
    lane_c = unit_cost[src[li], dst[lj]]
    return _finish_model(cv, li, lj, lane_c, n, forbid)


def model_from_lane_list(
    cv: SkuCurves,
    lane_from: IntArray,
    lane_to: IntArray,
    lane_cost: FloatArray,
    n: int,
    *,
    forbid: IntArray | None = None,
    force: IntArray | None = None,
    force_units: int = 0,
) -> SkuModel | None:
    """Like :func:`model_from_curves` with the open lanes given as a list (sparse networks).

    Lanes in ``force`` (keys ``from * n + to``) must carry at least ``force_units`` units when
    their capacity and the ends' units allow it (lower bounds, kept feasible greedily).
    """
    pos_s = np.full(n, -1, dtype=np.int64)
    pos_d = np.full(n, -1, dtype=np.int64)
    pos_s[cv.src] = np.arange(cv.src.shape[0])
    pos_d[cv.dst] = np.arange(cv.dst.shape[0])
    li = pos_s[lane_from]
    lj = pos_d[lane_to]
    sel = (li >= 0) & (lj >= 0)
    model = _finish_model(cv, li[sel], lj[sel], lane_cost[sel], n, forbid)
    if model is None or force is None or force.shape[0] == 0 or force_units <= 0:
        return model
    return _with_lower_bounds(model, force, force_units, n)


def _with_lower_bounds(model: SkuModel, force: IntArray, units: int, n: int) -> SkuModel:
    """``model`` with lanes in ``force`` carrying at least ``units`` (when feasible)."""
    keys = model.src[model.lane_i] * n + model.dst[model.lane_j]
    return with_lane_lower_bounds(model, np.isin(keys, force), units, n)


def with_lane_lower_bounds(model: SkuModel, flagged: BoolArray, units: int, n: int) -> SkuModel:
    """``model`` with the lanes flagged (one flag per model lane) carrying at least ``units``
    when their source can give that many; lanes get their lower bound greedily in key order
    (``from * n + to``) while both ends have units left. A destination whose curve was cut
    below ``units`` gets those units back valued at 0 over salvage (a lower bound)."""
    keys = model.src[model.lane_i] * n + model.dst[model.lane_j]
    forced = flagged & (model.src_units[model.lane_i] >= units)
    if not forced.any():
        return model
    # a destination whose curve was cut below ``units`` (later units not worth a move on their
    # own) gets those units back valued at 0 over salvage, a lower bound of their value
    dst_units = model.dst_units.astype(np.int64).copy()
    short = np.unique(model.lane_j[forced & (dst_units[model.lane_j] < units)])
    gain = model.gain
    if short.shape[0]:
        dst_units[short] = units
        if gain.shape[1] < units:
            gain = np.concatenate([gain, np.zeros((gain.shape[0], units - gain.shape[1]))], 1)
        cols = np.arange(gain.shape[1])[None, :]
        gain = gain.copy()
        gain[short] = np.where(cols < model.dst_units[short][:, None], gain[short], 0.0)
    cap = np.minimum(model.src_units[model.lane_i], dst_units[model.lane_j]).astype(np.int64)
    model = replace(model, dst_units=dst_units, gain=gain, lane_cap=cap)
    cand = np.nonzero(forced)[0]
    low = np.zeros(keys.shape[0], dtype=np.int64)
    left_s = model.src_units.astype(np.int64).copy()
    left_d = dst_units.copy()
    for a in cand[np.argsort(keys[cand], kind="stable")]:
        i, j = int(model.lane_i[a]), int(model.lane_j[a])
        if left_s[i] >= units and left_d[j] >= units:
            low[a] = units
            left_s[i] -= units
            left_d[j] -= units
    return replace(model, lane_low=low)


def _finish_model(
    cv: SkuCurves,
    li: IntArray,
    lj: IntArray,
    lane_c: FloatArray,
    n: int,
    forbid: IntArray | None,
) -> SkuModel | None:
    src, dst = cv.src, cv.dst
    ok = (cv.gain[lj, 0] - cv.loss[li, 0] - lane_c > _EPS) & (src[li] != dst[lj])
    li, lj, lane_c = li[ok], lj[ok], lane_c[ok]
    if forbid is not None and forbid.shape[0] and li.shape[0]:
        keep = ~np.isin(src[li] * n + dst[lj], forbid)
        li, lj, lane_c = li[keep], lj[keep], lane_c[keep]
    if li.shape[0] == 0:
        return None
    # drop sources / destinations left without lanes, remap indices
    us, inv_s = np.unique(li, return_inverse=True)
    ud, inv_d = np.unique(lj, return_inverse=True)
    src_units = cv.src_units[us]
    dst_units = cv.dst_units[ud]
    # a destination never takes more than its lanes can bring, nor a source give more than
    # its lanes can take: fewer unit arcs, same optimum
    reach_d = np.bincount(inv_d, weights=src_units[inv_s], minlength=ud.shape[0])
    dst_units = np.minimum(dst_units, reach_d.astype(np.int64))
    reach_s = np.bincount(inv_s, weights=dst_units[inv_d], minlength=us.shape[0])
    src_units = np.minimum(src_units, reach_s.astype(np.int64))
    cap = np.minimum(src_units[inv_s], dst_units[inv_d]).astype(np.int64)
    return SkuModel(
        sku=cv.sku,
        src=src[us],
        src_units=src_units,
        loss=cv.loss[us][:, : int(src_units.max())],
        dst=dst[ud],
        dst_units=dst_units,
        gain=cv.gain[ud][:, : int(dst_units.max())],
        lane_i=inv_s.astype(np.int64),
        lane_j=inv_d.astype(np.int64),
        lane_cost=lane_c,
        lane_cap=cap,
    )


def stacked_model(
    cv: SkuCurves,
    groups: list[tuple[IntArray, IntArray, FloatArray]],
    n: int,
) -> tuple[SkuModel, IntArray] | None:
    """Several independent copies of one SKU's network in one model (one solve for all).

    ``groups`` are lane lists ``(from, to, cost)`` (store ids, lanes that pass the first-unit
    margin test); copy ``g`` has its own source and destination nodes, so the optimum of the
    stacked model is the optimum of each copy. Returns the model and the copy of each model
    lane (None when no lane is left).
    """
    k = len(groups)
    ns, nd = cv.src.shape[0], cv.dst.shape[0]
    pos_s = np.full(n, -1, dtype=np.int64)
    pos_d = np.full(n, -1, dtype=np.int64)
    pos_s[cv.src] = np.arange(ns)
    pos_d[cv.dst] = np.arange(nd)
    li = np.concatenate([pos_s[g[0]] + a * ns for a, g in enumerate(groups)])
    lj = np.concatenate([pos_d[g[1]] + a * nd for a, g in enumerate(groups)])
    lc = np.concatenate([g[2] for g in groups])
    copy = np.concatenate([np.full(g[0].shape[0], a, dtype=np.int64) for a, g in enumerate(groups)])
    if li.shape[0] == 0:
        return None
    stacked = SkuCurves(
        cv.sku,
        np.tile(cv.src, k),
        np.tile(cv.src_units, k),
        np.tile(cv.loss, (k, 1)),
        np.tile(cv.dst, k),
        np.tile(cv.dst_units, k),
        np.tile(cv.gain, (k, 1)),
    )
    model = _finish_model(stacked, li, lj, lc, n, None)
    if model is None or model.lane_i.shape[0] != li.shape[0]:
        return None
    return model, copy


def build_sku_model(
    inst: TransferInstance,
    s: int,
    *,
    lane_open: BoolArray | None = None,
    bonus: FloatArray | None = None,
    min_out: FloatArray | None = None,
    min_in: FloatArray | None = None,
    forbid: IntArray | None = None,
) -> SkuModel | None:
    """The pruned candidate network of SKU column ``s`` (None when nothing can pay).

    Parameters
    ----------
    lane_open
        ``(n, n)`` bool, lanes that may be used (None = all off-diagonal).
    forbid
        Lane keys ``from * n + to`` this SKU may not use (e.g. lines below the minimum).
    """
    cv = build_sku_curves(inst, s, bonus=bonus, min_out=min_out, min_in=min_in)
    if cv is None:
        return None
    return model_from_curves(
        cv, inst.unit_cost, lane_open=lane_open, lane_mask=inst.lane_mask, forbid=forbid
    )


def cheapest_lanes(cost: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Cheapest lane cost out of and into each store (diagonal excluded), currency per unit."""
    c2 = cost + np.where(np.eye(cost.shape[0], dtype=bool), np.inf, 0.0)
    return c2.min(axis=1), c2.min(axis=0)


def _segments(
    values: FloatArray, counts: IntArray, sign: float
) -> tuple[IntArray, IntArray, IntArray]:
    """Arcs of the first ``counts[r]`` entries of each row: row, integer cost (``sign *
    value`` in micro-currency) and capacity. Consecutive units of a row with the same cost
    share one arc (parallel arcs of equal cost: the same optimum with fewer arcs; a
    warehouse's curve of zeros becomes a single arc)."""
    k = np.arange(values.shape[1])
    mask = k[None, :] < counts[:, None]
    rows = np.nonzero(mask)[0].astype(np.int64)
    cost = np.round(sign * values[mask] * SCALE).astype(np.int64)
    if rows.shape[0] == 0:
        return rows, cost, np.zeros(0, dtype=np.int64)
    new = np.ones(rows.shape[0], dtype=bool)
    new[1:] = (rows[1:] != rows[:-1]) | (cost[1:] != cost[:-1])
    starts = np.flatnonzero(new)
    caps = np.diff(np.append(starts, rows.shape[0])).astype(np.int64)
    return rows[starts], cost[starts], caps


def solve_sku_objective(model: SkuModel, surcharge: FloatArray) -> float:
    """Optimal net benefit with ``surcharge`` (currency per unit) added to each lane, currency."""
    _, value = _solve(model, model.lane_cost + surcharge)
    return value


def solve_sku(model: SkuModel) -> IntArray:
    """Optimal integer flow on each candidate lane of ``model`` (exact min-cost flow)."""
    flows, _ = _solve(model, model.lane_cost)
    return flows


def _solve(model: SkuModel, lane_cost: FloatArray) -> tuple[IntArray, float]:
    ns, nd = model.src.shape[0], model.dst.shape[0]
    t = 2 * ns + nd
    ur, uc, ucap = _segments(model.loss, model.src_units, 1.0)
    dr, dc, dcap = _segments(model.gain, model.dst_units, -1.0)
    nl = model.lane_i.shape[0]
    tails = np.concatenate(
        [
            np.arange(ns),  # keep
            ur,  # ship arcs u_i -> o_i (runs of equal cost)
            ns + model.lane_i,  # lanes o_i -> d_j
            2 * ns + dr,  # receive arcs d_j -> T
        ]
    ).astype(np.int64)
    heads = np.concatenate(
        [
            np.full(ns, t),
            ns + ur,
            2 * ns + model.lane_j,
            np.full(dr.shape[0], t),
        ]
    ).astype(np.int64)
    caps = np.concatenate(
        [
            model.src_units,
            ucap,
            model.lane_cap,
            dcap,
        ]
    ).astype(np.int64)
    costs = np.concatenate(
        [
            np.zeros(ns, dtype=np.int64),
            uc,
            np.round(lane_cost * SCALE).astype(np.int64),
            dc,
        ]
    ).astype(np.int64)
    supplies = np.zeros(t + 1, dtype=np.int64)
    supplies[:ns] = model.src_units
    supplies[t] = -int(model.src_units.sum())
    low = model.lane_low
    fixed_part = 0.0
    if low is not None and low.any():
        # lower bound l on arc (u, v): capacity - l, u must absorb l more, v supplies l more
        lane_arcs = slice(ns + ur.shape[0], ns + ur.shape[0] + nl)
        caps[lane_arcs] -= low
        np.subtract.at(supplies, ns + model.lane_i, low)
        np.add.at(supplies, 2 * ns + model.lane_j, low)
        fixed_part = float((costs[lane_arcs] * low).sum())
    else:
        low = None
    mcf = min_cost_flow.SimpleMinCostFlow()
    mcf.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, costs)
    mcf.set_nodes_supplies(np.arange(t + 1, dtype=np.int64), supplies)
    status = mcf.solve()
    if status != mcf.OPTIMAL:
        msg = f"min-cost flow failed for SKU column {model.sku} (status {status})"
        raise RuntimeError(msg)
    first = ns + ur.shape[0]
    flows: IntArray = np.asarray(
        mcf.flows(np.arange(first, first + nl, dtype=np.int64)), dtype=np.int64
    )
    if low is not None:
        flows = flows + low
    return flows, -(float(mcf.optimal_cost()) + fixed_part) / SCALE


def curve_sum(values: FloatArray, rows: IntArray, q: IntArray) -> FloatArray:
    """Sum of the first ``q[r]`` entries of ``values[rows[r]]``."""
    if values.shape[1] == 0:
        return np.zeros(rows.shape[0])
    c = np.concatenate([np.zeros((values.shape[0], 1)), np.cumsum(values, axis=1)], axis=1)
    out: FloatArray = c[rows, np.minimum(q, values.shape[1])]
    return out


def lines_from_flows(model: SkuModel, flows: IntArray) -> SkuResult:
    """Lines of one SKU with their pro-rata gain and loss (currency)."""
    pos = flows > 0
    li, lj, f = model.lane_i[pos], model.lane_j[pos], flows[pos]
    ns, nd = model.src.shape[0], model.dst.shape[0]
    out_tot = np.bincount(li, weights=f, minlength=ns).astype(np.int64)
    in_tot = np.bincount(lj, weights=f, minlength=nd).astype(np.int64)
    loss_tot = curve_sum(np.where(np.isfinite(model.loss), model.loss, 0.0), np.arange(ns), out_tot)
    gain_tot = curve_sum(model.gain, np.arange(nd), in_tot)
    share_s = f / np.maximum(out_tot[li], 1)
    share_d = f / np.maximum(in_tot[lj], 1)
    gain = gain_tot[lj] * share_d
    loss = loss_tot[li] * share_s
    uc = model.lane_cost[pos]
    return SkuResult(
        sku=model.sku,
        src=model.src[li],
        dst=model.dst[lj],
        units=f.astype(np.int64),
        gain=gain,
        loss=loss,
        unit_cost=uc,
        objective=float(gain.sum() - loss.sum() - (f * uc).sum()),
    )
