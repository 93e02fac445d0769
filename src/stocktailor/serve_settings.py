"""The ``[serve]`` settings section: the web app, the exception rules, sign-in limits (part of
:class:`stocktailor.config.Settings`, kept in its own module so config.py stays small)."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["RETIRED_KEYS", "ServeConfig"]

logger = logging.getLogger(__name__)

RETIRED_KEYS = frozenset(
    {"exception_loss_probability", "exception_large_move_units", "exception_large_move_share"}
)
"""Keys of the exception rules before 2026-12-05 (issue 13), accepted and ignored."""


class ServeConfig(BaseModel):
    """Web app settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default: SQLite in the workspace."
    )
    exception_band_share: float = Field(
        0.1,
        gt=0.0,
        lt=1.0,
        description="low_confidence: net p10 < 0 and net benefit under this share of the "
        "line's band (net p90 - net p10); docs/workflow.md gives the reasons of each default.",
    )
    exception_material_loss: float = Field(
        1.0, ge=0.0, description="low_confidence: p10 loss >= this x the run's median line net."
    )
    exception_new_style_max_units: int = Field(
        0,
        ge=0,
        description="A transfer is the first of its style to a store when the store holds at "
        "most this many units of the style, sold none of it this season and had no approved "
        "transfer of it before, units.",
    )
    exception_large_move_iqr: float = Field(
        3.0, gt=0.0, description="large_move: units above Q3 + this x IQR of the kind's lines."
    )
    exception_source_cover_weeks: float = Field(
        2.0, ge=0.0, description="large_move: source left under this many weeks of its demand."
    )
    exception_late_arrival_days: int = Field(
        14,
        ge=0,
        description="Soft rule: a line arriving less than this many days before the "
        "product's season end is flagged, days.",
    )
    cookie_secure: bool = Field(
        False, description="Mark the dashboard session cookie Secure (serve behind HTTPS)."
    )
    signin_failures_per_minute: int = Field(
        10,
        ge=1,
        description="Failed sign-ins a client address may make within a minute; further "
        "attempts are refused (429) until the minute has passed.",
    )

    @model_validator(mode="before")
    @classmethod
    def _retired(cls, data: Any) -> Any:
        """Settings files written for the old exception rules still load: their keys are
        ignored with a warning rather than refused (the settings file is a contract)."""
        if isinstance(data, dict):
            old = sorted(RETIRED_KEYS & set(data))
            if old:
                logger.warning("[serve] %s: retired with the old exception rules; ignored", old)
                data = {k: v for k, v in data.items() if k not in RETIRED_KEYS}
        return data
