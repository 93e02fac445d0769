"""Exports: a run's approved lines for the warehouse system (CSV or XLSX)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

from stocktailor import workflow
from stocktailor.api.deps import EngineDep, Viewer
from stocktailor.api.schemas import ERRORS, IdPath
from stocktailor.workflow import NotFound

__all__ = ["MEDIA_TYPES", "export_response", "router"]

router = APIRouter(prefix="/api/v1", tags=["export"])

MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def export_response(data: bytes, run_id: int, fmt: str) -> Response:
    """The export file as a download named after the run."""
    return Response(
        content=data,
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="stocktailor-run-{run_id}.{fmt}"'},
    )


@router.get(
    "/runs/{run_id}/export",
    responses={
        **ERRORS,
        200: {
            "content": {
                "text/csv": {},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {},
            },
            "description": "Approved lines: ship_from, ship_to, sku, units, ship_date",
        },
    },
    response_class=Response,
)
def export(
    run_id: IdPath, user: Viewer, engine: EngineDep, format: Literal["csv", "xlsx"] = "csv"
) -> Response:
    """Approved and edited lines for the warehouse system as CSV or XLSX."""
    try:
        data = workflow.export_approved(engine, run_id, format)
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    return export_response(data, run_id, format)
