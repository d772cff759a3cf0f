"""Acking an event once what it produced is in the broker, not before.

The agents iterate ``stream.noack()`` and do not wait for each send: aiokafka batches
the records of many events into one produce request, so the agent goes on to the next
event while the previous ones are in flight. faust commits an offset only up to the
first event not acked, so an event whose send failed holds the committed offset back
and is read again after the restart that the crash causes (at least once; the
verdicts do not depend on arrival order, so a record seen twice changes nothing).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger("mailsync.dedup")


def ack_when_sent(
    event: Any,
    sent: asyncio.Future[Any] | Sequence[asyncio.Future[Any]],
    crash: Callable[[BaseException], Any],
) -> None:
    """Ack ``event`` when ``sent`` (the futures of its output records) all succeed; a
    failed send leaves it unacked and calls ``crash`` once (the worker must restart:
    aiokafka has already retried until its delivery timeout)."""
    futures = [sent] if isinstance(sent, asyncio.Future) else list(sent)
    left = len(futures)
    failed = False

    def done(fut: asyncio.Future[Any]) -> None:
        nonlocal left, failed
        if failed:
            return
        if fut.cancelled():
            failed = True  # the producer is stopping: unacked, the event is read again
            return
        exc = fut.exception()
        if exc is None:
            left -= 1
            if left == 0:
                event.ack()
            return
        failed = True
        log.error(
            "send failed for %s[%d]@%d; not acked: %r",
            event.message.topic,
            event.message.partition,
            event.message.offset,
            exc,
        )
        crash(exc)

    if not futures:
        event.ack()  # nothing to wait for
    for fut in futures:
        fut.add_done_callback(done)
