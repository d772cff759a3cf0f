"""IDLE (RFC 2177): wait on the selected folder until the server says it changed."""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING

import aioimaplib

if TYPE_CHECKING:
    from services.imap.session import ImapSession

_IDLE_NEWS = re.compile(rb"^\d+ (?:EXISTS|EXPUNGE|FETCH)\b")


async def idle(imap: ImapSession, seconds: float) -> bool:
    """IDLE on the selected folder for up to ``seconds``; True if the folder changed
    (mail arrived or left, flags changed). Without IDLE, sleep and say it may have."""
    client = imap.client
    if not imap.has("IDLE"):
        await asyncio.sleep(seconds)
        return True
    waiting = await client.idle_start(timeout=seconds)
    arrived = False
    try:
        while client.has_pending_idle():
            pushed = await client.wait_server_push(timeout=seconds + 5)
            if pushed == aioimaplib.STOP_WAIT_SERVER_PUSH:
                break
            # New mail (EXISTS), mail gone (EXPUNGE), flags changed (FETCH).
            if any(_IDLE_NEWS.search(bytes(line)) for line in pushed):
                arrived = True
                break
    finally:
        if client.has_pending_idle():
            client.idle_done()
        await asyncio.wait_for(waiting, imap.timeout)
    return arrived
