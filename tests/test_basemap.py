"""The shared geo base layers: the scope rule and the topojson a report embeds (issue 18)."""

from __future__ import annotations

import json
import re

import pytest

from stocktailor.basemap import (
    TOPOJSON_DIR,
    geo_assets_html,
    geo_layout,
    in_usa,
    topojson_name,
    topojson_text,
)

NEW_YORK, LOS_ANGELES = (40.7, -74.0), (34.1, -118.2)
ANCHORAGE, HONOLULU = (61.2, -149.9), (21.3, -157.9)


def _layout(*places: tuple[float, float], lines: bool = False) -> dict[str, object]:
    return geo_layout([p[0] for p in places], [p[1] for p in places], lines=lines)


def test_the_usa_scope_takes_the_states_and_its_insets_the_world_the_rest() -> None:
    assert _layout(NEW_YORK, LOS_ANGELES)["scope"] == "usa"
    # Alaska and Hawaii are insets of the usa projection: points draw there...
    us = _layout(NEW_YORK, ANCHORAGE, HONOLULU)
    assert us["scope"] == "usa" and "lataxis" not in us
    # ...but a flow line cannot cross from an inset to the lower 48
    flows = _layout(NEW_YORK, ANCHORAGE, lines=True)
    assert flows["scope"] == "world"
    assert _layout(NEW_YORK, LOS_ANGELES, lines=True)["scope"] == "usa"
    assert in_usa(*ANCHORAGE) and not in_usa(*ANCHORAGE, insets=False)
    assert not in_usa(52.0, 178.0)  # the far Aleutians fall outside the inset
    assert not in_usa(18.2, -66.5)  # Puerto Rico: no inset
    # Germany: the world around the stores, padded by at least 3 degrees
    de = _layout((52.5, 13.4), (48.1, 11.6))
    assert de["scope"] == "world"
    assert de["lataxis"] == {"range": pytest.approx([48.1 - 3.0, 52.5 + 3.0])}
    assert de["lonaxis"] == {"range": pytest.approx([11.6 - 3.0, 13.4 + 3.0])}
    assert _layout()["scope"] == "world" and "lataxis" not in _layout()
    assert de["resolution"] == 110 and de["showcountries"] and de["showsubunits"]


def test_topojson_names_follow_plotly_and_are_vendored() -> None:
    assert topojson_name("usa") == "usa_110m"
    assert topojson_name("north america", 50) == "north-america_50m"
    for name in ("usa_110m", "world_110m"):
        layers = set(json.loads(topojson_text(name))["objects"])
        assert {"land", "countries", "subunits", "coastlines"} <= layers
    assert (TOPOJSON_DIR / "LICENSE").is_file()
    with pytest.raises(FileNotFoundError, match="no vendored topojson 'europe_110m'"):
        topojson_text("europe_110m")


def test_geo_assets_are_json_scripts_plotly_finds_before_fetching() -> None:
    assert geo_assets_html() == ""
    page = geo_assets_html("usa_110m", "usa_110m", "world_110m")
    blocks = re.findall(
        r'<script type="application/json" data-plotly-topojson="([^"]+)">(.*?)</script>',
        page,
        flags=re.S,
    )
    assert [name for name, _ in blocks] == ["usa_110m", "world_110m"]  # repeats once
    for name, text in blocks:
        assert json.loads(text) == json.loads(topojson_text(name))
    assert "window.PlotlyGeoAssets" in page and "a.topojson[" in page
    assert not re.search(r"https?://", page)
