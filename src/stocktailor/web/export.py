"""The export download of a run's approved lines."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from stocktailor import workflow
from stocktailor.web.common import (
    engine_of,
    parse_queue,
    run_id_or_latest,
    to_login,
    web_user,
)

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/export")
def export(request: Request) -> Response:
    user, token = web_user(request)
    if user is None or token is None:
        return to_login()
    fmt = request.query_params.get("format", "csv")
    if fmt not in ("csv", "xlsx"):
        raise HTTPException(status_code=422, detail="format: csv or xlsx")
    q = parse_queue(request)
    rid = run_id_or_latest(request, q.run_id)
    if rid is None:
        raise HTTPException(status_code=404, detail="no published run")
    data = workflow.export_approved(engine_of(request), rid, fmt)
    media = (
        "text/csv; charset=utf-8"
        if fmt == "csv"
        else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    return Response(
        content=data,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="stocktailor-run-{rid}.{fmt}"'},
    )
