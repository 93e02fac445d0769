"""The ``[measure]`` settings section (kept beside the measure package; part of
:class:`stocktailor.config.Settings`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["MeasureConfig"]


class MeasureConfig(BaseModel):
    """Measurement of executed lines (``stocktailor measure``, ``backtest --measure``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    replicates: int = Field(
        200, ge=10, description="Draws of the censored demand behind each measured interval."
    )
    interval: float = Field(
        0.9, gt=0.0, lt=1.0, description="Coverage of the measured intervals (0.9: 5th-95th)."
    )
    prior_strength: float = Field(
        2.0,
        gt=0.0,
        description="Weight of the store-level prior of a cell's demand level when the "
        "censored demand is re-estimated, units.",
    )
    rate_window_days: int = Field(
        7, ge=1, description="Smoothing window of a SKU's daily demand per store, days."
    )
    rate_prior_cell_days: float = Field(
        28.0,
        ge=0.0,
        description="Weight of the day's factor over every SKU in a SKU's daily rate (its own "
        "in-stock cell-days of the window count one each), cell-days.",
    )
    propagate_moves: bool = Field(
        False,
        description="Serve the later moves again from the counterfactual stock (a move the "
        "measured lines made possible is cut; one they cut ships in full). Off by default: "
        "see docs/measurement.md, 'Later moves served again'.",
    )
    random_state: int = Field(0, description="Seeds the measurement's draws.")
    calibrate: bool = Field(
        False,
        description="Scale a published run's transfer lines' net benefit by the realised / "
        "estimated ratio of measured lines like them (stocktailor.measure.calibration); lines "
        "the ratio takes to 0 or below are not published.",
    )
    calibration_strength: float = Field(
        20.0,
        ge=0.0,
        description="Credibility k of the calibration: a group of n measured lines weighs "
        "n / (n + k) against its coarser group (1 at the top), lines.",
    )
    calibration_max_ratio: float = Field(
        2.0, gt=0.0, description="Largest calibration ratio (the smallest is 0)."
    )
