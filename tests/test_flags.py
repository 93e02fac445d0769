"""Exception flags on hand-built runs: each rule against the line itself or the whole run."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest

from stocktailor.config import ServeConfig
from stocktailor.workflow.flags import flag_exceptions, run_context

SHIP = dt.date(2026, 4, 20)
SEASON_END = dt.date(2026, 7, 31)

SCHEMA: dict[str, Any] = {
    "line_no": pl.UInt32,
    "kind": pl.String,
    "sku": pl.String,
    "style": pl.String,
    "from_id": pl.String,
    "to_id": pl.String,
    "units": pl.Int64,
    "ship_date": pl.Date,
    "arrival_date": pl.Date,
    "season_end": pl.Date,
    "expected_gain": pl.Float64,
    "net_benefit": pl.Float64,
    "gain_p10": pl.Float64,
    "gain_p90": pl.Float64,
    "net_p10": pl.Float64,
    "net_p90": pl.Float64,
    "loss_probability": pl.Float64,
    "soft_rules": pl.String,
    "from_on_hand": pl.Int64,
    "from_weekly_demand": pl.Float64,
    "to_style_units": pl.Int64,
    "to_style_sold": pl.Int64,
}


def line(**kw: Any) -> dict[str, Any]:
    """A safe transfer: net 100 in a tight band, 4 of 100 units of a store selling 1 a week,
    to a store that carries the style; ``kw`` overrides."""
    row: dict[str, Any] = {
        "kind": "transfer",
        "sku": "A-M",
        "style": "A",
        "from_id": "S1",
        "to_id": "S2",
        "units": 4,
        "ship_date": SHIP,
        "arrival_date": SHIP + dt.timedelta(days=3),
        "season_end": SEASON_END,
        "expected_gain": 110.0,
        "net_benefit": 100.0,
        "gain_p10": 100.0,
        "gain_p90": 120.0,
        "net_p10": 90.0,
        "net_p90": 110.0,
        "loss_probability": 0.0,
        "soft_rules": None,
        "from_on_hand": 100,
        "from_weekly_demand": 1.0,
        "to_style_units": 10,
        "to_style_sold": 5,
    }
    row.update(kw)
    return row


def run(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Number the lines 0.. and give every line its own SKU unless it names one."""
    numbered = [r | {"line_no": i} for i, r in enumerate(rows)]
    return pl.DataFrame(numbered, schema=SCHEMA)


def kinds(
    lines: pl.DataFrame, cfg: ServeConfig | None = None, prior: set[tuple[str, str]] | None = None
) -> dict[int, list[str]]:
    got: dict[int, list[str]] = {}
    for e in flag_exceptions(lines, prior or set(), cfg or ServeConfig()):
        got.setdefault(e["line_no"], []).append(e["kind"])
    return got


def test_safe_lines_are_not_exceptions() -> None:
    lines = run([line(sku=f"A-{i}") for i in range(6)])
    assert kinds(lines) == {}
    assert flag_exceptions(lines.head(0), set(), ServeConfig()) == []


def test_low_confidence_needs_a_possible_loss_a_thin_margin_and_a_material_stake() -> None:
    """Median net of the run: 100 (five safe lines at 100 + four below), so material = 100."""
    rows = [line(sku=f"A-{i}") for i in range(5)] + [
        # 0.1 x band 400 = 40 > net 10, p10 loss 150 >= 100: flagged
        line(sku="B-1", net_benefit=10.0, net_p10=-150.0, net_p90=250.0, loss_probability=0.45),
        # same thin margin (2 < 0.1 x 110) but the p10 loss 50 is under the material 100
        line(sku="B-2", net_benefit=2.0, net_p10=-50.0, net_p90=60.0),
        # loss 120 is material but net 60 >= 0.1 x band 420 = 42: confident enough
        line(sku="B-3", net_benefit=60.0, net_p10=-120.0, net_p90=300.0),
        # a wide band that cannot lose money (p10 = 0)
        line(sku="B-4", net_benefit=5.0, net_p10=0.0, net_p90=900.0),
    ]
    lines = run(rows)
    assert run_context(lines, ServeConfig())[1] == pytest.approx(100.0)
    assert kinds(lines) == {5: ["low_confidence"]}
    detail = flag_exceptions(lines, set(), ServeConfig())[0]["detail"]
    assert detail.startswith("45% chance of losing money") and "-150 to 250" in detail
    # a quarter of the band as the margin also catches B-3 (60 < 105); no materiality catches B-2
    wide = ServeConfig(exception_band_share=0.25, exception_material_loss=0.0)
    assert kinds(lines, wide) == {
        5: ["low_confidence"],
        6: ["low_confidence"],
        7: ["low_confidence"],
    }


def test_low_confidence_falls_back_to_the_gain_band_shifted_by_costs() -> None:
    """No net band: gain -200..260 with gain 30 and net 10 -> net band -220..240."""
    rows = [line(sku=f"A-{i}") for i in range(4)] + [
        line(
            sku="B-1",
            expected_gain=30.0,
            net_benefit=10.0,
            gain_p10=-200.0,
            gain_p90=260.0,
            net_p10=None,
            net_p90=None,
            loss_probability=None,
        )
    ]
    got = flag_exceptions(run(rows), set(), ServeConfig())
    assert [(e["line_no"], e["kind"]) for e in got] == [(4, "low_confidence")]
    assert "-220 to 240" in got[0]["detail"] and "chance" not in got[0]["detail"]


def test_large_move_is_far_out_among_the_runs_lines_of_its_kind() -> None:
    """Transfers 2, 4, 6, 8, 40 units: Q1 4, Q3 8, fence 8 + 3 x 4 = 20 -> only 40 is large.
    Allocations 40, 50, 60: Q1 45, Q3 55, fence 85 -> 40 units is an ordinary allocation."""
    units = [2, 4, 6, 8, 40]
    rows = [line(sku=f"A-{i}", units=u) for i, u in enumerate(units)]
    rows += [
        line(kind="allocation", sku=f"W-{i}", from_id="W1", units=u, from_weekly_demand=None)
        for i, u in enumerate([40, 50, 60])
    ]
    lines = run(rows)
    ctx, _ = run_context(lines, ServeConfig())
    assert ctx["size_fence"].to_list() == [20.0] * 5 + [85.0] * 3
    got = flag_exceptions(lines, set(), ServeConfig())
    assert [(e["line_no"], e["kind"]) for e in got] == [(4, "large_move")]
    assert "40 units" in got[0]["detail"] and "20.0" in got[0]["detail"]
    # a looser fence (10 x IQR = 48) lets the 40-unit transfer through
    assert kinds(lines, ServeConfig(exception_large_move_iqr=10.0)) == {}


def test_large_move_when_the_runs_transfers_leave_the_source_short() -> None:
    """S1 holds 10 of A-M, sells 1 a week and ships 5 + 4 in this run: 1 left = 1 week < 2.
    S3 holds 20 of A-M and ships 9: 11 weeks left. S4 sells nothing: no cover to lose."""
    rows = [
        line(units=5, from_on_hand=10),
        line(units=4, from_on_hand=10, to_id="S5"),
        line(units=9, from_id="S3", from_on_hand=20),
        line(units=9, from_id="S4", from_on_hand=9, from_weekly_demand=0.0),
        line(units=5, from_id="S6", from_on_hand=None),
    ]
    lines = run(rows)
    ctx, _ = run_context(lines, ServeConfig())
    assert ctx["source_left"].to_list() == [1, 1, 11, 0, None]
    got = flag_exceptions(lines, set(), ServeConfig())
    assert [(e["line_no"], e["kind"]) for e in got] == [(0, "large_move"), (1, "large_move")]
    assert "leaves 1 at S1" in got[0]["detail"] and "1.0 weeks" in got[0]["detail"]
    assert kinds(lines, ServeConfig(exception_source_cover_weeks=1.0)) == {}


def test_soft_rule_reports_the_plans_rule_and_late_arrivals() -> None:
    rows = [
        line(sku="A-1", soft_rules="min display 3 units"),
        # 10 days before season end < 14
        line(sku="A-2", arrival_date=SEASON_END - dt.timedelta(days=10)),
        # 14 days before: not late; no arrival date -> the ship date counts
        line(sku="A-3", arrival_date=SEASON_END - dt.timedelta(days=14)),
        line(sku="A-4", arrival_date=None, ship_date=SEASON_END - dt.timedelta(days=1)),
    ]
    got = flag_exceptions(run(rows), set(), ServeConfig())
    assert [(e["line_no"], e["kind"]) for e in got] == [
        (0, "soft_rule"),
        (1, "soft_rule"),
        (3, "soft_rule"),
    ]
    assert got[0]["detail"] == "min display 3 units" and "season end" in got[1]["detail"]
    assert kinds(run(rows), ServeConfig(exception_late_arrival_days=0)) == {0: ["soft_rule"]}


def test_first_transfer_of_style_once_per_store_and_style() -> None:
    rows = [
        line(sku="N-S", style="N", to_style_units=0, to_style_sold=0),
        line(sku="N-M", style="N", to_style_units=0, to_style_sold=0),
        line(sku="P-S", style="P", to_style_units=0, to_style_sold=0),  # approved before
        line(sku="Q-S", style="Q", to_style_units=0, to_style_sold=3),  # sold it this season
        line(kind="allocation", sku="N-L", style="N", from_id="W1", to_style_units=0),
    ]
    got = flag_exceptions(run(rows), {("S2", "P")}, ServeConfig())
    assert [(e["line_no"], e["kind"]) for e in got] == [
        (0, "first_transfer_of_style"),
        (1, "first_transfer_of_style"),
    ]
    assert "another size" not in got[0]["detail"] and "another size" in got[1]["detail"]
