"""IDLE (RFC 2177): wait on the selected folder until the server says something changed.

With NOTIFY set (RFC 5465, :mod:`.notify`) the server also reports, during IDLE, the
other folders' changes as untagged ``STATUS`` lines: :class:`IdleNews` names them.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aioimaplib

from services.imap.folder_status import status_mailbox

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


async def idle_until(
    imap: ImapSession, seconds: float, wake: asyncio.Event | None = None
) -> IdleNews:
    """IDLE for up to ``seconds``, until the server reports a change or ``wake`` is set.
    Without IDLE, wait (for ``wake`` too) and say the selected folder may have changed.
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
        woke = asyncio.ensure_future(wake.wait()) if wake is not None else None
        try:
            while client.has_pending_idle():
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
