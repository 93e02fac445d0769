"""The style mix: censoring-aware log-ratios vs the chain, climate-adjusted, on principal axes.

For store ``s`` and style ``j`` over a window: ``L[s, j] = log((u + 1) / (e r_j c_s + 1))`` with
``u`` the units, ``e`` the in-stock SKU-days, ``r_j`` the chain's rate of the style per in-stock
SKU-day and ``c_s`` the store's overall ratio of units to that expectation, so the store's scale
cancels (a mix, not a level) and thin cells shrink toward 0; rows are centred.

Climate: the principal axes are fitted after removing, across all stores, the part of each
style's log-ratios that the store's window climate explains (so that the axes are not spent on
weather); the scores themselves are *not* adjusted here: the clusterer removes climate from
every mix column with slopes fitted within clusters (:mod:`.climate`).

Units: each style's column is multiplied by the square root of the style's share of the
chain's units, so the squared distance between two stores is the unit-weighted mean square of
their log-ratio differences: a distance of 0.26 is "the typical unit sits in a style that sells
30% more or less" (``log 1.3``). The principal axes keep that unit (a rotation).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from stocktailor.clustering.mix import level_log_ratios
from stocktailor.contract import Tables

__all__ = [
    "STYLE_MIX_COMPONENTS",
    "StyleBasis",
    "StyleRaw",
    "fit_style_basis",
    "store_climate",
    "store_mean_temp",
    "style_raw",
    "style_scores",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

STYLE_MIX_COMPONENTS = 40
"""Number of principal axes kept of the climate-adjusted style mix (``style_mix__pc1..``)."""

RAIN_MM = 2.0
"""A day with at least this much precipitation counts as rainy (climate covariate)."""


@dataclass(frozen=True)
class StyleRaw:
    """One window's raw style mix.

    Attributes
    ----------
    store_ids
        Row order.
    styles
        Column order.
    log_ratio
        ``(stores, styles)`` row-centred log-ratios vs the chain (see the module docstring).
    units
        ``(stores, styles)`` units sold in the window.
    climate
        ``(stores, 2)`` window mean temperature (°C) and share of rainy days (NaN unknown).
    """

    store_ids: tuple[str, ...]
    styles: tuple[str, ...]
    log_ratio: FloatArray
    units: FloatArray
    climate: FloatArray


@dataclass(frozen=True)
class StyleBasis:
    """How a window's style mix becomes coordinates: climate adjustment, weights and axes.

    Attributes
    ----------
    styles
        Style ids, in column order.
    weights
        Per style, the square root of its share of the chain's units over the fitted window.
    axes
        ``(n_components, n_styles)`` principal axes (orthonormal rows).
    """

    styles: tuple[str, ...]
    weights: FloatArray
    axes: FloatArray


def store_mean_temp(tables: Tables, start: dt.date, end: dt.date) -> pl.DataFrame:
    """``store_id, temp_mean``: mean observed temperature of the window, °C (empty if none)."""
    weather = tables.weather
    if weather is None or weather.is_empty():
        return pl.DataFrame(schema={"store_id": pl.String, "temp_mean": pl.Float64})
    w = weather.filter(pl.col("date").is_between(start, end))
    if "is_forecast" in w.columns:
        w = w.filter(~pl.col("is_forecast").fill_null(False))
    return w.group_by("store_id").agg(pl.col("temp_c").cast(pl.Float64).mean().alias("temp_mean"))


def store_climate(tables: Tables, start: dt.date, end: dt.date, ids: list[str]) -> FloatArray:
    """``(stores, 2)``: window mean temperature (°C) and share of days with >= 2 mm of rain."""
    out = np.full((len(ids), 2), np.nan)
    weather = tables.weather
    if weather is None or weather.is_empty():
        return out
    w = weather.filter(pl.col("date").is_between(start, end))
    if "is_forecast" in w.columns:
        w = w.filter(~pl.col("is_forecast").fill_null(False))
    rain = (
        (pl.col("precip_mm").cast(pl.Float64) >= RAIN_MM).cast(pl.Float64).mean()
        if "precip_mm" in w.columns
        else pl.lit(None, dtype=pl.Float64)
    )
    agg = w.group_by("store_id").agg(
        pl.col("temp_c").cast(pl.Float64).mean().alias("t"), rain.alias("r")
    )
    frame = pl.DataFrame({"store_id": ids}, schema={"store_id": pl.String}).join(
        agg, on="store_id", how="left"
    )
    out[:, 0] = frame["t"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    out[:, 1] = frame["r"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    return out


def style_raw(
    pairs: pl.DataFrame,
    products: pl.DataFrame,
    ids: list[str],
    climate: FloatArray,
    styles: tuple[str, ...] | None = None,
) -> StyleRaw | None:
    """The window's raw style mix (None without a ``style`` column or with < 3 styles)."""
    if "style" not in products.columns or (styles is None and len(ids) < 3):
        return None
    keys = products.select("sku", pl.col("style").cast(pl.String).alias("key"))
    levels, mix, units = level_log_ratios(pairs, keys, ids, styles)
    if len(levels) < 3:
        return None
    return StyleRaw(tuple(ids), levels, mix, units, climate)


def _cross_sectional_climate(raw: StyleRaw) -> FloatArray:
    """The part of each style's log-ratios the stores' climate explains, fitted across all
    stores (temperature, its square, rainy-day share); zeros without enough climate data."""
    out = np.zeros_like(raw.log_ratio)
    cols: list[FloatArray] = []
    t = raw.climate[:, 0]
    ok = np.isfinite(t)
    if ok.sum() < 8 or float(np.std(t[ok])) < 1e-9:
        return out
    zt = (t - t[ok].mean()) / t[ok].std()
    cols += [zt, zt**2]
    r = raw.climate[:, 1]
    if np.isfinite(r[ok]).all() and float(np.std(r[ok])) > 1e-9:
        cols.append((r - r[ok].mean()) / r[ok].std())
    design = np.column_stack([np.ones(len(t)), *cols])
    beta, *_ = np.linalg.lstsq(design[ok], raw.log_ratio[ok], rcond=None)
    out[ok] = design[ok, 1:] @ beta[1:]
    return out


def _coordinates(raw: StyleRaw, weights: FloatArray, adjust: FloatArray | None) -> FloatArray:
    """Unit-weighted, column-centred style coordinates of a window (climate part removed)."""
    mix = raw.log_ratio if adjust is None else raw.log_ratio - adjust
    mix = mix - mix.mean(axis=1, keepdims=True)
    mix = mix * weights[None, :]
    out: FloatArray = mix - mix.mean(axis=0, keepdims=True)
    return out


def fit_style_basis(raw: StyleRaw, n_components: int = STYLE_MIX_COMPONENTS) -> StyleBasis:
    """Unit weights and principal axes of the climate-adjusted style mix of a window."""
    share = raw.units.sum(axis=0) / max(float(raw.units.sum()), 1e-9)
    weights = np.sqrt(share)
    coords = _coordinates(raw, weights, _cross_sectional_climate(raw))
    m = min(n_components, coords.shape[0] - 1, coords.shape[1] - 1)
    _, _, vt = np.linalg.svd(coords, full_matrices=False)
    axes = vt[:m].copy()
    # sign convention: the largest loading of each axis is positive (deterministic)
    for i in range(m):
        if axes[i, int(np.argmax(np.abs(axes[i])))] < 0:
            axes[i] = -axes[i]
    return StyleBasis(raw.styles, weights, axes)


def style_scores(raw: StyleRaw, basis: StyleBasis) -> pl.DataFrame:
    """``store_id, style_mix__pc1..``: a window's style mix (not climate-adjusted) on ``basis``."""
    scores = _coordinates(raw, basis.weights, None) @ basis.axes.T
    data: dict[str, pl.Series] = {"store_id": pl.Series(list(raw.store_ids), dtype=pl.String)}
    for i in range(scores.shape[1]):
        data[f"style_mix__pc{i + 1}"] = pl.Series(scores[:, i], dtype=pl.Float64)
    return pl.DataFrame(data)
