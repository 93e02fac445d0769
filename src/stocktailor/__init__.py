"""stocktailor: the right inventory in the right store at the right time.

The public API. Names are imported lazily so ``import stocktailor`` stays fast and a CLI
command loads only the libraries it needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "Settings": "stocktailor.config",
    "load_settings": "stocktailor.config",
    "Tables": "stocktailor.contract",
    "ContractError": "stocktailor.contract",
    "validate_tables": "stocktailor.contract",
    "Workspace": "stocktailor.workspace",
    "read_data_folder": "stocktailor.workspace",
    "generate": "stocktailor.synth",
    "SyntheticNetwork": "stocktailor.synth",
    "StoreClusterer": "stocktailor.clustering",
    "DemandModel": "stocktailor.demand",
    "forecast": "stocktailor.demand",
    "SizeCurveEstimator": "stocktailor.sizecurves",
    "plan_transfers": "stocktailor.transfers",
    "allocate": "stocktailor.allocation",
    "PlanResult": "stocktailor.plan",
    "run_plan": "stocktailor.plan",
    "simulate_season": "stocktailor.simulate",
    "backtest": "stocktailor.simulate.backtest",
    "make_engine": "stocktailor.engine",
    "LocalEngine": "stocktailor.engine",
    "DaskEngine": "stocktailor.engine",
}

__all__ = [
    "ContractError",
    "DaskEngine",
    "DemandModel",
    "LocalEngine",
    "PlanResult",
    "Settings",
    "SizeCurveEstimator",
    "StoreClusterer",
    "SyntheticNetwork",
    "Tables",
    "Workspace",
    "__version__",
    "allocate",
    "backtest",
    "forecast",
    "generate",
    "load_settings",
    "make_engine",
    "plan_transfers",
    "read_data_folder",
    "run_plan",
    "simulate_season",
    "validate_tables",
]

if TYPE_CHECKING:
    from stocktailor.allocation import allocate
    from stocktailor.clustering import StoreClusterer
    from stocktailor.config import Settings, load_settings
    from stocktailor.contract import ContractError, Tables, validate_tables
    from stocktailor.demand import DemandModel, forecast
    from stocktailor.engine import DaskEngine, LocalEngine, make_engine
    from stocktailor.plan import PlanResult, run_plan
    from stocktailor.simulate import simulate_season
    from stocktailor.simulate.backtest import backtest
    from stocktailor.sizecurves import SizeCurveEstimator
    from stocktailor.synth import SyntheticNetwork, generate
    from stocktailor.transfers import plan_transfers
    from stocktailor.workspace import Workspace, read_data_folder


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        msg = f"module 'stocktailor' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
