"""Step 1 of the solve: every SKU's exact min-cost flow, in style partitions through an engine."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
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
    model_from_curves,
    size_run_bonus,
    solve_sku,
    solve_sku_objective,
)
from stocktailor.transfers._instance import TransferInstance

__all__ = [
    "PartOut",
    "Sliced",
    "flatten",
    "partition_skus",
    "parts_for",
    "run_step",
    "solve_partition",
    "solve_sliced",
    "to_global",
    "uses_closed",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


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


def parts_for(inst: TransferInstance, cols: IntArray, n_parts: int) -> list[IntArray]:
    """Style partitions of the SKU columns ``cols``."""
    sub = partition_skus([inst.styles[int(c)] for c in cols], n_parts)
    return [np.sort(cols[p]) for p in sub]


@dataclass(frozen=True)
class PartOut:
    """Results of one partition of step 1."""

    results: list[SkuResult]
    curves: list[SkuCurves]  # of the SKUs with flow, reused by the lane-closing re-solves
    objective: float  # no-fixed-cost optimum of the partition, currency
    bound: float  # optimum with the fixed-cost surcharge (LP relaxation), currency


def prune_mask(inst: TransferInstance, lane_open: BoolArray | None) -> BoolArray | None:
    """Lanes the curves are pruned against: ``lane_open`` and the instance's lane mask (None
    when neither restricts the lanes)."""
    if lane_open is None and inst.lane_mask is None:
        return None
    prune = np.ones((inst.n_stores, inst.n_stores), dtype=bool)
    for mask in (lane_open, inst.lane_mask):
        if mask is not None:
            prune &= mask
    np.fill_diagonal(prune, False)
    return prune


def solve_partition(
    cols: IntArray,
    *,
    inst: TransferInstance,
    penalty: float,
    lane_open: BoolArray | None = None,
    bound_extra: FloatArray | None = None,
    curves: bool = True,
) -> PartOut:
    """Solve the SKUs ``cols`` independently (top-level so Dask can pickle it).

    With ``bound_extra`` (currency per unit per lane) each SKU is solved a second time with
    that surcharge on its lanes, giving its share of the LP-relaxation bound.
    """
    min_out, min_in = cheapest_lanes(inst.unit_cost)
    bonus = size_run_bonus(inst, cols, penalty) if penalty > 0 else None
    prune = prune_mask(inst, lane_open)
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
    return PartOut(results, kept, total, bound)


def to_global(r: SkuResult, cols: IntArray) -> SkuResult:
    """A result of a slice with its SKU index mapped back to the full instance."""
    return replace(r, sku=int(cols[r.sku]))


@dataclass(frozen=True)
class Sliced:
    """A task with its own slice of the instance: a distributed engine then ships each SKU
    column once instead of broadcasting the whole instance to every worker for every map."""

    cols: IntArray
    inst: TransferInstance
    task: Any = None
    bonus: FloatArray | None = None


def solve_sliced(
    item: Sliced,
    *,
    penalty: float,
    lane_open: BoolArray | None = None,
    bound_extra: FloatArray | None = None,
    curves: bool = True,
) -> PartOut:
    """:func:`solve_partition` on a slice, SKU indices mapped back to the full instance."""
    local = np.arange(item.cols.shape[0], dtype=np.int64)
    out = solve_partition(
        local,
        inst=item.inst,
        penalty=penalty,
        lane_open=lane_open,
        bound_extra=bound_extra,
        curves=curves,
    )
    return PartOut(
        [to_global(r, item.cols) for r in out.results],
        [replace(cv, sku=int(item.cols[cv.sku])) for cv in out.curves],
        out.objective,
        out.bound,
    )


def run_step(
    engine: Engine,
    parts: list[IntArray],
    inst: TransferInstance,
    *,
    lane_open: BoolArray | None,
    penalty: float,
    bound_extra: FloatArray | None = None,
    progress: Callable[[int], None] | None = None,
    curves: bool = True,
) -> list[PartOut]:
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
        return engine.map(solve_partition, parts, progress=progress, inst=inst, **shared)
    items = [Sliced(p, inst.take_skus(p)) for p in parts]
    return engine.map(solve_sliced, items, progress=progress, **shared)


def flatten(parts: list[PartOut]) -> dict[int, SkuResult]:
    """Results of all partitions by SKU column."""
    return {r.sku: r for p in parts for r in p.results}


def uses_closed(r: SkuResult, lane_open: BoolArray) -> bool:
    """Does the result ship on a lane that is not open?"""
    return bool((~lane_open[r.src, r.dst]).any())
