"""The whole plan at scale through the command line, in-process and on a Dask LocalCluster.

    python benchmarks/scale.py [--stores 1000] [--sku-sizes 20000] [--engines local dask]
                               [--out DIR]

What a user runs, one `stocktailor` process per command under `/usr/bin/time -v`:

1. ``generate`` the ``scale`` network and ``ingest`` it once (kept in ``OUT``);
2. per engine, a fresh copy of the workspace and ``stocktailor run`` from nothing stored
   (clusters, demand, forecast, plan: allocation and transfers): wall time, peak resident
   memory of the largest process, seconds per step;
3. then, with the forecast stored, the plan output removed and ``stocktailor rebalance``
   alone (only the plan step runs: allocation and transfers are one optimisation);
4. the engines' stored outputs compared (same plan).

The weekly forecast is written and read in parts (``forecast_parts`` -> ``write_parts`` ->
the optimiser's scan): the command line and this benchmark take one path. Wall times on a
shared machine are only comparable with the load average printed beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl

BIN = Path(sys.executable).parent / "stocktailor"
OUT = Path(__file__).parent / "out"


def _step_seconds(ws: Path, since: float) -> dict[str, float]:
    """Seconds of each step output stored after ``since`` (from its meta.json)."""
    out = {}
    for meta in sorted((ws / "outputs").glob("*/*/meta.json")):
        if meta.stat().st_mtime >= since:
            data = json.loads(meta.read_text())
            out[data["step"]] = float(data.get("seconds", 0.0))
    return out


def _timed(args: list[str], log: Path, ws: Path) -> dict[str, Any]:
    """Run a command under /usr/bin/time -v; wall seconds, peak RSS (MB), load, step seconds."""
    wall = time.time()
    load = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-v", str(BIN), *args], capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    log.write_text(done.stdout + "\n--- stderr ---\n" + done.stderr)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(done.returncode)
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    return {
        "seconds": seconds,
        "peak_mb": int(peak.group(1)) / 1024 if peak else None,
        "load_before": load,
        "load_after": os.getloadavg()[0],
        "steps": _step_seconds(ws, wall),
    }


def prepare(stores: int, sku_sizes: int, out: Path) -> Path:
    """Generate and ingest ``scale`` once; return the workspace holding only the tables."""
    base = out / f"scale-{stores}x{sku_sizes}"
    ws = base / "workspace"
    if (ws / "tables" / "manifest.json").exists():
        return ws
    size = ["--stores", str(stores), "--sku-sizes", str(sku_sizes)]
    subprocess.run([str(BIN), "generate", "--scenario", "scale", "--seed", "0", *size,
                    "--out", str(base / "data")], check=True)  # fmt: skip
    subprocess.run([str(BIN), "ingest", str(base / "data"), "--workspace", str(ws)], check=True)
    return ws


def _fresh_copy(ws: Path, target: Path) -> Path:
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    shutil.copytree(ws / "tables", target / "tables")
    return target


def run_engine(ws: Path, engine: str, workers: int, folder: Path) -> dict[str, Any]:
    """``run`` from a fresh workspace, then ``rebalance`` alone with the forecast stored."""
    work = _fresh_copy(ws, folder / f"ws-{engine}")
    config: list[str] = []
    if engine == "dask":
        toml = folder / "dask.toml"
        toml.write_text(f'[engine]\nengine = "dask"\nn_workers = {workers}\n')
        config = ["--config", str(toml)]
    run = _timed(["run", "--workspace", str(work), *config], folder / f"run-{engine}.log", work)
    shutil.rmtree(work / "outputs" / "plan")
    rebalance = _timed(
        ["rebalance", "--workspace", str(work), "--out", str(folder / f"transfers-{engine}.csv"),
         *config],
        folder / f"rebalance-{engine}.log",
        work,
    )  # fmt: skip
    return {"engine": engine, "run": run, "rebalance": rebalance, "workspace": str(work)}


def _same_outputs(a: Path, b: Path) -> dict[str, bool]:
    """Whether two workspaces stored equal outputs (forecast rows compared in key order)."""
    from polars.testing import assert_frame_equal

    same = {}
    files = {"clusters": "labels.parquet", "plan": "allocation.parquet",
             "plan ": "transfers.parquet", "forecast": "forecast/part-*.parquet"}  # fmt: skip
    for key, name in files.items():
        step = key.strip()
        x, y = (sorted((w / "outputs" / step).glob(f"*/{name}")) for w in (a, b))
        if step == "forecast":  # a refit day's forecast lives in the demand output
            x = x or sorted((a / "outputs" / "demand").glob(f"*/{name}"))
            y = y or sorted((b / "outputs" / "demand").glob(f"*/{name}"))
        try:
            fx = pl.read_parquet(x).sort(pl.all())
            fy = pl.read_parquet(y).sort(pl.all())
            assert_frame_equal(fx, fy)
            same[f"{step}/{name}"] = True
        except (AssertionError, OSError, pl.exceptions.PolarsError):
            same[f"{step}/{name}"] = False
    return same


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--stores", type=int, default=1000)
    ap.add_argument("--sku-sizes", type=int, default=20000)
    ap.add_argument("--engines", nargs="+", default=["local", "dask"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    ws = prepare(args.stores, args.sku_sizes, args.out)
    folder = ws.parent / "runs"
    folder.mkdir(exist_ok=True)
    results = []
    for engine in args.engines:
        r = run_engine(ws, engine, args.workers, folder)
        results.append(r)
        print(json.dumps(r, indent=2), flush=True)
    print(f"\nscale: {args.stores} stores x {args.sku_sizes} SKU-sizes, through the CLI")
    print(f"{'engine':<7}{'command':<11}{'wall s':>9}{'peak MB':>10}{'load':>12}  steps (s)")
    for r in results:
        for name in ("run", "rebalance"):
            m = r[name]
            steps = ", ".join(f"{k} {v:,.0f}" for k, v in m["steps"].items() if v)
            load = f"{m['load_before']:.1f}-{m['load_after']:.1f}"
            print(f"{r['engine']:<7}{name:<11}{m['seconds']:>9.1f}{m['peak_mb']:>10,.0f}"
                  f"{load:>12}  {steps}")  # fmt: skip
    if len(results) == 2:
        a, b = (Path(r["workspace"]) for r in results)
        print(f"same outputs on both engines: {_same_outputs(a, b)}")


if __name__ == "__main__":
    main()
