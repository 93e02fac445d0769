"""Export of the approved lines for the warehouse system (CSV or XLSX): a download of a run,
or a drop-folder file of every approved line not exported yet (:func:`export_to_folder`)."""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import polars as pl
from sqlalchemy import Engine, select, update
from sqlalchemy.sql.elements import ColumnElement

from stocktailor.workflow.common import NotFound, audit, now_utc
from stocktailor.workflow.db import write_engine
from stocktailor.workflow.models import PlanRun, Recommendation

__all__ = ["EXPORT_COLUMNS", "FolderExport", "export_approved", "export_to_folder"]

logger = logging.getLogger(__name__)


EXPORT_COLUMNS = ("ship_from", "ship_to", "sku", "units", "ship_date", "reference")


_APPROVED = ("approved", "edited")

_ROW_COLUMNS = (
    Recommendation.from_id,
    Recommendation.to_id,
    Recommendation.sku,
    Recommendation.units,
    Recommendation.ship_date,
    Recommendation.id,
    Recommendation.kind,
)
_ROW_ORDER = (Recommendation.from_id, Recommendation.to_id, Recommendation.sku, Recommendation.id)


def _frame(rows: Sequence[Any]) -> pl.DataFrame:
    """The export table of ``rows`` (from, to, sku, units, ship date, id, kind)."""
    return pl.DataFrame(
        {
            "ship_from": [r.from_id for r in rows],
            "ship_to": [r.to_id for r in rows],
            "sku": [r.sku for r in rows],
            "units": [int(r.units) for r in rows],
            "ship_date": [r.ship_date for r in rows],
            "reference": [f"{r.kind}-{r.id}" for r in rows],
        },
        schema={
            "ship_from": pl.String,
            "ship_to": pl.String,
            "sku": pl.String,
            "units": pl.Int64,
            "ship_date": pl.Date,
            "reference": pl.String,
        },
    )


def _approved_frame(engine: Engine, run_id: int) -> pl.DataFrame:
    with engine.connect() as conn:
        if (
            conn.execute(select(PlanRun.id).where(PlanRun.id == run_id)).scalar_one_or_none()
            is None
        ):
            msg = f"plan_runs: no run {run_id}"
            raise NotFound(msg)
        rows = conn.execute(
            select(*_ROW_COLUMNS)
            .where(Recommendation.run_id == run_id, Recommendation.status.in_(_APPROVED))
            .order_by(*_ROW_ORDER)
        ).all()
    return _frame(rows)


def export_approved(
    engine: Engine, run_id: int, fmt: Literal["csv", "xlsx"] | str = "csv"
) -> bytes:
    """Return the approved (and edited) lines of a run for the warehouse system.

    Columns: ``ship_from, ship_to, sku, units, ship_date, reference`` (``reference`` is
    ``<kind>-<recommendation id>``), sorted by ship-from, ship-to, SKU.

    Parameters
    ----------
    fmt
        ``"csv"`` (UTF-8, ISO dates) or ``"xlsx"`` (one sheet named ``transfers``).
    """
    if fmt not in ("csv", "xlsx"):
        msg = f"export format: {fmt!r} is not csv or xlsx"
        raise ValueError(msg)
    frame = _approved_frame(engine, run_id)
    return _encode(frame, fmt, f"stocktailor run {run_id} approved lines")


def _encode(frame: pl.DataFrame, fmt: str, title: str) -> bytes:
    if fmt == "csv":
        return frame.write_csv().encode("utf-8")
    import xlsxwriter

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    wb.set_properties({"title": title, "created": dt.datetime(2000, 1, 1)})
    ws = wb.add_worksheet("transfers")
    bold = wb.add_format({"bold": True})
    date_fmt = wb.add_format({"num_format": "yyyy-mm-dd"})
    for j, name in enumerate(EXPORT_COLUMNS):
        ws.write_string(0, j, name, bold)
    for i, r in enumerate(frame.iter_rows(), start=1):
        ws.write_string(i, 0, r[0])
        ws.write_string(i, 1, r[1])
        ws.write_string(i, 2, r[2])
        ws.write_number(i, 3, r[3])
        if r[4] is not None:
            ws.write_datetime(i, 4, dt.datetime.combine(r[4], dt.time()), date_fmt)
        ws.write_string(i, 5, r[5])
    ws.set_column(0, 5, 14)
    wb.close()
    return buf.getvalue()


# --------------------------------------------------------------------------- drop folder


@dataclass(frozen=True)
class FolderExport:
    """One drop-folder export: the file written (None when nothing was new) and its lines."""

    path: Path | None
    lines: int
    units: int
    ids: list[int] = field(default_factory=list)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def export_to_folder(
    engine: Engine,
    folder: Path | str,
    fmt: Literal["csv", "xlsx"] | str = "csv",
    *,
    run_id: int | None = None,
    user: str | None = None,
) -> FolderExport:
    """Write every approved (or edited), not yet exported line to a new file in ``folder``.

    The lines are locked and marked exported (``exported_at``, ``export_file``) in the same
    transaction that writes the file: the file is written to a hidden temporary name, synced,
    and renamed into place just before the commit (removed again if the commit fails), so a
    reader of the folder never sees a partial file. A second call exports nothing new and
    writes no file. A crash between the rename and the commit leaves a file whose lines are
    exported again by the next call (at least once; ``reference`` identifies each line).

    Parameters
    ----------
    folder
        The drop folder (created if missing).
    fmt
        ``"csv"`` or ``"xlsx"``, columns as :func:`export_approved`.
    run_id
        Only this run's lines (default: every run).
    user
        Who exported (audit log).

    Returns
    -------
    FolderExport
        ``path`` is None when there was nothing to export.
    """
    if fmt not in ("csv", "xlsx"):
        msg = f"export format: {fmt!r} is not csv or xlsx"
        raise ValueError(msg)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    now = now_utc()
    final: Path | None = None
    renamed = False
    tmp: Path | None = None
    try:
        with write_engine(engine).begin() as conn:
            clauses: list[ColumnElement[bool]] = [
                Recommendation.status.in_(_APPROVED),
                Recommendation.exported_at.is_(None),
            ]
            if run_id is not None:
                clauses.append(Recommendation.run_id == run_id)
            rows = conn.execute(
                select(*_ROW_COLUMNS).where(*clauses).order_by(*_ROW_ORDER).with_for_update()
            ).all()
            if not rows:
                return FolderExport(None, 0, 0)
            ids = [int(r.id) for r in rows]
            stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
            final = out / f"stocktailor-export-{stamp}-{min(ids)}.{fmt}"
            tmp = out / f".{final.name}.tmp"
            data = _encode(_frame(rows), fmt, f"stocktailor export {stamp}")
            with tmp.open("wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            for i in range(0, len(ids), 500):
                conn.execute(
                    update(Recommendation)
                    .where(Recommendation.id.in_(ids[i : i + 500]))
                    .values(exported_at=now, export_file=final.name)
                )
            units = sum(int(r.units) for r in rows)
            detail = {"file": final.name, "lines": len(ids), "units": units, "run_id": run_id}
            audit(conn, user, "export", f"file:{final.name}"[:64], "applied", detail)
            if final.exists():
                msg = f"export: {final} exists already"
                raise FileExistsError(msg)
            os.replace(tmp, final)
            renamed = True
        _fsync_dir(out)
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        if renamed and final is not None:
            final.unlink(missing_ok=True)
        raise
    logger.info("exported %d lines (%d units) to %s", len(ids), units, final)
    return FolderExport(final, len(ids), units, ids)
