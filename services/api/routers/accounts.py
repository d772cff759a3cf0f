"""``/v1/accounts``: the two-step setup, credentials and operations."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from services.api.account_management import Accounts
from services.api.auth import CallerDep, ResourcesDep
from services.api.cursors import account_cursor, after_account
from services.api.models import (
    AccountInput,
    AccountView,
    PasswordInput,
    RemoveResult,
    RotateResult,
    VerifyRequest,
    VerifyResult,
)
from services.api.operations import Operations
from services.api.pagination import DEFAULT_LIMIT, PAGE_HEADERS, Cursor, Limit, announce
from services.api.problem_docs import problem_responses

router = APIRouter(tags=["accounts"], responses=problem_responses(403, 404, 409, 422, 503))


@router.post("/v1/accounts/verify")
async def verify(body: VerifyRequest, caller: CallerDep, res: ResourcesDep) -> VerifyResult:
    """Step 1: log in and preview the folders (roles, counts, sizes); nothing is saved."""
    return await Accounts(res).verify(body)


@router.get("/v1/accounts", responses={**PAGE_HEADERS, **problem_responses(400)})
async def list_accounts(
    caller: CallerDep,
    res: ResourcesDep,
    request: Request,
    response: Response,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> list[AccountView]:
    """The accounts the caller may see, by id, a page at a time (Link / Next-Cursor)."""
    after = after_account(cursor) if cursor else None
    views, last = await Accounts(res).view_page(caller, after, limit)
    announce(request, response, account_cursor(last) if last else None)
    return views


@router.post("/v1/accounts", status_code=status.HTTP_201_CREATED)
async def create_account(body: AccountInput, caller: CallerDep, res: ResourcesDep) -> AccountView:
    """Step 2: save (and publish) a new account; without a password it waits for one."""
    return await Accounts(res).create(caller, body)


@router.get("/v1/accounts/{account_id}")
async def get_account(account_id: str, caller: CallerDep, res: ResourcesDep) -> AccountView:
    return await Accounts(res).view(caller, account_id)


@router.put("/v1/accounts/{account_id}")
async def update_account(
    account_id: str, body: AccountInput, caller: CallerDep, res: ResourcesDep
) -> AccountView:
    """Change an account's settings; without a password the saved one is kept."""
    return await Accounts(res).update(caller, account_id, body)


@router.put("/v1/accounts/{account_id}/password")
async def set_password(
    account_id: str, body: PasswordInput, caller: CallerDep, res: ResourcesDep
) -> AccountView:
    """Supply or change the password (the owner completes an admin-created account)."""
    return await Accounts(res).set_password(caller, account_id, body)


@router.post("/v1/accounts/{account_id}/pause")
async def pause(account_id: str, caller: CallerDep, res: ResourcesDep) -> AccountView:
    return await Operations(res).pause(caller, account_id)


@router.post("/v1/accounts/{account_id}/resume")
async def resume(account_id: str, caller: CallerDep, res: ResourcesDep) -> AccountView:
    return await Operations(res).resume(caller, account_id)


@router.post("/v1/accounts/{account_id}/resync")
async def resync(account_id: str, caller: CallerDep, res: ResourcesDep) -> AccountView:
    """Import the account again from the start; activities stay single. Mail erased on
    request while still on the server is imported again (the account's tombstones are
    dropped)."""
    return await Operations(res).resync(caller, account_id)


@router.delete("/v1/accounts/{account_id}")
async def remove(
    account_id: str, caller: CallerDep, res: ResourcesDep, purge: bool = False
) -> RemoveResult:
    """Remove the account; ``purge=true`` also deletes its activities."""
    return await Operations(res).remove(caller, account_id, purge=purge)


@router.post("/v1/admin/rotate-key")
async def rotate_key(caller: CallerDep, res: ResourcesDep) -> RotateResult:
    """Re-encrypt every secret with the newest key of MAILSYNC_SECRET_KEY (admins)."""
    return await Operations(res).rotate_key(caller)
