"""APPEND (RFC 3501 6.3.11), with APPENDUID (RFC 4315 3) when the server has UIDPLUS."""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING

from services.imap.errors import FolderError
from services.imap.folders import Folder, quote
from services.imap.responses import check, completion_text

if TYPE_CHECKING:
    from services.imap.session import ImapSession

_APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]")


async def append(
    imap: ImapSession, folder: Folder, message: bytes, flags: str, when: dt.datetime
) -> tuple[int, int] | None:
    """Add ``message`` to ``folder`` with ``flags`` and ``when`` as its INTERNALDATE;
    (UIDVALIDITY, UID) from APPENDUID, else None and the caller searches for it."""
    response = await imap.client.append(
        message, mailbox=quote(folder.wire_name), flags=flags, date=when
    )
    if response.result == "NO":
        raise FolderError(folder.name, f"APPEND refused: {completion_text(response)}")
    check(response, "APPEND")
    for line in response.lines:
        if m := _APPENDUID.search(bytes(line)):
            return int(m[1]), int(m[2])
    return None
