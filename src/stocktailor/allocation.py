"""Allocation: warehouse stock to stores.

:func:`allocate` returns the warehouse-to-store lines of the joint plan
(:func:`stocktailor.transfers.plan_network`): warehouses are sources of the same network as the
stores, so the allocation and the store-to-store transfers of a run are one optimisation and
never feed a store twice for one need. A share of the warehouse stock is held back for later
replenishment (:func:`holdback_shares`, growing with forecast uncertainty as in Gallien et al.
2015).

:func:`allocate_arrays` is the warehouse-only greedy on arrays (exact per SKU with a shared
supply: each store's value of holding S units is concave in S), kept for array callers that
allocate before planning transfers.
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import numpy.typing as npt
import polars as pl

from stocktailor.config import Settings
from stocktailor.contract import Tables
from stocktailor.transfers import ALLOCATION_COLUMNS, holdback_shares, plan_network
from stocktailor.valuation import arrival_tail

__all__ = ["ALLOCATION_COLUMNS", "allocate", "allocate_arrays", "holdback_shares"]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def allocate_arrays(
    supply: IntArray,
    stock: IntArray,
    mean_lead: FloatArray,
    var_lead: FloatArray,
    mean_rest: FloatArray,
    var_rest: FloatArray,
    price: FloatArray,
    salvage: FloatArray,
    unit_cost: FloatArray,
    *,
    eligible: BoolArray | None = None,
    headroom: IntArray | None = None,
    pack_size: int = 1,
    min_units: int = 1,
    rounds: int = 4,
) -> tuple[IntArray, FloatArray]:
    """Units per store x SKU from a shared supply per SKU, greedy on marginal value.

    Parameters
    ----------
    supply
        Units available to allocate per SKU (after holdback), ``(m,)``.
    stock
        Units already at (or on the way to) each store, ``(n, m)``.
    mean_lead, var_lead, mean_rest, var_rest
        Demand before and after arrival, units, ``(n, m)``.
    price, salvage
        Currency per unit, ``(m,)``.
    unit_cost
        Warehouse-to-store cost per unit, currency, ``(n,)``.
    eligible, headroom
        Assortment mask ``(n, m)`` and capacity left per store ``(n,)``.
    pack_size, min_units
        Lines are multiples of ``pack_size`` and at least ``min_units``.

    Returns
    -------
    tuple
        ``(units (n, m) int, gain (n, m) currency)``: gain is the expected extra margin over
        salvage of the allocated units less their per-unit lane cost.
    """
    n, m = stock.shape
    alloc = np.zeros((n, m), dtype=np.int64)
    gain = np.zeros((n, m))
    head = None if headroom is None else np.maximum(headroom.astype(np.int64), 0).copy()
    left = supply.astype(np.int64).copy()
    demand = (mean_lead, var_lead, mean_rest, var_rest)
    for _ in range(rounds):
        cand = _candidates(
            alloc, left, stock, demand, price - salvage, unit_cost, eligible, head, pack_size
        )
        if cand is None:
            break
        vals, st, sk = cand
        if head is not None:
            # capacity across SKUs: a store takes its best packs first
            rank = np.zeros(st.shape[0], dtype=np.int64)
            by_store = np.lexsort((np.arange(st.shape[0]), st))
            counts = np.bincount(st, minlength=n)
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
            rank[by_store] = np.arange(st.shape[0]) - np.repeat(starts, counts)
            ok = (rank + 1) * pack_size <= head[st]
            vals, st, sk = vals[ok], st[ok], sk[ok]
        if st.shape[0] == 0:
            break
        np.add.at(alloc, (st, sk), pack_size)
        np.add.at(gain, (st, sk), vals)
        np.subtract.at(left, sk, pack_size)
        if head is not None:
            np.subtract.at(head, st, pack_size)
    small = (alloc > 0) & (alloc < min_units)
    alloc[small] = 0
    gain[small] = 0.0
    return alloc, gain


def _candidates(
    alloc: IntArray,
    left: IntArray,
    stock: IntArray,
    demand: tuple[FloatArray, FloatArray, FloatArray, FloatArray],
    margin: FloatArray,
    unit_cost: FloatArray,
    eligible: BoolArray | None,
    head: IntArray | None,
    pack_size: int,
) -> tuple[FloatArray, IntArray, IntArray] | None:
    """The next packs worth allocating, best first: value, store, SKU (None = none)."""
    n, m = stock.shape
    mean_lead, var_lead, mean_rest, var_rest = demand
    cand_val: list[FloatArray] = []
    cand_store: list[IntArray] = []
    cand_sku: list[IntArray] = []
    for s in range(m):
        packs = int(left[s] // pack_size)
        if packs <= 0 or margin[s] <= 0:
            continue
        rows = np.arange(n) if eligible is None else np.nonzero(eligible[:, s])[0]
        if head is not None:
            rows = rows[head[rows] >= pack_size]
        if rows.shape[0] == 0:
            continue
        base = alloc[rows, s]
        kmax = int(base.max()) + packs * pack_size
        tail = arrival_tail(
            np.maximum(stock[rows, s], 0),
            mean_lead[rows, s],
            var_lead[rows, s],
            mean_rest[rows, s],
            var_rest[rows, s],
            kmax,
        )
        unit_val = margin[s] * tail - unit_cost[rows][:, None]
        # value of the next packs after what is already allocated
        k = np.minimum(base[:, None] + np.arange(packs * pack_size)[None, :], kmax - 1)
        v = np.take_along_axis(unit_val, k, axis=1).reshape(rows.shape[0], packs, pack_size)
        pv = v.sum(axis=2)
        r_idx, p_idx = np.nonzero(pv > 1e-9)
        if r_idx.shape[0] == 0:
            continue
        vals = pv[r_idx, p_idx]
        order = np.lexsort((r_idx, -vals))[:packs]
        cand_val.append(vals[order])
        cand_store.append(rows[r_idx[order]])
        cand_sku.append(np.full(order.shape[0], s, dtype=np.int64))
    if not cand_val:
        return None
    vals = np.concatenate(cand_val)
    st = np.concatenate(cand_store)
    sk = np.concatenate(cand_sku)
    order = np.lexsort((sk, st, -vals))
    return vals[order], st[order], sk[order]


def allocate(
    tables: Tables,
    as_of: dt.date,
    forecast: pl.DataFrame,
    settings: Settings | None = None,
    *,
    clusters: pl.DataFrame | None = None,
    size_curves: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Allocate warehouse stock to stores: the warehouse lines of the joint plan.

    Parameters
    ----------
    tables
        Validated tables; warehouses are ``stores.kind == "warehouse"``.
    as_of
        Allocation date; stock ships the next day and arrives after the lane lead time.
    forecast
        ``store_id, sku, week_start, mean, var`` weekly demand, units per week.
    clusters
        ``store_id, cluster_id`` (used with ``size_curves`` for the cluster level).
    size_curves
        ``level, id, size, share`` (SizeCurveEstimator.curves_): when given, each store's demand
        of a style-colour is re-split over sizes with the store's curve (else its cluster's,
        else the network's) before planning.

    Returns
    -------
    polars.DataFrame
        :data:`ALLOCATION_COLUMNS` (+ the context columns of
        :data:`stocktailor.transfers.CONTEXT_COLUMNS`); ``expected_gain`` is the line's
        marginal expected gain at the store (currency, before the lane cost),
        ``net_benefit = expected_gain - transfer_cost > 0``.
    """
    settings = settings or Settings()
    if not settings.solver.joint_warehouse:
        settings = settings.model_copy(
            update={"solver": settings.solver.model_copy(update={"joint_warehouse": True})}
        )
    plan = plan_network(
        tables, as_of, forecast, settings, clusters=clusters, size_curves=size_curves
    )
    logger.info(
        "allocation: %d lines, %d units",
        plan.allocation.height,
        int(plan.allocation["units"].sum() or 0),
    )
    return plan.allocation
