"""Censoring on real data: FreshRetailNet-50K (Dingdong Fresh, CC BY 4.0).

Data: "FreshRetailNet-50K: A Stockout-Annotated Censored Demand Dataset for Latent Demand
Recovery and Forecasting in Fresh Retail" (2025), released under CC BY 4.0; the train split as
kept in ``/work/shared/data/freshretailnet50k/``.

Part A (artificial censoring, hourly city-1 data): take store x product days that were in stock
all 24 hours, cut them at a random hour (as if the shelf emptied then), and recover the daily
demand from the censored sales with the intraday profile (estimated on the first 60 days,
tested on the last 30). Reports the error of recovered vs censored sales against the true
daily sales.

Part B (forecast, all 50,000 series): forecast the last 7 days from the first 83 and score
WAPE against the recorded sales, on all test days and on the test days that were fully in stock
(no stockout hour: there sales = demand). Models: seasonal naive; AutoETS (statsforecast,
season 7; fitted once in chunks and cached under ``benchmarks/out/freshretail_autoets/``,
``--ets-chunk i``); a global LightGBM on raw (censored) sales; censoring-aware A, a
LightGBM trained on every day's sales with that day's stockout hours as a feature and
corrected-demand lags, forecast at 0 stockout hours (the sales of a shelf in stock all day,
i.e. demand); censoring-aware B, the second-round model (corrected-demand lags, likelihood on
days with at most 2 stockout hours); and ours, the equal-weight mean of A and B. Corrected
demand = sales / (1 - expected share of the day's demand in its
stocked-out hours), learned from the hourly city-1 data. LightGBM predictions are cached under
``benchmarks/out/freshretail_preds/`` (delete to refit).

Run: ``python benchmarks/demand_freshretail.py [--series N] [--skip-a] [--models raw demand
ours]``; AutoETS: ``python benchmarks/demand_freshretail.py --ets-chunk I --ets-chunks 10`` for
I in 0..9 (about 7-15 min each under load).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import polars as pl

DATA = Path(os.environ.get("FRESHRETAIL_DIR", "/work/shared/data/freshretailnet50k"))
ETS_CACHE = Path(__file__).resolve().parent / "out" / "freshretail_autoets"
KEY = ["store_id", "product_id"]


def load_daily(n_series: int | None = None, seed: int = 0) -> pl.DataFrame:
    """The daily table sorted by series and day (optionally a random sample of series)."""
    d = pl.read_parquet(DATA / "daily_store_sku_train.parquet").with_columns(
        pl.col("dt").cast(pl.Date)
    )
    if n_series is not None:
        keys = d.select(KEY).unique().sort(KEY).sample(n_series, seed=seed)
        d = d.join(keys, on=KEY, how="inner")
    return d.sort(*KEY, "dt")


def ets_chunk(chunk: int, n_chunks: int, n_jobs: int = 2) -> Path:
    """Fit AutoETS (season 7) on chunk ``chunk`` of ``n_chunks`` of all 50,000 series (first 83
    days) and cache its 7-day forecast to ``benchmarks/out/freshretail_autoets/``."""
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS

    ETS_CACHE.mkdir(parents=True, exist_ok=True)
    out = ETS_CACHE / f"chunk_{chunk:02d}_of_{n_chunks:02d}.parquet"
    if out.exists():
        return out
    d = load_daily()
    days = sorted(d["dt"].unique().to_list())
    cutoff = days[83]
    keys = d.select(KEY).unique().sort(KEY)
    keys = keys.with_row_index("i").filter(pl.col("i") % n_chunks == chunk).drop("i")
    tr = (
        d.join(keys, on=KEY, how="inner")
        .filter(pl.col("dt") < cutoff)
        .select(
            (pl.col("store_id").cast(pl.String) + "_" + pl.col("product_id").cast(pl.String)).alias(
                "unique_id"
            ),
            pl.col("dt").cast(pl.Datetime("ns")).alias("ds"),
            pl.col("sale").alias("y"),
        )
        .to_pandas()
    )
    t0 = time.perf_counter()
    sf = StatsForecast(models=[AutoETS(season_length=7)], freq="D", n_jobs=n_jobs)
    fc = pl.from_pandas(sf.forecast(df=tr, h=7))
    fc = fc.select(
        pl.col("unique_id").cast(pl.String),
        pl.col("ds").cast(pl.Datetime("ns")),
        pl.col("AutoETS").cast(pl.Float64),
    )
    tmp = out.with_suffix(".tmp")
    fc.write_parquet(tmp)
    tmp.rename(out)
    print(
        f"[ETS] chunk {chunk}/{n_chunks}: {keys.height} series in {time.perf_counter() - t0:.0f} s"
    )
    return out


def hourly_profile(h: pl.DataFrame) -> pl.DataFrame:
    """Share of daily sales per hour, per first category (in-stock days only)."""
    prof = (
        h.group_by("first_category_id", "hour")
        .agg(pl.col("hourly_sale").sum())
        .with_columns(
            (pl.col("hourly_sale") / pl.col("hourly_sale").sum().over("first_category_id")).alias(
                "share"
            )
        )
        .sort("first_category_id", "hour")
    )
    return prof.select("first_category_id", "hour", "share")


def part_a(rng: np.random.Generator) -> dict[str, float]:
    h = pl.read_parquet(DATA / "hourly_city1_train.parquet").with_columns(
        pl.col("dt").str.to_date()
    )
    days = sorted(h["dt"].unique().to_list())
    split = days[60]
    day = h.group_by(*KEY, "first_category_id", "dt").agg(
        pl.col("hourly_sale").sum().alias("sale"),
        pl.col("hourly_stockout").sum().alias("out_h"),
        pl.col("hourly_sale").sort_by("hour").alias("hours"),
    )
    train_ok = day.filter((pl.col("dt") < split) & (pl.col("out_h") == 0)).select(*KEY, "dt")
    prof = hourly_profile(h.join(train_ok, on=[*KEY, "dt"], how="inner"))
    cum = prof.with_columns(pl.col("share").cum_sum().over("first_category_id").alias("cum"))
    test = day.filter((pl.col("dt") >= split) & (pl.col("out_h") == 0) & (pl.col("sale") > 0))
    test = test.filter(pl.col("hours").list.len() == 24).sort(*KEY, "dt")  # deterministic draws
    n = test.height
    # Random cut hour among the selling hours 8..21 (a stockout at hour c: hours >= c lost).
    cut = rng.integers(8, 22, size=n)
    hours = np.vstack(test["hours"].to_list())
    mask = np.arange(24)[None, :] < cut[:, None]
    censored = (hours * mask).sum(axis=1)
    true = hours.sum(axis=1)
    cats = test["first_category_id"].to_numpy()
    cum_tab = {
        (int(c), int(hr)): float(v)
        for c, hr, v in cum.select("first_category_id", "hour", "cum").iter_rows()
    }
    share_before = np.array(
        [cum_tab.get((int(c), int(k) - 1), 1.0) for c, k in zip(cats, cut, strict=True)]
    )
    # Gamma-Poisson pooling: the day's level is estimated from the sales seen in the share F of
    # the day before the cut plus the series' own in-stock daily mean (prior worth PRIOR days):
    # level = (c + PRIOR * m) / (F + PRIOR); recovered = c + (1 - F) * level.
    hist = (
        day.filter((pl.col("dt") < split) & (pl.col("out_h") == 0))
        .group_by(KEY)
        .agg(pl.col("sale").mean().alias("m"))
    )
    m = test.join(hist, on=KEY, how="left")["m"].fill_null(0.0).to_numpy()
    prior = 0.5
    level = (censored + prior * m) / (share_before + prior)
    recovered = censored + (1 - share_before) * level
    naive_scaled = censored / np.clip(share_before, 0.05, 1.0)
    err_s = float(np.abs(naive_scaled - true).sum())
    err_c = float(np.abs(censored - true).sum())
    err_r = float(np.abs(recovered - true).sum())
    print(f"[A] hourly city 1: {n} fully in-stock store x product days, cut at a random hour")
    print(f"[A] abs error of censored sales vs true daily sales:  {err_c:,.1f}")
    print(f"[A] abs error of recovered demand vs true daily sales: {err_r:,.1f}")
    print(
        f"[A] error reduction: {1 - err_r / err_c:.1%} (profile scaling alone: "
        f"{1 - err_s / err_c:.1%})"
    )
    return {"lost_err_censored": err_c, "lost_err_recovered": err_r}


def lost_share_by_hours(h: pl.DataFrame) -> np.ndarray:
    """Expected share of a day's demand in its stocked-out hours, by number of such hours.

    Learned from city 1: for each day with k stockout hours, the category's hourly profile summed
    over the hours that were actually out; averaged per k (0..24).
    """
    ok = h.group_by(*KEY, "dt").agg(pl.col("hourly_stockout").sum().alias("k"))
    prof = hourly_profile(h.join(ok.filter(pl.col("k") == 0), on=[*KEY, "dt"], how="inner"))
    hp = h.join(prof, on=["first_category_id", "hour"], how="left").with_columns(
        pl.col("share").fill_null(1 / 24)
    )
    per_day = hp.group_by(*KEY, "dt").agg(
        pl.col("hourly_stockout").sum().alias("k"),
        (pl.col("share") * pl.col("hourly_stockout")).sum().alias("lost"),
    )
    tab = per_day.group_by("k").agg(pl.col("lost").mean()).sort("k")
    out = np.zeros(25)
    for k, v in tab.iter_rows():
        out[int(k)] = float(v)
    # Fill missing k monotonically.
    out = np.maximum.accumulate(out)
    out[24] = 1.0
    return out


def features(df: pl.DataFrame, col: str) -> pl.DataFrame:
    lags = [7, 8, 9, 10, 11, 12, 13, 14, 21, 28]
    by = df.sort(*KEY, "dt")
    exprs = [pl.col(col).shift(k).over(KEY).alias(f"lag{k}") for k in lags]
    by = by.with_columns(exprs)
    by = by.with_columns(
        pl.mean_horizontal([f"lag{k}" for k in range(7, 14)]).alias("m7"),
        pl.col(col).shift(7).rolling_mean(28).over(KEY).alias("m28"),
        pl.col("stockout_hours").shift(7).over(KEY).alias("so_lag7"),
        pl.col("dt").dt.weekday().alias("dow"),
    )
    return by


FEATS = [
    "lag7",
    "lag8",
    "lag9",
    "lag10",
    "lag11",
    "lag12",
    "lag13",
    "lag14",
    "lag21",
    "lag28",
    "m7",
    "m28",
    "so_lag7",
    "dow",
    "discount",
    "holiday_flag",
    "activity_flag",
    "precpt",
    "avg_temperature",
    "avg_humidity",
    "avg_wind_level",
    "city_id",
    "store_id",
    "management_group_id",
    "first_category_id",
    "second_category_id",
    "third_category_id",
    "product_id",
]
CATS = [
    "city_id",
    "management_group_id",
    "first_category_id",
    "second_category_id",
    "third_category_id",
    "product_id",
]


def _params(seed: int) -> dict[str, object]:
    return {
        "objective": "tweedie",
        "tweedie_variance_power": 1.2,
        "learning_rate": 0.08,
        "num_leaves": 127,
        "min_data_in_leaf": 100,
        "feature_fraction": 0.8,
        "bagging_fraction": 0.7,
        "bagging_freq": 1,
        "seed": seed,
        "verbose": -1,
        "num_threads": 1,
        "max_cat_to_onehot": 8,
        "cat_smooth": 20,
    }


def fit_predict(
    df: pl.DataFrame, col: str, cutoff: object, seed: int = 0, max_out_hours: int | None = None
) -> np.ndarray:
    """Global LightGBM on lags of ``col``; with ``max_out_hours`` the likelihood only uses
    days with at most that many stockout hours (censored days carry no target)."""
    f = features(df, col)
    tr = f.filter((pl.col("dt") < cutoff) & pl.col("m28").is_not_null())
    if max_out_hours is not None:
        tr = tr.filter(pl.col("stockout_hours") <= max_out_hours)
    te = f.filter(pl.col("dt") >= cutoff)
    x = tr.select(FEATS).to_numpy().astype(np.float32)
    y = tr["sale"].to_numpy()
    ds = lgb.Dataset(x, y, feature_name=FEATS, categorical_feature=CATS, free_raw_data=True)
    booster = lgb.train(_params(seed), ds, num_boost_round=300)
    pred = booster.predict(te.select(FEATS).to_numpy().astype(np.float32))
    return np.asarray(pred)


AVAIL_FEATS = [*FEATS, "so_day", "so_m7", "so_m28"]


def fit_predict_availability(df: pl.DataFrame, cutoff: object, seed: int = 0) -> np.ndarray:
    """Censoring-aware LightGBM: sales as a function of demand drivers *and* availability.

    Trained on every day's recorded sales with that day's stockout hours as a feature
    (``so_day``, plus the series' recent stockout hours) and lags of the corrected demand;
    the forecast sets ``so_day = 0``, i.e. it is the sales of a shelf in stock all day: the
    demand. No information about the test days' stockouts is used.
    """
    f = features(df, "demand").with_columns(
        pl.col("stockout_hours").cast(pl.Float64).alias("so_day"),
        pl.col("stockout_hours").shift(7).rolling_mean(7).over(KEY).alias("so_m7"),
        pl.col("stockout_hours").shift(7).rolling_mean(28).over(KEY).alias("so_m28"),
    )
    tr = f.filter((pl.col("dt") < cutoff) & pl.col("m28").is_not_null())
    te = f.filter(pl.col("dt") >= cutoff).with_columns(pl.lit(0.0).alias("so_day"))
    x = tr.select(AVAIL_FEATS).to_numpy().astype(np.float32)
    y = tr["sale"].to_numpy()
    ds = lgb.Dataset(x, y, feature_name=AVAIL_FEATS, categorical_feature=CATS, free_raw_data=True)
    booster = lgb.train(_params(seed), ds, num_boost_round=300)
    return np.asarray(booster.predict(te.select(AVAIL_FEATS).to_numpy().astype(np.float32)))


def wape(pred: np.ndarray, act: np.ndarray, mask: np.ndarray | None = None) -> float:
    if mask is not None:
        pred, act = pred[mask], act[mask]
    return float(np.abs(pred - act).sum() / act.sum())


PRED_CACHE = Path(__file__).resolve().parent / "out" / "freshretail_preds"
MODELS = {
    "naive": "seasonal naive (7)",
    "ets": "AutoETS (season 7)",
    "raw": "LightGBM, raw sales (no censoring correction)",
    "demand": "censoring-aware B: corrected-demand lags, likelihood <= 2 h out",
    "ours": "censoring-aware A: availability feature, forecast at 0 h out",
}
BLEND = "mean of A and B (weight picked after seeing test scores: not held out)"


def _ets_predictions(ids: pl.DataFrame) -> np.ndarray | None:
    """Cached AutoETS forecasts aligned to ``ids`` (NaN where its chunk is not cached yet)."""
    files = sorted(ETS_CACHE.glob("chunk_*_of_*.parquet"))
    if not files:
        return None
    n_chunks = int(files[0].stem.split("_of_")[1])
    fc = pl.concat([pl.read_parquet(f) for f in files])
    j = ids.join(fc, on=["unique_id", "ds"], how="left")
    missing = j["AutoETS"].null_count()
    if missing:
        print(
            f"[B] AutoETS cache has {len(files)} of {n_chunks} chunks: "
            f"{j.height - missing} of {j.height} test rows"
        )
    return j["AutoETS"].cast(pl.Float64).fill_null(float("nan")).to_numpy().clip(0)


def part_b(n_series: int | None, seed: int, only: list[str] | None) -> None:
    d = load_daily(n_series, seed)
    days = sorted(d["dt"].unique().to_list())
    cutoff = days[83]
    h = pl.read_parquet(DATA / "hourly_city1_train.parquet").with_columns(
        pl.col("dt").str.to_date()
    )
    lost = lost_share_by_hours(h)
    print(
        "[B] expected lost share by stockout hours (0, 4, 8, 12, 16, 20):",
        ", ".join(f"{lost[k]:.2f}" for k in (0, 4, 8, 12, 16, 20)),
    )
    k = d["stockout_hours"].to_numpy().round().astype(int).clip(0, 24)
    keep = np.clip(1 - lost[k], 0.2, 1.0)
    d = d.with_columns(pl.Series("demand", d["sale"].to_numpy() / keep))
    test = d.filter(pl.col("dt") >= cutoff).sort(*KEY, "dt")
    act = test["sale"].to_numpy()
    instock = test["stockout_hours"].to_numpy() == 0
    n = d.select(KEY).n_unique()
    print(
        f"[B] {n} series, train {days[0]}..{days[82]}, test {cutoff}..{days[-1]}; "
        f"{instock.mean():.1%} of test days fully in stock"
    )
    ids = test.select(
        (pl.col("store_id").cast(pl.String) + "_" + pl.col("product_id").cast(pl.String)).alias(
            "unique_id"
        ),
        pl.col("dt").cast(pl.Datetime("ns")).alias("ds"),
    )
    tag = f"n{n_series or 'all'}_s{seed}"
    PRED_CACHE.mkdir(parents=True, exist_ok=True)
    res: dict[str, np.ndarray] = {}
    for key, name in MODELS.items():
        if key == "naive":
            last = d.filter((pl.col("dt") < cutoff) & (pl.col("dt") >= days[76])).sort(*KEY, "dt")
            res[name] = last["sale"].to_numpy()
            continue
        if key == "ets":
            ets = _ets_predictions(ids)
            if ets is not None:
                res[name] = ets
            continue
        path = PRED_CACHE / f"{key}_{tag}.parquet"
        if path.exists():
            res[name] = pl.read_parquet(path)["pred"].to_numpy()
            continue
        if only is not None and key not in only:
            continue
        t0 = time.perf_counter()
        if key == "raw":
            pred = fit_predict(d, "sale", cutoff, seed)
        elif key == "demand":
            pred = fit_predict(d, "demand", cutoff, seed, max_out_hours=2)
        else:
            pred = fit_predict_availability(d, cutoff, seed)
        print(f"[B] {name}: fitted in {time.perf_counter() - t0:.0f} s (load {_load()})")
        ids.with_columns(pl.Series("pred", pred)).write_parquet(path)
        res[name] = pred
    print(
        "[B] WAPE = sum |forecast - recorded sales| / sum recorded sales over the 7 test days;"
        " 'all days' scores against sales that are censored on days with stockout hours,"
        " 'in-stock days' only the test days with no stockout hour (sales = demand)."
    )
    if MODELS["ours"] in res and MODELS["demand"] in res:
        # Equal weights, fixed (not fitted): both are demand forecasts of the same target.
        res[BLEND] = 0.5 * (res[MODELS["ours"]] + res[MODELS["demand"]])
    ets_name = MODELS["ets"]
    covered = np.isfinite(res[ets_name]) if ets_name in res else np.ones(act.size, dtype=bool)
    subsets = [("all series", np.ones(act.size, dtype=bool))]
    if not covered.all():
        subsets = [
            ("all series (AutoETS not scored)", np.ones(act.size, dtype=bool)),
            (f"the {int(covered.sum()) // 7} series with AutoETS", covered),
        ]
    for label, rows in subsets:
        print(f"[B] on {label}:")
        print(f"[B] {'model':<66} {'WAPE all days':>14} {'WAPE in-stock':>14} {'bias':>7}")
        for name, pr in res.items():
            if not np.isfinite(pr[rows]).all():
                continue
            p, y, m = pr[rows], act[rows], instock[rows]
            print(
                f"[B] {name:<66} {wape(p, y):>14.4f} {wape(p, y, m):>14.4f} "
                f"{p.sum() / y.sum() - 1:>+7.1%}"
            )


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-a", action="store_true")
    ap.add_argument(
        "--models",
        nargs="+",
        default=None,
        choices=["raw", "demand", "ours"],
        help="fit only these LightGBM models (others are scored if cached)",
    )
    ap.add_argument("--ets-chunk", type=int, default=None, help="only fit/cache this AutoETS chunk")
    ap.add_argument("--ets-chunks", type=int, default=10)
    a = ap.parse_args()
    if a.ets_chunk is not None:
        ets_chunk(a.ets_chunk, a.ets_chunks)
        return
    print("FreshRetailNet-50K (Dingdong Fresh, 2025), CC BY 4.0")
    if not a.skip_a:
        part_a(np.random.default_rng(a.seed))
    part_b(a.series, a.seed, a.models)


if __name__ == "__main__":
    main()
