"""Dense weekly forecasts and demand sensing, for the simulated ``stocktailor`` policy and the
pipeline's daily updates between refits (:func:`sense_forecast`).

The demand model is expensive to fit and to predict at scale, so the policy fits it rarely and
keeps the forecast as dense arrays (weeks x stores x SKUs). Between refits it corrects the
remaining-season forecast with the sales seen since the fit (*demand sensing*): per store x
style, the ratio of in-stock sales to the forecast of the same cells and days, shrunk towards
the style's network ratio, which is itself shrunk towards 1 (credibility weighting with a prior
of ``prior_units`` forecast units), and bounded. The lead-time and rest-of-season demand windows
the optimisers need are read off the arrays with the same pro-rata rule as
:func:`stocktailor.valuation.demand_window` (a week contributes the share of its days inside
the window to both mean and variance).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import polars as pl

from stocktailor.simulate._types import FloatArray, IntArray

__all__ = [
    "DemandSensor",
    "WeeklyForecast",
    "scale_windows",
    "sense_forecast",
    "sensing_ratio",
]


@dataclass
class WeeklyForecast:
    """A weekly forecast as dense arrays.

    Attributes
    ----------
    first_day
        Season day index (days since season start) of the first forecast day; week ``w``
        covers days ``first_day + 7w .. first_day + 7w + 6``.
    mean, var
        Demand per week, units, ``(weeks, stores, skus)``.
    """

    first_day: int
    mean: FloatArray
    var: FloatArray
    _tails: tuple[FloatArray, FloatArray] | None = field(default=None, repr=False)

    @property
    def n_weeks(self) -> int:
        return int(self.mean.shape[0])

    @classmethod
    def empty(cls, first_day: int, n_weeks: int, n_stores: int, n_skus: int) -> WeeklyForecast:
        shape = (n_weeks, n_stores, n_skus)
        return cls(first_day, np.zeros(shape), np.zeros(shape))

    def add_frame(
        self,
        frame: pl.DataFrame,
        first_date: dt.date,
        store_index: dict[str, int],
        sku_index: dict[str, int],
    ) -> None:
        """Write a forecast frame (``store_id, sku, week_start, mean, var``) into the arrays.

        Rows whose store, SKU or week falls outside the arrays are ignored; ``first_date`` is
        the calendar date of ``first_day``.
        """
        if frame.height == 0:
            return
        self._tails = None
        s = frame["store_id"].replace_strict(store_index, default=-1, return_dtype=pl.Int64)
        k = frame["sku"].replace_strict(sku_index, default=-1, return_dtype=pl.Int64)
        w = frame.select((pl.col("week_start") - pl.lit(first_date)).dt.total_days())
        w_i = (w.to_series().to_numpy() // 7).astype(np.int64)
        s_i, k_i = s.to_numpy(), k.to_numpy()
        ok = (s_i >= 0) & (k_i >= 0) & (w_i >= 0) & (w_i < self.n_weeks)
        self.mean[w_i[ok], s_i[ok], k_i[ok]] = frame["mean"].to_numpy()[ok]
        self.var[w_i[ok], s_i[ok], k_i[ok]] = np.maximum(frame["var"].to_numpy()[ok], 0.0)

    def _tail_sums(self) -> tuple[FloatArray, FloatArray]:
        """``T[w]`` = sum of weeks ``>= w`` (``T[weeks] = 0``), for mean and var."""
        if self._tails is None:
            out = []
            for a in (self.mean, self.var):
                t = np.zeros((a.shape[0] + 1, *a.shape[1:]))
                t[:-1] = np.cumsum(a[::-1], axis=0)[::-1]
                out.append(t)
            self._tails = (out[0], out[1])
        return self._tails

    def tail(self, day: IntArray) -> tuple[FloatArray, FloatArray]:
        """Demand on season days ``>= day`` (per cell; ``day`` is ``(stores, skus)``), units.

        A week split by ``day`` contributes the share of its days on or after it.
        """
        tm, tv = self._tail_sums()
        n_w = self.n_weeks
        off = np.clip(np.asarray(day, dtype=np.int64) - self.first_day, 0, 7 * n_w)
        if n_w == 0:
            z = np.zeros(off.shape)
            return z, z.copy()
        w = off // 7  # week holding the day (n_w: past the end)
        frac = np.where(w < n_w, (7 * (w + 1) - off) / 7.0, 0.0)
        wc = np.minimum(w, n_w - 1)
        wt = np.minimum(w + 1, n_w)
        rows = np.arange(off.shape[0])[:, None]
        cols = np.arange(off.shape[1])[None, :]
        m = tm[wt, rows, cols] + frac * self.mean[wc, rows, cols]
        v = tv[wt, rows, cols] + frac * self.var[wc, rows, cols]
        return m, v

    def window(self, start: IntArray, end: IntArray) -> tuple[FloatArray, FloatArray]:
        """Demand on season days ``start .. end`` inclusive per cell (0 when empty), units."""
        start = np.asarray(start, dtype=np.int64)
        end = np.maximum(np.asarray(end, dtype=np.int64) + 1, start)
        m0, v0 = self.tail(start)
        m1, v1 = self.tail(end)
        return np.maximum(m0 - m1, 0.0), np.maximum(v0 - v1, 0.0)

    def lead_rest(
        self, day: int, lead: IntArray, sku_end: IntArray, cols: IntArray | None = None
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """Lead-time and rest-of-season windows for a decision on season day ``day``.

        Parameters
        ----------
        day
            First day after the as-of date (moves ship today), season day index.
        lead
            Lead time per store, days, ``(stores,)``: the lead window is ``day .. day + lead
            - 1`` (capped at the SKU's last day), the rest ``day + lead .. sku_end``.
        sku_end
            Last selling day per SKU, season day index, ``(skus,)``.
        cols
            Only these SKUs (default all).

        Returns
        -------
        tuple
            ``(mean_lead, var_lead, mean_rest, var_rest)``, units, ``(stores, len(cols))``.
        """
        sub = self if cols is None else self.columns(cols)
        ends_k = np.asarray(sku_end, dtype=np.int64)
        if cols is not None:
            ends_k = ends_k[cols]
        n_s, n_k = sub.mean.shape[1:]
        lead_end = day + np.asarray(lead, dtype=np.int64)[:, None] - 1
        ends = np.broadcast_to(ends_k[None, :], (n_s, n_k))
        first = np.full((n_s, n_k), day, dtype=np.int64)
        ml, vl = sub.window(first, np.minimum(lead_end, ends))
        mr, vr = sub.window(np.broadcast_to(lead_end + 1, (n_s, n_k)), ends)
        return ml, vl, mr, vr

    def columns(self, cols: IntArray) -> WeeklyForecast:
        """The forecast of the SKUs ``cols`` only (its tail sums are reused when cached)."""
        out = WeeklyForecast(self.first_day, self.mean[:, :, cols], self.var[:, :, cols])
        if self._tails is not None:
            out._tails = (self._tails[0][:, :, cols], self._tails[1][:, :, cols])
        return out


def scale_windows(
    mean: FloatArray, var: FloatArray, ratio: FloatArray | None
) -> tuple[FloatArray, FloatArray]:
    """A demand window with its mean scaled by ``ratio``.

    The variance keeps the forecast's shape ``var = mean + extra`` with the over-dispersion
    ``extra`` (quadratic in the mean) scaled by ``ratio**2``: ``var' = r mean + r^2 (var -
    mean)``.
    """
    if ratio is None:
        return mean, var
    extra = np.maximum(var - mean, 0.0)
    return mean * ratio, mean * ratio + extra * ratio * ratio


def sensing_ratio(
    sales: FloatArray,
    forecast: FloatArray,
    prior_units: float,
    bounds: tuple[float, float],
) -> tuple[FloatArray, FloatArray]:
    """Hierarchical demand-sensing ratios per store x group and per group.

    Parameters
    ----------
    sales, forecast
        Units sold and forecast on the same in-stock cells and days, ``(stores, groups)``.
    prior_units
        Credibility prior, forecast units: a group's network ratio is ``(sales + prior) /
        (forecast + prior)``; a store's is ``(sales + prior * group ratio) / (forecast +
        prior)``.
    bounds
        ``(low, high)`` clip of both ratios.

    Returns
    -------
    tuple
        ``(store x group ratio (stores, groups), group ratio (groups,))``.
    """
    lo, hi = bounds
    tau = float(prior_units)
    with np.errstate(divide="ignore", invalid="ignore"):
        g_raw = (sales.sum(axis=0) + tau) / (forecast.sum(axis=0) + tau)
        g = np.clip(np.where(np.isfinite(g_raw), g_raw, 1.0), lo, hi)
        r_raw = (sales + tau * g[None, :]) / (forecast + tau)
        r = np.clip(np.where(np.isfinite(r_raw), r_raw, g[None, :]), lo, hi)
    return r, g


@dataclass
class DemandSensor:
    """Accumulates in-stock sales against the forecast since the last refit.

    Attributes
    ----------
    group
        Group (style) index per SKU, ``(skus,)``.
    n_stores
        Stores (rows of the observations).
    sales_, forecast_
        Sums per store x group since the last :meth:`reset`, units.
    """

    group: IntArray
    n_stores: int
    sales_: FloatArray = field(init=False)
    forecast_: FloatArray = field(init=False)

    def __post_init__(self) -> None:
        self.reset()

    @property
    def n_groups(self) -> int:
        return int(self.group.max()) + 1 if self.group.size else 0

    def reset(self) -> None:
        """Forget what was observed (after a refit the model has seen it)."""
        self.sales_ = np.zeros((self.n_stores, self.n_groups))
        self.forecast_ = np.zeros((self.n_stores, self.n_groups))

    def observe(
        self, sales: IntArray, forecast: FloatArray, in_stock: npt.NDArray[np.bool_]
    ) -> None:
        """Add one period: sales and forecast per store x SKU, counted where ``in_stock``.

        A cell that ran out during the period sold less than its demand (censored), so only
        cells in stock over the whole period count.
        """
        m = np.asarray(in_stock, dtype=bool)
        s = np.where(m, sales, 0).astype(np.float64)
        f = np.where(m, forecast, 0.0)
        add_s = np.zeros((self.n_groups, self.n_stores))
        add_f = np.zeros_like(add_s)
        np.add.at(add_s, self.group, s.T)
        np.add.at(add_f, self.group, f.T)
        self.sales_ += add_s.T
        self.forecast_ += add_f.T

    def ratio(self, prior_units: float, bounds: tuple[float, float]) -> FloatArray:
        """Multiplier per store x SKU for the remaining forecast, ``(stores, skus)``."""
        r, _g = sensing_ratio(self.sales_, self.forecast_, prior_units, bounds)
        out: FloatArray = r[:, self.group]
        return out


def sense_forecast(
    forecast: pl.DataFrame,
    sales: pl.DataFrame,
    products: pl.DataFrame,
    *,
    since: dt.date,
    as_of: dt.date,
    in_stock: pl.DataFrame | None = None,
    prior_units: float = 20.0,
    bounds: tuple[float, float] = (0.5, 2.0),
    group: str = "style",
) -> pl.DataFrame:
    """A weekly forecast corrected by the sales seen since it was made (demand sensing).

    Per store x ``group`` (a products column, default the style), the units sold on
    ``since .. as_of`` are compared with the forecast of the same days (a week counts the share
    of its days in the window, as :func:`stocktailor.valuation.demand_window`); the ratio is
    credibility-shrunk twice with :func:`sensing_ratio` (the group's network ratio towards 1,
    the store's towards the group's, with a prior of ``prior_units`` forecast units) and
    clipped to ``bounds``. The weeks still to come (ending after ``as_of``) are multiplied by
    the store x group ratio: ``mean`` and the quantiles ``p10, p50, p90`` (when present) by
    ``r``, ``var`` as ``r mean + r^2 (var - mean)`` (:func:`scale_windows`).

    Parameters
    ----------
    forecast
        ``store_id, sku, week_start, mean`` and optionally ``var`` (default ``mean``) and
        quantiles, units per week.
    sales
        ``date, store_id, sku, units``: daily sales (returns, units < 0, are netted within the
        day and the day's net clipped at 0).
    products
        ``sku`` and the ``group`` column.
    since, as_of
        First and last day of sales to compare, inclusive.
    in_stock
        ``store_id, sku`` of the cells that were in stock the whole window; only they count (a
        stock-out censors sales, which would pull the ratio down). None: every cell counts.
    prior_units
        Credibility prior, forecast units.
    bounds
        Lowest and highest ratio.
    group
        Products column the ratios are shared over.

    Returns
    -------
    polars.DataFrame
        ``forecast`` with the coming weeks scaled and a column ``sensing_ratio``.
    """
    from stocktailor.valuation import demand_window

    if as_of < since:
        msg = f"sense_forecast: as_of {as_of} is before since {since}"
        raise ValueError(msg)
    for col in ("sku", group):
        if col not in products.columns:
            msg = f"products: missing column {col!r} (sensing groups)"
            raise ValueError(msg)
    seen = demand_window(forecast, since, as_of).rename({"mean": "_fc"}).drop("var")
    sold = (
        sales.filter(pl.col("date").is_between(since, as_of))
        .group_by("date", "store_id", "sku")
        .agg(pl.col("units").sum().clip(lower_bound=0))
        .group_by("store_id", "sku")
        .agg(pl.col("units").sum().cast(pl.Float64).alias("_sold"))
    )
    cells = seen.join(sold, on=["store_id", "sku"], how="left").with_columns(
        pl.col("_sold").fill_null(0.0)
    )
    if in_stock is not None:
        cells = cells.join(in_stock.select("store_id", "sku").unique(), on=["store_id", "sku"])
    grp = products.select("sku", pl.col(group).cast(pl.String).alias("_g")).unique("sku")
    per = (
        cells.join(grp, on="sku", how="inner")
        .group_by("store_id", "_g")
        .agg(pl.col("_sold").sum(), pl.col("_fc").sum())
    )
    stores = sorted(forecast["store_id"].cast(pl.String).unique().to_list())
    ratios = _group_ratios(per, stores, sorted(grp["_g"].unique().to_list()), prior_units, bounds)
    return _scale_coming_weeks(forecast, ratios, grp, as_of)


def _group_ratios(
    per: pl.DataFrame,
    stores: list[str],
    groups: list[str],
    prior_units: float,
    bounds: tuple[float, float],
) -> pl.DataFrame:
    """``store_id, _g, sensing_ratio`` from sales and forecast per store x group (a store
    without evidence takes its group's network ratio)."""
    if not stores or not groups:
        return pl.DataFrame(
            schema={"store_id": pl.String, "_g": pl.String, "sensing_ratio": pl.Float64}
        )
    si = {s: i for i, s in enumerate(stores)}
    gi = {g: i for i, g in enumerate(groups)}
    s_i = per["store_id"].replace_strict(si, return_dtype=pl.Int64).to_numpy()
    g_i = per["_g"].replace_strict(gi, return_dtype=pl.Int64).to_numpy()
    sales = np.zeros((len(stores), len(groups)))
    fc = np.zeros_like(sales)
    sales[s_i, g_i] = per["_sold"].to_numpy()
    fc[s_i, g_i] = per["_fc"].to_numpy()
    r, _g = sensing_ratio(sales, fc, prior_units, bounds)
    return _ratio_frame(stores, groups, r)


def _ratio_frame(stores: Sequence[str], groups: Sequence[str], r: FloatArray) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "store_id": np.repeat(np.array(stores, dtype=object), len(groups)).tolist(),
            "_g": list(groups) * len(stores),
            "sensing_ratio": r.ravel(),
        },
        schema={"store_id": pl.String, "_g": pl.String, "sensing_ratio": pl.Float64},
    )


def _scale_coming_weeks(
    forecast: pl.DataFrame, ratios: pl.DataFrame, grp: pl.DataFrame, as_of: dt.date
) -> pl.DataFrame:
    cols = forecast.columns
    r = pl.col("sensing_ratio")
    coming = (pl.col("week_start") + pl.duration(days=6)) > pl.lit(as_of)
    ratio = pl.when(coming).then(r.fill_null(1.0)).otherwise(1.0)
    f = forecast
    if "var" not in cols:
        f = f.with_columns(pl.col("mean").alias("var"))
    out = (
        f.join(grp, on="sku", how="left")
        .join(ratios, on=["store_id", "_g"], how="left")
        .with_columns(ratio.alias("sensing_ratio"))
    )
    extra = (pl.col("var") - pl.col("mean")).clip(lower_bound=0.0)
    scaled = [
        (r * pl.col("mean") + r * r * extra).alias("var"),
        (r * pl.col("mean")).alias("mean"),
    ]
    scaled += [(r * pl.col(q)).alias(q) for q in ("p10", "p50", "p90") if q in cols]
    out = out.with_columns(scaled)
    return out.select(*cols, "sensing_ratio")
