"""The standalone HTML reports' maps in headless Chromium, opened from file:// (issue 18).

Every request but file:// is blocked and recorded: the geo base layer (land, countries, US
states) must draw from the topojson embedded in the page, not from plotly's CDN. The browser
fixture is tests/test_web_browser.py's; screenshots go to tests/artifacts/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from _report_pages import geo_assets
from _toys import three_store_toy
from stocktailor.clustering import StoreClusterer, clusters_report_html
from stocktailor.config import Settings
from stocktailor.simulate.backtest import backtest
from stocktailor.synth import generate
from test_web_browser import CHROMIUM, _artifacts, browser

__all__ = ["browser"]  # the fixture this module uses

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent"),
]


def _open_offline(browser: Any, path: Path) -> tuple[Any, list[str], list[str]]:
    """The report opened from disk; requests off file:// blocked (listed) and page errors."""
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    page = context.new_page()
    blocked: list[str] = []
    errors: list[str] = []

    def guard(route: Any) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", guard)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.set_default_timeout(15_000)
    page.goto(path.as_uri())
    return page, blocked, errors


def _base_layer_drawn(page: Any, *, states: bool) -> None:
    """Land and country borders (and US states) drawn under the one geo subplot's markers."""
    page.locator(".geo .land path").first.wait_for(state="attached")
    assert page.locator(".geo").count() == 1
    assert page.locator(".geo .land path").count() >= 1
    assert page.locator(".geo .countries path").count() >= 1
    assert (page.locator(".geo .subunits path").count() >= 1) is states
    assert page.locator(".geo .scattergeo .point").count() >= 3


def test_backtest_report_map_draws_offline(browser: Any, tmp_path: Path) -> None:
    backtest(three_store_toy, [0], ["none", "rule"], Settings(), tmp_path)
    path = tmp_path / "report.html"
    assert geo_assets(path.read_text(encoding="utf-8")) == ["usa_110m"]
    page, blocked, errors = _open_offline(browser, path)
    _base_layer_drawn(page, states=True)
    assert page.locator(".geo .scattergeo .js-line").count() >= 1  # the transfer lanes
    page.locator(".geo").first.screenshot(path=str(_artifacts() / "backtest-map.png"))
    assert blocked == [] and errors == []
    page.context.close()


def test_cluster_report_maps_draw_offline_in_the_usa_and_abroad(
    browser: Any, tmp_path: Path
) -> None:
    net = generate("default", 0, n_stores=8, n_sku_sizes=60)
    model = StoreClusterer(n_clusters=3, random_state=0).fit(net.tables, net.as_of)
    stores = net.tables.stores
    # the same stores moved around Germany and Austria: the world layer, no US states
    abroad = stores.with_columns(
        (47.5 + pl.int_range(pl.len()) * 0.6).alias("latitude"),
        (8.0 + pl.int_range(pl.len()) * 0.7).alias("longitude"),
    )
    for name, table, layer in (("usa", stores, "usa_110m"), ("world", abroad, "world_110m")):
        path = clusters_report_html(model, table, tmp_path / f"clusters-{name}.html")
        assert geo_assets(path.read_text(encoding="utf-8")) == [layer]
        page, blocked, errors = _open_offline(browser, path)
        _base_layer_drawn(page, states=name == "usa")
        assert page.locator("#fig-map .scattergeo .point").count() == 8  # every store
        page.locator(".geo").first.screenshot(path=str(_artifacts() / f"clusters-{name}.png"))
        assert blocked == [] and errors == [], name
        page.context.close()
