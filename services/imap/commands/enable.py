"""ENABLE (RFC 5161) of the extensions the sync relies on."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aioimaplib

if TYPE_CHECKING:
    from services.imap.session import ImapSession


def defer_condstore(imap: ImapSession) -> None:
    """ENABLE CONDSTORE when the server has it (and ENABLE), sent with the session's
    next command in one write (:meth:`.protocol._Protocol.defer`): every session's next
    command (LIST, EXAMINE) comes after it on the server as before (RFC 3501 5.5), one
    round trip fewer per login. A refusal fails that command, as it failed the login."""
    if imap.has("CONDSTORE") and imap.has("ENABLE"):
        protocol = imap.client.protocol
        protocol.defer(
            aioimaplib.Command("ENABLE", protocol.new_tag(), "CONDSTORE", loop=protocol.loop)
        )
