"""Tests of the synthetic network generator (stocktailor.synth)."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _stock_checks import assert_snapshots_follow_sales
from stocktailor.contract import TABLE_SPECS, Tables
from stocktailor.synth import SCENARIOS, SyntheticNetwork, generate, nb_sample

SNAP_END = dt.date(2026, 4, 1)  # last day of the seed-stories Seattle cold snap


@pytest.fixture(scope="module")
def stories() -> SyntheticNetwork:
    return generate("seed-stories", 0)


@pytest.fixture(scope="module")
def small() -> SyntheticNetwork:
    return generate("default", 3, n_stores=12, n_sku_sizes=240, switch_segments=3)


def _store(net: SyntheticNetwork, name: str) -> str:
    row = net.tables.stores.filter(pl.col("name") == name)
    assert row.height == 1, name
    return str(row["store_id"][0])


def _segment(net: SyntheticNetwork, store_id: str) -> str:
    return str(net.truth.segments.filter(pl.col("store_id") == store_id)["segment"][0])


def _check_contract(tables: Tables) -> None:
    for name, frame in tables.items():
        spec = TABLE_SPECS[name]
        for col in spec.required_columns:
            assert col in frame.columns, f"{name}.{col} missing"
        for col in spec.columns:
            if col.name in frame.columns:
                assert frame.schema[col.name] == col.dtype, f"{name}.{col.name}"
        assert (
            list(frame.columns[: len(spec.required_columns)])
            == [c for c in spec.column_names if c in frame.columns][: len(spec.required_columns)]
        )
        if spec.key and frame.height:
            assert frame.select(spec.key).is_duplicated().sum() == 0, f"{name} key not unique"
        required = [c for c in spec.required_columns if c in frame.columns]
        nulls = frame.select(pl.col(required).null_count()).row(0, named=True)
        assert not any(nulls.values()), f"{name}: nulls in required columns {nulls}"


def test_scenarios_listed() -> None:
    assert SCENARIOS[:3] == ("seed-stories", "default", "scale")
    assert all(name.startswith("foreign-") for name in SCENARIOS[3:])


def test_contract_check_can_fail() -> None:
    """_check_contract rejects a table with a null in a required column."""
    net = generate("default", 1, n_stores=3, n_sku_sizes=20)
    bad = net.tables.sales.with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(None).otherwise(pl.col("sku")).alias("sku")
    )
    with pytest.raises(AssertionError, match="nulls in required columns"):
        _check_contract(net.tables.replace(sales=bad))


@pytest.mark.parametrize("which", ["stories", "small"])
def test_contract_columns_and_dtypes(which: str, request: pytest.FixtureRequest) -> None:
    net: SyntheticNetwork = request.getfixturevalue(which)
    _check_contract(net.tables)
    _check_contract(net.truth.season_tables)
    assert set(net.tables.warehouse_ids.to_list()) == {"WH01"}
    assert net.tables.store_ids.to_list() == net.truth.store_ids
    assert net.tables.products["sku"].to_list() == net.truth.skus
    for col in ("median_income", "pct_age_18_34", "climate_zone"):
        assert col in net.tables.stores.columns
    for col in ("gender", "tags"):
        assert col in net.tables.products.columns
    # ids in sales/inventory exist in stores/products
    ids = set(net.tables.stores["store_id"].to_list())
    skus = set(net.truth.skus)
    for frame in (net.tables.sales, net.tables.inventory):
        assert set(frame["store_id"].unique().to_list()) <= ids
        assert set(frame["sku"].unique().to_list()) <= skus


def test_stories_network_size(stories: SyntheticNetwork) -> None:
    assert 20 <= len(stories.truth.store_ids) <= 30
    assert 300 <= stories.tables.products.height <= 600
    assert stories.season_start == dt.date(2026, 2, 2)
    assert stories.season_end == stories.tables.products["season_end"].max()
    assert 10 * 7 <= (stories.as_of - stories.season_start).days + 1 <= 12 * 7
    sizes = set(stories.tables.products["size"].to_list())
    assert {"XS", "XL", "36", "45"} <= sizes


def test_written_folder_reads_back_through_the_contract(
    stories: SyntheticNetwork, tmp_path: Path
) -> None:
    from stocktailor.contract import validate_tables
    from stocktailor.workspace import read_data_folder

    stories.write(tmp_path)
    back = read_data_folder(tmp_path)
    for name, frame in stories.tables.items():
        got = back.get(name)
        assert got is not None, name
        assert got.select(frame.columns).equals(frame), name
    again = validate_tables(dict(stories.tables.items()))
    assert again.sales.equals(stories.tables.sales)


def test_same_seed_same_bytes_parquet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import stocktailor.synth._synthetic as network

    monkeypatch.setattr(network, "PARQUET_MIN_ROWS", 500)
    kw = {"n_stores": 6, "n_sku_sizes": 150}
    generate("scale", 2, **kw).write(tmp_path / "a")
    generate("scale", 2, **kw).write(tmp_path / "b")
    files = sorted(p.name for p in (tmp_path / "a").glob("*.parquet"))
    assert {"sales.parquet", "inventory.parquet"} <= set(files)
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    back = pl.read_parquet(tmp_path / "a" / "sales.parquet")
    assert back.equals(generate("scale", 2, **kw).tables.sales)


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    def digest(out: Path) -> dict[str, str]:
        return {
            str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*"))
            if p.is_file()
        }

    kw = {"n_stores": 8, "n_sku_sizes": 120, "switch_segments": 1}
    generate("default", 11, **kw).write(tmp_path / "a")
    generate("default", 11, **kw).write(tmp_path / "b")
    generate("default", 12, **kw).write(tmp_path / "c")
    a, b, c = digest(tmp_path / "a"), digest(tmp_path / "b"), digest(tmp_path / "c")
    assert a == b
    assert "truth/demand.parquet" in a
    assert "sales.csv" in a and "truth/segments.parquet" in a and "truth/meta.json" in a
    assert a["sales.csv"] != c["sales.csv"]
    # the written folder reads back with the contract columns
    sales = pl.read_csv(tmp_path / "a" / "sales.csv", try_parse_dates=True)
    assert sales.columns == ["date", "store_id", "sku", "units", "revenue"]


@pytest.mark.parametrize("which", ["stories", "small"])
def test_sales_censored_by_stock(which: str, request: pytest.FixtureRequest) -> None:
    net: SyntheticNetwork = request.getfixturevalue(which)
    t = net.tables
    assert t.sales["units"].min() >= 1  # only non-zero rows, no returns
    assert t.sales["date"].max() <= net.as_of
    assert t.sales["date"].min() >= net.season_start
    assert t.inventory["date"].max() == net.as_of
    assert t.inventory["on_hand"].min() >= 0
    init = net.truth.initial_stock
    sold = t.sales.group_by("store_id", "sku").agg(pl.col("units").sum().alias("sold"))
    both = sold.join(init, on=["store_id", "sku"], how="left")
    assert both["units"].null_count() == 0  # nothing sells that was never stocked
    assert (both["sold"] <= both["units"]).all()
    # every snapshot equals initial stock minus the sales up to that date
    assert_snapshots_follow_sales(t, init, t.inventory["date"].unique().sort().to_list())
    pos = net.truth.position.join(
        t.inventory.filter(pl.col("date") == net.as_of), on=["store_id", "sku"]
    )
    assert pos.height == net.truth.position.height
    assert (pos["on_hand"] == pos["on_hand_right"]).all()
    # some store x SKUs ran out: the old-way allocation causes stockouts
    assert (net.truth.position["on_hand"] == 0).sum() > 0


def test_revenue_is_units_times_price_paid(stories: SyntheticNetwork) -> None:
    s = stories.tables.sales.join(stories.tables.products.select("sku", "full_price"), on="sku")
    promo = s.filter(pl.col("date").is_between(dt.date(2026, 3, 6), dt.date(2026, 3, 8)))
    rest = s.filter(~pl.col("date").is_between(dt.date(2026, 3, 6), dt.date(2026, 3, 8)))
    assert promo.height > 0
    assert np.allclose(promo["revenue"], promo["units"] * promo["full_price"] * 0.8, atol=0.01)
    assert np.allclose(rest["revenue"], rest["units"] * rest["full_price"], atol=0.01)


def test_signal_tables(stories: SyntheticNetwork) -> None:
    t, as_of = stories.tables, stories.as_of
    w = t.weather
    assert w is not None
    fc = w.filter(pl.col("is_forecast"))
    assert fc["date"].min() == as_of + dt.timedelta(days=1)
    assert fc["date"].max() == as_of + dt.timedelta(days=14)
    assert not w.filter(pl.col("date") <= as_of)["is_forecast"].any()
    assert w.height == len(stories.truth.store_ids) * ((as_of - stories.season_start).days + 15)
    season_w = stories.truth.season_tables.weather
    assert season_w is not None and season_w["date"].max() == stories.season_end
    assert t.trends is not None and t.trends["date"].max() <= as_of
    assert set(t.trends["attribute"].unique().to_list()) == {"tags"}
    assert set(t.trends["scope"].unique().to_list()) <= {"city", "region", "all"}
    assert t.events is not None
    assert set(t.events["scope"].unique().to_list()) <= {"store", "city", "region", "all"}
    assert t.economy is not None and t.economy["date"].max() <= as_of
    lanes = t.lanes
    assert lanes is not None
    n = t.stores.height
    assert lanes.height == n * (n - 1)
    assert (lanes["from_id"] != lanes["to_id"]).all()
    assert (lanes["cost_per_unit"] > 0).all() and (lanes["lead_time_days"] >= 2).all()
    a = t.assortment
    assert a is not None and a.height >= 1
    women = a["store_id"].to_list()
    men_skus = t.products.filter(pl.col("gender") == "M")["sku"]
    assert t.inventory.filter(
        pl.col("store_id").is_in(women), pl.col("sku").is_in(men_skus.to_list())
    ).is_empty()


def _seattle_cold_snap(net: SyntheticNetwork) -> None:
    w = net.truth.season_tables.weather
    assert w is not None
    sea = _store(net, "Seattle Downtown")
    la = _store(net, "Los Angeles Century City")
    snap = w.filter(pl.col("date").is_between(dt.date(2026, 3, 22), dt.date(2026, 3, 30)))
    sea_anom = snap.filter(pl.col("store_id") == sea).select(
        (pl.col("temp_c") - pl.col("temp_normal_c")).mean()
    )
    la_anom = snap.filter(pl.col("store_id") == la).select(
        (pl.col("temp_c") - pl.col("temp_normal_c")).mean()
    )
    assert sea_anom.item() < -6.0
    assert la_anom.item() > 0.0


def _sell_through(
    net: SyntheticNetwork,
    store_id: str,
    style_name: str,
    upto: dt.date,
    since: dt.date | None = None,
) -> float:
    """Units of a style sold in ``[since, upto]`` (default: since season start) / initial units."""
    skus = net.tables.products.filter(pl.col("style_name").str.contains(style_name))["sku"]
    sales = net.tables.sales.filter(
        pl.col("store_id") == store_id,
        pl.col("sku").is_in(skus.to_list()),
        pl.col("date") <= upto,
        pl.col("date") >= (since or net.season_start),
    )
    init = net.truth.initial_stock.filter(
        pl.col("store_id") == store_id, pl.col("sku").is_in(skus.to_list())
    )["units"].sum()
    return float(sales["units"].sum()) / max(1.0, float(init))


def test_story_trench_la_vs_seattle(stories: SyntheticNetwork) -> None:
    _seattle_cold_snap(stories)
    sea = _store(stories, "Seattle Downtown")
    la = _store(stories, "Los Angeles Century City")
    assert _segment(stories, sea) == _segment(stories, la)  # same segment: weather is the story
    week_after = SNAP_END + dt.timedelta(days=7)
    assert _sell_through(stories, la, "Trench", week_after) > 1.5 * _sell_through(
        stories, sea, "Trench", week_after
    )
    # wool coats sell in Seattle during the snap (not in LA, and faster than just before it)
    snap0 = dt.date(2026, 3, 20)
    before0, before1 = dt.date(2026, 3, 7), dt.date(2026, 3, 19)
    sea_snap = _sell_through(stories, sea, "Wool Overcoat", SNAP_END, snap0)
    assert sea_snap > 2 * _sell_through(stories, la, "Wool Overcoat", SNAP_END, snap0)
    # sales are censored by stock, so the demand spike is checked on the true rate
    wool = stories.tables.products["style_name"].str.contains("Wool Overcoat").to_numpy()
    j = stories.truth.store_ids.index(sea)
    snap_rate = stories.truth.expected_demand(snap0, SNAP_END)[:, j, wool].sum(axis=1).mean()
    before_rate = stories.truth.expected_demand(before0, before1)[:, j, wool].sum(axis=1).mean()
    assert snap_rate > 1.8 * before_rate


def test_story_bright_sneakers(stories: SyntheticNetwork) -> None:
    bright = stories.tables.products.filter(pl.col("tags").str.contains("bright-sneaker"))["sku"]
    pos = (
        stories.truth.position.filter(pl.col("sku").is_in(bright.to_list()))
        .join(stories.truth.segments, on="store_id")
        .group_by("segment")
        .agg((pl.col("on_hand") == 0).mean().alias("out"), pl.col("on_hand").sum())
    )
    out = dict(zip(pos["segment"], pos["out"], strict=True))
    assert out["urban creative"] > 0.6
    assert out["suburban family"] < 0.4
    assert out["urban creative"] > 2 * max(v for k, v in out.items() if k != "urban creative")
    # the Atlanta suburban store sits on its bright sneakers
    sub = _store(stories, "Atlanta Marietta (suburban)")
    urb = _store(stories, "Atlanta Little Five Points")
    on = stories.truth.position.filter(pl.col("sku").is_in(bright.to_list()))
    assert on.filter(pl.col("store_id") == sub)["on_hand"].sum() > 10 * max(
        1, on.filter(pl.col("store_id") == urb)["on_hand"].sum()
    )
    # the trend index of the tag in an urban-creative city rises before as_of
    tr = stories.tables.trends
    assert tr is not None
    atl = tr.filter(pl.col("scope_id") == "Atlanta", pl.col("value") == "bright-sneaker")
    assert atl["index"].tail(7).mean() > 1.5 * atl["index"].head(7).mean()  # type: ignore[operator]


def test_story_segments_cut_across_geography(stories: SyntheticNetwork) -> None:
    atl_urban = _segment(stories, _store(stories, "Atlanta Little Five Points"))
    aus_urban = _segment(stories, _store(stories, "Austin South Congress"))
    atl_sub = _segment(stories, _store(stories, "Atlanta Marietta (suburban)"))
    assert atl_urban == aus_urban == "urban creative"
    assert atl_sub != atl_urban
    coastal = stories.truth.segments.filter(pl.col("segment") == "coastal casual")
    states = set(
        stories.tables.stores.filter(pl.col("store_id").is_in(coastal["store_id"].to_list()))[
            "state"
        ]
    )
    assert {"CA", "FL", "SC", "NC"} <= states
    # Atlanta stores are ~30 km apart
    st_ = stories.tables.stores.filter(pl.col("city") == "Atlanta")
    lat, lon = st_["latitude"].to_numpy(), st_["longitude"].to_numpy()
    km = 111.0 * np.hypot(lat[0] - lat[1], (lon[0] - lon[1]) * np.cos(np.radians(lat[0])))
    assert 20 < km < 40


def test_story_size_profiles(stories: SyntheticNetwork) -> None:
    sales = stories.tables.sales.join(
        stories.tables.products.select("sku", "size", "size_group"), on="sku"
    ).filter(pl.col("size_group") == "apparel")
    share = sales.group_by("store_id").agg(
        (pl.col("units") * pl.col("size").is_in(["L", "XL"])).sum() / pl.col("units").sum()
    )
    both = share.join(stories.truth.stores.select("store_id", "size_shift"), on="store_id")
    corr = np.corrcoef(both["size_shift"].to_numpy(), both["units"].to_numpy())[0, 1]
    assert corr > 0.8
    curves = stories.truth.size_curves
    sums = curves.group_by("store_id", "size_group").agg(pl.col("share").sum())
    assert np.allclose(sums["share"], 1.0)
    # larger-size stores have a heavier true XL share
    big = both.sort("size_shift")["store_id"][-1]
    small_ = both.sort("size_shift")["store_id"][0]
    xl = curves.filter(pl.col("size") == "XL")
    assert (
        xl.filter(pl.col("store_id") == big)["share"].max()  # type: ignore[operator]
        > 1.5 * xl.filter(pl.col("store_id") == small_)["share"].max()  # type: ignore[operator]
    )


def test_switch_segments_recorded(small: SyntheticNetwork) -> None:
    seg = small.truth.segments
    sw = seg.filter(pl.col("segment_after").is_not_null())
    assert sw.height == 3
    assert (sw["segment_after"] != sw["segment"]).all()
    assert (sw["switch_date"] > small.season_start).all()
    assert (sw["switch_date"] < small.as_of).all()
    f = small.truth.factors
    for row in sw.iter_rows(named=True):
        j = small.truth.store_ids.index(row["store_id"])
        d = (row["switch_date"] - small.season_start).days
        assert f.seg_day[d - 1, j] != f.seg_day[d, j]
    unswitched = seg.filter(pl.col("segment_after").is_null())["store_id"].to_list()
    for sid in unswitched:
        j = small.truth.store_ids.index(sid)
        assert (f.seg_day[:, j] == f.seg_day[0, j]).all()
    assert generate("default", 3, n_stores=12, n_sku_sizes=240).truth.segments.columns == [
        "store_id",
        "segment",
    ]


def test_expected_demand_and_price(small: SyntheticNetwork) -> None:
    tr = small.truth
    d0 = small.as_of + dt.timedelta(days=1)
    d1 = d0 + dt.timedelta(days=2)
    full = tr.expected_demand(d0, d1)
    assert full.shape == (3, len(tr.store_ids), len(tr.skus))
    assert (full >= 0).all() and full.sum() > 0
    half = tr.expected_demand(d0, d1, price_factor=np.full(3, 0.5))
    el = tr.products["elasticity"].to_numpy()
    assert np.allclose(half, full * 0.5 ** (-el)[None, None, :])
    per_sku = np.ones((3, len(tr.skus)))
    per_sku[:, 0] = 0.7
    mixed = tr.expected_demand(d0, d1, price_factor=per_sku)
    assert np.allclose(mixed[:, :, 1:], full[:, :, 1:])
    assert np.allclose(mixed[:, :, 0], full[:, :, 0] * 0.7 ** -el[0])
    ps, pk = np.array([0, 1, 2]), np.array([0, 0, 5])
    pairs = tr.expected_demand_pairs(d0, d1, ps, pk, price_factor=per_sku)
    assert np.allclose(pairs, mixed[:, ps, pk])
    frame = tr.demand_frame(d0, d1)
    assert frame.columns == ["date", "store_id", "sku", "rate"]
    assert frame["rate"].sum() == pytest.approx(full.sum())
    with pytest.raises(ValueError, match="outside"):
        tr.expected_demand(small.season_start - dt.timedelta(days=1), d0)
    with pytest.raises(ValueError, match="price_factor"):
        tr.expected_demand(d0, d1, price_factor=np.ones(5))


def test_history_matches_true_rates(stories: SyntheticNetwork) -> None:
    """Week 1 has almost no stockouts, so sales are close to the true expected demand."""
    d0, d1 = stories.season_start, stories.season_start + dt.timedelta(days=6)
    exp = stories.truth.expected_demand(d0, d1)
    init = stories.truth.initial_stock.filter(pl.col("store_id") != "WH01")
    idx_s = {s: i for i, s in enumerate(stories.truth.store_ids)}
    idx_k = {k: i for i, k in enumerate(stories.truth.skus)}
    stocked = np.zeros(exp.shape[1:], dtype=bool)
    stocked[[idx_s[s] for s in init["store_id"]], [idx_k[k] for k in init["sku"]]] = True
    expected = float((exp * stocked[None]).sum())
    sold = stories.tables.sales.filter(pl.col("date") <= d1)["units"].sum()
    assert 0.85 * expected < sold <= 1.05 * expected


def test_sample_demand_moments(stories: SyntheticNetwork) -> None:
    rng = np.random.default_rng(0)
    rate = np.full(200_000, 2.0)
    draws = stories.truth.sample_demand(rate, rng)
    r = stories.truth.dispersion
    assert draws.dtype == np.int64
    assert draws.mean() == pytest.approx(2.0, rel=0.02)
    assert draws.var() == pytest.approx(2.0 + 4.0 / r, rel=0.05)
    assert (stories.truth.sample_demand(np.zeros((3, 4)), rng) == 0).all()


@settings(max_examples=30, deadline=None)
@given(
    mu=st.lists(st.floats(0.0, 80.0, allow_nan=False), min_size=1, max_size=50),
    r=st.floats(0.2, 50.0),
    seed=st.integers(0, 2**16),
)
def test_nb_sample_invariants(mu: list[float], r: float, seed: int) -> None:
    m = np.array(mu)
    a = nb_sample(m, r, np.random.default_rng(seed))
    b = nb_sample(m, r, np.random.default_rng(seed))
    assert a.shape == m.shape and a.dtype == np.int64
    assert (a >= 0).all() and (a[m == 0] == 0).all()
    assert np.array_equal(a, b)


def test_nb_sample_rejects_bad_input() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="dispersion"):
        nb_sample(np.ones(2), 0.0, rng)
    with pytest.raises(ValueError, match="rate"):
        nb_sample(np.array([1.0, -1.0]), 2.0, rng)


def test_scale_is_factorised_with_partial_assortment() -> None:
    net = generate("scale", 5, n_stores=20, n_sku_sizes=8000)
    assert net.tables.products.height == 8000
    assert len(net.truth.store_ids) == 20
    f = net.truth.factors
    carried = f.carried[:, f.sku_sc]
    assert 0.1 < carried.mean() < 0.9  # stores range part of the catalogue
    # no stored panel bigger than a day of stores x SKU-sizes x a few response groups
    for name in ("weather_mult", "trend_mult", "daily", "lifecycle", "size_eff"):
        assert getattr(f, name).size < f.n_days * f.n_stores * 64
    # sales only where the store ranges the SKU
    ks = {k: i for i, k in enumerate(net.truth.skus)}
    ss = {s: i for i, s in enumerate(net.truth.store_ids)}
    pairs = net.tables.sales.select("store_id", "sku").unique()
    assert carried[[ss[s] for s in pairs["store_id"]], [ks[k] for k in pairs["sku"]]].all()
    snaps = net.tables.inventory["date"].unique().to_list()
    assert len(snaps) == 4  # opening, weeks 4 and 8, as_of (28-day spacing at scale)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown scenario"):
        generate("nope")
    with pytest.raises(ValueError, match="seed"):
        generate("default", -1, n_stores=3, n_sku_sizes=20)
    with pytest.raises(ValueError, match="fixed network"):
        generate("seed-stories", n_stores=5)
    with pytest.raises(ValueError, match="as_of"):
        generate("default", as_of=dt.date(2025, 1, 1), n_stores=3, n_sku_sizes=20)
    with pytest.raises(ValueError, match="switch_segments"):
        generate("default", n_stores=3, n_sku_sizes=20, switch_segments=4)


def test_as_of_option() -> None:
    as_of = dt.date(2026, 3, 15)
    net = generate("default", 0, n_stores=5, n_sku_sizes=60, as_of=as_of)
    assert net.as_of == as_of
    assert net.tables.sales["date"].max() <= as_of
    assert net.tables.inventory["date"].max() == as_of


def test_default_segments_recoverable_from_sales_not_geography() -> None:
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    net = generate("default", 0)
    seg = net.truth.segments.sort("store_id")
    assert set(seg["segment"]) == {
        "urban creative",
        "suburban family",
        "coastal casual",
        "classic professional",
        "value outlet",
    }
    stores = net.tables.stores.join(seg, on="store_id")
    regions = stores.group_by("segment").agg(pl.col("region").n_unique())
    assert regions["region"].min() >= 2  # every segment spans regions  # type: ignore[operator]
    cities = stores.group_by("city").agg(pl.col("segment").n_unique())
    assert cities["segment"].max() >= 3  # some cities mix three segments  # type: ignore[operator]
    mix = (
        net.tables.sales.join(net.truth.products.select("sku", "style_group"), on="sku")
        .group_by("store_id", "style_group")
        .agg(pl.col("units").sum())
        .pivot(on="style_group", index="store_id", values="units")
        .fill_null(0)
        .sort("store_id")
    )
    x = mix.drop("store_id").to_numpy().astype(float)
    x = x / x.sum(axis=1, keepdims=True)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    labels = KMeans(5, n_init=20, random_state=0).fit_predict(x)
    assert adjusted_rand_score(seg["segment"].to_list(), labels) > 0.5


@settings(max_examples=8, deadline=None)
@given(
    n_stores=st.integers(2, 6),
    n_sku=st.integers(10, 90),
    seed=st.integers(0, 1000),
    switch=st.integers(0, 2),
)
def test_generator_invariants(n_stores: int, n_sku: int, seed: int, switch: int) -> None:
    net = generate("default", seed, n_stores=n_stores, n_sku_sizes=n_sku, switch_segments=switch)
    t = net.tables
    assert t.products.height == n_sku
    assert len(net.truth.store_ids) == n_stores
    if switch:
        assert net.truth.segments["segment_after"].drop_nulls().len() == switch
    sold = t.sales.group_by("store_id", "sku").agg(pl.col("units").sum())
    chk = sold.join(net.truth.initial_stock, on=["store_id", "sku"], how="left")
    assert (chk["units"] <= chk["units_right"]).all()
    end = net.truth.position.join(net.truth.initial_stock, on=["store_id", "sku"])
    assert (end["on_hand"] <= end["units"]).all() and (end["on_hand"] >= 0).all()
    assert t.sales.height == 0 or t.sales["date"].max() <= net.as_of


def test_switch_changes_true_demand_by_the_affinity_ratio(small: SyntheticNetwork) -> None:
    """After its switch date a store's true rate of an untrended SKU changes by exactly
    affinity[new, group] / affinity[old, group]; before it, nothing changes."""
    import dataclasses

    from stocktailor.synth._data import SEGMENTS, STYLE_GROUPS

    tr = small.truth
    f = tr.factors
    row = small.truth.segments.filter(pl.col("segment_after").is_not_null()).row(0, named=True)
    j = tr.store_ids.index(row["store_id"])
    old, new = SEGMENTS.index(row["segment"]), SEGMENTS.index(row["segment_after"])
    seg_day = f.seg_day.copy()
    seg_day[:, j] = old
    never = dataclasses.replace(tr, factors=dataclasses.replace(f, seg_day=seg_day))
    day = row["switch_date"]
    span = (day - dt.timedelta(days=3), day + dt.timedelta(days=3))
    got = tr.expected_demand(*span)[:, j, :]
    base = never.expected_demand(*span)[:, j, :]
    untrended = tr.products["trend_tag"].is_null().to_numpy()
    group = np.array([STYLE_GROUPS.index(g) for g in tr.products["style_group"]])
    ratio = f.affinity[new, group] / f.affinity[old, group]
    ranged = base[0] > 0
    assert np.allclose(got[:3], base[:3])  # before the switch: unchanged
    m = untrended & ranged
    assert m.sum() > 10
    assert np.allclose(got[3:, m], base[3:, m] * ratio[None, m])
    assert not np.allclose(ratio[m], 1.0)


def test_trend_index_leads_true_demand(stories: SyntheticNetwork) -> None:
    """The trend lift on day t is 1 + sensitivity * (index[t - 10] / 100 - 1), from the table."""
    from stocktailor.synth._data import TREND_TAGS

    sid = _store(stories, "Atlanta Little Five Points")
    j = stories.truth.store_ids.index(sid)
    sens = stories.truth.stores.filter(pl.col("store_id") == sid)["trend_sensitivity"].item()
    assert sens == pytest.approx(1.0)
    trends = stories.tables.trends
    assert trends is not None
    ser = trends.filter(pl.col("scope_id") == "Atlanta", pl.col("value") == "bright-sneaker")
    index = dict(zip(ser["date"].to_list(), ser["index"].to_list(), strict=True))
    lift = stories.truth.factors.trend_mult[:, j, 1 + TREND_TAGS.index("bright-sneaker")]
    days = (stories.as_of - stories.season_start).days + 1
    lead = 10
    want = np.array(
        [
            max(
                0.3,
                1 + sens * (index[stories.season_start + dt.timedelta(days=t - lead)] / 100 - 1),
            )
            for t in range(days)
        ]
    )
    assert np.allclose(lift[:days], want)
    # the index leads: the lift follows the index 10 days earlier better than same-day
    same_day = np.array([index[stories.season_start + dt.timedelta(days=t)] for t in range(days)])
    assert np.corrcoef(lift[:days], same_day)[0, 1] < np.corrcoef(lift[:days], want)[0, 1]


def test_weather_forecast_error_grows_with_lead(small: SyntheticNetwork) -> None:
    fc = small.tables.weather
    actual = small.truth.season_tables.weather
    assert fc is not None and actual is not None
    both = (
        fc.filter(pl.col("is_forecast"))
        .join(actual, on=["date", "store_id"], suffix="_actual")
        .with_columns(
            lead=(pl.col("date") - small.as_of).dt.total_days(),
            err=(pl.col("temp_c") - pl.col("temp_c_actual")).abs(),
        )
    )
    assert both["lead"].min() == 1 and both["lead"].max() == 14
    near = both.filter(pl.col("lead") <= 3)["err"].mean()
    far = both.filter(pl.col("lead") >= 10)["err"].mean()
    assert near < far  # type: ignore[operator]
    assert (both["precip_mm"] >= 0).all()
    # actuals up to as_of are the season's actuals
    hist = fc.filter(~pl.col("is_forecast")).join(actual, on=["date", "store_id"])
    assert (hist["temp_c"] == hist["temp_c_right"]).all()


def test_capacity_covers_initial_stock(stories: SyntheticNetwork) -> None:
    init = stories.truth.initial_stock.group_by("store_id").agg(pl.col("units").sum())
    cap = init.join(stories.tables.stores.select("store_id", "capacity_units"), on="store_id")
    assert (cap["capacity_units"] >= cap["units"]).all()
    wh = stories.tables.stores.filter(pl.col("kind") == "warehouse")
    assert wh.height == 1 and wh["capacity_units"][0] > 0
