"""Export of the approved lines for the warehouse system (CSV or XLSX)."""

from __future__ import annotations

import datetime as dt
import io
from typing import Literal

import polars as pl
from sqlalchemy import Engine, select

from stocktailor.workflow.common import NotFound
from stocktailor.workflow.models import PlanRun, Recommendation

__all__ = ["EXPORT_COLUMNS", "export_approved"]


EXPORT_COLUMNS = ("ship_from", "ship_to", "sku", "units", "ship_date", "reference")


def _approved_frame(engine: Engine, run_id: int) -> pl.DataFrame:
    with engine.connect() as conn:
        if (
            conn.execute(select(PlanRun.id).where(PlanRun.id == run_id)).scalar_one_or_none()
            is None
        ):
            msg = f"plan_runs: no run {run_id}"
            raise NotFound(msg)
        rows = conn.execute(
            select(
                Recommendation.from_id,
                Recommendation.to_id,
                Recommendation.sku,
                Recommendation.units,
                Recommendation.ship_date,
                Recommendation.id,
                Recommendation.kind,
            )
            .where(
                Recommendation.run_id == run_id,
                Recommendation.status.in_(("approved", "edited")),
            )
            .order_by(
                Recommendation.from_id, Recommendation.to_id, Recommendation.sku, Recommendation.id
            )
        ).all()
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
    if fmt == "csv":
        return frame.write_csv().encode("utf-8")
    import xlsxwriter

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    wb.set_properties(
        {"title": f"stocktailor run {run_id} approved lines", "created": dt.datetime(2000, 1, 1)}
    )
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
