"""Initial allocation: warehouse stock to stores at season start, by marginal value.

Each store's value of holding S units of a SKU is concave in S (see
:mod:`stocktailor.valuation`), so with a shared supply the greedy that hands out units (or packs)
in decreasing order of marginal value is exact per SKU. A share of the warehouse stock is held
back for later replenishment; following Gallien et al. (2015, "Initial shipment decisions for new
products at Zara") the holdback grows with forecast uncertainty: ``holdback = holdback_share *
CV / holdback_cv_reference`` clipped to ``[0, max_holdback_share]``, where CV is the network-wide
coefficient of variation of the SKU's season demand. Eligibility (assortment), store capacity
(shared across SKUs), pack size and minimum line quantity are respected.
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import numpy.typing as npt
import polars as pl

from stocktailor.config import Settings
from stocktailor.contract import Tables
from stocktailor.positions import lane_matrices, position_at
from stocktailor.transfers._plan import eligibility_matrix
from stocktailor.valuation import arrival_tail, demand_window

__all__ = ["ALLOCATION_COLUMNS", "allocate", "allocate_arrays", "holdback_shares"]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

ALLOCATION_COLUMNS = ("sku", "from_id", "to_id", "units", "expected_gain", "reason")


def holdback_shares(
    mean: FloatArray, var: FloatArray, share: float, cv_reference: float, max_share: float
) -> FloatArray:
    """Holdback share per SKU from the network CV of season demand.

    Parameters
    ----------
    mean, var
        Season demand per store x SKU, units, ``(n, m)``.

    Returns
    -------
    numpy.ndarray
        ``(m,)`` shares in ``[0, max_share]``; SKUs with no demand get 0.
    """
    tot = mean.sum(axis=0)
    sd = np.sqrt(np.maximum(var, 0.0).sum(axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        cv = np.where(tot > 0, sd / tot, 0.0)
    out: FloatArray = np.clip(share * cv / cv_reference, 0.0, max_share)
    return out


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
    margin = price - salvage
    left = supply.astype(np.int64).copy()
    for _ in range(rounds):
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
            k = base[:, None] + np.arange(packs * pack_size)[None, :]
            k = np.minimum(k, kmax - 1)
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
            break
        vals = np.concatenate(cand_val)
        st = np.concatenate(cand_store)
        sk = np.concatenate(cand_sku)
        order = np.lexsort((sk, st, -vals))
        vals, st, sk = vals[order], st[order], sk[order]
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


def allocate(
    tables: Tables,
    as_of: dt.date,
    forecast: pl.DataFrame,
    settings: Settings | None = None,
    *,
    clusters: pl.DataFrame | None = None,
    size_curves: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Allocate warehouse stock to stores (allocation.csv columns).

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
        else the network's) before allocating.

    Returns
    -------
    polars.DataFrame
        ``sku, from_id, to_id, units, expected_gain, reason``; ``expected_gain`` is the expected
        extra margin over salvage less the per-unit lane cost, currency.
    """
    settings = settings or Settings()
    schema = {
        "sku": pl.String,
        "from_id": pl.String,
        "to_id": pl.String,
        "units": pl.Int64,
        "expected_gain": pl.Float64,
        "reason": pl.String,
    }
    wh_ids = sorted(tables.warehouse_ids.to_list())
    st_ids = sorted(tables.store_ids.to_list())
    if not wh_ids or not st_ids:
        return pl.DataFrame(schema=schema)
    pos = position_at(tables, as_of, settings.constraints)
    wh_pos = pos.filter(pl.col("store_id").is_in(wh_ids) & (pl.col("on_hand") > 0))
    if wh_pos.height == 0:
        return pl.DataFrame(schema=schema)
    products = tables.products.filter(pl.col("sku").is_in(wh_pos["sku"].unique().to_list())).sort(
        "sku"
    )
    skus = products["sku"].to_list()
    n, m = len(st_ids), len(skus)
    srow = {s: i for i, s in enumerate(st_ids)}
    scol = {s: j for j, s in enumerate(skus)}
    ids = st_ids + wh_ids
    unit, _, lead = lane_matrices(tables, settings.economics, ids, origins=wh_ids)
    w_unit = unit[n:, :n]  # warehouse x store
    home = np.argmin(w_unit, axis=0)  # cheapest warehouse per store
    c_unit = w_unit[home, np.arange(n)]
    l_days = lead[n:, :n][home, np.arange(n)]
    stock = np.zeros((n, m), dtype=np.int64)
    sp = pos.filter(pl.col("store_id").is_in(st_ids) & pl.col("sku").is_in(skus))
    if sp.height:
        stock[
            [srow[s] for s in sp["store_id"].to_list()], [scol[s] for s in sp["sku"].to_list()]
        ] = (sp["on_hand"] + sp["in_transit"]).to_numpy()
    fc = forecast.filter(pl.col("sku").is_in(skus) & pl.col("store_id").is_in(st_ids))
    if size_curves is not None and fc.height:
        fc = _resplit_sizes(fc, products, size_curves, clusters)
    default_end = settings.season.end
    if default_end is None:
        last = fc["week_start"].max() if fc.height else None
        default_end = last + dt.timedelta(days=6) if isinstance(last, dt.date) else as_of
    if "season_end" in products.columns:
        ends = products.select("sku", pl.col("season_end").fill_null(default_end))
    else:
        ends = products.select("sku", pl.lit(default_end, dtype=pl.Date).alias("season_end"))
    leads = pl.DataFrame({"store_id": st_ids, "_lead": l_days.tolist()})
    fc = fc.join(ends, on="sku", how="left").join(leads, on="store_id", how="left")
    lead_end = pl.lit(as_of, dtype=pl.Date) + pl.duration(days=pl.col("_lead"))
    wins = []
    for lo, hi in (
        (pl.lit(as_of + dt.timedelta(days=1), dtype=pl.Date), lead_end),
        (lead_end + pl.duration(days=1), pl.col("season_end")),
    ):
        w = demand_window(fc, lo, pl.min_horizontal(hi, pl.col("season_end")))
        mean = np.zeros((n, m))
        var = np.zeros((n, m))
        if w.height:
            r = [srow[s] for s in w["store_id"].to_list()]
            c = [scol[s] for s in w["sku"].to_list()]
            mean[r, c] = w["mean"].to_numpy()
            var[r, c] = np.maximum(w["var"].to_numpy(), 0.0)
        wins.append((mean, var))
    (ml, vl), (mr, vr) = wins
    cons = settings.constraints
    sol = settings.solver
    hb = holdback_shares(
        ml + mr, vl + vr, sol.holdback_share, sol.holdback_cv_reference, sol.max_holdback_share
    )
    wh_stock = wh_pos.filter(pl.col("sku").is_in(skus)).group_by("sku").agg(pl.col("on_hand").sum())
    supply_total = np.zeros(m, dtype=np.int64)
    for s, u in zip(wh_stock["sku"].to_list(), wh_stock["on_hand"].to_list(), strict=True):
        supply_total[scol[s]] = int(u)
    supply = np.floor(supply_total * (1.0 - hb)).astype(np.int64)
    price = products["full_price"].to_numpy().astype(np.float64)
    salvage = (
        (
            products["salvage_value"].fill_null(
                products["full_price"] * settings.economics.salvage_fraction
            )
            if "salvage_value" in products.columns
            else products["full_price"] * settings.economics.salvage_fraction
        )
        .to_numpy()
        .astype(np.float64)
    )
    headroom = None
    stores = tables.stores.filter(pl.col("kind") == "store").sort("store_id")
    if cons.respect_capacity and "capacity_units" in stores.columns:
        cap = stores["capacity_units"].to_numpy().astype(np.float64)
        tot = np.zeros(n)
        allp = (
            pos.filter(pl.col("store_id").is_in(st_ids))
            .group_by("store_id")
            .agg((pl.col("on_hand") + pl.col("in_transit")).sum().alias("t"))
        )
        for s, t in zip(allp["store_id"].to_list(), allp["t"].to_list(), strict=True):
            tot[srow[s]] = t
        headroom = np.where(np.isnan(cap), 10**12, np.nan_to_num(cap) - tot).astype(np.int64)
    eligible = eligibility_matrix(tables.assortment, tables.products, st_ids, skus)
    alloc, gain = allocate_arrays(
        supply,
        stock,
        ml,
        vl,
        mr,
        vr,
        price,
        salvage,
        c_unit,
        eligible=eligible,
        headroom=headroom,
        pack_size=cons.pack_size,
        min_units=cons.min_transfer_units,
    )
    names = dict(
        zip(
            stores["store_id"].to_list(),
            stores["name"].to_list() if "name" in stores.columns else stores["store_id"].to_list(),
            strict=True,
        )
    )
    all_names = dict(
        zip(
            tables.stores["store_id"].to_list(),
            tables.stores["name"].to_list()
            if "name" in tables.stores.columns
            else tables.stores["store_id"].to_list(),
            strict=True,
        )
    )
    r_idx, c_idx = np.nonzero(alloc)
    order = np.lexsort((r_idx, c_idx))
    rows: dict[str, list[object]] = {k: [] for k in schema}
    season_mean = ml + mr
    for o in order:
        i, j = int(r_idx[o]), int(c_idx[o])
        wh = wh_ids[int(home[i])]
        sku = skus[j]
        units = int(alloc[i, j])
        held = supply_total[j] - supply[j]
        rows["sku"].append(sku)
        rows["from_id"].append(wh)
        rows["to_id"].append(st_ids[i])
        rows["units"].append(units)
        rows["expected_gain"].append(float(gain[i, j]))
        rows["reason"].append(
            f"{names.get(st_ids[i]) or st_ids[i]} expects to sell {season_mean[i, j]:.1f} units of "
            f"{sku} by season end; {units} units are worth ${gain[i, j]:,.0f} over salvage; "
            f"{all_names.get(wh) or wh} holds back {held} of {supply_total[j]} units "
            f"({hb[j]:.0%}) for replenishment"
        )
    logger.info("allocation: %d lines, %d units", len(rows["sku"]), int(alloc.sum()))
    return pl.DataFrame(rows, schema=schema)


def _resplit_sizes(
    fc: pl.DataFrame,
    products: pl.DataFrame,
    curves: pl.DataFrame,
    clusters: pl.DataFrame | None,
) -> pl.DataFrame:
    """Re-split each store's style-colour demand over sizes with the best available curve."""
    need = {"level", "id", "size", "share"}
    if not need <= set(curves.columns):
        msg = f"size_curves: expected columns {sorted(need)}, got {curves.columns}"
        raise ValueError(msg)
    f = fc.join(products.select("sku", "style", "color", "size"), on="sku", how="left")
    if "var" not in f.columns:
        f = f.with_columns(pl.col("mean").alias("var"))
    cur = curves.with_columns(pl.col("id").cast(pl.String), pl.col("level").cast(pl.String))
    store_c = cur.filter(pl.col("level") == "store").select(
        pl.col("id").alias("store_id"), "size", pl.col("share").alias("_s_store")
    )
    net_c = (
        cur.filter(pl.col("level") == "network")
        .group_by("size")
        .agg(pl.col("share").mean().alias("_s_net"))
    )
    f = f.join(store_c, on=["store_id", "size"], how="left").join(net_c, on="size", how="left")
    if clusters is not None and "cluster_id" in clusters.columns:
        cl = clusters.select("store_id", pl.col("cluster_id").cast(pl.String).alias("_cl"))
        cl_c = cur.filter(pl.col("level") == "cluster").select(
            pl.col("id").alias("_cl"), "size", pl.col("share").alias("_s_cl")
        )
        f = f.join(cl, on="store_id", how="left").join(cl_c, on=["_cl", "size"], how="left")
        share = pl.coalesce("_s_store", "_s_cl", "_s_net")
    else:
        share = pl.coalesce("_s_store", "_s_net")
    grp = ["store_id", "style", "color", "week_start"]
    f = f.with_columns(share.alias("_share"))
    f = f.with_columns(
        pl.col("mean").sum().over(grp).alias("_tot"),
        pl.col("_share").sum().over(grp).alias("_ssum"),
        pl.col("_share").is_null().any().over(grp).alias("_miss"),
    )
    new_mean = (
        pl.when(pl.col("_miss") | (pl.col("_ssum") <= 0))
        .then(pl.col("mean"))
        .otherwise(pl.col("_tot") * pl.col("_share") / pl.col("_ssum"))
    )
    ratio = pl.when(pl.col("mean") > 0).then(pl.col("var") / pl.col("mean")).otherwise(1.0)
    return f.with_columns(new_mean.alias("_new"), ratio.alias("_ratio")).select(
        "store_id",
        "sku",
        "week_start",
        pl.col("_new").alias("mean"),
        (pl.col("_new") * pl.col("_ratio")).alias("var"),
    )
