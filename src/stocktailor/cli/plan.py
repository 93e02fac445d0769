"""The plan commands: ``run``, ``status``, ``forecast``, ``allocate``, ``rebalance``, ``cluster``.

``run``, ``forecast``, ``allocate`` and ``rebalance`` are one step runner
(:class:`stocktailor.pipeline.Pipeline`) asked for different outputs: each runs the steps that
are stale for the as-of date, reuses the stored ones and exports what was asked for.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer

from stocktailor.cli.common import (
    AsOfOpt,
    ConfigOpt,
    UsageError,
    WorkspaceOpt,
    app,
    console,
    errors,
    existing_workspace,
    parse_date,
    print_frame,
    progress_bar,
    settings_for,
    with_currency,
    write_frame,
    write_scan,
)
from stocktailor.config import Settings
from stocktailor.money import format_money

__all__ = ["allocate", "cluster", "forecast", "rebalance", "run", "status", "write_validation"]

PublishOpt = Annotated[
    bool, typer.Option("--publish", help="Store the run in the workflow database for review.")
]
DatabaseOpt = Annotated[
    str | None, typer.Option(help="Workflow database (default: SQLite in the workspace).")
]


@contextlib.contextmanager
def _pipeline(workspace: Path | None, config: Path | None) -> Iterator[tuple[Any, Settings, Any]]:
    from stocktailor.engine import make_engine
    from stocktailor.pipeline import Pipeline

    settings = settings_for(config)
    ws = existing_workspace(workspace)
    with make_engine(settings.engine) as engine:
        yield ws, settings, Pipeline(ws, settings, engine=engine, progress_factory=progress_bar)


def _day(pipeline: Any, as_of: str | None) -> dt.date:
    return pipeline.latest_day() if as_of is None else parse_date("--as-of", as_of)


def _run(pipeline: Any, as_of: str | None, targets: Sequence[str] | None = None) -> Any:
    day = _day(pipeline, as_of)
    report = pipeline.run(day, targets)
    done = report.frame().filter(pl.col("action") == "computed")
    reused = report.frame().filter(pl.col("action") == "reused")["step"].to_list()
    line = f"as of {day} (models from the refit day {report.refit_day}): "
    line += f"computed {', '.join(done['step'].to_list()) or 'nothing'}"
    if reused:
        line += f"; reused {', '.join(reused)}"
    console.print(line + f" ({report.seconds:,.1f} s)")
    return report


# --------------------------------------------------------------------------- run / status


@app.command()
def run(
    workspace: WorkspaceOpt = None,
    as_of: AsOfOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Also write clusters.csv, forecast.parquet, allocation.csv and transfers.csv "
            "into this folder."
        ),
    ] = None,
    publish: PublishOpt = False,
    database_url: DatabaseOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Run every stale step of the plan (clusters to transfers); reuse the stored ones."""
    with errors(), _pipeline(workspace, config) as (ws, settings, pipeline):
        from stocktailor.pipeline import forecast_scan, read_output

        if publish:
            _lane_premiums(pipeline, ws, settings, database_url)
        report = _run(pipeline, as_of)
        print_frame(report.frame(), f"Plan run as of {report.day}", max_rows=len(report.states))
        transfers = read_output(report.output("plan"), "transfers.parquet")
        allocation = read_output(report.output("plan"), "allocation.parquet")
        currency = settings.economics.currency
        benefit = format_money(float(transfers["net_benefit"].sum() or 0.0), currency, cents=True)
        console.print(
            f"transfers: {transfers.height:,} lines, {int(transfers['units'].sum() or 0):,} "
            f"units, expected net benefit {benefit}; "
            f"allocation: {allocation.height:,} lines, "
            f"{int(allocation['units'].sum() or 0):,} units"
        )
        if out is not None:
            write_frame(
                read_output(report.output("clusters"), "labels.parquet"), out / "clusters.csv"
            )
            write_scan(forecast_scan(report.output("forecast")), out / "forecast.parquet")
            write_frame(with_currency(allocation, currency), out / "allocation.csv")
            write_frame(with_currency(transfers, currency), out / "transfers.csv")
            console.print(f"wrote clusters, forecast, allocation and transfers to {out.resolve()}")
        if publish:
            _publish_report(ws, report, settings, database_url)


@app.command()
def status(
    workspace: WorkspaceOpt = None,
    as_of: AsOfOpt = None,
    config: ConfigOpt = None,
) -> None:
    """What is stored (data and step outputs) and what a run for --as-of would compute."""
    with errors(), _pipeline(workspace, config) as (ws, _settings, pipeline):
        day = _day(pipeline, as_of)
        manifest = ws.manifest()
        data = pl.DataFrame(
            {
                "table": list(manifest["row_counts"]),
                "rows": [int(v) for v in manifest["row_counts"].values()],
                "parts": [len(ws.parts(n)) for n in manifest["row_counts"]],
                "last date": [
                    max((p.max_date for p in ws.parts(n) if p.max_date), default=None)
                    for n in manifest["row_counts"]
                ],
            }
        )
        appends = manifest.get("appends", [])
        last = f"; {len(appends)} appends since, the last at {appends[-1]['at']}" if appends else ""
        print_frame(data, f"Data: ingested {manifest['ingested_at']}{last}", max_rows=data.height)
        states = pipeline.plan(day)
        stored = pipeline.store.entries()
        plan = pl.DataFrame(
            {
                "step": [s.step for s in states],
                "as_of": [s.as_of for s in states],
                "state": [s.action for s in states],
                "key": [s.key[:12] for s in states],
                "computed_at": [
                    (s.output.meta.get("created_at") if s.output else None) for s in states
                ],
                "seconds": [
                    float(s.output.meta.get("seconds", 0.0)) if s.output else None for s in states
                ],
                "stored": [sum(1 for e in stored if e.step == s.step) for s in states],
            },
            schema_overrides={"seconds": pl.Float64, "computed_at": pl.String},
        )
        print_frame(plan, f"Steps for a run as of {day} (refit day {pipeline.refit_day(day)})")
        stale = [s.step for s in states if s.action == "stale"]
        console.print(
            f"stale: {', '.join(stale)}; `stocktailor run --as-of {day}` computes them"
            if stale
            else f"everything for {day} is stored; `stocktailor run` reuses it"
        )


# --------------------------------------------------------------------------- one output each


@app.command()
def forecast(
    workspace: WorkspaceOpt = None,
    as_of: AsOfOpt = None,
    out: Annotated[Path, typer.Option(help="Forecast file (.parquet, .csv, .xlsx).")] = Path(
        "forecast.parquet"
    ),
    config: ConfigOpt = None,
) -> None:
    """Forecast demand per store x SKU with quantiles, weekly to season end."""
    with errors(), _pipeline(workspace, config) as (_ws, _settings, pipeline):
        from stocktailor.pipeline import forecast_scan

        report = _run(pipeline, as_of, ["forecast"])
        scan = forecast_scan(report.output("forecast"))
        write_scan(scan, out)
        shape = scan.select(
            pl.col("store_id").n_unique().alias("stores"),
            pl.col("sku").n_unique().alias("skus"),
            pl.col("week_start").n_unique().alias("weeks"),
        ).collect()
        stores, skus, weeks = shape.row(0)
        console.print(f"forecast for {stores} stores x {skus} SKUs, {weeks} weeks: wrote {out}")
        write_validation(report.output("demand"), out)


def write_validation(demand: Any, out: Path) -> None:
    """``F.validation.csv`` beside ``F`` from the demand model's holdout, and a short table."""
    file = demand.file("validation.parquet")
    if not file.is_file():
        return
    validation = pl.read_parquet(file)
    path = write_frame(validation, out.with_name(f"{out.stem}.validation.csv"))
    chosen = validation.filter(pl.col("chosen")) if "chosen" in validation.columns else validation
    cols = [
        c for c in ("group", "candidate", "holdout_wape", "holdout_bias") if c in chosen.columns
    ]
    print_frame(chosen.select(cols), "Forecast validation (chosen per group, holdout)", max_rows=12)
    console.print(f"wrote {path} ({validation.height} candidate x group rows)")


@app.command()
def allocate(
    workspace: WorkspaceOpt = None,
    as_of: AsOfOpt = None,
    out: Annotated[Path, typer.Option(help="allocation.csv (or .parquet/.xlsx).")] = Path(
        "allocation.csv"
    ),
    config: ConfigOpt = None,
) -> None:
    """Allocate warehouse stock to stores (clusters, size curves, holdback)."""
    with errors(), _pipeline(workspace, config) as (_ws, settings, pipeline):
        from stocktailor.pipeline import read_output

        report = _run(pipeline, as_of, ["plan"])
        lines = read_output(report.output("plan"), "allocation.parquet")
        currency = settings.economics.currency
        write_frame(with_currency(lines, currency), out)
        gain = format_money(float(lines["expected_gain"].sum() or 0.0), currency, cents=True)
        console.print(
            f"allocation: {lines.height} lines, {int(lines['units'].sum() or 0):,} units, "
            f"expected gain {gain}; wrote {out}"
        )


@app.command()
def rebalance(
    workspace: WorkspaceOpt = None,
    as_of: AsOfOpt = None,
    out: Annotated[Path, typer.Option(help="transfers.csv (or .parquet/.xlsx).")] = Path(
        "transfers.csv"
    ),
    publish: PublishOpt = False,
    database_url: DatabaseOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Recommend store-to-store transfers, each with its own P&L."""
    with errors(), _pipeline(workspace, config) as (ws, settings, pipeline):
        from stocktailor.pipeline import read_output
        from stocktailor.transfers import summarise_transfers

        if publish:
            _lane_premiums(pipeline, ws, settings, database_url)
        report = _run(pipeline, as_of, ["plan"])
        lines = read_output(report.output("plan"), "transfers.parquet")
        write_frame(with_currency(lines, settings.economics.currency), out)
        clusters = read_output(report.output("clusters"), "labels.parquet")
        stores, products = ws.read("stores"), ws.read("products")
        summary = summarise_transfers(lines, stores, products, clusters=clusters)
        print_frame(summary, f"Transfers as of {report.day}")
        console.print(f"wrote {out}")
        if publish:
            _publish_report(ws, report, settings, database_url)


def _lane_premiums(pipeline: Any, ws: Any, settings: Settings, database_url: str | None) -> None:
    """Lanes planners keep rejecting as unreliable get their premium in the run to publish."""
    from stocktailor.pipeline.publish import lane_premiums_for

    premiums = lane_premiums_for(ws, settings, database_url)
    pipeline.lane_premiums = premiums
    for row in premiums.iter_rows(named=True):
        console.print(
            f"lane {row['from_id']} → {row['to_id']}: rejected {row['rejections']} times as "
            f"unreliable; premium {row['premium']:,.2f} added"
        )


def _publish_report(ws: Any, report: Any, settings: Settings, database_url: str | None) -> None:
    from stocktailor.pipeline.publish import publish_report, shown_url

    run_id, url = publish_report(ws, report, settings, database_url, note=console.print)
    console.print(f"published run {run_id} to {shown_url(url)}")


# --------------------------------------------------------------------------- clusters


@app.command()
def cluster(
    workspace: WorkspaceOpt = None,
    as_of: AsOfOpt = None,
    out: Annotated[Path, typer.Option(help="clusters.csv (+ clusters.html beside it).")] = Path(
        "clusters.csv"
    ),
    k: Annotated[int | None, typer.Option("--k", help="Force the number of clusters.")] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="Re-cluster: fit on the window ending at this date first, carry the cluster "
            "ids and names over to --as-of and write the stores that moved, with the reason, "
            "to <out>_moves.csv.",
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Cluster stores by how their customers buy (as of the exact --as-of date)."""
    with errors():
        from stocktailor.clustering import clusters_report_html, recluster
        from stocktailor.pipeline import Pipeline, tables_at
        from stocktailor.plan import fit_clusterer

        overrides = {"clustering": {"n_clusters": k}} if k is not None else {}
        settings = settings_for(config, **overrides)
        ws = existing_workspace(workspace)
        date = _day(Pipeline(ws, settings), as_of)
        tables = tables_at(ws, date)
        moves_path = None
        if since is None:
            with console.status("clustering stores"):
                model = fit_clusterer(tables, date, settings)
        else:
            before = parse_date("--since", since)
            if before >= date:
                msg = f"--since {before} must be before --as-of {date}"
                raise UsageError(msg)
            with console.status(f"clustering stores as of {before}, then {date}"):
                previous = fit_clusterer(tables, before, settings)
                model, moves = recluster(
                    previous,
                    tables,
                    date,
                    move_margin=settings.clustering.move_margin,
                    change_factor=settings.clustering.change_factor,
                )
            moves_path = write_frame(moves, out.with_name(f"{out.stem}_moves.csv"))
        write_frame(model.labels_, out)
        html = out.with_suffix(".html")
        clusters_report_html(model, tables.stores, html)
        summary = (
            model.labels_.group_by("cluster_id", "cluster_name")
            .agg(pl.len().alias("stores"))
            .sort("cluster_id")
        )
        print_frame(summary, f"Clusters as of {date}")
        if moves_path is not None:
            console.print(f"{moves.height} stores moved since {since}: wrote {moves_path}")
        console.print(f"wrote {out} and {html}")
