"""``stocktailor executions import`` and ``stocktailor measure`` end to end (issue 15).

A network worked out by hand: store A holds plenty of two sizes of style ST and never sells
out; store B holds none. Run 1 (as of D) moves 3 units of ST-M and 4 of ST-L from A to B,
arriving the next day. B sells 1 ST-M a day for three days and 1 ST-L a day for two; all 4
ST-L ship but only 2 arrive (partial). B sells out with the moves and would have sold nothing
without them, and A never sold out (with or without the units that left it), so the
measurement is exact: each unit B sold is worth price 10 - salvage 2 = 8, less the line's
transfer cost (every shipped unit is paid for).

- ST-M: 3 x 8 - 4 = 20 (estimated 15);
- ST-L: 2 x 8 - 8 = 8 (estimated 12 x 2 arrived / 4 approved = 6);
- style x lane and run: 28 (estimated 21), intervals without width.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from stocktailor import workflow
from stocktailor.cli import app
from stocktailor.config import Settings
from stocktailor.contract import FORECAST_SCHEMA
from stocktailor.pipeline.publish import calibrate_plan
from stocktailor.plan import PlanResult
from stocktailor.workflow.models import MeasuredLine, MeasurementBatch

runner = CliRunner()

D = dt.date(2025, 5, 4)


def _day(i: int) -> dt.date:
    return D + dt.timedelta(days=i)


STORES = pl.DataFrame(
    {
        "store_id": ["A", "B", "W"],
        "name": ["Store A", "Store B", "DC"],
        "kind": ["store", "store", "warehouse"],
        "city": ["Hue", "Hanoi", "Hanoi"],
        "latitude": [16.46, 21.03, 21.0],
        "longitude": [107.59, 105.85, 105.8],
    }
)
PRODUCTS = pl.DataFrame(
    {
        "sku": ["ST-M", "ST-L"],
        "style": ["ST", "ST"],
        "color": ["red", "red"],
        "size": ["M", "L"],
        "category": ["tops", "tops"],
        "full_price": [10.0, 10.0],
        "unit_cost": [4.0, 4.0],
        "salvage_value": [2.0, 2.0],
        "season_end": [dt.date(2025, 5, 7)] * 2,  # D + 3: the measurement reaches it
    }
)


def _sales() -> pl.DataFrame:
    rows = [(_day(i), "A", sku, 1) for i in range(-3, 4) for sku in ("ST-M",)]
    rows += [(_day(i), "B", "ST-M", 1) for i in (1, 2, 3)]
    rows += [(_day(i), "B", "ST-L", 1) for i in (1, 2)]
    rows += [(_day(-2), "B", "ST-L", 1)]
    return pl.DataFrame(
        {
            "date": [r[0] for r in rows],
            "store_id": [r[1] for r in rows],
            "sku": [r[2] for r in rows],
            "units": [r[3] for r in rows],
            "revenue": [10.0 * r[3] for r in rows],
        }
    )


def _inventory() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "date": [D] * 4,
            "store_id": ["A", "A", "B", "B"],
            "sku": ["ST-M", "ST-L", "ST-M", "ST-L"],
            "on_hand": [20, 10, 0, 0],
            "in_transit": [0, 0, 0, 0],
        }
    )


def _plan(as_of: dt.date) -> PlanResult:
    transfers = pl.DataFrame(
        {
            "transfer_id": ["T1", "T2"],
            "sku": ["ST-M", "ST-L"],
            "style": ["ST", "ST"],
            "color": ["red", "red"],
            "size": ["M", "L"],
            "from_id": ["A", "A"],
            "to_id": ["B", "B"],
            "units": [3, 4],
            "ship_date": [_day(1)] * 2,
            "arrival_date": [_day(1)] * 2,
            "transfer_cost": [4.0, 8.0],
            "expected_gain": [20.0, 21.0],
            "expected_source_loss": [1.0, 1.0],
            "net_benefit": [15.0, 12.0],
            "reason": ["B sells out", "B sells out"],
        }
    )
    return PlanResult(
        as_of=as_of,
        clusters=pl.DataFrame(
            {"store_id": ["A", "B"], "cluster_id": ["0", "1"], "cluster_name": ["big", "coastal"]}
        ),
        forecast=pl.DataFrame(schema=FORECAST_SCHEMA),
        allocation=pl.DataFrame(
            schema={
                "sku": pl.String,
                "from_id": pl.String,
                "to_id": pl.String,
                "units": pl.Int64,
                "expected_gain": pl.Float64,
            }
        ),
        transfers=transfers,
        kpis={"transfer_lines": 2.0, "expected_net_benefit": 27.0},
        settings={},
        data_fingerprint="sha256:test",
        validation=pl.DataFrame(),
    )


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, str, list[int]]:
    data = tmp_path / "data"
    data.mkdir()
    STORES.write_csv(data / "stores.csv")
    PRODUCTS.write_csv(data / "products.csv")
    _sales().write_csv(data / "sales.csv")
    _inventory().write_csv(data / "inventory.csv")
    ws = tmp_path / "ws"
    result = runner.invoke(app, ["ingest", str(data), "--workspace", str(ws)])
    assert result.exit_code == 0, result.output
    url = f"sqlite:///{ws.absolute()}/stocktailor.db"
    workflow.upgrade(url)
    engine = workflow.connect(url)
    try:
        run_id = workflow.publish_run(engine, _plan(D), STORES, PRODUCTS)
        workflow.publish_run(engine, _plan(D), STORES, PRODUCTS)  # run 2: no executions
        lines = workflow.list_recommendations(engine, run_id).items
        ids = sorted(int(r["id"]) for r in lines)
        for rid in ids:
            workflow.decide(engine, rid, action="approve", version=0, user="ana")
        exported = pl.read_csv(workflow.export_approved(engine, run_id, "csv"))
    finally:
        engine.dispose()
    assert run_id == 1
    moved = {"ST-M": (3, 3), "ST-L": (4, 2)}
    wms = exported.select(
        "reference",
        pl.col("sku").replace_strict({k: v[0] for k, v in moved.items()}).alias("shipped_units"),
        pl.col("sku").replace_strict({k: v[1] for k, v in moved.items()}).alias("received_units"),
        pl.lit(_day(1)).alias("ship_date"),
        pl.lit(_day(1)).alias("receive_date"),
    )
    wms.write_csv(tmp_path / "wms.csv")
    return ws, url, ids


def test_import_then_measure_matches_the_hand_worked_network(
    setup: tuple[Path, str, list[int]], tmp_path: Path
) -> None:
    ws, url, ids = setup
    wsargs = ["--workspace", str(ws)]
    result = runner.invoke(app, ["executions", "import", str(tmp_path / "wms.csv"), *wsargs])
    assert result.exit_code == 0, result.output
    assert "imported 2 executions from wms.csv (2 new, 0 replaced; 1 partial, 1 received)" in (
        result.output
    )
    out = tmp_path / "results.csv"
    args = ["measure", *wsargs, "--run", "1", "--until", str(_day(3)), "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"wrote {out.resolve()}" in result.output
    assert "stored measurement batch 1" in result.output
    res = pl.read_csv(out)
    assert res["level"].to_list() == ["line", "line", "style_lane", "run"]
    lines = res.filter(pl.col("level") == "line").sort("sku", descending=True)
    assert lines["sku"].to_list() == ["ST-M", "ST-L"]
    assert lines["units"].to_list() == [3, 2]
    assert lines["estimated"].to_list() == pytest.approx([15.0, 6.0])
    assert lines["cost"].to_list() == pytest.approx([4.0, 8.0])
    assert lines["measured"].to_list() == pytest.approx([20.0, 8.0])
    assert lines["measured_low"].to_list() == pytest.approx([20.0, 8.0])
    assert lines["measured_high"].to_list() == pytest.approx([20.0, 8.0])
    for level in ("style_lane", "run"):
        row = res.filter(pl.col("level") == level).row(0, named=True)
        assert (row["lines"], row["units"]) == (2, 5)
        assert row["estimated"] == pytest.approx(21.0)
        assert row["measured"] == pytest.approx(28.0)
        assert row["cost"] == pytest.approx(12.0)
        assert row["run_id"] == 1
    lane = res.filter(pl.col("level") == "style_lane").row(0, named=True)
    assert (lane["style"], lane["from_id"], lane["to_id"]) == ("ST", "A", "B")
    engine = workflow.connect(url)
    try:
        with engine.connect() as conn:
            batch = conn.execute(select(MeasurementBatch)).one()
            stored = conn.execute(select(MeasuredLine)).all()
        assert (batch.run_id, batch.until, batch.method, batch.level) == (1, _day(3), "ledger", 0.9)
        assert batch.summary["measured"] == pytest.approx(28.0)
        assert batch.summary["style_lanes"][0]["measured"] == pytest.approx(28.0)
        assert sorted(int(r.recommendation_id) for r in stored) == ids
        assert sorted(float(r.measured) for r in stored) == pytest.approx([8.0, 20.0])
        # calibration from this batch: strength 0 gives the raw ratio 28 / 21 at every level
        settings = Settings(measure={"calibrate": True, "calibration_strength": 0.0})
        plan, text = calibrate_plan(engine, _plan(_day(7)), PRODUCTS, settings)
    finally:
        engine.dispose()
    assert "2 lines measured to their season end (overall ratio x1.33); 0 transfer" in text
    assert plan.transfers["net_benefit"].to_list() == pytest.approx([15 * 28 / 21, 12 * 28 / 21])
    assert plan.transfers["reason"][0].startswith(
        "B sells out; calibrated x1.33 from 2 measured lines in tops / coastal / "
    )
    assert plan.kpis["expected_net_benefit"] == pytest.approx(27 * 28 / 21)


def test_reimport_replaces_and_measure_errors_are_one_line(
    setup: tuple[Path, str, list[int]], tmp_path: Path
) -> None:
    ws, _, _ = setup
    wsargs = ["--workspace", str(ws)]
    for _ in range(2):
        result = runner.invoke(app, ["executions", "import", str(tmp_path / "wms.csv"), *wsargs])
        assert result.exit_code == 0, result.output
    assert "(0 new, 2 replaced;" in result.output
    bad = pl.read_csv(tmp_path / "wms.csv").with_columns(pl.lit("-1").alias("received_units"))
    bad.write_csv(tmp_path / "bad.csv")
    result = runner.invoke(app, ["executions", "import", str(tmp_path / "bad.csv"), *wsargs])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: bad.csv, row 1, column 'received_units': '-1' is not a whole number of units >= 0"
    ]
    out = str(tmp_path / "r.csv")
    cases = [
        (["--run", "1", "--until", str(_day(4))], "is after the workspace's last sales day"),
        (["--run", "2", "--until", str(_day(3))], "run 2 has no executed lines"),
        (["--run", "1", "--until", str(D)], "is not after run 1's as-of date"),
        (["--run", "9", "--until", str(_day(3))], "no run 9"),
    ]
    for extra, needle in cases:
        result = runner.invoke(app, ["measure", *wsargs, *extra, "--out", out])
        assert result.exit_code == 1, result.output
        lines = [ln for ln in result.output.splitlines() if ln.strip()]
        assert len(lines) == 1, result.output
        assert needle in lines[0]
