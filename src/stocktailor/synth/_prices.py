"""Declared prices of a synthetic network: the ``price_plan`` table and its daily price path.

A network declares every price change it makes (promotions and clearance markdowns) as rows of
the contract's ``price_plan`` table, so nothing about future prices has to be assumed. The
generator keeps the same information as a daily price factor per style (``1.0`` = full price),
from which both the table rows and the per-SKU price path of the truth are derived.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from stocktailor.synth._common import FloatArray

__all__ = [
    "PRICE_PLAN_SCHEMA",
    "StylePrices",
    "calendar_factors",
]

PRICE_PLAN_SCHEMA: dict[str, pl.DataType] = {
    "start_date": pl.Date(),
    "end_date": pl.Date(),
    "scope": pl.String(),
    "scope_id": pl.String(),
    "style": pl.String(),
    "sku": pl.String(),
    "price": pl.Float64(),
    "price_factor": pl.Float64(),
    "promotion": pl.Boolean(),
}


def calendar_factors(
    n_days: int, end_idx: int, calendar: Sequence[tuple[int, float]]
) -> FloatArray:
    """Price factor per day of a markdown calendar counted back from day ``end_idx``.

    A day ``t <= end_idx`` with ``end_idx - t < 7 * weeks`` sells at ``factor`` (the lowest
    active step wins), as the simulator applies a calendar; days after ``end_idx`` are 1.

    Parameters
    ----------
    n_days
        Length of the day axis.
    end_idx
        Index of the last selling day (the style's season end).
    calendar
        ``(weeks before season end, price factor)`` steps.

    Returns
    -------
    numpy.ndarray
        ``(n_days,)`` price factor per day.
    """
    out = np.ones(n_days, dtype=np.float64)
    left = end_idx - np.arange(n_days)
    for weeks, factor in calendar:
        hit = (left >= 0) & (left < 7 * int(weeks))
        out[hit] = np.minimum(out[hit], float(factor))
    return out


@dataclass(frozen=True)
class StylePrices:
    """Daily declared price factor of every style of a network.

    Attributes
    ----------
    start
        Date of day 0.
    styles
        Style ids, the column order of ``factor``.
    factor
        ``(days, styles)`` price paid / full price (1.0 = full price).
    promotion
        ``(days, styles)`` whether a price below 1 is a promotion (else a clearance markdown).
    """

    start: dt.date
    styles: tuple[str, ...]
    factor: FloatArray
    promotion: np.ndarray

    def frame(self) -> pl.DataFrame:
        """The ``price_plan`` rows: one row per style and run of equal price (scope ``all``).

        Days at full price have no row. Rows of one style never overlap.
        """
        rows: dict[str, list[object]] = {k: [] for k in PRICE_PLAN_SCHEMA}
        n_days = self.factor.shape[0]
        for j, style in enumerate(self.styles):
            f = self.factor[:, j]
            p = self.promotion[:, j]
            t = 0
            while t < n_days:
                if f[t] >= 1.0:
                    t += 1
                    continue
                u = t
                while u + 1 < n_days and f[u + 1] == f[t] and p[u + 1] == p[t]:
                    u += 1
                rows["start_date"].append(self.start + dt.timedelta(days=t))
                rows["end_date"].append(self.start + dt.timedelta(days=u))
                rows["scope"].append("all")
                rows["scope_id"].append(None)
                rows["style"].append(style)
                rows["sku"].append(None)
                rows["price"].append(None)
                rows["price_factor"].append(round(float(f[t]), 4))
                rows["promotion"].append(bool(p[t]))
                t = u + 1
        return pl.DataFrame(rows, schema=PRICE_PLAN_SCHEMA).sort("start_date", "style")

    def sku_path(self, sku_style: Sequence[str], t0: int, t1: int) -> FloatArray:
        """``(t1 - t0 + 1, skus)`` price factor of SKUs (by their style) on days ``t0..t1``.

        Days outside the stored axis are at full price.
        """
        col = {s: i for i, s in enumerate(self.styles)}
        idx = np.array([col[s] for s in sku_style], dtype=np.int64)
        n = t1 - t0 + 1
        out = np.ones((n, len(idx)), dtype=np.float64)
        lo, hi = max(t0, 0), min(t1, self.factor.shape[0] - 1)
        if hi >= lo:
            out[lo - t0 : hi - t0 + 1] = self.factor[lo : hi + 1][:, idx]
        return out
