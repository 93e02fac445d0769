"""Stores: the seed-stories network and generated networks over real US cities."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from stocktailor.synth import _data as D
from stocktailor.synth._common import (
    AREA_RANGE,
    FORMATS,
    SEGMENT_INCOME,
    SEGMENT_SIZE_SHIFT,
    SEGMENT_YOUNG,
    FloatArray,
    IntArray,
    _rng,
)


@dataclass(frozen=True)
class _StoreSpec:
    name: str
    city: str
    latitude: float
    longitude: float
    format: str
    segment: str
    women_only: bool = False


_SEED_STORES: tuple[_StoreSpec, ...] = (
    # classic professional
    _StoreSpec(
        "New York Fifth Avenue",
        "New York",
        40.7616,
        -73.9747,
        "urban flagship",
        "classic professional",
    ),
    _StoreSpec("Boston Back Bay", "Boston", 42.3503, -71.0810, "urban", "classic professional"),
    _StoreSpec(
        "Chicago Magnificent Mile",
        "Chicago",
        41.8948,
        -87.6242,
        "urban flagship",
        "classic professional",
    ),
    _StoreSpec(
        "Washington Georgetown", "Washington", 38.9055, -77.0620, "urban", "classic professional"
    ),
    _StoreSpec(
        "Seattle Downtown", "Seattle", 47.6101, -122.3365, "urban flagship", "classic professional"
    ),
    _StoreSpec(
        "Los Angeles Century City",
        "Los Angeles",
        34.0583,
        -118.4177,
        "mall",
        "classic professional",
    ),
    # urban creative
    _StoreSpec("Brooklyn Williamsburg", "Brooklyn", 40.7142, -73.9614, "urban", "urban creative"),
    _StoreSpec(
        "Portland Pearl District", "Portland", 45.5280, -122.6819, "urban", "urban creative"
    ),
    _StoreSpec("Chicago Wicker Park", "Chicago", 41.9088, -87.6776, "urban", "urban creative"),
    _StoreSpec(
        "Atlanta Little Five Points", "Atlanta", 33.7643, -84.3496, "urban", "urban creative"
    ),
    _StoreSpec("Austin South Congress", "Austin", 30.2500, -97.7494, "urban", "urban creative"),
    _StoreSpec(
        "San Francisco Hayes Valley (women)",
        "San Francisco",
        37.7766,
        -122.4241,
        "urban",
        "urban creative",
        women_only=True,
    ),
    # coastal casual
    _StoreSpec(
        "Santa Monica Third Street", "Santa Monica", 34.0165, -118.4968, "urban", "coastal casual"
    ),
    _StoreSpec("San Diego Gaslamp", "San Diego", 32.7114, -117.1600, "urban", "coastal casual"),
    _StoreSpec("Miami Beach Lincoln Road", "Miami", 25.7907, -80.1400, "urban", "coastal casual"),
    _StoreSpec("Tampa Hyde Park", "Tampa", 27.9378, -82.4780, "mall", "coastal casual"),
    _StoreSpec(
        "Charleston King Street", "Charleston", 32.7833, -79.9333, "urban", "coastal casual"
    ),
    _StoreSpec("Wilmington Mayfaire", "Wilmington", 34.2390, -77.8275, "mall", "coastal casual"),
    # suburban family
    _StoreSpec(
        "Atlanta Marietta (suburban)", "Atlanta", 33.9526, -84.5499, "suburban", "suburban family"
    ),
    _StoreSpec(
        "Austin Round Rock (suburban)", "Austin", 30.5083, -97.6789, "suburban", "suburban family"
    ),
    _StoreSpec(
        "Chicago Naperville (suburban)", "Chicago", 41.7508, -88.1535, "suburban", "suburban family"
    ),
    _StoreSpec(
        "Dallas Plano (suburban)", "Dallas", 33.0198, -96.6989, "suburban", "suburban family"
    ),
    _StoreSpec(
        "Minneapolis Edina Galleria", "Minneapolis", 44.8777, -93.3256, "mall", "suburban family"
    ),
    _StoreSpec("Seattle Bellevue Square", "Seattle", 47.6159, -122.2037, "mall", "suburban family"),
    # value outlet
    _StoreSpec("Orlando Vineland Outlet", "Orlando", 28.3870, -81.4920, "outlet", "value outlet"),
    _StoreSpec("Phoenix Anthem Outlet", "Phoenix", 33.8670, -112.1400, "outlet", "value outlet"),
)

_CITY = {c.name: c for c in D.CITIES}


@dataclass
class _Stores:
    frame: pl.DataFrame  # contract stores table rows of the selling stores (warehouse added later)
    city_idx: IntArray  # (S,) index into D.CITIES
    segment: IntArray  # (S,) index into D.SEGMENTS
    scale: FloatArray  # (S,)
    size_shift: FloatArray  # (S,)
    women_only: npt.NDArray[np.bool_]
    formats: list[str]


def _km_offset(lat: float, dlat_km: float, dlon_km: float) -> tuple[float, float]:
    return dlat_km / 111.0, dlon_km / (111.0 * math.cos(math.radians(lat)))


# people per km2 around a store, and footfall relative to the area's, by format
_FORMAT_DENSITY = {
    "urban flagship": 9000.0,
    "urban": 7000.0,
    "mall": 2500.0,
    "suburban": 1200.0,
    "outlet": 600.0,
}
_FORMAT_FOOTFALL = {
    "urban flagship": 1.0,
    "urban": 1.35,
    "mall": 1.05,
    "suburban": 0.85,
    "outlet": 0.8,
}


def _drawn_specs(rng: np.random.Generator, n_stores: int) -> list[_StoreSpec]:
    """``n_stores`` stores drawn over the cities (format, segment, location; 3% women-only)."""
    weights = np.array([c.weight for c in D.CITIES])
    cities = rng.choice(len(D.CITIES), size=n_stores, p=weights / weights.sum())
    specs = []
    counters: dict[tuple[str, str], int] = {}
    for ci in cities:
        c = D.CITIES[int(ci)]
        fp = np.array([0.12 * (c.weight >= 4) + 0.03, 0.25 + 0.2 * c.creative, 0.3, 0.3, 0.08])
        fmt = FORMATS[int(rng.choice(len(FORMATS), p=fp / fp.sum()))]
        score = np.array(
            [
                1.7 * c.creative + (0.6 if fmt == "urban" else -0.6) - 0.4,
                1.2 if fmt in ("suburban", "mall") else -0.6,
                2.8 * c.coastal_warm + (0.2 if fmt != "outlet" else -0.5) - 0.7,
                1.1 * c.business
                + (0.9 if fmt == "urban flagship" else 0.0)
                + (0.3 if fmt == "mall" else -0.3),
                3.0 if fmt == "outlet" else -1.5,
            ]
        ) + rng.gumbel(0.0, 0.45, size=5)
        seg_name = D.SEGMENTS[int(np.argmax(score))]
        radius = (0.5, 3.0) if fmt in ("urban", "urban flagship") else (8.0, 35.0)
        dist = rng.uniform(*radius)
        ang = rng.uniform(0.0, 2 * math.pi)
        dlat, dlon = _km_offset(c.latitude, dist * math.cos(ang), dist * math.sin(ang))
        key = (c.name, fmt)
        counters[key] = counters.get(key, 0) + 1
        label = fmt.title() if fmt != "urban flagship" else "Flagship"
        name = f"{c.name} {label} {counters[key]}"
        specs.append(
            _StoreSpec(
                name,
                c.name,
                round(c.latitude + dlat, 4),
                round(c.longitude + dlon, 4),
                fmt,
                seg_name,
            )
        )
    n_women = max(1, round(0.03 * n_stores))
    for i in rng.choice(n_stores, size=n_women, replace=False):
        s = specs[int(i)]
        specs[int(i)] = _StoreSpec(
            s.name + " (women)",
            s.city,
            s.latitude,
            s.longitude,
            s.format,
            s.segment,
            women_only=True,
        )
    return specs


def _build_stores(scenario: str, seed: int, n_stores: int) -> _Stores:
    rng = _rng(seed, "stores")
    city_names = [c.name for c in D.CITIES]
    specs: list[_StoreSpec]
    if scenario == "seed-stories":
        specs = list(_SEED_STORES)
        if n_stores < len(specs):
            specs = specs[:n_stores]
    else:
        specs = _drawn_specs(rng, n_stores)
    n = len(specs)
    width = max(3, len(str(n)))
    ids = [f"ST{i + 1:0{width}d}" for i in range(n)]
    city_idx = np.array([city_names.index(s.city) for s in specs], dtype=np.int64)
    seg = np.array([D.SEGMENTS.index(s.segment) for s in specs], dtype=np.int64)
    formats = [s.format for s in specs]
    area = np.array([rng.uniform(*AREA_RANGE[f]) for f in formats])
    area = np.round(area / 10.0) * 10.0
    scale = (area / 900.0) ** 0.6 * np.array([_FORMAT_FOOTFALL[f] for f in formats])
    scale = scale * np.exp(rng.normal(0.0, 0.18, size=n))
    scale = scale / scale.mean()
    region_shift = np.array([D.REGION_SIZE_SHIFT[D.CITIES[int(c)].region] for c in city_idx])
    size_shift = region_shift + np.array([SEGMENT_SIZE_SHIFT[int(g)] for g in seg])
    size_shift = size_shift + rng.normal(0.0, 0.15, size=n)
    income = np.array([D.CITIES[int(c)].income_k for c in city_idx]) * 1000.0
    income = (
        income
        * np.array([SEGMENT_INCOME[int(g)] for g in seg])
        * np.exp(rng.normal(0.0, 0.15, size=n))
    )
    young = np.array([SEGMENT_YOUNG[int(g)] for g in seg]) + rng.normal(0.0, 0.05, size=n)
    density = np.array([_FORMAT_DENSITY[f] for f in formats]) * np.exp(
        rng.normal(0.0, 0.35, size=n)
    )
    frame = pl.DataFrame(
        {
            "store_id": ids,
            "name": [s.name for s in specs],
            "kind": ["store"] * n,
            "city": [s.city for s in specs],
            "region": [D.CITIES[int(c)].region for c in city_idx],
            "country": ["US"] * n,
            "latitude": [s.latitude for s in specs],
            "longitude": [s.longitude for s in specs],
            "format": formats,
            "area_sqm": area,
            "capacity_units": [0] * n,  # set after the initial allocation
            "state": [D.CITIES[int(c)].state for c in city_idx],
            "climate_zone": [D.CITIES[int(c)].climate_zone for c in city_idx],
            "median_income": np.round(income, -2),
            "pct_age_18_34": np.round(np.clip(young, 0.05, 0.8), 3),
            "population_density": np.round(density, 0),
        },
        schema_overrides={"capacity_units": pl.Int64},
    )
    return _Stores(
        frame=frame,
        city_idx=city_idx,
        segment=seg,
        scale=scale.astype(np.float64),
        size_shift=size_shift.astype(np.float64),
        women_only=np.array([s.women_only for s in specs], dtype=np.bool_),
        formats=formats,
    )
