"""From tables and a forecast to the array problem of a plan (stores and warehouses)."""

from __future__ import annotations

import datetime as dt
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import polars as pl

from stocktailor.config import Settings
from stocktailor.contract import FORECAST_DECIMALS, ContractError, Tables
from stocktailor.positions import core_sizes, lane_matrices, position_at
from stocktailor.transfers._instance import TransferInstance, destination_lead_days
from stocktailor.valuation import window_share

__all__ = [
    "build_instance",
    "eligibility_matrix",
    "holdback_shares",
    "lane_premium_matrix",
    "resplit_sizes",
    "season_ends",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)


def eligibility_matrix(
    assortment: pl.DataFrame | None, products: pl.DataFrame, store_ids: list[str], skus: list[str]
) -> BoolArray | None:
    """``(stores, skus)`` bool: False where an assortment row with allowed=false matches.

    A row ``(store_id, attribute, value, allowed=false)`` matches a SKU whose ``attribute``
    column equals ``value`` (for ``tags``, whose ``;``-separated list contains it).
    """
    if assortment is None or assortment.height == 0:
        return None
    out = np.ones((len(store_ids), len(skus)), dtype=bool)
    srow = {s: i for i, s in enumerate(store_ids)}
    prod = products.filter(pl.col("sku").is_in(skus))
    sku_col = {s: i for i, s in enumerate(skus)}
    banned = assortment.filter(~pl.col("allowed"))
    for row_no, rec in enumerate(banned.iter_rows(named=True), start=1):
        attr = str(rec["attribute"])
        if attr not in prod.columns:
            msg = f"assortment: row {row_no}: column 'attribute': {attr!r} is not a products column"
            raise ValueError(msg)
        i = srow.get(str(rec["store_id"]))
        if i is None:
            continue
        col = prod[attr].cast(pl.String)
        if attr == "tags":
            hit = col.fill_null("").str.split(";").list.contains(str(rec["value"]))
        else:
            hit = col == str(rec["value"])
        for sku in prod.filter(hit.fill_null(False))["sku"].to_list():
            out[i, sku_col[sku]] = False
    return out


def holdback_shares(
    mean: FloatArray, var: FloatArray, share: float, cv_reference: float, max_share: float
) -> FloatArray:
    """Share of warehouse stock held back per SKU, from the network CV of season demand.

    Following Gallien et al. (2015, "Initial shipment decisions for new products at Zara") the
    holdback grows with forecast uncertainty: ``share * CV / cv_reference`` clipped to ``[0,
    max_share]``, CV = sd / mean of the SKU's season demand summed over stores.

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


def season_ends(products: pl.DataFrame, settings: Settings, fallback: dt.date) -> pl.DataFrame:
    """``sku, season_end`` (the product's, else ``settings.season.end``, else ``fallback``)."""
    default = settings.season.end or fallback
    if "season_end" in products.columns:
        expr = pl.col("season_end").fill_null(default)
    else:
        expr = pl.lit(default, dtype=pl.Date)
    return products.select("sku", expr.alias("season_end"))


def resplit_sizes(
    fc: Frame,
    products: pl.DataFrame,
    curves: pl.DataFrame,
    clusters: pl.DataFrame | None,
) -> Frame:
    """Each store's style-colour demand re-split over sizes with the best available curve
    (the store's, else its cluster's, else the network's); the variance keeps its ratio to
    the mean. ``fc``: ``store_id, sku, week_start, mean[, var]``, units per week."""
    need = {"level", "id", "size", "share"}
    if not need <= set(curves.columns):
        msg = f"size_curves: expected columns {sorted(need)}, got {curves.columns}"
        raise ValueError(msg)
    f = fc.lazy().join(
        products.select("sku", "style", "color", "size").lazy(), on="sku", how="left"
    )
    if "var" not in f.collect_schema().names():
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
    f = f.join(store_c.lazy(), on=["store_id", "size"], how="left").join(
        net_c.lazy(), on="size", how="left"
    )
    share = pl.coalesce("_s_store", "_s_net")
    if clusters is not None and "cluster_id" in clusters.columns:
        cl = clusters.select("store_id", pl.col("cluster_id").cast(pl.String).alias("_cl"))
        cl_c = cur.filter(pl.col("level") == "cluster").select(
            pl.col("id").alias("_cl"), "size", pl.col("share").alias("_s_cl")
        )
        f = f.join(cl.lazy(), on="store_id", how="left").join(
            cl_c.lazy(), on=["_cl", "size"], how="left"
        )
        share = pl.coalesce("_s_store", "_s_cl", "_s_net")
    grp = ["store_id", "style", "color", "week_start"]
    f = f.with_columns(share.alias("_share")).with_columns(
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
    out = f.with_columns(new_mean.alias("_new"), ratio.alias("_ratio")).select(
        "store_id",
        "sku",
        "week_start",
        pl.col("_new").alias("mean"),
        (pl.col("_new") * pl.col("_ratio")).alias("var"),
    )
    return out.collect() if isinstance(fc, pl.DataFrame) else out


def _windows(
    forecast: pl.DataFrame | pl.LazyFrame,
    as_of: dt.date,
    store_ids: list[str],
    skus: list[str],
    ends: pl.DataFrame,
    dest_lead: IntArray,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Lead-time and rest-of-season demand per store x SKU (units) from a weekly forecast.

    One streaming pass (a scan of ~100M weekly rows at 1,000 x 20,000) with integer store /
    SKU keys: only the two windows per pair are materialised.
    """
    n, m = len(store_ids), len(skus)
    rows_idx = pl.LazyFrame(
        {
            "store_id": pl.Series(store_ids, dtype=pl.String),
            "_r": pl.Series(range(n), dtype=pl.Int64),
        }
    )
    cols_idx = pl.LazyFrame(
        {"sku": pl.Series(skus, dtype=pl.String), "_c": pl.Series(range(m), dtype=pl.Int64)}
    )
    fc = forecast.lazy()
    if "var" not in fc.collect_schema().names():
        fc = fc.with_columns(pl.col("mean").alias("var"))
    fc = fc.join(rows_idx, on="store_id", how="inner").join(cols_idx, on="sku", how="inner")
    leads = pl.LazyFrame(
        {
            "store_id": pl.Series(store_ids, dtype=pl.String),
            "_lead": pl.Series(dest_lead.tolist(), dtype=pl.Int64),
        }
    )
    fc = fc.join(ends.lazy(), on="sku", how="left").join(leads, on="store_id", how="left")
    first = as_of + dt.timedelta(days=1)
    lead_end = pl.lit(as_of, dtype=pl.Date) + pl.duration(days=pl.col("_lead"))
    lead_s = window_share(first, pl.min_horizontal(lead_end, pl.col("season_end")))
    rest_s = window_share(lead_end + pl.duration(days=1), pl.col("season_end"))
    mu, var = pl.col("mean").cast(pl.Float64), pl.col("var").cast(pl.Float64)
    w = (
        fc.with_columns(lead_s.alias("_ls"), rest_s.alias("_rs"))
        .group_by("_r", "_c")
        .agg(
            (mu * pl.col("_ls")).sum().alias("ml"),
            (var * pl.col("_ls")).sum().alias("vl"),
            (mu * pl.col("_rs")).sum().alias("mr"),
            (var * pl.col("_rs")).sum().alias("vr"),
        )
        .collect(engine="streaming")
    )
    r, c = w["_r"].to_numpy(), w["_c"].to_numpy()
    out = []
    for col in ("ml", "vl", "mr", "vr"):
        a = np.zeros((n, m))
        # the streaming group-by adds a pair's weeks in a per-run order
        a[r, c] = np.round(w[col].to_numpy(), FORECAST_DECIMALS)
        out.append(np.maximum(a, 0.0))
    return out[0], out[1], out[2], out[3]


def _headroom(
    stores: pl.DataFrame, pos: pl.DataFrame, store_ids: list[str], settings: Settings
) -> IntArray | None:
    """Units each store may still take in across SKUs (capacity - stock), None = unlimited."""
    if not settings.constraints.respect_capacity or "capacity_units" not in stores.columns:
        return None
    cap = stores["capacity_units"].to_numpy().astype(np.float64)
    if np.isnan(cap).all():
        return None
    srow = {s: i for i, s in enumerate(store_ids)}
    total = np.zeros(len(store_ids), dtype=np.int64)
    allp = pos.group_by("store_id").agg((pl.col("on_hand") + pl.col("in_transit")).sum().alias("t"))
    for s, t in zip(allp["store_id"].to_list(), allp["t"].to_list(), strict=True):
        total[srow[s]] = int(t)
    big = np.iinfo(np.int64).max // 4
    out: IntArray = np.where(np.isnan(cap), big, np.nan_to_num(cap, nan=0.0) - total).astype(
        np.int64
    )
    return out


def _grid(pos: pl.DataFrame, ids: list[str], skus: list[str], col: str | pl.Expr) -> IntArray:
    """``(len(ids), len(skus))`` units of ``col`` from a position frame."""
    out = np.zeros((len(ids), len(skus)), dtype=np.int64)
    row = {s: i for i, s in enumerate(ids)}
    c = {s: j for j, s in enumerate(skus)}
    p = pos.filter(pl.col("store_id").is_in(ids) & pl.col("sku").is_in(skus))
    if p.height:
        ri = np.array([row[s] for s in p["store_id"].to_list()], dtype=np.int64)
        ci = np.array([c[s] for s in p["sku"].to_list()], dtype=np.int64)
        expr = pl.col(col) if isinstance(col, str) else col
        out[ri, ci] = p.select(expr).to_series().to_numpy()
    return out


def build_instance(
    tables: Tables,
    as_of: dt.date,
    forecast: pl.DataFrame | pl.LazyFrame,
    settings: Settings,
    *,
    warehouses: bool | None = None,
) -> TransferInstance:
    """The array problem of a network at ``as_of``: selling stores, then warehouses.

    With ``warehouses`` (default ``settings.solver.joint_warehouse``) the warehouses are
    sources of the same network: their stock less the holdback (:func:`holdback_shares`) may
    ship to any store, so warehouse-to-store allocation and store-to-store transfers are one
    optimisation per SKU-size. ``forecast`` may be a LazyFrame (e.g. a scan of a forecast
    written in partitions): only the two demand windows per store x SKU are materialised.
    """
    if warehouses is None:
        warehouses = settings.solver.joint_warehouse
    stores = tables.stores.filter(pl.col("kind") == "store").sort("store_id")
    store_ids = stores["store_id"].to_list()
    wh_ids = sorted(tables.warehouse_ids.to_list()) if warehouses else []
    ids = store_ids + wh_ids
    pos = position_at(tables, as_of, settings.constraints).filter(pl.col("store_id").is_in(ids))
    store_pos = pos.filter(pl.col("store_id").is_in(store_ids))
    wh_pos = pos.filter(pl.col("store_id").is_in(wh_ids) & (pl.col("on_hand") > 0))
    products = tables.products.sort("sku")
    moving = set(store_pos.filter(pl.col("movable") > 0)["sku"].to_list())
    moving |= set(wh_pos["sku"].to_list())
    skus = sorted(moving & set(products["sku"].to_list()))
    products = products.filter(pl.col("sku").is_in(skus)).sort("sku")
    n, w = len(store_ids), len(wh_ids)
    unit, fixed, lead = _lanes(tables, settings, ids, n)
    dest_lead = destination_lead_days(lead, unit)[:n]
    fc = forecast.lazy().filter(pl.col("sku").is_in(skus))
    last_week = fc.select(pl.col("week_start").max()).collect(engine="streaming").item()
    fallback = (last_week + dt.timedelta(days=6)) if isinstance(last_week, dt.date) else as_of
    ends = season_ends(products, settings, fallback)
    ml, vl, mr, vr = _windows(forecast, as_of, store_ids, skus, ends, dest_lead)
    stock = _grid(pos, ids, skus, pl.col("on_hand") + pl.col("in_transit"))
    movable = _grid(pos, ids, skus, "movable")
    if w:
        sol = settings.solver
        hb = holdback_shares(
            ml + mr, vl + vr, sol.holdback_share, sol.holdback_cv_reference, sol.max_holdback_share
        )
        on_hand = _grid(pos, wh_ids, skus, "on_hand")
        stock[n:] = on_hand
        movable[n:] = np.floor(on_hand * (1.0 - hb)[None, :]).astype(np.int64)
    zeros = np.zeros((w, len(skus)))
    season_days = np.array(
        [max((e - as_of).days, 0) for e in ends["season_end"].to_list()], dtype=np.float64
    )
    head = _headroom(stores, store_pos, store_ids, settings)
    elig = eligibility_matrix(tables.assortment, tables.products, store_ids, skus)
    if w:
        big = np.iinfo(np.int64).max // 4
        head = None if head is None else np.concatenate([head, np.full(w, big, dtype=np.int64)])
        base = np.ones((n, len(skus)), dtype=bool) if elig is None else elig
        elig = np.vstack([base, np.zeros((w, len(skus)), dtype=bool)])
    core = core_sizes(tables.products)
    return TransferInstance(
        store_ids=ids,
        skus=skus,
        styles=products["style"].to_list(),
        stock=stock,
        movable=np.minimum(movable, np.maximum(stock, 0)),
        mean_lead=np.vstack([ml, zeros]),
        var_lead=np.vstack([vl, zeros]),
        mean_rest=np.vstack([mr, zeros]),
        var_rest=np.vstack([vr, zeros]),
        price=products["full_price"].to_numpy().astype(np.float64),
        salvage=_salvage(products, settings),
        unit_cost=unit,
        fixed_cost=fixed,
        lead_days=lead,
        eligible=elig,
        headroom=head,
        season_days=season_days,
        style_color=[
            f"{a}|{b}"
            for a, b in zip(products["style"].to_list(), products["color"].to_list(), strict=True)
        ],
        core_size=np.array([s in core for s in skus], dtype=bool),
        warehouse=np.concatenate([np.zeros(n, dtype=bool), np.ones(w, dtype=bool)]) if w else None,
    )


def _lanes(
    tables: Tables, settings: Settings, ids: list[str], n: int
) -> tuple[FloatArray, FloatArray, IntArray]:
    """Lane matrices over stores then warehouses (:func:`lane_matrices`). Every lane into a
    store is needed (a store without coordinates needs its lanes given); lanes into a
    warehouse are never used."""
    unit, fixed, lead = lane_matrices(tables, settings.economics, ids, origins=[])
    into_store = np.zeros(len(ids), dtype=bool)
    into_store[:n] = True
    missing = ~np.isfinite(unit) & into_store[None, :]
    np.fill_diagonal(missing, False)
    if missing.any():
        # the contract's one-line error names them: lanes between stores, then from warehouses
        lane_matrices(tables, settings.economics, ids[:n])
        lane_matrices(tables, settings.economics, ids, origins=ids[n:])
        r, c = np.nonzero(missing)
        pairs = ", ".join(f"{ids[i]} -> {ids[j]}" for i, j in zip(r[:3], c[:3], strict=True))
        msg = f"no lane and no coordinates for {pairs}: add latitude and longitude to stores"
        raise ContractError(msg, file="stores", column="latitude")
    return unit, fixed, lead


def _salvage(products: pl.DataFrame, settings: Settings) -> FloatArray:
    """Salvage value per SKU (the product's, else ``salvage_fraction`` x full price)."""
    frac = products["full_price"] * settings.economics.salvage_fraction
    if "salvage_value" in products.columns:
        frac = products["salvage_value"].fill_null(frac)
    out: FloatArray = frac.to_numpy().astype(np.float64)
    return out


def lane_premium_matrix(ids: list[str], premiums: pl.DataFrame | None) -> FloatArray | None:
    """``(n, n)`` premium per lane over ``ids`` (row = from), currency per shipment.

    ``premiums`` has ``from_id, to_id, premium`` (currency per shipment; other columns are
    ignored); pairs naming a location outside ``ids`` are ignored, a pair given twice adds up.
    None (or nothing positive) gives None.
    """
    if premiums is None or premiums.height == 0:
        return None
    need = {"from_id", "to_id", "premium"}
    if not need <= set(premiums.columns):
        msg = f"lane_premiums: expected columns {sorted(need)}, got {premiums.columns}"
        raise ValueError(msg)
    index = {s: i for i, s in enumerate(ids)}
    out = np.zeros((len(ids), len(ids)))
    rows = premiums.select("from_id", "to_id", pl.col("premium").cast(pl.Float64))
    for row_no, (a, b, p) in enumerate(rows.iter_rows(), start=1):
        if p is None or not np.isfinite(p) or p < 0:
            msg = f"lane_premiums: row {row_no}: column 'premium': {p!r} is not a number >= 0"
            raise ValueError(msg)
        if a in index and b in index and a != b:
            out[index[a], index[b]] += p
    return out if (out > 0).any() else None
