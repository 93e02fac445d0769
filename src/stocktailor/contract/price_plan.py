"""The optional ``price_plan`` table: planned prices and promotions for the forecast horizon.

One row sets the price of a style (every SKU of it, ``sku`` empty) or of one SKU, at one
store (``scope = store``, ``scope_id`` = its store_id) or at every store (``scope = all``),
from ``start_date`` to ``end_date`` inclusive, as a ``price`` (currency per unit) and/or a
``price_factor`` (price / full_price). Where rows overlap the narrower one wins: a store row
over an all-stores row, then a SKU row over a style row (:func:`resolve_price_plan`).
Markdowns are never assumed: without a row (or a markdown calendar set in the settings) a
forecast sells at full price.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from stocktailor.contract.parsing import _first_true, _show
from stocktailor.contract.specs import PRICE_SCOPES

if TYPE_CHECKING:
    from stocktailor.contract.checks import _Source
    from stocktailor.contract.tables import Tables

__all__ = ["PRICE_PLAN_RESOLVED", "resolve_price_plan"]

PRICE_PLAN_RESOLVED: dict[str, type[pl.DataType]] = {
    "start_date": pl.Date,
    "end_date": pl.Date,
    "store_id": pl.String,
    "sku": pl.String,
    "price_factor": pl.Float64,
    "promotion": pl.Boolean,
    "priority": pl.Int64,
}
"""Columns of :func:`resolve_price_plan`."""


def _check_price_plan(
    df: pl.DataFrame,
    src: _Source,
    stores: pl.DataFrame,
    products: pl.DataFrame,
    srcs: dict[str, _Source],
) -> pl.DataFrame:
    """Values and references of ``price_plan``; fills ``promotion`` (false)."""
    stores_file, products_file = srcs["stores"].file, srcs["products"].file
    has_price, has_factor = "price" in df.columns, "price_factor" in df.columns
    if not has_price and not has_factor:
        found = ", ".join(df.columns)
        raise src.error(
            f"missing column: give 'price' (currency per unit) or 'price_factor' "
            f"(price / full_price) (the table has: {found})",
            column="price",
        )
    df = df.with_columns(pl.col("scope").str.to_lowercase())
    src.check(
        df,
        ~pl.col("scope").is_in(PRICE_SCOPES),
        "scope",
        lambda v: f"expected 'store' or 'all', got {_show(v)}",
    )
    scope_id = pl.col("scope_id") if "scope_id" in df.columns else pl.lit(None, pl.String)
    store_ids = stores.filter(pl.col("kind") == "store")["store_id"]
    if "scope_id" not in df.columns:
        idx = _first_true(df["scope"] == "store")
        if idx is not None:
            raise src.error(
                "missing column: rows with scope 'store' need a scope_id (a store_id)",
                row=idx + 1,
                column="scope_id",
            )
    else:
        src.check(
            df,
            (pl.col("scope") == "store") & scope_id.is_null(),
            "scope_id",
            lambda v: "expected a store_id (scope is 'store'), got an empty cell",
        )
        src.check(
            df,
            (pl.col("scope") == "store") & ~scope_id.is_in(store_ids.implode()),
            "scope_id",
            lambda v: f"unknown store_id {_show(v)} (not a store in {stores_file})",
        )
    src.check(
        df,
        pl.col("end_date") < pl.col("start_date"),
        "end_date",
        lambda v: f"end_date {_show(v)} is before start_date",
    )
    src.check(
        df,
        ~pl.col("style").is_in(products["style"].implode()),
        "style",
        lambda v: f"unknown style {_show(v)} (not in {products_file})",
    )
    if "sku" in df.columns:
        _check_skus(df, src, products, products_file)
    _check_prices(df, src, has_price, has_factor)
    promotion = pl.col("promotion").fill_null(False) if "promotion" in df.columns else pl.lit(False)
    return df.with_columns(promotion.alias("promotion"))


def _check_skus(df: pl.DataFrame, src: _Source, products: pl.DataFrame, products_file: str) -> None:
    src.check(
        df,
        pl.col("sku").is_not_null() & ~pl.col("sku").is_in(products["sku"].implode()),
        "sku",
        lambda v: f"unknown sku {_show(v)} (not in {products_file})",
    )
    style_of = df.select("sku").join(
        products.select("sku", pl.col("style").alias("_style")),
        on="sku",
        how="left",
        maintain_order="left",
    )["_style"]
    src.check(
        df.with_columns(style_of.alias("_style")),
        pl.col("sku").is_not_null() & (pl.col("_style") != pl.col("style")),
        "sku",
        lambda v: f"sku {_show(v)} is not of the row's style (see {products_file})",
    )


def _check_prices(df: pl.DataFrame, src: _Source, has_price: bool, has_factor: bool) -> None:
    price = pl.col("price") if has_price else pl.lit(None, pl.Float64)
    factor = pl.col("price_factor") if has_factor else pl.lit(None, pl.Float64)
    if has_price:
        src.check(
            df, pl.col("price") <= 0, "price", lambda v: f"expected a price > 0, got {_show(v)}"
        )
    if has_factor:
        src.check(
            df,
            pl.col("price_factor") <= 0,
            "price_factor",
            lambda v: f"expected a factor > 0 (price / full_price), got {_show(v)}",
        )
    src.check(
        df,
        price.is_null() & factor.is_null(),
        "price" if has_price else "price_factor",
        lambda v: "expected a price or a price_factor, got neither",
    )


def resolve_price_plan(tables: Tables) -> pl.DataFrame:
    """The price plan as one rule per SKU, with the priority that settles overlaps.

    Style rows are expanded to every SKU of the style; ``price`` becomes ``price_factor =
    price / full_price`` of each SKU (a row's ``price_factor`` wins when it gives both).

    Returns
    -------
    pl.DataFrame
        ``start_date, end_date, store_id, sku, price_factor, promotion, priority``:
        ``store_id`` null means every store; where several rules cover a store x SKU x day
        the one with the highest ``priority`` applies (3 store & SKU, 2 store & style, 1 all
        stores & SKU, 0 all stores & style; ties: the later ``start_date``). Empty when the
        table is absent.
    """
    plan = tables.price_plan
    if plan is None or plan.is_empty():
        return pl.DataFrame(schema=PRICE_PLAN_RESOLVED)
    sku = pl.col("sku") if "sku" in plan.columns else pl.lit(None, pl.String)
    rules = plan.with_columns(
        sku.alias("_sku"),
        pl.when(pl.col("scope") == "store").then(pl.col("scope_id")).alias("store_id"),
    ).drop("sku", "full_price", strict=False)
    skus = tables.products.select("sku", "style", "full_price")
    expanded = rules.join(skus, on="style", how="inner").filter(
        pl.col("_sku").is_null() | (pl.col("_sku") == pl.col("sku"))
    )
    price = pl.col("price") if "price" in plan.columns else pl.lit(None, pl.Float64)
    factor = pl.col("price_factor") if "price_factor" in plan.columns else pl.lit(None, pl.Float64)
    return expanded.select(
        "start_date",
        "end_date",
        "store_id",
        "sku",
        pl.coalesce(factor, price / pl.col("full_price")).alias("price_factor"),
        pl.col("promotion").fill_null(False),
        (
            2 * (pl.col("scope") == "store").cast(pl.Int64)
            + pl.col("_sku").is_not_null().cast(pl.Int64)
        ).alias("priority"),
    ).sort("priority", "start_date", "store_id", "sku", nulls_last=False)
