"""The public entry point: :func:`generate` and :class:`SyntheticNetwork`."""

from __future__ import annotations

import datetime as dt
import logging
import math

import numpy as np
import polars as pl

from stocktailor.contract import Tables
from stocktailor.synth import _common as C
from stocktailor.synth import _data as D
from stocktailor.synth import _generate as G
from stocktailor.synth import _stores as S
from stocktailor.synth._model import Truth
from stocktailor.synth._prices import StylePrices, calendar_factors
from stocktailor.synth._synthetic import SyntheticNetwork, with_price_plan
from stocktailor.synth.foreign import FOREIGN_SCENARIOS, foreign_spec, generate_foreign

__all__ = ["FASHION_SCENARIOS", "SCENARIOS", "SyntheticNetwork", "generate"]

logger = logging.getLogger(__name__)

FASHION_SCENARIOS: tuple[str, ...] = ("seed-stories", "default", "scale")
SCENARIOS: tuple[str, ...] = FASHION_SCENARIOS + FOREIGN_SCENARIOS

_DEFAULT_SIZE: dict[str, tuple[int, int | None]] = {
    "seed-stories": (len(S._SEED_STORES), None),
    "default": (60, 1000),
    "scale": (1000, 20000),
}


def generate(
    scenario: str,
    seed: int = 0,
    *,
    n_stores: int | None = None,
    n_sku_sizes: int | None = None,
    switch_segments: int = 0,
    as_of: dt.date | None = None,
    snapshot_every_days: int | None = None,
) -> SyntheticNetwork:
    """Generate a synthetic network with known ground truth.

    Parameters
    ----------
    scenario
        One of :data:`SCENARIOS`: the fashion scenarios ``seed-stories`` (26 hand-placed
        stores, 357 SKU-sizes, the story network), ``default`` (60 stores, 1,000 SKU-sizes) or
        ``scale`` (default 1,000 stores x 20,000 SKU-sizes), or a foreign scenario
        (``foreign-...``, see :mod:`stocktailor.synth.foreign`; built with other functional
        forms, for scoring the product on data it was not designed around).
    seed
        Random seed; the same seed and options give the same tables and the same file bytes.
    n_stores, n_sku_sizes
        Network size (``default`` and ``scale`` only): selling stores (the warehouse comes on
        top) and SKU-sizes (exact).
    switch_segments
        Number of stores that switch behaviour segment between week 4 and two weeks before
        ``as_of`` (on day 28 when ``as_of`` is earlier), recorded in ``truth.segments``
        (``segment_after``, ``switch_date``) and in ``truth.factors.seg_day``. Fashion
        scenarios only.
    as_of
        The date the retailer's view ends (default 2026-04-19, the end of week 11; for a
        foreign scenario its own as-of date, and a different one keeps the window's end).
    snapshot_every_days
        Inventory snapshot spacing in days (rounded to whole weeks, Sundays); default 7, and 28
        for ``scale``. The opening position (the day before the season) and ``as_of`` are
        always snapshots. Fashion scenarios only (a foreign scenario fixes its snapshots).

    Returns
    -------
    SyntheticNetwork
    """
    if scenario not in SCENARIOS:
        msg = f"unknown scenario {scenario!r}; expected one of {list(SCENARIOS)}"
        raise ValueError(msg)
    if scenario in FOREIGN_SCENARIOS:
        if switch_segments or snapshot_every_days is not None:
            msg = (
                f"scenario {scenario!r} fixes its segments and snapshots; switch_segments and "
                "snapshot_every_days are fashion-scenario options"
            )
            raise ValueError(msg)
        return generate_foreign(
            foreign_spec(scenario),
            seed,
            name=scenario,
            n_stores=n_stores,
            n_sku_sizes=n_sku_sizes,
            as_of=as_of,
        )
    if scenario == "seed-stories" and (n_stores is not None or n_sku_sizes is not None):
        msg = "scenario 'seed-stories' has a fixed network; n_stores/n_sku_sizes are not options"
        raise ValueError(msg)
    if seed < 0:
        msg = f"seed must be >= 0, got {seed}"
        raise ValueError(msg)
    d_stores, d_skus = _DEFAULT_SIZE[scenario]
    n_st = d_stores if n_stores is None else n_stores
    n_sk = d_skus if n_sku_sizes is None else n_sku_sizes
    if n_st < 2:
        msg = f"n_stores must be >= 2, got {n_st}"
        raise ValueError(msg)
    if n_sk is not None and n_sk < 10:
        msg = f"n_sku_sizes must be >= 10, got {n_sk}"
        raise ValueError(msg)
    if not 0 <= switch_segments <= n_st:
        msg = f"switch_segments must be in 0..{n_st}, got {switch_segments}"
        raise ValueError(msg)
    season_end_base = C.SEASON_START + dt.timedelta(days=C.SEASON_DAYS - 1)
    as_of = C.DEFAULT_AS_OF if as_of is None else as_of
    if not C.SEASON_START + dt.timedelta(days=6) <= as_of < season_end_base:
        msg = f"as_of {as_of} must be in {C.SEASON_START + dt.timedelta(days=6)}..{season_end_base}"
        raise ValueError(msg)
    if snapshot_every_days is None:
        snapshot_every_days = 28 if scenario == "scale" else 7
    if snapshot_every_days < 1:
        msg = f"snapshot_every_days must be >= 1, got {snapshot_every_days}"
        raise ValueError(msg)
    as_idx = (as_of - C.SEASON_START).days
    logger.info("synth: building %s network (seed %d)", scenario, seed)
    b = G._build(scenario, seed, n_st, n_sk, switch_segments, as_of)
    alloc = G._allocate(b, seed)
    logger.info(
        "synth: %d allocated store x SKU pairs; simulating %d days", alloc.ps.size, as_idx + 1
    )
    hist = G._run_history(b, alloc, seed, as_idx, snapshot_every_days)
    return _assemble(scenario, seed, as_of, b, alloc, hist)


def _assemble(
    scenario: str, seed: int, as_of: dt.date, b: G._Built, alloc: G._Allocation, hist: G._History
) -> SyntheticNetwork:
    stores = _fashion_stores(b, alloc)
    products = G._conform("products", b.catalog.frame)
    sales, inventory = _fashion_history(b, alloc, hist)
    tables, season_tables = _fashion_tables(seed, as_of, b, stores, products, sales, inventory)
    truth = _fashion_truth(b, alloc, hist, season_tables)
    f = b.factors
    season_end = products["season_end"].max()
    assert isinstance(season_end, dt.date)
    prices = _fashion_prices(products, b.promo_price, f.n_days)
    return SyntheticNetwork(
        tables=with_price_plan(tables, prices.frame()),
        truth=truth,
        as_of=as_of,
        season_start=C.SEASON_START,
        season_end=season_end,
        scenario=scenario,
        seed=seed,
        markdown_calendar=C.MARKDOWN_CALENDAR,
        prices=prices,
    )


def _fashion_stores(b: G._Built, alloc: G._Allocation) -> pl.DataFrame:
    """Selling stores and the warehouse; capacity from the initial allocation."""
    store_ids = b.stores.frame["store_id"].to_list()
    wh_id = C.WAREHOUSE[0]
    # stores (+ warehouse), capacity from the initial allocation
    init_total = np.bincount(alloc.ps, weights=alloc.units, minlength=len(store_ids))
    capacity = (np.ceil(1.3 * init_total / 10.0) * 10.0).astype(np.int64)
    stores = b.stores.frame.with_columns(pl.Series("capacity_units", capacity, dtype=pl.Int64))
    wh_units = int(alloc.warehouse.sum())
    wh = pl.DataFrame(
        {
            "store_id": [wh_id],
            "name": [C.WAREHOUSE[1]],
            "kind": ["warehouse"],
            "city": [C.WAREHOUSE[2]],
            "region": [C.WAREHOUSE[4]],
            "country": ["US"],
            "latitude": [C.WAREHOUSE[5]],
            "longitude": [C.WAREHOUSE[6]],
            "format": ["distribution center"],
            "area_sqm": [20000.0],
            "capacity_units": [int(math.ceil(1.2 * max(wh_units, 1) / 100.0) * 100)],
            "state": [C.WAREHOUSE[3]],
            "climate_zone": ["humid subtropical"],
        },
        schema_overrides={"capacity_units": pl.Int64},
    )
    return G._conform("stores", pl.concat([stores, wh], how="diagonal_relaxed"))


def _fashion_history(
    b: G._Built, alloc: G._Allocation, hist: G._History
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The sales and inventory snapshot tables of the history."""
    cat = b.catalog
    store_ids = b.stores.frame["store_id"].to_list()
    skus = cat.frame["sku"].to_list()
    ids_s = pl.Series("store_id", store_ids, dtype=pl.String)
    sku_s = pl.Series("sku", skus, dtype=pl.String)
    wh_id = C.WAREHOUSE[0]
    price = cat.frame["full_price"].to_numpy()
    # sales
    pk = alloc.pk[hist.sales_pair]
    ps = alloc.ps[hist.sales_pair]
    revenue = np.round(hist.sales_units * price[pk] * b.promo_price[hist.sales_day], 2)
    sales = G._conform(
        "sales",
        pl.DataFrame(
            {
                "date": G._date_series(hist.sales_day),
                "store_id": ids_s.gather(ps),
                "sku": sku_s.gather(pk),
                "units": hist.sales_units,
                "revenue": revenue,
            }
        ),
    )
    # inventory snapshots
    wh_k = np.flatnonzero(alloc.warehouse > 0)
    pair_store = ids_s.gather(alloc.ps)
    pair_sku = sku_s.gather(alloc.pk)
    snaps = []
    for t, stock in zip(hist.snap_days, hist.snap_stock, strict=True):
        n = stock.size + wh_k.size
        snaps.append(
            pl.DataFrame(
                {
                    "date": G._date_series(np.full(n, t, dtype=np.int64)),
                    "store_id": pl.concat(
                        [pair_store, pl.Series("store_id", [wh_id] * wh_k.size, dtype=pl.String)]
                    ),
                    "sku": pl.concat([pair_sku, sku_s.gather(wh_k)]),
                    "on_hand": np.concatenate([stock, alloc.warehouse[wh_k]]),
                    "in_transit": np.zeros(n, dtype=np.int64),
                }
            )
        )
    inventory = G._conform("inventory", pl.concat(snaps))
    return sales, inventory


def _fashion_tables(
    seed: int,
    as_of: dt.date,
    b: G._Built,
    stores: pl.DataFrame,
    products: pl.DataFrame,
    sales: pl.DataFrame,
    inventory: pl.DataFrame,
) -> tuple[Tables, Tables]:
    """(tables as of ``as_of``, the same with the whole season's signals)."""
    store_ids = b.stores.frame["store_id"].to_list()
    f = b.factors
    as_idx = (as_of - C.SEASON_START).days
    lanes = G._conform("lanes", G._lanes(stores))
    season_last = f.n_days - 1
    weather_season = G._conform(
        "weather", G._weather_frame(b, 0, season_last, forecast_from=None, seed=seed)
    )
    weather_now = G._conform(
        "weather",
        G._weather_frame(b, 0, as_idx + C.FORECAST_DAYS, forecast_from=as_idx, seed=seed),
    )
    events_all = G._events_frame(b.events)
    known = [e for e in b.events if e.planned or e.start <= as_of]
    events_now = G._events_frame(known)
    trends_season = G._conform("trends", G._trends_frame(b.trends, season_last))
    trends_now = trends_season.filter(pl.col("date") <= as_of)
    economy_season = G._conform("economy", b.economy)
    economy_now = economy_season.filter(pl.col("date") <= as_of)
    women = [sid for sid, w in zip(store_ids, b.stores.women_only.tolist(), strict=True) if w]
    assortment = G._conform(
        "assortment",
        pl.DataFrame(
            {
                "store_id": women,
                "attribute": ["gender"] * len(women),
                "value": ["M"] * len(women),
                "allowed": [False] * len(women),
            },
            schema={
                "store_id": pl.String,
                "attribute": pl.String,
                "value": pl.String,
                "allowed": pl.Boolean,
            },
        ),
    )
    tables = Tables(
        stores=stores,
        products=products,
        sales=sales,
        inventory=inventory,
        lanes=lanes,
        weather=weather_now,
        events=G._conform("events", events_now),
        trends=trends_now,
        economy=economy_now,
        assortment=assortment,
    )
    season_tables = tables.replace(
        weather=weather_season,
        events=G._conform("events", events_all),
        trends=trends_season,
        economy=economy_season,
    )
    return tables, season_tables


def _fashion_truth(
    b: G._Built, alloc: G._Allocation, hist: G._History, season_tables: Tables
) -> Truth:
    """The ground truth of a fashion network."""
    cat = b.catalog
    store_ids = b.stores.frame["store_id"].to_list()
    skus = cat.frame["sku"].to_list()
    ids_s = pl.Series("store_id", store_ids, dtype=pl.String)
    sku_s = pl.Series("sku", skus, dtype=pl.String)
    wh_id = C.WAREHOUSE[0]
    f = b.factors
    wh_k = np.flatnonzero(alloc.warehouse > 0)
    pair_store = ids_s.gather(alloc.ps)
    pair_sku = sku_s.gather(alloc.pk)
    seg_names, seg, size_curves = _fashion_segments(b)
    position = pl.DataFrame(
        {
            "store_id": pl.concat(
                [pair_store, pl.Series("store_id", [wh_id] * wh_k.size, dtype=pl.String)]
            ),
            "sku": pl.concat([pair_sku, sku_s.gather(wh_k)]),
            "on_hand": np.concatenate([hist.final, alloc.warehouse[wh_k]]),
        }
    )
    initial = pl.DataFrame(
        {
            "store_id": pl.concat(
                [pair_store, pl.Series("store_id", [wh_id] * wh_k.size, dtype=pl.String)]
            ),
            "sku": pl.concat([pair_sku, sku_s.gather(wh_k)]),
            "units": np.concatenate([alloc.units, alloc.warehouse[wh_k]]),
        }
    )
    tag_names = ["", *D.TREND_TAGS]
    truth_products = pl.DataFrame(
        {
            "sku": skus,
            "elasticity": f.elasticity,
            "base_rate": f.sku_base,
            "style_group": [D.STYLE_GROUPS[int(g)] for g in cat.sku_group],
            "weather_class": [D.WEATHER_CLASSES[int(w)] for w in cat.sku_weather],
            "trend_tag": [tag_names[int(t)] or None for t in cat.sku_tag],
        },
        schema={
            "sku": pl.String,
            "elasticity": pl.Float64,
            "base_rate": pl.Float64,
            "style_group": pl.String,
            "weather_class": pl.String,
            "trend_tag": pl.String,
        },
    )
    truth_stores = pl.DataFrame(
        {
            "store_id": store_ids,
            "segment": seg_names,
            "scale": b.stores.scale,
            "size_shift": b.stores.size_shift,
            "trend_sensitivity": np.array(D.TREND_SENSITIVITY)[b.stores.segment],
            "women_only": b.stores.women_only,
        }
    )
    truth = Truth(
        store_ids=store_ids,
        skus=skus,
        segments=seg,
        size_curves=size_curves,
        position=position,
        initial_stock=initial,
        products=truth_products,
        dispersion=C.DISPERSION,
        season_tables=season_tables,
        factors=f,
        stores=truth_stores,
    )
    return truth


def _fashion_segments(b: G._Built) -> tuple[list[str], pl.DataFrame, pl.DataFrame]:
    """Segment names per store, the ``segments`` truth frame and the true size curves."""
    cat = b.catalog
    store_ids = b.stores.frame["store_id"].to_list()
    seg_names = [D.SEGMENTS[int(g)] for g in b.stores.segment]
    seg = pl.DataFrame({"store_id": store_ids, "segment": seg_names})
    if b.switches:
        after: list[str | None] = [None] * len(store_ids)
        when: list[dt.date | None] = [None] * len(store_ids)
        for j, new, day in b.switches:
            after[j] = D.SEGMENTS[new]
            when[j] = C.SEASON_START + dt.timedelta(days=day)
        seg = seg.with_columns(
            pl.Series("segment_after", after, dtype=pl.String),
            pl.Series("switch_date", when, dtype=pl.Date),
        )
    curve_frames = []
    groups = sorted(set(cat.sku_size_group))
    for g in groups:
        ladder = G._LADDERS[g]
        share = b.curves[g]
        n_s = len(store_ids)
        curve_frames.append(
            pl.DataFrame(
                {
                    "store_id": np.repeat(np.array(store_ids, dtype=object), len(ladder)).tolist(),
                    "size_group": [g] * (n_s * len(ladder)),
                    "size": list(ladder) * n_s,
                    "share": share.ravel(),
                },
                schema={
                    "store_id": pl.String,
                    "size_group": pl.String,
                    "size": pl.String,
                    "share": pl.Float64,
                },
            )
        )
    size_curves = pl.concat(curve_frames)
    return seg_names, seg, size_curves


def _fashion_prices(products: pl.DataFrame, promo_price: np.ndarray, n_days: int) -> StylePrices:
    """Declared prices of a fashion network: its network-wide promotions (the spring sale) and
    the clearance calendar counted back from every style's season end."""
    ends = products.group_by("style", maintain_order=True).agg(pl.col("season_end").max())
    styles = ends["style"].to_list()
    factor = np.empty((n_days, len(styles)))
    promotion = np.zeros((n_days, len(styles)), dtype=np.bool_)
    for j, end in enumerate(ends["season_end"].to_list()):
        md = calendar_factors(n_days, (end - C.SEASON_START).days, C.MARKDOWN_CALENDAR)
        factor[:, j] = np.minimum(md, promo_price)
        promotion[:, j] = promo_price < md
    return StylePrices(C.SEASON_START, tuple(styles), factor, promotion)
