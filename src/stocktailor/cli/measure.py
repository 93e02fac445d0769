"""``executions import`` (what the warehouse did) and ``measure`` (what it earned)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import polars as pl
import typer

from stocktailor.cli.common import (
    ConfigOpt,
    WorkspaceOpt,
    app,
    console,
    errors,
    parse_date,
    print_frame,
    progress_bar,
    settings_for,
    workspace_path,
    write_frame,
)
from stocktailor.config import Settings
from stocktailor.money import format_money

__all__ = ["executions_import", "measure"]

executions_app = typer.Typer(
    help="Executions reported by the warehouse system (what shipped and arrived).",
    no_args_is_help=True,
)
app.add_typer(executions_app, name="executions")

DatabaseOpt = Annotated[
    str | None,
    typer.Option(help="Workflow database (default: serve.database_url, else the workspace's)."),
]

_PROGRESS_LINES = 100
"""Lines from which ``measure`` shows progress (fewer take well under a second)."""


def _database_url(database_url: str | None, settings: Settings, workspace: Path | None) -> str:
    from stocktailor.workspace import Workspace

    url = database_url or settings.serve.database_url
    return url if url is not None else Workspace(workspace_path(workspace)).database_url


@executions_app.command("import")
def executions_import(
    file: Annotated[Path, typer.Argument(help="The warehouse's file (.csv or .parquet).")],
    workspace: WorkspaceOpt = None,
    database_url: DatabaseOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Store what happened to approved lines: reference (or recommendation_id), shipped_units,
    received_units, ship_date, receive_date, status. All rows or none."""
    with errors():
        from stocktailor import workflow
        from stocktailor.pipeline.publish import shown_url
        from stocktailor.workflow.executions import import_executions

        settings = settings_for(config)
        if not file.is_file():
            msg = f"{file}: no such file"
            raise FileNotFoundError(msg)
        url = _database_url(database_url, settings, workspace)
        workflow.upgrade(url)
        engine = workflow.connect(url)
        try:
            res = import_executions(engine, file, user="cli", source_file=file.name)
        finally:
            engine.dispose()
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(res.statuses.items()))
        console.print(
            f"imported {res.lines:,} executions from {file.name} ({res.new:,} new, "
            f"{res.replaced:,} replaced; {statuses}) into {shown_url(url)}"
        )


@app.command()
def measure(
    run: Annotated[int, typer.Option("--run", help="The published run's id.")],
    until: Annotated[str, typer.Option("--until", help="Last measured day YYYY-MM-DD.")],
    workspace: WorkspaceOpt = None,
    out: Annotated[Path, typer.Option(help="results.csv (or .parquet/.xlsx).")] = Path(
        "results.csv"
    ),
    database_url: DatabaseOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Measure what a run's executed lines earned up to --until (realised vs estimated)."""
    with errors():
        from stocktailor import workflow
        from stocktailor.workflow.measurements import (
            executed_lines,
            measure_executions,
            measurement_steps,
        )
        from stocktailor.workspace import Workspace

        settings = settings_for(config)
        day = parse_date("--until", until)
        ws = Workspace(workspace_path(workspace))
        if not ws.exists():
            msg = f"{ws.path}: no workspace here; run `stocktailor ingest DATA_DIR --workspace WS`"
            raise FileNotFoundError(msg)
        url = _database_url(database_url, settings, workspace)
        workflow.upgrade(url)
        engine = workflow.connect(url)
        try:
            n = executed_lines(engine, run).height
            if n >= _PROGRESS_LINES:
                with progress_bar("measuring executed lines", measurement_steps(n)) as advance:
                    res = measure_executions(
                        engine, ws, run, day, settings, user="cli", progress=advance
                    )
            else:
                res = measure_executions(engine, ws, run, day, settings, user="cli")
        finally:
            engine.dispose()
        write_frame(res.results, out)
        _show(res.results, settings, run, res.start, res.until)
        console.print(f"stored measurement batch {res.batch_id}; wrote {out.resolve()}")


def _show(
    results: pl.DataFrame, settings: Settings, run: int, start: object, until: object
) -> None:
    currency = settings.economics.currency
    level = f"{settings.measure.interval:.0%}"
    lanes = results.filter(pl.col("level") != "line").select(
        pl.col("level"),
        pl.col("style").fill_null("all"),
        pl.concat_str(
            pl.col("from_id").fill_null(""), pl.col("to_id").fill_null(""), separator=" → "
        ).alias("lane"),
        "lines",
        "units",
        "estimated",
        "measured",
        pl.col("measured_low").alias(f"low ({level})"),
        pl.col("measured_high").alias(f"high ({level})"),
    )
    shown = pl.concat(
        [lanes.filter(pl.col("level") == "run"), lanes.filter(pl.col("level") != "run")]
    )
    print_frame(
        shown.with_columns(pl.col("lane").replace(" → ", "all lanes")),
        f"Run {run}: measured {start} to {until} ({currency})",
        max_rows=16,
    )
    total = results.filter(pl.col("level") == "run").row(0, named=True)
    console.print(
        f"run {run}: estimated {format_money(total['estimated'], currency)}, measured "
        f"{format_money(total['measured'], currency)} ({level} interval "
        f"{format_money(total['measured_low'], currency)} to "
        f"{format_money(total['measured_high'], currency)})"
    )
