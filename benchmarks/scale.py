"""The whole plan (forecast + rebalance) at scale, in-process and on a 2-worker Dask cluster.

    python benchmarks/scale.py [--stores 1000] [--sku-sizes 20000] [--workers 2]

Generates ``scale`` once into benchmarks/out/ (data folder + workspace), then runs the plan in a
fresh subprocess per engine so each peak-memory figure belongs to that run alone. Prints wall
time, peak resident memory of the driver and of every Dask worker, and the speed-up.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "out"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def prepare(stores: int, sku_sizes: int) -> Path:
    """Generate and ingest ``scale`` once; return the workspace path."""
    from stocktailor.config import Settings
    from stocktailor.synth import generate
    from stocktailor.workspace import Workspace

    base = OUT / f"scale-{stores}x{sku_sizes}"
    ws = Workspace(base / "workspace")
    if ws.exists():
        return ws.path
    t0 = time.perf_counter()
    net = generate("scale", 0, n_stores=stores, n_sku_sizes=sku_sizes)
    net.write(base / "data")
    ws.ingest(base / "data", Settings())
    print(f"prepared {base} in {time.perf_counter() - t0:,.1f} s", flush=True)
    return ws.path


def _worker_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run(workspace: Path, engine_name: str, workers: int) -> dict[str, Any]:
    """One plan run; returns its figures."""
    import polars as pl

    from stocktailor.config import Settings
    from stocktailor.demand import forecast_parts
    from stocktailor.engine import DaskEngine, LocalEngine
    from stocktailor.transfers import plan_transfers
    from stocktailor.workspace import Workspace, write_parts

    settings = Settings()
    tables = Workspace(workspace).load()
    as_of = tables.sales["date"].max()
    engine: Any = LocalEngine() if engine_name == "local" else DaskEngine(n_workers=workers)
    try:
        t0 = time.perf_counter()
        # The weekly forecast goes to Parquet part by part (it is ~100M rows at 1,000 x
        # 20,000) and the optimiser reads its demand windows from the scan.
        parts = forecast_parts(tables, as_of, settings, engine=engine)
        t_fit = time.perf_counter()
        fc = write_parts(parts, workspace.parent / f"forecast-{engine_name}")
        t1 = time.perf_counter()
        lines = plan_transfers(tables, as_of, fc, settings, engine=engine)
        t2 = time.perf_counter()
        fc_rows = int(fc.select(pl.len()).collect().item())
        workers_mb: list[float] = []
        if isinstance(engine, DaskEngine):
            peaks = engine.client.run(_worker_peak_mb)
            workers_mb = [float(v) for v in peaks.values()]
    finally:
        engine.close()
    return {
        "engine": engine_name,
        "fit_s": t_fit - t0,
        "forecast_s": t1 - t0,
        "rebalance_s": t2 - t1,
        "total_s": t2 - t0,
        "driver_peak_mb": _peak_rss_mb(),
        "worker_peak_mb": workers_mb,
        "forecast_rows": fc_rows,
        "transfer_lines": lines.height,
        "transfer_units": int(lines["units"].sum() or 0),
        "net_benefit": float(lines["net_benefit"].sum() or 0.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stores", type=int, default=1000)
    parser.add_argument("--sku-sizes", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--child", choices=["local", "dask"], help=argparse.SUPPRESS)
    parser.add_argument("--workspace", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr
        )
        print(json.dumps(run(args.workspace, args.child, args.workers)), flush=True)
        return

    ws = prepare(args.stores, args.sku_sizes)
    results = []
    for engine in ("local", "dask"):
        cmd = [
            sys.executable,
            __file__,
            "--child",
            engine,
            "--workspace",
            str(ws),
            "--workers",
            str(args.workers),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            raise SystemExit(done.returncode)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))

    print(
        f"\nscale: {args.stores} stores x {args.sku_sizes} SKU-sizes, plan = forecast + rebalance"
    )
    print(
        f"{'engine':<8}{'fit s':>8}{'forecast s':>12}{'rebalance s':>13}{'total s':>10}"
        f"{'driver MB':>11}{'workers MB':>20}{'forecast rows':>15}{'lines':>11}"
        f"{'net benefit':>14}"
    )
    for r in results:
        workers = "/".join(f"{m:,.0f}" for m in r["worker_peak_mb"]) or "-"
        print(
            f"{r['engine']:<8}{r['fit_s']:>8.1f}{r['forecast_s']:>12.1f}{r['rebalance_s']:>13.1f}"
            f"{r['total_s']:>10.1f}{r['driver_peak_mb']:>11,.0f}{workers:>20}"
            f"{r['forecast_rows']:>15,}{r['transfer_lines']:>11,}{r['net_benefit']:>14,.0f}"
        )
    local, dask = results
    same = (
        local["transfer_lines"] == dask["transfer_lines"]
        and abs(local["net_benefit"] - dask["net_benefit"]) < 1e-6
    )
    speedup = local["total_s"] / dask["total_s"]
    print(f"speed-up on {args.workers} Dask workers: {speedup:.2f}x; same plan: {same}")


if __name__ == "__main__":
    main()
