"""Tests of the backtest driver and its self-contained HTML report."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from stocktailor.config import Settings
from stocktailor.engine import LocalEngine
from stocktailor.simulate.backtest import backtest
from stocktailor.simulate.toy import ToyNetwork, toy_network


def _factory(seed: int) -> ToyNetwork:
    return toy_network(
        [[2.0, 3.0, 1.0], [0.2, 0.3, 0.1], [1.0, 1.0, 1.0]],
        [[5, 5, 5], [40, 40, 40], [10, 10, 10]],
        warehouse=[20, 20, 20],
        segments=["urban", "suburban", "urban"],
        weeks=6,
    )


def test_backtest_writes_self_contained_report(tmp_path: Path) -> None:
    seen: list[int] = []
    res = backtest(
        _factory,
        [0, 1],
        ["none", "rule"],
        Settings(),
        tmp_path,
        engine=LocalEngine(),
        progress=seen.append,
    )
    assert len(seen) == 4
    assert [(r.seed, r.policy) for r in res.results] == [
        (0, "none"),
        (0, "rule"),
        (1, "none"),
        (1, "rule"),
    ]
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<script src=" not in html and "cdn.plot.ly" not in html.split("</script>", 1)[1]
    assert "Plotly.newPlot" in html
    for title in (
        "Cumulative profit",
        "Sell-through",
        "Lost sales by cluster",
        "Transfer flows",
        "Units transferred between segments",
    ):
        assert title in html
    assert "suburban" in html
    kp = pl.read_csv(tmp_path / "kpis.csv")
    assert kp.columns == ["scope", "group", "policy", "seed", "kpi", "value"]
    overall = kp.filter((pl.col("scope") == "overall") & (pl.col("kpi") == "profit"))
    assert overall.height == 4
    runs = res.kpis.runs.sort("seed", "policy")
    assert overall.sort("seed", "policy")["value"].to_list() == pytest.approx(
        runs["profit"].to_list()
    )
    summary = pl.read_csv(tmp_path / "kpi_summary.csv")
    assert {"policy", "kpi", "mean", "ci_low", "ci_high", "n_seeds"} <= set(summary.columns)
    moves = pl.read_csv(tmp_path / "moves.csv")
    # none replenishes from the warehouse only; rule also moves between stores
    assert set(moves.filter(pl.col("policy") == "none")["from_id"].to_list()) <= {"WH"}
    assert moves.filter((pl.col("policy") == "rule") & (pl.col("from_id") != "WH")).height > 0
    assert moves.filter(pl.col("policy") == "rule")["units"].sum() > 0
    table = res.kpi_table()
    assert table["policy"].to_list() == ["none", "rule"]


def test_backtest_rejects_unknown_policy(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown policy 'best'"):
        backtest(_factory, [0], ["none", "best"], Settings(), tmp_path)
