"""What a policy sees on a decision day: a retailer's view of the simulated season.

A :class:`PolicyView` holds the position (on hand, in transit) at the close of the previous
day and can build a contract :class:`~stocktailor.contract.Tables` from the simulated censored
sales, the decision-day inventory snapshots, the history before the season and the signal
tables up to that day (weather actuals, then forecasts with error for the next days; events
already announced; trends and the economy up to the day) and the declared prices
(``price_plan``, public like the markdown calendar). It never exposes the true demand.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from stocktailor.config import Settings
from stocktailor.contract import TABLE_SPECS, Tables
from stocktailor.simulate._types import FloatArray, History, IntArray, SimSpace

__all__ = ["PolicyView"]

_WEATHER_STREAM = 0x3EA7


@dataclass
class PolicyView:
    """A retailer's knowledge at the opening of decision day ``day``.

    Attributes
    ----------
    day
        The decision day; moves ship today. ``as_of`` (the day before) is the last day with
        sales.
    day_index
        Days since season start.
    space
        Axis order (locations = stores then warehouses; skus) and static data.
    on_hand, in_transit
        Units per (location, sku) at the opening of ``day``; ``in_transit`` counts units
        travelling *to* the location.
    received_days_ago
        Days since the location last received the sku (large when never).
    price_factor
        Price factor of every (season day, sku) (the markdown calendar is public).
    markdown_calendar
        The calendar behind ``price_factor``: ``(weeks before season end, price factor)``.
    """

    day: dt.date
    day_index: int
    season_start: dt.date
    season_end: dt.date
    space: SimSpace
    on_hand: IntArray
    in_transit: IntArray
    received_days_ago: IntArray
    price_factor: FloatArray
    settings: Settings
    base_tables: Tables
    season_tables: Tables
    history: History
    seed: int
    markdown_calendar: tuple[tuple[int, float], ...] = ()
    _tables: Tables | None = field(default=None, repr=False)
    _partial: dict[int, Tables] = field(default_factory=dict, repr=False)

    @property
    def as_of(self) -> dt.date:
        """Last day with known sales (the close of the day before ``day``)."""
        return self.day - dt.timedelta(days=1)

    @property
    def remaining_days(self) -> int:
        """Selling days from ``day`` to season end, inclusive, days."""
        return (self.season_end - self.day).days + 1

    @property
    def store_ids(self) -> tuple[str, ...]:
        return self.space.store_ids

    @property
    def warehouse_ids(self) -> tuple[str, ...]:
        return self.space.warehouse_ids

    @property
    def location_ids(self) -> tuple[str, ...]:
        return self.space.location_ids

    @property
    def skus(self) -> tuple[str, ...]:
        return self.space.skus

    def sku_end_index(self) -> IntArray:
        """Index (days since season start) of each SKU's last selling day."""
        ends = self.space.sku_end or (self.season_end,) * len(self.space.skus)
        return np.array([(e - self.season_start).days for e in ends], dtype=np.int64)

    def price_plan(self) -> pl.DataFrame:
        """The declared prices from ``day`` on as ``style, week_start, price_factor``.

        Weeks start on ``day`` (the forecast's weeks); a style's factor is the mean over its
        SKUs' selling days in the week (markdowns and promotions are public).
        """
        sp = self.space
        pf = self.price_factor[self.day_index :]
        n_d, n_k = pf.shape
        if n_d == 0 or n_k == 0:
            return pl.DataFrame(
                schema={"style": pl.String, "week_start": pl.Date, "price_factor": pl.Float64}
            )
        day = np.arange(self.day_index, self.day_index + n_d)[:, None]
        selling = day <= self.sku_end_index()[None, :]
        week = np.broadcast_to(((day - self.day_index) // 7), (n_d, n_k))[selling]
        style = sp.products["style"].cast(pl.String).to_numpy()
        sku_style = np.broadcast_to(style[None, :], (n_d, n_k))[selling]
        return (
            pl.DataFrame({"_w": week, "style": sku_style, "price_factor": pf[selling]})
            .group_by("style", "_w")
            .agg(pl.col("price_factor").mean())
            .select(
                "style",
                (pl.lit(self.day) + pl.duration(days=7 * pl.col("_w")))
                .cast(pl.Date)
                .alias("week_start"),
                "price_factor",
            )
            .sort("style", "week_start")
        )

    def sales_units(self, days: int) -> IntArray:
        """Units sold per (store, sku) over the last ``days`` days up to ``as_of``."""
        n_s, n_k = self.space.n_stores, len(self.space.skus)
        flat = np.zeros(n_s * n_k, dtype=np.int64)
        first = self.day - dt.timedelta(days=days)
        for day, idx, units, _rev in reversed(self.history.sales):
            if day < first:
                break
            if day >= self.day:
                continue
            flat[idx] += units
        return flat.reshape(n_s, n_k)

    def days_with_stock(self, days: int) -> int:
        """Selling days of the season observed in the last ``days`` days."""
        return max(0, min(days, self.day_index))

    def movable(self) -> IntArray:
        """On hand that may move: units received in the last N days stay (constraints)."""
        n = self.settings.constraints.min_days_before_retransfer
        out: IntArray = np.where(self.received_days_ago < n, 0, self.on_hand)
        return out

    def tables(self, history_days: int | None = None) -> Tables:
        """The contract tables a retailer would have at ``as_of`` (built once per view).

        Parameters
        ----------
        history_days
            Keep only sales and snapshots of the last ``history_days`` days (enough for
            positions; cheaper at scale). None keeps everything.
        """
        if history_days is not None:
            key = int(history_days)
            if key not in self._partial:
                self._partial[key] = _build_tables(self, self.as_of - dt.timedelta(days=key))
            return self._partial[key]
        if self._tables is None:
            self._tables = _build_tables(self)
        return self._tables


def _ids(ids: tuple[str, ...], idx: np.ndarray) -> pl.Series:
    return pl.Series(list(ids), dtype=pl.String).gather(pl.Series(idx, dtype=pl.UInt32))


def _history_frame(
    view: PolicyView,
    records: list[Any],
    location_ids: tuple[str, ...],
    table: str,
    since: dt.date | None,
) -> pl.DataFrame:
    """Simulated daily records ``(day, flat store x sku index, values, values)`` as a contract
    table (``sales`` or ``inventory``), before the view's day and from ``since``."""
    spec = TABLE_SPECS[table]
    schema: dict[str, Any] = {c.name: c.dtype for c in spec.columns}
    first, second = spec.column_names[3:5]
    n_k = len(view.space.skus)
    rows = [h for h in records if h[0] < view.day and (since is None or h[0] >= since)]
    if not rows:
        return pl.DataFrame(schema=schema)
    idx = np.concatenate([r[1] for r in rows])
    dates = np.concatenate([np.full(r[1].size, np.datetime64(r[0], "D")) for r in rows])
    return pl.DataFrame(
        {
            "date": pl.Series(dates),
            "store_id": _ids(location_ids, idx // n_k),
            "sku": _ids(view.space.skus, idx % n_k),
            first: np.concatenate([r[2] for r in rows]),
            second: np.concatenate([r[3] for r in rows]),
        }
    ).cast(pl.Schema(schema))


def _simulated_sales(view: PolicyView, since: dt.date | None) -> pl.DataFrame:
    return _history_frame(view, view.history.sales, view.space.store_ids, "sales", since)


def _simulated_inventory(view: PolicyView, since: dt.date | None) -> pl.DataFrame:
    return _history_frame(view, view.history.snapshots, view.space.location_ids, "inventory", since)


def _align(frame: pl.DataFrame, like: pl.DataFrame | None) -> pl.DataFrame:
    """Cast ``frame`` to ``like``'s columns and dtypes (missing columns become null)."""
    if like is None:
        return frame
    cols = []
    for name, dtype in like.schema.items():
        if name in frame.columns:
            cols.append(pl.col(name).cast(dtype))
        else:
            cols.append(pl.lit(None, dtype=dtype).alias(name))
    return frame.select(cols)


def _signal(
    base: pl.DataFrame | None, season: pl.DataFrame | None, date_col: str
) -> pl.DataFrame | None:
    """Season rows plus base rows older than the season table's first date."""
    if season is None:
        return base
    if base is None or base.height == 0 or season.height == 0:
        return season
    first = season[date_col].min()
    old = base.filter(pl.col(date_col) < first)
    return pl.concat([_align(old, season), season], how="vertical")


def _build_tables(view: PolicyView, since: dt.date | None = None) -> Tables:
    base, season = view.base_tables, view.season_tables
    as_of = view.as_of
    sim = view.settings.simulation
    keep = pl.col("date") >= since if since is not None else pl.lit(True)
    hist_sales = base.sales.filter((pl.col("date") < view.season_start) & keep)
    sales = pl.concat(
        [hist_sales, _align(_simulated_sales(view, since), hist_sales)], how="vertical"
    )
    hist_inv = base.inventory.filter(
        (pl.col("date") < view.season_start - dt.timedelta(days=1)) & keep
    )
    inventory = pl.concat(
        [hist_inv, _align(_simulated_inventory(view, since), hist_inv)], how="vertical"
    )
    weather = _signal(base.weather, season.weather, "date")
    if weather is not None:
        weather = weather.filter(
            pl.col("date") <= as_of + dt.timedelta(days=sim.weather_forecast_days)
        )
        lead = (pl.col("date") - pl.lit(as_of)).dt.total_days()
        rng = np.random.default_rng([view.seed, _WEATHER_STREAM, view.day_index])
        noise = rng.standard_normal(weather.height)
        weather = weather.with_columns(
            pl.when(lead > 0)
            .then(
                pl.col("temp_c")
                + pl.Series(noise)
                * sim.weather_forecast_error_c
                * lead.clip(0).cast(pl.Float64).sqrt()
            )
            .otherwise(pl.col("temp_c"))
            .alias("temp_c"),
            (lead > 0).alias("is_forecast"),
        )
    events = _signal(base.events, season.events, "start_date")
    if events is not None:
        events = events.filter(
            pl.col("start_date") <= as_of + dt.timedelta(days=sim.events_known_days)
        ).unique(maintain_order=True)
    trends = _signal(base.trends, season.trends, "date")
    if trends is not None:
        trends = trends.filter(pl.col("date") <= as_of)
    economy = _signal(base.economy, season.economy, "date")
    if economy is not None:
        economy = economy.filter(pl.col("date") <= as_of)
    return Tables(
        stores=season.stores,
        products=season.products,
        sales=sales,
        inventory=inventory,
        lanes=season.lanes if season.lanes is not None else base.lanes,
        weather=weather,
        events=events,
        trends=trends,
        economy=economy,
        assortment=season.assortment if season.assortment is not None else base.assortment,
        price_plan=season.price_plan if season.price_plan is not None else base.price_plan,
    )
