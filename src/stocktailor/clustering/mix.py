"""Mix features: what share of a store's sales goes to each product attribute level and size.

:func:`sales_mix` is the behaviour the clusterer compares: per product attribute (category,
gender, fit, fabric, colour family, price band, any other categorical product column), the
store's *sales* mix over the attribute's levels, in the same unit as the style mix (see
:mod:`.style`): ``2 (sqrt(p) - sqrt(p_chain))`` per level, so the squared distance between two
stores is, for small differences, the unit-weighted mean square of their log-ratio differences
and stays bounded for large ones (a store that sells no men's wear is far from one that sells
15%, not infinitely far). Units are corrected for stockouts within the store's range (units /
in-stock share of the level's SKU-days), but a level the store never carried counts as 0: a
women-only store's 0% men's wear is part of how it sells. :func:`mix_features` (log shares of
the in-stock selling rate) describes tags; :func:`size_features` the size profile.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import polars as pl

from stocktailor.clustering.labels import color_family, size_group

__all__ = [
    "CORE_PRODUCT_COLUMNS",
    "MIN_IN_STOCK_SHARE",
    "level_log_ratios",
    "level_mix",
    "mix_features",
    "product_attributes",
    "sales_mix",
    "size_features",
]

MIN_IN_STOCK_SHARE = 0.2
"""A level's units are divided by its in-stock share of SKU-days, floored at this value."""

CORE_PRODUCT_COLUMNS = {
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


def product_attributes(products: pl.DataFrame) -> pl.DataFrame:
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
        if col in CORE_PRODUCT_COLUMNS or dtype not in (pl.String, pl.Categorical, pl.Boolean):
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


def mix_features(
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


def level_log_ratios(
    pairs: pl.DataFrame,
    sku_keys: pl.DataFrame,
    ids: list[str],
    levels: tuple[str, ...] | None = None,
) -> tuple[tuple[str, ...], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Censoring-aware log-ratios of each store's units by level vs the chain.

    Every (store, SKU) pair's expectation is its in-stock days x the SKU's own chain rate per
    in-stock day, so what a store ranges (which colours and sizes of a style, how many of a
    category's styles) and when it was out of stock cancel out; the store's scale ``c_s`` (its
    units over its expectation, all SKUs) cancels too. Per store and level (``sku_keys``:
    ``sku, key``; a SKU may have several keys, e.g. tags):
    ``L = log((u + 1) / (c_s x expected + 1))``, rows centred; a level the store never had in
    stock is 0 (no information).

    Returns
    -------
    (levels, L, units)
        Level names (sorted, or ``levels``), ``(stores, levels)`` log-ratios and units.
    """
    p = pairs.filter(pl.col("store_id").is_in(ids)).select(
        "store_id", "sku", pl.col("units").cast(pl.Float64), "exposure_days"
    )
    rate = p.group_by("sku").agg(
        (pl.col("units").sum() / pl.col("exposure_days").sum().clip(lower_bound=1e-9)).alias("r")
    )
    p = p.join(rate, on="sku").with_columns((pl.col("exposure_days") * pl.col("r")).alias("e"))
    scale = p.group_by("store_id").agg(
        (pl.col("units").sum() / pl.col("e").sum().clip(lower_bound=1e-9)).alias("c")
    )
    g = (
        p.join(sku_keys, on="sku", how="inner")
        .group_by("store_id", "key")
        .agg(pl.col("units").sum(), pl.col("e").sum())
        .join(scale, on="store_id")
    )
    if levels is None:
        levels = tuple(sorted(str(v) for v in g["key"].unique().to_list()))
    s_pos = {sid: i for i, sid in enumerate(ids)}
    j_pos = {lv: j for j, lv in enumerate(levels)}
    units = np.zeros((len(ids), len(levels)))
    expected = np.zeros((len(ids), len(levels)))
    for sid, key, u, e, c in g.iter_rows():
        if key in j_pos:
            units[s_pos[sid], j_pos[key]] = u
            expected[s_pos[sid], j_pos[key]] = e * c
    mix = np.log((units + 1.0) / (expected + 1.0))
    mix = np.where(expected > 0, mix, 0.0)
    mix = mix - mix.mean(axis=1, keepdims=True) if levels else mix
    return levels, mix, units


def level_mix(
    pairs: pl.DataFrame, sku_keys: pl.DataFrame, ids: list[str], column_prefix: str
) -> pl.DataFrame:
    """:func:`level_log_ratios` weighted by the square root of each level's share of the
    chain's units (the mix unit of :mod:`.style`), columns ``f"{column_prefix}{level}"``."""
    levels, mix, units = level_log_ratios(pairs, sku_keys, ids)
    if not levels:
        return pl.DataFrame(schema={"store_id": pl.String})
    weights = np.sqrt(units.sum(axis=0) / max(float(units.sum()), 1e-9))
    coords = mix * weights[None, :]
    coords = coords - coords.mean(axis=0, keepdims=True)
    data: dict[str, pl.Series] = {"store_id": pl.Series(ids, dtype=pl.String)}
    for j, lv in enumerate(levels):
        data[f"{column_prefix}{lv}"] = pl.Series(coords[:, j], dtype=pl.Float64)
    return pl.DataFrame(data)


def sales_mix(
    pairs: pl.DataFrame,
    sku_keys: pl.DataFrame,
    column_prefix: str,
    window_days: int,
) -> pl.DataFrame:
    """Stockout-corrected sales mix of each store over the keys of ``sku_keys`` (``sku, key``).

    Per store and key: ``units / max(in-stock share, MIN_IN_STOCK_SHARE)``, the in-stock share
    being the key's in-stock SKU-days over ``window_days`` x the key's SKUs in the store's range
    (SKUs with an inventory row or a sale in the window); shares of those corrected units over
    all keys, as ``2 (sqrt(share) - sqrt(chain share))`` columns named
    ``f"{column_prefix}{key}"``. A store with no sales gets nulls (no information).
    """
    joined = pairs.join(sku_keys, on="sku", how="inner")
    if joined.is_empty():
        return pl.DataFrame(schema={"store_id": pl.String})
    by_key = joined.group_by("store_id", "key").agg(
        pl.col("units").cast(pl.Float64).sum(),
        pl.col("exposure_days").sum(),
        pl.len().cast(pl.Float64).alias("n_skus"),
    )
    in_stock = (pl.col("exposure_days") / (pl.col("n_skus") * float(max(window_days, 1)))).clip(
        MIN_IN_STOCK_SHARE, 1.0
    )
    by_key = by_key.with_columns((pl.col("units") / in_stock).alias("demand"))
    keys = by_key.select("key").unique()
    stores = by_key.select("store_id").unique()
    full = stores.join(keys, how="cross").join(by_key, on=["store_id", "key"], how="left")
    full = full.with_columns(pl.col("demand").fill_null(0.0))
    total = pl.col("demand").sum().over("store_id")
    chain = full.group_by("key").agg(pl.col("demand").sum().alias("chain"))
    chain = chain.with_columns((pl.col("chain") / pl.col("chain").sum()).alias("chain_share"))
    full = full.join(chain.select("key", "chain_share"), on="key").with_columns(
        pl.when(total > 0)
        .then(2.0 * ((pl.col("demand") / total).sqrt() - pl.col("chain_share").sqrt()))
        .otherwise(None)
        .alias("value"),
        (pl.lit(column_prefix) + pl.col("key")).alias("column"),
    )
    return full.pivot(on="column", index="store_id", values="value", sort_columns=True)


def size_features(pairs: pl.DataFrame, products: pl.DataFrame) -> pl.DataFrame:
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
