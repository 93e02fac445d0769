"""Publish a pipeline run to the workflow database for review."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import polars as pl
from sqlalchemy import Engine

from stocktailor.config import Settings
from stocktailor.pipeline.runner import RunReport, plan_result
from stocktailor.pipeline.steps import tables_at
from stocktailor.plan import PlanResult, transfer_kpis
from stocktailor.posts import rising_signals
from stocktailor.workspace import Workspace

__all__ = ["calibrate_plan", "lane_premiums_for", "publish_report", "shown_url"]


def publish_report(
    ws: Workspace,
    report: RunReport,
    settings: Settings,
    database_url: str | None = None,
    *,
    user: str = "cli",
    note: Callable[[str], None] | None = None,
) -> tuple[int, str]:
    """Store the run's lines in the workflow database; returns ``(run id, database url)``.

    The database is ``database_url``, else ``serve.database_url``, else the workspace's
    SQLite file. The post series rising on the run's day are computed here (embeddings from
    the workspace's cache) and stored with the run. With ``measure.calibrate`` the transfer
    lines are calibrated first (:func:`calibrate_plan`); ``note`` gets a line saying how.
    """
    from stocktailor import workflow

    url = database_url or settings.serve.database_url or ws.database_url
    result = plan_result(ws, report, settings)
    tables = tables_at(ws, report.day, settings.pipeline.weather_forecast_days)
    cache = ws.path / "cache" / "posts"
    signals = rising_signals(tables, report.day, settings.posts, cache_dir=cache)
    result = dataclasses.replace(result, signals=signals)
    workflow.upgrade(url)
    engine = workflow.connect(url)
    try:
        if settings.measure.calibrate:
            result, text = calibrate_plan(engine, result, tables.products, settings)
            if note is not None:
                note(text)
        positions = workflow.stock_context(tables, result.as_of, settings)
        run_id: int = workflow.publish_run(
            engine,
            result,
            tables.stores,
            tables.products,
            positions=positions,
            config=settings.serve,
            user=user,
            auto_approval=settings.workflow.auto_approval,
        )
    finally:
        engine.dispose()
    return run_id, url


def calibrate_plan(
    engine: Engine, result: PlanResult, products: pl.DataFrame, settings: Settings
) -> tuple[PlanResult, str]:
    """The plan with its transfer lines calibrated by what measured lines realised.

    The ratios come from each run's latest ledger measurement in the database
    (:func:`stocktailor.workflow.measurements.calibration_lines`), the lines measured up to
    their season end only (:func:`stocktailor.measure.calibration.measured_to_season_end`,
    :func:`~stocktailor.measure.calibration.calibration_ratios`); lines whose calibrated net
    benefit is not above 0 are dropped, and the run's headline figures follow. Applied when the
    run is published, not inside the optimiser: the plan chose its lines on the uncalibrated
    figures. Returns the plan and a line saying what changed.
    """
    from stocktailor.measure.calibration import (
        apply_calibration,
        calibration_ratios,
        measured_to_season_end,
    )
    from stocktailor.workflow.measurements import calibration_lines

    cfg = settings.measure
    every = calibration_lines(engine)
    measured = measured_to_season_end(
        every,
        products,
        default_end=settings.season.end,
        horizon_weeks=settings.season.horizon_weeks,
    )
    if measured.height == 0:
        text = (
            f"calibration: none of {every.height:,} measured lines was measured to its season "
            "end yet; estimates published as planned"
        )
        return result, text
    ratios = calibration_ratios(
        measured, strength=cfg.calibration_strength, max_ratio=cfg.calibration_max_ratio
    )
    transfers, dropped = apply_calibration(result.transfers, ratios, products, result.clusters)
    kpis = dict(result.kpis)
    kpis.update({k: v for k, v in transfer_kpis(transfers).items() if k in kpis})
    kpis["calibration_dropped_lines"] = float(dropped)
    overall = ratios.filter(pl.col("level") == "all").row(0, named=True)
    text = (
        f"calibration: {measured.height:,} lines measured to their season end (overall ratio "
        f"x{overall['ratio']:.2f}); {dropped:,} transfer lines dropped as no longer worth it"
    )
    return dataclasses.replace(result, transfers=transfers, kpis=kpis), text


def lane_premiums_for(
    ws: Workspace, settings: Settings, database_url: str | None = None
) -> pl.DataFrame:
    """The premiums of lanes planners keep rejecting as unreliable, from the database a run
    will be published to (as :func:`publish_report` chooses it; migrated first): pass them to
    :class:`~stocktailor.pipeline.Pipeline` so the plan takes them into account."""
    from stocktailor import workflow
    from stocktailor.workflow.lanes import premiums_for_run

    url = database_url or settings.serve.database_url or ws.database_url
    workflow.upgrade(url)
    engine = workflow.connect(url)
    try:
        return premiums_for_run(engine, settings.transfers)
    finally:
        engine.dispose()


def shown_url(url: str) -> str:
    """A database URL as a person reads it: a SQLite file as its path, passwords hidden."""
    if url.startswith("sqlite:///"):
        return url.removeprefix("sqlite:///")
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
