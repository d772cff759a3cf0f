"""``/v1/activities``: what the caller may see, never a sighting from another mailbox."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query

from schemas.activity import ActivityDocument
from services.api.accounts import Accounts
from services.api.auth import CallerDep, ResourcesDep
from services.api.errors import NotFound
from services.api.problem_docs import problem_responses

router = APIRouter(tags=["activities"], responses=problem_responses(503))


@router.get("/v1/activities")
async def list_activities(
    caller: CallerDep,
    res: ResourcesDep,
    account_id: str | None = None,
    participant: str | None = None,
    thread_id: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[ActivityDocument]:
    """Newest first; an account the caller cannot see filters to nothing."""
    visible = frozenset(a.account_id for a in await Accounts(res).visible(caller))
    docs = await res.activities.list(
        visible,
        account_id=account_id,
        participant=participant,
        thread_id=thread_id,
        since=since,
        until=until,
        limit=limit,
    )
    return [ActivityDocument.model_validate(d) for d in docs]


@router.get("/v1/activities/{activity_id}", responses=problem_responses(404))
async def get_activity(activity_id: str, caller: CallerDep, res: ResourcesDep) -> ActivityDocument:
    visible = frozenset(a.account_id for a in await Accounts(res).visible(caller))
    doc = await res.activities.get(visible, activity_id)
    if doc is None:
        raise NotFound(f"no activity {activity_id!r}")
    return ActivityDocument.model_validate(doc)
