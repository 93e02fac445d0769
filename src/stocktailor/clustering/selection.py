"""Choosing the number of clusters: replication across half-windows, bootstrap stability,
silhouette."""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score

__all__ = [
    "STABILITY_MAX_STORES",
    "ScoreRow",
    "choose_k",
    "kmeans",
    "replication",
    "silhouette",
    "stability",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
ScoreRow = tuple[int, float | None, float | None, float | None]

STABILITY_MAX_STORES = 300
"""Above this many stores k is chosen by the (sampled) silhouette alone (speed)."""


def kmeans(x: FloatArray, k: int, seed: int, n_init: int = 10) -> KMeans:
    """k-means with ``n_init`` restarts (deterministic for a seed)."""
    return KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(x)


def scan_n_init(x: FloatArray) -> int:
    """k-means restarts while scanning k: 10, or 4 beyond 300 stores (speed)."""
    return 10 if x.shape[0] <= STABILITY_MAX_STORES else 4


def silhouette(x: FloatArray, k: int, seed: int) -> float | None:
    """Mean silhouette of k-means with ``k`` clusters (sampled above 400 stores)."""
    if k < 2 or k >= x.shape[0]:
        return None
    labels = kmeans(x, k, seed, n_init=scan_n_init(x)).labels_
    if len(set(labels.tolist())) < 2:
        return None
    sample = min(x.shape[0], 400)
    return float(silhouette_score(x, labels, sample_size=sample, random_state=seed))


def stability(x: FloatArray, k: int, seed: int, n_bootstrap: int) -> float:
    """Mean ARI, on the stores both resamples hold, between clusterings of bootstrap pairs."""
    rng = np.random.default_rng(seed)
    n = x.shape[0]
    full = kmeans(x, k, seed, n_init=scan_n_init(x))
    scores: list[float] = []
    for b in range(n_bootstrap):
        idx = np.unique(rng.integers(0, n, n))
        if len(idx) <= k:
            continue
        km = KMeans(n_clusters=k, n_init=3, random_state=seed + b + 1).fit(x[idx])
        scores.append(float(adjusted_rand_score(full.labels_[idx], km.labels_)))
    return float(np.mean(scores)) if scores else 0.0


def replication(x: FloatArray, xa: FloatArray, xb: FloatArray, k: int, seed: int) -> float:
    """Smallest best-match Jaccard of a full-window cluster in either half's clustering."""
    full = kmeans(x, k, seed).labels_
    worst = 1.0
    for half in (xa, xb):
        lab = kmeans(half, k, seed).labels_
        for c in range(k):
            own = full == c
            if not own.any():
                continue
            best = max(
                float(np.sum(own & (lab == d))) / float(np.sum(own | (lab == d))) for d in range(k)
            )
            worst = min(worst, best)
    return worst


def choose_k(
    x: FloatArray,
    halves: tuple[FloatArray, FloatArray] | None,
    *,
    k_min: int,
    k_max: int,
    selection: str,
    replication_threshold: float,
    n_bootstrap: int,
    seed: int,
) -> tuple[int, list[ScoreRow]]:
    """The k to use and the score rows ``(k, silhouette, stability, replication)`` of each k."""
    n = x.shape[0]
    lo, hi = k_min, min(k_max, n - 1)
    if hi < lo:
        k = max(1, min(lo, n))
        return k, [(k, None, None, None)]
    rows: list[ScoreRow] = []
    use_replication = selection == "replication" and halves is not None
    # bootstrap stability costs ~n_bootstrap k-means per k: beyond STABILITY_MAX_STORES
    # stores k is chosen by the (sampled) silhouette alone
    use_stability = (
        selection in ("stability", "replication")
        and not use_replication
        and n <= STABILITY_MAX_STORES
    )
    for k in range(lo, hi + 1):
        sil = silhouette(x, k, seed)
        stab = stability(x, k, seed, n_bootstrap) if use_stability else None
        rep = (
            replication(x, halves[0], halves[1], k, seed)
            if use_replication and halves is not None
            else None
        )
        rows.append((k, sil, stab, rep))
        logger.debug("clustering: k=%d silhouette=%s stability=%s replication=%s", *rows[-1])
    if use_replication:
        # the largest k whose clusters the two independent half-windows both reproduce
        ok = [r[0] for r in rows if (r[3] or 0.0) >= replication_threshold]
        return (max(ok) if ok else lo), rows
    if use_stability:
        # the most silhouette-separated k among the near-most-stable ones (stability alone
        # favours small k: two big halves are always reproducible)
        top = max(r[2] or 0.0 for r in rows)
        near = [r for r in rows if (r[2] or 0.0) >= top - 0.05]
        best = max(near, key=lambda r: (r[1] if r[1] is not None else -1.0, -r[0]))
    else:
        best = max(rows, key=lambda r: (r[1] if r[1] is not None else -1.0, -r[0]))
    return best[0], rows
