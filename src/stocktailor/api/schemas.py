"""Request and response models of the API, and the patterns its inputs must match."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from stocktailor import workflow

__all__ = [
    "ERRORS",
    "FILTER_PATTERN",
    "MAX_ID",
    "MAX_PAGE_SIZE",
    "TEXT_PATTERN",
    "OutModel",
]


FILTER_PATTERN = r"^[\w][\w .\-/+#&()]{0,63}$"
"""Accepted filter values: a word character then up to 63 word characters, spaces or
``. - / + # & ( )`` (quotes, semicolons, ``=``, ``%`` and control characters are refused)."""

TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
"""Free text (reasons): no control characters other than tab and newlines."""

MAX_PAGE_SIZE = 200
MAX_ID = 2**31 - 1

FilterValue = Annotated[
    str | None,
    Query(max_length=64, pattern=FILTER_PATTERN, description="Exact value (max 64 characters)."),
]
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
Status = Literal["pending", "approved", "rejected", "edited"]
Kind = Literal["transfer", "allocation"]
ExceptionKind = Literal["low_confidence", "large_move", "soft_rule", "first_transfer_of_style"]
SortKey = Literal[
    "net_benefit",
    "expected_gain",
    "expected_source_loss",
    "transfer_cost",
    "units",
    "sku",
    "style",
    "category",
    "from_id",
    "to_id",
    "ship_date",
    "status",
    "id",
]


def _as_utc(value: dt.datetime) -> dt.datetime:
    """Times are stored as naive UTC; the API states the zone (RFC 3339)."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


UtcDatetime = Annotated[dt.datetime, AfterValidator(_as_utc)]


class OutModel(BaseModel):
    """Base of the response models (read from dicts or ORM rows)."""

    model_config = ConfigDict(from_attributes=True)


class ErrorOut(BaseModel):
    """An error: ``detail`` says what went wrong."""

    detail: str


class ValidationErrorOut(BaseModel):
    """Invalid input: ``message`` summarises, ``errors`` lists each problem."""

    detail: str
    message: str
    errors: list[dict[str, Any]]


class ConflictOut(BaseModel):
    """A decision on a stale version: ``current`` is the line's state now."""

    detail: str
    current: dict[str, Any]


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing or invalid token"},
    403: {"model": ErrorOut, "description": "Role not allowed"},
    404: {"model": ErrorOut, "description": "Not found"},
    422: {"model": ValidationErrorOut, "description": "Invalid input"},
}


class UserOut(OutModel):
    name: str
    role: str


class RunOut(OutModel):
    id: int
    as_of: dt.date
    created_at: UtcDatetime
    created_by: str | None
    status: str
    data_fingerprint: str
    kpis: dict[str, Any]
    n_recommendations: int
    status_counts: dict[str, int]


class RunDetailOut(RunOut):
    config: dict[str, Any]
    validation: list[dict[str, Any]] | None = None
    by_status: dict[str, dict[str, float]]
    n_exceptions: int


class ClusterOut(OutModel):
    cluster_id: str
    cluster_name: str
    stores: int
    on_hand: int | None
    sold_units: int | None
    weekly_demand: float | None
    sell_through: float | None
    cover_weeks: float | None
    inbound_units: int
    outbound_units: int


class KpisOut(OutModel):
    run_id: int
    as_of: dt.date
    kpis: dict[str, Any]
    by_status: dict[str, dict[str, float]]
    clusters: list[ClusterOut]


class RecommendationOut(OutModel):
    id: int
    run_id: int
    kind: str
    external_id: str | None
    sku: str
    style: str | None
    color: str | None
    size: str | None
    category: str | None
    from_id: str
    to_id: str
    from_cluster: str | None
    to_cluster: str | None
    units: int
    original_units: int
    ship_date: dt.date | None
    arrival_date: dt.date | None
    transfer_cost: float
    expected_gain: float
    expected_source_loss: float
    net_benefit: float
    gain_p10: float | None
    gain_p90: float | None
    net_p10: float | None = None
    net_p90: float | None = None
    loss_probability: float | None = None
    group_key: str | None = None
    reason: str
    from_on_hand: int | None
    to_on_hand: int | None
    from_weekly_demand: float | None
    to_weekly_demand: float | None
    from_cover_weeks: float | None
    to_cover_weeks: float | None
    n_exceptions: int
    status: str
    version: int
    decided_by: str | None
    decided_at: UtcDatetime | None
    decision_reason: str | None
    auto_rule: str | None = None
    exported_at: UtcDatetime | None = None


class RecommendationPage(OutModel):
    items: list[RecommendationOut]
    total: int
    page: int
    page_size: int


class RecommendationGroupOut(OutModel):
    """One recommendation: the lines of one style-colour on one lane, sizes inside."""

    group_key: str | None
    kind: str | None
    style: str | None
    color: str | None
    from_id: str | None
    to_id: str | None
    from_cluster: str | None
    to_cluster: str | None
    lines: int
    units: int
    sizes: str
    expected_gain: float | None
    net_benefit: float | None
    loss_probability: float | None
    n_exceptions: int
    pending: int
    status: str


class RecommendationGroupPage(OutModel):
    items: list[RecommendationGroupOut]
    total: int
    page: int
    page_size: int


class BandPoint(OutModel):
    week_start: dt.date
    mean: float
    p10: float
    p50: float
    p90: float


class ExceptionBrief(OutModel):
    kind: str
    detail: str


class DecisionRecord(OutModel):
    id: int
    action: str
    units: int
    reason: str | None
    user: str
    at: UtcDatetime
    from_version: int
    rule: str | None = None


class RecommendationDetail(RecommendationOut):
    as_of: dt.date
    explanation: str
    from_store: dict[str, Any]
    to_store: dict[str, Any]
    forecast: dict[str, list[BandPoint]]
    exceptions: list[ExceptionBrief]
    decisions: list[DecisionRecord]


class DecisionIn(BaseModel):
    """A decision on one line, naming the version of the line the decider saw."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["approve", "reject", "edit"]
    version: int = Field(ge=0, le=MAX_ID)
    units: int | None = Field(None, ge=1, le=1_000_000, description="New units (edit only).")
    reason: str | None = Field(
        None,
        max_length=workflow.MAX_REASON_LENGTH,
        pattern=TEXT_PATTERN,
        description="Why (required to reject).",
    )


class DecisionOut(OutModel):
    recommendation_id: int
    status: str
    units: int
    version: int
    applied: bool
    decision_id: int | None


class FilterIn(BaseModel):
    """Which lines a bulk decision applies to (only pending lines are changed)."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind | None = None
    cluster: str | None = Field(None, max_length=64, pattern=FILTER_PATTERN)
    store: str | None = Field(None, max_length=64, pattern=FILTER_PATTERN)
    from_store: str | None = Field(None, max_length=64, pattern=FILTER_PATTERN)
    to_store: str | None = Field(None, max_length=64, pattern=FILTER_PATTERN)
    category: str | None = Field(None, max_length=64, pattern=FILTER_PATTERN)
    style: str | None = Field(None, max_length=64, pattern=FILTER_PATTERN)
    sku: str | None = Field(None, max_length=64, pattern=FILTER_PATTERN)
    exception: ExceptionKind | Literal["any"] | None = None
    min_net_benefit: float | None = Field(None, ge=-1e12, le=1e12)
    group: str | None = Field(None, max_length=64, pattern=FILTER_PATTERN)


class BulkDecisionIn(BaseModel):
    """Approve or reject every pending line of a run matching ``filter``."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["approve", "reject"]
    reason: str | None = Field(None, max_length=workflow.MAX_REASON_LENGTH, pattern=TEXT_PATTERN)
    filter: FilterIn = Field(default_factory=FilterIn)


class BulkDecisionOut(OutModel):
    matched: int
    applied: int
    status: str


class ExceptionOut(OutModel):
    id: int
    kind: str
    detail: str
    recommendation_id: int
    sku: str
    style: str | None
    from_id: str
    to_id: str
    units: int
    net_benefit: float
    status: str


class ExceptionPage(OutModel):
    items: list[ExceptionOut]
    total: int
    page: int
    page_size: int


class UserIn(BaseModel):
    """A new user."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=FILTER_PATTERN)
    role: Literal["viewer", "planner", "admin"]


class NewUserOut(OutModel):
    name: str
    role: str
    token: str


class SignalLineOut(OutModel):
    """A line a rising post series touches (its style, into the series' scope)."""

    id: int
    line_no: int
    kind: str
    sku: str
    style: str | None
    color: str | None
    size: str | None
    from_id: str
    to_id: str
    units: int
    net_benefit: float
    to_weekly_demand: float | None
    status: str


class SignalOut(OutModel):
    """A post series (scope x attribute value) rising on the run's as-of date.

    ``index`` is weighted posts per day (trailing mean), ``change`` the index over the index
    ten days before, ``novelty`` the index over the series' own baseline, ``posts`` the
    matched posts in those days; ``stores`` is null for scope ``all`` (every store);
    ``n_lines`` and ``units`` count every line touched, ``lines`` lists up to 50 of them.
    """

    scope: str
    scope_id: str | None
    attribute: str
    value: str
    index: float | None
    change: float | None
    novelty: float | None
    posts: int | None
    text: str
    styles: list[str]
    stores: list[str] | None
    n_lines: int
    units: int
    lines: list[SignalLineOut]


class RunSignalsOut(OutModel):
    """A run's rising post series; ``has_posts`` is false when its data had no posts."""

    run_id: int
    as_of: dt.date
    has_posts: bool
    signals: list[SignalOut]
