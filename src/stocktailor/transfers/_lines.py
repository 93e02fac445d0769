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
    "MIN_NET_BENEFIT",
    "Evaluated",
    "LineSet",
    "chunks",
    "evaluate_lines",
    "fixed_shares",
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
    for rows in chunks(q):
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
    for rows in chunks(x):
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


def fixed_shares(inst: TransferInstance, lines: LineSet) -> tuple[FloatArray, FloatArray]:
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


@dataclass(frozen=True)
class Evaluated:
    """Lines rounded to packs and the minimum, with their exact gain, loss and gain band."""

    lines: LineSet
    gain: FloatArray
    loss: FloatArray
    g10: FloatArray
    g90: FloatArray

    def take(self, mask: npt.NDArray[Any]) -> Evaluated:
        return Evaluated(
            self.lines.take(mask), self.gain[mask], self.loss[mask], self.g10[mask], self.g90[mask]
        )

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

        def cat(name: str) -> FloatArray:
            out: FloatArray = np.concatenate([getattr(p, name) for p in parts] or [np.zeros(0)])
            return out[order]

        return Evaluated(lines.take(order), cat("gain"), cat("loss"), cat("g10"), cat("g90"))

    @staticmethod
    def of(inst: TransferInstance, lines: LineSet, bonus: FloatArray | None) -> Evaluated:
        """``lines`` with their P&L from :func:`evaluate_lines`."""
        return Evaluated(lines, *evaluate_lines(inst, lines, bonus))
