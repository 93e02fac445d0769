"""The Results page in headless Chromium: the chart is drawn offline, the totals and the
calibration ratios are the hand-worked ones, the CSV link downloads the tables. Fixtures of
tests/test_web_browser.py, measurements of tests/test_results_page.py."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from test_results_page import _measured
from test_web_browser import CHROMIUM, Site, _artifacts, _page, _sign_in, browser, site

__all__ = ["browser", "site"]  # the fixtures this module uses

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent"),
]


def test_results_page_draws_the_chart_and_downloads_the_csv(browser: Any, site: Site) -> None:
    m = _measured(site.engine)
    page = _page(browser, site)
    _sign_in(page, site, site.viewer)
    page.goto(f"{site.base}/overview?run_id={m.run_id}")
    page.get_by_test_id("nav-results").click()
    page.wait_for_url(f"**/results?run_id={m.run_id}")
    page.locator("[data-testid=results-chart] .main-svg").first.wait_for()
    assert page.get_by_test_id("total-estimated").inner_text() == "$150.00"
    assert page.get_by_test_id("total-measured").inner_text() == "$150.00"
    assert "$100.00 to $190.00" in page.get_by_test_id("total-interval").inner_text()
    assert "conservative" in page.get_by_test_id("interval-basis").inner_text()
    assert sorted(page.get_by_test_id("calibration-ratio").all_inner_texts()) == ["0.80", "1.40"]
    assert page.get_by_test_id("week-row").count() == 2
    page.screenshot(path=str(_artifacts() / "results.png"), full_page=True)
    with page.expect_download() as info:
        page.get_by_test_id("results-csv").click()
    text = Path(info.value.path()).read_text(encoding="utf-8")
    rows = [r for r in csv.DictReader(io.StringIO(text)) if r["table"] == "total"]
    assert (rows[0]["estimated"], rows[0]["measured"]) == ("150.0", "150.0")
    # every run: each run's latest measurement, summed
    page.get_by_test_id("nav-results").click()
    page.get_by_test_id("results-all").click()
    page.wait_for_url("**/results?run_id=all")
    assert page.get_by_test_id("run-row").count() == 2
    assert page.get_by_test_id("total-estimated").inner_text() == "$170.00"
    # a run without a measurement says how to get one
    page.goto(f"{site.base}/results?run_id={m.plain}")
    assert "stocktailor measure" in page.get_by_test_id("results-empty").inner_text()
    assert site.blocked == []
    page.context.close()
