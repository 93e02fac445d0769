"""Tests of the measurement core: the stock-ledger counterfactual and the holdback comparison."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from _toys import three_store_toy
from stocktailor.config import Settings
from stocktailor.measure import build_ledger, holdback_estimate, ledger_uplift, pair_outcomes
from stocktailor.measure.censored_demand import sku_rate
from stocktailor.simulate.backtest import backtest
from stocktailor.simulate.measurement import CATEGORY_MEASUREMENT_COLUMNS, MEASUREMENT_COLUMNS

D0 = dt.date(2026, 3, 2)


def _day(i: int) -> dt.date:
    return D0 + dt.timedelta(days=i)


PRODUCTS = pl.DataFrame({"sku": ["K"], "full_price": [10.0], "salvage_value": [2.0]})


def _sales(rows: list[tuple[int, str, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "date": [_day(i) for i, _, _ in rows],
            "store_id": [s for _, s, _ in rows],
            "sku": ["K"] * len(rows),
            "units": [u for *_, u in rows],
            "revenue": [10.0 * u for *_, u in rows],
        }
    )


def _case(a_stock: int) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """3 units move A -> B on day 0 (no lead time); B sells them all, A sells 1 a day."""
    moves = pl.DataFrame(
        {
            "ship_date": [D0],
            "arrival_date": [D0],
            "sku": ["K"],
            "from_id": ["A"],
            "to_id": ["B"],
            "units": [3],
            "cost": [4.0],
            "estimated": [15.0],
            "group": [1],
        }
    )
    stock = pl.DataFrame({"store_id": ["A"], "sku": ["K"], "units": [a_stock]})
    sales = _sales([(0, "A", 1), (1, "A", 1), (0, "B", 1), (1, "B", 1), (2, "B", 1)])
    return moves, stock, sales


def test_destination_sales_above_its_own_stock_are_the_moves_and_exact() -> None:
    # A had plenty (10, never sold out): without the move A sells the same, B sells nothing;
    # the move earned 3 units x (10 - 2) - cost 4 = 20, with no uncertainty.
    moves, stock, sales = _case(10)
    led = build_ledger(moves, sales, stock, PRODUCTS, ["A", "B"], D0, _day(2))
    a = led.cell_index()[("A", "K")]
    assert led.available[a].tolist() == [7, 6, 5]
    assert not led.censored[a].any()
    out = ledger_uplift(led, moves, replicates=50)
    assert out.row(0, named=True) == pytest.approx(
        {
            "group": 1,
            "lines": 1,
            "units": 3,
            "cost": 4.0,
            "estimated": 15.0,
            "measured": 20.0,
            "measured_low": 20.0,
            "measured_high": 20.0,
            "measured_sd": 0.0,
        }
    )


def test_a_source_that_sold_out_gives_an_interval_within_the_possible_loss() -> None:
    # A kept 5 - 3 = 2 and sold out on day 1: without the move it could have sold up to 3
    # more, so the value lies between 24 - 24 - 4 and 24 - 4.
    moves, stock, sales = _case(5)
    led = build_ledger(moves, sales, stock, PRODUCTS, ["A", "B"], D0, _day(2))
    a = led.cell_index()[("A", "K")]
    assert led.censored[a].tolist() == [False, True, True]
    out = ledger_uplift(led, moves, replicates=400).row(0, named=True)
    assert -4.0 <= out["measured_low"] <= out["measured"] <= out["measured_high"] <= 20.0
    assert out["measured_high"] - out["measured_low"] > 0.0


def test_the_same_inputs_give_the_same_measurement() -> None:
    moves, stock, sales = _case(5)
    led = build_ledger(moves, sales, stock, PRODUCTS, ["A", "B"], D0, _day(2))
    assert ledger_uplift(led, moves, random_state=3).equals(
        ledger_uplift(led, moves, random_state=3)
    )


def test_until_before_start_is_an_error_naming_the_dates() -> None:
    moves, stock, sales = _case(5)
    with pytest.raises(ValueError, match="until 2026-03-01 is before the start 2026-03-02"):
        build_ledger(moves, sales, stock, PRODUCTS, ["A", "B"], D0, _day(-1))


def test_holdback_estimate_recovers_a_known_effect_and_its_interval_covers_it() -> None:
    rng = np.random.default_rng(0)
    n, covered = 400, 0
    for _ in range(60):
        executed = rng.random(n) < 0.8
        pre = rng.gamma(2.0, 50.0, n)
        outcome = 2.0 * pre + 30.0 * executed + rng.normal(0.0, 5.0, n)
        frame = pl.DataFrame({"executed": executed, "outcome": outcome, "pre": pre})
        est = holdback_estimate(frame)
        assert est["executed"] == executed.sum()
        assert est["effect_per_line"] == pytest.approx(30.0, abs=2.0)
        covered += est["low"] < 30.0 * executed.sum() < est["high"]
    assert 0.8 <= covered / 60 <= 0.98  # a 90% interval


def test_holdback_estimate_needs_both_groups() -> None:
    frame = pl.DataFrame(
        {"executed": [True, True, False], "outcome": [1.0, 2.0, 0.0], "pre": [0.0, 0.0, 0.0]}
    )
    assert math.isnan(holdback_estimate(frame)["total"])


def test_pair_outcomes_sum_the_two_cells_after_the_decision() -> None:
    moves, stock, sales = _case(10)
    led = build_ledger(moves, sales, stock, PRODUCTS, ["A", "B"], D0, _day(2))
    lines = moves.select("sku", "from_id", "to_id", "units", "cost").with_columns(
        pl.lit(_day(1)).alias("decision_date"), pl.lit(True).alias("executed")
    )
    out = pair_outcomes(led, lines, pre_days=1)
    # from day 1: A sells 1, B sells 2 at 10 - 2 = 8 each, less the cost 4; the day before: 2
    assert out["outcome"].to_list() == [3 * 8.0 - 4.0]
    assert out["pre"].to_list() == [2 * 8.0]


def test_backtest_measure_writes_the_measurement_next_to_the_truth(tmp_path: Path) -> None:
    backtest(three_store_toy, [0], ["rule"], Settings(), tmp_path, measure=["rule"])
    m = pl.read_csv(tmp_path / "uplift_measurement.csv", try_parse_dates=True)
    truth = pl.read_csv(tmp_path / "uplift_truth.csv", try_parse_dates=True)
    assert m.columns[:8] == list(MEASUREMENT_COLUMNS)
    assert m["decision_date"].to_list() == truth["decision_date"].to_list()
    assert m["true"].to_list() == pytest.approx(truth["true"].to_list())
    assert (m["measured_low"] <= m["measured"]).all()
    assert (m["measured"] <= m["measured_high"]).all()
    # each day's lines of a category measured together: the day's counts and estimates split
    est = {"estimated": pl.Float64}  # the rule policy estimates nothing: empty columns
    c = pl.read_csv(tmp_path / "uplift_by_category.csv", try_parse_dates=True, schema_overrides=est)
    assert c.columns[:8] == list(CATEGORY_MEASUREMENT_COLUMNS)
    per_day = c.group_by("decision_date").agg(
        pl.col("lines", "units", "estimated").sum(), pl.len().alias("groups")
    )
    j = m.cast(est).join(per_day, on="decision_date", suffix="_c")
    assert j.height == m.height
    assert j["lines"].to_list() == j["lines_c"].to_list()
    assert j["units"].to_list() == j["units_c"].to_list()
    assert j["estimated"].fill_null(0.0).to_list() == pytest.approx(
        j["estimated_c"].fill_null(0.0).to_list()
    )
    # a day whose lines are all of one category is the same group, measured the same way
    single = j.filter(pl.col("groups") == 1).join(
        c.select("decision_date", pl.col("measured").alias("measured_c")), on="decision_date"
    )
    assert single.height > 0
    assert single["measured"].to_list() == pytest.approx(single["measured_c"].to_list())


def _two_moves(second_from: str, *, units: int, requested: int) -> pl.DataFrame:
    """A -> B, 3 units on day 0 (group 1, cost 4), then ``second_from`` -> C on day 1 (group 2,
    cost 2): ``units`` shipped of ``requested``; no lead time."""
    return pl.DataFrame(
        {
            "ship_date": [D0, _day(1)],
            "arrival_date": [D0, _day(1)],
            "sku": ["K", "K"],
            "from_id": ["A", second_from],
            "to_id": ["B", "C"],
            "units": [3, units],
            "requested": [3, requested],
            "cost": [4.0, 2.0],
            "estimated": [15.0, 1.0],
            "group": [1, 2],
        }
    )


def test_a_later_move_the_group_made_possible_is_cut_in_the_counterfactual() -> None:
    """A -> B (3 units, day 0) made B -> C (3 units, day 1) possible; C sells them on days
    1-3. Without the group B has nothing to send: C sells nothing and the second move costs
    nothing. Run minus counterfactual: 3 units x (10 - 2) - 2 (B -> C) - 4 (A -> B) = 18,
    what a replay of the season without the group gives. Kept as they were, the later moves
    leave C untouched and the group measures -4."""
    moves = _two_moves("B", units=3, requested=3)
    stock = pl.DataFrame({"store_id": ["A"], "sku": ["K"], "units": [10]})
    sales = _sales([(i, "A", 1) for i in range(4)] + [(i, "C", 1) for i in (1, 2, 3)])
    led = build_ledger(moves, sales, stock, PRODUCTS, ["A", "B", "C"], D0, _day(3))
    group1 = moves.filter(pl.col("group") == 1)
    out = ledger_uplift(led, group1, replicates=50, propagate=True).row(0, named=True)
    assert out["measured"] == pytest.approx(18.0)
    assert out["measured_low"] == pytest.approx(18.0) == out["measured_high"]
    kept = ledger_uplift(led, group1, replicates=50).row(0, named=True)
    assert kept["measured"] == pytest.approx(-4.0)


def test_a_later_move_cut_for_want_of_stock_ships_in_full_without_the_group() -> None:
    """A -> B (3 units, day 0) left A short: A -> C asked 5 on day 1 and got 2. Without the
    group A ships all 5 to C. B sold 1 a day (days 0-2); C sold 1 (day 1) and kept 1 unsold
    on day 2, so its demand is known and the 3 more units sell nothing; A sold nothing. Run
    minus counterfactual: B's 3 sales (3 x (10 - 2) = 24), plus the cost C's move would
    have had for 3 more units (3 x 2 / 2 = 3), minus the group's 4: exactly 23. Kept as it
    was, the later move leaves A 3 more units on days it had none, whose demand is drawn."""
    moves = _two_moves("A", units=2, requested=5)
    stock = pl.DataFrame({"store_id": ["A"], "sku": ["K"], "units": [5]})
    sales = _sales([(0, "B", 1), (1, "B", 1), (2, "B", 1), (1, "C", 1)])
    led = build_ledger(moves, sales, stock, PRODUCTS, ["A", "B", "C"], D0, _day(2))
    assert led.censored[led.cell_index()[("C", "K")]].tolist() == [True, False, False]
    group1 = moves.filter(pl.col("group") == 1)
    out = ledger_uplift(led, group1, replicates=400, propagate=True).row(0, named=True)
    assert out["measured_low"] == pytest.approx(23.0) == out["measured_high"]
    kept = ledger_uplift(led, group1, replicates=400).row(0, named=True)
    assert kept["measured_high"] <= 20.0 + 1e-9
    assert kept["measured_high"] - kept["measured_low"] > 0.0


def test_a_sold_out_sku_takes_the_day_factor_of_the_others() -> None:
    """SKU 1 sold out on days 2-3 while SKU 0's sales doubled: its rate on those days is its
    season rate (1) times the day's factor over the SKUs still in stock (2 / 1.5), not its
    season rate alone. Day 0 (window of one day, prior weight 28 cell-days): its one sale
    shrunk toward 1 x 0.8 (2 units sold where 2.5 were expected)."""
    sold = np.array([[1, 1, 2, 2], [1, 1, 0, 0]], dtype=np.int64)
    unc = np.array([[True] * 4, [True, True, False, False]])
    rate = sku_rate(sold, unc, np.array([0, 1], dtype=np.int64), 2, 1, prior_cell_days=28.0)
    assert rate[1, 2] == pytest.approx(4.0 / 3.0)
    assert rate[1, 3] == pytest.approx(4.0 / 3.0)
    assert rate[1, 0] == pytest.approx((1.0 + 28.0 * 0.8) / 29.0)


def _two_category_toy(seed: int) -> Any:
    """The three-store toy with its first SKU in another category (the rule ignores it)."""
    net = three_store_toy(seed)
    first = net.tables.products["sku"][0]
    products = net.tables.products.with_columns(
        pl.when(pl.col("sku") == first)
        .then(pl.lit("coats"))
        .otherwise("category")
        .alias("category")
    )
    truth = dataclasses.replace(
        net.truth, season_tables=net.truth.season_tables.replace(products=products)
    )
    return dataclasses.replace(net, tables=net.tables.replace(products=products), truth=truth)


def test_category_measurement_splits_each_day_by_category(tmp_path: Path) -> None:
    backtest(_two_category_toy, [0], ["rule"], Settings(), tmp_path, measure=["rule"])
    m = pl.read_csv(tmp_path / "uplift_measurement.csv", try_parse_dates=True)
    c = pl.read_csv(tmp_path / "uplift_by_category.csv", try_parse_dates=True)
    moves = pl.read_csv(tmp_path / "moves.csv", try_parse_dates=True).filter(
        pl.col("kind") == "transfer", pl.col("units") > 0
    )
    first = _two_category_toy(0).tables.products["sku"][0]
    want = (
        moves.with_columns(
            pl.when(pl.col("sku") == first)
            .then(pl.lit("coats"))
            .otherwise(pl.lit("tops"))
            .alias("category")
        )
        .group_by(pl.col("ship_date").alias("decision_date"), "category")
        .agg(pl.len().cast(pl.Int64).alias("lines"), pl.col("units").sum())
        .sort("decision_date", "category")
    )
    got = c.select("decision_date", "category", "lines", "units").sort("decision_date", "category")
    assert got.equals(want.select(got.columns))
    assert c.group_by("decision_date").len()["len"].max() == 2  # some day moves both categories
    assert c["lines"].sum() == m["lines"].sum()
