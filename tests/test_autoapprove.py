"""Auto-approval rules and the drop-folder export, on a hand-built run of seven lines.

The lines (all ship on ``AS_OF + 1``; gain band gain +- 40 unless said; on hand 30 everywhere):

====  ==========  =====  =====  ==========  ========  ===============================
line  lane        sku    units  net         gain p10  why
====  ==========  =====  =====  ==========  ========  ===============================
A     S01 -> S02  ST0-S  5      85          60        tops, clears 50
B     S01 -> S03  ST1-M  5      85          60        shoes
C     S02 -> S03  ST0-M  5      30          5         net below 50
D     S03 -> S02  ST0-L  5      90          -5        gain p10 not positive
E     S04 -> S02  ST0-S  20     150         130       large move (20 > 50 % of 30): flagged
G     S03 -> S02  ST0-M  8      120         95        tops, best unflagged line
H     S01 -> S02  ST0-L  4      60          35        tops
====  ==========  =====  =====  ==========  ========  ===============================

A rule "tops-50" (net >= 50, gain p10 > 0, category tops) approves exactly A, G and H. With a
daily cap of 12 units per destination: G (8) first, A (5) would make 13 and is skipped, H (4)
makes 12 and fits.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlalchemy import Engine, select

import _workflow_fixtures
from _workflow_fixtures import AS_OF, make_products, make_stores
from stocktailor import workflow
from stocktailor.automation import AutoApprovalRule
from stocktailor.config import Settings, WorkflowConfig
from stocktailor.contract import TRANSFERS_SCHEMA
from stocktailor.plan import PlanResult
from stocktailor.workflow import Conflict
from stocktailor.workflow.models import Decision, Recommendation

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    from fastapi.testclient import TestClient

from stocktailor.api import create_app

database_url = _workflow_fixtures.database_url
sqlite_url = _workflow_fixtures.sqlite_url

LINES = {
    # name: (from, to, sku, units, gain, loss, cost, gain_p10)
    "A": ("S01", "S02", "ST0-S", 5, 100.0, 5.0, 10.0, 60.0),
    "B": ("S01", "S03", "ST1-M", 5, 100.0, 5.0, 10.0, 60.0),
    "C": ("S02", "S03", "ST0-M", 5, 45.0, 5.0, 10.0, 5.0),
    "D": ("S03", "S02", "ST0-L", 5, 105.0, 5.0, 10.0, -5.0),
    "E": ("S04", "S02", "ST0-S", 20, 165.0, 5.0, 10.0, 130.0),
    "G": ("S03", "S02", "ST0-M", 8, 135.0, 5.0, 10.0, 95.0),
    "H": ("S01", "S02", "ST0-L", 4, 75.0, 5.0, 10.0, 35.0),
}
TOPS = AutoApprovalRule(name="tops-50", min_net_benefit=50.0, categories=("tops",))


def tiny_plan() -> tuple[PlanResult, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    stores = make_stores(4)
    products = make_products(2)
    rows = []
    for name, (a, b, sku, units, gain, loss, cost, p10) in LINES.items():
        rows.append(
            {
                "transfer_id": name,
                "sku": sku,
                "style": sku.split("-")[0],
                "color": "black" if sku.startswith("ST0") else "red",
                "size": sku.split("-")[1],
                "from_id": a,
                "to_id": b,
                "units": units,
                "ship_date": AS_OF + dt.timedelta(days=1),
                "arrival_date": AS_OF + dt.timedelta(days=3),
                "transfer_cost": cost,
                "expected_gain": gain,
                "expected_source_loss": loss,
                "net_benefit": gain - loss - cost,
                "reason": f"{b} sells out first",
                "gain_p10": p10,
                "gain_p90": p10 + 80.0 if name != "D" else 200.0,
            }
        )
    positions = pl.DataFrame(
        [
            {"store_id": s, "sku": k, "on_hand": 30, "sold_units": 5}
            for s in stores["store_id"].to_list()
            for k in products["sku"].to_list()
        ]
    )
    plan = PlanResult(
        as_of=AS_OF,
        clusters=pl.DataFrame(
            {"store_id": ["S01", "S02", "S03", "S04"], "cluster_id": [0, 0, 1, 1]}
        ),
        forecast=pl.DataFrame(),
        allocation=pl.DataFrame(),
        transfers=pl.DataFrame(rows, schema=TRANSFERS_SCHEMA),
        kpis={},
        settings={},
        data_fingerprint="sha256:tiny",
    )
    return plan, stores, products, positions


def publish(engine: Engine, rules: tuple[AutoApprovalRule, ...] = ()) -> int:
    plan, stores, products, positions = tiny_plan()
    return workflow.publish_run(
        engine, plan, stores, products, positions=positions, user="cli", auto_approval=rules
    )


def by_name(engine: Engine, run_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(Recommendation.__table__).where(Recommendation.run_id == run_id)
        ).all()
    return {r.external_id: r for r in rows}


def approved(engine: Engine, run_id: int) -> set[str]:
    return {k for k, r in by_name(engine, run_id).items() if r.status == "approved"}


def test_the_tiny_run_flags_only_the_large_move(sqlite_url: str) -> None:
    engine = workflow.connect(sqlite_url)
    run_id = publish(engine)
    flagged = {k for k, r in by_name(engine, run_id).items() if r.n_exceptions}
    assert flagged == {"E"}
    assert approved(engine, run_id) == set()


def test_rule_approves_exactly_its_lines_and_audits_each(database_url: str) -> None:
    engine = workflow.connect(database_url)
    run_id = publish(engine)
    res = workflow.apply_auto_approval(engine, run_id, settings_rules=(TOPS,), user="ada")
    lines = by_name(engine, run_id)
    assert approved(engine, run_id) == {"A", "G", "H"}
    assert res.approved == 3 and res.units == 5 + 8 + 4
    assert res.by_rule == {"tops-50": 3}
    assert res.skipped_exceptions == 1 and res.skipped_cap == 0
    for k in ("A", "G", "H"):
        r = lines[k]
        assert (r.auto_rule, r.version, r.decided_by) == ("tops-50", 1, workflow.AUTO_USER)
        assert r.decision_reason == "auto-approved by rule tops-50"
    assert lines["E"].status == "pending" and lines["E"].auto_rule is None
    audits = [a for a in workflow.audit_entries(engine) if a["action"] == "auto_approve"]
    assert sorted(int(a["target"]) for a in audits) == sorted(lines[k].id for k in "AGH")
    assert {a["detail"]["rule"] for a in audits} == {"tops-50"}
    assert {a["detail"]["by"] for a in audits} == {"ada"}
    with engine.connect() as conn:
        rules = conn.execute(select(Decision.rule, Decision.action, Decision.from_version)).all()
    assert sorted(rules) == [("tops-50", "approve", 0)] * 3
    # the queue listing carries the rule for the "auto-approved by" marker
    page = workflow.list_recommendations(engine, run_id, workflow.RecFilter(status="approved"))
    assert {i["auto_rule"] for i in page.items} == {"tops-50"}
    # applying again changes nothing: the lines are no longer pending
    again = workflow.apply_auto_approval(engine, run_id, settings_rules=(TOPS,), user="ada")
    assert again.approved == 0


def test_lane_and_wildcard_rules(sqlite_url: str) -> None:
    engine = workflow.connect(sqlite_url)
    run_id = publish(engine)
    rule = AutoApprovalRule(name="from-S01", min_net_benefit=50.0, lanes=(("S01", "*"),))
    workflow.apply_auto_approval(engine, run_id, settings_rules=(rule,))
    assert approved(engine, run_id) == {"A", "B", "H"}


def test_daily_unit_cap_per_destination(database_url: str) -> None:
    engine = workflow.connect(database_url)
    run_id = publish(engine)
    capped = TOPS.model_copy(update={"daily_unit_cap": 12})
    res = workflow.apply_auto_approval(engine, run_id, settings_rules=(capped,))
    assert approved(engine, run_id) == {"G", "H"}
    assert res.skipped_cap == 1
    # a second run shipping the same day: S02 already has 12 units from this rule
    run2 = publish(engine)
    res2 = workflow.apply_auto_approval(engine, run2, settings_rules=(capped,))
    assert approved(engine, run2) == set() and res2.skipped_cap == 3


def test_rules_apply_on_publish_and_disabled_rules_do_not(database_url: str) -> None:
    engine = workflow.connect(database_url)
    off = TOPS.model_copy(update={"enabled": False})
    run_off = publish(engine, (off,))
    assert approved(engine, run_off) == set()
    assert not [a for a in workflow.audit_entries(engine) if a["action"].startswith("auto_")]
    run_on = publish(engine, (TOPS,))
    assert approved(engine, run_on) == {"A", "G", "H"}


def test_database_rules_created_updated_and_applied_on_publish(database_url: str) -> None:
    engine = workflow.connect(database_url)
    made = workflow.create_rule(engine, TOPS, user="ada")
    assert (made["version"], made["source"]) == (0, "database")
    with pytest.raises(Conflict):
        workflow.create_rule(engine, TOPS, user="ada")
    with pytest.raises(Conflict):
        workflow.create_rule(engine, TOPS, user="ada", settings_rules=(TOPS,))
    stricter = TOPS.model_copy(update={"min_net_benefit": 100.0})
    updated = workflow.update_rule(engine, made["id"], stricter, version=0, user="ada")
    assert updated["version"] == 1
    with pytest.raises(Conflict):
        workflow.update_rule(engine, made["id"], TOPS, version=0, user="ada")
    run_id = publish(engine)
    assert approved(engine, run_id) == {"G"}
    workflow.delete_rule(engine, made["id"], user="ada")
    assert workflow.list_rules(engine) == []
    outcomes = [
        (a["action"], a["outcome"])
        for a in workflow.audit_entries(engine)
        if a["action"].endswith("_rule")
    ]
    assert sorted(outcomes) == sorted(
        [
            ("create_rule", "applied"),
            ("create_rule", "conflict"),
            ("create_rule", "conflict"),
            ("update_rule", "applied"),
            ("update_rule", "conflict"),
            ("delete_rule", "applied"),
        ]
    )


def test_reversal_before_export_restores_pending_and_after_export_is_refused(
    database_url: str, tmp_path: Path
) -> None:
    engine = workflow.connect(database_url)
    run_id = publish(engine, (TOPS,))
    lines = by_name(engine, run_id)
    a, g = lines["A"], lines["G"]
    res = workflow.reverse_auto_approval(engine, a.id, version=1, user="ada", reason="check")
    assert (res.status, res.version, res.applied) == ("pending", 2, True)
    back = by_name(engine, run_id)["A"]
    assert (back.status, back.auto_rule, back.decided_by) == ("pending", None, None)
    # the same reversal again (a double click) is idempotent; an old version otherwise 409
    again = workflow.reverse_auto_approval(engine, a.id, version=1, user="ada", reason="check")
    assert (again.applied, again.version) == (False, 2)
    with pytest.raises(ValueError, match="not auto-approved"):
        workflow.reverse_auto_approval(engine, a.id, version=2, user="ada")
    # a planner may decide the line again from its new version
    workflow.decide(engine, a.id, action="approve", version=2, user="pia")
    # a planner's decision on an auto-approved line replaces the auto-approval (no marker)
    h = lines["H"]
    workflow.decide(engine, h.id, action="reject", version=1, user="pia", reason="no room")
    assert by_name(engine, run_id)["H"].auto_rule is None
    audits = [
        (x["outcome"], x["target"])
        for x in workflow.audit_entries(engine)
        if x["action"] == "reverse_auto_approval"
    ]
    assert audits == [("applied", str(a.id)), ("idempotent", str(a.id)), ("invalid", str(a.id))]

    out = workflow.export_to_folder(engine, tmp_path / "drop", "csv", user="cron")
    assert out.path is not None and out.lines == 2 and out.units == 5 + 8
    with pytest.raises(Conflict, match="exported"):
        workflow.reverse_auto_approval(engine, g.id, version=1, user="ada")
    assert by_name(engine, run_id)["G"].status == "approved"


def test_drop_folder_export_is_atomic_and_idempotent(database_url: str, tmp_path: Path) -> None:
    engine = workflow.connect(database_url)
    run_id = publish(engine, (TOPS,))
    drop = tmp_path / "drop"
    first = workflow.export_to_folder(engine, drop, "csv", user="cron")
    assert first.path is not None
    assert [p.name for p in drop.iterdir()] == [first.path.name]  # no temporary file left
    rows = list(csv.DictReader(io.StringIO(first.path.read_text(encoding="utf-8"))))
    lines = by_name(engine, run_id)
    assert [(r["ship_from"], r["ship_to"], r["sku"], r["units"]) for r in rows] == [
        ("S01", "S02", "ST0-L", "4"),
        ("S01", "S02", "ST0-S", "5"),
        ("S03", "S02", "ST0-M", "8"),
    ]
    assert {r["reference"] for r in rows} == {f"transfer-{lines[k].id}" for k in "AGH"}
    assert all(lines[k].export_file == first.path.name for k in "AGH")
    assert all(lines[k].exported_at is not None for k in "AGH")
    second = workflow.export_to_folder(engine, drop, "csv", user="cron")
    assert (second.path, second.lines) == (None, 0)
    assert len(list(drop.iterdir())) == 1
    # a line approved later goes into the next file, alone
    workflow.decide(engine, lines["B"].id, action="approve", version=0, user="pia")
    third = workflow.export_to_folder(engine, drop, "xlsx", user="cron")
    assert third.path is not None and third.path.suffix == ".xlsx"
    assert third.ids == [lines["B"].id]
    exports = [a for a in workflow.audit_entries(engine) if a["action"] == "export"]
    assert [a["detail"]["lines"] for a in exports] == [3, 1]


def test_failed_export_leaves_no_file_and_marks_nothing(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = workflow.connect(sqlite_url)
    run_id = publish(engine, (TOPS,))
    drop = tmp_path / "drop"

    def broken(*_: Any, **__: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("stocktailor.workflow.export.os.replace", broken)
    with pytest.raises(OSError, match="disk full"):
        workflow.export_to_folder(engine, drop, "csv")
    assert list(drop.iterdir()) == []
    assert all(r.exported_at is None for r in by_name(engine, run_id).values())


def test_cli_export_writes_once(sqlite_url: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from stocktailor.cli import app

    engine = workflow.connect(sqlite_url)
    publish(engine, (TOPS,))
    drop = tmp_path / "drop"
    args = ["export", "--drop-folder", str(drop), "--database-url", sqlite_url]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "exported 3 lines (17 units)" in first.output
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0 and "nothing new to export" in second.output
    assert len(list(drop.iterdir())) == 1
    bad = CliRunner().invoke(app, [*args, "--format", "pdf"])
    assert bad.exit_code == 1


def test_settings_read_rules_from_toml(tmp_path: Path) -> None:
    from stocktailor.config import load_settings

    f = tmp_path / "s.toml"
    f.write_text(
        "[[workflow.auto_approval]]\nname = 'tops-50'\nmin_net_benefit = 50.0\n"
        "categories = ['tops']\nlanes = [['S01', '*']]\ndaily_unit_cap = 12\n",
        encoding="utf-8",
    )
    s = load_settings(f, environ={})
    (rule,) = s.workflow.auto_approval
    assert rule.lanes == (("S01", "*"),) and rule.daily_unit_cap == 12
    assert rule.require_positive_p10 and rule.enabled
    assert isinstance(Settings().workflow, WorkflowConfig)


# --------------------------------------------------------------------------- HTTP


@pytest.fixture
def client(sqlite_url: str) -> Iterator[tuple[TestClient, Engine, dict[str, str]]]:
    app = create_app(Settings(), sqlite_url)
    engine = app.state.engine
    tokens = {
        role: workflow.create_user(engine, name, role)
        for name, role in (("ada", "admin"), ("pia", "planner"), ("vic", "viewer"))
    }
    with TestClient(app) as c:
        yield c, engine, tokens


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_api_rules_admin_only(client: tuple[TestClient, Engine, dict[str, str]]) -> None:
    c, engine, tokens = client
    run_id = publish(engine)
    body = {"name": "tops-50", "min_net_benefit": 50, "categories": ["tops"]}
    for role in ("planner", "viewer"):
        h = _h(tokens[role])
        assert c.get("/api/v1/auto-approval/rules", headers=h).status_code == 403
        assert c.post("/api/v1/auto-approval/rules", json=body, headers=h).status_code == 403
        assert c.post(f"/api/v1/runs/{run_id}/auto-approval", headers=h).status_code == 403
        r = c.post(
            "/api/v1/recommendations/1/auto-approval/reverse", json={"version": 1}, headers=h
        )
        assert r.status_code == 403
    forbidden = [a for a in workflow.audit_entries(engine) if a["outcome"] == "forbidden"]
    assert len(forbidden) == 8
    assert approved(engine, run_id) == set()
    assert workflow.list_rules(engine) == []


def test_api_rule_lifecycle_apply_reverse(
    client: tuple[TestClient, Engine, dict[str, str]], tmp_path: Path
) -> None:
    c, engine, tokens = client
    h = _h(tokens["admin"])
    run_id = publish(engine)
    lanes = [{"from_store": "*", "to_store": "S02"}]
    body = {"name": "tops-50", "min_net_benefit": 50, "categories": ["tops"], "lanes": lanes}
    made = c.post("/api/v1/auto-approval/rules", json=body, headers=h)
    assert made.status_code == 201, made.text
    assert made.json()["lanes"] == [["*", "S02"]]
    assert c.post("/api/v1/auto-approval/rules", json=body, headers=h).status_code == 409
    bad = c.post("/api/v1/auto-approval/rules", json=body | {"name": "x'; --"}, headers=h)
    assert bad.status_code == 422
    rid = made.json()["id"]
    put = c.put(f"/api/v1/auto-approval/rules/{rid}", json=body | {"version": 0}, headers=h)
    assert put.status_code == 200 and put.json()["version"] == 1
    stale = c.put(f"/api/v1/auto-approval/rules/{rid}", json=body | {"version": 0}, headers=h)
    assert stale.status_code == 409
    applied = c.post(f"/api/v1/runs/{run_id}/auto-approval", headers=h)
    assert applied.status_code == 200, applied.text
    assert applied.json() | {"run_id": 0} == {
        "run_id": 0,
        "approved": 3,
        "units": 17,
        "by_rule": {"tops-50": 3},
        "skipped_exceptions": 1,
        "skipped_cap": 0,
    }
    lines = by_name(engine, run_id)
    item = c.get(f"/api/v1/recommendations/{lines['A'].id}", headers=h).json()
    assert item["auto_rule"] == "tops-50"
    assert item["decisions"][-1]["rule"] == "tops-50"
    url = f"/api/v1/recommendations/{lines['A'].id}/auto-approval/reverse"
    rev = c.post(url, json={"version": 1, "reason": "want to look"}, headers=h)
    assert rev.status_code == 200 and rev.json()["status"] == "pending"
    assert c.post(url, json={"version": 0}, headers=h).status_code == 409
    workflow.export_to_folder(engine, tmp_path, "csv")
    url_g = f"/api/v1/recommendations/{lines['G'].id}/auto-approval/reverse"
    after = c.post(url_g, json={"version": 1}, headers=h)
    assert after.status_code == 409 and after.json()["current"]["exported"] is True
    assert c.delete(f"/api/v1/auto-approval/rules/{rid}", headers=h).status_code == 204
    assert c.delete(f"/api/v1/auto-approval/rules/{rid}", headers=h).status_code == 404


def _login(c: TestClient, token: str) -> str:
    r = c.post("/login", data={"token": token}, follow_redirects=False)
    assert r.status_code == 303, r.text
    page = c.get("/overview").text
    marker = '"X-CSRF-Token": "'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]


def test_rules_page_and_queue_marker(client: tuple[TestClient, Engine, dict[str, str]]) -> None:
    c, engine, tokens = client
    run_id = publish(engine)
    csrf = _login(c, tokens["planner"])
    assert 'data-testid="nav-rules"' not in c.get("/overview").text
    assert c.get("/rules").status_code == 403
    c.cookies.clear()
    csrf = _login(c, tokens["admin"])
    assert 'data-testid="nav-rules"' in c.get("/overview").text
    form = {
        "name": "tops-50",
        "min_net_benefit": "50",
        "require_positive_p10": "on",
        "categories": "tops",
        "lanes": "",
        "enabled": "on",
        "run_id": str(run_id),
    }
    assert c.post("/rules", data=form).status_code == 403  # no CSRF header
    made = c.post("/rules", data=form, headers={"X-CSRF-Token": csrf})
    assert made.status_code == 200 and "Rule tops-50 added." in made.text
    applied = c.post("/rules-apply", data={"run_id": str(run_id)}, headers={"X-CSRF-Token": csrf})
    assert "3 lines (17 units) auto-approved" in applied.text
    queue = c.get(f"/queue?run_id={run_id}&status=approved").text
    assert queue.count("auto-approved by tops-50") == 3
    a = by_name(engine, run_id)["A"]
    rev = c.post(
        f"/rules-reverse/{a.id}",
        data={"version": "1", "run_id": str(run_id)},
        headers={"X-CSRF-Token": csrf},
    )
    assert f"Line {a.id} is pending again." in rev.text
    assert by_name(engine, run_id)["A"].status == "pending"
