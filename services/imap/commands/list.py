"""LIST (RFC 3501 6.3.8): every folder of the account, with its RFC 6154 role."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.imap.folders import Folder, parse_list
from services.imap.responses import check

if TYPE_CHECKING:
    from services.imap.session import ImapSession


async def list_folders(imap: ImapSession) -> list[Folder]:
    response = check(await imap.client.list('""', '"*"'), "LIST")
    return parse_list(response.lines)
