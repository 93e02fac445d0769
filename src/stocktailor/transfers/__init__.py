"""Rebalancing: which units move where, and what each line is worth.

The model (issue 5): a unit sold before season end earns its price, a unit left is worth its
salvage value, so the value of holding S units is concave in S and the marginal value of the
k-th unit is ``salvage + (price - salvage) * P(D >= k)``. Warehouses are sources of the same
network (issue 13): warehouse-to-store allocation and store-to-store transfers are one
optimisation per SKU-size, so no store is fed twice for one need nor ships what it receives.
Per SKU-size the problem without fixed lane costs is a min-cost flow with piecewise-linear
concave value (solved exactly with OR-Tools); fixed per-shipment lane costs are shared by all
SKUs of a run, so lanes are chosen network-wide (lane greedy on the volume of all SKUs, then
iterative lane closing with min-cost flow re-solves; HiGHS MIP warm-started from it on small
networks), and constraints that couple SKUs (lanes per store, capacity, budget) or are not
convex (minimum quantity, pack size) are enforced on the chosen lines. Each line's P&L is its
marginal value given every other line of the plan, and is positive.

Entry points: :func:`plan_network` (tables + forecast -> allocation and transfer lines),
:func:`plan_transfers` (its transfer lines), :func:`solve_transfers` (the instance and the
:class:`TransferSolution` detail), :func:`plan_transfers_from_arrays` / :func:`solve_instance`
(array input, e.g. the simulator's true demand), :func:`summarise_transfers`.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from stocktailor.config import Settings
from stocktailor.engine import Engine
from stocktailor.transfers._build import (
    build_instance,
    eligibility_matrix,
    holdback_shares,
    lane_premium_matrix,
    resplit_sizes,
)
from stocktailor.transfers._frame import (
    ALLOCATION_COLUMNS,
    CONTEXT_COLUMNS,
    TRANSFER_COLUMNS,
    plan_frames,
    solution_frame,
)
from stocktailor.transfers._instance import (
    TransferInstance,
    add_warehouses,
    destination_lead_days,
    windows_from_daily_rates,
    with_daily_demand,
)
from stocktailor.transfers._lines import (
    LineSet,
    evaluate_lines,
    fixed_shares,
    line_values,
    plan_value,
)
from stocktailor.transfers._partition import partition_skus
from stocktailor.transfers._plan import (
    NetworkPlan,
    plan_network,
    plan_transfers,
    solve_transfers,
    summarise_transfers,
)
from stocktailor.transfers._recommend import RECOMMENDATION_SCHEMA, summarise_recommendations
from stocktailor.transfers._solve import TransferSolution, solve_instance, transfer_bounds

__all__ = [
    "ALLOCATION_COLUMNS",
    "CONTEXT_COLUMNS",
    "RECOMMENDATION_SCHEMA",
    "TRANSFER_COLUMNS",
    "LineSet",
    "NetworkPlan",
    "TransferInstance",
    "TransferSolution",
    "add_warehouses",
    "build_instance",
    "destination_lead_days",
    "eligibility_matrix",
    "evaluate_lines",
    "fixed_shares",
    "holdback_shares",
    "lane_premium_matrix",
    "line_values",
    "partition_skus",
    "plan_frames",
    "plan_network",
    "plan_transfers",
    "plan_transfers_from_arrays",
    "plan_value",
    "resplit_sizes",
    "solution_frame",
    "solve_instance",
    "solve_transfers",
    "summarise_recommendations",
    "summarise_transfers",
    "transfer_bounds",
    "windows_from_daily_rates",
    "with_daily_demand",
]


def plan_transfers_from_arrays(
    inst: TransferInstance,
    as_of: dt.date,
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    products: pl.DataFrame | None = None,
    stores: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, TransferSolution]:
    """Plan from an array instance (e.g. built with the generator's true demand).

    Build ``inst`` with :func:`windows_from_daily_rates` (lead-time and rest-of-season demand
    from daily rates, per store lead times from :func:`destination_lead_days`); add warehouses
    with :func:`add_warehouses` for the joint plan. Returns the store-to-store lines and the
    solution detail (:func:`plan_frames` gives the allocation lines too).
    """
    sol = solve_instance(inst, settings, engine=engine)
    return solution_frame(inst, sol, as_of, products, stores), sol
