"""Backtest benchmark: policies on generator scenarios, the acceptance checks and the run time.

Usage::

    python benchmarks/backtest.py default --seeds 10 11 12 13 14 --workers 2 --out out/bt-default
    python benchmarks/backtest.py seed-stories --seeds 10 11 12 13 14 --out out/bt-stories
    python benchmarks/backtest.py scale --seeds 0 --workers 2     # speed: 200 x 3,000, 26 weeks

Seeds 0-4 are for development and tuning; report figures from seeds 10-14.

Prints the KPI table (mean over seeds, uplifts over ``rule`` first), the per-seed profit of
every policy, the acceptance checks of issue 13 against both baselines (stocktailor beats
``rule`` and ``none`` in every seed; its uplift over ``rule`` is >= 0.5 of the ``bound``'s;
full-price revenue >= +4% and transfer cost < 25% of the gain, over each baseline) and wall
times; writes the HTML report and kpis.csv to ``--out``.

``none`` is the retailer without the product (the warehouse replenishes stores by weeks of
cover, no store-to-store moves); ``rule`` adds store-to-store moves; ``bound`` is the season LP
with the demand draws known (an upper bound on any policy's profit, small networks only; its
row's ``profit`` is the replay of the LP's plan, ``bound_profit`` the bound itself).

``scale`` is the speed mode: 200 stores x 3,000 SKU-sizes unless ``--stores``/``--skus`` say
otherwise, one seed, no ``bound``; it prints each policy's 26-week season wall time against
the 5-minute target of issue #6, where the optimiser policies spent it, and the load average.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

import polars as pl

from stocktailor.config import Settings
from stocktailor.engine import DaskEngine, LocalEngine
from stocktailor.simulate.backtest import backtest


def _num(x: object) -> float:
    """A polars scalar as float (NaN when missing)."""
    return float(x) if isinstance(x, int | float) else float("nan")


def _checks(runs: pl.DataFrame) -> list[tuple[str, bool, str]]:
    out: list[tuple[str, bool, str]] = []
    pols = set(runs["policy"].to_list())
    if "stocktailor" not in pols:
        return out
    wide = runs.pivot(on="policy", index="seed", values="profit").sort("seed")
    st = runs.filter(pl.col("policy") == "stocktailor").sort("seed")
    for other in ("rule", "none"):
        if other in pols:
            wins = (wide["stocktailor"] > wide[other]).to_list()
            out.append(
                (
                    f"stocktailor beats {other} on profit in every seed",
                    all(wins),
                    f"{sum(wins)}/{len(wins)} seeds",
                )
            )
    if "bound" in pols and "rule" in pols:
        shares = st["bound_uplift_share"].to_list()
        mean = _num(st["bound_uplift_share"].mean())
        per = ", ".join(f"{x:.3f}" for x in shares)
        out.append(
            (
                "uplift over rule >= 0.5 of the bound's uplift over rule (mean)",
                mean >= 0.5,
                f"mean {mean:.3f}, every seed {all(x >= 0.5 for x in shares)} (per seed {per})",
            )
        )
    if "bound" in pols:
        others = runs.filter(pl.col("policy") != "bound").drop_nulls("bound_profit")
        over = others.filter(pl.col("profit") > pl.col("bound_profit") + 1e-6)
        slack = others.with_columns((pl.col("bound_profit") - pl.col("profit")).alias("slack"))
        best = slack.sort("slack").row(0, named=True) if slack.height else None
        out.append(
            (
                "bound >= every policy's profit in every seed (an upper bound)",
                over.height == 0 and others.height > 0,
                f"{over.height} of {others.height} runs above it"
                + (
                    f"; closest {best['policy']} seed {best['seed']}: bound - profit "
                    f"{best['slack']:,.0f} ({best['slack'] / best['bound_profit']:.2%})"
                    if best
                    else ""
                ),
            )
        )
    for other, sfx in (("rule", "_vs_rule"), ("none", "")):
        if other not in pols:
            continue
        up = _num(st[f"revenue_full_price_uplift{sfx}_pct"].mean())
        out.append((f"full-price revenue >= +4% over {other}", up >= 4.0, f"mean {up:+.2f}%"))
        cs = st[f"transfer_cost_share_of_gain{sfx}"]
        worst = _num(cs.max()) if cs.null_count() == 0 else float("inf")
        out.append(
            (
                f"transfer cost < 25% of the gain over {other}",
                worst < 0.25,
                f"max over seeds {worst:.3f}" + (" (no gain in a seed)" if cs.null_count() else ""),
            )
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("scenario", choices=["default", "seed-stories", "scale"])
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="default 10-14 (scale: 0)")
    ap.add_argument(
        "--policies", nargs="+", default=None, help="default: all five (scale: no bound)"
    )
    ap.add_argument("--stores", type=int, default=None)
    ap.add_argument("--skus", type=int, default=None)
    ap.add_argument("--workers", type=int, default=1, help="Dask workers (1 = in-process)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--decision-every", type=int, default=7)
    ap.add_argument("--refit-every-weeks", type=int, default=None)
    ap.add_argument("--candidate-max-cells", type=int, default=None)
    args = ap.parse_args()
    if args.seeds is None:
        args.seeds = [0] if args.scenario == "scale" else [10, 11, 12, 13, 14]
    if args.policies is None:
        args.policies = ["none", "rule", "stocktailor", "same-optimiser-true-demand"]
        if args.scenario != "scale":
            args.policies.append("bound")
    if args.scenario == "scale":
        args.stores = args.stores or 200
        args.skus = args.skus or 3000
    load0 = os.getloadavg()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("distributed", "lightgbm"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    sim: dict[str, object] = {"decision_every_days": args.decision_every}
    if args.refit_every_weeks is not None:
        sim["refit_every_weeks"] = args.refit_every_weeks
    if args.candidate_max_cells is not None:
        sim["candidate_max_cells"] = args.candidate_max_cells
    settings = Settings.model_validate({"simulation": sim})
    out = args.out or Path("out") / f"backtest-{args.scenario}"
    engine = DaskEngine(n_workers=args.workers) if args.workers > 1 else LocalEngine()
    done = [0]

    def progress(n: int) -> None:
        done[0] += n
        print(f"  ... {done[0]} runs done", flush=True)

    t0 = time.perf_counter()
    try:
        res = backtest(
            args.scenario,
            args.seeds,
            args.policies,
            settings,
            out,
            n_stores=args.stores,
            n_sku_sizes=args.skus,
            engine=engine,
            progress=progress,
        )
    finally:
        engine.close()
    wall = time.perf_counter() - t0
    pl.Config.set_tbl_cols(20)
    pl.Config.set_tbl_width_chars(220)
    pl.Config.set_tbl_rows(50)
    print(
        f"\nscenario {args.scenario}, seeds {args.seeds}, stores {args.stores}, skus {args.skus}, "
        f"decisions every {args.decision_every} days, workers {args.workers}"
    )
    print(
        res.kpi_table(
            [
                "profit",
                "profit_uplift_vs_rule",
                "bound_profit",
                "bound_uplift_share",
                "true_demand_uplift_share",
                "profit_uplift",
                "revenue_full_price_uplift_vs_rule_pct",
                "revenue_full_price_uplift_pct",
                "full_price_sell_through",
                "lost_units",
                "salvaged_units",
                "transfer_units",
                "transfer_cost",
                "transfer_cost_share_of_gain_vs_rule",
                "transfer_cost_share_of_gain",
            ]
        )
    )
    print(
        res.kpis.runs.select(
            "seed",
            "policy",
            "profit",
            "profit_uplift_vs_rule",
            "bound_profit",
            "bound_uplift_share",
            "profit_uplift",
            "revenue_full_price_uplift_pct",
            "transfer_cost",
            "transfer_cost_share_of_gain_vs_rule",
        ).sort("seed", "policy")
    )
    times = pl.DataFrame(
        [
            {
                "seed": r.seed,
                "policy": r.policy,
                "seconds": round(r.seconds, 1),
                "decision_seconds": round(r.decision_seconds, 1),
            }
            for r in res.results
        ]
    )
    print(
        times.group_by("policy", maintain_order=True).agg(
            pl.col("seconds").mean().alias("mean_s"),
            pl.col("seconds").max().alias("max_s"),
            pl.col("decision_seconds").mean().alias("mean_decision_s"),
        )
    )
    load1 = os.getloadavg()
    print(
        f"load average (1/5/15 min) at start {load0[0]:.1f}/{load0[1]:.1f}/{load0[2]:.1f}, "
        f"at end {load1[0]:.1f}/{load1[1]:.1f}/{load1[2]:.1f} (2 cores)"
    )
    for r in res.results:
        t = r.info.get("timings") or {}
        c = r.info.get("cpu_timings") or {}
        parts = ", ".join(f"{k} {v:.1f} s (CPU {c.get(k, 0.0):.1f} s)" for k, v in t.items())
        cand = r.info.get("candidates") or []
        skus = sum(c["skus"] for c in cand)
        kept = sum(c["candidates"] for c in cand)
        extra = f"; SKUs to the optimiser {kept:.0f} of {skus:.0f} movable" if cand else ""
        print(
            f"seed {r.seed} {r.policy}: season {r.seconds:.1f} s wall, "
            f"{r.info.get('cpu_seconds', float('nan')):.1f} s CPU "
            f"(decisions {r.decision_seconds:.1f} s{'; ' + parts if parts else ''}){extra}"
        )
    if args.scenario == "scale":
        weeks = (res.results[0].daily.height + 6) // 7 if res.results else 0
        for r in res.results:
            ok = r.seconds <= 300.0
            print(
                f"[{'PASS' if ok else 'MISS'}] {r.policy}: {weeks}-week season at "
                f"{args.stores} x {args.skus} with decisions every {args.decision_every} days "
                f"in {r.seconds:.1f} s wall, {r.info.get('cpu_seconds', float('nan')):.1f} s CPU "
                "(target <= 300 s)"
            )
    if "stocktailor" in args.policies:
        from stocktailor.report import flow_stories

        seg, city = flow_stories(res, "stocktailor", args.seeds[0], top=15)
        print(f"stocktailor flows between segments by category (seed {args.seeds[0]}):")
        print(seg.head(15))
        print("largest style flows between cities:")
        print(city)
    for name, ok, detail in _checks(res.kpis.runs):
        print(f"[{'PASS' if ok else 'MISS'}] {name}: {detail}")
    print(f"wall time {wall:.1f} s; report {res.report_path}")


if __name__ == "__main__":
    main()
