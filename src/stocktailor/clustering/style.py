"""The style mix: climate-adjusted, censoring-aware log-ratios vs the chain, on principal axes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from stocktailor.contract import Tables

__all__ = ["STYLE_MIX_COMPONENTS", "StyleBasis", "store_mean_temp", "style_mix"]

STYLE_MIX_COMPONENTS = 8
"""Number of principal axes kept of the climate-adjusted style mix (``style_mix__pc1..``)."""


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


def store_mean_temp(tables: Tables, start: dt.date, end: dt.date) -> pl.DataFrame:
    """``store_id, temp_mean``: mean observed temperature of the window, °C (empty if none)."""
    weather = tables.weather
    if weather is None or weather.is_empty():
        return pl.DataFrame(schema={"store_id": pl.String, "temp_mean": pl.Float64})
    w = weather.filter(pl.col("date").is_between(start, end))
    if "is_forecast" in w.columns:
        w = w.filter(~pl.col("is_forecast").fill_null(False))
    return w.group_by("store_id").agg(pl.col("temp_c").cast(pl.Float64).mean().alias("temp_mean"))


def style_mix_features(
    pairs: pl.DataFrame,
    products: pl.DataFrame,
    temps: pl.DataFrame,
    ids: list[str],
    n_components: int = STYLE_MIX_COMPONENTS,
) -> pl.DataFrame:
    """The ``style_mix__pc*`` columns of :func:`_style_mix` (without the basis)."""
    return style_mix(pairs, products, temps, ids, n_components)[0]


def style_mix(
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
