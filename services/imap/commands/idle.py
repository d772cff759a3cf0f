"""IDLE (RFC 2177): wait on the selected folder until the server says something changed.

With NOTIFY set (RFC 5465, :mod:`.notify`) the server also reports, during IDLE, the
other folders' changes as untagged ``STATUS`` lines: :class:`IdleNews` names them.

:func:`examine_and_idle` opens the folder and IDLEs on it in one write (pipelining, RFC
3501 5.5: the server answers EXAMINE before it takes IDLE): every return to IDLE after
a pass was two round trips, and an account starting (5,000 at once in a rebalance,
issue #16) spends its time on each command's write and read. The EXAMINE's answer
arrives while IDLE waits for its ``+``; mail it shows that came after the last pass
looked (RFC 2177: IDLE reports only what changes after it began) ends the IDLE at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aioimaplib

from services.imap.errors import FolderError, ImapUnavailable
from services.imap.folder_status import FolderStatus, parse_select, status_mailbox
from services.imap.folders import Folder, quote

if TYPE_CHECKING:
    from services.imap.session import ImapSession

_IDLE_NEWS = re.compile(rb"^\d+ (?:EXISTS|EXPUNGE|FETCH)\b")
# NOTIFY's MailboxName event (RFC 5465 5.4): a folder deleted, created or renamed.
_LIST = re.compile(rb"^LIST \(")


@dataclass(frozen=True)
class IdleNews:
    """What ended an IDLE: the selected folder changed (mail arrived or left, flags
    changed), other folders changed (their wire names, from NOTIFY), or ``woken``
    (the caller's event); nothing of these when the time ran out."""

    selected: bool = False
    mailboxes: frozenset[str] = frozenset()
    renamed: bool = False  # a folder was deleted, created or renamed (LIST)
    woken: bool = False

    @property
    def changed(self) -> bool:
        return self.selected or bool(self.mailboxes) or self.renamed


async def idle(imap: ImapSession, seconds: float) -> bool:
    """IDLE on the selected folder for up to ``seconds``; True if the folder changed.
    Without IDLE, sleep and say it may have."""
    return (await idle_until(imap, seconds)).changed


async def examine_and_idle(
    imap: ImapSession,
    folder: Folder,
    seconds: float,
    wake: asyncio.Event | None = None,
    *,
    arrived: Callable[[FolderStatus], bool],
    stop: Callable[[], bool] = lambda: False,
) -> IdleNews:
    """EXAMINE ``folder`` (read-only, RFC 3501 6.3.2) and IDLE on it as :func:`idle_until`
    does, both in one write. Ends at once (``selected``) when ``arrived`` says the
    EXAMINE shows mail the last pass did not see, or with no news when ``stop()`` says
    so once the commands sent with these were answered (a NOTIFY the server refused).
    A refused EXAMINE raises :class:`FolderError`, as ``examine`` does."""
    if not folder.selectable:
        raise FolderError(folder.name, "folder cannot be selected (\\Noselect)")
    if not imap.has("IDLE"):
        status = await imap.examine(folder)
        if arrived(status):
            return IdleNews(selected=True)
        return IdleNews() if stop() else await idle_until(imap, seconds, wake)
    protocol = imap.client.protocol
    answer: asyncio.Future[tuple[str, str, list[bytes | bytearray]]] = protocol.loop.create_future()

    def examined(result: str, text: str) -> None:
        # Its untagged lines went to the IDLE sent with it, which hands out nothing
        # before its "+": all of them are still there.
        answer.set_result((result, text, protocol.take_idle_lines()))
        if result == "OK":
            imap.selected = folder.name
        else:  # a failed EXAMINE leaves no folder selected (RFC 3501 6.3.2)
            protocol.state = aioimaplib.AUTH

    imap.selected = None
    command = aioimaplib.Command("EXAMINE", protocol.new_tag(), quote(folder.wire_name))
    protocol.defer(command, examined)
    # aioimaplib tracks SELECT only, and checks the state as it sends IDLE: the EXAMINE
    # goes first in the same write.
    protocol.state = aioimaplib.SELECTED

    def begun() -> IdleNews | None:
        if not answer.done():
            raise ImapUnavailable("EXAMINE not answered before the IDLE sent after it")
        result, text, lines = answer.result()
        if result == "NO":
            raise FolderError(folder.name, f"EXAMINE refused: {text}")
        if result != "OK":
            raise ImapUnavailable(f"EXAMINE failed: {result} {text}")
        if arrived(parse_select(lines)):
            return IdleNews(selected=True)
        return IdleNews() if stop() else None

    try:
        return await idle_until(imap, seconds, wake, begun=begun)
    except aioimaplib.Abort:
        if answer.done() and answer.result()[0] == "NO":  # IDLE refused after it
            raise FolderError(folder.name, f"EXAMINE refused: {answer.result()[1]}") from None
        raise


async def idle_until(
    imap: ImapSession,
    seconds: float,
    wake: asyncio.Event | None = None,
    *,
    begun: Callable[[], IdleNews | None] | None = None,
) -> IdleNews:
    """IDLE for up to ``seconds``, until the server reports a change or ``wake`` is set.
    Without IDLE, wait (for ``wake`` too) and say the selected folder may have changed.
    ``begun``: asked once the server accepted the IDLE; news from it ends the IDLE at
    once (DONE), as does anything it raises.
    Cancelled, it leaves the session in IDLE: the session is only closed after that."""
    client = imap.client
    if not imap.has("IDLE"):
        woken = await _wait(wake, seconds)
        return IdleNews(selected=not woken, woken=woken)
    waiting = await client.idle_start(timeout=seconds)
    news = IdleNews()
    stopping = False
    push: asyncio.Future[Any] | None = None
    try:
        early = begun() if begun is not None else None
        woke = asyncio.ensure_future(wake.wait()) if wake is not None and early is None else None
        if early is not None:
            news = early
        try:
            while early is None and client.has_pending_idle():
                push = asyncio.ensure_future(client.wait_server_push(timeout=seconds + 5))
                pending = {push} if woke is None else {push, woke}
                await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if not push.done():
                    push.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await push
                    news = IdleNews(woken=True)
                    break
                pushed = push.result()
                if pushed == aioimaplib.STOP_WAIT_SERVER_PUSH:
                    break
                news = _read(pushed)
                if news.changed:
                    break
        finally:
            if woke is not None:
                woke.cancel()
    except asyncio.CancelledError:
        # The account is stopping here (a rebalance moved it, or the replica shuts
        # down): no DONE, and ImapSession.close sends no LOGOUT to a session still in
        # IDLE, it closes the connection. IDLE has nothing in flight to finish (RFC 2177:
        # the server only reports), and closing a mailbox without CLOSE expunges
        # nothing (RFC 3501 6.4.2): the two round trips only kept the next replica
        # waiting (issue #16, bench/scale.py's rebalance).
        stopping = True
        if push is not None:
            push.cancel()
        waiting.cancel()
        raise
    finally:
        if not stopping:
            if client.has_pending_idle():
                client.idle_done()
            await asyncio.wait_for(waiting, imap.timeout)
    return news


def _read(lines: list[bytes]) -> IdleNews:
    """New mail (EXISTS), mail gone (EXPUNGE), flags changed (FETCH) in the selected
    folder; another folder's STATUS or a LIST (NOTIFY)."""
    selected = any(_IDLE_NEWS.search(bytes(line)) for line in lines)
    others = frozenset(n for line in lines if (n := status_mailbox(line)) is not None)
    renamed = any(_LIST.match(bytes(line)) for line in lines)
    return IdleNews(selected=selected, mailboxes=others, renamed=renamed)


async def _wait(wake: asyncio.Event | None, seconds: float) -> bool:
    """Sleep ``seconds``, or less if ``wake`` is set: True if it was."""
    if wake is None:
        await asyncio.sleep(seconds)
        return False
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wake.wait(), seconds)
        return True
    return False
