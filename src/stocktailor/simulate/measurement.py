"""Measuring a simulated run like a retailer would, next to the truth the simulator knows.

:class:`SalesRecorder` wraps a policy to keep the run's sales history (what the retailer's
sales table holds); :func:`measure_run` builds the stock ledger of the run from its opening
stock, moves and sales, measures each decision day's executed transfer lines with the
ledger counterfactual (:mod:`stocktailor.measure`) and joins the truth of
:func:`~stocktailor.simulate.replay.true_uplift_by_decision`: the rows of
``uplift_measurement.csv``. :func:`measure_by_category` measures each decision day's lines of
one category together (``uplift_by_category.csv``: what calibration learns from, one season to
the next). With a holdback, :func:`holdback_run` compares the executed lines with the
held-back ones.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import polars as pl

from stocktailor.config import Settings
from stocktailor.contract import TABLE_SPECS
from stocktailor.measure import build_ledger, holdback_estimate, ledger_uplift, pair_outcomes
from stocktailor.measure.ledger import Ledger
from stocktailor.simulate._types import History, SimResult, SimSpace
from stocktailor.simulate.decisions import Decisions, Policy
from stocktailor.simulate.view import PolicyView

__all__ = [
    "CATEGORY_MEASUREMENT_COLUMNS",
    "MEASUREMENT_COLUMNS",
    "SalesRecorder",
    "holdback_run",
    "measure_by_category",
    "measure_run",
    "run_ledger",
    "sales_frame",
]

_MEASURED = ("lines", "units", "estimated", "measured", "measured_low", "measured_high")

CATEGORY_MEASUREMENT_COLUMNS = ("decision_date", "category", *_MEASURED)
"""Columns of ``uplift_by_category.csv`` (before ``seed, policy``)."""

MEASUREMENT_COLUMNS = ("decision_date", *_MEASURED, "true")
"""Columns of ``uplift_measurement.csv`` (before ``seed, policy``)."""


class SalesRecorder:
    """A policy wrapper keeping the run's sales history (other attributes are the policy's)."""

    def __init__(self, inner: Policy) -> None:
        self.inner = inner
        self.name = inner.name
        self.history_: History | None = None

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)

    def decide(self, view: PolicyView) -> Decisions:
        self.history_ = view.history
        return self.inner.decide(view)


def sales_frame(history: History, space: SimSpace) -> pl.DataFrame:
    """The history's sales as a sales table: ``date, store_id, sku, units, revenue``."""
    n_k = len(space.skus)
    if not history.sales:
        return pl.DataFrame(schema=TABLE_SPECS["sales"].schema)
    day = np.concatenate([np.full(idx.size, i) for i, (_, idx, _, _) in enumerate(history.sales)])
    dates = [d for d, *_ in history.sales]
    idx = np.concatenate([x for _, x, _, _ in history.sales])
    stores = np.array(space.store_ids, dtype=object)
    skus = np.array(space.skus, dtype=object)
    return pl.DataFrame(
        {
            "date": pl.Series([dates[int(i)] for i in day], dtype=pl.Date),
            "store_id": pl.Series(stores[idx // n_k].tolist(), dtype=pl.String),
            "sku": pl.Series(skus[idx % n_k].tolist(), dtype=pl.String),
            "units": np.concatenate([u for _, _, u, _ in history.sales]).astype(np.int64),
            "revenue": np.concatenate([r for *_, r in history.sales]).astype(np.float64),
        }
    )


def _products(space: SimSpace, season_end: dt.date) -> pl.DataFrame:
    ends = list(space.sku_end) if space.sku_end else [season_end] * len(space.skus)
    return pl.DataFrame(
        {
            "sku": list(space.skus),
            "full_price": space.full_price,
            "salvage_value": space.salvage_value,
            "season_end": pl.Series(ends, dtype=pl.Date),
        }
    )


def _last_day(result: SimResult, season_end: dt.date) -> dt.date:
    last = result.daily["date"].max()
    return max(season_end, last) if isinstance(last, dt.date) else season_end


def run_ledger(
    result: SimResult,
    sales: pl.DataFrame,
    settings: Settings,
    season_start: dt.date,
    season_end: dt.date,
    skus: list[str],
) -> Ledger:
    """The stock ledger of a simulated run over the whole season for ``skus``."""
    sp = result.space
    locs = np.repeat(np.array(sp.location_ids, dtype=object), len(sp.skus))
    stock = pl.DataFrame(
        {
            "store_id": pl.Series(locs.tolist(), dtype=pl.String),
            "sku": list(sp.skus) * len(sp.location_ids),
            "units": result.initial.ravel().astype(np.int64),
        }
    ).filter(pl.col("units") > 0)
    cfg = settings.measure
    return build_ledger(
        result.moves,
        sales,
        stock,
        _products(sp, season_end),
        list(sp.store_ids),
        season_start,
        _last_day(result, season_end),
        skus=skus,
        prior_strength=cfg.prior_strength,
        rate_window_days=cfg.rate_window_days,
        rate_prior_cell_days=cfg.rate_prior_cell_days,
    )


def _executed_lines(result: SimResult) -> pl.DataFrame:
    return result.moves.filter(pl.col("kind") == "transfer", pl.col("units") > 0).with_columns(
        pl.col("ship_date").alias("decision_date")
    )


def _measure_groups(
    result: SimResult,
    sales: pl.DataFrame,
    settings: Settings,
    season: tuple[dt.date, dt.date],
    lines: pl.DataFrame,
    group: str,
    ledger: Ledger | None,
) -> pl.DataFrame:
    """``ledger_uplift`` of ``lines`` by ``group`` on the run's ledger (built when None)."""
    if ledger is None:
        skus = lines["sku"].unique().to_list()
        ledger = run_ledger(result, sales, settings, season[0], season[1], skus)
    cfg = settings.measure
    return ledger_uplift(
        ledger,
        lines,
        group=group,
        replicates=cfg.replicates,
        level=cfg.interval,
        random_state=cfg.random_state,
        propagate=cfg.propagate_moves,
    )


def measure_by_category(
    result: SimResult,
    sales: pl.DataFrame,
    settings: Settings,
    season_start: dt.date,
    season_end: dt.date,
    *,
    ledger: Ledger | None = None,
) -> pl.DataFrame:
    """Per decision day and product category: the executed transfer lines' estimate and
    measurement (each day's lines of a category removed together from the ledger).

    Returns
    -------
    polars.DataFrame
        :data:`CATEGORY_MEASUREMENT_COLUMNS` (currency; ``lines`` counts the group's lines).
    """
    categories = result.space.products.select(
        pl.col("sku").cast(pl.String), pl.col("category").cast(pl.String).fill_null("-")
    ).unique("sku")
    lines = _executed_lines(result).join(categories, on="sku", how="left")
    lines = lines.with_columns(
        pl.col("category").fill_null("-"),
        pl.concat_str(pl.col("decision_date").cast(pl.String), pl.lit("|"), "category").alias(
            "_group"
        ),
    )
    m = _measure_groups(
        result, sales, settings, (season_start, season_end), lines, "_group", ledger
    )
    keys = lines.select("_group", "decision_date", "category").unique("_group")
    return m.join(keys, on="_group", how="left").select(CATEGORY_MEASUREMENT_COLUMNS)


def measure_run(
    result: SimResult,
    sales: pl.DataFrame,
    truth: pl.DataFrame | None,
    settings: Settings,
    season_start: dt.date,
    season_end: dt.date,
    *,
    ledger: Ledger | None = None,
) -> pl.DataFrame:
    """Per decision day: the executed transfer lines' estimate, measurement and truth.

    Returns
    -------
    polars.DataFrame
        :data:`MEASUREMENT_COLUMNS` (currency; ``true`` null without ``truth``).
    """
    lines = _executed_lines(result)
    season = (season_start, season_end)
    m = _measure_groups(result, sales, settings, season, lines, "decision_date", ledger)
    if truth is not None and truth.height:
        m = m.join(truth.select("decision_date", "true"), on="decision_date", how="left")
    else:
        m = m.with_columns(pl.lit(None, dtype=pl.Float64).alias("true"))
    return m.select(MEASUREMENT_COLUMNS)


def holdback_run(
    result: SimResult,
    sales: pl.DataFrame,
    held: pl.DataFrame,
    settings: Settings,
    season_start: dt.date,
    season_end: dt.date,
) -> dict[str, float]:
    """The executed / held-back comparison of a run's transfer lines (see
    :func:`stocktailor.measure.holdback_estimate`)."""
    days = result.daily["date"].to_list()
    ex = _executed_lines(result).select(
        "decision_date",
        "sku",
        "from_id",
        "to_id",
        "units",
        "cost",
        pl.lit(True).alias("executed"),
    )
    if held.height == 0 or "day_index" not in held.columns:
        return holdback_estimate(pair_outcomes_empty())
    hb = held.select(
        pl.col("day_index")
        .map_elements(lambda i: days[int(i)], return_dtype=pl.Date)
        .alias("decision_date"),
        pl.col("sku").cast(pl.String),
        pl.col("from_id").cast(pl.String),
        pl.col("to_id").cast(pl.String),
        pl.col("units").cast(pl.Int64),
        pl.lit(0.0).alias("cost"),
        pl.lit(False).alias("executed"),
    )
    lines = pl.concat([ex, hb], how="vertical_relaxed")
    ledger = run_ledger(
        result, sales, settings, season_start, season_end, lines["sku"].unique().to_list()
    )
    return holdback_estimate(pair_outcomes(ledger, lines), level=settings.measure.interval)


def pair_outcomes_empty() -> pl.DataFrame:
    """An outcomes frame without rows."""
    return pl.DataFrame(schema={"executed": pl.Boolean, "outcome": pl.Float64, "pre": pl.Float64})


def measure_season(
    network: Any, settings: Settings, result: SimResult, policy: Any
) -> dict[str, pl.DataFrame | None]:
    """The measurement of a backtest run: ``uplift_measurement`` (per decision day, see
    :func:`measure_run`), ``uplift_by_category`` (per decision day and category, see
    :func:`measure_by_category`) and ``holdback_estimate`` (one row; None without held-back
    lines).

    ``policy`` is the run's :class:`SalesRecorder`; ``result.info["uplift_truth"]`` the truth.
    """
    history = getattr(policy, "history_", None)
    if not isinstance(history, History):
        return {"uplift_measurement": None, "uplift_by_category": None, "holdback_estimate": None}
    sales = sales_frame(history, result.space)
    start = network.season_start
    end = network.season_end
    truth = result.info.get("uplift_truth")
    skus = _executed_lines(result)["sku"].unique().to_list()
    ledger = run_ledger(result, sales, settings, start, end, skus)
    m = measure_run(result, sales, truth, settings, start, end, ledger=ledger)
    by_category = measure_by_category(result, sales, settings, start, end, ledger=ledger)
    held = result.info.get("held_back")
    hb = None
    if isinstance(held, pl.DataFrame) and held.height:
        est = holdback_run(result, sales, held, settings, start, end)
        hb = pl.DataFrame([est]).with_columns(
            pl.lit(float(m["measured"].sum())).alias("ledger_total"),
            pl.lit(
                float(m["true"].sum()) if m["true"].null_count() < m.height else None,
                dtype=pl.Float64,
            ).alias("true_total"),
        )
    return {"uplift_measurement": m, "uplift_by_category": by_category, "holdback_estimate": hb}
