"""The activity writer service: start -> run -> cleanup(failed).

It runs three things: the writer loop (tagged messages -> activities), the mailbox
events loop (flag changes and expunges -> sightings), and every
``MAILSYNC_WRITER_RETENTION_INTERVAL_S`` a retention pass over the accounts that set
``retention_days``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from schemas.topics import (
    ACCOUNTS,
    ACTIVITY_CONFIRMATIONS,
    ACTIVITY_EVENTS,
    DEAD_LETTERS,
    MAILBOX_EVENTS,
    TAGGED_MESSAGES,
    topics_of,
)
from services.accounts.tombstones import TombstoneStore
from services.activity_writer.consumer import WriterLoop
from services.activity_writer.erasure import Eraser
from services.activity_writer.mailbox_events import MailboxEventLoop
from services.activity_writer.repository import ActivityRepository
from services.activity_writer.settings import WriterSettings
from services.common.accounts_table import AccountDirectory
from services.common.blobs import BlobStore
from services.common.kafka import consumer, ensure_topics, producer
from services.common.lifecycle import first_failure
from services.common.mongo import database, mongo_client

log = logging.getLogger("mailsync.activity_writer")


class ActivityWriterApp:
    name = "activity-writer"

    def __init__(self, settings: WriterSettings):
        self.settings = settings
        self._mongo: AsyncMongoClient[dict[str, Any]] | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self.loop: WriterLoop | None = None
        self.eraser: Eraser | None = None
        self.mailbox: MailboxEventLoop | None = None
        self._mailbox_consumer: AIOKafkaConsumer | None = None
        self._accounts: AccountDirectory | None = None

    async def start(self) -> None:
        s = self.settings
        s.log_startup(self.name)
        await ensure_topics(s, topics_of(self.name))
        self._mongo = mongo_client(s, app_name="mailsync-activity-writer")
        db = database(self._mongo, s)
        repo = ActivityRepository(db)
        await repo.ensure_indexes()
        await TombstoneStore(db).ensure_indexes()
        self._producer = producer(s, client_id="mailsync-activity-writer")
        await self._producer.start()
        self._consumer = consumer(
            s,
            s.topic(TAGGED_MESSAGES),
            group_id=s.writer_group,
            client_id="mailsync-activity-writer",
        )
        await self._consumer.start()
        self._accounts = AccountDirectory(
            consumer(s, group_id=None, client_id="mailsync-writer-accounts"), s.topic(ACCOUNTS)
        )
        await self._accounts.start()
        await self._accounts.wait_ready(timeout=60)
        blobs = BlobStore(db)
        await blobs.ensure_indexes()
        self.eraser = Eraser(db, blobs, self._producer, s.topic(ACTIVITY_EVENTS))
        self._mailbox_consumer = consumer(
            s,
            s.topic(MAILBOX_EVENTS),
            group_id=f"{s.writer_group}-mailbox-events",
            client_id="mailsync-activity-writer",
        )
        await self._mailbox_consumer.start()
        self.mailbox = MailboxEventLoop(
            self._mailbox_consumer, self._producer, db, events_topic=s.topic(ACTIVITY_EVENTS)
        )
        self.loop = WriterLoop(
            self._consumer,
            self._producer,
            repo,
            blobs,
            dead_letter_topic=s.topic(DEAD_LETTERS),
            events_topic=s.topic(ACTIVITY_EVENTS),
            confirmations_topic=s.topic(ACTIVITY_CONFIRMATIONS),
            batch_size=s.writer_batch_size,
            retry_cap_s=s.writer_retry_cap_s,
            accounts=self._accounts,
        )

    def consumer_groups(self) -> list[tuple[str, tuple[str, ...]]]:
        """Groups and topics whose lag the metrics report."""
        s = self.settings
        return [
            (s.writer_group, (s.topic(TAGGED_MESSAGES),)),
            (f"{s.writer_group}-mailbox-events", (s.topic(MAILBOX_EVENTS),)),
        ]

    async def run(self, stop: asyncio.Event) -> None:
        assert self.loop is not None and self.mailbox is not None
        retention = asyncio.create_task(self._retention(stop), name="retention")
        try:
            # A failed loop fails the service; retention is a side task.
            await first_failure(self.loop.run(stop), self.mailbox.run(stop))
        finally:
            retention.cancel()
            await asyncio.gather(retention, return_exceptions=True)

    async def retention_pass(self) -> None:
        """Apply every account's retention once."""
        assert self.eraser is not None and self._accounts is not None
        now = dt.datetime.now(dt.UTC)
        for account in self._accounts.all():
            if account.retention_days is not None:
                await self.eraser.apply_retention(account, now)

    async def _retention(self, stop: asyncio.Event) -> None:
        interval = self.settings.writer_retention_interval_s
        while not stop.is_set():
            try:
                await self.retention_pass()
            except PyMongoError as exc:  # the next pass tries again; writing goes on
                log.warning("retention pass failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    async def cleanup(self, failed: bool) -> None:
        if self._mailbox_consumer is not None:
            await self._mailbox_consumer.stop()
        if self._accounts is not None:
            await self._accounts.stop()
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()
        if self._mongo is not None:
            await self._mongo.close()
