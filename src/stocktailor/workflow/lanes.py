"""Lanes planners keep rejecting as unreliable (issue 15): read-only counts and their premium.

A rejection counts for a ``(from_id, to_id)`` lane when a line on it is *currently* rejected
(``recommendations.status = 'rejected'``), was decided within the lookback, and its decision
reason contains one of the configured phrases (default ``"lane unreliable"``),
case-insensitively. Reasons are free text (``decide`` and ``bulk_decide`` store the planner's
text in ``decision_reason``), so a phrase is the reason code. Counting the lines' current state
makes a rejection reversible: a planner who approves or edits the line again takes it back.
Every rejected line counts once (a bulk rejection of four lines on a lane counts four).

:func:`lane_premiums` turns the counts into the premium the next run adds to the lane
(``[transfers]`` settings); :func:`lane_premium_note` reads what a published run recorded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl
from sqlalchemy import Engine, func, inspect, or_, select

from stocktailor.transfer_settings import TransfersConfig
from stocktailor.workflow.common import now_utc
from stocktailor.workflow.models import Recommendation

__all__ = [
    "LANE_PREMIUM_SCHEMA",
    "LANE_REJECTION_SCHEMA",
    "RUN_CONFIG_KEY",
    "lane_premium_note",
    "lane_premiums",
    "lane_rejections",
    "premiums_for_run",
]

LANE_REJECTION_SCHEMA: dict[str, pl.DataType] = {
    "from_id": pl.String(),
    "to_id": pl.String(),
    "rejections": pl.Int64(),
    "last_rejected": pl.Datetime("us"),
}
"""Columns of :func:`lane_rejections` (``last_rejected``: naive UTC)."""

LANE_PREMIUM_SCHEMA: dict[str, pl.DataType] = {**LANE_REJECTION_SCHEMA, "premium": pl.Float64()}
"""Columns of :func:`lane_premiums` (``premium``: currency per shipment on the lane)."""

RUN_CONFIG_KEY = "lane_premiums"
"""Key of a published run's ``config`` holding the lane premiums the run was planned with."""


def lane_rejections(
    engine: Engine,
    *,
    reasons: Sequence[str] = ("lane unreliable",),
    lookback_days: int = 90,
    now: dt.datetime | None = None,
) -> pl.DataFrame:
    """Per lane, the lines rejected as unreliable within the lookback (read-only).

    Parameters
    ----------
    engine
        The workflow database (migrated; an empty or not yet migrated one gives no rows).
    reasons
        Phrases a decision reason must contain (one of them, case-insensitive).
    lookback_days
        Rejections decided in ``(now - lookback_days, now]`` count, days.
    now
        Naive UTC end of the window (default: now).

    Returns
    -------
    polars.DataFrame
        ``from_id, to_id, rejections, last_rejected`` (:data:`LANE_REJECTION_SCHEMA`), one row
        per lane with at least one counted rejection, most rejected first.
    """
    if lookback_days < 1:
        msg = f"lookback_days: must be at least 1, got {lookback_days}"
        raise ValueError(msg)
    phrases = [p.strip().lower() for p in reasons if p.strip()]
    if not phrases or not inspect(engine).has_table(Recommendation.__tablename__):
        return pl.DataFrame(schema=LANE_REJECTION_SCHEMA)
    end = now or now_utc()
    start = end - dt.timedelta(days=lookback_days)
    r = Recommendation
    reason = func.lower(r.decision_reason)
    query = (
        select(r.from_id, r.to_id, func.count().label("n"), func.max(r.decided_at).label("last"))
        .where(
            r.status == "rejected",
            r.decided_at > start,
            r.decided_at <= end,
            or_(*(reason.contains(p, autoescape=True) for p in phrases)),
        )
        .group_by(r.from_id, r.to_id)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    frame = pl.DataFrame(
        [(a, b, int(n), last) for a, b, n, last in rows],
        schema=LANE_REJECTION_SCHEMA,
        orient="row",
    )
    return frame.sort(["rejections", "from_id", "to_id"], descending=[True, False, False])


def lane_premiums(rejections: pl.DataFrame, cfg: TransfersConfig) -> pl.DataFrame:
    """The lanes rejected at least ``cfg.rejected_lane_threshold`` times, with their premium.

    Returns
    -------
    polars.DataFrame
        :data:`LANE_PREMIUM_SCHEMA`: ``premium`` is ``cfg.rejected_lane_premium`` (currency per
        shipment, what :func:`stocktailor.plan.plan_moves` adds to the lane's fixed cost). No
        rows when the premium is 0.
    """
    missing = set(LANE_REJECTION_SCHEMA) - set(rejections.columns)
    if missing:
        msg = f"lane rejections: missing columns {sorted(missing)}"
        raise ValueError(msg)
    if cfg.rejected_lane_premium <= 0:
        return pl.DataFrame(schema=LANE_PREMIUM_SCHEMA)
    return (
        rejections.select(list(LANE_REJECTION_SCHEMA))
        .filter(pl.col("rejections") >= cfg.rejected_lane_threshold)
        .with_columns(pl.lit(cfg.rejected_lane_premium, dtype=pl.Float64).alias("premium"))
    )


def premiums_for_run(engine: Engine, cfg: TransfersConfig) -> pl.DataFrame:
    """:func:`lane_premiums` of the rejections counted now with ``cfg``'s reasons and lookback."""
    rejections = lane_rejections(
        engine, reasons=cfg.rejected_lane_reasons, lookback_days=cfg.rejected_lane_lookback_days
    )
    return lane_premiums(rejections, cfg)


def lane_premium_note(
    run_config: Mapping[str, Any] | None, from_id: str, to_id: str
) -> dict[str, Any] | None:
    """What a published run recorded for a lane's premium, or None (no premium on it).

    ``run_config`` is the run's ``config`` (:func:`stocktailor.workflow.get_run`); its
    :data:`RUN_CONFIG_KEY` entry lists ``from_id, to_id, rejections, last_rejected, premium``
    and ``lines`` (the run's lines on the lane) per lane.
    """
    for row in (run_config or {}).get(RUN_CONFIG_KEY) or []:
        if isinstance(row, Mapping) and (row.get("from_id"), row.get("to_id")) == (from_id, to_id):
            return dict(row)
    return None
