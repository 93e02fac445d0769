"""How much the daily forecast update costs in accuracy against a refit on the same day.

    python benchmarks/pipeline_update.py [--scenario scale --stores 20 --sku-sizes 300]
                                         [--seeds 10 11 12 13 14] [--lags 1 3 6]
                                         [--priors 200]

For each seed the whole history is ingested once; for as-of dates ``lag`` days after a weekly
refit day (a week before the last one, so a week of true demand follows), three forecasts of
the next week are scored against the synthetic truth (expected demand per store x SKU):

* ``update p<N>``: fitted on the refit day, updated to the date by sensing with prior N
  (``pipeline.sensing_prior_units``) and re-dated (what ``stocktailor run`` does daily);
* ``redated``: the same without sensing (prior 1e12: ratio 1);
* ``refit``: fitted on the date itself (``pipeline.refit_every_days = 1``).

Prints week-1 WAPE at store x SKU and the forecast total over the true one per case, the mean
per variant and the update's worst excess WAPE over the refit. The update tolerance written in
``docs/benchmarks.md`` and tested in ``tests/test_pipeline_runner.py`` comes from this.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import tempfile
from pathlib import Path

import numpy as np
import polars as pl

from stocktailor.config import PipelineConfig, SeasonConfig, Settings
from stocktailor.pipeline import Pipeline, forecast_scan
from stocktailor.pipeline.increments import split_increments, write_folder
from stocktailor.synth import generate
from stocktailor.workspace import Workspace


def _week_one(pipeline: Pipeline, day: dt.date, stores: dict[str, int], skus: dict[str, int],
              shape: tuple[int, int]) -> np.ndarray:  # fmt: skip
    report = pipeline.run(day, ["forecast"])
    first = day + dt.timedelta(days=1)
    fc = forecast_scan(report.output("forecast")).filter(pl.col("week_start") == first).collect()
    out = np.zeros(shape)
    rows = [stores[s] for s in fc["store_id"].to_list()]
    cols = [skus[k] for k in fc["sku"].to_list()]
    out[rows, cols] = fc["mean"].to_numpy()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scenario", default="scale")
    ap.add_argument("--stores", type=int, default=20)
    ap.add_argument("--sku-sizes", type=int, default=300)
    ap.add_argument("--seeds", type=int, nargs="+", default=[10, 11, 12, 13, 14])
    ap.add_argument("--lags", type=int, nargs="+", default=[1, 3, 6])
    ap.add_argument("--priors", type=float, nargs="+", default=[200.0])
    args = ap.parse_args()
    base = Settings(season=SeasonConfig(horizon_days=28))  # scale snapshots every 4 weeks
    scores: dict[str, list[float]] = {}
    excess: list[float] = []
    for seed in args.seeds:
        net = generate(args.scenario, seed, n_stores=args.stores, n_sku_sizes=args.sku_sizes)
        folder = Path(tempfile.mkdtemp(prefix="pipeline-update-"))
        ws = Workspace(folder / "ws")
        ws.ingest(write_folder(split_increments(net.tables, net.as_of, 0)[0], folder / "d"), base)
        variants = {
            **{
                f"update p{p:g}": Pipeline(
                    ws, base.model_copy(update={"pipeline": PipelineConfig(sensing_prior_units=p)})
                )
                for p in args.priors
            },
            "redated": Pipeline(
                ws, base.model_copy(update={"pipeline": PipelineConfig(sensing_prior_units=1e12)})
            ),
            "refit": Pipeline(
                ws, base.model_copy(update={"pipeline": PipelineConfig(refit_every_days=1)})
            ),
        }
        truth = net.truth
        stores = {s: i for i, s in enumerate(truth.store_ids)}
        skus = {s: i for i, s in enumerate(truth.skus)}
        refit_day_of = variants["redated"].refit_day(net.as_of)  # the weekly refit day
        for lag in args.lags:
            day = refit_day_of - dt.timedelta(days=7 - lag)
            actual = truth.expected_demand(day + dt.timedelta(days=1), day + dt.timedelta(days=7))
            week = actual.sum(axis=0)
            line = []
            wape = {}
            for name, pipeline in variants.items():
                got = _week_one(pipeline, day, stores, skus, week.shape)
                wape[name] = float(np.abs(got - week).sum() / week.sum())
                scores.setdefault(name, []).append(wape[name])
                line.append(f"{name} {wape[name]:.3f} (total {got.sum() / week.sum():.2f})")
            first = f"update p{args.priors[0]:g}"
            excess.append(wape[first] - wape["refit"])
            print(f"seed {seed} {day} lag {lag}: " + " | ".join(line), flush=True)
        shutil.rmtree(folder, ignore_errors=True)
    means = ", ".join(f"{k} {np.mean(v):.4f}" for k, v in scores.items())
    print(f"\nmean week-1 WAPE vs true demand: {means}")
    print(
        f"update p{args.priors[0]:g} minus refit: mean {np.mean(excess):+.4f}, "
        f"worst {max(excess):+.4f}, best {min(excess):+.4f} over {len(excess)} cases"
    )


if __name__ == "__main__":
    main()
