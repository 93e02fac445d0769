"""Tests of stocktailor.clustering: features, clusterer, names, re-clustering, pooling, report."""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score

from _report_pages import geo_assets, geo_maps, outside_plotlyjs, plots
from stocktailor.clustering import (
    StoreClusterer,
    build_store_features,
    cluster_pooled_rates,
    clusters_report_html,
    color_family,
    feature_label,
    match_clusters,
    pair_exposure,
    recluster,
    size_group,
    weight_vector,
)
from stocktailor.contract import Tables

START = dt.date(2026, 3, 2)
CATEGORIES = ("sneakers", "coats", "dresses")
# demand multiplier per behaviour group (rows) and category (columns)
AFFINITY = np.array([[3.0, 0.6, 0.6], [0.6, 3.0, 0.6], [0.6, 0.6, 3.0]])


def _products() -> pl.DataFrame:
    rows = []
    for c in CATEGORIES:
        for st_i in range(2):
            for size, order in (("S", 1), ("M", 2), ("L", 3)):
                rows.append(
                    {
                        "sku": f"{c}-{st_i}-{size}",
                        "style": f"{c}-{st_i}",
                        "color": "neon-green" if st_i == 0 else "black",
                        "size": size,
                        "category": c,
                        "full_price": 50.0 + 10 * st_i,
                        "unit_cost": 20.0,
                        "size_order": order,
                        "tags": f"{c};{'bright' if st_i == 0 else 'classic'}",
                    }
                )
    return pl.DataFrame(rows)


def _network(
    seed: int = 0,
    n_per_group: int = 5,
    days: int = 70,
    switch: dict[str, int] | None = None,
    switch_day: int = 35,
    stockout: str | None = None,
) -> tuple[Tables, dict[str, int]]:
    """A tiny network: 3 behaviour groups, scattered locations, daily sales and snapshots.

    ``switch`` maps store ids to the group they switch to on ``switch_day``; ``stockout`` makes
    that store run out of coats for the second half of the window (no coats sold then).
    """
    rng = np.random.default_rng(seed)
    products = _products()
    skus = products["sku"].to_list()
    cats = products["category"].to_list()
    ci = {c: i for i, c in enumerate(CATEGORIES)}
    store_rows, truth = [], {}
    for g in range(3):
        for j in range(n_per_group):
            sid = f"S{g}{j:02d}"
            truth[sid] = g
            store_rows.append(
                {
                    "store_id": sid,
                    "name": sid,
                    "kind": "store",
                    "city": f"City{j}",
                    "latitude": float(rng.uniform(25, 48)),
                    "longitude": float(rng.uniform(-120, -70)),
                    "format": "urban" if g == 0 else "mall",
                    "area_sqm": float(500 + 300 * (g > 0) + rng.uniform(0, 20)),
                    "median_income": float(60 + 10 * (g == 2) + rng.normal(0, 3)),
                }
            )
    store_rows.append(
        {
            "store_id": "W1",
            "name": "DC",
            "kind": "warehouse",
            "city": "X",
            "latitude": 35.0,
            "longitude": -90.0,
            "format": "warehouse",
            "area_sqm": 10000.0,
            "median_income": 0.0,
        }
    )
    stores = pl.DataFrame(store_rows)
    sales, inv = [], []
    for sid, g in truth.items():
        for k, sku in enumerate(skus):
            stock = 10_000
            for d in range(days):
                date = START + dt.timedelta(days=d)
                grp = g
                if switch and sid in switch and d >= switch_day:
                    grp = switch[sid]
                lam = 0.8 * AFFINITY[grp, ci[cats[k]]]
                if stockout == sid and cats[k] == "coats" and d >= days // 2:
                    stock = 0
                u = int(min(rng.poisson(lam), stock))
                stock -= u
                if u:
                    sales.append(
                        {"date": date, "store_id": sid, "sku": sku, "units": u, "revenue": 50.0 * u}
                    )
                inv.append({"date": date, "store_id": sid, "sku": sku, "on_hand": stock})
    tables = Tables(
        stores=stores,
        products=products,
        sales=pl.DataFrame(sales).with_columns(pl.col("units").cast(pl.Int64)),
        inventory=pl.DataFrame(inv).with_columns(pl.col("on_hand").cast(pl.Int64)),
    )
    return tables, truth


@pytest.fixture(scope="module")
def tiny() -> tuple[Tables, dict[str, int]]:
    return _network()


AS_OF = START + dt.timedelta(days=69)


# ---------------------------------------------------------------- small pieces
def test_color_family_and_size_group() -> None:
    assert color_family("neon-green") == "bright"
    assert color_family("hot-pink") == "bright"
    assert color_family("light-blue") == "pastel"
    assert color_family("black") == "dark"
    assert color_family("sand") == "neutral"
    assert color_family("zzz") == "other"
    assert size_group("M") == "apparel"
    assert size_group("XS") == "apparel"
    assert size_group("42") == "footwear"
    assert size_group("S1") == "other"
    assert size_group("M", "sneakers") == "footwear"


def test_feature_label_words() -> None:
    assert feature_label("category_mix__hoodies") == "hoodies"
    assert feature_label("attribute_mix__tag=bright-sneaker") == "bright sneaker"
    assert feature_label("demographics__pct_age_18_34") == "18-34"
    assert feature_label("size__apparel_small_share") == "small sizes (apparel)"
    assert feature_label("velocity__sku_rate", -1.0) == "slow sellers"


def test_weight_vector_shares_group_weight() -> None:
    cols = ["size__a", "size__b", "size__c", "size__d", "price__x"]
    w = weight_vector(cols, {"size": 2.0, "price": 1.0})
    # four columns share weight 2 -> each 2/sqrt(4) = 1; squared weights of a group sum to w_g^2
    np.testing.assert_allclose(w, [1.0, 1.0, 1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="feature_weights"):
        weight_vector(cols, {"price": -1.0})
    # a mix is one variable however many levels it has; product attributes share their group
    mix = [
        "style_mix__pc1",
        "style_mix__pc2",
        "category_mix__a",
        "category_mix__b",
        "attribute_mix__gender=W",
        "attribute_mix__gender=M",
        "attribute_mix__fit=slim",
        "attribute_mix__fit=loose",
        "format__format=urban",
    ]
    w = weight_vector(mix, None)
    half = 0.5 / math.sqrt(2)
    np.testing.assert_allclose(w, [1.0, 1.0, 0.5, 0.5, half, half, half, half, 0.0])


def test_pair_exposure_hand_worked() -> None:
    """Closing snapshots: 3 on day 0; sells 1, 2 (sold out on day 2), restocked on day 4."""
    d = [START + dt.timedelta(days=i) for i in range(6)]
    sales = pl.DataFrame(
        {
            "date": [d[1], d[2], d[5]],
            "store_id": ["A"] * 3,
            "sku": ["x"] * 3,
            "units": [1, 2, 1],
            "revenue": [10.0, 20.0, 10.0],
        }
    )
    inv = pl.DataFrame(
        {
            "date": [d[0], d[2], d[3], d[4]],
            "store_id": ["A"] * 4,
            "sku": ["x"] * 4,
            "on_hand": [3, 0, 0, 5],
        }
    )
    t = Tables(
        stores=pl.DataFrame(
            {"store_id": ["A"], "kind": ["store"], "latitude": [0.0], "longitude": [0.0]}
        ),
        products=pl.DataFrame({"sku": ["x"], "category": ["c"], "full_price": [10.0]}),
        sales=sales,
        inventory=inv,
    )
    out = pair_exposure(t, d[1], d[5])
    # day1 (3 on hand), day2 (sold out during it) in stock; day3, day4 empty at open; day5 stocked
    assert out["units"].to_list() == [4.0]
    assert out["exposure_days"].to_list() == [3.0]
    assert out["rate"].to_list() == pytest.approx([4.0 / 3.0])


def test_pair_exposure_from_in_stock_shares() -> None:
    t, _ = _network(n_per_group=1, days=10)
    shares = t.inventory.select("date", "store_id", "sku").with_columns(
        pl.lit(0.5).alias("in_stock_share")
    )
    out = pair_exposure(t, START, START + dt.timedelta(days=9), in_stock=shares)
    assert out["exposure_days"].unique().to_list() == [5.0]


def test_features_censoring_aware(tiny: tuple[Tables, dict[str, int]]) -> None:
    """A store that ran out of coats keeps its coat share (rate per in-stock day)."""
    base, _ = _network(seed=3)
    cut, _ = _network(seed=3, stockout="S100")
    f0 = build_store_features(base, AS_OF, window_days=70).frame
    f1 = build_store_features(cut, AS_OF, window_days=70).frame
    col = "category_mix__coats"
    v0 = f0.filter(pl.col("store_id") == "S100")[col].item()
    v1 = f1.filter(pl.col("store_id") == "S100")[col].item()
    assert abs(v1 - v0) < 0.15
    # a naive share (units only) would drop by about log(2) for the half-window stockout
    coats = (pl.col("store_id") == "S100") & pl.col("sku").str.starts_with("coats")
    cut_units = int(cut.sales.filter(coats)["units"].sum())
    base_units = int(base.sales.filter(coats)["units"].sum())
    assert cut_units < 0.7 * base_units


def test_features_shape(tiny: tuple[Tables, dict[str, int]]) -> None:
    tables, truth = tiny
    feats = build_store_features(tables, AS_OF, window_days=56)
    frame = feats.frame
    assert frame["store_id"].to_list() == sorted(truth)  # warehouse excluded
    groups = {c.split("__")[0] for c in feats.columns}
    assert {"category_mix", "attribute_mix", "velocity", "size", "demographics"} <= groups
    assert feats.start == AS_OF - dt.timedelta(days=55)
    with pytest.raises(ValueError, match="window_days"):
        build_store_features(tables, AS_OF, window_days=0)


# ---------------------------------------------------------------- clusterer
def test_clusterer_recovers_groups(tiny: tuple[Tables, dict[str, int]]) -> None:
    tables, truth = tiny
    cl = StoreClusterer(k_max=6, selection="silhouette", random_state=0).fit(tables, AS_OF)
    lab = cl.labels_
    assert lab.columns[:7] == [
        "store_id",
        "cluster_id",
        "cluster_name",
        "distance",
        "alt_cluster_id",
        "alt_cluster_name",
        "alt_distance",
    ]
    assert cl.n_clusters_ == 3
    ari = adjusted_rand_score([truth[s] for s in lab["store_id"]], lab["cluster_id"].to_list())
    assert ari == pytest.approx(1.0)
    # alternative cluster differs from own and is farther
    assert (lab["alt_cluster_id"] != lab["cluster_id"]).all()
    assert (lab["alt_distance"] >= lab["distance"]).all()
    # the sneaker group's name mentions sneakers; profiles compare to the network average
    sneaker_cluster = lab.filter(pl.col("store_id") == "S000")["cluster_id"].item()
    assert "sneakers" in cl.names_[sneaker_cluster].lower()
    p = cl.profiles_.filter(
        pl.col("cluster_id") == sneaker_cluster, pl.col("feature") == "category_mix__sneakers"
    )
    assert p["z"].item() > 1.0
    assert p["cluster_value"].item() > p["network_value"].item()


def test_clusterer_forced_k_and_deterministic(tiny: tuple[Tables, dict[str, int]]) -> None:
    tables, _ = tiny
    a = StoreClusterer(n_clusters=4, random_state=7).fit(tables, AS_OF)
    b = StoreClusterer(n_clusters=4, random_state=7).fit(tables, AS_OF)
    assert a.n_clusters_ == 4
    assert a.labels_.equals(b.labels_)
    assert a.names_ == b.names_


def test_clusterer_weights_switch_groups_off(tiny: tuple[Tables, dict[str, int]]) -> None:
    """With behaviour switched off and format on, format splits urban/mall."""
    tables, truth = tiny
    off = dict.fromkeys(("style_mix", "category_mix", "attribute_mix"), 0.0)
    off["format"] = 1.0
    cl = StoreClusterer(n_clusters=2, feature_weights=off).fit(tables, AS_OF)
    urban = {s for s, g in truth.items() if g == 0}
    lab = cl.labels_
    ids = set(lab.filter(pl.col("store_id").is_in(sorted(urban)))["cluster_id"].to_list())
    assert len(ids) == 1
    assert lab.filter(pl.col("cluster_id") == next(iter(ids))).height == len(urban)


def test_fit_from_feature_frame_and_errors() -> None:
    frame = pl.DataFrame(
        {
            "store_id": ["a", "b", "c", "d", "e", "f"],
            "category_mix__x": [0.0, 0.1, 0.05, 5.0, 5.1, 4.9],
            "category_mix__y": [2.0, 2.1, 2.0, 0.0, 0.1, 0.0],
        }
    )
    cl = StoreClusterer(k_max=4, selection="silhouette").fit(frame)
    lab = cl.labels_.sort("store_id")["cluster_id"].to_list()
    assert lab[0] == lab[1] == lab[2] != lab[3] == lab[4] == lab[5]
    with pytest.raises(ValueError, match="duplicate"):
        StoreClusterer().fit(pl.concat([frame, frame]))
    # One store is a valid network: one cluster (issue 12: a one-store retailer).
    one = StoreClusterer().fit(frame.head(1))
    assert one.labels_["store_id"].to_list() == ["a"]
    assert one.n_clusters_ == 1


def test_stability_selection(tiny: tuple[Tables, dict[str, int]]) -> None:
    tables, _ = tiny
    cl = StoreClusterer(k_max=5, selection="stability", n_bootstrap=4).fit(tables, AS_OF)
    assert cl.n_clusters_ == 3
    assert cl.scores_["stability"].null_count() == 0


@settings(max_examples=8, deadline=None)
@given(
    st.lists(st.tuples(st.floats(-5, 5), st.floats(-5, 5)), min_size=4, max_size=20, unique=True),
    st.integers(0, 3),
)
def test_labels_invariants(points: list[tuple[float, float]], seed: int) -> None:
    frame = pl.DataFrame(
        {
            "store_id": [f"s{i:02d}" for i in range(len(points))],
            "category_mix__a": [p[0] for p in points],
            "price__b": [p[1] for p in points],
        }
    )
    cl = StoreClusterer(k_max=4, selection="silhouette", random_state=seed).fit(frame)
    lab = cl.labels_
    assert lab.height == len(points)
    assert set(lab["cluster_id"].to_list()) <= set(cl.cluster_ids_)
    assert set(cl.names_) == set(cl.cluster_ids_)
    assert len(set(cl.names_.values())) == len(cl.names_)
    alt = lab.drop_nulls("alt_distance")
    assert (alt["alt_distance"] >= alt["distance"] - 1e-9).all()
    # each store's cluster is its nearest centre
    pred = cl.predict(frame)
    assert pred["cluster_id"].to_list() == lab["cluster_id"].to_list()


# ---------------------------------------------------------------- dynamic
def test_match_clusters_by_overlap() -> None:
    old = pl.DataFrame({"store_id": list("abcdef"), "cluster_id": [1, 1, 1, 2, 2, 3]})
    new = pl.DataFrame({"store_id": list("abcdef"), "cluster_id": [5, 5, 6, 6, 6, 7]})
    assert match_clusters(old, new) == {5: 1, 6: 2, 7: 3}


def test_recluster_reports_switchers() -> None:
    switch = {"S101": 2, "S202": 1}
    tables, _ = _network(seed=1, days=112, switch=switch, switch_day=56)
    first = StoreClusterer(k_max=6, window_days=56, selection="silhouette").fit(
        tables, START + dt.timedelta(days=55)
    )
    new, moves = recluster(first, tables, START + dt.timedelta(days=111))
    assert sorted(moves["store_id"].to_list()) == ["S101", "S202"]
    # names and ids carried over
    assert new.names_ == first.names_
    row = moves.filter(pl.col("store_id") == "S202").row(0, named=True)
    to_cluster = first.labels_.filter(pl.col("store_id") == "S100")["cluster_id"].item()
    assert row["to_cluster_id"] == to_cluster
    assert "coats" in row["why"]
    assert row["distance_old"] > row["distance_new"]


def test_recluster_stable_without_change(tiny: tuple[Tables, dict[str, int]]) -> None:
    tables, _ = tiny
    a = StoreClusterer(window_days=35, selection="silhouette").fit(
        tables, START + dt.timedelta(days=34)
    )
    b, moves = recluster(a, tables, AS_OF)
    assert moves.is_empty()
    assert b.labels_["cluster_id"].to_list() == a.labels_["cluster_id"].to_list()


# ---------------------------------------------------------------- pooling
def test_pooled_rates_hand_worked() -> None:
    from stocktailor.clustering import pool_rates

    pairs = pl.DataFrame(
        {
            "store_id": ["a", "a", "b", "b"],
            "sku": ["x", "y", "x", "y"],
            "units": [2.0, 0.0, 6.0, 4.0],
            "exposure_days": [2.0, 4.0, 2.0, 4.0],
        }
    )
    groups = pl.DataFrame({"store_id": ["a", "b"], "cluster_id": [1, 1]})
    out = pool_rates(pairs, groups, prior_days=2.0).sort("store_id", "sku")
    # cluster rates: x = 8/4 = 2, y = 4/8 = 0.5; store a expected 2*2 + 4*0.5 = 6, observed 2
    # scale(a) = (2+1)/(6+1) = 3/7; prior(a,x) = 6/7; pooled = (2 + 2*6/7)/(2+2)
    got = out.filter(pl.col("store_id") == "a", pl.col("sku") == "x")
    assert got["prior_rate"].item() == pytest.approx(6 / 7)
    assert got["pooled_rate"].item() == pytest.approx((2 + 12 / 7) / 4)
    none = pool_rates(pairs, groups, prior_days=0.0)
    assert none["pooled_rate"].to_list() == none["raw_rate"].to_list()


def test_cluster_pooled_rates_tables(tiny: tuple[Tables, dict[str, int]]) -> None:
    tables, _ = tiny
    cl = StoreClusterer(n_clusters=3).fit(tables, AS_OF)
    out = cluster_pooled_rates(tables, AS_OF, cl.labels_, window_days=56)
    assert out.columns == [
        "store_id",
        "sku",
        "units",
        "exposure_days",
        "raw_rate",
        "prior_rate",
        "pooled_rate",
        "prior_days",
    ]
    assert (out["pooled_rate"] >= 0).all()
    assert out["prior_days"].n_unique() == 1
    with pytest.raises(ValueError, match="needs clusters"):
        cluster_pooled_rates(tables, AS_OF, None)


# ---------------------------------------------------------------- report
def test_report_self_contained(tmp_path: Path, tiny: tuple[Tables, dict[str, int]]) -> None:
    tables, _ = tiny
    cl = StoreClusterer(n_clusters=3).fit(tables, AS_OF)
    path = clusters_report_html(cl, tables.stores, tmp_path / "clusters.html")
    text = path.read_text(encoding="utf-8")
    assert '<script src="http' not in text
    assert "cdn.plot.ly/plotly" not in text
    assert 'id="fig-map"' in text and 'id="fig-projection"' in text
    assert "Category mix" in text
    assert len(text) > 1_000_000  # plotly.js inlined
    # the stores on a geo map over the embedded usa layer (issue 18): nothing to fetch
    rest = outside_plotlyjs(text)
    assert [g["scope"] for g in geo_maps(rest)] == ["usa"] and geo_assets(rest) == ["usa_110m"]
    assert "PlotlyGeoAssets" in rest and not re.search(r"https?://", rest)


def test_report_map_abroad_and_without_coordinates(
    tmp_path: Path, tiny: tuple[Tables, dict[str, int]]
) -> None:
    tables, _ = tiny
    cl = StoreClusterer(n_clusters=3).fit(tables, AS_OF)
    # the same stores around Germany: the world layer around them
    de = tables.stores.with_columns(
        (47.5 + pl.int_range(pl.len()) * 0.3).alias("latitude"),
        (6.0 + pl.int_range(pl.len()) * 0.5).alias("longitude"),
    )
    text = outside_plotlyjs(clusters_report_html(cl, de, tmp_path / "de.html").read_text())
    (geo,) = geo_maps(text)
    assert geo["scope"] == "world" and geo_assets(text) == ["world_110m"]
    assert geo["lataxis"]["range"][0] < 47.5 and geo["lonaxis"]["range"][1] > 13.0
    assert not re.search(r"https?://", text)
    # coordinates are optional in the data contract: absent or empty, no map and no layer
    for label, stores in (
        ("absent", tables.stores.drop("latitude", "longitude")),
        ("null", tables.stores.with_columns(pl.lit(None, pl.Float64).alias("latitude"))),
    ):
        path = clusters_report_html(cl, stores, tmp_path / f"{label}.html")
        text = outside_plotlyjs(path.read_text())
        assert "No store coordinates: map omitted." in text, label
        assert geo_maps(text) == [] and len(plots(text)) == 2, label
        assert geo_assets(text) == [] and "PlotlyGeoAssets" not in text, label


@pytest.mark.slow
def test_synth_seed_stories_stories() -> None:
    """seed-stories: Atlanta and Austin urban together, Atlanta suburban apart; geography loses."""
    from stocktailor.synth import generate

    net = generate("seed-stories", 0)
    cl = StoreClusterer(random_state=0).fit(net.tables, net.as_of)
    lab = cl.labels_.join(net.tables.stores.select("store_id", "name"), on="store_id")

    def cid(part: str) -> int:
        return int(lab.filter(pl.col("name").str.contains(part))["cluster_id"][0])

    assert cid("Atlanta Little Five Points") == cid("Austin South Congress")
    assert cid("Atlanta Marietta") != cid("Atlanta Little Five Points")
    coastal = ["Santa Monica", "San Diego", "Miami Beach", "Tampa", "Charleston", "Wilmington"]
    assert len({cid(n) for n in coastal}) == 1
    # every segment but value outlet is recovered exactly (one cluster each, nothing else in it)
    truth = net.truth.segments.join(cl.labels_, on="store_id")
    for seg in ("urban creative", "classic professional", "coastal casual"):
        mine = set(truth.filter(pl.col("segment") == seg)["cluster_id"])
        assert len(mine) == 1
        assert set(truth.filter(pl.col("cluster_id").is_in(mine))["segment"]) == {seg}


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="known limit (round two, docs/clustering.md): the two value-outlet stores differ "
    "from suburban family by 0.20 after the climate adjustment, inside the chance margins, "
    "and are merged with it (ARI 0.887); with store attributes on (format splits) they are not",
)
def test_synth_seed_stories_ari() -> None:
    from stocktailor.synth import generate

    net = generate("seed-stories", 0)
    cl = StoreClusterer(random_state=0).fit(net.tables, net.as_of)
    truth = net.truth.segments.join(cl.labels_, on="store_id")
    ari = adjusted_rand_score(truth["segment"].to_list(), truth["cluster_id"].to_list())
    assert ari >= 0.9


def _style_pairs(seg: list[int], temps: list[float], scale: list[float]) -> pl.DataFrame:
    rows = []
    for i, (g, t, c) in enumerate(zip(seg, temps, scale, strict=True)):
        z = (t - 15.0) / 10.0
        # styles A (warm) and B (cold) follow the weather, C is liked by segment 1
        mult = {"A": math.exp(0.8 * z), "B": math.exp(-0.8 * z), "C": 3.0 if g else 1.0, "D": 1.0}
        for st_, m in mult.items():
            rows.append((f"s{i}", f"{st_}1", round(2000.0 * c * m), 100.0))
    return pl.DataFrame(
        rows, schema=["store_id", "sku", "units", "exposure_days"], orient="row"
    ).with_columns(pl.col("units").cast(pl.Int64))


def _style_frame(seg: list[int], temps: list[float], scale: list[float]) -> pl.DataFrame:
    """Style-mix scores (not climate-adjusted) + the climate column, as the features hold them."""
    from stocktailor.clustering.style import fit_style_basis, style_raw, style_scores

    products = pl.DataFrame({"sku": ["A1", "B1", "C1", "D1"], "style": ["A", "B", "C", "D"]})
    ids = [f"s{i}" for i in range(len(seg))]
    climate = np.column_stack([np.array(temps), np.full(len(temps), np.nan)])
    raw = style_raw(_style_pairs(seg, temps, scale), products, ids, climate)
    assert raw is not None
    return style_scores(raw, fit_style_basis(raw)).with_columns(
        pl.Series("weather__temp_mean", temps)
    )


def test_style_mix_removes_climate_and_scale() -> None:
    from stocktailor.clustering.climate import adjust, fit_climate

    temps = [2.0, 6.0, 10.0, 14.0, 18.0, 22.0, 26.0, 30.0]
    seg = [0, 1, 0, 1, 1, 0, 1, 0]
    pcs = pl.selectors.starts_with("style_mix__")
    # weather only, very different store sizes: no mix signal left once climate is removed
    flat = _style_frame([0] * 8, temps, [1, 5, 1, 5, 1, 5, 1, 5])
    left = adjust(flat, fit_climate(flat)).select(pcs).to_numpy()
    assert float(np.abs(left).max()) < 0.01
    # without the adjustment the weather dominates the first axis
    assert abs(float(np.corrcoef(flat["style_mix__pc1"].to_numpy(), temps)[0, 1])) > 0.9
    # weather + a segment effect spread over the climates: the segments stay apart
    both = _style_frame(seg, temps, [1, 5, 1, 5, 1, 5, 1, 5])
    x = adjust(both, fit_climate(both)).select(pcs).to_numpy()
    g = np.array(seg) == 1
    gap = np.linalg.norm(x[g].mean(axis=0) - x[~g].mean(axis=0))
    assert gap > 5 * max(float(np.linalg.norm(x[g] - x[g].mean(axis=0), axis=1).max()), 1e-3)


def test_climate_slopes_within_clusters_keep_a_warm_segment() -> None:
    """A segment that lives only in warm places: slopes across all stores read it as climate,
    slopes within the clusters do not."""
    from stocktailor.clustering.climate import adjust, fit_climate

    temps = [2.0, 5.0, 8.0, 11.0, 14.0, 17.0, 20.0, 23.0, 26.0, 29.0]
    seg = [0, 0, 0, 0, 0, 0, 1, 1, 1, 1]  # the warm stores are the other segment
    frame = _style_frame(seg, temps, [1.0] * 10)
    pcs = pl.selectors.starts_with("style_mix__")
    g = np.array(seg) == 1

    def gap(fitted: pl.DataFrame) -> float:
        x = fitted.select(pcs).to_numpy()
        return float(np.linalg.norm(x[g].mean(axis=0) - x[~g].mean(axis=0)))

    across = gap(adjust(frame, fit_climate(frame)))
    within = gap(adjust(frame, fit_climate(frame, np.array(seg, dtype=np.int64))))
    true_gap = math.sqrt(0.25) * math.log(3.0)  # style C: 3x, a quarter of the units
    assert within > 0.7 * true_gap
    assert across < 0.5 * within


# ---------------------------------------------------------------- k choice and splits
def test_permutation_p_hand_worked() -> None:
    from stocktailor.clustering.splits import permutation_p as _permutation_p

    x = np.array([[0.0], [0.0], [10.0], [10.0]])
    rng = np.random.default_rng(0)
    # 6 ways to pick 2 of 4; {2,3} and its complement {0,1} are equally far apart
    assert _permutation_p(x, np.array([False, False, True, True]), rng) == pytest.approx(2 / 6)
    # a mixed pair is as far as 4 of the 6 relabellings -> p = 6/6
    assert _permutation_p(x, np.array([True, False, True, False]), rng) == pytest.approx(1.0)


def _split_frame(shift: float, seed: int = 0) -> pl.DataFrame:
    """Two behaviour groups of 10; the 'outlet' stores of group 0 sit ``shift`` apart."""
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(2):
        for j in range(10):
            outlet = g == 0 and j < 3
            rows.append(
                {
                    "store_id": f"s{g}{j}",
                    "style_mix__pc1": 6.0 * g + rng.normal(0, 0.3),
                    "style_mix__pc2": (shift if outlet else 0.0) + rng.normal(0, 0.3),
                    "format__format=outlet": 1.0 if outlet else 0.0,
                    "format__format=mall": 0.0 if outlet else 1.0,
                }
            )
    return pl.DataFrame(rows)


def test_attribute_split_only_when_behaviour_differs() -> None:
    base = {
        "k_max": 3,
        "selection": "silhouette",
        "random_state": 0,
        "split_attributes": ("format",),
    }
    cl = StoreClusterer(**base).fit(_split_frame(1.5))  # type: ignore[arg-type]
    assert cl.scores_.sort("silhouette")["k"][-1] == 2  # the silhouette alone picks 2
    assert cl.n_clusters_ == 3
    assert cl.splits_.height == 1
    assert cl.splits_["attribute"][0] == "format=outlet"
    assert cl.splits_["p_value"][0] <= 0.05
    lab = dict(cl.labels_.select("store_id", "cluster_id").iter_rows())
    assert lab["s00"] == lab["s01"] == lab["s02"] != lab["s03"]
    # no behaviour difference: the format level is not split off
    same = StoreClusterer(**base).fit(_split_frame(0.0))  # type: ignore[arg-type]
    assert same.n_clusters_ == 2
    assert same.splits_.is_empty()
    # a forced k is never split, nor with no split attributes
    assert StoreClusterer(n_clusters=2).fit(_split_frame(1.5)).n_clusters_ == 2
    none = StoreClusterer(**{**base, "split_attributes": ()}).fit(_split_frame(1.5))  # type: ignore[arg-type]
    assert none.n_clusters_ == 2


def test_replication_selection(tiny: tuple[Tables, dict[str, int]]) -> None:
    """k-means k choice: the largest k both half-windows reproduce; the 3 groups here."""
    tables, truth = tiny
    cl = StoreClusterer(k_max=6, selection="replication", random_state=0).fit(tables, AS_OF)
    assert cl.n_clusters_ == 3
    rep = dict(zip(cl.scores_["k"], cl.scores_["replication"], strict=True))
    assert rep[3] >= 0.7
    assert all(v < 0.7 for k, v in rep.items() if k > 3)
    lab = cl.labels_
    ari = adjusted_rand_score([truth[s] for s in lab["store_id"]], lab["cluster_id"].to_list())
    assert ari == pytest.approx(1.0)
    # ready features have no half-windows: falls back to bootstrap stability
    again = StoreClusterer(k_max=6, selection="replication", random_state=0, n_bootstrap=4).fit(
        cl.features_
    )
    assert again.scores_["replication"].null_count() == again.scores_.height
    assert again.scores_["stability"].null_count() == 0


def test_style_basis_projects_other_windows() -> None:
    tables, _ = _network(seed=3, days=70)
    full = build_store_features(tables, AS_OF, window_days=70)
    assert full.style_basis is not None
    same = build_store_features(tables, AS_OF, window_days=70, style_basis=full.style_basis)
    cols = [c for c in full.columns if c.startswith("style_mix")]
    assert cols and same.frame.select(cols).equals(full.frame.select(cols))
    half = build_store_features(tables, AS_OF, window_days=35, style_basis=full.style_basis)
    assert half.style_basis is full.style_basis
    # the same axes: a half window's scores track the full window's
    r = np.corrcoef(half.frame[cols[0]].to_numpy(), full.frame[cols[0]].to_numpy())[0, 1]
    assert r > 0.9


# ---------------------------------------------------------------- behaviour only, k rule, names
_ATTRIBUTE_COLUMNS = ("format", "area_sqm", "median_income")


def _permute_store_attributes(tables: Tables, seed: int) -> Tables:
    """The store attribute columns shuffled across the selling stores (independent of them)."""
    st_ = tables.stores
    sel = st_.filter(pl.col("kind") == "store")
    perm = np.random.default_rng(seed).permutation(sel.height)
    cols = [c for c in _ATTRIBUTE_COLUMNS if c in st_.columns]
    shuffled = sel.with_columns([pl.Series(c, sel[c].gather(perm)) for c in cols])
    return tables.replace(stores=pl.concat([shuffled, st_.filter(pl.col("kind") != "store")]))


def test_default_ignores_store_attributes(tiny: tuple[Tables, dict[str, int]]) -> None:
    """Ablation: the default clusters come from buying alone (attributes shuffled or dropped:
    the same labels); weighting an attribute in is what lets it matter."""
    tables, truth = tiny
    base = StoreClusterer(random_state=0).fit(tables, AS_OF)
    assert base.n_clusters_ == 3
    lab = base.labels_
    ari = adjusted_rand_score([truth[s] for s in lab["store_id"]], lab["cluster_id"].to_list())
    assert ari == pytest.approx(1.0)
    shuffled = _permute_store_attributes(tables, 1)
    assert StoreClusterer(random_state=0).fit(shuffled, AS_OF).labels_.equals(base.labels_)
    dropped = tables.replace(stores=tables.stores.drop(*_ATTRIBUTE_COLUMNS))
    assert StoreClusterer(random_state=0).fit(dropped, AS_OF).labels_.equals(base.labels_)
    # names and explanations never cite a store attribute the clusters were not formed on
    assert not base.profiles_.filter(
        pl.col("group").is_in(["format", "demographics"]) & (pl.col("rank") <= 4)
    ).height
    heavy = {"format": 3.0, "style_mix": 0.0, "category_mix": 0.0, "attribute_mix": 0.0}
    on = StoreClusterer(n_clusters=3, feature_weights=heavy, random_state=0)
    assert not on.fit(shuffled, AS_OF).labels_.equals(base.labels_)


def _row_tables(
    stores: list[dict[str, Any]],
    products: pl.DataFrame,
    sales: list[tuple[dt.date, str, str, int, float]],
    inv: list[tuple[dt.date, str, str, int]],
    **other: pl.DataFrame,
) -> Tables:
    """Tables from store dicts, ``(date, store_id, sku, units, revenue)`` sales and
    ``(date, store_id, sku, on_hand)`` inventory rows, and ``other`` tables as they are."""
    return Tables(
        stores=pl.DataFrame(stores),
        products=products,
        sales=pl.DataFrame(
            sales, schema=["date", "store_id", "sku", "units", "revenue"], orient="row"
        ),
        inventory=pl.DataFrame(inv, schema=["date", "store_id", "sku", "on_hand"], orient="row"),
        **other,
    )


def _segment_network(
    ratio: float, seed: int = 0, n_per: int = 8, days: int = 56
) -> tuple[Tables, dict[str, int]]:
    """Two segments of stores spread over climates; segment 1 buys styles 0-5 ``ratio`` times
    and styles 6-11 1/``ratio`` times as much as segment 0 (its style mix differs by
    ``ratio - 1``); styles 0-1 sell more in warm weather everywhere."""
    rng = np.random.default_rng(seed)
    styles = [f"T{j:02d}" for j in range(12)]
    products = pl.DataFrame(
        [
            {
                "sku": f"{s}-{size}",
                "style": s,
                "color": "black",
                "size": size,
                "category": "tops" if j < 6 else "bottoms",
                "full_price": 40.0,
                "unit_cost": 15.0,
            }
            for j, s in enumerate(styles)
            for size in ("S", "M", "L")
        ]
    )
    stores, sales, inv, weather, truth = [], [], [], [], {}
    skus = products["sku"].to_list()
    for g in range(2):
        for i in range(n_per):
            sid = f"G{g}{i:02d}"
            truth[sid] = g
            temp = float(rng.uniform(0.0, 30.0))
            stores.append(
                {"store_id": sid, "kind": "store", "latitude": 40.0, "longitude": -90.0 + i}
            )
            mult = [
                (ratio if j < 6 else 1.0 / ratio) ** g * math.exp(0.06 * (temp - 15) * (j < 2))
                for j in range(12)
            ]
            for d in range(days):
                date = START + dt.timedelta(days=d)
                weather.append({"date": date, "store_id": sid, "temp_c": temp, "precip_mm": 0.0})
                lam = np.repeat(np.array(mult) * 3.5, 3)
                units = rng.poisson(lam)
                for k in np.flatnonzero(units):
                    sales.append((date, sid, skus[k], int(units[k]), 40.0 * int(units[k])))
            inv.extend((START + dt.timedelta(days=days - 1), sid, k, 500) for k in skus)
    return _row_tables(stores, products, sales, inv, weather=pl.DataFrame(weather)), truth


@pytest.mark.parametrize("seed", [0, 1])
def test_segments_30_percent_apart_are_never_merged(seed: int) -> None:
    """Issue 12: two segments whose style mix differs by 30% stay apart (automatic k);
    the same stores with one mix form one cluster (the climate spread does not split them)."""
    tables, truth = _segment_network(1.3, seed=seed)
    as_of = START + dt.timedelta(days=55)
    cl = StoreClusterer(random_state=0).fit(tables, as_of)
    lab = cl.labels_
    ari = adjusted_rand_score([truth[s] for s in lab["store_id"]], lab["cluster_id"].to_list())
    assert cl.n_clusters_ == 2
    assert ari == pytest.approx(1.0)
    sep = dict(zip(cl.scores_["k"], cl.scores_["separation"], strict=True))
    assert sep[2] >= cl.min_mix_difference
    same, _ = _segment_network(1.0, seed=seed)
    assert StoreClusterer(random_state=0).fit(same, as_of).n_clusters_ == 1


def _apparel_chain(seed: int = 0) -> tuple[Tables, set[str]]:
    """15 stores, sizes S1-S5; 4 women-only stores range no men's styles, the others sell
    11-18% menswear; otherwise every store buys the same mix."""
    rng = np.random.default_rng(seed)
    styles = [(f"W{j}", "W") for j in range(8)] + [(f"M{j}", "M") for j in range(3)]
    sizes = ("S1", "S2", "S3", "S4", "S5")
    products = pl.DataFrame(
        [
            {
                "sku": f"{s}-{z}",
                "style": s,
                "color": "navy",
                "size": z,
                "category": "dresses" if g == "W" else "shirts",
                "full_price": 350.0,
                "unit_cost": 150.0,
                "gender": g,
            }
            for s, g in styles
            for z in sizes
        ]
    )
    women = {f"A{i:02d}" for i in range(4)}
    stores, sales, inv = [], [], []
    for i in range(15):
        sid = f"A{i:02d}"
        stores.append({"store_id": sid, "kind": "store", "latitude": 10.8, "longitude": 106.6})
        men_share = float(rng.uniform(0.11, 0.18))
        for s, g in styles:
            if g == "M" and sid in women:
                continue
            rate = (men_share / 3 if g == "M" else (1 - men_share) / 8) * 40.0 / len(sizes)
            for z in sizes:
                sku = f"{s}-{z}"
                inv.append((START + dt.timedelta(days=69), sid, sku, 200))
                for d in range(70):
                    u = int(rng.poisson(rate))
                    if u:
                        sales.append((START + dt.timedelta(days=d), sid, sku, u, 350.0 * u))
    return _row_tables(stores, products, sales, inv), women


def test_women_only_stores_separate_by_their_buying() -> None:
    """Issue 12: women-only stores (0% menswear vs 11-18%) form their own cluster, named so."""
    tables, women = _apparel_chain()
    cl = StoreClusterer(random_state=0).fit(tables, START + dt.timedelta(days=69))
    lab = cl.labels_
    ari = adjusted_rand_score([s in women for s in lab["store_id"]], lab["cluster_id"].to_list())
    assert ari == pytest.approx(1.0)
    cid = lab.filter(pl.col("store_id") == next(iter(women)))["cluster_id"].item()
    assert "menswear" in cl.names_[cid].lower() or "womenswear" in cl.names_[cid].lower()
    assert "menswear" in lab.filter(pl.col("cluster_id") == cid)["top_features"][0]


def test_cross_fit_distances_and_agglomeration_hand_worked() -> None:
    from stocktailor.clustering.selection import agglomerate, cross_fit_distances

    # two halves of the same 2 stores with opposite noise: the noise cancels in the product
    xa = np.array([[0.0, 0.1], [1.0, -0.1]])
    xb = np.array([[0.0, -0.1], [1.0, 0.1]])
    d = cross_fit_distances(xa, xb)
    assert d[0, 1] == pytest.approx(1.0 - 0.04)  # 1^2 + (0.2 x -0.2)
    assert np.diag(d) == pytest.approx([0.0, 0.0])
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    truth = np.repeat([0, 1, 2], 6)
    mu = centres[truth]
    a = mu + rng.normal(0, 0.05, mu.shape)
    b = mu + rng.normal(0, 0.05, mu.shape)
    labels, rows = agglomerate(a, b, 0.5)
    assert adjusted_rand_score(truth, labels) == pytest.approx(1.0)
    sep = {r[0]: r[4] for r in rows}
    assert sep[3] == pytest.approx(1.0, abs=0.1) and sep[2] is not None and sep[2] > 0.5
    # closer than min_difference: one group
    assert agglomerate(a * 0.2, b * 0.2, 0.5)[0].max() == 0
    # a single store stays alone only when singleton_factor x min_difference away
    far = np.vstack([a, [[3.0, 3.0]]])
    farb = np.vstack([b, [[3.0, 3.0]]])
    assert agglomerate(far, farb, 0.5)[0].max() == 3
    near = np.vstack([a, [[0.0, -0.75]]])
    nearb = np.vstack([b, [[0.0, -0.75]]])
    assert agglomerate(near, nearb, 0.5, singleton_factor=2.0)[0].max() == 2
    assert agglomerate(near, nearb, 0.5, singleton_factor=1.0)[0].max() == 3


def test_within_dispersion_hand_worked() -> None:
    from stocktailor.clustering.selection import within_dispersion

    # cluster 0: stores at -1 and +1 on both halves -> sum <a - mean, b - mean> = 2, dof 1
    # cluster 1: opposite noise on the halves (-0.5/+0.5 vs +0.5/-0.5) -> -0.5, dof 1
    # singleton cluster 2 adds nothing: (2 - 0.5) / 2
    xa = np.array([[-1.0], [1.0], [-0.5], [0.5], [9.0]])
    xb = np.array([[-1.0], [1.0], [0.5], [-0.5], [9.0]])
    labels = np.array([0, 0, 1, 1, 2])
    assert within_dispersion(xa, xb, labels) == pytest.approx(0.75)
    assert within_dispersion(xa, xb, np.array([0, 1, 2, 3, 4])) == 0.0
    # negative pooled dispersion (noise only) is floored at 0
    assert within_dispersion(xa[2:4], xb[2:4], np.array([0, 0])) == 0.0


def test_heterogeneity_margin_keeps_odd_store_in_its_segment() -> None:
    from stocktailor.clustering.selection import agglomerate

    # two segments 1.0 apart; each has 8 stores 0.12 off its mean in the plane (a store's own
    # taste, the same in both halves: no sampling noise) and one more store 0.22 off along a
    # third axis. 0.22 > 0.2, so without the heterogeneity credit that store is a cluster of
    # its own; with it (tau2 = 8 x 0.0144 / 7 ~ 0.016 on the 8 stores, credit
    # tau2 (1 + 1/8) ~ 0.019 > 0.22^2 - 0.2^2 = 0.0084) it is not
    ring = 0.12 * np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]] * 2, dtype=np.float64)
    seg = np.vstack([ring, [[0.0, 0.0, 0.22]]])
    x = np.vstack([seg, seg + np.array([1.0, 0.0, 0.0])])
    truth = np.repeat([0, 1], 9)
    labels, _ = agglomerate(x, x, 0.2)
    assert adjusted_rand_score(truth, labels) == pytest.approx(1.0)
    plain, _ = agglomerate(x, x, 0.2, heterogeneity=False)
    assert plain.max() + 1 == 4


def test_refine_moves_a_misplaced_store() -> None:
    from stocktailor.clustering.selection import refine

    x = np.array([[0.0], [0.1], [-0.1], [1.0], [1.1], [0.95]])
    size = np.ones(6)
    # store 5 (at 0.95) was put with the stores near 0
    out = refine(x, x, size, [[0, 1, 2, 5], [3, 4]])
    assert sorted(sorted(m) for m in out) == [[0, 1, 2], [3, 4, 5]]
    # nothing misplaced: unchanged
    assert sorted(sorted(m) for m in refine(x, x, size, [[0, 1, 2], [3, 4, 5]])) == [
        [0, 1, 2],
        [3, 4, 5],
    ]


def _profile(rows: list[tuple[int, str, float]]) -> pl.DataFrame:
    from stocktailor.clustering.labels import feature_group

    out = []
    for cid in sorted({r[0] for r in rows}):
        mine = sorted((r for r in rows if r[0] == cid), key=lambda r: -abs(r[2]))
        for rank, (_, feature, z) in enumerate(mine, start=1):
            out.append(
                {
                    "cluster_id": cid,
                    "feature": feature,
                    "label": feature,
                    "group": feature_group(feature),
                    "cluster_value": z,
                    "network_value": 0.0,
                    "z": z,
                    "rank": rank,
                }
            )
    return pl.DataFrame(out)


def test_names_unique_short_plain_no_repeated_stems() -> None:
    """Issue 18: "sandals: dresses, sandal, coastal" and "sandals: dresses, coastal, sandal";
    "outdoor: bottoms, sneaker, sneakers"."""
    from stocktailor.clustering.naming import MAX_NAME_WORDS, cluster_names, stems, top_features

    assert stems("sandals") == stems("sandal") == {"sandal"}
    assert stems("Sneakers") == stems("sneaker")
    assert stems("dresses") == {"dress"} and stems("accessories") == {"accessory"}
    assert stems("light on menswear") == {"menswear"}
    prof = _profile(
        [
            (1, "category_mix__sandals", 2.0),
            (1, "category_mix__dresses", 1.9),
            (1, "tag_mix__sandal", 1.8),
            (1, "tag_mix__coastal", 1.7),
            (2, "category_mix__sandals", 2.0),
            (2, "category_mix__dresses", 1.9),
            (2, "tag_mix__coastal", 1.8),
            (2, "tag_mix__sandal", 1.7),
            (3, "tag_mix__outdoor", 2.0),
            (3, "category_mix__bottoms", 1.5),
            (3, "tag_mix__sneaker", 1.4),
            (3, "category_mix__sneakers", 1.3),
            (4, "attribute_mix__gender=M", -4.0),
            (4, "attribute_mix__gender=U", 2.0),
            (5, "category_mix__bottoms", 0.1),
            (6, "category_mix__bottoms", -0.2),
            (7, "format__format=outlet", 3.0),
        ]
    )
    ids = [1, 2, 3, 4, 5, 6, 7]
    names = cluster_names(prof, ids)
    assert len(set(names.values())) == len(ids)
    for name in names.values():
        words = [w for w in name.replace(",", " ").split() if w != "&"]
        assert 1 <= len(words) <= MAX_NAME_WORDS, name
        seen: list[str] = []
        for w in words:
            s = stems(w)
            assert not (s & set(seen)), name
            seen.extend(s)
        assert ":" not in name and "#" not in name
    assert names[1] == "Sandals & dresses"
    assert names[2] != names[1]
    assert names[3] == "Outdoor & bottoms"
    assert names[4] == "Unisex, light on menswear"
    # garment nouns in the plural
    more = _profile(
        [
            (1, "attribute_mix__price_band=high", 2.0),
            (1, "tag_mix__bright-sneaker", 1.5),
            (2, "tag_mix__wool-coat", 2.0),
            (2, "tag_mix__denim", 1.5),
        ]
    )
    assert cluster_names(more, [1, 2]) == {
        1: "Premium & bright sneakers",
        2: "Wool coats & denim",
    }
    assert names[5] == "Core range" and names[6] == "Core range 2"
    assert "outlet" not in names[7].lower()  # store attributes do not name clusters
    # the explanation starts with what the name says, without repeated stems either
    top = top_features(prof, ids, 4)
    assert top[1].startswith("sandals (+2.0 sd); dresses (+1.9 sd); coastal")
    assert top[3].count("sneaker") == 1  # the tag (now worded "sneakers"), not both
    # kept names (re-clustering) win and stay unique
    kept = cluster_names(prof, ids, keep={2: "Sandals & dresses"})
    assert kept[2] == "Sandals & dresses" and kept[1] != kept[2]


def test_names_say_different_things_whatever_the_order() -> None:
    """Issue 18: "sandals: dresses, sandal, coastal" and "sandals: dresses, coastal, sandal" —
    two names with the same words in another order (or plural) are the same name."""
    from stocktailor.clustering.naming import MAX_NAME_WORDS, cluster_names, stems

    prof = _profile(
        [
            (1, "category_mix__sandals", 2.0),
            (1, "category_mix__dresses", 1.9),
            (2, "category_mix__sandals", 2.0),
            (2, "category_mix__dresses", 1.9),
            (3, "category_mix__sandals", 2.0),
            (3, "category_mix__dresses", 1.9),
            (4, "category_mix__dresses", 2.0),
            (4, "tag_mix__sandal", 1.9),
            (5, "attribute_mix__gender=U", 2.0),
            (5, "attribute_mix__gender=M", -4.0),
            (6, "attribute_mix__gender=U", 2.0),
            (6, "attribute_mix__gender=M", -4.0),
            (7, "attribute_mix__gender=U", 2.0),
            (7, "attribute_mix__gender=M", -4.0),
            (8, "attribute_mix__gender=U", 2.0),
            (8, "attribute_mix__gender=M", -4.0),
        ]
    )
    names = cluster_names(prof, [1, 2, 3, 4, 5, 6, 7, 8])
    assert names == {
        1: "Sandals & dresses",
        2: "Sandals",
        3: "Dresses",
        # the same two things in the other order: the first cluster's name, numbered
        4: "Sandals & dresses 2",
        5: "Unisex, light on menswear",
        6: "Light on menswear",
        7: "Unisex",
        # every candidate taken: the best one under four words, numbered
        8: "Light on menswear 2",
    }
    said = [frozenset(stems(n.replace("light on", "light_on"))) for n in names.values()]
    assert len(set(said)) == len(said)
    assert all(
        len(n.replace(",", " ").replace("&", " ").split()) <= MAX_NAME_WORDS for n in names.values()
    )
    # a kept name reordered is taken too
    kept = cluster_names(prof, [1, 4], keep={1: "Dresses & sandals"})
    assert kept == {1: "Dresses & sandals", 4: "Dresses"}
