"""The workspace: validated Parquet tables, all-or-nothing ingest, typed reads.

Layout of a workspace folder::

    WS/
      tables/             one NAME.parquet per ingested table + manifest.json
      stocktailor.db      the workflow database (default SQLite; never touched by ingest)
      ...                 anything else (exports, reports) is left alone too

:meth:`Workspace.ingest` validates the whole data folder first, writes every table into a
temporary folder next to ``tables/`` and then swaps it in (rename the old ``tables/`` aside,
rename the new one in, delete the old one). On any error the workspace is exactly as it was,
including not existing at all.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from stocktailor.config import Settings
from stocktailor.contract import (
    REQUIRED_TABLES,
    TABLE_SPECS,
    ContractError,
    Tables,
    validate_tables,
)

__all__ = [
    "DATA_SUFFIXES",
    "WORKSPACE_ENV",
    "IngestReport",
    "Workspace",
    "WorkspaceError",
    "default_workspace_path",
    "read_data_folder",
    "read_raw_tables",
    "write_parts",
]

logger = logging.getLogger(__name__)

WORKSPACE_ENV = "STOCKTAILOR_WORKSPACE"
DATA_SUFFIXES: tuple[str, ...] = (".csv", ".parquet")
TABLES_DIR = "tables"
MANIFEST = "manifest.json"
_NEW_PREFIX = ".tables-new-"
_OLD_PREFIX = ".tables-old-"
_TAIL_BYTES = 1 << 16


class WorkspaceError(ValueError):
    """The workspace is missing, incomplete or cannot be written."""


def default_workspace_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$STOCKTAILOR_WORKSPACE``, else ``./stocktailor-workspace``."""
    env = os.environ if environ is None else environ
    value = env.get(WORKSPACE_ENV, "").strip()
    return Path(value) if value else Path("stocktailor-workspace")


# --------------------------------------------------------------------------- reading files


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _not_utf8(path: Path) -> ContractError | None:
    """A ContractError naming the first non-UTF-8 byte, or None when the file is UTF-8."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start)  # 0 = header line, r = data row r
        where = "in the header" if line == 0 else ""
        detail = f"not UTF-8 text (byte 0x{data[exc.start]:02x}{' ' + where if where else ''}); "
        return ContractError(
            detail + "save the file as UTF-8 (CSV UTF-8 in Excel)",
            file=path.name,
            row=line or None,
        )
    return None


def _diagnose_csv(path: Path, exc: BaseException) -> ContractError:
    """Explain why polars could not read a CSV file, naming the row when possible."""
    bad = _not_utf8(path)
    if bad is not None:
        return bad
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    row = 0
    try:
        for record in reader:
            if header is None:
                header = record
                continue
            row += 1
            if record and len(record) != len(header):
                return ContractError(
                    f"expected {len(header)} fields like the header, got {len(record)}",
                    file=path.name,
                    row=row,
                )
    except csv.Error as err:
        return ContractError(f"malformed CSV ({err})", file=path.name, row=row + 1)
    return ContractError(f"could not be read as CSV: {_first_line(exc)}", file=path.name)


def _check_header(path: Path, columns: list[str]) -> None:
    """Polars reads a header with bad bytes lossily and renames repeated names: catch both."""
    with path.open("rb") as handle:
        first = handle.readline()
    try:
        first.decode("utf-8")
    except UnicodeDecodeError as exc:
        msg = (
            f"not UTF-8 text (byte 0x{first[exc.start]:02x} in the header); "
            "save the file as UTF-8 (CSV UTF-8 in Excel)"
        )
        raise ContractError(msg, file=path.name) from None
    if not any("_duplicated_" in c for c in columns):
        return
    with path.open(encoding="utf-8-sig", newline="") as handle:
        header = next(csv.reader(handle))
    seen: set[str] = set()
    for name in header:
        if name in seen:
            msg = "appears more than once in the header"
            raise ContractError(msg, file=path.name, column=name)
        seen.add(name)


def _check_tail(path: Path, frame: pl.DataFrame) -> None:
    """Catch a file cut off in the middle of its last line."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        handle.seek(max(0, size - _TAIL_BYTES))
        tail = handle.read()
    if not tail or tail.endswith((b"\n", b"\r")) or frame.height == 0:
        return
    last = tail.rsplit(b"\n", 1)[-1].decode("utf-8", errors="replace")
    try:
        fields = next(csv.reader([last]))
    except (csv.Error, StopIteration):
        return
    if len(fields) < frame.width:
        msg = f"has {len(fields)} of {frame.width} fields and no line end; the file looks truncated"
        raise ContractError(msg, file=path.name, row=frame.height)


def _read_csv(path: Path) -> pl.DataFrame:
    try:
        frame = pl.read_csv(path, infer_schema=False, encoding="utf8")
    except pl.exceptions.NoDataError:
        msg = "the file is empty (no header, no rows)"
        raise ContractError(msg, file=path.name) from None
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise _diagnose_csv(path, exc) from None
    _check_header(path, frame.columns)
    _check_tail(path, frame)
    if frame.width and frame.height:
        # blank lines at the end of a file read as all-null rows: drop them
        last = frame.select(pl.arg_where(~pl.all_horizontal(pl.all().is_null())).last()).item()
        keep = 0 if last is None else int(last) + 1
        if keep < frame.height:
            frame = frame.head(keep)
    return frame


def _read_parquet(path: Path) -> pl.DataFrame:
    try:
        return pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        msg = f"not a readable Parquet file ({_first_line(exc)})"
        raise ContractError(msg, file=path.name) from None


def read_raw_tables(path: Path) -> tuple[dict[str, pl.DataFrame], dict[str, str]]:
    """Read the table files of a data folder without validating their content.

    Returns
    -------
    (raw, sources)
        Table name -> frame (CSV columns all as strings, Parquet as stored) and table name ->
        file name.

    Raises
    ------
    ContractError
        For a missing folder, a missing required table, a table file that is not
        CSV/Parquet, two files for one table, or a file that cannot be read.
    """
    path = Path(path)
    if not path.exists():
        msg = "data folder not found"
        raise ContractError(msg, file=str(path))
    if not path.is_dir():
        msg = "expected a data folder with one CSV/Parquet file per table"
        raise ContractError(msg, file=str(path))
    found: dict[str, list[Path]] = {}
    for entry in sorted(path.iterdir()):
        if entry.name.startswith((".", "~$")) or entry.is_dir():
            continue
        base, _, rest = entry.name.partition(".")
        suffix = f".{rest}".lower() if rest else ""
        if base in TABLE_SPECS:
            if suffix not in DATA_SUFFIXES:
                msg = (
                    f"not CSV/Parquet: save the {base} table as {base}.csv (UTF-8) "
                    f"or {base}.parquet"
                )
                raise ContractError(msg, file=entry.name)
            found.setdefault(base, []).append(entry)
        elif base.lower() in TABLE_SPECS:
            msg = f"table file names are lower-case: rename it to {base.lower()}{suffix}"
            raise ContractError(msg, file=entry.name)
        else:
            logger.debug("ignoring %s (not a table of the data contract)", entry)
    for name, files in found.items():
        if len(files) > 1:
            names = " and ".join(f.name for f in files)
            msg = f"both {names} hold table {name!r}; keep one"
            raise ContractError(msg, file=str(path))
    for name in REQUIRED_TABLES:
        if name not in found:
            msg = f"missing required table {name!r} (expected {name}.csv or {name}.parquet)"
            raise ContractError(msg, file=str(path))
    raw: dict[str, pl.DataFrame] = {}
    sources: dict[str, str] = {}
    for name in TABLE_SPECS:
        if name not in found:
            continue
        file = found[name][0]
        sources[name] = file.name
        reader = _read_csv if file.suffix.lower() == ".csv" else _read_parquet
        raw[name] = reader(file)
    return raw, sources


def read_data_folder(path: Path, *, settings: Settings | None = None) -> Tables:
    """Read and validate a data folder (one ``NAME.csv`` or ``NAME.parquet`` per table).

    Parameters
    ----------
    path
        The data folder. Files that are not tables of the contract (README, ``truth/``) are
        ignored; a table name with another suffix (``sales.xlsx``) is an error.
    settings
        Supplies the defaults: ``economics.salvage_fraction``, ``season.end`` and
        ``season.horizon_days`` (default :class:`~stocktailor.config.Settings()`).

    Raises
    ------
    ContractError
        One line naming the file, the 1-based data row (header excluded), the column and
        what was expected.
    """
    return _read_and_validate(Path(path), settings or Settings())[0]


def _read_and_validate(path: Path, settings: Settings) -> tuple[Tables, dict[str, str]]:
    raw, sources = read_raw_tables(path)
    tables = validate_tables(
        raw,
        sources=sources,
        salvage_fraction=settings.economics.salvage_fraction,
        season_end=settings.season.end,
        horizon_days=settings.season.horizon_days,
    )
    return tables, sources


# --------------------------------------------------------------------------- the workspace


def write_parts(parts: Iterable[pl.DataFrame], folder: Path) -> pl.LazyFrame:
    """Write frames one by one as ``part-NNNNN.parquet`` files and scan them back lazily.

    For outputs too large to hold at once (the weekly forecast of a large network, produced
    by :func:`stocktailor.demand.forecast_parts`): each part is written and dropped before the
    next is computed. Any earlier ``part-*.parquet`` files in ``folder`` are removed first.

    Returns
    -------
    pl.LazyFrame
        A scan of all parts (rows in part order); empty parts are not written.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("part-*.parquet"):
        old.unlink()
    schema: dict[str, pl.DataType] | None = None
    n = 0
    for frame in parts:
        if schema is None:
            schema = dict(frame.schema)
        if frame.height == 0:
            continue
        frame.write_parquet(folder / f"part-{n:05d}.parquet")
        n += 1
    if n == 0:
        return pl.DataFrame(schema=schema or {}).lazy()
    return pl.scan_parquet(folder / "part-*.parquet")


@dataclass(frozen=True)
class IngestReport:
    """What one ingest wrote.

    Attributes
    ----------
    workspace, data_dir
        Where the data came from and went to.
    row_counts
        Table name -> rows written.
    files
        Table name -> source file name.
    fingerprint
        sha256 of the written table files (see :meth:`Workspace.fingerprint`).
    ingested_at
        UTC time of the ingest, ISO 8601.
    seconds
        Wall time of the ingest, seconds.
    """

    workspace: Path
    data_dir: Path
    row_counts: dict[str, int]
    files: dict[str, str]
    fingerprint: str
    ingested_at: str
    seconds: float
    attributes: dict[str, list[str]] = field(default_factory=dict)

    def summary(self) -> str:
        """A few human-readable lines (for the CLI)."""
        lines = [f"ingested {self.data_dir} into {self.workspace} in {self.seconds:.2f} s"]
        for name, rows in self.row_counts.items():
            extra = self.attributes.get(name) or []
            attrs = f" (attributes: {', '.join(extra)})" if extra else ""
            lines.append(f"  {name:<11} {rows:>12,} rows from {self.files[name]}{attrs}")
        lines.append(f"  fingerprint {self.fingerprint[:16]}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __rich__(self) -> str:
        """Rich (the CLI console) prints the summary, not the dataclass repr."""
        return self.summary()


def _hash_tables(folder: Path) -> str:
    digest = hashlib.sha256()
    for name in TABLE_SPECS:
        file = folder / f"{name}.parquet"
        if not file.exists():
            continue
        digest.update(name.encode() + b"\0")
        with file.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


class Workspace:
    """A folder of validated Parquet tables plus the workflow database.

    Parameters
    ----------
    path
        The workspace folder (need not exist before the first ingest).
    database_url
        SQLAlchemy URL of the workflow database (default: SQLite ``stocktailor.db`` in the
        workspace folder, kept across re-ingests).
    """

    def __init__(self, path: Path | str, *, database_url: str | None = None) -> None:
        self.path = Path(path)
        self._database_url = database_url

    def __repr__(self) -> str:
        return f"Workspace({str(self.path)!r})"

    @property
    def tables_dir(self) -> Path:
        """The folder holding the Parquet tables and the manifest."""
        return self.path / TABLES_DIR

    @property
    def database_url(self) -> str:
        """SQLAlchemy URL of the workflow database."""
        if self._database_url:
            return self._database_url
        return f"sqlite:///{self.path.absolute()}/stocktailor.db"

    def _recover(self) -> None:
        """Finish a swap interrupted between its two renames (old tables aside, none in)."""
        if self.tables_dir.exists() or not self.path.is_dir():
            return
        olds = sorted(self.path.glob(f"{_OLD_PREFIX}*"))
        if len(olds) == 1 and (olds[0] / MANIFEST).exists():
            logger.warning("restoring %s after an interrupted ingest", olds[0])
            olds[0].rename(self.tables_dir)

    def exists(self) -> bool:
        """Whether data has been ingested (tables and manifest present)."""
        self._recover()
        return (self.tables_dir / MANIFEST).is_file()

    def manifest(self) -> dict[str, Any]:
        """The manifest of the last ingest: row counts, ingest time, fingerprint, sources."""
        self._require()
        data: dict[str, Any] = json.loads((self.tables_dir / MANIFEST).read_text("utf-8"))
        return data

    def tables(self) -> list[str]:
        """Names of the ingested tables, in contract order (empty before an ingest)."""
        if not self.exists():
            return []
        return [n for n in TABLE_SPECS if (self.tables_dir / f"{n}.parquet").is_file()]

    def _require(self) -> None:
        if not self.exists():
            msg = (
                f"{self.path}: no ingested data; run `stocktailor ingest DATA_DIR "
                f"--workspace {self.path}` first"
            )
            raise WorkspaceError(msg)

    def _file(self, name: str) -> Path | None:
        if name not in TABLE_SPECS:
            msg = f"unknown table {name!r}; expected one of {', '.join(TABLE_SPECS)}"
            raise KeyError(msg)
        self._require()
        file = self.tables_dir / f"{name}.parquet"
        return file if file.is_file() else None

    def read(self, name: str) -> pl.DataFrame | None:
        """Table ``name`` as a frame, or None for an optional table that was not ingested."""
        file = self._file(name)
        return None if file is None else pl.read_parquet(file)

    def scan(self, name: str) -> pl.LazyFrame:
        """Table ``name`` as a lazy frame (for large tables: filter/aggregate before collect)."""
        file = self._file(name)
        if file is None:
            msg = f"{self.path}: table {name!r} was not ingested"
            raise WorkspaceError(msg)
        return pl.scan_parquet(file)

    def load(self) -> Tables:
        """All ingested tables."""
        self._require()
        frames = {name: self.read(name) for name in TABLE_SPECS}
        missing = [n for n in REQUIRED_TABLES if frames[n] is None]
        if missing:
            msg = f"{self.tables_dir}: required table {missing[0]!r} is missing; re-ingest"
            raise WorkspaceError(msg)
        return Tables(**frames)  # type: ignore[arg-type]

    def fingerprint(self) -> str:
        """sha256 (hex) over the table files: same data ingested -> same fingerprint."""
        self._require()
        return _hash_tables(self.tables_dir)

    def ingest(self, data_dir: Path | str, settings: Settings | None = None) -> IngestReport:
        """Validate a data folder and replace the workspace tables with it, all or nothing.

        Raises
        ------
        ContractError
            When the data breaks the contract (the workspace is unchanged).
        WorkspaceError
            When the workspace path is not a folder.
        """
        start = time.perf_counter()
        data_dir = Path(data_dir)
        if self.path.exists() and not self.path.is_dir():
            msg = f"{self.path}: the workspace path exists and is not a folder"
            raise WorkspaceError(msg)
        s = settings or Settings()
        tables, sources = _read_and_validate(data_dir, s)
        created = not self.path.exists()
        tmp: Path | None = None
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._recover()
            tmp = Path(tempfile.mkdtemp(prefix=_NEW_PREFIX, dir=self.path))
            row_counts: dict[str, int] = {}
            attributes: dict[str, list[str]] = {}
            for name, frame in tables.items():
                frame.write_parquet(tmp / f"{name}.parquet")
                row_counts[name] = frame.height
                spec_cols = TABLE_SPECS[name].column_names
                attributes[name] = [c for c in frame.columns if c not in spec_cols]
            fingerprint = _hash_tables(tmp)
            ingested_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            manifest = {
                "format": 1,
                "ingested_at": ingested_at,
                "data_dir": str(data_dir.absolute()),
                "files": sources,
                "row_counts": row_counts,
                "attributes": attributes,
                "fingerprint": fingerprint,
                "defaults": {
                    "salvage_fraction": s.economics.salvage_fraction,
                    "season_end": None if s.season.end is None else s.season.end.isoformat(),
                    "horizon_days": s.season.horizon_days,
                },
            }
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
            self._swap_in(tmp)
            tmp = None
        except BaseException:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            if created:
                shutil.rmtree(self.path, ignore_errors=True)
            raise
        for stale in self.path.glob(f"{_NEW_PREFIX}*"):
            shutil.rmtree(stale, ignore_errors=True)
        report = IngestReport(
            workspace=self.path,
            data_dir=data_dir,
            row_counts=row_counts,
            files=sources,
            fingerprint=fingerprint,
            ingested_at=ingested_at,
            seconds=time.perf_counter() - start,
            attributes=attributes,
        )
        logger.info("%s", report.summary())
        return report

    def _swap_in(self, new: Path) -> None:
        target = self.tables_dir
        old: Path | None = None
        if target.exists():
            old = self.path / f"{_OLD_PREFIX}{uuid.uuid4().hex[:12]}"
            os.rename(target, old)
        try:
            os.rename(new, target)
        except BaseException:
            if old is not None:
                os.rename(old, target)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
