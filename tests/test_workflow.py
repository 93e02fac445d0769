"""Store of record: migrations, publishing, exceptions, decisions, bulk, export, audit, users.

Every test taking ``database_url`` runs on a SQLite file and, when
``STOCKTAILOR_TEST_POSTGRES_URL`` is set (see scripts/ci-postgres.sh), on PostgreSQL too.
"""

from __future__ import annotations

import datetime as dt
import io
import random
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError

import _workflow_fixtures
from _workflow_fixtures import AS_OF, FakeRun, make_run
from stocktailor import workflow
from stocktailor.config import ServeConfig
from stocktailor.plan import PlanResult
from stocktailor.workflow.models import (
    ApiToken,
    AuditEntry,
    Base,
    Decision,
    Recommendation,
    RecommendationException,
)

database_url = _workflow_fixtures.database_url
sqlite_url = _workflow_fixtures.sqlite_url


def _publish(url: str, n: int = 40, **kw: Any) -> tuple[Engine, int]:
    engine = workflow.connect(url)
    fr = make_run(n, **kw)
    run_id = workflow.publish_run(engine, fr.plan, fr.stores, fr.products, positions=fr.positions)
    return engine, run_id


def _transfers_only(fr: FakeRun, transfers: pl.DataFrame, **kw: Any) -> PlanResult:
    """The fake run's plan with ``transfers`` as its only lines (``kw``: more plan fields)."""
    return PlanResult(
        as_of=AS_OF,
        clusters=fr.plan.clusters,
        forecast=fr.plan.forecast,
        allocation=fr.plan.allocation.head(0),
        transfers=transfers,
        **kw,
    )


def _rows_plan(fr: FakeRun, rows: list[dict[str, Any]]) -> PlanResult:
    """The fake run's plan without its forecast and with transfer ``rows`` (its schema)."""
    return PlanResult(
        as_of=AS_OF,
        clusters=fr.plan.clusters,
        forecast=fr.plan.forecast.head(0),
        allocation=fr.plan.allocation,
        transfers=pl.DataFrame(rows, schema=fr.plan.transfers.schema),
    )


def _decisions_per_rec(engine: Engine, run_id: int) -> Counter[int]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(Decision.recommendation_id)
            .join(Recommendation, Recommendation.id == Decision.recommendation_id)
            .where(Recommendation.run_id == run_id)
        ).scalars()
        return Counter(rows)


def _head() -> str:
    """The one head revision of the packaged migrations (a second head fails here)."""
    from alembic.script import ScriptDirectory

    from stocktailor.workflow.db import _alembic_config

    heads = ScriptDirectory.from_config(_alembic_config()).get_heads()
    assert len(heads) == 1, heads
    return str(heads[0])


def test_migrations_match_models(database_url: str) -> None:
    engine = workflow.connect(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    assert diff == []
    assert version == _head()
    workflow.upgrade(database_url)  # idempotent


def test_sqlite_connection_pragmas(sqlite_url: str) -> None:
    engine = workflow.connect(sqlite_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() >= 1000


def test_publish_run_stores_lines_and_context(database_url: str) -> None:
    engine, run_id = _publish(database_url, 40)
    run = workflow.get_run(engine, run_id)
    assert run["n_recommendations"] == 45
    assert run["status_counts"]["pending"] == 45
    assert run["kpis"]["lanes"] == 7.0
    assert [(v["candidate"], v["chosen"]) for v in run["validation"]] == [
        ("model", True),
        ("seasonal_naive", False),
    ]
    assert run["config"]["as_of"] == AS_OF.isoformat()
    page = workflow.list_recommendations(engine, run_id, page_size=1000)
    assert page.total == 45
    kinds = Counter(r["kind"] for r in page.items)
    assert kinds == {"transfer": 40, "allocation": 5}
    # net benefit sorted high to low; transfers keep the plan's P&L
    benefits = [r["net_benefit"] for r in page.items]
    assert benefits == sorted(benefits, reverse=True)
    t = next(r for r in page.items if r["external_id"] == "T000000")
    fr = make_run(40)
    src = fr.plan.transfers.row(0, named=True)
    assert t["units"] == t["original_units"] == src["units"]
    assert t["net_benefit"] == pytest.approx(src["net_benefit"])
    assert t["category"] in ("tops", "shoes")
    assert t["from_cluster"] is not None
    # allocation lines: net benefit = gain - cost, shipped on the as-of date, from the warehouse
    alloc = [r for r in page.items if r["kind"] == "allocation"]
    assert all(r["from_id"] == "W1" and r["ship_date"] == AS_OF for r in alloc)
    assert all(r["from_cluster"] is None for r in alloc)
    # detail: explanation, ends, band
    d = workflow.get_recommendation(engine, t["id"])
    assert str(t["units"]) in d["explanation"] and t["sku"] in d["explanation"]
    assert len(d["forecast"]["from"]) == 6 and len(d["forecast"]["to"]) == 6
    assert d["from_store"]["store_id"] == t["from_id"]
    # cover = on hand / mean weekly demand over the first 4 weeks
    pos = fr.positions.filter((pl.col("store_id") == t["from_id"]) & (pl.col("sku") == t["sku"]))[
        "on_hand"
    ][0]
    fc = fr.plan.forecast.filter(
        (pl.col("store_id") == t["from_id"]) & (pl.col("sku") == t["sku"])
    ).sort("week_start")["mean"][:4]
    assert d["from_on_hand"] == pos
    assert d["from_weekly_demand"] == pytest.approx(fc.mean())
    assert d["from_cover_weeks"] == pytest.approx(pos / fc.mean(), abs=0.01)


def test_exceptions_hand_worked(sqlite_url: str) -> None:
    """Four lines, each breaking exactly one rule; a second run sees style history."""
    fr = make_run(1, n_allocations=0)
    base = fr.plan.transfers.row(0, named=True)
    season_end = AS_OF + dt.timedelta(days=60)

    def line(i: int, **kw: object) -> dict[str, object]:
        row = dict(base)
        row.update(
            transfer_id=f"X{i}",
            from_id="S01",
            to_id="S02",
            sku="ST0-S",
            style="ST0",
            units=4,
            expected_gain=100.0,
            expected_source_loss=0.0,
            transfer_cost=10.0,
            net_benefit=90.0,
            gain_p10=90.0,
            gain_p90=110.0,
            arrival_date=AS_OF + dt.timedelta(days=3),
        )
        row.update(kw)
        return row

    # X0: net 0 with a gain band of -170..190 -> net band -180..180: may lose 180, at least
    # the run's median net 90, and net 0 < 0.1 x 360
    x0 = {"expected_gain": 10.0, "net_benefit": 0.0, "gain_p10": -170.0, "gain_p90": 190.0}
    rows = [
        line(0, to_id="S03", sku="ST1-S", style="ST1", **x0),
        line(1, units=60, to_id="S03", sku="ST1-M", style="ST1"),
        line(
            2, arrival_date=season_end - dt.timedelta(days=3), to_id="S03", sku="ST1-L", style="ST1"
        ),
        line(3),  # S02 has had ST0 before (approved in run 1)
        line(4, to_id="S04", sku="ST2-S", style="ST2"),  # S04 carries ST2: not a first
        # net 30 with a net band of -140..40: 30 >= 0.1 x 180; S05 sold ST3
        line(5, to_id="S05", sku="ST3-S", style="ST3", net_benefit=30.0, gain_p10=-70.0),
    ]
    engine = workflow.connect(sqlite_url)
    first = _rows_plan(fr, [line(9)])
    run1 = workflow.publish_run(engine, first, fr.stores, fr.products)
    rec1 = workflow.list_recommendations(engine, run1).items[0]
    assert [e["kind"] for e in workflow.get_recommendation(engine, rec1["id"])["exceptions"]] == [
        "first_transfer_of_style"
    ]
    workflow.decide(engine, rec1["id"], action="approve", version=0, user="ana")
    plan = _rows_plan(fr, rows)
    positions = pl.DataFrame(
        {
            "store_id": ["S01", "S04", "S05"],
            "sku": ["ST0-S", "ST2-M", "ST3-L"],
            "on_hand": [6, 3, 0],
            "sold_units": [0, 0, 2],
        }
    )
    cfg = ServeConfig(exception_large_move_iqr=3.0, exception_source_cover_weeks=2.0)
    run2 = workflow.publish_run(
        engine, plan, fr.stores, fr.products, positions=positions, config=cfg
    )
    got = {}
    for r in workflow.list_recommendations(engine, run2, sort="id", descending=False).items:
        kinds = [e["kind"] for e in workflow.get_recommendation(engine, r["id"])["exceptions"]]
        got[r["external_id"]] = sorted(kinds)
    assert got == {
        "X0": ["first_transfer_of_style", "low_confidence"],
        # 60 units among 4-unit lines is far out (fence 4 + 3 x 0)
        "X1": ["first_transfer_of_style", "large_move"],
        "X2": ["first_transfer_of_style", "soft_rule"],
        # the 4 units of 6 on hand leave S01 2, but its demand is unknown here (no forecast);
        # ST0 went to S02 before -> not first
        "X3": [],
        "X4": [],
        "X5": [],
    }
    exc = workflow.list_exceptions(engine, run2, kind="soft_rule")
    assert exc.total == 1 and "season end" in exc.items[0]["detail"]
    flagged = workflow.list_recommendations(
        engine, run2, workflow.RecFilter(exception="large_move")
    )
    assert {r["external_id"] for r in flagged.items} == {"X1"}


def test_filters_sort_and_paginate(database_url: str) -> None:
    engine, run_id = _publish(database_url, 60)
    everything = workflow.list_recommendations(engine, run_id, page_size=1000).items
    f = workflow.RecFilter(category="tops", store="S02")
    expected = [
        r for r in everything if r["category"] == "tops" and "S02" in (r["from_id"], r["to_id"])
    ]
    got = workflow.list_recommendations(engine, run_id, f, page_size=1000)
    assert got.total == len(expected) > 0
    assert {r["id"] for r in got.items} == {r["id"] for r in expected}
    by_cluster = workflow.list_recommendations(engine, run_id, workflow.RecFilter(cluster="1"))
    assert all("1" in (r["from_cluster"], r["to_cluster"]) for r in by_cluster.items)
    pages = [
        workflow.list_recommendations(
            engine, run_id, sort="units", descending=False, page=p, page_size=7
        ).items
        for p in range(1, 11)
    ]
    flat = [r for p in pages for r in p]
    assert len(flat) == 65 and len({r["id"] for r in flat}) == 65
    assert [r["units"] for r in flat] == sorted(r["units"] for r in flat)
    with pytest.raises(ValueError, match="sort"):
        workflow.list_recommendations(engine, run_id, sort="units; DROP TABLE x")
    with pytest.raises(ValueError, match="status"):
        workflow.list_recommendations(engine, run_id, workflow.RecFilter(status="done"))


def test_decide_idempotent_conflict_and_audit(database_url: str) -> None:
    engine, run_id = _publish(database_url, 5, n_allocations=0)
    ids = [r["id"] for r in workflow.list_recommendations(engine, run_id, sort="id").items]
    a, b, c = ids[:3]
    r1 = workflow.decide(engine, a, action="approve", version=0, user="ana")
    assert (r1.status, r1.version, r1.applied) == ("approved", 1, True)
    again = workflow.decide(engine, a, action="approve", version=0, user="bob")
    assert (again.status, again.version, again.applied) == ("approved", 1, False)
    assert again.decision_id == r1.decision_id
    with pytest.raises(workflow.Conflict) as info:
        workflow.decide(engine, a, action="reject", version=0, user="bob", reason="no room")
    assert info.value.current == {"status": "approved", "units": r1.units, "version": 1}
    # a decision on the current version is allowed (planner changes their mind)
    r2 = workflow.decide(engine, a, action="reject", version=1, user="ana", reason="no room")
    assert (r2.status, r2.version) == ("rejected", 2)
    # reject needs a reason; edit bounds
    with pytest.raises(ValueError, match="reason"):
        workflow.decide(engine, b, action="reject", version=0, user="ana", reason="  ")
    line = workflow.get_recommendation(engine, c)
    limit = max(line["from_on_hand"], line["original_units"])
    with pytest.raises(ValueError, match="between 1 and"):
        workflow.decide(engine, c, action="edit", version=0, user="ana", units=limit + 1)
    e = workflow.decide(engine, c, action="edit", version=0, user="ana", units=1)
    assert (e.status, e.units) == ("edited", 1)
    with pytest.raises(workflow.NotFound):
        workflow.decide(engine, 10**6, action="approve", version=0, user="ana")
    assert workflow.get_recommendation(engine, c)["original_units"] == line["original_units"]
    outcomes = [
        (x["target"], x["outcome"])
        for x in workflow.audit_entries(engine)
        if x["action"] == "decide"
    ]
    assert outcomes == [
        (str(a), "applied"),
        (str(a), "idempotent"),
        (str(a), "conflict"),
        (str(a), "applied"),
        (str(b), "invalid"),
        (str(c), "invalid"),
        (str(c), "applied"),
        (str(10**6), "not_found"),
    ]
    assert _decisions_per_rec(engine, run_id) == {a: 2, c: 1}


def test_bulk_decide_by_filter(database_url: str) -> None:
    engine, run_id = _publish(database_url, 60)
    f = workflow.RecFilter(category="tops")
    tops = workflow.list_recommendations(engine, run_id, f, page_size=1000).items
    one = tops[0]["id"]
    workflow.decide(engine, one, action="reject", version=0, user="ana", reason="keep")
    res = workflow.bulk_decide(engine, run_id, f, action="approve", user="bob")
    assert res.matched == len(tops) - 1 and one not in res.ids
    assert workflow.get_recommendation(engine, one)["status"] == "rejected"
    again = workflow.bulk_decide(engine, run_id, f, action="approve", user="bob")
    assert again.matched == 0
    per = _decisions_per_rec(engine, run_id)
    assert set(per) == {r["id"] for r in tops} and set(per.values()) == {1}
    shoes = workflow.list_recommendations(engine, run_id, workflow.RecFilter(category="shoes"))
    assert all(r["status"] == "pending" for r in shoes.items)
    with pytest.raises(ValueError, match="reason"):
        workflow.bulk_decide(engine, run_id, None, action="reject", user="bob")
    with pytest.raises(ValueError, match="pending"):
        workflow.bulk_decide(
            engine, run_id, workflow.RecFilter(status="approved"), action="approve", user="bob"
        )
    with pytest.raises(workflow.NotFound):
        workflow.bulk_decide(engine, 999, None, action="approve", user="bob")
    audit = [x for x in workflow.audit_entries(engine) if x["action"] == "decide"]
    assert sum(1 for x in audit if x["detail"].get("bulk")) == res.matched


def test_export_csv_and_xlsx(database_url: str) -> None:
    engine, run_id = _publish(database_url, 10)
    items = workflow.list_recommendations(engine, run_id, sort="id", descending=False).items
    workflow.decide(engine, items[0]["id"], action="approve", version=0, user="ana")
    workflow.decide(engine, items[1]["id"], action="edit", version=0, user="ana", units=1)
    workflow.decide(engine, items[2]["id"], action="reject", version=0, user="ana", reason="x")
    csv = workflow.export_approved(engine, run_id, "csv").decode()
    frame = pl.read_csv(io.StringIO(csv), try_parse_dates=True)
    assert frame.columns == list(workflow.EXPORT_COLUMNS)
    assert frame.height == 2
    refs = dict(zip(frame["reference"], frame["units"], strict=True))
    assert refs == {
        f"{items[0]['kind']}-{items[0]['id']}": items[0]["units"],
        f"{items[1]['kind']}-{items[1]['id']}": 1,
    }
    assert set(frame["ship_date"].to_list()) == {AS_OF + dt.timedelta(days=1)}
    wb = openpyxl.load_workbook(io.BytesIO(workflow.export_approved(engine, run_id, "xlsx")))
    ws = wb["transfers"]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0] == workflow.EXPORT_COLUMNS
    assert len(rows) == 3 and {r[3] for r in rows[1:]} == {items[0]["units"], 1}
    assert workflow.export_approved(engine, run_id, "xlsx") == workflow.export_approved(
        engine, run_id, "xlsx"
    )
    with pytest.raises(ValueError, match="format"):
        workflow.export_approved(engine, run_id, "pdf")


def test_tokens_are_stored_hashed(database_url: str) -> None:
    engine = workflow.connect(database_url)
    token = workflow.create_user(engine, "vera", "viewer")
    with engine.connect() as conn:
        stored = conn.execute(select(ApiToken.token_sha256)).scalars().all()
        dump = " ".join(str(v) for row in conn.execute(select(ApiToken.__table__)) for v in row)
    assert token not in dump
    assert stored == [workflow.hash_token(token)] and len(stored[0]) == 64
    assert workflow.authenticate(engine, token) == workflow.UserInfo("vera", "viewer")
    assert workflow.authenticate(engine, token + "x") is None
    assert workflow.authenticate(engine, None) is None
    with pytest.raises(ValueError, match="already exists"):
        workflow.create_user(engine, "vera", "planner")
    with pytest.raises(ValueError, match="role"):
        workflow.create_user(engine, "root", "superuser")
    demo1 = workflow.ensure_demo_user(engine)
    demo2 = workflow.ensure_demo_user(engine)
    assert demo1 != demo2
    assert workflow.authenticate(engine, demo1) == workflow.UserInfo("demo", "planner")
    assert workflow.authenticate(engine, demo2) == workflow.UserInfo("demo", "planner")


def test_audit_log_is_append_only(database_url: str) -> None:
    engine, run_id = _publish(database_url, 3)
    assert workflow.audit_entries(engine, target=f"run:{run_id}")[0]["action"] == "publish"
    for sql in ("UPDATE audit_log SET outcome = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(sql))
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(AuditEntry)).scalar_one() >= 1


def test_concurrent_deciders_leave_one_decision_each(database_url: str) -> None:
    """20 threads decide the same 200 lines: one decision per line, an audit row per attempt."""
    engine, run_id = _publish(database_url, 200, n_allocations=0, n_stores=8, n_styles=8)
    ids = [r["id"] for r in workflow.list_recommendations(engine, run_id, page_size=1000).items]
    assert len(ids) == 200
    n_threads = 20
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    errors: list[BaseException] = []
    barrier = threading.Barrier(n_threads)

    def worker(k: int) -> None:
        order = ids[:]
        random.Random(k).shuffle(order)
        barrier.wait()
        for rid in order:
            try:
                if k % 2:
                    workflow.decide(
                        engine, rid, action="reject", version=0, user=f"u{k}", reason="too far"
                    )
                else:
                    workflow.decide(engine, rid, action="approve", version=0, user=f"u{k}")
                out = "ok"
            except workflow.Conflict:
                out = "conflict"
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
                out = "error"
            with lock:
                outcomes[out] += 1

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(outcomes.values()) == 4000
    per = _decisions_per_rec(engine, run_id)
    assert set(per) == set(ids) and set(per.values()) == {1}
    audit = [x for x in workflow.audit_entries(engine) if x["action"] == "decide"]
    assert len(audit) == 4000
    by = Counter(x["outcome"] for x in audit)
    assert by["applied"] == 200
    assert by["applied"] + by["idempotent"] + by["conflict"] == 4000
    assert by["conflict"] == outcomes["conflict"]
    # status of every line agrees with its single decision
    with engine.connect() as conn:
        rows = conn.execute(
            select(Recommendation.status, Recommendation.version, Decision.action)
            .join(Decision, Decision.recommendation_id == Recommendation.id)
            .where(Recommendation.run_id == run_id)
        ).all()
    assert all(v == 1 and s == {"approve": "approved", "reject": "rejected"}[a] for s, v, a in rows)


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["approve", "reject", "edit"]),
            st.integers(0, 4),  # version offset the caller claims to have seen
            st.integers(1, 12),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_decision_sequences_keep_invariants(
    sqlite_url: str, steps: list[tuple[str, int, int]]
) -> None:
    """Whatever decisions arrive, version == applied decisions and status follows the last one."""
    engine = workflow.connect(sqlite_url)
    fr = make_run(1, n_allocations=0, forecast=False)
    run_id = workflow.publish_run(engine, fr.plan, fr.stores, fr.products, positions=fr.positions)
    rec = workflow.list_recommendations(engine, run_id).items[0]
    rid, applied = rec["id"], []
    for action, offset, units in steps:
        current = workflow.get_recommendation(engine, rid)["version"]
        version = max(current - offset, 0)
        try:
            res = workflow.decide(
                engine,
                rid,
                action=action,
                version=version,
                user="h",
                units=units if action == "edit" else None,
                reason="r",
            )
        except (workflow.Conflict, ValueError):
            continue
        if res.applied:
            applied.append((action, res.units))
    final = workflow.get_recommendation(engine, rid)
    assert final["version"] == len(applied) == len(final["decisions"])
    if applied:
        last_action, last_units = applied[-1]
        assert (
            final["status"]
            == {"approve": "approved", "reject": "rejected", "edit": "edited"}[last_action]
        )
        assert final["units"] == last_units
    else:
        assert final["status"] == "pending"
    assert final["original_units"] == rec["original_units"]
    with engine.connect() as conn:
        n_exc = conn.execute(
            select(func.count()).where(RecommendationException.recommendation_id == rid)
        ).scalar_one()
    assert n_exc == final["n_exceptions"]


def test_upgrade_from_alembic_cli_config(tmp_path: Path) -> None:
    """The packaged migrations also run through Alembic's own command API with a URL."""
    from alembic import command

    from stocktailor.workflow.db import _alembic_config

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    cfg = _alembic_config()
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, "head")
    engine = workflow.connect(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == _head()
    command.downgrade(cfg, "base")
    with engine.connect() as conn:
        names = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master"))}
    assert "recommendations" not in names


def test_stock_context_from_tables(tmp_path: Path) -> None:
    """On hand comes from positions.position_at; sold units are season-to-date net sales."""
    from _datafolder import write_data_folder
    from stocktailor.config import load_settings
    from stocktailor.positions import position_at
    from stocktailor.workspace import read_data_folder

    tables = read_data_folder(write_data_folder(tmp_path / "data"))
    as_of = dt.date(2024, 3, 3)
    ctx = workflow.stock_context(tables, as_of)
    sold = {(r["store_id"], r["sku"]): r["sold_units"] for r in ctx.iter_rows(named=True)}
    assert sold[("S1", "T1-RED-M")] == 2
    assert sold[("S1", "T1-RED-L")] == 3
    assert sold[("S2", "T1-RED-M")] == 0  # a return only: net -1, floored at 0
    assert sold[("W1", "SH1-BLK-40")] == 0
    pos = position_at(tables, as_of)
    on_hand = {(r["store_id"], r["sku"]): r["on_hand"] for r in ctx.iter_rows(named=True)}
    for r in pos.iter_rows(named=True):
        assert on_hand[(r["store_id"], r["sku"])] == r["on_hand"]
    later = workflow.stock_context(
        tables, as_of, load_settings(overrides={"season": {"start": "2024-03-02"}}, environ={})
    )
    sold2 = {(r["store_id"], r["sku"]): r["sold_units"] for r in later.iter_rows(named=True)}
    assert sold2[("S1", "T1-RED-M")] == 0 and sold2[("S1", "T1-RED-L")] == 3


def test_plan_loss_probability_and_groups_are_kept(sqlite_url: str) -> None:
    """The plan's net band decides low confidence (its loss probability is kept and quoted);
    its recommendation id groups."""
    fr = make_run(3, n_allocations=0)
    t = fr.plan.transfers.with_columns(
        pl.Series("loss_probability", [0.1, 0.5, None], dtype=pl.Float64),
        pl.Series("recommendation_id", ["RT-1", "RT-1", None], dtype=pl.String),
        # the second line: net (< 300) under 0.1 x its band 10,000, may lose 5,000 (> median)
        pl.Series("net_p10", [-5.0, -5000.0, None], dtype=pl.Float64),
        pl.Series("net_p90", [95.0, 5000.0, None], dtype=pl.Float64),
        # the third line: no plan probability, a tight band around a positive net -> ~0
        pl.col("net_benefit").abs() + 50.0,
    ).with_columns(
        pl.col("net_benefit").alias("expected_gain"),
        pl.lit(0.0).alias("expected_source_loss"),
        pl.lit(0.0).alias("transfer_cost"),
        (pl.col("net_benefit") - 1.0).alias("gain_p10"),
        (pl.col("net_benefit") + 1.0).alias("gain_p90"),
    )
    plan = _transfers_only(fr, t)
    engine = workflow.connect(sqlite_url)
    run_id = workflow.publish_run(engine, plan, fr.stores, fr.products, positions=fr.positions)
    items = workflow.list_recommendations(engine, run_id, sort="id", descending=False).items
    assert [r["loss_probability"] for r in items[:2]] == [0.1, 0.5]
    assert items[2]["loss_probability"] == pytest.approx(0.0, abs=1e-9)
    assert items[0]["group_key"] == items[1]["group_key"] == "RT-1"
    assert items[2]["group_key"] is not None and items[2]["group_key"] != "RT-1"
    low = workflow.list_exceptions(engine, run_id, kind="low_confidence").items
    assert [e["recommendation_id"] for e in low] == [items[1]["id"]]
    assert "50% chance of losing money" in low[0]["detail"]
    # the explanation is the line's own reason, with no cover figure added by the workflow
    d = workflow.get_recommendation(engine, items[0]["id"])
    assert t["reason"][0] in d["explanation"] and "weeks of cover" not in d["explanation"]


def test_groups_list_sizes_and_decide_together(database_url: str) -> None:
    """Lines of one style-colour x lane form one recommendation with its size breakdown."""
    fr = make_run(0, n_allocations=0)
    base = make_run(1, n_allocations=0).plan.transfers.row(0, named=True)
    rows = []
    for i, (size, units, net) in enumerate([("S", 3, 10.0), ("M", 5, 20.0), ("L", 2, 5.0)]):
        rows.append(
            base
            | {
                "transfer_id": f"G{i}",
                "sku": f"ST0-{size}",
                "style": "ST0",
                "color": "black",
                "size": size,
                "from_id": "S01",
                "to_id": "S02",
                "units": units,
                "net_benefit": net,
            }
        )
    rows.append(base | {"transfer_id": "G9", "sku": "ST1-S", "style": "ST1", "net_benefit": 1.0})
    plan = _rows_plan(fr, rows)
    engine = workflow.connect(database_url)
    run_id = workflow.publish_run(engine, plan, fr.stores, fr.products)
    groups = workflow.list_groups(engine, run_id).items
    assert len(groups) == 2
    top = groups[0]
    assert (top["style"], top["from_id"], top["to_id"]) == ("ST0", "S01", "S02")
    assert (top["lines"], top["units"], top["sizes"]) == (3, 10, "S 3, M 5, L 2")
    assert top["net_benefit"] == pytest.approx(35.0) and top["status"] == "pending"
    res = workflow.bulk_decide(
        engine, run_id, workflow.RecFilter(group=top["group_key"]), action="approve", user="ana"
    )
    assert res.applied == 3
    after = {g["group_key"]: g for g in workflow.list_groups(engine, run_id).items}
    assert after[top["group_key"]]["status"] == "approved"
    assert after[groups[1]["group_key"]]["status"] == "pending"
    only = workflow.list_groups(engine, run_id, workflow.RecFilter(status="pending")).items
    assert [g["group_key"] for g in only] == [groups[1]["group_key"]]


def test_product_words_leave_placeholders_and_one_size_out() -> None:
    from stocktailor.product_text import known, known_size, product_words

    assert product_words("27W7702", "na", "S2") == "27W7702 S2"
    for blank in ("", " ", "n/a", "N/A", "none", "None", "-", "nan", None):
        assert product_words("27W7702", blank, "S2") == "27W7702 S2", blank
    assert product_words("BAG12", "black", "one") == "BAG12 black"
    assert product_words("BAG12", "black", "OS") == "BAG12 black"
    assert product_words("na", "-", "OS") == ""
    assert known(" red ") == "red" and known("-") is None
    assert known_size("M") == "M" and known_size("One Size") is None
    # "one" is only a one-size value as a size, not as a colour
    assert known("one") == "one"


def test_explanation_without_placeholders_and_in_the_run_currency(sqlite_url: str) -> None:
    """Issue 18: "27W7702 na S2"; the fallback P&L sentence printed bare numbers."""
    fr = make_run(2, n_allocations=0)
    products = fr.products.with_columns(
        pl.when(pl.col("style") == "ST0").then(pl.lit("na")).otherwise("color").alias("color"),
        pl.when(pl.col("style") == "ST0").then(pl.lit("OS")).otherwise("size").alias("size"),
    )
    first = fr.plan.transfers.head(1)
    line = first.with_columns(
        pl.lit("ST0-M").alias("sku"),
        pl.lit("ST0").alias("style"),
        pl.lit("n/a").alias("color"),
        pl.lit("OS").alias("size"),
        pl.lit(3).alias("units"),
        pl.lit(1234.0).alias("expected_gain"),
        pl.lit(10.0).alias("expected_source_loss"),
        pl.lit(4.0).alias("transfer_cost"),
        pl.lit(1220.0).alias("net_benefit"),
        pl.lit(None, dtype=pl.String).alias("reason"),
    )
    engine = workflow.connect(sqlite_url)
    texts = {}
    for currency in ("VND", None):
        settings = {**fr.plan.settings}
        if currency:
            settings["economics"] = {"currency": currency}
        plan = _transfers_only(fr, line, settings=settings)
        run_id = workflow.publish_run(engine, plan, fr.stores, products, positions=fr.positions)
        rec = workflow.list_recommendations(engine, run_id).items[0]
        texts[currency] = workflow.get_recommendation(engine, rec["id"])["explanation"]
    src, dst = line["from_id"][0], line["to_id"][0]
    names = dict(zip(fr.stores["store_id"], fr.stores["name"], strict=True))
    assert texts["VND"].startswith(
        f"Move 3 units of ST0-M (ST0) from {names[src]} to {names[dst]}. "
        "Expected gain 1.234 ₫, the source gives up 10 ₫, transfer cost 4 ₫: "
        "net benefit 1.220 ₫."
    ), texts["VND"]
    assert "Expected gain $1,234, the source gives up $10.00, transfer cost $4.00: " in texts[None]
    assert "net benefit $1,220." in texts[None]
    groups = workflow.list_groups(engine, run_id).items
    assert groups[0]["sizes"] == "ST0-M 3"  # a one-size product: its SKU, not "OS"
