"""Tests of the season simulator, its policies and KPIs on tiny hand-made seasons."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from stocktailor.config import Settings
from stocktailor.simulate import (
    Decisions,
    PolicyView,
    make_policy,
    markdown_factors,
    simulate_season,
)
from stocktailor.simulate.baselines import RulePolicy, northwest_corner
from stocktailor.simulate.kpis import confidence_interval, kpis
from stocktailor.simulate.toy import ToyNetwork, toy_network

SETTINGS = Settings()


def _net(**kw: object) -> ToyNetwork:
    base: dict[str, object] = {
        "rates": [[2.0, 3.0, 1.0], [0.2, 0.3, 0.1], [1.0, 1.0, 1.0]],
        "stock": [[5, 5, 5], [40, 40, 40], [10, 10, 10]],
        "warehouse": [20, 20, 20],
    }
    base.update(kw)
    return toy_network(**base)  # type: ignore[arg-type]


class FixedMoves:
    """Ships given moves on given decision days."""

    name = "fixed"

    def __init__(self, moves: dict[int, list[tuple[str, str, str, int]]]) -> None:
        self.moves = moves
        self.views: list[PolicyView] = []

    def decide(self, view: PolicyView) -> Decisions:
        self.views.append(view)
        rows = self.moves.get(view.day_index, [])
        frame = pl.DataFrame(
            rows,
            schema={"sku": pl.String, "from_id": pl.String, "to_id": pl.String, "units": pl.Int64},
            orient="row",
        )
        return Decisions(transfers=frame)


class RandomMover:
    """Moves random amounts between random locations (to stress conservation)."""

    name = "random"

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def decide(self, view: PolicyView) -> Decisions:
        locs, skus = view.location_ids, view.skus
        n = int(self.rng.integers(0, 6))
        rows = [
            (
                skus[int(self.rng.integers(len(skus)))],
                locs[int(self.rng.integers(len(locs)))],
                locs[int(self.rng.integers(len(locs)))],
                int(self.rng.integers(0, 30)),
            )
            for _ in range(n)
        ]
        frame = pl.DataFrame(
            rows,
            schema={"sku": pl.String, "from_id": pl.String, "to_id": pl.String, "units": pl.Int64},
            orient="row",
        )
        return Decisions(transfers=frame)


def _check_conservation(res: object) -> None:
    from stocktailor.simulate import SimResult

    assert isinstance(res, SimResult)
    d = res.daily
    init = int(res.initial.sum())
    total = d["on_hand"] + d["in_transit"] + d["sold_cum"] + d["salvaged_cum"]
    assert (total == init).all()
    last = d.row(d.height - 1, named=True)
    assert last["on_hand"] == last["in_transit"] == 0
    assert last["salvaged_cum"] == int(d["salvaged_units"].sum()) == int(res.salvage_by_sku.sum())
    assert int(res.salvage_by_store.sum()) == last["salvaged_cum"]
    assert (d["lost_units"] == d["demand_units"] - d["sold_units"]).all()
    assert (res.final_on_hand >= 0).all()
    assert (res.final_in_transit >= 0).all()
    for frame in (res.by_store_week, res.by_sku_week):
        assert (frame["lost_units"] == frame["demand_units"] - frame["sold_units"]).all()
        assert int(frame["sold_units"].sum()) == int(d["sold_units"].sum())


def test_markdown_factors_hand_case() -> None:
    end = dt.date(2026, 3, 31)
    days = [end - dt.timedelta(days=i) for i in (0, 13, 14, 27, 28, 40)]
    pf = markdown_factors(days, end, ((4, 0.7), (2, 0.5)))
    assert pf.tolist() == [0.5, 0.5, 0.7, 0.7, 1.0, 1.0]


def test_conservation_and_lost_sales_under_rule() -> None:
    net = _net()
    res = simulate_season(net, make_policy("rule", net, SETTINGS), SETTINGS, seed=3)
    assert res.moves.height > 0
    _check_conservation(res)


def test_policy_that_moves_nothing_reproduces_hold_exactly() -> None:
    net = _net()
    base = simulate_season(net, make_policy("hold", net, SETTINGS), SETTINGS, seed=7)
    zero = FixedMoves({0: [("SKU01", "S01", "S02", 0)], 7: [("SKU02", "S02", "S02", 5)]})
    res = simulate_season(net, zero, SETTINGS, seed=7)
    assert res.daily.equals(base.daily)
    assert res.by_store_week.equals(base.by_store_week)
    assert np.array_equal(res.final_on_hand, base.final_on_hand)


def test_common_random_numbers_same_customers_across_policies() -> None:
    net = _net()
    a = simulate_season(net, make_policy("none", net, SETTINGS), SETTINGS, seed=11)
    b = simulate_season(net, make_policy("rule", net, SETTINGS), SETTINGS, seed=11)
    c = simulate_season(net, make_policy("none", net, SETTINGS), SETTINGS, seed=12)
    assert a.daily["demand_units"].equals(b.daily["demand_units"])
    assert a.by_store_week["demand_units"].equals(b.by_store_week["demand_units"])
    assert not a.daily["demand_units"].equals(c.daily["demand_units"])
    again = simulate_season(net, make_policy("rule", net, SETTINGS), SETTINGS, seed=11)
    assert again.daily.equals(b.daily)


def test_transfer_lead_time_cost_and_transit() -> None:
    # two stores 50 km apart: derived lane 2 days, 0.4 + 0.0015*km per unit, 25 + 0.05*km fixed
    net = _net(rates=[[0.0], [0.0]], stock=[[0], [10]], warehouse=None)
    pol = FixedMoves({0: [("SKU01", "S02", "S01", 4)]})
    res = simulate_season(net, pol, SETTINGS, seed=0)
    mv = res.moves.row(0, named=True)
    assert mv["units"] == 4
    assert mv["arrival_date"] - mv["ship_date"] == dt.timedelta(days=2)
    unit, ship, lead = (
        res.space.lane_cost_unit,
        res.space.lane_cost_shipment,
        res.space.lane_lead_days,
    )
    assert lead[1, 0] == 2
    assert mv["cost"] == pytest.approx(4 * unit[1, 0] + ship[1, 0])
    d = res.daily
    assert d["in_transit"].head(2).to_list() == [4, 4]
    assert d["in_transit"][2] == 0
    assert d["transfer_cost"].sum() == pytest.approx(mv["cost"])
    # the next decision sees the units on hand at S01
    assert pol.views[1].on_hand[0, 0] == 4
    assert pol.views[0].on_hand[1, 0] == 10


def test_moves_beyond_stock_are_cut_and_unknown_ids_rejected() -> None:
    net = _net(rates=[[0.0], [0.0]], stock=[[0], [3]], warehouse=None)
    res = simulate_season(net, FixedMoves({0: [("SKU01", "S02", "S01", 5)]}), SETTINGS, seed=0)
    mv = res.moves.row(0, named=True)
    assert (mv["requested"], mv["units"]) == (5, 3)
    with pytest.raises(ValueError, match=r"column 'to_id'.*'NOPE'"):
        simulate_season(net, FixedMoves({0: [("SKU01", "S02", "NOPE", 1)]}), SETTINGS, seed=0)


def test_salvage_when_nobody_buys() -> None:
    net = _net(rates=[[0.0, 0.0]], stock=[[3, 4]], warehouse=[5, 0])
    res = simulate_season(net, make_policy("none", net, SETTINGS), SETTINGS, seed=0)
    k = kpis([res]).runs.row(0, named=True)
    assert k["units_sold"] == 0
    assert k["salvaged_units"] == 12
    # salvage value = 0.3 x full price (50, 60)
    assert k["salvage_value"] == pytest.approx(8 * 15.0 + 4 * 18.0)
    assert k["profit"] == pytest.approx(k["salvage_value"])


CLEARANCE = ((4, 0.7), (2, 0.5))


def test_markdown_prices_and_full_price_revenue() -> None:
    net = _net(
        rates=[[1.0]],
        stock=[[1000]],
        warehouse=None,
        dispersion=math.inf,
        weeks=6,
        markdown_calendar=CLEARANCE,
    )
    res = simulate_season(net, make_policy("none", net, SETTINGS), SETTINGS, seed=2)
    d = res.daily
    full = d.filter(pl.col("price_factor") == 1.0)
    md = d.filter(pl.col("price_factor") < 1.0)
    assert full.height == 14 and md.height == 28
    assert full["revenue"].sum() == pytest.approx(50.0 * full["sold_units"].sum())
    assert md["revenue_full"].sum() == 0.0
    assert (md["revenue"] == md["sold_units"] * 50.0 * md["price_factor"]).all()
    # elasticity 1.5: demand at half price is 2**1.5 times higher
    last2 = d.tail(14)["demand_units"].mean()
    first2 = d.head(14)["demand_units"].mean()
    assert last2 > 2.0 * first2  # type: ignore[operator]


def test_markdowns_only_where_declared() -> None:
    # no calendar declared and none in the settings: full price all season, nothing cleared
    plain = _net(rates=[[1.0]], stock=[[1000]], warehouse=None, weeks=6)
    res = simulate_season(plain, make_policy("none", plain, SETTINGS), SETTINGS, seed=2)
    assert (res.daily["price_factor"] == 1.0).all()
    assert res.daily["revenue"].sum() == pytest.approx(res.daily["revenue_full"].sum())
    # the retailer's settings apply to a network without its own calendar ...
    cfg = Settings.model_validate({"season": {"markdown_calendar": [[1, 0.6]]}})
    res = simulate_season(plain, make_policy("none", plain, cfg), cfg, seed=2)
    assert res.daily["price_factor"].tail(7).to_list() == [0.6] * 7
    # ... and the network's own calendar wins over them
    own = _net(rates=[[1.0]], stock=[[1000]], warehouse=None, weeks=6, markdown_calendar=CLEARANCE)
    res = simulate_season(own, make_policy("none", own, cfg), cfg, seed=2)
    assert res.daily["price_factor"].tail(14).to_list() == [0.5] * 14


def test_none_replenishes_from_the_warehouse_without_store_moves() -> None:
    net = _net(rates=[[3.0], [0.2], [1.0]], stock=[[5], [60], [5]], warehouse=[100])
    none = simulate_season(net, make_policy("none", net, SETTINGS), SETTINGS, seed=1)
    rule = simulate_season(net, make_policy("rule", net, SETTINGS), SETTINGS, seed=1)
    assert none.moves.height > 0
    assert set(none.moves["from_id"].to_list()) == {"WH"}
    assert "S02" in rule.moves["from_id"].to_list()  # rule also moves between stores
    assert none.moves["ship_date"].min() > net.season_start  # a week of sales first
    _check_conservation(none)


def test_broken_size_run_effect_cuts_demand_of_other_sizes() -> None:
    cfg = Settings.model_validate({"simulation": {"broken_size_run_effect": 1.0}})
    # sizes XS S M L XL: core sizes S M L; store 1 has no M -> its other sizes do not sell
    net = _net(rates=[[2.0] * 5, [2.0] * 5], stock=[[50, 50, 0, 50, 50], [50] * 5], warehouse=None)
    res = simulate_season(net, make_policy("none", net, cfg), cfg, seed=0)
    sold = res.by_store_week.group_by("store_id").agg(pl.col("sold_units").sum()).sort("store_id")
    assert sold["sold_units"].to_list()[0] == 0
    assert sold["sold_units"].to_list()[1] > 0
    _check_conservation(res)


def test_northwest_corner_hand_case() -> None:
    d, r, u = northwest_corner(np.array([5, 3]), np.array([2, 4, 4]))
    assert list(zip(d.tolist(), r.tolist(), u.tolist(), strict=True)) == [
        (0, 0, 2),
        (0, 1, 3),
        (1, 1, 1),
        (1, 2, 2),
    ]
    d, r, u = northwest_corner(np.array([0]), np.array([3]))
    assert d.size == 0


def test_rule_moves_excess_to_least_covered_store() -> None:
    # S01 sells fast with little stock, S02 is slow with a lot, S03 slow with a little
    net = _net(
        rates=[[3.0], [0.3], [0.3]], stock=[[25], [60], [2]], warehouse=None, dispersion=math.inf
    )
    pol = RulePolicy(SETTINGS)
    res = simulate_season(net, pol, SETTINGS, seed=0)
    first = res.moves.filter(pl.col("ship_date") == res.moves["ship_date"].min())
    assert first["from_id"].unique().to_list() == ["S02"]
    assert "S01" in first["to_id"].to_list()
    assert (first["units"] >= SETTINGS.constraints.min_transfer_units).all()
    # no move at season start (no sales rate yet)
    assert res.moves["ship_date"].min() > net.season_start
    _check_conservation(res)


def test_view_tables_hold_only_the_past() -> None:
    net = _net()
    pol = FixedMoves({})
    res = simulate_season(net, pol, SETTINGS, seed=5)
    view = pol.views[2]
    t = view.tables()
    assert t.sales["date"].max() == view.as_of
    day_sales = res.daily.filter(pl.col("date") <= view.as_of)["sold_units"].sum()
    assert t.sales["units"].sum() == day_sales
    snap = t.inventory.filter(pl.col("date") == view.as_of)
    assert snap["on_hand"].sum() == int(view.on_hand.sum())
    assert set(t.inventory["date"].unique().to_list()) == {
        net.season_start + dt.timedelta(days=7 * i - 1) for i in range(3)
    }
    rev = view.sales_units(7)
    week = res.by_store_week.filter(pl.col("week") == 1).sort("store_id")
    assert rev.sum(axis=1).tolist() == week["sold_units"].to_list()


def test_kpis_profit_uplift_and_true_demand_share() -> None:
    net = _net()
    runs = [
        simulate_season(net, make_policy(p, net, SETTINGS), SETTINGS, seed=s, policy_name=name)
        for s in (0, 1)
        for p, name in (("none", "none"), ("rule", "rule"), ("rule", "same-optimiser-true-demand"))
    ]
    k = kpis(runs)
    r = k.runs
    assert (
        r["profit"] - (r["revenue_total"] + r["salvage_value"] - r["transfer_cost"])
    ).abs().max() < 1e-6  # type: ignore[operator]
    none = r.filter(pl.col("policy") == "none")
    assert (none["profit_uplift"] == 0.0).all()
    rule = r.filter(pl.col("policy") == "rule")
    assert rule["true_demand_uplift_share"].to_list() == [None, None]  # rule is the reference
    assert set(k.long["scope"].unique().to_list()) == {"overall", "cluster", "category", "week"}
    s = k.summary.filter((pl.col("policy") == "rule") & (pl.col("kpi") == "profit"))
    assert s["mean"][0] == pytest.approx(rule["profit"].mean())
    cl = k.by_cluster.filter(pl.col("policy") == "rule")
    assert cl["lost_units"].sum() == rule["lost_units"].sum()


def test_confidence_interval_hand_case() -> None:
    m, lo, hi = confidence_interval([1.0, 2.0, 3.0])
    # t(0.975, 2) = 4.302653; sd = 1; half = 4.302653 / sqrt(3)
    assert m == 2.0
    assert hi - m == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)
    assert m - lo == pytest.approx(hi - m)
    assert math.isnan(confidence_interval([5.0])[1])


def test_unknown_policy_name() -> None:
    net = _net()
    with pytest.raises(ValueError, match="unknown policy 'magic'"):
        make_policy("magic", net, SETTINGS)


@hyp_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rates=st.lists(st.lists(st.floats(0.0, 4.0), min_size=3, max_size=3), min_size=2, max_size=4),
    stock_seed=st.integers(0, 1000),
    seed=st.integers(0, 1000),
    effect=st.sampled_from([0.0, 0.5]),
)
def test_conservation_property_random_moves(
    rates: list[list[float]], stock_seed: int, seed: int, effect: float
) -> None:
    rng = np.random.default_rng(stock_seed)
    stock = rng.integers(0, 30, size=(len(rates), 3)).tolist()
    net = toy_network(rates, stock, warehouse=rng.integers(0, 30, size=3).tolist(), weeks=5)
    cfg = Settings.model_validate(
        {"simulation": {"broken_size_run_effect": effect, "decision_every_days": 3}}
    )
    res = simulate_season(net, RandomMover(seed), cfg, seed=seed)
    _check_conservation(res)
    moved = res.moves
    assert (moved["units"] <= moved["requested"]).all()
    assert int(res.daily["moved_units"].sum()) == int(moved["units"].sum())


def test_sku_season_end_salvages_that_sku_and_its_shipments() -> None:
    start = dt.date(2026, 3, 2)
    end1 = start + dt.timedelta(days=20)  # SKU01 sells 3 weeks; SKU02 the whole 8 weeks
    net = toy_network(
        [[1.0, 1.0], [0.0, 0.0]],
        [[100, 100], [50, 50]],
        season_start=start,
        season_ends=[end1, start + dt.timedelta(days=55)],
        dispersion=math.inf,
        markdown_calendar=CLEARANCE,
    )
    # a shipment of SKU01 leaving on day 14 (2-day lead) still arrives before its end; one
    # leaving on day 21 would arrive after it (cut: day 21 is after the SKU's last day, and
    # its stock was salvaged, so nothing is on hand to ship)
    pol = FixedMoves({14: [("SKU01", "S02", "S01", 5)], 21: [("SKU01", "S02", "S01", 5)]})
    res = simulate_season(net, pol, SETTINGS, seed=0)
    _check_conservation(res)
    d = res.daily
    assert (
        d.filter(pl.col("date") > end1)["sold_units"].sum()
        == d.filter(pl.col("date") > end1)["demand_units"].sum()
    )
    by_sku = res.by_sku_week.group_by("sku").agg(pl.col("demand_units").sum()).sort("sku")
    assert by_sku["demand_units"][0] < by_sku["demand_units"][1]
    salv = d.filter(pl.col("salvaged_units") > 0)
    assert salv["date"].to_list() == [end1, net.season_end]
    # markdown of SKU01 counts back from its own end (day 20): days 0-6 at 0.7, 7-20 at 0.5
    w = res.by_sku_week.filter(pl.col("sku") == "SKU01").sort("week")
    assert w["sold_full_units"].sum() == 0
    assert w["revenue"][0] == pytest.approx(w["sold_units"][0] * 50.0 * 0.7)
    assert w["revenue"][1] == pytest.approx(w["sold_units"][1] * 50.0 * 0.5)
    k = kpis([res]).by_category
    assert k["salvaged_units"].sum() == int(res.salvage_by_sku.sum())
    mv = res.moves.sort("ship_date")
    assert mv["units"].to_list() == [5, 0]


def test_true_demand_policy_moves_stock_to_where_it_sells() -> None:
    cfg = Settings.model_validate({"simulation": {"min_history_days": 0}})
    net = _net(rates=[[3.0, 3.0], [0.1, 0.1]], stock=[[2, 2], [80, 80]], warehouse=None, weeks=6)
    none = simulate_season(net, make_policy("none", net, cfg), cfg, seed=1)
    orc = simulate_season(net, make_policy("oracle", net, cfg), cfg, seed=1)  # the alias
    _check_conservation(orc)
    assert orc.moves.height > 0
    assert set(orc.moves["from_id"].to_list()) == {"S02"}
    k = kpis([none, orc]).runs
    profit = dict(zip(k["policy"].to_list(), k["profit"].to_list(), strict=True))
    assert profit["same-optimiser-true-demand"] > profit["none"]


@pytest.mark.slow
def test_pipeline_policies_on_a_small_synthetic_network() -> None:
    from stocktailor.synth import generate

    net = generate("default", 0, n_stores=6, n_sku_sizes=30)
    runs = [
        simulate_season(net, make_policy(p, net, SETTINGS), SETTINGS, seed=0)
        for p in ("none", "rule", "stocktailor", "same-optimiser-true-demand")
    ]
    for r in runs:
        _check_conservation(r)
    base = runs[0]
    for r in runs[1:]:
        assert r.daily["demand_units"].equals(base.daily["demand_units"])
    k = kpis(runs, segments=net.truth.segments).runs
    moved = dict(
        zip(
            k["policy"].to_list(),
            (k["transfer_units"] + k["allocation_units"]).to_list(),
            strict=True,
        )
    )
    assert moved["stocktailor"] > 0 and moved["same-optimiser-true-demand"] > 0
    st = runs[2].moves
    assert st["ship_date"].min() >= net.season_start + dt.timedelta(
        days=SETTINGS.simulation.min_history_days
    )


# -- demand sensing, forecast arrays and the array position of the optimiser policies -------


def test_sensing_ratio_hand_worked() -> None:
    from stocktailor.simulate.sensing import sensing_ratio

    # style 0: the network sold 8 of a forecast 4 -> (8 + 2) / (4 + 2) = 5/3;
    # store 0: (6 + 2 * 5/3) / (2 + 2) = 2.33 -> clipped to 2; store 1: (2 + 10/3) / 4 = 4/3.
    # style 1: nothing seen -> 1 everywhere.
    sales = np.array([[6.0, 0.0], [2.0, 0.0]])
    fc = np.array([[2.0, 0.0], [2.0, 0.0]])
    r, g = sensing_ratio(sales, fc, prior_units=2.0, bounds=(0.5, 2.0))
    assert g == pytest.approx([5.0 / 3.0, 1.0])
    assert r == pytest.approx(np.array([[2.0, 1.0], [4.0 / 3.0, 1.0]]))
    # no prior: the raw ratios (bounded)
    r0, g0 = sensing_ratio(np.array([[1.0], [3.0]]), np.array([[2.0], [2.0]]), 0.0, (0.1, 9.0))
    assert g0 == pytest.approx([1.0]) and r0[:, 0] == pytest.approx([0.5, 1.5])


def test_demand_sensor_counts_in_stock_cells_by_style() -> None:
    from stocktailor.simulate.sensing import DemandSensor, scale_windows

    sensor = DemandSensor(np.array([0, 0, 1]), n_stores=2)
    sales = np.array([[3, 1, 5], [0, 2, 0]])
    fc = np.array([[1.0, 1.0, 2.0], [1.0, 1.0, 1.0]])
    in_stock = np.array([[True, True, False], [True, False, True]])
    sensor.observe(sales, fc, in_stock)
    assert sensor.sales_ == pytest.approx(np.array([[4.0, 0.0], [0.0, 0.0]]))
    assert sensor.forecast_ == pytest.approx(np.array([[2.0, 0.0], [1.0, 1.0]]))
    ratio = sensor.ratio(prior_units=0.0, bounds=(0.5, 2.0))
    # style 0: network 4/3; store 0: 4/2 = 2; store 1: 0/1 -> 0.5 (bound); style 1: 0/1 -> 0.5
    assert ratio == pytest.approx(np.array([[2.0, 2.0, 0.5], [0.5, 0.5, 0.5]]))
    m, v = scale_windows(np.array([2.0]), np.array([6.0]), np.array([1.5]))
    assert m == pytest.approx([3.0]) and v == pytest.approx([3.0 + 4.0 * 2.25])
    sensor.reset()
    assert sensor.sales_.sum() == 0.0


def test_weekly_forecast_windows_match_demand_window() -> None:
    from stocktailor.simulate.sensing import WeeklyForecast
    from stocktailor.valuation import demand_window

    rng = np.random.default_rng(3)
    first = dt.date(2026, 3, 2)  # season day 10
    n_w, n_s, n_k = 4, 2, 3
    mean = rng.uniform(0.0, 5.0, size=(n_w, n_s, n_k))
    var = mean * rng.uniform(1.0, 3.0, size=mean.shape)
    rows = [
        (f"S{s}", f"K{k}", first + dt.timedelta(days=7 * w), mean[w, s, k], var[w, s, k])
        for w in range(n_w)
        for s in range(n_s)
        for k in range(n_k)
    ]
    frame = pl.DataFrame(
        rows, schema=["store_id", "sku", "week_start", "mean", "var"], orient="row"
    )
    fc = WeeklyForecast.empty(10, n_w, n_s, n_k)
    fc.add_frame(frame, first, {"S0": 0, "S1": 1}, {"K0": 0, "K1": 1, "K2": 2})
    assert fc.mean == pytest.approx(mean)
    for a, b in ((10, 16), (12, 20), (15, 40), (30, 29), (3, 11)):
        got_m, got_v = fc.window(np.full((n_s, n_k), a), np.full((n_s, n_k), b))
        want = demand_window(
            frame, first + dt.timedelta(days=a - 10), first + dt.timedelta(days=b - 10)
        ).sort("store_id", "sku")
        assert got_m.ravel() == pytest.approx(want["mean"].to_numpy())
        assert got_v.ravel() == pytest.approx(want["var"].to_numpy())
    # lead window of store 1 = 2 days; SKU 2 stops selling on day 20
    ml, _vl, mr, _vr = fc.lead_rest(12, np.array([0, 2]), np.array([100, 100, 20]))
    assert ml[0] == pytest.approx(0.0)
    assert ml[1, 0] == pytest.approx(mean[0, 1, 0] * 2 / 7)
    assert mr[1, 2] == pytest.approx(mean[0, 1, 2] * 3 / 7 + mean[1, 1, 2] * 4 / 7)
    sub = fc.columns(np.array([2]))
    ml2, _, mr2, _ = sub.lead_rest(12, np.array([0, 2]), np.array([100, 100, 20])[[2]])
    assert mr2[:, 0] == pytest.approx(mr[:, 2]) and ml2[:, 0] == pytest.approx(ml[:, 2])


def test_optimiser_position_matches_position_at() -> None:
    from stocktailor.positions import position_at
    from stocktailor.simulate.stocktailor_policy import StocktailorPolicy

    cfg = Settings.model_validate({"constraints": {"min_days_before_retransfer": 10}})
    net = _net()
    moves = {
        7: [("SKU01", "S02", "S01", 6), ("SKU02", "WH", "S03", 5)],
        14: [("SKU03", "S02", "S03", 4)],
        21: [("SKU01", "S02", "S03", 3)],
    }
    pol = FixedMoves(moves)
    simulate_season(net, pol, cfg, seed=2)
    st_pol = StocktailorPolicy(cfg)
    n_s = len(net.truth.store_ids)
    for view in pol.views:
        st_pol._record(view)
        pos = position_at(view.tables(), view.as_of, cfg.constraints)
        want = np.zeros((n_s, len(view.skus)), dtype=np.int64)
        ki, si = view.space.sku_index(), view.space.loc_index()
        for r in pos.filter(pl.col("store_id").is_in(list(view.store_ids))).iter_rows(named=True):
            want[si[r["store_id"]], ki[r["sku"]]] = r["movable"]
        assert np.array_equal(st_pol.movable(view), want), view.day_index


def test_screen_candidates_keeps_imbalanced_skus() -> None:
    from stocktailor.simulate.optimiser import screen_candidates

    # SKU 0: store 0 holds 20 against demand 1, store 1 holds 0 against demand 10 -> keep.
    # SKU 1: both stores hold their demand (balanced) -> drop. SKU 2: nothing movable -> drop.
    stock = np.array([[20, 10, 0], [0, 10, 5]])
    movable = np.array([[19, 9, 0], [0, 9, 0]])
    mean = np.array([[1.0, 3.0, 5.0], [10.0, 3.0, 5.0]])
    price = np.array([50.0, 50.0, 50.0])
    salvage = np.array([10.0, 10.0, 10.0])
    unit = np.array([[0.0, 2.0], [2.0, 0.0]])
    keep, score = screen_candidates(stock, movable, mean, mean, price, salvage, unit, 0.0)
    assert keep.tolist() == [0]
    # one more unit at store 1 sells with p ~ 1, the last at store 0 with p ~ 0: ~ 40 - 2
    assert score[0] == pytest.approx(38.0, abs=0.5)
    assert screen_candidates(stock, movable, mean, mean, price, salvage, unit, None)[
        0
    ].tolist() == [0, 1, 2]
    two = np.concatenate([stock, stock], axis=1)
    m2 = np.concatenate([mean, mean * np.array([[1.0], [0.6]])], axis=1)
    keep2, sc2 = screen_candidates(
        two,
        np.concatenate([movable, movable], axis=1),
        m2,
        m2,
        np.tile(price, 2),
        np.tile(salvage, 2),
        unit,
        0.0,
        max_skus=1,
    )
    assert keep2.tolist() == [0] and sc2[0] > sc2[3] > 0


def test_true_demand_carried_windows_match_true_windows() -> None:
    from stocktailor.simulate.true_demand import SameOptimiserTrueDemandPolicy, true_windows

    net = _net(weeks=6)
    pol = FixedMoves({})
    simulate_season(net, pol, SETTINGS, seed=0)
    orc = SameOptimiserTrueDemandPolicy(net, SETTINGS)
    rows = np.arange(len(net.truth.store_ids))
    cols = np.array([0, 2])
    lead = np.array([0, 2, 3])
    for view in pol.views[1:]:
        got = orc.windows(view, lead, cols)
        want = true_windows(net, view, rows, cols, lead, orc.dispersion)
        for g, w in zip(got, want, strict=True):
            assert g == pytest.approx(w, rel=1e-9, abs=1e-9)


def test_work_budget_reviewsleast_recent_first() -> None:
    from stocktailor.simulate.optimiser import least_recent_first, screen_candidates

    last = np.array([5, 0, 0, 3, -1])
    score = np.array([9.0, 1.0, 2.0, 8.0, 0.5])
    # never reviewed (-1) first, then day 0 by score (2 before 1), then day 3
    assert least_recent_first(last, score, 3).tolist() == [1, 2, 4]
    assert least_recent_first(last, score, 4).tolist() == [1, 2, 3, 4]
    # three identical imbalanced SKUs, budget 2: the one reviewed longest ago and a tie by score
    stock = np.array([[20, 20, 20], [0, 0, 0]])
    movable = np.array([[19, 19, 19], [0, 0, 0]])
    mean = np.array([[1.0, 1.0, 1.0], [10.0, 10.0, 10.0]])
    price, salvage = np.full(3, 50.0), np.full(3, 10.0)
    unit = np.array([[0.0, 2.0], [2.0, 0.0]])
    keep, _ = screen_candidates(
        stock, movable, mean, mean, price, salvage, unit, 0.0, 2, np.array([7, 0, 7])
    )
    assert keep.tolist() == [0, 1]


# -- the season LP bound ----------------------------------------------------------------------


def test_bound_hand_worked_two_stores() -> None:
    # S01 has no customers and 10 units; S02 has ~100 customers a day and none: the best plan
    # ships the 10 units on day 0 (lane 2 days) and sells them at full price on day 2.
    from stocktailor.simulate.bound import season_bound

    cfg = Settings.model_validate({"season": {"markdown_calendar": []}})
    net = _net(rates=[[0.0], [100.0]], stock=[[10], [0]], warehouse=None, weeks=1)
    b = season_bound(net, cfg, seed=0)
    res = simulate_season(net, make_policy("bound", net, cfg), cfg, seed=0)
    unit = res.space.lane_cost_unit[0, 1]
    assert b.upper_bound == pytest.approx(10 * 50.0 - 10 * unit)
    assert b.plan.rows() == [(0, "SKU01", "S01", "S02", 10)]
    # the replay ships the plan and pays the fixed cost the LP leaves out
    assert kpis([res]).runs["profit"][0] == pytest.approx(
        b.upper_bound - res.space.lane_cost_shipment[0, 1]
    )


def test_bound_without_customers_is_the_salvage() -> None:
    from stocktailor.simulate.bound import season_bound

    net = _net(rates=[[0.0, 0.0]], stock=[[3, 4]], warehouse=[5, 0])
    b = season_bound(net, SETTINGS, seed=0)
    assert b.upper_bound == pytest.approx(8 * 15.0 + 4 * 18.0)
    assert b.plan.height == 0


def test_bound_refuses_large_networks() -> None:
    from stocktailor.simulate.bound import season_bound

    cfg = Settings.model_validate({"simulation": {"bound_max_cells": 5}})
    with pytest.raises(ValueError, match=r"bound_max_cells \(5\)"):
        season_bound(_net(), cfg, seed=0)


def test_demand_draws_are_the_simulated_customers() -> None:
    from stocktailor.simulate.bound import demand_draws

    net = _net()
    res = simulate_season(net, make_policy("rule", net, SETTINGS), SETTINGS, seed=4)
    draws = demand_draws(net, SETTINGS, seed=4)
    assert draws.sum(axis=(1, 2)).tolist() == res.daily["demand_units"].to_list()


@hyp_settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rates=st.lists(
        st.lists(st.one_of(st.just(0.0), st.floats(0.01, 4.0)), min_size=2, max_size=2),
        min_size=2,
        max_size=3,
    ),
    stock_seed=st.integers(0, 1000),
    seed=st.integers(0, 1000),
)
def test_bound_is_above_every_policy(rates: list[list[float]], stock_seed: int, seed: int) -> None:
    from stocktailor.simulate.bound import season_bound

    rng = np.random.default_rng(stock_seed)
    stock = rng.integers(0, 30, size=(len(rates), 2)).tolist()
    net = toy_network(rates, stock, warehouse=rng.integers(0, 30, size=2).tolist(), weeks=4)
    cfg = Settings.model_validate({"simulation": {"decision_every_days": 3, "min_history_days": 0}})
    b = season_bound(net, cfg, seed=seed)
    runs = [simulate_season(net, RandomMover(seed), cfg, seed=seed, policy_name="random")]
    runs += [
        simulate_season(net, make_policy(p, net, cfg), cfg, seed=seed)
        for p in ("none", "rule", "same-optimiser-true-demand", "bound")
    ]
    for profit in kpis(runs).runs["profit"].to_list():
        assert profit <= b.upper_bound + 1e-6


def test_sense_forecast_hand_worked() -> None:
    from stocktailor.simulate.sensing import sense_forecast

    # one style, two stores; the forecast says 7 units a week per cell. Over the first week
    # store A sold 14 + 14 (forecast 14) and store B 7 (forecast 14); prior 0, bounds 0.1..5:
    # style ratio 35/28 = 1.25; A: 28/14 = 2.0, B: 7/14 = 0.5. Week 2 is scaled, week 1 not.
    w1, w2 = dt.date(2026, 3, 2), dt.date(2026, 3, 9)
    fc = pl.DataFrame(
        {
            "store_id": ["A", "A", "B", "B"] * 2,
            "sku": ["k1", "k2"] * 4,
            "week_start": [w1] * 4 + [w2] * 4,
            "mean": [7.0] * 8,
            "var": [9.0] * 8,
            "p90": [10.0] * 8,
        }
    )
    sales = pl.DataFrame(
        {
            "date": [w1, w1, w1 + dt.timedelta(days=2), w1 + dt.timedelta(days=2)],
            "store_id": ["A", "A", "B", "B"],
            "sku": ["k1", "k2", "k1", "k1"],
            "units": [14, 14, 9, -2],  # B: a return netted within its day
        }
    )
    products = pl.DataFrame({"sku": ["k1", "k2"], "style": ["S", "S"]})
    out = sense_forecast(
        fc,
        sales,
        products,
        since=w1,
        as_of=w1 + dt.timedelta(days=6),
        prior_units=0.0,
        bounds=(0.1, 5.0),
    ).sort("week_start", "store_id", "sku")
    assert out.columns == [*fc.columns, "sensing_ratio"]
    assert out["sensing_ratio"].to_list() == pytest.approx([1.0] * 4 + [2.0, 2.0, 0.5, 0.5])
    assert out["mean"].to_list() == pytest.approx([7.0] * 4 + [14.0, 14.0, 3.5, 3.5])
    # var = r mean + r^2 (var - mean): A 2*7 + 4*2 = 22, B 3.5 + 0.25*2 = 4
    assert out["var"].tail(4).to_list() == pytest.approx([22.0, 22.0, 4.0, 4.0])
    assert out["p90"].tail(4).to_list() == pytest.approx([20.0, 20.0, 5.0, 5.0])
    # only in-stock cells count: B's k1 censored -> B has no evidence and takes the style's
    # network ratio, A's alone (28 / 14 = 2)
    out2 = sense_forecast(
        fc,
        sales,
        products,
        since=w1,
        as_of=w1 + dt.timedelta(days=6),
        in_stock=pl.DataFrame({"store_id": ["A", "A"], "sku": ["k1", "k2"]}),
        prior_units=0.0,
        bounds=(0.1, 2.0),
    )
    assert out2.filter(pl.col("week_start") == w2)["sensing_ratio"].to_list() == pytest.approx(
        [2.0] * 4
    )


def test_declared_prices_are_applied_and_public() -> None:
    from dataclasses import dataclass

    @dataclass
    class Promo(ToyNetwork):
        def price_factor(self, start: dt.date, end: dt.date) -> np.ndarray:
            n = (end - start).days + 1
            out = np.ones((n, len(self.truth.skus)))
            out[3:6] = 0.8  # a three-day sale
            out[-7:] = 0.5  # the last week's clearance
            return out

    base = _net(rates=[[1.0, 2.0]], stock=[[500, 500]], warehouse=None, weeks=3)
    net = Promo(base.tables, base.season_start, base.season_end, base.truth)
    pol = FixedMoves({})
    res = simulate_season(net, pol, SETTINGS, seed=1)
    assert res.daily["price_factor"].to_list() == [1.0] * 3 + [0.8] * 3 + [1.0] * 8 + [0.5] * 7
    plan = pol.views[1].price_plan()  # day 7: weeks from day 7 and day 14
    assert plan["week_start"].unique().sort().to_list() == [
        net.season_start + dt.timedelta(days=7),
        net.season_start + dt.timedelta(days=14),
    ]
    assert plan["price_factor"].to_list() == pytest.approx([1.0, 0.5])
    assert pol.views[0].price_plan().filter(pl.col("week_start") == net.season_start)[
        "price_factor"
    ].to_list() == pytest.approx([(4 * 1.0 + 3 * 0.8) / 7])
