"""Synthetic networks with known ground truth and named scenarios.

``generate(scenario, seed)`` returns a :class:`SyntheticNetwork`: the contract tables a retailer
would have at ``as_of`` and the truth behind them (hidden store segments, size curves, the true
demand rate, initial stock and position). The fashion scenarios (:data:`FASHION_SCENARIOS`) use
the factorised model of :class:`Truth`; the foreign scenarios (:data:`FOREIGN_SCENARIOS`,
:mod:`stocktailor.synth.foreign`) are built with other functional forms and a
:class:`~stocktailor.synth.foreign.ForeignTruth`. See ``docs/synthetic-data.md``.
"""

from __future__ import annotations

from stocktailor.synth._model import DemandFactors, Truth, nb_sample
from stocktailor.synth._network import FASHION_SCENARIOS, SCENARIOS, generate
from stocktailor.synth._posts import PostsTruth, with_posts
from stocktailor.synth._prices import PRICE_PLAN_SCHEMA, StylePrices
from stocktailor.synth._synthetic import SyntheticNetwork
from stocktailor.synth.foreign import FOREIGN_SCENARIOS, ForeignSpec, ForeignTruth

__all__ = [
    "FASHION_SCENARIOS",
    "FOREIGN_SCENARIOS",
    "PRICE_PLAN_SCHEMA",
    "SCENARIOS",
    "DemandFactors",
    "ForeignSpec",
    "ForeignTruth",
    "PostsTruth",
    "StylePrices",
    "SyntheticNetwork",
    "Truth",
    "generate",
    "nb_sample",
    "with_posts",
]
