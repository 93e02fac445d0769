"""The array form of a rebalancing problem (what the optimiser sees)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = [
    "TransferInstance",
    "add_warehouses",
    "destination_lead_days",
    "windows_from_daily_rates",
    "with_daily_demand",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class TransferInstance:
    """A rebalancing problem over ``n`` locations and ``m`` SKU-sizes.

    Locations are selling stores and, optionally, warehouses (``warehouse``): a warehouse is a
    source only (no demand, never a destination); its lanes are not counted in the per-store
    lane limits nor in the transfer budget. With warehouses the instance is the joint plan:
    warehouse stock and store stock move in one optimisation per SKU-size.

    Attributes
    ----------
    store_ids, skus
        Axis labels (rows of the store axis, columns of the SKU axis).
    styles
        Style of each SKU (partition key; SKUs of one style are solved together), length ``m``.
    stock
        Units at each store now (on hand + in transit), ``(n, m)`` int.
    movable
        Units that may leave each store (after presentation minimum and recent receipts),
        ``(n, m)`` int, ``0 <= movable <= stock``.
    mean_lead, var_lead
        Demand during the inbound lead time of each store (served only by stock already
        there), units, ``(n, m)``.
    mean_rest, var_rest
        Demand from the arrival of a transfer to season end, units, ``(n, m)``. A store's demand
        for the rest of the season is lead + rest.
    price, salvage
        Full price and salvage value per SKU, currency per unit, ``(m,)``.
    unit_cost, fixed_cost
        Lane costs, currency per unit and currency per shipment, ``(n, n)`` (row = from).
    lead_days
        Lane lead times, days, ``(n, n)``.
    eligible
        May the store receive the SKU (assortment), ``(n, m)`` bool; None = all.
    headroom
        Units a store may still take in across all SKUs (capacity - stock), ``(n,)``; None =
        unlimited.
    season_days
        Days from the as-of date to season end per SKU (for cover figures), ``(m,)``.
    lane_mask
        Lanes allowed at all (e.g. the N nearest partners), ``(n, n)`` bool; None = all.
    style_color, core_size
        Style-colour key and core-size flag per SKU, for the broken-size-run option.
    warehouse
        Which locations are warehouses, ``(n,)`` bool; None = none (stores only).
    """

    store_ids: list[str]
    skus: list[str]
    styles: list[str]
    stock: IntArray
    movable: IntArray
    mean_lead: FloatArray
    var_lead: FloatArray
    mean_rest: FloatArray
    var_rest: FloatArray
    price: FloatArray
    salvage: FloatArray
    unit_cost: FloatArray
    fixed_cost: FloatArray
    lead_days: IntArray
    eligible: BoolArray | None = None
    headroom: IntArray | None = None
    season_days: FloatArray | None = None
    lane_mask: BoolArray | None = field(default=None)
    style_color: list[str] | None = None
    core_size: BoolArray | None = None
    warehouse: BoolArray | None = None

    def __post_init__(self) -> None:
        n, m = len(self.store_ids), len(self.skus)
        for name in ("stock", "movable", "mean_lead", "var_lead", "mean_rest", "var_rest"):
            a = getattr(self, name)
            if a.shape != (n, m):
                msg = f"TransferInstance.{name}: expected shape {(n, m)}, got {a.shape}"
                raise ValueError(msg)
        for name in ("unit_cost", "fixed_cost", "lead_days"):
            a = getattr(self, name)
            if a.shape != (n, n):
                msg = f"TransferInstance.{name}: expected shape {(n, n)}, got {a.shape}"
                raise ValueError(msg)
        if len(self.styles) != m or self.price.shape != (m,) or self.salvage.shape != (m,):
            msg = f"TransferInstance: styles/price/salvage must have length {m}"
            raise ValueError(msg)
        if (self.movable < 0).any() or (self.movable > np.maximum(self.stock, 0)).any():
            msg = "TransferInstance.movable: must satisfy 0 <= movable <= stock"
            raise ValueError(msg)
        if self.eligible is not None and self.eligible.shape != (n, m):
            msg = f"TransferInstance.eligible: expected shape {(n, m)}"
            raise ValueError(msg)
        if self.headroom is not None and self.headroom.shape != (n,):
            msg = f"TransferInstance.headroom: expected shape {(n,)}"
            raise ValueError(msg)
        if self.warehouse is not None:
            if self.warehouse.shape != (n,):
                msg = f"TransferInstance.warehouse: expected shape {(n,)}"
                raise ValueError(msg)
            wh = self.warehouse
            season = self.mean_lead[wh] + self.mean_rest[wh]
            if (season > 0).any():
                msg = "TransferInstance: warehouse rows must have no demand"
                raise ValueError(msg)
            if self.eligible is not None and self.eligible[wh].any():
                msg = "TransferInstance.eligible: a warehouse is never a destination"
                raise ValueError(msg)

    @property
    def n_stores(self) -> int:
        return len(self.store_ids)

    @property
    def n_skus(self) -> int:
        return len(self.skus)

    @property
    def is_warehouse(self) -> BoolArray:
        """``(n,)`` bool, True for warehouses."""
        if self.warehouse is None:
            return np.zeros(self.n_stores, dtype=bool)
        return self.warehouse

    @property
    def has_warehouses(self) -> bool:
        return self.warehouse is not None and bool(self.warehouse.any())

    def store_lanes(self) -> BoolArray:
        """``(n, n)`` bool: lanes between two stores (those the lane limits and budget count)."""
        st = ~self.is_warehouse
        out: BoolArray = st[:, None] & st[None, :]
        return out

    def take_skus(self, cols: IntArray) -> TransferInstance:
        """The instance restricted to the SKU columns ``cols`` (local column ``a`` = ``cols[a]``).

        Store-level arrays (lanes, headroom) are shared, not copied.
        """
        c = cols.tolist()
        return dataclasses.replace(
            self,
            skus=[self.skus[k] for k in c],
            styles=[self.styles[k] for k in c],
            stock=self.stock[:, cols],
            movable=self.movable[:, cols],
            mean_lead=self.mean_lead[:, cols],
            var_lead=self.var_lead[:, cols],
            mean_rest=self.mean_rest[:, cols],
            var_rest=self.var_rest[:, cols],
            price=self.price[cols],
            salvage=self.salvage[cols],
            eligible=None if self.eligible is None else self.eligible[:, cols],
            season_days=None if self.season_days is None else self.season_days[cols],
            style_color=None if self.style_color is None else [self.style_color[k] for k in c],
            core_size=None if self.core_size is None else self.core_size[cols],
        )


def destination_lead_days(
    lead_days: IntArray, unit_cost: FloatArray, partners: int = 20
) -> IntArray:
    """Lead time used to value arrivals at each store, days.

    The median lead time of the store's ``partners`` cheapest inbound lanes (the likely
    sources), so that each destination has one value curve whatever the lane.
    """
    n = lead_days.shape[0]
    if n <= 1:
        return np.zeros(n, dtype=np.int64)
    cost = unit_cost.astype(np.float64, copy=True)
    np.fill_diagonal(cost, np.inf)
    k = min(partners, n - 1)
    idx = np.argsort(cost, axis=0, kind="stable")[:k, :]  # cheapest sources per column
    leads = np.take_along_axis(lead_days, idx, axis=0)
    out: IntArray = np.floor(np.median(leads, axis=0)).astype(np.int64)
    return out


def windows_from_daily_rates(
    rates: FloatArray,
    lead: IntArray,
    dispersion: float | FloatArray | None = None,
    *,
    season_days: IntArray | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Lead-time and rest-of-season demand windows from daily demand rates.

    Parameters
    ----------
    rates
        Expected demand per day, ``(days, n, m)``, day 0 = the day after the as-of date.
    lead
        Lead time per store, days, ``(n,)``: days ``0 .. lead-1`` are the lead window.
    dispersion
        Negative-binomial size of daily demand (scalar or broadcastable to ``(n, m)``); None =
        Poisson. The window variance is ``sum(mu) + sum(mu^2) / size``.
    season_days
        Selling days left per SKU, ``(m,)``; days at or after it are ignored. None = all days.

    Returns
    -------
    tuple
        ``(mean_lead, var_lead, mean_rest, var_rest)``, each ``(n, m)`` units.
    """
    d, n, m = rates.shape
    r = np.maximum(rates.astype(np.float64, copy=False), 0.0)
    if season_days is not None:
        day = np.arange(d)[:, None]
        r = np.where((day < season_days[None, :])[:, None, :], r, 0.0)
    c1 = np.concatenate([np.zeros((1, n, m)), np.cumsum(r, axis=0)], axis=0)
    c2 = np.concatenate([np.zeros((1, n, m)), np.cumsum(r * r, axis=0)], axis=0)
    li = np.clip(lead, 0, d)
    rows = np.arange(n)
    m_lead = c1[li, rows, :]
    s_lead = c2[li, rows, :]
    m_tot, s_tot = c1[-1], c2[-1]
    inv = 0.0 if dispersion is None else 1.0 / np.asarray(dispersion, dtype=np.float64)
    m_rest = m_tot - m_lead
    s_rest = s_tot - s_lead
    return (
        m_lead,
        m_lead + s_lead * inv,
        m_rest,
        m_rest + s_rest * inv,
    )


def with_daily_demand(
    inst: TransferInstance,
    rates: FloatArray,
    store_ids: list[str],
    skus: list[str],
    dispersion: float | None,
) -> TransferInstance:
    """A copy of ``inst`` whose demand comes from daily rates (e.g. the generator's truth).

    Parameters
    ----------
    rates
        Expected demand per day, ``(days, len(store_ids), len(skus))``, day 0 = the day after
        the as-of date, up to the last season end; days after a SKU's season end (from
        ``inst.season_days``) are ignored.
    store_ids, skus
        Axis labels of ``rates``; every store and SKU of ``inst`` must appear.
    dispersion
        Negative-binomial size of daily demand (None = Poisson).
    """
    s_pos = {s: i for i, s in enumerate(store_ids)}
    k_pos = {s: i for i, s in enumerate(skus)}
    sell = ~inst.is_warehouse  # warehouses have no demand
    rows = [s for s, ok in zip(inst.store_ids, sell.tolist(), strict=True) if ok]
    missing = [s for s in rows if s not in s_pos] + [k for k in inst.skus if k not in k_pos]
    if missing:
        msg = f"daily demand has no column for {missing[0]!r}"
        raise ValueError(msg)
    ri = np.array([s_pos[s] for s in rows], dtype=np.int64)
    ci = np.array([k_pos[k] for k in inst.skus], dtype=np.int64)
    sub = rates[:, ri][:, :, ci]
    lead = destination_lead_days(inst.lead_days, inst.unit_cost)[sell]
    days = None if inst.season_days is None else inst.season_days.astype(np.int64)
    windows = windows_from_daily_rates(sub, lead, dispersion, season_days=days)
    full = []
    for w in windows:
        a = np.zeros((inst.n_stores, inst.n_skus))
        a[sell] = w
        full.append(a)
    return dataclasses.replace(
        inst, mean_lead=full[0], var_lead=full[1], mean_rest=full[2], var_rest=full[3]
    )


def add_warehouses(
    inst: TransferInstance,
    warehouse_ids: list[str],
    stock: IntArray,
    movable: IntArray,
    unit_cost: FloatArray,
    fixed_cost: FloatArray,
    lead_days: IntArray,
) -> TransferInstance:
    """The joint instance: ``inst`` (stores only) with warehouses appended as sources.

    Parameters
    ----------
    inst
        A store-only instance (``n`` stores).
    warehouse_ids
        The ``w`` warehouses, appended after the stores in this order.
    stock, movable
        Warehouse units on hand (+ inbound) and units that may ship now (after the holdback),
        ``(w, m)``.
    unit_cost, fixed_cost, lead_days
        Lanes over stores then warehouses, ``(n + w, n + w)`` (row = from); the store block
        replaces the instance's own.

    Returns
    -------
    TransferInstance
        ``n + w`` locations; warehouse rows have no demand, are never destinations and have
        unlimited headroom.
    """
    if inst.warehouse is not None and inst.warehouse.any():
        msg = "add_warehouses: the instance already has warehouses"
        raise ValueError(msg)
    w, m = len(warehouse_ids), inst.n_skus
    n = inst.n_stores
    if stock.shape != (w, m) or movable.shape != (w, m):
        msg = f"add_warehouses: stock and movable must have shape {(w, m)}"
        raise ValueError(msg)
    zeros = np.zeros((w, m))
    elig = np.ones((n, m), dtype=bool) if inst.eligible is None else inst.eligible
    head = None
    if inst.headroom is not None:
        big = np.iinfo(np.int64).max // 4
        head = np.concatenate([inst.headroom, np.full(w, big, dtype=np.int64)])
    mask = None
    if inst.lane_mask is not None:
        mask = np.zeros((n + w, n + w), dtype=bool)
        mask[:n, :n] = inst.lane_mask
        mask[n:, :n] = True
    return dataclasses.replace(
        inst,
        store_ids=[*inst.store_ids, *warehouse_ids],
        stock=np.vstack([inst.stock, stock.astype(np.int64)]),
        movable=np.vstack([inst.movable, movable.astype(np.int64)]),
        mean_lead=np.vstack([inst.mean_lead, zeros]),
        var_lead=np.vstack([inst.var_lead, zeros]),
        mean_rest=np.vstack([inst.mean_rest, zeros]),
        var_rest=np.vstack([inst.var_rest, zeros]),
        unit_cost=unit_cost,
        fixed_cost=fixed_cost,
        lead_days=lead_days,
        eligible=np.vstack([elig, np.zeros((w, m), dtype=bool)]),
        headroom=head,
        lane_mask=mask,
        warehouse=np.concatenate([np.zeros(n, dtype=bool), np.ones(w, dtype=bool)]),
    )
