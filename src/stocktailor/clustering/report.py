"""A self-contained HTML report of a clustering (Plotly, JavaScript inlined, no network)."""

from __future__ import annotations

import html
import logging
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import polars as pl
from plotly.colors import qualitative
from sklearn.decomposition import PCA

from stocktailor.basemap import geo_assets_html, geo_layout, topojson_name
from stocktailor.clustering.model import StoreClusterer

__all__ = ["clusters_report_html"]

logger = logging.getLogger(__name__)

_PALETTE = qualitative.Plotly + qualitative.D3 + qualitative.Set3


def _colour(i: int) -> str:
    return str(_PALETTE[i % len(_PALETTE)])


def _table(frame: pl.DataFrame, float_fmt: str = "{:.3g}") -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = []
    for row in frame.iter_rows():
        cells = []
        for v in row:
            text = float_fmt.format(v) if isinstance(v, float) else ("" if v is None else str(v))
            cells.append(f"<td>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _map_figure(clusterer: StoreClusterer, stores: pl.DataFrame) -> go.Figure | None:
    """Stores on a geo map (land, countries, US states), coloured by cluster.

    The base layer is the vendored topojson :func:`stocktailor.basemap.geo_layout` picks; the
    report embeds it, so nothing is fetched. None when no store has coordinates.
    """
    if not {"latitude", "longitude"} <= set(stores.columns):
        return None
    df = clusterer.labels_.join(
        stores.select(
            "store_id",
            pl.col("latitude").cast(pl.Float64),
            pl.col("longitude").cast(pl.Float64),
            *[pl.col(c).cast(pl.String) for c in ("name", "city") if c in stores.columns],
        ),
        on="store_id",
        how="left",
    ).drop_nulls(["latitude", "longitude"])
    if df.is_empty():
        return None
    fig = go.Figure()
    for i, cid in enumerate(clusterer.cluster_ids_):
        sub = df.filter(pl.col("cluster_id") == cid)
        # store, city and cluster names come from the data: escaped before Plotly renders them
        hover = [
            f"{html.escape(str(s))}<br>{html.escape(c or '')}<br>{html.escape(n)}"
            for s, c, n in zip(
                sub["store_id"],
                sub["city"] if "city" in sub.columns else [None] * sub.height,
                sub["cluster_name"],
                strict=True,
            )
        ]
        fig.add_trace(
            go.Scattergeo(
                lon=sub["longitude"].to_list(),
                lat=sub["latitude"].to_list(),
                mode="markers",
                marker={"size": 9, "color": _colour(i), "line": {"width": 0.5, "color": "#333"}},
                name=html.escape(f"{cid}: {clusterer.names_[cid]}"),
                text=hover,
                hoverinfo="text",
            )
        )
    fig.update_layout(
        title="Stores by cluster",
        geo=geo_layout(df["latitude"].to_list(), df["longitude"].to_list()),
        height=520,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        legend={"font": {"size": 10}},
    )
    return fig


def _pca_figure(clusterer: StoreClusterer) -> go.Figure:
    x = clusterer.embedding()
    n_comp = min(2, x.shape[1], x.shape[0])
    if n_comp == 0 or not float(np.var(x, axis=0).sum()) > 0:
        coords = np.zeros((x.shape[0], 2))  # stores indistinguishable: nothing to project
    else:
        coords = PCA(n_components=n_comp, random_state=clusterer.random_state).fit_transform(x)
    if coords.shape[1] < 2:
        coords = np.column_stack([coords, np.zeros(coords.shape[0])])
    lab = clusterer.labels_
    fig = go.Figure()
    cids = lab["cluster_id"].to_numpy()
    sids = np.asarray(lab["store_id"].to_list(), dtype=object)
    for i, cid in enumerate(clusterer.cluster_ids_):
        mask = cids == cid
        fig.add_trace(
            go.Scatter(
                x=coords[mask, 0].tolist(),
                y=coords[mask, 1].tolist(),
                mode="markers",
                marker={"size": 8, "color": _colour(i)},
                name=f"{cid}: {clusterer.names_[cid]}",
                text=[str(s) for s in sids[mask]],
                hoverinfo="text",
            )
        )
    fig.update_layout(
        title="Store features, 2-D projection (PCA of the weighted standardised features)",
        xaxis_title="PC1",
        yaxis_title="PC2",
        height=480,
        legend={"font": {"size": 10}},
    )
    return fig


def _mix_figure(clusterer: StoreClusterer) -> go.Figure | None:
    prof = clusterer.profiles_.filter(pl.col("group") == "category_mix")
    if prof.is_empty():
        return None
    cats = sorted(set(prof["feature"].to_list()))
    z = np.zeros((len(clusterer.cluster_ids_), len(cats)))
    for i, cid in enumerate(clusterer.cluster_ids_):
        p = prof.filter(pl.col("cluster_id") == cid)
        zmap = dict(zip(p["feature"].to_list(), p["z"].to_list(), strict=True))
        z[i] = [float(zmap.get(c, 0.0)) for c in cats]
    fig = go.Figure(
        go.Heatmap(
            z=z.tolist(),
            x=[c.partition("__")[2] for c in cats],
            y=[f"{cid}: {clusterer.names_[cid][:40]}" for cid in clusterer.cluster_ids_],
            colorscale="RdBu",
            reversescale=True,
            zmid=0.0,
            colorbar={"title": "z (sd)"},
        )
    )
    fig.update_layout(
        title="Category mix by cluster vs the network (standard deviations of the log share)",
        height=max(300, 60 + 40 * len(clusterer.cluster_ids_)),
    )
    return fig


def _cluster_sections(clusterer: StoreClusterer, n_profile_rows: int) -> list[str]:
    """Per cluster: its stores, its most distinguishing features and its category mix."""
    sizes = clusterer.labels_.group_by("cluster_id").len()
    size_of = dict(zip(sizes["cluster_id"].to_list(), sizes["len"].to_list(), strict=True))
    sections: list[str] = []
    for cid in clusterer.cluster_ids_:
        p = clusterer.profiles_.filter(pl.col("cluster_id") == cid)
        top = (
            p.sort("rank")
            .head(n_profile_rows)
            .select("label", "feature", "cluster_value", "network_value", "z")
        )
        mix = (
            p.filter(pl.col("group") == "category_mix")
            .with_columns(
                pl.col("feature").str.replace("^category_mix__", "").alias("category"),
                (pl.col("cluster_value") - pl.col("network_value")).alias("mix_difference"),
            )
            .sort("z", descending=True)
            .select("category", "mix_difference", "z")
        )
        members = clusterer.labels_.filter(pl.col("cluster_id") == cid)["store_id"].to_list()
        shown = ", ".join(str(m) for m in members[:30]) + (" ..." if len(members) > 30 else "")
        sections.append(
            f"<h3>Cluster {cid}: {html.escape(clusterer.names_[cid])} "
            f"({size_of.get(cid, 0)} stores)</h3>"
            f"<p class='members'>{html.escape(shown)}</p>"
            "<h4>Most distinguishing features vs the network average</h4>"
            + _table(top)
            + (
                "<h4>Category mix vs the network (log-ratio x sqrt(share) units; z in network"
                " standard deviations)</h4>" + _table(mix)
                if mix.height
                else ""
            )
        )
    return sections


def clusters_report_html(
    clusterer: StoreClusterer,
    stores: pl.DataFrame,
    path: str | Path,
    *,
    title: str = "Store clusters",
    n_profile_rows: int = 10,
) -> Path:
    """Write a self-contained HTML report of a fitted clustering.

    The page holds: a map of the stores coloured by cluster (land, countries and US states from
    the vendored topojson embedded in the page, so nothing is fetched from the network; left
    out with a note when no store has coordinates), a 2-D PCA projection of the features, a
    heatmap of the clusters' category mix vs the network, and per cluster the table of its most
    distinguishing features (cluster value, network average, z) and its category-mix profile.
    The Plotly JavaScript is inlined from the installed ``plotly`` package.

    Parameters
    ----------
    clusterer
        A fitted :class:`StoreClusterer`.
    stores
        The stores table (``store_id``, ``latitude``, ``longitude``, optional ``name``, ``city``).
    path
        Output file.
    title
        Page title.
    n_profile_rows
        Distinguishing features listed per cluster.

    Returns
    -------
    Path
        The file written.
    """
    out = Path(path)
    figs: list[tuple[str, go.Figure]] = []
    fmap = _map_figure(clusterer, stores)
    if fmap is not None:
        figs.append(("map", fmap))
    figs.append(("projection", _pca_figure(clusterer)))
    fmix = _mix_figure(clusterer)
    if fmix is not None:
        figs.append(("category-mix", fmix))
    parts: list[str] = []
    for i, (name, fig) in enumerate(figs):
        parts.append(
            f'<section id="{name}">'
            + fig.to_html(full_html=False, include_plotlyjs=(i == 0), div_id=f"fig-{name}")
            + "</section>"
        )
    geo_assets = ""
    if fmap is None:
        parts.insert(0, "<p><em>No store coordinates: map omitted.</em></p>")
    else:
        geo_assets = geo_assets_html(topojson_name(fmap.layout.geo.scope))
    sections = _cluster_sections(clusterer, n_profile_rows)
    scores = _table(clusterer.scores_) if clusterer.scores_.height else ""
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }}
table {{ border-collapse: collapse; margin: .5rem 0 1rem; font-size: .85rem; }}
th, td {{ border: 1px solid #ccc; padding: .2rem .5rem; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
.members {{ font-size: .8rem; color: #555; }}
</style>{geo_assets}</head><body>
<h1>{html.escape(title)}</h1>
<p>{len(clusterer.store_ids_)} stores, {clusterer.n_clusters_} clusters;
window ending {clusterer.as_of_}; {len(clusterer.columns_)} features.</p>
{"".join(parts)}
<h2>Choice of k</h2>{scores}
<h2>Cluster profiles</h2>
{"".join(sections)}
</body></html>
"""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    logger.info("clustering: report written to %s", out)
    return out
