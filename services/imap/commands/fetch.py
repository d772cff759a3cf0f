"""UID FETCH (RFC 3501 6.4.5, 6.4.8) of the selected folder: whole messages, header
fields, flags, and flags changed since a MODSEQ (CHANGEDSINCE, RFC 7162 3.1.4).

Bodies are fetched with ``BODY.PEEK[]``, so fetching never sets \\Seen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from services.imap.fetch_response import (
    FetchedMessage,
    FlagUpdate,
    parse_fetch,
    parse_flag_updates,
    parse_response,
)
from services.imap.responses import check
from services.imap.sequence_set import uid_set

if TYPE_CHECKING:
    from services.imap.session import ImapSession

FETCH_ITEMS = "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])"


async def uid_fetch(imap: ImapSession, uids: list[int]) -> list[FetchedMessage]:
    out: list[FetchedMessage] = []
    await uid_fetch_each(imap, uids, out.append)
    return out


async def uid_fetch_each(
    imap: ImapSession, uids: list[int], each: Callable[[FetchedMessage], None]
) -> None:
    """``UID FETCH`` of whole messages, each given to ``each`` as soon as the server has
    sent it, in the server's order, while the rest still arrive. Returns once the
    command completed; a message ``each`` was not given was not returned."""
    failed: list[Exception] = []

    def take(parts: list[bytes]) -> None:
        # Called from the protocol's data_received: what it raises must not reach the
        # transport, so it fails the command when the command completes.
        if failed:
            return
        try:
            message = parse_response(parts)
            if message is not None:
                each(message)
        except Exception as exc:
            failed.append(exc)

    response = await imap.client.uid_fetch_each(uid_set(uids), FETCH_ITEMS, take)
    check(response, "UID FETCH")
    if failed:
        raise failed[0]


async def headers(imap: ImapSession, fields: str) -> list[FetchedMessage]:
    """``UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (...)])`` of the selected folder:
    each message's ``body`` is just those header lines (RFC 3501 6.4.5)."""
    items = f"(UID BODY.PEEK[HEADER.FIELDS ({fields})])"
    response = check(await imap.client.uid("fetch", "1:*", items), "UID FETCH HEADER.FIELDS")
    return parse_fetch(response.lines)


async def all_flags(imap: ImapSession) -> list[FlagUpdate]:
    """``UID FETCH 1:* (UID FLAGS)``: every message's flags, for servers without
    CONDSTORE, whose flag changes can only be found by comparison."""
    response = check(await imap.client.uid("fetch", "1:*", "(UID FLAGS)"), "UID FETCH FLAGS")
    return parse_flag_updates(response.lines)


async def flag_changes(imap: ImapSession, last_uid: int, since_modseq: int) -> list[FlagUpdate]:
    """Flags of messages up to ``last_uid`` changed since ``since_modseq`` (RFC 7162)."""
    items = f"(UID FLAGS) (CHANGEDSINCE {since_modseq})"
    response = check(
        await imap.client.uid("fetch", f"1:{last_uid}", items), "UID FETCH CHANGEDSINCE"
    )
    return parse_flag_updates(response.lines)
