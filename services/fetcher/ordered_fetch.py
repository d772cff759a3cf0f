"""Batches of UIDs fetched on one or two connections, handed out strictly in UID order.

Each connection takes the next batch not yet taken as soon as it is free, so while the
caller publishes batch n the next ones are already on their way, and a connection that
comes late (a second one, still logging in when the first batch goes out) joins at the
batch it finds. The caller still sees batch 0, 1, 2... in order: the order of
raw-messages, and of the cursor, is the order of UIDs. The reorder buffer is bounded:
batch i is asked for only once the caller took batch i - ``AHEAD``, so at most
``AHEAD`` batches are fetched, or being fetched, ahead of the caller.

A connection that fails fails the whole fetch at that batch (when the caller comes to
it); what was handed out before stays handed out. The caller owns the connections.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Sequence

from services.imap import FetchedMessage, ImapSession

AHEAD = 2  # one batch per connection


async def ordered_batches(
    first: ImapSession,
    chunks: Sequence[list[int]],
    joining: Awaitable[ImapSession | None] | None = None,
) -> AsyncGenerator[tuple[list[int], list[FetchedMessage]]]:
    """``(batch, its messages)`` for each of ``chunks`` in order, fetched on ``first``
    and on what ``joining`` gives once it does (None: nothing joins). Each connection
    has the folder selected. Close it (``contextlib.aclosing``) to stop early."""
    loop = asyncio.get_running_loop()
    fetched: list[asyncio.Future[list[FetchedMessage]]] = [loop.create_future() for _ in chunks]
    taken = [asyncio.Event() for _ in chunks]
    claimed = 0  # batches a connection has taken on

    async def fetch_on(session: ImapSession) -> None:
        nonlocal claimed
        while claimed < len(chunks):
            i, claimed = claimed, claimed + 1
            if i >= AHEAD:
                await taken[i - AHEAD].wait()
            try:
                messages = await session.uid_fetch(chunks[i])
            except Exception as exc:  # the caller gets it at batch i, in order
                fetched[i].set_exception(exc)
                return
            fetched[i].set_result(messages)

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
            messages = await fetched[i]
            taken[i].set()
            yield chunk, messages
    finally:
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        for future in fetched:  # a failure after the one the caller saw: nobody to tell
            if future.done() and not future.cancelled():
                with contextlib.suppress(Exception):
                    future.result()
