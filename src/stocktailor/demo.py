"""``stocktailor demo``: the whole flow on the built-in network (an edge: it writes files)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console

from stocktailor.config import Settings
from stocktailor.engine import make_engine
from stocktailor.plan import ProgressFactory, fit_clusterer, run_plan
from stocktailor.summary import kpis_by_policy, network_summary

__all__ = ["run_demo"]


def run_demo(
    out: Path,
    settings: Settings,
    *,
    seed: int = 0,
    backtest_seeds: int = 1,
    console: Console,
    progress_factory: ProgressFactory,
    print_frame: Callable[..., None],
    write_frame: Callable[[pl.DataFrame, Path], Path],
) -> dict[str, Any]:
    """Generate ``default``, ingest it, plan, publish for review and backtest.

    Returns
    -------
    dict
        Paths and figures of the run (``workspace``, ``results``, ``report``, ``token``, ...).
    """
    from stocktailor import workflow
    from stocktailor.clustering import clusters_report_html
    from stocktailor.simulate.backtest import backtest
    from stocktailor.synth import generate
    from stocktailor.workspace import Workspace

    out = Path(out)
    data_dir, ws_dir, results = out / "data", out / "workspace", out / "results"
    started = time.perf_counter()

    with console.status("generating the built-in network (scenario default)"):
        net = generate("default", seed)
        net.write(data_dir)
    with console.status("validating and ingesting"):
        ws = Workspace(ws_dir)
        ws.ingest(data_dir, settings)
        tables = ws.load()
    as_of = net.as_of
    segments = net.truth.segments.select("store_id", pl.col("segment").alias("group"))
    summary = network_summary(tables, as_of, groups=segments)
    print_frame(summary, f"Network as of {as_of} by (true) segment")

    with console.status("clustering stores"):
        clusterer = fit_clusterer(tables, as_of, settings)
    with make_engine(settings.engine) as engine:
        plan = run_plan(
            tables,
            as_of,
            settings,
            engine=engine,
            progress_factory=progress_factory,
            data_fingerprint=ws.fingerprint(),
            clusterer=clusterer,
        )
    results.mkdir(parents=True, exist_ok=True)
    write_frame(plan.clusters, results / "clusters.csv")
    write_frame(plan.forecast, results / "forecast.parquet")
    write_frame(plan.allocation, results / "allocation.csv")
    write_frame(plan.transfers, results / "transfers.csv")
    clusters_report_html(clusterer, tables.stores, results / "clusters.html")

    kpi_frame = pl.DataFrame(
        {"kpi": list(plan.kpis), "value": [float(v) for v in plan.kpis.values()]}
    )
    print_frame(kpi_frame, "Plan", max_rows=40)
    print_frame(
        plan.transfers.sort("net_benefit", descending=True).select(
            "sku", "from_id", "to_id", "units", "transfer_cost", "net_benefit"
        ),
        "Top transfers by net benefit",
        max_rows=10,
    )

    url = ws.database_url
    workflow.upgrade(url)
    db = workflow.connect(url)
    try:
        positions = workflow.stock_context(tables, as_of, settings)
        run_id = workflow.publish_run(
            db,
            plan,
            tables.stores,
            tables.products,
            positions=positions,
            config=settings.serve,
            user="demo",
        )
        token = workflow.ensure_demo_user(db)
    finally:
        db.dispose()

    # A short backtest: a small network keeps the demo to minutes; `stocktailor backtest
    # --scenario default` runs the full-size one.
    seeds = list(range(seed, seed + backtest_seeds))
    with progress_factory(
        "backtest (5 policies, 12 stores x 200 SKU-sizes)", 5 * len(seeds)
    ) as advance:
        bt = backtest(
            "scale",
            seeds,
            ["none", "rule", "stocktailor", "same-optimiser-true-demand", "bound"],
            settings,
            out / "backtest",
            n_stores=12,
            n_sku_sizes=200,
            progress=advance,
        )
    print_frame(
        kpis_by_policy(bt.kpi_table()),
        f"Short backtest (scale, 12 stores), seeds {seeds}",
        max_rows=40,
    )

    elapsed = time.perf_counter() - started
    console.print(f"\n[bold]Done in {elapsed:,.0f} s.[/bold] Results are in {out.resolve()}:")
    console.print(f"  data folder       {data_dir}")
    console.print(f"  workspace         {ws_dir}")
    console.print(f"  plan outputs      {results} (clusters, forecast, allocation, transfers)")
    console.print(f"  backtest report   {bt.report_path}")
    console.print(f"  published run     {run_id} in {url}")
    console.print(
        f"Review it: .venv/bin/stocktailor serve --workspace {ws_dir}  "
        f"then open http://{settings.serve.host}:{settings.serve.port}/ with token {token}"
    )
    return {
        "workspace": ws_dir,
        "results": results,
        "report": bt.report_path,
        "run_id": run_id,
        "token": token,
    }
