"""A tiny hand-made season with known demand, to exercise the simulator without the generator.

The demand rate of each (store, sku) is constant over the season (units per day) and scales
with price as ``price_factor ** -elasticity``; draws are negative binomial with size
``dispersion`` (Poisson when infinite).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from stocktailor.contract import TABLE_SPECS, Tables
from stocktailor.simulate._types import FloatArray, IntArray

__all__ = ["ToyNetwork", "ToyTruth", "toy_network"]


@dataclass
class ToyTruth:
    """Ground truth of a toy season (see the module docstring)."""

    store_ids: tuple[str, ...]
    skus: tuple[str, ...]
    rates: FloatArray
    initial_stock: pl.DataFrame
    season_tables: Tables
    elasticity: float = 1.5
    dispersion: float = 5.0
    segments: pl.DataFrame | None = None
    calls: list[tuple[dt.date, dt.date]] = field(default_factory=list)

    def expected_demand(self, start: dt.date, end: dt.date, price_factor: Any = None) -> FloatArray:
        """True mean units per day, shape (days, stores, skus), ``start..end`` inclusive."""
        n = (end - start).days + 1
        self.calls.append((start, end))
        out = np.broadcast_to(self.rates, (n, *self.rates.shape)).copy()
        if price_factor is not None:
            pf = np.asarray(price_factor, dtype=np.float64)
            lift = pf ** (-self.elasticity)
            if lift.ndim == 1:
                out *= lift[:, None, None]
            else:
                out *= lift[:, None, :]
        return out

    def sample_demand(self, rate: FloatArray, rng: np.random.Generator) -> IntArray:
        """Negative-binomial draws (Poisson when ``dispersion`` is infinite)."""
        if not np.isfinite(self.dispersion):
            return rng.poisson(rate).astype(np.int64)
        r = self.dispersion
        return rng.negative_binomial(r, r / (r + rate)).astype(np.int64)


@dataclass
class ToyNetwork:
    """A network with a toy truth (the :class:`~stocktailor.simulate.core.SeasonNetwork` shape)."""

    tables: Tables
    season_start: dt.date
    season_end: dt.date
    truth: ToyTruth
    markdown_calendar: tuple[tuple[int, float], ...] | None = None

    @property
    def as_of(self) -> dt.date:
        return self.season_start - dt.timedelta(days=1)


def toy_network(
    rates: Sequence[Sequence[float]],
    stock: Sequence[Sequence[int]],
    *,
    warehouse: Sequence[int] | None = None,
    season_start: dt.date = dt.date(2026, 3, 2),
    weeks: int = 8,
    prices: Sequence[float] | None = None,
    sizes: Sequence[str] | None = None,
    dispersion: float = 5.0,
    elasticity: float = 1.5,
    coords: Sequence[tuple[float, float]] | None = None,
    segments: Sequence[str] | None = None,
    season_ends: Sequence[dt.date] | None = None,
    markdown_calendar: Sequence[tuple[int, float]] | None = None,
) -> ToyNetwork:
    """Build a toy network.

    Parameters
    ----------
    rates
        True demand per (store, sku), units per day.
    stock
        Initial units per (store, sku).
    warehouse
        Initial units per sku at the warehouse ``WH`` (default none).
    weeks
        Season length, weeks.
    prices
        Full price per sku, currency (default 50, 60, ...).
    sizes
        Size per sku; all skus belong to one style-colour ``S1-BLK`` (default S, M, L, ...).
    coords
        (latitude, longitude) per store (default a line of stores 50 km apart).
    segments
        Segment per store (the truth's ``segments``).
    season_ends
        Last selling day per sku (default: the season's last day).
    markdown_calendar
        The season's clearance, ``(weeks before season end, price factor)`` steps (default
        none declared: the simulator falls back to the settings).
    """
    r = np.asarray(rates, dtype=np.float64)
    n_s, n_k = r.shape
    store_ids = tuple(f"S{i + 1:02d}" for i in range(n_s))
    skus = tuple(f"SKU{k + 1:02d}" for k in range(n_k))
    season_end = season_start + dt.timedelta(days=7 * weeks - 1)
    price = list(prices) if prices is not None else [50.0 + 10 * k for k in range(n_k)]
    ladder = ["XS", "S", "M", "L", "XL", "XXL", "3XL", "4XL"]
    size = list(sizes) if sizes is not None else [ladder[k % len(ladder)] for k in range(n_k)]
    xy = list(coords) if coords is not None else [(40.0, -74.0 + 0.6 * i) for i in range(n_s)]
    stores = pl.DataFrame(
        {
            "store_id": [*store_ids, "WH"],
            "kind": ["store"] * n_s + ["warehouse"],
            "latitude": [p[0] for p in xy] + [40.5],
            "longitude": [p[1] for p in xy] + [-75.0],
            "city": [f"City{i}" for i in range(n_s)] + ["Depot"],
        }
    )
    products = pl.DataFrame(
        {
            "sku": list(skus),
            "style": ["S1"] * n_k,
            "color": ["BLK"] * n_k,
            "size": size,
            "category": ["tops"] * n_k,
            "full_price": price,
            "unit_cost": [p * 0.4 for p in price],
            "salvage_value": [p * 0.3 for p in price],
            "season_end": list(season_ends) if season_ends is not None else [season_end] * n_k,
            "size_order": list(range(n_k)),
        }
    )
    init = _initial_stock(np.asarray(stock, dtype=np.int64), store_ids, skus, warehouse)
    tables = _toy_tables(stores, products, init, season_start)
    seg = (
        pl.DataFrame({"store_id": list(store_ids), "segment": list(segments)})
        if segments is not None
        else None
    )
    truth = ToyTruth(
        store_ids=store_ids,
        skus=skus,
        rates=r,
        initial_stock=init,
        season_tables=tables,
        elasticity=elasticity,
        dispersion=dispersion,
        segments=seg,
    )
    return ToyNetwork(
        tables=tables,
        season_start=season_start,
        season_end=season_end,
        truth=truth,
        markdown_calendar=None if markdown_calendar is None else tuple(markdown_calendar),
    )


def _initial_stock(
    st: IntArray, store_ids: tuple[str, ...], skus: tuple[str, ...], warehouse: Sequence[int] | None
) -> pl.DataFrame:
    """``store_id, sku, units`` of every positive cell, then the warehouse ``WH``."""
    rows_s, rows_k, rows_u = [], [], []
    for i, s in enumerate(store_ids):
        for k, sku in enumerate(skus):
            if st[i, k] > 0:
                rows_s.append(s)
                rows_k.append(sku)
                rows_u.append(int(st[i, k]))
    if warehouse is not None:
        for k, u in enumerate(warehouse):
            if u > 0:
                rows_s.append("WH")
                rows_k.append(skus[k])
                rows_u.append(int(u))
    return pl.DataFrame(
        {"store_id": rows_s, "sku": rows_k, "units": rows_u},
        schema={"store_id": pl.String, "sku": pl.String, "units": pl.Int64},
    )


def _toy_tables(
    stores: pl.DataFrame, products: pl.DataFrame, init: pl.DataFrame, season_start: dt.date
) -> Tables:
    """Contract tables before the season: no sales, one snapshot of the initial stock."""
    sales = pl.DataFrame(schema=TABLE_SPECS["sales"].schema)
    inventory = init.select(
        pl.lit(season_start - dt.timedelta(days=1)).alias("date"),
        "store_id",
        "sku",
        pl.col("units").alias("on_hand"),
        pl.lit(0, dtype=pl.Int64).alias("in_transit"),
    )
    return Tables(stores=stores, products=products, sales=sales, inventory=inventory)
