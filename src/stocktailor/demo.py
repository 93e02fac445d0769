"""``stocktailor demo``: the whole flow on the built-in network (an edge: it writes files).

Generate the ``default`` network, ingest it, run the plan through the step runner (the same
``stocktailor run`` a retailer uses), publish it for review, and replay a short season under
each policy. Every path it prints is absolute, so the hints work from any folder.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console

from stocktailor.cli.common import kpi_rows, with_currency
from stocktailor.config import Settings
from stocktailor.engine import make_engine
from stocktailor.money import money_label
from stocktailor.plan import ProgressFactory
from stocktailor.summary import kpis_by_policy, network_summary

__all__ = ["BACKTEST_SHAPE", "run_demo", "stocktailor_command"]

BACKTEST_SHAPE = (12, 200)
"""Stores x SKU-sizes of the demo's closing backtest (a small network keeps it to minutes)."""

_COUNT_KPIS = (
    "transfer_lines",
    "transfer_units",
    "transfer_lanes",
    "allocation_units",
    "stores",
    "clusters",
    "recommendations",
    "forecast_units_to_season_end",
)


@dataclass
class _Demo:
    out: Path
    settings: Settings
    console: Console
    progress: ProgressFactory
    print_frame: Callable[..., None]
    write_frame: Callable[[pl.DataFrame, Path], Path]
    scenario: str = "default"
    shape: tuple[int | None, int | None] = (None, None)
    backtest_shape: tuple[int, int] = BACKTEST_SHAPE

    @property
    def data_dir(self) -> Path:
        return self.out / "data"

    @property
    def ws_dir(self) -> Path:
        return self.out / "workspace"

    @property
    def results(self) -> Path:
        return self.out / "results"


def stocktailor_command() -> str:
    """The absolute path of the ``stocktailor`` script (works from any folder)."""
    beside = Path(sys.executable).parent / "stocktailor"
    if beside.is_file():
        return str(beside.absolute())
    found = shutil.which("stocktailor")
    return str(Path(found).absolute()) if found else f"{sys.executable} -m stocktailor.cli"


def kpi_frame(kpis: dict[str, float]) -> pl.DataFrame:
    """The plan's headline figures: counts and units as whole numbers, money with cents."""
    counts = {k: v for k, v in kpis.items() if k in _COUNT_KPIS}
    money = {k: v for k, v in kpis.items() if k not in _COUNT_KPIS}
    return pl.concat(
        [
            pl.DataFrame({"figure": list(counts), "count": [round(v) for v in counts.values()]}),
            pl.DataFrame({"figure": list(money), "amount": [float(v) for v in money.values()]}),
        ],
        how="diagonal",
    )


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
    scenario: str = "default",
    shape: tuple[int | None, int | None] = (None, None),
    backtest_shape: tuple[int, int] = BACKTEST_SHAPE,
) -> dict[str, Any]:
    """Generate ``default``, ingest it, plan, publish for review and backtest.

    ``scenario``, ``shape`` (stores, SKU-sizes) and ``backtest_shape`` change the networks
    (the tests use small ones).

    Returns
    -------
    dict
        Paths and figures of the run (``workspace``, ``results``, ``report``, ``token``, ...).
    """
    demo = _Demo(
        Path(out).absolute(),
        settings,
        console,
        progress_factory,
        print_frame,
        write_frame,
        scenario,
        shape,
        backtest_shape,
    )
    started = time.perf_counter()
    ws = _ingest(demo, seed)
    report, plan = _plan(demo, ws)
    run_id, url, token = _publish(demo, ws, report)
    bt = _backtest(demo, seed, backtest_seeds)
    _closing(demo, time.perf_counter() - started, bt.report_path, run_id, url, token)
    return {
        "workspace": demo.ws_dir,
        "results": demo.results,
        "report": bt.report_path,
        "run_id": run_id,
        "token": token,
        "kpis": plan.kpis,
    }


def _ingest(demo: _Demo, seed: int) -> Any:
    from stocktailor.synth import generate
    from stocktailor.workspace import Workspace

    with demo.console.status(f"generating the built-in network (scenario {demo.scenario})"):
        net = generate(demo.scenario, seed, n_stores=demo.shape[0], n_sku_sizes=demo.shape[1])
        net.write(demo.data_dir)
    with demo.console.status("validating and ingesting"):
        ws = Workspace(demo.ws_dir)
        ws.ingest(demo.data_dir, demo.settings)
    return ws


def _plan(demo: _Demo, ws: Any) -> tuple[Any, Any]:
    from stocktailor.clustering import clusters_report_html
    from stocktailor.pipeline import Pipeline, forecast_scan, plan_result, read_output, tables_at
    from stocktailor.pipeline.publish import lane_premiums_for

    premiums = lane_premiums_for(ws, demo.settings)  # the database _publish writes to
    with make_engine(demo.settings.engine) as engine:
        pipeline = Pipeline(
            ws,
            demo.settings,
            engine=engine,
            progress_factory=demo.progress,
            lane_premiums=premiums,
        )
        report = pipeline.run()
    plan = plan_result(ws, report, demo.settings)
    tables = tables_at(ws, report.day)
    clusters = plan.clusters.select("store_id", pl.col("cluster_name").alias("group"))
    summary = network_summary(tables, report.day, groups=clusters).rename({"group": "cluster"})
    demo.print_frame(summary, f"Network as of {report.day}, by store cluster")
    results = demo.results
    results.mkdir(parents=True, exist_ok=True)
    demo.write_frame(plan.clusters, results / "clusters.csv")
    scan = forecast_scan(report.output("forecast"))
    scan.sink_parquet(results / "forecast.parquet")
    currency = demo.settings.economics.currency
    demo.write_frame(with_currency(plan.allocation, currency), results / "allocation.csv")
    demo.write_frame(with_currency(plan.transfers, currency), results / "transfers.csv")
    clusterer = _load_clusterer(report.output("clusters").file("model.pkl"))
    clusters_report_html(clusterer, tables.stores, results / "clusters.html")
    in_money = f"amounts in {money_label(currency)}"
    demo.print_frame(kpi_frame(plan.kpis), f"Plan ({in_money})", max_rows=40)
    top = read_output(report.output("plan"), "transfers.parquet")
    demo.print_frame(
        top.sort("net_benefit", descending=True).select(
            "sku", "from_id", "to_id", "units", "transfer_cost", "net_benefit"
        ),
        f"Top transfers by net benefit ({in_money})",
        max_rows=10,
    )
    return report, plan


def _load_clusterer(path: Path) -> Any:
    import pickle

    with path.open("rb") as handle:
        return pickle.load(handle)  # written by this workspace's own run


def _publish(demo: _Demo, ws: Any, report: Any) -> tuple[int, str, str]:
    from stocktailor import workflow
    from stocktailor.pipeline.publish import publish_report

    run_id, url = publish_report(ws, report, demo.settings, user="demo")
    db = workflow.connect(url)
    try:
        token = workflow.ensure_demo_user(db)
    finally:
        db.dispose()
    return run_id, url, token


def _backtest(demo: _Demo, seed: int, n_seeds: int) -> Any:
    from stocktailor.simulate.backtest import backtest

    stores, skus = demo.backtest_shape
    seeds = list(range(seed, seed + n_seeds))
    demo.console.print(
        f"\nA short backtest replays a season under five policies (warehouse replenishment "
        f"only, a weeks-of-cover rule, stocktailor, the same optimiser fed true demand, and an "
        f"upper bound that knows every draw). It runs on a small synthetic "
        f"network ({stores} stores x {skus} SKU-sizes, scenario 'scale') because replaying the "
        f"60-store season takes much longer; `stocktailor backtest --scenario default` runs that."
    )
    with demo.progress(
        f"backtest (5 policies, {stores} stores x {skus} SKU-sizes)", 5 * len(seeds)
    ) as advance:
        bt = backtest(
            "scale",
            seeds,
            ["none", "rule", "stocktailor", "same-optimiser-true-demand", "bound"],
            demo.settings,
            demo.out / "backtest",
            n_stores=stores,
            n_sku_sizes=skus,
            progress=advance,
        )
    table = kpi_rows(kpis_by_policy(bt.kpi_table()))
    demo.print_frame(
        table,
        f"Backtest on the small network ({stores} stores), seeds {seeds}, amounts in "
        f"{money_label(demo.settings.economics.currency)}",
        max_rows=40,
        right=tuple(c for c in table.columns if c != "kpi"),
    )
    return bt


def _closing(
    demo: _Demo, elapsed: float, report_path: Path, run_id: int, url: str, token: str
) -> None:
    from stocktailor.pipeline.publish import shown_url

    say = demo.console.print
    say(f"\n[bold]Done in {elapsed:,.0f} s.[/bold] Results are in {demo.out}:")
    say(f"  data folder       {demo.data_dir}")
    say(f"  workspace         {demo.ws_dir}")
    say(f"  plan outputs      {demo.results} (clusters, forecast, allocation, transfers)")
    say(f"  backtest report   {Path(report_path).absolute()}")
    say(f"  published run     {run_id} in {shown_url(url)}")
    serve = demo.settings.serve
    say(
        f"Review it: {stocktailor_command()} serve --workspace {demo.ws_dir}\n"
        f"  then open http://{serve.host}:{serve.port}/ and sign in with the token {token}",
        soft_wrap=True,
    )
