"""The daily loop through the command line: N days of `ingest --append` + `run`.

    python benchmarks/pipeline_daily.py [--scenario default] [--seed 10] [--days 14]
                                        [--stores N --sku-sizes N] [--out DIR]

Everything runs as a user would run it, one `stocktailor` process per command:

1. ``generate --daily N``: the history up to ``as_of - N`` and N daily increments;
2. ``ingest`` the history and ``run`` it from an empty workspace (the *full run*);
3. per day: ``ingest --append`` the increment, then ``run``; wall time of each command, the
   steps it computed and the load average;
4. the last increment appended a second time: no byte of the workspace may change;
5. a fresh workspace loaded with the whole history at once and ``run`` for the last day: its
   clusters, forecast, allocation and transfers must equal the daily loop's.

Prints a table per day and a summary; writes ``OUT/summary.json``. Wall times on a shared
machine are only comparable with the load average printed beside them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
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
from polars.testing import assert_frame_equal

BIN = Path(sys.executable).parent / "stocktailor"
RUN_LINE = re.compile(r"as of (\S+) \(models from the refit day (\S+)\): computed ([^;(]*)")


CONFIG: list[str] = []


def _cli(*args: str) -> tuple[str, float]:
    start = time.perf_counter()
    cmd = [str(BIN), *args, *(CONFIG if args[0] != "generate" else [])]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
        raise SystemExit(done.returncode)
    return done.stdout, seconds


def _load() -> float:
    return os.getloadavg()[0]


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _run(ws: Path, day: str | None = None, out: Path | None = None) -> dict[str, Any]:
    args = ["run", "--workspace", str(ws)]
    if day:
        args += ["--as-of", day]
    if out:
        args += ["--out", str(out)]
    load = _load()
    text, seconds = _cli(*args)
    match = RUN_LINE.search(text)
    assert match, text
    computed = [s.strip() for s in match.group(3).split(",") if s.strip()]
    return {
        "day": match.group(1),
        "refit_day": match.group(2),
        "computed": computed,
        "refit": "demand" in computed,
        "seconds": seconds,
        "load": load,
    }


def _same_outputs(a: Path, b: Path) -> dict[str, bool]:
    out = {}
    for name in ("clusters.csv", "allocation.csv", "transfers.csv"):
        try:
            assert_frame_equal(pl.read_csv(a / name), pl.read_csv(b / name))
            out[name] = True
        except AssertionError:
            out[name] = False
    order = ["store_id", "sku", "week_start"]
    try:
        assert_frame_equal(
            pl.read_parquet(a / "forecast.parquet").sort(order),
            pl.read_parquet(b / "forecast.parquet").sort(order),
        )
        out["forecast.parquet"] = True
    except AssertionError:
        out["forecast.parquet"] = False
    return out


def _agreement(a: Path, b: Path) -> dict[str, float]:
    """How far two output folders are apart: forecast (max absolute difference, units per
    week) and plan lines (share of lines not in both, relative net-benefit difference)."""
    order = ["store_id", "sku", "week_start"]
    fa = pl.read_parquet(a / "forecast.parquet").sort(order)
    fb = pl.read_parquet(b / "forecast.parquet").sort(order)
    out = {
        "forecast_max_abs_diff": max(
            float((fa[c] - fb[c]).abs().max() or 0.0) for c in ("mean", "var", "p10", "p90")
        )
    }
    key = ["sku", "from_id", "to_id", "units"]
    for name in ("allocation", "transfers"):
        la, lb = pl.read_csv(a / f"{name}.csv"), pl.read_csv(b / f"{name}.csv")
        apart = la.select(key).join(lb.select(key), on=key, how="anti").height
        apart += lb.select(key).join(la.select(key), on=key, how="anti").height
        out[f"{name}_lines_apart_share"] = apart / max(1, la.height + lb.height)
        na, nb = float(la["net_benefit"].sum()), float(lb["net_benefit"].sum())
        out[f"{name}_net_benefit_rel_diff"] = abs(na - nb) / max(1.0, abs(nb))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scenario", default="default")
    ap.add_argument("--seed", type=int, default=10)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--stores", type=int)
    ap.add_argument("--sku-sizes", type=int)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "pipeline_daily")
    ap.add_argument("--config", type=Path, help="Settings file passed to every command.")
    args = ap.parse_args()
    if args.config:
        CONFIG.extend(["--config", str(args.config.absolute())])
    out: Path = args.out / f"{args.scenario}-{args.seed}"
    shutil.rmtree(out, ignore_errors=True)
    shape = []
    if args.stores:
        shape += ["--stores", str(args.stores)]
    if args.sku_sizes:
        shape += ["--sku-sizes", str(args.sku_sizes)]
    gen = ["generate", "--scenario", args.scenario, "--seed", str(args.seed), *shape]
    _cli(*gen, "--daily", str(args.days), "--out", str(out / "data"))
    ws = out / "ws"
    _, ingest_s = _cli("ingest", str(out / "data"), "--workspace", str(ws))
    full = _run(ws)
    print(
        f"full run (empty workspace) as of {full['day']}: {full['seconds']:.1f} s, "
        f"load {full['load']:.1f}, computed {', '.join(full['computed'])}",
        flush=True,
    )
    days = []
    for inc in sorted((out / "data" / "increments").iterdir()):
        load = _load()
        _, append_s = _cli("ingest", str(inc), "--append", "--workspace", str(ws))
        run = _run(ws)
        run.update(append_seconds=append_s, append_load=load)
        run["share_of_full"] = (append_s + run["seconds"]) / full["seconds"]
        days.append(run)
        print(
            f"{run['day']}  append {append_s:5.1f} s  run {run['seconds']:6.1f} s  "
            f"({run['share_of_full']:.0%} of full)  load {run['load']:4.1f}  "
            f"{'REFIT ' if run['refit'] else ''}computed {', '.join(run['computed'])}",
            flush=True,
        )
    last = sorted((out / "data" / "increments").iterdir())[-1]
    before = _digest(ws)
    again, _ = _cli("ingest", str(last), "--append", "--workspace", str(ws))
    idempotent = _digest(ws) == before and "nothing new" in again
    _cli(*gen, "--out", str(out / "whole"))
    _cli("ingest", str(out / "whole"), "--workspace", str(out / "ws-fresh"))
    _run(ws, days[-1]["day"], out / "daily-outputs")
    fresh = _run(out / "ws-fresh", days[-1]["day"], out / "fresh-outputs")
    same = _same_outputs(out / "daily-outputs", out / "fresh-outputs")
    agreement = _agreement(out / "daily-outputs", out / "fresh-outputs")
    between = [d for d in days if not d["refit"]]
    refits = [d for d in days if d["refit"]]
    summary = {
        "scenario": args.scenario,
        "seed": args.seed,
        "days": args.days,
        "ingest_seconds": ingest_s,
        "full_run": full,
        "fresh_run_last_day": fresh,
        "days_detail": days,
        "max_share_non_refit": max((d["share_of_full"] for d in between), default=None),
        "mean_share_non_refit": (
            sum(d["share_of_full"] for d in between) / len(between) if between else None
        ),
        "max_share_refit": max((d["share_of_full"] for d in refits), default=None),
        # the fresh run of the last day is a full run too, taken at the loop's end (under the
        # load of the last days): the fairer yardstick on a shared machine
        "shares_of_fresh_non_refit": [
            (d["append_seconds"] + d["seconds"]) / fresh["seconds"] for d in between
        ],
        "idempotent_append": idempotent,
        "equal_to_fresh": same,
        "agreement_with_fresh": agreement,
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"\nnon-refit days: append + run = {summary['mean_share_non_refit']:.0%} of a full run on "
        f"average, {summary['max_share_non_refit']:.0%} at most; refit days at most "
        f"{summary['max_share_refit']:.0%}"
    )
    tail = summary["shares_of_fresh_non_refit"][-3:]
    print(f"last non-refit days against the fresh full run: {', '.join(f'{x:.0%}' for x in tail)}")
    print(f"same increment twice changes no byte: {idempotent}")
    print(f"daily loop equals a fresh workspace on {days[-1]['day']}: {same}")
    print("  how far apart: " + ", ".join(f"{k} {v:.3g}" for k, v in agreement.items()))
    print(f"fresh full run for the last day: {fresh['seconds']:.1f} s (load {fresh['load']:.1f})")


if __name__ == "__main__":
    main()
