"""Demand model on the synthetic generator: accuracy, coverage, censoring, ablations, speed.

Run: ``python benchmarks/demand_synthetic.py accuracy --scenario default --seeds 0 1 2 3 4``,
``... censoring``, ``... ablation``, ``... speed``.

* accuracy: weighted absolute error (WAPE) of remaining-season demand per store x SKU (to
  each SKU's ``season_end``) against the generator's true expected demand, for the model and
  the statsforecast baselines fitted to the same daily sales; coverage of the p10-p90 band of
  the season total against a realised season drawn from the true negative-binomial demand.
* censoring: on store x SKU pairs that stocked out before ``as_of``, the error of the
  censoring-aware demand estimate over the history vs "sales = demand" (truth = the expected
  demand of those days).
* ablation: error with and without weather (cold snap in the forecast window), trends
  (trend-matched styles, 2 weeks ahead) and price (markdown weeks, markdown plan known).
* speed: fit + predict on ``scale`` at 200 stores x 3,000 SKU-sizes; time and peak memory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import resource
import sys
import time
from typing import Any

import numpy as np
import polars as pl

from stocktailor.demand import (
    DemandModel,
    baseline_forecast,
    censored_weekly_demand,
    nb_quantiles,
    pair_expected_demand,
    season_demand,
)
from stocktailor.synth import generate

print = functools.partial(print, flush=True)


def truth_totals(net, start: dt.date, end: dt.date, price=None) -> pl.DataFrame:  # type: ignore[no-untyped-def]
    """True expected demand per store x SKU over [start, end] (each SKU to its season_end)."""
    tr = net.truth
    n = (end - start).days + 1
    pf = None if price is None else price(n)
    rate = tr.expected_demand(start, end, price_factor=pf)
    se = dict(zip(net.tables.products["sku"], net.tables.products["season_end"], strict=True))
    days = np.array([start + dt.timedelta(days=i) for i in range(n)])
    mask = np.stack([days <= se[k] for k in tr.skus], axis=1).astype(float)
    rate = rate * mask[:, None, :]
    tot = rate.sum(0)
    return pl.DataFrame(
        {
            "store_id": np.repeat(tr.store_ids, len(tr.skus)),
            "sku": np.tile(tr.skus, len(tr.store_ids)),
            "true": tot.ravel(),
        }
    ), rate


def wape(fc_season: pl.DataFrame, truth: pl.DataFrame) -> float:
    j = truth.join(fc_season, on=["store_id", "sku"], how="left").with_columns(
        pl.col("mean").fill_null(0.0)
    )
    return float((j["mean"] - j["true"]).abs().sum() / j["true"].sum())


def coverage(
    fc_season: pl.DataFrame, truth: pl.DataFrame, rate: np.ndarray, net, seed: int
) -> float:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(1000 + seed)
    draws = net.truth.sample_demand(rate, rng).sum(0)  # (stores, skus)
    real = pl.DataFrame(
        {
            "store_id": np.repeat(net.truth.store_ids, len(net.truth.skus)),
            "sku": np.tile(net.truth.skus, len(net.truth.store_ids)),
            "real": draws.ravel().astype(float),
        }
    )
    j = fc_season.join(real, on=["store_id", "sku"], how="inner")
    q10, _, q90 = nb_quantiles(j["mean"].to_numpy(), j["var"].to_numpy(), (0.1, 0.5, 0.9))
    r = j["real"].to_numpy()
    return float(((r >= q10) & (r <= q90)).mean())


def accuracy(scenario: str, seeds: list[int], baselines: list[str]) -> None:
    print(f"== accuracy: {scenario}, seeds {seeds}")
    rows = []
    for seed in seeds:
        net = generate(scenario, seed)
        t, a = net.tables, net.as_of
        end = t.products["season_end"].max()
        truth, rate = truth_totals(net, a + dt.timedelta(days=1), end)
        t0 = time.perf_counter()
        m = DemandModel(random_state=seed).fit(t, a)
        fc = m.predict()
        el = time.perf_counter() - t0
        sd = season_demand(fc, a + dt.timedelta(days=1), end)
        res = {
            "seed": seed,
            "model": wape(sd, truth),
            "coverage": coverage(sd, truth, rate, net, seed),
            "model_s": el,
        }
        nc = DemandModel(random_state=seed, censoring=False).fit(t, a).predict()
        res["model_no_censoring"] = wape(season_demand(nc, a + dt.timedelta(days=1), end), truth)
        for b in baselines:
            t0 = time.perf_counter()
            meth: Any = b
            bf = baseline_forecast(t, a, meth)
            res[b] = wape(season_demand(bf, a + dt.timedelta(days=1), end), truth)
            res[b + "_s"] = time.perf_counter() - t0
        best = min(res[b] for b in baselines)
        res["reduction_vs_best"] = 1 - res["model"] / best
        print(
            "  "
            + ", ".join(
                f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in res.items()
            )
        )
        rows.append(res)
    df = pl.DataFrame(rows)
    print(
        f"  mean over seeds: model WAPE {df['model'].mean():.4f}, "
        f"no-censoring {df['model_no_censoring'].mean():.4f}, "
        + ", ".join(f"{b} {df[b].mean():.4f}" for b in baselines)
        + f"; reduction vs best baseline {df['reduction_vs_best'].mean():.1%} "
        f"(min {df['reduction_vs_best'].min():.1%}); p10-p90 coverage "
        f"{df['coverage'].mean():.1%} (range {df['coverage'].min():.1%}-{df['coverage'].max():.1%})"
    )


def _head(arr: np.ndarray, n: int) -> np.ndarray:
    return arr[:n]


def censoring(scenario: str, seeds: list[int]) -> None:
    print(f"== censoring (synthetic): {scenario}, seeds {seeds}")
    for seed in seeds:
        net = generate(scenario, seed)
        t, a = net.tables, net.as_of
        start = t.sales["date"].min()
        wk = censored_weekly_demand(t, a, start)
        r = wk.group_by("store_id", "sku").agg(
            pl.col("units").sum(),
            pl.col("demand").sum(),
            (pl.col("out_days") + pl.col("cens_days")).sum().alias("lost"),
        )
        out = r.filter(pl.col("lost") > 0)
        # History sold at the prices paid (promotions): the true demand of those days too.
        paid = (
            t.sales.join(t.products.select("sku", "full_price"), on="sku")
            .group_by("date")
            .agg(pl.col("revenue").sum() / (pl.col("units") * pl.col("full_price")).sum())
            .sort("date")
        )
        pf = dict(zip(paid["date"], paid["revenue"], strict=True))
        n_days = (a - start).days + 1
        factor = np.array([pf.get(start + dt.timedelta(days=i), 1.0) for i in range(n_days)])
        truth, _ = truth_totals(net, start, a, price=functools.partial(_head, factor))
        j = out.join(truth, on=["store_id", "sku"], how="inner")
        e_est = (j["demand"] - j["true"]).abs().sum()
        e_sales = (j["units"].cast(pl.Float64) - j["true"]).abs().sum()
        print(
            f"  seed {seed}: {j.height} stocked-out store x SKU pairs; abs error sales=demand "
            f"{e_sales:,.0f}; weekly reconstruction {e_est:,.0f} (closer by "
            f"{1 - e_est / e_sales:.1%}, total {j['demand'].sum():,.0f})"
        )
        for label, kw in (
            ("pair level x exposure, prior 28 days", {"method": "level", "prior_days": 28.0}),
            ("pooled censored model (default)", {"method": "pooled"}),
        ):
            t0 = time.perf_counter()
            est = pair_expected_demand(t, a, start, **kw)  # type: ignore[arg-type]
            ex = j.select("store_id", "sku", "true").join(
                est.select("store_id", "sku", "expected"), on=["store_id", "sku"], how="left"
            )
            e_exp = (ex["expected"].fill_null(0.0) - ex["true"]).abs().sum()
            print(
                f"    expected-demand estimate ({label}): abs error {e_exp:,.0f}, closer by "
                f"{1 - e_exp / e_sales:.1%}; true {j['true'].sum():,.0f} units, sales "
                f"{j['units'].sum():,.0f}, estimate {ex['expected'].sum():,.0f} "
                f"({time.perf_counter() - t0:.1f} s)"
            )


def _err_window(
    net,
    m: DemandModel,
    start: dt.date,
    end: dt.date,
    pairs: pl.DataFrame,  # type: ignore[no-untyped-def]
    price=None,
    price_plan=None,
) -> float:
    fc = m.predict(end, price_plan=price_plan)
    sd = season_demand(fc, start, end)
    truth, _ = truth_totals(net, start, end, price)
    truth = truth.join(pairs, on=["store_id", "sku"], how="inner")
    return wape(sd, truth)


def _price_array(
    n: int,
    *,
    s0: dt.date,
    skus: list[str],
    sty_of: dict[str, str],
    pf: dict,  # type: ignore[type-arg]
) -> np.ndarray:
    """(days, skus) price factor of the markdown plan."""
    out = np.ones((n, len(skus)))
    for i in range(n):
        d = s0 + dt.timedelta(days=i)
        for k, sku in enumerate(skus):
            out[i, k] = pf.get((sty_of[sku], d), 1.0)
    return out


def _trend_led(seed: int, as_of: dt.date = dt.date(2026, 5, 3)) -> None:
    """Trend-led pairs: as-of at the regional linen onset, pairs whose true trend multiplier
    over the next 2 weeks differs from its mean over the 4 weeks before by more than 10%."""
    net = generate("default", seed, as_of=as_of)
    t, a, f = net.tables, net.as_of, net.truth.factors
    ai = (a - f.start).days
    tag = f.combo_tag[f.sku_combo]
    tm = f.trend_mult
    r = (tm[ai + 1 : ai + 15].mean(0) / tm[ai - 27 : ai + 1].mean(0))[:, tag]
    tr = net.truth
    pairs = (
        pl.DataFrame(
            {
                "store_id": np.repeat(tr.store_ids, len(tr.skus)),
                "sku": np.tile(tr.skus, len(tr.store_ids)),
                "r": r.ravel(),
            }
        )
        .filter((pl.col("r") > 1.1) | (pl.col("r") < 1 / 1.1))
        .select("store_id", "sku")
    )
    full = DemandModel(random_state=seed).fit(t, a)
    notr = DemandModel(
        random_state=seed,
        signals=frozenset(
            {"events", "weather", "economy", "calendar", "store", "product", "price"}
        ),
    ).fit(t, a)
    s, e = a + dt.timedelta(days=1), a + dt.timedelta(days=14)
    n_st = pairs["store_id"].n_unique()
    print(
        f"  seed {seed} trend-led: as-of {a}, {pairs.height} store x SKU pairs ({n_st} stores) "
        "whose true trend multiplier moves > 10% (next 2 weeks vs 4 weeks before); 2-week WAPE "
        f"with trends {_err_window(net, full, s, e, pairs):.4f}, without "
        f"{_err_window(net, notr, s, e, pairs):.4f} (store trend slope: pooled "
        f"{full.trend_beta_:.2f})"
    )


def ablation(seeds: list[int]) -> None:
    print(f"== ablations, seeds {seeds}")
    full = None
    for seed in seeds:
        # Weather: as-of a week before the generator's cold snaps; forecasts cover 14 days.
        net = generate("default", seed, as_of=dt.date(2026, 3, 15))
        t, a = net.tables, net.as_of
        w = t.weather.filter(pl.col("is_forecast"))
        anom = w.with_columns((pl.col("temp_c") - pl.col("temp_normal_c")).alias("an"))
        cold = anom.group_by("store_id").agg(pl.col("an").mean()).filter(pl.col("an") < -3)
        if cold.height == 0:
            cold = anom.group_by("store_id").agg(pl.col("an").mean()).sort("an").head(5)
        pairs = cold.select("store_id").join(t.products.select("sku"), how="cross")
        s, e = a + dt.timedelta(days=1), a + dt.timedelta(days=14)
        full = DemandModel(random_state=seed).fit(t, a)
        now = DemandModel(
            random_state=seed,
            signals=frozenset(
                {"events", "trends", "economy", "calendar", "store", "product", "price"}
            ),
        ).fit(t, a)
        print(
            f"  seed {seed} weather: {cold.height} stores in a cold spell "
            "(forecast anomaly < -3 C); "
            f"2-week WAPE with weather {_err_window(net, full, s, e, pairs):.4f}, "
            f"without {_err_window(net, now, s, e, pairs):.4f}"
        )
        # Trends: trend-matched styles at the default as-of, 2 weeks ahead.
        net = generate("default", seed)
        t, a = net.tables, net.as_of
        from stocktailor.signals import match_trends

        styles = match_trends(t).select("style").unique()
        pairs = (
            t.products.join(styles, on="style")
            .select("sku")
            .join(t.stores.filter(pl.col("kind") == "store").select("store_id"), how="cross")
        )
        s, e = a + dt.timedelta(days=1), a + dt.timedelta(days=14)
        full = DemandModel(random_state=seed).fit(t, a)
        notr = DemandModel(
            random_state=seed,
            signals=frozenset(
                {"events", "weather", "economy", "calendar", "store", "product", "price"}
            ),
        ).fit(t, a)
        print(
            f"  seed {seed} trends: {styles.height} trend-matched styles; 2-week WAPE with trends "
            f"{_err_window(net, full, s, e, pairs):.4f}, "
            f"without {_err_window(net, notr, s, e, pairs):.4f}"
        )
        _trend_led(seed)
        # Price: markdowns in the last 4 weeks of each style (plan known to the model).
        from stocktailor.demand import markdown_price_plan

        plan = markdown_price_plan(t, a, ((4, 0.7), (2, 0.5)))
        nopr = DemandModel(
            random_state=seed,
            signals=frozenset(
                {"events", "weather", "trends", "economy", "calendar", "store", "product"}
            ),
        ).fit(t, a)
        skus = t.products.select("sku", "style")
        pf_day = {}
        for style, ws, f in plan.iter_rows():
            for i in range(7):
                pf_day[(style, ws + dt.timedelta(days=i))] = f
        end = t.products["season_end"].max()
        sty = skus["style"].to_list()
        sku_order = net.truth.skus
        sty_of = dict(zip(skus["sku"], skus["style"], strict=True))
        del sty

        price = functools.partial(
            _price_array, s0=a + dt.timedelta(days=1), skus=sku_order, sty_of=sty_of, pf=pf_day
        )

        pairs = t.products.select("sku").join(
            t.stores.filter(pl.col("kind") == "store").select("store_id"), how="cross"
        )
        s = a + dt.timedelta(days=1)
        e_full = _err_window(net, full, s, end, pairs, price=price, price_plan=plan)
        e_nopr = _err_window(net, nopr, s, end, pairs, price=price, price_plan=plan)
        print(
            f"  seed {seed} price: remaining season with markdowns (30%/50% off in the last "
            f"4/2 weeks); WAPE with price {e_full:.4f}, without {e_nopr:.4f} (elasticity "
            f"estimated {full.elasticity_:.2f}, pooled)"
        )


def speed(n_stores: int, n_skus: int) -> None:
    print(f"== speed: scale, {n_stores} stores x {n_skus} SKU-sizes")
    t0 = time.perf_counter()
    net = generate("scale", 0, n_stores=n_stores, n_sku_sizes=n_skus)
    print(
        f"  generated in {time.perf_counter() - t0:.0f} s; sales {net.tables.sales.height:,} rows, "
        f"inventory {net.tables.inventory.height:,} rows"
    )
    t0 = time.perf_counter()
    m = DemandModel().fit(net.tables, net.as_of)
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    fc = m.predict()
    t_pred = time.perf_counter() - t0
    t0 = time.perf_counter()
    m.update(net.tables, net.as_of)
    m.predict()
    t_upd = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"  fit {t_fit:.1f} s, predict {t_pred:.1f} s ({fc.height:,} rows), "
        f"update+predict {t_upd:.1f} s; peak RSS {peak:,.0f} MB (incl. the generator)"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["accuracy", "censoring", "ablation", "speed"])
    ap.add_argument("--scenario", default="default")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument(
        "--baselines", nargs="+", default=["seasonal_naive", "auto_ets", "croston", "adida"]
    )
    ap.add_argument("--stores", type=int, default=200)
    ap.add_argument("--skus", type=int, default=3000)
    a = ap.parse_args()
    if a.what == "accuracy":
        accuracy(a.scenario, a.seeds, a.baselines)
    elif a.what == "censoring":
        censoring(a.scenario, a.seeds)
    elif a.what == "ablation":
        ablation(a.seeds)
    else:
        speed(a.stores, a.skus)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
