"""The true rate panel of a foreign network, and the declared price path."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from stocktailor.synth import _data as D
from stocktailor.synth._common import FloatArray
from stocktailor.synth._prices import StylePrices, calendar_factors
from stocktailor.synth.foreign._signals import (
    Trend,
    Weather,
    rain_footfall,
    trend_effect,
    weather_effect,
)
from stocktailor.synth.foreign._spec import ForeignSpec
from stocktailor.synth.foreign._world import Catalogue, Stores, foreign_rng

__all__ = ["CLEARANCE_CALENDAR", "Demand", "build_demand", "declared_prices"]

# The clearance a foreign chain declares: (weeks before season end, price factor).
CLEARANCE_CALENDAR: tuple[tuple[int, float], ...] = ((3, 0.75), (1, 0.5))

_WEEKDAY = {
    "high street": (0.85, 0.85, 0.9, 0.95, 1.15, 1.4, 0.9),
    "mall": (0.75, 0.75, 0.8, 0.85, 1.1, 1.5, 1.25),
    "retail park": (0.7, 0.7, 0.75, 0.8, 1.05, 1.7, 1.3),
    "outlet": (0.65, 0.65, 0.7, 0.8, 1.1, 1.75, 1.45),
}


@dataclass
class Demand:
    """The rate panel and what it was built from."""

    rate: FloatArray  # (T, S, K) units per day at full price
    response: FloatArray  # (K,) linear price response
    lifecycle: FloatArray  # (T, n_styles)
    lifecycle_kind: list[str]  # per style
    base: FloatArray  # (S, K) units per day before time effects


def _lifecycle(
    spec: ForeignSpec, n_styles: int, rng: np.random.Generator
) -> tuple[FloatArray, list[str]]:
    t = np.arange(spec.n_days, dtype=np.float64)
    out = np.ones((spec.n_days, n_styles))
    kinds: list[str] = []
    for j in range(n_styles):
        u = float(rng.random())
        if spec.lifecycle == "flat" or (spec.lifecycle == "mixed" and u < 0.4):
            kinds.append("basic")
            continue
        if spec.lifecycle == "declining" or u < 0.75:
            peak = 0.0 if spec.lifecycle == "declining" else float(rng.uniform(7.0, 28.0))
            tau = float(rng.uniform(42.0, 98.0))
            ramp = np.clip(0.5 + 0.5 * (t + 1.0) / max(peak, 1.0), 0.0, 1.0)
            curve = ramp * np.exp(-np.maximum(t - peak, 0.0) / tau)
            kinds.append("fashion")
        else:
            curve = 1.0 + 0.8 * (t / spec.n_days) ** 2
            kinds.append("gift")
        out[:, j] = curve / curve.mean()
    return out, kinds


def _weekday(spec: ForeignSpec, stores: Stores, rng: np.random.Generator) -> FloatArray:
    dow = np.array(
        [(spec.season_start + dt.timedelta(days=t)).weekday() for t in range(spec.n_days)]
    )
    out = np.empty((spec.n_days, len(stores.formats)))
    for j, f in enumerate(stores.formats):
        pat = np.array(_WEEKDAY[f]) * np.exp(rng.normal(0.0, 0.05, size=7))
        out[:, j] = (pat / pat.mean())[dow]
    return out


def build_demand(
    spec: ForeignSpec,
    stores: Stores,
    cat: Catalogue,
    size_share: FloatArray,
    ranged: np.ndarray,
    weather: Weather,
    footfall: FloatArray,
    trend: Trend,
    seed: int,
) -> Demand:
    """The ``(T, S, K)`` true rate at full price.

    ``base[s, k] = units[s] * mix[s, group[k]] * share[k] * size[s, k] * ranged[s, k]`` and the
    time effects (weather by class, lifecycle by style, footfall = weekday x events x rain,
    the trend of one style) either multiply or, with ``effects="additive"``, add their lifts:
    ``base * max(0, 1 + sum(effect - 1))``.
    """
    rng = foreign_rng(seed, "demand")
    units = spec.store_daily_units * stores.traffic
    base = (
        units[:, None] * stores.mix[:, cat.sku_group] * cat.sku_share[None, :] * size_share * ranged
    )
    n_styles = len(cat.style_ids)
    life, kinds = _lifecycle(spec, n_styles, rng)
    daily = footfall * _weekday(spec, stores, rng) * rain_footfall(weather, stores.formats)
    w_cls = np.stack(
        [weather_effect(weather, c) for c in range(len(D.WEATHER_CLASSES))], axis=2
    )  # (T, S, classes)
    w_cls = w_cls / w_cls.mean(axis=(0, 1), keepdims=True)
    tr = trend_effect(spec, stores, trend)  # (T, S)
    trended = cat.sku_style == trend.style
    rate = np.empty((spec.n_days, len(stores.formats), len(cat.sku_size)))
    for t in range(spec.n_days):
        w = w_cls[t][:, cat.sku_weather]  # (S, K)
        lc = life[t, cat.sku_style][None, :]
        trk = np.where(trended[None, :], tr[t][:, None], 1.0)
        if spec.effects == "additive":
            lift = 1.0 + (w - 1.0) + (lc - 1.0) + (daily[t][:, None] - 1.0) + (trk - 1.0)
            rate[t] = base * np.maximum(lift, 0.0)
        else:
            rate[t] = base * w * lc * daily[t][:, None] * trk
    response = rng.uniform(1.0, 2.5, size=n_styles)[cat.sku_style]
    return Demand(rate=rate, response=response, lifecycle=life, lifecycle_kind=kinds, base=base)


def declared_prices(
    spec: ForeignSpec, cat: Catalogue, promo_price: FloatArray
) -> tuple[StylePrices, tuple[tuple[int, float], ...]]:
    """Per style the declared daily price factor (promotions, clearance) and the calendar."""
    n = spec.n_days
    calendar = CLEARANCE_CALENDAR if spec.clearance and spec.markdowns else ()
    md = calendar_factors(n, n - 1, calendar)
    n_styles = len(cat.style_ids)
    factor = np.repeat(np.minimum(promo_price, md)[:, None], n_styles, axis=1)
    promotion = np.repeat((promo_price < md)[:, None], n_styles, axis=1)
    return StylePrices(spec.season_start, tuple(cat.style_ids), factor, promotion), calendar
