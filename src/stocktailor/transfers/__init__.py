"""Store-to-store rebalancing: which units move where, and what each line is worth.

The model (issue 5): a unit sold before season end earns its price, a unit left is worth its
salvage value, so the value of holding S units is concave in S and the marginal value of the
k-th unit is ``salvage + (price - salvage) * P(D >= k)``. Per SKU-size the problem without
fixed lane costs is a min-cost flow with piecewise-linear concave value (solved exactly with
OR-Tools); fixed per-shipment lane costs are shared by all SKUs of a run, so lanes are chosen
network-wide (lane greedy on the volume of all SKUs, then iterative lane closing with min-cost
flow re-solves; HiGHS MIP warm-started from it on small networks), and constraints that couple
SKUs (lanes per store, capacity, budget) or are not convex (minimum quantity, pack size) are
enforced on the chosen lines, each re-checked for ``net_benefit > 0``.

Entry points: :func:`plan_transfers` (tables + forecast -> transfers.csv frame),
:func:`solve_transfers` (the same with the :class:`TransferSolution` detail),
:func:`plan_transfers_from_arrays` / :func:`solve_instance` (array input, e.g. the simulator's
true demand), :func:`summarise_transfers`.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from stocktailor.config import Settings
from stocktailor.engine import Engine
from stocktailor.transfers._instance import (
    TransferInstance,
    destination_lead_days,
    windows_from_daily_rates,
    with_daily_demand,
)
from stocktailor.transfers._lines import LineSet, evaluate_lines, fixed_shares
from stocktailor.transfers._partition import partition_skus
from stocktailor.transfers._plan import (
    TRANSFER_COLUMNS,
    build_instance,
    eligibility_matrix,
    plan_transfers,
    solution_frame,
    solve_transfers,
    summarise_transfers,
)
from stocktailor.transfers._solve import TransferSolution, solve_instance, transfer_bounds

__all__ = [
    "TRANSFER_COLUMNS",
    "LineSet",
    "TransferInstance",
    "TransferSolution",
    "build_instance",
    "destination_lead_days",
    "eligibility_matrix",
    "evaluate_lines",
    "fixed_shares",
    "partition_skus",
    "plan_transfers",
    "plan_transfers_from_arrays",
    "solution_frame",
    "solve_instance",
    "solve_transfers",
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
    from daily rates, per store lead times from :func:`destination_lead_days`). Returns the
    transfers frame and the solution detail.
    """
    sol = solve_instance(inst, settings, engine=engine)
    return solution_frame(inst, sol, as_of, products, stores), sol
