"""``/v1/mailboxes``: the CRM's "Email mailboxes" list for the caller."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from services.api.account_management import Accounts
from services.api.auth import CallerDep, ResourcesDep
from services.api.cursors import account_cursor, after_account
from services.api.models import MailboxView
from services.api.pagination import DEFAULT_LIMIT, PAGE_HEADERS, Cursor, Limit, announce
from services.api.problem_docs import problem_responses

router = APIRouter(tags=["mailboxes"], responses=problem_responses(503))


@router.get("/v1/mailboxes", responses={**PAGE_HEADERS, **problem_responses(400)})
async def mailboxes(
    caller: CallerDep,
    res: ResourcesDep,
    request: Request,
    response: Response,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> list[MailboxView]:
    """The caller's own accounts and the shared ones of their groups, with aliases and
    each one's state (initial sync n/total, idle, auth failed, last sync); by account
    id, a page at a time (Link / Next-Cursor)."""
    after = after_account(cursor) if cursor else None
    views, last = await Accounts(res).mailbox_page(caller, after, limit)
    announce(request, response, account_cursor(last) if last else None)
    return views
