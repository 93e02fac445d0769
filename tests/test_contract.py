"""The data contract: parsing, defaults, size ladders and error messages (in memory)."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _datafolder import TINY
from stocktailor.contract import (
    TABLE_SPECS,
    ContractError,
    Tables,
    resolve_price_plan,
    size_order,
    validate_tables,
)


def raw_tables(**overrides: str) -> dict[str, pl.DataFrame]:
    """The tiny network as all-string frames (as read from CSV), with some tables replaced."""
    texts = {**TINY, **overrides}
    return {n: pl.read_csv(io.StringIO(t), infer_schema=False) for n, t in texts.items()}


def validate(raw: dict[str, pl.DataFrame], **kwargs: Any) -> Tables:
    sources = {n: f"{n}.csv" for n in raw}
    return validate_tables(raw, sources=sources, **kwargs)


def error_of(raw: dict[str, pl.DataFrame], **kwargs: Any) -> ContractError:
    with pytest.raises(ContractError) as err:
        validate(raw, **kwargs)
    return err.value


def test_dtypes_follow_the_specs() -> None:
    tables = validate(raw_tables())
    for name, frame in tables.items():
        spec = TABLE_SPECS[name]
        assert frame.columns[: len(spec.columns)] == list(spec.column_names)
        for col in spec.columns:
            assert frame.schema[col.name] == col.dtype, (name, col.name)


def test_defaults_are_filled() -> None:
    tables = validate(raw_tables(), salvage_fraction=0.25)
    p = tables.products
    # explicit salvage kept (10), missing ones = 0.25 x full price
    assert p["salvage_value"].to_list() == [10.0, 10.0, 10.0, 22.5, 22.5]
    assert p["size_order"].to_list() == [2, 1, 3, 2, 1]  # M, S, L | 41, 40
    assert tables.inventory["in_transit"].to_list() == [0, 0, 2, 0, 0]
    # weather after the latest sales date (2024-03-03) is a forecast
    assert tables.weather is not None
    assert tables.weather["is_forecast"].to_list() == [False, True, False]
    assert tables.assortment is not None
    assert tables.assortment["allowed"].to_list() == [False, True]
    # optional spec columns missing from the file exist as nulls
    assert tables.events is not None
    assert tables.events["scope_id"].to_list() == ["Brooklyn", None]


def test_missing_optional_columns_get_defaults() -> None:
    raw = raw_tables()
    raw["inventory"] = raw["inventory"].drop("in_transit")
    raw["products"] = raw["products"].drop("salvage_value", "season_end")
    raw["weather"] = raw["weather"].with_columns(is_forecast=pl.lit("yes"))
    tables = validate(raw, season_end=dt.date(2024, 8, 1), salvage_fraction=0.5)
    assert tables.inventory["in_transit"].to_list() == [0] * 5
    assert tables.products["salvage_value"].to_list() == [20.0, 20.0, 20.0, 45.0, 45.0]
    assert set(tables.products["season_end"].to_list()) == {dt.date(2024, 8, 1)}
    assert tables.weather is not None
    assert tables.weather["is_forecast"].to_list() == [True, True, True]  # given, not derived


def test_season_end_cell_missing_without_default() -> None:
    # A never-ending assortment: without a setting no season end is invented.
    text = TINY["products"].replace(",2024-06-30,M,bright-sneaker\nSH1-BLK-40", ",,M,x\nSH1-BLK-40")
    kept = validate(raw_tables(products=text))
    assert kept.products["season_end"][3] is None
    assert kept.products["season_end"][0] == dt.date(2024, 6, 30)
    raw = raw_tables()
    raw["products"] = raw["products"].drop("season_end")
    assert validate(raw).products["season_end"].null_count() == 5
    tables = validate(raw_tables(products=text), season_end=dt.date(2024, 9, 1))
    assert tables.products["season_end"][3] == dt.date(2024, 9, 1)
    assert tables.products["season_end"][0] == dt.date(2024, 6, 30)


def test_extra_columns_are_typed_attributes() -> None:
    raw = raw_tables()
    raw["stores"] = raw["stores"].with_columns(
        zip=pl.Series(["02139", "11201", "07102"]),
        median_income=pl.Series(["61000", "72000.5", ""]),
        opened=pl.Series(["2019-04-01", "2020-01-15", "2001-01-01"]),
        staff=pl.Series(["12", "8", " 30 "]),
        outlet=pl.Series(["TRUE", "false", "False"]),
    )
    stores = validate(raw).stores
    assert stores.schema["zip"] == pl.String  # leading zeros stay text
    assert stores.schema["median_income"] == pl.Float64
    assert stores["median_income"].to_list() == [61000.0, 72000.5, None]
    assert stores.schema["opened"] == pl.Date
    assert stores["staff"].to_list() == [12, 8, 30]
    assert stores["outlet"].to_list() == [True, False, False]
    assert stores.schema["climate_zone"] == pl.String


@pytest.mark.parametrize(
    ("cell", "expected"),
    [("true", True), ("FALSE", False), ("1", True), ("0", False), ("Yes", True), (" no ", False)],
)
def test_boolean_spellings(cell: str, expected: bool) -> None:
    text = TINY["assortment"].replace("M,no", f"M,{cell}")
    assortment = validate(raw_tables(assortment=text)).assortment
    assert assortment is not None
    assert assortment["allowed"][0] is expected


def test_integers_written_as_whole_floats_are_accepted() -> None:
    text = TINY["sales"].replace(",2,80", ",2.0,80").replace(",3,108", ", 3 ,108")
    assert validate(raw_tables(sales=text)).sales["units"].to_list() == [2, 1, 1, -1, 3]


@pytest.mark.parametrize(
    ("sizes", "expected"),
    [
        (["M", "XS", "L", "s", "XXL"], {"XS": 1, "s": 2, "M": 3, "L": 4, "XXL": 5}),
        (["XXL", "2XL", "XL"], {"XL": 1, "XXL": 2, "2XL": 2}),
        (["42", "36", "40.5", "45"], {"36": 1, "40.5": 2, "42": 3, "45": 4}),
        (["S3", "S1", "S10", "S2"], {"S1": 1, "S2": 2, "S3": 3, "S10": 4}),
        (["One Size"], {"One Size": 1}),
        (["32/34", "30/32", "34/34"], {"32/34": 1, "30/32": 2, "34/34": 3}),  # appearance
        (["S", "M", "42"], {"S": 1, "M": 2, "42": 3}),  # mixed ladders: appearance
    ],
)
def test_size_order_ladders(sizes: list[str], expected: dict[str, int]) -> None:
    assert size_order(sizes) == expected


def test_size_order_given_in_file_is_kept_and_gaps_filled() -> None:
    raw = raw_tables()
    raw["products"] = raw["products"].with_columns(size_order=pl.Series(["7", "", "9", "", ""]))
    p = validate(raw).products
    assert p["size_order"].to_list() == [7, 1, 9, 2, 1]


def test_parquet_typed_input() -> None:
    raw = raw_tables()
    raw["sales"] = pl.DataFrame(
        {
            "date": [dt.datetime(2024, 3, 1, 0, 0), dt.datetime(2024, 3, 2, 0, 0)],
            "store_id": ["S1", "S2"],
            "sku": ["T1-RED-M", "T1-RED-S"],
            "units": pl.Series([1, 2], dtype=pl.Int32),
            "revenue": [40, 80],
        }
    )
    raw["stores"] = raw["stores"].with_columns(pl.col("latitude").cast(pl.Float32, strict=False))
    tables = validate(raw)
    assert tables.sales.schema["units"] == pl.Int64
    assert tables.sales.schema["date"] == pl.Date
    assert tables.sales.schema["revenue"] == pl.Float64
    raw["sales"] = raw["sales"].with_columns(pl.Series("units", [1, None], dtype=pl.Int64))
    err = error_of(raw)
    assert str(err) == "sales.csv, row 2, column 'units': expected an integer, got an empty cell"
    raw["sales"] = raw["sales"].with_columns(pl.lit(dt.date(2024, 3, 1)).alias("units"))
    assert str(error_of(raw)) == (
        "sales.csv, row 1, column 'units': expected an integer, got 2024-03-01 (a Date column)"
    )


def test_non_finite_numbers_rejected() -> None:
    text = TINY["lanes"].replace("0.9,50", "inf,50")
    err = error_of(raw_tables(lanes=text))
    assert str(err) == "lanes.csv, row 3, column 'cost_per_unit': expected a number, got 'inf'"
    text = TINY["weather"].replace("9,2.5", "NaN,2.5")
    assert error_of(raw_tables(weather=text)).row == 2


def test_events_scope_rules() -> None:
    text = TINY["events"].replace("all,,Easter", "city,,Easter")
    err = error_of(raw_tables(events=text))
    assert (err.row, err.column) == (2, "scope_id")
    text = TINY["events"].replace("city,Brooklyn", "store,S5")
    assert str(error_of(raw_tables(events=text))) == (
        "events.csv, row 1, column 'scope_id': unknown store_id 'S5' (not in stores.csv)"
    )
    text = TINY["events"].replace("city,Brooklyn", "CITY,Brooklyn")
    events = validate(raw_tables(events=text)).events
    assert events is not None
    assert events["scope"][0] == "city"


def test_trends_scope_all_without_scope_id() -> None:
    text = TINY["trends"] + "2024-03-02,all,,tags,basic,0.9\n"
    trends = validate(raw_tables(trends=text)).trends
    assert trends is not None
    assert trends["scope_id"].to_list() == ["Brooklyn", None]
    text = TINY["trends"] + "2024-03-02,region,,tags,basic,0.9\n"
    err = error_of(raw_tables(trends=text))
    assert (err.file, err.row, err.column) == ("trends.csv", 2, "scope_id")


def test_missing_and_unknown_tables() -> None:
    raw = raw_tables()
    del raw["products"]
    assert str(error_of(raw)) == (
        "missing required table 'products' (add products.csv or products.parquet)"
    )
    raw = raw_tables()
    raw["promotions"] = raw["economy"]
    assert "unknown table 'promotions'" in str(error_of(raw))
    without_optional = {n: f for n, f in raw_tables().items() if TABLE_SPECS[n].required}
    tables = validate(without_optional)
    assert tables.lanes is None
    assert [n for n, _ in tables.items()] == ["stores", "products", "sales", "inventory"]


def test_sources_default_to_table_names() -> None:
    raw = raw_tables(sales=TINY["sales"].replace(",1,90", ",x,90"))
    with pytest.raises(ContractError) as err:
        validate_tables(raw)
    assert str(err.value) == "sales, row 3, column 'units': expected an integer, got 'x'"
    assert err.value.detail == "expected an integer, got 'x'"


def test_lane_to_itself() -> None:
    err = error_of(raw_tables(lanes=TINY["lanes"].replace("S1,S2", "S2,S2")))
    assert str(err) == "lanes.csv, row 3, column 'to_id': a lane from 'S2' to itself"


def test_first_bad_row_is_reported_on_a_large_table() -> None:
    n = 200_000
    sales = pl.DataFrame(
        {
            "date": ["2024-03-01"] * n,
            "store_id": ["S1"] * n,
            "sku": [f"K{i}" for i in range(n)],
            "units": ["1"] * n,
            "revenue": ["10"] * n,
        }
    ).with_columns(
        units=pl.when(pl.int_range(pl.len()).is_in([150_000, 170_000]))
        .then(pl.lit("-x"))
        .otherwise(pl.col("units"))
    )
    raw = raw_tables()
    raw["sales"] = sales
    err = error_of(raw)
    assert (err.row, err.column) == (150_001, "units")


@settings(max_examples=80, deadline=None)
@given(row=st.integers(0, 4), cell=st.text(max_size=8))
def test_units_cell_either_parses_or_names_its_row(row: int, cell: str) -> None:
    raw = raw_tables()
    units = raw["sales"]["units"].to_list()
    units[row] = cell
    raw["sales"] = raw["sales"].with_columns(pl.Series("units", units, dtype=pl.String))
    try:
        tables = validate(raw)
    except ContractError as err:
        assert (err.file, err.row, err.column) == ("sales.csv", row + 1, "units")
        assert str(err).startswith(f"sales.csv, row {row + 1}, column 'units': expected an integer")
    else:
        value = tables.sales["units"][row]
        assert float(cell.strip()) == value


# ----------------------------------------------------------------- price plan, optional columns

PLAN_HEADER = "start_date,end_date,scope,scope_id,style,sku,price,price_factor,promotion\n"


def test_price_plan_is_typed_and_resolved() -> None:
    tables = validate(raw_tables())
    plan = tables.price_plan
    assert plan is not None
    assert plan["promotion"].to_list() == [True, False]  # empty cell -> false
    assert plan["price"].to_list() == [None, 30.0]
    rules = resolve_price_plan(tables)
    # The style row covers the three T1 SKUs at every store; the store x SKU row wins there.
    assert rules["priority"].to_list() == [0, 0, 0, 3]
    assert rules.filter(pl.col("priority") == 0)["price_factor"].to_list() == [0.8] * 3
    top = rules.filter(pl.col("priority") == 3).row(0, named=True)
    assert (top["store_id"], top["sku"], top["price_factor"]) == ("S1", "T1-RED-M", 0.75)
    assert resolve_price_plan(tables.replace(price_plan=None)).is_empty()


@pytest.mark.parametrize(
    ("row", "column", "expected"),
    [
        ("2024-03-08,2024-03-14,shop,,T1,,,0.8,", "scope", "expected 'store' or 'all', got 'shop'"),
        ("2024-03-08,2024-03-14,store,,T1,,,0.8,", "scope_id", "expected a store_id"),
        ("2024-03-08,2024-03-14,store,W1,T1,,,0.8,", "scope_id", "unknown store_id 'W1'"),
        ("2024-03-08,2024-03-01,all,,T1,,,0.8,", "end_date", "is before start_date"),
        ("2024-03-08,2024-03-14,all,,T9,,,0.8,", "style", "unknown style 'T9'"),
        ("2024-03-08,2024-03-14,all,,T1,SH1-BLK-40,,0.8,", "sku", "is not of the row's style"),
        ("2024-03-08,2024-03-14,all,,T1,T1-X,,0.8,", "sku", "unknown sku 'T1-X'"),
        ("2024-03-08,2024-03-14,all,,T1,,0,,", "price", "expected a price > 0"),
        ("2024-03-08,2024-03-14,all,,T1,,,-1,", "price_factor", "expected a factor > 0"),
        ("2024-03-08,2024-03-14,all,,T1,,,,", "price", "got neither"),
        ("2024-03-08,2024-03-14,all,,T1,,,0.8,maybe", "promotion", "expected a boolean"),
    ],
)
def test_price_plan_errors_name_file_row_column(row: str, column: str, expected: str) -> None:
    text = PLAN_HEADER + "2024-03-01,2024-03-02,all,,SH1,,,0.9,\n" + row + "\n"
    err = error_of(raw_tables(price_plan=text))
    assert (err.file, err.row, err.column) == ("price_plan.csv", 2, column)
    assert expected in str(err)
    assert "\n" not in str(err)


def test_price_plan_needs_a_price_column() -> None:
    text = "start_date,end_date,scope,style\n2024-03-08,2024-03-14,all,T1\n"
    err = error_of(raw_tables(price_plan=text))
    assert (err.file, err.column) == ("price_plan.csv", "price")
    assert "give 'price'" in str(err)


def test_store_coordinates_and_precipitation_are_optional() -> None:
    raw = raw_tables()
    raw["stores"] = raw["stores"].drop("latitude", "longitude")
    raw["weather"] = raw["weather"].drop("precip_mm")
    tables = validate(raw)
    assert tables.stores["latitude"].null_count() == 3
    assert tables.weather is not None
    assert tables.weather["precip_mm"].null_count() == 3
    # Given coordinates are still checked.
    raw = raw_tables()
    raw["stores"] = raw["stores"].with_columns(pl.Series("longitude", ["1", "200", ""]))
    err = error_of(raw)
    assert (err.row, err.column) == (2, "longitude")
    assert "between -180 and 180" in str(err)


def test_optional_table_with_only_a_header_is_absent() -> None:
    events = "start_date,end_date,scope,scope_id,name\n"
    tables = validate(raw_tables(price_plan=PLAN_HEADER, events=events))
    assert tables.price_plan is None
    assert tables.events is None
    err = error_of(raw_tables(price_plan="start_date,scope\n"))
    assert (err.file, err.column) == ("price_plan.csv", None)
    assert "missing required columns 'end_date', 'style'" in str(err)
