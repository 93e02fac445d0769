"""Stores, segments, catalogue and size profiles of a foreign network.

Built from how retail chains look, not from the project's demand model: a store's demand is a
share-of-wallet split (segment style mix x style popularity within its group x colour x size),
popularity is long-tailed, size profiles are store-specific draws, and formats carry their own
traffic. Real US cities and product types are reused from the fashion generator's reference
data (they are facts about the world, not modelling choices).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from stocktailor.synth import _data as D
from stocktailor.synth._catalog import _size_run
from stocktailor.synth._common import FloatArray, IntArray
from stocktailor.synth.foreign._spec import ForeignSpec

__all__ = [
    "FORMATS",
    "SEGMENTS",
    "SEGMENT_MIX",
    "Catalogue",
    "Stores",
    "build_catalogue",
    "build_stores",
    "foreign_rng",
    "mix_distance",
]

_STREAMS = {
    "stores": 101,
    "catalogue": 102,
    "weather": 103,
    "events": 104,
    "trends": 105,
    "economy": 106,
    "demand": 107,
    "alloc": 108,
    "history": 109,
    "forecast": 110,
    "sizes": 111,
    "assort": 112,
}


def foreign_rng(seed: int, part: str) -> np.random.Generator:
    """An independent random stream of the foreign generator."""
    return np.random.default_rng([seed, _STREAMS[part]])


SEGMENTS: tuple[str, ...] = ("trend-led", "office", "family", "outdoor")

# Share of a store's demand by style group (columns in D.STYLE_GROUPS order:
# tailoring, streetwear, casual, resort, outdoor, denim, athleisure, occasion).
SEGMENT_MIX: tuple[tuple[float, ...], ...] = (
    (0.05, 0.34, 0.08, 0.06, 0.05, 0.22, 0.12, 0.08),  # trend-led
    (0.32, 0.05, 0.12, 0.05, 0.06, 0.10, 0.06, 0.24),  # office
    (0.03, 0.08, 0.32, 0.06, 0.06, 0.16, 0.26, 0.03),  # family
    (0.04, 0.05, 0.10, 0.22, 0.40, 0.06, 0.10, 0.03),  # outdoor
)

FORMATS: tuple[str, ...] = ("high street", "mall", "retail park", "outlet")
_FORMAT_AREA = {
    "high street": (250.0, 700.0),
    "mall": (500.0, 1100.0),
    "retail park": (900.0, 1800.0),
    "outlet": (700.0, 1500.0),
}
_FORMAT_TRAFFIC = {"high street": 1.2, "mall": 1.1, "retail park": 0.85, "outlet": 0.75}
# P(format | segment) when attributes follow the segment.
_FORMAT_GIVEN_SEGMENT = (
    (0.7, 0.2, 0.05, 0.05),
    (0.55, 0.4, 0.05, 0.0),
    (0.05, 0.35, 0.5, 0.1),
    (0.1, 0.2, 0.4, 0.3),
)
_SEG_INCOME = (1.0, 1.3, 0.9, 1.05)
_SEG_YOUNG = (0.42, 0.27, 0.2, 0.26)
_WAREHOUSE = ("DC-1", "Central Distribution", "Columbus", "Midwest", 39.96, -83.0)


def mix_distance(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Total-variation distance between two style-group mixes (half the L1 distance)."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    return float(0.5 * np.abs(x / x.sum() - y / y.sum()).sum())


@dataclass
class Stores:
    """Selling stores of a foreign network (the distribution centre is added with the tables)."""

    frame: pl.DataFrame
    city_idx: IntArray
    segment: IntArray
    traffic: FloatArray  # (S,) relative traffic, mean 1
    formats: list[str]
    mix: FloatArray  # (S, n_groups) the store's own style-group mix (segment mix x noise)


def _pick_cities(spec: ForeignSpec, rng: np.random.Generator) -> list[int]:
    names = [c.name for c in D.CITIES]
    fixed = [names.index(c) for c in spec.required_cities][: spec.n_stores]
    weights = np.array([c.weight for c in D.CITIES])
    rest = rng.choice(len(D.CITIES), size=spec.n_stores - len(fixed), p=weights / weights.sum())
    return fixed + [int(c) for c in rest]


def _segment_scores(city: D.City) -> FloatArray:
    outdoorsy = city.region in ("Pacific Northwest", "Mountain") or city.coastal_warm > 0.5
    return np.array(
        [
            0.4 + 2.0 * city.creative,
            0.4 + 2.0 * city.business,
            1.0,
            0.5 + (1.2 if outdoorsy else 0.0),
        ]
    )


def build_stores(spec: ForeignSpec, seed: int) -> Stores:
    """Stores in real US cities; segment from city character (or independent of it)."""
    rng = foreign_rng(seed, "stores")
    cities = _pick_cities(spec, rng)
    n = len(cities)
    n_seg = len(SEGMENTS)
    if spec.independent_attributes:
        # every segment equally often, in no relation to anything a retailer can see
        seg = rng.permutation(np.arange(n) % n_seg)
        fmt_idx = rng.choice(len(FORMATS), size=n, p=[0.35, 0.3, 0.25, 0.1])
    else:
        seg = np.empty(n, dtype=np.int64)
        for i, c in enumerate(cities):
            p = _segment_scores(D.CITIES[c])
            seg[i] = rng.choice(n_seg, p=p / p.sum())
        # every segment present with at least three stores when the network allows it
        for g in range(n_seg):
            while (seg == g).sum() < min(3, n // n_seg):
                big = int(np.argmax(np.bincount(seg, minlength=n_seg)))
                seg[rng.choice(np.flatnonzero(seg == big))] = g
        fmt_idx = np.array([rng.choice(len(FORMATS), p=_FORMAT_GIVEN_SEGMENT[int(g)]) for g in seg])
    formats = [FORMATS[int(i)] for i in fmt_idx]
    area = np.round(np.array([rng.uniform(*_FORMAT_AREA[f]) for f in formats]) / 10.0) * 10.0
    traffic = np.sqrt(area / 800.0) * np.array([_FORMAT_TRAFFIC[f] for f in formats])
    traffic = traffic * np.exp(rng.normal(0.0, 0.3, size=n))
    traffic = traffic / traffic.mean()
    base_income = np.array([D.CITIES[c].income_k for c in cities]) * 1000.0
    if spec.independent_attributes:
        income = base_income * np.exp(rng.normal(0.0, 0.25, size=n))
        young = rng.uniform(0.15, 0.45, size=n)
    else:
        income = base_income * np.array([_SEG_INCOME[int(g)] for g in seg])
        income = income * np.exp(rng.normal(0.0, 0.12, size=n))
        young = np.array([_SEG_YOUNG[int(g)] for g in seg]) + rng.normal(0.0, 0.04, size=n)
    mix = np.array(SEGMENT_MIX)[seg] * np.exp(rng.normal(0.0, 0.12, size=(n, len(SEGMENT_MIX[0]))))
    mix = mix / mix.sum(axis=1, keepdims=True)
    lat, lon = [], []
    for c in cities:
        city = D.CITIES[c]
        dist, ang = rng.uniform(0.5, 25.0), rng.uniform(0.0, 2 * math.pi)
        lat.append(round(city.latitude + dist * math.cos(ang) / 111.0, 4))
        lon.append(
            round(
                city.longitude
                + dist * math.sin(ang) / (111.0 * math.cos(math.radians(city.latitude))),
                4,
            )
        )
    ids = [f"S-{101 + i}" for i in range(n)]
    frame = pl.DataFrame(
        {
            "store_id": ids,
            "name": [
                f"{D.CITIES[c].name} {f.title()} {i + 1}"
                for i, (c, f) in enumerate(zip(cities, formats, strict=True))
            ],
            "kind": ["store"] * n,
            "city": [D.CITIES[c].name for c in cities],
            "region": [D.CITIES[c].region for c in cities],
            "country": ["US"] * n,
            "latitude": lat,
            "longitude": lon,
            "format": formats,
            "area_sqm": area,
            "median_income": np.round(income, -2),
            "pct_age_18_34": np.round(np.clip(young, 0.05, 0.8), 3),
        }
    )
    return Stores(
        frame=frame,
        city_idx=np.array(cities, dtype=np.int64),
        segment=seg.astype(np.int64),
        traffic=traffic.astype(np.float64),
        formats=formats,
        mix=mix.astype(np.float64),
    )


def warehouse_row() -> dict[str, object]:
    """The distribution centre's ``stores`` row (capacity added later)."""
    wid, name, city, region, lat, lon = _WAREHOUSE
    return {
        "store_id": wid,
        "name": name,
        "kind": "warehouse",
        "city": city,
        "region": region,
        "country": "US",
        "latitude": lat,
        "longitude": lon,
        "format": "distribution centre",
        "area_sqm": 15000.0,
    }


@dataclass
class Catalogue:
    """Products of a foreign network and the per-SKU facts the truth needs."""

    frame: pl.DataFrame
    sku_style: IntArray  # (K,) style index
    sku_sc: IntArray  # (K,) style-colour index
    sku_group: IntArray  # (K,) style group (D.STYLE_GROUPS)
    sku_weather: IntArray  # (K,) weather class (D.WEATHER_CLASSES)
    sku_share: FloatArray  # (K,) style share within its group x colour share (before sizes)
    sku_size_group: list[str]
    sku_size: list[str]
    style_ids: list[str]
    style_template: list[str]
    n_sc: int


def _templates(spec: ForeignSpec, rng: np.random.Generator) -> list[D.StyleTemplate]:
    """Style templates in catalogue order: story styles first, then groups round-robin."""
    by_name = {t.name: t for t in D.STYLE_TEMPLATES}
    chosen = [by_name[n] for n in spec.story_styles]
    pools: list[list[D.StyleTemplate]] = []
    for group in D.STYLE_GROUPS:
        pool = [t for t in D.STYLE_TEMPLATES if t.group == group and t not in chosen]
        pools.append([pool[int(i)] for i in rng.permutation(len(pool))])
    order = [int(i) for i in rng.permutation(len(D.STYLE_GROUPS))]
    while any(pools):
        for g in order:
            if pools[g]:
                chosen.append(pools[g].pop())
    return chosen


def build_catalogue(spec: ForeignSpec, seed: int) -> Catalogue:
    """Styles x 1-3 colours x sizes, cut to exactly ``n_sku_sizes`` SKU-sizes."""
    rng = foreign_rng(seed, "catalogue")
    rows: dict[str, list[object]] = {
        k: []
        for k in (
            "sku", "style", "color", "size", "category", "full_price", "unit_cost",
            "salvage_value", "size_order", "style_name", "gender", "tags", "size_group",
        )
    }  # fmt: skip
    facts: dict[str, list[int | float | str]] = {
        k: [] for k in ("style", "sc", "group", "weather", "pop", "size_group")
    }
    style_ids: list[str] = []
    style_template: list[str] = []
    n_sc = 0
    templates = _templates(spec, rng)
    ti = 0
    while len(rows["sku"]) < spec.n_sku_sizes:
        t = templates[ti % len(templates)]
        ti += 1
        si = len(style_ids)
        style_id = f"A{2101 + si}"
        gender = t.genders[int(rng.integers(len(t.genders)))]
        style_ids.append(style_id)
        style_template.append(t.name)
        price = round(t.price * float(rng.uniform(0.8, 1.25))) - 0.05
        cost = round(price * float(rng.uniform(0.4, 0.55)), 2)
        salvage = round(price * float(rng.uniform(0.1, 0.35)), 2)
        pop = float(np.exp(rng.normal(0.0, 0.7)))
        n_col = min(len(t.colors), int(rng.integers(1, 4)) if spec.n_sku_sizes >= 150 else 1)
        colours = [t.colors[int(i)] for i in rng.choice(len(t.colors), n_col, replace=False)]
        col_share = rng.dirichlet(np.full(n_col, 1.5))
        ladder = {"apparel": D.APPAREL_SIZES, "footwear": D.FOOTWEAR_SIZES}.get(
            t.size_group, D.BELT_SIZES
        )
        for ci, col in enumerate(colours):
            code = "".join(p[0] for p in col.split("-")).upper() + col[-1].upper()
            for size in _size_run(t, gender):
                if len(rows["sku"]) >= spec.n_sku_sizes:
                    break
                rows["sku"].append(f"{style_id}_{code}{ci}_{size}")
                rows["style"].append(style_id)
                rows["color"].append(col)
                rows["size"].append(size)
                rows["category"].append(t.category)
                rows["full_price"].append(price)
                rows["unit_cost"].append(cost)
                rows["salvage_value"].append(cost if not spec.clearance else salvage)
                rows["size_order"].append(ladder.index(size) + 1)
                rows["style_name"].append(t.name)
                rows["gender"].append(gender)
                rows["tags"].append(";".join(t.tags))
                rows["size_group"].append(t.size_group)
                facts["style"].append(si)
                facts["sc"].append(n_sc)
                facts["group"].append(D.STYLE_GROUPS.index(t.group))
                facts["weather"].append(D.WEATHER_CLASSES.index(t.weather))
                facts["pop"].append(pop * float(col_share[ci]))
                facts["size_group"].append(t.size_group)
            n_sc += 1
    frame = pl.DataFrame(rows).with_columns(
        pl.col("full_price", "unit_cost", "salvage_value").cast(pl.Float64),
        pl.col("size_order").cast(pl.Int64),
    )
    group = np.array(facts["group"], dtype=np.int64)
    weight = np.array(facts["pop"], dtype=np.float64)
    sc = np.array(facts["sc"], dtype=np.int64)
    # a style-colour's popularity counts once per group total, not once per size
    first = np.unique(sc, return_index=True)[1]
    group_pop = np.bincount(group[first], weights=weight[first], minlength=len(D.STYLE_GROUPS))
    return Catalogue(
        frame=frame,
        sku_style=np.array(facts["style"], dtype=np.int64),
        sku_sc=sc,
        sku_group=group,
        sku_weather=np.array(facts["weather"], dtype=np.int64),
        sku_share=weight / group_pop[group],
        sku_size_group=[str(x) for x in facts["size_group"]],
        sku_size=[str(x) for x in rows["size"]],
        style_ids=style_ids,
        style_template=style_template,
        n_sc=n_sc,
    )


_APPAREL = np.array([0.08, 0.22, 0.32, 0.24, 0.14])


def size_profiles(stores: Stores, seed: int) -> dict[str, FloatArray]:
    """Per size group, ``(S, ladder)`` each store's own size shares (independent draws)."""
    rng = foreign_rng(seed, "sizes")
    n = len(stores.formats)
    out: dict[str, FloatArray] = {}
    out["apparel"] = rng.dirichlet(60.0 * _APPAREL, size=n)
    out["belt"] = rng.dirichlet(40.0 * _APPAREL[::-1], size=n)
    sizes = np.arange(36, 46, dtype=np.float64)
    mu = 40.0 + rng.normal(0.0, 0.8, size=n)
    dens = np.exp(-0.5 * ((sizes[None, :] - mu[:, None]) / 2.1) ** 2)
    out["footwear"] = dens / dens.sum(axis=1, keepdims=True)
    return out


def size_share(stores: Stores, cat: Catalogue, profiles: dict[str, FloatArray]) -> FloatArray:
    """``(S, K)`` share of each SKU's size within its style-colour's offered sizes."""
    ladders = {"apparel": D.APPAREL_SIZES, "footwear": D.FOOTWEAR_SIZES, "belt": D.BELT_SIZES}
    n_s, n_k = len(stores.formats), len(cat.sku_size)
    raw = np.empty((n_s, n_k))
    for k in range(n_k):
        g = cat.sku_size_group[k]
        raw[:, k] = profiles[g][:, ladders[g].index(cat.sku_size[k])]
    tot = np.zeros((n_s, cat.n_sc))
    np.add.at(tot.T, cat.sku_sc, raw.T)
    out: FloatArray = raw / tot[:, cat.sku_sc]
    return out


def ranged(stores: Stores, cat: Catalogue, seed: int) -> npt.NDArray[np.bool_]:
    """``(S, K)`` whether a store ranges a SKU (bigger stores range more style-colours)."""
    rng = foreign_rng(seed, "assort")
    area = stores.frame["area_sqm"].to_numpy()
    rank = (np.argsort(np.argsort(area)) + 0.5) / len(area)
    p = np.clip(0.6 + 0.35 * rank, 0.0, 0.97)
    sc = rng.random((len(area), cat.n_sc)) < p[:, None]
    sc[np.arange(len(area)), rng.integers(cat.n_sc, size=len(area))] = True
    out: npt.NDArray[np.bool_] = sc[:, cat.sku_sc]
    return out
