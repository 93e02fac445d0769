"""Tests of stock reconstruction, censoring flags and the censored Poisson rate."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from stocktailor.censoring import (
    backcast_pairs,
    censored_poisson_rate,
    demand_tables,
    expected_demand_given_at_least,
    first_snapshots,
    net_daily_demand,
    pair_demand_rates,
    pooled_expected_demand,
    ranged_pairs,
    reconstruct_stock,
    stock_events,
    velocity_forecast,
)
from stocktailor.contract import Tables

D = dt.date


def _tables(
    sales: list[tuple[dt.date, str, str, int]], inv: list[tuple[dt.date, str, str, int]]
) -> Tables:
    stores = pl.DataFrame(
        {
            "store_id": ["A", "B"],
            "kind": ["store", "store"],
            "latitude": [0.0, 0.0],
            "longitude": [0.0, 0.0],
        }
    )
    products = pl.DataFrame(
        {
            "sku": ["x", "y"],
            "style": ["s", "s"],
            "color": ["c", "c"],
            "size": ["M", "L"],
            "category": ["tops", "tops"],
            "full_price": [10.0, 10.0],
            "unit_cost": [4.0, 4.0],
        }
    )
    s = pl.DataFrame(
        sales,
        schema={"date": pl.Date, "store_id": pl.String, "sku": pl.String, "units": pl.Int64},
        orient="row",
    ).with_columns((pl.col("units") * 10.0).alias("revenue"))
    i = pl.DataFrame(
        inv,
        schema={"date": pl.Date, "store_id": pl.String, "sku": pl.String, "on_hand": pl.Int64},
        orient="row",
    )
    return Tables(stores, products, s, i)


def test_reconstruct_hand_worked() -> None:
    # Store A starts day 1 with 5 units (snapshot = closing of Jan 1); sells 2, 3 -> sold out on
    # Jan 3; nothing on Jan 4-5 (out of stock, censored with zero sales).
    t = _tables(
        [(D(2024, 1, 2), "A", "x", 2), (D(2024, 1, 3), "A", "x", 3)],
        [(D(2024, 1, 1), "A", "x", 5)],
    )
    r = reconstruct_stock(t, D(2024, 1, 5))
    assert r["date"].to_list() == [D(2024, 1, d) for d in (2, 3, 4, 5)]
    assert r["opening_stock"].to_list() == [5, 3, 0, 0]
    assert r["units"].to_list() == [2, 3, 0, 0]
    assert r["censored"].to_list() == [False, True, True, True]


def test_unrecorded_receipt_makes_stock_unknown() -> None:
    t = _tables(
        [(D(2024, 1, 2), "A", "x", 2), (D(2024, 1, 3), "A", "x", 4)],
        [(D(2024, 1, 1), "A", "x", 3), (D(2024, 1, 4), "A", "x", 6)],
    )
    r = reconstruct_stock(t, D(2024, 1, 5))
    # Jan 3 sells 4 with only 1 projected: a receipt happened -> unknown, not censored.
    assert r["opening_stock"].to_list() == [3, None, None, 6]
    assert r["censored"].to_list() == [False, False, False, False]


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 30),
    st.lists(st.integers(0, 4), min_size=8, max_size=30),
)
def test_weekly_counts_rebuild_the_daily_stock(opening: int, demand: list[int]) -> None:
    # Without a receipt the data does not show, a count every 7 days (and at the as-of day)
    # and the daily sales give the same daily stock and censoring as a count every day.
    start = D(2024, 1, 1)
    stock, sales, daily = opening, [], [(start, "A", "x", opening)]
    for i, d in enumerate(demand, start=1):
        sold = min(d, stock)
        stock -= sold
        day = start + dt.timedelta(days=i)
        if sold:
            sales.append((day, "A", "x", sold))
        daily.append((day, "A", "x", stock))
    as_of = daily[-1][0]
    weekly = [row for i, row in enumerate(daily) if i % 7 == 0 or row[0] == as_of]
    by_day = reconstruct_stock(_tables(sales, daily), as_of)
    by_week = reconstruct_stock(_tables(sales, weekly), as_of)
    assert by_week.equals(by_day)
    assert by_day["opening_stock"].null_count() == 0


def test_threshold_marks_nearly_out() -> None:
    t = _tables([(D(2024, 1, 2), "A", "x", 3)], [(D(2024, 1, 1), "A", "x", 4)])
    r0 = reconstruct_stock(t, D(2024, 1, 2), threshold_units=0)
    r1 = reconstruct_stock(t, D(2024, 1, 2), threshold_units=1)
    assert r0["censored"].to_list() == [False]
    assert r1["censored"].to_list() == [True]


def test_sparse_events_match_dense() -> None:
    rng = np.random.default_rng(3)
    sales, inv = [], []
    for store in ("A", "B"):
        for sku in ("x", "y"):
            stock = int(rng.integers(0, 12))
            inv.append((D(2024, 1, 1), store, sku, stock))
            for d in range(2, 20):
                u = int(min(stock, rng.poisson(0.8)))
                stock -= u
                if u:
                    sales.append((D(2024, 1, d), store, sku, u))
                if d == 9:
                    inv.append((D(2024, 1, d), store, sku, stock))
    t = _tables(sales, inv)
    dense = reconstruct_stock(t, D(2024, 1, 19))
    s, o = stock_events(t, D(2024, 1, 19))
    cens_dense = dense.filter(pl.col("censored")).select("date", "store_id", "sku")
    cens_sparse = pl.concat(
        [s.filter(pl.col("censored")).select("date", "store_id", "sku"), o]
    ).sort("store_id", "sku", "date")
    assert cens_dense.sort("store_id", "sku", "date").equals(cens_sparse)


def test_expected_given_at_least_matches_scipy() -> None:
    lam = np.array([0.5, 2.0, 5.0, 3.0])
    y = np.array([0.0, 1.0, 4.0, 9.0])
    got = expected_demand_given_at_least(lam, y)
    for i in range(4):
        k = np.arange(int(y[i]), 200)
        p = stats.poisson.pmf(k, lam[i])
        assert got[i] == pytest.approx((k * p).sum() / p.sum(), rel=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    lam=st.floats(0.01, 30.0),
    y=st.integers(0, 40),
)
def test_expected_given_at_least_bounds(lam: float, y: int) -> None:
    e = float(expected_demand_given_at_least(np.array([lam]), np.array([float(y)]))[0])
    assert e >= y
    assert e >= lam - 1e-9 or y == 0
    assert np.isfinite(e)


def test_censored_rate_recovers_truth_where_naive_is_biased() -> None:
    rng = np.random.default_rng(0)
    lam, days, cap = 4.0, 4000, 3
    d = rng.poisson(lam, days)
    sales = np.minimum(d, cap)
    cens = d >= cap
    est = censored_poisson_rate(
        np.array([sales[~cens].sum()], dtype=float),
        np.array([float((~cens).sum())]),
        [sales[cens].astype(float)],
    )
    assert sales.mean() < 3.0  # sales = demand is badly biased
    assert est[0] == pytest.approx(lam, rel=0.05)


def test_prior_pools_store_without_in_stock_days() -> None:
    est = censored_poisson_rate(
        np.array([0.0, 30.0]),
        np.array([0.0, 10.0]),
        [np.array([]), np.array([])],
        prior_rate=np.array([2.5, 2.5]),
        prior_days=7.0,
    )
    assert est[0] == pytest.approx(2.5)
    assert est[1] == pytest.approx((30 + 7 * 2.5) / 17)


def test_pair_rates_sold_out_store_is_not_zero_demand() -> None:
    # Store A sold its 2 units on day 1 and stayed empty; store B (same SKU) had plenty of
    # stock and sold 3 a day. A's rate must not be 2/10 per day.
    sales = [(D(2024, 1, 2), "A", "x", 2)] + [(D(2024, 1, d), "B", "x", 3) for d in range(2, 12)]
    inv = [(D(2024, 1, 1), "A", "x", 2), (D(2024, 1, 1), "B", "x", 100)]
    t = _tables(sales, inv)
    r = pair_demand_rates(t, D(2024, 1, 11), start=D(2024, 1, 2), prior_days=7.0)
    a = r.filter(pl.col("store_id") == "A").row(0, named=True)
    assert a["out_days"] == 9
    assert a["censored_days"] == 1
    assert a["rate"] > 1.0
    assert a["demand"] > a["units"]


def test_ranged_memo_follows_the_tables() -> None:
    # The one-entry memo is keyed by the frames' identity and as-of: new tables or a new
    # as-of never return a stale answer.
    inv1 = [(D(2024, 1, 1), "A", "x", 3), (D(2024, 1, 1), "B", "y", 0)]
    t1 = _tables([(D(2024, 1, 2), "A", "x", 1)], inv1)
    r1 = ranged_pairs(t1, D(2024, 1, 5))
    assert r1.rows() == [("A", "x")]
    assert ranged_pairs(t1, D(2024, 1, 5)) is r1
    inv2 = [*inv1, (D(2024, 1, 3), "B", "y", 4)]
    t2 = _tables([(D(2024, 1, 2), "A", "x", 1)], inv2)
    assert ranged_pairs(t2, D(2024, 1, 5)).rows() == [("A", "x"), ("B", "y")]
    assert ranged_pairs(t2, D(2024, 1, 2)).rows() == [("A", "x")]
    first = first_snapshots(t2, D(2024, 1, 5)).sort("store_id")
    assert first["first"].to_list() == [D(2024, 1, 1), D(2024, 1, 1)]


def _grid_tables(
    daily: dict[tuple[str, str], int], stock: dict[tuple[str, str], int], n_days: int
) -> Tables:
    """Pairs selling ``daily`` units a day from Jan 2 until their ``stock`` runs out."""
    sales = []
    for (store, sku), rate in daily.items():
        left = stock[(store, sku)]
        for d in range(n_days):
            u = min(rate, left)
            left -= u
            if u:
                sales.append((D(2024, 1, 2) + dt.timedelta(days=d), store, sku, u))
    inv = [(D(2024, 1, 1), st_, k, q) for (st_, k), q in stock.items()]
    return _tables(sales, inv)


def test_pooled_expected_equals_sales_without_stockouts() -> None:
    # Exactly multiplicative sales (store A twice B, y twice x), always in stock: the
    # pooled model fits them exactly and the expected demand is the sales.
    daily = {("A", "x"): 2, ("A", "y"): 4, ("B", "x"): 1, ("B", "y"): 2}
    t = _grid_tables(daily, dict.fromkeys(daily, 1000), 14)
    ex = pooled_expected_demand(t, D(2024, 1, 15), D(2024, 1, 2)).sort("store_id", "sku")
    assert ex["days"].to_list() == [14] * 4
    assert ex["units"].to_list() == [28, 56, 14, 28]
    assert ex["expected"].to_list() == pytest.approx([28.0, 56.0, 14.0, 28.0], rel=1e-4)
    assert (ex["rate"] * ex["days"]).to_list() == pytest.approx(ex["expected"].to_list())


def test_pooled_fills_the_days_a_store_was_sold_out() -> None:
    # A-x holds 6 units and sells 3 a day: out from day 3 on (12 of 14 days). Everything else
    # sells its daily rate in stock. A-x's expected demand is its rate over all 14 days.
    daily = {("A", "x"): 3, ("A", "y"): 2, ("B", "x"): 3, ("B", "y"): 2}
    stock = dict.fromkeys(daily, 1000) | {("A", "x"): 6}
    t = _grid_tables(daily, stock, 14)
    ex = pooled_expected_demand(t, D(2024, 1, 15), D(2024, 1, 2))
    a = ex.filter((pl.col("store_id") == "A") & (pl.col("sku") == "x")).row(0, named=True)
    assert a["units"] == 6
    assert 3.0 * 14 * 0.8 < a["expected"] < 3.0 * 14 * 1.5
    b = ex.filter((pl.col("store_id") == "B") & (pl.col("sku") == "x")).row(0, named=True)
    assert b["expected"] == pytest.approx(42.0, rel=0.1)


def test_pooled_rejects_start_after_as_of() -> None:
    t = _grid_tables({("A", "x"): 1}, {("A", "x"): 10}, 3)
    with pytest.raises(ValueError, match="start"):
        pooled_expected_demand(t, D(2024, 1, 3), D(2024, 1, 4))


@settings(max_examples=15, deadline=None)
@given(
    rates=st.lists(st.integers(0, 5), min_size=4, max_size=4),
    stocks=st.lists(st.integers(0, 40), min_size=4, max_size=4),
)
def test_pooled_is_finite_and_covers_every_ranged_pair(rates: list[int], stocks: list[int]) -> None:
    keys = [("A", "x"), ("A", "y"), ("B", "x"), ("B", "y")]
    t = _grid_tables(dict(zip(keys, rates, strict=True)), dict(zip(keys, stocks, strict=True)), 10)
    as_of = D(2024, 1, 11)
    ex = pooled_expected_demand(t, as_of, D(2024, 1, 2))
    assert (
        ex.select("store_id", "sku").sort("store_id", "sku").rows() == ranged_pairs(t, as_of).rows()
    )
    assert ex["expected"].is_finite().all()
    assert (ex["expected"] >= 0).all()
    # A pair that sold something has a positive expected demand.
    assert (ex.filter(pl.col("units") > 0)["expected"] > 0).all()


def test_pooled_beats_sales_on_stocked_out_pairs_of_the_generator() -> None:
    # The criterion on one seed of seed-stories: >= 40% closer to the true expected
    # demand of the history (at the prices paid) than "sales = demand".
    from stocktailor.synth import generate

    net = generate("seed-stories", 0)
    t, a = net.tables, net.as_of
    start = t.sales["date"].min()
    paid = (
        t.sales.join(t.products.select("sku", "full_price"), on="sku")
        .group_by("date")
        .agg((pl.col("revenue").sum() / (pl.col("units") * pl.col("full_price")).sum()).alias("f"))
    )
    pf = dict(zip(paid["date"], paid["f"], strict=True))
    n = (a - start).days + 1
    factor = np.array([pf.get(start + dt.timedelta(days=i), 1.0) for i in range(n)])
    rate = net.truth.expected_demand(start, a, price_factor=factor).sum(0)
    truth = pl.DataFrame(
        {
            "store_id": np.repeat(net.truth.store_ids, len(net.truth.skus)),
            "sku": np.tile(net.truth.skus, len(net.truth.store_ids)),
            "true": rate.ravel(),
        }
    )
    s, o = stock_events(t, a, start=start)
    out = pl.concat(
        [s.filter(pl.col("censored")).select("store_id", "sku"), o.select("store_id", "sku")]
    ).unique()
    ex = pooled_expected_demand(t, a, start, events=(s, o))
    j = out.join(truth, on=["store_id", "sku"]).join(ex, on=["store_id", "sku"], how="left")
    assert j["expected"].null_count() == 0
    e_sales = float((j["units"] - j["true"]).abs().sum())
    e_est = float((j["expected"] - j["true"]).abs().sum())
    assert e_est < 0.6 * e_sales


# ------------------------------------------------------------------ returns and back-casting


def test_net_daily_demand_clips_surplus_returns() -> None:
    sales = pl.DataFrame(
        {
            "date": [D(2024, 1, 2), D(2024, 1, 2), D(2024, 1, 3), D(2024, 1, 4)],
            "store_id": ["A", "A", "A", "A"],
            "sku": ["x", "x", "x", "x"],
            "units": [3, -1, -2, 4],
            "revenue": [30.0, -10.0, -20.0, 40.0],
        }
    )
    view = net_daily_demand(sales)
    d = view.daily.sort("date")
    # Jan 2 nets to 2; Jan 3 is a surplus return (demand 0, revenue 0); Jan 4 sells 4.
    assert d["units"].to_list() == [2, 0, 4]
    assert d["net_units"].to_list() == [2, -2, 4]
    assert d["revenue"].to_list() == [20.0, 0.0, 40.0]
    assert (view.sold_units, view.returned_units) == (6, 2)
    assert view.return_rate == pytest.approx(2 / 6)
    assert net_daily_demand(sales, start=D(2024, 1, 4)).sold_units == 4
    # No returns: the view is the table's own columns; applying it twice changes nothing.
    clean = sales.filter(pl.col("units") > 0)
    assert net_daily_demand(clean).daily["units"].to_list() == [3, 4]
    t = _tables([(D(2024, 1, 2), "A", "x", 2)], [(D(2024, 1, 1), "A", "x", 5)])
    twice = demand_tables(demand_tables(t.replace(sales=sales)))
    assert twice.sales["units"].min() == 0
    assert net_daily_demand(twice.sales).returned_units == 2


def test_returns_restock_and_never_make_negative_demand() -> None:
    # 2 units on hand; sell 2 (sold out), one comes back, sell it again.
    t = _tables(
        [(D(2024, 1, 2), "A", "x", 2), (D(2024, 1, 3), "A", "x", -1), (D(2024, 1, 4), "A", "x", 1)],
        [(D(2024, 1, 1), "A", "x", 2)],
    )
    r = reconstruct_stock(t, D(2024, 1, 5))
    assert r["opening_stock"].to_list() == [2, 0, 1, 0]
    assert r["units"].to_list() == [2, 0, 1, 0]
    assert r["censored"].to_list() == [True, False, True, True]
    s, o = stock_events(t, D(2024, 1, 5))
    assert (s["units"] >= 0).all()
    assert s["date"].to_list() == [D(2024, 1, 2), D(2024, 1, 4)]
    assert o["date"].to_list() == [D(2024, 1, 5)]


def test_single_snapshot_back_casts_earlier_stock() -> None:
    # The common export: sales history and one stock count at the as-of day. A sells
    # 1, 2, 1 and counts 3 at the end; B sells its last unit on Jan 3 and counts 0.
    t = _tables(
        [
            (D(2024, 1, 2), "A", "x", 1),
            (D(2024, 1, 3), "A", "x", 2),
            (D(2024, 1, 4), "A", "x", 1),
            (D(2024, 1, 2), "B", "x", 2),
            (D(2024, 1, 3), "B", "x", 1),
        ],
        # B's count lists y only: it had no x left.
        [(D(2024, 1, 5), "A", "x", 3), (D(2024, 1, 5), "B", "y", 4)],
    )
    r = reconstruct_stock(t, D(2024, 1, 5))
    a = r.filter(pl.col("store_id") == "A")
    assert a["date"].to_list() == [D(2024, 1, d) for d in (2, 3, 4, 5)]
    assert a["opening_stock"].to_list() == [7, 6, 4, 3]  # snapshot + later sales
    # Unknown before the count (not in stock, not out); the count's own day is known.
    assert a["backcast"].to_list() == [True, True, True, False]
    assert a["censored"].to_list() == [None, None, None, False]
    b = r.filter((pl.col("store_id") == "B") & (pl.col("sku") == "x"))
    assert b["opening_stock"].to_list() == [3, 1, 0, 0]
    # B's back-cast stock (an upper bound) proves the sell-out on Jan 3 and the empty days.
    assert b["censored"].to_list() == [None, True, True, True]
    bp = backcast_pairs(t, D(2024, 1, 5))
    # y never sold anywhere: nothing says the shelf held it before the count.
    assert bp.rows() == [("A", "x", D(2024, 1, 2), 7), ("B", "x", D(2024, 1, 2), 3)]
    s, o = stock_events(t, D(2024, 1, 5))
    assert s.filter(pl.col("store_id") == "A")["censoring_known"].to_list() == [False] * 3
    assert s.filter(pl.col("store_id") == "B")["censored"].to_list() == [False, True]
    assert o.sort("date").rows() == [(D(2024, 1, 4), "B", "x"), (D(2024, 1, 5), "B", "x")]
    first = first_snapshots(t, D(2024, 1, 5)).sort("store_id", "sku")
    assert first["first"].to_list() == [D(2024, 1, 1), D(2024, 1, 1), D(2024, 1, 5)]
    r = pair_demand_rates(t, D(2024, 1, 5), start=D(2024, 1, 2), prior_days=0.0)
    assert r.sort("store_id", "sku")["days"].to_list() == [4, 4]


def test_history_starting_at_a_snapshot_is_not_back_cast() -> None:
    t = _tables([(D(2024, 1, 2), "A", "x", 2)], [(D(2024, 1, 1), "A", "x", 5)])
    assert backcast_pairs(t, D(2024, 1, 5)).is_empty()
    assert not reconstruct_stock(t, D(2024, 1, 5))["backcast"].any()


def test_velocity_forecast_without_season_end() -> None:
    sales = [(D(2024, 1, d), "A", "x", 2) for d in range(2, 9)]
    t = _tables(sales, [(D(2024, 1, 1), "A", "x", 100)])
    fc = velocity_forecast(t, D(2024, 1, 8), horizon_weeks=3)
    assert fc["week_start"].to_list() == [D(2024, 1, 9), D(2024, 1, 16), D(2024, 1, 23)]
    assert fc["mean"].to_list() == pytest.approx([14.0, 14.0, 14.0], rel=0.05)
    assert (fc["p10"] <= fc["p50"]).all()
    assert (fc["p50"] <= fc["p90"]).all()
