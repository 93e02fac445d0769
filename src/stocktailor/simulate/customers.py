"""The simulated customers: demand draws (common random numbers) and what they buy.

Demand of day ``d`` is a draw around the true rate at that day's price with a generator seeded
``[seed, stream, d]``, so every policy run on a seed meets the same customers; the draws are
reproducible outside a run (the ``bound`` of :mod:`stocktailor.simulate.bound` reads them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from stocktailor.simulate._types import FloatArray, IntArray, SeasonTruth, SimSpace

__all__ = ["DaySales", "DemandStream", "broken_factor", "sell"]

DEMAND_STREAM = 0x5EA5
BROKEN_STREAM = 0xB50E


class DemandStream:
    """Customers of a season, day by day.

    Parameters
    ----------
    truth
        The network's true demand.
    days
        Every season day.
    price_factor
        Price factor per (day, sku) (the markdown calendar).
    end_index
        Last selling day per SKU, days since season start: later its demand is 0.
    seed
        Seeds the draws.
    """

    def __init__(
        self,
        truth: SeasonTruth,
        days: Sequence[dt.date],
        price_factor: FloatArray,
        end_index: IntArray,
        seed: int,
    ) -> None:
        self.truth = truth
        self.days = list(days)
        self.pf = price_factor
        self.end_index = end_index
        self.seed = seed
        self._chunk: FloatArray | None = None
        self._chunk_start = 0

    def rate(self, d: int) -> FloatArray:
        """True mean demand of day ``d``, units per day, ``(stores, skus)``.

        The truth is read a week at a time from the first day asked for.
        """
        if self._chunk is None or not 0 <= d - self._chunk_start < self._chunk.shape[0]:
            self._chunk_start = d
            last = min(len(self.days) - 1, d + 6)
            self._chunk = np.asarray(
                self.truth.expected_demand(
                    self.days[d], self.days[last], price_factor=self.pf[d : last + 1]
                ),
                dtype=np.float64,
            )
        rate: FloatArray = self._chunk[d - self._chunk_start]
        active = self.end_index >= d
        if not active.all():
            rate = np.where(active[None, :], rate, 0.0)
        return rate

    def draw(self, d: int) -> IntArray:
        """Customers wanting a unit on day ``d``, per (store, sku)."""
        rng = np.random.default_rng([self.seed, DEMAND_STREAM, d])
        return np.asarray(self.truth.sample_demand(self.rate(d), rng), dtype=np.int64)


def broken_factor(space: SimSpace, shelf: IntArray, effect: float) -> FloatArray:
    """Share of demand kept per (store, sku) under the broken-size-run effect."""
    n_groups = int(space.style_index.max()) + 1 if space.style_index.size else 0
    missing_core = (shelf == 0) & space.core_size[None, :]
    counts = np.zeros((shelf.shape[0], n_groups), dtype=np.int64)
    np.add.at(counts.T, space.style_index, missing_core.T.astype(np.int64))
    broken = counts[:, space.style_index] > 0
    out: FloatArray = np.where(broken, 1.0 - effect, 1.0)
    return out


@dataclass(frozen=True)
class DaySales:
    """What one day's customers did.

    Attributes
    ----------
    by_store, by_sku
        ``demand_units, sold_units, sold_full_units, revenue, revenue_full, lost_units,
        lost_value`` per store / per SKU (units, currency).
    sold
        Units sold per (store, sku).
    price
        Price paid per SKU, currency per unit.
    full
        Whether each SKU sold at full price.
    """

    by_store: tuple[np.ndarray, ...]
    by_sku: tuple[np.ndarray, ...]
    sold: IntArray
    price: FloatArray
    full: np.ndarray


def sell(
    space: SimSpace,
    shelf: IntArray,
    demand: IntArray,
    price_factor: FloatArray,
    *,
    seed: int,
    day_index: int,
    broken_effect: float,
) -> DaySales:
    """Customers buy what is on ``shelf`` (modified in place); the rest is a lost sale.

    With ``broken_effect > 0`` a store missing a core size of a style keeps only ``1 -
    effect`` of the demand for the style's sizes (binomial thinning, its own stream).
    """
    if broken_effect > 0.0:
        keep = broken_factor(space, shelf, broken_effect)
        rng_b = np.random.default_rng([seed, BROKEN_STREAM, day_index])
        demand = rng_b.binomial(demand, keep).astype(np.int64)
    sold = np.minimum(demand, shelf)
    shelf -= sold
    lost = demand - sold
    price = space.full_price * price_factor
    full = price_factor >= 1.0
    price_full = np.where(full, price, 0.0)
    sold_k = sold.sum(axis=0)
    lost_k = lost.sum(axis=0)
    by_store = (
        demand.sum(axis=1),
        sold.sum(axis=1),
        sold[:, full].sum(axis=1),
        sold @ price,
        sold @ price_full,
        lost.sum(axis=1),
        lost @ price,
    )
    by_sku = (
        demand.sum(axis=0),
        sold_k,
        np.where(full, sold_k, 0),
        sold_k * price,
        sold_k * price_full,
        lost_k,
        lost_k * price,
    )
    return DaySales(by_store, by_sku, sold, price, full)
