"""``/v1/mailboxes``: the CRM's "Email mailboxes" list for the caller."""

from __future__ import annotations

from fastapi import APIRouter

from services.api.accounts import Accounts
from services.api.auth import CallerDep, ResourcesDep
from services.api.models import MailboxView
from services.api.problem_docs import problem_responses

router = APIRouter(tags=["mailboxes"], responses=problem_responses(503))


@router.get("/v1/mailboxes")
async def mailboxes(caller: CallerDep, res: ResourcesDep) -> list[MailboxView]:
    """The caller's own accounts and the shared ones of their groups, with aliases and
    each one's state (initial sync n/total, idle, auth failed, last sync)."""
    return await Accounts(res).mailboxes(caller)
