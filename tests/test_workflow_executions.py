"""Executions import (issue 15): happy path, a bad row writes nothing, re-import replaces.

Runs on SQLite and, when ``STOCKTAILOR_TEST_POSTGRES_URL`` is set, on PostgreSQL too.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlalchemy import Engine, func, select

import _workflow_fixtures
from _workflow_fixtures import AS_OF, make_run
from stocktailor import workflow
from stocktailor.contract import ContractError
from stocktailor.workflow.executions import import_executions, infer_status
from stocktailor.workflow.measurements import LOST, executed_lines, ledger_rows
from stocktailor.workflow.models import AuditEntry, Execution, Recommendation

database_url = _workflow_fixtures.database_url

SHIP = AS_OF + dt.timedelta(days=1)


def _published(url: str) -> tuple[Engine, list[Any]]:
    """A run of 6 transfer lines: lines 0-3 approved, line 4 edited to 1 unit, 5 pending."""
    engine = workflow.connect(url)
    fr = make_run(6, n_allocations=0)
    run_id = workflow.publish_run(engine, fr.plan, fr.stores, fr.products, positions=fr.positions)
    with engine.connect() as conn:
        ids = list(
            conn.execute(
                select(Recommendation.id)
                .where(Recommendation.run_id == run_id)
                .order_by(Recommendation.id)
            ).scalars()
        )
    for rid in ids[:4]:
        workflow.decide(engine, rid, action="approve", version=0, user="ana")
    workflow.decide(engine, ids[4], action="edit", version=0, user="ana", units=1)
    with engine.connect() as conn:
        recs = list(
            conn.execute(
                select(Recommendation).where(Recommendation.id.in_(ids)).order_by(Recommendation.id)
            ).all()
        )
    return engine, recs


def _executions(engine: Engine) -> dict[int, Any]:
    with engine.connect() as conn:
        return {e.recommendation_id: e for e in conn.execute(select(Execution)).all()}


def test_status_inference() -> None:
    assert infer_status(0, 0, 5, None) == "failed"
    assert infer_status(5, 0, 5, None) == "in_transit"
    assert infer_status(5, 3, 5, SHIP) == "partial"
    assert infer_status(5, 5, 5, SHIP) == "received"


def test_import_by_reference_infers_statuses_and_audits(database_url: str, tmp_path: Path) -> None:
    engine, recs = _published(database_url)
    r0, r1, r2, r3, r4 = recs[:5]
    frame = pl.DataFrame(
        {
            "reference": [f"transfer-{r.id}" for r in (r0, r1, r2, r3, r4)],
            "shipped_units": [r0.units, r1.units, 0, r3.units, 1],
            "received_units": [r0.units, r1.units - 1, None, None, 1],
            "ship_date": [SHIP, SHIP, None, SHIP, SHIP],
            "receive_date": [SHIP + dt.timedelta(days=2)] * 2 + [None, None, SHIP],
        }
    )
    path = tmp_path / "wms-2025-05-07.csv"
    frame.write_csv(path)
    res = import_executions(engine, path, user="wms")
    assert (res.lines, res.new, res.replaced) == (5, 5, 0)
    assert res.statuses == {"received": 2, "partial": 1, "failed": 1, "in_transit": 1}
    ex = _executions(engine)
    assert ex[r0.id].status == "received"
    assert ex[r1.id].status == "partial"
    assert ex[r1.id].received_units == r1.units - 1
    assert ex[r2.id].status == "failed"
    assert ex[r3.id].status == "in_transit"
    assert ex[r4.id].status == "received"  # edited to 1 unit: all of it arrived
    assert ex[r0.id].source_file == "wms-2025-05-07.csv"
    assert ex[r0.id].imported_by == "wms"
    assert ex[r0.id].run_id == r0.run_id
    assert ex[r0.id].ship_date == SHIP
    assert all(e.version == 0 for e in ex.values())
    with engine.connect() as conn:
        n = conn.execute(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "execution")
        ).scalar_one()
    assert n == 5


@pytest.mark.parametrize(
    ("row", "column", "needle"),
    [
        ({"shipped_units": "x"}, "shipped_units", "'x' is not a whole number"),
        ({"ship_date": "2025-13-01"}, "ship_date", "is not a date"),
        ({"received_units": "99"}, "received_units", "more than the"),
        ({"status": "lost"}, "status", "is not one of"),
        ({"reference": "pending"}, "reference", "only approved or edited lines ship"),
    ],
)
def test_a_bad_row_names_file_row_column_and_writes_nothing(
    database_url: str, tmp_path: Path, row: dict[str, str], column: str, needle: str
) -> None:
    engine, recs = _published(database_url)
    good = {
        "shipped_units": "2",
        "received_units": "2",
        "ship_date": str(SHIP),
        "status": "",
    }
    rows = [
        {
            "reference": f"transfer-{recs[0].id}",
            **good,
            "shipped_units": "1",
            "received_units": "1",
        },
        {
            "reference": f"transfer-{recs[1].id}",
            **good,
            "shipped_units": "1",
            "received_units": "1",
        },
    ]
    bad = {
        "reference": f"transfer-{recs[2].id}",
        **good,
        "shipped_units": "1",
        "received_units": "1",
    }
    if row.get("reference") == "pending":
        bad["reference"] = f"transfer-{recs[5].id}"
    else:
        bad.update(row)
    path = tmp_path / "wms.csv"
    pl.DataFrame([*rows, bad]).write_csv(path)
    with pytest.raises(ContractError) as info:
        import_executions(engine, path, user="wms")
    text = str(info.value)
    assert text.startswith(f"wms.csv, row 3, column '{column}': "), text
    assert needle in text
    assert "\n" not in text
    assert _executions(engine) == {}
    with engine.connect() as conn:
        outcome = conn.execute(
            select(AuditEntry.outcome).where(AuditEntry.action == "import_executions")
        ).scalar_one()
    assert outcome == "invalid"


def test_reimport_replaces_the_row_and_bumps_its_version(database_url: str) -> None:
    engine, recs = _published(database_url)
    r0 = recs[0]
    first = pl.DataFrame(
        {
            "recommendation_id": [r0.id],
            "shipped_units": [r0.units],
            "received_units": [0],
            "ship_date": [SHIP],
        }
    )
    import_executions(engine, first, user="wms", source_file="day1.csv")
    assert _executions(engine)[r0.id].status == "in_transit"
    # in transit: the shipped units count, arriving after the planned lead time (2 days)
    moved = executed_lines(engine, r0.run_id).row(0, named=True)
    assert (moved["units"], moved["ship_date"], moved["arrival_date"]) == (
        r0.units,
        SHIP,
        SHIP + dt.timedelta(days=2),
    )
    assert moved["estimated"] == pytest.approx(r0.net_benefit)
    second = first.with_columns(
        pl.lit(r0.units).alias("received_units"),
        pl.lit(SHIP + dt.timedelta(days=2)).alias("receive_date"),
    )
    res = import_executions(engine, second, user="wms", source_file="day3.csv")
    assert (res.new, res.replaced) == (0, 1)
    ex = _executions(engine)[r0.id]
    assert (ex.status, ex.version, ex.source_file) == ("received", 1, "day3.csv")
    assert ex.receive_date == SHIP + dt.timedelta(days=2)
    late = second.with_columns(
        pl.lit(1).alias("received_units"),
        pl.lit(SHIP + dt.timedelta(days=5)).alias("receive_date"),
    )
    import_executions(engine, late, user="wms", source_file="day6.csv")
    moved = executed_lines(engine).row(0, named=True)
    assert (moved["units"], moved["arrival_date"]) == (1, SHIP + dt.timedelta(days=5))
    assert moved["estimated"] == pytest.approx(r0.net_benefit / r0.units)
    # every shipped unit is paid for; the ones never received leave the source all the same
    assert moved["cost"] == pytest.approx(r0.transfer_cost)
    assert (moved["shipped"], moved["lost"]) == (r0.units, r0.units - 1)
    rows = ledger_rows(executed_lines(engine))
    assert rows["to_id"].to_list() == [r0.to_id, LOST]
    assert rows["units"].to_list() == [1, r0.units - 1]
    assert rows["cost"].sum() == pytest.approx(r0.transfer_cost)
    assert _executions(engine)[r0.id].version == 2


def test_unknown_lines_duplicates_and_missing_columns_are_errors(database_url: str) -> None:
    engine, recs = _published(database_url)
    base = {"shipped_units": [1], "received_units": [1], "ship_date": [SHIP]}
    with pytest.raises(ContractError, match=r"f.csv, row 1, column 'recommendation_id': no "):
        import_executions(
            engine,
            pl.DataFrame({"recommendation_id": [999_999], **base}),
            user="u",
            source_file="f.csv",
        )
    twice = pl.DataFrame(
        {"recommendation_id": [recs[0].id] * 2, **{k: v * 2 for k, v in base.items()}}
    )
    with pytest.raises(ContractError, match=r"row 2, .*appears twice \(first in row 1\)"):
        import_executions(engine, twice, user="u", source_file="f.csv")
    with pytest.raises(ContractError, match=r"column 'ship_date': missing required column"):
        import_executions(
            engine,
            pl.DataFrame(
                {"recommendation_id": [recs[0].id], "shipped_units": [1], "received_units": [1]}
            ),
            user="u",
            source_file="f.csv",
        )
    with pytest.raises(ContractError, match=r"allocation line"):
        import_executions(
            engine,
            pl.DataFrame({"reference": [f"allocation-{recs[0].id}"], **base}),
            user="u",
            source_file="f.csv",
        )
    assert _executions(engine) == {}
