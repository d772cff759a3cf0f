"""LIST-STATUS (RFC 5819): the status of many folders in one command.

Where the server lacks NOTIFY (RFC 5465), an account's folders are polled; STATUS
(RFC 3501 6.3.10) asks one folder per command, a round trip each. ``LIST ... RETURN
(STATUS (...))`` asks them all at once: with LIST-EXTENDED (RFC 5258 3) several
mailbox patterns go in one parenthesised list, and for each listed, selectable
mailbox the server sends its ``* LIST`` line followed by ``* STATUS`` with the items
asked for (RFC 5819 2), the same untagged STATUS as the STATUS command's.

What the answer does not name is left out of the result, never guessed: a folder
deleted or renamed since it was listed (no LIST line, so no STATUS, RFC 5819 2), one
whose name the server sent as a literal (the STATUS parser reads quoted strings and
atoms), and the selected folder, which is not asked about (RFC 3501 6.3.10: STATUS
SHOULD NOT be asked of it, and Dovecot answers it from the open view). The caller
asks those one by one with :func:`.status.status`, which reports a folder's failure.

A name holding ``*`` or ``%`` is a pattern here (RFC 3501 6.3.8) and may list more
mailboxes than asked; only the folders asked about are kept, so it costs lines only.

:func:`list_chosen` asks the same of folders known by name only (an account's chosen
folders, before anything was listed): its ``* LIST`` lines are the folders (with their
RFC 6154 roles, ``RETURN (SPECIAL-USE)`` where the server has it) and its ``* STATUS``
lines their status. An account starting needs both, and ``LIST "" "*"`` followed by
this command was two round trips where one does (issue #16: a replica taking over
5,000 accounts spends its time on each command's write and read).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aioimaplib
from aioimaplib.aioimaplib import AUTH, SELECTED, Cmd, Commands, Exec

from schemas.common import FolderRole
from services.imap import mutf7
from services.imap.errors import ImapUnavailable
from services.imap.folder_status import FolderStatus, parse_status, status_mailbox, status_of
from services.imap.folders import Folder, parse_list_line, quote
from services.imap.responses import completion_text

if TYPE_CHECKING:
    from services.imap.session import ImapSession

# aioimaplib runs LIST asynchronously and hands it only the untagged lines named LIST:
# the STATUS lines of the answer would be dropped. Under its own name LIST-STATUS is a
# synchronous command, which gets every untagged line until its tagged completion;
# on the wire it is still ``LIST`` (see _ListStatus).
_NAME = "LIST-STATUS"
Commands.setdefault(_NAME, Cmd(_NAME, (AUTH, SELECTED), Exec.is_sync))


class _ListStatus(aioimaplib.Command):  # type: ignore[misc]
    def __repr__(self) -> str:
        return f"{self.tag} LIST {' '.join(str(a) for a in self.args)}"


@dataclass(frozen=True)
class Chosen:
    """Folders asked for by name, as the server listed them, and their status."""

    folders: list[Folder]
    status: dict[str, FolderStatus]  # by folder name; see list_status for what is missing


def list_status_request(
    folders: list[Folder], condstore: bool, *, special_use: bool = False
) -> str:
    """The arguments of ``LIST`` asking ``folders``' status (pure): their names as
    patterns (RFC 5258 3), and the items STATUS asks for (HIGHESTMODSEQ only once
    CONDSTORE is there, RFC 7162 3.1.3); ``special_use``: the folders' roles too
    (RFC 6154 5.2)."""
    names = " ".join(quote(f.wire_name) for f in folders)
    items = "MESSAGES UIDNEXT UIDVALIDITY" + (" HIGHESTMODSEQ" if condstore else "")
    options = "SPECIAL-USE " if special_use else ""
    return f'"" ({names}) RETURN ({options}STATUS ({items}))'


def named(names: list[str]) -> list[Folder]:
    """Folders known only by their (decoded) names, to ask about (pure)."""
    return [
        Folder(name=n, wire_name=mutf7.encode(n), flags=frozenset(), role=FolderRole.OTHER)
        for n in dict.fromkeys("INBOX" if n.upper() == "INBOX" else n for n in names)
    ]


def parse_listed(lines: list[bytes | bytearray]) -> list[Folder]:
    """The folders of a LIST-STATUS answer's ``LIST`` lines (pure)."""
    out = []
    for line in lines:
        raw = bytes(line)
        if raw.startswith(b"LIST ") and (folder := parse_list_line(raw[5:])) is not None:
            out.append(folder)
    return out


def parse_list_status(
    lines: list[bytes | bytearray], folders: list[Folder]
) -> dict[str, FolderStatus]:
    """The status of each of ``folders`` the answer named, by folder name (pure).

    Untagged STATUS for a folder not asked about is ignored: a pattern's other matches,
    or a NOTIFY push (RFC 5465 5) arriving during the command."""
    wanted = {f.wire_name: f for f in folders}
    # parse_status keeps the lines not naming a mailbox (LIST lines too): only STATUS
    # lines about a folder asked about are given to it.
    by_wire: dict[str, list[bytes | bytearray]] = {}
    for line in lines:
        named = status_mailbox(line)
        if named is not None and named in wanted:
            by_wire.setdefault(named, []).append(line)
    result: dict[str, FolderStatus] = {}
    for wire, mine in by_wire.items():
        values = parse_status(mine, wire)
        # Without UIDVALIDITY no cursor could be compared: leave it to STATUS.
        if "UIDVALIDITY" in values:
            result[wanted[wire].name] = status_of(values)
    return result


async def list_chosen(imap: ImapSession, names: list[str]) -> Chosen | None:
    """The folders named ``names`` and their status in one command; None when the server
    refused it, or did not list every one of them (deleted, renamed, a name sent as a
    literal): the caller then lists every folder as before, and reports what is
    missing. Before any folder is selected."""
    asked = named(names)
    response = await _execute(
        imap, list_status_request(asked, imap.has("CONDSTORE"), special_use=imap.has("SPECIAL-USE"))
    )
    if response is None:
        return None
    wanted = {f.name for f in asked}
    folders = [f for f in parse_listed(response.lines) if f.name in wanted]
    if {f.name for f in folders} != wanted:
        return None
    return Chosen(folders, parse_list_status(response.lines, folders))


async def _execute(imap: ImapSession, request: str) -> aioimaplib.Response | None:
    """``LIST request`` under LIST-STATUS's name (see above); None if refused."""
    protocol = imap.client.protocol
    # A time limit as aioimaplib puts on its own commands (and login here does).
    response = await asyncio.wait_for(
        protocol.execute(_ListStatus(_NAME, protocol.new_tag(), request, loop=protocol.loop)),
        imap.timeout,
    )
    if response.result == "BYE":
        raise ImapUnavailable(f"LIST-STATUS: server said BYE: {completion_text(response)}")
    return response if response.result == "OK" else None


async def list_status(imap: ImapSession, folders: list[Folder]) -> dict[str, FolderStatus]:
    """The status of ``folders`` in one command, by folder name; the ones the answer
    did not name (see the module's docstring), and all of them when the server
    refused the command, are missing. A lost connection raises as any command does."""
    asked = [f for f in folders if f.name != imap.selected]
    if not asked:
        return {}
    response = await _execute(imap, list_status_request(asked, imap.has("CONDSTORE")))
    return {} if response is None else parse_list_status(response.lines, asked)
