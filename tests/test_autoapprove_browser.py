"""The admin's auto-approval page in headless Chromium: add a rule, apply it, see the queue
marker, reverse one line (checked in the database). Same setup as tests/test_web_browser.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from _workflow_fixtures import fresh_database, serving
from stocktailor import workflow
from stocktailor.config import Settings
from stocktailor.workflow.models import Recommendation
from test_autoapprove import tiny_plan

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="/usr/bin/chromium is absent: run scripts/ci-browser.sh (apt-get install chromium)",
    ),
]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, Engine, int, str]]:
    from stocktailor.api import create_app

    app = create_app(Settings(), fresh_database("sqlite", tmp_path))
    engine: Engine = app.state.engine
    plan, stores, products, positions = tiny_plan()
    run_id = workflow.publish_run(engine, plan, stores, products, positions=positions)
    admin = workflow.create_user(engine, "ada", "admin")
    try:
        with serving(app) as base:
            yield base, engine, run_id, admin
    finally:
        engine.dispose()


def _statuses(engine: Engine, run_id: int) -> dict[str, tuple[str, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                Recommendation.external_id, Recommendation.status, Recommendation.auto_rule
            ).where(Recommendation.run_id == run_id)
        ).all()
    return {str(r[0]): (r[1], r[2]) for r in rows}


def test_admin_adds_applies_and_reverses_a_rule(site: tuple[str, Engine, int, str]) -> None:
    from playwright.sync_api import sync_playwright

    base, engine, run_id, admin = site
    blocked: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            page = browser.new_page()

            def guard(route: Any) -> None:
                if route.request.url.startswith(base):
                    route.continue_()
                else:
                    blocked.append(route.request.url)
                    route.abort()

            page.route("**/*", guard)
            page.set_default_timeout(15_000)
            page.goto(base + "/")
            page.get_by_test_id("token").fill(admin)
            page.get_by_test_id("sign-in").click()
            page.wait_for_url("**/overview")
            page.get_by_test_id("nav-rules").click()
            page.wait_for_url("**/rules**")
            page.get_by_test_id("rule-name").fill("tops-50")
            page.get_by_test_id("rule-min-net").fill("50")
            page.get_by_test_id("rule-categories").fill("tops")
            page.get_by_test_id("rule-add").click()
            page.get_by_test_id("rules-message").filter(has_text="Rule tops-50 added.").wait_for()
            assert page.get_by_test_id("rule-row").count() == 1
            page.get_by_test_id("rules-apply").click()
            page.get_by_test_id("rules-message").filter(has_text="3 lines").wait_for()
            assert page.get_by_test_id("auto-line").count() == 3
            page.get_by_test_id("auto-reverse").first.click()
            page.get_by_test_id("rules-message").filter(has_text="pending again").wait_for()
            assert page.get_by_test_id("auto-line").count() == 2
            page.goto(f"{base}/queue?run_id={run_id}&status=approved")
            markers = page.get_by_test_id("auto-rule")
            assert markers.count() == 2
            assert markers.first.inner_text() == "auto-approved by tops-50"
        finally:
            browser.close()
    states = _statuses(engine, run_id)
    # G (net 120) is listed first and was reversed; A and H stay auto-approved
    assert states["G"] == ("pending", None)
    assert states["A"] == states["H"] == ("approved", "tops-50")
    assert blocked == []
