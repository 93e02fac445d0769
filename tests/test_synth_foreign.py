"""Tests of the foreign scenarios (stocktailor.synth.foreign) and of declared prices."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import itertools
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from _stock_checks import assert_snapshots_follow_sales
from stocktailor.contract import validate_tables
from stocktailor.synth import (
    FASHION_SCENARIOS,
    FOREIGN_SCENARIOS,
    SCENARIOS,
    ForeignTruth,
    SyntheticNetwork,
    generate,
)
from stocktailor.synth.foreign import SEGMENTS, foreign_spec, generate_foreign, mix_distance


@pytest.fixture(scope="module")
def base() -> SyntheticNetwork:
    return generate("foreign-base", 0)


@pytest.fixture(scope="module")
def heldout() -> SyntheticNetwork:
    return generate("foreign-heldout-like", 0)


def _digest(out: Path) -> dict[str, str]:
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


def _true_at_price(net: SyntheticNetwork, start: dt.date, end: dt.date) -> np.ndarray:
    return net.truth.expected_demand(start, end, price_factor=net.price_factor(start, end))


def test_scenarios_registered() -> None:
    assert SCENARIOS == FASHION_SCENARIOS + FOREIGN_SCENARIOS
    assert len(FOREIGN_SCENARIOS) >= 15
    assert all(n.startswith("foreign-") for n in FOREIGN_SCENARIOS)
    with pytest.raises(ValueError, match="unknown foreign scenario"):
        foreign_spec("foreign-nope")
    with pytest.raises(ValueError, match="fashion-scenario options"):
        generate("foreign-base", 0, switch_segments=1)


@pytest.mark.parametrize("name", FOREIGN_SCENARIOS)
def test_every_scenario_is_valid_contract_data(name: str) -> None:
    net = generate(name, 1, n_stores=8, n_sku_sizes=60)
    assert isinstance(net.truth, ForeignTruth)
    t = net.tables
    back = validate_tables(dict(t.items()))  # no season_end needed for the open-ended one
    assert back.sales.height == t.sales.height
    assert back.price_plan is not None and back.price_plan.height == net.price_plan.height
    assert t.sales["date"].max() <= net.as_of  # type: ignore[operator]
    assert t.inventory["date"].max() == net.as_of
    assert net.tables.store_ids.to_list() == net.truth.store_ids
    assert net.tables.products["sku"].to_list() == net.truth.skus
    assert len(net.truth.store_ids) == 8 and len(net.truth.skus) == 60
    # every day of the window has a true rate; the history's signals end at as_of
    rate = _true_at_price(net, net.season_start, net.season_end)
    assert rate.shape == ((net.season_end - net.season_start).days + 1, 8, 60)
    assert np.isfinite(rate).all() and rate.min() >= 0 and rate.sum() > 0
    assert t.trends is not None and t.trends["date"].max() <= net.as_of  # type: ignore[operator]


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    generate("foreign-returns", 4, n_stores=6, n_sku_sizes=40).write(tmp_path / "a")
    generate("foreign-returns", 4, n_stores=6, n_sku_sizes=40).write(tmp_path / "b")
    generate("foreign-returns", 5, n_stores=6, n_sku_sizes=40).write(tmp_path / "c")
    a, b, c = _digest(tmp_path / "a"), _digest(tmp_path / "b"), _digest(tmp_path / "c")
    assert a == b
    assert a["sales.csv"] != c["sales.csv"]
    assert {"price_plan.csv", "truth/demand.parquet", "truth/meta.json"} <= set(a)


def test_stock_accounting_with_returns() -> None:
    """Every snapshot = opening stock - net sales (returns come back to the shelf)."""
    net = generate("foreign-returns", 2, n_stores=10, n_sku_sizes=80)
    t = net.tables
    assert (t.sales["units"] < 0).sum() > 0  # returns show as negative net units
    init = net.truth.initial_stock
    days = t.inventory["date"].unique().sort().to_list()[::9]
    assert_snapshots_follow_sales(t, init, days, skip_store="DC-1")
    assert (t.inventory["on_hand"] >= 0).all()
    # gross sales are net + returns, returns about return_rate of what sold
    assert isinstance(net.truth, ForeignTruth)
    neg = -t.sales.filter(pl.col("units") < 0)["units"].sum()
    pos = t.sales.filter(pl.col("units") > 0)["units"].sum()
    assert 0.02 < neg / pos < 0.12


def test_sales_follow_true_demand_where_in_stock(base: SyntheticNetwork) -> None:
    """On days a pair held enough stock all day, mean sales match the true rate."""
    t = base.tables
    days = (base.as_of - base.season_start).days + 1
    rate = _true_at_price(base, base.season_start, base.as_of)
    inv = t.inventory.filter(pl.col("store_id") != "DC-1")
    ss = {s: i for i, s in enumerate(base.truth.store_ids)}
    ks = {k: i for i, k in enumerate(base.truth.skus)}
    # evening stock of day t-1 is the morning stock of day t; keep pair-days with >= 8 units
    ok = inv.filter(pl.col("on_hand") >= 8).with_columns(
        (pl.col("date") - base.season_start).dt.total_days().alias("t") + 1
    )
    ok = ok.filter(pl.col("t") < days)
    sold = t.sales.with_columns((pl.col("date") - base.season_start).dt.total_days().alias("t"))
    both = ok.join(sold, on=["t", "store_id", "sku"], how="left").with_columns(
        pl.col("units").fill_null(0)
    )
    si = np.array([ss[s] for s in both["store_id"]])
    ki = np.array([ks[k] for k in both["sku"]])
    mu = rate[both["t"].to_numpy(), si, ki]
    got, want = float(both["units"].sum()), float(mu.sum())
    assert want > 5000
    assert abs(got / want - 1) < 0.03


def test_snapshot_modes() -> None:
    kw = {"n_stores": 5, "n_sku_sizes": 30}
    daily = generate("foreign-base", 3, **kw)
    weekly = generate("foreign-weekly-snapshots", 3, **kw)
    single = generate("foreign-single-snapshot", 3, **kw)
    n_days = (daily.as_of - daily.season_start).days + 1
    assert daily.tables.inventory["date"].n_unique() == n_days + 1  # + the opening
    wdays = weekly.tables.inventory["date"].unique().to_list()
    assert weekly.as_of in wdays and min(wdays) == weekly.season_start - dt.timedelta(days=1)
    assert all(d.weekday() == 6 for d in wdays if d != weekly.as_of)
    assert len(wdays) == n_days // 7 + 1 + (weekly.as_of.weekday() != 6)
    assert single.tables.inventory["date"].unique().to_list() == [single.as_of]
    # the same customers: only what the retailer was told differs
    assert single.tables.sales.equals(daily.tables.sales)
    assert single.truth.position.equals(daily.truth.position)


def test_unrecorded_receipts_top_up_on_wednesdays_and_only_counts_show_them() -> None:
    kw = {"n_stores": 5, "n_sku_sizes": 30}
    weekly = generate("foreign-weekly-snapshots", 3, **kw)
    topped = generate("foreign-weekly-receipts", 3, **kw)
    # the same counts calendar; more stock, so more sales
    assert (
        topped.tables.inventory["date"]
        .unique()
        .sort()
        .equals(weekly.tables.inventory["date"].unique().sort())
    )
    assert topped.tables.sales["units"].sum() > weekly.tables.sales["units"].sum()
    # a count after a Wednesday can exceed the previous count less the sales in between
    inv = topped.tables.inventory.sort("store_id", "sku", "date")
    sold = topped.tables.sales.group_by("store_id", "sku").agg(pl.col("units").sum())
    first, last = (
        inv.group_by("store_id", "sku").agg(pl.col("on_hand").first().alias("first")),
        inv.group_by("store_id", "sku").agg(pl.col("on_hand").last().alias("last")),
    )
    j = first.join(last, on=["store_id", "sku"]).join(sold, on=["store_id", "sku"], how="left")
    received = j["last"] - (j["first"] - j["units"].fill_null(0))
    assert (received > 0).any()
    assert (received >= 0).all()


def test_price_response_is_linear_not_a_power_law(base: SyntheticNetwork) -> None:
    tr = base.truth
    assert isinstance(tr, ForeignTruth)
    day = base.as_of + dt.timedelta(days=1)
    full = tr.expected_demand(day, day)
    b = tr.price_response
    for f in (0.9, 0.7, 0.5):
        got = tr.expected_demand(day, day, price_factor=f)
        m = full[0] > 0
        assert np.allclose(got[0][m] / full[0][m], (1 + b[None, :] * (1 - f)).repeat(30, 0)[m])
    with pytest.raises(ValueError, match="outside"):
        tr.expected_demand(base.season_end + dt.timedelta(days=1), base.season_end)


def test_declared_prices_match_revenue_and_plan(base: SyntheticNetwork) -> None:
    plan = base.price_plan
    assert set(plan.columns) >= {
        "start_date",
        "end_date",
        "scope",
        "style",
        "sku",
        "price_factor",
        "promotion",
    }
    assert base.markdown_calendar == ((3, 0.75), (1, 0.5))
    md = plan.filter(~pl.col("promotion"))
    assert md["end_date"].max() == base.season_end
    assert md["price_factor"].min() == 0.5
    # rows of one style never overlap
    for _, g in plan.sort("start_date").group_by("style"):
        starts, ends = g["start_date"].to_list(), g["end_date"].to_list()
        assert all(s > e for s, e in zip(starts[1:], ends[:-1], strict=False))
    # revenue in history = units x full price x the declared factor of the day
    pf = base.price_factor(base.season_start, base.as_of)
    s = base.tables.sales.join(base.tables.products.select("sku", "full_price"), on="sku")
    t = s.select((pl.col("date") - base.season_start).dt.total_days())["date"].to_numpy()
    k = np.array([base.truth.skus.index(x) for x in s["sku"]])
    want = s["units"].to_numpy() * s["full_price"].to_numpy() * pf[t, k]
    assert np.allclose(s["revenue"].to_numpy(), want, atol=0.011)
    assert (pf < 1).any()  # the Labor Day sale is in the history


def test_fashion_scenarios_declare_their_clearance() -> None:
    net = generate("default", 2, n_stores=5, n_sku_sizes=60)
    assert net.markdown_calendar == ((4, 0.7), (2, 0.5))
    plan = net.price_plan
    ends = net.tables.products.group_by("style").agg(pl.col("season_end").max())
    for style, end in ends.iter_rows():
        rows = plan.filter(pl.col("style") == style, ~pl.col("promotion")).sort("start_date")
        assert rows["price_factor"].to_list() == [0.7, 0.5], style
        assert rows["start_date"].to_list() == [
            end - dt.timedelta(days=27),
            end - dt.timedelta(days=13),
        ]
        assert rows["end_date"].to_list()[-1] == end
    promo = plan.filter(pl.col("promotion"))
    assert set(promo["start_date"].to_list()) == {dt.date(2026, 3, 6)}
    assert (promo["price_factor"] == 0.8).all()


def test_simulator_calendar_matches_the_declared_prices() -> None:
    """The simulator's reading of the network's calendar gives the declared price path."""
    from stocktailor.simulate import markdown_factors

    net = generate("seed-stories", 0)
    start = dt.date(2026, 5, 1)
    days = [start + dt.timedelta(days=i) for i in range(93)]
    ends = (
        pl.DataFrame({"sku": net.truth.skus})
        .join(net.tables.products.select("sku", "season_end"), on="sku")["season_end"]
        .to_list()
    )
    declared = net.price_factor(days[0], days[-1])
    for end in sorted(set(ends)):
        cols = [i for i, e in enumerate(ends) if e == end]
        sim = markdown_factors(days, end, net.markdown_calendar)
        sim[[d > end for d in days]] = 1.0  # a SKU is not sold after its season end
        assert np.allclose(declared[:, cols], sim[:, None]), end


def test_no_clearance_is_a_never_ending_assortment() -> None:
    net = generate("foreign-no-clearance", 0, n_stores=6, n_sku_sizes=50)
    assert net.open_ended and net.markdown_calendar == ()
    assert "season_end" not in net.tables.products.columns
    plan = net.price_plan
    assert plan.height > 0 and plan["promotion"].all()  # promotions only, no markdowns
    assert plan["price_factor"].min() >= 0.8  # no sale deeper than 20 % off
    p = net.tables.products
    assert (p["salvage_value"] == p["unit_cost"]).all()  # unsold stock keeps its cost


def test_segments_differ_by_at_least_30_percent_of_style_mix() -> None:
    """Every pair of segments: realised true demand mix over the history, TVD >= 0.3."""
    for name, seed in itertools.product(
        ("foreign-base", "foreign-independent-attributes", "foreign-heldout-like"), (0, 1, 2)
    ):
        net = generate(name, seed)
        tr = net.truth
        r = tr.expected_demand(net.season_start, net.as_of).sum(axis=0)
        groups = tr.products["style_group"].to_numpy()
        mix = np.stack([r[:, groups == g].sum(axis=1) for g in np.unique(groups)], axis=1)
        seg = tr.segments["segment"].to_numpy()
        assert set(seg) == set(SEGMENTS), (name, seed)
        assert min(int((seg == s).sum()) for s in SEGMENTS) >= 3
        means = {s: mix[seg == s].mean(axis=0) for s in SEGMENTS}
        for a, b in itertools.combinations(SEGMENTS, 2):
            assert mix_distance(means[a], means[b]) >= 0.3, (name, seed, a, b)


def test_independent_attributes_carry_no_segment_information() -> None:
    """Pooled over seeds, format and income tell the segment in the base network only."""

    def association(name: str) -> tuple[float, float]:
        rows = []
        for seed in range(6):
            net = generate(name, seed)
            rows.append(net.tables.stores.join(net.truth.segments, on="store_id"))
        st = pl.concat(rows)
        tab = st.group_by("format", "segment").len().pivot(on="segment", index="format")
        x = tab.drop("format").fill_null(0).to_numpy().astype(float)
        e = x.sum(1, keepdims=True) * x.sum(0, keepdims=True) / x.sum()
        v = float(np.sqrt(((x - e) ** 2 / e).sum() / (x.sum() * (min(x.shape) - 1))))
        inc = st.group_by("segment").agg(pl.col("median_income").mean())["median_income"]
        return v, float(inc.max() / inc.min())  # type: ignore[operator]

    v_dep, inc_dep = association("foreign-base")
    v_ind, inc_ind = association("foreign-independent-attributes")
    assert v_dep > 0.4 and v_ind < 0.25
    assert inc_dep > 1.25 and inc_ind < 1.15


def test_trend_leads_demand_by_the_scenario_lead() -> None:
    """The trended style's lift is max(0.2, 1 + s (index[t - lead] / 100 - 1))."""
    for name, lead in (("foreign-trend-lead-3", 3), ("foreign-trend-lead-21", 21)):
        spec = foreign_spec(name)
        net = generate_foreign(spec, 1, name=name)
        flat = generate_foreign(dataclasses.replace(spec, trend_strength=0.0), 1)
        tr = net.truth
        assert isinstance(tr, ForeignTruth) and tr.trend_lead_days == lead
        trended = tr.products["trended"].to_numpy()
        assert 0 < trended.sum() < len(trended)
        style = net.tables.products.filter(pl.col("sku") == tr.skus[int(np.argmax(trended))])
        trends = tr.season_tables.trends
        assert trends is not None
        ser = trends.filter(pl.col("value") == style["style"].item())
        index = dict(zip(ser["date"].to_list(), ser["index"].to_list(), strict=True))
        a = tr.expected_demand(net.season_start, net.season_end)
        b = flat.truth.expected_demand(net.season_start, net.season_end)
        assert np.allclose(a[:, :, ~trended], b[:, :, ~trended])
        k = int(np.argmax(trended & (b.sum(axis=(0, 1)) > 0)))
        j = int(np.argmax(b[:, :, k].sum(axis=0)))
        sens = 1.0 if tr.segments["segment"][j] == "trend-led" else 0.4
        want = [
            max(0.2, 1 + sens * (index[d - dt.timedelta(days=lead)] / 100 - 1))
            for d in (net.season_start + dt.timedelta(days=i) for i in range(a.shape[0]))
        ]
        assert np.allclose(a[:, j, k] / b[:, j, k], want)


def test_cold_snap_lasts_to_season_end_and_empties_trench_demand() -> None:
    snap = generate("foreign-cold-snap", 0)
    base = generate("foreign-base", 0)
    w_snap, w_base = snap.truth.season_tables.weather, base.truth.season_tables.weather
    assert w_snap is not None and w_base is not None
    sea = snap.tables.stores.filter(pl.col("region") == "Pacific Northwest")["store_id"]
    after = pl.col("date") > snap.as_of
    d = (
        w_snap.filter(after, pl.col("store_id").is_in(sea.to_list()))["temp_c"].mean()
        - w_base.filter(after, pl.col("store_id").is_in(sea.to_list()))["temp_c"].mean()
    )
    assert d < -8.0  # the snap (-7 C) plus the extra cooling
    last_week = w_snap.filter(pl.col("date") > snap.season_end - dt.timedelta(days=7))
    assert last_week.filter(pl.col("store_id").is_in(sea.to_list()))["temp_c"].mean() < 3.0  # type: ignore[operator]
    # the published forecast shows the snap continuing after as_of
    fc = snap.tables.weather
    assert fc is not None and fc["is_forecast"].any()
    trench = snap.tables.products.filter(pl.col("style_name") == "Classic Trench Coat")["sku"]
    j = [snap.truth.skus.index(k) for k in trench]
    s = [snap.truth.store_ids.index(x) for x in sea]
    a = snap.as_of + dt.timedelta(days=1)
    r_snap = snap.truth.expected_demand(a, snap.season_end)[:, s][:, :, j].sum()
    r_base = base.truth.expected_demand(a, base.season_end)[:, s][:, :, j].sum()
    assert r_snap < 0.5 * r_base


def test_heldout_like_shape(heldout: SyntheticNetwork) -> None:
    t = heldout.tables
    assert len(heldout.truth.store_ids) == 24 and t.products.height == 85
    assert (heldout.as_of - heldout.season_start).days + 1 == 56
    assert (heldout.season_end - heldout.as_of).days == 42
    assert set(t.stores.filter(pl.col("kind") == "store")["country"]) == {"US"}
    snaps = t.inventory["date"].unique().to_list()
    assert len(snaps) == 9  # the opening and 8 Sundays (the as-of date is the last)
    pos = heldout.truth.position.filter(pl.col("store_id") != "DC-1")
    assert (pos["on_hand"] == 0).mean() > 0.25  # heavy stockouts
    assert t.trends is not None and t.trends["attribute"].unique().to_list() == ["style"]
    assert {"Seattle", "Los Angeles"} <= set(t.stores["city"].to_list())
    assert heldout.markdown_calendar == ()
    # the truth is flat to falling after the as-of date (no markdown lift)
    r = _true_at_price(heldout, heldout.as_of + dt.timedelta(days=1), heldout.season_end)
    weeks = r.sum(axis=(1, 2)).reshape(6, 7).sum(axis=1)
    assert weeks[-1] < 1.2 * weeks[0]


def test_sample_demand_moments(base: SyntheticNetwork) -> None:
    from stocktailor.synth.foreign._truth import BASKET_MEAN, SHOCK_CV

    rng = np.random.default_rng(0)
    rate = np.full((4000, 3, 5), 0.8)
    x = base.truth.sample_demand(rate, rng).astype(float)
    assert x.dtype == np.float64 and x.min() >= 0
    assert abs(x.mean() - 0.8) < 0.02
    var = 0.8 * (2 * BASKET_MEAN - 1) + 0.8**2 * SHOCK_CV**2
    assert abs(x.var() / var - 1) < 0.06
    # the store-day shock is shared by the SKUs of a store
    c = np.corrcoef(x[:, 0, 0] + x[:, 0, 1], x[:, 0, 2] + x[:, 0, 3])[0, 1]
    assert c > 0.0


def test_as_of_keeps_the_window(base: SyntheticNetwork) -> None:
    later = generate("foreign-base", 0, as_of=base.as_of + dt.timedelta(days=14))
    assert later.season_end == base.season_end
    assert later.tables.sales["date"].max() == base.as_of + dt.timedelta(days=14)
    with pytest.raises(ValueError, match="as_of"):
        generate("foreign-base", 0, as_of=base.season_end)


def test_cli_generates_a_foreign_scenario(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from stocktailor.cli import app

    out = tmp_path / "f"
    args = ["generate", "--scenario", "foreign-heldout-like", "--seed", "2", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert {"sales.csv", "inventory.csv", "price_plan.csv"} <= {p.name for p in out.iterdir()}
    assert (out / "truth" / "meta.json").is_file()


@pytest.mark.slow
def test_simulator_and_clustering_run_unchanged(heldout: SyntheticNetwork) -> None:
    import stocktailor.simulate as sim
    from stocktailor.clustering import StoreClusterer
    from stocktailor.config import Settings

    settings = Settings()
    run = getattr(sim, "simulate_season", None) or sim.simulate  # renamed on the way
    policy = sim.make_policy("none", heldout, settings)
    res = run(heldout, policy, settings, seed=0)
    assert res.initial.sum() == heldout.truth.initial_stock["units"].sum()
    labels = StoreClusterer().fit(heldout.tables, heldout.as_of).labels_
    assert set(labels["store_id"].to_list()) == set(heldout.truth.store_ids)
