"""Signals: weather (with anomalies), events, social trends and the economy."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from stocktailor.synth import _data as D
from stocktailor.synth._common import (
    SEASON_DAYS,
    SEASON_START,
    TREND_LEAD_DAYS,
    FloatArray,
    IntArray,
    _rng,
)
from stocktailor.synth._stores import _CITY, _Stores


@dataclass(frozen=True)
class _Anomaly:
    scope: str  # "city" or "region"
    scope_id: str
    start: dt.date
    end: dt.date
    delta_c: float
    name: str


def _anomalies(scenario: str, seed: int, as_of: dt.date, regions: list[str]) -> list[_Anomaly]:
    d = dt.date
    out = [
        _Anomaly("city", "Seattle", d(2026, 3, 20), d(2026, 4, 1), -11.0, "Seattle cold snap"),
        _Anomaly("city", "Los Angeles", d(2026, 3, 16), d(2026, 3, 31), 3.0, "LA warm spell"),
        _Anomaly("city", "Santa Monica", d(2026, 3, 16), d(2026, 3, 31), 2.5, "LA warm spell"),
        _Anomaly(
            "region",
            "Texas",
            as_of + dt.timedelta(days=3),
            as_of + dt.timedelta(days=10),
            7.0,
            "Texas heat wave",
        ),
        _Anomaly(
            "region",
            "Northeast",
            as_of + dt.timedelta(days=5),
            as_of + dt.timedelta(days=9),
            -6.0,
            "Northeast cold spell",
        ),
    ]
    if scenario != "seed-stories":
        rng = _rng(seed, "anomalies")
        for i in range(6):
            reg = regions[int(rng.integers(len(regions)))]
            start = SEASON_START + dt.timedelta(days=int(rng.integers(7, SEASON_DAYS - 14)))
            dur = int(rng.integers(4, 11))
            sign = -1.0 if i % 2 == 0 else 1.0
            out.append(
                _Anomaly(
                    "region",
                    reg,
                    start,
                    start + dt.timedelta(days=dur),
                    sign * float(rng.uniform(5.0, 10.0)),
                    f"{reg} {'cold snap' if sign < 0 else 'heat wave'} {i + 1}",
                )
            )
    return out


@dataclass
class _Weather:
    temp: FloatArray  # (T_ext, S) deg C
    normal: FloatArray  # (T_ext, S)
    precip: FloatArray  # (T_ext, S) mm


def _build_weather(stores: _Stores, seed: int, anomalies: list[_Anomaly], n_days: int) -> _Weather:
    rng = _rng(seed, "weather")
    # draw noise for every city of the reference list so a store's weather does not depend on
    # which other cities the network has
    n_c = len(D.CITIES)
    regions = sorted({c.region for c in D.CITIES})
    n_r = len(regions)
    reg_noise = np.zeros((n_days, n_r))
    city_noise = np.zeros((n_days, n_c))
    e_r = rng.normal(0.0, 1.5, size=(n_days, n_r))
    e_c = rng.normal(0.0, 1.1, size=(n_days, n_c))
    for t in range(1, n_days):
        reg_noise[t] = 0.8 * reg_noise[t - 1] + e_r[t]
        city_noise[t] = 0.6 * city_noise[t - 1] + e_c[t]
    dates = [SEASON_START + dt.timedelta(days=t) for t in range(n_days)]
    doy = np.array([x.timetuple().tm_yday for x in dates], dtype=np.float64)
    mean = np.array([c.temp_mean_c for c in D.CITIES])
    amp = np.array([c.temp_amp_c for c in D.CITIES])
    normal_c = mean[None, :] - amp[None, :] * np.cos(2 * np.pi * (doy[:, None] - 20.0) / 365.25)
    reg_of = np.array([regions.index(c.region) for c in D.CITIES])
    anom_c = reg_noise[:, reg_of] + city_noise
    wet_boost = np.zeros((n_days, n_c))
    for a in anomalies:
        cols = [
            i
            for i, c in enumerate(D.CITIES)
            if (a.scope == "city" and c.name == a.scope_id)
            or (a.scope == "region" and c.region == a.scope_id)
        ]
        if not cols:
            continue
        for t in range(n_days):
            day = dates[t]
            if a.start <= day <= a.end:
                w = min(1.0, ((day - a.start).days + 1) / 2.0, ((a.end - day).days + 1) / 2.0)
                # a scripted anomaly dominates the day-to-day noise while it lasts
                anom_c[t, cols] = (1.0 - 0.7 * w) * anom_c[t, cols] + w * a.delta_c
                wet_boost[t, cols] += 0.15 if a.delta_c < 0 else -0.1
    wet_p = np.array([c.wet_day_prob for c in D.CITIES])[None, :] + wet_boost
    u = rng.random((n_days, n_c))
    amount = rng.gamma(0.9, 8.0, size=(n_days, n_c))
    precip_c = np.where(u < wet_p, amount, 0.0)
    ci = stores.city_idx
    s = len(ci)
    micro = rng.normal(0.0, 0.3, size=(n_days, s))
    temp = normal_c[:, ci] + anom_c[:, ci] + micro
    return _Weather(
        temp=np.round(temp, 1),
        normal=np.round(normal_c[:, ci], 1),
        precip=np.round(precip_c[:, ci], 1).astype(np.float64),
    )


def _weather_mult(w: _Weather, n_days: int) -> FloatArray:
    temp = w.temp[:n_days]
    anom = np.clip(temp - w.normal[:n_days], -15.0, 15.0)
    rain = w.precip[:n_days] > 2.0
    out = np.empty((n_days, temp.shape[1], len(D.WEATHER_CLASSES)))
    out[:, :, 0] = 1.0
    out[:, :, 1] = np.exp(-0.12 * anom) * (0.45 + 0.9 / (1.0 + np.exp((temp - 8.0) / 4.0)))
    out[:, :, 2] = (0.3 + 1.2 * np.exp(-(((temp - 17.0) / 7.0) ** 2))) * (1.0 + 0.15 * rain)
    out[:, :, 3] = np.exp(0.04 * anom) * (0.25 + 1.5 / (1.0 + np.exp(-(temp - 20.0) / 3.5)))
    return out


@dataclass(frozen=True)
class _Event:
    start: dt.date
    end: dt.date
    scope: str
    scope_id: str
    name: str
    kind: str
    mult: float
    discount: float | None
    planned: bool


# The fixed event calendar of every scenario: (start, end, scope, scope id, name, kind,
# demand multiplier, promotion discount); all of them known in advance.
_CALENDAR: tuple[tuple[str, str, str, str, str, str, float, float | None], ...] = (
    ("2026-02-14", "2026-02-16", "all", "all", "Presidents Day weekend", "holiday", 1.15, None),
    ("2026-03-06", "2026-03-08", "all", "all", "Spring sale 20% off", "promotion", 1.0, 0.2),
    ("2026-04-03", "2026-04-05", "all", "all", "Easter weekend", "holiday", 1.2, None),
    ("2026-05-08", "2026-05-10", "all", "all", "Mother's Day weekend", "holiday", 1.25, None),
    ("2026-05-22", "2026-05-25", "all", "all", "Memorial Day weekend", "holiday", 1.3, None),
    ("2026-07-02", "2026-07-05", "all", "all", "Independence Day", "holiday", 1.2, None),
    ("2026-07-24", "2026-08-02", "all", "all", "Back to school", "season", 1.12, None),
    ("2026-03-12", "2026-03-18", "city", "Austin", "SXSW", "festival", 1.35, None),
    ("2026-02-13", "2026-02-17", "city", "New Orleans", "Mardi Gras", "festival", 1.4, None),
    ("2026-03-24", "2026-03-29", "city", "Miami", "Miami Music Week", "festival", 1.2, None),
    ("2026-06-26", "2026-06-28", "city", "New York", "NYC Pride", "festival", 1.3, None),
    ("2026-06-26", "2026-06-28", "city", "San Francisco", "SF Pride", "festival", 1.3, None),
    (
        "2026-06-05",
        "2026-06-07",
        "city",
        "Chicago",
        "Chicago Blues Festival",
        "festival",
        1.15,
        None,
    ),
    ("2026-04-18", "2026-04-20", "city", "Boston", "Boston Marathon", "sports", 1.2, None),
    ("2026-03-07", "2026-03-22", "region", "Florida", "Spring break", "season", 1.2, None),
    ("2026-03-28", "2026-04-12", "region", "Carolinas", "Spring break", "season", 1.15, None),
)


def _build_events(stores: _Stores, seed: int) -> list[_Event]:
    ev = [
        _Event(
            dt.date.fromisoformat(a), dt.date.fromisoformat(b), sc, sid, name, kind, m, disc, True
        )
        for a, b, sc, sid, name, kind, m, disc in _CALENDAR
    ]
    cities = {D.CITIES[int(c)].name for c in stores.city_idx}
    regions = {D.CITIES[int(c)].region for c in stores.city_idx}
    ev = [
        e
        for e in ev
        if e.scope == "all"
        or (e.scope == "city" and e.scope_id in cities)
        or (e.scope == "region" and e.scope_id in regions)
    ]
    rng = _rng(seed, "events")
    ids = stores.frame["store_id"].to_list()
    n_local = max(2, len(ids) // 12)
    for i in rng.choice(len(ids), size=min(n_local, len(ids)), replace=False):
        start = SEASON_START + dt.timedelta(days=int(rng.integers(3, SEASON_DAYS - 5)))
        if rng.random() < 0.4:
            ev.append(
                _Event(
                    start,
                    start + dt.timedelta(days=2),
                    "store",
                    ids[int(i)],
                    "Store refit (closed)",
                    "closure",
                    0.0,
                    None,
                    False,
                )
            )
        else:
            ev.append(
                _Event(
                    start,
                    start + dt.timedelta(days=1),
                    "store",
                    ids[int(i)],
                    "Neighbourhood street market",
                    "local",
                    1.3,
                    None,
                    True,
                )
            )
    return ev


def _event_mult(
    events: list[_Event], stores: _Stores, n_days: int
) -> tuple[FloatArray, FloatArray]:
    """(T, S) footfall multiplier of events and the (T,) network price factor of promotions."""
    s = len(stores.city_idx)
    mult = np.ones((n_days, s))
    price = np.ones(n_days)
    ids = stores.frame["store_id"].to_list()
    city = [D.CITIES[int(c)].name for c in stores.city_idx]
    region = [D.CITIES[int(c)].region for c in stores.city_idx]
    for e in events:
        t0 = max(0, (e.start - SEASON_START).days)
        t1 = min(n_days - 1, (e.end - SEASON_START).days)
        if t1 < t0:
            continue
        if e.scope == "all":
            cols = list(range(s))
        elif e.scope == "city":
            cols = [i for i in range(s) if city[i] == e.scope_id]
        elif e.scope == "region":
            cols = [i for i in range(s) if region[i] == e.scope_id]
        else:
            cols = [i for i in range(s) if ids[i] == e.scope_id]
        mult[t0 : t1 + 1, cols] *= e.mult
        if e.discount is not None and e.scope == "all":
            price[t0 : t1 + 1] *= 1.0 - e.discount
    return mult, price


TREND_PAD_DAYS = 14


@dataclass
class _Trends:
    series: dict[tuple[str, str, str], FloatArray]  # (scope, scope_id, tag) -> index per day
    # day axis: SEASON_START - TREND_PAD_DAYS .. season end


def _sigmoid(x: FloatArray) -> FloatArray:
    out: FloatArray = 1.0 / (1.0 + np.exp(-x))
    return out


def _build_trends(stores: _Stores, seed: int, n_days: int) -> _Trends:
    rng = _rng(seed, "trends")
    n = n_days + TREND_PAD_DAYS
    t = np.arange(n, dtype=np.float64) - TREND_PAD_DAYS

    def noise() -> FloatArray:
        e = rng.normal(0.0, 0.025, size=n)
        out = np.zeros(n)
        for i in range(1, n):
            out[i] = 0.9 * out[i - 1] + e[i]
        res: FloatArray = np.exp(out)
        return res

    series: dict[tuple[str, str, str], FloatArray] = {}
    cities = sorted({D.CITIES[int(c)].name for c in stores.city_idx})
    regions = sorted({D.CITIES[int(c)].region for c in stores.city_idx})
    series[("all", "all", "bright-sneaker")] = 100 * noise() * (1 + 0.2 * _sigmoid((t - 35) / 8))
    for c in cities:
        if _CITY[c].creative >= 0.7:
            onset = 24.0 + float(rng.uniform(-4.0, 6.0))
            peak = 1.3 + float(rng.uniform(-0.2, 0.3))
            shape = (1 + peak * _sigmoid((t - onset) / 6)) * (1 - 0.3 * _sigmoid((t - 130) / 10))
            series[("city", c, "bright-sneaker")] = 100 * noise() * shape
    series[("all", "all", "linen")] = 100 * noise() * (1 + 0.3 * _sigmoid((t - 100) / 15))
    for r in regions:
        if r in ("California", "Florida", "Carolinas"):
            series[("region", r, "linen")] = 100 * noise() * (1 + 0.8 * _sigmoid((t - 90) / 15))
    series[("all", "all", "athleisure")] = 100 * noise()
    series[("all", "all", "trench")] = 100 * noise() * (1 + 0.35 * np.exp(-(((t - 55) / 20) ** 2)))
    return _Trends({k: np.round(v, 1) for k, v in series.items()})


def _trend_mult(trends: _Trends, stores: _Stores, seg_day: IntArray, n_days: int) -> FloatArray:
    s = len(stores.city_idx)
    out = np.ones((n_days, s, len(D.TREND_TAGS) + 1))
    sens = np.array(D.TREND_SENSITIVITY)[seg_day]  # (T, S)
    idx_day = np.arange(n_days) - TREND_LEAD_DAYS + TREND_PAD_DAYS  # trend leads sales
    for j in range(s):
        c = D.CITIES[int(stores.city_idx[j])]
        for ti, tag in enumerate(D.TREND_TAGS):
            ser = trends.series.get(("city", c.name, tag))
            if ser is None:
                ser = trends.series.get(("region", c.region, tag))
            if ser is None:
                ser = trends.series.get(("all", "all", tag))
            if ser is None:
                continue
            lift = 1.0 + sens[:, j] * (ser[idx_day] / 100.0 - 1.0)
            out[:, j, ti + 1] = np.maximum(lift, 0.3)
    return out


def _build_economy(stores: _Stores, seed: int, n_days: int) -> pl.DataFrame:
    rng = _rng(seed, "economy")
    regions = sorted({c.region for c in D.CITIES})
    used = {D.CITIES[int(c)].region for c in stores.city_idx}
    start = SEASON_START - dt.timedelta(days=28)
    weeks = (n_days + 28) // 7 + 1
    rows: dict[str, list[object]] = {"date": [], "region": [], "indicator": [], "value": []}
    for r in regions:
        cc = 100.0 + float(rng.normal(0.0, 4.0))
        un = 4.2 + float(rng.normal(0.0, 0.5))
        cc_path, un_path = [], []
        for _ in range(weeks):
            cc += float(rng.normal(-0.05, 1.0))
            un = max(2.5, un + float(rng.normal(0.0, 0.05)))
            cc_path.append(round(cc, 1))
            un_path.append(round(un, 2))
        if r not in used:
            continue
        for w in range(weeks):
            day = start + dt.timedelta(days=7 * w)
            for ind, val in (
                ("consumer_confidence", cc_path[w]),
                ("unemployment_rate", un_path[w]),
            ):
                rows["date"].append(day)
                rows["region"].append(r)
                rows["indicator"].append(ind)
                rows["value"].append(val)
    return pl.DataFrame(
        rows,
        schema={"date": pl.Date, "region": pl.String, "indicator": pl.String, "value": pl.Float64},
    )


def _economy_mult(econ: pl.DataFrame, stores: _Stores, n_days: int) -> FloatArray:
    cc = econ.filter(pl.col("indicator") == "consumer_confidence").sort("region", "date")
    out = np.ones((n_days, len(stores.city_idx)))
    by_region = {
        str(k[0]): (g["date"].to_list(), g["value"].to_numpy())
        for k, g in cc.group_by(["region"], maintain_order=True)
    }
    region = [D.CITIES[int(c)].region for c in stores.city_idx]
    days = [SEASON_START + dt.timedelta(days=t) for t in range(n_days)]
    for j, r in enumerate(region):
        dates, vals = by_region[r]
        pos = (
            np.searchsorted(
                np.array(dates, dtype="datetime64[D]"),
                np.array(days, dtype="datetime64[D]"),
                side="right",
            )
            - 1
        )
        out[:, j] = (vals[np.clip(pos, 0, len(vals) - 1)] / 100.0) ** 0.6
    return out
