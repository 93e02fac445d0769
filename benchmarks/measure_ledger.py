"""Issue 15 benchmark: what the ledger measures of executed transfers against the truth.

Usage::

    python benchmarks/measure_ledger.py default --seeds 10 11 12 13 14
    python benchmarks/measure_ledger.py seed-stories --seeds 0 --propagate  # moves served again

Seeds 0-4 are for development and tuning; report figures from seeds 10-14.

Each seed runs one season of the ``stocktailor`` policy with ``simulation.holdback_share =
0.2`` (``backtest --measure``): every decision day's executed transfer lines are measured by
the stock ledger (``uplift_measurement.csv``) and replayed without them (common random
numbers, the truth). Prints per seed the season's estimated, measured and true totals, the sum
of the daily absolute errors over the sum of the true values, and the days whose interval
holds the truth; then the acceptance of issue 15 (measured total within 20 % of the truth,
the interval covering it on >= 80 % of the days).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import polars as pl

from stocktailor.config import Settings
from stocktailor.simulate.backtest import backtest


def _settings(propagate: bool) -> Settings:
    s = Settings()
    return s.model_copy(
        update={
            "simulation": s.simulation.model_copy(update={"holdback_share": 0.2}),
            "measure": s.measure.model_copy(update={"propagate_moves": propagate}),
        }
    )


def _seed(scenario: str, seed: int, settings: Settings) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        backtest(scenario, [seed], ["stocktailor"], settings, tmp, measure=["stocktailor"])
        seconds = time.perf_counter() - t
        m = pl.read_csv(Path(tmp) / "uplift_measurement.csv", try_parse_dates=True)
    true = float(m["true"].sum())
    covers = (m["measured_low"] <= m["true"]) & (m["true"] <= m["measured_high"])
    return {
        "days": float(m.height),
        "estimated": float(m["estimated"].sum()),
        "measured": float(m["measured"].sum()),
        "true": true,
        "abs_error": float((m["measured"] - m["true"]).abs().sum() / m["true"].abs().sum()),
        "covered": float(covers.sum()),
        "seconds": seconds,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario", choices=["default", "seed-stories"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[10, 11, 12, 13, 14])
    ap.add_argument("--propagate", action="store_true", help="measure.propagate_moves = true")
    a = ap.parse_args()
    settings = _settings(a.propagate)
    rows = []
    for seed in a.seeds:
        r = _seed(a.scenario, seed, settings)
        rows.append(r)
        print(
            f"{a.scenario} seed {seed}: true {r['true']:,.0f}; estimated {r['estimated']:,.0f} "
            f"({r['estimated'] / r['true'] - 1:+.1%}); measured {r['measured']:,.0f} "
            f"({r['measured'] / r['true'] - 1:+.1%}); sum|err|/sum|true| {r['abs_error']:.3f}; "
            f"interval covers {r['covered']:.0f} of {r['days']:.0f} days; {r['seconds']:.0f} s",
            flush=True,
        )
    within = sum(abs(r["measured"] / r["true"] - 1) <= 0.2 for r in rows)
    cover = min(r["covered"] / r["days"] for r in rows)
    print(
        f"acceptance (issue 15): measured total within 20 % on {within} of {len(rows)} seeds "
        f"({'ok' if within == len(rows) else 'FAIL'}); lowest day coverage {cover:.0%} "
        f"({'ok' if cover >= 0.8 else 'FAIL'}, goal >= 80 %)"
    )


if __name__ == "__main__":
    main()
