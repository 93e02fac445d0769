"""Publish a pipeline run to the workflow database for review."""

from __future__ import annotations

import dataclasses

import polars as pl

from stocktailor.config import Settings
from stocktailor.pipeline.runner import RunReport, plan_result
from stocktailor.pipeline.steps import tables_at
from stocktailor.posts import rising_signals
from stocktailor.workspace import Workspace

__all__ = ["lane_premiums_for", "publish_report", "shown_url"]


def publish_report(
    ws: Workspace,
    report: RunReport,
    settings: Settings,
    database_url: str | None = None,
    *,
    user: str = "cli",
) -> tuple[int, str]:
    """Store the run's lines in the workflow database; returns ``(run id, database url)``.

    The database is ``database_url``, else ``serve.database_url``, else the workspace's
    SQLite file. The post series rising on the run's day are computed here (embeddings from
    the workspace's cache) and stored with the run.
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
