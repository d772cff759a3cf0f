"""How many bytes of messages a replica holds at once, whatever the number in flight.

A request in hand holds its message built (``Dispatcher._build``: the attachments read
from the blob store, base64-encoded into the MIME message) until it is filed. The
in-flight limit counts requests, and one of 30 MB weighs as much as a thousand of
30 KB: with only a count, a burst of large ones would take a replica's memory. So each
request also takes its estimated bytes from this budget before its work begins, and
gives them back when it is done. A request larger than the whole budget goes alone,
once nothing else is held. Requests are served in the order they ask: a large one
waiting is not overtaken for ever by small ones that keep fitting beside the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator

from schemas.send_request import SendRequest

HEADERS_BYTES = 16 * 1024  # headers, MIME boundaries, a reply's References: a margin


def bytes_in_hand(request: SendRequest) -> int:
    """The built message's size, about: its attachments in base64 (4 bytes for every 3,
    RFC 2045 6.8), its bodies (each UTF-8 character up to 4 bytes; quoted-printable or
    base64 when sent), and a margin for the headers."""
    attachments = sum(a.blob.size for a in request.attachments)
    bodies = sum(len(b) for b in (request.text_body, request.html_body) if b)
    return attachments * 4 // 3 + bodies * 4 + HEADERS_BYTES


class ByteBudget:
    def __init__(self, limit: int):
        self._limit = limit
        self._used = 0
        self._queue: deque[tuple[int, asyncio.Future[None]]] = deque()

    @property
    def used(self) -> int:
        return self._used

    @contextlib.asynccontextmanager
    async def hold(self, size: int) -> AsyncIterator[None]:
        """``size`` bytes of the budget for the ``async with`` block."""
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((size, turn))
        self._admit()
        try:
            await turn
        except BaseException:
            if turn.done() and not turn.cancelled():  # admitted as we were cancelled
                self._used -= size
            turn.cancel()  # a cancelled turn is passed over (and dropped) by _admit
            self._admit()
            raise
        try:
            yield
        finally:
            self._used -= size
            self._admit()

    def _admit(self) -> None:
        """Let in the longest waiting while they fit (or the budget is all free)."""
        while self._queue:
            size, turn = self._queue[0]
            if turn.done():  # its caller was cancelled while it waited
                self._queue.popleft()
                continue
            if self._used and self._used + size > self._limit:
                return
            self._queue.popleft()
            self._used += size
            turn.set_result(None)
