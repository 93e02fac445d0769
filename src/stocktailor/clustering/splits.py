"""Attribute splits: stores of one store-attribute level split off a cluster when their
behaviour sets them apart beyond chance (permutation test)."""

from __future__ import annotations

import logging
import math
from itertools import combinations

import numpy as np
import numpy.typing as npt
import polars as pl
from sklearn.metrics import silhouette_samples

__all__ = ["SPLIT_SCHEMA", "attribute_splits", "centres", "permutation_p"]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

EXACT_PERMUTATIONS = 2000
"""Up to this many relabellings the permutation test enumerates them all."""

SPLIT_SCHEMA = {
    "cluster": pl.Int64,
    "attribute": pl.String,
    "n_stores": pl.Int64,
    "n_cluster": pl.Int64,
    "p_value": pl.Float64,
    "silhouette": pl.Float64,
}


def centres(x: FloatArray, labels: IntArray) -> FloatArray:
    """Mean of each label's rows, rows in label order ``0..max``."""
    k = int(labels.max()) + 1
    out: FloatArray = np.vstack(
        [
            x[labels == c].mean(axis=0) if np.any(labels == c) else np.zeros(x.shape[1])
            for c in range(k)
        ]
    )
    return out


def permutation_p(x: FloatArray, group: BoolArray, rng: np.random.Generator) -> float:
    """Permutation p-value of the squared distance between the group's and the rest's means."""
    n = x.shape[0]
    m = int(group.sum())
    total = x.sum(axis=0)

    def stats(members: FloatArray) -> FloatArray:
        # members: (B, n) 0/1 rows; mean of the group minus mean of the rest, squared norm
        s = members @ x
        diff = s / m - (total[None, :] - s) / (n - m)
        out: FloatArray = (diff**2).sum(axis=1)
        return out

    observed = float(stats(group.astype(np.float64)[None, :])[0])
    if math.comb(n, m) <= EXACT_PERMUTATIONS:
        rows = np.zeros((math.comb(n, m), n))
        for i, comb in enumerate(combinations(range(n), m)):
            rows[i, list(comb)] = 1.0
        null = stats(rows)
        return float(np.mean(null >= observed - 1e-12))
    n_perm = 999
    rows = np.zeros((n_perm, n))
    for i in range(n_perm):
        rows[i, rng.choice(n, size=m, replace=False)] = 1.0
    null = stats(rows)
    return float((np.sum(null >= observed - 1e-12) + 1) / (n_perm + 1))


def _cross_fit_difference(
    halves: tuple[FloatArray, FloatArray], idx: IntArray, g: BoolArray
) -> float:
    """Cross-fitted mix difference between the group's and the rest's means (0 if negative)."""
    a = halves[0][idx]
    b = halves[1][idx]
    da = a[g].mean(axis=0) - a[~g].mean(axis=0)
    db = b[g].mean(axis=0) - b[~g].mean(axis=0)
    return math.sqrt(max(float(da @ db), 0.0))


def _best_split(
    xb: FloatArray,
    idx: IntArray,
    candidates: list[tuple[str, BoolArray]],
    alpha: float,
    min_silhouette: float,
    rng: np.random.Generator,
    halves: tuple[FloatArray, FloatArray] | None,
    min_difference: float,
) -> tuple[float, float, str, BoolArray] | None:
    """The most significant level of the cluster's stores ``idx`` that passes the thresholds."""
    best: tuple[float, float, str, BoolArray] | None = None
    for key, member in candidates:
        g = member[idx]
        m = int(g.sum())
        if m < 2 or idx.size - m < 2:
            continue
        if halves is not None and _cross_fit_difference(halves, idx, g) < min_difference:
            continue
        p = permutation_p(xb[idx], g, rng)
        if p > alpha:
            continue
        sil = float(silhouette_samples(xb[idx], g.astype(np.int64))[g].mean())
        if sil < min_silhouette:
            continue
        if best is None or (p, -sil) < (best[0], -best[1]):
            best = (p, sil, key, g)
    return best


def attribute_splits(
    xb: FloatArray,
    labels: IntArray,
    candidates: list[tuple[str, BoolArray]],
    *,
    max_clusters: int,
    alpha: float,
    min_silhouette: float,
    seed: int,
    halves: tuple[FloatArray, FloatArray] | None = None,
    min_difference: float = 0.0,
) -> tuple[IntArray, pl.DataFrame]:
    """Split off the stores of one attribute level whose behaviour sets them apart.

    For every cluster and every candidate level (``candidates``: ``(key, member mask)``) with
    at least two stores in the cluster and two others, the statistic is the squared distance
    between the level's and the rest's mean behaviour ``xb``; its p-value is the share of
    relabellings of the cluster's stores (all of them up to 2,000, else 999 random ones) with a
    statistic at least as large. A level is split off when ``p <= alpha`` and the mean
    silhouette of its stores in the two-way split is ``>= min_silhouette``; the most
    significant candidate goes first and the split clusters are tested again (at most
    ``max_clusters`` clusters in all). With ``halves`` (the same stores' behaviour on the two
    halves of the window) the level must also differ from the rest by at least
    ``min_difference`` cross-fitted (a real difference large enough to matter, not only a
    significant one). Returns the new labels and the splits made.
    """
    labels = labels.copy()
    records: list[dict[str, object]] = []
    rng = np.random.default_rng(seed)
    queue = sorted(set(labels.tolist()))
    while candidates and queue and len(set(labels.tolist())) < max_clusters:
        c = queue.pop(0)
        idx = np.flatnonzero(labels == c)
        best = _best_split(xb, idx, candidates, alpha, min_silhouette, rng, halves, min_difference)
        if best is None:
            continue
        new = int(labels.max()) + 1
        labels[idx[best[3]]] = new
        records.append(
            {
                "cluster": int(c),
                "attribute": best[2],
                "n_stores": int(best[3].sum()),
                "n_cluster": int(idx.size),
                "p_value": best[0],
                "silhouette": best[1],
            }
        )
        logger.info(
            "clustering: split %s (%d of %d stores) off a cluster, p=%.3f silhouette=%.2f",
            best[2],
            int(best[3].sum()),
            idx.size,
            best[0],
            best[1],
        )
        queue.extend([c, new])
    return labels, pl.DataFrame(records, schema=SPLIT_SCHEMA)
