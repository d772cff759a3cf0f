"""Batches of a folder fetched and published as they arrive, each batch's acknowledgement
handed to the caller, who writes what depends on it (a cursor) once it has come.

Each message goes to the producer as soon as IMAP returned it (.ordered_fetch; in an
import, into the pass's open record batch, which goes out when full or when no other
message is at hand: .record_batches), while the broker still acknowledges the batch
before (one producer and one partition: in the order sent). What the producer holds
unacknowledged is bounded as what IMAP reads ahead is: the batch before and this one, and
past ``ordered_fetch.AHEAD_BYTES`` (large mail) the next message waits for the broker.
Each message taken stays counted in the replica's total (``Publisher.held``,
.held_bytes) until the broker acknowledged (or failed) the record batch it went in.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Sequence
from dataclasses import dataclass

from services.common import metrics
from services.fetcher import ordered_fetch
from services.fetcher.ordered_fetch import ordered_batches
from services.fetcher.publish import Publisher
from services.imap import Folder, ImapSession


@dataclass(frozen=True)
class SentBatch:
    uids: list[int]  # the batch's UIDs, as asked for
    got: frozenset[int]  # those the server returned, all sent
    acked: asyncio.Task[None]  # done once the broker acknowledged every one of them


async def publish_batches(
    imap: ImapSession,
    chunks: Sequence[list[int]],
    publisher: Publisher,
    account_id: str,
    folder: Folder,
    uidvalidity: int,
    joining: Awaitable[ImapSession | None] | None = None,
) -> AsyncGenerator[SentBatch]:
    """A :class:`SentBatch` for each of ``chunks``, in order, once all its messages are
    sent; by the end, every one is acknowledged. ``imap`` (and what ``joining`` gives) has
    the folder selected. Close it (``contextlib.aclosing``) to stop early: what is not
    acknowledged by then is left to the broker, and the caller's cursor did not pass it."""
    acks: list[asyncio.Task[None]] = []  # at most the batch before's and this one's
    unacked = 0  # bytes sent since all before them were acknowledged
    replica = publisher.held
    count = sum(len(chunk) for chunk in chunks)
    records = await publisher.records(account_id, folder.name, folder.role, uidvalidity, count)
    try:
        fetching = ordered_batches(imap, chunks, joining, replica)
        async with contextlib.aclosing(fetching) as fetched:
            async for uids, arriving in fetched:
                got: set[int] = set()
                mine = 0  # bytes of this batch sent since all before were acknowledged
                async for msg in arriving:
                    got.add(msg.uid)
                    try:
                        await records.add(msg)
                    except BaseException:
                        replica.remove(len(msg.body))
                        raise
                    mine += len(msg.body)
                    if unacked + mine > ordered_fetch.AHEAD_BYTES:  # large mail: broker first
                        await records.flush()
                        while acks:
                            await acks.pop(0)
                        await asyncio.gather(*records.take_sent())
                        unacked = mine = 0
                    elif not arriving.at_hand:  # nothing to add without a wait: send
                        await records.flush()
                await records.flush()
                metrics.fetched(account_id, folder.name, len(got))
                acks.append(
                    asyncio.create_task(
                        publisher.acknowledged(
                            account_id, folder.name, records.take_sent(), len(got)
                        )
                    )
                )
                yield SentBatch(uids, frozenset(got), acks[-1])
                if len(acks) > 1:
                    await acks.pop(0)
                unacked = mine
        while acks:
            await acks.pop(0)
    finally:
        records.discard()
        for ack in acks:  # the caller stopped: what follows is fetched again next time
            ack.cancel()
        await asyncio.gather(*acks, return_exceptions=True)
