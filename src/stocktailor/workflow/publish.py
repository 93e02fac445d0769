"""Publishing a plan run: its lines with product, cluster, stock and demand context."""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl
from scipy import special
from sqlalchemy import Engine, insert, select
from sqlalchemy.engine import Connection

from stocktailor.automation import AutoApprovalRule
from stocktailor.config import ServeConfig
from stocktailor.plan import PlanResult
from stocktailor.workflow.autoapprove import apply_auto_approval
from stocktailor.workflow.common import audit, jsonable, now_utc
from stocktailor.workflow.db import write_engine
from stocktailor.workflow.flags import flag_exceptions
from stocktailor.workflow.models import (
    PlanRun,
    Recommendation,
    RecommendationException,
    RunForecast,
    RunStore,
)
from stocktailor.workflow.signals import signal_rows

__all__ = ["publish_run"]

logger = logging.getLogger(__name__)


DEMAND_WEEKS = 4
"""Forecast weeks averaged into the weekly demand used for cover, weeks."""


def clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def col_or(df: pl.DataFrame, name: str, default: Any, dtype: pl.DataType) -> pl.Expr:
    if name in df.columns:
        return pl.col(name).cast(dtype, strict=False)
    return pl.lit(default, dtype=dtype)


def _risk_columns(f: pl.DataFrame) -> list[pl.Expr]:
    """The plan's net band, loss probability and recommendation (group) id of each line."""
    return [
        col_or(f, "net_p10", None, pl.Float64()).fill_nan(None).alias("net_p10"),
        col_or(f, "net_p90", None, pl.Float64()).fill_nan(None).alias("net_p90"),
        col_or(f, "loss_probability", None, pl.Float64()).fill_nan(None).alias("loss_probability"),
        col_or(f, "recommendation_id", None, pl.String()).alias("group_key"),
    ]


_Z90 = 1.2815515655446004
"""The 90th percentile of the standard normal: p10-p90 spans 2 x 1.2816 standard deviations."""


def _fill_risk_and_group(lines: pl.DataFrame) -> pl.DataFrame:
    """Lines without the plan's loss probability get one from the gain band; lines without a
    recommendation id are grouped by kind, style-colour and lane."""
    net = lines["net_benefit"].to_numpy().astype(np.float64)
    p10 = lines["gain_p10"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    p90 = lines["gain_p90"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    sd = (p90 - p10) / (2 * _Z90)
    with np.errstate(divide="ignore", invalid="ignore"):
        approx = np.where(sd > 0, special.ndtr(-net / np.where(sd > 0, sd, 1.0)), np.nan)
    approx = np.where(np.isfinite(sd) & (sd == 0), (net < 0).astype(np.float64), approx)
    # Keys only group lines within one run, so polars' hash (stable within a version) is enough.
    fallback_key = pl.format(
        "K{}",
        pl.concat_str(
            [pl.col(c).cast(pl.String).fill_null("") for c in ("kind", "style", "color")]
            + [pl.col("from_id"), pl.col("to_id")],
            separator="|",
        ).hash(seed=0),
    )
    return lines.with_columns(
        pl.coalesce(pl.col("loss_probability"), pl.Series("_approx", approx).fill_nan(None)).alias(
            "loss_probability"
        ),
        pl.coalesce(pl.col("group_key"), fallback_key).alias("group_key"),
    )


def _move_columns(lines: pl.DataFrame, as_of: dt.date) -> list[pl.Expr]:
    """The lane, units, dates, transfer cost and expected gain of transfer or allocation lines
    (ships on ``as_of`` unless a ``ship_date`` says otherwise)."""
    return [
        pl.col("from_id").cast(pl.String),
        pl.col("to_id").cast(pl.String),
        pl.col("units").cast(pl.Int64),
        col_or(lines, "ship_date", as_of, pl.Date()).alias("ship_date"),
        col_or(lines, "arrival_date", None, pl.Date()).alias("arrival_date"),
        col_or(lines, "transfer_cost", 0.0, pl.Float64()).fill_null(0.0).alias("transfer_cost"),
        pl.col("expected_gain").cast(pl.Float64),
    ]


def _band_columns(lines: pl.DataFrame) -> list[pl.Expr]:
    """The gain band, the risk columns and the reason of transfer or allocation lines."""
    return [
        col_or(lines, "gain_p10", None, pl.Float64()).fill_nan(None).alias("gain_p10"),
        col_or(lines, "gain_p90", None, pl.Float64()).fill_nan(None).alias("gain_p90"),
        *_risk_columns(lines),
        col_or(lines, "reason", "", pl.String()).fill_null("").alias("reason"),
    ]


def _transfer_lines(plan: PlanResult) -> pl.DataFrame:
    t = plan.transfers
    soft = next((c for c in ("soft_rules", "soft_rule", "rule_flags") if c in t.columns), None)
    return t.select(
        pl.lit("transfer").alias("kind"),
        col_or(t, "transfer_id", None, pl.String()).alias("external_id"),
        pl.col("sku").cast(pl.String),
        col_or(t, "style", None, pl.String()).alias("style_t"),
        col_or(t, "color", None, pl.String()).alias("color_t"),
        col_or(t, "size", None, pl.String()).alias("size_t"),
        *_move_columns(t, plan.as_of),
        col_or(t, "expected_source_loss", 0.0, pl.Float64())
        .fill_null(0.0)
        .alias("expected_source_loss"),
        col_or(t, "net_benefit", None, pl.Float64()).alias("net_benefit"),
        *_band_columns(t),
        (pl.col(soft).cast(pl.String) if soft else pl.lit(None, dtype=pl.String)).alias(
            "soft_rules"
        ),
    ).with_columns(
        pl.coalesce(
            "net_benefit",
            pl.col("expected_gain") - pl.col("expected_source_loss") - pl.col("transfer_cost"),
        ).alias("net_benefit")
    )


def _allocation_lines(plan: PlanResult) -> pl.DataFrame:
    a = plan.allocation
    return a.select(
        pl.lit("allocation").alias("kind"),
        pl.lit(None, dtype=pl.String).alias("external_id"),
        pl.col("sku").cast(pl.String),
        pl.lit(None, dtype=pl.String).alias("style_t"),
        pl.lit(None, dtype=pl.String).alias("color_t"),
        pl.lit(None, dtype=pl.String).alias("size_t"),
        *_move_columns(a, plan.as_of),
        pl.lit(0.0).alias("expected_source_loss"),
        pl.lit(None, dtype=pl.Float64).alias("net_benefit"),
        *_band_columns(a),
        pl.lit(None, dtype=pl.String).alias("soft_rules"),
    ).with_columns((pl.col("expected_gain") - pl.col("transfer_cost")).alias("net_benefit"))


def _weekly_demand(forecast: pl.DataFrame) -> pl.DataFrame:
    if forecast.is_empty() or "mean" not in forecast.columns:
        return pl.DataFrame(
            schema={"store_id": pl.String, "sku": pl.String, "weekly_demand": pl.Float64}
        )
    weeks = forecast.select(pl.col("week_start").unique().sort()).head(DEMAND_WEEKS)
    return (
        forecast.join(weeks, on="week_start", how="semi")
        .group_by(pl.col("store_id").cast(pl.String), pl.col("sku").cast(pl.String))
        .agg(pl.col("mean").cast(pl.Float64).mean().alias("weekly_demand"))
    )


def _context_frames(
    plan: PlanResult, products: pl.DataFrame, positions: pl.DataFrame | None
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Return (clusters, products, weekly demand, positions) keyed by strings."""
    clusters = (
        plan.clusters.select(
            pl.col("store_id").cast(pl.String),
            pl.col("cluster_id").cast(pl.String),
            col_or(plan.clusters, "cluster_name", None, pl.String()).alias("cluster_name"),
        )
        if not plan.clusters.is_empty()
        else pl.DataFrame(
            schema={"store_id": pl.String, "cluster_id": pl.String, "cluster_name": pl.String}
        )
    )
    prods = products.select(
        pl.col("sku").cast(pl.String),
        pl.col("style").cast(pl.String),
        pl.col("color").cast(pl.String),
        pl.col("size").cast(pl.String),
        pl.col("category").cast(pl.String),
        col_or(products, "season_end", None, pl.Date()).alias("season_end"),
    ).unique("sku", keep="first")
    demand = _weekly_demand(plan.forecast)
    if positions is not None and not positions.is_empty():
        pos = positions.group_by(
            pl.col("store_id").cast(pl.String), pl.col("sku").cast(pl.String)
        ).agg(
            pl.col("on_hand").cast(pl.Int64).sum(),
            col_or(positions, "sold_units", None, pl.Int64()).sum().alias("sold_units"),
        )
    else:
        pos = pl.DataFrame(
            schema={
                "store_id": pl.String,
                "sku": pl.String,
                "on_hand": pl.Int64,
                "sold_units": pl.Int64,
            }
        )
    return clusters, prods, demand, pos


def _join_context(
    lines: pl.DataFrame,
    prods: pl.DataFrame,
    clusters: pl.DataFrame,
    pos: pl.DataFrame,
    demand: pl.DataFrame,
) -> pl.DataFrame:
    """Add product, cluster, on-hand and weekly demand of both ends to every line."""
    lines = lines.join(prods, on="sku", how="left").with_columns(
        pl.coalesce("style", "style_t").alias("style"),
        pl.coalesce("color", "color_t").alias("color"),
        pl.coalesce("size", "size_t").alias("size"),
    )
    for end in ("from", "to"):
        lines = (
            lines.join(
                clusters.select("store_id", pl.col("cluster_id").alias(f"{end}_cluster")),
                left_on=f"{end}_id",
                right_on="store_id",
                how="left",
            )
            .join(
                pos.select("store_id", "sku", pl.col("on_hand").alias(f"{end}_on_hand")),
                left_on=[f"{end}_id", "sku"],
                right_on=["store_id", "sku"],
                how="left",
            )
            .join(
                demand.rename({"weekly_demand": f"{end}_weekly_demand"}),
                left_on=[f"{end}_id", "sku"],
                right_on=["store_id", "sku"],
                how="left",
            )
        )
    style_pos = (
        pos.join(prods.select("sku", "style"), on="sku", how="inner")
        .group_by("store_id", "style")
        .agg(
            pl.col("on_hand").sum().alias("to_style_units"),
            pl.col("sold_units").sum().alias("to_style_sold"),
        )
    )
    lines = lines.join(
        style_pos, left_on=["to_id", "style"], right_on=["store_id", "style"], how="left"
    ).sort("line_no")
    bad = lines.filter(pl.col("units") <= 0)
    if not bad.is_empty():
        row = int(bad["line_no"][0])
        msg = f"publish_run: line {row} has units {bad['units'][0]}; units must be positive"
        raise ValueError(msg)
    return lines


def _store_stats(
    stores: pl.DataFrame,
    clusters: pl.DataFrame,
    pos: pl.DataFrame,
    demand: pl.DataFrame,
    positions: pl.DataFrame | None,
) -> pl.DataFrame:
    """Per location: name, place, cluster, on hand, sold and weekly demand."""
    stats = (
        stores.select(
            pl.col("store_id").cast(pl.String),
            col_or(stores, "name", None, pl.String()).alias("name"),
            pl.col("kind").cast(pl.String),
            col_or(stores, "city", None, pl.String()).alias("city"),
            col_or(stores, "region", None, pl.String()).alias("region"),
            pl.col("latitude").cast(pl.Float64),
            pl.col("longitude").cast(pl.Float64),
        )
        .join(clusters, on="store_id", how="left")
        .join(
            pos.group_by("store_id").agg(pl.col("on_hand").sum(), pl.col("sold_units").sum()),
            on="store_id",
            how="left",
        )
        .join(
            demand.group_by("store_id").agg(pl.col("weekly_demand").sum()),
            on="store_id",
            how="left",
        )
    )
    if positions is None or positions.is_empty():
        stats = stats.with_columns(
            pl.lit(None, dtype=pl.Int64).alias("on_hand"),
            pl.lit(None, dtype=pl.Int64).alias("sold_units"),
        )
    elif "sold_units" not in positions.columns:
        stats = stats.with_columns(pl.lit(None, dtype=pl.Int64).alias("sold_units"))
    return stats


def _prepare(
    plan: PlanResult,
    stores: pl.DataFrame,
    products: pl.DataFrame,
    positions: pl.DataFrame | None,
) -> tuple[pl.DataFrame | None, pl.DataFrame]:
    """Return (the run's lines with product, cluster, stock and demand context, store stats)."""
    parts = []
    if not plan.transfers.is_empty():
        parts.append(_transfer_lines(plan))
    if not plan.allocation.is_empty():
        parts.append(_allocation_lines(plan))
    clusters, prods, demand, pos = _context_frames(plan, products, positions)
    lines = None
    if parts:
        lines = pl.concat(parts, how="vertical_relaxed").with_row_index("line_no")
        lines = _fill_risk_and_group(_join_context(lines, prods, clusters, pos, demand))
    return lines, _store_stats(stores, clusters, pos, demand, positions)


_REC_COLUMNS = (
    "line_no",
    "kind",
    "external_id",
    "sku",
    "style",
    "color",
    "size",
    "category",
    "from_id",
    "to_id",
    "from_cluster",
    "to_cluster",
    "units",
    "ship_date",
    "arrival_date",
    "transfer_cost",
    "expected_gain",
    "expected_source_loss",
    "net_benefit",
    "gain_p10",
    "gain_p90",
    "net_p10",
    "net_p90",
    "loss_probability",
    "group_key",
    "reason",
    "from_on_hand",
    "to_on_hand",
    "from_weekly_demand",
    "to_weekly_demand",
)


def _check_columns(plan: PlanResult, stores: pl.DataFrame, products: pl.DataFrame) -> None:
    for name, frame, cols in (
        ("stores", stores, ("store_id", "kind", "latitude", "longitude")),
        ("products", products, ("sku", "style", "color", "size", "category")),
        ("transfers", plan.transfers, ("sku", "from_id", "to_id", "units", "expected_gain")),
        ("allocation", plan.allocation, ("sku", "from_id", "to_id", "units", "expected_gain")),
    ):
        missing = [c for c in cols if c not in frame.columns]
        if missing and not (frame.is_empty() and name in ("transfers", "allocation")):
            msg = f"publish_run: table {name} lacks column(s) {', '.join(missing)}"
            raise ValueError(msg)


def _prior_pairs(conn: Connection, lines: pl.DataFrame | None) -> set[tuple[str, str]]:
    """(store, style) pairs that already received an approved transfer in an earlier run."""
    if lines is None:
        return set()
    styles = lines.filter(pl.col("kind") == "transfer")["style"].drop_nulls().unique()
    if not len(styles):
        return set()
    prior_rows = conn.execute(
        select(Recommendation.to_id, Recommendation.style)
        .where(
            Recommendation.kind == "transfer",
            Recommendation.status.in_(("approved", "edited")),
            Recommendation.style.in_(styles.to_list()),
        )
        .distinct()
    )
    return {(r.to_id, r.style) for r in prior_rows}


def _insert_lines(
    conn: Connection, run_id: int, lines: pl.DataFrame, exceptions: list[dict[str, Any]]
) -> None:
    """Insert the lines (pending, version 0) and their exception rows."""
    counts: dict[int, int] = {}
    for e in exceptions:
        counts[e["line_no"]] = counts.get(e["line_no"], 0) + 1
    rec_rows = []
    for r in lines.select(_REC_COLUMNS).iter_rows(named=True):
        rec = {k: clean(v) for k, v in r.items()}
        rec.update(
            run_id=run_id,
            original_units=rec["units"],
            status="pending",
            version=0,
            n_exceptions=counts.get(rec["line_no"], 0),
        )
        rec_rows.append(rec)
    conn.execute(insert(Recommendation), rec_rows)
    if not exceptions:
        return
    ids = dict(
        conn.execute(
            select(Recommendation.line_no, Recommendation.id).where(Recommendation.run_id == run_id)
        ).all()
    )
    conn.execute(
        insert(RecommendationException),
        [
            {
                "run_id": run_id,
                "recommendation_id": ids[e["line_no"]],
                "kind": e["kind"],
                "detail": e["detail"],
            }
            for e in exceptions
        ],
    )


def _insert_forecast(
    conn: Connection, run_id: int, lines: pl.DataFrame, forecast: pl.DataFrame
) -> None:
    """Keep the forecast band of every (store, SKU) at either end of a line."""
    if forecast.is_empty():
        return
    pairs = pl.concat(
        [
            lines.select(pl.col("from_id").alias("store_id"), "sku"),
            lines.select(pl.col("to_id").alias("store_id"), "sku"),
        ]
    ).unique()
    fc = (
        forecast.with_columns(pl.col("store_id").cast(pl.String), pl.col("sku").cast(pl.String))
        .join(pairs, on=["store_id", "sku"], how="semi")
        .select(
            "store_id",
            "sku",
            pl.col("week_start").cast(pl.Date),
            *(pl.col(c).cast(pl.Float64) for c in ("mean", "p10", "p50", "p90")),
        )
        .unique(["store_id", "sku", "week_start"], keep="first")
    )
    if not fc.is_empty():
        conn.execute(
            insert(RunForecast), [r | {"run_id": run_id} for r in fc.iter_rows(named=True)]
        )


MAX_VALIDATION_ROWS = 2000
"""At most this many forecast validation rows (group x candidate) are kept with a run."""


def _validation_rows(plan: PlanResult) -> list[dict[str, Any]] | None:
    """The forecaster's validation (group, candidate, holdout WAPE and bias, chosen)."""
    v = getattr(plan, "validation", None)
    if not isinstance(v, pl.DataFrame) or v.is_empty():
        return None
    rows = [
        {k: clean(x) for k, x in r.items()}
        for r in v.head(MAX_VALIDATION_ROWS).iter_rows(named=True)
    ]
    out: list[dict[str, Any]] = jsonable(rows)
    return out


def publish_run(
    engine: Engine,
    plan: PlanResult,
    stores: pl.DataFrame,
    products: pl.DataFrame,
    *,
    positions: pl.DataFrame | None = None,
    config: ServeConfig | None = None,
    user: str | None = None,
    auto_approval: Sequence[AutoApprovalRule] = (),
) -> int:
    """Store a plan run and its lines for review; return the new run id.

    Parameters
    ----------
    engine
        From :func:`stocktailor.workflow.connect`, migrated with ``upgrade``.
    plan
        The plan run: transfers and allocation become recommendation lines (status pending),
        the forecast band of every (store, SKU) pair on a line is kept for the detail view,
        and its rising post series (``plan.signals``) are kept with the lines they touch
        (:func:`~stocktailor.workflow.signals.signal_rows`).
    stores
        The ``stores`` table (``store_id, kind, latitude, longitude`` and optional
        ``name, city, region``).
    products
        The ``products`` table (``sku, style, color, size, category`` and optional
        ``season_end``).
    positions
        Optional ``store_id, sku, on_hand`` (units) with optional ``sold_units`` (season to
        date): gives cover at source and destination, and sell-through by cluster.
    config
        Exception thresholds (default :class:`~stocktailor.config.ServeConfig`).
    user
        Who publishes (for the audit log).
    auto_approval
        Rules of the settings (``Settings.workflow.auto_approval``); they and the enabled rules
        in the database approve matching lines in the same transaction
        (:func:`~stocktailor.workflow.autoapprove.apply_auto_approval`).

    Returns
    -------
    int
        The run id.
    """
    cfg = config or ServeConfig()
    _check_columns(plan, stores, products)
    lines, store_stats = _prepare(plan, stores, products, positions)
    n_lines = 0 if lines is None else lines.height
    with write_engine(engine).begin() as conn:
        prior = _prior_pairs(conn, lines)
        exceptions = flag_exceptions(lines, prior, cfg) if lines is not None else []
        kpis = {str(k): clean(float(v)) for k, v in plan.kpis.items()}
        run_row = {
            "as_of": plan.as_of,
            "created_at": now_utc(),
            "created_by": user,
            "status": "published",
            "config": jsonable(plan.settings),
            "data_fingerprint": plan.data_fingerprint[:128],
            "kpis": kpis,
            "validation": _validation_rows(plan),
            "signals": signal_rows(getattr(plan, "signals", None), lines, products, stores),
            "n_recommendations": n_lines,
        }
        run_id = int(conn.execute(insert(PlanRun).returning(PlanRun.id), [run_row]).scalar_one())
        store_rows = [
            {k: clean(v) for k, v in r.items()} | {"run_id": run_id}
            for r in store_stats.iter_rows(named=True)
        ]
        if store_rows:
            conn.execute(insert(RunStore), store_rows)
        if lines is not None:
            _insert_lines(conn, run_id, lines, exceptions)
            _insert_forecast(conn, run_id, lines, plan.forecast)
        detail = {"lines": n_lines, "exceptions": len(exceptions), "as_of": plan.as_of.isoformat()}
        audit(conn, user, "publish", f"run:{run_id}", "applied", detail)
        if lines is not None:
            apply_auto_approval(engine, run_id, settings_rules=auto_approval, user=user, conn=conn)
    refresh_statistics(engine)
    logger.info("published run %d with %d lines", run_id, n_lines)
    return run_id


def refresh_statistics(engine: Engine) -> None:
    """Update the query planner's statistics so filtered listings pick the selective index."""
    with write_engine(engine).begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA analysis_limit=2000")
            conn.exec_driver_sql("ANALYZE recommendations")
            conn.exec_driver_sql("ANALYZE exceptions")
        elif conn.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE recommendations")
            conn.exec_driver_sql("ANALYZE exceptions")
