"""Season simulator, policies, KPIs and the backtest.

See ``docs/simulation.md``. The pieces:

- :func:`simulate` runs one season of a network under one policy (``core``);
- :class:`PolicyView` is what a policy sees on a decision day (``view``);
- :class:`Policy`, :class:`Decisions` and the built-in policies ``none``, ``rule``,
  ``stocktailor`` and ``oracle`` (``policies``);
- :func:`kpis` turns runs into KPI frames (``kpis``);
- :func:`backtest` runs scenarios x seeds x policies and writes the report (``backtest``).
"""

from __future__ import annotations

from stocktailor.simulate.core import (
    SeasonNetwork,
    SeasonTruth,
    SimResult,
    SimSpace,
    build_space,
    markdown_factors,
    simulate,
)
from stocktailor.simulate.policies import (
    POLICIES,
    Decisions,
    NonePolicy,
    OraclePolicy,
    Policy,
    RulePolicy,
    StocktailorPolicy,
    make_policy,
    register_policy,
)
from stocktailor.simulate.view import PolicyView

__all__ = [
    "POLICIES",
    "Decisions",
    "NonePolicy",
    "OraclePolicy",
    "Policy",
    "PolicyView",
    "RulePolicy",
    "SeasonNetwork",
    "SeasonTruth",
    "SimResult",
    "SimSpace",
    "StocktailorPolicy",
    "build_space",
    "make_policy",
    "markdown_factors",
    "register_policy",
    "simulate",
]
