"""EXAMINE (read-only, RFC 3501 6.3.2) to sync, SELECT (read-write, 6.3.1) to act."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aioimaplib

from services.imap.errors import FolderError
from services.imap.folder_status import FolderStatus, parse_select
from services.imap.folders import Folder, quote
from services.imap.responses import check, completion_text

if TYPE_CHECKING:
    from services.imap.session import ImapSession


async def examine(imap: ImapSession, folder: Folder) -> FolderStatus:
    """Open ``folder`` read-only: syncing never changes \\Seen or \\Recent."""
    if not folder.selectable:
        raise FolderError(folder.name, "folder cannot be selected (\\Noselect)")
    response = await imap.client.protocol.simple_command("EXAMINE", quote(folder.wire_name))
    if response.result != "OK":
        imap.selected = None
        if response.result == "NO":
            raise FolderError(folder.name, f"EXAMINE refused: {completion_text(response)}")
        check(response, "EXAMINE")
    # aioimaplib tracks SELECT only; EXAMINE selects the folder read-only just the same.
    imap.client.protocol.state = aioimaplib.SELECTED
    imap.selected = folder.name
    return parse_select(response.lines)


async def select(imap: ImapSession, folder: Folder) -> FolderStatus:
    """SELECT read-write: only to act on processed mail, never to sync."""
    response = await imap.client.select(quote(folder.wire_name))
    if response.result != "OK":
        raise FolderError(folder.name, f"SELECT refused: {response.lines[-1:]!r}")
    imap.selected = folder.name
    return parse_select(response.lines)
