"""Valid data never crashes: real-retail shapes through cluster, forecast, allocate, rebalance.

Random networks that pass ingest (few stores, one size, SKUs without sales, stores without
inventory rows, a week of history, returns, one stock count at the as-of day, no season end,
no coordinates but lanes, weekly sales rows, ...) either plan or stop with a one-line
ContractError naming the table (and column or row). The examples are derandomised so that
``make test`` stays bounded and repeatable; ``tests/_networks.py`` builds them.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from _networks import AS_OF, NetworkShape, raw_network
from stocktailor.allocation import allocate
from stocktailor.cli import app
from stocktailor.config import Settings
from stocktailor.contract import ContractError, Tables, validate_tables
from stocktailor.plan import cluster_step, forecast_step, run_plan, size_curve_step
from stocktailor.positions import lane_matrices

runner = CliRunner()


def _tables(shape: NetworkShape) -> Tables:
    return validate_tables(raw_network(shape))


def _assert_contract_error(err: ContractError) -> None:
    text = str(err)
    assert "\n" not in text
    assert err.file is not None, text
    assert err.column is not None or err.row is not None, text


def _plan_through_api(t: Tables, settings_: Settings) -> None:
    """cluster, forecast, size curves, allocate and rebalance; checks what each returns."""
    clusters = cluster_step(t, AS_OF, settings_)
    assert set(clusters["store_id"]) == set(t.store_ids)
    fc = forecast_step(t, AS_OF, settings_, clusters=clusters)
    for c in ("mean", "var", "p10", "p50", "p90"):
        values = fc[c].to_numpy()
        assert np.isfinite(values).all(), c
        assert (values >= 0).all(), c
    curves = size_curve_step(t, AS_OF, settings_, clusters=clusters)
    allocation = allocate(t, AS_OF, fc, settings_, clusters=clusters, size_curves=curves)
    assert (allocation["units"] > 0).all()
    result = run_plan(t, AS_OF, settings_)
    transfers = result.transfers
    assert (transfers["units"] > 0).all()
    assert (transfers["net_benefit"] > 0).all()
    assert all(math.isfinite(v) for v in result.kpis.values())


shapes = st.builds(
    NetworkShape,
    n_stores=st.integers(1, 4),
    warehouse=st.booleans(),
    n_styles=st.integers(1, 2),
    n_sizes=st.integers(1, 3),
    history_days=st.sampled_from([1, 7, 15, 29]),
    snapshots=st.sampled_from(["single", "weekly", "start"]),
    returns=st.booleans(),
    unsold_skus=st.integers(0, 2),
    stores_without_inventory=st.integers(0, 1),
    season_end=st.booleans(),
    coordinates=st.booleans(),
    lanes=st.booleans(),
    weather=st.booleans(),
    precip=st.booleans(),
    price_plan=st.booleans(),
    weekly_sales=st.booleans(),
    seed=st.integers(0, 1000),
)


@pytest.mark.slow
@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(shape=shapes)
def test_valid_networks_plan_or_fail_with_a_contract_error(shape: NetworkShape) -> None:
    try:
        t = _tables(shape)
        _plan_through_api(t, Settings())
    except ContractError as err:
        _assert_contract_error(err)


# --------------------------------------------------------------- the shapes that used to crash


def test_returns_forecast_without_crash() -> None:
    # Heavy returns (negative units) pass ingest; the demand target stays non-negative.
    shape = NetworkShape(
        snapshots="weekly", history_days=42, returns=True, season_end=True, coordinates=True
    )
    t = _tables(shape)
    back = (pl.col("date").dt.day() % 5) == 0
    t = t.replace(
        sales=t.sales.with_columns(
            pl.when(back & (pl.col("units") > 0))
            .then(-40 * pl.col("units"))
            .otherwise(pl.col("units"))
            .alias("units")
        )
    )
    assert (t.sales["units"] < 0).sum() > 10
    s = Settings()
    fc = forecast_step(t, AS_OF, s, clusters=cluster_step(t, AS_OF, s))
    assert fc.height > 0
    assert (fc["mean"] >= 0).all()


def test_single_snapshot_at_as_of_plans() -> None:
    shape = NetworkShape(
        snapshots="single", history_days=42, returns=False, season_end=True, coordinates=True
    )
    t = _tables(shape)
    assert t.inventory["date"].n_unique() == 1
    result = run_plan(t, AS_OF, Settings())
    assert result.forecast.height > 0


@pytest.mark.parametrize(
    "shape",
    [
        NetworkShape(n_stores=1, history_days=7),  # one store, one week
        NetworkShape(n_sizes=1, unsold_skus=2, stores_without_inventory=1),
        NetworkShape(history_days=29, season_end=False, coordinates=False, lanes=True),
    ],
    ids=["one-store-one-week", "one-size-unsold-no-inventory", "no-season-end-lanes-only"],
)
def test_named_shapes_plan(shape: NetworkShape) -> None:
    _plan_through_api(_tables(shape), Settings())


def test_stores_without_coordinates_need_lanes() -> None:
    t = _tables(NetworkShape(coordinates=False, lanes=False))
    ids = sorted(t.stores["store_id"].to_list())
    with pytest.raises(ContractError) as err:
        lane_matrices(t, Settings(), ids)
    _assert_contract_error(err.value)
    assert "S0, S1, S2, W1" in str(err.value)
    assert "no row for S0 -> S1" in str(err.value)
    # With lanes for every pair the given costs are used as they are.
    t = _tables(NetworkShape(coordinates=False, lanes=True))
    unit, fixed, lead = lane_matrices(t, Settings(), ids)
    off = ~np.eye(len(ids), dtype=bool)
    assert (unit[off] == 0.5).all()
    assert (fixed[off] == 20.0).all()
    assert (lead[off] == 2).all()
    # Only the warehouse's lanes are needed to allocate: the missing ones cost inf.
    lanes = t.lanes
    assert lanes is not None
    t = t.replace(lanes=lanes.filter(pl.col("from_id") == "W1"))
    unit, _, _ = lane_matrices(t, Settings(), ids, origins=["W1"])
    assert np.isinf(unit[0, 1])
    assert unit[ids.index("W1"), 0] == 0.5


# --------------------------------------------------------------------------------- the CLI


def _write(shape: NetworkShape, folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name, frame in raw_network(shape).items():
        frame.write_parquet(folder / f"{name}.parquet")
    return folder


@pytest.mark.slow
@pytest.mark.parametrize(
    "shape",
    [
        NetworkShape(snapshots="single", returns=True, season_end=False, coordinates=False),
        NetworkShape(n_stores=2, history_days=7, n_sizes=1, stores_without_inventory=1),
        NetworkShape(coordinates=False, lanes=False, warehouse=True),
    ],
    ids=["single-snapshot-returns", "one-week-one-size", "no-coordinates-no-lanes"],
)
def test_cli_plans_or_says_one_line(shape: NetworkShape, tmp_path: Path) -> None:
    data = _write(shape, tmp_path / "data")
    ws = str(tmp_path / "ws")
    ok = runner.invoke(app, ["ingest", str(data), "--workspace", ws])
    assert ok.exit_code == 0, ok.output
    for command in ("cluster", "forecast", "allocate", "rebalance"):
        out = str(tmp_path / f"{command}.csv")
        result = runner.invoke(app, [command, "--workspace", ws, "--out", out])
        assert "Traceback" not in result.output
        assert "internal error" not in result.output, result.output
        if result.exit_code != 0:
            lines = [ln for ln in result.output.splitlines() if ln.strip()]
            assert result.exit_code == 1
            assert lines[-1].startswith("error: stores, column 'latitude'"), result.output


def test_cli_names_an_internal_error_as_a_bug(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _write(NetworkShape(), tmp_path / "data")
    ws = str(tmp_path / "ws")
    assert runner.invoke(app, ["ingest", str(data), "--workspace", ws]).exit_code == 0

    def broken(*args: object, **kwargs: object) -> object:
        return np.max(np.array([]))  # numpy's own ValueError, not one of ours

    monkeypatch.setattr("stocktailor.demand.forecast_parts", broken)
    result = runner.invoke(app, ["forecast", "--workspace", ws, "--out", str(tmp_path / "f.csv")])
    assert result.exit_code == 3
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    # progress lines may precede it; the error is one line, last, without a traceback
    assert "Traceback" not in result.output
    assert lines[-1].startswith("internal error (a bug in stocktailor"), result.output
    assert "`stocktailor forecast`" in lines[-1]
    assert "ValueError" in lines[-1]
    # Our own ValueErrors stay plain one-line errors.
    missing = runner.invoke(app, ["forecast", "--workspace", str(tmp_path / "nope")])
    assert missing.exit_code == 1
    assert missing.output.startswith("error: ")
