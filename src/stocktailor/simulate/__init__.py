"""Season simulator, policies, KPIs and the backtest.

See ``docs/simulation.md``. The pieces:

- :func:`simulate_season` runs one season of a network under one policy (``season``: the
  arrivals, decisions, customers and salvage steps; ``customers``, ``shipping``, ``space``);
- :class:`PolicyView` is what a policy sees on a decision day (``view``);
- :class:`Policy` and :class:`Decisions` (``decisions``); the built-in policies ``none`` and
  ``rule`` (``baselines``), ``stocktailor`` (``stocktailor_policy``),
  ``same-optimiser-true-demand`` (``true_demand``) and the registry (``policies``);
- :func:`~stocktailor.simulate.kpis.kpis` turns runs into KPI frames (``kpis``);
- :func:`~stocktailor.simulate.backtest.backtest` runs scenarios x seeds x policies and writes
  the report (``backtest``).
"""

from __future__ import annotations

from stocktailor.simulate._types import SeasonNetwork, SeasonTruth, SimResult, SimSpace
from stocktailor.simulate.baselines import HoldPolicy, NonePolicy, RulePolicy
from stocktailor.simulate.decisions import Decisions, Policy
from stocktailor.simulate.policies import POLICIES, make_policy, register_policy
from stocktailor.simulate.season import simulate_season
from stocktailor.simulate.space import build_space, markdown_factors
from stocktailor.simulate.stocktailor_policy import StocktailorPolicy
from stocktailor.simulate.true_demand import SameOptimiserTrueDemandPolicy
from stocktailor.simulate.view import PolicyView

__all__ = [
    "POLICIES",
    "Decisions",
    "HoldPolicy",
    "NonePolicy",
    "Policy",
    "PolicyView",
    "RulePolicy",
    "SameOptimiserTrueDemandPolicy",
    "SeasonNetwork",
    "SeasonTruth",
    "SimResult",
    "SimSpace",
    "StocktailorPolicy",
    "build_space",
    "make_policy",
    "markdown_factors",
    "register_policy",
    "simulate_season",
]
