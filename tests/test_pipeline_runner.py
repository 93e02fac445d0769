"""The step runner: stored outputs, the refit schedule, the daily loop against a fresh run."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from _networks import AS_OF, NetworkShape, raw_network
from stocktailor.config import ClusteringConfig, PipelineConfig, SeasonConfig, Settings
from stocktailor.pipeline import (
    OutputStore,
    Pipeline,
    RunReport,
    append_increment,
    forecast_scan,
    plan_result,
    read_output,
    refit_day,
)
from stocktailor.pipeline.increments import split_increments, write_folder
from stocktailor.synth import SyntheticNetwork, generate
from stocktailor.workspace import Workspace

MONDAY = dt.date(2026, 4, 13)


def test_refit_day_follows_the_schedule() -> None:
    weekly = PipelineConfig()  # every 7 days from Monday 2000-01-03
    assert refit_day(MONDAY, weekly) == MONDAY
    assert refit_day(MONDAY + dt.timedelta(days=6), weekly) == MONDAY
    assert refit_day(MONDAY - dt.timedelta(days=1), weekly) == MONDAY - dt.timedelta(days=7)
    assert refit_day(MONDAY + dt.timedelta(days=3), PipelineConfig(refit_every_days=1)) == (
        MONDAY + dt.timedelta(days=3)
    )
    # no history on the refit day: refit on the day itself
    first = MONDAY + dt.timedelta(days=2)
    assert refit_day(MONDAY + dt.timedelta(days=4), weekly, first) == MONDAY + dt.timedelta(days=4)


def test_a_failed_step_stores_nothing(tmp_path: Path) -> None:
    store = OutputStore(tmp_path)
    with pytest.raises(RuntimeError, match="boom"), store.put("x", MONDAY, "k" * 64) as (folder, _):
        (folder / "half.parquet").write_bytes(b"half")
        msg = "boom"
        raise RuntimeError(msg)
    assert store.get("x", MONDAY, "k" * 64) is None
    assert store.entries() == []
    assert not list((tmp_path / "outputs" / "x").iterdir())


# --------------------------------------------------------------------------- the daily loop

SETTINGS = Settings(
    season=SeasonConfig(horizon_days=28),  # the scale network snapshots stock every 4 weeks
    clustering=ClusteringConfig(n_clusters=3),
)
CUT = MONDAY - dt.timedelta(days=2)  # history to Saturday; days: Sunday, Monday (refit), Tuesday
DAYS = 3


@dataclass
class Loop:
    network: SyntheticNetwork
    ws: Workspace
    reports: list[RunReport]
    fresh: RunReport
    fresh_ws: Workspace


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Loop:
    root = tmp_path_factory.mktemp("loop")
    net = generate("scale", 0, n_stores=12, n_sku_sizes=200)
    base, incs = split_increments(net.tables, CUT, DAYS)
    ws = Workspace(root / "ws")
    ws.ingest(write_folder(base, root / "base"), SETTINGS)
    pipeline = Pipeline(ws, SETTINGS)
    reports = [pipeline.run(CUT)]
    for i, inc in enumerate(incs):
        day = CUT + dt.timedelta(days=i + 1)
        append_increment(ws, write_folder(inc, root / "inc" / day.isoformat()), SETTINGS)
        reports.append(pipeline.run())
    last = CUT + dt.timedelta(days=DAYS)
    everything, _ = split_increments(net.tables, last, 0)
    fresh_ws = Workspace(root / "fresh")
    fresh_ws.ingest(write_folder(everything, root / "all"), SETTINGS)
    fresh = Pipeline(fresh_ws, SETTINGS).run(last)
    return Loop(net, ws, reports, fresh, fresh_ws)


def _computed(report: RunReport) -> list[str]:
    return [s.step for s in report.states if s.action == "computed"]


@pytest.mark.slow
def test_models_refit_on_schedule_and_days_between_reuse_them(loop: Loop) -> None:
    days = [r.day for r in loop.reports]
    assert days == [CUT + dt.timedelta(days=i) for i in range(DAYS + 1)]
    assert [r.refit_day for r in loop.reports] == [MONDAY - dt.timedelta(days=7)] * 2 + [MONDAY] * 2
    assert _computed(loop.reports[0]) == [
        "clusters", "demand", "forecast", "plan"
    ]  # fmt: skip
    daily = ["forecast", "plan"]
    assert _computed(loop.reports[1]) == daily
    assert _computed(loop.reports[2]) == _computed(loop.reports[0])  # Monday: refit
    assert _computed(loop.reports[3]) == daily
    assert loop.reports[3].output("demand").path == loop.reports[2].output("demand").path
    # a second run of the same day computes nothing
    again = Pipeline(loop.ws, SETTINGS).run()
    assert _computed(again) == []
    assert [s.key for s in again.states] == [s.key for s in loop.reports[3].states]


@pytest.mark.slow
def test_the_daily_loop_equals_a_fresh_workspace(loop: Loop) -> None:
    last = loop.reports[-1]
    assert [s.key for s in last.states] != [s.key for s in loop.fresh.states]  # other parts
    for step, file in (
        ("clusters", "labels.parquet"),
        ("demand", "curves.parquet"),
        ("plan", "allocation.parquet"),
        ("plan", "transfers.parquet"),
        ("plan", "recommendations.parquet"),
    ):
        assert_frame_equal(
            read_output(last.output(step), file), read_output(loop.fresh.output(step), file)
        )
    order = ["store_id", "sku", "week_start"]
    daily = forecast_scan(last.output("forecast")).collect().sort(order)
    fresh = forecast_scan(loop.fresh.output("forecast")).collect().sort(order)
    assert daily.height > 0
    assert_frame_equal(daily, fresh)
    assert last.output("forecast").meta["sensed"] is True


@pytest.mark.slow
def test_status_sees_what_an_append_makes_stale(loop: Loop, tmp_path: Path) -> None:
    pipeline = Pipeline(loop.ws, SETTINGS)
    day = loop.reports[-1].day
    assert {s.action for s in pipeline.plan(day)} == {"stored"}
    # a later day leaves the models of the refit day stored and the day's steps stale
    later = day + dt.timedelta(days=1)
    states = {s.step: s.action for s in pipeline.plan(later)}
    assert states == {
        "clusters": "stored", "demand": "stored",
        "forecast": "stale", "plan": "stale",
    }  # fmt: skip
    # other settings of one step make it and what reads it stale, nothing upstream
    solver = SETTINGS.model_copy(
        update={"solver": SETTINGS.solver.model_copy(update={"holdback_share": 0.3})}
    )
    states = {s.step: s.action for s in Pipeline(loop.ws, solver).plan(day)}
    assert states["plan"] == "stale"
    assert states["forecast"] == states["demand"] == "stored"


@pytest.mark.slow
def test_the_update_stays_within_its_tolerance_of_a_refit(loop: Loop) -> None:
    """The stated update tolerance (docs/benchmarks.md, pipeline section) on a small network.

    Between refits the forecast is updated, not refitted. Compared with a refit on the same
    day: its first week is at most 3 WAPE points less accurate against the true demand, and
    its network total to season end within 15%.
    """
    day = loop.reports[-1].day
    refit = Pipeline(
        loop.fresh_ws,
        SETTINGS.model_copy(update={"pipeline": PipelineConfig(refit_every_days=1)}),
    ).run(day, ["forecast"])
    assert refit.refit_day == day != loop.reports[-1].refit_day
    truth = loop.network.truth
    actual = truth.expected_demand(day + dt.timedelta(days=1), day + dt.timedelta(days=7))
    week = actual.sum(axis=0)
    stores = {s: i for i, s in enumerate(truth.store_ids)}
    skus = {s: i for i, s in enumerate(truth.skus)}

    def first_week_wape(report: RunReport) -> float:
        scan = forecast_scan(report.output("forecast"))
        fc = scan.filter(pl.col("week_start") == day + dt.timedelta(days=1)).collect()
        got = np.zeros_like(week)
        rows = [stores[s] for s in fc["store_id"].to_list()]
        cols = [skus[k] for k in fc["sku"].to_list()]
        got[rows, cols] = fc["mean"].to_numpy()
        return float(np.abs(got - week).sum() / week.sum())

    def total(report: RunReport) -> float:
        scan = forecast_scan(report.output("forecast"))
        return float(scan.select(pl.col("mean").sum()).collect().item())

    updated, refitted = loop.reports[-1], refit
    assert first_week_wape(updated) <= first_week_wape(refitted) + UPDATE_WAPE_POINTS
    assert abs(total(updated) / total(refitted) - 1.0) <= UPDATE_TOTAL_SHARE


UPDATE_WAPE_POINTS = 0.03
"""The update's first-week WAPE against true demand exceeds a same-day refit's by at most this."""
UPDATE_TOTAL_SHARE = 0.15
"""The update's network total to season end is within this share of a same-day refit's."""


def test_one_stock_count_after_the_scheduled_refit_moves_the_refit_to_the_day(
    tmp_path: Path,
) -> None:
    """A single snapshot on a Friday: a Monday refit would know no position and forecast nothing."""
    assert AS_OF.weekday() == 4  # a Friday: the weekly schedule's refit day is 4 days earlier
    shape = NetworkShape(snapshots="single", history_days=42, season_end=True, coordinates=True)
    data = tmp_path / "data"
    data.mkdir()
    for name, frame in raw_network(shape).items():
        frame.write_parquet(data / f"{name}.parquet")
    ws = Workspace(tmp_path / "ws")
    ws.ingest(data, Settings())
    pipeline = Pipeline(ws, Settings())
    assert pipeline.refit_day(AS_OF) == AS_OF
    # a later day on the schedule (after the count) refits on the schedule again
    monday = AS_OF + dt.timedelta(days=3)
    assert pipeline.refit_day(monday + dt.timedelta(days=2)) == monday
    report = pipeline.run(AS_OF)
    assert report.refit_day == AS_OF
    assert forecast_scan(report.output("forecast")).collect().height > 0
    # the run page's validation table comes with the published result
    result = plan_result(ws, report, Settings())
    assert result.validation.height > 0
    assert {"candidate", "chosen"} <= set(result.validation.columns)
