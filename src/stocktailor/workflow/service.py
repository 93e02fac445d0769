"""The recommendation lifecycle: publish a run, review it, decide, export, audit.

Every function takes an :class:`sqlalchemy.Engine` made by :func:`stocktailor.workflow.connect`
and runs its own transaction. Decisions are optimistic: each names the ``version`` of the line
it saw; the update is a compare-and-set on that version, so of many concurrent deciders exactly
one wins, a repeat of the winning decision is idempotent and anything else is a
:class:`Conflict`. Every attempt (applied, idempotent, conflicting, invalid, refused) leaves a row
in the append-only audit log.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import math
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl
from sqlalchemy import Engine, and_, func, insert, select, union, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from stocktailor.config import ServeConfig
from stocktailor.plan import PlanResult
from stocktailor.workflow.db import write_engine
from stocktailor.workflow.models import (
    DECISION_ACTIONS,
    EXCEPTION_KINDS,
    RECOMMENDATION_KINDS,
    RECOMMENDATION_STATUSES,
    ROLES,
    ApiToken,
    AuditEntry,
    Decision,
    PlanRun,
    Recommendation,
    RecommendationException,
    RunForecast,
    RunStore,
    User,
)

__all__ = [
    "EXPORT_COLUMNS",
    "MAX_REASON_LENGTH",
    "SORT_KEYS",
    "BulkResult",
    "Conflict",
    "DecisionResult",
    "NotFound",
    "Page",
    "RecFilter",
    "UserInfo",
    "audit_entries",
    "authenticate",
    "bulk_decide",
    "cluster_summary",
    "create_user",
    "decide",
    "ensure_demo_user",
    "export_approved",
    "filter_options",
    "get_recommendation",
    "get_run",
    "hash_token",
    "issue_token",
    "latest_run_id",
    "list_exceptions",
    "list_recommendations",
    "list_runs",
    "publish_run",
    "record_attempt",
    "run_stores",
]

logger = logging.getLogger(__name__)

MAX_REASON_LENGTH = 1000
"""Longest accepted decision reason, characters."""

SORT_KEYS: dict[str, Any] = {
    "net_benefit": Recommendation.net_benefit,
    "expected_gain": Recommendation.expected_gain,
    "expected_source_loss": Recommendation.expected_source_loss,
    "transfer_cost": Recommendation.transfer_cost,
    "units": Recommendation.units,
    "sku": Recommendation.sku,
    "style": Recommendation.style,
    "category": Recommendation.category,
    "from_id": Recommendation.from_id,
    "to_id": Recommendation.to_id,
    "ship_date": Recommendation.ship_date,
    "status": Recommendation.status,
    "id": Recommendation.id,
}
"""Allowed sort keys of :func:`list_recommendations` and the columns they sort on."""

DEMAND_WEEKS = 4
"""Forecast weeks averaged into the weekly demand used for cover, weeks."""


class Conflict(Exception):
    """A decision was based on a version of the line that is no longer current (HTTP 409)."""

    def __init__(self, message: str, *, current: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.current: dict[str, Any] = dict(current or {})


class NotFound(LookupError):
    """A run or recommendation does not exist (HTTP 404)."""


@dataclass(frozen=True)
class UserInfo:
    """An authenticated user."""

    name: str
    role: str

    @property
    def can_decide(self) -> bool:
        """Planners and admins decide; viewers only look."""
        return self.role in ("planner", "admin")


@dataclass(frozen=True)
class RecFilter:
    """Filter of recommendation lines (all given conditions must hold).

    ``store`` and ``cluster`` match either end of a line; ``exception`` keeps lines flagged
    with that exception kind (``"any"`` for any kind).
    """

    status: str | None = None
    kind: str | None = None
    cluster: str | None = None
    store: str | None = None
    from_store: str | None = None
    to_store: str | None = None
    category: str | None = None
    style: str | None = None
    sku: str | None = None
    exception: str | None = None
    min_net_benefit: float | None = None


@dataclass(frozen=True)
class Page:
    """One page of a listing."""

    items: list[dict[str, Any]]
    total: int
    page: int
    page_size: int


@dataclass(frozen=True)
class DecisionResult:
    """Outcome of a decision: the line's state after it and whether it changed anything."""

    recommendation_id: int
    status: str
    units: int
    version: int
    applied: bool
    decision_id: int | None


@dataclass(frozen=True)
class BulkResult:
    """Outcome of a bulk decision by filter."""

    matched: int
    applied: int
    status: str
    ids: list[int] = field(default_factory=list)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _audit_row(
    user: str | None, action: str, target: str | None, outcome: str, detail: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "at": _now(),
        "user": user,
        "action": action,
        "target": target,
        "outcome": outcome,
        "detail": _jsonable(dict(detail)),
    }


def _audit(
    conn: Connection,
    user: str | None,
    action: str,
    target: str | None,
    outcome: str,
    detail: Mapping[str, Any],
) -> None:
    conn.execute(insert(AuditEntry), [_audit_row(user, action, target, outcome, detail)])


def record_attempt(
    engine: Engine,
    *,
    user: str | None,
    action: str,
    target: str | None,
    outcome: str,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Append an audit row for an attempt refused before reaching the workflow (401, 403, 422).

    Parameters
    ----------
    user
        Who tried (``None`` when unauthenticated).
    action
        What was tried, e.g. ``"decide"``.
    target
        The object, e.g. a recommendation id.
    outcome
        E.g. ``"unauthenticated"``, ``"forbidden"``, ``"invalid"``.
    """
    with write_engine(engine).begin() as conn:
        _audit(conn, user, action, target, outcome, detail or {})


# --------------------------------------------------------------------------- users and tokens


def hash_token(token: str) -> str:
    """Return the SHA-256 hex digest under which ``token`` is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 64:
        msg = f"users.name: must be 1 to 64 characters, got {len(name)}"
        raise ValueError(msg)
    return name


def issue_token(engine: Engine, name: str, *, label: str | None = None) -> str:
    """Issue a new API token for the existing user ``name``; only its hash is stored."""
    token = "st_" + secrets.token_urlsafe(32)
    with write_engine(engine).begin() as conn:
        user_id = conn.execute(select(User.id).where(User.name == name)).scalar_one_or_none()
        if user_id is None:
            msg = f"users: no user named {name!r}"
            raise NotFound(msg)
        conn.execute(
            insert(ApiToken),
            [
                {
                    "user_id": user_id,
                    "token_sha256": hash_token(token),
                    "label": label,
                    "created_at": _now(),
                    "revoked": False,
                }
            ],
        )
        _audit(conn, name, "issue_token", f"user:{name}", "applied", {"label": label})
    return token


def create_user(engine: Engine, name: str, role: str, *, label: str | None = None) -> str:
    """Create a user with ``role`` (viewer, planner, admin) and return a fresh API token.

    Raises
    ------
    ValueError
        If the role is unknown, the name invalid or already taken.
    """
    name = _check_name(name)
    if role not in ROLES:
        msg = f"users.role: {role!r} is not one of {', '.join(ROLES)}"
        raise ValueError(msg)
    with write_engine(engine).begin() as conn:
        exists = conn.execute(select(User.id).where(User.name == name)).scalar_one_or_none()
        if exists is not None:
            msg = f"users.name: {name!r} already exists"
            raise ValueError(msg)
        conn.execute(
            insert(User), [{"name": name, "role": role, "active": True, "created_at": _now()}]
        )
        _audit(conn, None, "create_user", f"user:{name}", "applied", {"role": role})
    return issue_token(engine, name, label=label)


def ensure_demo_user(engine: Engine, name: str = "demo") -> str:
    """Make sure a planner named ``name`` exists and return a new token for it."""
    with engine.connect() as conn:
        exists = conn.execute(select(User.id).where(User.name == name)).scalar_one_or_none()
    if exists is None:
        return create_user(engine, name, "planner", label="demo")
    return issue_token(engine, name, label="demo")


def authenticate(engine: Engine, token: str | None) -> UserInfo | None:
    """Return the active user owning ``token``, or ``None``."""
    if not token or len(token) > 200:
        return None
    with engine.connect() as conn:
        row = conn.execute(
            select(User.name, User.role)
            .join(ApiToken, ApiToken.user_id == User.id)
            .where(
                ApiToken.token_sha256 == hash_token(token),
                ApiToken.revoked.is_(False),
                User.active.is_(True),
            )
        ).one_or_none()
    return None if row is None else UserInfo(name=row.name, role=row.role)


# --------------------------------------------------------------------------- publishing


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _col(df: pl.DataFrame, name: str, default: Any, dtype: pl.DataType) -> pl.Expr:
    if name in df.columns:
        return pl.col(name).cast(dtype, strict=False)
    return pl.lit(default, dtype=dtype)


def _transfer_lines(plan: PlanResult) -> pl.DataFrame:
    t = plan.transfers
    soft = next((c for c in ("soft_rules", "soft_rule", "rule_flags") if c in t.columns), None)
    return t.select(
        pl.lit("transfer").alias("kind"),
        _col(t, "transfer_id", None, pl.String()).alias("external_id"),
        pl.col("sku").cast(pl.String),
        _col(t, "style", None, pl.String()).alias("style_t"),
        _col(t, "color", None, pl.String()).alias("color_t"),
        _col(t, "size", None, pl.String()).alias("size_t"),
        pl.col("from_id").cast(pl.String),
        pl.col("to_id").cast(pl.String),
        pl.col("units").cast(pl.Int64),
        _col(t, "ship_date", plan.as_of, pl.Date()).alias("ship_date"),
        _col(t, "arrival_date", None, pl.Date()).alias("arrival_date"),
        _col(t, "transfer_cost", 0.0, pl.Float64()).fill_null(0.0).alias("transfer_cost"),
        pl.col("expected_gain").cast(pl.Float64),
        _col(t, "expected_source_loss", 0.0, pl.Float64())
        .fill_null(0.0)
        .alias("expected_source_loss"),
        _col(t, "net_benefit", None, pl.Float64()).alias("net_benefit"),
        _col(t, "gain_p10", None, pl.Float64()).fill_nan(None).alias("gain_p10"),
        _col(t, "gain_p90", None, pl.Float64()).fill_nan(None).alias("gain_p90"),
        _col(t, "reason", "", pl.String()).fill_null("").alias("reason"),
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
        pl.col("from_id").cast(pl.String),
        pl.col("to_id").cast(pl.String),
        pl.col("units").cast(pl.Int64),
        _col(a, "ship_date", plan.as_of, pl.Date()).alias("ship_date"),
        _col(a, "arrival_date", None, pl.Date()).alias("arrival_date"),
        _col(a, "transfer_cost", 0.0, pl.Float64()).fill_null(0.0).alias("transfer_cost"),
        pl.col("expected_gain").cast(pl.Float64),
        pl.lit(0.0).alias("expected_source_loss"),
        pl.lit(None, dtype=pl.Float64).alias("net_benefit"),
        _col(a, "gain_p10", None, pl.Float64()).fill_nan(None).alias("gain_p10"),
        _col(a, "gain_p90", None, pl.Float64()).fill_nan(None).alias("gain_p90"),
        _col(a, "reason", "", pl.String()).fill_null("").alias("reason"),
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


def _flag_exceptions(
    lines: pl.DataFrame, prior_pairs: set[tuple[str, str]], cfg: ServeConfig
) -> list[dict[str, Any]]:
    """Return exception rows ``{line_no, kind, detail}`` for the lines of a run."""
    out: list[dict[str, Any]] = []
    seen_pairs: set[tuple[str, str]] = set()
    for r in lines.iter_rows(named=True):
        n = r["line_no"]
        p10, p90, gain = r["gain_p10"], r["gain_p90"], r["expected_gain"]
        if p10 is not None and p90 is not None:
            width = p90 - p10
            if width > cfg.exception_band_ratio * max(abs(gain), 1e-9) or p10 < 0:
                out.append(
                    {
                        "line_no": n,
                        "kind": "low_confidence",
                        "detail": f"gain band {p10:.2f} to {p90:.2f} is wide against the "
                        f"expected gain {gain:.2f}",
                    }
                )
        units, src = r["units"], r["from_on_hand"]
        if units >= cfg.exception_large_move_units:
            out.append(
                {
                    "line_no": n,
                    "kind": "large_move",
                    "detail": f"{units} units is at least {cfg.exception_large_move_units}",
                }
            )
        elif (
            r["kind"] == "transfer"
            and src is not None
            and src > 0
            and units > cfg.exception_large_move_share * src
        ):
            out.append(
                {
                    "line_no": n,
                    "kind": "large_move",
                    "detail": f"{units} units is more than "
                    f"{cfg.exception_large_move_share:.0%} of the {src} on hand at {r['from_id']}",
                }
            )
        rules: list[str] = []
        if r["soft_rules"]:
            rules.append(str(r["soft_rules"]))
        season_end, arrival = r["season_end"], r["arrival_date"] or r["ship_date"]
        if (
            season_end is not None
            and arrival is not None
            and arrival > season_end - dt.timedelta(days=cfg.exception_late_arrival_days)
        ):
            rules.append(
                f"arrives {arrival.isoformat()}, less than {cfg.exception_late_arrival_days} "
                f"days before season end {season_end.isoformat()}"
            )
        if rules:
            out.append({"line_no": n, "kind": "soft_rule", "detail": "; ".join(rules)})
        style = r["style"]
        if r["kind"] == "transfer" and style is not None:
            pair = (r["to_id"], style)
            if pair not in prior_pairs:
                first = pair not in seen_pairs
                seen_pairs.add(pair)
                out.append(
                    {
                        "line_no": n,
                        "kind": "first_transfer_of_style",
                        "detail": f"first transfer of style {style} to {r['to_id']}"
                        + ("" if first else " (another size of the same first transfer)"),
                    }
                )
    return out


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
    clusters = (
        plan.clusters.select(
            pl.col("store_id").cast(pl.String),
            pl.col("cluster_id").cast(pl.String),
            _col(plan.clusters, "cluster_name", None, pl.String()).alias("cluster_name"),
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
        _col(products, "season_end", None, pl.Date()).alias("season_end"),
    ).unique("sku", keep="first")
    demand = _weekly_demand(plan.forecast)
    if positions is not None and not positions.is_empty():
        pos = positions.group_by(
            pl.col("store_id").cast(pl.String), pl.col("sku").cast(pl.String)
        ).agg(
            pl.col("on_hand").cast(pl.Int64).sum(),
            _col(positions, "sold_units", None, pl.Int64()).sum().alias("sold_units"),
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

    if parts:
        lines = pl.concat(parts, how="vertical_relaxed").with_row_index("line_no")
        lines = (
            lines.join(prods, on="sku", how="left")
            .with_columns(
                pl.coalesce("style", "style_t").alias("style"),
                pl.coalesce("color", "color_t").alias("color"),
                pl.coalesce("size", "size_t").alias("size"),
            )
            .join(
                clusters.select("store_id", pl.col("cluster_id").alias("from_cluster")),
                left_on="from_id",
                right_on="store_id",
                how="left",
            )
            .join(
                clusters.select("store_id", pl.col("cluster_id").alias("to_cluster")),
                left_on="to_id",
                right_on="store_id",
                how="left",
            )
            .join(
                pos.select("store_id", "sku", pl.col("on_hand").alias("from_on_hand")),
                left_on=["from_id", "sku"],
                right_on=["store_id", "sku"],
                how="left",
            )
            .join(
                pos.select("store_id", "sku", pl.col("on_hand").alias("to_on_hand")),
                left_on=["to_id", "sku"],
                right_on=["store_id", "sku"],
                how="left",
            )
            .join(
                demand.rename({"weekly_demand": "from_weekly_demand"}),
                left_on=["from_id", "sku"],
                right_on=["store_id", "sku"],
                how="left",
            )
            .join(
                demand.rename({"weekly_demand": "to_weekly_demand"}),
                left_on=["to_id", "sku"],
                right_on=["store_id", "sku"],
                how="left",
            )
            .sort("line_no")
        )
        bad = lines.filter(pl.col("units") <= 0)
        if not bad.is_empty():
            row = int(bad["line_no"][0])
            msg = f"publish_run: line {row} has units {bad['units'][0]}; units must be positive"
            raise ValueError(msg)
    else:
        lines = None

    store_stats = (
        stores.select(
            pl.col("store_id").cast(pl.String),
            _col(stores, "name", None, pl.String()).alias("name"),
            pl.col("kind").cast(pl.String),
            _col(stores, "city", None, pl.String()).alias("city"),
            _col(stores, "region", None, pl.String()).alias("region"),
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
        store_stats = store_stats.with_columns(
            pl.lit(None, dtype=pl.Int64).alias("on_hand"),
            pl.lit(None, dtype=pl.Int64).alias("sold_units"),
        )
    elif "sold_units" not in positions.columns:
        store_stats = store_stats.with_columns(pl.lit(None, dtype=pl.Int64).alias("sold_units"))

    return lines, store_stats


def publish_run(
    engine: Engine,
    plan: PlanResult,
    stores: pl.DataFrame,
    products: pl.DataFrame,
    *,
    positions: pl.DataFrame | None = None,
    config: ServeConfig | None = None,
    user: str | None = None,
) -> int:
    """Store a plan run and its lines for review; return the new run id.

    Parameters
    ----------
    engine
        From :func:`stocktailor.workflow.connect`, migrated with ``upgrade``.
    plan
        The plan run: transfers and allocation become recommendation lines (status pending),
        the forecast band of every (store, SKU) pair on a line is kept for the detail view.
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

    Returns
    -------
    int
        The run id.
    """
    cfg = config or ServeConfig()
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

    lines, store_stats = _prepare(plan, stores, products, positions)

    now = _now()
    with write_engine(engine).begin() as conn:
        prior: set[tuple[str, str]] = set()
        if lines is not None:
            styles = lines.filter(pl.col("kind") == "transfer")["style"].drop_nulls().unique()
            if len(styles):
                prior_rows = conn.execute(
                    select(Recommendation.to_id, Recommendation.style)
                    .where(
                        Recommendation.kind == "transfer",
                        Recommendation.status.in_(("approved", "edited")),
                        Recommendation.style.in_(styles.to_list()),
                    )
                    .distinct()
                )
                prior = {(r.to_id, r.style) for r in prior_rows}
        exceptions = _flag_exceptions(lines, prior, cfg) if lines is not None else []
        counts: dict[int, int] = {}
        for e in exceptions:
            counts[e["line_no"]] = counts.get(e["line_no"], 0) + 1
        kpis = {str(k): _clean(float(v)) for k, v in plan.kpis.items()}
        run_id = int(
            conn.execute(
                insert(PlanRun).returning(PlanRun.id),
                [
                    {
                        "as_of": plan.as_of,
                        "created_at": now,
                        "created_by": user,
                        "status": "published",
                        "config": _jsonable(plan.settings),
                        "data_fingerprint": plan.data_fingerprint[:128],
                        "kpis": kpis,
                        "n_recommendations": 0 if lines is None else lines.height,
                    }
                ],
            ).scalar_one()
        )
        store_rows = [
            {k: _clean(v) for k, v in r.items()} | {"run_id": run_id}
            for r in store_stats.iter_rows(named=True)
        ]
        if store_rows:
            conn.execute(insert(RunStore), store_rows)
        if lines is not None:
            rec_cols = [
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
                "reason",
                "from_on_hand",
                "to_on_hand",
                "from_weekly_demand",
                "to_weekly_demand",
            ]
            rec_rows = []
            for r in lines.select(rec_cols).iter_rows(named=True):
                rec = {k: _clean(v) for k, v in r.items()}
                rec.update(
                    run_id=run_id,
                    original_units=rec["units"],
                    status="pending",
                    version=0,
                    n_exceptions=counts.get(rec["line_no"], 0),
                )
                rec_rows.append(rec)
            conn.execute(insert(Recommendation), rec_rows)
            ids = dict(
                conn.execute(
                    select(Recommendation.line_no, Recommendation.id).where(
                        Recommendation.run_id == run_id
                    )
                ).all()
            )
            if exceptions:
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
            if not plan.forecast.is_empty():
                pairs = pl.concat(
                    [
                        lines.select(pl.col("from_id").alias("store_id"), "sku"),
                        lines.select(pl.col("to_id").alias("store_id"), "sku"),
                    ]
                ).unique()
                fc = (
                    plan.forecast.with_columns(
                        pl.col("store_id").cast(pl.String), pl.col("sku").cast(pl.String)
                    )
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
                        insert(RunForecast),
                        [r | {"run_id": run_id} for r in fc.iter_rows(named=True)],
                    )
        _audit(
            conn,
            user,
            "publish",
            f"run:{run_id}",
            "applied",
            {
                "lines": 0 if lines is None else lines.height,
                "exceptions": len(exceptions),
                "as_of": plan.as_of.isoformat(),
            },
        )
    _refresh_statistics(engine)
    logger.info("published run %d with %d lines", run_id, 0 if lines is None else lines.height)
    return run_id


def _refresh_statistics(engine: Engine) -> None:
    """Update the query planner's statistics so filtered listings pick the selective index."""
    with write_engine(engine).begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA analysis_limit=2000")
            conn.exec_driver_sql("ANALYZE recommendations")
            conn.exec_driver_sql("ANALYZE exceptions")
        elif conn.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE recommendations")
            conn.exec_driver_sql("ANALYZE exceptions")


# --------------------------------------------------------------------------- reading


def _rec_dict(row: Any) -> dict[str, Any]:
    d = dict(row._mapping)
    for end in ("from", "to"):
        on_hand, demand = d.get(f"{end}_on_hand"), d.get(f"{end}_weekly_demand")
        d[f"{end}_cover_weeks"] = (
            None if on_hand is None or not demand else round(on_hand / demand, 2)
        )
    return d


def list_runs(engine: Engine) -> list[dict[str, Any]]:
    """Return all runs, newest first, with their line counts by status."""
    with engine.connect() as conn:
        runs = [
            dict(r._mapping)
            for r in conn.execute(select(PlanRun.__table__).order_by(PlanRun.id.desc()))
        ]
        counts = conn.execute(
            select(Recommendation.run_id, Recommendation.status, func.count()).group_by(
                Recommendation.run_id, Recommendation.status
            )
        ).all()
        by_run: dict[int, dict[str, int]] = {}
        for run_id, status, n in counts:
            by_run.setdefault(run_id, {})[status] = n
    for r in runs:
        r["status_counts"] = {s: by_run.get(r["id"], {}).get(s, 0) for s in RECOMMENDATION_STATUSES}
    return runs


def latest_run_id(engine: Engine) -> int | None:
    """Return the id of the newest run, or ``None`` when there is none."""
    with engine.connect() as conn:
        return conn.execute(select(func.max(PlanRun.id))).scalar_one_or_none()


def get_run(engine: Engine, run_id: int) -> dict[str, Any]:
    """Return one run with KPIs, line counts by status and the approved totals.

    Raises
    ------
    NotFound
        If there is no such run.
    """
    with engine.connect() as conn:
        row = conn.execute(select(PlanRun.__table__).where(PlanRun.id == run_id)).one_or_none()
        if row is None:
            msg = f"plan_runs: no run {run_id}"
            raise NotFound(msg)
        run = dict(row._mapping)
        stats = conn.execute(
            select(
                Recommendation.status,
                func.count(),
                func.coalesce(func.sum(Recommendation.units), 0),
                func.coalesce(func.sum(Recommendation.net_benefit), 0.0),
            )
            .where(Recommendation.run_id == run_id)
            .group_by(Recommendation.status)
        ).all()
        n_exc = conn.execute(
            select(func.count()).where(RecommendationException.run_id == run_id)
        ).scalar_one()
    by_status = {s: {"lines": 0, "units": 0, "net_benefit": 0.0} for s in RECOMMENDATION_STATUSES}
    for status, n, units, benefit in stats:
        by_status[status] = {"lines": int(n), "units": int(units), "net_benefit": float(benefit)}
    run["status_counts"] = {s: v["lines"] for s, v in by_status.items()}
    run["by_status"] = by_status
    run["n_exceptions"] = int(n_exc)
    return run


def run_stores(engine: Engine, run_id: int) -> list[dict[str, Any]]:
    """Return the locations of a run with cluster, on-hand, sales and weekly demand."""
    with engine.connect() as conn:
        return [
            dict(r._mapping)
            for r in conn.execute(
                select(RunStore.__table__)
                .where(RunStore.run_id == run_id)
                .order_by(RunStore.store_id)
            )
        ]


def cluster_summary(engine: Engine, run_id: int) -> list[dict[str, Any]]:
    """Per cluster: stores, on hand, sold, sell-through, cover and recommended moves.

    ``sell_through`` = sold / (sold + on hand) (share, None without sales), ``cover_weeks`` =
    on hand / weekly forecast demand (weeks), ``inbound_units``/``outbound_units`` over the
    run's lines that are not rejected.
    """
    stores = [s for s in run_stores(engine, run_id) if s["kind"] != "warehouse"]
    with engine.connect() as conn:
        live = and_(Recommendation.run_id == run_id, Recommendation.status != "rejected")
        inbound = dict(
            conn.execute(
                select(Recommendation.to_cluster, func.sum(Recommendation.units))
                .where(live)
                .group_by(Recommendation.to_cluster)
            ).all()
        )
        outbound = dict(
            conn.execute(
                select(Recommendation.from_cluster, func.sum(Recommendation.units))
                .where(live)
                .group_by(Recommendation.from_cluster)
            ).all()
        )
    groups: dict[str, dict[str, Any]] = {}
    for s in stores:
        key = s["cluster_id"] or "-"
        g = groups.setdefault(
            key,
            {
                "cluster_id": key,
                "cluster_name": s["cluster_name"] or key,
                "stores": 0,
                "on_hand": None,
                "sold_units": None,
                "weekly_demand": None,
            },
        )
        g["stores"] += 1
        for k in ("on_hand", "sold_units", "weekly_demand"):
            if s[k] is not None:
                g[k] = (g[k] or 0) + s[k]
    out = []
    for key in sorted(groups):
        g = groups[key]
        on_hand, sold, demand = g["on_hand"], g["sold_units"], g["weekly_demand"]
        g["sell_through"] = (
            None
            if on_hand is None or sold is None or on_hand + sold == 0
            else sold / (sold + on_hand)
        )
        g["cover_weeks"] = None if on_hand is None or not demand else on_hand / demand
        g["inbound_units"] = int(inbound.get(key, 0) or 0)
        g["outbound_units"] = int(outbound.get(key, 0) or 0)
        out.append(g)
    return out


def _filter_clause(run_id: int, f: RecFilter) -> list[ColumnElement[bool]]:
    r = Recommendation
    clauses: list[ColumnElement[bool]] = [r.run_id == run_id]
    if f.status is not None:
        clauses.append(r.status == f.status)
    if f.kind is not None:
        clauses.append(r.kind == f.kind)
    # "either end" filters: a union of two index searches (an OR would scan the run)
    for value, ends in (
        (f.cluster, (r.from_cluster, r.to_cluster)),
        (f.store, (r.from_id, r.to_id)),
    ):
        if value is None:
            continue
        subs = []
        for col in ends:
            sub = select(r.id).where(r.run_id == run_id, col == value)
            if f.status is not None:
                sub = sub.where(r.status == f.status)
            subs.append(sub)
        clauses.append(r.id.in_(union(*subs)))
    if f.from_store is not None:
        clauses.append(r.from_id == f.from_store)
    if f.to_store is not None:
        clauses.append(r.to_id == f.to_store)
    if f.category is not None:
        clauses.append(r.category == f.category)
    if f.style is not None:
        clauses.append(r.style == f.style)
    if f.sku is not None:
        clauses.append(r.sku == f.sku)
    if f.min_net_benefit is not None:
        clauses.append(r.net_benefit >= f.min_net_benefit)
    if f.exception is not None:
        sub = select(RecommendationException.recommendation_id).where(
            RecommendationException.run_id == run_id
        )
        if f.exception != "any":
            sub = sub.where(RecommendationException.kind == f.exception)
        clauses.append(r.id.in_(sub))
    return clauses


def _check_filter(f: RecFilter) -> None:
    if f.status is not None and f.status not in RECOMMENDATION_STATUSES:
        msg = f"filter status: {f.status!r} is not one of {', '.join(RECOMMENDATION_STATUSES)}"
        raise ValueError(msg)
    if f.kind is not None and f.kind not in RECOMMENDATION_KINDS:
        msg = f"filter kind: {f.kind!r} is not one of {', '.join(RECOMMENDATION_KINDS)}"
        raise ValueError(msg)
    if f.exception is not None and f.exception not in (*EXCEPTION_KINDS, "any"):
        msg = f"filter exception: {f.exception!r} is not one of any, {', '.join(EXCEPTION_KINDS)}"
        raise ValueError(msg)


_LIST_COLUMNS = [c for c in Recommendation.__table__.columns if c.name not in ("line_no",)]


def list_recommendations(
    engine: Engine,
    run_id: int,
    filters: RecFilter | None = None,
    *,
    sort: str = "net_benefit",
    descending: bool = True,
    page: int = 1,
    page_size: int = 50,
) -> Page:
    """Return one page of a run's lines matching ``filters``, sorted by ``sort``.

    Parameters
    ----------
    sort
        One of :data:`SORT_KEYS`; ties are broken by id.
    page, page_size
        1-based page number and lines per page (1 to 1000).
    """
    f = filters or RecFilter()
    _check_filter(f)
    if sort not in SORT_KEYS:
        msg = f"sort: {sort!r} is not one of {', '.join(SORT_KEYS)}"
        raise ValueError(msg)
    if page < 1 or not 1 <= page_size <= 1000:
        msg = f"page {page} / page_size {page_size}: page >= 1 and 1 <= page_size <= 1000"
        raise ValueError(msg)
    clauses = _filter_clause(run_id, f)
    key = SORT_KEYS[sort]
    order = [key.desc(), Recommendation.id.desc()] if descending else [key.asc(), Recommendation.id]
    with engine.connect() as conn:
        total = conn.execute(
            select(func.count()).select_from(Recommendation).where(*clauses)
        ).scalar_one()
        rows = conn.execute(
            select(*_LIST_COLUMNS)
            .where(*clauses)
            .order_by(*order)
            .limit(page_size)
            .offset((page - 1) * page_size)
        ).all()
    return Page(
        items=[_rec_dict(r) for r in rows], total=int(total), page=page, page_size=page_size
    )


def _explain(rec: Mapping[str, Any], src: Mapping[str, Any], dst: Mapping[str, Any]) -> str:
    def cover(end: str) -> str:
        c = rec[f"{end}_cover_weeks"]
        on_hand = rec[f"{end}_on_hand"]
        demand = rec[f"{end}_weekly_demand"]
        bits = []
        if on_hand is not None:
            bits.append(f"{on_hand} on hand")
        if demand is not None:
            bits.append(f"forecast {demand:.1f} units/week")
        if c is not None:
            bits.append(f"{c:.1f} weeks of cover")
        return ", ".join(bits) if bits else "no stock or forecast recorded"

    what = " ".join(str(x) for x in (rec["style"], rec["color"], rec["size"]) if x)
    verb = "Allocate" if rec["kind"] == "allocation" else "Move"
    text = (
        f"{verb} {rec['units']} units of {rec['sku']} ({what}) from "
        f"{src.get('name') or rec['from_id']} to {dst.get('name') or rec['to_id']}. "
        f"Source: {cover('from')}. Destination: {cover('to')}. "
        f"Expected gain at the destination {rec['expected_gain']:.2f}, "
        f"the source gives up {rec['expected_source_loss']:.2f}, "
        f"transfer cost {rec['transfer_cost']:.2f}: net benefit {rec['net_benefit']:.2f}."
    )
    if rec["gain_p10"] is not None and rec["gain_p90"] is not None:
        text += (
            f" The gain lies between {rec['gain_p10']:.2f} and {rec['gain_p90']:.2f} (80% band)."
        )
    if rec["reason"]:
        text += f" Reason: {rec['reason']}"
    return text


def get_recommendation(engine: Engine, recommendation_id: int) -> dict[str, Any]:
    """Return one line with its explanation, both ends, forecast bands, exceptions and history.

    Raises
    ------
    NotFound
        If there is no such line.
    """
    with engine.connect() as conn:
        row = conn.execute(
            select(*_LIST_COLUMNS).where(Recommendation.id == recommendation_id)
        ).one_or_none()
        if row is None:
            msg = f"recommendations: no recommendation {recommendation_id}"
            raise NotFound(msg)
        rec = _rec_dict(row)
        ends = {
            r.store_id: dict(r._mapping)
            for r in conn.execute(
                select(RunStore.__table__).where(
                    RunStore.run_id == rec["run_id"],
                    RunStore.store_id.in_((rec["from_id"], rec["to_id"])),
                )
            )
        }
        band = conn.execute(
            select(RunForecast.__table__)
            .where(
                RunForecast.run_id == rec["run_id"],
                RunForecast.sku == rec["sku"],
                RunForecast.store_id.in_((rec["from_id"], rec["to_id"])),
            )
            .order_by(RunForecast.store_id, RunForecast.week_start)
        ).all()
        exceptions = [
            {"kind": e.kind, "detail": e.detail}
            for e in conn.execute(
                select(RecommendationException.__table__)
                .where(RecommendationException.recommendation_id == recommendation_id)
                .order_by(RecommendationException.id)
            )
        ]
        decisions = [
            {
                "id": d.id,
                "action": d.action,
                "units": d.units,
                "reason": d.reason,
                "user": d.user,
                "at": d.at,
                "from_version": d.from_version,
            }
            for d in conn.execute(
                select(Decision.__table__)
                .where(Decision.recommendation_id == recommendation_id)
                .order_by(Decision.id)
            )
        ]
        as_of = conn.execute(select(PlanRun.as_of).where(PlanRun.id == rec["run_id"])).scalar_one()
    src, dst = ends.get(rec["from_id"], {}), ends.get(rec["to_id"], {})
    forecast: dict[str, list[dict[str, Any]]] = {"from": [], "to": []}
    for f in band:
        point = {
            "week_start": f.week_start,
            "mean": f.mean,
            "p10": f.p10,
            "p50": f.p50,
            "p90": f.p90,
        }
        if f.store_id == rec["from_id"]:
            forecast["from"].append(point)
        if f.store_id == rec["to_id"]:
            forecast["to"].append(point)
    rec.update(
        as_of=as_of,
        explanation=_explain(rec, src, dst),
        from_store=src,
        to_store=dst,
        forecast=forecast,
        exceptions=exceptions,
        decisions=decisions,
    )
    return rec


def list_exceptions(
    engine: Engine,
    run_id: int,
    *,
    kind: str | None = None,
    page: int = 1,
    page_size: int = 50,
) -> Page:
    """Return a page of a run's flagged lines (exception kind, detail and the line's summary)."""
    if kind is not None and kind not in EXCEPTION_KINDS:
        msg = f"exception kind: {kind!r} is not one of {', '.join(EXCEPTION_KINDS)}"
        raise ValueError(msg)
    e, r = RecommendationException, Recommendation
    clauses: list[ColumnElement[bool]] = [e.run_id == run_id]
    if kind is not None:
        clauses.append(e.kind == kind)
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(e).where(*clauses)).scalar_one()
        rows = conn.execute(
            select(
                e.id,
                e.kind,
                e.detail,
                e.recommendation_id,
                r.sku,
                r.style,
                r.from_id,
                r.to_id,
                r.units,
                r.net_benefit,
                r.status,
            )
            .join(r, r.id == e.recommendation_id)
            .where(*clauses)
            .order_by(e.id)
            .limit(page_size)
            .offset((page - 1) * page_size)
        ).all()
    return Page(
        items=[dict(x._mapping) for x in rows], total=int(total), page=page, page_size=page_size
    )


# --------------------------------------------------------------------------- deciding


def _norm_reason(reason: str | None) -> str | None:
    if reason is None:
        return None
    reason = reason.strip()
    if len(reason) > MAX_REASON_LENGTH:
        msg = f"reason: at most {MAX_REASON_LENGTH} characters, got {len(reason)}"
        raise ValueError(msg)
    return reason or None


def _target_state(action: str, units: int | None, row: Any) -> tuple[str, int]:
    """Return (status, units) a decision leads to, or raise ValueError."""
    if action == "approve":
        if units is not None and units != row.units:
            msg = f"approve: units {units} differ from the line's {row.units}; use edit"
            raise ValueError(msg)
        return "approved", int(row.units)
    if action == "reject":
        return "rejected", int(row.units)
    if units is None:
        msg = "edit: units are required"
        raise ValueError(msg)
    limit = int(row.from_on_hand) if row.from_on_hand is not None else int(row.original_units)
    limit = max(limit, int(row.original_units))
    if not 1 <= units <= limit:
        msg = f"edit: units must be between 1 and {limit} for recommendation {row.id}, got {units}"
        raise ValueError(msg)
    return "edited", int(units)


def decide(
    engine: Engine,
    recommendation_id: int,
    *,
    action: Literal["approve", "reject", "edit"] | str,
    version: int,
    user: str,
    units: int | None = None,
    reason: str | None = None,
) -> DecisionResult:
    """Approve, reject (with a reason) or edit the units of one line, transactionally.

    Parameters
    ----------
    version
        The line's version the decider saw; a stale version raises :class:`Conflict` unless the
        request repeats the decision that moved the line past that version (idempotent).
    units
        New units for ``edit`` (1 to the source's on hand, or the planned units if unknown).
    reason
        Required for ``reject`` (at most :data:`MAX_REASON_LENGTH` characters).

    Returns
    -------
    DecisionResult
        ``applied`` is False for an idempotent repeat.

    Raises
    ------
    NotFound, Conflict, ValueError
    """
    detail: dict[str, Any] = {"action": action, "version": version, "units": units}
    error: Exception | None = None
    result: DecisionResult | None = None
    outcome = "applied"
    try:
        if action not in DECISION_ACTIONS:
            msg = f"action: {action!r} is not one of {', '.join(DECISION_ACTIONS)}"
            raise ValueError(msg)
        reason = _norm_reason(reason)
        if action == "reject" and not reason:
            msg = "reject: a reason is required"
            raise ValueError(msg)
    except ValueError as exc:
        error, outcome = exc, "invalid"
        reason = None
    detail["reason"] = reason
    now = _now()
    with write_engine(engine).begin() as conn:
        row = None
        if error is None:
            row = conn.execute(
                select(
                    Recommendation.id,
                    Recommendation.status,
                    Recommendation.units,
                    Recommendation.original_units,
                    Recommendation.from_on_hand,
                    Recommendation.version,
                )
                .where(Recommendation.id == recommendation_id)
                .with_for_update()
            ).one_or_none()
            if row is None:
                error, outcome = (
                    NotFound(f"recommendations: no recommendation {recommendation_id}"),
                    "not_found",
                )
        if error is None and row is not None:
            last = conn.execute(
                select(Decision.__table__)
                .where(Decision.recommendation_id == recommendation_id)
                .order_by(Decision.id.desc())
                .limit(1)
            ).one_or_none()
            if row.version != version:
                same = (
                    last is not None
                    and last.from_version == version
                    and row.version == version + 1
                    and last.action == action
                    and last.reason == reason
                    and (units is None or units == last.units)
                )
                if same and last is not None:
                    outcome = "idempotent"
                    result = DecisionResult(
                        recommendation_id, row.status, row.units, row.version, False, last.id
                    )
                else:
                    outcome = "conflict"
                    error = Conflict(
                        f"recommendation {recommendation_id} is at version {row.version}, "
                        f"not {version}: it was decided meanwhile ({row.status})",
                        current={"status": row.status, "units": row.units, "version": row.version},
                    )
            else:
                try:
                    status, new_units = _target_state(action, units, row)
                except ValueError as exc:
                    error, outcome = exc, "invalid"
                else:
                    res = conn.execute(
                        update(Recommendation)
                        .where(
                            Recommendation.id == recommendation_id,
                            Recommendation.version == version,
                        )
                        .values(
                            status=status,
                            units=new_units,
                            version=Recommendation.version + 1,
                            decided_by=user,
                            decided_at=now,
                            decision_reason=reason,
                        )
                    )
                    if res.rowcount != 1:  # pragma: no cover - guarded by the row lock
                        outcome = "conflict"
                        error = Conflict(f"recommendation {recommendation_id} changed meanwhile")
                    else:
                        decision_id = conn.execute(
                            insert(Decision).returning(Decision.id),
                            [
                                {
                                    "recommendation_id": recommendation_id,
                                    "action": action,
                                    "units": new_units,
                                    "reason": reason,
                                    "user": user,
                                    "at": now,
                                    "from_version": version,
                                    "bulk": False,
                                }
                            ],
                        ).scalar_one()
                        result = DecisionResult(
                            recommendation_id, status, new_units, version + 1, True, decision_id
                        )
        if error is not None:
            detail["error"] = str(error)
        _audit(conn, user, "decide", str(recommendation_id), outcome, detail)
    if error is not None:
        raise error
    assert result is not None
    return result


def bulk_decide(
    engine: Engine,
    run_id: int,
    filters: RecFilter | None = None,
    *,
    action: Literal["approve", "reject"] | str,
    user: str,
    reason: str | None = None,
) -> BulkResult:
    """Approve or reject every *pending* line of a run that matches ``filters``, atomically.

    Lines already decided are left alone, so repeating a bulk decision changes nothing
    (idempotent). Each changed line gets a decision row and an audit row.

    Raises
    ------
    ValueError
        Unknown action, a filter on a status other than pending, a missing reject reason.
    NotFound
        If the run does not exist.
    """
    f = filters or RecFilter()
    detail: dict[str, Any] = {"action": action, "filter": _jsonable(f.__dict__)}
    try:
        if action not in ("approve", "reject"):
            msg = f"bulk action: {action!r} is not approve or reject"
            raise ValueError(msg)
        if f.status not in (None, "pending"):
            msg = f"bulk decisions apply to pending lines; filter status {f.status!r} given"
            raise ValueError(msg)
        _check_filter(f)
        reason = _norm_reason(reason)
        if action == "reject" and not reason:
            msg = "reject: a reason is required"
            raise ValueError(msg)
    except ValueError as exc:
        record_attempt(
            engine,
            user=user,
            action="bulk_decide",
            target=f"run:{run_id}",
            outcome="invalid",
            detail=detail | {"error": str(exc)},
        )
        raise
    detail["reason"] = reason
    status = "approved" if action == "approve" else "rejected"
    now = _now()
    with write_engine(engine).begin() as conn:
        exists = conn.execute(select(PlanRun.id).where(PlanRun.id == run_id)).scalar_one_or_none()
        if exists is None:
            _audit(conn, user, "bulk_decide", f"run:{run_id}", "not_found", detail)
            err: Exception | None = NotFound(f"plan_runs: no run {run_id}")
            rows: Sequence[Any] = []
        else:
            err = None
            clauses = [*_filter_clause(run_id, f), Recommendation.status == "pending"]
            rows = conn.execute(
                select(Recommendation.id, Recommendation.version, Recommendation.units)
                .where(*clauses)
                .order_by(Recommendation.id)
                .with_for_update()
            ).all()
            if rows:
                conn.execute(
                    update(Recommendation)
                    .where(Recommendation.run_id == run_id, *clauses[1:])
                    .values(
                        status=status,
                        version=Recommendation.version + 1,
                        decided_by=user,
                        decided_at=now,
                        decision_reason=reason,
                    )
                    .execution_options(synchronize_session=False)
                )
                conn.execute(
                    insert(Decision),
                    [
                        {
                            "recommendation_id": r.id,
                            "action": action,
                            "units": r.units,
                            "reason": reason,
                            "user": user,
                            "at": now,
                            "from_version": r.version,
                            "bulk": True,
                        }
                        for r in rows
                    ],
                )
                conn.execute(
                    insert(AuditEntry),
                    [
                        _audit_row(
                            user,
                            "decide",
                            str(r.id),
                            "applied",
                            {
                                "action": action,
                                "version": r.version,
                                "bulk": True,
                                "reason": reason,
                            },
                        )
                        for r in rows
                    ],
                )
            _audit(
                conn,
                user,
                "bulk_decide",
                f"run:{run_id}",
                "applied",
                detail | {"matched": len(rows)},
            )
    if err is not None:
        raise err
    ids = [int(r.id) for r in rows]
    return BulkResult(matched=len(ids), applied=len(ids), status=status, ids=ids)


# --------------------------------------------------------------------------- export


EXPORT_COLUMNS = ("ship_from", "ship_to", "sku", "units", "ship_date", "reference")


def _approved_frame(engine: Engine, run_id: int) -> pl.DataFrame:
    with engine.connect() as conn:
        if (
            conn.execute(select(PlanRun.id).where(PlanRun.id == run_id)).scalar_one_or_none()
            is None
        ):
            msg = f"plan_runs: no run {run_id}"
            raise NotFound(msg)
        rows = conn.execute(
            select(
                Recommendation.from_id,
                Recommendation.to_id,
                Recommendation.sku,
                Recommendation.units,
                Recommendation.ship_date,
                Recommendation.id,
                Recommendation.kind,
            )
            .where(
                Recommendation.run_id == run_id,
                Recommendation.status.in_(("approved", "edited")),
            )
            .order_by(
                Recommendation.from_id, Recommendation.to_id, Recommendation.sku, Recommendation.id
            )
        ).all()
    return pl.DataFrame(
        {
            "ship_from": [r.from_id for r in rows],
            "ship_to": [r.to_id for r in rows],
            "sku": [r.sku for r in rows],
            "units": [int(r.units) for r in rows],
            "ship_date": [r.ship_date for r in rows],
            "reference": [f"{r.kind}-{r.id}" for r in rows],
        },
        schema={
            "ship_from": pl.String,
            "ship_to": pl.String,
            "sku": pl.String,
            "units": pl.Int64,
            "ship_date": pl.Date,
            "reference": pl.String,
        },
    )


def export_approved(
    engine: Engine, run_id: int, fmt: Literal["csv", "xlsx"] | str = "csv"
) -> bytes:
    """Return the approved (and edited) lines of a run for the warehouse system.

    Columns: ``ship_from, ship_to, sku, units, ship_date, reference`` (``reference`` is
    ``<kind>-<recommendation id>``), sorted by ship-from, ship-to, SKU.

    Parameters
    ----------
    fmt
        ``"csv"`` (UTF-8, ISO dates) or ``"xlsx"`` (one sheet named ``transfers``).
    """
    if fmt not in ("csv", "xlsx"):
        msg = f"export format: {fmt!r} is not csv or xlsx"
        raise ValueError(msg)
    frame = _approved_frame(engine, run_id)
    if fmt == "csv":
        return frame.write_csv().encode("utf-8")
    import xlsxwriter

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    wb.set_properties(
        {"title": f"stocktailor run {run_id} approved lines", "created": dt.datetime(2000, 1, 1)}
    )
    ws = wb.add_worksheet("transfers")
    bold = wb.add_format({"bold": True})
    date_fmt = wb.add_format({"num_format": "yyyy-mm-dd"})
    for j, name in enumerate(EXPORT_COLUMNS):
        ws.write_string(0, j, name, bold)
    for i, r in enumerate(frame.iter_rows(), start=1):
        ws.write_string(i, 0, r[0])
        ws.write_string(i, 1, r[1])
        ws.write_string(i, 2, r[2])
        ws.write_number(i, 3, r[3])
        if r[4] is not None:
            ws.write_datetime(i, 4, dt.datetime.combine(r[4], dt.time()), date_fmt)
        ws.write_string(i, 5, r[5])
    ws.set_column(0, 5, 14)
    wb.close()
    return buf.getvalue()


def audit_entries(engine: Engine, *, target: str | None = None) -> list[dict[str, Any]]:
    """Return audit rows (oldest first), optionally for one target."""
    stmt = select(AuditEntry.__table__).order_by(AuditEntry.id)
    if target is not None:
        stmt = stmt.where(AuditEntry.target == target)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def filter_options(engine: Engine, run_id: int) -> dict[str, list[Any]]:
    """Distinct values a run's lines can be filtered on (for the dashboard's selects).

    Returns ``clusters`` as (id, name) pairs, ``stores`` as (id, name) pairs, ``categories``
    and ``styles`` as sorted strings.
    """
    r = Recommendation
    with engine.connect() as conn:
        stores = conn.execute(
            select(RunStore.store_id, RunStore.name, RunStore.cluster_id, RunStore.cluster_name)
            .where(RunStore.run_id == run_id)
            .order_by(RunStore.store_id)
        ).all()
        categories = conn.execute(
            select(r.category).where(r.run_id == run_id, r.category.is_not(None)).distinct()
        ).scalars()
        styles = conn.execute(
            select(r.style).where(r.run_id == run_id, r.style.is_not(None)).distinct()
        ).scalars()
        cats = sorted(c for c in categories if c is not None)
        stys = sorted(c for c in styles if c is not None)
    clusters = sorted(
        {(s.cluster_id, s.cluster_name or s.cluster_id) for s in stores if s.cluster_id}
    )
    return {
        "clusters": [list(c) for c in clusters],
        "stores": [[s.store_id, s.name or s.store_id] for s in stores],
        "categories": cats,
        "styles": stys,
    }
