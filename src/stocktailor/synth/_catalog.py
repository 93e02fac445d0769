"""The catalogue: styles x colours x sizes with prices, tags and season ends."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from stocktailor.synth import _data as D
from stocktailor.synth._common import (
    FloatArray,
    IntArray,
    _rng,
)


@dataclass
class _Catalog:
    frame: pl.DataFrame  # products table
    sku_style: IntArray
    sku_sc: IntArray
    sku_base: FloatArray  # style popularity x colour share (relative, normalised later)
    sku_group: IntArray
    sku_weather: IntArray
    sku_tag: IntArray  # 0 = none, 1.. = D.TREND_TAGS index + 1
    sku_size: list[str]
    sku_size_group: list[str]
    sku_range: IntArray  # offered size-run id
    ranges: list[tuple[str, ...]]
    sku_gender: list[str]
    elasticity: FloatArray
    style_decay: FloatArray  # per style, per week
    n_styles: int
    n_sc: int


_SEED_STYLES: tuple[tuple[str, str, int], ...] = (
    # (template name, gender, colours)
    ("Classic Trench Coat", "W", 3),
    ("Classic Trench Coat", "M", 2),
    ("Wool Overcoat", "W", 2),
    ("Wool Overcoat", "M", 2),
    ("Puffer Jacket", "U", 2),
    ("Rain Shell", "U", 2),
    ("Bright Runner Sneaker", "U", 3),
    ("Court Sneaker", "U", 2),
    ("Chelsea Boot", "W", 2),
    ("Slide Sandal", "U", 2),
    ("Linen Shirt", "M", 2),
    ("Linen Shirt", "W", 2),
    ("Sundress", "W", 3),
    ("Wrap Dress", "W", 2),
    ("Graphic Tee", "U", 3),
    ("Hoodie", "U", 2),
    ("Oxford Shirt", "M", 2),
    ("Slim Jeans", "W", 2),
    ("Slim Jeans", "M", 2),
    ("Chino Shorts", "M", 2),
    ("Knit Sweater", "W", 2),
    ("Joggers", "U", 2),
    ("Leggings", "W", 2),
    ("Chinos", "M", 2),
    ("Leather Loafer", "M", 2),
    ("Espadrille", "W", 2),
    ("Denim Jacket", "W", 2),
    ("Polo Shirt", "M", 2),
    ("Leather Belt", "U", 2),
)

_COLOR_CODE_LEN = 3


def _size_run(t: D.StyleTemplate, gender: str) -> tuple[str, ...]:
    if t.size_group == "apparel":
        return D.APPAREL_SIZES
    if t.size_group == "belt":
        return D.BELT_SIZES
    if gender == "W":
        return D.FOOTWEAR_SIZES[:7]  # 36..42
    if gender == "M":
        return D.FOOTWEAR_SIZES[3:]  # 39..45
    return D.FOOTWEAR_SIZES


def _color_code(color: str, used: set[str]) -> str:
    parts = color.replace("-", " ").split()
    code = ("".join(p[0] for p in parts) + parts[-1][1:]).upper()[:_COLOR_CODE_LEN]
    code = code.ljust(_COLOR_CODE_LEN, "X")
    base, i = code, 2
    while code in used:
        code = f"{base[:2]}{i}"
        i += 1
    used.add(code)
    return code


_CATALOG_SCHEMA: dict[str, type[pl.DataType]] = {
    "sku": pl.String,
    "style": pl.String,
    "color": pl.String,
    "size": pl.String,
    "category": pl.String,
    "full_price": pl.Float64,
    "unit_cost": pl.Float64,
    "salvage_value": pl.Float64,
    "season_end": pl.Date,
    "size_order": pl.Int64,
    "style_name": pl.String,
    "gender": pl.String,
    "tags": pl.String,
    "fabric": pl.String,
    "size_group": pl.String,
}

_Style = tuple[D.StyleTemplate, str, tuple[str, ...]]


def _choose_styles(
    scenario: str, rng: np.random.Generator, n_sku_sizes: int | None
) -> list[_Style]:
    """(template, gender, colours) per style: the fixed list of the seed stories, else drawn
    until the catalogue holds ``n_sku_sizes`` SKU-sizes (default 1,000)."""
    tmpl = {t.name: t for t in D.STYLE_TEMPLATES}
    styles: list[_Style] = []
    if scenario == "seed-stories":
        for name, gender, n_col in _SEED_STYLES:
            t = tmpl[name]
            styles.append((t, gender, t.colors[:n_col]))
        return styles
    target = n_sku_sizes if n_sku_sizes is not None else 1000
    total = 0
    order = rng.permutation(len(D.STYLE_TEMPLATES))
    i = 0
    while total < target:
        t = D.STYLE_TEMPLATES[int(order[i % len(order)])]
        i += 1
        if i % len(order) == 0:
            order = rng.permutation(len(D.STYLE_TEMPLATES))
        gender = t.genders[int(rng.integers(len(t.genders)))]
        k = int(rng.integers(2, len(t.colors) + 1))
        cols = tuple(str(c) for c in rng.choice(np.array(t.colors), size=k, replace=False))
        styles.append((t, gender, cols))
        total += k * len(_size_run(t, gender))
    return styles


@dataclass
class _Rows:
    """The catalogue under construction: product columns and per-SKU hidden truths."""

    rows: dict[str, list[object]]
    sku_style: list[int]
    sku_sc: list[int]
    sku_base: list[float]
    sku_group: list[int]
    sku_weather: list[int]
    sku_tag: list[int]
    sku_range: list[int]
    ranges: list[tuple[str, ...]]
    elasticity: list[float]
    sc: int = 0
    n_made: int = 0

    @classmethod
    def empty(cls) -> _Rows:
        return cls({c: [] for c in _CATALOG_SCHEMA}, [], [], [], [], [], [], [], [], [])


def _add_style(
    acc: _Rows,
    rng: np.random.Generator,
    si: int,
    style: _Style,
    season_end: dt.date,
    target_n: int | None,
) -> bool:
    """Append one style's SKU-sizes; True when the SKU-size target is reached."""
    t, gender, cols = style
    rows = acc.rows
    style_id = f"S{si + 1:05d}"
    n_t = len(D.STYLE_TEMPLATES)
    variant = "" if si < n_t else f" {si // n_t + 1}"
    gname = {"W": "Women's", "M": "Men's", "U": "Unisex"}[gender]
    style_name = f"{gname} {t.name}{variant}"
    price = round(t.price * float(rng.uniform(0.85, 1.2))) - 0.01
    cost_share = float(rng.uniform(0.33, 0.45))
    salvage_share = float(rng.uniform(0.15, 0.3))
    end = season_end + dt.timedelta(days=t.season_end_offset_days)
    pop = t.popularity * float(np.exp(rng.normal(0.0, 0.35)))
    shares = rng.dirichlet(np.full(len(cols), 3.0))
    shares = np.sort(shares)[::-1]  # the first (core) colour sells most
    el = float(rng.uniform(1.3, 2.6))
    tag_idx = next((D.TREND_TAGS.index(tg) + 1 for tg in t.tags if tg in D.TREND_TAGS), 0)
    ladder = {"apparel": D.APPAREL_SIZES, "footwear": D.FOOTWEAR_SIZES, "belt": D.BELT_SIZES}[
        t.size_group
    ]
    run = _size_run(t, gender)
    used: set[str] = set()
    for ci, col in enumerate(cols):
        code = _color_code(col, used)
        this_run = run
        done = False
        if target_n is not None and acc.n_made + len(run) > target_n:
            this_run = run[: target_n - acc.n_made]
            done = True
        if this_run not in acc.ranges:
            acc.ranges.append(this_run)
        rid = acc.ranges.index(this_run)
        for size in this_run:
            values: dict[str, object] = {
                "sku": f"{style_id}-{code}-{size}",
                "style": style_id,
                "color": col,
                "size": size,
                "category": t.category,
                "full_price": price,
                "unit_cost": round(price * cost_share, 2),
                "salvage_value": round(price * salvage_share, 2),
                "season_end": end,
                "size_order": ladder.index(size) + 1,
                "style_name": style_name,
                "gender": gender,
                "tags": ";".join(t.tags),
                "fabric": t.fabric,
                "size_group": t.size_group,
            }
            for c, v in values.items():
                rows[c].append(v)
            acc.sku_style.append(si)
            acc.sku_sc.append(acc.sc)
            acc.sku_base.append(pop * float(shares[ci]))
            acc.sku_group.append(D.STYLE_GROUPS.index(t.group))
            acc.sku_weather.append(D.WEATHER_CLASSES.index(t.weather))
            acc.sku_tag.append(tag_idx)
            acc.sku_range.append(rid)
            acc.elasticity.append(el * float(np.exp(rng.normal(0.0, 0.05))))
        acc.n_made += len(this_run)
        acc.sc += 1
        if done:
            return True
    return False


def _build_catalog(
    scenario: str, seed: int, n_sku_sizes: int | None, season_end: dt.date
) -> _Catalog:
    rng = _rng(seed, "catalog")
    styles = _choose_styles(scenario, rng, n_sku_sizes)
    target_n = n_sku_sizes if (scenario != "seed-stories" and n_sku_sizes is not None) else None
    style_decay = rng.uniform(0.0, 0.025, size=len(styles))
    acc = _Rows.empty()
    for si, style in enumerate(styles):
        if _add_style(acc, rng, si, style, season_end, target_n):
            break
    rows = acc.rows
    n_styles = max(acc.sku_style) + 1
    frame = pl.DataFrame(rows, schema=_CATALOG_SCHEMA)
    return _Catalog(
        frame=frame,
        sku_style=np.array(acc.sku_style, dtype=np.int64),
        sku_sc=np.array(acc.sku_sc, dtype=np.int64),
        sku_base=np.array(acc.sku_base, dtype=np.float64),
        sku_group=np.array(acc.sku_group, dtype=np.int64),
        sku_weather=np.array(acc.sku_weather, dtype=np.int64),
        sku_tag=np.array(acc.sku_tag, dtype=np.int64),
        sku_size=[str(x) for x in rows["size"]],
        sku_size_group=[str(x) for x in rows["size_group"]],
        sku_range=np.array(acc.sku_range, dtype=np.int64),
        ranges=acc.ranges,
        sku_gender=[str(x) for x in rows["gender"]],
        elasticity=np.array(acc.elasticity, dtype=np.float64),
        style_decay=style_decay[:n_styles],
        n_styles=n_styles,
        n_sc=acc.sc,
    )
