"""Tests of the backtest driver and its self-contained HTML report."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import polars as pl
import pytest

from _report_pages import geo_assets, geo_maps, outside_plotlyjs, plots
from _toys import three_store_toy
from stocktailor.config import Settings
from stocktailor.engine import LocalEngine
from stocktailor.report import write_backtest_report
from stocktailor.simulate.backtest import backtest

GERMANY = [(52.5, 13.4), (48.1, 11.6), (53.6, 10.0)]  # Berlin, Munich, Hamburg


def test_backtest_writes_self_contained_report(tmp_path: Path) -> None:
    seen: list[int] = []
    res = backtest(
        three_store_toy,
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
    # the flows on a geo map; its base layer (usa: the stores are around New York) embedded
    rest = outside_plotlyjs(html)
    assert [g["scope"] for g in geo_maps(rest)] == ["usa"] and geo_assets(rest) == ["usa_110m"]
    assert "PlotlyGeoAssets" in rest and not re.search(r"https?://", rest)
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


def test_backtest_report_maps_a_foreign_network_on_the_world_layer(tmp_path: Path) -> None:
    backtest(
        lambda seed: three_store_toy(seed, GERMANY), [0], ["none", "rule"], Settings(), tmp_path
    )
    html = outside_plotlyjs((tmp_path / "report.html").read_text(encoding="utf-8"))
    (geo,) = geo_maps(html)
    assert geo["scope"] == "world" and geo_assets(html) == ["world_110m"]
    # the toy warehouse stays in New Jersey (40.5, -75.0): the map spans the Atlantic,
    # padded by a quarter of the 88.4 degrees of longitude
    assert geo["lataxis"]["range"] == pytest.approx([40.5 - 22.1, 53.6 + 22.1])
    assert geo["lonaxis"]["range"] == pytest.approx([-75.0 - 22.1, 13.4 + 22.1])
    assert not re.search(r"https?://", html)


def test_backtest_report_without_coordinates_omits_the_map(tmp_path: Path) -> None:
    """Coordinates are optional in the data contract: no map then, the flow tables stay."""
    res = backtest(three_store_toy, [0], ["none", "rule"], Settings(), None)
    drop = pl.col("latitude", "longitude")
    for label, fix in (
        ("absent", lambda st: st.drop("latitude", "longitude")),
        ("null", lambda st: st.with_columns(drop.cast(pl.Float64) * None)),
    ):
        results = [
            dataclasses.replace(r, space=dataclasses.replace(r.space, stores=fix(r.space.stores)))
            for r in res.results
        ]
        path = write_backtest_report(
            dataclasses.replace(res, results=results), tmp_path / f"{label}.html"
        )
        html = outside_plotlyjs(path.read_text(encoding="utf-8"))
        assert "No store coordinates: map omitted." in html, label
        assert len(plots(html)) == 3 and geo_maps(html) == [], label
        assert geo_assets(html) == [] and "PlotlyGeoAssets" not in html, label
        assert "Units transferred between segments" in html, label


def test_backtest_rejects_unknown_policy(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown policy 'best'"):
        backtest(three_store_toy, [0], ["none", "best"], Settings(), tmp_path)


def test_backtest_measures_the_true_value_of_executed_lines(tmp_path: Path) -> None:
    res = backtest(three_store_toy, [0], ["none", "rule"], Settings(), tmp_path, measure=["rule"])
    truth = pl.read_csv(tmp_path / "uplift_truth.csv", try_parse_dates=True)
    assert truth.columns == [
        "decision_date",
        "lines",
        "units",
        "estimated",
        "true",
        "seed",
        "policy",
    ]
    assert set(truth["policy"].to_list()) == {"rule"}
    rule = next(r for r in res.results if r.policy == "rule")
    moved = rule.moves.filter((pl.col("units") > 0) & (pl.col("kind") == "transfer"))
    assert truth["lines"].sum() == moved.height
    assert truth["decision_date"].to_list() == moved["ship_date"].unique().sort().to_list()
    assert truth["estimated"].null_count() == truth.height  # the rule estimates nothing
