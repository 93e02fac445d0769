"""``ingest --append``: validated, atomic, idempotent daily increments in date-ranged parts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from _datafolder import TINY, snapshot, write_data_folder
from stocktailor.contract import TABLE_SPECS, ContractError
from stocktailor.pipeline import append_increment
from stocktailor.workspace import Workspace, WorkspaceError, read_data_folder

DAY4 = {
    "sales": (
        "date,store_id,sku,units,revenue\n"
        "2024-03-04,S1,T1-RED-M,1,40\n"
        "2024-03-04,S2,T1-RED-S,2,80\n"
    ),
    "inventory": (
        "date,store_id,sku,on_hand,in_transit\n"
        "2024-03-04,S1,T1-RED-M,4,0\n"
        "2024-03-04,S2,T1-RED-S,1,0\n"
    ),
    "weather": "date,store_id,temp_c,precip_mm\n2024-03-04,S1,10,0\n2024-03-05,S1,11,0\n",
}


def _merged(extra: dict[str, str]) -> dict[str, str]:
    """TINY with the increment's rows in place (what a full re-ingest would see)."""
    out = dict(TINY)
    for name, text in extra.items():
        body = text.split("\n", 1)[1]
        if name == "weather":  # the actual for 2024-03-04 replaces the forecast row
            base = TINY[name].replace("2024-03-04,S1,9,2.5\n", "")
            out[name] = base + body
        else:
            out[name] = TINY[name] + body
    return out


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    workspace = Workspace(tmp_path / "ws")
    workspace.ingest(write_data_folder(tmp_path / "data"))
    return workspace


def _increment(tmp_path: Path, tables: dict[str, str], name: str = "inc") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    for table, text in tables.items():
        (folder / f"{table}.csv").write_text(text, encoding="utf-8")
    return folder


def test_append_adds_the_day_and_equals_a_full_ingest_of_everything(
    ws: Workspace, tmp_path: Path
) -> None:
    before = {p.file for parts in ws.parts_index().values() for p in parts}
    old_bytes = snapshot(ws.tables_dir)
    report = append_increment(ws, _increment(tmp_path, DAY4))
    assert report.added == {"sales": 2, "inventory": 2, "weather": 1}
    assert report.replaced == {"sales": 0, "inventory": 0, "weather": 1}
    tables = ws.load()
    full = read_data_folder(write_data_folder(tmp_path / "all", tables=_merged(DAY4)))
    for name in TABLE_SPECS:
        got, want = tables.get(name), full.get(name)
        if want is None:
            assert got is None
            continue
        assert got is not None
        key = list(TABLE_SPECS[name].key)
        assert_frame_equal(got.sort(key), want.sort(key), check_column_order=True)
    # the old parts were not touched, except the weather part whose forecast was replaced
    after = {p.file for parts in ws.parts_index().values() for p in parts}
    kept = before & after
    assert all(snapshot(ws.tables_dir)[f] == old_bytes[f] for f in kept)
    assert {f.split("/")[0] for f in before - after} == {"weather"}
    assert {f.split("/")[0] for f in after - before} == {"sales", "inventory", "weather"}
    assert ws.manifest()["row_counts"]["sales"] == 7
    assert ws.manifest()["fingerprint"] == ws.fingerprint() == report.fingerprint


def test_the_same_increment_twice_changes_no_byte(ws: Workspace, tmp_path: Path) -> None:
    inc = _increment(tmp_path, DAY4)
    append_increment(ws, inc)
    before = snapshot(ws.path)
    again = append_increment(ws, inc)
    assert not again.changed
    assert again.added == {"sales": 0, "inventory": 0, "weather": 0}
    assert again.unchanged == {"sales": 2, "inventory": 2, "weather": 2}
    assert snapshot(ws.path) == before
    # rows of the stored history sent again are no change either
    resend = _increment(tmp_path, {"sales": TINY["sales"], "stores": TINY["stores"]}, "resend")
    assert not append_increment(ws, resend).changed
    assert snapshot(ws.path) == before


def test_a_contradicting_row_is_one_line_naming_file_row_and_key(
    ws: Workspace, tmp_path: Path
) -> None:
    before = snapshot(ws.path)
    text = (
        "date,store_id,sku,units,revenue\n"
        "2024-03-05,S1,T1-RED-M,1,40\n"
        "2024-03-02,S1,SH1-BLK-41,2,180\n"
    )
    inc = _increment(tmp_path, {"sales": text})
    with pytest.raises(ContractError) as err:
        append_increment(ws, inc)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("sales.csv, row 2, column 'units': key (date=2024-03-02, store_id=S1, ")
    assert "sku=SH1-BLK-41) is already stored with units=1; this row has units=2" in msg
    assert snapshot(ws.path) == before


def test_an_invalid_increment_is_refused_like_a_full_ingest(ws: Workspace, tmp_path: Path) -> None:
    before = snapshot(ws.path)
    bad = "date,store_id,sku,units,revenue\n2024-03-04,S1,T1-RED-M,1,40\n2024-03-04,S1,NOPE,1,40\n"
    with pytest.raises(ContractError, match=r"sales.csv, row 2, column 'sku': unknown sku 'NOPE'"):
        append_increment(ws, _increment(tmp_path, {"sales": bad}))
    late = "date,store_id,sku,units,revenue\n2024-03-12,S1,T1-RED-M,1,40\n"
    with pytest.raises(ContractError, match=r"more than 7 days .* snapshot \(2024-03-01\)"):
        append_increment(ws, _increment(tmp_path, {"sales": late}, "late"))
    assert snapshot(ws.path) == before


def test_new_products_come_with_their_sales(ws: Workspace, tmp_path: Path) -> None:
    products = (
        "sku,style,color,size,category,full_price,unit_cost,season_end,size_order\n"
        "T1-RED-XL,T1,red,XL,tops,40,12.5,2024-06-30,4\n"
    )
    sales = "date,store_id,sku,units,revenue\n2024-03-04,S1,T1-RED-XL,1,40\n"
    report = append_increment(ws, _increment(tmp_path, {"products": products, "sales": sales}))
    assert report.added == {"products": 1, "sales": 1}
    tables = ws.load()
    assert tables.products.height == 6
    assert tables.products.filter(pl.col("sku") == "T1-RED-XL")["salvage_value"].item() == 12.0
    changed = products.replace(",40,12.5,", ",45,12.5,")
    with pytest.raises(ContractError, match=r"products.csv, row 1, column 'full_price'"):
        append_increment(ws, _increment(tmp_path, {"products": changed}, "changed"))


def test_a_weather_actual_is_never_replaced(ws: Workspace, tmp_path: Path) -> None:
    append_increment(ws, _increment(tmp_path, DAY4))
    revised = "date,store_id,temp_c,precip_mm,is_forecast\n2024-03-05,S1,12,0,true\n"
    assert append_increment(ws, _increment(tmp_path, {"weather": revised}, "rev")).replaced == {
        "weather": 1
    }
    wrong = "date,store_id,temp_c,precip_mm\n2024-03-03,S1,8,0\n"
    with pytest.raises(ContractError, match=r"weather.csv, row 1, column 'temp_c'"):
        append_increment(ws, _increment(tmp_path, {"weather": wrong}, "wrong"))


def test_append_needs_a_workspace_and_some_tables(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="nothing to append to"):
        append_increment(Workspace(tmp_path / "none"), _increment(tmp_path, DAY4))
    ws = Workspace(tmp_path / "ws")
    ws.ingest(write_data_folder(tmp_path / "data"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ContractError, match="no table files to append"):
        append_increment(ws, tmp_path / "empty")


def test_an_optional_table_can_arrive_with_an_append(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    ws.ingest(write_data_folder(tmp_path / "data", skip=["economy"]))
    assert ws.read("economy") is None
    report = append_increment(ws, _increment(tmp_path, {"economy": TINY["economy"]}))
    assert report.added == {"economy": 1}
    economy = ws.read("economy")
    assert economy is not None and economy.height == 1


def test_fingerprint_upto_ignores_later_days(ws: Workspace, tmp_path: Path) -> None:
    import datetime as dt

    day3, day4 = dt.date(2024, 3, 3), dt.date(2024, 3, 4)
    f3, f4 = ws.fingerprint_upto(day3), ws.fingerprint_upto(day4)
    whole = ws.fingerprint()
    append_increment(ws, _increment(tmp_path, DAY4))
    assert ws.fingerprint_upto(day3) == f3
    assert ws.fingerprint_upto(day4) != f4
    assert ws.fingerprint() != whole


# --------------------------------------------------------------------------- SIGKILL

_KILLABLE = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    real = os.replace
    calls = {"n": 0}
    target = int(sys.argv[3])
    def slow(src, dst):
        calls["n"] += 1
        if calls["n"] == target:
            Path(sys.argv[4]).write_text("ready")
            time.sleep(60)
        real(src, dst)
    os.replace = slow
    from stocktailor.pipeline import append_increment
    from stocktailor.workspace import Workspace
    append_increment(Workspace(sys.argv[1]), sys.argv[2])
    """
)


@pytest.mark.parametrize("kill_at", [1, 2, 4])
def test_sigkill_during_append_leaves_the_last_good_state(
    ws: Workspace, tmp_path: Path, kill_at: int
) -> None:
    """os.replace calls: parts 1-3 (sales, inventory, weather), then the manifest (4)."""
    inc = _increment(tmp_path, DAY4)
    reference = Workspace(tmp_path / "ref")
    reference.ingest(write_data_folder(tmp_path / "data2"))
    append_increment(reference, inc)
    before_tables = ws.load()
    before = ws.fingerprint()
    flag = tmp_path / "ready"
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLABLE, str(ws.path), str(inc), str(kill_at), str(flag)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    deadline = time.monotonic() + 60
    while not flag.exists():
        assert proc.poll() is None, "the append finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    # the last good state is readable and unchanged
    assert ws.fingerprint() == before
    after = ws.load()
    for name, frame in before_tables.items():
        assert_frame_equal(after.get(name), frame)  # type: ignore[arg-type]
    # the next append sweeps what the killed writer left and lands the day
    report = append_increment(ws, inc)
    assert report.changed
    assert ws.fingerprint() == reference.fingerprint()
    assert not [p for p in ws.tables_dir.rglob("*") if p.name.endswith(".tmp")]
