"""The workspace: validated Parquet tables, all-or-nothing ingest, typed reads.

Layout of a workspace folder::

    WS/
      tables/             the ingested tables as Parquet parts + manifest.json listing them
        stores.parquet    an undated table: one file
        sales/2026-04-01_2026-04-19-<hash>.parquet   a dated table: date-ranged parts
      outputs/            stored step outputs (see :mod:`stocktailor.pipeline`)
      workspace.lock      taken by every writer (ingest, append, run)
      stocktailor.db      the workflow database (default SQLite; never touched by ingest)
      ...                 anything else (exports, reports) is left alone too

:meth:`Workspace.ingest` validates the whole data folder first, writes every table into a
temporary folder next to ``tables/`` and then swaps it in (rename the old ``tables/`` aside,
rename the new one in, delete the old one). On any error the workspace is exactly as it was,
including not existing at all. Daily increments (``ingest --append``,
:func:`stocktailor.pipeline.append_increment`) add parts and swap the manifest with
:meth:`Workspace.commit`; see :mod:`stocktailor.partstore` for the part files.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import fcntl
import io
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
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
from stocktailor.partstore import (
    Part,
    fingerprint_upto,
    hash_file,
    is_dated,
    read_parts,
    scan_parts,
    write_table,
)
from stocktailor.partstore import fingerprint as parts_fingerprint

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
LOCK_FILE = "workspace.lock"
MANIFEST_FORMAT = 2
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


def read_raw_tables(
    path: Path, *, require: Sequence[str] = REQUIRED_TABLES
) -> tuple[dict[str, pl.DataFrame], dict[str, str]]:
    """Read the table files of a data folder without validating their content.

    ``require`` names the tables that must be present (an increment for ``ingest --append``
    passes none).

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
    for name in require:
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
        self._legacy_cache: tuple[object, dict[str, list[Part]]] | None = None

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
        index = self.parts_index()
        return [n for n in TABLE_SPECS if index.get(n)]

    def _require(self) -> None:
        if not self.exists():
            msg = (
                f"{self.path}: no ingested data; run `stocktailor ingest DATA_DIR "
                f"--workspace {self.path}` first"
            )
            raise WorkspaceError(msg)

    def parts_index(self) -> dict[str, list[Part]]:
        """Table name -> its parts, as listed by the manifest (tables never ingested absent)."""
        manifest = self.manifest()
        listed = manifest.get("tables")
        if isinstance(listed, dict):
            return {n: [Part.from_json(r) for r in recs] for n, recs in listed.items() if recs}
        return self._legacy_parts(manifest)

    def _legacy_parts(self, manifest: Mapping[str, Any]) -> dict[str, list[Part]]:
        """Parts of a workspace written before the part layout (one NAME.parquet per table)."""
        key = (manifest.get("fingerprint"), manifest.get("ingested_at"))
        cached = self._legacy_cache
        if cached is not None and cached[0] == key:
            return cached[1]
        out: dict[str, list[Part]] = {}
        for name in TABLE_SPECS:
            file = self.tables_dir / f"{name}.parquet"
            if not file.is_file():
                continue
            lo = hi = None
            if is_dated(name):
                rng = pl.scan_parquet(file).select(
                    pl.col("date").min().alias("lo"), pl.col("date").max().alias("hi")
                )
                lo, hi = rng.collect().row(0)
            rows = int(pl.scan_parquet(file).select(pl.len()).collect().item())
            out[name] = [Part(f"{name}.parquet", rows, hash_file(file), lo, hi)]
        self._legacy_cache = (key, out)
        return out

    def parts(self, name: str) -> list[Part]:
        """The parts of table ``name`` (empty for an optional table that was not ingested)."""
        if name not in TABLE_SPECS:
            msg = f"unknown table {name!r}; expected one of {', '.join(TABLE_SPECS)}"
            raise KeyError(msg)
        self._require()
        return self.parts_index().get(name, [])

    def read(self, name: str) -> pl.DataFrame | None:
        """Table ``name`` as a frame, or None for an optional table that was not ingested."""
        return read_parts(self.tables_dir, self.parts(name))

    def scan(self, name: str) -> pl.LazyFrame:
        """Table ``name`` as a lazy frame (for large tables: filter/aggregate before collect)."""
        parts = self.parts(name)
        if not parts:
            msg = f"{self.path}: table {name!r} was not ingested"
            raise WorkspaceError(msg)
        return scan_parts(self.tables_dir, parts)

    def load(self) -> Tables:
        """All ingested tables."""
        self._require()
        index = self.parts_index()
        frames = {name: read_parts(self.tables_dir, index.get(name, [])) for name in TABLE_SPECS}
        missing = [n for n in REQUIRED_TABLES if frames[n] is None]
        if missing:
            msg = f"{self.tables_dir}: required table {missing[0]!r} is missing; re-ingest"
            raise WorkspaceError(msg)
        return Tables(**frames)  # type: ignore[arg-type]

    def fingerprint(self) -> str:
        """sha256 (hex) over the table parts: same data ingested -> same fingerprint."""
        self._require()
        return parts_fingerprint(self.parts_index())

    def fingerprint_upto(self, day: dt.date) -> str:
        """A fingerprint of the data dated on or before ``day`` (plus the undated tables).

        Appending later days leaves it unchanged; see
        :func:`stocktailor.partstore.fingerprint_upto`.
        """
        self._require()
        return fingerprint_upto(self.tables_dir, self.parts_index(), day)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the workspace's writer lock (released by the OS if the process dies)."""
        self.path.mkdir(parents=True, exist_ok=True)
        with (self.path / LOCK_FILE).open("a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def commit(self, changed: Mapping[str, Sequence[Part]], record: Mapping[str, Any]) -> str:
        """Make ``changed`` the part lists of their tables in one atomic manifest swap.

        The new part files must already be written in :attr:`tables_dir` (call under
        :meth:`lock`). Tables not in ``changed`` keep their parts; ``record`` is appended to
        the manifest's ``appends`` history. Part files no longer listed are deleted after the
        swap.

        Returns
        -------
        str
            The new fingerprint.
        """
        manifest = self.manifest()
        index = self.parts_index()
        index.update({n: list(p) for n, p in changed.items()})
        manifest["format"] = MANIFEST_FORMAT
        manifest["tables"] = {
            n: [p.to_json() for p in index[n]] for n in TABLE_SPECS if index.get(n)
        }
        manifest["row_counts"] = {
            n: sum(p.rows for p in index[n]) for n in TABLE_SPECS if index.get(n)
        }
        manifest["fingerprint"] = parts_fingerprint(index)
        manifest["appends"] = [*manifest.get("appends", []), dict(record)]
        _write_json_atomic(self.tables_dir / MANIFEST, manifest)
        self.sweep()
        return str(manifest["fingerprint"])

    def sweep(self) -> list[str]:
        """Delete files under :attr:`tables_dir` that the manifest does not list.

        They are left by a writer that died before its manifest swap (or are parts an append
        replaced). Returns their relative paths.
        """
        if not self.exists():
            return []
        keep = {p.file for parts in self.parts_index().values() for p in parts} | {MANIFEST}
        gone: list[str] = []
        for file in sorted(self.tables_dir.rglob("*")):
            rel = file.relative_to(self.tables_dir).as_posix()
            if file.is_file() and rel not in keep:
                file.unlink(missing_ok=True)
                gone.append(rel)
        for folder in sorted(self.tables_dir.iterdir()):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        return gone

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
            with self.lock():
                self._recover()
                tmp = Path(tempfile.mkdtemp(prefix=_NEW_PREFIX, dir=self.path))
                manifest = _write_tables(tmp, tables, sources, data_dir, s)
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
            row_counts=manifest["row_counts"],
            files=sources,
            fingerprint=manifest["fingerprint"],
            ingested_at=manifest["ingested_at"],
            seconds=time.perf_counter() - start,
            attributes=manifest["attributes"],
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


def _write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Write JSON beside ``path`` and rename it over ``path`` (readers see old or new)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(json.dumps(data, indent=2) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_tables(
    folder: Path, tables: Tables, sources: Mapping[str, str], data_dir: Path, s: Settings
) -> dict[str, Any]:
    """Write every table of a full ingest into ``folder`` with its manifest; return it."""
    index: dict[str, list[Part]] = {}
    attributes: dict[str, list[str]] = {}
    for name, frame in tables.items():
        index[name] = write_table(folder, name, frame)
        spec_cols = TABLE_SPECS[name].column_names
        attributes[name] = [c for c in frame.columns if c not in spec_cols]
    manifest = {
        "format": MANIFEST_FORMAT,
        "ingested_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "data_dir": str(data_dir.absolute()),
        "files": dict(sources),
        "row_counts": {n: sum(p.rows for p in parts) for n, parts in index.items()},
        "attributes": attributes,
        "fingerprint": parts_fingerprint(index),
        "defaults": {
            "salvage_fraction": s.economics.salvage_fraction,
            "season_end": None if s.season.end is None else s.season.end.isoformat(),
            "horizon_days": s.season.horizon_days,
        },
        "tables": {n: [p.to_json() for p in parts] for n, parts in index.items()},
        "appends": [],
    }
    _write_json_atomic(folder / MANIFEST, manifest)
    return manifest
