"""The Results page of issue 15: what approved transfers really earned, as measured.

Executions and measurements are inserted directly through the models into published runs;
the read queries, the page, the CSV download and the API route are checked against numbers
worked by hand.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import warnings
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, update

import _workflow_fixtures
from _workflow_fixtures import make_run
from stocktailor import workflow
from stocktailor.config import Settings
from stocktailor.web.figures import results_figure
from stocktailor.workflow.models import (
    Execution,
    MeasuredLine,
    MeasurementBatch,
    Recommendation,
)
from stocktailor.workflow.results import (
    RESULTS_CSV_COLUMNS,
    holdback_of,
    latest_batches,
    run_results,
    summary_interval,
    week_start,
)

with warnings.catch_warnings():
    # starlette suggests the httpx2 package; the httpx-based client works the same here
    warnings.simplefilter("ignore", UserWarning)
    from fastapi.testclient import TestClient

from stocktailor.api import create_app

database_url = _workflow_fixtures.database_url

MON = dt.date(2025, 5, 5)  # a Monday
NOW = dt.datetime(2025, 6, 1, 12, 0)


@dataclass(frozen=True)
class Measured:
    """Two published runs: ``run_id`` measured twice (the second batch counts), ``other``
    measured once, ``plain`` never; ``ids`` the lines of ``run_id`` used."""

    run_id: int
    other: int
    plain: int
    ids: list[int]
    other_id: int


def _lines(engine: Engine, run_id: int, n: int) -> list[int]:
    with engine.connect() as conn:
        return list(
            conn.scalars(
                select(Recommendation.id)
                .where(Recommendation.run_id == run_id, Recommendation.kind == "transfer")
                .order_by(Recommendation.line_no)
                .limit(n)
            )
        )


def _set(engine: Engine, rec_id: int, **values: Any) -> None:
    with engine.begin() as conn:
        conn.execute(update(Recommendation).where(Recommendation.id == rec_id).values(**values))


def _execution(
    rec_id: int, run_id: int, status: str, shipped: int, received: int
) -> dict[str, Any]:
    return {
        "recommendation_id": rec_id,
        "run_id": run_id,
        "status": status,
        "shipped_units": shipped,
        "received_units": received,
        "ship_date": MON,
        "receive_date": None if status == "in_transit" else MON + dt.timedelta(days=2),
        "source_file": "wms.csv",
        "imported_at": NOW,
        "imported_by": "ana",
        "version": 0,
    }


def _batch(
    engine: Engine,
    run_id: int,
    until: dt.date,
    summary: dict[str, Any],
    lines: list[tuple[int, int, float, float, float, float]],
) -> int:
    """A batch and its lines ``(recommendation id, units, estimated, measured, low, high)``."""
    with engine.begin() as conn:
        batch_id = conn.execute(
            insert(MeasurementBatch)
            .values(
                run_id=run_id,
                until=until,
                method="ledger",
                level=0.9,
                created_at=NOW,
                created_by="ana",
                summary=summary,
            )
            .returning(MeasurementBatch.id)
        ).scalar_one()
        for rec, units, est, meas, low, high in lines:
            conn.execute(
                insert(MeasuredLine).values(
                    batch_id=batch_id,
                    recommendation_id=rec,
                    units=units,
                    estimated=est,
                    measured=meas,
                    measured_low=low,
                    measured_high=high,
                )
            )
    return int(batch_id)


def _measured(engine: Engine) -> Measured:
    """Run A: line 1 (tops into cluster 0 "urban", ships Monday 5 May) estimated 100,
    measured 80 [60, 100]; line 2 (shoes into cluster 1 "suburban", ships Sunday 18 May)
    estimated 50, measured 70 [40, 90]; line 3 approved, not reported; line 4 failed.
    Run B: one line estimated 20, measured 10 [0, 25], run interval [2, 18] in its summary."""
    fr = make_run(12)
    plain = workflow.publish_run(engine, fr.plan, fr.stores, fr.products)
    run_id = workflow.publish_run(engine, fr.plan, fr.stores, fr.products)
    other = workflow.publish_run(engine, fr.plan, fr.stores, fr.products)
    ids = _lines(engine, run_id, 4)
    (other_id,) = _lines(engine, other, 1)
    for rec, cat, cluster, ship in (
        (ids[0], "tops", "0", MON),
        (ids[1], "shoes", "1", MON + dt.timedelta(days=13)),
        (ids[2], "tops", "0", MON),
        (ids[3], "tops", "0", MON),
        (other_id, "tops", "2", MON),
    ):
        _set(
            engine,
            rec,
            status="approved",
            category=cat,
            to_cluster=cluster,
            ship_date=ship,
            units=5,
        )
    with engine.begin() as conn:
        conn.execute(
            insert(Execution),
            [
                _execution(ids[0], run_id, "received", 5, 5),
                _execution(ids[1], run_id, "partial", 5, 3),
                _execution(ids[3], run_id, "failed", 0, 0),
                _execution(other_id, other, "in_transit", 5, 0),
            ],
        )
    # an older batch of run A (fewer days): must be ignored
    _batch(engine, run_id, MON + dt.timedelta(days=10), {}, [(ids[0], 5, 100.0, 1.0, 0.0, 2.0)])
    holdback = {
        "holdback": {"executed": 2, "held_back": 1, "total": 120.0, "low": -30, "high": 270}
    }
    _batch(
        engine,
        run_id,
        MON + dt.timedelta(days=20),
        holdback,
        [(ids[0], 5, 100.0, 80.0, 60.0, 100.0), (ids[1], 3, 50.0, 70.0, 40.0, 90.0)],
    )
    _batch(
        engine,
        other,
        MON + dt.timedelta(days=20),
        {"measured_low": 2.0, "measured_high": 18.0},
        [(other_id, 5, 20.0, 10.0, 0.0, 25.0)],
    )
    return Measured(run_id, other, plain, ids, other_id)


# --------------------------------------------------------------------------- read queries


def test_week_start_is_the_monday() -> None:
    assert week_start(MON) == MON
    assert week_start(MON + dt.timedelta(days=6)) == MON
    assert week_start(MON + dt.timedelta(days=7)) == MON + dt.timedelta(days=7)


def test_summary_keys_are_optional() -> None:
    assert summary_interval({}) is None
    assert summary_interval(None) is None
    assert summary_interval({"measured_low": 1.0}) is None  # one bound is not an interval
    assert summary_interval({"measured_low": 5.0, "measured_high": 1.0}) is None
    assert summary_interval({"low": "1", "high": 2}) is None  # text is not a number
    assert summary_interval({"measured": 3, "measured_low": 1, "measured_high": 4}) == (3, 1, 4)
    assert summary_interval({"totals": {"total": 3.0, "low": 1.0, "high": 4.0}}) == (3, 1, 4)
    assert holdback_of({}) is None
    assert holdback_of({"holdback": {"executed": 4.0, "total": float("nan")}}) == {
        "executed": 4,
        "held_back": None,
        "effect_per_line": None,
        "total": None,
        "low": None,
        "high": None,
        "sd": None,
        "ledger_total": None,
    }


def test_run_results_hand_worked(database_url: str) -> None:
    engine = workflow.connect(database_url)
    m = _measured(engine)
    res = run_results(engine, m.run_id)
    assert res["measured"] is True
    assert [b["until"] for b in res["batches"]] == [MON + dt.timedelta(days=20)]
    t = res["total"]
    assert (t["lines"], t["units"], t["estimated"], t["measured"]) == (2, 8, 150.0, 150.0)
    assert (t["measured_low"], t["measured_high"], t["interval"]) == (100.0, 190.0, "lines")
    assert t["ratio"] == pytest.approx(1.0)
    assert t["level"] == 0.9
    weeks = [(w["week_start"], w["estimated"], w["measured"], w["lines"]) for w in res["weeks"]]
    # 5 May and the week of Monday 12 May (line 2 ships Sunday 18 May)
    assert weeks == [(MON, 100.0, 80.0, 1), (MON + dt.timedelta(days=7), 50.0, 70.0, 1)]
    cal = {(c["category"], c["cluster_name"]): c for c in res["calibration"]}
    assert set(cal) == {("tops", "urban"), ("shoes", "suburban")}
    assert cal["tops", "urban"]["ratio"] == pytest.approx(0.8)
    assert cal["shoes", "suburban"]["ratio"] == pytest.approx(1.4)
    assert cal["shoes", "suburban"]["lines"] == 1
    ex = {
        e["status"]: (e["lines"], e["units"], e["shipped_units"], e["received_units"])
        for e in res["executions"]
    }
    assert ex == {
        "received": (1, 5, 5, 5),
        "partial": (1, 5, 5, 3),
        "in_transit": (0, 0, 0, 0),
        "failed": (1, 5, 0, 0),
        "not_reported": (1, 5, 0, 0),
    }
    (hb,) = res["holdback"]
    assert (hb["executed"], hb["held_back"], hb["total"], hb["low"], hb["high"]) == (
        2,
        1,
        120.0,
        -30.0,
        270.0,
    )
    assert hb["ledger_total"] == 150.0  # not in the summary: the run's measured total

    b = run_results(engine, m.other)["total"]
    # the summary's own run interval replaces the line sum [0, 25]
    assert (b["measured"], b["measured_low"], b["measured_high"], b["interval"]) == (
        10.0,
        2.0,
        18.0,
        "batch",
    )
    every = run_results(engine)
    assert [r["run_id"] for r in every["runs"]] == [m.run_id, m.other]
    a = every["total"]
    assert (a["estimated"], a["measured"], a["interval"]) == (170.0, 160.0, "runs")
    assert (a["measured_low"], a["measured_high"]) == (102.0, 208.0)
    assert {e["status"]: e["lines"] for e in every["executions"]}["in_transit"] == 1
    assert [b["run_id"] for b in latest_batches(engine)] == [m.run_id, m.other]

    empty = run_results(engine, m.plain)
    assert empty["measured"] is False
    assert (empty["weeks"], empty["calibration"], empty["holdback"]) == ([], [], [])
    assert empty["total"]["lines"] == 0
    with pytest.raises(workflow.NotFound):
        run_results(engine, 999)


def test_figure_has_the_interval_as_error_bars() -> None:
    weeks = [
        {
            "week_start": MON,
            "estimated": 100.0,
            "measured": 80.0,
            "measured_low": 60.0,
            "measured_high": 100.0,
        },
        {
            "week_start": None,
            "estimated": 5.0,
            "measured": 4.0,
            "measured_low": 1.0,
            "measured_high": 9.0,
        },
    ]
    fig = results_figure(weeks, 0.9, "EUR")
    est, meas = fig["data"]
    assert est["x"] == ["2025-05-05", "no ship date"] and est["y"] == [100.0, 5.0]
    assert meas["error_y"]["array"] == [20.0, 5.0]
    assert meas["error_y"]["arrayminus"] == [20.0, 3.0]
    assert "90%" in meas["name"]
    assert "EUR" in fig["layout"]["yaxis"]["title"]["text"]


# --------------------------------------------------------------------------- page, CSV, API


def test_page_csv_and_api(database_url: str) -> None:
    app = create_app(Settings(), database_url)
    engine = app.state.engine
    m = _measured(engine)
    viewer = workflow.create_user(engine, "vic", "viewer")
    with TestClient(app) as client:
        # signed out: the pages send to sign-in, the API answers 401
        assert (
            client.get(f"/results?run_id={m.run_id}", follow_redirects=False).headers["location"]
            == "/login"
        )
        assert client.get("/results.csv", follow_redirects=False).status_code == 303
        assert client.get(f"/api/v1/runs/{m.run_id}/results").status_code == 401

        auth = {"Authorization": f"Bearer {viewer}"}
        assert client.get("/api/v1/runs/999/results", headers=auth).status_code == 404
        got = client.get(f"/api/v1/runs/{m.run_id}/results", headers=auth).json()
        assert got["measured"] is True
        assert (got["total"]["estimated"], got["total"]["measured"]) == (150.0, 150.0)
        assert got["total"]["interval"] == "lines"
        ratios = {c["category"]: c["ratio"] for c in got["calibration"]}
        assert ratios == {"tops": pytest.approx(0.8), "shoes": pytest.approx(1.4)}
        assert [w["week_start"] for w in got["weeks"]] == ["2025-05-05", "2025-05-12"]
        assert got["holdback"][0]["total"] == 120.0
        assert got["batches"][0]["summary"]["holdback"]["held_back"] == 1
        plain = client.get(f"/api/v1/runs/{m.plain}/results", headers=auth).json()
        assert plain["measured"] is False and plain["weeks"] == []

        assert client.post("/login", data={"token": viewer}, follow_redirects=False).is_redirect
        html = client.get(f"/results?run={m.run_id}").text
        assert f"run #{m.run_id}" in html
        assert 'data-testid="results-chart"' in html
        assert "$150.00" in html  # estimated and measured totals
        assert "$100.00 to $190.00" in html  # the line-interval sum...
        assert "sum of the lines' intervals: conservative" in html  # ...labelled as such
        assert 'data-testid="calibration-ratio">0.80<' in html
        assert 'data-testid="calibration-ratio">1.40<' in html
        assert "$120.00" in html and 'data-testid="results-holdback"' in html
        assert 'data-testid="execution-not_reported"' in html
        assert 'data-testid="nav-results"' in html
        # the other run's summary carries the run interval: "the measurement's own interval"
        other = client.get(f"/results?run_id={m.other}").text
        assert "$2.00 to $18.00" in other and "own interval of the run total" in other
        assert 'data-testid="results-holdback"' not in other
        every = client.get("/results?run_id=all").text
        assert "Results · all runs" in every and every.count('data-testid="run-row"') == 2
        assert "sum of the runs' intervals" in every

        empty = client.get(f"/results?run_id={m.plain}").text
        assert 'data-testid="results-empty"' in empty
        assert "stocktailor executions import FILE" in empty
        assert f"stocktailor measure --workspace WS --run {m.plain} --until DATE" in empty
        assert 'data-testid="results-chart"' not in empty
        assert client.get("/results?run_id=999").status_code == 404
        assert client.get("/results?run_id=abc").status_code == 422
        assert client.get("/results.csv?run_id=999").status_code == 404

        r = client.get(f"/results.csv?run_id={m.run_id}")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        assert f"stocktailor-results-run-{m.run_id}.csv" in r.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert tuple(rows[0]) == RESULTS_CSV_COLUMNS
        by_table: dict[str, list[dict[str, str]]] = {}
        for row in rows:
            by_table.setdefault(row["table"], []).append(row)
        (total,) = by_table["total"]
        assert (total["estimated"], total["measured"], total["interval"]) == (
            "150.0",
            "150.0",
            "lines",
        )
        assert (total["measured_low"], total["measured_high"], total["currency"]) == (
            "100.0",
            "190.0",
            "USD",
        )
        assert [w["week_start"] for w in by_table["week"]] == ["2025-05-05", "2025-05-12"]
        assert {c["category"]: c["ratio"] for c in by_table["calibration"]} == {
            "tops": "0.8",
            "shoes": "1.4",
        }
        assert [e["status"] for e in by_table["execution"]] == [
            "received",
            "partial",
            "in_transit",
            "failed",
            "not_reported",
        ]
        (hb,) = by_table["holdback"]
        assert (hb["lines"], hb["held_back"], hb["measured"]) == ("2", "1", "120.0")
        allcsv = client.get("/results.csv?run_id=all")
        assert 'filename="stocktailor-results.csv"' in allcsv.headers["content-disposition"]
        assert (
            len([r for r in csv.DictReader(io.StringIO(allcsv.text)) if r["table"] == "run"]) == 2
        )


def test_no_published_run_shows_the_empty_page(database_url: str) -> None:
    app = create_app(Settings(), database_url)
    planner = workflow.create_user(app.state.engine, "pia", "planner")
    with TestClient(app) as client:
        assert client.post("/login", data={"token": planner}, follow_redirects=False).is_redirect
        assert "No published run yet" in client.get("/results").text
        assert client.get("/results.csv").status_code == 404
        every = client.get("/results?run_id=all").text
        assert 'data-testid="results-empty"' in every and "--run N" in every
