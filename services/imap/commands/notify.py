"""NOTIFY (RFC 5465): one connection told of changes in every synced folder.

Without it an account IDLEs on INBOX over one connection and polls its other folders
over a second; with it, ``NOTIFY SET`` asks the server to report, during IDLE, new and
expunged mail and flag changes in the selected folder (as usual, ``EXISTS``/``EXPUNGE``/
``FETCH``) and in the other folders as untagged ``STATUS`` (and ``LIST``) responses
(RFC 5465 5.1-5.4), so one connection watches them all and no folder waits for a poll.

The server may also send those ``STATUS`` responses while another command runs: the
STATUS parser keeps to the folder it asked about (:func:`.folder_status.parse_status`),
and a notification missed that way is harmless, since every wake checks every folder.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import aioimaplib
from aioimaplib.aioimaplib import AUTH, SELECTED, Cmd, Commands, Exec

from services.imap.errors import ImapUnavailable
from services.imap.folders import Folder, quote
from services.imap.responses import completion_text

if TYPE_CHECKING:
    from services.imap.session import ImapSession

# aioimaplib knows no NOTIFY: a synchronous command, valid once authenticated.
Commands.setdefault("NOTIFY", Cmd("NOTIFY", (AUTH, SELECTED), Exec.is_sync))

# RFC 5465 5: MessageNew and MessageExpunge go together; FlagChange needs both. For
# the other folders FlagChange comes as STATUS with HIGHESTMODSEQ (CONDSTORE enabled),
# and MailboxName as LIST when one is deleted, created or renamed (a new UIDVALIDITY).
_SELECTED_EVENTS = "(MessageNew MessageExpunge FlagChange)"
_OTHER_EVENTS = "(MessageNew MessageExpunge FlagChange MailboxName)"


def notify_request(others: list[Folder]) -> str:
    """The arguments of ``NOTIFY SET`` for the selected folder and ``others`` (pure)."""
    request = f"SET (selected {_SELECTED_EVENTS})"
    if others:
        names = " ".join(quote(f.wire_name) for f in others)
        request += f" (mailboxes ({names}) {_OTHER_EVENTS})"
    return request


def defer_notify(imap: ImapSession, others: list[Folder]) -> asyncio.Future[str | None]:
    """``NOTIFY SET`` sent with the session's next command, in one write (pipelining,
    RFC 3501 5.5: a round trip fewer for every account that starts): done once that
    command is answered, with None once the server agreed, else what it said. A BYE
    closes the connection: the command it went with fails as any does then."""
    protocol = imap.client.protocol
    agreed: asyncio.Future[str | None] = protocol.loop.create_future()

    def answered(result: str, text: str) -> None:
        if not agreed.done():
            agreed.set_result(None if result == "OK" else f"{result} {text}")

    command = aioimaplib.Command(
        "NOTIFY", protocol.new_tag(), notify_request(others), loop=protocol.loop
    )
    protocol.defer(command, answered)
    return agreed


async def notify(imap: ImapSession, others: list[Folder]) -> str | None:
    """``NOTIFY SET``: None once the server agreed, else what it said (the caller then
    watches the folders without it). A lost connection raises as any command does."""
    protocol = imap.client.protocol
    response = await protocol.execute(
        aioimaplib.Command("NOTIFY", protocol.new_tag(), notify_request(others), loop=protocol.loop)
    )
    if response.result == "OK":
        return None
    if response.result == "BYE":
        raise ImapUnavailable(f"NOTIFY: server said BYE: {completion_text(response)}")
    return f"{response.result} {completion_text(response)}"
