"""The measurement loop on a synthetic network through the command line (slow):

run --publish, approve, export, the warehouse's file back (executions import), the days after
appended, measure, then a calibrated run --publish that reads the measurement back.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from stocktailor import workflow
from stocktailor.cli import app
from stocktailor.workflow.models import PlanRun

pytestmark = pytest.mark.slow

runner = CliRunner()

CONFIG = """
[season]
horizon_days = 28
[clustering]
n_clusters = 3
[measure]
replicates = 50
"""


def _cli(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_publish_execute_measure_and_calibrate(tmp_path: Path) -> None:
    config = tmp_path / "settings.toml"
    config.write_text(CONFIG)
    data = tmp_path / "data"
    gen = ["generate", "--scenario", "scale", "--stores", "12", "--sku-sizes", "200"]
    _cli(*gen, "--daily", "5", "--out", str(data))
    ws = tmp_path / "ws"
    common = ["--workspace", str(ws), "--config", str(config)]
    _cli("ingest", str(data), *common)
    assert "published run 1" in _cli("run", *common, "--publish")
    url = f"sqlite:///{ws.absolute()}/stocktailor.db"
    engine = workflow.connect(url)
    try:
        done = workflow.bulk_decide(
            engine, 1, workflow.RecFilter(kind="transfer"), action="approve", user="ana"
        )
        assert done.applied > 0
        exported = pl.read_csv(workflow.export_approved(engine, 1, "csv"), try_parse_dates=True)
        with engine.connect() as conn:
            as_of = conn.execute(select(PlanRun.as_of).where(PlanRun.id == 1)).scalar_one()
    finally:
        engine.dispose()
    # every other line arrived on its ship day + 1, the rest is still in transit
    arrived = pl.int_range(pl.len()) % 2 == 0
    wms = exported.select(
        "reference",
        pl.col("units").alias("shipped_units"),
        pl.when(arrived).then(pl.col("units")).otherwise(0).alias("received_units"),
        "ship_date",
        pl.when(arrived)
        .then(pl.col("ship_date") + dt.timedelta(days=1))
        .otherwise(None)
        .alias("receive_date"),
    )
    wms.write_parquet(tmp_path / "wms.parquet")
    for inc in sorted((data / "increments").iterdir()):
        _cli("ingest", str(inc), "--append", *common)
    text = _cli("executions", "import", str(tmp_path / "wms.parquet"), *common)
    assert f"imported {wms.height:,} executions" in text
    until = as_of + dt.timedelta(days=5)
    out = tmp_path / "results.csv"
    text = _cli("measure", *common, "--run", "1", "--until", str(until), "--out", str(out))
    assert "stored measurement batch 1" in text
    res = pl.read_csv(out)
    assert set(res["level"].unique()) == {"line", "style_lane", "run"}
    assert res.filter(pl.col("level") == "line").height == wms.height
    run = res.filter(pl.col("level") == "run").row(0, named=True)
    assert run["lines"] == wms.height
    assert run["units"] == int(wms["shipped_units"].sum())
    assert math.isfinite(run["measured"])
    assert run["measured_low"] <= run["measured"] <= run["measured_high"]
    # the style x lane rows add up to the run in lines, units and estimate (not in intervals)
    lanes = res.filter(pl.col("level") == "style_lane")
    assert int(lanes["lines"].sum()) == run["lines"]
    assert float(lanes["estimated"].sum()) == pytest.approx(run["estimated"])
    # a calibrated run reads the measurement back: 5 days are not the season, so it is not
    # used (the estimates count the margin to the season end)
    config.write_text(CONFIG + "calibrate = true\ncalibration_strength = 5.0\n")
    text = _cli("run", *common, "--publish")
    assert (
        f"calibration: none of {wms.height:,} measured lines was measured to its season end yet"
        in text
    )
    assert "published run 2" in text
