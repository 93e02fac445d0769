"""Plotly figures of the dashboard (plain dicts, drawn by the vendored plotly.js)."""

from __future__ import annotations

from typing import Any

__all__ = ["band_figure", "cluster_figure", "map_figure"]


def map_figure(stores: list[dict[str, Any]]) -> dict[str, Any]:
    traces: dict[str, dict[str, Any]] = {}
    for s in stores:
        if s["latitude"] is None or s["longitude"] is None:
            continue
        name = "warehouses" if s["kind"] == "warehouse" else (s["cluster_name"] or "unclustered")
        t = traces.setdefault(
            name,
            {
                "type": "scatter",
                "mode": "markers",
                "name": name,
                "x": [],
                "y": [],
                "text": [],
                "marker": {"size": 12, "symbol": "square" if name == "warehouses" else "circle"},
                "hovertemplate": "%{text}<extra></extra>",
            },
        )
        t["x"].append(s["longitude"])
        t["y"].append(s["latitude"])
        label = f"{s['store_id']} {s['name'] or ''}<br>{s['city'] or ''}"
        if s["on_hand"] is not None:
            label += f"<br>on hand {s['on_hand']}"
        t["text"].append(label)
    return {
        "data": list(traces.values()),
        "layout": {
            "title": {"text": "Stores by cluster (longitude / latitude)"},
            "xaxis": {"title": {"text": "longitude"}},
            "yaxis": {"title": {"text": "latitude"}, "scaleanchor": "x"},
            "height": 420,
            "margin": {"l": 50, "r": 10, "t": 40, "b": 40},
        },
    }


def cluster_figure(clusters: list[dict[str, Any]]) -> dict[str, Any]:
    names = [c["cluster_name"] for c in clusters]
    return {
        "data": [
            {
                "type": "bar",
                "name": "sell-through %",
                "x": names,
                "y": [
                    None if c["sell_through"] is None else 100 * c["sell_through"] for c in clusters
                ],
                "yaxis": "y",
                "offsetgroup": 1,
            },
            {
                "type": "bar",
                "name": "cover (weeks)",
                "x": names,
                "y": [c["cover_weeks"] for c in clusters],
                "yaxis": "y2",
                "offsetgroup": 2,
            },
        ],
        "layout": {
            "title": {"text": "Sell-through and cover by cluster"},
            "barmode": "group",
            "xaxis": {"automargin": True, "tickangle": -30},
            # Each axis picks its own round ticks (a synced right axis showed 3.16, 6.32...).
            "yaxis": {
                "title": {"text": "sell-through %"},
                "tickmode": "auto",
                "rangemode": "tozero",
                "tickformat": ",~r",
                "automargin": True,
            },
            "yaxis2": {
                "title": {"text": "cover, weeks"},
                "overlaying": "y",
                "side": "right",
                "tickmode": "auto",
                "rangemode": "tozero",
                "tickformat": ",~r",
                "showgrid": False,
                "automargin": True,
            },
            "height": 400,
            "margin": {"l": 50, "r": 50, "t": 40, "b": 40},
            "legend": {"orientation": "h"},
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
