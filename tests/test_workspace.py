"""Workspace: reading data folders, all-or-nothing ingest, typed reads, the error catalogue."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from _datafolder import TINY, snapshot, write_data_folder
from stocktailor.config import SeasonConfig, Settings
from stocktailor.contract import TABLE_SPECS, ContractError
from stocktailor.workspace import (
    IngestReport,
    Workspace,
    WorkspaceError,
    default_workspace_path,
    read_data_folder,
    write_parts,
)


def edit(table: str, old: str, new: str) -> dict[str, str]:
    """TINY with the first ``old`` in ``table`` replaced by ``new``."""
    assert old in TINY[table], f"{old!r} not in {table}"
    return {**TINY, table: TINY[table].replace(old, new, 1)}


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_data_folder(tmp_path / "data")


@pytest.fixture
def ws(tmp_path: Path, data: Path) -> Workspace:
    """A workspace holding the tiny network and a workflow database file."""
    workspace = Workspace(tmp_path / "ws")
    workspace.ingest(data)
    (workspace.path / "stocktailor.db").write_bytes(b"SQLite format 3\x00 fake")
    return workspace


# --------------------------------------------------------------------------- happy path


def test_ingest_load_roundtrip(ws: Workspace, data: Path) -> None:
    assert ws.exists()
    assert ws.tables() == list(TABLE_SPECS)
    tables = ws.load()
    expected = read_data_folder(data)
    for name, frame in expected.items():
        got = tables.get(name)
        assert got is not None
        assert_frame_equal(got, frame)
    assert tables.sales["units"].to_list() == [2, 1, 1, -1, 3]
    assert tables.products.schema["season_end"] == pl.Date
    read = ws.read("lanes")
    assert read is not None
    assert read.height == 3
    lazy = ws.scan("sales")
    assert isinstance(lazy, pl.LazyFrame)
    assert lazy.filter(pl.col("units") > 1).collect().height == 2


def test_manifest_and_fingerprint(ws: Workspace, tmp_path: Path, data: Path) -> None:
    manifest = ws.manifest()
    assert manifest["row_counts"]["sales"] == 5
    assert manifest["row_counts"]["stores"] == 3
    assert manifest["files"]["sales"] == "sales.csv"
    assert manifest["attributes"]["stores"] == ["climate_zone"]
    assert manifest["fingerprint"] == ws.fingerprint()
    dt.datetime.fromisoformat(manifest["ingested_at"])
    # same data -> same fingerprint; other data -> another one
    first = ws.fingerprint()
    ws.ingest(data)
    assert ws.fingerprint() == first
    other = write_data_folder(tmp_path / "other", tables=edit("sales", ",2,80", ",3,120"))
    report = ws.ingest(other)
    assert isinstance(report, IngestReport)
    assert report.fingerprint == ws.fingerprint() != first
    assert report.row_counts["sales"] == 5
    assert "sales" in report.summary()


def test_reingest_keeps_database_and_other_files(ws: Workspace, tmp_path: Path) -> None:
    (ws.path / "exports").mkdir()
    (ws.path / "exports" / "transfers.csv").write_text("x\n")
    db = (ws.path / "stocktailor.db").read_bytes()
    smaller = write_data_folder(tmp_path / "smaller", skip=["weather", "events"])
    ws.ingest(smaller)
    assert (ws.path / "stocktailor.db").read_bytes() == db
    assert (ws.path / "exports" / "transfers.csv").read_text() == "x\n"
    assert ws.read("weather") is None  # the old optional table is gone
    assert "weather" not in ws.tables()
    assert ws.load().weather is None
    leftovers = [p.name for p in ws.path.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_parquet_folder_equals_csv_folder(tmp_path: Path, data: Path) -> None:
    pq = write_data_folder(tmp_path / "pq", fmt="parquet")
    from_csv = read_data_folder(data)
    from_pq = read_data_folder(pq)
    for name, frame in from_csv.items():
        other = from_pq.get(name)
        assert other is not None
        assert_frame_equal(other, frame, check_dtypes=False)
        spec_cols = TABLE_SPECS[name].column_names
        assert other.select(spec_cols).schema == frame.select(spec_cols).schema


def test_database_url_and_default_path(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "w")
    assert ws.database_url == f"sqlite:///{(tmp_path / 'w').absolute()}/stocktailor.db"
    assert Workspace(tmp_path, database_url="postgresql://x/y").database_url == "postgresql://x/y"
    assert default_workspace_path({}) == Path("stocktailor-workspace")
    assert default_workspace_path({"STOCKTAILOR_WORKSPACE": "/data/ws"}) == Path("/data/ws")


def test_reads_before_ingest_fail_clearly(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "nothing")
    assert not ws.exists()
    assert ws.tables() == []
    with pytest.raises(WorkspaceError, match="run `stocktailor ingest"):
        ws.load()
    with pytest.raises(WorkspaceError):
        ws.fingerprint()
    with pytest.raises(WorkspaceError):
        ws.scan("sales")


def test_unknown_table_name_and_absent_optional(ws: Workspace, tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="unknown table 'salez'"):
        ws.read("salez")
    ws.ingest(write_data_folder(tmp_path / "min", skip=["lanes"]))
    assert ws.read("lanes") is None
    with pytest.raises(WorkspaceError, match="'lanes' was not ingested"):
        ws.scan("lanes")


def test_settings_supply_defaults(tmp_path: Path) -> None:
    lines = TINY["products"].splitlines()
    header = lines[0].replace(",salvage_value,season_end", "")
    body = [",".join(x.split(",")[:7] + x.split(",")[9:]) for x in lines[1:]]
    tables = {**TINY, "products": "\n".join([header, *body]) + "\n"}
    folder = write_data_folder(tmp_path / "d", tables=tables)
    # Without the setting the assortment never ends: season_end stays empty.
    assert read_data_folder(folder).products["season_end"].null_count() == 5
    s = Settings(season=SeasonConfig(end=dt.date(2024, 7, 31)))
    products = read_data_folder(folder, settings=s).products
    assert products["season_end"].unique().to_list() == [dt.date(2024, 7, 31)]
    assert products["salvage_value"].to_list() == pytest.approx([12.0, 12.0, 12.0, 27.0, 27.0])


def test_trailing_blank_lines_and_crlf_are_fine(tmp_path: Path) -> None:
    tables = {**TINY, "sales": TINY["sales"] + "\n\n", "lanes": TINY["lanes"].replace("\n", "\r\n")}
    folder = write_data_folder(tmp_path / "d", tables=tables)
    read = read_data_folder(folder)
    assert read.sales.height == 5
    assert read.lanes is not None
    assert read.lanes["lead_time_days"].to_list() == [2, 3, 3]


def test_missing_data_folder(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(ContractError, match=r"nope: data folder not found$"):
        ws.ingest(tmp_path / "nope")
    (tmp_path / "file.csv").write_text("a\n")
    with pytest.raises(ContractError, match="expected a data folder"):
        ws.ingest(tmp_path / "file.csv")
    assert not ws.path.exists()


def test_ignores_unrelated_files(tmp_path: Path) -> None:
    folder = write_data_folder(tmp_path / "d")
    (folder / "README.md").write_text("notes")
    (folder / "truth").mkdir()
    (folder / "truth" / "segments.csv").write_text("a\n1\n")
    (folder / ".DS_Store").write_bytes(b"\x00\xff")
    assert read_data_folder(folder).sales.height == 5


# --------------------------------------------------------------------------- error catalogue

CASES: list[tuple[str, dict[str, str], str]] = [
    (
        "missing required column",
        {**TINY, "sales": "date,store_id,sku,revenue\n2024-03-01,S1,T1-RED-M,80\n"},
        "sales.csv, column 'units': missing required column "
        "(the table has: date, store_id, sku, revenue)",
    ),
    (
        "wrong type",
        edit("stores", "42.35", "north"),
        "stores.csv, row 2, column 'latitude': expected a number, got 'north'",
    ),
    (
        "unparsable date",
        edit("sales", "2024-03-02,S1", "2024-02-30,S1"),
        "sales.csv, row 3, column 'date': expected a date (YYYY-MM-DD), got '2024-02-30'",
    ),
    (
        "negative on_hand",
        edit("inventory", "T1-RED-M,0,0", "T1-RED-M,-3,0"),
        "inventory.csv, row 4, column 'on_hand': expected a value >= 0, got -3",
    ),
    (
        "units not an integer",
        edit("sales", ",1,90", ",2.5,90"),
        "sales.csv, row 3, column 'units': expected an integer, got '2.5'",
    ),
    (
        "unknown store in sales",
        edit("sales", "2024-03-02,S1", "2024-03-02,S9"),
        "sales.csv, row 3, column 'store_id': unknown store_id 'S9' (not in stores.csv)",
    ),
    (
        "unknown sku in sales",
        edit("sales", "S2,T1-RED-S", "S2,T1-RED-XS"),
        "sales.csv, row 2, column 'sku': unknown sku 'T1-RED-XS' (not in products.csv)",
    ),
    (
        "unknown store in inventory",
        edit("inventory", "2024-03-01,S2,T1-RED-S", "2024-03-01,s2,T1-RED-S"),
        "inventory.csv, row 3, column 'store_id': unknown store_id 's2' (not in stores.csv)",
    ),
    (
        "unknown sku in inventory",
        edit("inventory", "W1,SH1-BLK-40", "W1,SH1-BLK-99"),
        "inventory.csv, row 5, column 'sku': unknown sku 'SH1-BLK-99' (not in products.csv)",
    ),
    (
        "unknown store in assortment",
        edit("assortment", "S1,gender", "S7,gender"),
        "assortment.csv, row 2, column 'store_id': unknown store_id 'S7' (not in stores.csv)",
    ),
    (
        "lane from an unknown location",
        edit("lanes", "S1,S2", "X1,S2"),
        "lanes.csv, row 3, column 'from_id': unknown location 'X1' (not in stores.csv)",
    ),
    (
        "lane to an unknown location",
        edit("lanes", "W1,S2", "W1,W2"),
        "lanes.csv, row 2, column 'to_id': unknown location 'W2' (not in stores.csv)",
    ),
    (
        "duplicate key",
        {**TINY, "sales": TINY["sales"] + "2024-03-01,S2,T1-RED-S,4,160\n"},
        "sales.csv, row 6: duplicate key (date=2024-03-01, store_id='S2', sku='T1-RED-S'); "
        "the same key is already at row 2",
    ),
    (
        "duplicate store",
        edit("stores", "W1,Newark", "S2,Newark"),
        "stores.csv, row 3, column 'store_id': duplicate key (store_id='S2'); "
        "the same key is already at row 2",
    ),
    (
        "empty table",
        {**TINY, "sales": "date,store_id,sku,units,revenue\n"},
        "sales.csv: the table is empty (no data rows)",
    ),
    ("empty file", {**TINY, "lanes": ""}, "lanes.csv: the file is empty (no header, no rows)"),
    (
        "full_price <= 0",
        edit("products", "shoes,90,30,,2024-06-30,M", "shoes,0,30,,2024-06-30,M"),
        "products.csv, row 4, column 'full_price': expected a price > 0, got 0.0",
    ),
    (
        "salvage_value > full_price",
        edit("products", "tops,40,12.5,10", "tops,40,12.5,45"),
        "products.csv, row 2, column 'salvage_value': expected a value <= full_price, "
        "got 45.0 (above the full price)",
    ),
    (
        "a warehouse with sales",
        edit("sales", "2024-03-03,S1", "2024-03-03,W1"),
        "sales.csv, row 5, column 'store_id': 'W1' is a warehouse (kind 'warehouse' in "
        "stores.csv); sales are recorded at stores only",
    ),
    (
        "sales after the latest snapshot + horizon",
        edit("sales", "2024-03-03,S1", "2024-03-09,S1"),
        "sales.csv, row 5, column 'date': sales dated 2024-03-09 are more than 7 days "
        "(season.horizon_days) after the latest inventory snapshot (2024-03-01)",
    ),
    (
        "allowed not a boolean",
        edit("assortment", "M,no", "M,maybe"),
        "assortment.csv, row 1, column 'allowed': expected a boolean (true/false, 1/0 or "
        "yes/no), got 'maybe'",
    ),
    (
        "latitude out of range",
        edit("stores", "40.68,-73.94", "140.68,-73.94"),
        "stores.csv, row 1, column 'latitude': expected a latitude between -90 and 90 "
        "degrees, got 140.68",
    ),
    (
        "longitude out of range",
        edit("stores", "-71.08", "-191.08"),
        "stores.csv, row 2, column 'longitude': expected a longitude between -180 and 180 "
        "degrees, got -191.08",
    ),
    (
        "kind not store/warehouse",
        edit("stores", "Back Bay,store", "Back Bay,outlet"),
        "stores.csv, row 2, column 'kind': expected 'store' or 'warehouse', got 'outlet'",
    ),
    (
        "events scope",
        edit("events", ",city,", ",country,"),
        "events.csv, row 1, column 'scope': expected one of store, city, region, all; "
        "got 'country'",
    ),
    (
        "end_date before start_date",
        edit("events", "2024-03-08,2024-03-10", "2024-03-08,2024-03-07"),
        "events.csv, row 1, column 'end_date': end_date 2024-03-07 is before start_date",
    ),
    (
        "required cell empty",
        edit("sales", "S2,T1-RED-S,1,40", "S2,,1,40"),
        "sales.csv, row 2, column 'sku': expected text, got an empty cell",
    ),
    (
        "assortment attribute not a products column",
        edit("assortment", "S2,gender", "S2,gendre"),
        "assortment.csv, row 1, column 'attribute': expected a column of products.csv (sku, "
        "style, color, size, category, full_price, unit_cost, salvage_value, season_end, "
        "size_order, gender, tags), got 'gendre'",
    ),
    (
        "blank line inside a table",
        edit("sales", "2024-03-02,S1", "\n2024-03-02,S1"),
        "sales.csv, row 3, column 'date': expected a date (YYYY-MM-DD), got an empty row "
        "(a blank line?)",
    ),
    (
        "only blank lines after the header",
        {**TINY, "sales": "date,store_id,sku,units,revenue\n\n\n"},
        "sales.csv: the table is empty (no data rows)",
    ),
    (
        "ragged row",
        edit("lanes", "W1,S2,0.8,45,3", "W1,S2,0.8,45,3,9"),
        "lanes.csv, row 2: expected 5 fields like the header, got 6",
    ),
    (
        "truncated file",
        {**TINY, "sales": TINY["sales"][:-8]},
        "sales.csv, row 5: has 3 of 5 fields and no line end; the file looks truncated",
    ),
    (
        "unterminated quote",
        edit("stores", "Back Bay", '"Back Bay'),
        "stores.csv, row 2: malformed CSV (unexpected end of data)",
    ),
    (
        "header names a column twice",
        edit("economy", "indicator,value", "indicator,region"),
        "economy.csv, column 'region': appears more than once in the header",
    ),
    (
        "column name with stray space",
        edit("sales", "units", " units"),
        "sales.csv, column 'units': missing required column (the table has: date, store_id, "
        "sku,  units, revenue); did you mean ' units' for 'units'? (column names are exact)",
    ),
]


def _assert_failed_ingest(tmp_path: Path, folder: Path, expected: str) -> ContractError:
    """Ingest into an existing and into a not-yet-existing workspace: both unchanged."""
    ws = Workspace(tmp_path / "ws")
    ws.ingest(write_data_folder(tmp_path / "valid"))
    (ws.path / "stocktailor.db").write_bytes(b"db")
    before = snapshot(ws.path)
    with pytest.raises(ContractError) as err:
        ws.ingest(folder)
    assert str(err.value) == expected
    assert "\n" not in str(err.value)
    assert snapshot(ws.path) == before
    fresh = Workspace(tmp_path / "fresh" / "ws")
    with pytest.raises(ContractError):
        fresh.ingest(folder)
    assert not (tmp_path / "fresh").exists()
    return err.value


@pytest.mark.parametrize(("case", "tables", "expected"), CASES, ids=[c[0] for c in CASES])
def test_error_catalogue(tmp_path: Path, case: str, tables: dict[str, str], expected: str) -> None:
    folder = write_data_folder(tmp_path / "bad", tables=tables)
    _assert_failed_ingest(tmp_path, folder, expected)


def test_missing_required_table(tmp_path: Path) -> None:
    folder = write_data_folder(tmp_path / "bad", skip=["inventory"])
    err = _assert_failed_ingest(
        tmp_path,
        folder,
        f"{folder}: missing required table 'inventory' (expected inventory.csv or "
        "inventory.parquet)",
    )
    assert err.file == str(folder)


@pytest.mark.parametrize("name", ["sales.xlsx", "sales.txt", "sales.csv.gz"])
def test_not_csv_or_parquet(tmp_path: Path, name: str) -> None:
    folder = write_data_folder(tmp_path / "bad", skip=["sales"])
    (folder / name).write_bytes(b"PK\x03\x04 not a table")
    _assert_failed_ingest(
        tmp_path,
        folder,
        f"{name}: not CSV/Parquet: save the sales table as sales.csv (UTF-8) or sales.parquet",
    )


def test_upper_case_and_two_files_for_one_table(tmp_path: Path) -> None:
    folder = write_data_folder(tmp_path / "bad", skip=["sales"])
    (folder / "Sales.csv").write_text(TINY["sales"])
    _assert_failed_ingest(
        tmp_path, folder, "Sales.csv: table file names are lower-case: rename it to sales.csv"
    )
    folder2 = write_data_folder(tmp_path / "bad2")
    pl.read_csv(io.StringIO(TINY["lanes"])).write_parquet(folder2 / "lanes.parquet")
    with pytest.raises(ContractError, match=r"both lanes.csv and lanes.parquet hold table"):
        read_data_folder(folder2)


def test_non_utf8_bytes(tmp_path: Path) -> None:
    folder = write_data_folder(tmp_path / "bad")
    text = TINY["stores"].replace("Back Bay", "Back B\xe4y").encode("latin-1")
    (folder / "stores.csv").write_bytes(text)
    _assert_failed_ingest(
        tmp_path,
        folder,
        "stores.csv, row 2: not UTF-8 text (byte 0xe4); save the file as UTF-8 "
        "(CSV UTF-8 in Excel)",
    )


def test_parquet_errors(tmp_path: Path) -> None:
    folder = write_data_folder(tmp_path / "bad", skip=["sales"])
    pl.DataFrame(
        {
            "date": [dt.date(2024, 3, 1), dt.date(2024, 3, 2)],
            "store_id": ["S1", "S1"],
            "sku": ["T1-RED-M", "T1-RED-S"],
            "units": [1.0, 2.5],
            "revenue": [40.0, 100.0],
        }
    ).write_parquet(folder / "sales.parquet")
    _assert_failed_ingest(
        tmp_path,
        folder,
        "sales.parquet, row 2, column 'units': expected an integer, got 2.5 (a Float64 column)",
    )
    (folder / "sales.parquet").write_bytes(b"PAR1 garbage")
    with pytest.raises(ContractError, match=r"^sales.parquet: not a readable Parquet file"):
        read_data_folder(folder)


def test_horizon_comes_from_settings(tmp_path: Path) -> None:
    folder = write_data_folder(
        tmp_path / "d", tables=edit("sales", "2024-03-03,S1", "2024-03-09,S1")
    )
    with pytest.raises(ContractError, match="more than 7 days"):
        read_data_folder(folder)
    s = Settings(season=SeasonConfig(horizon_days=8))
    assert read_data_folder(folder, settings=s).sales["date"].max() == dt.date(2024, 3, 9)


def test_failure_while_writing_leaves_workspace_unchanged(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(ws.path)
    other = write_data_folder(tmp_path / "other", tables=edit("sales", ",2,80", ",3,120"))
    calls = {"n": 0}
    real = pl.DataFrame.write_parquet

    def flaky(self: pl.DataFrame, file: Path, *args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            msg = "disk full"
            raise OSError(msg)
        real(self, file)

    monkeypatch.setattr(pl.DataFrame, "write_parquet", flaky)
    with pytest.raises(OSError, match="disk full"):
        ws.ingest(other)
    assert snapshot(ws.path) == before
    fresh = Workspace(tmp_path / "fresh")
    calls["n"] = 0
    with pytest.raises(OSError, match="disk full"):
        fresh.ingest(other)
    assert not fresh.path.exists()


def test_interrupted_swap_is_recovered(ws: Workspace) -> None:
    before = ws.fingerprint()
    (ws.path / "tables").rename(ws.path / ".tables-old-abc")  # crash between the renames
    assert ws.exists()
    assert ws.fingerprint() == before


def test_workspace_path_is_a_file(tmp_path: Path, data: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(WorkspaceError, match="not a folder"):
        Workspace(tmp_path / "f").ingest(data)


def test_manifest_is_json_with_row_counts(ws: Workspace) -> None:
    raw = json.loads((ws.path / "tables" / "manifest.json").read_text())
    assert raw["row_counts"] == {
        "stores": 3, "products": 5, "sales": 5, "inventory": 5, "lanes": 3, "weather": 3,
        "events": 2, "trends": 1, "posts": 2, "economy": 1, "assortment": 2, "price_plan": 2,
    }  # fmt: skip


# --------------------------------------------------------------------------- property test

GARBAGE = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "x",
            "-1",
            "0",
            "2.5",
            "1e999",
            "NaN",
            "2024-13-01",
            "2024-03-01",
            "S9",
            "yes",
            "ü",
            "W1",
            "S1",
            "-0",
            "9" * 30,
        ]
    ),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=6),
)


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def _corrupt(data: st.DataObject, folder: Path) -> tuple[str, str, bool]:
    """Apply one random corruption; return (kind, file name, cell-level?)."""
    name = data.draw(st.sampled_from(sorted(TINY)))
    file = folder / f"{name}.csv"
    text = TINY[name]
    rows = list(csv.reader(io.StringIO(text)))
    kind = data.draw(st.sampled_from(["flip", "delete_column", "truncate", "bad_bytes", "dup"]))
    if kind == "flip":
        r = data.draw(st.integers(0, len(rows) - 1))
        c = data.draw(st.integers(0, len(rows[0]) - 1))
        value = data.draw(GARBAGE)
        rows[r][c] = value
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows)
        file.write_text(out.getvalue(), encoding="utf-8")
        plain = not any(ch in value for ch in ',"\r\n') and value.strip() == value
        return kind, file.name, plain
    if kind == "delete_column":
        c = data.draw(st.integers(0, len(rows[0]) - 1))
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows([r[:c] + r[c + 1 :] for r in rows])
        file.write_text(out.getvalue(), encoding="utf-8")
        return kind, file.name, False
    payload = text.encode()
    if kind == "truncate":
        k = data.draw(st.integers(0, len(payload) - 1))
        file.write_bytes(payload[:k])
        return kind, file.name, False
    if kind == "bad_bytes":
        k = data.draw(st.integers(0, len(payload)))
        junk = data.draw(st.sampled_from([b"\xff", b"\xfe\xfe", b"\xc3", b"\x80abc"]))
        file.write_bytes(payload[:k] + junk + payload[k:])
        return kind, file.name, False
    lines = _lines(text)
    i = data.draw(st.integers(1, len(lines) - 1))
    file.write_text("".join([*lines[: i + 1], lines[i], *lines[i + 1 :]]), encoding="utf-8")
    return f"dup:{i}", file.name, True


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), existing=st.booleans())
def test_random_corruption_ingests_or_fails_cleanly(data: st.DataObject, existing: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ws = Workspace(root / "ws")
        if existing:
            ws.ingest(write_data_folder(root / "valid"))
            (ws.path / "stocktailor.db").write_bytes(b"db")
        folder = write_data_folder(root / "data")
        kind, file, cell_level = _corrupt(data, folder)
        before = snapshot(ws.path)
        try:
            ws.ingest(folder)
        except ContractError as err:
            message = str(err)
            assert "\n" not in message
            assert err.file is not None
            assert message.startswith(err.file)
            if kind == "bad_bytes":
                assert "not UTF-8" in message
            if kind.startswith("dup:"):
                row = int(kind.split(":")[1])
                assert err.file == file
                assert "duplicate key" in message
                assert err.row == row + 1
            elif cell_level:
                assert err.row is not None or err.column is not None, message
            assert snapshot(ws.path) == before
        else:
            assert not kind.startswith(("dup", "bad_bytes"))
            assert ws.exists()
            tables = ws.load()
            assert tables.sales.schema["units"] == pl.Int64
            if existing:
                assert (ws.path / "stocktailor.db").read_bytes() == b"db"


def test_write_parts_writes_each_part_and_scans_them_back(tmp_path: Path) -> None:
    folder = tmp_path / "forecast"
    folder.mkdir()
    (folder / "part-00007.parquet").write_bytes(b"stale")  # left by an earlier run
    made: list[int] = []

    def parts() -> Iterator[pl.DataFrame]:
        for i, n in enumerate([2, 0, 3]):
            made.append(i)
            yield pl.DataFrame({"k": list(range(n)), "v": [float(i)] * n})

    scan = write_parts(parts(), folder)
    assert made == [0, 1, 2]
    assert sorted(p.name for p in folder.iterdir()) == ["part-00000.parquet", "part-00001.parquet"]
    got = scan.collect()
    assert got["k"].to_list() == [0, 1, 0, 1, 2]
    assert got["v"].to_list() == [0.0, 0.0, 2.0, 2.0, 2.0]


def test_write_parts_of_nothing_is_an_empty_frame_with_the_schema(tmp_path: Path) -> None:
    empty = pl.DataFrame(schema={"k": pl.Int64})
    assert write_parts(iter([empty]), tmp_path / "x").collect().schema == {"k": pl.Int64}


@pytest.mark.parametrize("name", ["a\nb", "x\r\ny", "\u2028"])
def test_a_line_break_in_a_header_name_stays_on_the_error_line(name: str, tmp_path: Path) -> None:
    """Found by the corruption test: the missing-column message lists the header as it is."""
    folder = write_data_folder(tmp_path / "data")
    rows = list(csv.reader(io.StringIO(TINY["assortment"])))
    rows[0][0] = name
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    (folder / "assortment.csv").write_text(out.getvalue(), encoding="utf-8")
    with pytest.raises(ContractError) as err:
        Workspace(tmp_path / "ws").ingest(folder)
    message = str(err.value)
    assert len(message.splitlines()) == 1, message
    assert message.startswith("assortment.csv, column 'store_id': missing required column")
    assert repr(name)[1:-1] in message
