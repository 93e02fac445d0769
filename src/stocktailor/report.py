"""The backtest report: one self-contained HTML file (Plotly's JavaScript inlined, no CDN).

Sections: the KPI table (mean and 95% interval across seeds), cumulative profit by policy,
sell-through curves, lost sales by store cluster, transfer flows on a geo map (land, countries
and US states from the vendored topojson of :mod:`stocktailor.basemap`, embedded in the page,
so it works offline; left out when no store has coordinates), and the stories in the flows
(units moved between clusters per category, and the largest style flows between cities).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import polars as pl

from stocktailor.basemap import geo_assets_html, geo_layout, topojson_name
from stocktailor.simulate import SimResult
from stocktailor.simulate.kpis import KPI_LABELS, KpiTables

if TYPE_CHECKING:
    import plotly.graph_objects as go


class BacktestResult(Protocol):
    """What the report reads of a backtest (``simulate.backtest.BacktestResult`` has it)."""

    @property
    def scenario(self) -> str: ...

    @property
    def seeds(self) -> tuple[int, ...]: ...

    @property
    def policies(self) -> tuple[str, ...]: ...

    @property
    def results(self) -> Sequence[SimResult]: ...

    @property
    def kpis(self) -> KpiTables: ...

    @property
    def segments(self) -> pl.DataFrame | None: ...

    @property
    def seconds(self) -> float: ...


__all__ = ["HEADLINE_KPIS", "flow_stories", "style_story_flows", "write_backtest_report"]

HEADLINE_KPIS: tuple[str, ...] = (
    "profit",
    "profit_uplift_vs_rule",
    "bound_profit",
    "bound_uplift_share",
    "true_demand_uplift_share",
    "profit_uplift",
    "revenue_full_price",
    "revenue_full_price_uplift_vs_rule_pct",
    "revenue_full_price_uplift_pct",
    "full_price_sell_through",
    "revenue_markdown",
    "lost_units",
    "lost_value",
    "salvaged_units",
    "salvage_value",
    "allocation_units",
    "transfer_units",
    "transfer_shipments",
    "transfer_lanes",
    "transfer_cost",
    "transfer_cost_share_of_gain_vs_rule",
    "transfer_cost_share_of_gain",
)

_COLORS = {
    "none": "#7f7f7f",
    "rule": "#ff7f0e",
    "stocktailor": "#1f77b4",
    "same-optimiser-true-demand": "#2ca02c",
    "bound": "#9467bd",
}


def _fmt(x: float | None, kpi: str) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if (
        kpi.endswith("share")
        or kpi.endswith("sell_through")
        or kpi == "transfer_cost_share_of_gain"
    ):
        return f"{100 * x:.1f}%"
    if kpi.endswith("_pct"):
        return f"{x:+.2f}%"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:,.1f}"


def _kpi_table(result: BacktestResult) -> str:
    s = result.kpis.summary
    policies = list(result.policies)
    head = "".join(f"<th>{html.escape(p)}</th>" for p in policies)
    rows = []
    for kpi in HEADLINE_KPIS:
        cells = []
        for p in policies:
            r = s.filter((pl.col("policy") == p) & (pl.col("kpi") == kpi))
            if r.height == 0:
                cells.append("<td>–</td>")
                continue
            m, lo, hi = r["mean"][0], r["ci_low"][0], r["ci_high"][0]
            ci = (
                f"<br><small>[{_fmt(lo, kpi)}, {_fmt(hi, kpi)}]</small>"
                if lo is not None and math.isfinite(lo)
                else ""
            )
            cells.append(f"<td>{_fmt(m, kpi)}{ci}</td>")
        label = html.escape(KPI_LABELS.get(kpi, kpi))
        rows.append(f"<tr><th title='{kpi}'>{label}</th>{''.join(cells)}</tr>")
    return (
        "<table class='kpi'><thead><tr><th>KPI (mean, 95% interval across seeds)</th>"
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _per_seed_table(result: BacktestResult) -> str:
    runs = result.kpis.runs
    cols = [
        "profit",
        "profit_uplift_vs_rule",
        "bound_uplift_share",
        "profit_uplift",
        "revenue_full_price_uplift_pct",
        "transfer_cost",
    ]
    head = "".join(f"<th>{c}</th>" for c in ["seed", "policy", *cols])
    rows = []
    for r in runs.sort("seed", "policy").iter_rows(named=True):
        cells = "".join(f"<td>{_fmt(r.get(c), c)}</td>" for c in cols)
        rows.append(f"<tr><td>{r['seed']}</td><td>{html.escape(r['policy'])}</td>{cells}</tr>")
    return (
        f"<table class='kpi'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _fig_html(fig: object) -> str:
    import plotly.io as pio

    out: str = pio.to_html(
        fig, include_plotlyjs=False, full_html=False, config={"displaylogo": False}
    )
    return out


def _weekly_lines(result: BacktestResult, column: str, title: str, ytitle: str) -> str:
    import plotly.graph_objects as go

    w = (
        result.kpis.by_week.group_by("policy", "week")
        .agg(pl.col("week_start").first(), pl.col(column).mean())
        .sort("policy", "week")
    )
    fig = go.Figure()
    for p in result.policies:
        sub = w.filter(pl.col("policy") == p)
        fig.add_trace(
            go.Scatter(
                x=sub["week_start"].to_list(),
                y=sub[column].to_list(),
                mode="lines+markers",
                name=p,
                line={"color": _COLORS.get(p)},
            )
        )
    fig.update_layout(
        title=title,
        yaxis_title=ytitle,
        xaxis_title="week",
        height=380,
        margin={"l": 60, "r": 20, "t": 50, "b": 40},
    )
    return _fig_html(fig)


def _lost_by_cluster(result: BacktestResult) -> str:
    import plotly.graph_objects as go

    c = (
        result.kpis.by_cluster.filter(pl.col("cluster") != "warehouse")
        .group_by("policy", "cluster")
        .agg(pl.col("lost_units").mean(), pl.col("lost_value").mean())
        .sort("cluster")
    )
    fig = go.Figure()
    for p in result.policies:
        sub = c.filter(pl.col("policy") == p)
        fig.add_trace(
            go.Bar(
                x=sub["cluster"].to_list(),
                y=sub["lost_units"].to_list(),
                name=p,
                marker_color=_COLORS.get(p),
            )
        )
    fig.update_layout(
        barmode="group",
        title="Lost sales by store cluster (units, mean per seed)",
        yaxis_title="units",
        height=400,
        margin={"l": 60, "r": 20, "t": 50, "b": 80},
    )
    return _fig_html(fig)


def _flow_policy(result: BacktestResult) -> str | None:
    for p in ("stocktailor", "same-optimiser-true-demand", "rule"):
        if p in result.policies:
            return p
    moving = [p for p in result.policies if p != "none"]
    return moving[0] if moving else None


def _moves_with_geo(result: BacktestResult, policy: str, seed: int) -> pl.DataFrame:
    run = next(r for r in result.results if r.policy == policy and r.seed == seed)
    stores = run.space.stores
    cols = [c for c in ("store_id", "latitude", "longitude", "city", "name") if c in stores.columns]
    geo = stores.select(cols)
    if "city" not in geo.columns:
        geo = geo.with_columns(pl.col("store_id").alias("city"))
    seg = result.segments
    if seg is not None:
        geo = geo.join(
            seg.select("store_id", pl.col("segment").cast(pl.String)), on="store_id", how="left"
        )
    else:
        geo = geo.with_columns(pl.lit("all").alias("segment"))
    geo = geo.with_columns(pl.col("segment").fill_null("warehouse"))
    pcols = run.space.products.columns
    name = pl.col("style_name") if "style_name" in pcols else pl.col("style")
    prod = run.space.products.select(
        "sku", "style", name.cast(pl.String).alias("style_name"), pl.col("category").cast(pl.String)
    )
    m = run.moves.filter(pl.col("units") > 0).join(prod, on="sku", how="left")
    src = geo.rename({c: f"from_{c}" for c in geo.columns if c != "store_id"}).rename(
        {"store_id": "from_id"}
    )
    dst = geo.rename({c: f"to_{c}" for c in geo.columns if c != "store_id"}).rename(
        {"store_id": "to_id"}
    )
    return m.join(src, on="from_id", how="left").join(dst, on="to_id", how="left")


def flow_stories(
    result: BacktestResult, policy: str, seed: int, top: int = 12
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Where the policy's store-to-store transfers went: by category and segment, by style/city.

    Warehouse allocation is left out (it goes everywhere); the map shows it.

    Returns
    -------
    tuple
        ``category, from_segment, to_segment, units, lines`` and ``style, style_name,
        category, from_city, to_city, units`` (largest first, ``top`` rows of the second).
    """
    m = _moves_with_geo(result, policy, seed).filter(pl.col("kind") == "transfer")
    seg = (
        m.group_by("category", "from_segment", "to_segment")
        .agg(pl.col("units").sum(), pl.len().alias("lines"))
        .sort("units", descending=True)
    )
    city = (
        m.group_by("style", "style_name", "category", "from_city", "to_city")
        .agg(pl.col("units").sum())
        .sort("units", descending=True)
        .head(top)
    )
    return seg, city


def style_story_flows(
    result: BacktestResult, policy: str, seed: int, n_styles: int = 6, per_style: int = 3
) -> pl.DataFrame:
    """The largest city-to-city flows of each of the ``n_styles`` most moved styles."""
    m = _moves_with_geo(result, policy, seed).filter(pl.col("kind") == "transfer")
    lanes = m.group_by("style_name", "category", "from_city", "to_city").agg(pl.col("units").sum())
    top = (
        lanes.group_by("style_name")
        .agg(pl.col("units").sum().alias("style_units"))
        .sort("style_units", descending=True)
        .head(n_styles)
    )
    return (
        lanes.join(top, on="style_name")
        .sort(["style_units", "units"], descending=True)
        .group_by("style_name", maintain_order=True)
        .head(per_style)
        .drop("style_units")
    )


def _frame_table(frame: pl.DataFrame, limit: int = 20) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    rows = []
    for r in frame.head(limit).iter_rows():
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r) + "</tr>")
    return (
        f"<table class='kpi'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _flow_figure(result: BacktestResult, policy: str, seed: int) -> go.Figure | None:
    """The policy's moves and the stores on a geo map; None when no store has coordinates.

    The base layer (land, countries, US states) is the vendored topojson
    :func:`stocktailor.basemap.geo_layout` picks; the report embeds it (no network).
    """
    import plotly.graph_objects as go

    run = next(r for r in result.results if r.policy == policy and r.seed == seed)
    st = run.space.stores
    if not {"latitude", "longitude"} <= set(st.columns):
        return None
    st = st.with_columns(pl.col("latitude", "longitude").cast(pl.Float64)).drop_nulls(
        ["latitude", "longitude"]
    )
    if st.is_empty():
        return None
    m = _moves_with_geo(result, policy, seed)
    lanes = (
        m.drop_nulls(["from_latitude", "from_longitude", "to_latitude", "to_longitude"])
        .group_by(
            "from_id",
            "to_id",
            "from_latitude",
            "from_longitude",
            "to_latitude",
            "to_longitude",
            "from_city",
            "to_city",
        )
        .agg(
            pl.col("units").sum(),
            pl.col("category").mode().first().alias("category"),
        )
        .sort("units", descending=True)
        .head(300)
    )
    fig = go.Figure()
    cats = sorted(set(lanes["category"].drop_nulls().to_list()))
    palette = [
        "#1f77b4",
        "#d62728",
        "#2ca02c",
        "#9467bd",
        "#ff7f0e",
        "#8c564b",
        "#e377c2",
        "#17becf",
        "#bcbd22",
        "#7f7f7f",
    ]
    umax = max(1, int(lanes["units"].cast(pl.Int64).to_numpy().max())) if lanes.height else 1
    shown: set[str] = set()
    for r in lanes.iter_rows(named=True):
        cat = r["category"] or "?"
        color = palette[cats.index(cat) % len(palette)] if cat in cats else "#999"
        fig.add_trace(
            go.Scattergeo(
                lon=[r["from_longitude"], r["to_longitude"]],
                lat=[r["from_latitude"], r["to_latitude"]],
                mode="lines",
                line={"width": 1 + 7 * r["units"] / umax, "color": color},
                opacity=0.6,
                name=cat,
                legendgroup=cat,
                showlegend=cat not in shown,
                hovertext=f"{r['from_city']} → {r['to_city']}: {r['units']} units ({cat})",
                hoverinfo="text",
            )
        )
        shown.add(cat)
    seg = result.segments
    pts = st.join(seg, on="store_id", how="left") if seg is not None else st
    label = "segment" if "segment" in pts.columns else "kind"
    pts = pts.with_columns(pl.col(label).cast(pl.String).fill_null(pl.col("kind")))
    for g in sorted(set(pts[label].to_list())):
        sub = pts.filter(pl.col(label) == g)
        text = sub["city"].to_list() if "city" in sub.columns else sub["store_id"].to_list()
        fig.add_trace(
            go.Scattergeo(
                lon=sub["longitude"].to_list(),
                lat=sub["latitude"].to_list(),
                mode="markers",
                marker={"size": 8, "symbol": "square" if g == "warehouse" else "circle"},
                name=f"stores: {g}",
                text=text,
                hoverinfo="text",
            )
        )
    fig.update_layout(
        title=f"Transfer flows of {policy}, seed {seed} "
        "(line width = units; colour = main category)",
        geo=geo_layout(st["latitude"].to_list(), st["longitude"].to_list(), lines=True),
        height=560,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return fig


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;
max-width:1200px}
h1{font-size:1.6em} h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table.kpi{border-collapse:collapse;font-size:.9em;margin:8px 0}
table.kpi td,table.kpi th{border:1px solid #ddd;padding:4px 8px;text-align:right}
table.kpi th:first-child,table.kpi td:first-child{text-align:left}
small{color:#666} .note{color:#555;font-size:.9em}
"""


def write_backtest_report(result: BacktestResult, path: Path | str) -> Path:
    """Write the self-contained HTML report of a backtest and return its path."""
    from plotly.offline import get_plotlyjs

    path = Path(path)
    seed0 = result.seeds[0]
    parts: list[str] = []
    parts.append(f"<h1>stocktailor backtest: {html.escape(result.scenario)}</h1>")
    parts.append(
        "<p class='note'>Seeds: "
        + ", ".join(str(s) for s in result.seeds)
        + f". Policies: {', '.join(result.policies)}. Every policy of a seed meets the same "
        "customers (common random numbers). Profit = revenue + salvage value - transfer cost; "
        "the product cost is sunk and the same for every policy, so it is left out. "
        f"Run time {result.seconds:.1f} s.</p>"
    )
    parts.append("<h2>KPIs</h2>" + _kpi_table(result))
    parts.append("<h2>Per seed</h2>" + _per_seed_table(result))
    parts.append("<h2>Cumulative profit</h2>")
    parts.append(
        _weekly_lines(
            result, "cumulative_profit", "Cumulative profit by policy (mean over seeds)", "currency"
        )
    )
    parts.append("<h2>Sell-through</h2>")
    parts.append(
        _weekly_lines(
            result,
            "sell_through",
            "Cumulative sell-through by policy (share of initial units)",
            "share",
        )
    )
    parts.append("<h2>Lost sales by cluster</h2>")
    parts.append(
        "<p class='note'>Clusters are the network's true behaviour segments when the scenario "
        "has them.</p>" + _lost_by_cluster(result)
    )
    fp = _flow_policy(result)
    geo_assets = ""
    if fp is not None:
        parts.append("<h2>Transfer flows</h2>")
        fig = _flow_figure(result, fp, seed0)
        if fig is None:
            parts.append("<p class='note'>No store coordinates: map omitted.</p>")
        else:
            parts.append(_fig_html(fig))
            geo_assets = geo_assets_html(topojson_name(fig.layout.geo.scope))
        seg, city = flow_stories(result, fp, seed0)
        parts.append(
            "<h3>Units transferred between segments by category "
            f"({html.escape(fp)}, seed {seed0})</h3>"
        )
        parts.append(_frame_table(seg, 25))
        parts.append(
            f"<h3>Largest style transfers between cities ({html.escape(fp)}, seed {seed0})</h3>"
        )
        parts.append(_frame_table(city, 15))
        parts.append(
            f"<h3>Main routes of the most moved styles ({html.escape(fp)}, seed {seed0})</h3>"
        )
        parts.append(_frame_table(style_story_flows(result, fp, seed0), 30))
    body = "\n".join(parts)
    doc = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>stocktailor backtest: {html.escape(result.scenario)}</title>"
        f"<style>{_CSS}</style>"
        f"<script type='text/javascript'>{get_plotlyjs()}</script>"
        f"{geo_assets}</head><body>{body}</body></html>"
    )
    path.write_text(doc, encoding="utf-8")
    return path
