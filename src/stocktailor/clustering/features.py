"""Store features for behaviour-based clustering: :func:`build_store_features`.

A store is described by how its customers buy over a rolling window of sales:

* ``style_mix``: principal axes of the climate-adjusted style mix (:mod:`.style`);
* ``category_mix`` and ``attribute_mix``: the share of the store's selling rate that goes to each
  category, tag, colour family, price band and other product attribute (:mod:`.mix`);
* ``velocity``: units per in-stock SKU-day and units per day;
* ``price``: the lift in selling rate while a SKU is marked down (price sensitivity);
* ``size``: the share of small and large sizes, apparel and footwear separately;
* ``weather``: how the store's daily sales move with temperature and rain;
* ``demographics`` / ``format`` / ``climate``: attributes from the stores table.

Rates are **censoring-aware** (:mod:`.exposure`): a SKU's rate at a store is units sold per
*in-stock* day, so a store that sold out of a category is not read as "not interested" in it.

Feature columns are named ``"<group>__<key>"``; :func:`~.labels.feature_group` recovers the
group and :func:`~.labels.feature_label` a short human label.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from stocktailor.censoring import demand_tables
from stocktailor.clustering.exposure import pair_exposure
from stocktailor.clustering.mix import level_mix, product_attributes, sales_mix, size_features
from stocktailor.clustering.style import (
    StyleBasis,
    fit_style_basis,
    store_climate,
    style_raw,
    style_scores,
)
from stocktailor.contract import Tables

__all__ = ["StoreFeatures", "build_store_features"]

logger = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class StoreFeatures:
    """Raw store features.

    Attributes
    ----------
    frame
        ``store_id`` then one Float64 column per feature (``"<group>__<key>"``); may hold NaN
        where a store has no information (imputed with the network mean when standardised).
    start, end
        The sales window the features describe (inclusive dates).
    style_basis
        How the ``style_mix`` columns were made (climate slopes, weights, principal axes; None
        without them); passing it to :func:`build_store_features` for another window gives
        comparable axes.
    """

    frame: pl.DataFrame
    start: dt.date | None = None
    end: dt.date | None = None
    style_basis: StyleBasis | None = None

    @property
    def columns(self) -> list[str]:
        """Feature column names (all but ``store_id``)."""
        return [c for c in self.frame.columns if c != "store_id"]


def _price_features(
    tables: Tables, pairs: pl.DataFrame, start: dt.date, end: dt.date
) -> pl.DataFrame:
    """Markdown lift: log(rate while marked down / rate at full price), per unit of discount.

    A (sku, date) is "marked down" when the chain's median price paid is below 95% of full price.
    A store's in-stock SKU-days are split between marked-down and full-price days pro rata to the
    SKU's marked-down days in the window.
    """
    sales = tables.sales.filter(pl.col("date").is_between(start, end) & (pl.col("units") > 0))
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
        tables.sales.filter(pl.col("date").is_between(start, end))
        .group_by("store_id", "date")
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


def _mix_parts(
    pairs: pl.DataFrame, products: pl.DataFrame, ids: list[str], window_days: int
) -> list[pl.DataFrame]:
    """Mixes by category, tag and product attribute, and the size profile."""
    cat = products.select("sku", pl.col("category").cast(pl.String).alias("key"))
    parts = [level_mix(pairs, cat, ids, "category_mix__")]
    attrs = product_attributes(products)
    for attr in attrs["attribute"].unique().sort().to_list():
        keys = attrs.filter(pl.col("attribute") == attr).select("sku", pl.col("value").alias("key"))
        if attr == "tag":  # a SKU counts toward each of its tags
            parts.append(level_mix(pairs, keys.unique(), ids, "tag_mix__"))
        else:  # who the store sells to: its range counts (a women-only store sells no menswear)
            parts.append(sales_mix(pairs, keys.unique(), f"attribute_mix__{attr}=", window_days))
    parts.append(size_features(pairs, products))
    return parts


def _velocity(pairs: pl.DataFrame, window_days: int) -> pl.DataFrame:
    """Log units per in-stock SKU-day and log units per day."""
    return (
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


def _climate_columns(ids: list[str], climate: npt.NDArray[np.float64]) -> pl.DataFrame:
    """``weather__temp_mean`` (°C) and ``weather__rain_share`` of the window (null unknown)."""
    return pl.DataFrame(
        {
            "store_id": pl.Series(ids, dtype=pl.String),
            "weather__temp_mean": pl.Series(climate[:, 0], dtype=pl.Float64),
            "weather__rain_share": pl.Series(climate[:, 1], dtype=pl.Float64),
        }
    ).with_columns(pl.col("weather__temp_mean", "weather__rain_share").fill_nan(None))


def _assemble(ids: list[str], parts: list[pl.DataFrame]) -> pl.DataFrame:
    """Join the parts on the store ids; Float64, rounded; drop columns without information."""
    frame = pl.DataFrame({"store_id": ids}, schema={"store_id": pl.String})
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
    keep = ["store_id"]
    for c in frame.columns[1:]:
        values = frame[c].drop_nulls().to_numpy().astype(np.float64)
        values = values[np.isfinite(values)]
        if values.size >= 2 and float(values.std()) > 1e-12:
            keep.append(c)
    return frame.select(keep)


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
        in-stock estimate (see :func:`~.exposure.pair_exposure`).
    store_ids
        Stores to describe (default: every ``kind == 'store'`` row of the stores table).
    style_basis
        Make the style mix on this basis (e.g. another window's
        :attr:`StoreFeatures.style_basis`) instead of fitting this window's own (climate
        slopes across all stores, principal axes).

    Returns
    -------
    StoreFeatures
        One row per store, in ``store_ids`` order (sorted ids by default).
    """
    if window_days < 1:
        msg = f"clustering: window_days must be >= 1, got {window_days}"
        raise ValueError(msg)
    start = as_of - dt.timedelta(days=window_days - 1)
    # returns: every reader sees the daily net-demand view (units >= 0)
    tables = demand_tables(tables)
    stores = tables.stores.filter(pl.col("kind") == "store")
    ids = sorted(stores["store_id"].to_list()) if store_ids is None else list(store_ids)
    if not ids:
        msg = "stores: no row with kind == 'store' to cluster"
        raise ValueError(msg)
    pairs = pair_exposure(tables, start, as_of, in_stock=in_stock).filter(
        pl.col("store_id").is_in(ids)
    )
    products = tables.products
    climate = store_climate(tables, start, as_of, ids)
    raw = style_raw(
        pairs,
        products,
        ids,
        climate,
        styles=style_basis.styles if style_basis is not None else None,
    )
    basis = style_basis
    parts: list[pl.DataFrame] = []
    if raw is not None:
        basis = basis if basis is not None else fit_style_basis(raw)
        parts.append(style_scores(raw, basis))
    parts.extend(_mix_parts(pairs, products, ids, window_days))
    parts.append(_velocity(pairs, window_days))
    parts.append(_price_features(tables, pairs, start, as_of))
    parts.append(_weather_features(tables, start, as_of))
    parts.append(
        pl.DataFrame(
            {
                "store_id": ids,
                "weather__temp_mean": climate[:, 0],
                "weather__rain_share": climate[:, 1],
            },
            schema={
                "store_id": pl.String,
                "weather__temp_mean": pl.Float64,
                "weather__rain_share": pl.Float64,
            },
        ).with_columns(pl.col("weather__temp_mean", "weather__rain_share").fill_nan(None))
    )
    parts.append(_store_table_features(stores))
    frame = _assemble(ids, parts)
    logger.info(
        "clustering: %d stores x %d features over %s..%s",
        frame.height,
        frame.width - 1,
        start,
        as_of,
    )
    return StoreFeatures(
        frame=frame,
        start=start,
        end=as_of,
        style_basis=basis if raw is not None else None,
    )
