"""Tests of the demand model, its distributions and the weekly/season aggregation."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from stocktailor.config import DemandConfig
from stocktailor.contract import Tables
from stocktailor.demand import (
    FORECAST_COLUMNS,
    SIGNAL_GROUPS,
    DemandModel,
    baseline_forecast,
    censored_weekly_demand,
    markdown_price_plan,
    nb_quantiles,
    pair_expected_demand,
    prob_at_least,
    season_demand,
)
from stocktailor.demand.offsets import fit_trend_slopes, price_elasticities, temperature_curves
from stocktailor.valuation import prob_at_least as valuation_prob_at_least

D = dt.date


def test_prob_at_least_matches_scipy_nb_and_poisson() -> None:
    mean = np.array([0.0, 1.5, 4.0, 4.0])
    var = np.array([0.0, 1.5, 4.0, 10.0])
    p = prob_at_least(mean, var, 8)
    assert p.shape == (4, 8)
    assert np.allclose(p[0], 0.0)
    k = np.arange(1, 9)
    assert np.allclose(p[1], stats.poisson.sf(k - 1, 1.5))
    assert np.allclose(p[2], stats.poisson.sf(k - 1, 4.0))
    pp = 4.0 / 10.0
    n = 4.0 * pp / (1 - pp)
    assert np.allclose(p[3], stats.nbinom.sf(k - 1, n, pp))


@settings(max_examples=30, deadline=None)
@given(st.floats(0.01, 50.0), st.floats(1.0, 5.0))
def test_prob_at_least_is_decreasing_and_sums_to_mean(mean: float, ratio: float) -> None:
    kmax = int(mean * ratio * 10 + 60)
    p = prob_at_least(np.array([mean]), np.array([mean * ratio]), kmax)[0]
    assert np.all(np.diff(p) <= 1e-12)
    # E[D] = sum_k P(D >= k)
    assert p.sum() == pytest.approx(mean, rel=2e-3, abs=1e-3)


def test_nb_quantiles_ordered() -> None:
    m = np.array([0.0, 0.3, 2.0, 20.0])
    v = np.array([0.0, 0.3, 6.0, 100.0])
    q10, q50, q90 = nb_quantiles(m, v, (0.1, 0.5, 0.9))
    assert np.all(q10 <= q50) and np.all(q50 <= q90)
    assert q90[0] == 0.0
    assert q50[3] == stats.nbinom.ppf(0.5, 20 * 0.2 / 0.8, 0.2)


def test_season_demand_pro_rata() -> None:
    fc = pl.DataFrame(
        {
            "store_id": ["A", "A"],
            "sku": ["x", "x"],
            "week_start": [D(2024, 1, 1), D(2024, 1, 8)],
            "mean": [7.0, 14.0],
            "var": [7.0, 28.0],
            "p10": [0.0, 0.0],
            "p50": [0.0, 0.0],
            "p90": [0.0, 0.0],
        }
    )
    sd = season_demand(fc, D(2024, 1, 5), D(2024, 1, 9))
    # 3 days of week 1 (3/7 * 7) + 2 days of week 2 (2/7 * 14)
    assert sd["mean"].to_list() == [pytest.approx(3.0 + 4.0)]
    assert sd["var"].to_list() == [pytest.approx(3.0 + 8.0)]
    with pytest.raises(ValueError, match="before start"):
        season_demand(fc, D(2024, 1, 9), D(2024, 1, 5))


def test_prob_at_least_is_the_optimisers() -> None:
    assert prob_at_least is valuation_prob_at_least


@settings(max_examples=40, deadline=None)
@given(st.one_of(st.just(0.0), st.floats(1e-6, 60.0)), st.floats(1.0, 6.0))
def test_nb_quantiles_match_scipy(mean: float, ratio: float) -> None:
    # Small means go through the pmf recurrence, large ones through scipy: both exact.
    var = mean * ratio
    got = nb_quantiles(np.array([mean]), np.array([var]), (0.1, 0.5, 0.9))
    for q, g in zip((0.1, 0.5, 0.9), got, strict=True):
        if mean == 0.0:
            ref = 0.0
        elif var > mean * (1 + 1e-6):
            p = mean / var
            ref = float(stats.nbinom.ppf(q, mean * p / (1 - p), p))
        else:
            ref = float(stats.poisson.ppf(q, mean))
        assert g[0] == ref


def test_nb_quantiles_of_a_vanishing_mean_are_zero() -> None:
    # scipy's ppf returns nan for subnormal means; a demand that small has all quantiles at 0.
    got = nb_quantiles(np.array([5e-324, 1e-300]), np.array([1e-300, 3e-300]), (0.1, 0.5, 0.9))
    assert np.all(np.asarray(got) == 0.0)


def _network(
    seed: int = 0, n_weeks: int = 10, sold_out_store: bool = True
) -> tuple[Tables, dt.date]:
    """Two stores x one style (two sizes); store B sells out of size M in week 3."""
    rng = np.random.default_rng(seed)
    start = D(2024, 1, 1)
    stores = pl.DataFrame(
        {
            "store_id": ["A", "B", "C"],
            "kind": ["store"] * 3,
            "latitude": [0.0] * 3,
            "longitude": [0.0] * 3,
            "city": ["X", "Y", "Y"],
            "region": ["R", "R", "R"],
        }
    )
    products = pl.DataFrame(
        {
            "sku": ["t-M", "t-L", "u-M"],
            "style": ["t", "t", "u"],
            "color": ["c", "c", "c"],
            "size": ["M", "L", "M"],
            "category": ["tops"] * 3,
            "full_price": [10.0] * 3,
            "unit_cost": [4.0] * 3,
            "season_end": [start + dt.timedelta(days=7 * n_weeks + 27)] * 3,
            "size_order": [2, 3, 2],
        }
    )
    rate = {"t-M": 3.0, "t-L": 1.5, "u-M": 1.0}
    scale = {"A": 1.0, "B": 1.0, "C": 0.5}
    stock = {(s, k): 10_000 for s in scale for k in rate}
    if sold_out_store:
        stock[("B", "t-M")] = 40
    sales, inv = [], []
    for (s, k), q in stock.items():
        inv.append((start - dt.timedelta(days=1), s, k, q))
    cur = dict(stock)
    for d in range(7 * n_weeks):
        day = start + dt.timedelta(days=d)
        for s, k in stock:
            u = int(min(cur[(s, k)], rng.poisson(rate[k] * scale[s])))
            cur[(s, k)] -= u
            if u:
                sales.append((day, s, k, u, 10.0 * u))
        if d % 7 == 6:
            for s, k in stock:
                inv.append((day, s, k, cur[(s, k)]))
    t = Tables(
        stores,
        products,
        pl.DataFrame(
            sales,
            schema={
                "date": pl.Date,
                "store_id": pl.String,
                "sku": pl.String,
                "units": pl.Int64,
                "revenue": pl.Float64,
            },
            orient="row",
        ),
        pl.DataFrame(
            inv,
            schema={"date": pl.Date, "store_id": pl.String, "sku": pl.String, "on_hand": pl.Int64},
            orient="row",
        ),
    )
    return t, start + dt.timedelta(days=7 * n_weeks - 1)


CFG = DemandConfig(num_boost_round=20, min_data_in_leaf=5, max_train_rows=5000)


def test_predict_frame_contract() -> None:
    t, as_of = _network()
    m = DemandModel.from_config(CFG).fit(t, as_of)
    fc = m.predict()
    assert tuple(fc.columns) == FORECAST_COLUMNS
    assert fc["week_start"].min() == as_of + dt.timedelta(days=1)
    assert set(((fc["week_start"] - as_of).dt.total_days() - 1).unique().to_list()) <= set(
        range(0, 400, 7)
    )
    assert (fc["week_start"] <= D(2024, 1, 1) + dt.timedelta(days=7 * 10 + 27)).all()
    assert (fc["var"] >= fc["mean"] - 1e-9).all()
    assert (fc["p10"] <= fc["p50"]).all() and (fc["p50"] <= fc["p90"]).all()
    assert fc.select(pl.struct("store_id", "sku").n_unique()).item() == 9
    # Deterministic for the same inputs and seed.
    assert DemandModel.from_config(CFG).fit(t, as_of).predict().equals(fc)


def test_sold_out_store_keeps_its_demand() -> None:
    t, as_of = _network()
    fc = DemandModel.from_config(CFG).fit(t, as_of).predict()
    naive = DemandModel.from_config(CFG, censoring=False).fit(t, as_of).predict()
    wk = fc.filter(pl.col("week_start") == as_of + dt.timedelta(days=1))
    wk_naive = naive.filter(pl.col("week_start") == as_of + dt.timedelta(days=1))

    def get(f: pl.DataFrame, s: str, k: str) -> float:
        return float(f.filter((pl.col("store_id") == s) & (pl.col("sku") == k))["mean"].item())

    # B sold out of t-M (true 21/week): with censoring its forecast stays near A's.
    assert get(wk, "B", "t-M") > 0.6 * get(wk, "A", "t-M")
    assert get(wk, "B", "t-M") > 2 * get(wk_naive, "B", "t-M")


def test_update_reuses_booster_and_moves_weeks() -> None:
    t, as_of = _network(n_weeks=10)
    m = DemandModel.from_config(CFG).fit(t, as_of - dt.timedelta(days=7))
    booster = m.booster_
    m.update(t, as_of)
    assert m.booster_ is booster
    assert m.predict()["week_start"].min() == as_of + dt.timedelta(days=1)


def test_unknown_signal_group_rejected() -> None:
    with pytest.raises(ValueError, match="unknown signal"):
        DemandModel(signals=frozenset({"weather", "astrology"}))


def test_markdown_plan() -> None:
    t, as_of = _network()
    plan = markdown_price_plan(t, as_of - dt.timedelta(days=28), ((4, 0.7), (2, 0.5)))
    end = t.products["season_end"].max()
    assert isinstance(end, dt.date)
    last = plan.filter(pl.col("style") == "t").sort("week_start")
    f = last["price_factor"].to_list()
    # 8 weeks left: 4 at full price, 2 at 70 %, 2 at 50 %.
    assert f == [1.0] * 4 + [0.7] * 2 + [0.5] * 2


def test_forecast_partitions_by_style_through_engine() -> None:
    from stocktailor.config import Settings
    from stocktailor.demand import forecast

    class CountingEngine:
        def __init__(self) -> None:
            self.calls = 0

        def map(self, fn, items, *, progress=None, **shared):  # type: ignore[no-untyped-def]
            return list(self.imap(fn, items, progress=progress, **shared))

        def imap(self, fn, items, *, progress=None, **shared):  # type: ignore[no-untyped-def]
            self.calls += len(items)
            return (fn(i, **shared) for i in items)

        def close(self) -> None:
            return None

    t, as_of = _network()
    settings = Settings(demand=CFG)
    eng = CountingEngine()
    fc = forecast(t, as_of, settings, engine=eng)
    assert eng.calls == 2  # two styles -> two partitions
    assert tuple(fc.columns) == FORECAST_COLUMNS
    # Every ranged store x SKU pair is forecast.
    assert fc.select(pl.struct("store_id", "sku").n_unique()).item() == 9


def test_pair_expected_demand_fills_the_sold_out_weeks() -> None:
    # B's t-M sells out in week 3 (true demand 21/week all along): the weekly reconstruction
    # never reads less than the sales, and the pooled expected total is well above them.
    t, as_of = _network()
    start = t.sales["date"].min()
    wk = censored_weekly_demand(t, as_of, start).filter(
        (pl.col("store_id") == "B") & (pl.col("sku") == "t-M")
    )
    assert wk.filter(pl.col("cens_days") > 0).height >= 1
    assert (wk["demand"] >= wk["units"] - 1e-9).all()
    ex = pair_expected_demand(t, as_of, start)
    b = ex.filter((pl.col("store_id") == "B") & (pl.col("sku") == "t-M"))
    a = ex.filter((pl.col("store_id") == "A") & (pl.col("sku") == "t-M"))
    assert float(b["expected"].item()) > 1.5 * float(b["units"].item())
    # A never sold out: its expected total stays close to its sales.
    assert float(a["expected"].item()) == pytest.approx(float(a["units"].item()), rel=0.25)


def test_temperature_curves_pool_stores_and_stay_flat_outside() -> None:
    # Demand ~ exp(0.1 T) in three stores whose temperature ranges overlap (0-15, 5-20 and
    # 10-25 C): the store levels absorb the climate, the shared curve the warming.
    rng = np.random.default_rng(0)
    rows = []
    temps = []
    for s, t0 in (("cold", 0.0), ("warm", 10.0), ("mid", 5.0)):
        for w in range(-11, 0):
            temp = t0 + 1.5 * (w + 11)
            temps.append((s, w, temp))
            rows.append((s, "x", w, float(rng.poisson(50.0 * np.exp(0.1 * temp)))))
        temps.append((s, 5, 40.0))  # a future week far beyond anything seen
    grid = pl.DataFrame(
        rows, schema=["store_id", "style", "week", "demand"], orient="row"
    ).with_columns(pl.col("week").cast(pl.Int32))
    tw = pl.DataFrame(temps, schema=["store_id", "week", "temp_c"], orient="row").with_columns(
        pl.col("week").cast(pl.Int32)
    )
    cur = temperature_curves(grid, tw)
    g = dict(zip(cur["tbin"].to_list(), cur["g"].to_list(), strict=True))
    # 2-degree bins: 4 C -> bin 2, 24 C -> bin 12; true log ratio 2.0 (smoothing pulls a bit).
    assert g[12] - g[2] == pytest.approx(2.0, abs=0.35)
    assert g[20] == pytest.approx(g[12], abs=1e-9)  # 40 C: flat from the warmest seen bin


def _one_style(sales: list[tuple[dt.date, str, str, int, float]]) -> Tables:
    """One style ``t`` (SKU ``t-M``, full price 10) with these sales rows and no stock."""
    return Tables(
        pl.DataFrame({"store_id": ["A"], "kind": ["store"], "latitude": [0.0], "longitude": [0.0]}),
        pl.DataFrame(
            {"sku": ["t-M"], "style": ["t"], "color": ["c"], "size": ["M"], "full_price": [10.0]}
        ),
        pl.DataFrame(sales, schema=["date", "store_id", "sku", "units", "revenue"], orient="row"),
        pl.DataFrame(
            schema={"date": pl.Date, "store_id": pl.String, "sku": pl.String, "on_hand": pl.Int64}
        ),
    )


def test_price_elasticity_recovered_from_a_promotion() -> None:
    # One style, 8 weeks; days 24-26 at 20 % off with demand x 0.8 ** -2.
    rng = np.random.default_rng(1)
    start = D(2024, 1, 1)
    sales = []
    for d in range(56):
        day = start + dt.timedelta(days=d)
        f = 0.8 if 24 <= d <= 26 else 1.0
        for s in ("A", "B", "C", "E"):
            u = int(rng.poisson(60.0 * (1.0 + 0.3 * (day.weekday() >= 5)) * f**-2.0))
            sales.append((day, s, "t-M", u, 10.0 * f * u))
    t = _one_style(sales)
    pooled, per = price_elasticities(
        t, start + dt.timedelta(days=55), start, prior=1.0, prior_sd=5.0
    )
    assert pooled == pytest.approx(2.0, abs=0.25)
    assert per["elasticity"].item() == pytest.approx(pooled, abs=0.25)
    # No price variation: the prior.
    flat = t.sales.with_columns((pl.col("units") * 10.0).alias("revenue"))
    t2 = Tables(t.stores, t.products, flat, t.inventory)
    assert price_elasticities(t2, start + dt.timedelta(days=55), start, prior=1.3, prior_sd=0.5)[
        0
    ] == pytest.approx(1.3)


def test_price_elasticity_recovered_from_weekly_rows() -> None:
    """Weekly sales rows (one a week, the chains' export): nothing to compare inside a week, so
    promotion weeks are compared with their 4-week block. It returned the prior before."""
    rng = np.random.default_rng(2)
    start = D(2024, 1, 4)  # a Thursday: every row is a week's sales dated on its Thursday
    sales = []
    for w in range(40):
        day = start + dt.timedelta(weeks=w)
        f = 0.7 if w % 6 == 3 else 1.0
        for s in ("A", "B", "C"):
            u = int(rng.poisson(400.0 * f**-3.0))
            sales.append((day, s, "t-M", u, 10.0 * f * u))
    t = _one_style(sales)
    last = start + dt.timedelta(weeks=39)
    pooled, per = price_elasticities(t, last, start, prior=1.0, prior_sd=5.0)
    assert pooled == pytest.approx(3.0, abs=0.2)
    assert per["elasticity"].item() == pytest.approx(3.0, abs=0.2)


def test_markdown_plan_lifts_the_forecast_by_the_elasticity() -> None:
    t, as_of = _network()
    plan = markdown_price_plan(t, as_of, ((40, 0.5),))  # every future week at half price
    # No promotion in the history: the elasticity stays at its prior, 0 by default (no
    # effect the data has not earned), so a declared markdown does not move the forecast.
    m0 = DemandModel.from_config(CFG).fit(t, as_of)
    assert m0.elasticity_ == pytest.approx(0.0)
    assert m0.predict(price_plan=plan)["mean"].sum() == pytest.approx(m0.predict()["mean"].sum())
    # A retailer's prior of 1.5: 0.5 ** -1.5 = 2.83.
    m = DemandModel.from_config(CFG, price_elasticity_prior=1.5).fit(t, as_of)
    ratio = m.predict(price_plan=plan)["mean"].sum() / m.predict()["mean"].sum()
    assert m.elasticity_ == pytest.approx(1.5)
    assert ratio == pytest.approx(0.5**-1.5, rel=0.05)
    no_price = DemandModel.from_config(
        CFG, price_elasticity_prior=1.5, signals=SIGNAL_GROUPS - {"price"}
    ).fit(t, as_of)
    assert no_price.predict(price_plan=plan)["mean"].sum() == pytest.approx(
        no_price.predict()["mean"].sum()
    )


def test_trend_slope_fitted_per_store() -> None:
    rng = np.random.default_rng(2)
    n = 4000
    store = np.where(np.arange(n) < n // 2, "A", "B")
    x = rng.uniform(-0.4, 0.4, n)
    off = np.log(rng.uniform(2.0, 6.0, n))
    slope = np.where(store == "A", 1.0, 0.2)
    y = rng.poisson(np.exp(off + slope * x)).astype(float)
    rows = pl.DataFrame({"store_id": store, "trend_x": x})
    pooled, per_store = fit_trend_slopes(rows, y, off, prior_sd=0.5)
    assert per_store["A"] == pytest.approx(1.0, abs=0.2)
    assert per_store["B"] == pytest.approx(0.2, abs=0.2)
    assert 0.2 < pooled < 1.0


def test_weekly_autoets_baseline_forecasts_weekly_sums_to_season_end() -> None:
    t, as_of = _network(n_weeks=10, sold_out_store=False)
    fc = baseline_forecast(t, as_of, "auto_ets_weekly", history_days=70)
    end = t.products["season_end"].max()
    assert isinstance(end, dt.date)
    starts = sorted(set(fc["week_start"].to_list()))
    assert starts == [as_of + dt.timedelta(days=1 + 7 * k) for k in range(4)]
    assert (fc["week_start"] <= end).all()
    assert fc["var"].to_list() == fc["mean"].to_list()
    # Store A sells t-M at 3 units a day (Poisson): about 21 a week for the 4 weeks left.
    a = fc.filter((pl.col("store_id") == "A") & (pl.col("sku") == "t-M"))["mean"].sum()
    assert 0.75 * 84 <= a <= 1.25 * 84


def test_model_parameters_are_flat_and_round_trip_from_config() -> None:
    m = DemandModel.from_config(CFG, censoring=False)
    params = m.get_params()
    assert params["num_boost_round"] == CFG.num_boost_round
    assert params["censoring"] is False
    assert DemandModel(**params).get_params() == params


def test_fitted_size_curves_are_used_as_given() -> None:
    from stocktailor.demand import prepare_history
    from stocktailor.sizecurves import SizeCurveEstimator

    t, as_of = _network()
    hist = prepare_history(t, as_of)
    est = SizeCurveEstimator(prior_strength=5.0).fit(t, as_of, events=hist.events)
    m = DemandModel.from_config(CFG).fit(t, as_of, size_curves=est, history=hist)
    assert m.size_curves_ is est
    assert m.history_ is hist and hist.events is None  # events released after the split
    with pytest.raises(ValueError, match="history is as of"):
        DemandModel.from_config(CFG).fit(t, as_of - dt.timedelta(days=7), history=hist)
