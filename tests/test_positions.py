from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from stocktailor.config import ConstraintsConfig, EconomicsConfig, Settings
from stocktailor.contract import Tables
from stocktailor.positions import core_sizes, haversine_km, lane_matrices, lanes_for, position_at

D0 = dt.date(2026, 3, 1)


def _d(k: int) -> dt.date:
    return D0 + dt.timedelta(days=k)


def _tables(
    inventory: pl.DataFrame, sales: pl.DataFrame, lanes: pl.DataFrame | None = None
) -> Tables:
    stores = pl.DataFrame(
        {
            "store_id": ["A", "B", "C"],
            "kind": ["store", "store", "warehouse"],
            "latitude": [47.6062, 34.0195, 40.0],
            "longitude": [-122.3321, -118.4912, -100.0],
        }
    )
    products = pl.DataFrame(
        {
            "sku": ["s-S", "s-M", "s-L"],
            "style": ["s"] * 3,
            "color": ["red"] * 3,
            "size": ["S", "M", "L"],
            "category": ["tops"] * 3,
            "full_price": [10.0] * 3,
            "unit_cost": [4.0] * 3,
            "size_order": [1, 2, 3],
        }
    )
    return Tables(stores=stores, products=products, sales=sales, inventory=inventory, lanes=lanes)


def _sales(rows: list[tuple[dt.date, str, str, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={"date": pl.Date, "store_id": pl.String, "sku": pl.String, "units": pl.Int64},
        orient="row",
    ).with_columns((pl.col("units") * 10.0).alias("revenue"))


def _inv(rows: list[tuple[dt.date, str, str, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={"date": pl.Date, "store_id": pl.String, "sku": pl.String, "on_hand": pl.Int64},
        orient="row",
    ).with_columns(pl.lit(0, dtype=pl.Int64).alias("in_transit"))


def test_position_subtracts_sales_after_latest_snapshot() -> None:
    inv = _inv([(_d(0), "A", "s-M", 10), (_d(-30), "A", "s-M", 3), (_d(0), "B", "s-M", 2)])
    sales = _sales(
        [
            (_d(-1), "A", "s-M", 5),
            (_d(1), "A", "s-M", 3),
            (_d(2), "A", "s-M", -1),
            (_d(5), "A", "s-M", 9),
            (_d(1), "B", "s-M", 4),
        ]
    )
    pos = position_at(
        _tables(inv, sales),
        _d(3),
        ConstraintsConfig(presentation_minimum=1, min_days_before_retransfer=0),
    )
    a = pos.filter(pl.col("store_id") == "A").row(0, named=True)
    assert a["on_hand"] == 10 - 3 + 1  # sale on day 5 is after as-of; return adds back
    assert a["movable"] == 8 - 1
    b = pos.filter(pl.col("store_id") == "B").row(0, named=True)
    assert b["on_hand"] == 0 and b["movable"] == 0  # floored, never negative
    assert pos.columns == ["store_id", "sku", "on_hand", "in_transit", "movable"]


def test_recent_receipts_do_not_move() -> None:
    # snapshot day -20: 2 units; day -5: 9 units with 1 sold between -> 8 received on/after -20
    inv = _inv([(_d(-20), "A", "s-M", 2), (_d(-5), "A", "s-M", 9), (_d(-40), "A", "s-M", 2)])
    sales = _sales([(_d(-10), "A", "s-M", 1)])
    t = _tables(inv, sales)
    pos = position_at(
        t, _d(0), ConstraintsConfig(presentation_minimum=1, min_days_before_retransfer=14)
    )
    row = pos.row(0, named=True)
    assert row["on_hand"] == 9
    assert row["movable"] == 0  # 9 - 1 presentation - 8 received
    old = position_at(
        t, _d(0), ConstraintsConfig(presentation_minimum=1, min_days_before_retransfer=3)
    )
    assert old.row(0, named=True)["movable"] == 8


def test_keep_core_size_run_keeps_one_unit_of_core_sizes() -> None:
    inv = _inv([(_d(0), "A", "s-S", 3), (_d(0), "A", "s-M", 3), (_d(0), "A", "s-L", 3)])
    t = _tables(inv, _sales([]))
    c = ConstraintsConfig(
        presentation_minimum=0, keep_core_size_run=True, min_days_before_retransfer=0
    )
    pos = {r["sku"]: r["movable"] for r in position_at(t, _d(0), c).iter_rows(named=True)}
    assert pos == {"s-S": 3, "s-M": 2, "s-L": 3}
    pos2 = position_at(
        t, _d(0), Settings(constraints=c.model_copy(update={"keep_core_size_run": False}))
    )
    assert pos2["movable"].to_list() == [3, 3, 3]


def test_core_sizes_one_rule() -> None:
    products = pl.DataFrame(
        {
            "sku": ["a-S", "a-M", "a-L", "a-XL", "b-M", "b-L", "c-OS", "d-40", "d-41", "d-42"],
            "style": ["a", "a", "a", "a", "b", "b", "c", "d", "d", "d"],
            "color": ["red"] * 4 + ["blue"] * 2 + ["black"] + ["tan"] * 3,
            "size": ["S", "M", "L", "XL", "M", "L", "OS", "40", "41", "42"],
            "size_order": [2, 3, 4, 5, 3, 4, None, 40, 41, 42],
        }
    )
    # three or more sizes: all but the smallest and the largest; one or two sizes: all core
    assert core_sizes(products) == {"a-M", "a-L", "b-M", "b-L", "c-OS", "d-41"}
    # without size_order the size labels order the run
    assert core_sizes(products.drop("size_order").filter(pl.col("style") == "d")) == {"d-41"}
    assert core_sizes(products.head(0)) == set()


def test_haversine_known_distance() -> None:
    # Seattle - Santa Monica about 1,540 km
    km = haversine_km(47.6062, -122.3321, 34.0195, -118.4912)
    assert 1500 < float(km) < 1580
    assert float(haversine_km(10.0, 20.0, 10.0, 20.0)) == 0.0


def test_lanes_derived_and_given() -> None:
    lanes = pl.DataFrame(
        {
            "from_id": ["A"],
            "to_id": ["B"],
            "cost_per_unit": [9.0],
            "cost_per_shipment": [99.0],
            "lead_time_days": [7],
        }
    )
    t = _tables(_inv([(_d(0), "A", "s-M", 1)]), _sales([]), lanes)
    e = EconomicsConfig()
    out = lanes_for(t, e)
    assert out.height == 6
    ab = out.filter((pl.col("from_id") == "A") & (pl.col("to_id") == "B")).row(0, named=True)
    assert (ab["cost_per_unit"], ab["cost_per_shipment"], ab["lead_time_days"]) == (9.0, 99.0, 7)
    ba = out.filter((pl.col("from_id") == "B") & (pl.col("to_id") == "A")).row(0, named=True)
    km = float(haversine_km(34.0195, -118.4912, 47.6062, -122.3321))
    assert ba["cost_per_unit"] == pytest.approx(
        e.lane_cost_per_unit_base + e.lane_cost_per_unit_per_km * km
    )
    assert ba["cost_per_shipment"] == pytest.approx(
        e.lane_cost_per_shipment_base + e.lane_cost_per_shipment_per_km * km
    )
    assert ba["lead_time_days"] == e.lane_lead_time_base_days + int(km // e.lane_km_per_day)
    unit, _, _ = lane_matrices(t, e, ["A", "B"])
    assert np.diag(unit).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="stores: no row for store_id 'Z'"):
        lane_matrices(t, e, ["A", "Z"])
