"""Future prices of the forecast horizon.

:func:`future_prices` gives the price factors the forecast may assume: markdowns are never
assumed; a markdown calendar applies only when the retailer sets one, and the ``price_plan``
table (when the contract has it) declares planned prices and promotions.
:func:`markdown_price_plan` turns a calendar (weeks before season end, price factor) into weekly
price factors per style.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

import polars as pl

from stocktailor.contract import Tables

__all__ = ["future_prices", "markdown_price_plan"]


def markdown_price_plan(
    tables: Tables, as_of: dt.date, markdown_calendar: Sequence[tuple[int, float]]
) -> pl.DataFrame:
    """Future price factors per style from a markdown calendar.

    ``markdown_calendar`` is ``(weeks before season end, price factor)`` steps: a week that
    starts within ``n`` weeks of the style's ``season_end`` sells at the factor of the smallest
    such ``n``.

    Returns
    -------
    pl.DataFrame
        ``style, week_start, price_factor``.
    """
    pr = tables.products
    if "season_end" not in pr.columns:
        return pl.DataFrame(
            schema={"style": pl.String, "week_start": pl.Date, "price_factor": pl.Float64}
        )
    se = pr.group_by("style").agg(pl.col("season_end").max()).drop_nulls()
    rows = []
    steps = sorted(markdown_calendar)
    for style, end in se.iter_rows():
        n = max(0, math.ceil(((end - as_of).days) / 7))
        for i in range(n):
            ws = as_of + dt.timedelta(days=1 + 7 * i)
            weeks_before = (end - ws).days / 7.0
            f = 1.0
            for wb, fac in steps:
                if weeks_before < wb:
                    f = fac
                    break
            rows.append((style, ws, float(f)))
    return pl.DataFrame(
        rows,
        schema={"style": pl.String, "week_start": pl.Date, "price_factor": pl.Float64},
        orient="row",
    )


def future_prices(
    tables: Tables, as_of: dt.date, markdown_calendar: Sequence[tuple[int, float]] = ()
) -> pl.DataFrame | None:
    """Price factors of future weeks per style, or None (full price everywhere).

    From a non-empty ``markdown_calendar`` (the retailer's setting) and the ``price_plan``
    table; where both give a week the plan wins. Plan rows are averaged over the days of the
    week, the SKUs of the style and the stores they cover (a store-scoped promotion counts
    for its share of the network).

    Returns
    -------
    pl.DataFrame or None
        ``style, week_start, price_factor``.
    """
    parts = []
    if markdown_calendar:
        parts.append(markdown_price_plan(tables, as_of, markdown_calendar))
    plan = _plan_weeks(tables, as_of)
    if plan is not None:
        parts.append(plan)
    if not parts:
        return None
    return pl.concat(parts).unique(["style", "week_start"], keep="last").sort("style", "week_start")


def _plan_weeks(tables: Tables, as_of: dt.date) -> pl.DataFrame | None:
    """The ``price_plan`` table (if any) as ``style, week_start, price_factor`` after as_of.

    Rules are resolved per SKU and day (:func:`stocktailor.contract.resolve_price_plan`: the
    highest-priority all-stores rule sets the day's price, a store rule moves its store's
    price, weighing ``1 / stores``); days without a rule sell at full price.
    """
    from stocktailor.contract import resolve_price_plan

    rules = resolve_price_plan(tables)
    if rules.is_empty():
        return None
    n_stores = max(1, tables.store_ids.len())
    day0 = as_of + dt.timedelta(days=1)
    days = (
        rules.with_columns(
            pl.date_ranges(pl.max_horizontal("start_date", pl.lit(day0)), "end_date").alias("date")
        )
        .explode("date")
        .drop_nulls("date")
    )
    if days.is_empty():
        return None
    top = ["sku", "date", "store_id"]
    # The winning rule per SKU, day and store (null store = all stores).
    win = days.sort("priority", "start_date").group_by(top).agg(pl.col("price_factor").last())
    base = win.filter(pl.col("store_id").is_null()).select(
        "sku", "date", pl.col("price_factor").alias("_b")
    )
    local = (
        win.filter(pl.col("store_id").is_not_null())
        .join(base, on=["sku", "date"], how="left")
        .group_by("sku", "date")
        .agg(((pl.col("price_factor") - pl.col("_b").fill_null(1.0)).sum() / n_stores).alias("_d"))
    )
    daily = (
        base.join(local, on=["sku", "date"], how="full", coalesce=True)
        .with_columns((pl.col("_b").fill_null(1.0) + pl.col("_d").fill_null(0.0)).alias("_f"))
        .join(tables.products.select("sku", "style"), on="sku", how="inner")
    )
    n_sku = tables.products.group_by("style").agg(pl.len().alias("_n"))
    week = ((pl.col("date") - pl.lit(as_of)).dt.total_days() - 1) // 7
    out: pl.DataFrame = (
        daily.with_columns(week.alias("_wk"))
        .group_by("style", "_wk")
        .agg((1.0 - pl.col("_f")).sum().alias("_cut"))
        .join(n_sku, on="style", how="left")
        .select(
            "style",
            (pl.lit(as_of) + pl.duration(days=1 + 7 * pl.col("_wk"))).alias("week_start"),
            (1.0 - pl.col("_cut") / (7.0 * pl.col("_n"))).clip(0.05, 2.0).alias("price_factor"),
        )
    )
    return out
