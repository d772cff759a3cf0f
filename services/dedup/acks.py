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
from collections.abc import Callable
from typing import Any

log = logging.getLogger("mailsync.dedup")


def ack_when_sent(
    event: Any, sent: asyncio.Future[Any], crash: Callable[[BaseException], Any]
) -> None:
    """Ack ``event`` when ``sent`` (the future of its output record) succeeds; a failed
    send leaves it unacked and calls ``crash`` (the worker must restart: aiokafka has
    already retried until its delivery timeout)."""

    def done(fut: asyncio.Future[Any]) -> None:
        if fut.cancelled():
            return  # the producer is stopping: the event stays unacked and is read again
        exc = fut.exception()
        if exc is None:
            event.ack()
            return
        log.error(
            "send failed for %s[%d]@%d; not acked: %r",
            event.message.topic,
            event.message.partition,
            event.message.offset,
            exc,
        )
        crash(exc)

    sent.add_done_callback(done)
