"""Small random networks in the shapes real retail exports have (for the robustness tests).

:func:`raw_network` builds raw tables (typed polars frames, as read from Parquet) that pass
:func:`stocktailor.contract.validate_tables`: a few stores, one size or several, SKUs with no
sales, stores without inventory rows, a single snapshot at the as-of day or weekly snapshots,
returns (negative units), no ``season_end``, no coordinates (lanes instead).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

AS_OF = dt.date(2024, 5, 31)


@dataclass(frozen=True)
class NetworkShape:
    """The knobs of a random network."""

    n_stores: int = 3
    warehouse: bool = True
    n_styles: int = 2
    n_sizes: int = 3
    history_days: int = 28
    snapshots: str = "single"  # single | weekly | start
    returns: bool = True
    unsold_skus: int = 1
    stores_without_inventory: int = 0
    season_end: bool = False
    coordinates: bool = False
    lanes: bool = True
    weather: bool = False
    precip: bool = False
    price_plan: bool = False
    seed: int = 0


_SIZES = ["S", "M", "L", "XL"]


def raw_network(shape: NetworkShape) -> dict[str, pl.DataFrame]:
    """Raw tables of a network with the given shape (as-of :data:`AS_OF`)."""
    rng = np.random.default_rng(shape.seed)
    store_ids = [f"S{i}" for i in range(shape.n_stores)]
    loc_ids = [*store_ids, *(["W1"] if shape.warehouse else [])]
    stores: dict[str, list[object]] = {
        "store_id": loc_ids,
        "kind": ["store"] * len(store_ids) + (["warehouse"] if shape.warehouse else []),
    }
    if shape.coordinates:
        stores["latitude"] = [40.0 + 0.5 * i for i in range(len(loc_ids))]
        stores["longitude"] = [-74.0 + 0.5 * i for i in range(len(loc_ids))]
    sizes = _SIZES[: shape.n_sizes]
    skus = [f"ST{j}-{z}" for j in range(shape.n_styles) for z in sizes]
    products: dict[str, list[object]] = {
        "sku": skus,
        "style": [s.split("-")[0] for s in skus],
        "color": ["black"] * len(skus),
        "size": [s.split("-")[1] for s in skus],
        "category": ["tops" if s.startswith("ST0") else "coats" for s in skus],
        "full_price": [40.0 + 10.0 * (i % 3) for i in range(len(skus))],
        "unit_cost": [15.0] * len(skus),
    }
    if shape.season_end:
        products["season_end"] = [AS_OF + dt.timedelta(days=35)] * len(skus)
    start = AS_OF - dt.timedelta(days=shape.history_days - 1)
    days = [start + dt.timedelta(days=d) for d in range(shape.history_days)]
    selling = skus[: max(0, len(skus) - shape.unsold_skus)]
    sales_rows: list[tuple[dt.date, str, str, int, float]] = []
    for s in store_ids:
        for k in selling:
            rate = float(rng.uniform(0.05, 1.5))
            for d in days:
                u = int(rng.poisson(rate))
                if shape.returns and rng.random() < 0.04:
                    u -= int(rng.integers(1, 4))
                if u:
                    sales_rows.append((d, s, k, u, 40.0 * u))
    sales = pl.DataFrame(
        sales_rows,
        schema={
            "date": pl.Date,
            "store_id": pl.String,
            "sku": pl.String,
            "units": pl.Int64,
            "revenue": pl.Float64,
        },
        orient="row",
    )
    if sales.is_empty():
        # The contract wants at least one sales row.
        sales = pl.DataFrame(
            {
                "date": [AS_OF],
                "store_id": [store_ids[0]],
                "sku": [skus[0]],
                "units": [1],
                "revenue": [40.0],
            }
        )
    if shape.snapshots == "single":
        snap_days = [AS_OF]
    elif shape.snapshots == "start":
        snap_days = [start - dt.timedelta(days=1), AS_OF]
    else:
        snap_days = [AS_OF - dt.timedelta(days=7 * w) for w in range(shape.history_days // 7 + 1)]
    no_inv = set(store_ids[: shape.stores_without_inventory])
    inv_rows: list[tuple[dt.date, str, str, int]] = []
    for d in snap_days:
        for loc in loc_ids:
            if loc in no_inv:
                continue
            for k in skus:
                q = int(rng.integers(0, 30 if loc == "W1" else 6))
                if q or rng.random() < 0.5:
                    inv_rows.append((d, loc, k, q))
    if not inv_rows:
        inv_rows.append((AS_OF, loc_ids[-1], skus[0], 1))
    inventory = pl.DataFrame(
        inv_rows,
        schema={"date": pl.Date, "store_id": pl.String, "sku": pl.String, "on_hand": pl.Int64},
        orient="row",
    )
    raw: dict[str, pl.DataFrame] = {
        "stores": pl.DataFrame(stores),
        "products": pl.DataFrame(products),
        "sales": sales,
        "inventory": inventory,
    }
    if shape.lanes and len(loc_ids) > 1:
        pairs = [(a, b) for a in loc_ids for b in loc_ids if a != b]
        raw["lanes"] = pl.DataFrame(
            {
                "from_id": [a for a, _ in pairs],
                "to_id": [b for _, b in pairs],
                "cost_per_unit": [0.5] * len(pairs),
                "cost_per_shipment": [20.0] * len(pairs),
                "lead_time_days": [2] * len(pairs),
            },
            schema={
                "from_id": pl.String,
                "to_id": pl.String,
                "cost_per_unit": pl.Float64,
                "cost_per_shipment": pl.Float64,
                "lead_time_days": pl.Int64,
            },
        )
    if shape.weather:
        wdays = [*days, *(AS_OF + dt.timedelta(days=d) for d in range(1, 8))]
        weather: dict[str, list[object]] = {
            "date": [d for d in wdays for _ in store_ids],
            "store_id": [s for _ in wdays for s in store_ids],
            "temp_c": [float(rng.normal(15, 5)) for _ in wdays for _ in store_ids],
        }
        if shape.precip:
            weather["precip_mm"] = [float(rng.exponential(1.0)) for _ in wdays for _ in store_ids]
        raw["weather"] = pl.DataFrame(weather)
    if shape.price_plan:
        raw["price_plan"] = pl.DataFrame(
            {
                "start_date": [AS_OF + dt.timedelta(days=1)],
                "end_date": [AS_OF + dt.timedelta(days=14)],
                "scope": ["all"],
                "scope_id": [None],
                "style": ["ST0"],
                "sku": [None],
                "price_factor": [0.7],
                "promotion": [True],
            },
            schema={
                "start_date": pl.Date,
                "end_date": pl.Date,
                "scope": pl.String,
                "scope_id": pl.String,
                "style": pl.String,
                "sku": pl.String,
                "price_factor": pl.Float64,
                "promotion": pl.Boolean,
            },
        )
    return raw
