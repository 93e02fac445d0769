"""Weather, events, promotions, a social trend and the economy of a foreign network.

Responses are the kinds retail analysts report, not the project's model: threshold (hinge)
temperature responses on absolute temperature, rain that empties high streets and fills malls,
promotions with a pull-forward dip afterwards, holidays on which stores close, a viral trend
for one style that leads its sales, and signals that have no effect at all (an economy series,
a second trend series, events that do not move sales).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from stocktailor.synth import _data as D
from stocktailor.synth._common import FloatArray
from stocktailor.synth.foreign._spec import ForeignSpec
from stocktailor.synth.foreign._world import Catalogue, Stores, foreign_rng

__all__ = [
    "TREND_PAD_DAYS",
    "Event",
    "Trend",
    "Weather",
    "build_economy",
    "build_events",
    "build_trend",
    "build_weather",
    "event_effects",
    "weather_effect",
]

TREND_PAD_DAYS = 28
COLD_SNAP_REGION = "Pacific Northwest"
COLD_SNAP_C = -7.0


@dataclass
class Weather:
    """Daily weather of every store over the window."""

    temp: FloatArray  # (T, S) deg C
    precip: FloatArray  # (T, S) mm


def build_weather(spec: ForeignSpec, stores: Stores, seed: int) -> Weather:
    """Climatology + regional AR(1) noise + store noise, with the scenario's anomalies."""
    rng = foreign_rng(seed, "weather")
    n_days = spec.n_days
    regions = sorted({c.region for c in D.CITIES})
    reg = np.zeros((n_days, len(regions)))
    e = rng.normal(0.0, 1.3, size=(n_days, len(regions)))
    for t in range(1, n_days):
        reg[t] = 0.85 * reg[t - 1] + e[t]
    days = [spec.season_start + dt.timedelta(days=t) for t in range(n_days)]
    doy = np.array([d.timetuple().tm_yday for d in days], dtype=np.float64)
    cities = [D.CITIES[int(c)] for c in stores.city_idx]
    mean = np.array([c.temp_mean_c for c in cities])
    amp = np.array([c.temp_amp_c for c in cities])
    normal = mean[None, :] - amp[None, :] * np.cos(2 * np.pi * (doy[:, None] - 25.0) / 365.25)
    r_idx = np.array([regions.index(c.region) for c in cities])
    temp = normal + reg[:, r_idx] + rng.normal(0.0, 0.5, size=(n_days, len(cities)))
    temp -= spec.cooling_c_per_week * np.arange(n_days)[:, None] / 7.0
    wet = np.array([c.wet_day_prob for c in cities])[None, :].repeat(n_days, axis=0)
    if spec.cold_snap:
        t0 = spec.history_days - 11
        ramp = np.clip((np.arange(n_days) - t0 + 1) / 3.0, 0.0, 1.0)
        cols = np.array([c.region == COLD_SNAP_REGION for c in cities])
        temp[:, cols] += COLD_SNAP_C * ramp[:, None]
        wet[:, cols] += 0.1 * ramp[:, None]
    amount = rng.gamma(0.8, 7.0, size=temp.shape)
    precip = np.where(rng.random(temp.shape) < wet, amount, 0.0)
    return Weather(temp=np.round(temp, 1), precip=np.round(precip, 1).astype(np.float64))


def weather_effect(w: Weather, weather_class: int, mild_width: float = 12.0) -> FloatArray:
    """``(T, S)`` demand multiplier of a weather class (hinge responses on temperature).

    ``cold`` styles sell from 0.2 at 16 C and above, rising 0.16 per degree below;
    ``warm`` styles from 0.3 at 15 C and below, rising 0.1 per degree above; ``mild`` styles
    (trench, rain shell) peak at 14 C and fall linearly to 0.12 at +-``mild_width`` C, with a
    rain boost of 25 % on wet days; ``neutral`` styles do not respond.
    """
    name = D.WEATHER_CLASSES[weather_class]
    t = w.temp
    if name == "cold":
        out: FloatArray = 0.2 + 0.16 * np.maximum(0.0, 16.0 - t)
    elif name == "warm":
        out = 0.3 + 0.1 * np.maximum(0.0, t - 15.0)
    elif name == "mild":
        out = np.maximum(0.12, 1.0 - np.abs(t - 14.0) / mild_width) * (1.0 + 0.25 * (w.precip > 3))
    else:
        out = np.ones_like(t)
    return out


def rain_footfall(w: Weather, formats: list[str]) -> FloatArray:
    """``(T, S)`` footfall multiplier of rain: streets and parks empty, malls fill."""
    wet = w.precip > 5.0
    lift = np.array(
        [
            {"high street": 0.82, "mall": 1.06, "retail park": 0.9, "outlet": 0.88}[f]
            for f in formats
        ]
    )
    out: FloatArray = np.where(wet, lift[None, :], 1.0)
    return out


@dataclass(frozen=True)
class Event:
    """A dated event; ``lift`` multiplies footfall, ``discount`` is a network-wide price cut."""

    start: dt.date
    end: dt.date
    scope: str
    scope_id: str
    name: str
    kind: str
    lift: float
    discount: float
    planned: bool


# (month, day, days, scope, scope_id, name, kind, footfall lift, discount); a date in
# January-June belongs to the year after the autumn it follows.
_CALENDAR: tuple[tuple[int, int, int, str, str, str, str, float, float], ...] = (
    (8, 29, 4, "all", "all", "Labor Day sale", "promotion", 1.15, 0.2),
    (10, 11, 3, "all", "all", "Columbus Day weekend", "holiday", 1.1, 0.0),
    (10, 31, 1, "all", "all", "Halloween", "holiday", 1.0, 0.0),
    (11, 7, 5, "all", "all", "Veterans Day sale", "promotion", 1.05, 0.15),
    (11, 27, 1, "all", "all", "Thanksgiving (stores close early)", "holiday", 0.35, 0.0),
    (11, 28, 3, "all", "all", "Black Friday weekend", "promotion", 1.6, 0.3),
    (12, 6, 19, "all", "all", "Holiday shopping", "season", 1.2, 0.0),
    (12, 25, 1, "all", "all", "Christmas Day (closed)", "closure", 0.0, 0.0),
    (1, 2, 10, "all", "all", "New year sale", "promotion", 1.05, 0.25),
    (10, 3, 10, "city", "Austin", "Austin City Limits", "festival", 1.2, 0.0),
    (11, 2, 1, "city", "New York", "NYC Marathon", "sports", 1.1, 0.0),
    (12, 5, 3, "city", "Miami", "Art Basel Miami Beach", "festival", 1.25, 0.0),
    (9, 20, 2, "region", "Midwest", "Harvest festivals", "local", 1.0, 0.0),
)


def _calendar(year: int) -> list[Event]:
    out = []
    for month, day, days, scope, scope_id, name, kind, lift, discount in _CALENDAR:
        start = dt.date(year + (month <= 6), month, day)
        end = start + dt.timedelta(days=days - 1)
        out.append(Event(start, end, scope, scope_id, name, kind, lift, discount, True))
    return out


def build_events(spec: ForeignSpec, stores: Stores, seed: int) -> list[Event]:
    """Network and city events in the window, plus store refits (unplanned) and late nights."""
    rng = foreign_rng(seed, "events")
    first, last = spec.season_start, spec.end
    cities = set(stores.frame["city"].to_list())
    regions = set(stores.frame["region"].to_list())
    out = []
    for year in sorted({first.year - 1, first.year, last.year}):
        for e in _calendar(year):
            if e.end < first or e.start > last:
                continue
            if e.scope == "city" and e.scope_id not in cities:
                continue
            if e.scope == "region" and e.scope_id not in regions:
                continue
            if not spec.clearance and e.kind == "promotion" and e.discount >= 0.25:
                # a never-ending assortment runs no deep clearance-style sales
                e = Event(e.start, e.end, e.scope, e.scope_id, e.name, e.kind, e.lift, 0.15, True)
            out.append(e)
    ids = stores.frame["store_id"].to_list()
    n = len(ids)
    for where, lo, hi in (
        ("history", 7, spec.history_days - 4),
        ("future", spec.history_days + 3, spec.n_days - 4),
    ):
        if hi <= lo:
            continue
        j = int(rng.integers(n))
        start = first + dt.timedelta(days=int(rng.integers(lo, hi)))
        out.append(
            Event(
                start,
                start + dt.timedelta(days=2),
                "store",
                ids[j],
                f"Store refit ({where})",
                "closure",
                0.0,
                0.0,
                False,
            )
        )
    for k in rng.choice(n, size=max(1, n // 10), replace=False):
        start = first + dt.timedelta(days=int(rng.integers(3, spec.n_days - 1)))
        out.append(
            Event(
                start, start, "store", ids[int(k)], "Late-night shopping", "local", 1.3, 0.0, True
            )
        )
    return out


def event_effects(
    spec: ForeignSpec, stores: Stores, events: list[Event]
) -> tuple[FloatArray, FloatArray, np.ndarray]:
    """``(T, S)`` footfall multiplier, ``(T,)`` promotion price factor and promotion flag.

    A promotion is followed by a 7-day pull-forward dip (footfall x 0.9).
    """
    n_days, s = spec.n_days, len(stores.formats)
    mult = np.ones((n_days, s))
    price = np.ones(n_days)
    city = stores.frame["city"].to_list()
    region = stores.frame["region"].to_list()
    ids = stores.frame["store_id"].to_list()
    for e in events:
        t0 = max(0, (e.start - spec.season_start).days)
        t1 = min(n_days - 1, (e.end - spec.season_start).days)
        if e.scope == "all":
            cols = list(range(s))
        else:
            key = {"city": city, "region": region, "store": ids}[e.scope]
            cols = [i for i in range(s) if key[i] == e.scope_id]
        if t1 >= t0:
            mult[t0 : t1 + 1, cols] *= e.lift
        if e.discount > 0 and e.scope == "all":
            if t1 >= t0:
                price[t0 : t1 + 1] *= 1.0 - e.discount
            d0, d1 = max(0, t1 + 1), min(n_days - 1, t1 + 7)
            if d1 >= d0:
                mult[d0 : d1 + 1, cols] *= 0.9
    return mult, price, price < 1.0


@dataclass
class Trend:
    """The social trend of one style and a distractor series (index per day)."""

    style: int  # style index of the trended style
    decoy: int  # style index of the series with no effect
    index: FloatArray  # (TREND_PAD_DAYS + T,) of the trended style
    decoy_index: FloatArray


def build_trend(spec: ForeignSpec, cat: Catalogue, seed: int) -> Trend:
    """A viral spike for one style (onset about 12 days before the as-of date)."""
    rng = foreign_rng(seed, "trends")
    n = TREND_PAD_DAYS + spec.n_days
    candidates = [
        i
        for i, name in enumerate(cat.style_template)
        if name not in spec.story_styles
        and D.STYLE_TEMPLATES[[t.name for t in D.STYLE_TEMPLATES].index(name)].group
        in ("streetwear", "athleisure", "casual", "denim")
    ] or list(range(len(cat.style_ids)))
    style = int(candidates[int(rng.integers(len(candidates)))])
    others = [i for i in range(len(cat.style_ids)) if i != style] or [style]
    decoy = int(others[int(rng.integers(len(others)))])
    t = np.arange(n, dtype=np.float64) - TREND_PAD_DAYS

    def noise() -> FloatArray:
        e = rng.normal(0.0, 0.03, size=n)
        out = np.zeros(n)
        for i in range(1, n):
            out[i] = 0.85 * out[i - 1] + e[i]
        res: FloatArray = np.exp(out)
        return res

    onset = spec.history_days - 12 + float(rng.uniform(-3.0, 3.0))
    height = float(rng.uniform(1.4, 2.2))
    x = t - onset
    spike = 1.0 / (1.0 + np.exp(-x / 1.5)) * np.exp(-np.maximum(x, 0.0) / 30.0)
    index = 100.0 * noise() * (1.0 + height * spike)
    bump_at = float(rng.uniform(20.0, spec.history_days))
    decoy_index = 100.0 * noise() * (1.0 + 0.8 * np.exp(-(((t - bump_at) / 8.0) ** 2)))
    return Trend(style, decoy, np.round(index, 1), np.round(decoy_index, 1))


def trend_effect(spec: ForeignSpec, stores: Stores, trend: Trend) -> FloatArray:
    """``(T, S)`` demand multiplier of the trended style: the index leads by the lead days."""
    t = np.arange(spec.n_days) + TREND_PAD_DAYS - spec.trend_lead_days
    rel = trend.index[t] / 100.0 - 1.0
    sens = np.where(stores.segment == 0, 1.0, 0.4) * spec.trend_strength
    out: FloatArray = np.maximum(0.2, 1.0 + sens[None, :] * rel[:, None])
    return out


def trends_frame(spec: ForeignSpec, cat: Catalogue, trend: Trend, last_day: int) -> pl.DataFrame:
    """The ``trends`` rows (scope ``all``, attribute ``style``) up to day index ``last_day``."""
    n = TREND_PAD_DAYS + last_day + 1
    first = spec.season_start - dt.timedelta(days=TREND_PAD_DAYS)
    dates = [first + dt.timedelta(days=i) for i in range(n)]
    frames = []
    for style, ser in ((trend.style, trend.index), (trend.decoy, trend.decoy_index)):
        frames.append(
            pl.DataFrame(
                {
                    "date": dates,
                    "scope": ["all"] * n,
                    "scope_id": ["all"] * n,
                    "attribute": ["style"] * n,
                    "value": [cat.style_ids[style]] * n,
                    "index": ser[:n],
                },
                schema_overrides={"date": pl.Date, "index": pl.Float64},
            )
        )
    return pl.concat(frames).sort("date", "value")


def build_economy(spec: ForeignSpec, stores: Stores, seed: int) -> pl.DataFrame:
    """Monthly consumer confidence per region: published, with no effect on demand."""
    rng = foreign_rng(seed, "economy")
    regions = sorted(set(stores.frame["region"].to_list()))
    months = []
    d = dt.date(spec.season_start.year, spec.season_start.month, 1) - dt.timedelta(days=62)
    d = dt.date(d.year, d.month, 1)
    while d <= spec.end:
        months.append(d)
        d = dt.date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    rows: dict[str, list[object]] = {"date": [], "region": [], "indicator": [], "value": []}
    for r in regions:
        level = 98.0 + float(rng.normal(0.0, 5.0))
        for m in months:
            level += float(rng.normal(0.0, 2.0))
            rows["date"].append(m)
            rows["region"].append(r)
            rows["indicator"].append("consumer_confidence")
            rows["value"].append(round(level, 1))
    return pl.DataFrame(
        rows,
        schema={"date": pl.Date, "region": pl.String, "indicator": pl.String, "value": pl.Float64},
    )
