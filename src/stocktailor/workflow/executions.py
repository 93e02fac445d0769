"""Executions reported back by the warehouse system: what happened to each approved line.

A warehouse (or ERP) file has one row per line it acted on, keyed by what the export sent it
(:func:`stocktailor.workflow.export_approved`): ``reference`` (``<kind>-<recommendation id>``,
e.g. ``transfer-123``), or a bare ``recommendation_id``. The other columns:

=================  ========  ==========================================================
column             required  meaning
=================  ========  ==========================================================
shipped_units      yes       units that left the source (integer >= 0)
received_units     yes       units that arrived (integer >= 0, at most shipped; blank = 0)
ship_date          yes*      day the units left (YYYY-MM-DD; *blank allowed when 0 shipped)
receive_date       no        day they arrived (not before ship_date)
status             no        in_transit, received, partial or failed; inferred when absent
=================  ========  ==========================================================

The inferred status: nothing shipped -> ``failed``; no receive date -> ``in_transit``; fewer
units received than approved -> ``partial``; else ``received``. Only approved (or edited)
lines can have executions. The import is all or nothing: the first bad row raises a
:class:`~stocktailor.contract.ContractError` naming the file, the 1-based data row and the
column, and nothing is written. Importing a line again replaces its row and increases its
``version``; every written line gets an audit entry (action ``execution``).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Engine, insert, select, update

from stocktailor.contract import ContractError
from stocktailor.workflow.common import audit_row, now_utc, record_attempt
from stocktailor.workflow.db import write_engine
from stocktailor.workflow.models import EXECUTION_STATUSES, AuditEntry, Execution, Recommendation

__all__ = ["EXECUTION_COLUMNS", "ExecutionImport", "import_executions", "infer_status"]

EXECUTION_COLUMNS = ("shipped_units", "received_units", "ship_date")
"""Columns every executions file has (besides a key: ``reference`` or ``recommendation_id``)."""

_KEYS = ("recommendation_id", "reference")
_APPROVED = ("approved", "edited")
_REFERENCE = re.compile(r"^\s*(transfer|allocation)-(\d+)\s*$")


@dataclass(frozen=True)
class ExecutionImport:
    """Outcome of an import: lines written (new and replaced) and their statuses."""

    source_file: str
    lines: int
    new: int
    replaced: int
    statuses: dict[str, int] = field(default_factory=dict)
    ids: list[int] = field(default_factory=list)


def infer_status(
    shipped: int, received: int, approved_units: int, receive_date: dt.date | None
) -> str:
    """The status of an execution without one: ``failed`` (nothing shipped), ``in_transit`` (no
    receive date), ``partial`` (fewer units received than approved) or ``received``.

    Parameters
    ----------
    shipped, received, approved_units
        Units shipped, received and approved for the line.
    receive_date
        Day the units arrived (None: not yet).
    """
    if shipped <= 0:
        return "failed"
    if receive_date is None:
        return "in_transit"
    if received < approved_units:
        return "partial"
    return "received"


def _read(frame_or_path: pl.DataFrame | Path | str, source_file: str) -> pl.DataFrame:
    """The file as text columns (a frame given as is, its columns cast to text)."""
    if isinstance(frame_or_path, pl.DataFrame):
        frame = frame_or_path
    else:
        path = Path(frame_or_path)
        suffix = path.suffix.lower()
        try:
            if suffix == ".csv":
                frame = pl.read_csv(path, infer_schema=False)
            elif suffix == ".parquet":
                frame = pl.read_parquet(path)
            else:
                msg = f"unknown format {suffix!r}; expected .csv or .parquet"
                raise ContractError(msg, file=source_file)
        except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as exc:
            msg = f"cannot read the file ({' '.join(str(exc).split())[:200]})"
            raise ContractError(msg, file=source_file) from None
    frame = frame.rename({c: c.strip() for c in frame.columns})
    return frame.with_columns(
        pl.col(c).cast(pl.String).str.strip_chars() for c in frame.columns
    ).with_columns(pl.col(c).replace("", None) for c in frame.columns)


def _int(value: str | None, *, blank: int | None, err: Any) -> int:
    if value is None:
        if blank is None:
            raise err("is empty; expected a whole number of units >= 0")
        return blank
    try:
        number = float(value)
    except ValueError:
        raise err(f"{value!r} is not a whole number of units") from None
    if not number.is_integer() or number < 0:
        raise err(f"{value!r} is not a whole number of units >= 0")
    return int(number)


def _date(value: str | None, err: Any) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        raise err(f"{value!r} is not a date YYYY-MM-DD") from None


def _key(row: dict[str, str | None], err: Any) -> tuple[int, str | None]:
    """The recommendation id of a row and the kind its reference names (if any)."""
    ref = row.get("reference")
    if ref is not None:
        m = _REFERENCE.match(ref)
        if m is None:
            raise err(f"{ref!r} is not a reference like transfer-123", "reference")
        return int(m.group(2)), m.group(1)
    rid = row.get("recommendation_id")
    if rid is None:
        raise err("is empty; expected the recommendation id", "recommendation_id")
    try:
        number = float(rid)
    except ValueError:
        number = float("nan")
    if not number.is_integer() or number < 1:
        raise err(f"{rid!r} is not a recommendation id", "recommendation_id")
    return int(number), None


def _validate(frame: pl.DataFrame, recs: dict[int, Any], source_file: str) -> list[dict[str, Any]]:
    """Parsed rows, or the first bad cell as a ContractError."""
    key = next((k for k in ("reference", "recommendation_id") if k in frame.columns), None)
    if key is None:
        msg = "no key column; expected reference (as exported) or recommendation_id"
        raise ContractError(msg, file=source_file)
    for col in EXECUTION_COLUMNS:
        if col not in frame.columns:
            msg = f"missing required column {col!r}"
            raise ContractError(msg, file=source_file, column=col)
    out: list[dict[str, Any]] = []
    seen: dict[int, int] = {}
    for i, row in enumerate(frame.iter_rows(named=True), start=1):

        def err(message: str, column: str, i: int = i) -> ContractError:
            return ContractError(message, file=source_file, row=i, column=column)

        rid, kind = _key(row, err)
        rec = recs.get(rid)
        if rec is None or (kind is not None and rec.kind != kind):
            raise err(f"no {kind or 'recommendation'} line {rid}", key)
        if rec.status not in _APPROVED:
            raise err(f"line {rid} is {rec.status}; only approved or edited lines ship", key)
        if rid in seen:
            raise err(f"line {rid} appears twice (first in row {seen[rid]})", key)
        seen[rid] = i
        shipped = _int(row["shipped_units"], blank=None, err=lambda m: err(m, "shipped_units"))
        if shipped > int(rec.units):
            raise err(
                f"{shipped} units shipped, more than the {int(rec.units)} approved",
                "shipped_units",
            )
        received = _int(row["received_units"], blank=0, err=lambda m: err(m, "received_units"))
        if received > shipped:
            raise err(
                f"{received} units received, more than the {shipped} shipped", "received_units"
            )
        ship = _date(row["ship_date"], lambda m: err(m, "ship_date"))
        if ship is None and shipped > 0:
            raise err("is empty; expected the day the units left (YYYY-MM-DD)", "ship_date")
        receive = _date(row.get("receive_date"), lambda m: err(m, "receive_date"))
        if receive is not None and ship is not None and receive < ship:
            raise err(f"{receive} is before the ship date {ship}", "receive_date")
        status = row.get("status")
        if status is None:
            status = infer_status(shipped, received, int(rec.units), receive)
        else:
            status = status.lower()
            if status not in EXECUTION_STATUSES:
                raise err(f"{status!r} is not one of {', '.join(EXECUTION_STATUSES)}", "status")
            if status == "failed" and received > 0:
                raise err(f"failed, but {received} units were received", "status")
            if status in ("received", "partial") and received == 0:
                raise err(f"{status}, but no units were received", "status")
        out.append(
            {
                "recommendation_id": rid,
                "run_id": int(rec.run_id),
                "status": status,
                "shipped_units": shipped,
                "received_units": received,
                "ship_date": ship,
                "receive_date": receive,
            }
        )
    return out


def import_executions(
    engine: Engine,
    frame_or_path: pl.DataFrame | Path | str,
    *,
    user: str | None,
    source_file: str | None = None,
) -> ExecutionImport:
    """Store the executions of a warehouse file (all rows or none).

    Parameters
    ----------
    engine
        The workflow database.
    frame_or_path
        A ``.csv`` or ``.parquet`` file, or a frame with its columns (see the module doc).
    user
        Who imported (``imported_by`` and the audit log).
    source_file
        The name errors and ``executions.source_file`` show (default: the file's name).

    Returns
    -------
    ExecutionImport
        Lines written, how many replaced an earlier import, counts per status.

    Raises
    ------
    ContractError
        The first bad row: file, 1-based data row, column and what was expected (nothing is
        written; the attempt is audited with outcome ``invalid``).
    """
    if source_file is None:
        source_file = (
            Path(frame_or_path).name if not isinstance(frame_or_path, pl.DataFrame) else "frame"
        )
    name = source_file
    try:
        frame = _read(frame_or_path, name)
        if frame.height == 0:
            msg = "no rows"
            raise ContractError(msg, file=name)
        ids = _ids(frame)
        with engine.connect() as conn:
            recs = {
                int(r.id): r
                for chunk in _chunks(ids)
                for r in conn.execute(
                    select(
                        Recommendation.id,
                        Recommendation.run_id,
                        Recommendation.kind,
                        Recommendation.status,
                        Recommendation.units,
                    ).where(Recommendation.id.in_(chunk))
                ).all()
            }
        rows = _validate(frame, recs, name)
    except ContractError as exc:
        record_attempt(
            engine,
            user=user,
            action="import_executions",
            target=f"file:{name}"[:64],
            outcome="invalid",
            detail={"error": str(exc)},
        )
        raise
    return _write(engine, rows, name, user)


def _ids(frame: pl.DataFrame) -> list[int]:
    """The recommendation ids a frame names (unparsable ones skipped: validation reports them)."""
    if "reference" in frame.columns:
        raw = frame["reference"].str.extract(r"-(\d+)\s*$", 1)
    elif "recommendation_id" in frame.columns:
        raw = frame["recommendation_id"]
    else:
        return []
    return sorted({int(v) for v in raw.cast(pl.Float64, strict=False).drop_nulls().to_list()})


def _chunks(ids: list[int], size: int = 500) -> list[list[int]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def _write(
    engine: Engine, rows: list[dict[str, Any]], name: str, user: str | None
) -> ExecutionImport:
    now = now_utc()
    ids = [r["recommendation_id"] for r in rows]
    with write_engine(engine).begin() as conn:
        versions = {
            int(r.recommendation_id): int(r.version)
            for chunk in _chunks(ids)
            for r in conn.execute(
                select(Execution.recommendation_id, Execution.version)
                .where(Execution.recommendation_id.in_(chunk))
                .with_for_update()
            ).all()
        }
        new_rows, audits = [], []
        for r in rows:
            rid = r["recommendation_id"]
            values = {**r, "source_file": name[:200], "imported_at": now, "imported_by": user}
            old = versions.get(rid)
            if old is None:
                new_rows.append({**values, "version": 0})
            else:
                conn.execute(
                    update(Execution)
                    .where(Execution.recommendation_id == rid)
                    .values(**values, version=old + 1)
                )
            detail = {
                "file": name,
                "status": r["status"],
                "shipped_units": r["shipped_units"],
                "received_units": r["received_units"],
                "version": 0 if old is None else old + 1,
            }
            audits.append(audit_row(user, "execution", str(rid), "applied", detail))
        if new_rows:
            conn.execute(insert(Execution), new_rows)
        conn.execute(insert(AuditEntry), audits)
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    return ExecutionImport(
        source_file=name,
        lines=len(rows),
        new=len(new_rows),
        replaced=len(rows) - len(new_rows),
        statuses=statuses,
        ids=ids,
    )
