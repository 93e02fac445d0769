"""The Signals page in headless Chromium: a rising post series is listed and links to a line
whose detail page repeats the sentence. Fixtures of tests/test_web_browser.py."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from _workflow_fixtures import make_run
from stocktailor import workflow
from test_signals_page import _berlin_tops
from test_web_browser import CHROMIUM, Site, _artifacts, _page, _sign_in, browser, site

__all__ = ["browser", "site"]  # the fixtures this module uses

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent"),
]


def test_signals_page_lists_a_rising_series_and_links_to_a_line(browser: Any, site: Site) -> None:
    fr = make_run(60)
    plan = dataclasses.replace(fr.plan, signals=_berlin_tops())
    run_id = workflow.publish_run(site.engine, plan, fr.stores, fr.products, positions=fr.positions)
    found = workflow.get_run(site.engine, run_id)["signals"]
    assert found[0]["n_lines"] > 0
    page = _page(browser, site)
    _sign_in(page, site, site.viewer)
    page.get_by_test_id("nav-signals").click()
    page.wait_for_url(f"**/signals?run_id={run_id}")
    assert page.get_by_test_id("signal").count() == 1
    text = "posts about tops in Berlin up 3.1x in 10 days"
    assert page.get_by_test_id("signal-text").inner_text() == text
    links = page.get_by_test_id("signal-line")
    assert links.count() == found[0]["n_lines"]
    shot = _artifacts() / "signals.png"
    page.screenshot(path=str(shot), full_page=True)
    first = links.first.inner_text()
    links.first.click()
    page.wait_for_url(f"**/recommendations/{first}")
    rec = workflow.get_recommendation(site.engine, int(first))
    assert rec["style"] in ("ST0", "ST2") and rec["to_id"] in ("S01", "S04")
    assert page.get_by_test_id("post-signal").inner_text().startswith("Posts about tops in Berlin")
    # the run published by the shared fixture has no posts: the page says so
    page.goto(f"{site.base}/signals?run_id={site.run_id}")
    assert "no posts table" in page.get_by_test_id("signals-none").inner_text()
    assert site.blocked == []
    page.context.close()
