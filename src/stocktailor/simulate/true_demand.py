"""``same-optimiser-true-demand``: the product's optimiser fed the true demand rates.

Formerly called the "oracle". It is *not* an upper bound: it runs the same heuristic
optimiser, on the same decision calendar (it waits for the same ``min_history_days`` of
history) and with the same work budget as ``stocktailor``, and it knows the true mean demand,
not the draws. It measures the forecast inside one optimiser. The upper bound is ``bound``
(:mod:`stocktailor.simulate.bound`).
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np

from stocktailor.config import Settings
from stocktailor.simulate._types import FloatArray, IntArray, SeasonNetwork
from stocktailor.simulate.optimiser import OptimiserPolicy
from stocktailor.simulate.view import PolicyView

__all__ = ["SameOptimiserTrueDemandPolicy", "true_windows"]


class SameOptimiserTrueDemandPolicy(OptimiserPolicy):
    """The same optimiser fed the true demand rates at the calendar's prices.

    The instance (positions, movable units, lanes, eligibility, capacity, candidate SKUs) is
    built exactly as for ``stocktailor``; only the lead-time and rest-of-season demand windows
    are the truth's (negative binomial: ``var = mu + mu^2 / r`` per day, days independent).
    """

    name = "same-optimiser-true-demand"

    def __init__(self, network: SeasonNetwork, settings: Settings) -> None:
        super().__init__(settings)
        self.network = network
        self.dispersion = float(getattr(network.truth, "dispersion", math.inf))
        self._tot: tuple[FloatArray, FloatArray] | None = None
        self._tot_day = 0

    def ready(self, view: PolicyView) -> bool:
        if not self.settings.simulation.oracle_waits_for_history:
            return True
        return super().ready(view)

    def _totals(self, view: PolicyView) -> tuple[FloatArray, FloatArray]:
        """Sums of the true rate and its square from ``view.day`` to season end, (stores, skus).

        Computed once, then carried forward by subtracting the days that passed.
        """
        n_days = len(view.price_factor)
        i = view.day_index
        if self._tot is None or self._tot_day > i:
            n_s, n_k = view.space.n_stores, len(view.skus)
            m, s2 = np.zeros((n_s, n_k)), np.zeros((n_s, n_k))
            for a in range(i, n_days, 7):
                r = _true_days(self.network, view, a, min(n_days, a + 7))
                m += r.sum(axis=0)
                s2 += (r * r).sum(axis=0)
            self._tot = (m, s2)
        elif self._tot_day < i:
            r = _true_days(self.network, view, self._tot_day, i)
            m = np.maximum(self._tot[0] - r.sum(axis=0), 0.0)
            s2 = np.maximum(self._tot[1] - (r * r).sum(axis=0), 0.0)
            self._tot = (m, s2)
        self._tot_day = i
        return self._tot

    def windows(
        self, view: PolicyView, lead: IntArray, cols: IntArray
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """The truth's lead-time and rest-of-season demand windows (value-weighted).

        As :func:`true_windows`: a store's lead window is its first ``lead`` days from
        ``view.day``, the rest runs to season end; ``var = mean + sum(mu^2) / r``.
        """
        m_tot, s_tot = self._totals(view)
        n_days = len(view.price_factor)
        i = view.day_index
        top = int(lead.max()) if lead.size else 0
        m_lead = np.zeros((lead.size, cols.size))
        s_lead = np.zeros_like(m_lead)
        if top > 0 and i < n_days:
            r = _true_days(self.network, view, i, min(n_days, i + top))[:, :, cols]
            in_lead = np.arange(r.shape[0])[:, None] < lead[None, :]  # (days, stores)
            m_lead = (r * in_lead[:, :, None]).sum(axis=0)
            s_lead = (r * r * in_lead[:, :, None]).sum(axis=0)
        inv = 0.0 if not math.isfinite(self.dispersion) else 1.0 / self.dispersion
        m_rest = np.maximum(m_tot[:, cols] - m_lead, 0.0)
        s_rest = np.maximum(s_tot[:, cols] - s_lead, 0.0)
        return m_lead, m_lead + s_lead * inv, m_rest, m_rest + s_rest * inv


def _true_days(network: SeasonNetwork, view: PolicyView, i0: int, i1: int) -> FloatArray:
    """True rates (days, stores, skus) for season days ``i0..i1-1``, zero after a SKU ends."""
    a = view.season_start + dt.timedelta(days=i0)
    b = view.season_start + dt.timedelta(days=i1 - 1)
    rate = np.asarray(
        network.truth.expected_demand(a, b, price_factor=view.price_factor[i0:i1]),
        dtype=np.float64,
    )
    day_i = np.arange(i0, i1, dtype=np.int64)[:, None]
    selling = day_i <= view.sku_end_index()[None, :]
    weight = selling.astype(np.float64)
    if view.settings.simulation.oracle_value_weighting:
        # the optimiser values every sale at full price: count a markdown sale as the share
        # of a full-price sale's margin over salvage it earns
        price, salvage = view.space.full_price, view.space.salvage_value
        pf = view.price_factor[i0:i1]
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(price > salvage, (pf * price - salvage) / (price - salvage), 1.0)
        weight = weight * np.clip(share, 0.0, 1.0)
    out: FloatArray = rate * weight[:, None, :]
    return out


def true_windows(
    network: SeasonNetwork,
    view: PolicyView,
    rows: IntArray,
    cols: IntArray,
    lead: IntArray,
    dispersion: float,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """True demand during each store's lead time and from arrival to season end.

    Day 0 is ``view.day``; a store's lead window is its first ``lead`` days. Returns
    ``(mean_lead, var_lead, mean_rest, var_rest)`` over ``rows`` x ``cols``, units.
    """
    n_days = len(view.price_factor)
    m_lead = np.zeros((rows.size, cols.size))
    s_lead = np.zeros_like(m_lead)
    m_tot = np.zeros_like(m_lead)
    s_tot = np.zeros_like(m_lead)
    inv = 0.0 if not math.isfinite(dispersion) else 1.0 / dispersion
    i = view.day_index
    while i < n_days:
        j = min(n_days, i + 7)
        r = _true_days(network, view, i, j)[:, rows][:, :, cols]
        m_tot += r.sum(axis=0)
        s_tot += (r * r).sum(axis=0)
        offs = np.arange(i - view.day_index, j - view.day_index)
        in_lead = offs[:, None] < lead[None, :]  # (days, stores)
        if in_lead.any():
            m_lead += (r * in_lead[:, :, None]).sum(axis=0)
            s_lead += (r * r * in_lead[:, :, None]).sum(axis=0)
        i = j
    m_rest = m_tot - m_lead
    s_rest = s_tot - s_lead
    return m_lead, m_lead + s_lead * inv, m_rest, m_rest + s_rest * inv
