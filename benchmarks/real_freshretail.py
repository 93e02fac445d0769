"""FreshRetailNet-50K as a stocktailor data folder (the real-data harness's first data set).

Data: "FreshRetailNet-50K: A Stockout-Annotated Censored Demand Dataset for Latent Demand
Recovery and Forecasting in Fresh Retail" (Dingdong Fresh, 2025), licensed CC BY 4.0
(attribution required); the train split as kept in ``/work/shared/data/freshretailnet50k/``
(``daily_store_sku_train.parquet``: 898 stores in 18 cities, 865 products, 50,000 store x
product series, 90 days 2024-03-28 .. 2024-06-25). The converted folders are derived works of
that data set under the same licence.

Run::

    python benchmarks/real_freshretail.py convert --out /work/data/frn
    python benchmarks/real_freshretail.py convert --cities 1 2 --out /work/data/frn-small

Mapping into the data contract (what each column becomes and what is lost):

* ``sale`` is a scaled quantity, not whole units (97.9 % of values are multiples of 0.1, all
  of 0.001). ``units = round(10 x sale)``: one contract unit is 0.1 of the published scale;
  2.1 % of daily values lose their third decimal (rounding error at most 0.05 scaled units a
  day, unbiased). Days with 0 units are left out of ``sales`` (a usual export).
* prices: the data has a daily price factor ``discount`` (price paid / list price) but no
  list prices. ``full_price`` = 1.0 per unit for every product (a placeholder currency),
  ``revenue = units x discount``, so the price paid (revenue / units) is the factor.
  ``unit_cost`` = 0.7 and ``salvage_value`` = 0 (perishables) are placeholders.
* promotions and planned prices: ``price_plan`` rows (scope ``store``, ``style`` = the product)
  for every run of consecutive days with the same (discount, activity_flag) that is not plain
  full price: ``price_factor`` = discount, ``promotion`` = activity_flag. The whole period is
  written; an extra column ``known_in_advance`` (= promotion) tells the benchmark which rows a
  retailer knows ahead: promotion runs are kept after the cut as the plan, the day-to-day price
  drift outside promotions (realised, e.g. evening clearance of fresh food) only up to the cut.
  The 16,039 days with discount 0 (given away) get no price_plan row (the contract wants a
  factor > 0); their sales rows keep revenue 0.
* stockouts: the contract has closing stock snapshots, not hours. The hourly city-1 data shows
  stockout hours lie at night and in the evening: with 8 or more stockout hours the shelf was
  empty at 21:00 on >= 92 % of days, with 1-2 hours on ~1 %. Rule: a daily closing snapshot per
  store x product, ``on_hand = 0`` when ``stockout_hours >= 8`` (the shelf emptied before the
  evening: the day is censored), else ``on_hand = max(1, units sold that day)`` (a stand-in
  level: the data has no stock quantities; fresh shelves are refilled daily). Lost: partial
  stockouts under 8 hours (33 % of days have >= 8 hours, about 35 % have 1-7), the hour at
  which the shelf emptied, and every real stock quantity.
* holidays: ``holiday_flag`` is one calendar for all stores and includes weekends. Runs of
  flagged days that contain a weekday become ``events`` (scope ``all``, kind ``holiday``,
  name ``public holiday``); a weekend day that is not flagged (a make-up working day) becomes an
  event of kind ``working_day``. Ordinary weekends are left to the day of week.
* weather: ``weather`` per store and day: ``temp_c`` = avg_temperature, ``precip_mm`` =
  precpt, plus ``humidity`` and ``wind_level`` as extra columns.
* stores: ``S<store_id>``, ``city`` = ``C<city_id>``, country ``CN``; products: ``P<id>``, one
  style per product, colour ``na``, size ``one``, ``category`` = ``F<first_category_id>``,
  management group and second/third category as attributes. The data has no coordinates and
  no season end: they are written only where the installed contract requires them, as
  placeholders listed in ``meta.json`` (coordinates 0, 0; season end = last day of the data).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from demand_freshretail import DATA, load_daily
from real_common import contract_requires, convert_main, runs_to_ranges, write_folder

SCALE = 10
STOCKOUT_HOURS_EMPTY = 8
ATTRIBUTION = (
    "FreshRetailNet-50K (Dingdong Fresh, 2025), 'FreshRetailNet-50K: A Stockout-Annotated "
    "Censored Demand Dataset for Latent Demand Recovery and Forecasting in Fresh Retail', "
    "CC BY 4.0"
)


def _ids(d: pl.DataFrame) -> pl.DataFrame:
    return d.with_columns(
        ("S" + pl.col("store_id").cast(pl.String).str.zfill(3)).alias("store"),
        ("P" + pl.col("product_id").cast(pl.String).str.zfill(3)).alias("sku"),
        pl.col("dt").cast(pl.Date).alias("date"),
        (pl.col("sale") * SCALE).round(0).cast(pl.Int64).alias("units"),
    )


def _stores(d: pl.DataFrame, placeholders: dict[str, str]) -> pl.DataFrame:
    st = (
        d.group_by("store", "city_id")
        .agg(pl.col("sku").n_unique().alias("products_listed"))
        .sort("store")
        .select(
            pl.col("store").alias("store_id"),
            pl.col("store").alias("name"),
            pl.lit("store").alias("kind"),
            ("C" + pl.col("city_id").cast(pl.String)).alias("city"),
            pl.lit("CN").alias("country"),
            "products_listed",
        )
    )
    if contract_requires("stores", "latitude"):
        placeholders["stores.latitude/longitude"] = "0.0 (the data has no locations)"
        st = st.with_columns(pl.lit(0.0).alias("latitude"), pl.lit(0.0).alias("longitude"))
    return st


def _products(d: pl.DataFrame, last: dt.date, placeholders: dict[str, str]) -> pl.DataFrame:
    pr = (
        d.group_by("sku")
        .agg(
            pl.col(c).first()
            for c in (
                "management_group_id",
                "first_category_id",
                "second_category_id",
                "third_category_id",
            )
        )
        .sort("sku")
        .select(
            "sku",
            pl.col("sku").alias("style"),
            pl.lit("na").alias("color"),
            pl.lit("one").alias("size"),
            ("F" + pl.col("first_category_id").cast(pl.String)).alias("category"),
            pl.lit(1.0).alias("full_price"),
            pl.lit(0.7).alias("unit_cost"),
            pl.lit(0.0).alias("salvage_value"),
            ("M" + pl.col("management_group_id").cast(pl.String)).alias("management_group"),
            ("S" + pl.col("second_category_id").cast(pl.String)).alias("second_category"),
            ("T" + pl.col("third_category_id").cast(pl.String)).alias("third_category"),
        )
    )
    if contract_requires("products", "season_end"):
        placeholders["products.season_end"] = f"{last} (never-ending assortment: end of data)"
        pr = pr.with_columns(pl.lit(last).alias("season_end"))
    return pr


def _events(d: pl.DataFrame) -> pl.DataFrame:
    cal = d.group_by("date").agg(pl.col("holiday_flag").max()).sort("date")
    cal = cal.with_columns(
        (pl.col("date").dt.weekday() >= 6).alias("weekend"),
        pl.col("holiday_flag").diff().fill_null(1).ne(0).cum_sum().alias("run"),
    )
    # A run of flagged days is a public holiday when it covers a weekday (Sat+Sun alone is a
    # weekend, which the day of week already tells).
    hol = (
        cal.filter(pl.col("holiday_flag") == 1)
        .group_by("run")
        .agg(
            pl.col("date").min().alias("start_date"),
            pl.col("date").max().alias("end_date"),
            (~pl.col("weekend")).any().alias("has_weekday"),
        )
        .filter(pl.col("has_weekday"))
        .select(
            "start_date",
            "end_date",
            pl.lit("public holiday").alias("name"),
            pl.lit("holiday").alias("kind"),
        )
    )
    work = cal.filter(pl.col("weekend") & (pl.col("holiday_flag") == 0)).select(
        pl.col("date").alias("start_date"),
        pl.col("date").alias("end_date"),
        pl.lit("make-up working day").alias("name"),
        pl.lit("working_day").alias("kind"),
    )
    return (
        pl.concat([hol, work])
        .with_columns(pl.lit("all").alias("scope"), pl.lit(None, pl.String).alias("scope_id"))
        .select("start_date", "end_date", "scope", "scope_id", "name", "kind")
        .sort("start_date")
    )


def _price_plan(d: pl.DataFrame) -> pl.DataFrame:
    daily = d.select(
        pl.col("store").alias("scope_id"),
        pl.col("sku").alias("style"),
        "date",
        pl.col("discount").round(4).alias("price_factor"),
        (pl.col("activity_flag") == 1).alias("promotion"),
    )
    ranges = runs_to_ranges(daily, ["scope_id", "style"], ["price_factor", "promotion"])
    return (
        # Giveaway days (factor 0) are no price: the contract wants a factor > 0; their sales
        # rows keep revenue 0.
        ranges.filter((pl.col("price_factor") != 1.0) | pl.col("promotion"))
        .filter(pl.col("price_factor") > 0)
        .select(
            "start_date",
            "end_date",
            pl.lit("store").alias("scope"),
            "scope_id",
            "style",
            pl.lit(None, pl.String).alias("sku"),
            "price_factor",
            "promotion",
            # Promotions are planned; the daily price drift outside them is realised, not known
            # ahead: the benchmark keeps only known_in_advance rows after its cut.
            pl.col("promotion").alias("known_in_advance"),
        )
        .sort("scope_id", "style", "start_date")
    )


def convert(out: Path, cities: list[int] | None = None) -> dict[str, pl.DataFrame]:
    """Convert FreshRetailNet-50K (optionally only some cities) into a data folder at ``out``."""
    d = load_daily()
    if cities:
        d = d.filter(pl.col("city_id").is_in(cities))
    d = _ids(d)
    last = d["date"].max()
    assert isinstance(last, dt.date)
    placeholders: dict[str, str] = {}
    sales = d.filter(pl.col("units") != 0).select(
        "date",
        pl.col("store").alias("store_id"),
        "sku",
        "units",
        (pl.col("units") * pl.col("discount")).alias("revenue"),
    )
    empty = pl.col("stockout_hours") >= STOCKOUT_HOURS_EMPTY
    inventory = d.select(
        "date",
        pl.col("store").alias("store_id"),
        "sku",
        pl.when(empty).then(0).otherwise(pl.col("units").clip(lower_bound=1)).alias("on_hand"),
    )
    weather = (
        d.group_by("store", "date")
        .agg(
            pl.col("avg_temperature").first().alias("temp_c"),
            pl.col("precpt").first().alias("precip_mm"),
            pl.col("avg_humidity").first().alias("humidity"),
            pl.col("avg_wind_level").first().alias("wind_level"),
        )
        .rename({"store": "store_id"})
        .sort("store_id", "date")
    )
    tables = {
        "stores": _stores(d, placeholders),
        "products": _products(d, last, placeholders),
        "sales": sales,
        "inventory": inventory,
        "weather": weather,
        "events": _events(d),
        "price_plan": _price_plan(d),
    }
    meta = {
        "name": "FreshRetailNet-50K" + (f" (cities {cities})" if cities else ""),
        "source": str(DATA / "daily_store_sku_train.parquet"),
        "licence": "CC BY 4.0",
        "attribution": ATTRIBUTION,
        "frequency": "daily",
        "stock": "daily",
        "units_scale": f"units = round({SCALE} x sale)",
        "stockout_rule": f"on_hand = 0 when stockout_hours >= {STOCKOUT_HOURS_EMPTY}",
        "placeholders": placeholders,
        "first_date": d["date"].min(),
        "last_date": last,
    }
    write_folder(out, tables, meta)
    return tables


def _options(c: argparse.ArgumentParser) -> None:
    c.add_argument("--cities", type=int, nargs="*", default=None, help="only these city_ids")


def main() -> None:
    convert_main(__doc__, ATTRIBUTION, _options, lambda a: convert(a.out, a.cities))


if __name__ == "__main__":
    main()
