"""Constants, random streams and array types shared by the generator modules."""

from __future__ import annotations

import datetime as dt

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

SEASON_START = dt.date(2026, 2, 2)  # a Monday
SEASON_DAYS = 182  # 26 weeks: 2026-02-02 .. 2026-08-02
DEFAULT_AS_OF = SEASON_START + dt.timedelta(days=11 * 7 - 1)  # Sunday 2026-04-19, week 11
FORECAST_DAYS = 14
DISPERSION = 2.5
TREND_LEAD_DAYS = 10
STORE_DAILY_UNITS = 70.0  # units per day of an average store carrying the whole catalogue
WAREHOUSE_SHARE = 0.25
COLD_OVERBUY = 1.6  # buy of cold-weather styles relative to their expected season demand
# The fashion scenarios' declared clearance: (weeks before a style's season end, price factor).
MARKDOWN_CALENDAR: tuple[tuple[int, float], ...] = ((4, 0.7), (2, 0.5))
WAREHOUSE = ("WH01", "Memphis Distribution Center", "Memphis", "TN", "Southeast", 35.15, -90.05)

FORMATS: tuple[str, ...] = ("urban flagship", "urban", "mall", "suburban", "outlet")
# Mon..Sun footfall pattern per format.
WEEKDAY_PATTERN: dict[str, tuple[float, ...]] = {
    "urban flagship": (0.9, 0.9, 0.95, 1.0, 1.15, 1.25, 1.0),
    "urban": (0.9, 0.9, 0.95, 1.0, 1.1, 1.25, 0.9),
    "mall": (0.8, 0.8, 0.85, 0.9, 1.1, 1.5, 1.25),
    "suburban": (0.8, 0.8, 0.8, 0.9, 1.05, 1.6, 1.2),
    "outlet": (0.75, 0.75, 0.8, 0.85, 1.1, 1.6, 1.4),
}
AREA_RANGE: dict[str, tuple[float, float]] = {
    "urban flagship": (1500.0, 2500.0),
    "urban": (400.0, 900.0),
    "mall": (600.0, 1200.0),
    "suburban": (800.0, 1400.0),
    "outlet": (1000.0, 1800.0),
}
# SKU-sizes a store of the format ranges at most (assortment breadth at scale).
FORMAT_BREADTH: dict[str, int] = {
    "urban flagship": 6000,
    "urban": 2500,
    "mall": 3500,
    "suburban": 3000,
    "outlet": 2500,
}
SEGMENT_SIZE_SHIFT = (-0.15, 0.2, 0.0, -0.1, 0.25)
SEGMENT_INCOME = (1.0, 1.15, 1.0, 1.35, 0.75)
SEGMENT_YOUNG = (0.42, 0.2, 0.28, 0.3, 0.24)

# Component ids for independent random streams (changing one part never shifts another).
_RNG_IDS = {
    "stores": 1,
    "catalog": 2,
    "weather": 3,
    "events": 4,
    "trends": 5,
    "economy": 6,
    "factors": 7,
    "alloc": 8,
    "history": 9,
    "switch": 10,
    "forecast": 11,
    "anomalies": 12,
}


def _rng(seed: int, part: str) -> np.random.Generator:
    return np.random.default_rng([seed, _RNG_IDS[part]])
