"""Future prices of the forecast horizon.

:func:`markdown_price_plan` turns a markdown calendar (weeks before season end, price factor)
into weekly price factors per style.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

import polars as pl

from stocktailor.contract import Tables

__all__ = ["markdown_price_plan"]


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
