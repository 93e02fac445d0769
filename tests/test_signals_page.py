"""Post signals of a run (issue 16): the rising series computed at publish, the lines they
touch, the API route, the Signals page and the sentence on a line's detail page."""

from __future__ import annotations

import dataclasses
import datetime as dt
import warnings
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import select

import _workflow_fixtures
from _datafolder import TINY, write_data_folder
from _workflow_fixtures import make_run
from stocktailor import workflow
from stocktailor.config import PostsConfig, Settings
from stocktailor.contract import Tables
from stocktailor.posts import rising_signals
from stocktailor.workflow.models import Recommendation
from stocktailor.workflow.signals import (
    line_signal,
    run_signals,
    scope_stores,
    signal_rows,
    styles_of,
)
from stocktailor.workspace import read_data_folder

with warnings.catch_warnings():
    # starlette suggests the httpx2 package; the httpx-based client works the same here
    warnings.simplefilter("ignore", UserWarning)
    from fastapi.testclient import TestClient

from stocktailor.api import create_app

database_url = _workflow_fixtures.database_url

D0 = dt.date(2024, 3, 1)
AS_OF = D0 + dt.timedelta(days=20)


def _posts() -> str:
    """Boston talks about bright sneakers once a day for two weeks, four times a day after."""
    lines = ["date,scope,scope_id,source,text,engagement,author"]
    for d in range(21):
        day = D0 + dt.timedelta(days=d)
        for k in range(1 if d < 14 else 4):
            lines.append(f"{day},city,Boston,social,bright sneakers {k},,u{k}")
    return "\n".join(lines) + "\n"


def _tables(tmp_path: Path, posts: str | None) -> Tables:
    tables = dict(TINY)
    if posts is None:
        del tables["posts"]
    else:
        tables["posts"] = posts
    return read_data_folder(write_data_folder(tmp_path / "data", tables=tables))


# --------------------------------------------------------------------------- at publish


def test_rising_series_and_the_lines_they_touch(tmp_path: Path, no_network: None) -> None:
    t = _tables(tmp_path, _posts())
    top = rising_signals(t, AS_OF, PostsConfig(method="keyword"))
    assert top is not None and top.height == 1
    row = top.row(0, named=True)
    # unit weights (social, no engagement); index = trailing 7-day mean + 1 post/day:
    # as of day 20 the mean of days 14..20 is 4 -> 5; ten days before (day 10) 1 -> 2
    assert (row["scope"], row["scope_id"], row["attribute"], row["value"]) == (
        "city",
        "Boston",
        "tags",
        "bright-sneaker",
    )
    assert row["index"] == pytest.approx(5.0)
    assert row["change"] == pytest.approx(2.5)
    assert row["novelty"] == pytest.approx(2.5)  # baseline: index 2 on days 0..13
    assert row["posts"] == 3 * 1 + 7 * 4  # days 11..20
    assert row["text"] == "posts about bright sneaker in Boston up 2.5x in 10 days"
    lines = pl.DataFrame(
        {
            "line_no": [0, 1, 2, 3],
            "style": ["SH1", "SH1", "T1", "SH1"],
            "to_id": ["S2", "S1", "S2", "S2"],  # S2 is in Boston, S1 in Brooklyn
            "units": [3, 7, 4, 2],
            "net_benefit": [50.0, 90.0, 70.0, 80.0],
        }
    )
    rows = signal_rows(top, lines, t.products, t.stores)
    assert rows is not None and len(rows) == 1
    got = rows[0]
    assert (got["styles"], got["stores"]) == (["SH1"], ["S2"])
    assert (got["n_lines"], got["units"], got["line_nos"]) == (2, 5, [3, 0])
    assert line_signal(rows, "SH1", "S2") == row["text"]
    assert line_signal(rows, "SH1", "S1") is None
    assert line_signal(rows, "T1", "S2") is None


def test_falling_series_are_not_shown_and_no_posts_is_none(tmp_path: Path) -> None:
    falling = "\n".join(
        ["date,scope,scope_id,source,text,engagement,author"]
        + [
            f"{D0 + dt.timedelta(days=d)},city,Boston,social,bright sneakers {k},,u{k}"
            for d in range(21)
            for k in range(4 if d < 14 else 1)
        ]
    )
    t = _tables(tmp_path / "a", falling + "\n")
    empty = rising_signals(t, AS_OF, PostsConfig(method="keyword"))
    assert empty is not None and empty.is_empty()
    assert signal_rows(empty, None, t.products, t.stores) == []
    none = _tables(tmp_path / "b", None)
    assert none.posts is None
    assert rising_signals(none, AS_OF, PostsConfig()) is None
    assert rising_signals(t, AS_OF, PostsConfig(enabled=False)) is None
    assert signal_rows(None, None, none.products, none.stores) is None


def test_styles_and_stores_of_a_series(tmp_path: Path) -> None:
    t = _tables(tmp_path, None)
    assert styles_of(t.products, "tags", "basic") == ["T1"]
    assert styles_of(t.products, "color", "black") == ["SH1"]
    assert styles_of(t.products, "category", "tops") == ["T1"]
    assert styles_of(t.products, "season", "spring") == []
    assert scope_stores(t.stores, "region", "MA") == ["S2"]
    assert scope_stores(t.stores, "city", "Brooklyn") == ["S1"]
    assert scope_stores(t.stores, "store", "S1") == ["S1"]
    assert scope_stores(t.stores, "all", None) is None


def test_the_daily_pipeline_publishes_the_signals_offline(tmp_path: Path, no_network: None) -> None:
    from stocktailor.pipeline import Pipeline
    from stocktailor.pipeline.publish import publish_report
    from stocktailor.workspace import Workspace

    tables = dict(TINY) | {"posts": _posts()}
    settings = Settings()
    ws = Workspace(tmp_path / "ws")
    ws.ingest(write_data_folder(tmp_path / "data", tables=tables), settings)
    report = Pipeline(ws, settings).run(AS_OF)
    run_id, url = publish_report(ws, report, settings)
    engine = workflow.connect(url)
    try:
        stored = workflow.get_run(engine, run_id)["signals"]
    finally:
        engine.dispose()
    assert [s["text"] for s in stored] == [
        "posts about bright sneaker in Boston up 2.5x in 10 days"
    ]
    assert (stored[0]["styles"], stored[0]["stores"]) == (["SH1"], ["S2"])


# --------------------------------------------------------------------------- API and pages


def _berlin_tops() -> pl.DataFrame:
    """One rising series: the category ``tops`` in Berlin (stores S01 and S04)."""
    return pl.DataFrame(
        {
            "scope": ["city"],
            "scope_id": ["Berlin"],
            "attribute": ["category"],
            "value": ["tops"],
            "index": [6.0],
            "change": [3.1],
            "novelty": [2.0],
            "posts": [40],
            "text": ["posts about tops in Berlin up 3.1x in 10 days"],
        }
    )


def test_api_and_pages_show_the_stored_signals(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(Settings(), database_url)
    engine = app.state.engine
    fr = make_run(60)
    plain = workflow.publish_run(engine, fr.plan, fr.stores, fr.products)
    plan = dataclasses.replace(fr.plan, signals=_berlin_tops())
    run_id = workflow.publish_run(engine, plan, fr.stores, fr.products, positions=fr.positions)
    viewer = workflow.create_user(engine, "vic", "viewer")
    with engine.connect() as conn:
        expected = conn.execute(
            select(Recommendation.id)
            .where(
                Recommendation.run_id == run_id,
                Recommendation.style.in_(("ST0", "ST2")),  # the tops
                Recommendation.to_id.in_(("S01", "S04")),  # Berlin
            )
            .order_by(Recommendation.net_benefit.desc(), Recommendation.line_no)
        ).all()
        other = conn.execute(
            select(Recommendation.id).where(
                Recommendation.run_id == run_id, Recommendation.to_id == "S02"
            )
        ).first()
    assert 0 < len(expected) < 60 and other is not None
    with TestClient(app) as client:
        auth = {"Authorization": f"Bearer {viewer}"}
        assert client.get(f"/api/v1/runs/{run_id}/signals").status_code == 401
        assert client.get("/api/v1/runs/999/signals", headers=auth).status_code == 404
        got = client.get(f"/api/v1/runs/{run_id}/signals", headers=auth).json()
        assert got["has_posts"] is True and len(got["signals"]) == 1
        s = got["signals"][0]
        assert s["text"] == "posts about tops in Berlin up 3.1x in 10 days"
        assert (s["styles"], s["stores"]) == (["ST0", "ST2"], ["S01", "S04"])
        assert s["n_lines"] == len(expected)
        assert [r["id"] for r in s["lines"]] == [r.id for r in expected]
        assert run_signals(engine, run_id)["signals"][0]["n_lines"] == len(expected)
        none = client.get(f"/api/v1/runs/{plain}/signals", headers=auth).json()
        assert (none["has_posts"], none["signals"]) == (False, [])

        assert client.post("/login", data={"token": viewer}, follow_redirects=False).is_redirect
        html = client.get(f"/signals?run_id={run_id}").text
        assert "posts about tops in Berlin up 3.1x in 10 days" in html
        assert f'href="/recommendations/{expected[0].id}"' in html
        assert "no posts table" in client.get(f"/signals?run_id={plain}").text
        detail = client.get(f"/recommendations/{expected[0].id}").text
        assert "Posts about tops in Berlin up 3.1x in 10 days" in detail
        assert 'data-testid="post-signal"' not in client.get(f"/recommendations/{other.id}").text
