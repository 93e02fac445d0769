"""Cluster profiles (feature vs network), names and top features."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import polars as pl

from stocktailor.clustering.labels import feature_group, feature_label

__all__ = ["PROFILE_SCHEMA", "cluster_names", "profiles", "top_features", "unique_names"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

PROFILE_SCHEMA = {
    "cluster_id": pl.Int64,
    "feature": pl.String,
    "label": pl.String,
    "group": pl.String,
    "cluster_value": pl.Float64,
    "network_value": pl.Float64,
    "z": pl.Float64,
    "rank": pl.Int64,
}


def _nanmean0(sub: FloatArray, fallback: FloatArray) -> FloatArray:
    """Column means ignoring NaN; ``fallback`` for all-NaN columns."""
    finite = np.isfinite(sub)
    cnt = finite.sum(axis=0)
    total = np.where(finite, sub, 0.0).sum(axis=0)
    out: FloatArray = np.where(cnt > 0, total / np.maximum(cnt, 1), fallback)
    return out


def profiles(
    raw: FloatArray,
    columns: list[str],
    mean: FloatArray,
    scale: FloatArray,
    cluster_ids: list[int],
    rows: IntArray,
    describe_weights: FloatArray,
) -> pl.DataFrame:
    """Per cluster and feature: cluster value, network value, z and rank (1 = most distinct).

    ``raw`` holds the stores' raw feature values (NaN = unknown) in ``columns`` order;
    ``rows[i]`` is store ``i``'s cluster row (index into ``cluster_ids``). Features are ranked
    by ``|z| x describe_weights`` (latent features with weight 0 rank last).
    """
    z = np.where(np.isfinite(raw), (raw - mean) / scale, 0.0)
    net = np.nanmean(np.where(np.isfinite(raw), raw, np.nan), axis=0) if raw.size else mean
    records: list[dict[str, object]] = []
    for r, cid in enumerate(cluster_ids):
        mask = rows == r
        if not mask.any():
            continue
        cval = _nanmean0(raw[mask], mean)
        zc = z[mask].mean(axis=0)
        order = np.argsort(-np.abs(zc * describe_weights), kind="stable")
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(1, len(order) + 1)
        for j, col in enumerate(columns):
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
    return (
        pl.DataFrame(records, schema=PROFILE_SCHEMA)
        .with_columns(pl.lit("").alias("cluster_name"))
        .sort("cluster_id", "rank")
    )


def cluster_names(
    prof: pl.DataFrame,
    columns: list[str],
    describe_weights: FloatArray,
    cluster_ids: list[int],
    n_name_features: int,
) -> dict[int, str]:
    """A short name per cluster from its most distinguishing features."""
    names: dict[int, str] = {}
    weights = dict(zip(columns, describe_weights.tolist(), strict=True))
    for cid in cluster_ids:
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
            if len(items) >= n_name_features:
                break
        if not items:
            negative = sorted(scored, key=lambda s: s[0])[:n_name_features]
            items = [feature_label(f, z) for _, f, z in negative if abs(z) >= 0.3]
        if not lead:
            lead = items.pop(0) if items else f"cluster {cid}"
        names[cid] = f"{lead}: {', '.join(items)}" if items else lead
    return names


def top_features(prof: pl.DataFrame, cluster_ids: list[int], n: int) -> dict[int, str]:
    """Cluster id -> ``"label (+1.8 sd); ..."`` of its ``n`` most distinguishing features."""
    out: dict[int, str] = {}
    for cid in cluster_ids:
        p = prof.filter(pl.col("cluster_id") == cid).sort("rank").head(n)
        out[cid] = "; ".join(
            f"{lab} ({z:+.1f} sd)" for lab, z in zip(p["label"], p["z"], strict=True)
        )
    return out


def unique_names(names: Mapping[int, str]) -> dict[int, str]:
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
