"""Plotly figures of the dashboard (plain dicts, drawn by the vendored plotly.js)."""

from __future__ import annotations

import math
import textwrap
from typing import Any

from stocktailor.basemap import geo_layout
from stocktailor.money import money_label

__all__ = [
    "LABEL_WIDTH",
    "TOPOJSON_URL",
    "UPRIGHT_LABELS",
    "band_figure",
    "cluster_figure",
    "map_figure",
    "nice_step",
    "results_figure",
]


TOPOJSON_URL = "/static/topojson/"
"""Where plotly.js fetches its geo base layers (``stocktailor.basemap``, served by ``web``)."""


def map_figure(stores: list[dict[str, Any]]) -> dict[str, Any]:
    """Stores by cluster on a map with coastlines, countries (and US states).

    The base layers are the vendored topojson (``config.topojsonURL``, served from
    :data:`stocktailor.basemap.TOPOJSON_DIR`), the scope chosen by
    :func:`stocktailor.basemap.geo_layout`: ``usa_110m`` (all the states) when every location
    is in the USA (lower 48, Alaska, Hawaii), else ``world_110m`` around the stores, padded by
    a quarter of their span (at least 3 degrees). The HTML reports use the same rule.
    """
    traces: dict[str, dict[str, Any]] = {}
    for s in stores:
        if s["latitude"] is None or s["longitude"] is None:
            continue
        name = "warehouses" if s["kind"] == "warehouse" else (s["cluster_name"] or "unclustered")
        t = traces.setdefault(
            name,
            {
                "type": "scattergeo",
                "mode": "markers",
                "name": name,
                "lon": [],
                "lat": [],
                "text": [],
                "marker": {"size": 10, "symbol": "square" if name == "warehouses" else "circle"},
                "hovertemplate": "%{text}<extra></extra>",
            },
        )
        t["lon"].append(s["longitude"])
        t["lat"].append(s["latitude"])
        label = f"{s['store_id']} {s['name'] or ''}<br>{s['city'] or ''}"
        if s["on_hand"] is not None:
            label += f"<br>on hand {s['on_hand']}"
        t["text"].append(label)
    lats = [y for t in traces.values() for y in t["lat"]]
    lons = [x for t in traces.values() for x in t["lon"]]
    return {
        "data": list(traces.values()),
        "layout": {
            "title": {"text": "Stores by cluster"},
            "geo": geo_layout(lats, lons),
            "height": 420,
            "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
        },
        "config": {"topojsonURL": TOPOJSON_URL},
    }


LABEL_WIDTH = 14
"""Characters per line of a cluster name under the bars (longer names wrap at words)."""


UPRIGHT_LABELS = 5
"""Up to this many clusters, names stand upright (wrapped) under their bars; more are slanted."""


def _wrap(name: str) -> str:
    """A bar label on lines of at most :data:`LABEL_WIDTH` characters (plotly's ``<br>``)."""
    return "<br>".join(textwrap.wrap(name, LABEL_WIDTH)) or name


def nice_step(top: float, ticks: int = 5) -> int:
    """A whole, round tick step (1, 2, 5, 10, 20...) giving about ``ticks`` ticks up to ``top``.

    Parameters
    ----------
    top
        The axis' largest value (same unit as the ticks: weeks, percent).
    ticks
        About how many ticks are wanted.

    Returns
    -------
    int
        At least 1: the axes count whole weeks and whole percent.
    """
    raw = top / max(ticks, 1)
    if not math.isfinite(raw) or raw <= 1.0:
        return 1
    magnitude = int(10 ** math.floor(math.log10(raw)))  # raw > 1: a whole power of ten
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return max(1, step)


def _whole_axis(title: str, values: list[float | None]) -> dict[str, Any]:
    """A y axis from 0 with whole, round ticks (a synced axis showed 3.16 / 6.32 / 9.49)."""
    top = max((v for v in values if v is not None and math.isfinite(v)), default=1.0)
    return {
        "title": {"text": title},
        "tickmode": "linear",
        "tick0": 0,
        "dtick": nice_step(top),
        "tickformat": ",d",
        "rangemode": "tozero",
        "automargin": True,
    }


def cluster_figure(clusters: list[dict[str, Any]]) -> dict[str, Any]:
    """Sell-through (%, left axis) and cover (weeks, right axis) per cluster, as grouped bars.

    Cluster names wrap under their bars (:data:`LABEL_WIDTH`), or are slanted when there are
    more than :data:`UPRIGHT_LABELS` clusters, and the margin grows to fit them; both axes
    start at 0 with whole, round ticks (:func:`nice_step`).
    """
    names = [c["cluster_name"] for c in clusters]
    # a few clusters: wrapped names side by side; more: slanted, one line each (no overlap)
    upright = len(names) <= UPRIGHT_LABELS
    sell = [None if c["sell_through"] is None else 100 * c["sell_through"] for c in clusters]
    cover = [c["cover_weeks"] for c in clusters]
    right = _whole_axis("cover, weeks", cover) | {
        "overlaying": "y",
        "side": "right",
        "showgrid": False,
    }
    return {
        "data": [
            {
                "type": "bar",
                "name": "sell-through %",
                "x": names,
                "y": sell,
                "yaxis": "y",
                "offsetgroup": 1,
            },
            {
                "type": "bar",
                "name": "cover (weeks)",
                "x": names,
                "y": cover,
                "yaxis": "y2",
                "offsetgroup": 2,
            },
        ],
        "layout": {
            # left: the legend sits on the right of the same line
            "title": {"text": "Sell-through and cover by cluster", "x": 0.02, "xanchor": "left"},
            "barmode": "group",
            "xaxis": {
                "tickmode": "array",
                "tickvals": names,
                "ticktext": [_wrap(n) for n in names] if upright else names,
                "tickangle": 0 if upright else -40,
                "automargin": True,
            },
            "yaxis": _whole_axis("sell-through %", sell),
            "yaxis2": right,
            "height": 420,
            "margin": {"l": 50, "r": 50, "t": 60, "b": 40},
            # above the bars, right: below them it would sit on the wrapped names
            "legend": {
                "orientation": "h",
                "x": 1,
                "xanchor": "right",
                "y": 1.02,
                "yanchor": "bottom",
            },
        },
    }


def band_figure(rec: dict[str, Any]) -> dict[str, Any]:
    data: list[dict[str, Any]] = []
    for end, label in (("from", rec["from_id"]), ("to", rec["to_id"])):
        pts = rec["forecast"][end]
        if not pts:
            continue
        x = [p["week_start"].isoformat() for p in pts]
        data.append(
            {
                "type": "scatter",
                "x": x,
                "y": [p["p90"] for p in pts],
                "mode": "lines",
                "line": {"width": 0},
                "showlegend": False,
                "name": f"{label} p90",
            }
        )
        data.append(
            {
                "type": "scatter",
                "x": x,
                "y": [p["p10"] for p in pts],
                "mode": "lines",
                "fill": "tonexty",
                "line": {"width": 0},
                "name": f"{label} p10–p90",
            }
        )
        data.append(
            {
                "type": "scatter",
                "x": x,
                "y": [p["mean"] for p in pts],
                "mode": "lines+markers",
                "name": f"{label} ({'source' if end == 'from' else 'destination'}) mean",
            }
        )
    return {
        "data": data,
        "layout": {
            "title": {"text": f"Weekly demand forecast of {rec['sku']} (units/week)"},
            "height": 320,
            "margin": {"l": 50, "r": 10, "t": 40, "b": 40},
        },
    }


def results_figure(
    weeks: list[dict[str, Any]], level: float | None, currency: str = "USD"
) -> dict[str, Any]:
    """Estimated at approval vs measured per week of the planned ship date, as grouped bars.

    Parameters
    ----------
    weeks
        Rows of :func:`stocktailor.workflow.results.run_results` ``weeks``: ``week_start``
        (Monday, None for lines without a ship date), ``estimated``, ``measured``,
        ``measured_low``, ``measured_high`` (currency units).
    level
        Coverage of the intervals (0.9), None when the batches differ.
    currency
        ISO 4217 code of the money axis.

    Returns
    -------
    dict
        A Plotly figure: the measured bars carry the sum of the week's line intervals as
        asymmetric error bars (conservative: wider than the interval of the week's total).
    """
    x = [w["week_start"].isoformat() if w["week_start"] else "no ship date" for w in weeks]
    meas = [w["measured"] for w in weeks]
    coverage = "" if level is None else f"{100 * level:.0f}% "
    return {
        "data": [
            {
                "type": "bar",
                "name": "estimated at approval",
                "x": x,
                "y": [w["estimated"] for w in weeks],
            },
            {
                "type": "bar",
                "name": f"measured ({coverage}interval: sum of the lines' intervals)",
                "x": x,
                "y": meas,
                "error_y": {
                    "type": "data",
                    "symmetric": False,
                    "array": [w["measured_high"] - m for w, m in zip(weeks, meas, strict=True)],
                    "arrayminus": [m - w["measured_low"] for w, m in zip(weeks, meas, strict=True)],
                },
            },
        ],
        "layout": {
            "title": {"text": "Estimated vs measured, by week of the planned ship date"},
            "barmode": "group",
            "xaxis": {"title": {"text": "week starting (Monday)"}, "type": "category"},
            "yaxis": {"title": {"text": money_label(currency)}, "automargin": True},
            "height": 380,
            "margin": {"l": 60, "r": 10, "t": 60, "b": 50},
            "legend": {"orientation": "h", "y": 1.02, "yanchor": "bottom"},
        },
    }
