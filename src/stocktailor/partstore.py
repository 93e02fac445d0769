"""Parquet tables stored as parts: content-named files listed in a manifest.

A workspace table is a list of :class:`Part` files. Tables keyed by ``date`` (sales,
inventory, weather, trends, economy, ...) are split by calendar month at a full ingest and
grow by new parts on every ``ingest --append``; the other tables are one file. A part's name
carries its date range and the first 12 hex digits of its sha256
(``sales/2026-04-01_2026-04-19-0123456789ab.parquet``), so writing the same rows twice gives
the same file, and a part is never changed in place: an append writes new files and then
swaps the manifest that lists them (one atomic rename), so a reader sees either the old or the
new table, never a mixture, even when the writer is killed half way.

Row order: parts are listed in date order and keep the row order of the data they came from,
so a table read back is the concatenation of its parts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from stocktailor.contract import TABLE_SPECS

__all__ = [
    "DATE_COLUMN",
    "Part",
    "content_hash",
    "fingerprint",
    "fingerprint_upto",
    "hash_file",
    "is_dated",
    "read_parts",
    "scan_parts",
    "split_by_month",
    "write_part",
    "write_table",
]

DATE_COLUMN = "date"
_HASH_CHARS = 12


def is_dated(name: str) -> bool:
    """Whether table ``name`` is keyed by ``date`` (stored in date-ranged parts)."""
    spec = TABLE_SPECS.get(name)
    return spec is not None and DATE_COLUMN in spec.key


@dataclass(frozen=True)
class Part:
    """One Parquet file of a table.

    Attributes
    ----------
    file
        Path relative to the tables folder (``sales/2026-04-01_2026-04-19-<hash>.parquet``).
    rows
        Rows in the file.
    sha256
        Hex digest of the file's bytes.
    min_date, max_date
        Date range of the rows (None for tables without a ``date`` column).
    """

    file: str
    rows: int
    sha256: str
    min_date: dt.date | None = None
    max_date: dt.date | None = None

    def to_json(self) -> dict[str, Any]:
        """The manifest record of the part."""
        return {
            "file": self.file,
            "rows": self.rows,
            "sha256": self.sha256,
            "min_date": None if self.min_date is None else self.min_date.isoformat(),
            "max_date": None if self.max_date is None else self.max_date.isoformat(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Part:
        """A part from its manifest record."""

        def day(v: object) -> dt.date | None:
            return None if v is None else dt.date.fromisoformat(str(v))

        return cls(
            file=str(data["file"]),
            rows=int(data["rows"]),
            sha256=str(data["sha256"]),
            min_date=day(data.get("min_date")),
            max_date=day(data.get("max_date")),
        )

    def overlaps(self, first: dt.date, last: dt.date) -> bool:
        """Whether the part may hold rows dated ``first .. last`` (always, when undated)."""
        if self.min_date is None or self.max_date is None:
            return True
        return self.min_date <= last and first <= self.max_date


def hash_file(path: Path) -> str:
    """sha256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _date_range(frame: pl.DataFrame) -> tuple[dt.date | None, dt.date | None]:
    if DATE_COLUMN not in frame.columns or frame.height == 0:
        return None, None
    lo, hi = frame[DATE_COLUMN].min(), frame[DATE_COLUMN].max()
    if isinstance(lo, dt.date) and isinstance(hi, dt.date):
        return lo, hi
    return None, None


def write_part(folder: Path, name: str, frame: pl.DataFrame, *, plain: bool = False) -> Part:
    """Write ``frame`` as a new part of table ``name`` under ``folder`` (the tables folder).

    The file is written under a temporary name and renamed to its content name, so a part
    file that exists is complete. ``plain`` names an undated table's file ``NAME.parquet``
    (a full ingest); otherwise the name carries the content hash.
    """
    dated = is_dated(name)
    lo, hi = _date_range(frame) if dated else (None, None)
    sub = folder / name if dated else folder
    sub.mkdir(parents=True, exist_ok=True)
    tmp = sub / f".part-{uuid.uuid4().hex}.tmp"
    try:
        frame.write_parquet(tmp)
        sha = hash_file(tmp)
        if dated and lo is not None and hi is not None:
            base = f"{lo.isoformat()}_{hi.isoformat()}-{sha[:_HASH_CHARS]}.parquet"
        elif plain:
            base = f"{name}.parquet"
        else:
            base = f"{name}-{sha[:_HASH_CHARS]}.parquet"
        final = sub / base
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    rel = final.relative_to(folder).as_posix()
    return Part(file=rel, rows=frame.height, sha256=sha, min_date=lo, max_date=hi)


def split_by_month(frame: pl.DataFrame) -> list[pl.DataFrame]:
    """The rows of each calendar month, months in order, rows in their original order."""
    if frame.height == 0:
        return []
    month = pl.col(DATE_COLUMN).dt.truncate("1mo").alias("_month")
    parts = frame.with_columns(month).partition_by("_month", maintain_order=True, as_dict=True)
    return [parts[k].drop("_month") for k in sorted(parts, key=lambda k: k[0])]


def write_table(folder: Path, name: str, frame: pl.DataFrame) -> list[Part]:
    """Write a whole table: one part per month if it is dated, else one ``NAME.parquet``."""
    if not is_dated(name):
        return [write_part(folder, name, frame, plain=True)]
    return [write_part(folder, name, month) for month in split_by_month(frame)]


def _paths(folder: Path, parts: Sequence[Part]) -> list[Path]:
    return [folder / p.file for p in parts]


def read_parts(folder: Path, parts: Sequence[Part]) -> pl.DataFrame | None:
    """The table made of ``parts`` (None when there are none)."""
    if not parts:
        return None
    paths = _paths(folder, parts)
    if len(paths) == 1:
        return pl.read_parquet(paths[0])
    return pl.concat([pl.read_parquet(p) for p in paths], how="vertical", rechunk=True)


def scan_parts(folder: Path, parts: Sequence[Part]) -> pl.LazyFrame:
    """A lazy scan of the table made of ``parts`` (at least one)."""
    paths = _paths(folder, parts)
    return pl.scan_parquet(paths[0]) if len(paths) == 1 else pl.scan_parquet(paths)


def content_hash(frame: pl.DataFrame) -> str:
    """sha256 (hex) of a frame's rows in order (stable within one polars version)."""
    digest = hashlib.sha256()
    digest.update(",".join(f"{c}:{t}" for c, t in frame.schema.items()).encode())
    if frame.height:
        for seed in (0, 1):
            digest.update(frame.hash_rows(seed=seed).to_numpy().tobytes())
    return digest.hexdigest()


def fingerprint(tables: Mapping[str, Sequence[Part]]) -> str:
    """sha256 (hex) over the parts of every table: same parts, same fingerprint."""
    digest = hashlib.sha256()
    for name in sorted(tables):
        digest.update(name.encode() + b"\0")
        for part in tables[name]:
            digest.update(part.sha256.encode() + b"\0")
    return digest.hexdigest()


def fingerprint_upto(folder: Path, tables: Mapping[str, Sequence[Part]], day: dt.date) -> str:
    """A fingerprint of the data known on ``day``: rows dated after it do not count.

    Undated tables count whole; a dated part that ends on or before ``day`` counts by its
    file hash, one that straddles ``day`` by the content of its rows up to ``day``, one that
    starts after it not at all. So appending later days leaves the fingerprint of an earlier
    day unchanged (weather forecasts for later days included: a model fitted on ``day`` is
    not refitted because a forecast after it was revised).
    """
    digest = hashlib.sha256()
    digest.update(day.isoformat().encode())
    for name in sorted(tables):
        digest.update(name.encode() + b"\0")
        for part in tables[name]:
            whole = part.min_date is None or part.max_date is None
            if whole or (part.max_date is not None and part.max_date <= day):
                digest.update(part.sha256.encode() + b"\0")
            elif part.min_date is not None and part.min_date <= day:
                rows = pl.read_parquet(folder / part.file).filter(pl.col(DATE_COLUMN) <= day)
                digest.update(content_hash(rows).encode() + b"\0")
    return digest.hexdigest()
