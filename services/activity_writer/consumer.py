"""The writer's loop: a batch of tagged messages -> one durable write -> events -> commit.

Each batch is parsed, prepared (filtered, directed, threaded, its attachments stored),
written, and announced. The write returns once the database acknowledged it (with
``--sync-on-commit`` SecantusDB, or a majority write concern on MongoDB, that means
durable); then the batch's activity events and confirmations are published (acks=all);
only then are the offsets committed. While the database works on a batch's write, the
next batch is read and parsed (it is written, and committed, only after this one). When
the database fails, consumption pauses and the same batch is retried with backoff
(:mod:`.durably`); nothing is skipped and the consumer stays in its group.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from dataclasses import dataclass, replace
from typing import TypeAlias

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from gridfs.errors import NoFile
from pydantic import ValidationError
from pymongo.errors import PyMongoError

from schemas.activity_event import ActivityConfirmation, ActivityEvent, ActivityEventKind
from schemas.common import FolderRole, MessageLocation
from schemas.dead_letter import DeadLetterMeta
from schemas.envelope import encode_headers, meta_header
from schemas.tagged_message import TaggedMessageMeta
from services.accounts.tombstone_rules import stopped
from services.accounts.tombstones import TombstoneStore
from services.activity_writer.batch_threads import join_threads, plan_lookups
from services.activity_writer.direction import (
    activity_direction,
    changed_addresses,
    synced_addresses,
)
from services.activity_writer.durably import Durably, Stopped
from services.activity_writer.errors import NotAnActivity
from services.activity_writer.latency import ingest_latency, pipeline_latency
from services.activity_writer.mapping import Mapped, to_activity
from services.activity_writer.repository import ActivityRepository, Written
from services.common import metrics
from services.common.accounts_table import AccountDirectory
from services.common.blobs import BlobStore
from services.common.retry import is_retriable

log = logging.getLogger("mailsync.activity_writer")

Record: TypeAlias = ConsumerRecord  # ConsumerRecord[bytes, bytes]; aiokafka ships no types
Dead: TypeAlias = list[tuple[Record, str]]


@dataclass(frozen=True)
class _Fetched:
    """A batch from Kafka; ``mapped`` (activities, and records to dead-letter) once parsed."""

    batches: dict[TopicPartition, list[Record]]
    mapped: tuple[list[Mapped], Dead] | None = None

    @property
    def records(self) -> list[Record]:
        return [r for rs in self.batches.values() for r in rs]


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
        accounts: AccountDirectory | None = None,
    ):
        self._consumer = consumer
        self._producer = producer
        self._repo = repository
        self._tombstones = TombstoneStore(repository.collection.database)
        self._blobs = blobs
        self._dead_topic = dead_letter_topic
        self._events_topic = events_topic
        self._confirmations_topic = confirmations_topic
        self._batch_size = batch_size
        self._retry_cap_s = retry_cap_s
        self.written = 0
        self._accounts = accounts
        self._synced: frozenset[str] | None = None  # as of the directory's _synced_version
        self._synced_version = -1

    async def _directions_current(self) -> frozenset[str] | None:
        """The synced addresses; when accounts changed since the last batch (or since
        the directions were last recomputed, at start), the stored activities of the
        addresses that came or went get their direction again first."""
        if self._accounts is None:
            return None
        if self._synced_version == self._accounts.version and self._synced is not None:
            return self._synced
        version = self._accounts.version
        synced = synced_addresses(self._accounts.all())
        before = self._synced if self._synced is not None else await self._repo.directions_basis()
        if before != synced:
            changed = changed_addresses(before or frozenset(), synced)
            n = await self._repo.recompute_directions(changed, synced)
            log.info("accounts changed: %d activities have another direction", n)
        self._synced, self._synced_version = synced, version
        return synced

    def _directed(self, items: list[Mapped], synced: frozenset[str] | None) -> list[Mapped]:
        """Each activity's direction as the synced accounts make it (.direction), not as
        dedup's account directory did when it tagged the sighting."""
        if synced is None:
            return items
        out = []
        for m in items:
            a = m.activity
            direction = activity_direction(
                [a.from_.address] if a.from_ else [],
                [x.address for x in (*a.to, *a.cc)],
                m.sighting.folder_role is FolderRole.SENT,
                synced,
            )
            if direction is not a.direction:
                m = replace(m, activity=a.model_copy(update={"direction": direction}))
            out.append(m)
        return out

    async def run(self, stop: asyncio.Event) -> None:
        ahead: _Fetched | None = None
        while not stop.is_set():
            batch = ahead if ahead is not None else await self._fetch(timeout_ms=500)
            ahead = None
            if not batch.records:
                # Idle: accounts that changed still change the stored directions now.
                try:
                    await self._directions_current()
                except PyMongoError as exc:
                    if not is_retriable(exc):
                        raise
                    log.warning("directions not recomputed yet: %s", exc)
                continue
            done, ahead = await self._write_until_done(batch, stop)
            if not done:
                return  # stopped during an outage: nothing committed, the batch comes again
            await self._commit(batch.batches)

    async def _fetch(self, timeout_ms: int) -> _Fetched:
        batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=self._batch_size)
        return _Fetched(batches)

    async def _read_ahead(self) -> _Fetched:
        """The next batch, as far as Kafka has delivered it already, parsed."""
        fetched = await self._fetch(timeout_ms=0)
        with contextlib.suppress(PyMongoError):  # a raw blob unreadable now: parsed in turn
            return replace(fetched, mapped=await self._map_all(fetched.records))
        return fetched

    async def _map_all(self, records: list[Record]) -> tuple[list[Mapped], Dead]:
        """Parse a batch into activities; records that cannot become one, with the reason."""
        mapped: list[Mapped] = []
        dead: Dead = []
        now = dt.datetime.now(dt.UTC)
        for record in records:
            try:
                mapped.append(await self._map(record, now))
            except NotAnActivity as exc:
                dead.append((record, str(exc)))
        return mapped, dead

    async def _of_live_accounts(self, mapped: list[Mapped]) -> list[Mapped]:
        """Without the sightings of removed accounts: published before the removal,
        they must not bring back what a purge deleted (committed past, not written)."""
        removed = await self._repo.removed_accounts({m.sighting.account_id for m in mapped})
        if not removed:
            return mapped
        log.info("dropped sightings of removed accounts %s", sorted(removed))
        return [m for m in mapped if m.sighting.account_id not in removed]

    async def _not_erased(self, mapped: list[Mapped]) -> list[Mapped]:
        """Without the sightings a tombstone stops: mail erased or expired while still
        on the server (refetched, renumbered, or on its way at the erasure) stays gone."""
        places = [
            (
                m.activity.id,
                MessageLocation(
                    account_id=m.sighting.account_id,
                    folder=m.sighting.folder,
                    uidvalidity=m.sighting.uidvalidity,
                    uid=m.sighting.uid,
                ),
            )
            for m in mapped
        ]
        drop, renumbered = stopped(
            places, await self._tombstones.among(places), dt.datetime.now(dt.UTC)
        )
        if not drop:
            return mapped
        await self._tombstones.renumbered(renumbered)
        log.info("dropped %d sightings of erased or expired mail", len(drop))
        return [m for i, m in enumerate(mapped) if i not in drop]

    async def _prepare(self, mapped: list[Mapped]) -> tuple[list[Mapped], dict[str, str]]:
        """What of a parsed batch is to be written, as it is to be written: without the
        sightings of removed accounts and erased mail, each activity in its direction and
        its thread, its attachments stored; and the subject threads stored before it
        (thread key -> thread id). Nothing is written to the activities yet."""
        live = await self._not_erased(await self._of_live_accounts(mapped))
        synced = await self._directions_current()
        threaded, by_subject = await self._threaded(live)
        return self._directed(threaded, synced), by_subject

    async def _threaded(self, mapped: list[Mapped]) -> tuple[list[Mapped], dict[str, str]]:
        """Join a parsed batch's threads and store its attachments; no activity is written
        yet. Also the stored subject threads found (for :meth:`_link_and_announce`)."""
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
        return join_threads(mapped, known, dict(by_subject)), by_subject

    async def _map(self, record: Record, now: dt.datetime) -> Mapped:
        try:
            meta = TaggedMessageMeta.model_validate_json(meta_header(record.headers))
        except (KeyError, ValidationError) as exc:
            raise NotAnActivity(
                f"tagged record without a valid mailsync-meta header: {exc}"
            ) from None
        raw = record.value or b""
        if meta.raw.blob is not None:
            try:
                raw = await self._blobs.get(meta.raw.blob)  # a DB failure here is retried
            except NoFile:
                # Erased (GDPR) after it was published: a replay must not bring it back.
                raise NotAnActivity(
                    f"raw message {meta.raw.blob.sha256} is no longer stored (erased)"
                ) from None
        try:
            return to_activity(meta, raw, now)
        except ValidationError as exc:
            raise NotAnActivity(f"message cannot become an activity: {exc}") from None

    async def _write_until_done(
        self, batch: _Fetched, stop: asyncio.Event
    ) -> tuple[bool, _Fetched | None]:
        """Prepare ``batch``, write it, announce it (each step retried through an outage),
        and read the next one meanwhile: (False, None) when stopped first, else (True, the
        next batch if it was read)."""
        ahead: _Fetched | None = None

        async def prepare_and_write(
            mapped: list[Mapped],
        ) -> tuple[list[Mapped], list[Written], dict[str, str]]:
            nonlocal ahead
            # Prepared again on each attempt: an account removed, or mail erased, while
            # the database was away is not written back by the retry.
            items, by_subject = await self._prepare(mapped)
            pairs = [(m.activity, m.sighting) for m in items]
            if ahead is not None:
                return items, await self._repo.write(pairs), by_subject
            # Parsing (CPU) overlaps the database's work on the write. Both are awaited,
            # so an outage never finds a read still going on.
            outcome, read = await asyncio.gather(
                self._repo.write(pairs), self._read_ahead(), return_exceptions=True
            )
            if isinstance(read, BaseException):
                raise read
            ahead = read  # kept when the write failed: its records are read already
            if isinstance(outcome, BaseException):
                raise outcome
            return items, outcome, by_subject

        try:
            async with Durably(self._consumer, stop, retry_cap_s=self._retry_cap_s) as durably:
                parsed = batch.mapped
                if parsed is None:
                    parsed = await durably(lambda: self._map_all(batch.records))
                mapped, dead = parsed
                items, written, by_subject = await durably(lambda: prepare_and_write(mapped))
                _measure(items, written)
                await durably(lambda: self._link_and_announce(written, by_subject))
                for record, reason in dead:
                    await self._dead_letter(record, reason)
        except Stopped:
            return False, None
        self.written += len(items)
        return True, ahead

    async def _link_and_announce(self, written: list[Written], by_subject: dict[str, str]) -> None:
        """All idempotent, and independent: linking Message-ID conflicts (mostly one
        insert into message_ids) and recording the subject threads the write brought
        (``by_subject``: those stored before it, as looked up) overlap the events' round
        trip to Kafka."""
        await asyncio.gather(
            self._repo.link_conflicts(written),
            self._repo.record_threads(written, by_subject),
            self._announce(written),
        )

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


def _measure(items: list[Mapped], written: list[Written]) -> None:
    """Count a durable write: the sightings and activities it stored (not what a replay
    found there already), and how long their mail took."""
    now = dt.datetime.now(dt.UTC)
    for w in written:
        if w.added:
            metrics.sighting_written(w.sighting.account_id, w.sighting.folder)
        if w.inserted:
            metrics.activity_created(w.sighting.account_id)
    for item in items:
        if item.fetched_at is not None:
            metrics.latencies(
                ingest_latency(item.arrived, item.fetched_at, now),
                pipeline_latency(item.fetched_at, now),
            )
