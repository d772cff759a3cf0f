"""What to fetch from a folder, given its cursor and the server's status (pure)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from schemas.account import ImportAll, ImportLastN, ImportSince
from schemas.mailbox_state import FolderCursor
from services.imap import FolderStatus, search_date


def uidvalidity_changed(cursor: FolderCursor | None, status: FolderStatus) -> bool:
    """RFC 3501 2.3.1.1: a new UIDVALIDITY means every UID we stored is meaningless."""
    return cursor is not None and cursor.uidvalidity != status.uidvalidity


def has_changes(cursor: FolderCursor | None, status: FolderStatus) -> bool:
    """Cheap check from STATUS: new mail, a retry due, flags changed, or mail gone?"""
    if cursor is None or uidvalidity_changed(cursor, status):
        return status.exists > 0
    return (
        status.uidnext - 1 > cursor.last_uid
        or bool(cursor.missing_uids)
        or flags_changed(cursor, status)
        or status.exists != cursor.exists
    )


def flags_changed(cursor: FolderCursor | None, status: FolderStatus) -> bool:
    """RFC 7162: a higher HIGHESTMODSEQ means flags changed (or mail came or went)."""
    return (
        cursor is not None
        and not uidvalidity_changed(cursor, status)
        and cursor.highestmodseq is not None
        and status.highestmodseq is not None
        and status.highestmodseq > cursor.highestmodseq
    )


def may_have_expunged(cursor: FolderCursor | None, status: FolderStatus, fetched: int) -> bool:
    """Fewer messages than last time plus the new ones: something left the folder."""
    return (
        cursor is not None
        and not uidvalidity_changed(cursor, status)
        and status.exists < cursor.exists + fetched
    )


def retention_floor(retention_days: int | None, now: dt.datetime) -> dt.date | None:
    """The first day whose mail retention keeps: retention deletes what is dated before
    ``now - retention_days``; mail from that day itself expires within the day, so the
    import starts on the next one."""
    if retention_days is None:
        return None
    return (now - dt.timedelta(days=retention_days)).date() + dt.timedelta(days=1)


def search_criteria(
    last_uid: int,
    window: ImportAll | ImportSince | ImportLastN,
    sent_since: dt.date | None = None,
) -> str:
    """UID SEARCH criteria for the messages above the cursor, within the import window.

    The window applies to the first import only (``last_uid == 0``); after that every
    new message is fetched. ``sent_since`` (see :func:`retention_floor`) keeps the first
    import from fetching what retention would delete at once; SENTSINCE compares the
    Date header (RFC 3501 6.4.4), which retention goes by, not the arrival date.
    """
    criteria = f"UID {last_uid + 1}:*"
    if last_uid == 0 and isinstance(window, ImportSince):
        criteria += " SINCE " + search_date(window.since)
    if last_uid == 0 and sent_since is not None:
        criteria += " SENTSINCE " + search_date(sent_since)
    return criteria


def select_uids(
    found: Sequence[int], last_uid: int, window: ImportAll | ImportSince | ImportLastN
) -> list[int]:
    """The UIDs to fetch, ascending: ``n:*`` always matches the highest UID, so filter it."""
    uids = sorted(u for u in set(found) if u > last_uid)
    if last_uid == 0 and isinstance(window, ImportLastN):
        uids = uids[-window.count :] if window.count else []
    return uids


def batches(uids: Sequence[int], size: int) -> list[list[int]]:
    return [list(uids[i : i + size]) for i in range(0, len(uids), size)]
