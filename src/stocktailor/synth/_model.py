"""The true demand model of a synthetic network, kept factorised.

The true mean demand of store ``s`` for SKU ``k`` on day ``t`` (units per day) is

    rate[t, s, k] = base[k] * scale[s] * size_share[s, k] * carried[s, k]
                    * affinity[segment[t, s], group[k]] * weather[t, s, wclass[k]]
                    * trend[t, s, tag[k]] * daily[t, s] * lifecycle[t, style[k]]
                    * price_factor[t, k] ** -elasticity[k]

so only store factors, SKU factors and per-day (store x response-group) multipliers are stored;
a dense ``(days, stores, skus)`` panel is only built for the window a caller asks for.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt
import polars as pl

from stocktailor.contract import Tables
from stocktailor.synth._common import TREND_LEAD_DAYS

__all__ = ["DemandFactors", "Truth", "nb_sample", "pair_index", "price_array"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def nb_sample(mu: FloatArray, r: float, rng: np.random.Generator) -> IntArray:
    """Draw negative-binomial counts with mean ``mu`` and size ``r`` (var = mu + mu^2 / r).

    Inverse-CDF sampling with one uniform per cell: most cells of a store x SKU day have a
    small mean, so almost all resolve at zero and only the rest iterate the pmf recurrence.

    Parameters
    ----------
    mu
        Mean units per cell (any shape, >= 0).
    r
        Negative-binomial size parameter (> 0).
    rng
        Random generator (one uniform is drawn per cell, in C order).

    Returns
    -------
    numpy.ndarray
        Int64 counts, the shape of ``mu``.
    """
    if r <= 0:
        msg = f"dispersion r must be > 0, got {r}"
        raise ValueError(msg)
    m = np.asarray(mu, dtype=np.float64)
    if m.size and (not np.all(np.isfinite(m)) or float(m.min()) < 0):
        msg = "rate must be finite and >= 0"
        raise ValueError(msg)
    flat = m.ravel()
    out = np.zeros(flat.shape, dtype=np.int64)
    u = rng.random(flat.shape)
    q = flat / (flat + r)
    p0 = np.exp(r * np.log1p(-q))
    idx = np.flatnonzero(u > p0)
    if idx.size:
        uu = u[idx]
        qq = q[idx]
        pk = p0[idx]
        cdf = pk.copy()
        k = 0
        while idx.size and k < 2000:
            pk = pk * ((k + r) / (k + 1)) * qq
            k += 1
            cdf = cdf + pk
            done = uu <= cdf
            out[idx[done]] = k
            keep = ~done
            idx, uu, qq, pk, cdf = idx[keep], uu[keep], qq[keep], pk[keep], cdf[keep]
        if idx.size:  # numerically unresolved tail: fall back to a direct draw
            out[idx] = rng.negative_binomial(r, 1.0 - qq)
    return out.reshape(m.shape)


def price_array(price_factor: npt.ArrayLike | None, n_days: int, n_skus: int) -> FloatArray | None:
    """A price factor argument as a ``(days, skus)`` array (None stays None).

    Accepts a scalar, ``(days,)`` or ``(days, skus)``; ValueError for another shape or a
    factor that is not finite and positive.
    """
    if price_factor is None:
        return None
    pf = np.asarray(price_factor, dtype=np.float64)
    if pf.ndim == 0:
        pf = np.full((n_days, n_skus), float(pf))
    elif pf.ndim == 1:
        if pf.shape[0] != n_days:
            msg = f"price_factor has {pf.shape[0]} days, expected {n_days}"
            raise ValueError(msg)
        pf = np.repeat(pf[:, None], n_skus, axis=1)
    elif pf.ndim == 2:
        if pf.shape != (n_days, n_skus):
            msg = f"price_factor has shape {pf.shape}, expected ({n_days}, {n_skus})"
            raise ValueError(msg)
    else:
        msg = f"price_factor must be (days,) or (days, skus), got ndim {pf.ndim}"
        raise ValueError(msg)
    if not np.all(np.isfinite(pf)) or float(pf.min(initial=1.0)) <= 0:
        msg = "price_factor must be finite and > 0"
        raise ValueError(msg)
    return pf


def pair_index(store_idx: npt.ArrayLike, sku_idx: npt.ArrayLike) -> tuple[IntArray, IntArray]:
    """(store, SKU) index pairs as two int64 arrays; ValueError unless 1-d of equal length."""
    ps = np.asarray(store_idx, dtype=np.int64)
    pk = np.asarray(sku_idx, dtype=np.int64)
    if ps.shape != pk.shape or ps.ndim != 1:
        msg = f"store_idx and sku_idx must be 1-d of equal length, got {ps.shape}, {pk.shape}"
        raise ValueError(msg)
    return ps, pk


@dataclass(frozen=True)
class DemandFactors:
    """Factors of the true demand rate (see the module docstring).

    Day axes start at ``start`` and have ``n_days`` entries (the whole season).
    """

    start: dt.date
    n_days: int
    store_scale: FloatArray  # (S,) relative store size of demand
    seg_day: IntArray  # (T, S) segment index per day (changes when a store switches)
    affinity: FloatArray  # (n_segments, n_groups)
    weather_mult: FloatArray  # (T, S, n_weather_classes)
    trend_mult: FloatArray  # (T, S, n_tags + 1); column 0 is "no trend tag" (1.0)
    daily: FloatArray  # (T, S) weekday pattern x events x economy x rain footfall
    combo_group: IntArray  # (C,) style group of each response combination
    combo_weather: IntArray  # (C,) weather class of each combination
    combo_tag: IntArray  # (C,) trend column of each combination
    sku_combo: IntArray  # (K,)
    sku_base: FloatArray  # (K,) units per day in an average store, before the size share
    sku_sizekey: IntArray  # (K,) column of size_eff
    size_eff: FloatArray  # (S, n_sizekeys) size share within the SKU's offered size run
    sku_sc: IntArray  # (K,) style-colour index
    carried: BoolArray  # (S, n_style_colours) the store ranges the style-colour
    sku_style: IntArray  # (K,)
    lifecycle: FloatArray  # (T, n_styles)
    elasticity: FloatArray  # (K,) price elasticity (> 0)

    @property
    def n_stores(self) -> int:
        return int(self.store_scale.shape[0])

    @property
    def n_skus(self) -> int:
        return int(self.sku_base.shape[0])

    def day_index(self, day: dt.date) -> int:
        """Index of ``day`` on the day axis (ValueError outside the season)."""
        t = (day - self.start).days
        if not 0 <= t < self.n_days:
            end = self.start + dt.timedelta(days=self.n_days - 1)
            msg = f"date {day} is outside the simulated season {self.start}..{end}"
            raise ValueError(msg)
        return t

    def combo_mult(self, t: int) -> FloatArray:
        """(S, C) multiplier of every store and response combination on day ``t``."""
        aff = self.affinity[self.seg_day[t]]  # (S, n_groups)
        out: FloatArray = (
            aff[:, self.combo_group]
            * self.weather_mult[t][:, self.combo_weather]
            * self.trend_mult[t][:, self.combo_tag]
            * self.daily[t][:, None]
        )
        return out

    def static_pairs(self, ps: IntArray, pk: IntArray) -> FloatArray:
        """Time-invariant part of the rate for (store, sku) index pairs."""
        out: FloatArray = (
            self.sku_base[pk]
            * self.store_scale[ps]
            * self.size_eff[ps, self.sku_sizekey[pk]]
            * self.carried[ps, self.sku_sc[pk]]
        )
        return out

    def static_dense(self) -> FloatArray:
        """(S, K) time-invariant part of the rate (dense; one store x SKU matrix, cached)."""
        return self._static_dense

    @cached_property
    def _static_dense(self) -> FloatArray:
        out: FloatArray = (
            self.sku_base[None, :]
            * self.store_scale[:, None]
            * self.size_eff[:, self.sku_sizekey]
            * self.carried[:, self.sku_sc]
        )
        return out

    def pair_rates(
        self, t: int, ps: IntArray, pk: IntArray, static: FloatArray, price_factor: float = 1.0
    ) -> FloatArray:
        """True mean units on day ``t`` for (store, sku) pairs whose static part is given."""
        cm = self.combo_mult(t)
        mu: FloatArray = static * cm[ps, self.sku_combo[pk]] * self.lifecycle[t, self.sku_style[pk]]
        if price_factor != 1.0:
            mu = mu * np.power(price_factor, -self.elasticity[pk])
        return mu


@dataclass(frozen=True)
class Truth:
    """Ground truth of a synthetic network.

    Attributes
    ----------
    store_ids, skus
        Axis order of every array (selling stores only; the warehouse is excluded).
    segments
        ``store_id, segment`` (+ ``segment_after, switch_date`` when stores switch segment).
    size_curves
        ``store_id, size_group, size, share``: true share of each size in a store's demand for
        a style offering the whole size ladder of the group.
    position
        ``store_id, sku, on_hand`` at ``as_of`` (incl. the warehouse).
    initial_stock
        ``store_id, sku, units`` at season start (incl. the warehouse).
    products
        ``sku, elasticity`` and the true SKU factors (base rate, style group, weather class,
        trend tag, colour share).
    dispersion
        Negative-binomial size parameter ``r`` (var = mu + mu^2 / r) of daily demand.
    season_tables
        The same network's tables with the signals for the whole season (weather actuals to
        season end, all events, trends, economy); sales and inventory as of ``as_of``.
    factors
        The factorised demand model behind :meth:`expected_demand`.
    stores
        Hidden store factors: ``store_id, segment, scale, size_shift, trend_sensitivity``.
    """

    store_ids: list[str]
    skus: list[str]
    segments: pl.DataFrame
    size_curves: pl.DataFrame
    position: pl.DataFrame
    initial_stock: pl.DataFrame
    products: pl.DataFrame
    dispersion: float
    season_tables: Tables
    factors: DemandFactors
    stores: pl.DataFrame

    @property
    def trend_lead_days(self) -> int:
        """Days by which the trend index leads true demand."""
        return TREND_LEAD_DAYS

    @property
    def window_end(self) -> dt.date:
        """The last day with a true demand rate."""
        return self.factors.start + dt.timedelta(days=self.factors.n_days - 1)

    def demand_cells(self) -> int:
        """Ranged store x SKU x day cells of the whole season (size of :meth:`demand_frame`)."""
        f = self.factors
        return int(f.carried[:, f.sku_sc].sum()) * f.n_days

    def expected_demand(
        self,
        start: dt.date,
        end: dt.date,
        price_factor: npt.ArrayLike | None = None,
    ) -> FloatArray:
        """True mean demand, units per day, for every day in ``[start, end]``.

        Parameters
        ----------
        start, end
            Inclusive date window inside the season.
        price_factor
            Price paid / full price, per day ``(days,)`` or per day and SKU ``(days, skus)``
            (or a scalar); default full price. Demand scales with ``factor ** -elasticity``.

        Returns
        -------
        numpy.ndarray
            ``(days, stores, skus)`` float64 in the axis order of ``store_ids`` / ``skus``.
        """
        f = self.factors
        t0, t1 = f.day_index(start), f.day_index(end)
        if t1 < t0:
            msg = f"end {end} is before start {start}"
            raise ValueError(msg)
        n = t1 - t0 + 1
        pf = price_array(price_factor, n, self.factors.n_skus)
        static = f.static_dense()
        out = np.empty((n, f.n_stores, f.n_skus), dtype=np.float64)
        for i in range(n):
            t = t0 + i
            day = out[i]
            np.take(f.combo_mult(t), f.sku_combo, axis=1, out=day)
            day *= static
            sku_mult = f.lifecycle[t, f.sku_style]
            if pf is not None:
                sku_mult = sku_mult * np.power(pf[i], -f.elasticity)
            day *= sku_mult[None, :]
        return out

    def expected_demand_pairs(
        self,
        start: dt.date,
        end: dt.date,
        store_idx: npt.ArrayLike,
        sku_idx: npt.ArrayLike,
        price_factor: npt.ArrayLike | None = None,
    ) -> FloatArray:
        """True mean demand, units per day, for (store, SKU) index pairs only.

        The sparse counterpart of :meth:`expected_demand` for large networks.

        Parameters
        ----------
        start, end
            Inclusive date window inside the season.
        store_idx, sku_idx
            Equal-length integer positions in ``store_ids`` and ``skus``.
        price_factor
            As in :meth:`expected_demand`: scalar, ``(days,)`` or ``(days, skus)``.

        Returns
        -------
        numpy.ndarray
            ``(days, pairs)`` float64.
        """
        f = self.factors
        t0, t1 = f.day_index(start), f.day_index(end)
        if t1 < t0:
            msg = f"end {end} is before start {start}"
            raise ValueError(msg)
        ps, pk = pair_index(store_idx, sku_idx)
        n = t1 - t0 + 1
        pf = price_array(price_factor, n, self.factors.n_skus)
        static = f.static_pairs(ps, pk)
        out = np.empty((n, ps.size), dtype=np.float64)
        for i in range(n):
            out[i] = f.pair_rates(t0 + i, ps, pk, static)
            if pf is not None:
                out[i] *= np.power(pf[i][pk], -f.elasticity[pk])
        return out

    def demand_frame(self, start: dt.date, end: dt.date) -> pl.DataFrame:
        """True mean demand at full price as a long frame ``date, store_id, sku, rate``.

        Only cells the store ranges (rate > 0) are listed. Units per day.
        """
        f = self.factors
        t0, t1 = f.day_index(start), f.day_index(end)
        static = f.static_dense()
        ps, pk = np.nonzero(static > 0)
        st = static[ps, pk]
        stores = pl.Series("store_id", self.store_ids, dtype=pl.String)
        skus = pl.Series("sku", self.skus, dtype=pl.String)
        frames = []
        for t in range(t0, t1 + 1):
            rate = f.pair_rates(t, ps, pk, st)
            day = np.datetime64(f.start + dt.timedelta(days=t), "D")
            frames.append(
                pl.DataFrame(
                    {
                        "date": pl.Series(np.full(len(ps), day)).cast(pl.Date),
                        "store_id": stores.gather(ps),
                        "sku": skus.gather(pk),
                        "rate": rate,
                    }
                )
            )
        if not frames:
            return pl.DataFrame(
                schema={
                    "date": pl.Date,
                    "store_id": pl.String,
                    "sku": pl.String,
                    "rate": pl.Float64,
                }
            )
        return pl.concat(frames)

    def sample_demand(self, rate: npt.ArrayLike, rng: np.random.Generator) -> IntArray:
        """Negative-binomial draws (int64, shape of ``rate``) with this truth's dispersion."""
        return nb_sample(np.asarray(rate, dtype=np.float64), self.dispersion, rng)
