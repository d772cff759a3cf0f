"""Running a batch's database steps until the database takes them (backpressure).

A step whose database is away (:func:`services.common.retry.is_retriable`) is retried
with a growing pause (:func:`services.common.retry.backoff`, from 1 s); a query the
database refuses is not, as it would be refused again.
On the first failure the consumer's partitions are paused, so nothing more is fetched
while the database is away, and resumed when the batch is done. ``getmany`` is still
called while paused: it returns nothing, but keeps the consumer in its group, so an
outage does not hand its partitions to another writer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TypeVar

from aiokafka import AIOKafkaConsumer
from pymongo.errors import PyMongoError

from services.common import metrics
from services.common.retry import backoff, is_retriable

log = logging.getLogger("mailsync.activity_writer")

T = TypeVar("T")


class Stopped(Exception):
    """The service was asked to stop while a step still failed: the batch is not
    committed, and comes again to whoever reads the partition next."""


class Durably:
    """``async with Durably(consumer, stop, retry_cap_s=...) as durably:`` then
    ``result = await durably(step)`` for each step of one batch.

    Attempts are counted over the whole batch: a later step that fails too pauses as
    long as the outage has lasted so far, not from the start again.
    """

    def __init__(self, consumer: AIOKafkaConsumer, stop: asyncio.Event, *, retry_cap_s: float):
        self._consumer = consumer
        self._stop = stop
        self._retry_cap_s = retry_cap_s
        self._attempt = 0
        self._paused = False

    async def __aenter__(self) -> Durably:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._paused:
            self._consumer.resume(*self._consumer.assignment())

    async def __call__(self, step: Callable[[], Awaitable[T]]) -> T:
        """``step()``'s result once it succeeded; raises :class:`Stopped` when stopped first."""
        while True:
            try:
                return await step()
            except PyMongoError as exc:
                metrics.error("activity-writer", exc)
                if not is_retriable(exc):
                    raise  # a query the database refuses will not pass on a retry
                self._attempt += 1
                delay = backoff(self._attempt, base=1.0, cap=self._retry_cap_s)
                log.warning(
                    "database write failed (%s); pausing, retry %d in %.1fs",
                    exc,
                    self._attempt,
                    delay,
                )
                await self._pause(delay)

    async def _pause(self, delay: float) -> None:
        if not self._paused:
            self._consumer.pause(*self._consumer.assignment())
            self._paused = True
        # getmany on paused partitions returns nothing but keeps us in the group.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        while not self._stop.is_set() and loop.time() < deadline:
            await self._consumer.getmany(timeout_ms=200)
        if self._stop.is_set():
            raise Stopped
