"""What `make demo` prints: whole counts, headers never cut at 100 columns, absolute paths."""

from __future__ import annotations

import importlib
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from rich.console import Console

from stocktailor.cli import common
from stocktailor.config import ClusteringConfig, SeasonConfig, Settings
from stocktailor.demo import kpi_frame, run_demo


@dataclass
class _FakeBacktest:
    """The closing backtest's result, as the simulator shapes it (replaying a season is the
    simulator's test; here only the demo's printing of it is under test)."""

    report_path: Path

    def kpi_table(self) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "policy": ["none", "rule", "stocktailor"],
                "profit": [3495888.71, 4503270.61, 4504697.87],
                "full_price_sell_through": [0.61, 0.88, 0.87],
                "lost_units": [40402.0, 22302.0, 22316.0],
                "transfer_units": [0.0, 21677.0, 14820.0],
            }
        )


@pytest.fixture(scope="module")
def demo_output(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    out = tmp_path_factory.mktemp("demo") / "demo-output"
    buffer = io.StringIO()
    console = Console(file=buffer, width=100)
    saved = common.console
    common.console = console  # print_frame writes to the CLI console
    monkey = pytest.MonkeyPatch()
    module = importlib.import_module("stocktailor.simulate.backtest")
    monkey.setattr(module, "backtest", lambda *a, **k: _FakeBacktest(Path(a[4]) / "report.html"))
    try:
        result = run_demo(
            out,
            Settings(
                season=SeasonConfig(horizon_days=28), clustering=ClusteringConfig(n_clusters=3)
            ),
            console=console,
            progress_factory=common.progress_bar,
            print_frame=common.print_frame,
            write_frame=common.write_frame,
            scenario="scale",
            shape=(12, 200),
        )
    finally:
        common.console = saved
        monkey.undo()
    return buffer.getvalue(), result


@pytest.mark.slow
def test_demo_prints_whole_counts_and_uncut_headers(
    demo_output: tuple[str, dict[str, Any]],
) -> None:
    text, _ = demo_output
    tables = [line for line in text.splitlines() if line[:1] in "┏┃┡│└"]
    assert tables
    assert all(len(line) <= 100 for line in tables)  # every table fits 100 columns
    assert "…" not in text  # nothing cut, headers included
    # counts: the plan's and the backtest's, never with decimals
    for name in ("stores", "clusters", "transfer_lines", "lost_units", "transfer_units"):
        rows = [line for line in text.splitlines() if re.search(rf"\b{name}\b", line)]
        assert rows, name
        assert not any(re.search(r"\d\.\d\d\b", line) for line in rows), rows
    assert "(true)" not in text and "segment" not in text
    assert "by store cluster" in text
    assert "Plan (amounts in USD ($))" in text
    assert re.search(r"│ recommendations +│ +[\d,]+ │ +- │", text)  # a count, not 621.00


@pytest.mark.slow
def test_demo_explains_the_backtest_and_gives_absolute_paths(
    demo_output: tuple[str, dict[str, Any]],
) -> None:
    text, result = demo_output
    assert "because replaying the 60-store season takes much longer" in text
    # the exported lines say what currency their money is in
    for name in ("transfers.csv", "allocation.csv"):
        lines = pl.read_csv(Path(result["results"]) / name)
        assert lines.columns[-1] == "currency" and set(lines["currency"]) == {"USD"}, name
    assert "sqlite:" not in text
    hint = next(line for line in text.splitlines() if line.startswith("Review it: "))
    command = hint.split()[2]
    assert Path(command).is_absolute() and Path(command).name == "stocktailor"
    assert f"--workspace {result['workspace']}" in hint
    assert Path(result["workspace"]).is_absolute()
    for line in text.splitlines():
        for label in ("data folder", "workspace ", "plan outputs", "backtest report"):
            if line.strip().startswith(label):
                assert Path(
                    line.split()[-1] if label != "plan outputs" else line.split()[2]
                ).is_absolute()


def test_plan_figures_keep_counts_whole() -> None:
    frame = kpi_frame({"stores": 60.0, "transfer_lines": 22268.0, "transfer_cost": 127870.56})
    assert frame.filter(pl.col("figure") == "stores")["count"].item() == 60
    assert frame.schema["count"] == pl.Int64
    assert frame.filter(pl.col("figure") == "transfer_cost")["amount"].item() == 127870.56
    assert common.fmt(60) == "60" and common.fmt(127870.56) == "127,870.56"
    rows = common.kpi_rows(pl.DataFrame({"kpi": ["lost_units", "profit"], "a": [40402.0, 1.5]}))
    assert rows["a"].to_list() == ["40,402", "1.50"]
    more = kpi_frame({"recommendations": 621.0, "forecast_units_to_season_end": 84319.6})
    assert more["count"].to_list() == [621, 84320]


def test_exported_lines_carry_their_currency() -> None:
    lines = pl.DataFrame({"sku": ["a"], "units": [2], "net_benefit": [12.5]})
    out = common.with_currency(lines, "VND")
    assert out.columns == ["sku", "units", "net_benefit", "currency"]
    assert out["currency"].to_list() == ["VND"]
    assert common.with_currency(out, "USD")["currency"].to_list() == ["VND"]  # kept
    counts = pl.DataFrame({"store_id": ["S1"], "units": [3]})
    assert common.with_currency(counts, "VND").columns == ["store_id", "units"]  # no money
