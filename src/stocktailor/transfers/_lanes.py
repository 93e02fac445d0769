"""Fixed lane costs: which lanes open, shared by every SKU of a run.

The lanes are chosen greedily on the value of step 1's flows (all SKUs together) less the
lane's fixed cost, within the per-store lane limits; lanes that do not pay once the SKUs are
re-solved on the open lanes are closed in rounds; lanes that paid in step 1 are added back
where both stores still have lane slots.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from stocktailor.transfers._flow import SkuCurves, SkuResult
from stocktailor.transfers._instance import TransferInstance
from stocktailor.transfers._minqty import solve_on_lanes
from stocktailor.transfers._partition import uses_closed

__all__ = ["LaneChoice", "lane_values", "nearest_mask", "select_lanes"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def lane_values(results: dict[int, SkuResult], n: int) -> tuple[IntArray, FloatArray, IntArray]:
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


def select_lanes(
    keys: IntArray,
    value: FloatArray,
    fixed: FloatArray,
    n: int,
    max_out: int | None,
    max_in: int | None,
    limited: BoolArray | None = None,
) -> BoolArray:
    """Greedy lane choice by value - fixed cost, within the per-store lane limits.

    ``limited`` ``(n, n)``: the lanes the limits count (None = all); a warehouse's lanes are
    not counted.
    """
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
        counts = limited is None or bool(limited[i, j])
        if counts and (out_deg[i] >= lo or in_deg[j] >= li):
            continue
        open_[i, j] = True
        if counts:
            out_deg[i] += 1
            in_deg[j] += 1
    return open_


def nearest_mask(unit_cost: FloatArray, k: int) -> BoolArray:
    """Lanes between each store and its ``k`` cheapest partners (either direction)."""
    n = unit_cost.shape[0]
    c = unit_cost + np.where(np.eye(n, dtype=bool), np.inf, 0.0)
    k = min(k, n - 1)
    idx = np.argsort(c, axis=1, kind="stable")[:, :k]
    mask = np.zeros((n, n), dtype=bool)
    mask[np.repeat(np.arange(n), k), idx.ravel()] = True
    out: BoolArray = mask | mask.T
    return out


@dataclass
class LaneChoice:
    """The lane choice of one solve (mutable: ``lane_open`` and ``results`` are updated).

    Attributes
    ----------
    inst
        The problem.
    lane_open
        ``(n, n)`` lanes currently open.
    results
        Current flows per SKU column (on the lane-valuation sample).
    curves
        Cached value curves per SKU column (re-solves run in the calling process).
    scale
        Factor on lane values (share of SKUs valued, for a sample).
    max_out, max_in
        Lane limits per store.
    max_rounds
        Lane-closing rounds.
    """

    inst: TransferInstance
    lane_open: BoolArray
    results: dict[int, SkuResult]
    curves: dict[int, SkuCurves]
    scale: float
    max_out: int
    max_in: int
    max_rounds: int
    rounds: int = field(default=0)

    @property
    def n(self) -> int:
        return self.inst.n_stores

    @property
    def limited(self) -> BoolArray | None:
        """Lanes the per-store limits count (None = all): lanes between two stores."""
        return self.inst.store_lanes() if self.inst.has_warehouses else None

    def scores(self, res: dict[int, SkuResult], factor: float) -> tuple[IntArray, FloatArray]:
        """Per used lane: key and value (scaled by ``factor``) less its fixed cost."""
        n = self.n
        keys, value, _ = lane_values(res, n)
        return keys, value * factor - self.inst.fixed_cost[keys // n, keys % n]

    def close_unpaid(self, res: dict[int, SkuResult], factor: float) -> IntArray:
        """Close the lanes with a fixed cost whose value does not cover it; their keys."""
        n = self.n
        keys, score = self.scores(res, factor)
        bad = keys[(score <= 0) & (self.inst.fixed_cost[keys // n, keys % n] > 0)]
        self.lane_open[bad // n, bad % n] = False
        return bad

    def resolve(self, affected: list[int]) -> None:
        """Re-solve cached SKUs on the open lanes (in the calling process)."""
        inst, n = self.inst, self.n
        open_ = self.lane_open if inst.lane_mask is None else self.lane_open & inst.lane_mask
        lf, lt = np.nonzero(open_)
        lc = inst.unit_cost[lf, lt]
        for k in affected:
            self.results.pop(k, None)
            rk = solve_on_lanes(self.curves[k], lf, lt, lc, n)
            if rk is not None:
                self.results[k] = rk

    def close_rounds(self) -> None:
        """Re-solve the SKUs on closed lanes and close unpaid lanes until nothing changes."""
        for done in range(1, self.max_rounds + 1):
            affected = sorted(k for k, r in self.results.items() if uses_closed(r, self.lane_open))
            if not affected:
                self.rounds += done
                return
            self.resolve(affected)
            self.close_unpaid(self.results, self.scale)
        self.rounds += self.max_rounds

    def choose(self, has_fixed: bool) -> None:
        """Greedy lane choice on the current results, closing rounds, then add-back."""
        if not self.results:
            return
        n = self.n
        first_keys, first_score = self.scores(self.results, self.scale)
        first_results = dict(self.results)
        first_fixed = self.inst.fixed_cost[first_keys // n, first_keys % n]
        chosen = select_lanes(
            first_keys,
            first_score + first_fixed,
            first_fixed,
            n,
            self.max_out,
            self.max_in,
            self.limited,
        )
        self.lane_open &= chosen
        self.close_rounds()
        if has_fixed:
            self._add_back(first_keys, first_score, first_results)

    def _add_back(
        self, first_keys: IntArray, first_score: FloatArray, first: dict[int, SkuResult]
    ) -> None:
        """Open lanes nobody uses are closed; then lanes that paid in step 1 are added back
        where both stores still have lane slots, and what does not pay is closed again."""
        n = self.n
        used = np.zeros((n, n), dtype=bool)
        for r in self.results.values():
            used[r.src, r.dst] = True
        self.lane_open &= used
        order = np.lexsort((first_keys, -first_score))
        limited = self.limited
        counted = self.lane_open if limited is None else self.lane_open & limited
        out_deg = counted.sum(axis=1)
        in_deg = counted.sum(axis=0)
        added = np.zeros((n, n), dtype=bool)
        for idx in order:
            if first_score[idx] <= 0:
                break
            i, j = divmod(int(first_keys[idx]), n)
            counts = limited is None or bool(limited[i, j])
            full = out_deg[i] >= self.max_out or in_deg[j] >= self.max_in
            if self.lane_open[i, j] or (counts and full):
                continue
            self.lane_open[i, j] = added[i, j] = True
            if counts:
                out_deg[i] += 1
                in_deg[j] += 1
        if not added.any():
            return
        affected = sorted(
            k for k in self.curves if k in first and added[first[k].src, first[k].dst].any()
        )
        if affected:
            self.resolve(affected)
            self.close_unpaid(self.results, self.scale)
            self.close_rounds()
