"""The Results page: what approved transfers really earned, as measured (issue 15).

``/results`` shows the newest run, ``/results?run_id=N`` (or ``?run=N``) run N and
``/results?run_id=all`` every run (each run's latest measurement, summed); ``/results.csv``
with the same parameters downloads the page's tables as one CSV file.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from stocktailor import workflow
from stocktailor.api.schemas import MAX_ID
from stocktailor.web.common import (
    default_currency,
    engine_of,
    page,
    run_currency,
    run_id_or_latest,
    to_login,
    web_user,
)
from stocktailor.web.figures import results_figure
from stocktailor.workflow.results import results_csv, run_results

__all__ = ["RUN_ALL", "router"]

router = APIRouter(include_in_schema=False)

RUN_ALL = "all"
"""The ``run_id`` value of the page over every run."""


def _scope(request: Request) -> tuple[bool, int | None]:
    """``(all runs?, run id)`` of the request: ``run_id`` (or ``run``) = N or ``all``; none
    given is the newest run (None when nothing is published). 422 for anything else."""
    raw = request.query_params.get("run_id") or request.query_params.get("run") or ""
    if raw == RUN_ALL:
        return True, None
    if raw == "":
        return False, run_id_or_latest(request, None)
    if not raw.isdecimal() or not 1 <= int(raw) <= MAX_ID:
        raise HTTPException(status_code=422, detail="run_id: a run number or 'all'")
    return False, int(raw)


def _results(request: Request, run_id: int | None) -> dict[str, Any]:
    try:
        return run_results(engine_of(request), run_id)
    except workflow.NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None


@router.get("/results", response_class=HTMLResponse)
def results(request: Request) -> Response:
    user, token = web_user(request)
    if user is None or token is None:
        return to_login()
    every, rid = _scope(request)
    if not every and rid is None:
        return page(request, "empty.html", user, token, run=None)
    found = _results(request, rid)
    run = workflow.get_run(engine_of(request), rid) if rid is not None else None
    currency = _currency(request, rid)
    fig = results_figure(found["weeks"], found["total"]["level"], currency)
    return page(
        request,
        "results.html",
        user,
        token,
        run=run,
        every=every,
        res=found,
        currency=currency,
        fig=fig if found["measured"] else None,
    )


def _currency(request: Request, rid: int | None) -> str:
    """The run's currency (every run: the server's, ``economics.currency``)."""
    return run_currency(workflow.list_runs(engine_of(request)), rid, default_currency(request))


@router.get("/results.csv")
def results_download(request: Request) -> Response:
    user, token = web_user(request)
    if user is None or token is None:
        return to_login()
    every, rid = _scope(request)
    if not every and rid is None:
        raise HTTPException(status_code=404, detail="no published run")
    found = _results(request, rid)
    currency = _currency(request, rid)
    name = f"stocktailor-results-run-{rid}.csv" if rid is not None else "stocktailor-results.csv"
    return Response(
        content=results_csv(found, currency),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
