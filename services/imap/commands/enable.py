"""ENABLE (RFC 5161) of the extensions the sync relies on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.imap.responses import check

if TYPE_CHECKING:
    from services.imap.session import ImapSession


async def enable_condstore(imap: ImapSession) -> None:
    """ENABLE CONDSTORE when the server has it (and ENABLE)."""
    if imap.has("CONDSTORE") and imap.has("ENABLE"):
        # RFC 7162 3.1: from now on EXAMINE reports HIGHESTMODSEQ, and flag changes
        # can be asked for with CHANGEDSINCE.
        check(await imap.client.enable("CONDSTORE"), "ENABLE CONDSTORE")
