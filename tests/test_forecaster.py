"""Tests of the selecting forecaster (:class:`stocktailor.demand.DemandForecaster`)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from stocktailor.config import DemandConfig
from stocktailor.contract import Tables
from stocktailor.demand import DemandForecaster
from stocktailor.synth import generate
from test_demand import _network

CFG = DemandConfig(num_boost_round=20, min_data_in_leaf=5, max_train_rows=5000)


def _shuffled(t: Tables, seed: int) -> Tables:
    def shuf(df: pl.DataFrame, s: int) -> pl.DataFrame:
        return df.sample(fraction=1.0, shuffle=True, seed=seed + s)

    return t.replace(
        sales=shuf(t.sales, 1),
        inventory=shuf(t.inventory, 2),
        products=shuf(t.products, 3),
        stores=shuf(t.stores, 4),
    )


def test_validation_has_one_chosen_candidate_per_group() -> None:
    t, as_of = _network(n_weeks=20)
    f = DemandForecaster.from_config(CFG).fit(t, as_of)
    v = f.validation_
    assert {"group", "candidate", "holdout_wape", "holdout_bias", "chosen"} <= set(v.columns)
    per = v.group_by("level", "group").agg(pl.col("chosen").sum())
    assert (per["chosen"] == 1).all()


@pytest.mark.slow
def test_row_order_does_not_change_the_forecast() -> None:
    net = generate("default", 0, n_stores=12, n_sku_sizes=120)
    t, as_of = net.tables, net.as_of
    a = DemandForecaster.from_config(DemandConfig()).fit(t, as_of)
    b = DemandForecaster.from_config(DemandConfig()).fit(_shuffled(t, 0), as_of)
    pa = a.predict().sort("store_id", "sku", "week_start")
    pb = b.predict().sort("store_id", "sku", "week_start")
    assert pa.select("store_id", "sku", "week_start").equals(
        pb.select("store_id", "sku", "week_start")
    )
    for c in ("mean", "var", "p10", "p50", "p90"):
        diff = (pa[c] - pb[c]).abs().max()
        assert diff is not None and float(diff) < 1e-9, c  # type: ignore[arg-type]
    assert a.choice_.select("group", "candidate", "effects").equals(
        b.choice_.select("group", "candidate", "effects")
    )


@pytest.mark.parametrize("max_series", [None, 1])
def test_single_snapshot_at_as_of_still_validates(max_series: int | None) -> None:
    """One stock snapshot at the as-of date (the common export): the holdout origins track
    the back-cast positions, so candidates are scored on real forecasts, not on zeros; also
    when only a sample of the styles is validated (large networks)."""
    t, as_of = _network(n_weeks=20, sold_out_store=False)
    t = t.replace(inventory=t.inventory.filter(pl.col("date") == as_of))
    cfg = CFG if max_series is None else CFG.model_copy(update={"validation_max_series": 1})
    f = DemandForecaster.from_config(cfg).fit(t, as_of)
    fin = f.validation_.filter(pl.col("level") == "category|cluster")
    assert fin.height > 1
    # Before the fix every candidate predicted 0 at the origins: WAPE 1, bias -1.
    assert (fin["holdout_wape"] < 0.5).all()
    assert (fin["holdout_bias"].abs() < 0.5).all()


def test_horizon_without_season_end_comes_from_the_setting() -> None:
    t, as_of = _network(n_weeks=12)
    t = t.replace(products=t.products.drop("season_end"))
    for weeks in (5, 13):
        fc = DemandForecaster.from_config(CFG, horizon_weeks=weeks).fit(t, as_of).predict()
        assert fc["week_start"].n_unique() == weeks
        assert fc["week_start"].max() == as_of + dt.timedelta(days=1 + 7 * (weeks - 1))


def test_a_pair_neither_stocked_nor_sold_for_a_year_is_not_forecast() -> None:
    """A store that stopped carrying a SKU a year ago (the held-out weekly chain's dormant
    departments): its empty shelf is not a stockout whose old rate goes on forever."""
    t, as_of = _network(n_weeks=60, sold_out_store=False)
    start = as_of - dt.timedelta(days=7 * 60 - 1)
    gone = (pl.col("store_id") == "C") & (pl.col("sku") == "u-M")
    t = t.replace(
        # C sold u-M in the first three weeks only, and the one stock file (at the as-of day)
        # has no row for it: it held none then.
        sales=t.sales.filter(~gone | (pl.col("date") < start + dt.timedelta(days=21))),
        inventory=t.inventory.filter((pl.col("date") == as_of) & ~gone),
    )
    fc = DemandForecaster.from_config(CFG).fit(t, as_of).predict()
    dropped = fc.filter(gone)
    assert dropped["mean"].sum() == 0.0
    assert dropped["p90"].sum() == 0.0
    # the same SKU at a store that carries it, and every other pair, is forecast as before
    assert fc.filter((pl.col("store_id") == "A") & (pl.col("sku") == "u-M"))["mean"].min() > 0.5
    assert (
        fc.filter(~gone)["mean"].sum()
        > 0.8 * 7 * (3.0 + 1.5 + 1.0) * 2.5 * fc["week_start"].n_unique()
    )
