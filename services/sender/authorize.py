"""May this user send this request through this account? (pure)

A user sends through a personal account they own or a shared account of one of their
groups, and only from that account's main address or one of its aliases. Admins are
not exempt: sending as someone else's mailbox is impersonation, not administration.
"""

from __future__ import annotations

from schemas.account import AccountRecord
from schemas.send_request import SendRequest


def refusal(request: SendRequest, account: AccountRecord | None) -> str | None:
    """Why ``request`` may not be sent, or None when it may."""
    if account is None or account.account_id != request.account_id:
        # Same words whether the account is missing or foreign: the caller learns nothing.
        return f"user {request.requested_by!r} may not send through account {request.account_id!r}"
    own = account.ownership
    allowed = (own.kind == "personal" and own.owner == request.requested_by) or (
        own.kind == "shared" and own.group in request.groups
    )
    if not allowed:
        return f"user {request.requested_by!r} may not send through account {request.account_id!r}"
    addresses = {a.lower() for a in account.addresses}
    if request.sender.address.lower() not in addresses:
        return (
            f"{request.sender.address!r} is not an address of account {account.account_id!r} "
            f"(its addresses: {', '.join(account.addresses)})"
        )
    if account.smtp is None:
        return f"account {account.account_id!r} has no SMTP settings"
    if account.pending_credentials:
        return f"account {account.account_id!r} is pending credentials"
    return None
