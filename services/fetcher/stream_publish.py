"""Batches of a folder fetched and published as they arrive, each batch's acknowledgement
handed to the caller, who writes what depends on it (a cursor) once it has come.

Each message goes to the producer as soon as IMAP returned it (.ordered_fetch), while the
broker still acknowledges the batch before (its records go out after that batch's: one
producer, in the order sent). What the producer holds unacknowledged is bounded as what
IMAP reads ahead is: the batch before and this one, and past ``ordered_fetch.AHEAD_BYTES``
(large mail) the next message waits for the broker. Each message taken stays counted in
the replica's total (``Publisher.held``, .held_bytes) until the broker acknowledged it
(or failed it).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncGenerator, Awaitable, Sequence
from dataclasses import dataclass

from aiokafka.structs import RecordMetadata

from services.common import metrics
from services.fetcher import ordered_fetch
from services.fetcher.held_bytes import HeldBytes
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
    try:
        fetching = ordered_batches(imap, chunks, joining, replica)
        async with contextlib.aclosing(fetching) as fetched:
            async for uids, arriving in fetched:
                sent = []
                got: set[int] = set()
                mine = 0  # bytes of this batch sent since all before were acknowledged
                async for msg in arriving:
                    got.add(msg.uid)
                    size = len(msg.body)
                    try:
                        record = await publisher.send(
                            account_id, folder.name, folder.role, uidvalidity, msg
                        )
                    except BaseException:
                        replica.remove(size)
                        raise
                    # Not held once acknowledged, or failed: counted message by message,
                    # so that imports each in the middle of a batch, their connections
                    # held, still give back what the broker took and may read again.
                    record.add_done_callback(functools.partial(_give_back, replica, size))
                    sent.append(record)
                    mine += size
                    if unacked + mine > ordered_fetch.AHEAD_BYTES:  # large mail: broker first
                        while acks:
                            await acks.pop(0)
                        await asyncio.gather(*sent)
                        unacked = mine = 0
                metrics.fetched(account_id, folder.name, len(sent))
                acks.append(
                    asyncio.create_task(publisher.acknowledged(account_id, folder.name, sent))
                )
                yield SentBatch(uids, frozenset(got), acks[-1])
                if len(acks) > 1:
                    await acks.pop(0)
                unacked = mine
        while acks:
            await acks.pop(0)
    finally:
        for ack in acks:  # the caller stopped: what follows is fetched again next time
            ack.cancel()
        await asyncio.gather(*acks, return_exceptions=True)


def _give_back(replica: HeldBytes, size: int, _: asyncio.Future[RecordMetadata]) -> None:
    replica.remove(size)
