"""Who may see what (pure): the rule the API and every query apply.

A personal account is visible to its owner, a shared account to the members of its
group, and an admin sees everything. An activity is visible when one of its sightings
is in a visible account, and then only those sightings are shown: a user never learns
that the same message also sits in a mailbox they cannot see.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from schemas.account import AccountRecord


@dataclass(frozen=True)
class Viewer:
    user_id: str
    groups: frozenset[str] = field(default_factory=frozenset)
    admin: bool = False


def can_see(viewer: Viewer, account: AccountRecord) -> bool:
    if viewer.admin:
        return True
    own = account.ownership
    if own.kind == "personal":
        return own.owner == viewer.user_id
    return own.group in viewer.groups


def visible_accounts(viewer: Viewer, accounts: Iterable[AccountRecord]) -> frozenset[str]:
    return frozenset(a.account_id for a in accounts if can_see(viewer, a))


def redact(activity: dict[str, Any], visible: frozenset[str]) -> dict[str, Any] | None:
    """The activity as ``visible`` accounts show it, or None if none of them holds it."""
    sightings = [s for s in activity.get("sightings", []) if s["account_id"] in visible]
    if not sightings:
        return None
    return {
        **activity,
        "sightings": sightings,
        "account_ids": [a for a in activity.get("account_ids", []) if a in visible],
    }
