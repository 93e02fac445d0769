"""HTTP API: auth (401/403), validation (422 with a message), decisions (409/idempotent),
filters, export, schemathesis fuzzing of the OpenAPI schema, and a SIGKILLed server."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from sqlalchemy import func, select

import _workflow_fixtures
from _workflow_fixtures import disposing_engines, free_port, fresh_database, make_run
from stocktailor import workflow
from stocktailor.api import csrf_token
from stocktailor.config import Settings
from stocktailor.workflow.models import Decision, Recommendation

with warnings.catch_warnings():
    # starlette suggests the httpx2 package; the httpx-based client works the same here
    warnings.simplefilter("ignore", UserWarning)
    from fastapi.testclient import TestClient

from stocktailor.api import create_app

FILTERS = ("cluster", "store", "from_store", "to_store", "category", "style", "sku")
BAD_VALUES = (
    "' OR 1=1 --",
    "x'; DROP TABLE recommendations; --",
    '" OR ""="',
    "S01%",
    "a" * 65,
    "S01\x00",
    "<script>alert(1)</script>",
    "",
)


@dataclass
class Api:
    app: FastAPI
    client: TestClient
    url: str
    run_id: int
    planner: dict[str, str]
    viewer: dict[str, str]
    admin: dict[str, str]
    planner_token: str

    @property
    def engine(self) -> Any:
        return self.app.state.engine


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _make_api(url: str, n: int = 40) -> Api:
    app = create_app(Settings(), url)
    engine = app.state.engine
    fr = make_run(n)
    run_id = workflow.publish_run(engine, fr.plan, fr.stores, fr.products, positions=fr.positions)
    planner = workflow.create_user(engine, "pia", "planner")
    viewer = workflow.create_user(engine, "vic", "viewer")
    admin = workflow.create_user(engine, "ada", "admin")
    client = TestClient(app)
    return Api(app, client, url, run_id, _bearer(planner), _bearer(viewer), _bearer(admin), planner)


@pytest.fixture(params=_workflow_fixtures.DB_PARAMS)
def api(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Api]:
    url = fresh_database(str(request.param), tmp_path)
    with disposing_engines(monkeypatch):
        a = _make_api(url)
        with a.client:
            yield a


@pytest.fixture
def sqlite_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    url = fresh_database("sqlite", tmp_path)
    with disposing_engines(monkeypatch):
        a = _make_api(url)
        with a.client:
            yield a


def _first(api: Api, **params: Any) -> dict[str, Any]:
    r = api.client.get("/api/v1/recommendations", params=params, headers=api.planner)
    assert r.status_code == 200, r.text
    item: dict[str, Any] = r.json()["items"][0]
    return item


def _audit_outcomes(api: Api) -> list[tuple[str | None, str]]:
    return [(x["user"], x["outcome"]) for x in workflow.audit_entries(api.engine)]


def test_unauthenticated_requests_get_401_and_are_audited(api: Api) -> None:
    rec = _first(api)
    c = api.client
    assert c.get("/api/v1/runs").status_code == 401
    assert c.get("/api/v1/recommendations", headers=_bearer("st_nope")).status_code == 401
    writes = [
        (f"/api/v1/recommendations/{rec['id']}/decision", {"action": "approve", "version": 0}),
        (f"/api/v1/runs/{api.run_id}/decisions/bulk", {"action": "approve"}),
        ("/api/v1/users", {"name": "eve", "role": "admin"}),
    ]
    for path, body in writes:
        r = c.post(path, json=body)
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"] == "Bearer"
        assert c.post(path, json=body, headers=_bearer("wrong")).status_code == 401
    # every 401 leaves an audit row: 2 reads and 6 writes
    assert _audit_outcomes(api).count((None, "unauthenticated")) == 8
    assert workflow.get_recommendation(api.engine, rec["id"])["status"] == "pending"
    assert c.get("/healthz").status_code == 200
    docs = c.get("/docs")
    assert docs.status_code == 200 and "/static/swagger/swagger-ui-bundle.js" in docs.text
    assert "http" not in docs.text.split("<body>")[0].replace("http-equiv", "")
    assert c.get("/static/htmx.min.js").status_code == 200
    assert c.get("/openapi.json").json()["info"]["title"] == "stocktailor"


def test_viewer_decisions_get_403(api: Api) -> None:
    rec = _first(api)
    c = api.client
    assert c.get("/api/v1/me", headers=api.viewer).json() == {"name": "vic", "role": "viewer"}
    assert c.get(f"/api/v1/recommendations/{rec['id']}", headers=api.viewer).status_code == 200
    r = c.post(
        f"/api/v1/recommendations/{rec['id']}/decision",
        json={"action": "approve", "version": 0},
        headers=api.viewer,
    )
    assert r.status_code == 403 and "viewer" in r.json()["detail"]
    r = c.post(
        f"/api/v1/runs/{api.run_id}/decisions/bulk", json={"action": "approve"}, headers=api.viewer
    )
    assert r.status_code == 403
    r = c.post("/api/v1/users", json={"name": "x", "role": "admin"}, headers=api.planner)
    assert r.status_code == 403
    assert _audit_outcomes(api).count(("vic", "forbidden")) == 2
    assert _audit_outcomes(api).count(("pia", "forbidden")) == 1  # /users needs an admin
    assert workflow.get_run(api.engine, api.run_id)["status_counts"]["pending"] == 45


def test_admin_creates_users(api: Api) -> None:
    r = api.client.post(
        "/api/v1/users", json={"name": "nina", "role": "planner"}, headers=api.admin
    )
    assert r.status_code == 201
    token = r.json()["token"]
    assert api.client.get("/api/v1/me", headers=_bearer(token)).json()["role"] == "planner"
    again = api.client.post(
        "/api/v1/users", json={"name": "nina", "role": "viewer"}, headers=api.admin
    )
    assert again.status_code == 422 and "already exists" in again.json()["message"]


def test_decisions_conflict_409_and_idempotent_repeat(api: Api) -> None:
    rec = _first(api)
    path = f"/api/v1/recommendations/{rec['id']}/decision"
    c = api.client
    r = c.post(
        path,
        json={"action": "edit", "version": 0, "units": 1, "reason": "space"},
        headers=api.planner,
    )
    assert r.status_code == 200
    assert r.json() == {
        "recommendation_id": rec["id"],
        "status": "edited",
        "units": 1,
        "version": 1,
        "applied": True,
        "decision_id": r.json()["decision_id"],
    }
    same = c.post(
        path,
        json={"action": "edit", "version": 0, "units": 1, "reason": "space"},
        headers=api.planner,
    )
    assert same.status_code == 200 and same.json()["applied"] is False
    clash = c.post(path, json={"action": "approve", "version": 0}, headers=api.planner)
    assert clash.status_code == 409
    assert clash.json()["current"] == {"status": "edited", "units": 1, "version": 1}
    bad = c.post(path, json={"action": "reject", "version": 1}, headers=api.planner)
    assert bad.status_code == 422 and "reason" in bad.json()["message"]
    missing = c.post(
        "/api/v1/recommendations/999999/decision",
        json={"action": "approve", "version": 0},
        headers=api.planner,
    )
    assert missing.status_code == 404
    with api.engine.connect() as conn:
        n = conn.execute(
            select(func.count()).where(Decision.recommendation_id == rec["id"])
        ).scalar_one()
    assert n == 1


def test_bulk_by_filter_over_http(api: Api) -> None:
    c = api.client
    r = c.post(
        f"/api/v1/runs/{api.run_id}/decisions/bulk",
        json={"action": "approve", "filter": {"category": "shoes", "kind": "transfer"}},
        headers=api.planner,
    )
    assert r.status_code == 200
    n = r.json()["matched"]
    listed = c.get(
        "/api/v1/recommendations",
        headers=api.planner,
        params={"category": "shoes", "kind": "transfer", "page_size": 200},
    ).json()
    assert listed["total"] == n > 0
    assert {x["status"] for x in listed["items"]} == {"approved"}
    bad = c.post(
        f"/api/v1/runs/{api.run_id}/decisions/bulk",
        json={"action": "approve", "filter": {"style": "x' OR '1'='1"}},
        headers=api.planner,
    )
    assert bad.status_code == 422 and "style" in bad.json()["message"]


def test_listing_filters_sort_page(api: Api) -> None:
    c = api.client
    r = c.get(
        "/api/v1/recommendations",
        headers=api.viewer,
        params={
            "run_id": api.run_id,
            "category": "tops",
            "sort": "units",
            "order": "asc",
            "page_size": 5,
            "page": 2,
        },
    )
    body = r.json()
    assert r.status_code == 200 and body["page"] == 2 and len(body["items"]) <= 5
    assert all(x["category"] == "tops" for x in body["items"])
    units = [x["units"] for x in body["items"]]
    assert units == sorted(units)
    one = c.get(f"/api/v1/recommendations/{body['items'][0]['id']}", headers=api.viewer).json()
    assert one["explanation"] and len(one["forecast"]["to"]) == 6
    assert one["forecast"]["to"][0]["p10"] <= one["forecast"]["to"][0]["p90"]
    exc = c.get(
        f"/api/v1/runs/{api.run_id}/exceptions",
        params={"kind": "large_move"},
        headers=api.viewer,
    ).json()
    assert exc["total"] > 0 and {x["kind"] for x in exc["items"]} == {"large_move"}
    k = c.get(f"/api/v1/runs/{api.run_id}/kpis", headers=api.viewer).json()
    assert k["kpis"]["lanes"] == 7.0 and len(k["clusters"]) == 3
    assert 0 < k["clusters"][0]["sell_through"] < 1
    runs = c.get("/api/v1/runs", headers=api.viewer).json()
    assert [x["id"] for x in runs] == [api.run_id]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page_size": 0}, "page_size"),
        ({"page_size": 201}, "page_size"),
        ({"page": 0}, "page"),
        ({"sort": "units desc"}, "sort"),
        ({"sort": "password"}, "sort"),
        ({"order": "sideways"}, "order"),
        ({"status": "done"}, "status"),
        ({"run_id": 0}, "run_id"),
        ({"run_id": 2**40}, "run_id"),
        ({"min_net_benefit": "lots"}, "min_net_benefit"),
    ],
)
def test_validation_returns_422_with_message(
    sqlite_api: Api, params: dict[str, Any], field: str
) -> None:
    r = sqlite_api.client.get("/api/v1/recommendations", params=params, headers=sqlite_api.viewer)
    assert r.status_code == 422
    body = r.json()
    assert field in body["message"] and body["errors"][0]["loc"][-1] == field


def test_every_filter_rejects_injection_and_oversized_values(sqlite_api: Api) -> None:
    c = sqlite_api.client
    before = workflow.get_run(sqlite_api.engine, sqlite_api.run_id)["n_recommendations"]
    for name in FILTERS:
        for value in BAD_VALUES:
            r = c.get("/api/v1/recommendations", params={name: value}, headers=sqlite_api.viewer)
            assert r.status_code == 422, (name, value, r.text)
            assert name in r.json()["message"]
    # words without quotes or separators cannot break out of a bound parameter: a literal value
    r = c.get(
        "/api/v1/recommendations",
        params={"style": "1 UNION SELECT token_sha256"},
        headers=sqlite_api.viewer,
    )
    assert r.status_code == 200 and r.json()["total"] == 0
    long_reason = {"action": "reject", "version": 0, "reason": "x" * 1001}
    rec = _first(sqlite_api)
    r = c.post(
        f"/api/v1/recommendations/{rec['id']}/decision",
        json=long_reason,
        headers=sqlite_api.planner,
    )
    assert r.status_code == 422 and "reason" in r.json()["message"]
    assert (
        c.get("/api/v1/recommendations/99999999999", headers=sqlite_api.viewer).status_code == 422
    )
    with sqlite_api.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Recommendation)).scalar_one() == before


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    name=st.sampled_from(FILTERS),
    value=st.one_of(
        st.text(min_size=65, max_size=300),
        st.text(min_size=1, max_size=40).map(lambda s: s + "'"),
        st.text(min_size=0, max_size=40).map(lambda s: "; " + s),
        st.text(min_size=0, max_size=40).map(lambda s: s + "\x00"),
    ),
)
def test_filters_reject_generated_bad_values(sqlite_api: Api, name: str, value: str) -> None:
    r = sqlite_api.client.get(
        "/api/v1/recommendations", params={name: value}, headers=sqlite_api.viewer
    )
    assert r.status_code == 422
    assert r.json()["message"]


def test_export_csv_and_xlsx_over_http(api: Api) -> None:
    rec = _first(api)
    api.client.post(
        f"/api/v1/recommendations/{rec['id']}/decision",
        json={"action": "approve", "version": 0},
        headers=api.planner,
    )
    r = api.client.get(f"/api/v1/runs/{api.run_id}/export", headers=api.viewer)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = r.text.strip().splitlines()
    assert lines[0] == "ship_from,ship_to,sku,units,ship_date,reference"
    assert lines[1].split(",")[:4] == [rec["from_id"], rec["to_id"], rec["sku"], str(rec["units"])]
    x = api.client.get(
        f"/api/v1/runs/{api.run_id}/export", params={"format": "xlsx"}, headers=api.viewer
    )
    assert x.status_code == 200 and "attachment" in x.headers["content-disposition"]
    ws = openpyxl.load_workbook(io.BytesIO(x.content))["transfers"]
    assert ws.max_row == 2
    assert (
        api.client.get(
            f"/api/v1/runs/{api.run_id}/export", params={"format": "pdf"}, headers=api.viewer
        ).status_code
        == 422
    )


def _sign_in(api: Api, token: str) -> str:
    """Sign in through the dashboard form; return the session id the cookie holds."""
    r = api.client.post("/login", data={"token": token}, follow_redirects=False)
    assert r.status_code == 303, r.text
    session = api.client.cookies.get("stocktailor_token")
    assert session is not None
    return session


def test_cookie_writes_need_the_csrf_header(sqlite_api: Api) -> None:
    rec = _first(sqlite_api)
    c = sqlite_api.client
    session = _sign_in(sqlite_api, sqlite_api.planner_token)
    path = f"/api/v1/recommendations/{rec['id']}/decision"
    assert c.post(path, json={"action": "approve", "version": 0}).status_code == 403
    assert _audit_outcomes(sqlite_api).count(("pia", "csrf")) == 1
    ok = c.post(
        path,
        json={"action": "approve", "version": 0},
        headers={"X-CSRF-Token": csrf_token(session)},
    )
    assert ok.status_code == 200


def test_cookie_holds_a_session_not_the_token(sqlite_api: Api) -> None:
    """The cookie is a server-side session id: not the API token, not usable as one, rotated
    on every sign-in, revoked on sign-out (which needs the CSRF value)."""
    api = sqlite_api
    c = api.client
    first = _sign_in(api, api.planner_token)
    assert first != api.planner_token and api.planner_token not in first
    assert c.get("/api/v1/me").json()["name"] == "pia"  # the cookie works for the pages' API
    bearer = {"Authorization": f"Bearer {first}"}
    assert c.get("/api/v1/me", headers=bearer).status_code == 401  # not an API token
    c.cookies.set("stocktailor_token", api.planner_token)  # an API token is no session
    assert c.get("/api/v1/me").status_code == 401
    c.cookies.clear()
    second = _sign_in(api, api.planner_token)
    assert second != first
    # sign-out without the CSRF value is refused and audited, the session stays live
    r = c.post("/logout", data={}, follow_redirects=False)
    assert r.status_code == 403 and "text/html" in r.headers["content-type"]
    assert _audit_outcomes(api).count(("pia", "csrf")) == 1
    assert c.get("/api/v1/me").status_code == 200
    r = c.post("/logout", data={"csrf": csrf_token(second)}, follow_redirects=False)
    assert r.status_code == 303
    c.cookies.set("stocktailor_token", second)
    assert c.get("/api/v1/me").status_code == 401  # revoked on the server


def test_security_headers_on_every_response(sqlite_api: Api) -> None:
    api = sqlite_api
    c = api.client
    _sign_in(api, api.planner_token)
    rec = _first(api)
    paths = [
        "/login",
        "/overview",
        "/queue",
        "/exceptions",
        f"/recommendations/{rec['id']}",
        "/api/v1/runs",
        "/healthz",
        "/openapi.json",
        "/docs",
        "/favicon.ico",
        "/static/style.css",
        "/nope",
        "/overview?run_id=99999",
    ]
    for path in paths:
        r = c.get(path)
        h = r.headers
        assert "frame-ancestors 'none'" in h["content-security-policy"], path
        assert "script-src 'self'" in h["content-security-policy"], path
        assert h["x-frame-options"] == "DENY" and h["x-content-type-options"] == "nosniff", path
    assert (
        "'unsafe-inline'"
        not in c.get("/overview").headers["content-security-policy"].split("style-src")[0]
    )
    page = c.get("/overview").text
    assert "/static/plotly.min.js?v=" in page
    m = re.search(r"/static/plotly\.min\.js\?v=(\w+)", page)
    assert m is not None
    cached = c.get(f"/static/plotly.min.js?v={m.group(1)}").headers["cache-control"]
    assert "immutable" in cached and "max-age=31536000" in cached


def test_errors_are_html_on_pages_and_json_on_the_api(sqlite_api: Api) -> None:
    api = sqlite_api
    c = api.client
    _sign_in(api, api.planner_token)
    r = c.get("/overview?run_id=99999")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "no run 99999" in r.text and '{"detail"' not in r.text
    r = c.get("/queue?status=<script>")
    assert r.status_code == 422 and "<script>" not in r.text
    assert c.get("/nope").headers["content-type"].startswith("text/html")
    r = c.get("/api/v1/runs/99999", headers=api.viewer)
    assert r.status_code == 404 and r.json() == {"detail": "plan_runs: no run 99999"}
    assert c.get("/api/v1/nope").headers["content-type"].startswith("application/json")
    fav = c.get("/favicon.ico")
    assert fav.status_code == 200 and fav.headers["content-type"] == "image/png"


def test_eleventh_wrong_sign_in_within_a_minute_is_throttled(sqlite_api: Api) -> None:
    api = sqlite_api
    c = api.client
    for _ in range(10):
        assert c.post("/login", data={"token": "st_wrong"}).status_code == 401
    r = c.post("/login", data={"token": "st_wrong"})
    assert r.status_code == 429 and "Too many failed sign-ins" in r.text
    assert int(r.headers["retry-after"]) >= 1
    # throttled even with the right token until the minute has passed
    assert c.post("/login", data={"token": api.planner_token}).status_code == 429
    outcomes = _audit_outcomes(api)
    assert outcomes.count((None, "throttled")) == 2
    assert outcomes.count((None, "unauthenticated")) == 10


def _fuzz(op: Any, mode: Any, headers: dict[str, str], seen: dict[str, set[int]]) -> None:
    """Run a bounded, deterministic batch of schemathesis cases against one operation."""
    from schemathesis.checks import not_a_server_error
    from schemathesis.generation import GenerationMode
    from schemathesis.specs.openapi.checks import (
        response_schema_conformance,
        status_code_conformance,
    )

    @settings(
        max_examples=10,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=op.as_strategy(mode, headers=headers))
    def run(case: Any) -> None:
        response = case.call()
        assert response.status_code < 500, (op.label, response.status_code, response.text)
        seen.setdefault(op.label, set()).add(response.status_code)
        if mode is GenerationMode.POSITIVE:
            case.validate_response(
                response,
                checks=[not_a_server_error, status_code_conformance, response_schema_conformance],
            )

    try:
        run()
    except Unsatisfiable:
        # an operation without inputs (e.g. /healthz) has no invalid request to generate
        assert mode is GenerationMode.NEGATIVE, op.label


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_schemathesis_fuzzes_the_openapi_schema(sqlite_api: Api) -> None:
    """Positive and negative cases for every operation: never a 5xx; positive cases conform."""
    import schemathesis
    from schemathesis.generation import GenerationMode

    schema = schemathesis.openapi.from_asgi("/openapi.json", sqlite_api.app)
    ops = [result.ok() for result in schema.get_all_operations()]
    assert len(ops) >= 10
    seen: dict[str, set[int]] = {}
    for op in ops:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(op, mode, dict(sqlite_api.admin), seen)
    assert set(seen) == {op.label for op in ops}


def test_killed_server_loses_no_committed_decision(tmp_path: Path) -> None:
    """Decide over HTTP against a real uvicorn process, SIGKILL it mid-stream, then check."""
    url = fresh_database("sqlite", tmp_path)
    engine = workflow.connect(url)
    fr = make_run(300, n_allocations=0, n_stores=8, n_styles=8)
    run_id = workflow.publish_run(engine, fr.plan, fr.stores, fr.products, positions=fr.positions)
    token = workflow.create_user(engine, "kim", "planner")
    ids = [
        r["id"]
        for r in workflow.list_recommendations(
            engine, run_id, sort="id", descending=False, page_size=1000
        ).items
    ]
    engine.dispose()
    port = free_port()
    code = (
        "from stocktailor.api import serve_app; from stocktailor.config import Settings; "
        f"serve_app(Settings(), {url!r}, '127.0.0.1', {port})"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ),
    )
    base = f"http://127.0.0.1:{port}"
    acked: dict[int, str] = {}
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail("server did not start")
        stop = threading.Event()

        def send() -> None:
            with httpx.Client(base_url=base, headers=_bearer(token), timeout=5) as client:
                for i, rid in enumerate(ids):
                    if stop.is_set():
                        return
                    action = "approve" if i % 3 else "reject"
                    body = {"action": action, "version": 0}
                    if action == "reject":
                        body["reason"] = "no space"
                    try:
                        r = client.post(f"/api/v1/recommendations/{rid}/decision", json=body)
                    except httpx.HTTPError:
                        return
                    if r.status_code == 200:
                        acked[rid] = r.json()["status"]

        sender = threading.Thread(target=send)
        sender.start()
        deadline = time.monotonic() + 30
        while len(acked) < 60 and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        stop.set()
        sender.join(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert len(acked) >= 60
    assert len(acked) < len(ids), "the kill should interrupt the stream"
    engine = workflow.connect(url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"
            rows = {
                r.id: (r.status, r.version)
                for r in conn.execute(
                    select(Recommendation.id, Recommendation.status, Recommendation.version)
                )
            }
            decided = dict(
                conn.execute(
                    select(Decision.recommendation_id, func.count()).group_by(
                        Decision.recommendation_id
                    )
                ).all()
            )
        for rid, status in acked.items():
            assert rows[rid] == (status, 1), rid
            assert decided[rid] == 1
        # nothing half-written: a line has a decision row exactly when its version moved
        for rid, (status, version) in rows.items():
            assert decided.get(rid, 0) == version
            assert (status == "pending") == (version == 0)
    finally:
        engine.dispose()


def test_groups_over_http_and_group_approval(sqlite_api: Api) -> None:
    """Recommendations (style-colour x lane) list with sizes; a group is approved at once."""
    api = sqlite_api
    r = api.client.get(
        f"/api/v1/runs/{api.run_id}/groups", params={"page_size": 200}, headers=api.viewer
    )
    assert r.status_code == 200, r.text
    body = r.json()
    lines = workflow.list_recommendations(api.engine, api.run_id, page_size=1000).items
    assert sum(g["lines"] for g in body["items"]) == len(lines)
    assert body["total"] == len({x["group_key"] for x in lines})
    g = max(body["items"], key=lambda x: x["lines"])
    members = [x for x in lines if x["group_key"] == g["group_key"]]
    assert len(members) == g["lines"] and sum(x["units"] for x in members) == g["units"]
    r = api.client.post(
        f"/api/v1/runs/{api.run_id}/decisions/bulk",
        json={"action": "approve", "filter": {"group": g["group_key"]}},
        headers=api.planner,
    )
    assert r.status_code == 200 and r.json()["applied"] == g["lines"], r.text
    r = api.client.get(
        "/api/v1/recommendations", params={"group": g["group_key"]}, headers=api.viewer
    )
    assert {x["status"] for x in r.json()["items"]} == {"approved"}
    bad = api.client.get(f"/api/v1/runs/{api.run_id}/groups?sort=drop", headers=api.viewer)
    assert bad.status_code == 422


def test_decisions_on_an_exported_line_are_refused_409(sqlite_api: Api, tmp_path: Path) -> None:
    """Once the warehouse has a line, approve, reject and edit are 409 with the reason; the
    exact repeat of the decision that was exported is still answered idempotently."""
    api, c = sqlite_api, sqlite_api.client
    rec = _first(api)
    path = f"/api/v1/recommendations/{rec['id']}/decision"
    assert c.post(path, json={"action": "approve", "version": 0}, headers=api.planner).is_success
    drop = tmp_path / "drop"
    drop.mkdir()
    workflow.export_to_folder(api.engine, drop, "csv")
    assert workflow.get_recommendation(api.engine, rec["id"])["exported_at"] is not None
    tries = [
        {"action": "reject", "version": 1, "reason": "late"},
        {"action": "edit", "version": 1, "units": 1},
        {"action": "approve", "version": 1},
    ]
    for body in tries:
        r = c.post(path, json=body, headers=api.planner)
        assert r.status_code == 409, body
        assert "was exported at" in r.json()["detail"]
        assert "can no longer be decided" in r.json()["detail"]
        assert r.json()["current"] == {
            "status": "approved",
            "units": rec["units"],
            "version": 1,
            "exported": True,
        }
    again = c.post(path, json={"action": "approve", "version": 0}, headers=api.planner)
    assert again.status_code == 200 and again.json()["applied"] is False
    got = workflow.get_recommendation(api.engine, rec["id"])
    assert (got["status"], got["units"], got["version"]) == ("approved", rec["units"], 1)
    assert _audit_outcomes(api).count(("pia", "conflict")) == 3
