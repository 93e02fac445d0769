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
from dataclasses import dataclass, field
from typing import Any

import highspy
import numpy as np
import numpy.typing as npt
from scipy import sparse

from stocktailor.highs import silent_highs
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


@dataclass
class _Builder:
    """The MIP in coordinate form, built variable block by variable block and row by row."""

    c: list[FloatArray] = field(default_factory=list)
    integ: list[IntArray] = field(default_factory=list)
    ub: list[FloatArray] = field(default_factory=list)
    rows: list[IntArray] = field(default_factory=list)
    cols: list[IntArray] = field(default_factory=list)
    vals: list[FloatArray] = field(default_factory=list)
    lo_b: list[float] = field(default_factory=list)
    hi_b: list[float] = field(default_factory=list)
    nrow: int = 0
    nvar: int = 0
    flow_slices: list[tuple[int, int]] = field(default_factory=list)
    flow_lane: list[IntArray] = field(default_factory=list)
    seg_base: list[tuple[int, int]] = field(default_factory=list)

    def add_model(self, m: SkuModel, lane_keys: IntArray, n: int) -> None:
        """One SKU: unit segments (loss, gain), lane flows and the flow balance rows."""
        ns, nd, nl = m.src.shape[0], m.dst.shape[0], m.lane_i.shape[0]
        umask = np.arange(m.loss.shape[1])[None, :] < m.src_units[:, None]
        u_row, u_val = np.nonzero(umask)[0], m.loss[umask]
        dmask = np.arange(m.gain.shape[1])[None, :] < m.dst_units[:, None]
        d_row, d_val = np.nonzero(dmask)[0], m.gain[dmask]
        base_u = self.nvar
        base_f = base_u + u_row.shape[0]
        base_d = base_f + nl
        self.nvar = base_d + d_row.shape[0]
        self.c.extend([u_val, m.lane_cost, -d_val])
        self.integ.extend(
            [
                np.zeros(u_row.shape[0], dtype=np.int64),
                np.zeros(nl, dtype=np.int64),
                np.zeros(d_row.shape[0], dtype=np.int64),
            ]
        )
        self.ub.extend(
            [np.ones(u_row.shape[0]), m.lane_cap.astype(np.float64), np.ones(d_row.shape[0])]
        )
        # source balance: sum_lanes f - sum_units u = 0; destination balance likewise
        for count, lane_end, seg_row, base_seg in (
            (ns, m.lane_i, u_row, base_u),
            (nd, m.lane_j, d_row, base_d),
        ):
            self.rows.extend([self.nrow + lane_end, self.nrow + seg_row])
            self.cols.extend([base_f + np.arange(nl), base_seg + np.arange(seg_row.shape[0])])
            self.vals.extend([np.ones(nl), -np.ones(seg_row.shape[0])])
            self.lo_b.extend([0.0] * count)
            self.hi_b.extend([0.0] * count)
            self.nrow += count
        self.flow_slices.append((base_f, nl))
        self.seg_base.append((base_u, base_d))
        keys = m.src[m.lane_i] * n + m.dst[m.lane_j]
        self.flow_lane.append(np.searchsorted(lane_keys, keys).astype(np.int64))

    def add_rows(
        self, rows: IntArray, cols: IntArray, vals: FloatArray, lo: list[float], hi: list[float]
    ) -> None:
        """Rows numbered from 0 in ``rows``, appended after the current ones."""
        self.rows.append(self.nrow + rows)
        self.cols.append(cols)
        self.vals.append(vals)
        self.lo_b.extend(lo)
        self.hi_b.extend(hi)
        self.nrow += len(lo)


def _coupling_rows(
    b: _Builder,
    inst: TransferInstance,
    models: list[SkuModel],
    lane_keys: IntArray,
    base_y: int,
    fixed: FloatArray,
    *,
    max_out: int | None,
    max_in: int | None,
    budget: float | None,
    respect_capacity: bool,
    limited: npt.NDArray[np.bool_] | None,
) -> tuple[IntArray, FloatArray]:
    """Rows that couple SKUs: lane use, lane limits, capacity and budget. Returns the flow
    variables' indices and capacities."""
    n = inst.n_stores
    nlanes = lane_keys.shape[0]
    lane_from, lane_to = lane_keys // n, lane_keys % n
    fl_idx = np.concatenate([base + np.arange(k) for base, k in b.flow_slices])
    fl_lane = np.concatenate(b.flow_lane)
    fl_src = np.concatenate([m.src[m.lane_i] for m in models])
    fl_dst = np.concatenate([m.dst[m.lane_j] for m in models])
    fl_cap = np.concatenate([m.lane_cap for m in models]).astype(np.float64)
    fl_cost = np.concatenate([m.lane_cost for m in models])
    nf = fl_idx.shape[0]
    # f - cap * y <= 0
    r = np.arange(nf)
    b.add_rows(
        np.concatenate([r, r]),
        np.concatenate([fl_idx, base_y + fl_lane]),
        np.concatenate([np.ones(nf), -fl_cap]),
        [-np.inf] * nf,
        [0.0] * nf,
    )
    counted = np.ones(nlanes, dtype=bool) if limited is None else limited[lane_from, lane_to]
    for limit, ends in ((max_out, lane_from), (max_in, lane_to)):
        if limit is None or not counted.any():
            continue
        stores, inv = np.unique(ends[counted], return_inverse=True)
        k = int(counted.sum())
        b.add_rows(
            inv,
            base_y + np.flatnonzero(counted),
            np.ones(k),
            [-np.inf] * stores.shape[0],
            [float(limit)] * stores.shape[0],
        )
    if respect_capacity and inst.headroom is not None:
        stores = np.unique(fl_dst)
        head = np.maximum(inst.headroom[stores], 0).astype(np.float64)
        pos = {int(x): i for i, x in enumerate(stores)}
        in_r = np.array([pos[int(x)] for x in fl_dst], dtype=np.int64)
        src_in = np.isin(fl_src, stores)
        out_r = np.array([pos[int(x)] for x in fl_src[src_in]], dtype=np.int64)
        b.add_rows(
            np.concatenate([in_r, out_r]),
            np.concatenate([fl_idx, fl_idx[src_in]]),
            np.concatenate([np.ones(nf), -np.ones(out_r.shape[0])]),
            [-np.inf] * stores.shape[0],
            head.tolist(),
        )
    if budget is not None:
        fc = counted[fl_lane]
        b.add_rows(
            np.zeros(int(fc.sum()) + int(counted.sum()), dtype=np.int64),
            np.concatenate([fl_idx[fc], base_y + np.flatnonzero(counted)]),
            np.concatenate([fl_cost[fc], fixed[counted]]),
            [-np.inf],
            [float(budget)],
        )
    return fl_idx, fl_cap


def _highs_model(
    b: _Builder,
    fl_idx: IntArray,
    fl_cap: FloatArray,
    *,
    relax: bool,
    min_units: int,
    time_limit_s: float,
) -> tuple[Any, FloatArray]:
    """A silent HiGHS instance holding the model; the objective vector."""
    a = sparse.csc_array(
        (np.concatenate(b.vals), (np.concatenate(b.rows), np.concatenate(b.cols))),
        shape=(b.nrow, b.nvar),
    )
    a.sum_duplicates()
    cvec = np.concatenate(b.c)
    integrality = np.concatenate(b.integ)
    upper = np.concatenate(b.ub)
    lower = np.zeros(b.nvar)
    if min_units > 1 and not relax:
        # semi-integer flows: 0 or between the minimum quantity and the lane's capacity
        lower[fl_idx] = np.where(fl_cap >= min_units, float(min_units), 0.0)
        upper[fl_idx] = np.where(fl_cap >= min_units, fl_cap, 0.0)
        integrality[fl_idx] = 2
    h = silent_highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("mip_rel_gap", 1e-6)
    h.setOptionValue("random_seed", 0)
    lp = highspy.HighsLp()
    lp.num_col_ = b.nvar
    lp.num_row_ = b.nrow
    lp.col_cost_ = cvec
    lp.col_lower_ = lower
    lp.col_upper_ = upper
    lp.row_lower_ = np.array(b.lo_b)
    lp.row_upper_ = np.array(b.hi_b)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = a.indptr.astype(np.int32)
    lp.a_matrix_.index_ = a.indices.astype(np.int32)
    lp.a_matrix_.value_ = a.data
    lp.a_matrix_.num_col_ = b.nvar
    lp.a_matrix_.num_row_ = b.nrow
    if not relax:
        kinds = {
            0: highspy.HighsVarType.kContinuous,
            1: highspy.HighsVarType.kInteger,
            2: highspy.HighsVarType.kSemiInteger,
        }
        lp.integrality_ = [kinds[int(v)] for v in integrality]
    h.passModel(lp)
    return h, cvec


def _warm_start(
    h: Any,
    b: _Builder,
    models: list[SkuModel],
    start: dict[int, FloatArray],
    base_y: int,
    nlanes: int,
) -> None:
    """Give HiGHS the known flows (and the segments and lane switches they imply)."""
    x0 = np.zeros(b.nvar)
    y_on = np.zeros(nlanes, dtype=bool)
    for (mi, m), (base, k) in zip(enumerate(models), b.flow_slices, strict=True):
        f0 = np.asarray(start[mi], dtype=np.float64) if mi in start else np.zeros(k)
        x0[base : base + k] = f0
        y_on[b.flow_lane[mi][f0 > 0]] = True
        out_tot = np.bincount(m.lane_i, weights=f0, minlength=m.src.shape[0])
        in_tot = np.bincount(m.lane_j, weights=f0, minlength=m.dst.shape[0])
        ku = np.arange(m.loss.shape[1])
        umask = ku[None, :] < m.src_units[:, None]
        bu, bd = b.seg_base[mi]
        x0[bu : bu + int(umask.sum())] = (ku[None, :] < out_tot[:, None])[umask]
        kd = np.arange(m.gain.shape[1])
        dmask = kd[None, :] < m.dst_units[:, None]
        x0[bd : bd + int(dmask.sum())] = (kd[None, :] < in_tot[:, None])[dmask]
    x0[base_y:] = y_on
    sol0 = highspy.HighsSolution()
    sol0.col_value = x0.tolist()
    sol0.value_valid = True
    h.setSolution(sol0)


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
    lane_keys = np.unique(np.concatenate([m.src[m.lane_i] * n + m.dst[m.lane_j] for m in models]))
    nlanes = lane_keys.shape[0]
    b = _Builder()
    for m in models:
        b.add_model(m, lane_keys, n)
    base_y = b.nvar
    b.nvar += nlanes
    fixed = inst.fixed_cost[lane_keys // n, lane_keys % n] if use_fixed else np.zeros(nlanes)
    b.c.append(fixed)
    b.integ.append(np.full(nlanes, 0 if relax else 1, dtype=np.int64))
    b.ub.append(np.ones(nlanes))
    fl_idx, fl_cap = _coupling_rows(
        b,
        inst,
        models,
        lane_keys,
        base_y,
        fixed,
        max_out=max_out,
        max_in=max_in,
        budget=budget,
        respect_capacity=respect_capacity,
        limited=limited,
    )
    h, cvec = _highs_model(
        b, fl_idx, fl_cap, relax=relax, min_units=min_units, time_limit_s=time_limit_s
    )
    if start is not None and not relax:
        _warm_start(h, b, models, start, base_y, nlanes)
    h.run()
    info = h.getInfo()
    if info.primal_solution_status != 2:  # kSolutionStatusFeasible
        logger.warning(
            "HiGHS found no feasible solution: %s", h.modelStatusToString(h.getModelStatus())
        )
        return None
    x = np.asarray(h.getSolution().col_value)
    flows: list[FloatArray] = [np.asarray(x[a : a + k], dtype=np.float64) for a, k in b.flow_slices]
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
