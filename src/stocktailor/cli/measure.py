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
    existing_workspace,
    parse_date,
    print_frame,
    progress_bar,
    settings_for,
    workflow_database,
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
        from stocktailor.pipeline.publish import shown_url
        from stocktailor.workflow.executions import import_executions

        settings = settings_for(config)
        if not file.is_file():
            msg = f"{file}: no such file"
            raise FileNotFoundError(msg)
        with workflow_database(database_url, settings, workspace) as (url, engine):
            res = import_executions(engine, file, user="cli", source_file=file.name)
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
        from stocktailor.workflow.measurements import (
            executed_lines,
            measure_executions,
            measurement_steps,
        )

        settings = settings_for(config)
        day = parse_date("--until", until)
        ws = existing_workspace(workspace)
        with workflow_database(database_url, settings, workspace) as (_url, engine):
            every = executed_lines(engine)
            lines = every.filter(pl.col("run_id") == run)
            if lines.height >= _PROGRESS_LINES:
                steps = measurement_steps(lines)
                with progress_bar("measuring executed lines", steps) as advance:
                    res = measure_executions(
                        engine, ws, run, day, settings, user="cli", progress=advance, executed=every
                    )
            else:
                res = measure_executions(engine, ws, run, day, settings, user="cli", executed=every)
        write_frame(res.results, out)
        _show(res.results, settings, run, res.start, res.until)
        console.print(f"stored measurement batch {res.batch_id}; wrote {out.resolve()}")


def _show(
    results: pl.DataFrame, settings: Settings, run: int, start: object, until: object
) -> None:
    """The run and its style x lane groups with the largest estimates, and the run's line."""
    currency = settings.economics.currency
    level = f"{settings.measure.interval:.0%}"
    groups = pl.concat(
        [
            results.filter(pl.col("level") == "run").with_columns(
                pl.lit(f"run {run}").alias("group")
            ),
            results.filter(pl.col("level") == "style_lane")
            .sort("estimated", descending=True)
            .with_columns(
                pl.concat_str("style", pl.lit(" "), "from_id", pl.lit("→"), "to_id").alias("group")
            ),
        ]
    )
    whole = [pl.col(c).round(0).cast(pl.Int64) for c in ("estimated", "measured")]
    span = [
        pl.col(c).round(0).cast(pl.Int64).map_elements(lambda v: f"{v:,}", return_dtype=pl.String)
        for c in ("measured_low", "measured_high")
    ]
    groups = groups.select(
        "group",
        "lines",
        *whole,
        pl.concat_str(*span, separator=" to ").alias(f"interval {level}"),
    )
    print_frame(
        groups,
        f"Run {run} measured {start} to {until}: the run and its style x lane groups ({currency})",
        max_rows=11,
    )
    total = results.filter(pl.col("level") == "run").row(0, named=True)
    console.print(
        f"run {run}: estimated {format_money(total['estimated'], currency)}, measured "
        f"{format_money(total['measured'], currency)} ({level} interval "
        f"{format_money(total['measured_low'], currency)} to "
        f"{format_money(total['measured_high'], currency)})"
    )
