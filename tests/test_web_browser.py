"""Dashboard in headless Chromium (Playwright driving Debian's /usr/bin/chromium).

The app runs under uvicorn in a thread on 127.0.0.1 with a free port; every request the page
makes to anything but that server is blocked and recorded (the dashboard must work offline).
Each action is checked in the database afterwards. Screenshots of the overview and the queue
are written to tests/artifacts/ (override with STOCKTAILOR_ARTIFACTS).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlalchemy import Engine, select

from _workflow_fixtures import fresh_database, make_run, serving
from stocktailor import workflow
from stocktailor.config import Settings
from stocktailor.workflow.models import Decision

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="/usr/bin/chromium is absent: run scripts/ci-browser.sh (apt-get install chromium)",
    ),
]


def _artifacts() -> Path:
    path = Path(os.environ.get("STOCKTAILOR_ARTIFACTS", Path(__file__).parent / "artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class Site:
    base: str
    engine: Engine
    run_id: int
    planner: str
    viewer: str
    blocked: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    from stocktailor.api import create_app

    url = fresh_database("sqlite", tmp_path_factory.mktemp("web"))
    app = create_app(Settings(), url)
    engine: Engine = app.state.engine
    fr = make_run(80)
    run_id = workflow.publish_run(engine, fr.plan, fr.stores, fr.products, positions=fr.positions)
    planner = workflow.create_user(engine, "paula", "planner")
    viewer = workflow.create_user(engine, "victor", "viewer")
    try:
        with serving(app) as base:
            yield Site(base, engine, run_id, planner, viewer)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            yield b
        finally:
            b.close()


def _page(browser: Any, site: Site) -> Any:
    context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1000})
    page = context.new_page()

    def guard(route: Any) -> None:
        if route.request.url.startswith(site.base):
            route.continue_()
        else:
            site.blocked.append(route.request.url)
            route.abort()

    page.route("**/*", guard)
    page.set_default_timeout(15_000)
    return page


def _usd(text: str) -> float:
    """An amount the page shows in the default currency (``$1,234``, ``-$12.50``)."""
    assert "$" in text, text
    return float(text.replace("$", "").replace(",", ""))


def _sign_in(page: Any, site: Site, token: str) -> None:
    page.goto(site.base + "/")
    page.get_by_test_id("token").fill(token)
    page.get_by_test_id("sign-in").click()
    page.wait_for_url("**/overview")


def test_sign_in_overview_and_screenshot(browser: Any, site: Site) -> None:
    page = _page(browser, site)
    page.goto(site.base + "/overview")
    page.wait_for_url("**/login")
    page.get_by_test_id("token").fill("st_not-a-token")
    page.get_by_test_id("sign-in").click()
    assert "Unknown" in page.get_by_test_id("login-error").inner_text()
    _sign_in(page, site, site.planner)
    assert page.get_by_test_id("who").inner_text() == "paula (planner)"
    kpis = page.get_by_test_id("status-tiles").inner_text().lower()
    assert "pending" in kpis and "85" in kpis
    # money tiles say what they sum; no cents on figures above 1,000
    sums = page.get_by_test_id("status-sum").all_inner_texts()
    assert all("net benefit of these lines" in s for s in sums)
    for s in sums:
        money = s.rsplit(" ", 1)[-1]
        if abs(_usd(money)) >= 1000:
            assert "." not in money, s
    assert "$3,993,749" in page.get_by_test_id("kpis").inner_text()
    benefit = page.get_by_test_id("kpi-expected_net_benefit").inner_text()
    assert "sum of the net benefit of the store-to-store transfer lines" in benefit
    # the validation table of the run's forecast
    rows = page.get_by_test_id("validation-row")
    assert rows.count() == 2 and "✓" in rows.nth(0).inner_text()
    # both charts drawn by the vendored Plotly (stores on a map, bars by cluster)
    page.locator("#map .main-svg").first.wait_for()
    page.locator("#clusters .main-svg").first.wait_for()
    assert page.locator("#map .scatterlayer .trace").count() == 4  # 3 clusters + warehouses
    rows = page.get_by_test_id("cluster-table").locator("tbody tr")
    assert rows.count() == 3
    shot = _artifacts() / "overview.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"overview screenshot: {shot}")
    assert shot.stat().st_size > 10_000
    assert site.blocked == []
    page.context.close()


def test_filter_queue_sort_and_screenshot(browser: Any, site: Site) -> None:
    page = _page(browser, site)
    _sign_in(page, site, site.planner)
    page.get_by_test_id("nav-queue").click()
    page.wait_for_url("**/queue*")
    total = workflow.list_recommendations(site.engine, site.run_id).total
    assert page.get_by_test_id("queue-total").inner_text().startswith(f"{total} lines")
    with page.expect_response(lambda r: "/queue/rows" in r.url and "category=tops" in r.url):
        page.get_by_test_id("f-category").select_option("tops")
    tops = workflow.list_recommendations(
        site.engine, site.run_id, workflow.RecFilter(category="tops")
    )
    page.wait_for_function(
        "n => document.querySelector('[data-testid=queue-total]')"
        ".innerText.startsWith(n + ' lines')",
        arg=str(tops.total),
    )
    rows = page.get_by_test_id("queue-row")
    cats = {rows.nth(i).get_attribute("data-category") for i in range(rows.count())}
    assert cats == {"tops"}
    shown = [int(rows.nth(i).get_attribute("data-rec-id")) for i in range(rows.count())]
    assert shown == [r["id"] for r in tops.items[: len(shown)]]  # net benefit, high to low
    benefits = [_usd(t) for t in page.get_by_test_id("net-benefit").all_inner_texts()]
    assert benefits == sorted(benefits, reverse=True)
    with page.expect_response(lambda r: "/queue/rows" in r.url and "order=asc" in r.url):
        page.get_by_test_id("f-order").select_option("asc")
    page.wait_for_function(
        "() => { const c = [...document.querySelectorAll('[data-testid=net-benefit]')]"
        ".map(e => parseFloat(e.innerText.replace(/[$,]/g, ''))); "
        "return c.length > 1 && c[0] <= c[c.length - 1]; }"
    )
    shot = _artifacts() / "queue.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"queue screenshot: {shot}")
    assert shot.stat().st_size > 10_000
    assert site.blocked == []
    page.context.close()


def _open_pending(page: Any, site: Site, index: int) -> int:
    page.goto(site.base + f"/queue?run_id={site.run_id}&status=pending&kind=transfer")
    row = page.get_by_test_id("queue-row").nth(index)
    rec_id = int(row.get_attribute("data-rec-id"))
    row.get_by_test_id("open-rec").click()
    page.wait_for_url(f"**/recommendations/{rec_id}")
    page.locator("#band .main-svg").first.wait_for()
    return rec_id


def _decisions(engine: Engine, rec_id: int) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(select(Decision.__table__).where(Decision.recommendation_id == rec_id))
        )


def test_open_approve_reject_edit_export(browser: Any, site: Site) -> None:
    page = _page(browser, site)
    _sign_in(page, site, site.planner)

    # open + approve
    a = _open_pending(page, site, 0)
    assert "Move" in page.get_by_test_id("explanation").inner_text()
    assert "Net benefit" in page.get_by_test_id("pnl").inner_text()
    assert "Source" in page.get_by_test_id("cover").inner_text()
    page.get_by_test_id("approve").click()
    page.get_by_test_id("decision-message").wait_for()
    assert page.get_by_test_id("rec-status").inner_text() == "approved"
    rec = workflow.get_recommendation(site.engine, a)
    assert (rec["status"], rec["version"], rec["decided_by"]) == ("approved", 1, "paula")
    assert [d.action for d in _decisions(site.engine, a)] == ["approve"]
    page.screenshot(path=str(_artifacts() / "detail.png"), full_page=True)

    # reject with a reason
    b = _open_pending(page, site, 0)
    assert b != a
    page.get_by_test_id("reject-reason").fill("store is being refitted")
    page.get_by_test_id("reject").click()
    page.get_by_test_id("decision-message").wait_for()
    rec = workflow.get_recommendation(site.engine, b)
    assert (rec["status"], rec["decision_reason"]) == ("rejected", "store is being refitted")
    assert [(d.action, d.reason) for d in _decisions(site.engine, b)] == [
        ("reject", "store is being refitted")
    ]

    # edit the quantity
    c = _open_pending(page, site, 0)
    planned = workflow.get_recommendation(site.engine, c)["original_units"]
    page.get_by_test_id("edit-units").fill("1")
    page.get_by_test_id("edit").click()
    page.get_by_test_id("decision-message").wait_for()
    assert page.get_by_test_id("rec-status").inner_text() == "edited"
    rec = workflow.get_recommendation(site.engine, c)
    assert (rec["status"], rec["units"], rec["original_units"]) == ("edited", 1, planned)

    # a stale second tab gets a conflict, not a second decision
    page.goto(site.base + f"/recommendations/{a}")
    page.evaluate(
        "() => document.querySelectorAll('input[name=version]').forEach(e => e.value = '0')"
    )
    page.get_by_test_id("reject-reason").fill("late change")
    page.get_by_test_id("reject").click()
    page.get_by_test_id("decision-error").wait_for()
    assert "Conflict" in page.get_by_test_id("decision-error").inner_text()
    assert len(_decisions(site.engine, a)) == 1

    # export the approved lines as CSV and XLSX
    with page.expect_download() as info:
        page.get_by_test_id("export-csv").click()
    path = info.value.path()
    got = pl.read_csv(path)
    assert Path(path).read_bytes() == workflow.export_approved(site.engine, site.run_id, "csv")
    refs = set(got["reference"].to_list())
    assert refs == {f"transfer-{a}", f"transfer-{c}"}
    assert got.filter(pl.col("reference") == f"transfer-{c}")["units"][0] == 1
    with page.expect_download() as info:
        page.get_by_test_id("export-xlsx").click()
    import openpyxl

    ws = openpyxl.load_workbook(io.BytesIO(Path(info.value.path()).read_bytes()))["transfers"]
    assert ws.max_row == 3
    assert site.blocked == []
    page.context.close()


def test_viewer_sees_no_decision_buttons(browser: Any, site: Site) -> None:
    page = _page(browser, site)
    _sign_in(page, site, site.viewer)
    page.goto(site.base + f"/queue?run_id={site.run_id}")
    assert page.get_by_test_id("bulk-approve").count() == 0
    page.get_by_test_id("open-rec").first.click()
    page.get_by_test_id("decision-panel").wait_for()
    assert page.get_by_test_id("approve").count() == 0
    assert page.get_by_test_id("reject").count() == 0
    assert "can view" in page.get_by_test_id("read-only").inner_text()
    page.get_by_test_id("nav-exceptions").click()
    page.wait_for_url("**/exceptions*")
    n = workflow.list_exceptions(site.engine, site.run_id).total
    assert page.get_by_test_id("exceptions-total").inner_text() == f"{n} flagged lines"
    # the OpenAPI docs render from vendored Swagger UI files too
    page.goto(site.base + "/docs")
    page.locator(".swagger-ui .opblock").first.wait_for()
    assert page.locator(".swagger-ui .opblock").count() >= 10
    assert site.blocked == []
    page.context.close()


def test_queue_shows_store_names_and_clusters_with_ids_on_hover(browser: Any, site: Site) -> None:
    page = _page(browser, site)
    _sign_in(page, site, site.planner)
    page.goto(site.base + f"/queue?run_id={site.run_id}&kind=transfer&sort=id&order=asc")
    first = workflow.list_recommendations(
        site.engine, site.run_id, workflow.RecFilter(kind="transfer"), sort="id", descending=False
    ).items[0]
    stores = {s["store_id"]: s for s in workflow.run_stores(site.engine, site.run_id)}
    row = page.get_by_test_id("queue-row").first
    names = row.get_by_test_id("store-name")
    assert names.nth(0).inner_text() == stores[first["from_id"]]["name"]
    assert names.nth(0).get_attribute("title") == first["from_id"]
    assert names.nth(1).get_attribute("title") == first["to_id"]
    assert stores[first["to_id"]]["cluster_name"] in row.inner_text()
    assert site.blocked == []
    page.context.close()


def test_queue_filters_and_sort_round_trip_through_the_url(browser: Any, site: Site) -> None:
    page = _page(browser, site)
    _sign_in(page, site, site.planner)
    page.goto(site.base + f"/queue?run_id={site.run_id}")
    with page.expect_response(lambda r: "/queue/rows" in r.url and "category=shoes" in r.url):
        page.get_by_test_id("f-category").select_option("shoes")
    page.wait_for_url("**category=shoes**")
    with page.expect_response(lambda r: "/queue/rows" in r.url and "order=asc" in r.url):
        page.get_by_test_id("f-order").select_option("asc")
    page.wait_for_url("**order=asc**")
    shared = page.url
    assert "/queue?" in shared and "category=shoes" in shared and "order=asc" in shared
    # someone opening the shared address sees the same view
    other = _page(browser, site)
    _sign_in(other, site, site.viewer)
    other.goto(shared)
    assert other.get_by_test_id("f-category").input_value() == "shoes"
    assert other.get_by_test_id("f-order").input_value() == "asc"
    n = workflow.list_recommendations(
        site.engine, site.run_id, workflow.RecFilter(category="shoes")
    ).total
    assert other.get_by_test_id("queue-total").inner_text().startswith(f"{n} lines")
    assert site.blocked == []
    page.context.close()
    other.context.close()


def test_bulk_approve_confirmation_states_the_count(browser: Any, site: Site) -> None:
    page = _page(browser, site)
    _sign_in(page, site, site.planner)
    page.goto(site.base + f"/queue?run_id={site.run_id}&category=tops")
    pending = workflow.list_recommendations(
        site.engine, site.run_id, workflow.RecFilter(category="tops", status="pending")
    ).total
    assert pending > 0
    seen: list[str] = []

    def dismiss(dialog: Any) -> None:
        seen.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    page.get_by_test_id("bulk-approve").click()
    page.wait_for_function("() => true")
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert seen == [f"Approve {pending:,} pending lines matching these filters?"]
    after = workflow.list_recommendations(
        site.engine, site.run_id, workflow.RecFilter(category="tops", status="pending")
    ).total
    assert after == pending  # dismissed: nothing approved
    page.context.close()


def test_grouped_recommendations_with_sizes_approved_as_one(browser: Any, site: Site) -> None:
    page = _page(browser, site)
    _sign_in(page, site, site.planner)
    page.goto(site.base + f"/queue?run_id={site.run_id}&view=groups&status=pending")
    groups = workflow.list_groups(
        site.engine, site.run_id, workflow.RecFilter(status="pending"), page_size=25
    ).items
    rows = page.get_by_test_id("group-row")
    assert rows.count() == len(groups)
    key = groups[0]["group_key"]
    row = page.locator(f"[data-testid=group-row][data-group='{key}']")
    assert row.get_by_test_id("group-sizes").inner_text() == groups[0]["sizes"]
    with page.expect_response(lambda r: "/queue/bulk" in r.url):
        row.get_by_test_id("group-approve").click()
    page.get_by_test_id("flash").wait_for()
    lines = workflow.list_recommendations(
        site.engine, site.run_id, workflow.RecFilter(group=key), page_size=200
    ).items
    assert lines and {r["status"] for r in lines} == {"approved"}
    assert page.get_by_test_id("flash").inner_text() == f"Approved {len(lines)} pending lines."
    page.context.close()


def test_error_pages_are_html_and_favicon_is_served(browser: Any, site: Site) -> None:
    page = _page(browser, site)
    _sign_in(page, site, site.planner)
    response = page.goto(site.base + "/overview?run_id=99999")
    assert response.status == 404
    assert page.get_by_test_id("error-title").inner_text() == "404 · Not Found"
    assert "no run 99999" in page.get_by_test_id("error-detail").inner_text()
    assert "detail" not in page.content().split("<body>")[0]
    page.goto(site.base + "/overview")
    assert page.locator("link[rel=icon]").get_attribute("href") == "/favicon.ico"
    fav = page.request.get(site.base + "/favicon.ico")
    assert fav.status == 200 and fav.headers["content-type"] == "image/png"
    assert fav.body()[:4] == b"\x89PNG"
    assert site.blocked == []
    page.context.close()


def test_map_draws_its_base_layers_from_static_topojson(browser: Any, site: Site) -> None:
    page = _page(browser, site)
    fetched: list[tuple[str, int]] = []
    page.on("response", lambda r: fetched.append((r.url, r.status)))
    _sign_in(page, site, site.planner)
    figure = json.loads(page.get_by_test_id("cluster-map").get_attribute("data-figure"))
    assert figure["config"]["topojsonURL"] == "/static/topojson/"
    assert figure["data"][0]["type"] == "scattergeo"
    # the stores are in Germany: the world layer, countries drawn, fitted to the stores
    page.locator("#map .geo .countries path").first.wait_for(state="attached")
    assert (site.base + "/static/topojson/world_110m.json", 200) in fetched
    assert page.locator("#map .geo .land path").count() >= 1
    assert page.request.get(site.base + "/static/topojson/usa_110m.json").status == 200
    assert site.blocked == []  # nothing from a CDN
    page.context.close()


def test_a_vnd_network_shows_dong_not_dollars(browser: Any, site: Site) -> None:
    fr = make_run(12, seed=3)
    plan = dataclasses.replace(
        fr.plan, settings={**fr.plan.settings, "economics": {"currency": "VND"}}
    )
    run_id = workflow.publish_run(site.engine, plan, fr.stores, fr.products, positions=fr.positions)
    page = _page(browser, site)
    _sign_in(page, site, site.planner)
    page.goto(f"{site.base}/queue?run_id={run_id}")
    cells = page.get_by_test_id("net-benefit").all_inner_texts()
    assert len(cells) == workflow.list_recommendations(site.engine, run_id).total == 17
    assert all(c.endswith(" ₫") and "," not in c for c in cells), cells
    top = workflow.list_recommendations(site.engine, run_id).items[0]
    assert cells[0] == f"{round(top['net_benefit']):,} ₫".replace(",", ".")
    assert "$" not in page.locator("main").inner_text()
    page.goto(f"{site.base}/recommendations/{top['id']}")
    pnl = page.get_by_test_id("pnl").inner_text()
    assert "₫" in pnl and "$" not in page.locator("main").inner_text()
    page.goto(f"{site.base}/overview?run_id={run_id}")
    tiles = page.get_by_test_id("kpis").inner_text()
    assert "3.993.749 ₫" in tiles and "$" not in page.locator("main").inner_text()
    # the first run keeps its own currency
    page.goto(f"{site.base}/queue?run_id={site.run_id}")
    assert page.get_by_test_id("net-benefit").first.inner_text().startswith("$")
    assert site.blocked == []
    page.context.close()
