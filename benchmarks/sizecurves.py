"""Size curves on the generator's ``seed-stories`` network: store curve vs chain curve.

For every store and size group (apparel, footwear, ...), the total variation distance of the
estimated store curve to the store's true curve is compared with that of the chain-wide
(network) curve. Prints the share of stores whose estimate is closer than the chain curve.

Run: ``python benchmarks/sizecurves.py [--seeds 0 1 2 3 4] [--prior 300]`` (default prior:
empirical Bayes per size group).
"""

from __future__ import annotations

import argparse
import functools

import polars as pl

from stocktailor.sizecurves import SizeCurveEstimator, total_variation
from stocktailor.synth import generate

print = functools.partial(print, flush=True)


def run(seed: int, prior: float | None) -> tuple[float, float, float, float]:
    net = generate("seed-stories", seed)
    est = SizeCurveEstimator(prior_strength=prior).fit(net.tables, net.as_of)
    truth = net.truth.size_curves.select("store_id", "size_group", "size", "share")
    store = est.store_curves()
    chain = (
        est.curves_.filter(pl.col("level") == "network")
        .select("size_group", "size", "share")
        .join(truth.select("store_id").unique(), how="cross")
    )
    # Only sizes on the true ladder count (shares renormalised over it).
    store = store.join(
        truth.select("store_id", "size_group", "size"), on=["store_id", "size_group", "size"]
    )
    chain = chain.join(
        truth.select("store_id", "size_group", "size"), on=["store_id", "size_group", "size"]
    )
    key = ["store_id", "size_group"]
    tv_s = total_variation(store, truth, key).rename({"tv": "tv_store"})
    tv_c = total_variation(chain, truth, key).rename({"tv": "tv_chain"})
    j = tv_s.join(tv_c, on=key, how="inner")
    kap = est.prior_strength_.filter(pl.col("level") == "store")
    kap_s = ", ".join(f"{g} {k:,.0f}" for g, k in zip(kap["size_group"], kap["kappa"], strict=True))
    by_group = (
        j.group_by("size_group")
        .agg(
            pl.col("tv_store").mean(),
            pl.col("tv_chain").mean(),
            (pl.col("tv_store") < pl.col("tv_chain")).mean().alias("closer"),
        )
        .sort("size_group")
    )
    for g, ts, tc, cl in by_group.iter_rows():
        print(f"    {g}: mean TV store {ts:.4f} vs chain {tc:.4f}, closer for {cl:.1%} of stores")
    print(f"    store prior strength (units): {kap_s}")
    per_store = j.group_by("store_id").agg(pl.col("tv_store").mean(), pl.col("tv_chain").mean())
    share_groups = float((j["tv_store"] < j["tv_chain"]).mean())
    share_stores = float((per_store["tv_store"] < per_store["tv_chain"]).mean())
    print(
        f"  seed {seed}: {per_store.height} stores, {j.height} store x size-group curves; "
        f"mean TV store estimate {j['tv_store'].mean():.4f} vs chain {j['tv_chain'].mean():.4f}; "
        f"estimate closer for {share_stores:.1%} of stores (mean over groups), "
        f"{share_groups:.1%} of store x group curves"
    )
    return share_stores, share_groups, float(j["tv_store"].mean()), float(j["tv_chain"].mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--prior", type=float, default=None, help="fixed prior (default: EB)")
    a = ap.parse_args()
    label = "empirical Bayes" if a.prior is None else f"{a.prior:g}"
    print(f"== size curves, seed-stories, prior_strength {label}")
    res = [run(s, a.prior) for s in a.seeds]
    n = len(res)
    print(
        f"  mean: stores closer {sum(r[0] for r in res) / n:.1%}, curves closer "
        f"{sum(r[1] for r in res) / n:.1%}, TV store {sum(r[2] for r in res) / n:.4f} vs chain "
        f"{sum(r[3] for r in res) / n:.4f}"
    )


if __name__ == "__main__":
    main()
