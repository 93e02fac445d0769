"""Posts ablation (issue 16): do posts improve the forecast where they lead demand, and cost
nothing where they are only hype?

For each seed a ``default`` network (``--stores`` x ``--skus``) gets posts
(:func:`stocktailor.synth.with_posts`; ``--vocabulary heldout`` for reported figures). The
generator's own ``trends`` table is removed in every arm, so the only trend signal is what the
posts say. Arms (all ``run_plan`` with default settings otherwise):

- ``none``: no posts;
- ``keyword``: posts read by the keyword baseline (``[posts] method = "keyword"``);
- ``embedding``: posts read by the packaged embedding model;
- ``truth-trends`` (``--oracle``): the generator's trend table itself (a reference, not a bar).

Scored: remaining-season WAPE of store x SKU totals against the true expected demand on
led pairs (stores in a city/region whose trend series the posts follow x SKUs with that
tag) and hype pairs (stores in the hype cities x SKUs with the hype tag).

``--speed N``: embed and aggregate N posts (fresh cache), then again with 1,000 new posts;
prints seconds and peak RSS.

Tune and develop on seeds 0-4; report seeds 10-14 (project rule).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from demand_foreign import from_forecast, horizon, wape
from stocktailor.config import PostsConfig, Settings
from stocktailor.plan import run_plan
from stocktailor.posts import with_post_trends
from stocktailor.synth import SyntheticNetwork, generate, with_posts

ARMS = ("none", "keyword", "embedding")


def _pairs(net: SyntheticNetwork, series: pl.DataFrame) -> np.ndarray:
    """Boolean (stores, skus) mask of the pairs a set of scope x tag series covers."""
    st = net.tables.stores
    prods = net.tables.products
    store_ids = list(net.truth.store_ids)
    skus = list(net.truth.skus)
    mask = np.zeros((len(store_ids), len(skus)), dtype=bool)
    for scope, sid, attr, value in series.iter_rows():
        if scope == "all" or attr != "tags":
            continue
        col = "city" if scope == "city" else "region" if scope == "region" else "store_id"
        stores = set(st.filter(pl.col(col) == sid)["store_id"].to_list())
        tagged = set(
            prods.filter(pl.col("tags").str.split(";").list.contains(value))["sku"].to_list()
        )
        si = [i for i, s in enumerate(store_ids) if s in stores]
        ki = [k for k, s in enumerate(skus) if s in tagged]
        mask[np.ix_(si, ki)] = True
    return mask


def run_seed(seed: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    net0 = generate("default", seed, n_stores=args.stores, n_sku_sizes=args.skus)
    net, truth = with_posts(net0, vocabulary=args.vocabulary)
    h = horizon(net)
    led, hype = _pairs(net, truth.led), _pairs(net, truth.hype)
    arms = list(ARMS) + (["truth-trends"] if args.oracle else [])
    rows = []
    for arm in arms:
        tables = net.tables.replace(trends=None)
        if arm == "none":
            tables = tables.replace(posts=None)
        elif arm == "truth-trends":
            tables = net.tables.replace(posts=None)
        method = "embedding" if arm == "embedding" else "keyword"
        settings = Settings(posts=PostsConfig(method=method))
        t0 = time.perf_counter()
        result = run_plan(tables, net.as_of, settings)
        secs = time.perf_counter() - t0
        totals = from_forecast(result.forecast, h).daily.sum(axis=0)
        truth_totals = h.totals
        row = {
            "seed": seed,
            "arm": arm,
            "vocabulary": args.vocabulary,
            "post_lead_days": truth.lead_days,
            "led_pairs": int(led.sum()),
            "hype_pairs": int(hype.sum()),
            "wape_led": wape(totals[led], truth_totals[led]),
            "wape_hype": wape(totals[hype], truth_totals[hype]),
            "wape_all": wape(totals, truth_totals),
            "seconds": round(secs, 1),
        }
        rows.append(row)
        print(
            f"seed {seed} {arm:12s} led {row['wape_led']:.3f} hype {row['wape_hype']:.3f} "
            f"all {row['wape_all']:.3f} ({secs:.0f} s)",
            flush=True,
        )
    return rows


def speed(n_posts: int, seed: int) -> None:
    net0 = generate("default", seed, n_stores=20, n_sku_sizes=400)
    net, _ = with_posts(net0, posts_per_day=6.0 * n_posts / 10_000)
    posts = net.tables.posts
    assert posts is not None
    # every text unique (the worst case for the embedder: generated posts repeat phrases)
    posts = (
        posts.head(n_posts + 1000)
        .with_row_index("i")
        .with_columns(pl.col("text") + " ref" + pl.col("i").cast(pl.String))
        .drop("i")
    )
    first = net.tables.replace(posts=posts.head(n_posts))
    cfg = PostsConfig(method="embedding")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        with_post_trends(first, net.as_of, cfg, cache_dir=Path(tmp))
        t1 = time.perf_counter()
        # a new process would read the shards: clear the in-process cache to measure that
        from stocktailor import posts as posts_mod

        posts_mod._CACHES.clear()
        more = net.tables.replace(posts=posts)
        with_post_trends(more, net.as_of, cfg, cache_dir=Path(tmp))
        t2 = time.perf_counter()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{posts.height - 1000} posts embedded+aggregated {t1 - t0:.1f} s; "
        f"re-run with 1,000 new posts {t2 - t1:.1f} s; peak RSS {rss:.0f} MB"
    )


def summary(rows: list[dict[str, Any]]) -> str:
    f = pl.DataFrame(rows)
    agg = (
        f.group_by("arm", maintain_order=True)
        .agg(
            pl.col("wape_led").mean(),
            pl.col("wape_hype").mean(),
            pl.col("wape_all").mean(),
            pl.col("seed").unique().sort().cast(pl.String).str.join(",").alias("seeds"),
        )
        .to_dicts()
    )
    base = next((a for a in agg if a["arm"] == "none"), None)
    lines = [
        "| arm | WAPE led | vs none | WAPE hype | vs none | WAPE all | seeds |",
        "|---|---|---|---|---|---|---|",
    ]
    for a in agg:
        rel_led = a["wape_led"] / base["wape_led"] - 1 if base else float("nan")
        rel_hype = a["wape_hype"] / base["wape_hype"] - 1 if base else float("nan")
        lines.append(
            f"| {a['arm']} | {a['wape_led']:.3f} | {rel_led:+.1%} | {a['wape_hype']:.3f} | "
            f"{rel_hype:+.1%} | {a['wape_all']:.3f} | {a['seeds']} |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--stores", type=int, default=12)
    p.add_argument("--skus", type=int, default=400)
    p.add_argument("--vocabulary", choices=("dev", "heldout"), default="dev")
    p.add_argument("--oracle", action="store_true", help="also run the true trends table")
    p.add_argument("--speed", type=int, default=0, help="time N posts instead")
    p.add_argument("--csv", type=Path, default=None)
    args = p.parse_args()
    if args.speed:
        speed(args.speed, args.seeds[0])
        return
    rows = [r for s in args.seeds for r in run_seed(s, args)]
    print(summary(rows))
    if args.csv:
        pl.DataFrame(rows).write_csv(args.csv)


if __name__ == "__main__":
    main()
