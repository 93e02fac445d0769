"""KPIs of simulated seasons: per run, by store cluster, category and week, across seeds.

Money is in currency units. ``profit = revenue (full price + markdown) + salvage value -
transfer cost``; the product cost is sunk (bought before the season) and the same for every
policy, so it is left out. Uplifts compare a policy with a baseline on the same seed (the same
customers): with ``none`` (what the retailer does without the product: the initial allocation
and the warehouse replenishing stores by weeks of cover) and with ``rule`` (a planner's
weeks-of-cover rule with store-to-store moves). ``bound_profit`` is the season LP's upper bound
(the ``bound`` run of the seed) and ``bound_uplift_share`` a policy's uplift over ``rule``
divided by the bound's, capped at 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from stocktailor.simulate._types import SALES_COLUMNS, SimResult

__all__ = ["KPI_LABELS", "KpiTables", "confidence_interval", "kpis", "store_groups_for"]

KPI_LABELS: dict[str, str] = {
    "profit": "Profit (revenue + salvage - transfer cost)",
    "revenue_full_price": "Revenue at full price",
    "revenue_markdown": "Revenue at markdown",
    "revenue_total": "Revenue, total",
    "full_price_sell_through": "Full-price sell-through (share of initial units)",
    "sell_through": "Sell-through before salvage (share of initial units)",
    "units_sold_full": "Units sold at full price",
    "units_sold": "Units sold",
    "demand_units": "Demand (customers wanting a unit)",
    "lost_units": "Lost sales, units",
    "lost_value": "Lost sales, value at the day's price",
    "salvaged_units": "Units salvaged at season end",
    "salvage_value": "Salvage value",
    "allocation_units": "Units allocated from the warehouse",
    "transfer_units": "Units transferred (stores and warehouse)",
    "transfer_shipments": "Shipments (lane x decision day)",
    "transfer_lanes": "Distinct lanes used",
    "transfer_cost": "Transfer cost",
    "cut_units": "Units asked for but not on hand (cut)",
    "profit_uplift": "Profit uplift over none",
    "revenue_full_price_uplift_pct": "Full-price revenue uplift over none, %",
    "gain_before_transfer_cost": "Revenue + salvage gained over none",
    "transfer_cost_share_of_gain": "Transfer cost / gain over none before transfer cost",
    "profit_uplift_vs_rule": "Profit uplift over rule",
    "revenue_full_price_uplift_vs_rule_pct": "Full-price revenue uplift over rule, %",
    "gain_before_transfer_cost_vs_rule": "Revenue + salvage gained over rule",
    "transfer_cost_share_of_gain_vs_rule": "Transfer cost / gain over rule before transfer cost",
    "upper_bound": "The season LP's upper bound on profit (bound run only)",
    "bound_profit": "Upper bound on profit (season LP, demand draws known)",
    "bound_uplift_share": "Share of the bound's profit uplift over rule (capped at 1)",
    "true_demand_uplift_share": "Share of same-optimiser-true-demand's uplift over rule",
    "initial_units": "Initial units (stores + warehouse)",
}


@dataclass(frozen=True)
class KpiTables:
    """KPI frames of a set of runs.

    Attributes
    ----------
    runs
        One row per (policy, seed) with every overall KPI as a column.
    by_cluster, by_category, by_week
        ``policy, seed, <group>`` and the sales KPIs of the group.
    summary
        ``policy, kpi, mean, ci_low, ci_high, n_seeds`` (95% t interval across seeds).
    long
        Every KPI value: ``scope (overall|cluster|category|week), group, policy, seed, kpi,
        value`` (the kpis.csv of the report).
    """

    runs: pl.DataFrame
    by_cluster: pl.DataFrame
    by_category: pl.DataFrame
    by_week: pl.DataFrame
    summary: pl.DataFrame
    long: pl.DataFrame


def confidence_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and a two-sided t interval of the mean; the interval is NaN with fewer than 2 values."""
    from scipy import stats

    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    if x.size == 0:
        return math.nan, math.nan, math.nan
    m = float(x.mean())
    if x.size < 2:
        return m, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return m, m - half, m + half


def store_groups_for(result: SimResult, segments: pl.DataFrame | None) -> pl.DataFrame:
    """``store_id, cluster``: the truth's segments when given, else the store ``format``."""
    ids = pl.DataFrame({"store_id": list(result.space.location_ids)})
    if segments is not None and "segment" in segments.columns:
        g = segments.select("store_id", pl.col("segment").cast(pl.String).alias("cluster"))
    elif "format" in result.space.stores.columns:
        g = result.space.stores.select(
            "store_id", pl.col("format").cast(pl.String).fill_null("store").alias("cluster")
        )
    else:
        g = pl.DataFrame(
            {"store_id": [], "cluster": []}, schema={"store_id": pl.String, "cluster": pl.String}
        )
    out = ids.join(g, on="store_id", how="left").with_columns(
        pl.when(pl.col("store_id").is_in(list(result.space.warehouse_ids)))
        .then(pl.lit("warehouse"))
        .otherwise(pl.col("cluster").fill_null("other"))
        .alias("cluster")
    )
    return out


def _overall(r: SimResult) -> dict[str, float]:
    d = r.daily
    moves = r.moves
    alloc = moves.filter(pl.col("kind") == "allocation")
    trans = moves.filter(pl.col("kind") == "transfer")
    init = float(r.initial.sum())
    rev_total = float(d["revenue"].sum())
    rev_full = float(d["revenue_full"].sum())
    salvage = float(d["salvage_value"].sum())
    cost = float(d["transfer_cost"].sum())
    used = moves.filter(pl.col("units") > 0)
    return {
        "initial_units": init,
        "demand_units": float(d["demand_units"].sum()),
        "units_sold": float(d["sold_units"].sum()),
        "units_sold_full": float(d["sold_full_units"].sum()),
        "revenue_full_price": rev_full,
        "revenue_markdown": rev_total - rev_full,
        "revenue_total": rev_total,
        "full_price_sell_through": float(d["sold_full_units"].sum()) / init if init else math.nan,
        "sell_through": float(d["sold_units"].sum()) / init if init else math.nan,
        "lost_units": float(d["lost_units"].sum()),
        "lost_value": float(d["lost_value"].sum()),
        "salvaged_units": float(d["salvaged_units"].sum()),
        "salvage_value": salvage,
        "allocation_units": float(alloc["units"].sum()),
        "transfer_units": float(trans["units"].sum()),
        "transfer_shipments": float(d["shipments"].sum()),
        "transfer_lanes": float(used.select("from_id", "to_id").unique().height),
        "transfer_cost": cost,
        "cut_units": float((moves["requested"] - moves["units"]).sum()),
        "profit": rev_total + salvage - cost,
        "upper_bound": float(r.info.get("upper_bound", math.nan)),
    }


def _grouped(
    r: SimResult, groups: pl.DataFrame, products: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    tag = [pl.lit(r.policy).alias("policy"), pl.lit(r.seed).alias("seed")]
    sales_cols = [pl.col(c).sum() for c in SALES_COLUMNS]
    # by cluster
    sal_store = pl.DataFrame(
        {"store_id": list(r.space.location_ids), "salvaged_units": r.salvage_by_store}
    )
    moves = r.moves.filter(pl.col("units") > 0)
    out_units = moves.group_by(pl.col("from_id").alias("store_id")).agg(
        pl.col("units").sum().alias("units_shipped_out")
    )
    in_units = moves.group_by(pl.col("to_id").alias("store_id")).agg(
        pl.col("units").sum().alias("units_received")
    )
    per_store = (
        groups.join(r.by_store_week.group_by("store_id").agg(sales_cols), on="store_id", how="left")
        .join(sal_store, on="store_id", how="left")
        .join(out_units, on="store_id", how="left")
        .join(in_units, on="store_id", how="left")
        .fill_null(0)
    )
    num = [c for c in per_store.columns if c not in ("store_id", "cluster")]
    by_cluster = (
        per_store.group_by("cluster")
        .agg(pl.col(num).sum(), pl.len().alias("stores"))
        .with_columns(tag)
        .sort("cluster")
    )
    # by category
    cat = products.select("sku", pl.col("category").cast(pl.String))
    sal_sku = pl.DataFrame({"sku": list(r.space.skus), "salvaged_units": r.salvage_by_sku})
    moved_sku = moves.group_by("sku").agg(pl.col("units").sum().alias("units_moved"))
    per_sku = (
        r.by_sku_week.group_by("sku")
        .agg(sales_cols)
        .join(sal_sku, on="sku", how="left")
        .join(moved_sku, on="sku", how="left")
        .join(cat, on="sku", how="left")
        .fill_null(0)
    )
    num_k = [c for c in per_sku.columns if c not in ("sku", "category")]
    by_category = (
        per_sku.group_by("category").agg(pl.col(num_k).sum()).with_columns(tag).sort("category")
    )
    # by week
    by_week = (
        r.daily.group_by("week")
        .agg(
            pl.col("date").min().alias("week_start"),
            pl.col("price_factor").min(),
            *[pl.col(c).sum() for c in SALES_COLUMNS],
            pl.col("moved_units").sum(),
            pl.col("transfer_cost").sum(),
            pl.col("salvage_value").sum(),
        )
        .sort("week")
        .with_columns(
            (pl.col("revenue") + pl.col("salvage_value") - pl.col("transfer_cost"))
            .cum_sum()
            .alias("cumulative_profit"),
            (pl.col("sold_units").cum_sum() / float(r.initial.sum() or 1)).alias("sell_through"),
            *tag,
        )
    )
    return by_cluster, by_category, by_week


def _versus(runs: pl.DataFrame, baseline: str, suffix: str) -> pl.DataFrame:
    """Uplift columns of every run over ``baseline`` on the same seed (null without it)."""
    base = runs.filter(pl.col("policy") == baseline).select(
        "seed",
        pl.col("profit").alias("_p0"),
        pl.col("revenue_full_price").alias("_f0"),
        (pl.col("revenue_total") + pl.col("salvage_value")).alias("_g0"),
    )
    gain = pl.col("revenue_total") + pl.col("salvage_value") - pl.col("_g0")
    return (
        runs.join(base, on="seed", how="left")
        .with_columns(
            (pl.col("profit") - pl.col("_p0")).alias(f"profit_uplift{suffix}"),
            (100.0 * (pl.col("revenue_full_price") / pl.col("_f0") - 1.0)).alias(
                f"revenue_full_price_uplift{suffix}_pct"
            ),
            gain.alias(f"gain_before_transfer_cost{suffix}"),
            pl.when(gain > 0)
            .then(pl.col("transfer_cost") / gain)
            .otherwise(None)
            .alias(f"transfer_cost_share_of_gain{suffix}"),
        )
        .drop("_p0", "_f0", "_g0")
    )


def _shares(runs: pl.DataFrame, reference: str, bound: str, true_demand: str) -> pl.DataFrame:
    """``bound_profit``, ``bound_uplift_share`` (capped at 1) and ``true_demand_uplift_share``,
    both uplifts over ``reference`` on the same seed."""
    ref = runs.filter(pl.col("policy") == reference).select("seed", pl.col("profit").alias("_r"))
    ub = runs.filter(pl.col("policy") == bound).select(
        "seed", pl.col("upper_bound").alias("bound_profit")
    )
    td = runs.filter(pl.col("policy") == true_demand).select("seed", pl.col("profit").alias("_t"))
    up = pl.col("profit") - pl.col("_r")

    def share(top: pl.Expr) -> pl.Expr:
        return pl.when((top - pl.col("_r")).abs() > 1e-9).then(up / (top - pl.col("_r")))

    return (
        runs.join(ref, on="seed", how="left")
        .join(ub, on="seed", how="left")
        .join(td, on="seed", how="left")
        .with_columns(
            share(pl.col("bound_profit")).clip(upper_bound=1.0).alias("bound_uplift_share"),
            share(pl.col("_t")).alias("true_demand_uplift_share"),
        )
        .drop("_r", "_t")
    )


def kpis(
    results: Sequence[SimResult],
    *,
    segments: pl.DataFrame | None = None,
    baseline: str = "none",
    reference: str = "rule",
    bound: str = "bound",
    true_demand: str = "same-optimiser-true-demand",
) -> KpiTables:
    """KPI tables of ``results`` (several policies and seeds).

    Parameters
    ----------
    results
        Runs; a run of ``baseline`` (``reference``) on the same seed enables the uplift KPIs
        over it (with the suffix ``_vs_rule`` for ``reference``), a run of ``bound`` the
        ``bound_profit`` and ``bound_uplift_share`` and a run of ``true_demand`` the
        ``true_demand_uplift_share`` (both over ``reference``).
    segments
        ``store_id, segment`` used as the cluster of each store (default: store ``format``).
    """
    if not results:
        msg = "kpis: no simulation results"
        raise ValueError(msg)
    rows = []
    clusters, cats, weeks = [], [], []
    for r in results:
        row: dict[str, object] = {"policy": r.policy, "seed": r.seed}
        row.update(_overall(r))
        rows.append(row)
        groups = store_groups_for(r, segments)
        c, k, w = _grouped(r, groups, r.space.products)
        clusters.append(c)
        cats.append(k)
        weeks.append(w)
    runs = _versus(pl.DataFrame(rows), baseline, "")
    runs = _versus(runs, reference, "_vs_rule")
    runs = _shares(runs, reference, bound, true_demand)
    by_cluster = pl.concat(clusters, how="diagonal_relaxed")
    by_category = pl.concat(cats, how="diagonal_relaxed")
    by_week = pl.concat(weeks, how="diagonal_relaxed")
    kpi_cols = [c for c in runs.columns if c not in ("policy", "seed")]
    summ = []
    for policy in runs["policy"].unique(maintain_order=True).to_list():
        sub = runs.filter(pl.col("policy") == policy)
        for kpi in kpi_cols:
            vals = [float(v) if v is not None else math.nan for v in sub[kpi].to_list()]
            m, lo, hi = confidence_interval(vals)
            summ.append(
                {
                    "policy": policy,
                    "kpi": kpi,
                    "mean": m,
                    "ci_low": lo,
                    "ci_high": hi,
                    "n_seeds": int(np.isfinite(vals).sum()),
                }
            )
    summary = pl.DataFrame(summ)
    long = pl.concat(
        [
            _long(runs, "overall", None),
            _long(by_cluster, "cluster", "cluster"),
            _long(by_category, "category", "category"),
            _long(by_week.drop("week_start"), "week", "week"),
        ],
        how="vertical",
    )
    return KpiTables(runs, by_cluster, by_category, by_week, summary, long)


def _long(frame: pl.DataFrame, scope: str, group: str | None) -> pl.DataFrame:
    ids = ["policy", "seed"] + ([group] if group else [])
    vals = [c for c in frame.columns if c not in ids]
    f = frame.with_columns(pl.col(vals).cast(pl.Float64))
    out = f.unpivot(index=ids, on=vals, variable_name="kpi", value_name="value")
    grp = pl.col(group).cast(pl.String) if group else pl.lit("all")
    return out.select(
        pl.lit(scope).alias("scope"),
        grp.alias("group"),
        pl.col("policy").cast(pl.String),
        pl.col("seed").cast(pl.Int64),
        "kpi",
        "value",
    )
