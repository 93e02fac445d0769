"""Lanes planners keep rejecting as unreliable (issue 15): the premium the planner adds to
such a lane, the workflow query that counts the rejections, and the run that records them."""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

import _workflow_fixtures
from _transfer_cases import AS_OF, tiny_tables
from _workflow_fixtures import make_run
from stocktailor import workflow
from stocktailor.api import create_app
from stocktailor.cli import app
from stocktailor.config import Settings, SolverConfig, load_settings
from stocktailor.pipeline import Pipeline, read_output
from stocktailor.pipeline.publish import lane_premiums_for, publish_report
from stocktailor.synth import generate
from stocktailor.transfer_settings import TransfersConfig
from stocktailor.transfers import lane_premium_matrix, plan_network
from stocktailor.workflow.lanes import (
    LANE_REJECTION_SCHEMA,
    RUN_CONFIG_KEY,
    lane_premium_note,
    lane_premiums,
    lane_rejections,
    premiums_for_run,
)
from stocktailor.workflow.models import Recommendation
from stocktailor.workspace import Workspace

with warnings.catch_warnings():
    # starlette suggests the httpx2 package; the httpx-based client works the same here
    warnings.simplefilter("ignore", UserWarning)
    from fastapi.testclient import TestClient

database_url = _workflow_fixtures.database_url
sqlite_url = _workflow_fixtures.sqlite_url

STORES_ONLY = Settings(solver=SolverConfig(joint_warehouse=False))


def _premium(value: float) -> pl.DataFrame:
    return pl.DataFrame({"from_id": ["SEA"], "to_id": ["SMO"], "premium": [value]})


def _lane(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.filter((pl.col("from_id") == "SEA") & (pl.col("to_id") == "SMO"))


def test_a_premium_on_a_lane_keeps_its_lines_only_when_they_clear_it() -> None:
    t, fc = tiny_tables()
    base = plan_network(t, AS_OF, fc, STORES_ONLY).transfers
    lane = _lane(base)
    assert lane.height >= 1  # without a premium the lane carries lines
    # the lane's lines together earn this after their real costs (fixed cost included)
    worth = float(lane["net_benefit"].sum())
    assert worth > 10.0
    above = plan_network(t, AS_OF, fc, STORES_ONLY, lane_premiums=_premium(worth + 5.0))
    assert _lane(above.transfers).height == 0
    below = plan_network(t, AS_OF, fc, STORES_ONLY, lane_premiums=_premium(worth - 5.0))
    kept = _lane(below.transfers)
    assert kept.height == lane.height
    # the premium chose the lanes; the lines still report the lane's real costs
    assert kept["transfer_cost"].sum() == pytest.approx(lane["transfer_cost"].sum())
    assert kept["net_benefit"].sum() == pytest.approx(worth)
    assert below.objective == pytest.approx(base["net_benefit"].sum())


def test_premium_matrix_maps_known_lanes_and_refuses_bad_values() -> None:
    ids = ["A", "B", "C"]
    frame = pl.DataFrame(
        {
            "from_id": ["A", "A", "X", "B"],
            "to_id": ["B", "B", "A", "B"],
            "premium": [2.0, 3.0, 9.0, 4.0],
        }
    )
    m = lane_premium_matrix(ids, frame)
    assert m is not None
    assert m[0, 1] == 5.0  # a pair given twice adds up
    assert m.sum() == 5.0  # unknown store and the diagonal ignored
    assert lane_premium_matrix(ids, frame.head(0)) is None
    with pytest.raises(ValueError, match="row 1: column 'premium'"):
        lane_premium_matrix(ids, frame.with_columns(pl.lit(-1.0).alias("premium")))


# --------------------------------------------------------------------------- the workflow


def _lines_by_lane(engine: Engine, run_id: int) -> dict[tuple[str, str], list[int]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(Recommendation.id, Recommendation.from_id, Recommendation.to_id)
            .where(Recommendation.run_id == run_id, Recommendation.kind == "transfer")
            .order_by(Recommendation.id)
        ).all()
    out: dict[tuple[str, str], list[int]] = {}
    for rid, a, b in rows:
        out.setdefault((a, b), []).append(int(rid))
    return out


def test_three_unreliable_rejections_put_a_premium_on_the_lane(database_url: str) -> None:
    engine = workflow.connect(database_url)
    fr = make_run(80)
    run_id = workflow.publish_run(engine, fr.plan, fr.stores, fr.products)
    lanes = sorted(_lines_by_lane(engine, run_id).items(), key=lambda kv: -len(kv[1]))
    (lane_a, ids_a), (lane_b, ids_b) = lanes[0], lanes[1]
    assert len(ids_a) >= 4 and len(ids_b) >= 2
    reasons = ["Lane unreliable: late twice", "LANE UNRELIABLE", "lane unreliable"]
    for rid, why in zip(ids_a, reasons, strict=False):
        workflow.decide(engine, rid, action="reject", version=0, user="pia", reason=why)
    workflow.decide(engine, ids_a[3], action="approve", version=0, user="pia")
    workflow.decide(engine, ids_b[0], action="reject", version=0, user="pia", reason="no space")
    workflow.decide(
        engine, ids_b[1], action="reject", version=0, user="pia", reason="lane unreliable"
    )
    got = lane_rejections(engine)
    assert got.schema == pl.Schema(LANE_REJECTION_SCHEMA)
    assert got.select("from_id", "to_id", "rejections").rows() == [(*lane_a, 3), (*lane_b, 1)]
    assert got["last_rejected"].null_count() == 0
    cfg = TransfersConfig(rejected_lane_threshold=3, rejected_lane_premium=40.0)
    prem = lane_premiums(got, cfg)
    assert prem.select("from_id", "to_id", "rejections", "premium").rows() == [(*lane_a, 3, 40.0)]
    assert premiums_for_run(engine, cfg).select("from_id", "to_id").rows() == [lane_a]
    # other phrases are the configured reason codes; the window ends at `now`
    assert lane_rejections(engine, reasons=("no space",))["rejections"].to_list() == [1]
    later = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(days=91)
    assert lane_rejections(engine, lookback_days=90, now=later).height == 0
    assert lane_rejections(engine, lookback_days=92, now=later).height == 2
    # approving a rejected line takes its rejection back: the lane falls below the threshold
    workflow.decide(engine, ids_a[0], action="approve", version=1, user="pia")
    assert lane_premiums(lane_rejections(engine), cfg).height == 0
    engine.dispose()


def test_empty_or_unmigrated_database_has_no_rejections(tmp_path: Path) -> None:
    engine = workflow.connect(f"sqlite:///{tmp_path / 'none.db'}")
    assert lane_rejections(engine).height == 0
    engine.dispose()
    with pytest.raises(ValueError, match="missing columns"):
        lane_premiums(pl.DataFrame({"from_id": ["A"]}), TransfersConfig())


def test_the_run_records_the_premium_and_the_dashboard_says_why(sqlite_url: str) -> None:
    app = create_app(Settings(), sqlite_url)
    engine = app.state.engine
    fr = make_run(20)
    lane = fr.plan.transfers.select("from_id", "to_id").row(0)
    record = {"from_id": lane[0], "to_id": lane[1], "rejections": 3, "premium": 40.0, "lines": 2}
    plan = replace(fr.plan, settings={RUN_CONFIG_KEY: [record]})
    run_id = workflow.publish_run(engine, plan, fr.stores, fr.products, positions=fr.positions)
    token = workflow.create_user(engine, "pia", "planner")
    on_lane = _lines_by_lane(engine, run_id)[lane]
    other = next(ids for key, ids in _lines_by_lane(engine, run_id).items() if key != lane)
    with TestClient(app) as client:
        assert (
            client.post("/login", data={"token": token}, follow_redirects=False).status_code == 303
        )
        page = client.get(f"/recommendations/{on_lane[0]}").text
        assert f"Lane {lane[0]}→{lane[1]} rejected 3 times as unreliable; premium" in page
        assert 'data-testid="lane-premium"' not in client.get(f"/recommendations/{other[0]}").text
        overview = client.get(f"/overview?run_id={run_id}").text
        assert "2 lines of this run cleared it" in overview


# --------------------------------------------------------------------------- a run, then the next


CONFIG = """
[season]
horizon_days = 28
[clustering]
n_clusters = 3
[transfers]
rejected_lane_premium = {premium}
"""


def _settings(path: Path, premium: float) -> Settings:
    path.write_text(CONFIG.format(premium=premium), encoding="utf-8")
    return load_settings(path, environ={})


@pytest.mark.slow
def test_the_next_run_drops_the_rejected_lane_unless_its_lines_clear_the_premium(
    tmp_path: Path,
) -> None:
    generate("scale", 0, n_stores=8, n_sku_sizes=60).write(tmp_path / "data")
    settings = _settings(tmp_path / "plain.toml", 50.0)
    ws = Workspace(tmp_path / "ws")
    ws.ingest(tmp_path / "data", settings)
    first = Pipeline(ws, settings).run()
    run1, url = publish_report(ws, first, settings)
    engine = workflow.connect(url)
    lane, ids = max(_lines_by_lane(engine, run1).items(), key=lambda kv: len(kv[1]))
    lines = read_output(first.output("plan"), "transfers.parquet")
    worth = float(
        lines.filter(pl.col("from_id") == lane[0], pl.col("to_id") == lane[1])["net_benefit"].sum()
    )
    assert len(ids) >= 3 and worth > 0
    for rid in ids[:3]:
        workflow.decide(
            engine, rid, action="reject", version=0, user="pia", reason="Lane unreliable"
        )
    # the next run through the command line: a premium above what the lane's lines earn
    big = tmp_path / "big.toml"
    _settings(big, 2 * worth + 1000.0)
    out = CliRunner().invoke(
        app, ["run", "--workspace", str(ws.path), "--publish", "--config", str(big)]
    )
    assert out.exit_code == 0, out.output
    assert f"lane {lane[0]} → {lane[1]}: rejected 3 times as unreliable" in out.output
    run2 = workflow.latest_run_id(engine)
    assert run2 == run1 + 1
    assert lane not in _lines_by_lane(engine, run2)
    note = lane_premium_note(workflow.get_run(engine, run2)["config"], *lane)
    assert note is not None and (note["rejections"], note["lines"]) == (3, 0)
    # a premium the lane's lines clear keeps them; the same premiums reuse the stored plan
    small = _settings(tmp_path / "small.toml", 1.0)
    premiums = lane_premiums_for(ws, small)
    again = Pipeline(ws, small, lane_premiums=premiums).run(first.day)
    kept = read_output(again.output("plan"), "transfers.parquet")
    assert kept.filter(pl.col("from_id") == lane[0], pl.col("to_id") == lane[1]).height > 0
    assert {s.step: s.action for s in again.states}["plan"] == "computed"
    reused = Pipeline(ws, small, lane_premiums=premiums).run(first.day)
    assert {s.step: s.action for s in reused.states}["plan"] == "reused"
    engine.dispose()
