"""The writer's loop: a batch of tagged messages -> one durable write -> events -> commit.

The write returns once the database acknowledged it (with ``--sync-on-commit``
SecantusDB, or a majority write concern on MongoDB, that means durable); then the
batch's activity events and confirmations are published (acks=all); only then are the
offsets committed. When the
database fails, consumption pauses and the same batch is retried with backoff; nothing
is skipped and the consumer stays in its group.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import TypeAlias

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from pydantic import ValidationError
from pymongo.errors import PyMongoError

from schemas.activity_event import ActivityConfirmation, ActivityEvent, ActivityEventKind
from schemas.dead_letter import DeadLetterMeta
from schemas.envelope import encode_headers, meta_header
from schemas.tagged_message import TaggedMessageMeta
from services.activity_writer.batch_threads import join_threads, plan_lookups
from services.activity_writer.errors import Unprocessable
from services.activity_writer.latency import ingest_latency, pipeline_latency
from services.activity_writer.mapping import Mapped, to_activity
from services.activity_writer.repository import ActivityRepository, Written
from services.common import metrics
from services.common.blobs import BlobStore
from services.common.mongo import is_transient

log = logging.getLogger("mailsync.activity_writer")

Record: TypeAlias = ConsumerRecord  # ConsumerRecord[bytes, bytes]; aiokafka ships no types


class WriterLoop:
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        repository: ActivityRepository,
        blobs: BlobStore,
        *,
        dead_letter_topic: str,
        events_topic: str,
        confirmations_topic: str,
        batch_size: int,
        retry_cap_s: float,
    ):
        self._consumer = consumer
        self._producer = producer
        self._repo = repository
        self._blobs = blobs
        self._dead_topic = dead_letter_topic
        self._events_topic = events_topic
        self._confirmations_topic = confirmations_topic
        self._batch_size = batch_size
        self._retry_cap_s = retry_cap_s
        self.written = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            batches = await self._consumer.getmany(timeout_ms=500, max_records=self._batch_size)
            records = [r for rs in batches.values() for r in rs]
            if not records:
                continue
            if not await self._write_until_done(records, stop):
                return  # stopped during an outage: nothing committed, the batch comes again
            await self._commit(batches)

    async def _prepare(
        self, records: list[Record]
    ) -> tuple[list[Mapped], list[tuple[Record, str]]]:
        """Map a batch, join threads, and store attachments; no activity is written yet."""
        mapped: list[Mapped] = []
        dead: list[tuple[Record, str]] = []
        now = dt.datetime.now(dt.UTC)
        for record in records:
            try:
                mapped.append(await self._map(record, now))
            except Unprocessable as exc:
                dead.append((record, str(exc)))
        # One query of each kind for the batch, and the attachments (stored once per
        # SHA-256, in one write: one round trip and fsync each was the batch's longest
        # wait), all at once: they are independent.
        lookups = plan_lookups(mapped)
        known, by_subject, _ = await asyncio.gather(
            self._repo.threads_of(lookups.message_ids),
            self._repo.threads_by_key(lookups.subject_keys),
            self._blobs.put_many(
                {
                    a.sha256: content
                    for item in mapped
                    for a, content in zip(
                        item.activity.attachments, item.attachment_contents, strict=True
                    )
                }
            ),
        )
        joined = join_threads(mapped, known, by_subject)
        return joined, dead

    async def _map(self, record: Record, now: dt.datetime) -> Mapped:
        try:
            meta = TaggedMessageMeta.model_validate_json(meta_header(record.headers))
        except (KeyError, ValidationError) as exc:
            raise Unprocessable(
                f"tagged record without a valid mailsync-meta header: {exc}"
            ) from None
        raw = record.value or b""
        if meta.raw.blob is not None:
            raw = await self._blobs.get(meta.raw.blob)  # a DB failure here is retried
        try:
            return to_activity(meta, raw, now)
        except ValidationError as exc:
            raise Unprocessable(f"message cannot become an activity: {exc}") from None

    async def _write_until_done(self, records: list[Record], stop: asyncio.Event) -> bool:
        attempt = 0
        paused = False
        try:
            while True:
                try:
                    items, dead = await self._prepare(records)
                    written = await self._repo.write([(m.activity, m.sighting) for m in items])
                    _measure(items)
                    await self._announce(written)
                    for record, reason in dead:
                        await self._dead_letter(record, reason)
                    self.written += len(records) - len(dead)
                    return True
                except PyMongoError as exc:
                    metrics.error("activity-writer", exc)
                    if not is_transient(exc):
                        raise  # a query the database refuses will not pass on a retry
                    attempt += 1
                    delay = min(self._retry_cap_s, 0.5 * 2 ** min(attempt, 10))
                    log.warning(
                        "database write failed (%s); pausing, retry %d in %.1fs",
                        exc,
                        attempt,
                        delay,
                    )
                    if not paused:
                        self._consumer.pause(*self._consumer.assignment())
                        paused = True
                    # getmany on paused partitions returns nothing but keeps us in the group.
                    deadline = asyncio.get_running_loop().time() + delay
                    while not stop.is_set() and asyncio.get_running_loop().time() < deadline:
                        await self._consumer.getmany(timeout_ms=200)
                    if stop.is_set():
                        return False
        finally:
            if paused:
                self._consumer.resume(*self._consumer.assignment())

    async def _announce(self, written: list[Written]) -> None:
        """Publish the activity events and confirmations of a durable write (acks=all)."""
        now = dt.datetime.now(dt.UTC)
        pending = []
        for w in written:
            event = ActivityEvent(
                kind=ActivityEventKind.CREATED if w.created else ActivityEventKind.UPDATED,
                activity_id=w.activity.id,
                account_ids=w.account_ids,
                message_id=w.activity.message_id,
                thread_id=w.activity.thread_id,
                sighting=w.sighting,
                at=now,
            )
            s = w.sighting
            confirmation = ActivityConfirmation(
                account_id=s.account_id,
                folder=s.folder,
                uidvalidity=s.uidvalidity,
                uid=s.uid,
                folder_role=s.folder_role,
                activity_id=w.activity.id,
                at=now,
            )
            pending.append(
                await self._producer.send(
                    self._events_topic, event.model_dump_json().encode(), key=w.activity.id.encode()
                )
            )
            pending.append(
                await self._producer.send(
                    self._confirmations_topic,
                    confirmation.model_dump_json().encode(),
                    key=s.account_id.encode(),
                )
            )
        await asyncio.gather(*pending)

    async def _dead_letter(self, record: Record, reason: str) -> None:
        meta = DeadLetterMeta.for_record(
            stage="activity_writer",
            reason=reason,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            headers=record.headers,
        )
        log.warning(
            "dead-lettered %s[%d]@%d: %s", record.topic, record.partition, record.offset, reason
        )
        await self._producer.send_and_wait(
            self._dead_topic,
            value=record.value or b"",
            key=record.key,
            headers=encode_headers(meta, in_blob=False),
        )
        metrics.dead_lettered("activity_writer")

    async def _commit(self, batches: dict[TopicPartition, list[Record]]) -> None:
        offsets = {tp: rs[-1].offset + 1 for tp, rs in batches.items() if rs}
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # Partitions moved to another writer mid-batch; it redoes the batch, idempotently.
            log.info("commit skipped after rebalance: %s", exc)


def _measure(items: list[Mapped]) -> None:
    """Count a durable write: sightings written, and how long their mail took."""
    now = dt.datetime.now(dt.UTC)
    for item in items:
        metrics.written(item.sighting.account_id, item.sighting.folder)
        if item.fetched_at is not None:
            metrics.latencies(
                ingest_latency(item.arrived, item.fetched_at, now),
                pipeline_latency(item.fetched_at, now),
            )
