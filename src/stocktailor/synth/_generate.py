"""Build a synthetic fashion network: true demand factors, the old-way allocation, history."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import polars as pl

from stocktailor.contract import TABLE_SPECS
from stocktailor.synth import _data as D
from stocktailor.synth._catalog import _build_catalog, _Catalog
from stocktailor.synth._common import (
    COLD_OVERBUY,
    DISPERSION,
    FORECAST_DAYS,
    FORMAT_BREADTH,
    SEASON_DAYS,
    SEASON_START,
    STORE_DAILY_UNITS,
    WAREHOUSE_SHARE,
    WEEKDAY_PATTERN,
    FloatArray,
    IntArray,
    _rng,
)
from stocktailor.synth._model import DemandFactors, nb_sample
from stocktailor.synth._signals import (
    TREND_PAD_DAYS,
    _anomalies,
    _build_economy,
    _build_events,
    _build_trends,
    _build_weather,
    _economy_mult,
    _Event,
    _event_mult,
    _trend_mult,
    _Trends,
    _Weather,
    _weather_mult,
)
from stocktailor.synth._stores import _build_stores, _Stores

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# size curves


_APPAREL_BASE = np.log(np.array([0.07, 0.20, 0.33, 0.26, 0.14]))
_BELT_BASE = np.log(np.array([0.10, 0.25, 0.32, 0.22, 0.11]))


def _size_curves(shift: FloatArray) -> dict[str, FloatArray]:
    """Per size group, (S, n_sizes) share of each size of the full ladder."""
    out: dict[str, FloatArray] = {}
    centered = np.arange(5) - 2.0
    for group, base in (("apparel", _APPAREL_BASE), ("belt", _BELT_BASE)):
        logit = base[None, :] + 0.45 * shift[:, None] * centered[None, :]
        e = np.exp(logit - logit.max(axis=1, keepdims=True))
        out[group] = e / e.sum(axis=1, keepdims=True)
    sizes = np.arange(36, 46, dtype=np.float64)
    mu = 40.5 + 1.1 * shift
    dens = np.exp(-0.5 * ((sizes[None, :] - mu[:, None]) / 2.3) ** 2)
    out["footwear"] = dens / dens.sum(axis=1, keepdims=True)
    return out


_LADDERS: dict[str, tuple[str, ...]] = {
    "apparel": D.APPAREL_SIZES,
    "footwear": D.FOOTWEAR_SIZES,
    "belt": D.BELT_SIZES,
}


# --------------------------------------------------------------------------------------------
# the whole network


@dataclass
class _Built:
    stores: _Stores
    catalog: _Catalog
    factors: DemandFactors
    weather: _Weather
    events: list[_Event]
    trends: _Trends
    economy: pl.DataFrame
    promo_price: FloatArray
    curves: dict[str, FloatArray]
    switches: list[tuple[int, int, int]]  # (store index, new segment, day index)


def _segment_days(
    stores: _Stores, seed: int, n_days: int, as_idx: int, switch_segments: int
) -> tuple[IntArray, list[tuple[int, int, int]]]:
    """Each store's segment per day (day x store) and the switches (store, new segment, day)."""
    s = len(stores.city_idx)
    seg_day = np.repeat(stores.segment[None, :], n_days, axis=0)
    switches: list[tuple[int, int, int]] = []
    if switch_segments:
        rng = _rng(seed, "switch")
        chosen = rng.choice(s, size=min(switch_segments, s), replace=False)
        lo, hi = 28, max(29, as_idx - 13)
        for j in sorted(int(c) for c in chosen):
            others = [g for g in range(len(D.SEGMENTS)) if g != int(stores.segment[j])]
            new = others[int(rng.integers(len(others)))]
            day = int(rng.integers(lo, hi))
            seg_day[day:, j] = new
            switches.append((j, new, day))
    return seg_day, switches


def _weekday_mult(stores: _Stores, n_days: int) -> FloatArray:
    """Day x store weekday pattern of each store's format (mean 1)."""
    dow = np.array([(SEASON_START + dt.timedelta(days=t)).weekday() for t in range(n_days)])
    weekly = np.empty((n_days, len(stores.city_idx)))
    for j, f in enumerate(stores.formats):
        pat = np.array(WEEKDAY_PATTERN[f])
        weekly[:, j] = (pat / pat.mean())[dow]
    return weekly


def _size_effects(
    catalog: _Catalog, curves: dict[str, FloatArray], s: int
) -> tuple[IntArray, FloatArray]:
    """Per SKU its (size run, size) key, and per store x key the size's share of its run."""
    sizekeys: list[tuple[int, str]] = []
    sk_index: dict[tuple[int, str], int] = {}
    sku_sizekey = np.empty(len(catalog.sku_size), dtype=np.int64)
    for k, (rid, size) in enumerate(zip(catalog.sku_range.tolist(), catalog.sku_size, strict=True)):
        key = (rid, size)
        if key not in sk_index:
            sk_index[key] = len(sizekeys)
            sizekeys.append(key)
        sku_sizekey[k] = sk_index[key]
    range_group = {}
    for k in range(len(catalog.sku_size)):
        range_group[int(catalog.sku_range[k])] = catalog.sku_size_group[k]
    size_eff = np.empty((s, len(sizekeys)))
    for i, (rid, size) in enumerate(sizekeys):
        group = range_group[rid]
        ladder = _LADDERS[group]
        run = [ladder.index(x) for x in catalog.ranges[rid]]
        share = curves[group]
        size_eff[:, i] = share[:, ladder.index(size)] / share[:, run].sum(axis=1)
    return sku_sizekey, size_eff


def _build(
    scenario: str,
    seed: int,
    n_stores: int,
    n_sku_sizes: int | None,
    switch_segments: int,
    as_of: dt.date,
) -> _Built:
    season_end_base = SEASON_START + dt.timedelta(days=SEASON_DAYS - 1)
    stores = _build_stores(scenario, seed, n_stores)
    catalog = _build_catalog(scenario, seed, n_sku_sizes, season_end_base)
    n_days = SEASON_DAYS
    s = len(stores.city_idx)
    as_idx = (as_of - SEASON_START).days
    seg_day, switches = _segment_days(stores, seed, n_days, as_idx, switch_segments)
    regions = sorted({D.CITIES[int(c)].region for c in stores.city_idx})
    anomalies = _anomalies(scenario, seed, as_of, regions)
    weather = _build_weather(stores, seed, anomalies, n_days + FORECAST_DAYS + 7)
    events = _build_events(stores, seed)
    ev_mult, promo_price = _event_mult(events, stores, n_days)
    trends = _build_trends(stores, seed, n_days)
    economy = _build_economy(stores, seed, n_days)
    econ = _economy_mult(economy, stores, n_days)
    rain = 1.0 - 0.1 * np.minimum(weather.precip[:n_days] / 10.0, 1.0)
    daily = _weekday_mult(stores, n_days) * ev_mult * econ * rain
    # SKU response combinations
    keys = np.stack([catalog.sku_group, catalog.sku_weather, catalog.sku_tag], axis=1)
    combos, sku_combo = np.unique(keys, axis=0, return_inverse=True)
    # size shares within each offered run
    curves = _size_curves(stores.size_shift)
    sku_sizekey, size_eff = _size_effects(catalog, curves, s)
    # assortment: which style-colours each store ranges
    rng = _rng(seed, "factors")
    n_k = len(catalog.sku_size)
    sc_base = np.zeros(catalog.n_sc)
    np.maximum.at(sc_base, catalog.sku_sc, catalog.sku_base)
    sc_gender = np.array([""] * catalog.n_sc, dtype=object)
    for k in range(n_k):
        sc_gender[catalog.sku_sc[k]] = catalog.sku_gender[k]
    breadth = np.array([FORMAT_BREADTH[f] for f in stores.formats], dtype=np.float64)
    breadth = breadth * rng.uniform(0.8, 1.2, size=s)
    p_carry = np.minimum(1.0, (breadth / n_k)[:, None] * (sc_base / sc_base.mean())[None, :])
    u = rng.random((s, catalog.n_sc))
    carried = u < p_carry
    carried[np.ix_(stores.women_only, sc_gender == "M")] = False
    # scale SKU base rates so an average store sells about STORE_DAILY_UNITS a day
    carried_base = float((carried * sc_base[None, :]).sum())
    sku_base = catalog.sku_base * (STORE_DAILY_UNITS * s / carried_base)
    # lifecycle: launch ramp and a slow fashion decay per style
    tt = np.arange(n_days, dtype=np.float64)
    ramp = np.minimum(1.0, 0.6 + 0.4 * (tt + 1.0) / 7.0)
    lifecycle = ramp[:, None] * np.exp(-catalog.style_decay[None, :] * tt[:, None] / 7.0)
    aff = np.array(D.SEGMENT_AFFINITY) * np.exp(
        rng.normal(0.0, 0.08, size=(len(D.SEGMENTS), len(D.STYLE_GROUPS)))
    )
    factors = DemandFactors(
        start=SEASON_START,
        n_days=n_days,
        store_scale=stores.scale,
        seg_day=seg_day.astype(np.int64),
        affinity=aff,
        weather_mult=_weather_mult(weather, n_days),
        trend_mult=_trend_mult(trends, stores, seg_day, n_days),
        daily=daily,
        combo_group=combos[:, 0].astype(np.int64),
        combo_weather=combos[:, 1].astype(np.int64),
        combo_tag=combos[:, 2].astype(np.int64),
        sku_combo=sku_combo.reshape(-1).astype(np.int64),
        sku_base=sku_base,
        sku_sizekey=sku_sizekey,
        size_eff=size_eff,
        sku_sc=catalog.sku_sc,
        carried=carried,
        sku_style=catalog.sku_style,
        lifecycle=lifecycle,
        elasticity=catalog.elasticity,
    )
    return _Built(
        stores, catalog, factors, weather, events, trends, economy, promo_price, curves, switches
    )


@dataclass
class _Allocation:
    ps: IntArray  # store index of each allocated pair
    pk: IntArray  # sku index
    units: IntArray
    warehouse: IntArray  # (K,)


def _allocate(b: _Built, seed: int) -> _Allocation:
    """The "old way": a chain-level buy split over stores by floor area.

    The buy per SKU is the network's expected season demand (averaged lifecycle) times a
    style-level planning error; 1 - WAREHOUSE_SHARE of it goes to the stores that range the
    style-colour in proportion to their floor area, ignoring segment, weather and size profile.
    """
    f = b.factors
    rng = _rng(seed, "alloc")
    carried_k = f.carried[:, f.sku_sc]  # (S, K) bool
    ps, pk = np.nonzero(carried_k)
    ps = ps.astype(np.int64)
    pk = pk.astype(np.int64)
    msum = np.zeros((f.n_stores, len(f.combo_group)))
    for t in range(f.n_days):
        msum += f.combo_mult(t)
    lmean = f.lifecycle.mean(axis=0)
    season = f.static_pairs(ps, pk) * msum[ps, f.sku_combo[pk]] * lmean[f.sku_style[pk]]
    total = np.bincount(pk, weights=season, minlength=f.n_skus)
    style_err = np.exp(rng.normal(-0.02, 0.2, size=int(f.sku_style.max()) + 1))
    # buyers over-buy cold-weather styles (last winter's pace carried into the spring season)
    cold = f.combo_weather[f.sku_combo] == D.WEATHER_CLASSES.index("cold")
    plan = total * style_err[f.sku_style] * np.where(cold, COLD_OVERBUY, 1.0)
    area = b.stores.frame["area_sqm"].to_numpy()
    area_sum = np.bincount(pk, weights=area[ps], minlength=f.n_skus)
    x = plan[pk] * (1.0 - WAREHOUSE_SHARE) * area[ps] / area_sum[pk]
    units = np.floor(x + rng.random(x.shape)).astype(np.int64)
    store_total = np.bincount(pk, weights=units, minlength=f.n_skus)
    warehouse = np.maximum(0, np.round(plan - store_total)).astype(np.int64)
    keep = units > 0
    return _Allocation(ps[keep], pk[keep], units[keep], warehouse)


@dataclass
class _History:
    sales_day: IntArray
    sales_pair: IntArray
    sales_units: IntArray
    snap_days: list[int]  # day index (-1 = the evening before the season)
    snap_stock: list[IntArray]
    final: IntArray


def _run_history(
    b: _Built, alloc: _Allocation, seed: int, as_idx: int, snapshot_every_days: int
) -> _History:
    """Sell day by day from season start to ``as_of``: sales = min(NB demand, stock)."""
    f = b.factors
    rng = _rng(seed, "history")
    stock = alloc.units.copy()
    static = f.static_pairs(alloc.ps, alloc.pk)
    n_combo = len(f.combo_group)
    days: list[IntArray] = []
    pairs: list[IntArray] = []
    units: list[IntArray] = []
    snap_days = [-1]
    snap_stock = [stock.copy()]

    def gather(act: IntArray) -> tuple[IntArray, FloatArray, IntArray, FloatArray]:
        # per active pair: flat (store, combo) index, static rate, style, elasticity
        ps, pk = alloc.ps[act], alloc.pk[act]
        return ps * n_combo + f.sku_combo[pk], static[act], f.sku_style[pk], f.elasticity[pk]

    act = np.flatnonzero(stock > 0)
    flat, st_act, style, el = gather(act)
    for t in range(as_idx + 1):
        # the same arithmetic as DemandFactors.pair_rates, on cached per-pair indices
        mu = st_act * f.combo_mult(t).ravel()[flat] * f.lifecycle[t][style]
        price = float(b.promo_price[t])
        if price != 1.0:
            mu = mu * np.power(price, -el)
        demand = nb_sample(mu, DISPERSION, rng)
        sold = np.minimum(demand, stock[act])
        nz = np.flatnonzero(sold)
        if nz.size:
            idx = act[nz]
            stock[idx] -= sold[nz]
            days.append(np.full(nz.size, t, dtype=np.int64))
            pairs.append(idx)
            units.append(sold[nz])
        day = SEASON_START + dt.timedelta(days=t)
        if t % 7 == 6:
            keep = stock[act] > 0
            act, flat, st_act, style, el = (
                act[keep],
                flat[keep],
                st_act[keep],
                style[keep],
                el[keep],
            )
        is_snap = t == as_idx or (
            day.weekday() == 6 and ((t + 1) // 7) % max(1, snapshot_every_days // 7) == 0
        )
        if is_snap:
            snap_days.append(t)
            snap_stock.append(stock.copy())
    empty = np.zeros(0, dtype=np.int64)
    return _History(
        sales_day=np.concatenate(days) if days else empty,
        sales_pair=np.concatenate(pairs) if pairs else empty,
        sales_units=np.concatenate(units) if units else empty,
        snap_days=snap_days,
        snap_stock=snap_stock,
        final=stock,
    )


# --------------------------------------------------------------------------------------------
# tables


def _conform(name: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Cast contract columns to their dtypes and put them first, in contract order."""
    spec = TABLE_SPECS[name]
    cols = [c for c in spec.column_names if c in frame.columns]
    extra = [c for c in frame.columns if c not in cols]
    casts = [pl.col(c.name).cast(c.dtype) for c in spec.columns if c.name in frame.columns]
    return frame.with_columns(casts).select(cols + extra)


def _haversine_km(
    lat1: FloatArray, lon1: FloatArray, lat2: FloatArray, lon2: FloatArray
) -> FloatArray:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dl = np.radians(lon2 - lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    out: FloatArray = 2 * 6371.0 * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return out


def _lanes(stores: pl.DataFrame) -> pl.DataFrame:
    ids = stores["store_id"].to_numpy()
    lat = stores["latitude"].to_numpy()
    lon = stores["longitude"].to_numpy()
    n = len(ids)
    i, j = np.nonzero(~np.eye(n, dtype=np.bool_))
    km = _haversine_km(lat[i], lon[i], lat[j], lon[j])
    return pl.DataFrame(
        {
            "from_id": pl.Series(ids).gather(i),
            "to_id": pl.Series(ids).gather(j),
            "cost_per_unit": np.round(0.4 + 0.0015 * km, 2),
            "cost_per_shipment": np.round(25.0 + 0.05 * km, 2),
            "lead_time_days": (2 + np.floor(km / 800.0)).astype(np.int64),
            "distance_km": np.round(km, 1),
        }
    )


def _weather_frame(
    b: _Built, t0: int, t1: int, *, forecast_from: int | None, seed: int
) -> pl.DataFrame:
    """Weather rows for day indices t0..t1; days after ``forecast_from`` are noisy forecasts."""
    ids = b.stores.frame["store_id"].to_list()
    s = len(ids)
    n = t1 - t0 + 1
    temp = b.weather.temp[t0 : t1 + 1].copy()
    precip = b.weather.precip[t0 : t1 + 1].copy()
    is_fc = np.zeros((n, s), dtype=np.bool_)
    if forecast_from is not None:
        rng = _rng(seed, "forecast")
        lead = np.arange(t0, t1 + 1) - forecast_from
        fc = lead > 0
        err_t = rng.normal(0.0, 1.0, size=(n, s)) * (0.6 * np.sqrt(np.maximum(lead, 0)))[:, None]
        err_p = rng.normal(0.0, 1.0, size=(n, s)) * (1.0 * np.sqrt(np.maximum(lead, 0)))[:, None]
        temp = np.where(fc[:, None], np.round(temp + err_t, 1), temp)
        precip = np.where(fc[:, None], np.round(np.maximum(0.0, precip + err_p), 1), precip)
        is_fc[fc] = True
    dates = np.arange(n, dtype=np.int64) + (SEASON_START - dt.date(1970, 1, 1)).days + t0
    return pl.DataFrame(
        {
            "date": pl.Series(np.repeat(dates, s).astype("datetime64[D]")).cast(pl.Date),
            "store_id": pl.Series(ids * n),
            "temp_c": temp.ravel(),
            "precip_mm": precip.ravel(),
            "is_forecast": is_fc.ravel(),
            "temp_normal_c": b.weather.normal[t0 : t1 + 1].ravel(),
        }
    )


class _EventRow(Protocol):
    """What :func:`_events_frame` reads of an event (the fashion and the foreign generators')."""

    @property
    def start(self) -> dt.date: ...
    @property
    def end(self) -> dt.date: ...
    @property
    def scope(self) -> str: ...
    @property
    def scope_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def discount(self) -> float | None: ...


def _events_frame(events: Sequence[_EventRow]) -> pl.DataFrame:
    """The events table (with its ``discount``), sorted by its contract key."""
    return pl.DataFrame(
        {
            "start_date": [e.start for e in events],
            "end_date": [e.end for e in events],
            "scope": [e.scope for e in events],
            "scope_id": [e.scope_id for e in events],
            "name": [e.name for e in events],
            "kind": [e.kind for e in events],
            "discount": [e.discount for e in events],
        },
        schema={
            "start_date": pl.Date,
            "end_date": pl.Date,
            "scope": pl.String,
            "scope_id": pl.String,
            "name": pl.String,
            "kind": pl.String,
            "discount": pl.Float64,
        },
    ).sort("start_date", "scope", "scope_id", "name")


def _trends_frame(trends: _Trends, last_day: int) -> pl.DataFrame:
    frames = []
    for (scope, scope_id, tag), ser in sorted(trends.series.items()):
        n = min(len(ser), last_day + TREND_PAD_DAYS + 1)
        first = (SEASON_START - dt.date(1970, 1, 1)).days - TREND_PAD_DAYS
        frames.append(
            pl.DataFrame(
                {
                    "date": pl.Series(np.arange(first, first + n).astype("datetime64[D]")).cast(
                        pl.Date
                    ),
                    "scope": [scope] * n,
                    "scope_id": [scope_id] * n,
                    "attribute": ["tags"] * n,
                    "value": [tag] * n,
                    "index": ser[:n],
                }
            )
        )
    return pl.concat(frames)


def _date_series(day_idx: IntArray) -> pl.Series:
    base = (SEASON_START - dt.date(1970, 1, 1)).days
    return pl.Series("date", (day_idx + base).astype("datetime64[D]")).cast(pl.Date)
