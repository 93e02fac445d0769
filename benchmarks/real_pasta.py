"""An Italian grocery store's pasta sales as a stocktailor data folder (the harness's second set).

Data: Mancuso, P., Piccialli, V., Sudoso, A. M. (2021), "Data for: A machine learning approach
for forecasting hierarchical time series", Mendeley Data, V1, doi:10.17632/njdkntcpc9.1,
licensed CC BY 4.0 (attribution required); used in Mancuso et al., "A machine learning approach
for forecasting hierarchical time series", Expert Systems with Applications 182 (2021) 115102.
Daily unit sales and a daily promotion flag of 118 pasta products of 4 brands in one Italian
grocery store, 2014-01-02 .. 2018-12-31 (1,798 selling days; the 27 missing days are public
holidays the store was closed). The copy used is ``hierarchical_sales_data.csv`` from the public
GitHub repository GonBla/Pasta_Time_Series (commit 4affc6e4), kept (not in git) at
``/work/data/italian-pasta/raw/``. The converted folder is a derived work under the same licence.

Run::

    python benchmarks/real_pasta.py convert --out /work/data/italian-pasta/contract

Mapping into the data contract:

* one store ``IT01``; products ``B<brand>_<n>`` (one style each, colour ``na``, size ``one``),
  ``category`` = the brand (the data's hierarchy level).
* ``sales``: the daily quantities (whole units; no returns in this data); days with 0 units
  are left out. The data has no prices: ``full_price`` = 1.0 and ``unit_cost`` = 0.7 are
  placeholders, ``revenue = units x full_price``.
* promotions: ``price_plan`` rows (scope ``all``, style = product) for every run of days with the
  promotion flag, ``promotion = true``. The data does not say how deep a promotion was:
  ``price_factor`` = 1.0 (the contract needs a price or a factor per row). Written for the whole
  period; the benchmark keeps rows after the cut as the retailer's promotion plan.
* closed days: each missing date becomes an ``events`` row (scope ``all``, kind ``closed``),
  known in advance (public holidays).
* stock: the data has none. ``meta.json`` says ``stock = none``; the folder gets one stand-in
  snapshot at its last day (every pair sold: ``max(1, units of the last 28 days)``), and the
  benchmark rebuilds it at the cut date the same way: a position that claims no stockout.
* no coordinates and no season end: written only where the installed contract requires them,
  as placeholders listed in ``meta.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from real_common import (
    contract_requires,
    convert_main,
    runs_to_ranges,
    stand_in_snapshot,
    write_folder,
)

RAW = Path("/work/data/italian-pasta/raw/hierarchical_sales_data.csv")
STORE = "IT01"
COVER_DAYS = 28
ATTRIBUTION = (
    "Mancuso, Piccialli, Sudoso (2021), 'Data for: A machine learning approach for forecasting "
    "hierarchical time series', Mendeley Data V1, doi:10.17632/njdkntcpc9.1, CC BY 4.0"
)


def _long(raw: pl.DataFrame) -> pl.DataFrame:
    """``date, sku, units, promo`` from the wide QTY_*/PROMO_* columns."""
    qty = raw.unpivot(
        index="DATE", on=[c for c in raw.columns if c.startswith("QTY_")], variable_name="c"
    ).select(
        pl.col("DATE").alias("date"),
        pl.col("c").str.strip_prefix("QTY_").alias("sku"),
        pl.col("value").cast(pl.Int64).alias("units"),
    )
    promo = raw.unpivot(
        index="DATE", on=[c for c in raw.columns if c.startswith("PROMO_")], variable_name="c"
    ).select(
        pl.col("DATE").alias("date"),
        pl.col("c").str.strip_prefix("PROMO_").alias("sku"),
        (pl.col("value") == 1).alias("promotion"),
    )
    return qty.join(promo, on=["date", "sku"], how="left").sort("sku", "date")


def convert(out: Path, raw_path: Path = RAW) -> dict[str, pl.DataFrame]:
    raw = pl.read_csv(raw_path, try_parse_dates=True)
    d = _long(raw)
    first, last = d["date"].min(), d["date"].max()
    assert isinstance(first, dt.date) and isinstance(last, dt.date)
    placeholders: dict[str, str] = {}
    stores = pl.DataFrame(
        {"store_id": [STORE], "name": ["Italian grocery store"], "kind": ["store"]}
    ).with_columns(pl.lit("IT").alias("country"))
    if contract_requires("stores", "latitude"):
        placeholders["stores.latitude/longitude"] = "0.0 (the data has no location)"
        stores = stores.with_columns(pl.lit(0.0).alias("latitude"), pl.lit(0.0).alias("longitude"))
    skus = sorted(d["sku"].unique().to_list())
    products = pl.DataFrame({"sku": skus}).select(
        "sku",
        pl.col("sku").alias("style"),
        pl.lit("na").alias("color"),
        pl.lit("one").alias("size"),
        pl.col("sku").str.split("_").list.first().alias("category"),
        pl.lit(1.0).alias("full_price"),
        pl.lit(0.7).alias("unit_cost"),
        pl.col("sku").str.split("_").list.first().alias("brand"),
    )
    if contract_requires("products", "season_end"):
        placeholders["products.season_end"] = f"{last} (never-ending assortment: end of data)"
        products = products.with_columns(pl.lit(last).alias("season_end"))
    sales = d.filter(pl.col("units") != 0).select(
        "date",
        pl.lit(STORE).alias("store_id"),
        "sku",
        "units",
        pl.col("units").cast(pl.Float64).alias("revenue"),
    )
    open_days = set(d["date"].unique().to_list())
    closed = [
        first + dt.timedelta(days=i)
        for i in range((last - first).days + 1)
        if first + dt.timedelta(days=i) not in open_days
    ]
    events = pl.DataFrame({"start_date": closed}, schema={"start_date": pl.Date}).select(
        "start_date",
        pl.col("start_date").alias("end_date"),
        pl.lit("all").alias("scope"),
        pl.lit(None, pl.String).alias("scope_id"),
        pl.lit("store closed (public holiday)").alias("name"),
        pl.lit("closed").alias("kind"),
    )
    promo = runs_to_ranges(d.select("sku", "date", "promotion"), ["sku"], ["promotion"])
    price_plan = promo.filter(pl.col("promotion")).select(
        "start_date",
        "end_date",
        pl.lit("all").alias("scope"),
        pl.lit(None, pl.String).alias("scope_id"),
        pl.col("sku").alias("style"),
        pl.lit(None, pl.String).alias("sku"),
        pl.lit(1.0).alias("price_factor"),
        "promotion",
    )
    tables = {
        "stores": stores,
        "products": products,
        "sales": sales,
        "inventory": stand_in_snapshot(sales, last, COVER_DAYS),
        "events": events,
        "price_plan": price_plan,
    }
    meta = {
        "name": "Italian grocery store, pasta (Mancuso et al. 2021)",
        "source": "github:GonBla/Pasta_Time_Series@4affc6e4 hierarchical_sales_data.csv",
        "licence": "CC BY 4.0",
        "attribution": ATTRIBUTION,
        "frequency": "daily",
        "stock": "none",
        "stand_in_cover_days": COVER_DAYS,
        "placeholders": placeholders,
        "first_date": first,
        "last_date": last,
    }
    write_folder(out, tables, meta)
    return tables


def _options(c: argparse.ArgumentParser) -> None:
    c.add_argument("--raw", type=Path, default=RAW)


def main() -> None:
    convert_main(__doc__, ATTRIBUTION, _options, lambda a: convert(a.out, a.raw))


if __name__ == "__main__":
    main()
