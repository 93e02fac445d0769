"""Choosing the number of clusters: replication across half-windows, bootstrap stability,
silhouette."""

from __future__ import annotations

import logging
import math

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


HETEROGENEITY_ITERATIONS = 6
"""Most re-estimations of the within-cluster store heterogeneity in :func:`agglomerate`."""

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
    dist: FloatArray,
    size: FloatArray,
    noise: FloatArray,
    members: dict[int, list[int]],
    threshold: float,
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
        noise[o] += noise[g]
        noise[g] = 0.0
        members[o] += members.pop(g)


def _noise(
    xa: FloatArray, xb: FloatArray, micro: IntArray, groups: IntArray
) -> tuple[FloatArray, float]:
    """Per group the summed half-window noise of its stores (``||a_i - b_i||^2 / 2``: what two
    independent halves of one store disagree by) and the noise's effective dimension
    (``tr(C)^2 / tr(C^2)`` of its covariance: how many directions it spreads over)."""
    diff = (xa - xb) / math.sqrt(2.0)
    per_store = (diff**2).sum(axis=1)
    sums = np.array([float(per_store[micro == g].sum()) for g in groups])
    cov = diff.T @ diff / max(len(diff), 1)
    tr2 = float(np.sum(cov * cov))
    d_eff = float(np.trace(cov)) ** 2 / tr2 if tr2 > 0 else 1.0
    return sums, max(d_eff, 1.0)


def _margin(
    dist: FloatArray, size: FloatArray, noise: FloatArray, d_eff: float, z: float
) -> FloatArray:
    """``z`` standard errors of each cross-fitted squared distance between two groups.

    With ``v`` the noise of the two groups' centroid difference in one half (their stores'
    noise over their size squared), the product of the two halves' differences has variance
    about ``(v^2 + 2 |mu|^2 v) / d_eff``.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        v_g = np.where(size > 0, noise / np.maximum(size, 1e-9) ** 2, 0.0)
    v = v_g[:, None] + v_g[None, :]
    mu2 = np.clip(np.where(np.isfinite(dist), dist, 0.0), 0.0, None)
    out: FloatArray = z * np.sqrt((v * v + 2.0 * mu2 * v) / d_eff)
    return out


def within_dispersion(xa: FloatArray, xb: FloatArray, labels: IntArray) -> float:
    """Cross-fitted variance of a store's mix around its cluster's mean (pooled, >= 0).

    ``sum_i <a_i - mean_a(c_i), b_i - mean_b(c_i)> / sum_c (n_c - 1)``: how much the true
    mixes of stores of one cluster differ (sampling noise removed as in
    :func:`cross_fit_distances`); 0 with no cluster of two or more stores.
    """
    total, dof = 0.0, 0
    for c in np.unique(labels):
        own = labels == c
        m = int(own.sum())
        if m < 2:
            continue
        da = xa[own] - xa[own].mean(axis=0)
        db = xb[own] - xb[own].mean(axis=0)
        total += float(np.sum(da * db))
        dof += m - 1
    return max(total / dof, 0.0) if dof else 0.0


def refine(
    ga: FloatArray, gb: FloatArray, size: FloatArray, final: list[list[int]], passes: int = 10
) -> list[list[int]]:
    """Move each group to the cluster whose mix is nearest to it (cross-fitted, the group left
    out of its own cluster's mean) until none moves: undoes a greedy merge's misplacements.

    The number of clusters never grows; a cluster left empty is dropped.
    """
    lab = np.empty(len(size), dtype=np.int64)
    for c, m in enumerate(final):
        lab[m] = c
    k = len(final)
    if k < 2:
        return final
    for _ in range(passes):
        moved = False
        for g in range(len(size)):
            wa = np.zeros((k, ga.shape[1]))
            wb = np.zeros((k, gb.shape[1]))
            n = np.zeros(k)
            np.add.at(wa, lab, ga * size[:, None])
            np.add.at(wb, lab, gb * size[:, None])
            np.add.at(n, lab, size)
            own = int(lab[g])
            wa[own] -= ga[g] * size[g]
            wb[own] -= gb[g] * size[g]
            n[own] -= size[g]
            if n[own] <= 0:  # a cluster of its own: moving it would merge, not refine
                continue
            ok = n > 0
            ca = wa[ok] / n[ok, None]
            cb = wb[ok] / n[ok, None]
            d = np.sum((ga[g] - ca) * (gb[g] - cb), axis=1)
            idx = np.flatnonzero(ok)
            best = int(np.argmin(d))
            if int(idx[best]) != own and d[best] < d[int(np.searchsorted(idx, own))] - 1e-12:
                lab[g] = int(idx[best])
                moved = True
        if not moved:
            break
    return [m for m in (np.flatnonzero(lab == c).tolist() for c in range(k)) if m]


def _pass(
    ga: FloatArray,
    gb: FloatArray,
    size: FloatArray,
    noise: FloatArray,
    d_eff: float,
    *,
    tau2: float,
    threshold: float,
    noise_margin: float,
    singleton_threshold: float | None,
    k_max: int | None,
) -> tuple[list[list[int]], dict[int, float]]:
    """One agglomeration of the groups at store heterogeneity ``tau2``: the final groups (as
    lists of group rows) and the merge height at each number of groups."""
    size = size.copy()
    noise = noise.copy()
    dist = cross_fit_distances(ga, gb)
    np.fill_diagonal(dist, np.inf)
    members = {i: [i] for i in range(len(size))}
    heights: dict[int, float] = {}
    final: list[list[int]] | None = None
    while len(members) > 1:
        adjusted = dist - _margin(dist, size, noise, d_eff, noise_margin)
        inv = np.where(size > 0, 1.0 / np.maximum(size, 1e-9), 0.0)
        adjusted = adjusted - tau2 * (inv[:, None] + inv[None, :])
        flat = int(np.argmin(adjusted))
        i, j = divmod(flat, dist.shape[1])
        if (
            final is None
            and adjusted[i, j] >= threshold
            and (k_max is None or len(members) <= k_max)
        ):
            if singleton_threshold is not None:
                _absorb_singletons(dist, size, noise, members, singleton_threshold)
            final = [list(m) for m in members.values()]
            continue
        # the closest pair at this number of groups; the merges go on (down to one group)
        # only to report how far apart the groups are at each k
        heights[len(members)] = float(np.sqrt(max(dist[i, j], 0.0)))
        _merge(dist, size, i, j)
        noise[i] += noise[j]
        noise[j] = 0.0
        members[i] += members.pop(j)
    if final is None:
        final = [list(m) for m in members.values()]
    return refine(ga, gb, size, final), heights


def agglomerate(
    xa: FloatArray,
    xb: FloatArray,
    min_difference: float,
    *,
    noise_margin: float = 2.0,
    singleton_factor: float = 1.0,
    heterogeneity: bool = True,
    k_max: int | None = None,
    seed: int = 0,
) -> tuple[IntArray, list[ScoreRow]]:
    """Groups of stores whose mixes differ by at least ``min_difference`` (cross-fitted).

    Centroid-linkage agglomeration on :func:`cross_fit_distances` of the two half-windows:
    groups merge, the pair with the smallest difference first, until every remaining pair of
    groups differs by at least ``min_difference`` beyond what chance gives (or at most ``k_max``
    groups are left). Chance is ``noise_margin`` standard errors of the cross-fitted distance
    (sampling noise, see :func:`_margin`) plus, with ``heterogeneity``, the part of a small
    group's difference that the stores of one cluster show among themselves
    (``tau2 (1/n_g + 1/n_h)``, ``tau2`` = :func:`within_dispersion` of the clusters found,
    starting from all stores in one cluster and re-estimated until the clusters no longer
    change): a store or two that differ from their
    cluster as much as its own stores differ from each other are not a segment. Two segments
    whose mixes differ by clearly more than ``min_difference`` are thus never merged; a single
    store also needs ``singleton_factor`` x ``min_difference``. Above
    :data:`AGGLOMERATE_MAX_GROUPS` stores k-means first forms that many small groups of alike
    stores.

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
    noise, d_eff = _noise(xa, xb, micro, groups)
    single = (singleton_factor * min_difference) ** 2 if singleton_factor > 1.0 else None
    # from the spread of all stores around one mean down to the clusters' own: started from
    # 0, over-split clusters would estimate a small spread and confirm themselves
    tau2 = within_dispersion(xa, xb, np.zeros(n, dtype=np.int64)) if heterogeneity else 0.0
    seen: list[list[list[int]]] = []
    for _ in range(HETEROGENEITY_ITERATIONS if heterogeneity else 1):
        final, heights = _pass(
            ga,
            gb,
            size,
            noise,
            d_eff,
            tau2=tau2,
            threshold=min_difference**2,
            noise_margin=noise_margin,
            singleton_threshold=single,
            k_max=k_max,
        )
        lab_of_group = np.empty(len(groups), dtype=np.int64)
        for c, m in enumerate(final):
            lab_of_group[m] = c
        key = sorted(sorted(m) for m in final)
        if key in seen:  # the same clusters again: tau2 would not change
            break
        seen.append(key)
        tau2 = within_dispersion(xa, xb, lab_of_group[np.searchsorted(groups, micro)])
    gsize = np.array([float(np.sum(micro == g)) for g in groups])
    order = sorted(final, key=lambda m: (-float(gsize[m].sum()), min(m)))
    lab_of_group = np.empty(len(groups), dtype=np.int64)
    for c, m in enumerate(order):
        lab_of_group[m] = c
    labels: IntArray = lab_of_group[np.searchsorted(groups, micro)]
    top = max(len(order), min(12, len(groups)))
    rows: list[ScoreRow] = [(kk, None, None, None, heights.get(kk)) for kk in range(top, 0, -1)]
    return labels, rows
