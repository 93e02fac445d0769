"""Store features for behaviour-based clustering.

A store is described by how its customers buy over a rolling window of sales:

* ``category_mix`` and ``attribute_mix``: the share of the store's selling rate that goes to each
  category, tag, colour family, price band and other product attribute (log shares);
* ``velocity``: units per in-stock SKU-day and units per day;
* ``price``: the lift in selling rate while a SKU is marked down (price sensitivity);
* ``size``: the share of small and large sizes and the mean size position, apparel and footwear
  separately;
* ``weather``: how the store's daily sales move with temperature and rain;
* ``demographics`` / ``format`` / ``climate``: attributes from the stores table.

Rates are **censoring-aware**: a SKU's rate at a store is units sold per *in-stock* day, so a
store that sold out of a category is not read as "not interested" in it; a store that never had a
category in stock gets the network average for that share (no information, not zero interest).

Feature columns are named ``"<group>__<key>"``; :func:`feature_groups` recovers the group and
:func:`feature_label` a short human label.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from stocktailor.censoring import net_daily_demand
from stocktailor.contract import Tables

__all__ = [
    "FEATURE_GROUPS",
    "StoreFeatures",
    "StyleBasis",
    "build_store_features",
    "color_family",
    "feature_group",
    "feature_label",
    "pair_exposure",
    "size_group",
]

logger = logging.getLogger(__name__)

FEATURE_GROUPS: tuple[str, ...] = (
    "style_mix",
    "category_mix",
    "attribute_mix",
    "velocity",
    "price",
    "size",
    "weather",
    "demographics",
    "format",
    "climate",
)
"""Feature groups; :class:`~stocktailor.config.ClusteringConfig.feature_weights` keys."""

DEFAULT_GROUP_WEIGHTS: dict[str, float] = {
    "style_mix": 2.0,
    "category_mix": 0.25,
    "attribute_mix": 0.25,
    "velocity": 0.0,
    "price": 0.25,
    "size": 0.25,
    "weather": 0.0,
    "demographics": 0.25,
    "format": 0.25,
    "climate": 0.0,
}
"""Default weight of each group (a group's columns share its weight, see :func:`weight_vector`)."""

NO_STYLE_GROUP_WEIGHTS: dict[str, float] = {
    "style_mix": 0.0,
    "category_mix": 1.0,
    "attribute_mix": 1.0,
    "velocity": 0.25,
    "price": 0.25,
    "size": 0.5,
    "weather": 0.25,
    "demographics": 0.5,
    "format": 1.0,
    "climate": 0.0,
}
"""Defaults when the features have no style-mix axes (products without a ``style`` column):
the category and attribute mixes then carry the behaviour."""

_CORE_STORE_COLUMNS = {
    "store_id",
    "name",
    "kind",
    "city",
    "region",
    "country",
    "latitude",
    "longitude",
    "format",
    "area_sqm",
    "capacity_units",
    "climate_zone",
}
_CORE_PRODUCT_COLUMNS = {
    "sku",
    "style",
    "color",
    "size",
    "category",
    "full_price",
    "unit_cost",
    "salvage_value",
    "season_end",
    "size_order",
    "tags",
    "color_family",
    "name",
    "description",
}

_COLOR_FAMILIES: dict[str, tuple[str, ...]] = {
    "bright": (
        "red",
        "orange",
        "yellow",
        "neon",
        "lime",
        "pink",
        "fuchsia",
        "magenta",
        "coral",
        "turquoise",
        "electric",
        "hot",
        "bright",
        "scarlet",
        "cobalt",
        "green",
        "purple",
    ),
    "pastel": (
        "mint",
        "lavender",
        "lilac",
        "blush",
        "peach",
        "baby",
        "pastel",
        "powder",
        "sky",
        "light",
    ),
    "neutral": (
        "white",
        "cream",
        "beige",
        "ecru",
        "ivory",
        "sand",
        "stone",
        "grey",
        "gray",
        "taupe",
        "khaki",
        "camel",
        "natural",
        "oat",
    ),
    "dark": (
        "black",
        "navy",
        "charcoal",
        "brown",
        "burgundy",
        "olive",
        "forest",
        "maroon",
        "dark",
        "chocolate",
        "indigo",
        "denim",
        "blue",
    ),
}


def color_family(color: str) -> str:
    """Colour family of a colour name: ``bright``, ``pastel``, ``neutral``, ``dark`` or ``other``.

    The first family whose keyword appears in the (lower-cased) name wins, in the order pastel,
    bright, neutral, dark, so "light blue"/"sky blue" is pastel and "navy" is dark.
    """
    text = color.lower()
    for family in ("pastel", "bright", "neutral", "dark"):
        if any(re.search(rf"\b{k}", text) for k in _COLOR_FAMILIES[family]):
            return family
    if "light" in text:
        return "pastel"
    return "other"


_LETTER_SIZES = re.compile(r"^(X{0,3}S|S|M|L|X{1,4}L|\dXL|XXS|XS|OS|ONE ?SIZE)$", re.IGNORECASE)
_NUMERIC_SIZE = re.compile(r"^\d{1,2}(\.5)?$")


def size_group(size: str, category: str = "") -> str:
    """``apparel`` (letter sizes), ``footwear`` (numeric sizes or a shoe category) or ``other``."""
    cat = category.lower()
    if any(k in cat for k in ("shoe", "sneaker", "boot", "footwear", "sandal", "trainer")):
        return "footwear"
    text = size.strip()
    if _LETTER_SIZES.match(text):
        return "apparel"
    if _NUMERIC_SIZE.match(text):
        return "footwear"
    return "other"


def feature_group(column: str) -> str:
    """Group of a feature column ``"<group>__<key>"`` (``"other"`` without a prefix)."""
    head, sep, _ = column.partition("__")
    return head if sep else "other"


def feature_label(column: str, sign: float = 1.0) -> str:
    """A short human label of a feature column, worded for a high (``sign>0``) or low value."""
    group, _, key = column.partition("__")
    high = sign >= 0
    if group == "style_mix":
        return f"style-mix axis {key.removeprefix('pc')} {'+' if high else '-'}"
    if group == "category_mix":
        return key.lower() if high else f"few {key.lower()}"
    if group == "attribute_mix":
        attr, _, value = key.partition("=")
        text = value.replace("-", " ").replace("_", " ").lower()
        if attr == "tag":
            pass
        elif attr == "color_family":
            text = f"{text} colours"
        elif attr == "price_band":
            text = f"{text}-price"
        else:
            text = f"{text} {attr.replace('_', ' ')}"
        return text if high else f"few {text}"
    if group == "velocity":
        return (
            ("fast sellers" if high else "slow sellers")
            if key == "sku_rate"
            else ("high volume" if high else "low volume")
        )
    if group == "price":
        return "markdown-driven" if high else "full-price buyers"
    if group == "size":
        kind, _, what = key.partition("_")
        if what == "small_share":
            word = "small sizes" if high else "few small sizes"
        elif what == "large_share":
            word = "large sizes" if high else "few large sizes"
        else:
            word = "larger sizes" if high else "smaller sizes"
        return f"{word} ({kind})"
    if group == "weather":
        if key == "temp_slope":
            return "warm-weather buyers" if high else "cold-weather buyers"
        return "rain lifts sales" if high else "rain-shy"
    if group == "demographics":
        attr, _, value = key.partition("=")
        if value:
            return value.replace("_", " ") if high else f"not {value.replace('_', ' ')}"
        m = re.match(r"pct_age_(\d+)_(\d+)", attr)
        if m:
            age = f"{m.group(1)}-{m.group(2)}"
            return age if high else f"few {age}"
        name = attr.replace("median_", "").replace("pct_", "").replace("_", " ")
        return f"high {name}" if high else f"low {name}"
    if group in ("format", "climate"):
        attr, _, value = key.partition("=")
        if value:
            return value.replace("_", " ") if high else f"not {value.replace('_', ' ')}"
        name = attr.replace("_", " ")
        if attr == "log_area_sqm":
            name = "store area"
        return f"large {name}" if high else f"small {name}"
    return column if high else f"low {column}"


@dataclass(frozen=True)
class StyleBasis:
    """Principal axes of the style mix, to project another window's mix on the same axes.

    Attributes
    ----------
    styles
        Style ids, in column order.
    weights
        Per-style weight (the style's mean units per store over the window, root-mean-square
        normalised to 1): log-ratios of thin styles are mostly sampling noise (variance about
        1 / units) and are down-weighted before the principal axes are taken.
    axes
        ``(n_components, n_styles)`` loadings (orthonormal rows).
    """

    styles: tuple[str, ...]
    weights: npt.NDArray[np.float64]
    axes: npt.NDArray[np.float64]


@dataclass(frozen=True)
class StoreFeatures:
    """Raw (unstandardised) store features.

    Attributes
    ----------
    frame
        ``store_id`` then one Float64 column per feature (``"<group>__<key>"``); may hold NaN
        where a store has no information (imputed with the network mean when standardised).
    start, end
        The sales window the features describe (inclusive dates).
    style_basis
        The principal axes the ``style_mix`` columns were projected on (None without them);
        passing it to :func:`build_store_features` for another window gives comparable axes.
    """

    frame: pl.DataFrame
    start: dt.date | None = None
    end: dt.date | None = None
    style_basis: StyleBasis | None = None

    @property
    def columns(self) -> list[str]:
        """Feature column names (all but ``store_id``)."""
        return [c for c in self.frame.columns if c != "store_id"]


def _snapshot_exposure(
    sales: pl.DataFrame,
    inventory: pl.DataFrame,
    start: dt.date,
    end: dt.date,
) -> pl.DataFrame:
    """Units and in-stock days per (store, sku) from sales and inventory snapshots.

    A snapshot's ``on_hand`` is read as the closing stock of its date. Each snapshot opens an
    interval of days up to the next snapshot (or ``end``). The SKU counts as in stock for the whole
    interval when the snapshot has stock and either the interval's sales did not exhaust it or the
    next snapshot still has stock; otherwise it counts as in stock only up to the interval's last
    sale (when it had stock) or on days with sales (a restock the snapshots did not see).
    Pairs with sales but no snapshot at all count as in stock from their first sale in the window.
    """
    window_sales = sales.filter(pl.col("date").is_between(start, end)).select(
        "date", "store_id", "sku", pl.col("units").cast(pl.Float64).clip(lower_bound=0.0)
    )
    inv = inventory.filter(pl.col("date") <= end).select(
        "date", "store_id", "sku", pl.col("on_hand").cast(pl.Float64)
    )
    day0 = start - dt.timedelta(days=1)
    # the anchor: latest snapshot at or before the day before the window, plus those inside it
    anchor = (
        inv.filter(pl.col("date") <= day0)
        .sort("date")
        .group_by("store_id", "sku")
        .agg(pl.col("date").last(), pl.col("on_hand").last())
    )
    inside = inv.filter(pl.col("date") > day0)
    snaps = pl.concat([anchor.select(inside.columns), inside]).sort("store_id", "sku", "date")
    snaps = snaps.with_columns(
        pl.col("date").shift(-1).over("store_id", "sku").alias("next_date"),
        pl.col("on_hand").shift(-1).over("store_id", "sku").alias("next_on_hand"),
    ).with_columns(
        pl.max_horizontal(pl.col("date") + pl.duration(days=1), pl.lit(start)).alias("first_day"),
        pl.min_horizontal(pl.col("next_date").fill_null(end), pl.lit(end)).alias("last_day"),
    )
    snaps = snaps.filter(pl.col("last_day") >= pl.col("first_day"))
    # sales per interval: join each sale to the latest snapshot strictly before its date
    s = window_sales.sort("date")
    keyed = snaps.select(
        "store_id", "sku", (pl.col("date") + pl.duration(days=1)).alias("interval_start")
    ).sort("interval_start")
    s = s.join_asof(
        keyed,
        left_on="date",
        right_on="interval_start",
        by=["store_id", "sku"],
        strategy="backward",
        check_sortedness=False,
    )
    per_interval = s.group_by("store_id", "sku", "interval_start").agg(
        pl.col("units").sum().alias("units"),
        pl.col("date").filter(pl.col("units") > 0).max().alias("last_sale"),
        (pl.col("units") > 0).sum().cast(pl.Float64).alias("sale_days"),
    )
    snaps = snaps.with_columns((pl.col("date") + pl.duration(days=1)).alias("interval_start")).join(
        per_interval.filter(pl.col("interval_start").is_not_null()),
        on=["store_id", "sku", "interval_start"],
        how="left",
    )
    length = (pl.col("last_day") - pl.col("first_day")).dt.total_days().cast(pl.Float64) + 1.0
    units = pl.col("units").fill_null(0.0)
    full = (pl.col("on_hand") > 0) & (
        (units < pl.col("on_hand")) | (pl.col("next_on_hand").fill_null(0.0) > 0)
    )
    until_last = (pl.col("last_sale") - pl.col("first_day")).dt.total_days().cast(pl.Float64) + 1.0
    exposure = (
        pl.when(full)
        .then(length)
        .when((pl.col("on_hand") > 0) & (units > 0))
        .then(until_last)
        .otherwise(pl.col("sale_days").fill_null(0.0))
    )
    covered = snaps.group_by("store_id", "sku").agg(
        units.sum().alias("units"), exposure.sum().alias("exposure_days")
    )
    # sales of pairs with no snapshot at all (or sales before the first snapshot)
    first_snap = snaps.group_by("store_id", "sku").agg(pl.col("first_day").min().alias("fs"))
    orphan = (
        window_sales.join(first_snap, on=["store_id", "sku"], how="left")
        .filter(pl.col("fs").is_null() | (pl.col("date") < pl.col("fs")))
        .group_by("store_id", "sku")
        .agg(
            pl.col("units").sum().alias("units"),
            (
                (pl.col("fs").first().fill_null(end + dt.timedelta(days=1)) - pl.col("date").min())
                .dt.total_days()
                .cast(pl.Float64)
            ).alias("exposure_days"),
        )
    )
    out = (
        pl.concat([covered, orphan])
        .group_by("store_id", "sku")
        .agg(pl.col("units").sum(), pl.col("exposure_days").sum())
    )
    # a day with a sale is an in-stock day whatever the snapshots say
    return out.with_columns(pl.max_horizontal("exposure_days", pl.lit(0.0)).alias("exposure_days"))


def pair_exposure(
    tables: Tables,
    start: dt.date,
    end: dt.date,
    *,
    in_stock: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Units sold and in-stock days per (store, sku) over ``[start, end]``.

    Parameters
    ----------
    tables
        The network's tables (sales and inventory snapshots are used).
    start, end
        Inclusive window.
    in_stock
        Optional ``date, store_id, sku, in_stock_share`` (0..1 share of the day the SKU was on
        the shelf), e.g. from stockout hours; replaces the snapshot-based estimate.

    Returns
    -------
    pl.DataFrame
        ``store_id, sku, units`` (units over the window, returns netted out and floored at 0),
        ``exposure_days`` (in-stock days) and ``rate`` (units per in-stock day; null without
        exposure).
    """
    if in_stock is not None:
        window = in_stock.filter(pl.col("date").is_between(start, end))
        sold = (
            net_daily_demand(tables.sales, start=start, end=end)
            .daily.group_by("store_id", "sku")
            .agg(pl.col("units").cast(pl.Float64).sum().clip(lower_bound=0.0).alias("units"))
        )
        exp = window.group_by("store_id", "sku").agg(
            pl.col("in_stock_share").cast(pl.Float64).sum().alias("exposure_days")
        )
        out = exp.join(sold, on=["store_id", "sku"], how="full", coalesce=True).with_columns(
            pl.col("units").fill_null(0.0), pl.col("exposure_days").fill_null(0.0)
        )
    else:
        out = _snapshot_exposure(net_daily_demand(tables.sales).daily, tables.inventory, start, end)
    return out.with_columns(
        pl.when(pl.col("exposure_days") > 0)
        .then(pl.col("units") / pl.col("exposure_days"))
        .otherwise(None)
        .alias("rate")
    ).sort("store_id", "sku")


def _product_attributes(products: pl.DataFrame) -> pl.DataFrame:
    """Long ``sku, attribute, value`` of the mix attributes (tags, colour family, price band...)."""
    parts: list[pl.DataFrame] = []
    if "tags" in products.columns:
        parts.append(
            products.select(
                "sku",
                pl.lit("tag").alias("attribute"),
                pl.col("tags").cast(pl.String).fill_null("").str.split(";").alias("value"),
            )
            .explode("value")
            .with_columns(pl.col("value").str.strip_chars())
            .filter(pl.col("value") != "")
        )
    if "color_family" in products.columns:
        fam = products.select("sku", pl.col("color_family").cast(pl.String).alias("value"))
    else:
        fam = products.select(
            "sku",
            pl.col("color")
            .cast(pl.String)
            .map_elements(color_family, return_dtype=pl.String)
            .alias("value"),
        )
    if fam["value"].n_unique() > 1:
        parts.append(fam.select("sku", pl.lit("color_family").alias("attribute"), "value"))
    # price band: terciles of full price within the category
    banded = products.with_columns(
        (pl.col("full_price").rank("average").over("category") / pl.len().over("category")).alias(
            "_q"
        )
    ).select(
        "sku",
        pl.lit("price_band").alias("attribute"),
        pl.when(pl.col("_q") <= 1 / 3)
        .then(pl.lit("low"))
        .when(pl.col("_q") <= 2 / 3)
        .then(pl.lit("mid"))
        .otherwise(pl.lit("high"))
        .alias("value"),
    )
    if products["full_price"].n_unique() > 2:
        parts.append(banded)
    for col, dtype in products.schema.items():
        if col in _CORE_PRODUCT_COLUMNS or dtype not in (pl.String, pl.Categorical, pl.Boolean):
            continue
        n = products[col].n_unique()
        if 2 <= n <= 12:
            parts.append(
                products.select(
                    "sku",
                    pl.lit(col).alias("attribute"),
                    pl.col(col).cast(pl.String).alias("value"),
                ).filter(pl.col("value").is_not_null())
            )
    if not parts:
        return pl.DataFrame(schema={"sku": pl.String, "attribute": pl.String, "value": pl.String})
    return pl.concat(parts)


def _mix_features(
    pairs: pl.DataFrame, sku_keys: pl.DataFrame, group: str, multi: bool
) -> pl.DataFrame:
    """Log share of each key in the store's rate (``sku_keys``: ``sku, key``).

    A key's rate at a store is its pooled units per in-stock SKU-day; its share is that rate over
    the sum of the rates of all keys (``multi=False``, a partition of the SKUs) or over the store's
    overall rate (``multi=True``, e.g. tags where a SKU has several). Stores without exposure to a
    key get null (imputed later). Log shares use a pseudo-share of 10% of the key's network share.
    """
    joined = pairs.join(sku_keys, on="sku", how="inner")
    by_key = joined.group_by("store_id", "key").agg(
        pl.col("units").sum(), pl.col("exposure_days").sum()
    )
    by_key = by_key.filter(pl.col("exposure_days") > 0).with_columns(
        (pl.col("units") / pl.col("exposure_days")).alias("rate")
    )
    if multi:
        total = (
            pairs.group_by("store_id")
            .agg(pl.col("units").sum(), pl.col("exposure_days").sum())
            .select(
                "store_id",
                (pl.col("units") / pl.col("exposure_days").clip(lower_bound=1e-9)).alias("denom"),
            )
        )
        by_key = by_key.join(total, on="store_id")
    else:
        by_key = by_key.with_columns(pl.col("rate").sum().over("store_id").alias("denom"))
    by_key = by_key.with_columns(
        pl.when(pl.col("denom") > 0)
        .then(pl.col("rate") / pl.col("denom"))
        .otherwise(None)
        .alias("share")
    )
    net = by_key.group_by("key").agg(pl.col("share").mean().alias("net_share"))
    by_key = by_key.join(net, on="key").with_columns(
        ((pl.col("share") + 0.1 * pl.col("net_share") + 1e-6).log()).alias("value"),
        (pl.lit(f"{group}__") + pl.col("key")).alias("column"),
    )
    if by_key.is_empty():
        return pl.DataFrame(schema={"store_id": pl.String})
    return by_key.pivot(on="column", index="store_id", values="value", sort_columns=True)


def _size_features(pairs: pl.DataFrame, products: pl.DataFrame) -> pl.DataFrame:
    """Small/large size shares and mean size position, per size group (apparel, footwear)."""
    if "size_order" not in products.columns:
        return pl.DataFrame(schema={"store_id": pl.String})
    prod = products.select(
        "sku",
        "category",
        pl.col("size").cast(pl.String),
        pl.col("size_order").cast(pl.Float64),
    ).filter(pl.col("size_order").is_not_null())
    groups = [size_group(s, c) for s, c in zip(prod["size"], prod["category"], strict=True)]
    prod = prod.with_columns(pl.Series("size_group", groups, dtype=pl.String)).filter(
        pl.col("size_group") != "other"
    )
    if prod.is_empty():
        return pl.DataFrame(schema={"store_id": pl.String})
    # position of each size in its group's ladder, 0 (smallest) .. 1 (largest)
    ladder = (
        prod.select("size_group", "size_order")
        .unique()
        .with_columns(
            (
                (pl.col("size_order").rank("dense").over("size_group") - 1)
                / (pl.col("size_order").n_unique().over("size_group") - 1).clip(lower_bound=1)
            ).alias("pos")
        )
    )
    prod = prod.join(ladder, on=["size_group", "size_order"])
    by_size = (
        pairs.join(prod.select("sku", "size_group", "pos"), on="sku")
        .group_by("store_id", "size_group", "pos")
        .agg(pl.col("units").sum(), pl.col("exposure_days").sum())
        .filter(pl.col("exposure_days") > 0)
        .with_columns((pl.col("units") / pl.col("exposure_days")).alias("rate"))
    )
    stats = by_size.group_by("store_id", "size_group").agg(
        (pl.col("rate") * pl.col("pos")).sum().alias("num"),
        pl.col("rate").filter(pl.col("pos") <= 1 / 3 + 1e-9).sum().alias("small"),
        pl.col("rate").filter(pl.col("pos") >= 2 / 3 - 1e-9).sum().alias("large"),
        pl.col("rate").sum().alias("total"),
    )
    stats = stats.filter(pl.col("total") > 0).with_columns(
        (pl.col("num") / pl.col("total")).alias("mean_pos"),
        (pl.col("small") / pl.col("total")).alias("small_share"),
        (pl.col("large") / pl.col("total")).alias("large_share"),
    )
    long = stats.unpivot(
        index=["store_id", "size_group"],
        on=["small_share", "large_share"],
        variable_name="what",
    ).with_columns(
        (pl.lit("size__") + pl.col("size_group") + pl.lit("_") + pl.col("what")).alias("column")
    )
    return long.pivot(on="column", index="store_id", values="value", sort_columns=True)


def _price_features(
    tables: Tables, pairs: pl.DataFrame, start: dt.date, end: dt.date
) -> pl.DataFrame:
    """Markdown lift: log(rate while marked down / rate at full price), per unit of discount.

    A (sku, date) is "marked down" when the chain's median price paid is below 95% of full price.
    A store's in-stock SKU-days are split between marked-down and full-price days pro rata to the
    SKU's marked-down days in the window.
    """
    sales = net_daily_demand(tables.sales, start=start, end=end).daily.filter(pl.col("units") > 0)
    prices = tables.products.select("sku", "full_price")
    paid = sales.join(prices, on="sku").with_columns(
        (pl.col("revenue") / pl.col("units") / pl.col("full_price")).alias("factor")
    )
    md = paid.group_by("sku", "date").agg(pl.col("factor").median()).filter(pl.col("factor") < 0.95)
    if md.is_empty():
        return pl.DataFrame(schema={"store_id": pl.String})
    window_len = float((end - start).days + 1)
    md_days = md.group_by("sku").agg(
        pl.len().cast(pl.Float64).alias("md_days"), pl.col("factor").mean().alias("md_factor")
    )
    md_units = (
        sales.join(md.select("sku", "date"), on=["sku", "date"], how="semi")
        .group_by("store_id", "sku")
        .agg(pl.col("units").cast(pl.Float64).sum().alias("md_units"))
    )
    p = (
        pairs.join(md_days, on="sku", how="left")
        .join(md_units, on=["store_id", "sku"], how="left")
        .with_columns(
            pl.col("md_days").fill_null(0.0),
            pl.col("md_units").fill_null(0.0).clip(upper_bound=pl.col("units")),
        )
        .with_columns(
            (pl.col("exposure_days") * pl.col("md_days") / window_len).alias("md_exp"),
        )
    )
    agg = p.group_by("store_id").agg(
        pl.col("md_units").sum(),
        pl.col("md_exp").sum(),
        (pl.col("units") - pl.col("md_units")).sum().alias("fp_units"),
        (pl.col("exposure_days") - pl.col("md_exp")).sum().alias("fp_exp"),
        ((pl.col("md_factor").fill_null(1.0) * pl.col("md_exp")).sum()).alias("fw"),
    )
    agg = agg.filter((pl.col("md_exp") > 0) & (pl.col("fp_exp") > 0)).with_columns(
        (pl.col("fw") / pl.col("md_exp")).alias("depth")
    )
    lift = (
        ((pl.col("md_units") + 0.5) / pl.col("md_exp"))
        / ((pl.col("fp_units") + 0.5) / pl.col("fp_exp"))
    ).log() / (-(pl.col("depth").clip(upper_bound=0.99)).log())
    return agg.select("store_id", lift.alias("price__markdown_lift"))


def _weather_features(tables: Tables, start: dt.date, end: dt.date) -> pl.DataFrame:
    """Slopes of the store's daily log sales (relative to the chain's day) on temperature and rain.

    ``weather__temp_slope``: change in log daily units per +10 °C (temperature relative to the
    store's own window mean); ``weather__rain_effect``: log-ratio on days with >= 1 mm of rain.
    """
    weather = tables.weather
    if weather is None or weather.is_empty():
        return pl.DataFrame(schema={"store_id": pl.String})
    w = weather.filter(pl.col("date").is_between(start, end))
    if "is_forecast" in w.columns:
        w = w.filter(~pl.col("is_forecast").fill_null(False))
    daily = (
        net_daily_demand(tables.sales, start=start, end=end)
        .daily.group_by("store_id", "date")
        .agg(pl.col("units").cast(pl.Float64).sum().clip(lower_bound=0.0).alias("u"))
    )
    d = w.select("date", "store_id", "temp_c", "precip_mm").join(
        daily, on=["store_id", "date"], how="left"
    )
    d = d.with_columns(pl.col("u").fill_null(0.0))
    d = d.with_columns(
        pl.col("u").mean().over("store_id").alias("store_mean"),
        pl.col("u").mean().over("date").alias("day_mean"),
    )
    d = d.with_columns(pl.col("day_mean").mean().alias("grand"))
    d = d.with_columns(
        ((pl.col("u") + 1.0) / (pl.col("store_mean") * pl.col("day_mean") / pl.col("grand") + 1.0))
        .log()
        .alias("y"),
        ((pl.col("temp_c") - pl.col("temp_c").mean().over("store_id")) / 10.0).alias("t"),
        (pl.col("precip_mm") >= 1.0).cast(pl.Float64).alias("r"),
    ).drop_nulls(["y", "t", "r"])
    out_ids: list[str] = []
    slopes: list[float] = []
    rains: list[float] = []
    for (sid,), g in d.group_by(["store_id"], maintain_order=True):
        y = g["y"].to_numpy()
        x = np.column_stack([np.ones(len(g)), g["t"].to_numpy(), g["r"].to_numpy()])
        if len(g) < 10:
            continue
        beta, *_ = np.linalg.lstsq(x.T @ x + np.diag([0.0, 1.0, 1.0]), x.T @ y, rcond=None)
        out_ids.append(str(sid))
        slopes.append(float(beta[1]))
        rains.append(float(beta[2]))
    return pl.DataFrame(
        {"store_id": out_ids, "weather__temp_slope": slopes, "weather__rain_effect": rains},
        schema={
            "store_id": pl.String,
            "weather__temp_slope": pl.Float64,
            "weather__rain_effect": pl.Float64,
        },
    )


STYLE_MIX_COMPONENTS = 8
"""Number of principal axes kept of the climate-adjusted style mix (``style_mix__pc1..``)."""


def _store_mean_temp(tables: Tables, start: dt.date, end: dt.date) -> pl.DataFrame:
    """``store_id, temp_mean``: mean observed temperature of the window, °C (empty if none)."""
    weather = tables.weather
    if weather is None or weather.is_empty():
        return pl.DataFrame(schema={"store_id": pl.String, "temp_mean": pl.Float64})
    w = weather.filter(pl.col("date").is_between(start, end))
    if "is_forecast" in w.columns:
        w = w.filter(~pl.col("is_forecast").fill_null(False))
    return w.group_by("store_id").agg(pl.col("temp_c").cast(pl.Float64).mean().alias("temp_mean"))


def _style_mix_features(
    pairs: pl.DataFrame,
    products: pl.DataFrame,
    temps: pl.DataFrame,
    ids: list[str],
    n_components: int = STYLE_MIX_COMPONENTS,
) -> pl.DataFrame:
    """The ``style_mix__pc*`` columns of :func:`_style_mix` (without the basis)."""
    return _style_mix(pairs, products, temps, ids, n_components)[0]


def _style_mix(
    pairs: pl.DataFrame,
    products: pl.DataFrame,
    temps: pl.DataFrame,
    ids: list[str],
    n_components: int = STYLE_MIX_COMPONENTS,
    basis: StyleBasis | None = None,
) -> tuple[pl.DataFrame, StyleBasis | None]:
    """Principal axes of the climate-adjusted, censoring-aware style mix.

    For store ``s`` and style ``j``: ``L[s, j] = log((u + 1) / (e * r_j * c_s + 1))`` with
    ``u`` the units, ``e`` the in-stock SKU-days, ``r_j`` the chain's rate of the style per
    in-stock SKU-day and ``c_s`` the store's overall ratio of units to that expectation, so the
    store's scale cancels (a mix, not a level) and thin cells shrink toward 0. Rows are centred
    (log-ratio vs the store's own mean). Each style's column is then regressed across stores on
    the store's window-mean temperature (quadratic) and the fitted climate part removed: stores
    of one kind of customer in warm and cold places buy their cold- and warm-weather styles in
    different proportions, which is weather, not who the customers are. Each style is weighted
    by its mean units per store (a log-ratio's sampling variance is about 1 / units, so thin
    styles are mostly noise) and the weighted matrix reduced to its first ``n_components``
    principal axes (scores in weighted log units, not rescaled; the dominant axes carry the
    segment structure, the rest is mostly sampling noise). With ``basis`` (another window's
    axes) its styles, weights and axes are used instead, so the scores are comparable.
    """
    if basis is None and ("style" not in products.columns or len(ids) < 3):
        return pl.DataFrame(schema={"store_id": pl.String}), None
    if basis is not None and "style" not in products.columns:
        return pl.DataFrame(schema={"store_id": pl.String}), None
    g = (
        pairs.filter(pl.col("store_id").is_in(ids))
        .join(products.select("sku", pl.col("style").cast(pl.String)), on="sku", how="inner")
        .group_by("store_id", "style")
        .agg(pl.col("units").cast(pl.Float64).sum(), pl.col("exposure_days").sum())
    )
    styles = list(basis.styles) if basis is not None else sorted(g["style"].unique().to_list())
    if len(styles) < 3:
        return pl.DataFrame(schema={"store_id": pl.String}), None
    s_pos = {sid: i for i, sid in enumerate(ids)}
    j_pos = {st: j for j, st in enumerate(styles)}
    units = np.zeros((len(ids), len(styles)))
    expo = np.zeros((len(ids), len(styles)))
    for sid, st, u, e in g.iter_rows():
        if st in j_pos:
            units[s_pos[sid], j_pos[st]] = u
            expo[s_pos[sid], j_pos[st]] = e
    rate = units.sum(axis=0) / np.maximum(expo.sum(axis=0), 1e-9)
    expected = expo * rate[None, :]
    scale = units.sum(axis=1) / np.maximum(expected.sum(axis=1), 1e-9)
    mix = np.log((units + 1.0) / (expected * scale[:, None] + 1.0))
    mix = mix - mix.mean(axis=1, keepdims=True)
    tm = (
        pl.DataFrame({"store_id": ids}, schema={"store_id": pl.String})
        .join(temps, on="store_id", how="left")["temp_mean"]
        .to_numpy()
        .astype(np.float64)
    )
    ok = np.isfinite(tm)
    if ok.sum() >= 5 and float(np.std(tm[ok])) > 1e-9:
        z = np.where(ok, (tm - tm[ok].mean()) / tm[ok].std(), 0.0)
        design = np.column_stack([np.ones_like(z), z, z**2])
        beta, *_ = np.linalg.lstsq(design[ok], mix[ok], rcond=None)
        mix = mix - design[:, 1:] @ beta[1:]
    if basis is None:
        w = units.mean(axis=0)
        rms = float(np.sqrt(np.mean(w**2)))
        w = w / rms if rms > 0 else np.ones_like(w)
    else:
        w = basis.weights
    mix = mix * w[None, :]
    mix = mix - mix.mean(axis=0, keepdims=True)
    if basis is None:
        m = min(n_components, len(ids) - 1, len(styles) - 1)
        _, _, vt = np.linalg.svd(mix, full_matrices=False)
        axes = vt[:m].copy()
        # sign convention: the largest loading of each axis is positive (deterministic)
        for i in range(m):
            if axes[i, int(np.argmax(np.abs(axes[i])))] < 0:
                axes[i] = -axes[i]
        basis = StyleBasis(styles=tuple(styles), weights=w, axes=axes)
    scores = mix @ basis.axes.T
    data: dict[str, object] = {"store_id": ids}
    for i in range(scores.shape[1]):
        data[f"style_mix__pc{i + 1}"] = scores[:, i]
    return pl.DataFrame(data), basis


def _store_table_features(stores: pl.DataFrame) -> pl.DataFrame:
    """Demographics (numeric attributes), format (one-hot + log area) and climate zone."""
    cols: list[pl.Expr] = [pl.col("store_id")]
    for col, dtype in stores.schema.items():
        if col in _CORE_STORE_COLUMNS:
            continue
        if dtype.is_numeric():
            if stores[col].drop_nulls().n_unique() > 1:
                cols.append(pl.col(col).cast(pl.Float64).alias(f"demographics__{col}"))
        elif dtype in (pl.String, pl.Categorical):
            values = stores[col].drop_nulls().unique().sort().to_list()
            if 2 <= len(values) <= 12:
                cols.extend(
                    (pl.col(col).cast(pl.String) == v)
                    .cast(pl.Float64)
                    .alias(f"demographics__{col}={v}")
                    for v in values
                )
    for col, group in (("format", "format"), ("climate_zone", "climate")):
        if col in stores.columns:
            values = stores[col].drop_nulls().unique().sort().to_list()
            if len(values) >= 2:
                cols.extend(
                    (pl.col(col).cast(pl.String) == v).cast(pl.Float64).alias(f"{group}__{col}={v}")
                    for v in values
                )
    if "area_sqm" in stores.columns and stores["area_sqm"].drop_nulls().n_unique() > 1:
        cols.append(
            pl.col("area_sqm")
            .cast(pl.Float64)
            .clip(lower_bound=1.0)
            .log()
            .alias("format__log_area_sqm")
        )
    return stores.select(cols)


def build_store_features(
    tables: Tables,
    as_of: dt.date,
    *,
    window_days: int = 84,
    in_stock: pl.DataFrame | None = None,
    store_ids: list[str] | None = None,
    style_basis: StyleBasis | None = None,
) -> StoreFeatures:
    """Raw behaviour and attribute features of every selling store.

    Parameters
    ----------
    tables
        The network's tables; ``weather`` is optional.
    as_of
        Last day of the window (sales after it are ignored).
    window_days
        Length of the sales window, days.
    in_stock
        Optional daily ``date, store_id, sku, in_stock_share`` replacing the snapshot-based
        in-stock estimate (see :func:`pair_exposure`).
    store_ids
        Stores to describe (default: every ``kind == 'store'`` row of the stores table).
    style_basis
        Project the style mix on these axes (e.g. another window's
        :attr:`StoreFeatures.style_basis`) instead of this window's own principal axes.

    Returns
    -------
    StoreFeatures
        One row per store, in ``store_ids`` order (sorted ids by default).
    """
    if window_days < 1:
        msg = f"clustering: window_days must be >= 1, got {window_days}"
        raise ValueError(msg)
    start = as_of - dt.timedelta(days=window_days - 1)
    stores = tables.stores.filter(pl.col("kind") == "store")
    ids = sorted(stores["store_id"].to_list()) if store_ids is None else list(store_ids)
    if not ids:
        msg = "stores: no row with kind == 'store' to cluster"
        raise ValueError(msg)
    pairs = pair_exposure(tables, start, as_of, in_stock=in_stock).filter(
        pl.col("store_id").is_in(ids)
    )
    products = tables.products
    base = pl.DataFrame({"store_id": ids}, schema={"store_id": pl.String})
    style_part, basis = _style_mix(
        pairs, products, _store_mean_temp(tables, start, as_of), ids, basis=style_basis
    )
    parts: list[pl.DataFrame] = [style_part]
    cat = products.select("sku", pl.col("category").cast(pl.String).alias("key"))
    parts.append(_mix_features(pairs, cat, "category_mix", multi=False))
    attrs = _product_attributes(products)
    for attr in attrs["attribute"].unique().sort().to_list():
        keys = attrs.filter(pl.col("attribute") == attr).select(
            "sku", (pl.lit(f"{attr}=") + pl.col("value")).alias("key")
        )
        parts.append(_mix_features(pairs, keys.unique(), "attribute_mix", multi=(attr == "tag")))
    vel = (
        pairs.group_by("store_id")
        .agg(pl.col("units").sum(), pl.col("exposure_days").sum())
        .select(
            "store_id",
            ((pl.col("units") + 0.5) / (pl.col("exposure_days") + 1.0))
            .log()
            .alias("velocity__sku_rate"),
            ((pl.col("units") + 0.5) / float(window_days)).log().alias("velocity__daily_units"),
        )
    )
    parts.append(vel)
    parts.append(_price_features(tables, pairs, start, as_of))
    parts.append(_size_features(pairs, products))
    parts.append(_weather_features(tables, start, as_of))
    parts.append(_store_table_features(stores))
    frame = base
    for part in parts:
        if part.width <= 1:
            continue
        frame = frame.join(part, on="store_id", how="left")
    frame = frame.with_columns(
        pl.col(c).cast(pl.Float64) for c in frame.columns if c != "store_id"
    ).with_columns(
        # rounding removes the last-bit noise of parallel float sums, so fits are reproducible
        pl.col(c).fill_nan(None).round(9)
        for c in frame.columns
        if c != "store_id"
    )
    # drop columns with no information (all null, or one value for every store)
    keep = ["store_id"]
    for c in frame.columns[1:]:
        values = frame[c].drop_nulls().to_numpy().astype(np.float64)
        values = values[np.isfinite(values)]
        if values.size >= 2 and float(values.std()) > 1e-12:
            keep.append(c)
    frame = frame.select(keep)
    logger.info(
        "clustering: %d stores x %d features over %s..%s",
        frame.height,
        frame.width - 1,
        start,
        as_of,
    )
    return StoreFeatures(frame=frame, start=start, end=as_of, style_basis=basis)
