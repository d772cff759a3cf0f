"""Opaque list cursors (pure): where the next page of a list starts.

A cursor is the sort key of the last item a page held, as base64url (RFC 4648 section
5, unpadded) of a small JSON array led by the list's kind: ``["account", id]`` for the
accounts and mailboxes (ordered by account id), ``["activity", date, id]`` for the
activities (newest first, then by id). Clients pass it back unchanged; anything else,
or a cursor of another list, is an :class:`InvalidCursor` (400).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from typing import Any

from services.api.errors import InvalidCursor

ACCOUNT = "account"
ACTIVITY = "activity"
_LISTS = {ACCOUNT: "accounts and mailboxes", ACTIVITY: "activities"}


def _encode(values: list[Any]) -> str:
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode(kind: str, cursor: str) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (binascii.Error, ValueError):  # UnicodeDecodeError and JSONDecodeError too
        raise InvalidCursor("not a cursor of this API: start from the first page") from None
    if not isinstance(values, list) or not values or values[0] != kind:
        raise InvalidCursor(
            f"not a cursor of this list ({_LISTS[kind]}): start from the first page"
        )
    return values[1:]


def account_cursor(account_id: str) -> str:
    return _encode([ACCOUNT, account_id])


def after_account(cursor: str) -> str:
    """The account id ``cursor`` continues after."""
    match _decode(ACCOUNT, cursor):
        case [str(account_id)]:
            return account_id
    raise InvalidCursor("a damaged cursor: start from the first page")


ActivityKey = tuple[dt.datetime | None, str]


def activity_cursor(date: dt.datetime | None, activity_id: str) -> str:
    return _encode([ACTIVITY, date.isoformat() if date else None, activity_id])


def after_activity(cursor: str) -> ActivityKey:
    """The (date, id) of the activity ``cursor`` continues after; a date without a
    timezone is not one this API wrote."""
    match _decode(ACTIVITY, cursor):
        case [None, str(activity_id)]:
            return None, activity_id
        case [str(date), str(activity_id)]:
            try:
                when = dt.datetime.fromisoformat(date)
            except ValueError:
                when = None
            if when is not None and when.tzinfo is not None:
                return when, activity_id
    raise InvalidCursor("a damaged cursor: start from the first page")
