"""The status page (plain HTML polling ``/v1/status``) and a health check."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from services.api.auth import CallerDep, ResourcesDep
from services.api.problem_docs import problem_responses
from services.api.status import StatusView, snapshot

router = APIRouter(tags=["status"])
PAGE = Path(__file__).resolve().parents[1] / "static" / "status.html"


@router.get("/status", response_class=HTMLResponse, include_in_schema=False)
async def status_page() -> HTMLResponse:
    """The page itself holds no data: it reads its token from the URL's #fragment."""
    return HTMLResponse(PAGE.read_text(), headers={"Cache-Control": "no-store"})


@router.get("/v1/status", responses=problem_responses(503))
async def status(caller: CallerDep, res: ResourcesDep) -> StatusView:
    return await snapshot(res, caller)


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
