"""APPEND (RFC 3501 6.3.11), with APPENDUID (RFC 4315 3) when the server has UIDPLUS; and
several messages in one APPEND (MULTIAPPEND, RFC 3502) when it also takes LITERAL+.

One APPEND of several messages is one transaction for the server: Dovecot files 16
messages for about a sixth of the CPU that 16 APPENDs cost it (bench/RESULTS.md,
Sender). It is all or nothing (RFC 3502 6.3.11): a refusal appended none of them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import aioimaplib

from services.imap.errors import FolderError
from services.imap.folders import Folder, quote
from services.imap.responses import check, completion_text
from services.imap.sequence_set import uid_list

if TYPE_CHECKING:
    from services.imap.session import ImapSession

_APPENDUID = re.compile(rb"\[APPENDUID (\d+) ([0-9:,]+)\]")

# A message to append: its bytes, its flags (a parenthesised list) and INTERNALDATE.
Appended = tuple[bytes, str, dt.datetime]


def can_append_many(imap: ImapSession) -> bool:
    """MULTIAPPEND, and LITERAL+ so that the whole command goes in one write: without
    it every message's literal would wait for a ``+`` (RFC 3501 7.5) that aioimaplib
    answers only once per command."""
    return imap.has("MULTIAPPEND") and imap.has("LITERAL+")


async def append(
    imap: ImapSession, folder: Folder, message: bytes, flags: str, when: dt.datetime
) -> tuple[int, int] | None:
    """Add ``message`` to ``folder`` with ``flags`` and ``when`` as its INTERNALDATE;
    (UIDVALIDITY, UID) from APPENDUID, else None and the caller searches for it."""
    response = await imap.client.append(
        message, mailbox=quote(folder.wire_name), flags=flags, date=when
    )
    uids = _appended(response, folder)
    return (uids[0], uids[1][0]) if uids is not None else None


async def append_many(
    imap: ImapSession, folder: Folder, messages: Sequence[Appended]
) -> tuple[int, list[int]] | None:
    """Add ``messages`` to ``folder`` in one APPEND (needs :func:`can_append_many`):
    (UIDVALIDITY, the UID of each, in order) from APPENDUID, else None and the caller
    searches for them. A refusal (:class:`FolderError`, for a NO or a BAD) appended none
    of them."""
    if not messages:
        raise ValueError("nothing to append")

    # RFC 3502: APPEND mailbox 1*(SP [flags] [date] literal); each literal as {n+}
    # (RFC 7888) so the server reads on without a continuation request.
    def entry(message: bytes, flags: str, when: dt.datetime) -> bytes:
        return f"{flags} {aioimaplib.time2internaldate(when)} {{{len(message)}+}}".encode()

    first, *rest = messages
    tail = [first[0]]
    for message, flags, when in rest:
        tail += [b" ", entry(message, flags, when), b"\r\n", message]
    tail.append(b"\r\n")
    protocol = imap.client.protocol
    command = aioimaplib.Command(
        "APPEND",
        protocol.new_tag(),
        quote(folder.wire_name),
        entry(*first).decode(),
        loop=protocol.loop,
        timeout=imap.timeout,
    )
    protocol.complete_next_with(b"".join(tail))
    response = await protocol.execute(command)
    if response.result == "BAD":  # announced, but not taken so: each message alone then
        raise FolderError(folder.name, f"MULTIAPPEND refused: {completion_text(response)}")
    uids = _appended(response, folder)
    if uids is None or len(uids[1]) != len(messages):
        return None
    return uids


def _appended(response: aioimaplib.Response, folder: Folder) -> tuple[int, list[int]] | None:
    if response.result == "NO":
        raise FolderError(folder.name, f"APPEND refused: {completion_text(response)}")
    check(response, "APPEND")
    for line in response.lines:
        if m := _APPENDUID.search(bytes(line)):
            return int(m[1]), uid_list(m[2].decode())
    return None
