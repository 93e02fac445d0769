"""Reading a run: runs, stores, clusters, lines (filtered, sorted, paged), one line, exceptions."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import Engine, and_, func, select, union
from sqlalchemy.sql.elements import ColumnElement

from stocktailor.money import format_money
from stocktailor.product_text import known, known_size, product_words
from stocktailor.workflow.common import NotFound, Page, RecFilter
from stocktailor.workflow.models import (
    EXCEPTION_KINDS,
    RECOMMENDATION_KINDS,
    RECOMMENDATION_STATUSES,
    AuditEntry,
    Decision,
    PlanRun,
    Recommendation,
    RecommendationException,
    RunForecast,
    RunStore,
)

__all__ = [
    "GROUP_SORT_KEYS",
    "SORT_KEYS",
    "audit_entries",
    "check_filter",
    "cluster_summary",
    "filter_clause",
    "filter_options",
    "get_recommendation",
    "get_run",
    "known",
    "latest_run_id",
    "list_exceptions",
    "list_groups",
    "list_recommendations",
    "list_runs",
    "rec_dict",
    "run_currency",
    "run_stores",
]

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


def rec_dict(row: Any) -> dict[str, Any]:
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


def filter_clause(run_id: int, f: RecFilter) -> list[ColumnElement[bool]]:
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
    if f.group is not None:
        clauses.append(r.group_key == f.group)
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


def check_filter(f: RecFilter) -> None:
    if f.status is not None and f.status not in RECOMMENDATION_STATUSES:
        msg = f"filter status: {f.status!r} is not one of {', '.join(RECOMMENDATION_STATUSES)}"
        raise ValueError(msg)
    if f.kind is not None and f.kind not in RECOMMENDATION_KINDS:
        msg = f"filter kind: {f.kind!r} is not one of {', '.join(RECOMMENDATION_KINDS)}"
        raise ValueError(msg)
    if f.exception is not None and f.exception not in (*EXCEPTION_KINDS, "any"):
        msg = f"filter exception: {f.exception!r} is not one of any, {', '.join(EXCEPTION_KINDS)}"
        raise ValueError(msg)


def _check_listing(
    f: RecFilter, sort: str, sort_keys: Collection[str], page: int, page_size: int
) -> None:
    """Raise :class:`ValueError` for a bad filter, a ``sort`` not in ``sort_keys`` or a page out
    of range (``page >= 1``, ``1 <= page_size <= 1000``)."""
    check_filter(f)
    if sort not in sort_keys:
        msg = f"sort: {sort!r} is not one of {', '.join(sort_keys)}"
        raise ValueError(msg)
    if page < 1 or not 1 <= page_size <= 1000:
        msg = f"page {page} / page_size {page_size}: page >= 1 and 1 <= page_size <= 1000"
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
    _check_listing(f, sort, SORT_KEYS, page, page_size)
    clauses = filter_clause(run_id, f)
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
    return Page(items=[rec_dict(r) for r in rows], total=int(total), page=page, page_size=page_size)


def run_currency(config: Any) -> str:
    """The ISO 4217 code a run was planned in (``economics.currency`` of its stored settings),
    ``USD`` when the run did not record one."""
    economics = config.get("economics") if isinstance(config, Mapping) else None
    code = economics.get("currency") if isinstance(economics, Mapping) else None
    return str(code) if code else "USD"


def _explain(
    rec: Mapping[str, Any], src: Mapping[str, Any], dst: Mapping[str, Any], currency: str = "USD"
) -> str:
    """What the line does, then the plan's own reason (its one cover figure per end).

    Without a reason from the plan the P&L is stated instead, in the run's ``currency``; the
    workflow adds no cover text of its own, so a line never carries two cover figures.
    """
    what = product_words(rec["style"], rec["color"], rec["size"])
    item = f"{rec['sku']} ({what})" if what else str(rec["sku"])
    verb = "Allocate" if rec["kind"] == "allocation" else "Move"
    src_name = known(src.get("name")) or rec["from_id"]
    dst_name = known(dst.get("name")) or rec["to_id"]
    text = f"{verb} {rec['units']} units of {item} from {src_name} to {dst_name}."
    reason = known(rec["reason"])
    if reason:
        text += f" {reason[0].upper()}{reason[1:]}"
        if not reason.endswith("."):
            text += "."
    else:
        gain, loss, cost, net = (
            format_money(float(rec[k] or 0.0), currency)
            for k in ("expected_gain", "expected_source_loss", "transfer_cost", "net_benefit")
        )
        text += (
            f" Expected gain {gain}, the source gives up {loss}, transfer cost {cost}: "
            f"net benefit {net}."
        )
    if rec.get("loss_probability") is not None:
        text += f" Chance of losing money: {rec['loss_probability']:.0%}."
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
        rec = rec_dict(row)
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
                "rule": d.rule,
            }
            for d in conn.execute(
                select(Decision.__table__)
                .where(Decision.recommendation_id == recommendation_id)
                .order_by(Decision.id)
            )
        ]
        as_of, config = conn.execute(
            select(PlanRun.as_of, PlanRun.config).where(PlanRun.id == rec["run_id"])
        ).one()
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
        explanation=_explain(rec, src, dst, run_currency(config)),
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


GROUP_SORT_KEYS = ("net_benefit", "units", "lines", "style", "from_id", "to_id", "loss_probability")
"""Allowed sort keys of :func:`list_groups`."""


def list_groups(
    engine: Engine,
    run_id: int,
    filters: RecFilter | None = None,
    *,
    sort: str = "net_benefit",
    descending: bool = True,
    page: int = 1,
    page_size: int = 50,
) -> Page:
    """Return one page of a run's recommendations: its lines grouped by style-colour x lane.

    Each item: ``group_key, kind, style, color, from_id, to_id, from_cluster, to_cluster``,
    ``lines``, ``units``, ``sizes`` (units per size, e.g. ``"S 10, M 25, L 15"``),
    ``expected_gain`` and ``net_benefit`` (sums, currency), ``loss_probability`` (the highest
    of its lines), ``n_exceptions``, ``pending`` (lines still pending) and ``status`` (the lines'
    status when they agree, else ``"mixed"``). Filters apply to the lines.
    """
    f = filters or RecFilter()
    _check_listing(f, sort, GROUP_SORT_KEYS, page, page_size)
    r = Recommendation
    cols: dict[str, Any] = {
        "net_benefit": func.sum(r.net_benefit),
        "units": func.sum(r.units),
        "lines": func.count(),
        "style": func.min(r.style),
        "from_id": func.min(r.from_id),
        "to_id": func.min(r.to_id),
        "loss_probability": func.max(r.loss_probability),
    }
    key = cols[sort]
    order = [key.desc(), r.group_key.desc()] if descending else [key.asc(), r.group_key]
    grouped = (
        select(
            r.group_key,
            func.min(r.kind).label("kind"),
            func.min(r.style).label("style"),
            func.min(r.color).label("color"),
            func.min(r.from_id).label("from_id"),
            func.min(r.to_id).label("to_id"),
            func.min(r.from_cluster).label("from_cluster"),
            func.min(r.to_cluster).label("to_cluster"),
            func.count().label("lines"),
            func.sum(r.units).label("units"),
            func.sum(r.expected_gain).label("expected_gain"),
            func.sum(r.net_benefit).label("net_benefit"),
            func.max(r.loss_probability).label("loss_probability"),
            func.sum(r.n_exceptions).label("n_exceptions"),
            func.min(r.status).label("status_min"),
            func.max(r.status).label("status_max"),
        )
        .where(*filter_clause(run_id, f))
        .group_by(r.group_key)
    )
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(grouped.subquery())).scalar_one()
        rows = conn.execute(
            grouped.order_by(*order).limit(page_size).offset((page - 1) * page_size)
        ).all()
        keys = [row.group_key for row in rows]
        sizes = conn.execute(
            select(r.group_key, r.size, r.sku, r.units, r.status, r.id)
            .where(*filter_clause(run_id, f), r.group_key.in_(keys))
            .order_by(r.group_key, r.id)
        ).all()
    by_group: dict[str, list[Any]] = {}
    for s in sizes:
        by_group.setdefault(s.group_key, []).append(s)
    items = []
    for row in rows:
        d = dict(row._mapping)
        members = by_group.get(row.group_key, [])
        d["sizes"] = ", ".join(f"{known_size(m.size) or m.sku} {m.units}" for m in members)
        d["pending"] = sum(1 for m in members if m.status == "pending")
        lo, hi = d.pop("status_min"), d.pop("status_max")
        d["status"] = lo if lo == hi else "mixed"
        d["units"] = int(d["units"] or 0)
        d["n_exceptions"] = int(d["n_exceptions"] or 0)
        items.append(d)
    return Page(items=items, total=int(total), page=page, page_size=page_size)
