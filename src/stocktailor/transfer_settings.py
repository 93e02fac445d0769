"""The ``[transfers]`` settings section (kept beside config, not inside the transfers package,
so that config does not import the planner; part of :class:`stocktailor.config.Settings`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["TransfersConfig"]


class TransfersConfig(BaseModel):
    """Lanes planners reject: how their rejections raise the bar for the next run's lines."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rejected_lane_threshold: int = Field(
        3,
        ge=1,
        description="Rejections of a lane's lines as unreliable (within the lookback) from which "
        "the next published run adds rejected_lane_premium to the lane.",
    )
    rejected_lane_premium: float = Field(
        50.0,
        ge=0.0,
        description="Added to the fixed cost of one shipment on such a lane when planning, so "
        "its lines are proposed only when together they earn this much more, currency per "
        "shipment (not reported as a cost of the lines).",
    )
    rejected_lane_lookback_days: int = Field(
        90, ge=1, description="Rejections decided within this many days before the run count, days."
    )
    rejected_lane_reasons: tuple[str, ...] = Field(
        ("lane unreliable",),
        description="A rejection counts when its reason contains one of these (case-insensitive).",
    )
