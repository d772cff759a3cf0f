"""UID SEARCH (RFC 3501 6.4.4, 6.4.8)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.imap.fetch_response import parse_search
from services.imap.responses import check

if TYPE_CHECKING:
    from services.imap.session import ImapSession


async def uid_search(imap: ImapSession, criteria: str) -> list[int]:
    """The UIDs in the selected folder matching ``criteria`` (ASCII: no CHARSET)."""
    response = check(await imap.client.uid_search(criteria, charset=None), "UID SEARCH")
    return parse_search(response.lines)
