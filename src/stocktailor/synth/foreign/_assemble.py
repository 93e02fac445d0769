"""Build a foreign network end to end and assemble its contract tables and truth."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math

import numpy as np
import polars as pl

from stocktailor.contract import Tables
from stocktailor.synth import _data as D
from stocktailor.synth._common import FloatArray, IntArray
from stocktailor.synth._generate import _conform, _events_frame
from stocktailor.synth._synthetic import SyntheticNetwork, with_price_plan
from stocktailor.synth.foreign._demand import Demand, build_demand, declared_prices
from stocktailor.synth.foreign._history import Allocation, History, allocate, run_history
from stocktailor.synth.foreign._signals import (
    Event,
    Trend,
    Weather,
    build_economy,
    build_events,
    build_trend,
    build_weather,
    event_effects,
    trends_frame,
)
from stocktailor.synth.foreign._spec import ForeignSpec
from stocktailor.synth.foreign._truth import ForeignTruth, effective_dispersion, price_multiplier
from stocktailor.synth.foreign._world import (
    SEGMENTS,
    Catalogue,
    Stores,
    build_catalogue,
    build_stores,
    foreign_rng,
    ranged,
    size_profiles,
    size_share,
    warehouse_row,
)

__all__ = ["generate_foreign"]

logger = logging.getLogger(__name__)

FORECAST_DAYS = 10  # days of weather forecast after the as-of date


def _dates(start: dt.date, idx: IntArray) -> pl.Series:
    base = (start - dt.date(1970, 1, 1)).days
    return pl.Series("date", (np.asarray(idx) + base).astype("datetime64[D]")).cast(pl.Date)


def generate_foreign(
    spec: ForeignSpec,
    seed: int = 0,
    *,
    name: str = "foreign-custom",
    n_stores: int | None = None,
    n_sku_sizes: int | None = None,
    as_of: dt.date | None = None,
) -> SyntheticNetwork:
    """Generate a foreign network from ``spec`` (see :data:`FOREIGN_SCENARIOS` for named ones).

    Parameters
    ----------
    spec
        The options (:class:`ForeignSpec`).
    seed
        Random seed; the same seed and options give the same tables and file bytes.
    name
        Scenario label recorded on the network.
    n_stores, n_sku_sizes
        Override the spec's network size.
    as_of
        Another as-of date inside the window (the window's start and end stay).
    """
    if seed < 0:
        msg = f"seed must be >= 0, got {seed}"
        raise ValueError(msg)
    if n_stores is not None:
        spec = dataclasses.replace(spec, n_stores=n_stores)
    if n_sku_sizes is not None:
        spec = dataclasses.replace(spec, n_sku_sizes=n_sku_sizes)
    if as_of is not None:
        n_hist = (as_of - spec.season_start).days + 1
        if not 7 <= n_hist <= spec.n_days - 7:
            msg = f"as_of {as_of} must leave 7 days of history and 7 days after it in the window"
            raise ValueError(msg)
        spec = dataclasses.replace(spec, history_days=n_hist, horizon_days=spec.n_days - n_hist)
    spec.check()
    logger.info("synth: building foreign network %s (seed %d)", name, seed)
    stores = build_stores(spec, seed)
    cat = build_catalogue(spec, seed)
    sizes = size_profiles(stores, seed)
    share = size_share(stores, cat, sizes)
    carried = ranged(stores, cat, seed)
    weather = build_weather(spec, stores, seed)
    events = build_events(spec, stores, seed)
    footfall, promo_price, _ = event_effects(spec, stores, events)
    trend = build_trend(spec, cat, seed)
    demand = build_demand(spec, stores, cat, share, carried, weather, footfall, trend, seed)
    prices, calendar = declared_prices(spec, cat, promo_price)
    pf = prices.sku_path([cat.style_ids[i] for i in cat.sku_style], 0, spec.n_days - 1)
    at_price = demand.rate * price_multiplier(pf, demand.response)[:, None, :]
    area = stores.frame["area_sqm"].to_numpy()
    # the buy was planned before the season: on normal weather and without the viral trend
    plan_spec = dataclasses.replace(
        spec, cold_snap=False, cooling_c_per_week=0.0, trend_strength=0.0
    )
    planned = (
        build_demand(
            plan_spec,
            stores,
            cat,
            share,
            carried,
            build_weather(plan_spec, stores, seed),
            footfall,
            trend,
            seed,
        ).rate
        * price_multiplier(pf, demand.response)[:, None, :]
    )
    alloc = allocate(spec, planned, area, cat.sku_style, seed)
    hist = run_history(spec, at_price, alloc, seed)
    tables, season = _tables(spec, seed, stores, cat, weather, events, trend, alloc, hist, pf)
    truth = _truth(spec, stores, cat, sizes, demand, alloc, hist, season, trend.style)
    return SyntheticNetwork(
        tables=with_price_plan(tables, prices.frame()),
        truth=truth,
        as_of=spec.as_of,
        season_start=spec.season_start,
        season_end=spec.end,
        scenario=name,
        seed=seed,
        markdown_calendar=calendar,
        prices=prices,
        open_ended=not spec.clearance,
    )


def _stores_table(stores: Stores, alloc: Allocation) -> pl.DataFrame:
    n = len(stores.formats)
    init = np.bincount(alloc.ps, weights=alloc.units, minlength=n)
    cap = (np.ceil(1.4 * init / 10.0) * 10.0).astype(np.int64)
    frame = stores.frame.with_columns(pl.Series("capacity_units", cap, dtype=pl.Int64))
    wh = warehouse_row()
    wh["capacity_units"] = int(math.ceil(1.2 * max(int(alloc.warehouse.sum()), 1) / 100.0) * 100)
    whf = pl.DataFrame([wh], schema_overrides={"capacity_units": pl.Int64})
    return _conform("stores", pl.concat([frame, whf], how="diagonal_relaxed"))


def _lanes(stores: pl.DataFrame) -> pl.DataFrame:
    ids = stores["store_id"].to_numpy()
    lat = np.radians(stores["latitude"].to_numpy())
    lon = np.radians(stores["longitude"].to_numpy())
    i, j = np.nonzero(~np.eye(len(ids), dtype=np.bool_))
    a = (
        np.sin((lat[j] - lat[i]) / 2) ** 2
        + np.cos(lat[i]) * np.cos(lat[j]) * np.sin((lon[j] - lon[i]) / 2) ** 2
    )
    km = 2 * 6371.0 * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return _conform(
        "lanes",
        pl.DataFrame(
            {
                "from_id": pl.Series(ids).gather(i),
                "to_id": pl.Series(ids).gather(j),
                "cost_per_unit": np.round(0.6 + 0.0011 * km, 2),
                "cost_per_shipment": np.round(18.0 + 0.04 * km, 2),
                "lead_time_days": (1 + np.floor(km / 900.0)).astype(np.int64),
            }
        ),
    )


def _weather_table(
    spec: ForeignSpec, stores: Stores, w: Weather, last: int, seed: int, *, forecast: bool
) -> pl.DataFrame:
    ids = stores.frame["store_id"].to_list()
    n, s = last + 1, len(ids)
    temp, precip = w.temp[:n].copy(), w.precip[:n].copy()
    is_fc = np.zeros((n, s), dtype=np.bool_)
    if forecast:
        rng = foreign_rng(seed, "forecast")
        lead = np.arange(n) - (spec.history_days - 1)
        fc = lead > 0
        sd = 0.8 * np.sqrt(np.maximum(lead, 0))[:, None]
        temp = np.where(fc[:, None], np.round(temp + rng.normal(0.0, 1.0, (n, s)) * sd, 1), temp)
        wet = np.round(np.maximum(0.0, precip + rng.normal(0.0, 1.0, (n, s)) * sd), 1)
        precip = np.where(fc[:, None], wet, precip)
        is_fc[fc] = True
    return _conform(
        "weather",
        pl.DataFrame(
            {
                "date": _dates(spec.season_start, np.repeat(np.arange(n), s)),
                "store_id": ids * n,
                "temp_c": temp.ravel(),
                "precip_mm": precip.ravel(),
                "is_forecast": is_fc.ravel(),
            }
        ),
    )


def _events_table(events: list[Event]) -> pl.DataFrame:
    return _conform("events", _events_frame(events).drop("discount"))


def _history_tables(
    spec: ForeignSpec,
    stores: Stores,
    cat: Catalogue,
    alloc: Allocation,
    hist: History,
    pf: FloatArray,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    ids = pl.Series("store_id", stores.frame["store_id"].to_list(), dtype=pl.String)
    skus = pl.Series("sku", cat.frame["sku"].to_list(), dtype=pl.String)
    price = cat.frame["full_price"].to_numpy()
    pk = alloc.pk[hist.sales_pair]
    revenue = np.round(hist.sales_units * price[pk] * pf[hist.sales_day, pk], 2)
    sales = _conform(
        "sales",
        pl.DataFrame(
            {
                "date": _dates(spec.season_start, hist.sales_day),
                "store_id": ids.gather(alloc.ps[hist.sales_pair]),
                "sku": skus.gather(pk),
                "units": hist.sales_units,
                "revenue": revenue,
            }
        ),
    )
    wh_k = np.flatnonzero(alloc.warehouse > 0)
    wh_id = str(warehouse_row()["store_id"])
    loc = pl.concat([ids.gather(alloc.ps), pl.Series("store_id", [wh_id] * wh_k.size)])
    sku = pl.concat([skus.gather(alloc.pk), skus.gather(wh_k)])
    snaps = [
        pl.DataFrame(
            {
                "date": _dates(spec.season_start, np.full(loc.len(), t, dtype=np.int64)),
                "store_id": loc,
                "sku": sku,
                "on_hand": np.concatenate([stock, alloc.warehouse[wh_k]]),
                "in_transit": np.zeros(loc.len(), dtype=np.int64),
            }
        )
        for t, stock in zip(hist.snap_days, hist.snap_stock, strict=True)
    ]
    return sales, _conform("inventory", pl.concat(snaps))


def _tables(
    spec: ForeignSpec,
    seed: int,
    stores: Stores,
    cat: Catalogue,
    weather: Weather,
    events: list[Event],
    trend: Trend,
    alloc: Allocation,
    hist: History,
    pf: FloatArray,
) -> tuple[Tables, Tables]:
    """(tables as of the as-of date, the same with the whole window's signals)."""
    as_idx = spec.history_days - 1
    last = spec.n_days - 1
    store_table = _stores_table(stores, alloc)
    products = cat.frame
    if spec.clearance:
        products = products.with_columns(pl.lit(spec.end, dtype=pl.Date).alias("season_end"))
    products = _conform("products", products)
    sales, inventory = _history_tables(spec, stores, cat, alloc, hist, pf)
    known = [e for e in events if e.planned or e.start <= spec.as_of]
    trends_all = _conform("trends", trends_frame(spec, cat, trend, last))
    economy_all = _conform("economy", build_economy(spec, stores, seed))
    tables = Tables(
        stores=store_table,
        products=products,
        sales=sales,
        inventory=inventory,
        lanes=_lanes(store_table),
        weather=_weather_table(
            spec, stores, weather, min(last, as_idx + FORECAST_DAYS), seed, forecast=True
        ),
        events=_events_table(known),
        trends=trends_all.filter(pl.col("date") <= spec.as_of),
        economy=economy_all.filter(pl.col("date") <= spec.as_of),
    )
    season = tables.replace(
        weather=_weather_table(spec, stores, weather, last, seed, forecast=False),
        events=_events_table(events),
        trends=trends_all,
        economy=economy_all,
    )
    return tables, season


def _truth(
    spec: ForeignSpec,
    stores: Stores,
    cat: Catalogue,
    sizes: dict[str, FloatArray],
    demand: Demand,
    alloc: Allocation,
    hist: History,
    season: Tables,
    trended_style: int,
) -> ForeignTruth:
    store_ids = stores.frame["store_id"].to_list()
    skus = cat.frame["sku"].to_list()
    wh_k = np.flatnonzero(alloc.warehouse > 0)
    wh_id = str(warehouse_row()["store_id"])
    loc = [store_ids[int(i)] for i in alloc.ps] + [wh_id] * wh_k.size
    sku = [skus[int(k)] for k in alloc.pk] + [skus[int(k)] for k in wh_k]
    position = pl.DataFrame(
        {
            "store_id": loc,
            "sku": sku,
            "on_hand": np.concatenate([hist.final, alloc.warehouse[wh_k]]),
        }
    )
    initial = pl.DataFrame(
        {"store_id": loc, "sku": sku, "units": np.concatenate([alloc.units, alloc.warehouse[wh_k]])}
    )
    ladders = {"apparel": D.APPAREL_SIZES, "footwear": D.FOOTWEAR_SIZES, "belt": D.BELT_SIZES}
    curves = pl.concat(
        [
            pl.DataFrame(
                {
                    "store_id": [s for s in store_ids for _ in ladders[g]],
                    "size_group": [g] * (len(store_ids) * len(ladders[g])),
                    "size": list(ladders[g]) * len(store_ids),
                    "share": sizes[g].ravel(),
                }
            )
            for g in sorted(set(cat.sku_size_group))
        ]
    )
    trended = cat.sku_style == trended_style
    products = pl.DataFrame(
        {
            "sku": skus,
            "price_response": demand.response,
            "style_group": [D.STYLE_GROUPS[int(g)] for g in cat.sku_group],
            "weather_class": [D.WEATHER_CLASSES[int(w)] for w in cat.sku_weather],
            "lifecycle": [demand.lifecycle_kind[int(s)] for s in cat.sku_style],
            "trended": trended,
        }
    )
    seg_names = [SEGMENTS[int(g)] for g in stores.segment]
    truth_stores = pl.DataFrame(
        {"store_id": store_ids, "segment": seg_names, "traffic": stores.traffic}
    ).with_columns([pl.Series(f"mix_{g}", stores.mix[:, i]) for i, g in enumerate(D.STYLE_GROUPS)])
    return ForeignTruth(
        store_ids=store_ids,
        skus=skus,
        segments=pl.DataFrame({"store_id": store_ids, "segment": seg_names}),
        size_curves=curves,
        position=position,
        initial_stock=initial,
        products=products,
        stores=truth_stores,
        dispersion=effective_dispersion(demand.rate[spec.history_days :]),
        season_tables=season,
        start=spec.season_start,
        rate=demand.rate,
        price_response=demand.response,
        trend_lead_days=spec.trend_lead_days,
        return_rate=spec.return_rate,
    )
