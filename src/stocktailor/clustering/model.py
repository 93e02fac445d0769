"""The store clusterer: standardise, weight, choose k, cluster, name and explain."""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Literal

import numpy as np
import numpy.typing as npt
import polars as pl
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_samples, silhouette_score

from stocktailor.clustering.features import (
    DEFAULT_GROUP_WEIGHTS,
    NO_STYLE_GROUP_WEIGHTS,
    StoreFeatures,
    build_store_features,
    feature_group,
    feature_label,
)
from stocktailor.config import ClusteringConfig
from stocktailor.contract import Tables

__all__ = ["StoreClusterer", "weight_vector"]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

_STATIC_GROUPS = frozenset({"demographics", "format", "climate"})
_STABILITY_MAX_STORES = 300
_EXACT_PERMUTATIONS = 2000
IntArray = npt.NDArray[np.int64]


def weight_vector(columns: list[str], feature_weights: Mapping[str, float] | None) -> FloatArray:
    """Per-column weight: the group's weight shared over its columns (``w_g / sqrt(n_g)``).

    A group of many columns (e.g. 30 categories) thus weighs as much in the Euclidean distance
    as a group of one column with the same weight. Groups not in ``feature_weights`` take their
    default from :data:`~stocktailor.clustering.features.DEFAULT_GROUP_WEIGHTS` (1.0 if unknown),
    or, when there are no style-mix axes (no ``style`` product column), from
    :data:`~stocktailor.clustering.features.NO_STYLE_GROUP_WEIGHTS`.
    """
    groups = [feature_group(c) for c in columns]
    has_style = "style_mix" in groups
    weights = dict(DEFAULT_GROUP_WEIGHTS if has_style else NO_STYLE_GROUP_WEIGHTS)
    weights.update(feature_weights or {})
    # a one-hot encoded attribute ("format__format=urban", "...=mall") counts as one variable
    bases: dict[str, set[str]] = {}
    for g, c in zip(groups, columns, strict=True):
        bases.setdefault(g, set()).add(_base(c))
    out = np.array(
        [float(weights.get(g, 1.0)) / math.sqrt(len(bases[g])) for g in groups],
        dtype=np.float64,
    )
    if np.any(out < 0):
        msg = f"clustering: feature_weights must be >= 0, got {dict(feature_weights or {})}"
        raise ValueError(msg)
    return out


def _base(column: str) -> str:
    """The variable a column encodes: ``"format__format=urban"`` -> ``"format__format"``."""
    group, _, key = column.partition("__")
    if group in _STATIC_GROUPS and "=" in key:
        return f"{group}__{key.partition('=')[0]}"
    return column


def _is_one_hot(column: str) -> bool:
    return _base(column) != column


class StoreClusterer:
    """Clusters stores by buying behaviour; scikit-learn style.

    Parameters
    ----------
    n_clusters
        Force this number of clusters; ``None`` chooses k in ``[k_min, k_max]``.
    k_min, k_max
        Range of k tried when choosing automatically.
    window_days
        Rolling window of sales the features describe, days (ending at ``as_of``).
    feature_weights
        Weight per feature group (see :data:`~stocktailor.clustering.features.FEATURE_GROUPS`);
        0 switches a group off.
    selection
        How k is chosen: ``"replication"`` (default: the largest k whose k-means partition is
        reproduced by the two half-windows' features, each cluster's best Jaccard match at
        least ``replication_threshold``; falls back to ``"stability"`` when the half-windows
        are not available, e.g. fitting ready features), ``"silhouette"`` (highest mean
        silhouette) or ``"stability"`` (mean adjusted Rand index between clusterings of
        bootstrap resamples; among the k within 0.05 of the most stable, the highest
        silhouette); networks of more than 300 stores use the silhouette (estimated on a sample
        of 400 stores).
    replication_threshold
        Minimum Jaccard overlap (0..1) between each full-window cluster and its best match in
        each half-window's clustering for a k to count as replicated.
    split_attributes
        Categorical store attributes (e.g. ``"format"``) whose levels are proposed as
        sub-clusters after k is chosen automatically: the stores of a level inside a cluster
        are split off when their behaviour differs from the rest of the cluster beyond chance
        (permutation test on the behaviour features, p <= ``split_alpha``) and they sit apart
        (mean silhouette of the split >= ``split_min_silhouette``). Empty: no splits.
    split_alpha, split_min_silhouette
        Thresholds of that split test.
    n_bootstrap
        Resamples per k for ``selection="stability"``.
    n_name_features
        Distinguishing features listed in a cluster's name and in ``top_features``.
    reliability_weighting
        When fitting from tables, multiply each behaviour feature's weight by its split-half
        reliability (see :meth:`_reliability`), so features that are mostly sampling noise in
        the window (thin categories, noisy slopes) do not drown the real differences.
    random_state
        Seed of k-means and the bootstrap.

    Attributes
    ----------
    features_ : StoreFeatures
        Raw features of the fitted stores.
    columns_ : list[str]
        Feature columns used.
    mean_, scale_, weights_ : ndarray
        Standardisation and per-column weights (the clustering space is
        ``(x - mean_) / scale_ * weights_``, nulls at 0).
    reliability_ : dict[str, float]
        Split-half reliability per feature (empty when not computed).
    n_clusters_ : int
        The k used.
    scores_ : pl.DataFrame
        ``k, silhouette, stability, replication`` for every k tried (null if not computed;
        replication = the smallest best-match Jaccard of a cluster across the half-windows).
    splits_ : pl.DataFrame
        Attribute splits made after choosing k: ``cluster, attribute, n_stores, n_cluster,
        p_value, silhouette``.
    centers_ : ndarray (k, n_features)
        Cluster centres in the clustering space, row ``i`` = ``cluster_ids_[i]``.
    cluster_ids_ : list[int]
        Cluster ids (1-based, largest cluster first) in centre-row order.
    labels_ : pl.DataFrame
        ``store_id, cluster_id, cluster_name, distance, alt_cluster_id, alt_cluster_name,
        alt_distance, top_features``; distances are Euclidean in the clustering space.
    names_ : dict[int, str]
        Cluster id -> generated name.
    profiles_ : pl.DataFrame
        ``cluster_id, cluster_name, feature, label, group, cluster_value, network_value, z,
        rank`` (z = cluster mean in network standard deviations; rank 1 = most distinguishing).
    as_of_ : date | None
        End of the fitted window.
    """

    def __init__(
        self,
        n_clusters: int | None = None,
        k_min: int = 2,
        k_max: int = 12,
        window_days: int = 84,
        feature_weights: Mapping[str, float] | None = None,
        selection: Literal["replication", "silhouette", "stability"] = "replication",
        n_bootstrap: int = 10,
        n_name_features: int = 4,
        reliability_weighting: bool = True,
        replication_threshold: float = 0.7,
        split_attributes: Sequence[str] = ("format",),
        split_alpha: float = 0.1,
        split_min_silhouette: float = 0.3,
        random_state: int = 0,
    ) -> None:
        self.n_clusters = n_clusters
        self.k_min = k_min
        self.k_max = k_max
        self.window_days = window_days
        self.feature_weights = dict(feature_weights) if feature_weights else None
        self.selection = selection
        self.n_bootstrap = n_bootstrap
        self.n_name_features = n_name_features
        self.reliability_weighting = reliability_weighting
        self.replication_threshold = replication_threshold
        self.split_attributes = tuple(split_attributes)
        self.split_alpha = split_alpha
        self.split_min_silhouette = split_min_silhouette
        self.random_state = random_state

    @classmethod
    def from_config(cls, config: ClusteringConfig) -> StoreClusterer:
        """A clusterer with the settings of ``config``."""
        return cls(
            n_clusters=config.n_clusters,
            k_min=config.k_min,
            k_max=config.k_max,
            window_days=config.window_days,
            feature_weights=config.feature_weights,
            selection=config.selection,
            n_bootstrap=config.n_bootstrap,
            reliability_weighting=config.reliability_weighting,
            replication_threshold=config.replication_threshold,
            split_attributes=tuple(config.split_attributes),
            split_alpha=config.split_alpha,
            random_state=config.random_state,
        )

    def get_params(self) -> dict[str, object]:
        """Constructor settings (for cloning)."""
        return {
            "n_clusters": self.n_clusters,
            "k_min": self.k_min,
            "k_max": self.k_max,
            "window_days": self.window_days,
            "feature_weights": self.feature_weights,
            "selection": self.selection,
            "n_bootstrap": self.n_bootstrap,
            "n_name_features": self.n_name_features,
            "reliability_weighting": self.reliability_weighting,
            "replication_threshold": self.replication_threshold,
            "split_attributes": self.split_attributes,
            "split_alpha": self.split_alpha,
            "split_min_silhouette": self.split_min_silhouette,
            "random_state": self.random_state,
        }

    def clone(self, **overrides: object) -> StoreClusterer:
        """An unfitted clusterer with the same settings (some overridden)."""
        params = self.get_params()
        params.update(overrides)
        return StoreClusterer(**params)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        data: Tables | StoreFeatures | pl.DataFrame,
        as_of: dt.date | None = None,
        *,
        in_stock: pl.DataFrame | None = None,
        reliability: Mapping[str, float] | None = None,
    ) -> StoreClusterer:
        """Build features (from tables) and cluster the stores.

        Parameters
        ----------
        data
            The network's tables (features are built over ``window_days`` ending at ``as_of``),
            or ready features (:class:`StoreFeatures`, or a frame ``store_id`` + numeric
            ``"<group>__<key>"`` columns).
        as_of
            End of the window; default the latest sales date.
        in_stock
            Optional daily in-stock shares (see :func:`~stocktailor.clustering.pair_exposure`).
        reliability
            Feature -> reliability multiplier to use instead of computing it (e.g. a previous
            fit's ``reliability_`` when re-fitting the same features with other weights).
        """
        self._halves: tuple[pl.DataFrame, pl.DataFrame] | None = None
        if isinstance(data, Tables):
            if as_of is None:
                latest = data.sales["date"].max()
                if not isinstance(latest, dt.date):
                    msg = "sales: no dates to take the default as-of date from"
                    raise ValueError(msg)
                as_of = latest
            feats = build_store_features(
                data, as_of, window_days=self.window_days, in_stock=in_stock
            )
            if self.window_days >= 14 and (
                (reliability is None and self.reliability_weighting)
                or (self.selection == "replication" and self.n_clusters is None)
            ):
                rel = self._reliability(data, as_of, feats, in_stock)
                if reliability is None and self.reliability_weighting:
                    reliability = rel
        elif isinstance(data, StoreFeatures):
            feats = data
        else:
            feats = StoreFeatures(frame=data)
        self.as_of_ = as_of if as_of is not None else feats.end
        self.reliability_: dict[str, float] = dict(reliability or {})
        self._fit_features(feats)
        return self

    def _reliability(
        self,
        tables: Tables,
        as_of: dt.date,
        feats: StoreFeatures,
        in_stock: pl.DataFrame | None,
    ) -> dict[str, float]:
        """Split-half reliability of each behaviour feature (Spearman-Brown corrected).

        The window is cut into two halves; a feature's reliability is the correlation across
        stores of its two half-window values, stepped up to the full window
        (``2r / (1 + r)``, floored at 0). Store-table features (demographics, format, climate)
        do not change with the window and get 1.
        """
        half = self.window_days // 2
        ids = [str(v) for v in feats.frame["store_id"].to_list()]
        # the halves are projected on the full window's style axes, so they are comparable
        second = build_store_features(
            tables,
            as_of,
            window_days=half,
            in_stock=in_stock,
            store_ids=ids,
            style_basis=feats.style_basis,
        )
        first = build_store_features(
            tables,
            as_of - dt.timedelta(days=half),
            window_days=self.window_days - half,
            in_stock=in_stock,
            store_ids=ids,
            style_basis=feats.style_basis,
        )
        a = feats.frame.select("store_id").join(first.frame, on="store_id", how="left")
        b = feats.frame.select("store_id").join(second.frame, on="store_id", how="left")
        self._halves = (a, b)
        out: dict[str, float] = {}
        for col in feats.columns:
            if feature_group(col) in _STATIC_GROUPS or feature_group(col) == "style_mix":
                # static columns do not change with the window; the style-mix axes are
                # re-derived (rotated) in each half, so their values are not comparable
                out[col] = 1.0
                continue
            if col not in a.columns or col not in b.columns:
                out[col] = 0.0
                continue
            x = a[col].cast(pl.Float64).fill_null(np.nan).to_numpy()
            y = b[col].cast(pl.Float64).fill_null(np.nan).to_numpy()
            ok = np.isfinite(x) & np.isfinite(y)
            if ok.sum() < 4 or np.std(x[ok]) < 1e-12 or np.std(y[ok]) < 1e-12:
                out[col] = 0.0
                continue
            r = float(np.corrcoef(x[ok], y[ok])[0, 1])
            out[col] = max(0.0, 2.0 * r / (1.0 + r)) if r > 0 else 0.0
        return out

    def _matrix(self, frame: pl.DataFrame) -> FloatArray:
        """Clustering-space matrix of ``frame`` with the fitted standardisation."""
        cols = self.columns_
        raw = (
            np.column_stack(
                [
                    frame[c].cast(pl.Float64).fill_null(np.nan).to_numpy()
                    if c in frame.columns
                    else np.full(frame.height, np.nan)
                    for c in cols
                ]
            )
            if cols
            else np.zeros((frame.height, 0))
        )
        z = (raw - self.mean_) / self.scale_
        z = np.where(np.isfinite(z), z, 0.0)
        out: FloatArray = z * self.weights_
        return out

    def standardized(self, frame: pl.DataFrame) -> FloatArray:
        """Unweighted z-scores of ``frame``'s features in the fitted standardisation (nulls 0)."""
        w = np.where(self.weights_ > 0, self.weights_, 1.0)
        out: FloatArray = self._matrix(frame) / w
        return out

    def transform(self, data: StoreFeatures | pl.DataFrame) -> FloatArray:
        """Clustering-space coordinates of ``data`` (rows in its order)."""
        frame = data.frame if isinstance(data, StoreFeatures) else data
        return self._matrix(frame)

    def _kmeans(self, x: FloatArray, k: int, seed: int, n_init: int = 10) -> KMeans:
        # Stores with identical features (e.g. no history yet) leave fewer distinct points
        # than k: k-means would warn and duplicate centres, so cap k at the distinct points.
        if x.shape[1] == 0:  # every feature constant or missing: one undistinguished point
            x = np.zeros((x.shape[0], 1))
        distinct = len(np.unique(x, axis=0)) if len(x) else 1
        return KMeans(n_clusters=max(1, min(k, distinct)), n_init=n_init, random_state=seed).fit(x)

    def _fit_features(self, feats: StoreFeatures) -> None:
        frame = feats.frame
        if "store_id" not in frame.columns:
            msg = "clustering: features need a store_id column"
            raise ValueError(msg)
        if frame["store_id"].n_unique() != frame.height:
            msg = "clustering: features have duplicate store_id rows"
            raise ValueError(msg)
        cols = [c for c in frame.columns if c != "store_id" and frame[c].dtype.is_numeric()]
        n = frame.height
        if n < 1:
            msg = "stores: no selling store (kind 'store') to cluster"
            raise ValueError(msg)
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
        self.columns_: list[str] = cols
        self.mean_: FloatArray = mean[keep]
        # one-hot columns keep their 0/1 scale (z-scoring would blow rare levels up); two stores
        # of different levels are then sqrt(2) apart, like two typical stores on a z column
        self.scale_: FloatArray = np.where([_is_one_hot(c) for c in cols], 1.0, std[keep]).astype(
            np.float64
        )
        # the style-mix axes share one scale (that of the first axis) so that the minor,
        # mostly-noise axes are not blown up to the size of the main ones
        axes = [i for i, c in enumerate(cols) if feature_group(c) == "style_mix"]
        if axes:
            self.scale_[axes] = float(np.max(self.scale_[axes]))
        weights = weight_vector(cols, self.feature_weights)
        if self.reliability_:
            weights = weights * np.array([self.reliability_.get(c, 1.0) for c in cols])
        self.weights_: FloatArray = weights
        self.features_ = StoreFeatures(
            frame=frame.select(["store_id", *cols]),
            start=feats.start,
            end=feats.end,
            style_basis=feats.style_basis,
        )
        x = self._matrix(frame)
        self.store_ids_: list[str] = [str(s) for s in frame["store_id"].to_list()]
        rows = self._choose_k(x)
        self.scores_ = pl.DataFrame(
            rows,
            schema={
                "k": pl.Int64,
                "silhouette": pl.Float64,
                "stability": pl.Float64,
                "replication": pl.Float64,
            },
            orient="row",
        )
        km = self._kmeans(x, self.n_clusters_, self.random_state)
        labels = km.labels_.astype(np.int64)
        centers = km.cluster_centers_
        self.splits_ = pl.DataFrame(schema=_SPLIT_SCHEMA)
        if self.n_clusters is None and self.split_attributes:
            labels, centers = self._attribute_splits(x, labels)
        self._set_assignment(x, labels, centers)

    def _choose_k(
        self, x: FloatArray
    ) -> list[tuple[int, float | None, float | None, float | None]]:
        n = x.shape[0]
        if self.n_clusters is not None:
            k = min(self.n_clusters, n)
            self.n_clusters_: int = k
            sil = self._silhouette(x, k)
            return [(k, sil, None, None)]
        lo, hi = self.k_min, min(self.k_max, n - 1)
        if hi < lo:
            self.n_clusters_ = max(1, min(lo, n))
            return [(self.n_clusters_, None, None, None)]
        rows: list[tuple[int, float | None, float | None, float | None]] = []
        halves = self._halves if n <= _STABILITY_MAX_STORES else None
        use_replication = self.selection == "replication" and halves is not None
        # bootstrap stability costs ~n_bootstrap k-means per k: beyond _STABILITY_MAX_STORES
        # stores k is chosen by the (sampled) silhouette alone
        use_stability = (
            self.selection in ("stability", "replication")
            and not use_replication
            and n <= _STABILITY_MAX_STORES
        )
        xa = self._matrix(halves[0]) if use_replication and halves is not None else None
        xb = self._matrix(halves[1]) if use_replication and halves is not None else None
        for k in range(lo, hi + 1):
            sil = self._silhouette(x, k)
            stab = self._stability(x, k) if use_stability else None
            rep = self._replication(x, xa, xb, k) if xa is not None and xb is not None else None
            rows.append((k, sil, stab, rep))
            logger.debug(
                "clustering: k=%d silhouette=%s stability=%s replication=%s", k, sil, stab, rep
            )
        if use_replication:
            # the largest k whose clusters the two independent half-windows both reproduce
            ok = [r[0] for r in rows if (r[3] or 0.0) >= self.replication_threshold]
            self.n_clusters_ = max(ok) if ok else lo
            return rows
        if use_stability:
            # the most silhouette-separated k among the near-most-stable ones (stability alone
            # favours small k: two big halves are always reproducible)
            top = max(r[2] or 0.0 for r in rows)
            near = [r for r in rows if (r[2] or 0.0) >= top - 0.05]
            best = max(near, key=lambda r: (r[1] if r[1] is not None else -1.0, -r[0]))
        else:
            best = max(rows, key=lambda r: (r[1] if r[1] is not None else -1.0, -r[0]))
        self.n_clusters_ = best[0]
        return rows

    @staticmethod
    def _scan_n_init(x: FloatArray) -> int:
        """k-means restarts while scanning k: 10, or 4 beyond 300 stores (speed)."""
        return 10 if x.shape[0] <= _STABILITY_MAX_STORES else 4

    def _silhouette(self, x: FloatArray, k: int) -> float | None:
        if k < 2 or k >= x.shape[0]:
            return None
        labels = self._kmeans(x, k, self.random_state, n_init=self._scan_n_init(x)).labels_
        if len(set(labels.tolist())) < 2:
            return None
        # on large networks the silhouette is estimated on a fixed random sample of stores
        sample = min(x.shape[0], 400)
        return float(
            silhouette_score(x, labels, sample_size=sample, random_state=self.random_state)
        )

    def _stability(self, x: FloatArray, k: int) -> float:
        """Mean ARI, on the stores both resamples hold, between clusterings of bootstrap pairs."""
        rng = np.random.default_rng(self.random_state)
        n = x.shape[0]
        full = self._kmeans(x, k, self.random_state, n_init=self._scan_n_init(x))
        scores: list[float] = []
        for b in range(self.n_bootstrap):
            idx = np.unique(rng.integers(0, n, n))
            if len(idx) <= k:
                continue
            km = KMeans(n_clusters=k, n_init=3, random_state=self.random_state + b + 1).fit(x[idx])
            scores.append(float(adjusted_rand_score(full.labels_[idx], km.labels_)))
        return float(np.mean(scores)) if scores else 0.0

    def _replication(self, x: FloatArray, xa: FloatArray, xb: FloatArray, k: int) -> float:
        """Smallest best-match Jaccard of a full-window cluster in either half's clustering."""
        full = self._kmeans(x, k, self.random_state).labels_
        worst = 1.0
        for half in (xa, xb):
            lab = self._kmeans(half, k, self.random_state).labels_
            for c in range(k):
                own = full == c
                if not own.any():
                    continue
                best = max(
                    float(np.sum(own & (lab == d))) / float(np.sum(own | (lab == d)))
                    for d in range(k)
                )
                worst = min(worst, best)
        return worst

    def _behaviour_columns(self) -> list[int]:
        """Columns that describe buying behaviour: the style-mix axes when there are any (the
        main signal; the low-weight mixes only dilute a test), else every non-static column."""
        style = [i for i, c in enumerate(self.columns_) if feature_group(c) == "style_mix"]
        if style:
            return style
        return [i for i, c in enumerate(self.columns_) if feature_group(c) not in _STATIC_GROUPS]

    def _attribute_splits(self, x: FloatArray, labels: IntArray) -> tuple[IntArray, FloatArray]:
        """Split off the stores of one attribute level whose behaviour sets them apart.

        For every cluster and every level of the ``split_attributes`` with at least two stores
        in the cluster and two others, the statistic is the squared distance between the
        level's and the rest's mean behaviour (weighted clustering space without the static
        store-table columns: the style-mix axes when there are any); its p-value is the share
        of relabellings of the cluster's stores
        (all of them up to 2,000, else 999 random ones) with a statistic at least as large. A
        level is split off when ``p <= split_alpha`` and the mean silhouette of its stores in
        the two-way split is ``>= split_min_silhouette``; the most significant candidate goes
        first and the split clusters are tested again (at most ``k_max`` clusters in all).
        """
        cand: list[tuple[str, npt.NDArray[np.bool_]]] = []
        for col in self.columns_:
            key = col.partition("__")[2]
            attr, eq, _ = key.partition("=")
            if eq and attr in self.split_attributes and _is_one_hot(col):
                cand.append((key, self.features_.frame[col].fill_null(0.0).to_numpy() > 0.5))
        beh = self._behaviour_columns()
        labels = labels.copy()
        records: list[dict[str, object]] = []
        if not cand or not beh:
            return labels, _centres(x, labels)
        xb = x[:, beh]
        rng = np.random.default_rng(self.random_state)
        queue = sorted(set(labels.tolist()))
        while queue and len(set(labels.tolist())) < self.k_max:
            c = queue.pop(0)
            idx = np.flatnonzero(labels == c)
            best: tuple[float, float, str, npt.NDArray[np.bool_]] | None = None
            for key, member in cand:
                g = member[idx]
                m = int(g.sum())
                if m < 2 or idx.size - m < 2:
                    continue
                p = _permutation_p(xb[idx], g, rng)
                if p > self.split_alpha:
                    continue
                sil = float(silhouette_samples(xb[idx], g.astype(np.int64))[g].mean())
                if sil < self.split_min_silhouette:
                    continue
                if best is None or (p, -sil) < (best[0], -best[1]):
                    best = (p, sil, key, g)
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
        self.splits_ = pl.DataFrame(records, schema=_SPLIT_SCHEMA)
        return labels, _centres(x, labels)

    def _set_assignment(self, x: FloatArray, labels: IntArray, centers: FloatArray) -> None:
        """Order clusters (largest first, ties by first store id), then name and explain them."""
        ids = np.asarray(self.store_ids_, dtype=object)
        uniq = sorted(
            set(labels.tolist()),
            key=lambda c: (-int(np.sum(labels == c)), str(min(ids[labels == c]))),
        )
        remap = {old: new for new, old in enumerate(uniq)}
        lab = np.array([remap[int(v)] for v in labels], dtype=np.int64)
        cen = np.vstack([centers[old] for old in uniq]) if uniq else centers
        self._finish(x, lab, cen, [i + 1 for i in range(len(uniq))], names=None)

    def _finish(
        self,
        x: FloatArray,
        rows: IntArray,
        centers: FloatArray,
        cluster_ids: list[int],
        names: Mapping[int, str] | None,
    ) -> None:
        """Set ``centers_``, ids, profiles, names and ``labels_`` from row assignments."""
        self.centers_: FloatArray = centers
        self.cluster_ids_: list[int] = list(cluster_ids)
        self.n_clusters_ = len(cluster_ids)
        self._rows = rows
        self.profiles_ = self._profiles(rows)
        generated = self._generate_names()
        final: dict[int, str] = {}
        for cid in self.cluster_ids_:
            final[cid] = (names or {}).get(cid) or generated[cid]
        self.names_: dict[int, str] = _unique_names(final)
        self.profiles_ = self.profiles_.with_columns(
            pl.col("cluster_id")
            .replace_strict(self.names_, return_dtype=pl.String)
            .alias("cluster_name")
        ).select(
            "cluster_id",
            "cluster_name",
            "feature",
            "label",
            "group",
            "cluster_value",
            "network_value",
            "z",
            "rank",
        )
        dist = np.sqrt(((x[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2))
        own = dist[np.arange(len(rows)), rows]
        alt_d = dist.copy()
        alt_d[np.arange(len(rows)), rows] = np.inf
        if centers.shape[0] > 1:
            alt = np.argmin(alt_d, axis=1)
            alt_dist: list[float | None] = [float(v) for v in alt_d[np.arange(len(rows)), alt]]
            alt_ids: list[int | None] = [self.cluster_ids_[int(a)] for a in alt]
        else:
            alt_dist = [None] * len(rows)
            alt_ids = [None] * len(rows)
        top = self.top_features()
        store_cids = [self.cluster_ids_[int(r)] for r in rows]
        self.labels_ = pl.DataFrame(
            {
                "store_id": self.store_ids_,
                "cluster_id": store_cids,
                "cluster_name": [self.names_[c] for c in store_cids],
                "distance": [float(v) for v in own],
                "alt_cluster_id": alt_ids,
                "alt_cluster_name": [self.names_[a] if a is not None else None for a in alt_ids],
                "alt_distance": alt_dist,
                "top_features": [top[c] for c in store_cids],
            },
            schema={
                "store_id": pl.String,
                "cluster_id": pl.Int64,
                "cluster_name": pl.String,
                "distance": pl.Float64,
                "alt_cluster_id": pl.Int64,
                "alt_cluster_name": pl.String,
                "alt_distance": pl.Float64,
                "top_features": pl.String,
            },
        )

    def _profiles(self, rows: IntArray) -> pl.DataFrame:
        frame = self.features_.frame
        raw = (
            np.column_stack(
                [frame[c].cast(pl.Float64).fill_null(np.nan).to_numpy() for c in self.columns_]
            )
            if self.columns_
            else np.zeros((frame.height, 0))
        )
        z = np.where(np.isfinite(raw), (raw - self.mean_) / self.scale_, 0.0)
        net = (
            np.nanmean(np.where(np.isfinite(raw), raw, np.nan), axis=0) if raw.size else self.mean_
        )
        records: list[dict[str, object]] = []
        for r, cid in enumerate(self.cluster_ids_):
            mask = rows == r
            if not mask.any():
                continue
            cval = _nanmean0(raw[mask], self.mean_)
            zc = z[mask].mean(axis=0)
            # the style-mix axes are latent (no wording of their own): ranked after the
            # nameable features
            order = np.argsort(-np.abs(zc * self._describe_weights()), kind="stable")
            rank = np.empty(len(order), dtype=np.int64)
            rank[order] = np.arange(1, len(order) + 1)
            for j, col in enumerate(self.columns_):
                records.append(
                    {
                        "cluster_id": cid,
                        "feature": col,
                        "label": feature_label(col, float(zc[j])),
                        "group": feature_group(col),
                        "cluster_value": float(cval[j]),
                        "network_value": float(net[j]),
                        "z": float(zc[j]),
                        "rank": int(rank[j]),
                    }
                )
        schema = {
            "cluster_id": pl.Int64,
            "feature": pl.String,
            "label": pl.String,
            "group": pl.String,
            "cluster_value": pl.Float64,
            "network_value": pl.Float64,
            "z": pl.Float64,
            "rank": pl.Int64,
        }
        return (
            pl.DataFrame(records, schema=schema)
            .with_columns(pl.lit("").alias("cluster_name"))
            .sort("cluster_id", "rank")
        )

    def _generate_names(self) -> dict[int, str]:
        """A short name per cluster from its most distinguishing features."""
        names: dict[int, str] = {}
        prof = self.profiles_
        weights = dict(zip(self.columns_, self._describe_weights().tolist(), strict=True))
        for cid in self.cluster_ids_:
            p = prof.filter(pl.col("cluster_id") == cid)
            lead = ""
            # a categorical store attribute most of the cluster shares (format, climate, ...)
            p = p.filter(pl.col("feature").is_in([c for c, w in weights.items() if w > 0]))
            cat_rows = p.filter(
                pl.col("feature").str.contains("=")
                & pl.col("group").is_in(["format", "climate", "demographics"])
                & (pl.col("z") >= 0.8)
                & (pl.col("cluster_value") >= 0.6)
            ).sort("z", descending=True)
            used: set[str] = set()
            if cat_rows.height:
                lead = str(cat_rows["label"][0])
                used.add(str(cat_rows["feature"][0]))
            scored = [
                (float(z) * math.sqrt(max(weights.get(str(f), 0.0), 0.0)), str(f), float(z))
                for f, z in zip(p["feature"], p["z"], strict=True)
                if str(f) not in used and weights.get(str(f), 0.0) > 0
            ]
            positive = sorted((s for s in scored if s[2] >= 0.5), key=lambda s: -s[0])
            items: list[str] = []
            for _, f, z in positive:
                if "=" in f and feature_group(f) in ("format", "climate", "demographics") and z < 0:
                    continue
                label = feature_label(f, z)
                if label not in items and label != lead:
                    items.append(label)
                if len(items) >= self.n_name_features:
                    break
            if not items:
                negative = sorted(scored, key=lambda s: s[0])[: self.n_name_features]
                items = [feature_label(f, z) for _, f, z in negative if abs(z) >= 0.3]
            if not lead:
                lead = items.pop(0) if items else f"cluster {cid}"
            names[cid] = f"{lead}: {', '.join(items)}" if items else lead
        return names

    def _describe_weights(self) -> FloatArray:
        """Weights used to word clusters: as fitted, with the latent style-mix axes at 0."""
        latent = np.array([feature_group(c) == "style_mix" for c in self.columns_], dtype=bool)
        out: FloatArray = np.where(latent, 0.0, self.weights_)
        return out

    def top_features(self, n: int | None = None) -> dict[int, str]:
        """Cluster id -> ``"label (+1.8 sd); ..."`` of its ``n`` most distinguishing features."""
        n = self.n_name_features if n is None else n
        out: dict[int, str] = {}
        for cid in self.cluster_ids_:
            p = self.profiles_.filter(pl.col("cluster_id") == cid).sort("rank").head(n)
            out[cid] = "; ".join(
                f"{lab} ({z:+.1f} sd)" for lab, z in zip(p["label"], p["z"], strict=True)
            )
        return out

    # ------------------------------------------------------------------ helpers
    def cluster_table(self) -> pl.DataFrame:
        """``store_id, cluster_id, cluster_name, top_features`` (the clusters.csv columns)."""
        return self.labels_.select("store_id", "cluster_id", "cluster_name", "top_features")

    def predict(self, data: StoreFeatures | pl.DataFrame) -> pl.DataFrame:
        """Nearest fitted cluster of each store of ``data``: ``store_id, cluster_id, distance``."""
        frame = data.frame if isinstance(data, StoreFeatures) else data
        x = self._matrix(frame)
        dist = np.sqrt(((x[:, None, :] - self.centers_[None, :, :]) ** 2).sum(axis=2))
        best = np.argmin(dist, axis=1)
        return pl.DataFrame(
            {
                "store_id": frame["store_id"].cast(pl.String),
                "cluster_id": [self.cluster_ids_[int(b)] for b in best],
                "distance": dist[np.arange(len(best)), best],
            },
            schema={"store_id": pl.String, "cluster_id": pl.Int64, "distance": pl.Float64},
        )

    def embedding(self) -> FloatArray:
        """Clustering-space coordinates of the fitted stores (rows in ``labels_`` order)."""
        return self._matrix(self.features_.frame)


_SPLIT_SCHEMA = {
    "cluster": pl.Int64,
    "attribute": pl.String,
    "n_stores": pl.Int64,
    "n_cluster": pl.Int64,
    "p_value": pl.Float64,
    "silhouette": pl.Float64,
}


def _centres(x: FloatArray, labels: IntArray) -> FloatArray:
    """Mean of each label's rows, rows in label order ``0..max``."""
    k = int(labels.max()) + 1
    out: FloatArray = np.vstack(
        [
            x[labels == c].mean(axis=0) if np.any(labels == c) else np.zeros(x.shape[1])
            for c in range(k)
        ]
    )
    return out


def _permutation_p(x: FloatArray, group: npt.NDArray[np.bool_], rng: np.random.Generator) -> float:
    """Permutation p-value of the squared distance between the group's and the rest's means."""
    n = x.shape[0]
    m = int(group.sum())
    total = x.sum(axis=0)

    def stats(members: npt.NDArray[np.float64]) -> FloatArray:
        # members: (B, n) 0/1 rows; mean of the group minus mean of the rest, squared norm
        s = members @ x
        diff = s / m - (total[None, :] - s) / (n - m)
        out: FloatArray = (diff**2).sum(axis=1)
        return out

    observed = float(stats(group.astype(np.float64)[None, :])[0])
    if math.comb(n, m) <= _EXACT_PERMUTATIONS:
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


def _nanmean0(sub: FloatArray, fallback: FloatArray) -> FloatArray:
    """Column means ignoring NaN; ``fallback`` for all-NaN columns."""
    finite = np.isfinite(sub)
    cnt = finite.sum(axis=0)
    total = np.where(finite, sub, 0.0).sum(axis=0)
    out: FloatArray = np.where(cnt > 0, total / np.maximum(cnt, 1), fallback)
    return out


def _unique_names(names: Mapping[int, str]) -> dict[int, str]:
    """Make names unique by suffixing ``#<id>`` to repeats."""
    seen: dict[str, int] = {}
    out: dict[int, str] = {}
    for cid in sorted(names):
        name = names[cid]
        if name in seen:
            name = f"{name} #{cid}"
        seen[name] = cid
        out[cid] = name
    return out
