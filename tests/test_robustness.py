"""Valid data never crashes: real-retail shapes through cluster, forecast, allocate, rebalance."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from stocktailor.config import Settings
from stocktailor.contract import Tables, validate_tables
from stocktailor.plan import cluster_step, forecast_step, run_plan

from _networks import AS_OF, NetworkShape, raw_network


def _tables(shape: NetworkShape, settings: Settings | None = None) -> Tables:
    s = settings or Settings()
    return validate_tables(
        raw_network(shape),
        salvage_fraction=s.economics.salvage_fraction,
        season_end=s.season.end,
        horizon_days=s.season.horizon_days,
    )


def test_returns_forecast_without_crash() -> None:
    # Returns (negative units) are valid sales; the demand target stays non-negative.
    shape = NetworkShape(snapshots="weekly", returns=True, season_end=True, coordinates=True)
    t = _tables(shape)
    sales = t.sales.with_columns(
        pl.when(pl.col("units") > 0).then(-40 * pl.col("units")).otherwise(pl.col("units"))
        .alias("units")
    )
    # Heavy returns: every fifth day's sales come back forty-fold.
    t = t.replace(
        sales=pl.concat([t.sales.filter(pl.col("date").dt.day() % 5 != 0),
                         sales.filter(pl.col("date").dt.day() % 5 == 0)])
    )
    assert (t.sales["units"] < 0).sum() > 10
    settings = Settings()
    fc = forecast_step(t, AS_OF, settings, clusters=cluster_step(t, AS_OF, settings))
    assert fc.height > 0
    assert (fc["mean"] >= 0).all()


def test_single_snapshot_at_as_of_plans() -> None:
    shape = NetworkShape(snapshots="single", returns=False, season_end=True, coordinates=True)
    t = _tables(shape)
    assert t.inventory["date"].n_unique() == 1
    result = run_plan(t, AS_OF, Settings())
    assert result.forecast.height > 0
