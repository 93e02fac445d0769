"""Demand: censoring-aware store x SKU weekly demand distributions.

The package, one module per concept:

- :mod:`~stocktailor.demand.history`: the prepared history of one as-of date (stock events,
  censored rates, weekly demand grids, prices, signal weeks), built once and handed down;
- :mod:`~stocktailor.demand.features`: origin state and signal features of the global model;
- :mod:`~stocktailor.demand.offsets`: temperature, price and trend effects as log offsets;
- :mod:`~stocktailor.demand.model`: :class:`DemandModel`, the global LightGBM model;
- :mod:`~stocktailor.demand.candidates`: velocity, smoothing and seasonal candidates;
- :mod:`~stocktailor.demand.validation`: holdout truth, scores, choice and calibration;
- :mod:`~stocktailor.demand.forecaster`: :class:`DemandForecaster`, which validates every
  candidate on the workspace's own history and chooses per category x cluster;
- :mod:`~stocktailor.demand.prices`: future price factors;
- :mod:`~stocktailor.demand.distribution`: negative-binomial quantiles and window totals;
- :mod:`~stocktailor.demand.baselines`: statsforecast reference forecasts;
- :mod:`~stocktailor.demand.forecast`: the forecast step (fit, then predict in partitions).
"""

from __future__ import annotations

from stocktailor.demand.baselines import BaselineMethod, baseline_forecast
from stocktailor.demand.distribution import nb_quantiles, prob_at_least, season_demand
from stocktailor.demand.forecast import forecast, forecast_parts
from stocktailor.demand.forecaster import CANDIDATES, DemandForecaster
from stocktailor.demand.history import (
    DemandHistory,
    censored_weekly_demand,
    clear_memos,
    pair_expected_demand,
    prepare_history,
)
from stocktailor.demand.model import SIGNAL_GROUPS, DemandModel
from stocktailor.demand.prices import future_prices, markdown_price_plan
from stocktailor.demand.validation import VALIDATION_COLUMNS, validation_summary

__all__ = [
    "CANDIDATES",
    "FORECAST_COLUMNS",
    "SIGNAL_GROUPS",
    "VALIDATION_COLUMNS",
    "BaselineMethod",
    "DemandForecaster",
    "DemandHistory",
    "DemandModel",
    "baseline_forecast",
    "censored_weekly_demand",
    "clear_memos",
    "forecast",
    "forecast_parts",
    "future_prices",
    "markdown_price_plan",
    "nb_quantiles",
    "pair_expected_demand",
    "prepare_history",
    "prob_at_least",
    "season_demand",
    "validation_summary",
]

FORECAST_COLUMNS = ("store_id", "sku", "week_start", "mean", "var", "p10", "p50", "p90")
