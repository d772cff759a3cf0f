"""``/v1/activities``: what the caller may see, never a sighting from another mailbox."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request, Response

from schemas.activity import ActivityDocument
from services.api.account_management import Accounts
from services.api.activity_list import ActivityFilter, activity_page
from services.api.auth import CallerDep, ResourcesDep
from services.api.cursors import activity_cursor, after_activity
from services.api.errors import NotFound
from services.api.pagination import DEFAULT_LIMIT, PAGE_HEADERS, Cursor, Limit, announce
from services.api.problem_docs import problem_responses

router = APIRouter(tags=["activities"], responses=problem_responses(503))


@router.get("/v1/activities", responses={**PAGE_HEADERS, **problem_responses(400)})
async def list_activities(
    caller: CallerDep,
    res: ResourcesDep,
    request: Request,
    response: Response,
    account_id: str | None = None,
    participant: str | None = None,
    thread_id: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> list[ActivityDocument]:
    """Newest first (then by id), a page at a time (Link / Next-Cursor); an account the
    caller cannot see filters to nothing."""
    after = after_activity(cursor) if cursor else None
    visible = frozenset(a.account_id for a in await Accounts(res).visible(caller))
    wanted = ActivityFilter(account_id, participant, thread_id, since, until)
    docs, last = await activity_page(
        res.activities_collection, visible, wanted, after=after, limit=limit
    )
    announce(request, response, activity_cursor(*last) if last else None)
    return [ActivityDocument.model_validate(d) for d in docs]


@router.get("/v1/activities/{activity_id}", responses=problem_responses(404))
async def get_activity(activity_id: str, caller: CallerDep, res: ResourcesDep) -> ActivityDocument:
    visible = frozenset(a.account_id for a in await Accounts(res).visible(caller))
    doc = await res.activities.get(visible, activity_id)
    if doc is None:
        raise NotFound(f"no activity {activity_id!r}")
    return ActivityDocument.model_validate(doc)
