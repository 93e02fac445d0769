"""Choosing the number of clusters: replication across half-windows, bootstrap stability,
silhouette."""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score

__all__ = [
    "AGGLOMERATE_MAX_GROUPS",
    "STABILITY_MAX_STORES",
    "ScoreRow",
    "agglomerate",
    "choose_k",
    "cross_fit_distances",
    "kmeans",
    "replication",
    "silhouette",
    "stability",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ScoreRow = tuple[int, float | None, float | None, float | None, float | None]

STABILITY_MAX_STORES = 300
"""Above this many stores k is chosen by the (sampled) silhouette alone (speed)."""


def kmeans(x: FloatArray, k: int, seed: int, n_init: int = 10) -> KMeans:
    """k-means with ``n_init`` restarts (deterministic for a seed), k capped at the number of
    distinct points (stores with identical features, e.g. no history yet)."""
    if x.shape[1] == 0:  # every feature constant or missing: one undistinguished point
        x = np.zeros((x.shape[0], 1))
    distinct = len(np.unique(x, axis=0)) if len(x) else 1
    return KMeans(n_clusters=max(1, min(k, distinct)), n_init=n_init, random_state=seed).fit(x)


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
        return k, [(k, None, None, None, None)]
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
        rows.append((k, sil, stab, rep, None))
        logger.debug("clustering: k=%d silhouette=%s stability=%s replication=%s", *rows[-1][:4])
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


AGGLOMERATE_MAX_GROUPS = 1000
"""Above this many stores, k-means first groups them into this many small groups (speed)."""


def cross_fit_distances(xa: FloatArray, xb: FloatArray) -> FloatArray:
    """``<a_i - a_j, b_i - b_j>``: squared distances between rows, sampling noise removed.

    ``xa`` and ``xb`` are the same stores measured on two halves of the window (independent
    sales): the noise of one half is uncorrelated with the other's, so the inner product of the
    two differences estimates the squared distance of the stores' true mixes without the
    noise that inflates ``||x_i - x_j||^2`` (it can be negative for two alike stores).
    """
    ab = xa @ xb.T
    d = np.diag(ab)
    out: FloatArray = d[:, None] + d[None, :] - ab - ab.T
    return out


def _merge(dist: FloatArray, size: FloatArray, i: int, j: int) -> None:
    """Merge group ``j`` into ``i`` (centroid linkage, Lance-Williams update, in place)."""
    ni, nj = size[i], size[j]
    new = (ni * dist[i] + nj * dist[j]) / (ni + nj) - ni * nj * dist[i, j] / (ni + nj) ** 2
    dist[i] = new
    dist[:, i] = new
    dist[i, i] = np.inf
    dist[j] = np.inf
    dist[:, j] = np.inf
    size[i] = ni + nj
    size[j] = 0.0


def _absorb_singletons(
    dist: FloatArray, size: FloatArray, members: dict[int, list[int]], threshold: float
) -> None:
    """Single stores closer than ``threshold`` (squared) to a group join their nearest group."""
    while True:
        singles = sorted(g for g, m in members.items() if len(m) == 1)
        best: tuple[float, int, int] | None = None
        for g in singles:
            row = dist[g].copy()
            row[[o for o in range(len(row)) if o not in members or o == g]] = np.inf
            o = int(np.argmin(row))
            if row[o] < threshold and (best is None or row[o] < best[0]):
                best = (float(row[o]), o, g)
        if best is None:
            return
        _, o, g = best
        _merge(dist, size, o, g)
        members[o] += members.pop(g)


def agglomerate(
    xa: FloatArray,
    xb: FloatArray,
    min_difference: float,
    *,
    singleton_factor: float = 2.0,
    k_max: int | None = None,
    seed: int = 0,
) -> tuple[IntArray, list[ScoreRow]]:
    """Groups of stores whose mixes differ by at least ``min_difference`` (cross-fitted).

    Centroid-linkage agglomeration on :func:`cross_fit_distances` of the two half-windows:
    the two closest groups merge until every remaining pair of groups is at least
    ``min_difference`` apart (or at most ``k_max`` groups are left), so two segments whose
    mixes differ by more than that are never merged; a single store stays on its own only
    when it is ``singleton_factor`` x ``min_difference`` from every group (one store's
    measured difference is the noisiest). Above :data:`AGGLOMERATE_MAX_GROUPS` stores k-means
    first forms that many small groups of alike stores.

    Returns
    -------
    (labels, rows)
        Labels ``0..k-1`` (largest group first) and one score row per number of groups from
        ``k`` down to 1 whose last entry is the cross-fitted distance of the closest pair of
        groups at that number (the height of the next merge; null at 1).
    """
    n = xa.shape[0]
    if n > AGGLOMERATE_MAX_GROUPS:
        micro = kmeans((xa + xb) / 2.0, AGGLOMERATE_MAX_GROUPS, seed, n_init=1).labels_
    else:
        micro = np.arange(n)
    groups = np.unique(micro)
    ga = np.vstack([xa[micro == g].mean(axis=0) for g in groups])
    gb = np.vstack([xb[micro == g].mean(axis=0) for g in groups])
    size = np.array([float(np.sum(micro == g)) for g in groups])
    dist = cross_fit_distances(ga, gb)
    np.fill_diagonal(dist, np.inf)
    members = {i: [i] for i in range(len(groups))}
    threshold = min_difference**2
    heights: dict[int, float] = {}
    final: list[list[int]] | None = None
    while len(members) > 1:
        flat = int(np.argmin(dist))
        i, j = divmod(flat, dist.shape[1])
        if final is None and dist[i, j] >= threshold and (k_max is None or len(members) <= k_max):
            if singleton_factor > 1.0:
                _absorb_singletons(dist, size, members, (singleton_factor * min_difference) ** 2)
            final = [list(m) for m in members.values()]
            continue
        # the closest pair at this number of groups; the merges go on (down to one group)
        # only to report how far apart the groups are at each k
        heights[len(members)] = float(np.sqrt(max(dist[i, j], 0.0)))
        _merge(dist, size, i, j)
        members[i] += members.pop(j)
    if final is None:
        final = [list(m) for m in members.values()]
    gsize = np.array([float(np.sum(micro == g)) for g in groups])
    order = sorted(final, key=lambda m: (-float(gsize[m].sum()), min(m)))
    lab_of_group = np.empty(len(groups), dtype=np.int64)
    for c, m in enumerate(order):
        lab_of_group[m] = c
    labels: IntArray = lab_of_group[np.searchsorted(groups, micro)]
    top = max(len(order), min(12, len(groups)))
    rows: list[ScoreRow] = [(kk, None, None, None, heights.get(kk)) for kk in range(top, 0, -1)]
    return labels, rows
