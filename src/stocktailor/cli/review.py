"""``backtest``, ``serve``, ``export`` and ``demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stocktailor.cli.common import (
    ConfigOpt,
    WorkspaceOpt,
    app,
    console,
    errors,
    kpi_rows,
    print_frame,
    progress_bar,
    settings_for,
    workflow_database,
    workflow_url,
    write_frame,
)
from stocktailor.summary import kpis_by_policy

__all__ = ["backtest", "demo", "export", "serve"]


@app.command()
def backtest(
    scenario: Annotated[str, typer.Option(help="Generator scenario.")] = "default",
    seed: Annotated[list[int] | None, typer.Option(help="Seed (repeat for several).")] = None,
    policy: Annotated[
        list[str] | None,
        typer.Option(
            help="none, rule, stocktailor, same-optimiser-true-demand (alias oracle), bound, "
            "hold (repeatable)."
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Report folder.")] = Path("backtest"),
    stores: Annotated[int | None, typer.Option("--stores", help="Stores (scale).")] = None,
    sku_sizes: Annotated[int | None, typer.Option("--sku-sizes", help="SKU-sizes (scale).")] = None,
    config: ConfigOpt = None,
    measure: Annotated[
        bool,
        typer.Option(
            "--measure",
            help="Measure the stocktailor runs' executed transfers against the true replay "
            "(uplift_measurement.csv, uplift_by_category.csv; with simulation.holdback_share, "
            "holdback_estimate.csv).",
        ),
    ] = False,
) -> None:
    """Replay a season under each policy and report KPIs (HTML + CSV)."""
    with errors():
        from stocktailor.engine import make_engine
        from stocktailor.simulate.backtest import backtest as run_backtest

        settings = settings_for(config)
        seeds = seed or [0]
        policies = policy or ["none", "rule", "stocktailor", "same-optimiser-true-demand"]
        with (
            make_engine(settings.engine) as engine,
            progress_bar("backtest", len(seeds) * len(policies)) as advance,
        ):
            result = run_backtest(
                scenario,
                seeds,
                policies,
                settings,
                out,
                n_stores=stores,
                n_sku_sizes=sku_sizes,
                engine=engine,
                progress=advance,
                measure=["stocktailor"] if measure else (),
            )
        table = kpi_rows(kpis_by_policy(result.kpi_table()))
        print_frame(
            table, f"Backtest {scenario}, seeds {seeds}", max_rows=40, right=tuple(policies)
        )
        path = result.report_path
        console.print(f"report: {path.absolute() if path is not None else '-'}")


@app.command()
def serve(
    workspace: WorkspaceOpt = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL.")] = None,
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Serve the planner dashboard and the HTTP API."""
    with errors():
        from stocktailor import workflow
        from stocktailor.api import serve_app

        settings = settings_for(config)
        url = workflow_url(database_url, settings, workspace)
        workflow.upgrade(url)
        h = host or settings.serve.host
        p = port or settings.serve.port
        from stocktailor.pipeline.publish import shown_url

        console.print(
            f"stocktailor dashboard on http://{h}:{p}/ (API docs at /docs), db {shown_url(url)}"
        )
        serve_app(settings, url, h, p)


@app.command()
def export(
    drop_folder: Annotated[
        Path | None,
        typer.Option(
            "--drop-folder",
            help="Folder for the file (default: workflow.export_drop_folder of the settings).",
        ),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="csv or xlsx (default: workflow.export_format)."),
    ] = None,
    run_id: Annotated[
        int | None, typer.Option("--run-id", help="Only this run (default: every run).")
    ] = None,
    workspace: WorkspaceOpt = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Write approved lines not exported yet to a new file in a drop folder (for a scheduler).

    The file appears atomically and its lines are marked exported in the same transaction;
    running it again exports nothing new.
    """
    with errors():
        from stocktailor import workflow
        from stocktailor.pipeline.publish import shown_url

        settings = settings_for(config)
        folder = drop_folder or settings.workflow.export_drop_folder
        if folder is None:
            msg = "export: give --drop-folder or set workflow.export_drop_folder"
            raise ValueError(msg)
        form = fmt or settings.workflow.export_format
        if form not in ("csv", "xlsx"):
            msg = f"export: --format {form!r} is not csv or xlsx"
            raise ValueError(msg)
        with workflow_database(database_url, settings, workspace) as (url, engine):
            res = workflow.export_to_folder(engine, folder, form, run_id=run_id, user="cli")
        if res.path is None:
            console.print(f"nothing new to export from {shown_url(url)}")
        else:
            console.print(
                f"exported {res.lines:,} lines ({res.units:,} units) to {res.path.absolute()}"
            )


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Where the demo writes everything.")] = Path(
        "demo-output"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the built-in network.")] = 0,
    backtest_seeds: Annotated[int, typer.Option(help="Seeds of the closing backtest.")] = 1,
    config: ConfigOpt = None,
) -> None:
    """The whole flow on the built-in network: generate, ingest, plan, publish, backtest."""
    with errors():
        from stocktailor.demo import run_demo

        settings = settings_for(config)
        run_demo(
            out,
            settings,
            seed=seed,
            backtest_seeds=backtest_seeds,
            console=console,
            progress_factory=progress_bar,
            print_frame=print_frame,
            write_frame=write_frame,
        )
