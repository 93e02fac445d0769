"""Dynamic re-clustering: match new clusters to old ones and report the stores that moved."""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans

from stocktailor.clustering.features import StoreFeatures, build_store_features
from stocktailor.clustering.labels import feature_label
from stocktailor.clustering.model import StoreClusterer
from stocktailor.contract import Tables

__all__ = ["match_clusters", "moved_stores", "recluster"]

logger = logging.getLogger(__name__)


def match_clusters(old: pl.DataFrame, new: pl.DataFrame) -> dict[int, int]:
    """Match new cluster ids to old ones by the stores they share (Hungarian assignment).

    Parameters
    ----------
    old, new
        Frames with ``store_id, cluster_id`` (e.g. two ``labels_``).

    Returns
    -------
    dict[int, int]
        New cluster id -> old cluster id, for the new clusters matched to an old one sharing at
        least one store (the assignment maximises the number of shared stores, ties broken by
        Jaccard overlap). Unmatched new clusters are absent.
    """
    joined = old.select("store_id", pl.col("cluster_id").alias("old")).join(
        new.select("store_id", pl.col("cluster_id").alias("new")), on="store_id", how="inner"
    )
    old_ids = sorted(int(v) for v in old["cluster_id"].unique().to_list())
    new_ids = sorted(int(v) for v in new["cluster_id"].unique().to_list())
    if not old_ids or not new_ids:
        return {}
    shared = np.zeros((len(new_ids), len(old_ids)))
    counts = joined.group_by("new", "old").len()
    ni = {c: i for i, c in enumerate(new_ids)}
    oi = {c: i for i, c in enumerate(old_ids)}
    for n, o, c in counts.iter_rows():
        shared[ni[int(n)], oi[int(o)]] = float(c)
    size_new = np.array([float((new["cluster_id"] == c).sum()) for c in new_ids])
    size_old = np.array([float((old["cluster_id"] == c).sum()) for c in old_ids])
    jaccard = shared / np.maximum(size_new[:, None] + size_old[None, :] - shared, 1.0)
    rows, cols = linear_sum_assignment(-(shared + 1e-3 * jaccard))
    return {new_ids[r]: old_ids[c] for r, c in zip(rows, cols, strict=True) if shared[r, c] > 0}


def _why(
    clusterer: StoreClusterer, old_features: StoreFeatures, store_ids: list[str], n: int = 3
) -> dict[str, str]:
    """Store -> the ``n`` features that changed most between windows (weighted z units)."""
    new_frame = clusterer.features_.frame.filter(pl.col("store_id").is_in(store_ids))
    old_frame = old_features.frame.filter(pl.col("store_id").is_in(store_ids))
    order = new_frame["store_id"].to_list()
    old_frame = pl.DataFrame({"store_id": order}, schema={"store_id": pl.String}).join(
        old_frame, on="store_id", how="left"
    )
    z_new = clusterer.standardized(new_frame)
    z_old = clusterer.standardized(old_frame)
    # the style-mix axes are re-derived in each window (rotated), so they are not compared
    delta = (z_new - z_old) * clusterer._describe_weights()
    out: dict[str, str] = {}
    for i, sid in enumerate(order):
        top = np.argsort(-np.abs(delta[i]), kind="stable")[:n]
        parts = []
        for j in top:
            d = float(z_new[i, j] - z_old[i, j])
            if abs(d) < 1e-9:
                continue
            col = clusterer.columns_[j]
            parts.append(f"{feature_label(col, d)} ({z_old[i, j]:+.1f} -> {z_new[i, j]:+.1f} sd)")
        out[str(sid)] = "; ".join(parts)
    return out


def moved_stores(old: StoreClusterer, new: StoreClusterer) -> pl.DataFrame:
    """Stores whose cluster changed between two (matched) fits, with the reason.

    ``new`` must use ``old``'s cluster ids for matched clusters (as :func:`recluster` makes it).

    Returns
    -------
    pl.DataFrame
        ``store_id, from_cluster_id, from_cluster_name, to_cluster_id, to_cluster_name,
        distance_old, distance_new, why`` where the distances are from the store to the new
        fit's centre of its old and of its new cluster (null if the old cluster disappeared)
        and ``why`` lists the features that changed most (z-scores before -> after).
    """
    a = old.labels_.select(
        "store_id",
        pl.col("cluster_id").alias("from_cluster_id"),
        pl.col("cluster_name").alias("from_cluster_name"),
    )
    b = new.labels_.select(
        "store_id",
        pl.col("cluster_id").alias("to_cluster_id"),
        pl.col("cluster_name").alias("to_cluster_name"),
        pl.col("distance").alias("distance_new"),
    )
    moved = a.join(b, on="store_id", how="inner").filter(
        pl.col("from_cluster_id") != pl.col("to_cluster_id")
    )
    schema = {
        "store_id": pl.String,
        "from_cluster_id": pl.Int64,
        "from_cluster_name": pl.String,
        "to_cluster_id": pl.Int64,
        "to_cluster_name": pl.String,
        "distance_old": pl.Float64,
        "distance_new": pl.Float64,
        "why": pl.String,
    }
    if moved.is_empty():
        return pl.DataFrame(schema=schema)
    ids = [str(s) for s in moved["store_id"].to_list()]
    x = new.transform(new.features_.frame.filter(pl.col("store_id").is_in(ids)))
    order = new.features_.frame.filter(pl.col("store_id").is_in(ids))["store_id"].to_list()
    pos = {c: i for i, c in enumerate(new.cluster_ids_)}
    d_old: dict[str, float | None] = {}
    from_ids = dict(
        zip(moved["store_id"].to_list(), moved["from_cluster_id"].to_list(), strict=True)
    )
    for i, sid in enumerate(order):
        c = int(from_ids[sid])
        d_old[str(sid)] = float(np.linalg.norm(x[i] - new.centers_[pos[c]])) if c in pos else None
    why = _why(new, old.features_, ids)
    return (
        moved.with_columns(
            pl.col("store_id").replace_strict(d_old, return_dtype=pl.Float64).alias("distance_old"),
            pl.col("store_id").replace_strict(why, return_dtype=pl.String).alias("why"),
        )
        .select(list(schema))
        .sort("store_id")
    )


def _changed_stores(
    new: StoreClusterer,
    tables: Tables,
    as_of: dt.date,
    in_stock: pl.DataFrame | None,
    old_of: dict[str, int],
    factor: float,
) -> set[str]:
    """Stores whose behaviour changed vs an earlier window more than their cluster's did.

    The two preceding windows of the same length (ending ``window_days`` and ``2 x
    window_days`` before ``as_of``, the second only if the sales reach back that far) are
    projected on the new fit's style axes and standardisation; for each, a store's change
    (behaviour columns) less the median change of its old cluster is compared with ``factor``
    x the median such residual over all stores. A store changed if it exceeds that in either
    comparison (the second catches a switch that was half-way through the window at the
    previous re-clustering).
    """
    w = new.window_days
    first_sale = tables.sales["date"].min()
    cols = new._behaviour_columns()
    x_new = new.embedding()[:, cols]
    groups = np.array([old_of.get(s, -1) for s in new.store_ids_], dtype=np.int64)
    out: set[str] = set()
    for lag in (1, 2):
        end = as_of - dt.timedelta(days=lag * w)
        start = end - dt.timedelta(days=w - 1)
        if lag > 1 and (not isinstance(first_sale, dt.date) or start < first_sale):
            break
        prior = build_store_features(
            tables,
            end,
            window_days=w,
            in_stock=in_stock,
            store_ids=new.store_ids_,
            style_basis=new.features_.style_basis,
        )
        frame = new.features_.frame.select("store_id").join(prior.frame, on="store_id", how="left")
        delta = x_new - new.transform(frame)[:, cols]
        resid = delta.copy()
        for g in set(groups.tolist()):
            members = groups == g
            resid[members] -= np.median(delta[members], axis=0)
        score = np.linalg.norm(resid, axis=1)
        cut = factor * float(np.median(score))
        out |= {sid for sid, v in zip(new.store_ids_, score.tolist(), strict=True) if v > cut}
    return out


def _carry_over(
    previous: StoreClusterer,
    new: StoreClusterer,
    x: npt.NDArray[np.float64],
    old_of: dict[str, int],
    anchored: bool,
    keep_k: bool,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], list[int], dict[int, str]]:
    """Rows, centres, ids and kept names of the new fit, carried over from ``previous``."""
    old_rows = np.array([old_of.get(sid, -1) for sid in new.store_ids_], dtype=np.int64)
    present = [c for c in previous.cluster_ids_ if np.any(old_rows == c)]
    if anchored and keep_k and len(present) == new.n_clusters_:
        # k-means started from the old clusters' centres in the new window's space: clusters
        # keep their identity and only stores whose behaviour moved change cluster
        init = np.vstack([x[old_rows == c].mean(axis=0) for c in present])
        km = KMeans(n_clusters=len(present), init=init, n_init=1, random_state=new.random_state)
        km.fit(x)
        return (
            km.labels_.astype(np.int64),
            km.cluster_centers_,
            list(present),
            {c: previous.names_[c] for c in present},
        )
    mapping = match_clusters(previous.labels_, new.labels_)
    next_id = max([*previous.cluster_ids_, 0]) + 1
    id_of: dict[int, int] = {}
    for cid in new.cluster_ids_:
        if cid in mapping:
            id_of[cid] = mapping[cid]
        else:
            id_of[cid] = next_id
            next_id += 1
    names = {id_of[c]: previous.names_[id_of[c]] for c in new.cluster_ids_ if c in mapping}
    return (
        np.array(new._rows, dtype=np.int64),
        new.centers_,
        [id_of[c] for c in new.cluster_ids_],
        names,
    )


def recluster(
    previous: StoreClusterer,
    data: Tables | StoreFeatures | pl.DataFrame,
    as_of: dt.date | None = None,
    *,
    move_margin: float = 0.25,
    keep_k: bool = True,
    anchored: bool = True,
    in_stock: pl.DataFrame | None = None,
    change_factor: float | None = 1.5,
) -> tuple[StoreClusterer, pl.DataFrame]:
    """Re-cluster on the window ending at ``as_of`` and carry ids and names over.

    New clusters are matched to the previous ones by shared stores (:func:`match_clusters`);
    matched clusters keep their id and name, new ones get fresh ids and generated names.
    A store moves only when the new fit's centre of its new cluster is closer than the centre of
    its old cluster by the relative ``move_margin`` (hysteresis: border stores do not
    flip-flop between runs).

    Parameters
    ----------
    previous
        The fitted clusterer of the earlier window.
    data, as_of, in_stock
        As :meth:`StoreClusterer.fit`.
    move_margin
        Relative distance margin a move must clear (0.25: the old centre must be more than 25%
        farther than the new one).
    keep_k
        Re-fit with the previous number of clusters (default); False chooses k again.
    anchored
        With ``keep_k``, run k-means on the new window starting from the old clusters' centres
        (default), so clusters keep their identity; otherwise cluster afresh and match the new
        clusters to the old ones by shared stores (Hungarian).
    change_factor
        When ``data`` are tables: a store may only move if its own behaviour changed, i.e. its
        features in the new window minus those of the preceding window of the same length
        (or of the one before that; all on the new window's style axes), less the median
        change of its old cluster (the cluster drifts together: trends, season), is more than
        ``change_factor`` times the median of that residual over all stores. Stores whose
        cluster centre drifted away without any change of their own stay put. ``None``
        switches the test off.

    Returns
    -------
    (StoreClusterer, pl.DataFrame)
        The new fitted clusterer (ids/names aligned with ``previous``) and the moves of
        :func:`moved_stores`.
    """
    params: dict[str, object] = {}
    if keep_k:
        params["n_clusters"] = previous.n_clusters_
    new = previous.clone(**params).fit(data, as_of, in_stock=in_stock)
    x = new.embedding()
    old_of = dict(
        zip(
            previous.labels_["store_id"].to_list(),
            previous.labels_["cluster_id"].to_list(),
            strict=True,
        )
    )
    rows, centers, new_ids, names = _carry_over(previous, new, x, old_of, anchored, keep_k)
    # hysteresis: keep a store in its old cluster unless the new centre is clearly closer
    pos = {c: i for i, c in enumerate(new_ids)}
    dist = np.sqrt(((x[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2))
    changed = (
        _changed_stores(new, data, new.as_of_, in_stock, old_of, change_factor)
        if isinstance(data, Tables) and change_factor is not None and new.as_of_ is not None
        else None
    )
    kept = 0
    for i, sid in enumerate(new.store_ids_):
        prev = old_of.get(sid)
        if prev is None or prev not in pos or new_ids[rows[i]] == prev:
            continue
        if dist[i, pos[prev]] <= (1.0 + move_margin) * dist[i, rows[i]] or (
            changed is not None and sid not in changed
        ):
            rows[i] = pos[prev]
            kept += 1
    order = np.argsort(np.array(new_ids), kind="stable")
    remap = {int(old): new_pos for new_pos, old in enumerate(order)}
    rows = np.array([remap[int(r)] for r in rows], dtype=np.int64)
    new._finish(
        x,
        rows,
        centers[order],
        [new_ids[int(i)] for i in order],
        names=names,
    )
    moves = moved_stores(previous, new)
    logger.info(
        "clustering: re-clustered at %s: %d stores moved (%d kept by the margin)",
        as_of,
        moves.height,
        kept,
    )
    return new, moves
