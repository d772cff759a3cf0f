"""The activity writer service: start -> run -> cleanup(failed)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pymongo import AsyncMongoClient

from schemas.topics import (
    ACTIVITY_CONFIRMATIONS,
    ACTIVITY_EVENTS,
    DEAD_LETTERS,
    TAGGED_MESSAGES,
)
from services.activity_writer.consumer import WriterLoop
from services.activity_writer.repository import ActivityRepository
from services.activity_writer.settings import WriterSettings
from services.common.blobs import BlobStore
from services.common.kafka import consumer, ensure_topics, producer
from services.common.mongo import database, mongo_client


class ActivityWriterApp:
    name = "activity-writer"

    def __init__(self, settings: WriterSettings):
        self.settings = settings
        self._mongo: AsyncMongoClient[dict[str, Any]] | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self.loop: WriterLoop | None = None

    async def start(self) -> None:
        s = self.settings
        s.log_startup(self.name)
        await ensure_topics(
            s, [TAGGED_MESSAGES, ACTIVITY_EVENTS, ACTIVITY_CONFIRMATIONS, DEAD_LETTERS]
        )
        self._mongo = mongo_client(s, app_name="mailsync-activity-writer")
        db = database(self._mongo, s)
        repo = ActivityRepository(db)
        await repo.ensure_indexes()
        self._producer = producer(s, client_id="mailsync-activity-writer")
        await self._producer.start()
        self._consumer = consumer(
            s,
            s.topic(TAGGED_MESSAGES),
            group_id=s.writer_group,
            client_id="mailsync-activity-writer",
        )
        await self._consumer.start()
        self.loop = WriterLoop(
            self._consumer,
            self._producer,
            repo,
            BlobStore(db),
            dead_letter_topic=s.topic(DEAD_LETTERS),
            events_topic=s.topic(ACTIVITY_EVENTS),
            confirmations_topic=s.topic(ACTIVITY_CONFIRMATIONS),
            batch_size=s.writer_batch_size,
            retry_cap_s=s.writer_retry_cap_s,
        )

    async def run(self, stop: asyncio.Event) -> None:
        assert self.loop is not None
        await self.loop.run(stop)

    async def cleanup(self, failed: bool) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()
        if self._mongo is not None:
            await self._mongo.close()
