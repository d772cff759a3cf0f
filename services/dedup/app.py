"""The dedup service: a faust-streaming application with two agents.

``tag``:   raw-messages -> (parse headers once, tag) -> dedup-by-fingerprint, keyed by fingerprint
``dedup``: dedup-by-fingerprint -> (sightings table) -> tagged-messages, keyed by activity id

The table (activity id -> its sightings) is co-partitioned with the by-fingerprint
topic (the explicit form of faust's ``group_by``): every activity of a fingerprint is
on its partition, so each worker owns the activities of its partitions; it is backed
by its changelog topic, so a restarted worker recovers it. Its verdict (``canonical``,
``duplicate_of``) is what the tagged-messages topic tells other systems; the stored
documents do not depend on it: the activity writer decides from what MongoDB holds.

Neither agent waits for its sends one by one: an event is acked when its output is in
the broker (:mod:`.acks`), so aiokafka gathers many events' records in one request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any, cast

import faust
from pydantic import ValidationError
from pymongo import AsyncMongoClient

from schemas.dead_letter import DeadLetterMeta
from schemas.envelope import encode_headers, meta_header
from schemas.raw_message import RawMessageMeta
from schemas.tagged_message import MessageTags, Sighting
from schemas.topics import (
    ACCOUNTS,
    BY_FINGERPRINT,
    DEAD_LETTERS,
    RAW_MESSAGES,
    TAGGED_MESSAGES,
    topics_of,
)
from services.common import metrics
from services.common.accounts_table import AccountDirectory
from services.common.blobs import BlobStore
from services.common.kafka import MAX_REQUEST_BYTES, consumer, ensure_topics
from services.common.mongo import database, mongo_client
from services.dedup.acks import ack_when_sent
from services.dedup.errors import MissingMeta, UnknownAccount, Untaggable
from services.dedup.fingerprint import identify
from services.dedup.headers import parse_headers
from services.dedup.settings import DedupSettings
from services.dedup.sighting_rules import record_sighting, tagged_meta
from services.dedup.tagging import account_tag, base_address, direction, match_alias
from services.dedup.transport import Transport, faust_auth

log = logging.getLogger("mailsync.dedup")


def _headers(event: Any) -> list[tuple[str, bytes]]:
    raw = event.message.headers
    if isinstance(raw, Mapping):
        return list(raw.items())
    return list(raw or [])


class Tagger:
    """What the ``tag`` agent does with one record (I/O kept to the blob fetch)."""

    def __init__(self, directory: AccountDirectory, blobs: BlobStore):
        self._directory = directory
        self._blobs = blobs
        self._synced: frozenset[str] = frozenset()
        self._synced_version = -1

    def synced_addresses(self) -> frozenset[str]:
        """Base addresses of every synced account, recomputed only when accounts change."""
        if self._synced_version != self._directory.version:
            self._synced = frozenset(
                base_address(a) for acc in self._directory.all() for a in acc.addresses
            )
            self._synced_version = self._directory.version
        return self._synced

    async def tag(self, headers: list[tuple[str, bytes]], value: bytes) -> MessageTags:
        try:
            meta = RawMessageMeta.model_validate_json(meta_header(headers))
        except (KeyError, ValidationError) as exc:
            raise MissingMeta(f"raw record without a valid mailsync-meta header: {exc}") from None
        account = await self._directory.lookup(meta.location.account_id)
        if account is None:
            raise UnknownAccount(f"account {meta.location.account_id!r} is not configured")
        raw = value if meta.blob is None else await self._blobs.get(meta.blob)
        parsed = parse_headers(raw)
        identity = identify(parsed, raw)
        return MessageTags(
            raw=meta,
            account=account_tag(account),
            alias=match_alias(account, parsed, meta.folder_role),
            direction=direction(account, parsed, meta.folder_role, self.synced_addresses()),
            fingerprint=identity.fingerprint,
            activity_id=identity.activity_id,
        )


def build_faust_app(settings: DedupSettings, tagger: Tagger) -> faust.App:
    s = settings
    (s.data_dir / "faust").mkdir(parents=True, exist_ok=True)
    credentials, context = faust_auth(s)
    app = faust.App(
        f"{s.topic_prefix}{s.dedup_app_id}",
        broker=[f"kafka://{h}" for h in (s.kafka_bootstrap or "").split(",")],
        broker_credentials=credentials,
        ssl_context=context,
        store="memory://",
        datadir=str(s.data_dir / "faust"),
        web_enabled=False,
        producer_acks=-1,
        producer_max_request_size=MAX_REQUEST_BYTES,
        # faust's 16 KB default batch is below one average message: every send to a
        # partition waited for the previous request (measured +25% msgs/s with these).
        # Each produce request costs the worker and the broker far more than its bytes
        # (protocol encoding, a round trip, acks=all): a 50 ms linger gathers a batch per
        # partition and cut CPU per message by a third (bench/dedup.py, 2000 messages).
        producer_max_batch_size=1024 * 1024,
        producer_linger=0.05,
        consumer_max_fetch_size=MAX_REQUEST_BYTES,
        broker_session_timeout=s.dedup_session_timeout_s,
        broker_heartbeat_interval=max(s.dedup_session_timeout_s / 5, 0.5),
        consumer_auto_offset_reset="earliest",
        processing_guarantee=s.dedup_processing_guarantee,
        topic_replication_factor=s.kafka_replication_factor,
        topic_disable_leader=True,
    )
    # faust uses transactions only in an app its own Worker runs (``App.in_transaction``
    # is ``in_worker`` and exactly_once); ``mailsync dedup`` starts the app itself, so it
    # says so here, or exactly_once would silently run at least once.
    app.in_worker = True
    app.transport = Transport(
        app.conf.broker_consumer, app, fetch_max_wait_ms=s.dedup_fetch_max_wait_ms
    )
    crashing: set[asyncio.Task[None]] = set()

    def crash(exc: BaseException) -> None:
        task = asyncio.ensure_future(app.crash(exc))
        crashing.add(task)  # a reference, so the task is not collected before it ran
        task.add_done_callback(crashing.discard)

    def acked_when_sent(event: Any, sent: Any) -> None:
        ack_when_sent(event, cast("asyncio.Future[Any]", sent), crash)

    raw_t = app.topic(s.topic(RAW_MESSAGES), key_serializer="raw", value_serializer="raw")
    by_fp = app.topic(s.topic(BY_FINGERPRINT), key_serializer="raw", value_serializer="raw")
    tagged = app.topic(s.topic(TAGGED_MESSAGES), key_serializer="raw", value_serializer="raw")
    dead = app.topic(s.topic(DEAD_LETTERS), key_serializer="raw", value_serializer="raw")
    table = app.Table(
        "sightings",
        default=list,
        partitions=BY_FINGERPRINT.partitions,
        key_type=bytes,
        # faust creates the changelog with topic_replication_factor; as durable as the
        # registry's topics (MAILSYNC_KAFKA_REPLICATION_FACTOR, _MIN_INSYNC_REPLICAS).
        extra_topic_configs={"min.insync.replicas": str(s.kafka_min_insync_replicas)},
    )

    async def dead_letter(
        stage: str, reason: str, event: Any, headers: list[tuple[str, bytes]]
    ) -> Any:
        meta = DeadLetterMeta.for_record(
            stage=stage,
            reason=reason,
            topic=event.message.topic,
            partition=event.message.partition,
            offset=event.message.offset,
            headers=headers,
        )
        log.warning(
            "dead-lettered %s[%d]@%d: %s",
            meta.source_topic,
            meta.source_partition,
            meta.source_offset,
            reason,
        )
        sent = await dead.send(
            key=event.key, value=event.value or b"", headers=encode_headers(meta, in_blob=False)
        )
        metrics.dead_lettered(stage)
        return sent

    @app.agent(raw_t, name="tag")
    async def tag(stream: Any) -> None:
        async for event in stream.noack().events():
            headers = _headers(event)
            value: bytes = event.value or b""
            try:
                tags = await tagger.tag(headers, value)
            except Untaggable as exc:
                metrics.error("dedup", exc)
                sent = await dead_letter("dedup.tag", str(exc), event, headers)
            except Exception as exc:
                metrics.error("dedup", exc)
                if isinstance(exc, OSError | asyncio.TimeoutError):
                    # Infrastructure: the event stays unacked, so the committed offset
                    # stops before it; the worker restarts and reads it again.
                    crash(exc)
                    raise
                sent = await dead_letter(
                    "dedup.tag", f"{type(exc).__name__}: {exc}", event, headers
                )
            else:
                sent = await by_fp.send(
                    key=tags.fingerprint.encode("utf-8", "surrogateescape"),
                    value=value,
                    headers=encode_headers(tags, in_blob=tags.raw.blob is not None),
                )
            acked_when_sent(event, sent)

    @app.agent(by_fp, name="dedup")
    async def dedup(stream: Any) -> None:
        async for event in stream.noack().events():
            headers = _headers(event)
            tags = MessageTags.model_validate_json(meta_header(headers))
            # Keyed by activity: the copies of one Message-ID that are different messages
            # (services.dedup.fingerprint) share the partition but not the sightings.
            # The changelog record goes to this event's partition, as the key's would.
            key = tags.activity_id.encode()
            known = [Sighting.model_validate(d) for d in table[key]]
            verdict = record_sighting(known, tags.sighting)
            if len(verdict.sightings) > len(known):
                if not verdict.canonical:
                    metrics.duplicate_linked(tags.sighting.account_id)  # a new sighting, linked
                table[key] = [v.model_dump(mode="json") for v in verdict.sightings]
            out = tagged_meta(tags, verdict)
            sent = await tagged.send(
                key=tags.activity_id.encode(),
                value=event.value or b"",
                headers=encode_headers(out, in_blob=tags.raw.blob is not None),
            )
            acked_when_sent(event, sent)

    del tag, dedup
    return app


class DedupApp:
    name = "dedup"

    def __init__(self, settings: DedupSettings):
        self.settings = settings
        self.faust: faust.App | None = None
        self._mongo: AsyncMongoClient[dict[str, Any]] | None = None
        self._directory: AccountDirectory | None = None

    async def start(self) -> None:
        s = self.settings
        s.log_startup(self.name)
        await ensure_topics(s, topics_of(self.name))
        self._mongo = mongo_client(s, app_name="mailsync-dedup")
        blobs = BlobStore(database(self._mongo, s))
        self._directory = AccountDirectory(
            consumer(s, group_id=None, client_id="mailsync-dedup-accounts"), s.topic(ACCOUNTS)
        )
        await self._directory.start()
        await self._directory.wait_ready(timeout=60)
        self.faust = build_faust_app(s, Tagger(self._directory, blobs))
        await self.faust.start()

    def consumer_groups(self) -> list[tuple[str, tuple[str, ...]]]:
        """faust's consumer group is its app id; both agents commit in it."""
        s = self.settings
        group = f"{s.topic_prefix}{s.dedup_app_id}"
        return [(group, (s.topic(RAW_MESSAGES), s.topic(BY_FINGERPRINT)))]

    async def run(self, stop: asyncio.Event) -> None:
        assert self.faust is not None and self._directory is not None
        while not stop.is_set():
            self._directory.check()
            if self.faust.should_stop or self.faust.crashed:
                raise RuntimeError(f"faust app stopped: {self.faust.crash_reason!r}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)

    async def cleanup(self, failed: bool) -> None:
        if self.faust is not None:
            await self.faust.stop()
        if self._directory is not None:
            await self._directory.stop()
        if self._mongo is not None:
            await self._mongo.close()
