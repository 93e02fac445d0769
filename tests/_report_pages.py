"""Reading the standalone HTML reports back: their plots and the topojson they embed."""

from __future__ import annotations

import json
import re
from typing import Any

from plotly.offline import get_plotlyjs

__all__ = ["geo_assets", "geo_maps", "outside_plotlyjs", "plots"]


def outside_plotlyjs(html: str) -> str:
    """The page without its inlined plotly.js (whose defaults name CDN addresses)."""
    js = get_plotlyjs()
    assert html.count(js) == 1
    return html.replace(js, "")


def plots(html: str) -> list[tuple[list[dict[str, Any]], dict[str, Any]]]:
    """The ``(data, layout)`` of every ``Plotly.newPlot`` call of the page."""
    out = []
    decoder = json.JSONDecoder()
    for call in re.finditer(r'Plotly\.newPlot\(\s*"[^"]+",\s*', html):
        data, end = decoder.raw_decode(html, call.end())
        comma = re.compile(r",\s*").match(html, end)
        assert comma is not None
        layout, _ = decoder.raw_decode(html, comma.end())
        out.append((data, layout))
    return out


def geo_maps(html: str) -> list[dict[str, Any]]:
    """The ``layout.geo`` of every plot drawing scattergeo traces."""
    return [
        layout["geo"]
        for data, layout in plots(html)
        if any(t["type"] == "scattergeo" for t in data)
    ]


def geo_assets(html: str) -> list[str]:
    """Names of the topojson files embedded for ``window.PlotlyGeoAssets``."""
    return re.findall(r'<script type="application/json" data-plotly-topojson="([^"]+)">', html)
