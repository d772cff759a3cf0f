"""What a caller may do with an account (pure), on top of who may see it.

Seeing follows the one visibility rule (:mod:`services.activity_writer.visibility`).
Managing (saving settings, pausing, resyncing, removing) is for admins and for the
owner of a personal account: a shared mailbox is an admin's to configure, its group's
to read and send through. The password of a personal account may be set by its owner
or an admin: that is how an account an admin created without it is completed.
"""

from __future__ import annotations

from schemas.account import AccountRecord, Ownership
from schemas.send_request import SendRequest
from services.activity_writer.visibility import can_see
from services.api.callers import Caller


def may_see(caller: Caller, account: AccountRecord) -> bool:
    return can_see(caller.viewer, account)


def may_manage(caller: Caller, account: AccountRecord) -> bool:
    return may_own(caller, account.ownership)


def may_own(caller: Caller, ownership: Ownership) -> bool:
    """May ``caller`` create or keep an account with this ownership?"""
    if caller.admin:
        return True
    return ownership.kind == "personal" and ownership.owner == caller.user_id


def may_send_as(account: AccountRecord, address: str) -> bool:
    """Is ``address`` the account's main address or one of its aliases?"""
    wanted = address.strip().lower()
    return any(a.lower() == wanted for a in account.addresses)


def may_resolve(caller: Caller, request: SendRequest, account: AccountRecord | None) -> bool:
    """May ``caller`` decide what became of ``request`` (resend it, or mark it sent)?

    Who could have sent it through this account: its owner, or a member of its group;
    admins are not exempt (resending as someone's mailbox is sending as them).
    """
    if account is None or account.account_id != request.account_id:
        return False
    own = account.ownership
    if own.kind == "personal":
        return own.owner == caller.user_id
    return own.group in caller.groups
