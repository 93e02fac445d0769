"""Measuring what executed lines earned (issue 15): pure functions over polars frames.

- :mod:`.ledger`: the stock-ledger counterfactual (censored demand re-estimated on the period
  measured) and its intervals, per group of lines;
- :mod:`.holdback`: the randomised-holdback comparison (executed against held-back lines).

See ``docs/measurement.md`` for the design.
"""

from stocktailor.measure.holdback import holdback_estimate, pair_outcomes
from stocktailor.measure.ledger import LEDGER_COLUMNS, Ledger, build_ledger, ledger_uplift

__all__ = [
    "LEDGER_COLUMNS",
    "Ledger",
    "build_ledger",
    "holdback_estimate",
    "ledger_uplift",
    "pair_outcomes",
]
