"""The same plan on one process or a Dask cluster: results must be identical."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from stocktailor.config import Settings
from stocktailor.engine import DaskEngine, LocalEngine
from stocktailor.synth import SyntheticNetwork, generate

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dask_engine() -> Iterator[DaskEngine]:
    with DaskEngine(n_workers=2, threads_per_worker=1) as engine:
        yield engine


@pytest.fixture(scope="module")
def network() -> SyntheticNetwork:
    return generate("seed-stories", 1)


@pytest.fixture(scope="module")
def local_forecast(network: SyntheticNetwork) -> pl.DataFrame:
    from stocktailor.demand import forecast

    return forecast(network.tables, network.as_of, Settings(), engine=LocalEngine())


def test_forecast_on_dask_equals_in_process(
    network: SyntheticNetwork, local_forecast: pl.DataFrame, dask_engine: DaskEngine
) -> None:
    from stocktailor.demand import forecast

    remote = forecast(network.tables, network.as_of, Settings(), engine=dask_engine)
    assert local_forecast.height > 0
    assert_frame_equal(remote, local_forecast)


def test_optimiser_on_dask_equals_in_process(
    network: SyntheticNetwork, local_forecast: pl.DataFrame, dask_engine: DaskEngine
) -> None:
    from stocktailor.transfers import plan_transfers

    local = plan_transfers(
        network.tables, network.as_of, local_forecast, Settings(), engine=LocalEngine()
    )
    remote = plan_transfers(
        network.tables, network.as_of, local_forecast, Settings(), engine=dask_engine
    )
    assert local.height > 0
    assert_frame_equal(remote, local)


def test_forecast_parts_written_and_scanned_equal_the_forecast(
    network: SyntheticNetwork,
    local_forecast: pl.DataFrame,
    dask_engine: DaskEngine,
    tmp_path: Path,
) -> None:
    from stocktailor.demand import forecast_parts
    from stocktailor.workspace import write_parts

    settings = Settings.model_validate({"engine": {"partitions": 3}})
    for name, engine in (("local", LocalEngine()), ("dask", dask_engine)):
        parts = forecast_parts(network.tables, network.as_of, settings, engine=engine)
        scan = write_parts(parts, tmp_path / name)
        assert len(list((tmp_path / name).glob("part-*.parquet"))) == 3
        got = scan.collect().sort("store_id", "sku", "week_start")
        assert_frame_equal(got, local_forecast)


def test_optimiser_reads_a_scanned_forecast_like_a_frame(
    network: SyntheticNetwork, local_forecast: pl.DataFrame, tmp_path: Path
) -> None:
    from stocktailor.transfers import plan_transfers

    local_forecast.write_parquet(tmp_path / "forecast.parquet")
    scan = pl.scan_parquet(tmp_path / "forecast.parquet")
    eager = plan_transfers(network.tables, network.as_of, local_forecast, Settings())
    lazy = plan_transfers(network.tables, network.as_of, scan, Settings())
    assert eager.height > 0
    assert_frame_equal(lazy, eager)


def test_prediction_copy_ships_no_history_and_predicts_the_same(
    network: SyntheticNetwork,
) -> None:
    import pickle

    from stocktailor.demand import DemandModel

    model = DemandModel.from_config(Settings().demand).fit(network.tables, network.as_of)
    slim = model.for_prediction()
    assert slim.history_.tables.sales.height == 0
    assert slim.history_.tables.inventory.height == 0
    assert slim.history_.sku_weekly.height == 0
    assert model.history_.tables.sales.height > 0  # the fitted model keeps its history
    assert_frame_equal(slim.predict(), model.predict())
    assert len(pickle.dumps(slim)) < len(pickle.dumps(model)) / 2


def test_short_backtest_on_dask_equals_in_process(dask_engine: DaskEngine, tmp_path: Path) -> None:
    from stocktailor.simulate.backtest import backtest

    kwargs = {"n_stores": 12, "n_sku_sizes": 150}
    local = backtest(
        "scale",
        [0, 1],
        ["none", "rule"],
        Settings(),
        tmp_path / "local",
        engine=LocalEngine(),
        **kwargs,
    )
    remote = backtest(
        "scale",
        [0, 1],
        ["none", "rule"],
        Settings(),
        tmp_path / "dask",
        engine=dask_engine,
        **kwargs,
    )
    assert_frame_equal(remote.kpis.summary, local.kpis.summary)


def test_pipeline_run_on_dask_equals_in_process(dask_engine: DaskEngine, tmp_path: Path) -> None:
    """`stocktailor run` on a Dask LocalCluster: the same stored outputs, a sensed day too."""
    from stocktailor.config import ClusteringConfig, SeasonConfig
    from stocktailor.pipeline import Pipeline, forecast_scan, read_output
    from stocktailor.pipeline.increments import split_increments, write_folder
    from stocktailor.workspace import Workspace

    net = generate("scale", 1, n_stores=12, n_sku_sizes=200)
    settings = Settings(
        season=SeasonConfig(horizon_days=28), clustering=ClusteringConfig(n_clusters=3)
    )
    data = write_folder(split_increments(net.tables, net.as_of, 0)[0], tmp_path / "data")
    reports = {}
    for name, engine in (("local", LocalEngine()), ("dask", dask_engine)):
        ws = Workspace(tmp_path / name)
        ws.ingest(data, settings)
        reports[name] = Pipeline(ws, settings, engine=engine).run(net.as_of)
    local, remote = reports["local"], reports["dask"]
    assert local.refit_day < local.day  # the forecast step updates the refit day's forecast
    for step, file in (
        ("clusters", "labels.parquet"),
        ("plan", "allocation.parquet"),
        ("plan", "transfers.parquet"),
    ):
        assert_frame_equal(
            read_output(remote.output(step), file), read_output(local.output(step), file)
        )
    order = ["store_id", "sku", "week_start"]
    for step in ("demand", "forecast"):
        got = forecast_scan(remote.output(step)).collect().sort(order)
        want = forecast_scan(local.output(step)).collect().sort(order)
        assert want.height > 0
        assert_frame_equal(got, want)
