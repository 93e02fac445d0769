"""The joint plan: warehouses in the same network, line P&L, bands, the demo network."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from _transfer_cases import AS_OF, check_plan, constrained, loose, random_instance, tiny_tables
from stocktailor.config import Settings
from stocktailor.transfers import (
    LineSet,
    TransferInstance,
    add_warehouses,
    plan_network,
    plan_value,
    solve_instance,
)
from stocktailor.valuation import arrival_tail, prob_at_least


def with_warehouse(inst: TransferInstance, seed: int, units: int = 40) -> TransferInstance:
    """``inst`` with one warehouse (lanes derived like the stores') holding ``units`` per SKU,
    80% of them free to ship."""
    rng = np.random.default_rng(seed + 1)
    n = inst.n_stores
    unit = np.zeros((n + 1, n + 1))
    fixed = np.zeros((n + 1, n + 1))
    lead = np.zeros((n + 1, n + 1), dtype=np.int64)
    unit[:n, :n], fixed[:n, :n], lead[:n, :n] = inst.unit_cost, inst.fixed_cost, inst.lead_days
    unit[n, :n] = rng.uniform(0.5, 3.0, n)
    unit[:n, n] = unit[n, :n]
    fixed[n, :n] = np.where(inst.fixed_cost.any(), rng.uniform(20.0, 80.0, n), 0.0)
    fixed[:n, n] = fixed[n, :n]
    lead[n, :n] = lead[:n, n] = rng.integers(1, 5, n)
    stock = rng.integers(0, units + 1, (1, inst.n_skus)).astype(np.int64)
    return add_warehouses(inst, ["WH"], stock, (stock * 4) // 5, unit, fixed, lead)


def _node_value(inst: TransferInstance, ln: LineSet) -> float:
    """The plan's value before lane costs, node by node with the valuation functions."""
    margin = inst.price - inst.salvage
    total = 0.0
    for i, k in {(int(a), int(b)) for a, b in zip(ln.dst, ln.sku, strict=True)}:
        q = int(ln.units[(ln.dst == i) & (ln.sku == k)].sum())
        tail = arrival_tail(
            [max(int(inst.stock[i, k]), 0)],
            [inst.mean_lead[i, k]],
            [inst.var_lead[i, k]],
            [inst.mean_rest[i, k]],
            [inst.var_rest[i, k]],
            q,
        )[0]
        total += margin[k] * tail.sum()
    for i, k in {(int(a), int(b)) for a, b in zip(ln.src, ln.sku, strict=True)}:
        o = int(ln.units[(ln.src == i) & (ln.sku == k)].sum())
        x = max(int(inst.stock[i, k]), 0)
        mean = inst.mean_lead[i, k] + inst.mean_rest[i, k]
        var = inst.var_lead[i, k] + inst.var_rest[i, k]
        held = prob_at_least([mean], [var], x)[0]  # P(D >= t), t = 1..x
        total -= margin[k] * held[x - o : x].sum()
    return total


@hsettings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(2, 8),
    m=st.integers(1, 5),
    min_units=st.integers(1, 3),
    pack=st.integers(1, 2),
    lanes=st.integers(1, 3),
    capacity=st.booleans(),
    budget=st.sampled_from([None, 100.0]),
    fixed=st.booleans(),
)
def test_joint_plan_feeds_each_need_once_and_its_lines_add_up(
    seed: int,
    n: int,
    m: int,
    min_units: int,
    pack: int,
    lanes: int,
    capacity: bool,
    budget: float | None,
    fixed: bool,
) -> None:
    inst = with_warehouse(random_instance(seed, n, m, fixed=fixed, capacity=capacity), seed)
    s = constrained(min_units, pack, lanes, budget)
    check_plan(inst, s)
    sol = solve_instance(inst, s, method="heuristic")
    ln, wh = sol.lines, inst.is_warehouse
    assert not wh[ln.dst].any()
    # no store both receives and ships a SKU (so none ships what it is allocated)
    m_ = inst.n_skus
    assert np.intersect1d(ln.src * m_ + ln.sku, ln.dst * m_ + ln.sku).shape[0] == 0
    # lane limits and the budget count store-to-store lanes only
    st_lines = ~wh[ln.src]
    pairs = {(int(a), int(b)) for a, b in zip(ln.src[st_lines], ln.dst[st_lines], strict=True)}
    assert np.bincount([a for a, _ in pairs], minlength=n).max(initial=0) <= lanes
    assert np.bincount([b for _, b in pairs], minlength=n + 1).max(initial=0) <= lanes
    if budget is not None:
        assert sol.transfer_cost[st_lines].sum() <= budget + 1e-6
    # the lines add up to the plan's value; each is worth at least its marginal value
    assert sol.net_benefit.sum() == pytest.approx(sol.objective, rel=1e-9, abs=1e-6)
    value = _node_value(inst, ln) - sol.transfer_cost.sum()
    assert sol.objective == pytest.approx(value, rel=1e-7, abs=1e-6)
    assert sol.marginal_net_benefit is not None
    # given every other line a line adds at most its stacked value (the lane's fixed cost is
    # saved only by removing a line alone on its lane)
    assert (sol.marginal_net_benefit <= sol.net_benefit + sol.fixed_share + 1e-7).all()
    assert (sol.marginal_net_benefit > 0).all()
    # the band contains the expected gain and is never a point
    assert (sol.gain_p10 <= sol.gain + 1e-9).all() and (sol.gain <= sol.gain_p90 + 1e-9).all()
    assert (sol.gain_p10 < sol.gain_p90).all()


def test_marginal_value_is_the_plan_without_the_line() -> None:
    inst = with_warehouse(random_instance(3, 8, 4, fixed=True), 3, units=15)
    sol = solve_instance(inst, loose(), method="heuristic")
    ln = sol.lines
    assert len(ln) > 3
    full = plan_value(inst, ln)
    assert full == pytest.approx(sol.objective, rel=1e-9)
    assert sol.marginal_net_benefit is not None
    for a in range(len(ln)):
        keep = np.arange(len(ln)) != a
        without = plan_value(inst, ln.take(keep))
        assert full - without == pytest.approx(sol.marginal_net_benefit[a], rel=1e-7, abs=1e-7)


def test_tiny_joint_plan_warehouse_feeds_and_stores_do_not_double_feed() -> None:
    t, fc = tiny_tables()
    plan = plan_network(t, AS_OF, fc, Settings())
    al, tr = plan.allocation, plan.transfers
    assert set(al["from_id"]) == {"WH"} and "WH" not in set(tr["from_id"]) | set(tr["to_id"])
    assert al.height > 0
    # Santa Monica sells most; the warehouse's trench M goes there first
    top = al.row(0, named=True)
    assert (top["sku"], top["to_id"]) == ("TR-M", "SMO")
    assert top["reason"].startswith("Central DC has 80 of Trench Coat Beige M in stock")
    fed = set(zip(al["sku"], al["to_id"], strict=True))
    assert not fed & set(zip(tr["sku"], tr["from_id"], strict=True))
    # Seattle's idle trench coats reach Santa Monica cheaper than the warehouse's, which tops
    # them up: both lines say so and are valued on top of each other (stacked by arrival)
    both = fed & set(zip(tr["sku"], tr["to_id"], strict=True))
    assert ("TR-M", "SMO") in both
    cols = ["sku", "to_id", "units", "reason", "to_inbound_units"]
    lines = pl.concat([al.select(cols), tr.select(cols)]).filter(
        (pl.col("sku") == "TR-M") & (pl.col("to_id") == "SMO")
    )
    assert (lines["to_inbound_units"] == lines["units"].sum()).all()
    assert all("receives" in r for r in lines["reason"])
    total = float(al["net_benefit"].sum() + tr["net_benefit"].sum())
    assert total == pytest.approx(plan.objective, rel=1e-9)
    for f in (al, tr):
        assert (f["net_benefit"] > 0).all()
        assert (f["to_inbound_units"] >= f["units"]).all()
        assert ((f["net_p10"] <= f["net_benefit"]) & (f["net_benefit"] <= f["net_p90"])).all()
        # P(loss) > 10% exactly when the band's 10% point is below zero
        assert ((f["loss_probability"] > 0.1) == (f["net_p10"] < 0)).all()
        assert f["loss_probability"].is_between(0.0, 1.0).all()
    assert al["recommendation_id"].str.starts_with("RA").all()


def truth_weekly_forecast(net: Any, skus: list[str]) -> pl.DataFrame:
    """The generator's true demand as a weekly forecast (mean, negative-binomial variance)."""
    tb, tr = net.tables, net.truth
    start = net.as_of + dt.timedelta(days=1)
    rates = tr.expected_demand(start, tb.products["season_end"].max())
    cols = [tr.skus.index(k) for k in skus]
    r = rates[:, :, cols]
    weeks = -(-r.shape[0] // 7)
    pad = np.zeros((weeks * 7 - r.shape[0], *r.shape[1:]))
    r = np.concatenate([r, pad]).reshape(weeks, 7, *r.shape[1:])
    mean = r.sum(axis=1)
    var = mean + (r * r).sum(axis=1) / tr.dispersion
    w, i, j = np.meshgrid(
        np.arange(weeks), np.arange(r.shape[2]), np.arange(len(cols)), indexing="ij"
    )
    return pl.DataFrame(
        {
            "store_id": np.array(tr.store_ids, dtype=object)[i.ravel()].tolist(),
            "sku": np.array(skus, dtype=object)[j.ravel()].tolist(),
            "week_start": [start + dt.timedelta(days=7 * int(x)) for x in w.ravel()],
            "mean": mean.ravel(),
            "var": var.ravel(),
        }
    )


@pytest.mark.slow
def test_demo_network_joint_plan_feeds_once_and_adds_up() -> None:
    """Issue 13 acceptance on the demo's network (``default``, seed 0), on a quarter of its
    styles with the true demand as the forecast: no store is both allocated a SKU and ships it,
    none both receives and ships, a store fed by the warehouse and by a store has both lines
    valued on top of each other, and the lines add up to the plan's value within 1%."""
    synth = pytest.importorskip("stocktailor.synth")
    net = synth.generate("default", 0)
    tb = net.tables
    styles = sorted(tb.products["style"].unique().to_list())[::4]
    products = tb.products.filter(pl.col("style").is_in(styles))
    tables = tb.replace(products=products)
    fc = truth_weekly_forecast(net, products["sku"].to_list())
    plan = plan_network(tables, net.as_of, fc, Settings())
    al, tr = plan.allocation, plan.transfers
    assert al.height > 100 and tr.height > 100
    alloc_to = set(zip(al["sku"], al["to_id"], strict=True))
    ships = set(zip(tr["sku"], tr["from_id"], strict=True))
    receives = set(zip(tr["sku"], tr["to_id"], strict=True))
    assert not alloc_to & ships
    assert not receives & ships
    cols = ["sku", "to_id", "units", "to_inbound_units", "reason", "expected_gain"]
    both = pl.concat([al.select(cols), tr.select(cols)]).filter(
        pl.struct("sku", "to_id").is_in(
            pl.DataFrame(
                list(alloc_to & receives), schema=["sku", "to_id"], orient="row"
            ).to_struct()
        )
    )
    assert both.height > 0
    check = both.group_by("sku", "to_id").agg(
        pl.col("units").sum(), pl.col("to_inbound_units").first(), pl.len()
    )
    assert (check["units"] == check["to_inbound_units"]).all() and (check["len"] >= 2).all()
    assert all("receives" in r for r in both["reason"])
    total = float(al["net_benefit"].sum() + tr["net_benefit"].sum())
    assert total == pytest.approx(plan.objective, rel=0.01)
    assert (al["net_benefit"] > 0).all() and (tr["net_benefit"] > 0).all()


def test_value_band_matches_simulated_outcomes() -> None:
    """One line: the gain band's mid-quantiles and the value's standard deviation agree with
    draws of the demand at both ends (Poisson)."""
    unit = np.array([[0.0, 1.0], [1.0, 0.0]])
    inst = TransferInstance(
        store_ids=["A", "B"],
        skus=["K"],
        styles=["S"],
        stock=np.array([[9], [0]]),
        movable=np.array([[8], [0]]),
        mean_lead=np.array([[0.5], [0.5]]),
        var_lead=np.array([[0.5], [0.5]]),
        mean_rest=np.array([[3.0], [6.0]]),
        var_rest=np.array([[3.0], [6.0]]),
        price=np.array([50.0]),
        salvage=np.array([10.0]),
        unit_cost=unit,
        fixed_cost=np.zeros((2, 2)),
        lead_days=np.ones((2, 2), dtype=np.int64),
    )
    sol = solve_instance(inst, loose(), method="heuristic")
    assert len(sol.lines) == 1 and sol.value_sd is not None
    q = int(sol.lines.units[0])
    rng = np.random.default_rng(0)
    draws = 400_000
    # B is empty: every arriving unit meets the demand after the lead time
    u = np.minimum(rng.poisson(6.0, draws), q)
    d_a = rng.poisson(3.5, draws)
    v = np.clip(d_a - (9 - q), 0, q)  # units A would have sold of those it ships
    value = 40.0 * (u - v)
    assert sol.gain[0] == pytest.approx(40.0 * u.mean(), rel=0.01)
    assert sol.source_loss[0] == pytest.approx(40.0 * v.mean(), rel=0.03, abs=0.5)
    assert sol.value_sd[0] == pytest.approx(value.std(), rel=0.02)
    assert sol.gain_p10[0] < sol.gain[0] < sol.gain_p90[0]
    assert sol.gain_p10[0] <= 40.0 * np.quantile(u, 0.1) + 40.0
    assert sol.gain_p90[0] >= 40.0 * np.quantile(u, 0.9) - 40.0
