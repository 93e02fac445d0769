"""Transfer lines as arrays and their P&L: gain, source loss, lane costs and the gain band."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from stocktailor.transfers._flow import SkuResult
from stocktailor.transfers._instance import TransferInstance
from stocktailor.valuation import arrival_tail, prob_at_least

__all__ = [
    "BAND_LEVELS",
    "MIN_NET_BENEFIT",
    "Evaluated",
    "LineSet",
    "LineValues",
    "chunks",
    "evaluate_lines",
    "fixed_shares",
    "line_values",
    "plan_value",
    "round_lines",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

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


def round_lines(lines: LineSet, pack: int, min_units: int) -> LineSet:
    """Lines rounded down to whole packs; lines below the minimum quantity dropped."""
    u = (lines.units // pack) * pack
    keep = u >= max(min_units, 1)
    return LineSet(lines.sku[keep], lines.src[keep], lines.dst[keep], u[keep])


def chunks(q: IntArray, max_cells: int = 2_000_000) -> list[IntArray]:
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


BAND_LEVELS = (0.1, 0.9)
"""Levels of the gain band (``gain_p10``, ``gain_p90``)."""


@dataclass(frozen=True)
class LineValues:
    """What each line of a plan is worth, currency per line.

    The lines into one store and SKU are stacked in the order their units arrive (shorter lead
    first; at equal lead a warehouse before a store, then the cheaper lane), and the lines out
    of one source in the same order. A line's value is what its units add on top of the lines
    stacked before it, so the lines add up to the plan's value exactly; the last line at a
    store is valued given every other line into it.

    Attributes
    ----------
    gain, loss
        Expected gain at the destination and loss at the source of the line's units, stacked.
    g10, g90
        10% and 90% mid-quantiles of the stacked gain (the line's units sold at the destination
        times the margin) under the demand distribution, widened where needed to contain
        ``gain``.
    marginal_gain, marginal_loss
        The same given every other line of the plan (the plan with the line minus without
        it): at most ``gain`` and at least ``loss`` (values are concave in stock).
    value_sd
        Standard deviation of the line's stacked value, ``margin * (U - V)`` with U its units
        sold at the destination and V the units the source would have sold (independent),
        currency.
    """

    gain: FloatArray
    loss: FloatArray
    g10: FloatArray
    g90: FloatArray
    marginal_gain: FloatArray
    marginal_loss: FloatArray
    value_sd: FloatArray

    def take(self, mask: npt.NDArray[Any]) -> LineValues:
        return LineValues(*(getattr(self, f)[mask] for f in _VALUE_FIELDS))

    def put(self, mask: npt.NDArray[np.bool_], other: LineValues) -> LineValues:
        """A copy with the rows ``mask`` replaced by ``other``."""
        out = []
        for f in _VALUE_FIELDS:
            a = getattr(self, f).copy()
            a[mask] = getattr(other, f)
            out.append(a)
        return LineValues(*out)

    @staticmethod
    def concat(parts: Sequence[LineValues]) -> LineValues:
        cols = [[getattr(p, f) for p in parts] or [np.zeros(0)] for f in _VALUE_FIELDS]
        return LineValues(*(np.concatenate(c) for c in cols))


_VALUE_FIELDS = ("gain", "loss", "g10", "g90", "marginal_gain", "marginal_loss", "value_sd")


def _tail_var(tail: FloatArray, row: IntArray, base: IntArray, q: IntArray) -> FloatArray:
    """Variance of U with ``P(U >= u) = tail[row, base + u - 1]``, u = 1..q (units^2)."""
    if row.shape[0] == 0:
        return np.zeros(0)
    u = np.arange(1, int(q.max()) + 1)
    col = np.clip(base[:, None] + u[None, :] - 1, 0, tail.shape[1] - 1)
    p = np.where(u[None, :] <= q[:, None], tail[row[:, None], col], 0.0)
    m1 = p.sum(axis=1)
    m2 = (p * (2 * u[None, :] - 1)).sum(axis=1)
    out: FloatArray = np.maximum(m2 - m1 * m1, 0.0)
    return out


def _mid_quantiles(
    tail: FloatArray, row: IntArray, base: IntArray, q: IntArray, levels: Sequence[float]
) -> list[FloatArray]:
    """Mid-quantiles of U = the units of a line that sell, per line.

    ``tail[row, t - 1] = P(Z >= t)`` where Z is the demand left for the arriving units; the
    line's units are the arrivals ``base + 1 .. base + q``, so ``P(U >= u) = P(Z >= base +
    u)``. The mid-distribution ``F(u) - P(U = u) / 2`` interpolated linearly between the
    support points (Parzen 2004) is continuous and strictly increasing where U has mass: the
    band is never a point unless U is certain.
    """
    nl = row.shape[0]
    if nl == 0:
        return [np.zeros(0) for _ in levels]
    kmax = tail.shape[1]
    qmax = int(q.max())
    u = np.arange(qmax + 1)
    col = np.minimum(base[:, None] + u[None, :], kmax - 1)
    inside = u[None, :] < q[:, None]
    ge_next = np.where(inside, tail[row[:, None], col], 0.0)  # P(U >= u + 1)
    cdf = 1.0 - ge_next  # F(u), 1 from u = q on
    prev = np.concatenate([np.zeros((nl, 1)), cdf[:, :-1]], axis=1)
    mid = 0.5 * (cdf + prev)
    ok = u[None, :] <= q[:, None]
    r = np.arange(nl)
    out = []
    for a in levels:
        hit = (mid >= a) & ok
        first = np.where(hit.any(axis=1), np.argmax(hit, axis=1), q)
        lo = mid[r, np.maximum(first - 1, 0)]
        hi = mid[r, first]
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(hi > lo, (a - lo) / (hi - lo), 1.0)
        val = np.where(first == 0, 0.0, first - 1 + np.clip(frac, 0.0, 1.0))
        out.append(np.where(hit.any(axis=1), val, q.astype(np.float64)))
    return out


def _node_chunks(size: IntArray) -> tuple[list[IntArray], IntArray]:
    """Chunks of nodes (:func:`chunks`) and the chunk of every node."""
    parts = chunks(size)
    of = np.zeros(size.shape[0], dtype=np.int64)
    for c, rows in enumerate(parts):
        of[rows] = c
    return parts, of


def _stacked_before(node: IntArray, units: IntArray, keys: Sequence[npt.NDArray[Any]]) -> IntArray:
    """Units of the lines stacked before each line at its node (order: ``keys``, first key
    most significant)."""
    order = np.lexsort((*reversed(keys), node))
    u = units[order]
    cum = np.cumsum(u) - u
    nd = node[order]
    start = np.ones(nd.shape[0], dtype=bool)
    start[1:] = nd[1:] != nd[:-1]
    first_cum = cum[np.flatnonzero(start)]
    group = np.cumsum(start) - 1
    out = np.empty_like(units)
    out[order] = cum - first_cum[group]
    return out


def _order_keys(inst: TransferInstance, lines: LineSet, other: IntArray) -> list[IntArray]:
    """Stacking order at a node: lead time, warehouse first, lane cost, the other end."""
    lead = inst.lead_days[lines.src, lines.dst].astype(np.int64)
    wh = (~inst.is_warehouse[lines.src]).astype(np.int64)
    cost = np.round(inst.unit_cost[lines.src, lines.dst] * 1e6).astype(np.int64)
    return [lead, wh, cost, other]


def _destination_side(
    inst: TransferInstance, lines: LineSet, bonus: FloatArray | None
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Per line: stacked gain, its band, the marginal gain given every other line and the
    variance of its units sold (units^2)."""
    m, nl = inst.n_skus, len(lines)
    margin = inst.price - inst.salvage
    ud, dinv = np.unique(lines.dst * m + lines.sku, return_inverse=True)
    big_q = np.bincount(dinv, weights=lines.units).astype(np.int64)
    before = _stacked_before(dinv, lines.units, _order_keys(inst, lines, lines.src))
    d_store, d_sku = ud // m, ud % m
    stacked, marg, uvar = np.zeros(nl), np.zeros(nl), np.zeros(nl)
    u10, u90 = np.zeros(nl), np.zeros(nl)
    parts, chunk_of = _node_chunks(big_q)
    line_order = np.argsort(chunk_of[dinv], kind="stable")
    bounds = np.searchsorted(chunk_of[dinv][line_order], np.arange(len(parts) + 1))
    for c, rows in enumerate(parts):
        st, sk = d_store[rows], d_sku[rows]
        tail = arrival_tail(
            np.maximum(inst.stock[st, sk], 0),
            inst.mean_lead[st, sk],
            inst.var_lead[st, sk],
            inst.mean_rest[st, sk],
            inst.var_rest[st, sk],
            int(big_q[rows].max()),
        )
        csum = np.concatenate([np.zeros((rows.shape[0], 1)), np.cumsum(tail, axis=1)], axis=1)
        pos = np.full(ud.shape[0], -1, dtype=np.int64)
        pos[rows] = np.arange(rows.shape[0])
        li = line_order[bounds[c] : bounds[c + 1]]
        pr, q_all, q, b = pos[dinv[li]], big_q[dinv[li]], lines.units[li], before[li]
        stacked[li] = csum[pr, b + q] - csum[pr, b]
        marg[li] = csum[pr, q_all] - csum[pr, q_all - q]
        u10[li], u90[li] = _mid_quantiles(tail, pr, b, q, BAND_LEVELS)
        uvar[li] = _tail_var(tail, pr, b, q)
    mg = margin[d_sku][dinv]
    bon = np.zeros(nl) if bonus is None else bonus[d_store, d_sku][dinv]
    # the size-run bonus of a node's first unit goes to the line stacked first; it is the
    # marginal value of a line only when the line is the node's only one
    first = np.where(before == 0, bon, 0.0)
    alone = np.where(np.bincount(dinv)[dinv] == 1, bon, 0.0)
    gain = mg * stacked + first
    g10 = np.minimum(mg * u10 + first, gain)
    g90 = np.maximum(mg * u90 + first, gain)
    return gain, g10, g90, mg * marg + alone, mg * mg * uvar


def _source_side(
    inst: TransferInstance, lines: LineSet
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per line: stacked source loss, the marginal loss given every other line and the
    variance of the loss (currency^2)."""
    m, nl = inst.n_skus, len(lines)
    margin = inst.price - inst.salvage
    us, sinv = np.unique(lines.src * m + lines.sku, return_inverse=True)
    out = np.bincount(sinv, weights=lines.units).astype(np.int64)
    before = _stacked_before(sinv, lines.units, _order_keys(inst, lines, lines.dst))
    s_store, s_sku = us // m, us % m
    mean = inst.mean_lead[s_store, s_sku] + inst.mean_rest[s_store, s_sku]
    var = inst.var_lead[s_store, s_sku] + inst.var_rest[s_store, s_sku]
    live = mean > 1e-12  # a source without demand (a warehouse) loses nothing
    x = np.where(live, np.maximum(inst.stock[s_store, s_sku], 0), 0)
    stacked, marg, vvar = np.zeros(nl), np.zeros(nl), np.zeros(nl)
    parts, chunk_of = _node_chunks(x)
    line_order = np.argsort(chunk_of[sinv], kind="stable")
    bounds = np.searchsorted(chunk_of[sinv][line_order], np.arange(len(parts) + 1))
    for c, rows in enumerate(parts):
        rows = rows[live[rows]]
        if rows.shape[0] == 0:
            continue
        tail = prob_at_least(mean[rows], var[rows], int(x[rows].max()))
        csum = np.concatenate([np.zeros((rows.shape[0], 1)), np.cumsum(tail, axis=1)], axis=1)
        pos = np.full(us.shape[0], -1, dtype=np.int64)
        pos[rows] = np.arange(rows.shape[0])
        li = line_order[bounds[c] : bounds[c + 1]]
        li = li[pos[sinv[li]] >= 0]
        pr, xx, q = pos[sinv[li]], x[sinv[li]], lines.units[li]
        # the k-th unit shipped costs P(D >= X - k + 1): shipping units b+1..b+q costs
        # csum[X - b] - csum[X - b - q]
        b = before[li]
        stacked[li] = csum[pr, xx - b] - csum[pr, xx - b - q]
        left = xx - out[sinv[li]]
        marg[li] = csum[pr, left + q] - csum[pr, left]
        # V, the line's units the source would have sold: P(V >= v) = P(D >= X - b - q + v)
        vvar[li] = _tail_var(tail, pr, xx - b - q, q)
    mg = margin[s_sku][sinv]
    return mg * stacked, mg * marg, mg * mg * vvar


def line_values(
    inst: TransferInstance, lines: LineSet, bonus: FloatArray | None = None
) -> LineValues:
    """Stacked and marginal P&L and the gain band of every line (see :class:`LineValues`).

    Demand is the instance's (negative binomial with the forecast's mean and variance), so a
    more uncertain forecast gives flatter curves: less gain at the destination, more loss at
    the source.
    """
    if len(lines) == 0:
        z = np.zeros(0)
        return LineValues(z, z, z, z, z, z, z)
    gain, g10, g90, mgain, gvar = _destination_side(inst, lines, bonus)
    loss, mloss, lvar = _source_side(inst, lines)
    return LineValues(gain, loss, g10, g90, mgain, mloss, np.sqrt(gvar + lvar))


def evaluate_lines(
    inst: TransferInstance, lines: LineSet, bonus: FloatArray | None = None
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Expected gain, source loss and the 10%/90% gain band of every line (stacked in arrival
    order: they add up to the plan's totals), currency (see :func:`line_values`)."""
    v = line_values(inst, lines, bonus)
    return v.gain, v.loss, v.g10, v.g90


def fixed_shares(
    inst: TransferInstance, lines: LineSet, value: FloatArray | None = None
) -> tuple[FloatArray, FloatArray]:
    """Unit cost per line and its share of the lane's fixed cost, currency.

    With ``value`` (each line's marginal value before the fixed cost, currency) the fixed cost
    of a lane is shared in proportion to its lines' positive values, so that every line of a
    lane that pays keeps a positive net benefit; lanes whose lines have no positive value,
    and calls without ``value``, share it by units.
    """
    n = inst.n_stores
    uc = inst.unit_cost[lines.src, lines.dst]
    if len(lines) == 0:
        return uc, np.zeros(0)
    key = lines.src * n + lines.dst
    uk, inv = np.unique(key, return_inverse=True)
    fixed = inst.fixed_cost[uk // n, uk % n]
    weight = lines.units.astype(np.float64)
    if value is not None:
        pos = np.maximum(value, 0.0)
        lane_pos = np.bincount(inv, weights=pos)
        weight = np.where(lane_pos[inv] > 0, pos, weight)
    lane_w = np.bincount(inv, weights=weight)
    share = fixed[inv] * weight / np.maximum(lane_w[inv], 1e-12)
    return uc, share


def plan_value(inst: TransferInstance, lines: LineSet, bonus: FloatArray | None = None) -> float:
    """Expected value of a whole plan against no moves, after unit and shipment costs,
    currency (exact: every destination's and source's total, each lane's fixed cost once)."""
    if len(lines) == 0:
        return 0.0
    v = line_values(inst, lines, bonus)
    uc, share = fixed_shares(inst, lines)  # the shares add up to each lane's fixed cost
    return float((v.gain - v.loss - lines.units * uc - share).sum())


@dataclass(frozen=True)
class Evaluated:
    """Lines rounded to packs and the minimum, with their values."""

    lines: LineSet
    values: LineValues

    def take(self, mask: npt.NDArray[Any]) -> Evaluated:
        return Evaluated(self.lines.take(mask), self.values.take(mask))

    @staticmethod
    def concat(parts: Sequence[Evaluated]) -> Evaluated:
        """Concatenate and sort by SKU (stable: each SKU's lines keep their order)."""
        ls = [p.lines for p in parts]
        lines = LineSet(
            np.concatenate([x.sku for x in ls] or [np.zeros(0, dtype=np.int64)]),
            np.concatenate([x.src for x in ls] or [np.zeros(0, dtype=np.int64)]),
            np.concatenate([x.dst for x in ls] or [np.zeros(0, dtype=np.int64)]),
            np.concatenate([x.units for x in ls] or [np.zeros(0, dtype=np.int64)]),
        )
        order = np.argsort(lines.sku, kind="stable")
        values = LineValues.concat([p.values for p in parts])
        return Evaluated(lines.take(order), values.take(order))

    @staticmethod
    def of(inst: TransferInstance, lines: LineSet, bonus: FloatArray | None) -> Evaluated:
        """``lines`` with their values from :func:`line_values`."""
        return Evaluated(lines, line_values(inst, lines, bonus))
