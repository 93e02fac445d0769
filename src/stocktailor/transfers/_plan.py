"""Entry points from tables and a forecast: the joint plan and its two halves."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from stocktailor.config import Settings
from stocktailor.contract import Tables
from stocktailor.engine import Engine
from stocktailor.transfers._build import build_instance, lane_premium_matrix, resplit_sizes
from stocktailor.transfers._frame import plan_frames
from stocktailor.transfers._instance import TransferInstance
from stocktailor.transfers._solve import TransferSolution, solve_instance

__all__ = [
    "NetworkPlan",
    "plan_network",
    "plan_transfers",
    "solve_transfers",
    "summarise_transfers",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NetworkPlan:
    """One joint plan: warehouse-to-store and store-to-store lines from one optimisation.

    Attributes
    ----------
    instance, solution
        The array problem and its solution (instance index space).
    allocation
        Warehouse-to-store lines (allocation.csv columns + context).
    transfers
        Store-to-store lines (transfers.csv columns + context).
    """

    instance: TransferInstance
    solution: TransferSolution
    allocation: pl.DataFrame
    transfers: pl.DataFrame

    @property
    def objective(self) -> float:
        """The plan's expected value against no moves after costs, currency."""
        return self.solution.objective


def solve_transfers(
    tables: Tables,
    as_of: dt.date,
    forecast: pl.DataFrame | pl.LazyFrame,
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    method: str | None = None,
    progress: Callable[[int], None] | None = None,
    warehouses: bool | None = None,
    lane_premiums: pl.DataFrame | None = None,
) -> tuple[TransferInstance, TransferSolution]:
    """Build the instance and solve it; returns both (the solution is in instance indices).

    ``lane_premiums`` (``from_id, to_id, premium``, currency per shipment) is added to those
    lanes' fixed costs while the plan is chosen (see :func:`solve_instance`).
    """
    settings = settings or Settings()
    inst = build_instance(tables, as_of, forecast, settings, warehouses=warehouses)
    premium = lane_premium_matrix(inst.store_ids, lane_premiums)
    sol = solve_instance(
        inst, settings, engine=engine, method=method, progress=progress, lane_premium=premium
    )
    return inst, sol


def plan_network(
    tables: Tables,
    as_of: dt.date,
    forecast: pl.DataFrame | pl.LazyFrame,
    settings: Settings | None = None,
    *,
    clusters: pl.DataFrame | None = None,
    size_curves: pl.DataFrame | None = None,
    engine: Engine | None = None,
    progress: Callable[[int], None] | None = None,
    method: str | None = None,
    lane_premiums: pl.DataFrame | None = None,
    instance: TransferInstance | None = None,
) -> NetworkPlan:
    """The joint plan for ``as_of``: warehouse stock and store stock in one optimisation.

    Parameters
    ----------
    tables
        Validated tables (stores with their kind, products, sales, inventory; lanes and
        assortment if present).
    as_of
        Plan date; positions at its end, shipments leave the next day.
    forecast
        ``store_id, sku, week_start, mean, var`` weekly demand (units per week); a LazyFrame
        (a scan of a forecast written in parts) is read without loading it whole.
    settings
        Economics, constraints and solver settings (``solver.joint_warehouse`` False plans
        store-to-store moves only).
    clusters, size_curves
        With ``size_curves`` (``SizeCurveEstimator.curves_``) each store's style-colour demand
        is re-split over sizes with the store's curve (else its cluster's from ``clusters``,
        else the network's) before planning.
    engine
        Where per-style partitions run.
    lane_premiums
        ``from_id, to_id, premium``: currency per shipment added to those lanes' fixed costs
        while the plan is chosen (lanes planners keep rejecting), so such a lane carries lines
        only when together they clear the premium too; the lines report the real lane costs.
    instance
        The array problem when already built (:func:`build_instance` of these tables, date,
        forecast and settings): only products and stores are then read from ``tables``, so a
        caller may drop the sales and inventory before the solve (1.5 GB of resident memory
        at 1,000 stores x 20,000 SKU-sizes).

    Returns
    -------
    NetworkPlan
        Every line has ``net_benefit > 0``: its marginal value given every other line of the
        plan. No store both receives and ships a SKU.
    """
    settings = settings or Settings()
    if instance is None:
        fc: pl.LazyFrame = forecast.lazy()
        if size_curves is not None:
            fc = resplit_sizes(fc, tables.products, size_curves, clusters)
        inst, sol = solve_transfers(
            tables,
            as_of,
            fc,
            settings,
            engine=engine,
            progress=progress,
            method=method,
            lane_premiums=lane_premiums,
        )
    else:
        inst = instance
        premium = lane_premium_matrix(inst.store_ids, lane_premiums)
        sol = solve_instance(
            inst, settings, engine=engine, method=method, progress=progress, lane_premium=premium
        )
    allocation, transfers = plan_frames(
        inst, sol, as_of, tables.products, tables.stores, currency=settings.economics.currency
    )
    logger.info(
        "plan: %d allocation lines, %d transfer lines, objective %.2f",
        allocation.height,
        transfers.height,
        sol.objective,
    )
    return NetworkPlan(inst, sol, allocation, transfers)


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
    """Store-to-store transfers for ``as_of``: the transfer lines of :func:`plan_network`.

    The warehouses' stock is planned in the same optimisation (unless
    ``solver.joint_warehouse`` is off), so these lines assume the plan's allocation lines ship
    too. ``clusters`` is accepted for interface symmetry.

    Returns
    -------
    polars.DataFrame
        The transfers.csv columns (+ ``gain_p10, gain_p90`` and the context columns), one row
        per line, every ``net_benefit > 0``, sorted by net benefit (descending).
    """
    _ = clusters
    plan = plan_network(tables, as_of, forecast, settings, engine=engine, progress=progress)
    return plan.transfers


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
