"""The ``stocktailor`` command line (Typer + Rich).

Every command accepts ``--config FILE.toml``; errors exit non-zero with one line on stderr.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from stocktailor.config import ConfigError, Settings, load_settings
from stocktailor.contract import ContractError, Tables
from stocktailor.summary import kpis_by_policy

app = typer.Typer(
    name="stocktailor",
    help="Keep a fashion retailer's inventory in the right store at the right time.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True, soft_wrap=True)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="Settings file (TOML); STOCKTAILOR_* variables override it."),
]
WorkspaceOpt = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        help="Workspace folder (default $STOCKTAILOR_WORKSPACE, else ./stocktailor-workspace).",
    ),
]
AsOfOpt = Annotated[
    str | None,
    typer.Option("--as-of", help="Plan date YYYY-MM-DD (default: the latest sales date)."),
]


class NotBuiltError(RuntimeError):
    """A capability that this version does not have yet."""


class UsageError(ValueError):
    """A command-line argument is invalid."""


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Turn expected failures into one clear line on stderr and a non-zero exit."""
    try:
        yield
    except NotBuiltError as exc:
        err_console.print(f"stocktailor: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    except (
        ContractError,
        ConfigError,
        UsageError,
        ValueError,
        FileNotFoundError,
        NotADirectoryError,
        KeyError,
    ) as exc:
        text = " ".join(str(exc).split())
        err_console.print(f"error: {text}", markup=False, highlight=False)
        raise typer.Exit(1) from None


def _settings(config: Path | None, **overrides: Any) -> Settings:
    return load_settings(config, overrides=overrides or None)


def _workspace_path(workspace: Path | None) -> Path:
    from stocktailor.workspace import default_workspace_path

    return workspace if workspace is not None else default_workspace_path()


def _load_workspace(workspace: Path | None) -> tuple[Any, Tables]:
    from stocktailor.workspace import Workspace

    ws = Workspace(_workspace_path(workspace))
    if not ws.exists():
        msg = f"{ws.path}: no workspace here; run `stocktailor ingest DATA_DIR --workspace WS`"
        raise FileNotFoundError(msg)
    return ws, ws.load()


def _parse_date(option: str, value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        msg = f"{option}: expected a date YYYY-MM-DD, got {value!r}"
        raise UsageError(msg) from None


def _as_of(value: str | None, tables: Tables) -> dt.date:
    if value is None:
        latest = tables.sales["date"].max()
        if not isinstance(latest, dt.date):
            msg = "sales: no rows, so --as-of has no default; pass --as-of YYYY-MM-DD"
            raise UsageError(msg)
        return latest
    return _parse_date("--as-of", value)


def write_frame(frame: pl.DataFrame, path: Path) -> Path:
    """Write ``frame`` in the format named by the suffix (.csv, .parquet, .xlsx)."""
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if suffix == ".csv":
        frame.write_csv(tmp)
    elif suffix == ".parquet":
        frame.write_parquet(tmp)
    elif suffix == ".xlsx":
        frame.write_excel(tmp, autofit=True)
    else:
        msg = f"{path}: unknown output format {suffix!r}; expected .csv, .parquet or .xlsx"
        raise UsageError(msg)
    tmp.replace(path)
    return path


@contextlib.contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A Rich progress bar; yields a callback that advances it."""
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(description, total=total)

        def advance(n: int) -> None:
            bar.advance(task, n)

        yield advance


def _print_frame(frame: pl.DataFrame, title: str, *, max_rows: int = 20) -> None:
    table = Table(title=title)
    for name in frame.columns:
        table.add_column(name, justify="right" if frame[name].dtype.is_numeric() else "left")
    for row in frame.head(max_rows).iter_rows():
        table.add_row(*[_fmt(v) for v in row])
    console.print(table)
    if frame.height > max_rows:
        console.print(f"... {frame.height - max_rows} more rows")


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


# ---------------------------------------------------------------- generate / ingest


@app.command()
def generate(
    scenario: Annotated[str, typer.Option(help="seed-stories, default or scale.")] = "default",
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same bytes.")] = 0,
    out: Annotated[Path, typer.Option(help="Output data folder.")] = Path("synthetic-data"),
    stores: Annotated[int | None, typer.Option("--stores", help="Stores (scale).")] = None,
    sku_sizes: Annotated[int | None, typer.Option("--sku-sizes", help="SKU-sizes (scale).")] = None,
    switch_segments: Annotated[
        int, typer.Option(help="Stores that switch behaviour segment mid-season.")
    ] = 0,
    config: ConfigOpt = None,
) -> None:
    """Write a synthetic data folder (+ truth/) for a named scenario."""
    with _errors():
        _settings(config)
        from stocktailor.synth import SCENARIOS
        from stocktailor.synth import generate as make

        if scenario not in SCENARIOS:
            msg = f"--scenario: unknown {scenario!r}; expected one of {', '.join(SCENARIOS)}"
            raise UsageError(msg)
        with console.status(f"generating {scenario} (seed {seed})"):
            net = make(
                scenario,
                seed,
                n_stores=stores,
                n_sku_sizes=sku_sizes,
                switch_segments=switch_segments,
            )
            net.write(out)
        t = net.tables
        console.print(
            f"{scenario} seed {seed}: {t.stores.height} locations, {t.products.height} SKU-sizes, "
            f"{t.sales.height:,} sales rows, as of {net.as_of}; written to {out} (truth in truth/)"
        )


@app.command()
def ingest(
    data_dir: Annotated[Path, typer.Argument(help="Folder with one CSV/Parquet file per table.")],
    workspace: WorkspaceOpt = None,
    append: Annotated[
        bool,
        typer.Option(
            "--append",
            help="Add an increment (new days of sales, snapshots, signals; new stores or "
            "products) to the stored history instead of replacing it. Rows already stored are "
            "skipped; a row that contradicts a stored one is refused.",
        ),
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Validate a data folder and load it into the workspace (all or nothing)."""
    with _errors():
        from stocktailor.workspace import Workspace

        settings = _settings(config)
        ws = Workspace(_workspace_path(workspace))
        if append:
            from stocktailor.pipeline import append_increment

            with console.status(f"validating the increment {data_dir}"):
                increment = append_increment(ws, data_dir, settings)
            console.print(increment)
            return
        with console.status(f"validating {data_dir}"):
            report = ws.ingest(data_dir, settings)
        console.print(f"ingested {data_dir} into {ws.path}")
        console.print(report)


# ---------------------------------------------------------------- plan steps


def _fit_clusters(tables: Tables, as_of: dt.date, settings: Settings) -> Any:
    from stocktailor.plan import fit_clusterer

    return fit_clusterer(tables, as_of, settings)


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
    """Cluster stores by how their customers buy."""
    with _errors():
        overrides = {"clustering": {"n_clusters": k}} if k is not None else {}
        settings = _settings(config, **overrides)
        _, tables = _load_workspace(workspace)
        date = _as_of(as_of, tables)
        from stocktailor.clustering import clusters_report_html, recluster

        moves_path = None
        if since is None:
            with console.status("clustering stores"):
                model = _fit_clusters(tables, date, settings)
        else:
            before = _parse_date("--since", since)
            if before >= date:
                msg = f"--since {before} must be before --as-of {date}"
                raise UsageError(msg)
            with console.status(f"clustering stores as of {before}, then {date}"):
                previous = _fit_clusters(tables, before, settings)
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
        _print_frame(summary, f"Clusters as of {date}")
        if moves_path is not None:
            console.print(f"{moves.height} stores moved since {since}: wrote {moves_path}")
        console.print(f"wrote {out} and {html}")


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
    with _errors():
        settings = _settings(config)
        _, tables = _load_workspace(workspace)
        date = _as_of(as_of, tables)
        from stocktailor.engine import make_engine
        from stocktailor.plan import forecast_step

        with console.status("clustering stores"):
            clusters = _fit_clusters(tables, date, settings).labels_
        with make_engine(settings.engine) as engine:
            fc = forecast_step(
                tables,
                date,
                settings,
                clusters=clusters,
                engine=engine,
                progress_factory=progress_bar,
            )
        write_frame(fc, out)
        console.print(
            f"forecast for {fc['store_id'].n_unique()} stores x {fc['sku'].n_unique()} SKUs, "
            f"{fc['week_start'].n_unique()} weeks: wrote {out}"
        )


def _plan(
    workspace: Path | None, as_of: str | None, config: Path | None
) -> tuple[Any, Tables, Settings, Any]:
    from stocktailor.engine import make_engine
    from stocktailor.plan import run_plan

    settings = _settings(config)
    ws, tables = _load_workspace(workspace)
    date = _as_of(as_of, tables)
    with make_engine(settings.engine) as engine:
        result = run_plan(
            tables,
            date,
            settings,
            engine=engine,
            progress_factory=progress_bar,
            data_fingerprint=ws.fingerprint(),
        )
    return ws, tables, settings, result


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
    with _errors():
        from stocktailor.allocation import allocate as do_allocate
        from stocktailor.engine import make_engine
        from stocktailor.plan import forecast_step, size_curve_step

        settings = _settings(config)
        _, tables = _load_workspace(workspace)
        date = _as_of(as_of, tables)
        with console.status("clustering stores"):
            clusters = _fit_clusters(tables, date, settings).labels_
        with make_engine(settings.engine) as engine:
            fc = forecast_step(
                tables,
                date,
                settings,
                clusters=clusters,
                engine=engine,
                progress_factory=progress_bar,
            )
        curves = size_curve_step(tables, date, settings, clusters=clusters)
        lines = do_allocate(tables, date, fc, settings, clusters=clusters, size_curves=curves)
        write_frame(lines, out)
        console.print(
            f"allocation: {lines.height} lines, {int(lines['units'].sum() or 0):,} units, "
            f"expected gain {float(lines['expected_gain'].sum() or 0.0):,.2f}; wrote {out}"
        )


@app.command()
def rebalance(
    workspace: WorkspaceOpt = None,
    as_of: AsOfOpt = None,
    out: Annotated[Path, typer.Option(help="transfers.csv (or .parquet/.xlsx).")] = Path(
        "transfers.csv"
    ),
    publish: Annotated[
        bool, typer.Option("--publish", help="Store the run in the workflow database for review.")
    ] = False,
    database_url: Annotated[
        str | None, typer.Option(help="Workflow database (default: SQLite in the workspace).")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Recommend store-to-store transfers, each with its own P&L."""
    with _errors():
        ws, tables, settings, result = _plan(workspace, as_of, config)
        write_frame(result.transfers, out)
        _print_transfer_summary(result, tables)
        console.print(f"wrote {out}")
        if publish:
            run_id = _publish(result, tables, settings, database_url or ws.database_url)
            console.print(f"published run {run_id} to {database_url or ws.database_url}")


def _print_transfer_summary(result: Any, tables: Tables) -> None:
    from stocktailor.transfers import summarise_transfers

    summary = summarise_transfers(
        result.transfers, tables.stores, tables.products, clusters=result.clusters
    )
    _print_frame(summary, f"Transfers as of {result.as_of}")


def _publish(result: Any, tables: Tables, settings: Settings, database_url: str) -> int:
    from stocktailor import workflow

    workflow.upgrade(database_url)
    engine = workflow.connect(database_url)
    try:
        positions = workflow.stock_context(tables, result.as_of, settings)
        run_id: int = workflow.publish_run(
            engine,
            result,
            tables.stores,
            tables.products,
            positions=positions,
            config=settings.serve,
            user="cli",
        )
    finally:
        engine.dispose()
    return run_id


# ---------------------------------------------------------------- backtest / serve / demo


@app.command()
def backtest(
    scenario: Annotated[str, typer.Option(help="Generator scenario.")] = "default",
    seed: Annotated[list[int] | None, typer.Option(help="Seed (repeat for several).")] = None,
    policy: Annotated[
        list[str] | None, typer.Option(help="none, rule, stocktailor, oracle (repeatable).")
    ] = None,
    out: Annotated[Path, typer.Option(help="Report folder.")] = Path("backtest"),
    stores: Annotated[int | None, typer.Option("--stores", help="Stores (scale).")] = None,
    sku_sizes: Annotated[int | None, typer.Option("--sku-sizes", help="SKU-sizes (scale).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Replay a season under each policy and report KPIs (HTML + CSV)."""
    with _errors():
        from stocktailor.engine import make_engine
        from stocktailor.simulate.backtest import backtest as run_backtest

        settings = _settings(config)
        seeds = seed or [0]
        policies = policy or ["none", "rule", "stocktailor", "oracle"]
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
            )
        _print_frame(
            kpis_by_policy(result.kpi_table()), f"Backtest {scenario}, seeds {seeds}", max_rows=40
        )
        console.print(f"report: {result.report_path}")


@app.command()
def serve(
    workspace: WorkspaceOpt = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL.")] = None,
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Serve the planner dashboard and the HTTP API."""
    with _errors():
        from stocktailor import workflow
        from stocktailor.api import serve_app
        from stocktailor.workspace import Workspace

        settings = _settings(config)
        url = database_url or settings.serve.database_url
        if url is None:
            url = Workspace(_workspace_path(workspace)).database_url
        workflow.upgrade(url)
        h = host or settings.serve.host
        p = port or settings.serve.port
        console.print(f"stocktailor dashboard on http://{h}:{p}/ (API docs at /docs), db {url}")
        serve_app(settings, url, h, p)


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
    with _errors():
        from stocktailor.demo import run_demo

        settings = _settings(config)
        run_demo(
            out,
            settings,
            seed=seed,
            backtest_seeds=backtest_seeds,
            console=console,
            progress_factory=progress_bar,
            print_frame=_print_frame,
            write_frame=write_frame,
        )


def main() -> None:
    """Entry point of the ``stocktailor`` script."""
    logging.basicConfig(
        level=os.environ.get("STOCKTAILOR_LOG_LEVEL", "WARNING").upper(),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    app()
