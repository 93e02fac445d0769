"""Climate adjustment of the mix features, with slopes estimated within clusters.

Stores of one kind of customer in warm and cold places buy coats, linen and sandals in
different proportions: that is weather, not who the customers are. Every mix column (style
axes, category and attribute sales mixes) is regressed across stores on the store's window
climate (standardised mean temperature, its square, and the share of rainy days; the columns
``weather__temp_mean`` and ``weather__rain_share``) and the climate part removed.

Fitted across all stores at once, that regression also takes away the part of a segment that
lives in one climate (coastal stores are warm). :func:`fit_climate` therefore takes cluster
labels and fits one intercept per cluster, so the slopes come from the climate differences
*within* clusters; the clusterer alternates the two (cluster, re-fit the slopes, cluster
again). The fitted slopes apply unchanged to other windows of the same stores (the halves of
the window, the previous window when re-clustering).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from stocktailor.clustering.labels import MIX_GROUPS, feature_group

__all__ = ["CLIMATE_COLUMNS", "ClimateFit", "adjust", "climate_design", "fit_climate"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

CLIMATE_COLUMNS = ("weather__temp_mean", "weather__rain_share")
"""The window climate of a store: mean temperature (°C) and share of days with rain."""

MIN_STORES_PER_SLOPE = 3
"""Slopes are fitted only with at least this many stores per parameter beyond the intercepts."""


@dataclass(frozen=True)
class ClimateFit:
    """Fitted climate slopes of the mix columns.

    Attributes
    ----------
    columns
        The adjusted (mix) feature columns.
    centre, scale
        Standardisation of the climate columns (scale 0: that covariate is not used).
    beta
        ``(3, len(columns))``: effect of the design (:func:`climate_design`) on each column.
    """

    columns: tuple[str, ...]
    centre: FloatArray
    scale: FloatArray
    beta: FloatArray


def _climate(frame: pl.DataFrame) -> FloatArray:
    """``(stores, 2)`` climate values of ``frame`` (NaN when unknown or absent)."""
    out = np.full((frame.height, len(CLIMATE_COLUMNS)), np.nan)
    for c, col in enumerate(CLIMATE_COLUMNS):
        if col in frame.columns:
            out[:, c] = frame[col].cast(pl.Float64).fill_null(np.nan).to_numpy()
    return out


def climate_design(frame: pl.DataFrame, centre: FloatArray, scale: FloatArray) -> FloatArray:
    """``(stores, 3)``: standardised temperature, its square and standardised rain share.

    Unknown values and covariates without spread give 0 (no adjustment).
    """
    raw = _climate(frame)
    z = np.zeros_like(raw)
    for c in range(raw.shape[1]):
        if scale[c] > 0:
            v = raw[:, c]
            z[:, c] = np.where(np.isfinite(v), (v - centre[c]) / scale[c], 0.0)
    out: FloatArray = np.column_stack([z[:, 0], z[:, 0] ** 2, z[:, 1]])
    return out


def fit_climate(frame: pl.DataFrame, labels: IntArray | None = None) -> ClimateFit | None:
    """Slopes of every mix column of ``frame`` on the climate design, within ``labels``' clusters.

    Least squares with one intercept per cluster (one for all stores when ``labels`` is None),
    on the stores with a known temperature; None without climate columns, mix columns or
    enough stores.
    """
    raw = _climate(frame)
    columns = tuple(c for c in frame.columns if feature_group(c) in MIX_GROUPS)
    centre = np.zeros(raw.shape[1])
    scale = np.zeros(raw.shape[1])
    for c in range(raw.shape[1]):
        v = raw[:, c]
        ok = np.isfinite(v)
        if ok.sum() >= 5 and float(np.std(v[ok])) > 1e-9:
            centre[c] = float(v[ok].mean())
            scale[c] = float(v[ok].std())
    if not columns or scale[0] == 0:
        return None
    design = climate_design(frame, centre, scale)
    used = [c for c in range(design.shape[1]) if scale[0 if c < 2 else 1] > 0]
    ok = np.isfinite(raw[:, 0])
    lab = np.zeros(frame.height, dtype=np.int64) if labels is None else labels
    groups = np.unique(lab[ok])
    if ok.sum() < len(groups) + MIN_STORES_PER_SLOPE * len(used):
        return None
    y = np.column_stack([frame[c].cast(pl.Float64).fill_null(np.nan).to_numpy() for c in columns])[
        ok
    ]
    # a store without a value of a column sits at the network mean of it (as in the space)
    y = np.where(np.isfinite(y), y, np.nanmean(np.where(np.isfinite(y), y, np.nan), axis=0))
    y = np.where(np.isfinite(y), y, 0.0)
    onehot = (lab[ok][:, None] == groups[None, :]).astype(np.float64)
    x = np.column_stack([onehot, design[ok][:, used]])
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    beta = np.zeros((design.shape[1], len(columns)))
    beta[used] = coef[len(groups) :]
    return ClimateFit(columns, centre, scale, beta)


def adjust(frame: pl.DataFrame, fit: ClimateFit | None) -> pl.DataFrame:
    """``frame`` with the climate part of the fitted columns removed (unchanged without fit)."""
    if fit is None:
        return frame
    design = climate_design(frame, fit.centre, fit.scale)
    effect = design @ fit.beta
    cols = [
        (pl.col(c) - pl.Series(effect[:, j])).alias(c)
        for j, c in enumerate(fit.columns)
        if c in frame.columns
    ]
    return frame.with_columns(cols) if cols else frame
