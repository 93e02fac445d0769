"""The store clusterer: features, clustering space, number of clusters, names, explanations."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
import polars as pl
from sklearn.metrics import adjusted_rand_score

from stocktailor.clustering.climate import ClimateFit, adjust, fit_climate
from stocktailor.clustering.features import StoreFeatures, build_store_features
from stocktailor.clustering.labels import MIX_GROUPS, STORE_ATTRIBUTE_GROUPS, feature_group
from stocktailor.clustering.naming import (
    cluster_names,
    describe_weights,
    profiles,
    top_features,
)
from stocktailor.clustering.selection import (
    STABILITY_MAX_STORES,
    ScoreRow,
    agglomerate,
    choose_k,
    kmeans,
    silhouette,
)
from stocktailor.clustering.space import Space, fit_space, is_one_hot, weight_vector
from stocktailor.clustering.splits import SPLIT_SCHEMA, attribute_splits, centres
from stocktailor.config import ClusteringConfig
from stocktailor.contract import Tables

__all__ = ["StoreClusterer", "weight_vector"]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Halves = tuple[StoreFeatures, StoreFeatures]

_SCORE_SCHEMA = {
    "k": pl.Int64,
    "silhouette": pl.Float64,
    "stability": pl.Float64,
    "replication": pl.Float64,
    "separation": pl.Float64,
}


class StoreClusterer:
    """Clusters stores by buying behaviour; scikit-learn style.

    Parameters
    ----------
    n_clusters
        Force this number of clusters (k-means); ``None`` chooses it (``selection``).
    k_min, k_max
        Range of k tried by the k-means selections; ``k_max`` also caps
        ``selection="mix_difference"``.
    window_days
        Rolling window of sales the features describe, days (ending at ``as_of``).
    feature_weights
        Weight per feature group (see :data:`~stocktailor.clustering.FEATURE_GROUPS`); 0
        switches a group off. By default only buying behaviour counts (style mix 1, sales
        mixes by category and product attribute 0.5); store attributes (demographics, format,
        climate) are off: set e.g. ``{"demographics": 0.25, "format": 0.25}`` to use them.
    selection
        How the clusters are found: ``"mix_difference"`` (default: stores are grouped until
        every two groups' mixes differ by at least ``min_mix_difference``, distances
        cross-fitted on the two halves of the window so that sampling noise does not count;
        see :func:`~.selection.agglomerate`), or k-means with k chosen by ``"replication"``
        (the largest k the two half-windows reproduce, Jaccard >= ``replication_threshold``),
        ``"stability"`` (bootstrap) or ``"silhouette"``. Without half-windows (ready features,
        a window under 14 days) ``"stability"`` is used.
    min_mix_difference
        Two groups of stores whose mixes differ by at least this much stay apart, in
        root-mean-square log-ratio units per unit sold (0.2: the typical unit sits in a style
        or attribute level that sells about 20% more or less; see :mod:`.style`).
    noise_margin
        Two groups stay apart only when their difference exceeds ``min_mix_difference`` by
        this many standard errors of it (estimated from how the two halves of the window
        disagree store by store), so a small group whose difference is within its sampling
        noise is merged.
    singleton_factor
        A single store is a cluster of its own only when it is also this many times
        ``min_mix_difference`` from every group.
    climate_iterations
        Times the style mix's climate slopes are re-estimated within the clusters found (so
        that a segment living in one climate is not read as climate) and the stores clustered
        again; 0 keeps the slopes fitted across all stores.
    replication_threshold
        Minimum Jaccard overlap for ``selection="replication"``.
    split_attributes
        Categorical store attributes (e.g. ``"format"``) whose levels are proposed as
        sub-clusters after the clusters are found automatically: a level's stores inside a
        cluster are split off only when their behaviour differs beyond chance (permutation test,
        p <= ``split_alpha``), they sit apart (mean silhouette >= ``split_min_silhouette``) and,
        with half-windows, their cross-fitted mix difference from the rest is at least
        ``min_mix_difference``. Empty (default): no splits, attributes are not trusted.
    split_alpha, split_min_silhouette
        Thresholds of that split test.
    n_bootstrap
        Resamples per k for ``selection="stability"``.
    n_name_features
        Distinguishing features listed in ``top_features``.
    reliability_weighting
        When fitting from tables, multiply each z-scored feature's weight by its split-half
        reliability (mix groups are cross-fitted instead), so features that are mostly sampling
        noise in the window do not drown the real differences.
    random_state
        Seed of k-means and the bootstrap.

    Attributes
    ----------
    features_ : StoreFeatures
        Raw features of the fitted stores (style mix on the final climate slopes).
    columns_ : list[str]
        Feature columns of the clustering space.
    mean_, scale_, weights_ : ndarray
        The clustering space is ``(x - mean_) / scale_ * weights_`` (nulls at 0).
    reliability_ : dict[str, float]
        Split-half reliability per z-scored feature (empty when not computed).
    n_clusters_ : int
        The number of clusters.
    scores_ : pl.DataFrame
        ``k, silhouette, stability, replication, separation`` per k considered (null if not
        computed); ``separation`` is the cross-fitted mix difference of the two closest
        groups at that k (``selection="mix_difference"``).
    splits_ : pl.DataFrame
        Attribute splits: ``cluster, attribute, n_stores, n_cluster, p_value, silhouette``.
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
        selection: Literal[
            "mix_difference", "replication", "silhouette", "stability"
        ] = "mix_difference",
        min_mix_difference: float = 0.2,
        noise_margin: float = 2.0,
        singleton_factor: float = 1.0,
        climate_iterations: int = 3,
        n_bootstrap: int = 10,
        n_name_features: int = 4,
        reliability_weighting: bool = True,
        replication_threshold: float = 0.7,
        split_attributes: Sequence[str] = (),
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
        self.min_mix_difference = min_mix_difference
        self.noise_margin = noise_margin
        self.singleton_factor = singleton_factor
        self.climate_iterations = climate_iterations
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
            min_mix_difference=config.min_mix_difference,
            noise_margin=config.noise_margin,
            singleton_factor=config.singleton_factor,
            climate_iterations=config.climate_iterations,
            n_bootstrap=config.n_bootstrap,
            reliability_weighting=config.reliability_weighting,
            replication_threshold=config.replication_threshold,
            split_attributes=tuple(config.split_attributes),
            split_alpha=config.split_alpha,
            random_state=config.random_state,
        )

    def get_params(self) -> dict[str, object]:
        """Constructor settings (for cloning)."""
        names = [
            "n_clusters",
            "k_min",
            "k_max",
            "window_days",
            "feature_weights",
            "selection",
            "min_mix_difference",
            "noise_margin",
            "singleton_factor",
            "climate_iterations",
            "n_bootstrap",
            "n_name_features",
            "reliability_weighting",
            "replication_threshold",
            "split_attributes",
            "split_alpha",
            "split_min_silhouette",
            "random_state",
        ]
        return {name: getattr(self, name) for name in names}

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
        halves: Halves | None = None
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
            if self.window_days >= 14:
                halves = self._half_windows(data, as_of, feats, in_stock)
                if reliability is None and self.reliability_weighting:
                    reliability = _reliability(feats, halves)
        elif isinstance(data, StoreFeatures):
            feats = data
        else:
            feats = StoreFeatures(frame=data)
        self.as_of_ = as_of if as_of is not None else feats.end
        self.reliability_: dict[str, float] = dict(reliability or {})
        self._fit_features(feats, halves)
        return self

    def _half_windows(
        self,
        tables: Tables,
        as_of: dt.date,
        feats: StoreFeatures,
        in_stock: pl.DataFrame | None,
    ) -> Halves:
        """Features of the two halves of the window (independent sales), on the full window's
        style basis and in its store order."""
        half = self.window_days // 2
        ids = [str(v) for v in feats.frame["store_id"].to_list()]
        first = build_store_features(
            tables,
            as_of - dt.timedelta(days=half),
            window_days=self.window_days - half,
            in_stock=in_stock,
            store_ids=ids,
            style_basis=feats.style_basis,
        )
        second = build_store_features(
            tables,
            as_of,
            window_days=half,
            in_stock=in_stock,
            store_ids=ids,
            style_basis=feats.style_basis,
        )
        return first, second

    def _matrix(self, frame: pl.DataFrame) -> FloatArray:
        """Clustering-space matrix of ``frame``: climate-adjusted, standardised, weighted."""
        return self._space.matrix(adjust(frame, self.climate_))

    def standardized(self, frame: pl.DataFrame) -> FloatArray:
        """Unweighted coordinates of ``frame``'s features (z-scores; mix units for mixes)."""
        w = np.where(self.weights_ > 0, self.weights_, 1.0)
        out: FloatArray = self._matrix(frame) / w
        return out

    def transform(self, data: StoreFeatures | pl.DataFrame) -> FloatArray:
        """Clustering-space coordinates of ``data`` (rows in its order)."""
        frame = data.frame if isinstance(data, StoreFeatures) else data
        return self._matrix(frame)

    def _set_space(self, feats: StoreFeatures) -> None:
        space = fit_space(feats.frame, self.feature_weights, self.reliability_)
        self._space: Space = space
        self.columns_: list[str] = space.columns
        self.mean_: FloatArray = space.mean
        self.scale_: FloatArray = space.scale
        self.weights_: FloatArray = space.weights
        self.features_ = StoreFeatures(
            frame=feats.frame.select(["store_id", *space.columns]),
            start=feats.start,
            end=feats.end,
            style_basis=feats.style_basis,
        )

    def _fit_features(self, feats: StoreFeatures, halves: Halves | None = None) -> None:
        frame = feats.frame
        if "store_id" not in frame.columns:
            msg = "clustering: features need a store_id column"
            raise ValueError(msg)
        if frame["store_id"].n_unique() != frame.height:
            msg = "clustering: features have duplicate store_id rows"
            raise ValueError(msg)
        if frame.height < 1:
            msg = "stores: no selling store (kind 'store') to cluster"
            raise ValueError(msg)
        self.store_ids_: list[str] = [str(s) for s in frame["store_id"].to_list()]
        self.climate_: ClimateFit | None = None
        self._set_space(feats)
        labels: IntArray | None = None
        rows: list[ScoreRow] = []
        for _ in range(self.climate_iterations + 1):
            # climate slopes across all stores first, then within the clusters just found
            self.climate_ = fit_climate(frame, labels)
            x = self._matrix(frame)
            hx = self._half_matrices(halves, labels)
            new, rows = self._cluster(x, hx)
            same = labels is not None and adjusted_rand_score(labels, new) >= 1.0 - 1e-12
            labels = new
            if same or self.climate_ is None or int(labels.max()) == 0:
                break
        assert labels is not None
        self.scores_ = pl.DataFrame(rows, schema=_SCORE_SCHEMA, orient="row")
        self.splits_ = pl.DataFrame(schema=SPLIT_SCHEMA)
        x = self._matrix(frame)
        if self.n_clusters is None and self.split_attributes:
            labels = self._attribute_splits(x, labels, self._half_matrices(halves, labels))
        self._set_assignment(x, labels, centres(x, labels))

    def _half_matrices(
        self, halves: Halves | None, labels: IntArray | None
    ) -> tuple[FloatArray, FloatArray] | None:
        """The halves in the clustering space, each adjusted by its own climate slopes (the
        weather of a half differs from the full window's) within the same clusters."""
        if halves is None:
            return None
        a, b = (self._space.matrix(adjust(h.frame, fit_climate(h.frame, labels))) for h in halves)
        return a, b

    def _cluster(
        self, x: FloatArray, halves: tuple[FloatArray, FloatArray] | None
    ) -> tuple[IntArray, list[ScoreRow]]:
        """Labels and score rows of the stores in the space ``x`` (halves: same stores)."""
        n = x.shape[0]
        if self.n_clusters is not None:
            k = min(self.n_clusters, n)
            self.n_clusters_: int = k
            labels = kmeans(x, k, self.random_state).labels_.astype(np.int64)
            return labels, [(k, silhouette(x, k, self.random_state), None, None, None)]
        if self.selection == "mix_difference" and halves is not None:
            labels, rows = agglomerate(
                halves[0],
                halves[1],
                self.min_mix_difference,
                noise_margin=self.noise_margin,
                singleton_factor=self.singleton_factor,
                k_max=self.k_max,
                seed=self.random_state,
            )
            self.n_clusters_ = int(labels.max()) + 1
            return labels, rows
        use_halves = halves if n <= STABILITY_MAX_STORES else None
        selection = "stability" if self.selection == "mix_difference" else self.selection
        self.n_clusters_, rows = choose_k(
            x,
            use_halves,
            k_min=self.k_min,
            k_max=self.k_max,
            selection=selection,
            replication_threshold=self.replication_threshold,
            n_bootstrap=self.n_bootstrap,
            seed=self.random_state,
        )
        labels = kmeans(x, self.n_clusters_, self.random_state).labels_.astype(np.int64)
        return labels, rows

    def _attribute_splits(
        self, x: FloatArray, labels: IntArray, halves: tuple[FloatArray, FloatArray] | None
    ) -> IntArray:
        """Split off attribute levels whose behaviour differs (:func:`.splits.attribute_splits`)."""
        cand: list[tuple[str, npt.NDArray[np.bool_]]] = []
        for col in self.columns_:
            key = col.partition("__")[2]
            attr, eq, _ = key.partition("=")
            if eq and attr in self.split_attributes and is_one_hot(col):
                cand.append((key, self.features_.frame[col].fill_null(0.0).to_numpy() > 0.5))
        beh = self._behaviour_columns()
        if not cand or not beh:
            return labels
        labels, self.splits_ = attribute_splits(
            x[:, beh],
            labels,
            cand,
            max_clusters=self.k_max,
            alpha=self.split_alpha,
            min_silhouette=self.split_min_silhouette,
            seed=self.random_state,
            halves=(halves[0][:, beh], halves[1][:, beh]) if halves is not None else None,
            min_difference=self.min_mix_difference,
        )
        return labels

    def _behaviour_columns(self) -> list[int]:
        """Columns that describe buying behaviour: the weighted mix groups (else every weighted
        column that is not a store attribute)."""
        mix = [
            i
            for i, c in enumerate(self.columns_)
            if feature_group(c) in MIX_GROUPS and self.weights_[i] > 0
        ]
        if mix:
            return mix
        return [
            i
            for i, c in enumerate(self.columns_)
            if feature_group(c) not in STORE_ATTRIBUTE_GROUPS and self.weights_[i] > 0
        ]

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
        # profiles describe the climate-adjusted mixes (what the clusters were formed on)
        raw = self._space.raw(adjust(self.features_.frame, self.climate_))
        describe = self._describe_weights()
        self.profiles_ = profiles(raw, self.columns_, self.cluster_ids_, rows, describe)
        self.names_: dict[int, str] = cluster_names(self.profiles_, self.cluster_ids_, keep=names)
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

    def _describe_weights(self) -> FloatArray:
        """Weights used to word clusters (:func:`.naming.describe_weights`)."""
        return describe_weights(self.columns_)

    def top_features(self, n: int | None = None) -> dict[int, str]:
        """Cluster id -> ``"label (+1.8 sd); ..."`` of its ``n`` most distinguishing features."""
        return top_features(
            self.profiles_, self.cluster_ids_, self.n_name_features if n is None else n
        )

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


def _reliability(feats: StoreFeatures, halves: Halves) -> dict[str, float]:
    """Split-half reliability of each z-scored behaviour feature (Spearman-Brown corrected).

    A feature's reliability is the correlation across stores of its two half-window values,
    stepped up to the full window (``2r / (1 + r)``, floored at 0). Mix groups (compared
    cross-fitted) and store-table features (the same in every window) get 1.
    """
    order = feats.frame.select("store_id")
    a = order.join(halves[0].frame, on="store_id", how="left")
    b = order.join(halves[1].frame, on="store_id", how="left")
    out: dict[str, float] = {}
    for col in feats.columns:
        group = feature_group(col)
        if group in STORE_ATTRIBUTE_GROUPS or group in MIX_GROUPS:
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
