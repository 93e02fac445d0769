from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from stocktailor.cli import app

runner = CliRunner()


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "data"
    result = runner.invoke(
        app, ["generate", "--scenario", "seed-stories", "--seed", "3", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return out


def test_generate_writes_contract_tables_and_truth(data_dir: Path) -> None:
    names = {p.stem for p in data_dir.iterdir() if p.is_file()}
    assert {"stores", "products", "sales", "inventory"} <= names
    assert (data_dir / "truth").is_dir()


def test_generate_same_seed_same_bytes(data_dir: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    result = runner.invoke(
        app, ["generate", "--scenario", "seed-stories", "--seed", "3", "--out", str(again)]
    )
    assert result.exit_code == 0, result.output
    assert _digest(again) == _digest(data_dir)


def test_unknown_scenario_is_one_clear_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["generate", "--scenario", "nope", "--out", str(tmp_path)])
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1
    assert "unknown 'nope'" in lines[0]


def test_ingest_then_bad_ingest_leaves_workspace(data_dir: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ok = runner.invoke(app, ["ingest", str(data_dir), "--workspace", str(ws)])
    assert ok.exit_code == 0, ok.output
    before = _digest(ws)

    bad = tmp_path / "bad"
    bad.mkdir()
    for p in data_dir.iterdir():
        if p.is_file():
            (bad / p.name).write_bytes(p.read_bytes())
    sales_file = next(p for p in bad.iterdir() if p.stem == "sales")
    sales = pl.read_csv(sales_file) if sales_file.suffix == ".csv" else pl.read_parquet(sales_file)
    sales = sales.with_columns(pl.col("units").cast(pl.String))
    sales[4, "units"] = "2.5"
    sales_file.unlink()
    sales.write_csv(bad / "sales.csv")

    result = runner.invoke(app, ["ingest", str(bad), "--workspace", str(ws)])
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    assert "sales.csv, row 5, column 'units'" in lines[0]
    assert "Traceback" not in result.output
    assert _digest(ws) == before


def test_missing_workspace_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["cluster", "--workspace", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert "no workspace here" in result.output


def test_bad_config_is_a_clear_error(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[constraints]\npack_size = 0\n", encoding="utf-8")
    result = runner.invoke(app, ["ingest", str(tmp_path), "--config", str(cfg)])
    assert result.exit_code == 1
    assert "constraints.pack_size" in result.output


def test_kpis_by_policy_puts_policies_in_columns() -> None:
    from stocktailor.summary import kpis_by_policy

    table = pl.DataFrame({"policy": ["none", "rule"], "profit": [1.0, 2.0], "lost": [3, 1]})
    out = kpis_by_policy(table)
    assert out.columns == ["kpi", "none", "rule"]
    assert out.row(0) == ("profit", 1.0, 2.0)
    assert out.row(1) == ("lost", 3.0, 1.0)


@pytest.mark.slow
def test_cluster_since_reclusters_and_writes_the_moves(data_dir: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert runner.invoke(app, ["ingest", str(data_dir), "--workspace", str(ws)]).exit_code == 0
    out = tmp_path / "clusters.csv"
    args = ["cluster", "--workspace", str(ws), "--as-of", "2026-04-19", "--out", str(out)]
    bad = runner.invoke(app, [*args, "--since", "2026-05-01"])
    assert bad.exit_code == 1
    assert "--since 2026-05-01 must be before --as-of 2026-04-19" in bad.output
    result = runner.invoke(app, [*args, "--since", "2026-03-22"])
    assert result.exit_code == 0, result.output
    labels = pl.read_csv(out)
    moves = pl.read_csv(tmp_path / "clusters_moves.csv")
    assert labels.height == 26  # seed-stories stores
    assert {"store_id", "from_cluster_id", "to_cluster_id", "why"} <= set(moves.columns)
    # A store reported as moved sits in its new cluster in clusters.csv.
    now = dict(zip(labels["store_id"], labels["cluster_id"], strict=True))
    assert all(now[s] == c for s, c in zip(moves["store_id"], moves["to_cluster_id"], strict=True))
    assert "stores moved since 2026-03-22" in result.output
