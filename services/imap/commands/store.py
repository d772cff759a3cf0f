"""UID STORE (RFC 3501 6.4.6, 6.4.8)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.imap.responses import check
from services.imap.sequence_set import uid_set

if TYPE_CHECKING:
    from services.imap.session import ImapSession


async def add_flags(imap: ImapSession, uids: list[int], flags: str) -> None:
    """Add ``flags`` to these messages; .SILENT: the server need not send them back."""
    response = await imap.client.uid("store", uid_set(uids), "+FLAGS.SILENT", f"({flags})")
    check(response, "UID STORE")
