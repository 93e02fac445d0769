"""statsforecast reference forecasts on sales (sales taken as demand).

:func:`baseline_forecast` fits one statsforecast model per store x SKU on daily or weekly
sales and returns the forecast columns with Poisson quantiles. These are benchmark references;
the selecting forecaster (:mod:`stocktailor.demand.select`) has its own weekly candidates.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import polars as pl

from stocktailor.censoring import demand_tables
from stocktailor.contract import FORECAST_SCHEMA, Tables
from stocktailor.demand.distribution import nb_quantiles
from stocktailor.signals import week_of

__all__ = ["BaselineMethod", "baseline_forecast"]

BaselineMethod = Literal[
    "seasonal_naive", "auto_ets", "auto_ets_weekly", "croston", "adida", "naive"
]


def _models() -> dict[str, Any]:
    from statsforecast.models import ADIDA, AutoETS, CrostonOptimized, Naive, SeasonalNaive

    return {
        "seasonal_naive": SeasonalNaive(season_length=7),
        "auto_ets": AutoETS(season_length=7),
        "auto_ets_weekly": AutoETS(season_length=1),
        "croston": CrostonOptimized(),
        "adida": ADIDA(),
        "naive": Naive(),
    }


def _panel(tables: Tables, as_of: dt.date, history_days: int, *, weekly: bool) -> pl.DataFrame:
    """Zero-filled ``unique_id, t, units`` panel of ranged store x SKU pairs."""
    start = as_of - dt.timedelta(days=history_days - 1)
    inv = tables.inventory.filter(pl.col("date") <= as_of).select("store_id", "sku").unique()
    stores = set(tables.store_ids.to_list())
    inv = inv.filter(pl.col("store_id").is_in(stores))
    n_w = history_days // 7
    step = week_of("date", as_of) if weekly else pl.col("date")
    sales = (
        tables.sales.filter((pl.col("date") >= start) & (pl.col("date") <= as_of))
        .group_by("store_id", "sku", step.alias("t"))
        .agg(pl.col("units").sum().cast(pl.Float64))
    )
    pairs = pl.concat([inv, sales.select("store_id", "sku").unique()]).unique()
    steps = pl.DataFrame(
        {"t": pl.Series(range(-n_w, 0), dtype=pl.Int32)}
        if weekly
        else {"t": pl.date_range(start, as_of, "1d", eager=True)}
    )
    return (
        pairs.join(steps, how="cross")
        .join(sales, on=["store_id", "sku", "t"], how="left")
        .with_columns(pl.col("units").fill_null(0.0))
        .with_columns((pl.col("store_id") + "\x1f" + pl.col("sku")).alias("unique_id"))
        .sort("unique_id", "t")
    )


def _weekly_frame(
    fc: pl.DataFrame, tables: Tables, as_of: dt.date, last: dt.date, *, weekly: bool
) -> pl.DataFrame:
    """statsforecast output (``store_id, sku, ds, yhat``) -> ``store_id, sku, week_start,
    mean, var`` (units per week, cut at each SKU's ``season_end``)."""
    pr = tables.products
    if weekly:
        w = pl.col("ds").rank("dense").over(["store_id", "sku"]).cast(pl.Int64) - 1
        ws = pl.lit(as_of) + pl.duration(days=1 + 7 * w)
        fc = fc.with_columns(ws.alias("week_start"))
        end = pl.min_horizontal(pl.col("season_end").fill_null(pl.lit(last)), pl.lit(last))
        days_in = ((end - pl.col("week_start")).dt.total_days() + 1).clip(0, 7) / 7.0
        if "season_end" not in pr.columns:
            fc = fc.with_columns(pl.lit(None, pl.Date).alias("season_end"))
        else:
            fc = fc.join(pr.select("sku", "season_end"), on="sku", how="left")
        wk = fc.with_columns((pl.col("yhat") * days_in).alias("mean")).filter(pl.col("mean") > 0)
        return wk.with_columns(pl.col("mean").alias("var"))
    fc = fc.with_columns(pl.col("ds").cast(pl.Date).alias("date"))
    if "season_end" in pr.columns:
        fc = fc.join(pr.select("sku", "season_end"), on="sku", how="left").filter(
            pl.col("season_end").is_null() | (pl.col("date") <= pl.col("season_end"))
        )
    fc = fc.with_columns(week_of("date", as_of).alias("week"))
    wk = fc.group_by("store_id", "sku", "week").agg(pl.col("yhat").sum().alias("mean"))
    return wk.with_columns(
        (pl.lit(as_of) + pl.duration(days=1 + 7 * pl.col("week").cast(pl.Int64))).alias(
            "week_start"
        ),
        pl.col("mean").alias("var"),
    )


def baseline_forecast(
    tables: Tables,
    as_of: dt.date,
    method: BaselineMethod = "seasonal_naive",
    *,
    until: dt.date | None = None,
    history_days: int = 84,
    n_jobs: int = 1,
    horizon_weeks: int = 13,
) -> pl.DataFrame:
    """statsforecast reference forecast on daily sales per store x SKU (sales = demand).

    Parameters
    ----------
    method
        ``seasonal_naive`` (weekly season), ``auto_ets`` (AutoETS, weekly season),
        ``auto_ets_weekly`` (AutoETS without season on weekly sums: the same history in
        seconds instead of minutes; each forecast week is cut at the SKU's ``season_end``),
        ``croston`` (CrostonOptimized), ``adida`` (ADIDA), ``naive``.
    until
        Last day (default: the latest ``season_end``, else ``horizon_weeks`` after ``as_of``).
    history_days
        Days of daily history fitted.
    horizon_weeks
        Forecast horizon without a ``season_end``, weeks (``settings.season.horizon_weeks``).

    Returns
    -------
    pl.DataFrame
        The forecast columns; ``var = mean`` (Poisson) and Poisson quantiles.
    """
    from statsforecast import StatsForecast

    tables = demand_tables(tables)
    pr = tables.products
    last = until
    if last is None:
        mx = pr["season_end"].max() if "season_end" in pr.columns else None
        last = mx if isinstance(mx, dt.date) else as_of + dt.timedelta(days=7 * horizon_weeks)
    h = (last - as_of).days
    if h <= 0:
        return pl.DataFrame(schema=FORECAST_SCHEMA)
    weekly = method == "auto_ets_weekly"
    models = _models()
    if method not in models:
        msg = f"baseline_forecast: unknown method {method!r}; expected one of {sorted(models)}"
        raise ValueError(msg)
    mdl = models[method]
    panel = _panel(tables, as_of, history_days, weekly=weekly)
    n_w = history_days // 7
    # Weekly steps get dates of an arbitrary Sunday-anchored calendar; only their order counts.
    ds = (
        pl.lit(dt.datetime(2000, 1, 2)) + pl.duration(weeks=pl.col("t") + n_w)
        if weekly
        else pl.col("t")
    )
    df = panel.select(
        "unique_id", ds.cast(pl.Datetime("ns")).alias("ds"), pl.col("units").alias("y")
    ).to_pandas()
    sf = StatsForecast(models=[mdl], freq="W-SUN" if weekly else "D", n_jobs=n_jobs)
    raw: Any = sf.forecast(df=df, h=-(-h // 7) if weekly else h)
    fc = (raw if isinstance(raw, pl.DataFrame) else pl.from_pandas(raw)).rename({str(mdl): "yhat"})
    fc = (
        fc.with_columns(pl.col("yhat").clip(lower_bound=0.0))
        .with_columns(
            pl.col("unique_id").str.split_exact("\x1f", 1).struct.rename_fields(["store_id", "sku"])
        )
        .unnest("unique_id")
    )
    wk = _weekly_frame(fc, tables, as_of, last, weekly=weekly)
    m = wk["mean"].to_numpy()
    q = nb_quantiles(m, m, (0.1, 0.5, 0.9))
    out = wk.with_columns(pl.Series("p10", q[0]), pl.Series("p50", q[1]), pl.Series("p90", q[2]))
    return out.select(list(FORECAST_SCHEMA)).sort("store_id", "sku", "week_start")
