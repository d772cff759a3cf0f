"""Which way an activity went, from the message and the synced accounts (pure).

The activity's direction is a function of the message (From, To, Cc), whether any
sighting of it is in a Sent folder, and the addresses of every synced account: not of
which sighting was written first, nor of the order accounts were added. The writer
computes it on every write with the accounts it knows, and again for the activities
of an address whose account was added or removed (:func:`changed_addresses`), so the
same messages and accounts give the same stored direction whatever the order.

- internal: the sender and every recipient are addresses of synced accounts;
- outbound: sent from a synced account's address, or filed in a Sent folder;
- inbound: anything else.
"""

from __future__ import annotations

from collections.abc import Iterable

from schemas.account import AccountRecord
from schemas.common import Direction
from services.dedup.tagging import base_address


def synced_addresses(accounts: Iterable[AccountRecord]) -> frozenset[str]:
    """Base addresses (RFC 5233 subaddress dropped) of every synced account."""
    return frozenset(base_address(a) for acc in accounts for a in acc.addresses)


def activity_direction(
    sender: Iterable[str], recipients: Iterable[str], in_sent: bool, synced: frozenset[str]
) -> Direction:
    senders = {base_address(a) for a in sender}
    rcpts = {base_address(a) for a in recipients}
    if senders and rcpts and senders <= synced and rcpts <= synced:
        return Direction.INTERNAL
    if in_sent or senders & synced:
        return Direction.OUTBOUND
    return Direction.INBOUND


def changed_addresses(before: frozenset[str], after: frozenset[str]) -> frozenset[str]:
    """Addresses whose activities may change direction when the accounts change."""
    return before ^ after


def involves(participants: Iterable[str], changed: frozenset[str]) -> bool:
    """Whether an activity with these From/To/Cc addresses must be recomputed (the
    writer's query selects exactly these: by ``from``, ``to`` and ``cc`` address)."""
    return any(base_address(a) in changed for a in participants)
