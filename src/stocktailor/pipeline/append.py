"""``stocktailor ingest DATA_DIR --append``: add a day's increment to a workspace.

An increment is a data folder with any tables of the contract: usually yesterday's sales,
today's inventory snapshot and new weather, trends or economy rows; new stores or products may
come with it. It is validated like a full ingest (against the stored stores and products),
then compared with the stored rows key by key:

* a row whose key is not stored is added;
* a row equal to the stored one (every column the file gives) changes nothing, so sending the
  same file twice writes nothing at all;
* a weather row replaces a stored *forecast* of the same store and day (forecasts are revised
  and become actuals);
* any other row that differs from the stored row of its key is refused with one line naming
  the file, the row, the key and the column (history is corrected by a full re-ingest).

New rows go into new date-ranged parts (rows dated inside an existing part's range are merged
into a rewritten copy of that part), and one manifest swap makes them visible: a writer killed
at any point leaves the last good state readable (its stray files are swept by the next
writer).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from stocktailor.config import Settings
from stocktailor.contract import TABLE_SPECS, ContractError, validate_tables
from stocktailor.partstore import Part, is_dated, read_parts, split_by_month, write_part
from stocktailor.workspace import Workspace, WorkspaceError, read_raw_tables

__all__ = ["AppendReport", "append_increment"]

logger = logging.getLogger(__name__)

_NO_HORIZON = 10**6
_DIMENSIONS = ("stores", "products")


@dataclass(frozen=True)
class AppendReport:
    """What one ``ingest --append`` did.

    Attributes
    ----------
    workspace, data_dir
        Where the increment came from and went to.
    added, replaced, unchanged
        Table name -> rows added, stored forecasts replaced, rows already stored as given.
    parts_written
        Part files written (relative to the tables folder); empty when nothing changed.
    fingerprint
        The workspace fingerprint after the append.
    seconds
        Wall time, seconds.
    """

    workspace: Path
    data_dir: Path
    added: dict[str, int]
    replaced: dict[str, int]
    unchanged: dict[str, int]
    parts_written: list[str] = field(default_factory=list)
    fingerprint: str = ""
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        """Whether anything was written."""
        return bool(self.parts_written)

    def summary(self) -> str:
        """A few human-readable lines (for the CLI)."""
        verb = "appended" if self.changed else "nothing new in"
        lines = [f"{verb} {self.data_dir} -> {self.workspace} in {self.seconds:.2f} s"]
        for name in self.added:
            lines.append(
                f"  {name:<11} {self.added[name]:>10,} added {self.replaced[name]:>8,} replaced "
                f"{self.unchanged[name]:>10,} already stored"
            )
        lines.append(f"  fingerprint {self.fingerprint[:16]}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __rich__(self) -> str:
        return self.summary()


@dataclass
class _Change:
    """How one table changes: parts dropped, frames to write as new parts, counts."""

    drop: list[Part] = field(default_factory=list)
    write: list[pl.DataFrame] = field(default_factory=list)
    added: int = 0
    replaced: int = 0
    unchanged: int = 0


def append_increment(
    ws: Workspace, data_dir: Path | str, settings: Settings | None = None
) -> AppendReport:
    """Validate an increment and add its new rows to the workspace (all or nothing).

    Raises
    ------
    ContractError
        When the increment breaks the contract or contradicts a stored row (nothing written).
    WorkspaceError
        When the workspace has no full ingest to append to.
    """
    start = time.perf_counter()
    data_dir = Path(data_dir)
    if not ws.exists():
        msg = (
            f"{ws.path}: nothing to append to; load the full history first with "
            f"`stocktailor ingest DATA_DIR --workspace {ws.path}`"
        )
        raise WorkspaceError(msg)
    s = settings or Settings()
    raw, sources = read_raw_tables(data_dir, require=())
    if not raw:
        msg = "no table files to append (expected NAME.csv or NAME.parquet, e.g. sales.csv)"
        raise ContractError(msg, file=str(data_dir))
    with ws.lock():
        ws.sweep()
        new = _validate_increment(ws, raw, sources, s)
        changes = {
            name: _resolve(ws, name, frame, raw[name], sources[name]) for name, frame in new.items()
        }
        written: list[str] = []
        fingerprint = ws.fingerprint()
        if any(c.write for c in changes.values()):
            index = ws.parts_index()
            updated: dict[str, list[Part]] = {}
            for name, change in changes.items():
                if not change.write:
                    continue
                parts = [write_part(ws.tables_dir, name, f) for f in change.write]
                written += [p.file for p in parts]
                dropped = {p.file for p in change.drop}
                keep = [p for p in index.get(name, []) if p.file not in dropped]
                updated[name] = _ordered(keep + parts)
            record = {
                "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "data_dir": str(data_dir.absolute()),
                "files": dict(sources),
                "added": {n: c.added for n, c in changes.items()},
                "replaced": {n: c.replaced for n, c in changes.items()},
            }
            fingerprint = ws.commit(updated, record)
    report = AppendReport(
        workspace=ws.path,
        data_dir=data_dir,
        added={n: c.added for n, c in changes.items()},
        replaced={n: c.replaced for n, c in changes.items()},
        unchanged={n: c.unchanged for n, c in changes.items()},
        parts_written=written,
        fingerprint=fingerprint,
        seconds=time.perf_counter() - start,
    )
    logger.info("%s", report.summary())
    return report


def _ordered(parts: list[Part]) -> list[Part]:
    """Undated parts first (in order), then dated parts by date range."""
    undated = [p for p in parts if p.min_date is None]
    dated = sorted(
        (p for p in parts if p.min_date is not None),
        key=lambda p: (p.min_date, p.max_date, p.file),
    )
    return undated + dated


# --------------------------------------------------------------------------- validation


def _tail_row(ws: Workspace, name: str) -> pl.DataFrame:
    """One stored row of a table (a stand-in so that validation sees every required table)."""
    parts = ws.parts(name)
    frame = read_parts(ws.tables_dir, parts[-1:])
    assert frame is not None
    return frame.tail(1)


def _first(frame: pl.DataFrame, column: str, where: pl.Expr | None = None) -> str:
    if column not in frame.columns:
        return "?"
    rows = frame if where is None else frame.filter(where)
    return str(rows[column][0]) if rows.height else "?"


def _validate_dims(
    ws: Workspace,
    raw: Mapping[str, pl.DataFrame],
    sources: Mapping[str, str],
    s: Settings,
) -> dict[str, pl.DataFrame]:
    """Validate the stores and products rows of an increment (typed, in file order)."""
    stores = raw.get("stores")
    stored_stores = ws.read("stores")
    assert stored_stores is not None
    is_store = pl.col("kind").cast(pl.String).str.to_lowercase() == "store"
    if stores is None:
        stores = stored_stores
    elif "kind" in stores.columns and _first(stores, "store_id", is_store) == "?":
        # only warehouses are new: borrow a stored store for the stand-in sales row
        borrowed = stored_stores.filter(is_store).head(1).cast(pl.String)
        stores = pl.concat([stores, borrowed], how="diagonal_relaxed")
    products = raw.get("products")
    if products is None:
        products = ws.read("products")
        assert products is not None
    store_id = _first(stores, "store_id", is_store if "kind" in stores.columns else None)
    sku = _first(products, "sku")
    facts = {
        "sales": pl.DataFrame(
            {
                "date": ["2000-01-01"],
                "store_id": [store_id],
                "sku": [sku],
                "units": ["0"],
                "revenue": ["0"],
            }
        ),
        "inventory": pl.DataFrame(
            {"date": ["2000-01-01"], "store_id": [store_id], "sku": [sku], "on_hand": ["0"]}
        ),
    }
    tables = validate_tables(
        {"stores": stores, "products": products, **facts},
        sources=sources,
        salvage_fraction=s.economics.salvage_fraction,
        season_end=s.season.end,
        horizon_days=_NO_HORIZON,
    )
    out: dict[str, pl.DataFrame] = {}
    for name in _DIMENSIONS:
        frame = raw.get(name)
        if frame is not None:
            out[name] = tables.get(name).head(frame.height)  # type: ignore[union-attr]
    return out


def _union(stored: pl.DataFrame, new: pl.DataFrame | None, name: str) -> pl.DataFrame:
    """Stored rows plus the new rows whose key is not stored (for reference checks)."""
    if new is None:
        return stored
    key = list(TABLE_SPECS[name].key)
    fresh = new.join(stored.select(key), on=key, how="anti")
    if fresh.height == 0:
        return stored
    return pl.concat([stored, _align(fresh, stored, name, "?")], how="vertical")


def _validate_increment(
    ws: Workspace,
    raw: Mapping[str, pl.DataFrame],
    sources: Mapping[str, str],
    s: Settings,
) -> dict[str, pl.DataFrame]:
    """Every table of the increment validated and typed, rows in file order."""
    dims = _validate_dims(ws, raw, sources, s) if set(raw) & set(_DIMENSIONS) else {}
    stored_stores, stored_products = ws.read("stores"), ws.read("products")
    assert stored_stores is not None and stored_products is not None
    given = {n: f for n, f in raw.items() if n not in _DIMENSIONS}
    standins = [n for n in ("sales", "inventory") if n not in given]
    for name in standins:
        given[name] = _tail_row(ws, name)
    tables = validate_tables(
        {
            "stores": _union(stored_stores, dims.get("stores"), "stores"),
            "products": _union(stored_products, dims.get("products"), "products"),
            **given,
        },
        sources=sources,
        salvage_fraction=s.economics.salvage_fraction,
        season_end=s.season.end,
        horizon_days=_NO_HORIZON,
    )
    out = dict(dims)
    for name in raw:
        if name not in _DIMENSIONS:
            frame = tables.get(name)
            assert frame is not None
            out[name] = frame
    _check_horizon(ws, out, sources, s.season.horizon_days)
    if "weather" in out:
        out["weather"] = _weather_flags(ws, out, raw["weather"])
    return out


def _stored_max(ws: Workspace, name: str) -> dt.date | None:
    ends = [p.max_date for p in ws.parts(name) if p.max_date is not None]
    return max(ends) if ends else None


def _latest(ws: Workspace, new: Mapping[str, pl.DataFrame], name: str) -> dt.date | None:
    dates = [d for d in (_stored_max(ws, name),) if d is not None]
    if name in new:
        top = new[name]["date"].max()
        if isinstance(top, dt.date):
            dates.append(top)
    return max(dates) if dates else None


def _check_horizon(
    ws: Workspace, new: Mapping[str, pl.DataFrame], sources: Mapping[str, str], horizon: int
) -> None:
    """Sales at most ``horizon`` days after the latest snapshot (stored or new), as at ingest."""
    if "sales" not in new:
        return
    snapshot = _latest(ws, new, "inventory")
    if snapshot is None:
        return
    limit = snapshot + dt.timedelta(days=horizon)
    sales = new["sales"]
    idx = sales.select(pl.arg_where(pl.col("date") > limit).first()).item()
    if idx is not None:
        day = sales["date"][int(idx)]
        msg = (
            f"sales dated {day} are more than {horizon} days (season.horizon_days) after the "
            f"latest inventory snapshot ({snapshot.isoformat()})"
        )
        raise ContractError(msg, file=sources.get("sales"), row=int(idx) + 1, column="date")


def _weather_flags(
    ws: Workspace, new: Mapping[str, pl.DataFrame], raw: pl.DataFrame
) -> pl.DataFrame:
    """``is_forecast`` where the file leaves it out: dated after the latest sales date."""
    weather = new["weather"]
    last_sale = _latest(ws, new, "sales")
    if last_sale is None:
        return weather
    derived = pl.col("date") > pl.lit(last_sale, dtype=pl.Date)
    if "is_forecast" not in raw.columns:
        return weather.with_columns(derived.alias("is_forecast"))
    given = raw["is_forecast"].cast(pl.String).str.strip_chars().replace("", None).is_not_null()
    return weather.with_columns(
        pl.when(pl.Series(given))
        .then(pl.col("is_forecast"))
        .otherwise(derived)
        .alias("is_forecast")
    )


# --------------------------------------------------------------------------- resolution


def _align(new: pl.DataFrame, stored: pl.DataFrame, name: str, source: str) -> pl.DataFrame:
    """``new`` with the stored table's columns and dtypes (absent attributes as nulls)."""
    extra = [c for c in new.columns if c not in stored.columns]
    if extra:
        msg = (
            f"column {extra[0]!r} is not in the stored {name} table; an append keeps the "
            f"columns of the last full ingest (re-ingest the full folder to add a column)"
        )
        raise ContractError(msg, file=source, column=extra[0])
    cols = []
    for c, dtype in stored.schema.items():
        if c not in new.columns:
            cols.append(pl.lit(None, dtype=dtype).alias(c))
            continue
        try:
            new.select(pl.col(c).cast(dtype, strict=True))
        except pl.exceptions.PolarsError:
            msg = f"expected {dtype} like the stored {name} table, got {new.schema[c]}"
            raise ContractError(msg, file=source, column=c) from None
        cols.append(pl.col(c).cast(dtype))
    return new.select(cols)


def _show(v: object) -> str:
    return "empty" if v is None else str(v)


def _contradiction(
    name: str, source: str, row: dict[str, object], key: list[str], column: str
) -> ContractError:
    shown = ", ".join(f"{k}={_show(row[k])}" for k in key)
    msg = (
        f"key ({shown}) is already stored with {column}={_show(row[column + '_old'])}; this row "
        f"has {column}={_show(row[column])}: an append adds rows but never changes stored ones "
        f"(re-ingest the full data folder to correct history)"
    )
    return ContractError(msg, file=source, row=int(str(row["_row"])) + 1, column=column)


def _resolve(
    ws: Workspace, name: str, new: pl.DataFrame, raw: pl.DataFrame, source: str
) -> _Change:
    """Compare an increment table with the stored rows; plan the parts to write."""
    stored_parts = ws.parts(name)
    if not stored_parts:
        return _Change(write=split_by_month(new) if is_dated(name) else [new], added=new.height)
    if is_dated(name):
        lo, hi = new["date"].min(), new["date"].max()
        assert isinstance(lo, dt.date) and isinstance(hi, dt.date)
        candidates = [p for p in stored_parts if p.overlaps(lo, hi)]
    else:
        candidates = stored_parts
    stored = read_parts(ws.tables_dir, stored_parts[:1])
    assert stored is not None
    new = _align(new, stored.clear(), name, source)
    key = list(TABLE_SPECS[name].key)
    frames = [
        pl.read_parquet(ws.tables_dir / p.file).with_columns(pl.lit(i).alias("_part"))
        for i, p in enumerate(candidates)
    ]
    old = (
        pl.concat(frames, how="vertical")
        if frames
        else new.clear().with_columns(pl.lit(0).alias("_part"))
    )
    given = [c for c in raw.columns if c in new.columns and c not in key]
    compare = [c for c in given if not (name == "weather" and c == "is_forecast")]
    both = new.with_row_index("_row").join(
        old.select(*key, *compare, "_part", *(["is_forecast"] if name == "weather" else [])),
        on=key,
        how="inner",
        suffix="_old",
    )
    differs = pl.any_horizontal([~pl.col(c).eq_missing(pl.col(f"{c}_old")) for c in compare])
    if not compare:
        differs = pl.lit(False)
    both = both.with_columns(differs.alias("_differs"))
    replace = pl.col("_differs")
    clash = both.filter(replace)
    if name == "weather":
        # a stored forecast gives way to any revision, and to its actual even if equal
        was_forecast = pl.col("is_forecast_old").fill_null(False)
        clash = clash.filter(~was_forecast)
        replace = was_forecast & (replace | ~pl.col("is_forecast").fill_null(False))
    if clash.height:
        row = clash.sort("_row").row(0, named=True)
        column = next(c for c in compare if row[c] != row[f"{c}_old"])
        raise _contradiction(name, source, row, key, column)
    replaced = both.filter(replace)
    fresh = new.join(both.select(key), on=key, how="anti")
    change = _Change(added=fresh.height, replaced=replaced.height)
    change.unchanged = both.height - replaced.height
    if fresh.height == 0 and replaced.height == 0:
        return change
    if not is_dated(name):
        whole = read_parts(ws.tables_dir, stored_parts)
        assert whole is not None
        change.drop = list(stored_parts)
        change.write = [pl.concat([whole, fresh], how="vertical")]
        return change
    _place_dated(change, candidates, frames, new, replaced, fresh, key)
    return change


def _place_dated(
    change: _Change,
    candidates: list[Part],
    frames: list[pl.DataFrame],
    new: pl.DataFrame,
    replaced: pl.DataFrame,
    fresh: pl.DataFrame,
    key: list[str],
) -> None:
    """Rewrite the stored parts that get rows; put the rest into new monthly parts."""
    rows_new = new.join(replaced.select(key), on=key, how="semi")
    placed = np.full(fresh.height, -1, dtype=np.int64)
    days = fresh["date"]
    for i, part in enumerate(candidates):
        assert part.min_date is not None and part.max_date is not None
        inside = days.is_between(part.min_date, part.max_date).to_numpy()
        placed[(placed < 0) & inside] = i
    touched = set(replaced["_part"].to_list()) | set(placed[placed >= 0].tolist())
    for i in sorted(touched):
        frame = frames[i].drop("_part")
        mine = rows_new.join(replaced.filter(pl.col("_part") == i).select(key), on=key, how="semi")
        if mine.height:
            frame = frame.update(mine, on=key, how="left", include_nulls=True)
        extra = fresh.filter(pl.Series(placed == i))
        change.drop.append(candidates[i])
        change.write.append(pl.concat([frame, extra], how="vertical") if extra.height else frame)
    change.write += split_by_month(fresh.filter(pl.Series(placed < 0)))
