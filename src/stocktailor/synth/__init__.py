"""Synthetic fashion network generator with known ground truth and named scenarios.

``generate(scenario, seed)`` returns a :class:`SyntheticNetwork`: the contract tables a retailer
would have at ``as_of`` and the :class:`Truth` behind them (hidden store segments, size curves,
the factorised true demand rate, initial stock and position). See ``docs/synthetic-data.md``.
"""

from __future__ import annotations

from stocktailor.synth._model import DemandFactors, Truth, nb_sample
from stocktailor.synth._network import SCENARIOS, SyntheticNetwork, generate

__all__ = ["SCENARIOS", "DemandFactors", "SyntheticNetwork", "Truth", "generate", "nb_sample"]
