"""STATUS (RFC 3501 6.3.10): a folder's counts without selecting it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.imap.commands.select import examine
from services.imap.errors import FolderError
from services.imap.folder_status import FolderStatus, parse_status, status_of
from services.imap.folders import Folder, quote
from services.imap.responses import check

if TYPE_CHECKING:
    from services.imap.session import ImapSession


async def status(imap: ImapSession, folder: Folder) -> FolderStatus:
    """What the sync needs to know whether ``folder`` changed."""
    if imap.selected == folder.name:
        # RFC 3501 6.3.10: STATUS SHOULD NOT be asked of the selected folder, and
        # Dovecot answers it from the open view, blind to the folder being deleted
        # and recreated meanwhile. EXAMINE again opens it afresh.
        return await examine(imap, folder)
    items = "(MESSAGES UIDNEXT UIDVALIDITY" + (" HIGHESTMODSEQ)" if imap.has("CONDSTORE") else ")")
    response = await imap.client.status(quote(folder.wire_name), items)
    if response.result == "NO":
        raise FolderError(folder.name, "STATUS refused")
    check(response, "STATUS")
    return status_of(parse_status(response.lines, folder.wire_name))


async def status_items(imap: ImapSession, folder: Folder, items: str) -> dict[str, int]:
    """``STATUS folder items`` as asked (``(MESSAGES SIZE)``): the values the server
    gave, none when it did not answer OK (a preview shows what it can)."""
    response = await imap.client.status(quote(folder.wire_name), items)
    return parse_status(response.lines, folder.wire_name) if response.result == "OK" else {}
