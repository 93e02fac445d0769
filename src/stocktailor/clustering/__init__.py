"""Dynamic store clustering: behaviour features, clusters with names and explanations,
re-clustering on a rolling window, cluster-pooled demand rates and an HTML report.

Typical use::

    clusterer = StoreClusterer(window_days=84, random_state=0).fit(tables, as_of)
    clusterer.labels_        # store_id, cluster_id, cluster_name, alt_cluster_id, alt_distance...
    clusterer.profiles_      # feature vs network average per cluster
    later, moves = recluster(clusterer, tables, as_of + timedelta(days=28))
    rates = cluster_pooled_rates(tables, as_of, clusterer.labels_)
    clusters_report_html(clusterer, tables.stores, "clusters.html")
"""

from __future__ import annotations

from stocktailor.clustering.dynamic import match_clusters, moved_stores, recluster
from stocktailor.clustering.exposure import pair_exposure
from stocktailor.clustering.features import StoreFeatures, build_store_features
from stocktailor.clustering.labels import (
    DEFAULT_GROUP_WEIGHTS,
    FEATURE_GROUPS,
    NO_STYLE_GROUP_WEIGHTS,
    color_family,
    feature_group,
    feature_label,
    size_group,
)
from stocktailor.clustering.model import StoreClusterer, weight_vector
from stocktailor.clustering.pooling import cluster_pooled_rates, pool_rates
from stocktailor.clustering.report import clusters_report_html

__all__ = [
    "DEFAULT_GROUP_WEIGHTS",
    "FEATURE_GROUPS",
    "NO_STYLE_GROUP_WEIGHTS",
    "StoreClusterer",
    "StoreFeatures",
    "build_store_features",
    "cluster_pooled_rates",
    "clusters_report_html",
    "color_family",
    "feature_group",
    "feature_label",
    "match_clusters",
    "moved_stores",
    "pair_exposure",
    "pool_rates",
    "recluster",
    "size_group",
    "weight_vector",
]
