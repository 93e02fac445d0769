"""Censored sales: reconstruct stock, flag stocked-out days, estimate the demand behind them.

Sales are ``min(demand, stock)``: a store that sold out is not a store without customers.
This package rebuilds the stock a store had each day from inventory snapshots and sales
(:mod:`~stocktailor.censoring.stock`, back-casting stock before the first snapshot:
:mod:`~stocktailor.censoring.anchors`), marks the days on which sales were capped by stock, and
estimates the demand rate with a censored Poisson likelihood whose prior pools the in-stock
rate of the store's cluster (:mod:`~stocktailor.censoring.rates`,
:mod:`~stocktailor.censoring.pooled`). Every demand reader sees sales through the
non-negative daily net-demand view of :mod:`~stocktailor.censoring.netdemand` (returns
netted within the day, surplus returns dropped and counted as a return rate).

Conventions
-----------
An inventory snapshot on date ``s`` is the closing position of that day (after its sales).
The opening stock of day ``d`` is the last snapshot before ``d`` less the net units sold since.
A day is *censored* when its closing stock is at most ``threshold_units`` (the shelf emptied
during the day, or was empty all day). When the units sold exceed the projected stock, an
unrecorded receipt must have happened: the stock is then unknown and the day is treated as
in stock (``opening_stock`` null, ``censored`` false).
"""

from __future__ import annotations

from stocktailor.censoring.anchors import backcast_pairs, clear_memos
from stocktailor.censoring.netdemand import NetDemand, demand_tables, net_daily_demand
from stocktailor.censoring.pooled import pooled_expected_demand
from stocktailor.censoring.rates import (
    censored_poisson_rate,
    expected_demand_given_at_least,
    flat_sum,
    pair_demand_rates,
    with_cluster_id,
)
from stocktailor.censoring.stock import (
    first_snapshots,
    ranged_pairs,
    reconstruct_stock,
    stock_events,
)
from stocktailor.censoring.velocity import velocity_forecast

__all__ = [
    "NetDemand",
    "backcast_pairs",
    "censored_poisson_rate",
    "clear_memos",
    "demand_tables",
    "expected_demand_given_at_least",
    "first_snapshots",
    "flat_sum",
    "net_daily_demand",
    "pair_demand_rates",
    "pooled_expected_demand",
    "ranged_pairs",
    "reconstruct_stock",
    "stock_events",
    "velocity_forecast",
    "with_cluster_id",
]
