"""Tests of size curves: in-stock only, shrinkage toward the cluster."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from stocktailor.contract import Tables
from stocktailor.sizecurves import SizeCurveEstimator, size_group_of, total_variation

D = dt.date
SIZES = ["S", "M", "L"]


def _tables(sales: dict[tuple[str, str], list[int]], stock: dict[tuple[str, str], int]) -> Tables:
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
            "sku": [f"t-{z}" for z in SIZES],
            "style": ["t"] * 3,
            "color": ["c"] * 3,
            "size": SIZES,
            "category": ["tops"] * 3,
            "full_price": [10.0] * 3,
            "unit_cost": [4.0] * 3,
            "size_order": [1, 2, 3],
        }
    )
    rows = []
    for (store, size), daily in sales.items():
        for i, u in enumerate(daily):
            if u:
                rows.append((D(2024, 1, 2 + i), store, f"t-{size}", u, 10.0 * u))
    s = pl.DataFrame(
        rows,
        schema={
            "date": pl.Date,
            "store_id": pl.String,
            "sku": pl.String,
            "units": pl.Int64,
            "revenue": pl.Float64,
        },
        orient="row",
    )
    inv = pl.DataFrame(
        [(D(2024, 1, 1), st, f"t-{z}", q) for (st, z), q in stock.items()],
        schema={"date": pl.Date, "store_id": pl.String, "sku": pl.String, "on_hand": pl.Int64},
        orient="row",
    )
    return Tables(stores, products, s, inv)


def _curve(est: SizeCurveEstimator, level: str, id_: str) -> dict[str, float]:
    c = est.curves_.filter((pl.col("level") == level) & (pl.col("id") == id_))
    return dict(zip(c["size"].to_list(), c["share"].to_list(), strict=True))


def test_size_group_inferred() -> None:
    p = pl.DataFrame({"size": ["M", "42", "OS"], "category": ["tops", "shoes", "bags"]})
    assert size_group_of(p).to_list() == ["apparel", "footwear", "bags"]


def test_curve_recovers_shares_with_plenty_of_data() -> None:
    days = 20
    sales = {("A", "S"): [1] * days, ("A", "M"): [2] * days, ("A", "L"): [1] * days}
    stock = {("A", z): 1000 for z in SIZES}
    est = SizeCurveEstimator(prior_strength=1.0).fit(_tables(sales, stock), D(2024, 1, 21))
    c = _curve(est, "store", "A")
    assert c["S"] == pytest.approx(0.25, abs=0.02)
    assert c["M"] == pytest.approx(0.5, abs=0.02)
    assert sum(c.values()) == pytest.approx(1.0)


def test_out_of_stock_size_is_not_low_demand() -> None:
    # M sells 2/day but only has 4 units: sold out on day 2. Counting sales would give M a
    # tiny share; in-stock days only give the right one.
    days = 20
    sales = {("A", "S"): [1] * days, ("A", "M"): [2, 2] + [0] * (days - 2), ("A", "L"): [1] * days}
    stock = {("A", "S"): 1000, ("A", "M"): 4, ("A", "L"): 1000}
    est = SizeCurveEstimator(prior_strength=0.1).fit(_tables(sales, stock), D(2024, 1, 21))
    c = _curve(est, "store", "A")
    assert c["M"] > 0.4
    naive_m = 4 / (20 + 4 + 20)
    assert c["M"] > 3 * naive_m


def test_thin_store_shrinks_toward_cluster() -> None:
    days = 30
    sales = {
        ("A", "S"): [1] * days,
        ("A", "M"): [2] * days,
        ("A", "L"): [1] * days,
        ("B", "L"): [1] + [0] * (days - 1),
    }
    stock = {(s, z): 1000 for s in ("A", "B") for z in SIZES}
    t = _tables(sales, stock)
    strong = SizeCurveEstimator(prior_strength=50.0).fit(t, D(2024, 1, 31))
    weak = SizeCurveEstimator(prior_strength=0.01).fit(t, D(2024, 1, 31))
    net = _curve(strong, "network", "network")
    b_strong, b_weak = _curve(strong, "store", "B"), _curve(weak, "store", "B")
    # With a strong prior the thin store looks like the pooled curve, with a weak one like
    # its own single L sale.
    assert abs(b_strong["M"] - net["M"]) < 0.1
    assert b_weak["L"] > 0.8


def test_total_variation() -> None:
    a = pl.DataFrame({"k": ["x", "x"], "size": ["S", "M"], "share": [0.5, 0.5]})
    b = pl.DataFrame({"k": ["x", "x"], "size": ["S", "L"], "share": [0.25, 0.75]})
    tv = total_variation(a, b, ["k"])
    assert tv["tv"].to_list() == [pytest.approx(0.75)]


def _many_stores(curves: dict[str, list[float]], units: int, seed: int) -> Tables:
    """Stores selling ``units`` a day of style t with their size ``curves`` (Poisson)."""
    rng = np.random.default_rng(seed)
    stores = list(curves)
    t = _tables({}, {})
    rows = []
    for st_ in stores:
        for d in range(28):
            for z, share in zip(SIZES, curves[st_], strict=True):
                u = int(rng.poisson(units * share))
                if u:
                    rows.append((D(2024, 1, 2) + dt.timedelta(days=d), st_, f"t-{z}", u, 10.0 * u))
    sales = pl.DataFrame(rows, schema=t.sales.schema, orient="row")
    inv = pl.DataFrame(
        [(D(2024, 1, 1), st_, f"t-{z}", 100_000) for st_ in stores for z in SIZES],
        schema=t.inventory.schema,
        orient="row",
    )
    shops = pl.DataFrame(
        {
            "store_id": stores,
            "kind": ["store"] * len(stores),
            "latitude": [0.0] * len(stores),
            "longitude": [0.0] * len(stores),
        }
    )
    return Tables(shops, t.products, sales, inv)


def test_empirical_bayes_prior_follows_how_alike_stores_are() -> None:
    same = {key: [0.25, 0.5, 0.25] for key in ("A", "B", "C", "D", "E", "F")}
    alike = SizeCurveEstimator(tilt=False).fit(_many_stores(same, 8, 0), D(2024, 1, 29))
    odd = {
        "A": [0.6, 0.3, 0.1],
        "B": [0.1, 0.3, 0.6],
        "C": [0.2, 0.6, 0.2],
        "D": [0.45, 0.1, 0.45],
        "E": [0.7, 0.2, 0.1],
        "F": [0.1, 0.2, 0.7],
    }
    unlike = SizeCurveEstimator(tilt=False).fit(_many_stores(odd, 8, 0), D(2024, 1, 29))
    k_alike = alike.prior_strength_.filter(pl.col("level") == "store")["kappa"].item()
    k_unlike = unlike.prior_strength_.filter(pl.col("level") == "store")["kappa"].item()
    assert k_alike > 10 * k_unlike
    # Unlike stores keep their own curves.
    assert _curve(unlike, "store", "A")["S"] > 0.5
    assert _curve(unlike, "store", "B")["L"] > 0.5


def test_tilt_finds_a_thin_store_size_skew() -> None:
    # Stores skewed toward small or large sizes, 2 units a day: the tilted estimate is
    # closer to each store's truth than the chain curve, on average and for most stores.
    base = np.log(np.array([0.25, 0.5, 0.25]))
    skews = {"A": -0.8, "B": -0.4, "C": 0.0, "D": 0.4, "E": 0.8, "F": -0.6, "G": 0.6}
    curves = {}
    for st_, b in skews.items():
        w = np.exp(base + b * np.array([-1.0, 0.0, 1.0]))
        curves[st_] = (w / w.sum()).tolist()
    est = SizeCurveEstimator().fit(_many_stores(curves, 2, 1), D(2024, 1, 29))
    truth = pl.DataFrame(
        [
            (st_, "apparel", z, c)
            for st_, cs in curves.items()
            for z, c in zip(SIZES, cs, strict=True)
        ],
        schema=["store_id", "size_group", "size", "share"],
        orient="row",
    )
    chain = (
        est.curves_.filter(pl.col("level") == "network")
        .select("size_group", "size", "share")
        .join(truth.select("store_id").unique(), how="cross")
    )
    key = ["store_id", "size_group"]
    tv_s = total_variation(est.store_curves(), truth, key)["tv"].to_numpy()
    tv_c = total_variation(chain, truth, key)["tv"].to_numpy()
    assert tv_s.mean() < 0.45 * tv_c.mean()
    assert (tv_s < tv_c).mean() >= 5 / 7
    # Skews are recovered in order.
    big = {s: _curve(est, "store", s)["L"] for s in skews}
    assert big["A"] < big["C"] < big["E"]


# ------------------------------------------------------------------ shapes that used to crash


def test_zero_tracked_days_gives_uniform_curves() -> None:
    # One snapshot at the as-of day and no sales before it: nothing is tracked, yet the fit
    # returns a curve (uniform over the ladder) instead of failing on an empty array.
    t = _tables({}, {("A", z): 3 for z in SIZES})
    t = t.replace(
        inventory=t.inventory.with_columns(pl.lit(D(2024, 1, 21)).alias("date")),
        sales=pl.DataFrame(
            [(D(2024, 1, 21), "B", "t-M", 1, 10.0)], schema=t.sales.schema, orient="row"
        ),
    )
    est = SizeCurveEstimator().fit(t, D(2024, 1, 21))
    net = _curve(est, "network", "network")
    assert net == pytest.approx({"S": 1 / 3, "M": 1 / 3, "L": 1 / 3})


def test_single_snapshot_at_as_of_is_back_cast() -> None:
    # The common export: history of sales and one stock count at the as-of day.
    days = 20
    sales = {("A", "S"): [1] * days, ("A", "M"): [2] * days, ("A", "L"): [1] * days}
    t = _tables(sales, {("A", z): 5 for z in SIZES})
    t = t.replace(inventory=t.inventory.with_columns(pl.lit(D(2024, 1, 21)).alias("date")))
    c = _curve(SizeCurveEstimator(prior_strength=1.0).fit(t, D(2024, 1, 21)), "store", "A")
    assert c["M"] == pytest.approx(0.5, abs=0.03)


def test_one_size_style_and_unsold_style() -> None:
    t = _tables({("A", "M"): [1] * 10}, {(s, z): 10 for s in ("A", "B") for z in SIZES})
    one = t.products.filter(pl.col("size") == "M").with_columns(pl.lit("one").alias("style"))
    unsold = t.products.with_columns(
        ("u-" + pl.col("size")).alias("sku"), pl.lit("u").alias("style")
    )
    t = t.replace(
        products=pl.concat([one, unsold]),
        inventory=t.inventory.filter(pl.col("sku") == "t-M"),
    )
    est = SizeCurveEstimator().fit(t, D(2024, 1, 21))
    shares = est.curves_.group_by("level", "id", "size_group").agg(pl.col("share").sum())
    assert shares["share"].to_list() == pytest.approx([1.0] * shares.height)


def test_store_without_inventory_rows() -> None:
    # B sells but has no inventory rows at all: it is untracked, and the fit still works.
    days = 10
    sales = {("A", "M"): [1] * days, ("B", "M"): [2] * days}
    t = _tables(sales, {("A", z): 50 for z in SIZES})
    est = SizeCurveEstimator().fit(t, D(2024, 1, 11))
    assert set(est.curves_.filter(pl.col("level") == "store")["id"]) == {"A"}
