"""From tables and a forecast to transfers.csv lines with a reason a planner understands."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import polars as pl

from stocktailor.config import Settings
from stocktailor.contract import TRANSFERS_SCHEMA, Tables
from stocktailor.engine import Engine
from stocktailor.positions import _core_size_skus, lane_matrices, position_at
from stocktailor.transfers._instance import TransferInstance, destination_lead_days
from stocktailor.transfers._solve import TransferSolution, solve_instance
from stocktailor.valuation import window_share

__all__ = [
    "TRANSFER_COLUMNS",
    "build_instance",
    "eligibility_matrix",
    "plan_transfers",
    "solution_frame",
    "solve_transfers",
    "summarise_transfers",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

TRANSFER_COLUMNS: tuple[str, ...] = (
    "transfer_id",
    "sku",
    "style",
    "color",
    "size",
    "from_id",
    "to_id",
    "units",
    "ship_date",
    "arrival_date",
    "transfer_cost",
    "expected_gain",
    "expected_source_loss",
    "net_benefit",
    "reason",
    "gain_p10",
    "gain_p90",
)

_SCHEMA = TRANSFERS_SCHEMA


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


def _season_end(products: pl.DataFrame, settings: Settings, fallback: dt.date) -> pl.DataFrame:
    default = settings.season.end or fallback
    if "season_end" in products.columns:
        expr = pl.col("season_end").fill_null(default)
    else:
        expr = pl.lit(default, dtype=pl.Date)
    return products.select("sku", expr.alias("season_end"))


def build_instance(
    tables: Tables,
    as_of: dt.date,
    forecast: pl.DataFrame | pl.LazyFrame,
    settings: Settings,
) -> TransferInstance:
    """The array problem of a network at ``as_of`` (selling stores only; warehouses excluded).

    ``forecast`` may be a LazyFrame (e.g. a scan of a forecast written in partitions): only
    the two demand windows per store x SKU are materialised, with the streaming engine.
    """
    stores = tables.stores.filter(pl.col("kind") == "store").sort("store_id")
    store_ids = stores["store_id"].to_list()
    pos = position_at(tables, as_of, settings.constraints).filter(
        pl.col("store_id").is_in(store_ids)
    )
    products = tables.products.sort("sku")
    skus = sorted(
        set(pos.filter(pl.col("movable") > 0)["sku"].to_list()) & set(products["sku"].to_list())
    )
    products = products.filter(pl.col("sku").is_in(skus)).sort("sku")
    n, m = len(store_ids), len(skus)
    srow = {s: i for i, s in enumerate(store_ids)}
    scol = {s: j for j, s in enumerate(skus)}
    unit, fixed, lead = lane_matrices(tables, settings.economics, store_ids)
    dest_lead = destination_lead_days(lead, unit)
    stock = np.zeros((n, m), dtype=np.int64)
    movable = np.zeros((n, m), dtype=np.int64)
    p = pos.filter(pl.col("sku").is_in(skus))
    ri = np.array([srow[s] for s in p["store_id"].to_list()], dtype=np.int64)
    ci = np.array([scol[s] for s in p["sku"].to_list()], dtype=np.int64)
    if ri.shape[0]:
        stock[ri, ci] = (p["on_hand"] + p["in_transit"]).to_numpy()
        movable[ri, ci] = p["movable"].to_numpy()
    # One streaming pass over the forecast (a scan of ~100M weekly rows at 1,000 x 20,000)
    # with integer store/SKU keys: only the two windows per pair are materialised.
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
    last_week = fc.select(pl.col("week_start").max()).collect(engine="streaming").item()
    fallback = (last_week + dt.timedelta(days=6)) if isinstance(last_week, dt.date) else as_of
    ends = _season_end(products, settings, fallback)
    leads = pl.LazyFrame({"store_id": store_ids, "_lead": dest_lead.tolist()})
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
    arrays = []
    for mc, vc in (("ml", "vl"), ("mr", "vr")):
        mean = np.zeros((n, m))
        var_a = np.zeros((n, m))
        mean[r, c] = w[mc].to_numpy()
        var_a[r, c] = w[vc].to_numpy()
        arrays.append((mean, np.maximum(var_a, 0.0)))
    season_end = ends["season_end"].to_list()
    season_days = np.array([max((e - as_of).days, 0) for e in season_end], dtype=np.float64)
    headroom = None
    if settings.constraints.respect_capacity and "capacity_units" in stores.columns:
        cap = stores["capacity_units"].to_numpy().astype(np.float64)
        if not np.isnan(cap).all():
            total = np.zeros(n, dtype=np.int64)
            allp = pos.group_by("store_id").agg(
                (pl.col("on_hand") + pl.col("in_transit")).sum().alias("t")
            )
            for s, t in zip(allp["store_id"].to_list(), allp["t"].to_list(), strict=True):
                total[srow[s]] = int(t)
            big = np.iinfo(np.int64).max // 4
            headroom = np.where(np.isnan(cap), big, np.nan_to_num(cap, nan=0.0) - total).astype(
                np.int64
            )
    core = _core_size_skus(tables.products)
    return TransferInstance(
        store_ids=store_ids,
        skus=skus,
        styles=products["style"].to_list(),
        stock=stock,
        movable=movable,
        mean_lead=arrays[0][0],
        var_lead=arrays[0][1],
        mean_rest=arrays[1][0],
        var_rest=arrays[1][1],
        price=products["full_price"].to_numpy().astype(np.float64),
        salvage=products["salvage_value"]
        .fill_null(products["full_price"] * settings.economics.salvage_fraction)
        .to_numpy()
        .astype(np.float64)
        if "salvage_value" in products.columns
        else products["full_price"].to_numpy() * settings.economics.salvage_fraction,
        unit_cost=unit,
        fixed_cost=fixed,
        lead_days=lead,
        eligible=eligibility_matrix(tables.assortment, tables.products, store_ids, skus),
        headroom=headroom,
        season_days=season_days,
        style_color=[
            f"{a}|{b}"
            for a, b in zip(products["style"].to_list(), products["color"].to_list(), strict=True)
        ],
        core_size=np.array([s in core for s in skus], dtype=bool),
    )


def solve_transfers(
    tables: Tables,
    as_of: dt.date,
    forecast: pl.DataFrame | pl.LazyFrame,
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    method: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[TransferInstance, TransferSolution]:
    """Build the instance and solve it; returns both (the solution is in instance indices)."""
    settings = settings or Settings()
    inst = build_instance(tables, as_of, forecast, settings)
    return inst, solve_instance(inst, settings, engine=engine, method=method, progress=progress)


def _fmt_money(x: float) -> str:
    return f"${x:,.0f}"


def _reason(
    src_name: str,
    dst_name: str,
    item: str,
    src_weeks: float,
    dst_days: float,
    units: int,
    net: float,
    dst_stock: int,
) -> str:
    if np.isfinite(src_weeks):
        cover = f"{src_name} holds {src_weeks:.1f} weeks of cover on {item} at current demand"
    else:
        cover = f"{src_name} has {item} but no demand for it this season"
    if dst_stock <= 0:
        sells = f"{dst_name} is out of stock"
    elif np.isfinite(dst_days):
        sells = f"{dst_name} sells out in {max(round(dst_days), 1):d} days"
    else:
        sells = f"{dst_name} has room to sell more"
    return f"{cover}; {sells}; moving {units} units is worth {_fmt_money(net)} net"


def solution_frame(
    inst: TransferInstance,
    sol: TransferSolution,
    as_of: dt.date,
    products: pl.DataFrame | None = None,
    stores: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """transfers.csv lines (+ gain_p10, gain_p90), sorted by net benefit, with reasons."""
    lines = sol.lines
    if len(lines) == 0:
        return pl.DataFrame(schema=_SCHEMA)
    names = dict(zip(inst.store_ids, inst.store_ids, strict=True))
    if stores is not None and "name" in stores.columns:
        for s, nm in zip(stores["store_id"].to_list(), stores["name"].to_list(), strict=True):
            if nm:
                names[s] = str(nm)
    info: dict[str, tuple[str, str, str, str]] = {}
    if products is not None:
        pcols = products.columns
        for rec in products.filter(
            pl.col("sku").is_in([inst.skus[i] for i in np.unique(lines.sku)])
        ).iter_rows(named=True):
            label = next(
                (str(rec[c]) for c in ("name", "style_name") if c in pcols and rec.get(c)),
                str(rec["style"]),
            )
            info[rec["sku"]] = (str(rec["style"]), str(rec["color"]), str(rec["size"]), label)
    sd = inst.season_days if inst.season_days is not None else np.full(inst.n_skus, 7.0)
    season = inst.mean_lead + inst.mean_rest
    days = np.maximum(sd[lines.sku], 1.0)
    src_rate = season[lines.src, lines.sku] / days  # units per day
    dst_rate = season[lines.dst, lines.sku] / days
    src_stock = inst.stock[lines.src, lines.sku]
    dst_stock = inst.stock[lines.dst, lines.sku]
    with np.errstate(divide="ignore", invalid="ignore"):
        src_weeks = np.where(src_rate > 0, src_stock / (7.0 * src_rate), np.inf)
        dst_days = np.where(dst_rate > 0, dst_stock / dst_rate, np.inf)
    order = np.lexsort((lines.dst, lines.src, lines.sku, -np.round(sol.net_benefit, 6)))
    ship = as_of + dt.timedelta(days=1)
    # per-SKU and per-store labels once, then whole columns (no per-line Python beyond the
    # reason sentence)
    sku_ids = lines.sku[order]
    per_sku = [info.get(k, (inst.styles[i], "", "", k)) for i, k in enumerate(inst.skus)]
    item_of = [" ".join(x for x in (lab, col, size) if x) for _, col, size, lab in per_sku]
    names_arr = np.array([names[s] for s in inst.store_ids], dtype=object)
    src_i, dst_i = lines.src[order], lines.dst[order]
    units = lines.units[order].astype(np.int64)
    net = sol.net_benefit[order]
    sw, dd, ds = src_weeks[order], dst_days[order], dst_stock[order]
    items = np.array(item_of, dtype=object)[sku_ids]
    src_names, dst_names = names_arr[src_i], names_arr[dst_i]
    reasons = [
        _reason(a, b, it, w, d, u, v, int(st))
        for a, b, it, w, d, u, v, st in zip(
            src_names.tolist(),
            dst_names.tolist(),
            items.tolist(),
            sw.tolist(),
            dd.tolist(),
            units.tolist(),
            net.tolist(),
            ds.tolist(),
            strict=True,
        )
    ]
    sku_arr = np.array(inst.skus, dtype=object)
    store_arr = np.array(inst.store_ids, dtype=object)
    k = np.arange(1, len(order) + 1)
    frame = pl.DataFrame(
        {
            "k": k,
            "sku": sku_arr[sku_ids].tolist(),
            "style": [per_sku[i][0] for i in sku_ids.tolist()],
            "color": [per_sku[i][1] for i in sku_ids.tolist()],
            "size": [per_sku[i][2] for i in sku_ids.tolist()],
            "from_id": store_arr[src_i].tolist(),
            "to_id": store_arr[dst_i].tolist(),
            "units": units,
            "lead": sol.lead_days[order].astype(np.int64),
            "transfer_cost": sol.transfer_cost[order].astype(np.float64),
            "expected_gain": sol.gain[order].astype(np.float64),
            "expected_source_loss": sol.source_loss[order].astype(np.float64),
            "net_benefit": net.astype(np.float64),
            "reason": reasons,
            "gain_p10": sol.gain_p10[order].astype(np.float64),
            "gain_p90": sol.gain_p90[order].astype(np.float64),
        }
    )
    out = frame.with_columns(
        pl.format(
            "T{}-{}", pl.lit(f"{as_of:%Y%m%d}"), pl.col("k").cast(pl.String).str.zfill(5)
        ).alias("transfer_id"),
        pl.lit(ship, dtype=pl.Date).alias("ship_date"),
        (pl.lit(ship, dtype=pl.Date) + pl.duration(days=pl.col("lead"))).alias("arrival_date"),
    ).select(list(TRANSFER_COLUMNS))
    return out.cast(dict(_SCHEMA))  # type: ignore[arg-type]


def plan_transfers(
    tables: Tables,
    as_of: dt.date,
    forecast: pl.DataFrame | pl.LazyFrame,
    settings: Settings | None = None,
    *,
    clusters: pl.DataFrame | None = None,
    engine: Engine | None = None,
    progress: Callable[[int], None] | None = None,
) -> pl.DataFrame:
    """Store-to-store transfers for ``as_of`` (the transfers.csv columns + gain_p10, gain_p90).

    Parameters
    ----------
    tables
        Validated tables (stores, products, sales, inventory; lanes and assortment if present).
    as_of
        Plan date; positions at its end, shipments leave the next day.
    forecast
        ``store_id, sku, week_start, mean, var`` weekly demand (units per week); a LazyFrame
        (a scan of a forecast written in parts) is read without loading it whole.
    settings
        Economics, constraints and solver settings.
    clusters
        Accepted for interface symmetry (clusters do not change the optimum; the summary uses
        them).
    engine
        Where per-style partitions run.

    Returns
    -------
    polars.DataFrame
        One row per line, every ``net_benefit > 0``, sorted by net benefit (descending).
    """
    settings = settings or Settings()
    _ = clusters
    inst, sol = solve_transfers(tables, as_of, forecast, settings, engine=engine, progress=progress)
    return solution_frame(inst, sol, as_of, tables.products, tables.stores)


def summarise_transfers(
    lines: pl.DataFrame,
    stores: pl.DataFrame,
    products: pl.DataFrame,
    clusters: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Units moved, lanes and expected net benefit by destination cluster and category.

    Returns
    -------
    polars.DataFrame
        ``cluster, category, lines, units, lanes, transfer_cost, expected_net_benefit`` plus a
        ``cluster = "all", category = "all"`` total row.
    """
    schema = {
        "cluster": pl.String,
        "category": pl.String,
        "lines": pl.Int64,
        "units": pl.Int64,
        "lanes": pl.Int64,
        "transfer_cost": pl.Float64,
        "expected_net_benefit": pl.Float64,
    }
    if lines.height == 0:
        return pl.DataFrame(schema=schema)
    df = lines.join(products.select("sku", "category"), on="sku", how="left")
    if clusters is not None and "cluster_name" in clusters.columns:
        df = df.join(
            clusters.select(
                pl.col("store_id").alias("to_id"), pl.col("cluster_name").alias("cluster")
            ),
            on="to_id",
            how="left",
        )
    elif "region" in stores.columns:
        df = df.join(
            stores.select(pl.col("store_id").alias("to_id"), pl.col("region").alias("cluster")),
            on="to_id",
            how="left",
        )
    else:
        df = df.with_columns(pl.lit("all").alias("cluster"))
    df = df.with_columns(
        pl.col("cluster").cast(pl.String).fill_null("unassigned"),
        pl.col("category").fill_null("unknown"),
    )
    aggs = [
        pl.len().cast(pl.Int64).alias("lines"),
        pl.col("units").sum().cast(pl.Int64).alias("units"),
        pl.struct("from_id", "to_id").n_unique().cast(pl.Int64).alias("lanes"),
        pl.col("transfer_cost").sum().alias("transfer_cost"),
        pl.col("net_benefit").sum().alias("expected_net_benefit"),
    ]
    by = df.group_by("cluster", "category").agg(aggs).sort("cluster", "category")
    total = df.select(aggs).with_columns(
        pl.lit("all").alias("cluster"), pl.lit("all").alias("category")
    )
    return pl.concat([by, total.select(by.columns)]).cast(schema)  # type: ignore[arg-type]
