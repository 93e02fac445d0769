"""The network-wide fixed-charge model as a HiGHS MIP (or its LP relaxation).

Variables per SKU model: one continuous ``[0, 1]`` segment per candidate source unit (its loss)
and destination unit (its gain), one flow per candidate lane; one binary ``y`` per lane of the
reduced lane set, shared by all SKUs. Constraints: flow balance per SKU at every source and
destination, ``flow <= cap * y``, at most N outbound / inbound lanes per store, store capacity
headroom (net inflow over all SKUs), and the optional transfer budget. Solved with
HiGHS (``highspy``), warm-started from the heuristic's flows.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from typing import Any

import highspy
import numpy as np
import numpy.typing as npt
from scipy import sparse

from stocktailor.transfers._flow import SkuModel
from stocktailor.transfers._instance import TransferInstance

__all__ = ["MipResult", "solve_mip"]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class MipResult:
    """Flows per model lane, the objective (net of fixed costs) and the solver's bound."""

    flows: list[FloatArray]
    objective: float
    bound: float
    status: str
    optimal: bool


def _new_highs() -> Any:
    """A silent ``highspy.Highs`` (the library prints a banner on stdout when created)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return highspy.Highs()  # type: ignore[no-untyped-call]
    sys.stdout.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), fd)
            h = highspy.Highs()  # type: ignore[no-untyped-call]
            h.setOptionValue("output_flag", False)
    finally:
        os.dup2(saved, fd)
        os.close(saved)
    return h


def solve_mip(
    inst: TransferInstance,
    models: list[SkuModel],
    *,
    max_out: int | None,
    max_in: int | None,
    budget: float | None,
    respect_capacity: bool,
    time_limit_s: float,
    relax: bool = False,
    use_fixed: bool = True,
    start: dict[int, FloatArray] | None = None,
    min_units: int = 1,
    limited: npt.NDArray[np.bool_] | None = None,
) -> MipResult | None:
    """Solve the fixed-charge MIP over ``models`` (maximise net benefit).

    ``start`` maps a model's position in ``models`` to lane flows of a known solution (the
    heuristic), given to HiGHS as a starting point. With ``min_units > 1`` (and not ``relax``)
    every flow is semi-integer: 0 or between ``min_units`` and the lane's capacity (the minimum
    transfer quantity, exact).

    ``limited`` ``(n, n)``: the lanes the lane limits and the budget count (None = all; a
    warehouse's lanes are not counted).

    Returns None when there is nothing to solve or HiGHS found no feasible point.
    """
    if not models:
        return None
    n = inst.n_stores
    # global lane ids over the models' lanes
    keys_all = np.concatenate([m.src[m.lane_i] * n + m.dst[m.lane_j] for m in models])
    lane_keys = np.unique(keys_all)
    nlanes = lane_keys.shape[0]
    c: list[FloatArray] = []
    integ: list[IntArray] = []
    ub: list[FloatArray] = []
    rows: list[IntArray] = []
    cols: list[IntArray] = []
    vals: list[FloatArray] = []
    lo_b: list[float] = []
    hi_b: list[float] = []
    nrow = 0
    nvar = 0
    flow_slices: list[tuple[int, int]] = []
    flow_lane: list[IntArray] = []
    flow_src: list[IntArray] = []
    flow_dst: list[IntArray] = []
    seg_base: list[tuple[int, int]] = []
    for m in models:
        ns, nd, nl = m.src.shape[0], m.dst.shape[0], m.lane_i.shape[0]
        ku = np.arange(m.loss.shape[1])
        umask = ku[None, :] < m.src_units[:, None]
        u_row = np.nonzero(umask)[0]
        u_val = m.loss[umask]
        kd = np.arange(m.gain.shape[1])
        dmask = kd[None, :] < m.dst_units[:, None]
        d_row = np.nonzero(dmask)[0]
        d_val = m.gain[dmask]
        base_u = nvar
        base_f = base_u + u_row.shape[0]
        base_d = base_f + nl
        nvar = base_d + d_row.shape[0]
        c.extend([u_val, m.lane_cost, -d_val])
        integ.extend(
            [
                np.zeros(u_row.shape[0], dtype=np.int64),
                np.zeros(nl, dtype=np.int64),
                np.zeros(d_row.shape[0], dtype=np.int64),
            ]
        )
        ub.extend([np.ones(u_row.shape[0]), m.lane_cap.astype(np.float64), np.ones(d_row.shape[0])])
        # source balance: sum_lanes f - sum_units u = 0
        rows.extend([nrow + m.lane_i, nrow + u_row])
        cols.extend([base_f + np.arange(nl), base_u + np.arange(u_row.shape[0])])
        vals.extend([np.ones(nl), -np.ones(u_row.shape[0])])
        lo_b.extend([0.0] * ns)
        hi_b.extend([0.0] * ns)
        nrow += ns
        rows.extend([nrow + m.lane_j, nrow + d_row])
        cols.extend([base_f + np.arange(nl), base_d + np.arange(d_row.shape[0])])
        vals.extend([np.ones(nl), -np.ones(d_row.shape[0])])
        lo_b.extend([0.0] * nd)
        hi_b.extend([0.0] * nd)
        nrow += nd
        flow_slices.append((base_f, nl))
        seg_base.append((base_u, base_d))
        keys = m.src[m.lane_i] * n + m.dst[m.lane_j]
        flow_lane.append(np.searchsorted(lane_keys, keys).astype(np.int64))
        flow_src.append(m.src[m.lane_i])
        flow_dst.append(m.dst[m.lane_j])
    base_y = nvar
    nvar += nlanes
    lane_from = lane_keys // n
    lane_to = lane_keys % n
    fixed = inst.fixed_cost[lane_from, lane_to] if use_fixed else np.zeros(nlanes)
    c.append(fixed)
    integ.append(np.full(nlanes, 0 if relax else 1, dtype=np.int64))
    ub.append(np.ones(nlanes))
    fl_idx = np.concatenate([b + np.arange(k) for b, k in flow_slices])
    fl_lane = np.concatenate(flow_lane)
    fl_src = np.concatenate(flow_src)
    fl_dst = np.concatenate(flow_dst)
    fl_cap = np.concatenate([m.lane_cap for m in models]).astype(np.float64)
    fl_cost = np.concatenate([m.lane_cost for m in models])
    # f - cap * y <= 0
    nf = fl_idx.shape[0]
    r = nrow + np.arange(nf)
    rows.extend([r, r])
    cols.extend([fl_idx, base_y + fl_lane])
    vals.extend([np.ones(nf), -fl_cap])
    lo_b.extend([-np.inf] * nf)
    hi_b.extend([0.0] * nf)
    nrow += nf
    counted = np.ones(nlanes, dtype=bool) if limited is None else limited[lane_from, lane_to]
    for limit, ends in ((max_out, lane_from), (max_in, lane_to)):
        if limit is None or not counted.any():
            continue
        stores, inv = np.unique(ends[counted], return_inverse=True)
        rows.append(nrow + inv)
        cols.append(base_y + np.flatnonzero(counted))
        vals.append(np.ones(int(counted.sum())))
        lo_b.extend([-np.inf] * stores.shape[0])
        hi_b.extend([float(limit)] * stores.shape[0])
        nrow += stores.shape[0]
    if respect_capacity and inst.headroom is not None:
        stores = np.unique(fl_dst)
        head = np.maximum(inst.headroom[stores], 0).astype(np.float64)
        pos = {int(s): i for i, s in enumerate(stores)}
        in_r = np.array([pos[int(s)] for s in fl_dst], dtype=np.int64)
        src_in = np.isin(fl_src, stores)
        out_r = np.array([pos[int(s)] for s in fl_src[src_in]], dtype=np.int64)
        rows.extend([nrow + in_r, nrow + out_r])
        cols.extend([fl_idx, fl_idx[src_in]])
        vals.extend([np.ones(nf), -np.ones(out_r.shape[0])])
        lo_b.extend([-np.inf] * stores.shape[0])
        hi_b.extend(head.tolist())
        nrow += stores.shape[0]
    if budget is not None:
        fl_counted = counted[fl_lane]
        rows.extend([np.full(int(fl_counted.sum()), nrow), np.full(int(counted.sum()), nrow)])
        cols.extend([fl_idx[fl_counted], base_y + np.flatnonzero(counted)])
        vals.extend([fl_cost[fl_counted], fixed[counted]])
        lo_b.append(-np.inf)
        hi_b.append(float(budget))
        nrow += 1
    a = sparse.csc_array(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(nrow, nvar)
    )
    a.sum_duplicates()
    cvec = np.concatenate(c)
    integrality = np.concatenate(integ)
    upper = np.concatenate(ub)
    h = _new_highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("mip_rel_gap", 1e-6)
    h.setOptionValue("threads", 1)
    h.setOptionValue("random_seed", 0)
    lp = highspy.HighsLp()
    lp.num_col_ = nvar
    lp.num_row_ = nrow
    lp.col_cost_ = cvec
    lp.col_lower_ = np.zeros(nvar)
    lp.col_upper_ = upper
    lp.row_lower_ = np.array(lo_b)
    lp.row_upper_ = np.array(hi_b)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = a.indptr.astype(np.int32)
    lp.a_matrix_.index_ = a.indices.astype(np.int32)
    lp.a_matrix_.value_ = a.data
    lp.a_matrix_.num_col_ = nvar
    lp.a_matrix_.num_row_ = nrow
    semi = min_units > 1 and not relax
    if semi:
        lower = np.zeros(nvar)
        lower[fl_idx] = np.where(fl_cap >= min_units, float(min_units), 0.0)
        upper[fl_idx] = np.where(fl_cap >= min_units, fl_cap, 0.0)
        lp.col_lower_ = lower
        lp.col_upper_ = upper
        integrality[fl_idx] = 2
    if not relax:
        kinds = {
            0: highspy.HighsVarType.kContinuous,
            1: highspy.HighsVarType.kInteger,
            2: highspy.HighsVarType.kSemiInteger,
        }
        lp.integrality_ = [kinds[int(v)] for v in integrality]
    h.passModel(lp)
    if start is not None and not relax:
        x0 = np.zeros(nvar)
        y_on = np.zeros(nlanes, dtype=bool)
        for (mi, m), (b, k) in zip(enumerate(models), flow_slices, strict=True):
            f0 = np.asarray(start[mi], dtype=np.float64) if mi in start else np.zeros(k)
            x0[b : b + k] = f0
            used = f0 > 0
            y_on[flow_lane[mi][used]] = True
            out_tot = np.bincount(m.lane_i, weights=f0, minlength=m.src.shape[0])
            in_tot = np.bincount(m.lane_j, weights=f0, minlength=m.dst.shape[0])
            ku = np.arange(m.loss.shape[1])
            umask = ku[None, :] < m.src_units[:, None]
            x0[seg_base[mi][0] : seg_base[mi][0] + int(umask.sum())] = (
                ku[None, :] < out_tot[:, None]
            )[umask]
            kd = np.arange(m.gain.shape[1])
            dmask = kd[None, :] < m.dst_units[:, None]
            x0[seg_base[mi][1] : seg_base[mi][1] + int(dmask.sum())] = (
                kd[None, :] < in_tot[:, None]
            )[dmask]
        x0[base_y:] = y_on
        sol0 = highspy.HighsSolution()
        sol0.col_value = x0.tolist()
        sol0.value_valid = True
        h.setSolution(sol0)
    h.run()
    info = h.getInfo()
    if info.primal_solution_status != 2:  # kSolutionStatusFeasible
        logger.warning(
            "HiGHS found no feasible solution: %s", h.modelStatusToString(h.getModelStatus())
        )
        return None
    x = np.asarray(h.getSolution().col_value)
    flows: list[FloatArray] = [np.asarray(x[b : b + k], dtype=np.float64) for b, k in flow_slices]
    obj = -float(cvec @ x)
    bound = -float(info.mip_dual_bound) if not relax else obj
    status = h.modelStatusToString(h.getModelStatus())
    return MipResult(
        flows=flows,
        objective=obj,
        bound=bound if np.isfinite(bound) else float("inf"),
        status=status,
        optimal=status == "Optimal",
    )
