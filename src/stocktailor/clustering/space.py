"""The clustering space: which feature columns count, in which unit, with which weight.

Mix groups (:data:`~.labels.MIX_GROUPS`: the style mix and the sales mixes by category and
product attribute) are compared in their own unit (see :mod:`.style`): only centred, so that a
distance keeps its meaning. Every other group is z-scored (one-hot store attributes are only
centred: rare levels are not blown up). Each group's weight is shared over its variables
(``w / sqrt(n)``); a variable is one product attribute of a mix group (all its levels), one
one-hot store attribute, the whole style mix, or one column otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from stocktailor.clustering.labels import (
    DEFAULT_GROUP_WEIGHTS,
    MIX_GROUPS,
    NO_STYLE_GROUP_WEIGHTS,
    STORE_ATTRIBUTE_GROUPS,
    feature_group,
)

__all__ = ["Space", "fit_space", "is_one_hot", "variable_of", "weight_vector"]

FloatArray = npt.NDArray[np.float64]


def variable_of(column: str) -> str:
    """The variable a column belongs to (its levels share one weight).

    ``"format__format=urban"`` -> ``"format__format"``, ``"attribute_mix__gender=W"`` ->
    ``"attribute_mix__gender"``, ``"category_mix__coats"`` -> ``"category_mix"``,
    ``"style_mix__pc3"`` -> ``"style_mix"``; other columns are their own variable.
    """
    group, _, key = column.partition("__")
    if group in ("style_mix", "category_mix", "tag_mix"):
        return group
    if (group in STORE_ATTRIBUTE_GROUPS or group == "attribute_mix") and "=" in key:
        return f"{group}__{key.partition('=')[0]}"
    return column


def is_one_hot(column: str) -> bool:
    """A level of a one-hot encoded store attribute (``"format__format=urban"``)."""
    group, _, key = column.partition("__")
    return group in STORE_ATTRIBUTE_GROUPS and "=" in key


def weight_vector(columns: list[str], feature_weights: Mapping[str, float] | None) -> FloatArray:
    """Per-column weight: the group's weight shared over its variables (``w_g / sqrt(n_g)``).

    A group of many variables (e.g. 6 product attributes) thus weighs as much in the Euclidean
    distance as a group of one variable with the same weight. Groups not in
    ``feature_weights`` take their default from
    :data:`~stocktailor.clustering.DEFAULT_GROUP_WEIGHTS` (1.0 if unknown), or, when there
    are no style-mix axes (no ``style`` product column), from
    :data:`~stocktailor.clustering.NO_STYLE_GROUP_WEIGHTS`.
    """
    groups = [feature_group(c) for c in columns]
    has_style = "style_mix" in groups
    weights = dict(DEFAULT_GROUP_WEIGHTS if has_style else NO_STYLE_GROUP_WEIGHTS)
    weights.update(feature_weights or {})
    variables: dict[str, set[str]] = {}
    for g, c in zip(groups, columns, strict=True):
        variables.setdefault(g, set()).add(variable_of(c))
    out = np.array(
        [float(weights.get(g, 1.0)) / math.sqrt(len(variables[g])) for g in groups],
        dtype=np.float64,
    )
    if np.any(out < 0):
        msg = f"clustering: feature_weights must be >= 0, got {dict(feature_weights or {})}"
        raise ValueError(msg)
    return out


@dataclass(frozen=True)
class Space:
    """A fitted clustering space: ``(x - mean) / scale * weights`` with nulls at 0.

    Attributes
    ----------
    columns
        Feature columns, in order.
    mean, scale, weights
        Per column: network mean, unit (1 for mix groups and one-hot levels, else the standard
        deviation) and weight.
    """

    columns: list[str]
    mean: FloatArray
    scale: FloatArray
    weights: FloatArray

    def raw(self, frame: pl.DataFrame) -> FloatArray:
        """``frame``'s values of the columns (NaN when absent or null)."""
        if not self.columns:
            return np.zeros((frame.height, 0))
        return np.column_stack(
            [
                frame[c].cast(pl.Float64).fill_null(np.nan).to_numpy()
                if c in frame.columns
                else np.full(frame.height, np.nan)
                for c in self.columns
            ]
        )

    def matrix(self, frame: pl.DataFrame) -> FloatArray:
        """Clustering-space coordinates of ``frame``'s rows."""
        z = (self.raw(frame) - self.mean) / self.scale
        z = np.where(np.isfinite(z), z, 0.0)
        out: FloatArray = z * self.weights
        return out


def fit_space(
    frame: pl.DataFrame,
    feature_weights: Mapping[str, float] | None,
    reliability: Mapping[str, float] | None = None,
) -> Space:
    """The space of ``frame``'s numeric columns that vary across stores.

    ``reliability`` multiplies a column's weight (columns not in it: 1).
    """
    cols = [c for c in frame.columns if c != "store_id" and frame[c].dtype.is_numeric()]
    n = frame.height
    raw = (
        np.column_stack([frame[c].cast(pl.Float64).fill_null(np.nan).to_numpy() for c in cols])
        if cols
        else np.zeros((n, 0))
    )
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(raw)
        cnt = finite.sum(axis=0)
        mean = np.where(
            cnt > 0, np.nansum(np.where(finite, raw, 0.0), axis=0) / np.maximum(cnt, 1), 0.0
        )
        dev = np.where(finite, raw - mean, 0.0)
        std = np.sqrt((dev**2).sum(axis=0) / np.maximum(cnt - 1, 1))
    keep = std > 1e-12
    cols = [c for c, k in zip(cols, keep, strict=True) if k]
    unit = [feature_group(c) in MIX_GROUPS or is_one_hot(c) for c in cols]
    scale = np.where(unit, 1.0, std[keep]).astype(np.float64)
    weights = weight_vector(cols, feature_weights)
    if reliability:
        weights = weights * np.array([reliability.get(c, 1.0) for c in cols])
    return Space(cols, mean[keep].astype(np.float64), scale, weights)
