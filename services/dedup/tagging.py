"""Tagging one sighting: which alias it reached, which way it went (pure)."""

from __future__ import annotations

from collections.abc import Iterable

from schemas.account import AccountRecord
from schemas.common import Direction, FolderRole
from schemas.tagged_message import AccountTag
from services.mail import Headers


def base_address(address: str) -> str:
    """Lowercase, with RFC 5233 subaddressing dropped: ``User+tag@X`` -> ``user@x``."""
    local, at, domain = address.strip().lower().rpartition("@")
    if not at:
        return address.strip().lower()
    return f"{local.split('+', 1)[0]}@{domain}"


def account_tag(account: AccountRecord) -> AccountTag:
    own = account.ownership
    if own.kind == "personal":
        return AccountTag(account_id=account.account_id, kind="personal", owner=own.owner)
    return AccountTag(account_id=account.account_id, kind="shared", group=own.group)


def _own(account: AccountRecord) -> dict[str, str]:
    """Exact and base forms of the account's addresses -> the address to report.

    Exact forms win over base forms, and the main address over an alias whose base
    form collides with it (alias ``jan+crm@`` of ``jan@``).
    """
    out = {base_address(a): a.lower() for a in reversed(account.addresses)}
    out.update({a.lower(): a.lower() for a in account.addresses})
    return out


def _lookup(own: dict[str, str], address: str) -> str | None:
    return own.get(address.strip().lower()) or own.get(base_address(address))


def match_alias(account: AccountRecord, headers: Headers, role: FolderRole) -> str | None:
    """The account address the message reached (inbound) or was sent from (outbound).

    X-Original-To names the address the sender used before alias expansion, so it
    comes first; Delivered-To usually names the main mailbox, so it comes last.
    """
    own = _own(account)
    senders = [a for _, a in headers.from_]
    if role is FolderRole.SENT or any(_lookup(own, a) for a in senders):
        for addr in senders:
            if (hit := _lookup(own, addr)) is not None:
                return hit
        if role is FolderRole.SENT:
            return None
    candidates: Iterable[str] = (
        *headers.x_original_to,
        *(a for _, a in headers.to),
        *(a for _, a in headers.cc),
        *headers.delivered_to,
    )
    for addr in candidates:
        if (hit := _lookup(own, addr)) is not None:
            return hit
    return None


def direction(
    account: AccountRecord, headers: Headers, role: FolderRole, synced: frozenset[str]
) -> Direction:
    """Outbound when sent from one of the account's addresses (or filed in Sent); internal
    when sender and every recipient are addresses of synced accounts; else inbound.

    ``synced`` holds the base addresses of every synced account.
    """
    sender = {base_address(a) for _, a in headers.from_}
    recipients = {base_address(a) for _, a in (*headers.to, *headers.cc)}
    if sender and recipients and sender <= synced and recipients <= synced:
        return Direction.INTERNAL
    if role is FolderRole.SENT or any(_lookup(_own(account), a) for _, a in headers.from_):
        return Direction.OUTBOUND
    return Direction.INBOUND
