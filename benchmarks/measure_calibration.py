"""Issue 15 benchmark: the estimate at approval after calibration, one season to the next.

Usage::

    python benchmarks/measure_calibration.py default --source-seeds 0 --seeds 10 11 12 13 14

Seeds 0-4 are for development; report figures from seeds 10-14.

A retailer calibrates the next season's estimates from the lines it measured before. Here the
source seasons (``--source-seeds``) run the ``stocktailor`` policy with
``simulation.holdback_share = 0.2`` and are measured by the stock ledger, each decision day's
lines of a category together (``backtest --measure``: ``uplift_by_category.csv``); the
product's ``calibration_ratios`` learns realised / estimated from them. Each target season
(``--seeds``) runs the same way; its executed lines' estimates at approval are calibrated with
the product's ``apply_calibration`` (the simulator's lines carry a category but neither a
destination cluster nor a confidence band, so the finest groups are category x unknown) and
compared with the true value of the lines (their CRN replay, ``uplift_truth.csv``). The
target's own measurement is not used. Prints, per target seed, the true total, the estimate
before and after calibration, and the acceptance line of issue 15 (calibrated within 15 %).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import polars as pl

from stocktailor.config import Settings
from stocktailor.measure.calibration import apply_calibration, calibration_ratios
from stocktailor.simulate.backtest import backtest


def _settings() -> Settings:
    s = Settings()
    return s.model_copy(
        update={"simulation": s.simulation.model_copy(update={"holdback_share": 0.2})}
    )


def _season(scenario: str, seed: int, settings: Settings) -> tuple[pl.DataFrame, float, float]:
    """The season's measurement by decision day x category, its true total and seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        backtest(scenario, [seed], ["stocktailor"], settings, tmp, measure=["stocktailor"])
        seconds = time.perf_counter() - t
        floats = {"estimated": pl.Float64, "measured": pl.Float64}
        by_cat = pl.read_csv(Path(tmp) / "uplift_by_category.csv", schema_overrides=floats)
        truth = pl.read_csv(Path(tmp) / "uplift_truth.csv", schema_overrides={"true": pl.Float64})
    return by_cat, float(truth["true"].sum()), seconds


def _calibrated(by_cat: pl.DataFrame, ratios: pl.DataFrame) -> float:
    """Sum of the season's estimates after the product's calibration (one row per decision
    day x category stands for its lines: the category is the line's only group key here)."""
    rows = by_cat.select(
        pl.col("category").alias("sku"),
        pl.lit("-").alias("to_id"),
        pl.col("estimated").fill_null(0.0).alias("net_benefit"),
        pl.col("estimated").fill_null(0.0).alias("expected_gain"),
        pl.lit("").alias("reason"),
    )
    products = pl.DataFrame({"sku": by_cat["category"].unique().to_list()}).with_columns(
        pl.col("sku").alias("category")
    )
    clusters = pl.DataFrame(
        {"store_id": ["-"], "cluster_id": [None]},
        schema={"store_id": pl.String, "cluster_id": pl.String},
    )
    out, _ = apply_calibration(rows, ratios, products, clusters, min_net_benefit=float("-inf"))
    return float(out["net_benefit"].sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario", choices=["default", "seed-stories"])
    ap.add_argument("--source-seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[10, 11, 12, 13, 14])
    a = ap.parse_args()
    settings = _settings()
    cfg = settings.measure
    sources = []
    for seed in a.source_seeds:
        by_cat, true, seconds = _season(a.scenario, seed, settings)
        sources.append(by_cat)
        print(
            f"source {a.scenario} seed {seed}: {int(by_cat['lines'].sum()):,} lines in "
            f"{by_cat.height} day x category groups; estimated "
            f"{by_cat['estimated'].sum():,.0f}, measured {by_cat['measured'].sum():,.0f}, "
            f"true {true:,.0f}; {seconds:.0f} s",
            flush=True,
        )
    ratios = calibration_ratios(
        pl.concat(sources), strength=cfg.calibration_strength, max_ratio=cfg.calibration_max_ratio
    )
    with pl.Config(tbl_rows=40, tbl_cols=10):
        print(ratios.filter(pl.col("level").is_in(["all", "category"])).drop("to_cluster", "band"))
    within = 0
    for seed in a.seeds:
        by_cat, true, seconds = _season(a.scenario, seed, settings)
        est = float(by_cat["estimated"].sum())
        cal = _calibrated(by_cat, ratios)
        within += abs(cal / true - 1) <= 0.15
        print(
            f"target {a.scenario} seed {seed}: true {true:,.0f}; estimated at approval "
            f"{est:,.0f} ({est / true - 1:+.1%}); calibrated {cal:,.0f} ({cal / true - 1:+.1%}); "
            f"{seconds:.0f} s",
            flush=True,
        )
    print(
        f"acceptance (issue 15): calibrated estimate within 15 % of the truth on {within} of "
        f"{len(a.seeds)} seeds ({'ok' if within == len(a.seeds) else 'FAIL'})"
    )


if __name__ == "__main__":
    main()
