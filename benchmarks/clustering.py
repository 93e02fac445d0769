"""Benchmark of stocktailor.clustering: prints the figures recorded in docs/benchmarks.md.

Run: ``python benchmarks/clustering.py [--seeds 10,11,12,13,14] [--only 1,2,...] [--out DIR]``
(develop on seeds 0-4, report seeds 10-14).

1. Adjusted Rand index (ARI) against the true segments, automatic k, on the fashion scenarios
   (``seed-stories``, ``default``) and every foreign scenario, three ways: default settings
   (buying behaviour only: the store attribute columns are not used), "attributes on" (the
   previous defaults' trust in them: demographics and format weighted 0.25 each and format
   splits) and "attributes on, shuffled" (the store attribute columns permuted across the
   stores first: what trusting them gives when they do not follow the segments). On the
   fashion scenarios also the ARI over the stores that range the whole assortment (the
   women-only stores of the generator sit in a segment but sell no menswear; by design they
   are told apart by their buying).
2. The seed-stories checks: Atlanta urban + Austin urban together, Atlanta suburban apart; the
   coastal stores of California, Florida and the Carolinas together.
3. Segment switches: ``generate(..., switch_segments=N)``; weekly re-clustering on a rolling
   window; stores reported as moved vs the stores that truly switched.
4. Pooling: thin store x SKU series, raw in-stock rate vs shrinking toward the chain vs toward
   the cluster, scored against the true expected demand.
5. FreshRetailNet-50K (Dingdong Fresh, CC BY 4.0): 898 stores, no truth: k, stability (ARI
   between the clusters of two windows 14 days apart, and between the two half-windows'
   fits), the separation of the clusters and their category-mix story, timing and the HTML
   report.
6. The mix-difference rule: hand-built networks of two segments whose style mix differs by
   15%, 30% and 50% (and one with no difference), 16 stores over climates.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from stocktailor.clustering import (
    StoreClusterer,
    cluster_pooled_rates,
    clusters_report_html,
    recluster,
)
from stocktailor.contract import Tables
from stocktailor.synth import FOREIGN_SCENARIOS, generate

FRN = Path("/work/shared/data/freshretailnet50k/daily_store_sku_train.parquet")
ATTRIBUTE_COLUMNS = (
    "format",
    "area_sqm",
    "median_income",
    "pct_age_18_34",
    "population_density",
    "traffic_index",
)
ATTRIBUTES_ON = {
    "feature_weights": {"demographics": 0.25, "format": 0.25},
    "split_attributes": ("format",),
}


def _ari(truth: pl.DataFrame, labels: pl.DataFrame, col: str = "segment") -> float:
    j = truth.join(labels, on="store_id")
    return float(adjusted_rand_score(j[col].to_list(), j["cluster_id"].to_list()))


def geography_labels(stores: pl.DataFrame, k: int, seed: int) -> pl.DataFrame:
    """k-means on (latitude, longitude) of the selling stores."""
    s = stores.filter(pl.col("kind") == "store").sort("store_id")
    x = s.select("latitude", "longitude").to_numpy()
    lab = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x)
    return pl.DataFrame({"store_id": s["store_id"], "cluster_id": lab.astype(np.int64)})


def shuffle_attributes(tables: Tables, seed: int) -> Tables:
    """The store attribute columns permuted across the selling stores (independent of them)."""
    st = tables.stores
    sel = st.filter(pl.col("kind") == "store")
    perm = np.random.default_rng(1000 + seed).permutation(sel.height)
    cols = [c for c in ATTRIBUTE_COLUMNS if c in st.columns]
    shuffled = sel.with_columns([pl.Series(c, sel[c].gather(perm)) for c in cols])
    rest = st.filter(pl.col("kind") != "store")
    return tables.replace(stores=pl.concat([shuffled, rest], how="vertical_relaxed"))


def _full_range_ari(net_tables: Tables, truth: pl.DataFrame, labels: pl.DataFrame) -> float:
    names = net_tables.stores.select("store_id", "name")
    j = truth.join(labels, on="store_id").join(names, on="store_id")
    j = j.filter(~pl.col("name").str.contains("(women)", literal=True))
    return float(adjusted_rand_score(j["segment"].to_list(), j["cluster_id"].to_list()))


def bench_ari(seeds: list[int], scenarios: list[str]) -> None:
    print("\n## 1. ARI vs true segments, automatic k (window 84 days, as_of = scenario default)")
    print(
        f"{'scenario':<32}{'seed':>5}{'k*':>4}{'k':>4}{'ARI':>7}{'full rng':>9}{'attr on':>8}"
        f"{'shuffled':>9}{'k on':>5}{'geo':>7}{'fit s':>7}"
    )
    summary: list[tuple[str, float, float, float, float]] = []
    for scen in scenarios:
        rows: list[tuple[float, float, float, float]] = []
        for seed in seeds:
            net = generate(scen, seed)
            truth = net.truth.segments.select("store_id", "segment")
            t0 = time.perf_counter()
            cl = StoreClusterer(random_state=0).fit(net.tables, net.as_of)
            el = time.perf_counter() - t0
            on = StoreClusterer(random_state=0, **ATTRIBUTES_ON).fit(net.tables, net.as_of)  # type: ignore[arg-type]
            shuffled = shuffle_attributes(net.tables, seed)
            on_sh = StoreClusterer(random_state=0, **ATTRIBUTES_ON).fit(shuffled, net.as_of)  # type: ignore[arg-type]
            geo = geography_labels(net.tables.stores, cl.n_clusters_, 0)
            a, o, s = _ari(truth, cl.labels_), _ari(truth, on.labels_), _ari(truth, on_sh.labels_)
            full = _full_range_ari(net.tables, truth, cl.labels_)
            g = _ari(truth, geo)
            rows.append((a, full, o, s))
            print(
                f"{scen:<32}{seed:>5}{truth['segment'].n_unique():>4}{cl.n_clusters_:>4}"
                f"{a:>7.3f}{full:>9.3f}{o:>8.3f}{s:>9.3f}{on.n_clusters_:>5}{g:>7.3f}{el:>7.1f}"
            )
        m = np.array(rows).mean(axis=0)
        summary.append((scen, *m.tolist()))
        print(
            f"{scen:<32}{'mean':>5}{'':>8}{m[0]:>7.3f}{m[1]:>9.3f}{m[2]:>8.3f}{m[3]:>9.3f}"
            f"   (min {min(r[0] for r in rows):.3f})"
        )
    print("\nsummary (mean over seeds): scenario | ARI default | full range | attr on | shuffled")
    for scen, a, full, o, s in summary:
        print(f"| {scen} | {a:.3f} | {full:.3f} | {o:.3f} | {s:.3f} |")


def bench_stories(seeds: list[int]) -> None:
    print("\n## 2. seed-stories checks")
    for seed in seeds:
        net = generate("seed-stories", seed)
        cl = StoreClusterer(random_state=0).fit(net.tables, net.as_of)
        lab = cl.labels_.join(
            net.tables.stores.select("store_id", "name", "city", "state"), on="store_id"
        )

        def cid(name_part: str, frame: pl.DataFrame = lab) -> int:
            return int(frame.filter(pl.col("name").str.contains(name_part))["cluster_id"][0])

        atl_u, aus_u = cid("Atlanta Little Five Points"), cid("Austin South Congress")
        atl_s = cid("Atlanta Marietta")
        coastal_names = [
            "Santa Monica",
            "San Diego",
            "Miami Beach",
            "Tampa",
            "Charleston",
            "Wilmington",
        ]
        coastal = {cid(n) for n in coastal_names}
        ok1 = atl_u == aus_u and atl_s != atl_u
        ok2 = len(coastal) == 1
        print(
            f"seed {seed}: k={cl.n_clusters_} Atlanta urban={atl_u} Austin urban={aus_u} "
            f"Atlanta suburban={atl_s} -> {'OK' if ok1 else 'MISS'}; coastal CA/FL/Carolinas "
            f"clusters={sorted(coastal)} -> {'OK' if ok2 else 'MISS'}"
        )
        if seed == seeds[0]:
            for c in cl.cluster_ids_:
                members = lab.filter(pl.col("cluster_id") == c)["name"].to_list()
                print(f"   cluster {c} '{cl.names_[c]}': {', '.join(members)}")


def bench_switch(seeds: list[int], n_switch: int, window: int, scenario: str) -> None:
    print(
        f"\n## 3. segment switches ({scenario}, switch_segments={n_switch}, rolling window "
        f"{window} days, re-clustered weekly)"
    )
    tot_tp = tot_fp = tot_fn = 0
    for seed in seeds:
        net = generate(scenario, seed, switch_segments=n_switch)
        seg = net.truth.segments
        switched = set(
            seg.filter(pl.col("segment_after") != pl.col("segment"))["store_id"].to_list()
        )
        start = net.season_start + dt.timedelta(days=window - 1)
        cl = StoreClusterer(window_days=window, random_state=0).fit(net.tables, start)
        k0 = cl.n_clusters_
        moved: dict[str, str] = {}
        t = start + dt.timedelta(days=7)
        while t <= net.as_of:
            cl, moves = recluster(cl, net.tables, t)
            for row in moves.iter_rows(named=True):
                moved.setdefault(row["store_id"], f"{t}: {row['why']}")
            t += dt.timedelta(days=7)
        tp = len(switched & set(moved))
        fp = len(set(moved) - switched)
        fn = len(switched - set(moved))
        tot_tp, tot_fp, tot_fn = tot_tp + tp, tot_fp + fp, tot_fn + fn
        print(
            f"seed {seed}: k={k0}, switched {len(switched)}, reported moved {len(moved)}: "
            f"true {tp}, false {fp}, missed {fn}; precision {tp / max(tp + fp, 1):.2f}, "
            f"recall {tp / max(tp + fn, 1):.2f}"
        )
        if seed == seeds[0]:
            for sid in sorted(moved)[:4]:
                print(
                    f"   {sid} ({'switched' if sid in switched else 'did not switch'}): "
                    f"{moved[sid]}"
                )
    prec = tot_tp / max(tot_tp + tot_fp, 1)
    rec = tot_tp / max(tot_tp + tot_fn, 1)
    print(
        f"total: precision {prec:.2f}, recall {rec:.2f} ({tot_tp} true, {tot_fp} false, "
        f"{tot_fn} missed)"
    )


def bench_pooling(seeds: list[int], scenario: str, thin_units: int) -> None:
    print(
        f"\n## 4. pooling thin store x SKU series ({scenario}; thin = <= {thin_units} units "
        "in the 84-day window, in stock >= 1 day); error of the rate vs truth (units/day)"
    )
    print(
        f"{'seed':>4}{'pairs':>7}{'target':>9}{'raw MAE':>9}{'chain MAE':>11}"
        f"{'cluster MAE':>12}{'raw RMSE':>10}{'chain RMSE':>11}{'clus RMSE':>10}{'k_c':>5}"
        f"{'k_ch':>5}"
    )
    for seed in seeds:
        net = generate(scenario, seed)
        cl = StoreClusterer(random_state=0).fit(net.tables, net.as_of)
        res = {}
        for level in ("none", "chain", "cluster"):
            res[level] = cluster_pooled_rates(
                net.tables,
                net.as_of,
                cl.labels_,
                level=level,
            )
        start = net.as_of - dt.timedelta(days=83)
        truth = net.truth
        s_idx = {s: i for i, s in enumerate(truth.store_ids)}
        k_idx = {k: i for i, k in enumerate(truth.skus)}
        for tname, (a, b) in {
            "window": (max(start, net.season_start), net.as_of),
            "next28": (net.as_of + dt.timedelta(days=1), net.as_of + dt.timedelta(days=28)),
        }.items():
            true_rate = truth.expected_demand(a, b).mean(axis=0)
            base = res["none"]
            thin = base.filter((pl.col("units") <= thin_units) & (pl.col("exposure_days") > 0))
            thin = thin.filter(
                pl.col("store_id").is_in(list(s_idx)) & pl.col("sku").is_in(list(k_idx))
            )
            keys = thin.select("store_id", "sku")
            tr = np.array([true_rate[s_idx[s], k_idx[k]] for s, k in keys.iter_rows()])
            errs = {}
            for level, frame in res.items():
                est = keys.join(frame, on=["store_id", "sku"], how="left")["pooled_rate"]
                e = est.to_numpy() - tr
                errs[level] = (float(np.mean(np.abs(e))), float(np.sqrt(np.mean(e**2))))
            print(
                f"{seed:>4}{len(tr):>7}{tname:>9}{errs['none'][0]:>9.4f}"
                f"{errs['chain'][0]:>11.4f}{errs['cluster'][0]:>12.4f}{errs['none'][1]:>10.4f}"
                f"{errs['chain'][1]:>11.4f}{errs['cluster'][1]:>10.4f}"
                f"{res['cluster']['prior_days'][0]:>5.0f}{res['chain']['prior_days'][0]:>5.0f}"
            )


def frn_tables(path: Path) -> tuple[Tables, pl.DataFrame, dt.date]:
    """FreshRetailNet-50K as contract tables (+ daily in-stock shares from stockout hours).

    Sales are scaled in the source (0.1 steps): units = round(10 x sale). Prices are relative
    (full_price 1, revenue = units x discount). No coordinates are published: latitude and
    longitude are null, so the report has no map.
    """
    d = pl.read_parquet(path).with_columns(
        pl.col("dt").cast(pl.Date).alias("date"),
        pl.col("store_id").cast(pl.String).alias("store_id"),
        pl.col("product_id").cast(pl.String).alias("sku"),
    )
    stores = (
        d.group_by("store_id")
        .agg(pl.col("city_id").first())
        .select(
            "store_id",
            pl.lit("store").alias("kind"),
            (pl.lit("city ") + pl.col("city_id").cast(pl.String)).alias("city"),
            pl.lit(None, dtype=pl.Float64).alias("latitude"),
            pl.lit(None, dtype=pl.Float64).alias("longitude"),
        )
        .sort("store_id")
    )
    products = (
        d.group_by("sku")
        .agg(
            pl.col("first_category_id").first(),
            pl.col("management_group_id").first(),
            pl.col("third_category_id").first(),
        )
        .select(
            "sku",
            pl.col("third_category_id").cast(pl.String).alias("style"),
            pl.lit("n/a").alias("color"),
            pl.lit("n/a").alias("size"),
            (pl.lit("cat") + pl.col("first_category_id").cast(pl.String)).alias("category"),
            pl.lit(1.0).alias("full_price"),
            pl.lit(0.5).alias("unit_cost"),
            (pl.lit("group") + pl.col("management_group_id").cast(pl.String)).alias("tags"),
        )
        .sort("sku")
    )
    units = (pl.col("sale") * 10).round(0).cast(pl.Int64)
    sales = d.filter(units > 0).select(
        "date",
        "store_id",
        "sku",
        units.alias("units"),
        (units.cast(pl.Float64) * pl.col("discount")).alias("revenue"),
    )
    in_stock = d.select(
        "date",
        "store_id",
        "sku",
        (1.0 - pl.col("stockout_hours").cast(pl.Float64) / 24.0).alias("in_stock_share"),
    )
    weather = d.group_by("date", "store_id").agg(
        pl.col("avg_temperature").mean().alias("temp_c"),
        pl.col("precpt").mean().alias("precip_mm"),
    )
    inventory = pl.DataFrame(
        schema={"date": pl.Date, "store_id": pl.String, "sku": pl.String, "on_hand": pl.Int64}
    )
    tables = Tables(
        stores=stores, products=products, sales=sales, inventory=inventory, weather=weather
    )
    as_of = d["date"].max()
    assert isinstance(as_of, dt.date)
    return tables, in_stock, as_of


def _category_story(cl: StoreClusterer, n: int = 3) -> dict[int, str]:
    """Per cluster, its categories furthest above and below the network (z, category mix)."""
    prof = cl.profiles_.filter(pl.col("group") == "category_mix")
    out: dict[int, str] = {}
    for cid in cl.cluster_ids_:
        p = prof.filter(pl.col("cluster_id") == cid).sort("z")
        hi = p.tail(n).reverse()
        lo = p.head(n)
        out[cid] = (
            "more "
            + ", ".join(
                f"{f.split('__')[1]} {z:+.1f}" for f, z in zip(hi["feature"], hi["z"], strict=True)
            )
            + "; less "
            + ", ".join(
                f"{f.split('__')[1]} {z:+.1f}" for f, z in zip(lo["feature"], lo["z"], strict=True)
            )
        )
    return out


def bench_frn(out: Path) -> None:
    print("\n## 5. FreshRetailNet-50K (Dingdong Fresh, CC BY 4.0; 898 stores, no truth)")
    if not FRN.exists():
        print("data not found; skipped")
        return
    t0 = time.perf_counter()
    tables, in_stock, as_of = frn_tables(FRN)
    t1 = time.perf_counter()
    cl = StoreClusterer(random_state=0).fit(tables, as_of, in_stock=in_stock)
    t2 = time.perf_counter()
    earlier = StoreClusterer(random_state=0).fit(
        tables, as_of - dt.timedelta(days=14), in_stock=in_stock
    )
    short = StoreClusterer(random_state=0, window_days=42).fit(tables, as_of, in_stock=in_stock)
    path = clusters_report_html(
        cl,
        tables.stores,
        out / "freshretailnet_clusters.html",
        title="FreshRetailNet-50K store clusters",
    )
    print(
        f"load+convert {t1 - t0:.1f} s; features+clustering {t2 - t1:.1f} s "
        f"({len(cl.store_ids_)} stores, {len(cl.columns_)} features, k={cl.n_clusters_}); "
        f"report -> {path} ({path.stat().st_size / 1e6:.1f} MB)"
    )
    sep = dict(zip(cl.scores_["k"], cl.scores_["separation"], strict=True))
    print(
        "   separation (cross-fitted mix difference of the two closest clusters) at k: "
        + ", ".join(f"{k}: {v:.3f}" for k, v in sorted(sep.items()) if v is not None and k <= 8)
    )
    print(
        f"   stability: ARI vs the window ending 14 days earlier "
        f"{_ari2(cl.labels_, earlier.labels_):.3f} "
        f"(k {earlier.n_clusters_}); vs a 42-day window {_ari2(cl.labels_, short.labels_):.3f} "
        f"(k {short.n_clusters_})"
    )
    sizes = cl.labels_.group_by("cluster_id").len().sort("cluster_id")
    story = _category_story(cl)
    for c, n in sizes.iter_rows():
        print(f"   cluster {c} ({n} stores) '{cl.names_[c]}': {story[c]}")
        print(f"      explanation: {cl.top_features()[c]}")
    city = cl.labels_.join(tables.stores.select("store_id", "city"), on="store_id")
    geo_ari = adjusted_rand_score(city["city"].to_list(), city["cluster_id"].to_list())
    print(f"   ARI of clusters vs city (how geographic they are): {geo_ari:.3f}")


def _ari2(a: pl.DataFrame, b: pl.DataFrame) -> float:
    j = a.join(b, on="store_id", suffix="_b")
    return float(adjusted_rand_score(j["cluster_id"].to_list(), j["cluster_id_b"].to_list()))


def bench_rule(seeds: list[int]) -> None:
    """Two segments whose style mix differs by a given ratio (see tests/test_clustering.py)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_clustering import START, _segment_network  # type: ignore[import-not-found]

    print("\n## 6. mix-difference rule: two segments x 8 stores, style mix differs by r - 1")
    print(f"{'ratio':>6}{'seed':>5}{'k':>4}{'ARI':>7}{'separation k=2':>16}")
    for ratio in (1.0, 1.15, 1.3, 1.5):
        for seed in seeds:
            tables, truth = _segment_network(ratio, seed=seed)
            cl = StoreClusterer(random_state=0).fit(tables, START + dt.timedelta(days=55))
            lab = cl.labels_
            ari = adjusted_rand_score([truth[s] for s in lab["store_id"]], lab["cluster_id"])
            sep = dict(zip(cl.scores_["k"], cl.scores_["separation"], strict=True)).get(2)
            s = float("nan") if sep is None else sep
            print(f"{ratio:>6.2f}{seed:>5}{cl.n_clusters_:>4}{ari:>7.3f}{s:>16.3f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--skip-frn", action="store_true")
    ap.add_argument("--only", default="", help="comma list of sections 1..6")
    ap.add_argument(
        "--seeds", default="0,1,2,3,4", help="comma list of seeds (develop on 0-4, report 10-14)"
    )
    ap.add_argument("--scenarios", default="", help="comma list for section 1 (default: all)")
    ap.add_argument("--switch-window", type=int, default=28, help="rolling window, days")
    ap.add_argument(
        "--switch-seeds", default="", help="comma list of seeds (section 3; default --seeds[:3])"
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    seeds = [int(v) for v in args.seeds.split(",")]
    out = args.out or Path(tempfile.mkdtemp(prefix="stocktailor-clustering-"))
    out.mkdir(parents=True, exist_ok=True)
    only = set(args.only.split(",")) if args.only else {"1", "2", "3", "4", "5", "6"}
    scenarios = (
        args.scenarios.split(",")
        if args.scenarios
        else ["seed-stories", "default", *FOREIGN_SCENARIOS]
    )
    if "1" in only:
        bench_ari(seeds, scenarios)
    if "2" in only:
        bench_stories(seeds)
    if "3" in only:
        switch_seeds = (
            [int(v) for v in args.switch_seeds.split(",")] if args.switch_seeds else seeds[:3]
        )
        bench_switch(switch_seeds, n_switch=6, window=args.switch_window, scenario="default")
    if "4" in only:
        bench_pooling(seeds[:3], "default", thin_units=2)
    if "5" in only and not args.skip_frn:
        bench_frn(out)
    if "6" in only:
        bench_rule(seeds[:3])


if __name__ == "__main__":
    main()
