"""The ``[workflow]`` settings section: auto-approval rules and the scheduled export (part of
:class:`stocktailor.config.Settings`; the workflow applies them, see
:mod:`stocktailor.workflow.autoapprove`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ANY_STORE",
    "CATEGORY_PATTERN",
    "RULE_NAME_PATTERN",
    "STORE_PATTERN",
    "AutoApprovalRule",
    "WorkflowConfig",
]

RULE_NAME_PATTERN = r"^[\w][\w .\-]{0,63}$"
"""A rule name: a word character, then up to 63 word characters, spaces, dots or dashes."""

ANY_STORE = "*"
"""A lane end that matches every store."""

STORE_PATTERN = r"^(\*|[\w][\w .\-/+#&()]{0,63})$"
"""A lane end: a store id (the API's filter characters) or ``*`` for any store."""

CATEGORY_PATTERN = r"^[\w][\w .\-/+#&()]{0,63}$"
"""A category (the API's filter characters)."""

StoreEnd = Annotated[str, Field(pattern=STORE_PATTERN)]
Category = Annotated[str, Field(pattern=CATEGORY_PATTERN)]


class AutoApprovalRule(BaseModel):
    """One auto-approval rule: pending lines it matches are approved without a planner.

    A line matches when it carries no exception flag, its net benefit is at least
    ``min_net_benefit``, its gain p10 is above 0 (when ``require_positive_p10``), its lane is
    one of ``lanes`` and its category one of ``categories`` (empty: any). At most
    ``daily_unit_cap`` units are auto-approved by the rule per destination store and ship day.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=RULE_NAME_PATTERN, description="Unique name, shown on the lines.")
    min_net_benefit: float = Field(
        0.0, ge=-1e12, le=1e12, description="Lowest net benefit of a line, currency units."
    )
    require_positive_p10: bool = Field(
        True, description="Only lines whose gain p10 (gain_p10) is above 0; unknown fails."
    )
    lanes: tuple[tuple[StoreEnd, StoreEnd], ...] = Field(
        (),
        max_length=1000,
        description="(from store, to store) pairs, '*' for any store; empty: every lane.",
    )
    categories: tuple[Category, ...] = Field(
        (), max_length=200, description="Product categories; empty: every category."
    )
    daily_unit_cap: int | None = Field(
        None,
        ge=1,
        le=10_000_000,
        description="Most units the rule approves per destination store and ship day "
        "(over all runs), units; none: no cap.",
    )
    enabled: bool = Field(True, description="A disabled rule approves nothing.")


class WorkflowConfig(BaseModel):
    """Planner workflow automation: auto-approval rules and the export drop folder."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    auto_approval: tuple[AutoApprovalRule, ...] = Field(
        (),
        description="Auto-approval rules applied when a run is published, besides those an "
        "admin keeps in the workflow database (TOML: [[workflow.auto_approval]] tables with "
        "name, min_net_benefit, require_positive_p10, lanes = [[from, to]], categories, "
        "daily_unit_cap, enabled).",
    )
    export_drop_folder: Path | None = Field(
        None,
        description="Folder `stocktailor export` writes approved, not yet exported lines to "
        "(when --drop-folder is not given).",
    )
    export_format: Literal["csv", "xlsx"] = Field(
        "csv", description="File format of `stocktailor export`."
    )
