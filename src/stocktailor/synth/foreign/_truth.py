"""The true demand of a foreign network: a dense rate panel and its own noise and price response.

Unlike the fashion generator's factorised log-linear model, a foreign network keeps its full
``(days, stores, skus)`` rate panel at full price (the networks are small), responds to price
linearly with saturation (``1 + b * (1 - price_factor)``, not a power law) and draws demand as
shopping baskets: a gamma store-day footfall shock shared by every SKU of the store, Poisson
baskets and geometric basket sizes (not a negative binomial per cell).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from stocktailor.contract import Tables
from stocktailor.synth._common import FloatArray, IntArray
from stocktailor.synth._model import pair_index, price_array

__all__ = ["BASKET_MEAN", "SHOCK_CV", "ForeignTruth", "draw_baskets", "price_multiplier"]

BASKET_MEAN = 1.25  # mean units of one SKU in a shopping basket
SHOCK_CV = 0.2  # coefficient of variation of a store-day footfall shock


def price_multiplier(pf: FloatArray, response: FloatArray) -> FloatArray:
    """Demand multiplier at price factor ``pf`` ``(days, skus)``: ``max(0.05, 1 + b (1 - pf))``."""
    out: FloatArray = np.maximum(0.05, 1.0 + response[None, :] * (1.0 - pf))
    return out


def draw_baskets(
    mu: FloatArray, rng: np.random.Generator, shock: FloatArray | None = None
) -> IntArray:
    """Units bought when ``mu`` units are expected: Poisson baskets of geometric size.

    Parameters
    ----------
    mu
        Expected units (any shape, >= 0).
    rng
        Random generator.
    shock
        Multiplier of ``mu`` (broadcast), e.g. a store-day footfall shock; mean 1.

    Returns
    -------
    numpy.ndarray
        Int64 units, the shape of ``mu``; the mean is ``mu * shock``.
    """
    m = np.asarray(mu, dtype=np.float64)
    if m.size and (not np.all(np.isfinite(m)) or float(m.min()) < 0):
        msg = "rate must be finite and >= 0"
        raise ValueError(msg)
    if shock is not None:
        m = m * shock
    baskets = rng.poisson(m / BASKET_MEAN).astype(np.int64)
    out = baskets.copy()
    pos = baskets > 0
    if pos.any():
        out[pos] += rng.negative_binomial(baskets[pos], 1.0 / BASKET_MEAN)
    return out


def store_shock(n: int, rng: np.random.Generator) -> FloatArray:
    """``(n,)`` gamma footfall shocks with mean 1 and coefficient of variation SHOCK_CV."""
    k = 1.0 / SHOCK_CV**2
    out: FloatArray = rng.gamma(k, 1.0 / k, size=n)
    return out


@dataclass(frozen=True)
class ForeignTruth:
    """Ground truth of a foreign network (the same public members as ``synth.Truth``).

    Attributes
    ----------
    store_ids, skus
        Axis order of every array (selling stores; products order).
    segments
        ``store_id, segment`` (foreign segments: trend-led, office, family, outdoor).
    size_curves
        ``store_id, size_group, size, share``: each store's own size profile.
    position, initial_stock
        ``store_id, sku, on_hand`` at ``as_of`` and ``store_id, sku, units`` at season start
        (the distribution centre included).
    products
        ``sku, price_response, style_group, weather_class, lifecycle, trended``.
    stores
        ``store_id, segment, traffic`` and the store's true style-group mix (``mix_*``).
    dispersion
        Negative-binomial size whose daily variance matches the true draws' at the median
        ranged daily rate (an approximation for consumers that need one number).
    season_tables
        The tables with the whole window's signals.
    start
        Day 0 of ``rate``.
    rate
        ``(days, stores, skus)`` true mean units per day at full price (0 where not ranged).
    price_response
        ``(skus,)`` linear price response ``b``.
    trend_lead_days, return_rate
        The scenario's trend lead and the share of sold units returned.
    """

    store_ids: list[str]
    skus: list[str]
    segments: pl.DataFrame
    size_curves: pl.DataFrame
    position: pl.DataFrame
    initial_stock: pl.DataFrame
    products: pl.DataFrame
    stores: pl.DataFrame
    dispersion: float
    season_tables: Tables
    start: dt.date
    rate: FloatArray
    price_response: FloatArray
    trend_lead_days: int
    return_rate: float

    def _window(self, start: dt.date, end: dt.date) -> tuple[int, int]:
        n = self.rate.shape[0]
        t0, t1 = (start - self.start).days, (end - self.start).days
        last = self.start + dt.timedelta(days=n - 1)
        for day, t in ((start, t0), (end, t1)):
            if not 0 <= t < n:
                msg = f"date {day} is outside the simulated season {self.start}..{last}"
                raise ValueError(msg)
        if t1 < t0:
            msg = f"end {end} is before start {start}"
            raise ValueError(msg)
        return t0, t1

    @property
    def window_end(self) -> dt.date:
        """The last day with a true demand rate."""
        return self.start + dt.timedelta(days=int(self.rate.shape[0]) - 1)

    def demand_cells(self) -> int:
        """Ranged store x SKU x day cells of the window (size of :meth:`demand_frame`)."""
        return int((self.rate.max(axis=0) > 0).sum()) * int(self.rate.shape[0])

    def expected_demand(
        self, start: dt.date, end: dt.date, price_factor: npt.ArrayLike | None = None
    ) -> FloatArray:
        """True mean demand, units per day, ``(days, stores, skus)`` for ``[start, end]``.

        ``price_factor`` (price paid / full price): scalar, ``(days,)`` or ``(days, skus)``;
        default full price. Demand scales with ``max(0.05, 1 + b (1 - factor))``.
        """
        t0, t1 = self._window(start, end)
        out = self.rate[t0 : t1 + 1].copy()
        pf = price_array(price_factor, t1 - t0 + 1, len(self.skus))
        if pf is not None:
            out *= price_multiplier(pf, self.price_response)[:, None, :]
        return out

    def expected_demand_pairs(
        self,
        start: dt.date,
        end: dt.date,
        store_idx: npt.ArrayLike,
        sku_idx: npt.ArrayLike,
        price_factor: npt.ArrayLike | None = None,
    ) -> FloatArray:
        """True mean demand, units per day, ``(days, pairs)`` for (store, SKU) index pairs."""
        ps, pk = pair_index(store_idx, sku_idx)
        t0, t1 = self._window(start, end)
        out: FloatArray = self.rate[t0 : t1 + 1][:, ps, pk]
        pf = price_array(price_factor, t1 - t0 + 1, len(self.skus))
        if pf is not None:
            out = out * price_multiplier(pf, self.price_response)[:, pk]
        return out

    def demand_frame(self, start: dt.date, end: dt.date) -> pl.DataFrame:
        """True mean demand at full price, long ``date, store_id, sku, rate`` (ranged cells)."""
        t0, t1 = self._window(start, end)
        ps, pk = np.nonzero(self.rate.max(axis=0) > 0)
        n = t1 - t0 + 1
        days = np.repeat(
            np.arange(t0, t1 + 1) + (self.start - dt.date(1970, 1, 1)).days, len(ps)
        ).astype("datetime64[D]")
        return pl.DataFrame(
            {
                "date": pl.Series(days).cast(pl.Date),
                "store_id": pl.Series(self.store_ids, dtype=pl.String).gather(np.tile(ps, n)),
                "sku": pl.Series(self.skus, dtype=pl.String).gather(np.tile(pk, n)),
                "rate": self.rate[t0 : t1 + 1][:, ps, pk].ravel(),
            }
        )

    def sample_demand(self, rate: npt.ArrayLike, rng: np.random.Generator) -> IntArray:
        """Draws around ``rate`` (``(..., stores, skus)``): one footfall shock per store-day."""
        mu = np.asarray(rate, dtype=np.float64)
        shock = None
        if mu.ndim >= 2:
            k = 1.0 / SHOCK_CV**2
            shock = rng.gamma(k, 1.0 / k, size=mu.shape[:-1])[..., None]
        return draw_baskets(mu, rng, shock)


def effective_dispersion(rate: FloatArray) -> float:
    """NB size ``r`` matching the basket draws' daily variance at the median ranged rate.

    Basket draws have variance ``mu (2 BASKET_MEAN - 1) + mu^2 SHOCK_CV^2``; a negative
    binomial ``mu + mu^2 / r``.
    """
    pos = rate[rate > 0]
    mu = float(np.median(pos)) if pos.size else 1.0
    return mu / (2.0 * BASKET_MEAN - 2.0 + mu * SHOCK_CV**2)
