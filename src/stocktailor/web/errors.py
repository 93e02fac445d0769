"""Error pages of the dashboard (the API answers errors in JSON), and the favicon."""

from __future__ import annotations

from http import HTTPStatus

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from stocktailor.web.common import STATIC_DIR, templates

__all__ = ["error_page", "router"]

router = APIRouter(include_in_schema=False)

_FAVICON = (STATIC_DIR / "favicon.png").read_bytes()


def error_page(request: Request, status: int, detail: str) -> HTMLResponse:
    """An HTML page saying what went wrong (``detail`` is escaped by the template)."""
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    headers = {"HX-Redirect": "/login"} if status == 401 else None
    return templates.TemplateResponse(
        request,
        "error.html",
        {"status": status, "title": title, "detail": detail},
        status_code=status,
        headers=headers,
    )


@router.get("/favicon.ico")
def favicon() -> Response:
    """The site icon (a PNG; browsers accept it under this name)."""
    return Response(
        content=_FAVICON, media_type="image/png", headers={"Cache-Control": "public, max-age=86400"}
    )
