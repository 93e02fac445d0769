"""The daily loop through the command line: generate --daily, ingest --append, run, status."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from _datafolder import snapshot
from stocktailor.cli import app
from stocktailor.pipeline import StoredOutput

pytestmark = pytest.mark.slow

runner = CliRunner()

CONFIG = """
[season]
horizon_days = 28
[clustering]
n_clusters = 3
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("cli")
    config = root / "settings.toml"
    config.write_text(CONFIG)
    data = root / "data"
    args = ["generate", "--scenario", "scale", "--stores", "12", "--sku-sizes", "200"]
    result = runner.invoke(app, [*args, "--daily", "2", "--out", str(data)])
    assert result.exit_code == 0, result.output
    ws = root / "ws"
    result = runner.invoke(
        app, ["ingest", str(data), "--workspace", str(ws), "--config", str(config)]
    )
    assert result.exit_code == 0, result.output
    return data, ws, config


def _cli(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_generate_daily_writes_history_and_increments(setup: tuple[Path, Path, Path]) -> None:
    data, _, _ = setup
    days = sorted(p.name for p in (data / "increments").iterdir())
    assert days == ["2026-04-18", "2026-04-19"]
    sales = pl.read_parquet(data / "sales.parquet")
    assert sales["date"].max() == dt.date(2026, 4, 17)
    assert pl.read_parquet(data / "increments" / "2026-04-19" / "sales.parquet")[
        "date"
    ].unique().to_list() == [dt.date(2026, 4, 19)]


def test_run_append_run_status_and_the_outputs(
    setup: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    data, ws, config = setup
    common = ["--workspace", str(ws), "--config", str(config)]
    first = _cli("run", *common)
    assert "computed clusters, demand, forecast, plan" in first
    # progress: plain lines when the output is not a terminal
    assert "forecasting demand (fit, then parts): started" in first
    assert "planning allocation and transfers: " in first
    status = _cli("status", *common)
    assert "everything for 2026-04-17 is stored" in status
    inc = data / "increments" / "2026-04-18"
    appended = _cli("ingest", str(inc), "--append", *common)
    assert "appended" in appended
    before = snapshot(ws)
    again = _cli("ingest", str(inc), "--append", *common)
    assert "nothing new in" in again
    assert snapshot(ws) == before
    stale = _cli("status", *common)
    assert "stale: forecast, plan" in stale
    second = _cli("run", *common, "--publish")
    assert "as of 2026-04-18 (models from the refit day 2026-04-13): computed forecast," in second
    assert "reused clusters, demand" in second
    assert f"published run 1 to {ws.absolute()}/stocktailor.db" in second
    # the per-output commands reuse what run stored
    out = tmp_path / "f.parquet"
    text = _cli("forecast", *common, "--out", str(out))
    assert "computed nothing" in text
    assert pl.read_parquet(out).height > 0
    lines = _cli("rebalance", *common, "--out", str(tmp_path / "t.csv"))
    assert "computed nothing" in lines
    assert pl.read_csv(tmp_path / "t.csv").height > 0
    _cli("allocate", *common, "--out", str(tmp_path / "a.csv"))
    assert pl.read_csv(tmp_path / "a.csv").height > 0


def test_a_contradicting_append_is_one_line(setup: tuple[Path, Path, Path], tmp_path: Path) -> None:
    data, ws, config = setup
    sales = pl.read_parquet(data / "sales.parquet").head(1).with_columns(pl.col("units") + 1)
    folder = tmp_path / "bad"
    folder.mkdir()
    sales.write_parquet(folder / "sales.parquet")
    result = runner.invoke(
        app, ["ingest", str(folder), "--append", "--workspace", str(ws), "--config", str(config)]
    )
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: sales.parquet, row 1, column 'units': key (date=")


def test_forecast_writes_the_validation_beside_it(tmp_path: Path) -> None:
    from stocktailor.cli.plan import write_validation

    folder = tmp_path / "demand"
    folder.mkdir()
    pl.DataFrame(
        {
            "group": ["a", "a", "b", "b"],
            "candidate": ["lgbm", "seasonal_naive", "lgbm", "seasonal_naive"],
            "holdout_wape": [0.3, 0.4, 0.6, 0.5],
            "holdout_bias": [0.01, -0.1, 0.2, 0.0],
            "chosen": [True, False, False, True],
        }
    ).write_parquet(folder / "validation.parquet")
    demand = StoredOutput("demand", dt.date(2026, 4, 13), "k", folder, {})
    write_validation(demand, tmp_path / "F.parquet")
    got = pl.read_csv(tmp_path / "F.validation.csv")
    assert got.height == 4
    assert got.filter(pl.col("chosen"))["candidate"].to_list() == ["lgbm", "seasonal_naive"]
