"""Moving messages: UID MOVE (RFC 6851), else UID COPY + \\Deleted + UID EXPUNGE of just
these (UIDPLUS, RFC 4315)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.imap.commands.store import add_flags
from services.imap.copyuid import CopyUid, parse_copyuid
from services.imap.errors import ImapUnavailable
from services.imap.folders import Folder, quote
from services.imap.responses import check
from services.imap.sequence_set import uid_set

if TYPE_CHECKING:
    from services.imap.session import ImapSession


async def move(imap: ImapSession, uids: list[int], target: Folder) -> CopyUid | None:
    """Move ``uids`` of the selected folder to ``target``; returns where they went when
    the server said so (COPYUID)."""
    ids, dest = uid_set(uids), quote(target.wire_name)
    if imap.has("MOVE"):
        moved = check(await imap.client.uid("move", ids, dest), "UID MOVE")
        return parse_copyuid(moved.lines)
    # Checked before copying: a copy left behind would be copied again on every retry.
    if not imap.has("UIDPLUS"):
        raise ImapUnavailable("server has neither MOVE nor UIDPLUS: cannot move safely")
    copied = check(await imap.client.uid("copy", ids, dest), "UID COPY")
    await add_flags(imap, uids, "\\Deleted")
    check(await imap.client.uid("expunge", ids), "UID EXPUNGE")
    return parse_copyuid(copied.lines)
