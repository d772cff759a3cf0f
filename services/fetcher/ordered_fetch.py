"""Batches of UIDs fetched on one or two connections, handed out strictly in UID order,
each batch's messages as they arrive.

On one connection, one ``UID FETCH`` asks for whole batches up to ``SPAN_UIDS`` UIDs
(10 batches at the default size) and the server streams them without a pause between
commands; each message is the caller's as soon as
the server sent it (``ImapSession.uid_fetch_each``): the first message of an import goes
to Kafka while Dovecot still sends the rest, the last batch's publishing runs alongside
its FETCH instead of after it, and no response is held whole before it is parsed
(bench/RESULTS.md, "Issue #19, round 5": the same import in less CPU).

What the connections read ahead of the caller is bounded, so that a slow publisher (a
broker that does not acknowledge, a blob store that stalls) holds the server back rather
than filling the fetcher's memory: a connection is *held* (it reads nothing more, TCP
stops the server) while it is more than ``AHEAD`` batches ahead of the caller, while
the caller has more than ``AHEAD_BYTES`` not yet taken, or while the replica holds more
than its limit over all its fetches (.held_bytes: every message counts there from its
arrival; the caller gives back what it took once Kafka acknowledged it, this what it
never took); at most one message beyond.

A second connection, when one joins (a large import, .import_connection), takes every
other batch, one ``UID FETCH`` each, from the batch it finds. The caller still sees batch
0, 1, 2... in order: the order of raw-messages, and of the cursor, is the order of UIDs.

A connection that fails fails the whole fetch at that batch (when the caller comes to it,
after the messages that batch did return); what was handed out before stays handed out.
The caller owns the connections.
"""

from __future__ import annotations

import asyncio
import bisect
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Sequence

from services.fetcher.held_bytes import HeldBytes
from services.imap import FetchedMessage, ImapSession

AHEAD = 2  # batches a connection may read ahead of the one the caller reads
AHEAD_BYTES = 32 * 1024 * 1024  # bytes of messages the caller has not taken yet
# UIDs a UID FETCH asks for at most, in whole batches (at least one): ~16 KB of command
# line for 2,000 scattered UIDs, well within servers' limits (Dovecot's is 64 KB).
SPAN_UIDS = 2000


class _Window:
    """How far the connections may read ahead of the caller; holds and releases them."""

    def __init__(self, replica: HeldBytes) -> None:
        self.reading = 0  # the batch the caller reads
        self.unread = 0  # bytes of messages arrived that the caller has not taken
        self.replica = replica
        self._held: dict[ImapSession, int] = {}  # connection -> the batch it fills

    def arrived(self, session: ImapSession, batch: int, size: int) -> None:
        self.unread += size
        self.replica.add(size)
        if session in self._held:  # what was read before the hold still comes in
            self._held[session] = max(batch, self._held[session])
        elif self._full(batch):
            session.hold()
            self._held[session] = batch

    def moved(self) -> None:
        """The caller took a message or began a batch, or the replica fell back under its
        limit: release what may read again."""
        for session, batch in list(self._held.items()):
            if not self._full(batch):
                del self._held[session]
                session.release()

    def done(self, session: ImapSession) -> None:
        """``session``'s FETCH is over: it reads freely again."""
        if self._held.pop(session, None) is not None:
            session.release()

    def _full(self, batch: int) -> bool:
        return batch - self.reading > AHEAD or self.unread > AHEAD_BYTES or self.replica.full


class Arriving:
    """One batch's messages as they arrive, for one reader (``async for``)."""

    def __init__(self, window: _Window) -> None:
        self._window = window
        self._messages: deque[FetchedMessage] = deque()
        self._more = asyncio.Event()
        self._ended = False
        self._error: BaseException | None = None

    @property
    def at_hand(self) -> bool:
        """A message has arrived that the reader has not taken yet: the next one comes
        without a wait."""
        return bool(self._messages)

    def put(self, message: FetchedMessage) -> None:
        self._messages.append(message)
        self._more.set()

    def end(self, error: BaseException | None = None) -> None:
        if not self._ended:
            self._ended, self._error = True, error
            self._more.set()

    async def __aiter__(self) -> AsyncIterator[FetchedMessage]:
        while True:
            while self._messages:
                message = self._messages.popleft()
                self._window.unread -= len(message.body)
                self._window.moved()
                yield message
            if self._ended:
                if self._error is not None:
                    raise self._error
                return
            self._more.clear()
            await self._more.wait()


async def ordered_batches(
    first: ImapSession,
    chunks: Sequence[list[int]],
    joining: Awaitable[ImapSession | None] | None = None,
    replica: HeldBytes | None = None,
) -> AsyncGenerator[tuple[list[int], Arriving]]:
    """``(batch, its messages as they arrive)`` for each of ``chunks`` (each in
    ascending UID order, one after another) in order, fetched on ``first`` and on what
    ``joining`` gives once it does (None: nothing joins). Each connection has the folder
    selected. Read each batch's messages to their end before the next batch; close this
    (``contextlib.aclosing``) to stop early. Every message is counted in ``replica``
    when it arrives: the caller owns the count of what it took (and gives it back), this
    gives back the rest when it closes."""
    window = _Window(replica or HeldBytes(None))
    unwatch = window.replica.watch(window.moved)
    arriving = [Arriving(window) for _ in chunks]
    begun = [asyncio.Event() for _ in chunks]  # the caller began reading batch i
    lasts = [chunk[-1] for chunk in chunks]
    claimed = 0  # batches a connection has taken on

    def span_from(start: int) -> int:
        """The end of the batches one UID FETCH asks for, from ``start``: one each with
        a second connection (the two take turns), else up to SPAN_UIDS UIDs."""
        end, count = start + 1, len(chunks[start])
        while joining is None and end < len(chunks) and count + len(chunks[end]) <= SPAN_UIDS:
            count, end = count + len(chunks[end]), end + 1
        return end

    async def fetch_span(session: ImapSession, start: int, end: int) -> bool:
        """Batches ``start`` to ``end - 1`` with one UID FETCH; False once it failed."""
        at = start  # the batch being filled

        def route(message: FetchedMessage) -> None:
            # Servers answer in sequence order, which is UID order (RFC 3501 2.3.1.1): a
            # message past batch j's last UID ends batch j. One that came late, out of
            # order, is not handed over: the caller counts its UID as missing, and it is
            # fetched again on the next pass.
            nonlocal at
            j = bisect.bisect_left(lasts, message.uid, start, end)
            if j == end or j < at:
                return
            while at < j:
                arriving[at].end()
                at += 1
            arriving[j].put(message)
            window.arrived(session, j, len(message.body))

        try:
            await session.uid_fetch_each([u for c in chunks[start:end] for u in c], route)
        except Exception as exc:  # the caller gets it at the batch, in order
            for batch in arriving[at:end]:
                batch.end(exc)
            return False
        finally:
            window.done(session)
        for batch in arriving[at:end]:
            batch.end()
        return True

    async def fetch_on(session: ImapSession) -> None:
        nonlocal claimed
        while claimed < len(chunks):
            start = claimed
            claimed = end = span_from(start)
            if start >= AHEAD:
                await begun[start - AHEAD].wait()
            if not await fetch_span(session, start, end):
                return

    async def join() -> None:
        assert joining is not None
        second = await joining
        if second is not None:
            await fetch_on(second)

    workers = [asyncio.create_task(fetch_on(first))]
    if joining is not None:
        workers.append(asyncio.create_task(join()))
    try:
        for i, chunk in enumerate(chunks):
            window.reading = i
            window.moved()
            begun[i].set()
            yield chunk, arriving[i]
    finally:
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        unwatch()
        window.replica.remove(window.unread)  # arrived, never taken
