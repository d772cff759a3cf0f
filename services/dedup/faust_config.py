"""dedup's faust application: its configuration, and the topics and table it declares.

Every name here is part of what runs: the app id is the consumer group of both agents,
the table's name makes its changelog topic (``<app id>-sightings-changelog``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

import faust
from aiokafka.admin import NewTopic
from faust.types import AppT, CodecArg, FutureMessage

from schemas.topics import BY_FINGERPRINT, DEAD_LETTERS, RAW_MESSAGES, TAGGED_MESSAGES
from services.common.kafka import MAX_REQUEST_BYTES, compression
from services.dedup.settings import DedupSettings
from services.dedup.transport import Transport, faust_auth


@dataclass(frozen=True)
class Streams:
    """The topics and the table the agents read and write (faust objects, untyped)."""

    raw: Any  # raw-messages: the ``tag`` agent's input
    by_fingerprint: Any  # dedup-by-fingerprint: ``tag``'s output, ``dedup``'s input
    tagged: Any  # tagged-messages: ``dedup``'s output
    dead: Any  # dead-letters
    sightings: Any  # the table: activity id -> its sightings, changelog-backed


class SightingsTable(faust.Table):  # type: ignore[type-arg]
    """faust's table, its changelog records handed to the producer by the agent that
    wrote them.

    faust sends a changelog record through its producer buffer (``__setitem__`` cannot
    await), a task draining it one record at a time through ``Topic.publish_message``
    (three event-loop yields each, see :mod:`.agents`), and its conductor stops
    delivering events while the buffer holds over 100 records, polling it in 0.1 s
    waits ("producer buffer full" warnings, 28-103 per 2,000 messages once the agents
    sent directly). Here :meth:`send_changelog` keeps each record, serialized as faust
    serializes it, and the ``dedup`` agent, the table's one writer, publishes it after
    each write and acks the event once it and the tagged record are in the broker: a
    committed event's sighting is in the changelog too.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        self._unsent: list[FutureMessage] = []

    def send_changelog(
        self,
        partition: int | None,
        key: Any,
        value: Any,
        key_serializer: CodecArg | None = None,
        value_serializer: CodecArg | None = None,
    ) -> FutureMessage:
        fut = self.changelog_topic.as_future_message(
            key=key,
            value=value,
            partition=partition,
            key_serializer=key_serializer or self.key_serializer,
            value_serializer=value_serializer or self.value_serializer,
            callback=self._on_changelog_sent,
            eager_partitioning=True,
        )
        self._unsent.append(fut)
        return fut

    async def publish_changelog(self) -> list[asyncio.Future[Any]]:
        """Hand the records of the writes so far to the app's producer; the futures of
        their acks."""
        unsent, self._unsent = self._unsent, []
        topic, producer = self.changelog_topic.get_topic_name(), await output_producer(self.app)
        acks: list[asyncio.Future[Any]] = []
        for fut in unsent:
            m = fut.message
            ack = await producer.send(topic, m.key, m.value, m.partition, m.timestamp, m.headers)
            cast("asyncio.Future[Any]", ack).add_done_callback(partial(_settle, fut))
            acks.append(cast("asyncio.Future[Any]", ack))
        return acks


async def output_producer(app: AppT) -> Any:
    """The producer an agent's records go to, as ``Topic.send`` would pick it: with
    ``exactly_once`` the consumer's transaction manager (each record in its partition's
    transaction, committed with the input's offsets); otherwise the app's producer
    itself, without ``App.maybe_start_producer``'s wrapper (see :mod:`.agents`)."""
    if app.in_transaction:
        return await app.maybe_start_producer()
    return app.producer


def _settle(fut: FutureMessage, ack: asyncio.Future[Any]) -> None:
    """Settle faust's future of a changelog record as its send did, and run its callback
    (the table's bookkeeping of what the changelog holds)."""
    if ack.cancelled():
        fut.cancel()
    elif (exc := ack.exception()) is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(ack.result())
        if fut.message.callback:
            fut.message.callback(fut)


def faust_app(settings: DedupSettings) -> faust.App:
    """The faust app, configured, with mailsync's transport; no topics or agents yet."""
    s = settings
    (s.data_dir / "faust" / f"{s.topic_prefix}{s.dedup_app_id}").mkdir(parents=True, exist_ok=True)
    credentials, context = faust_auth(s)
    app = faust.App(
        f"{s.topic_prefix}{s.dedup_app_id}",
        broker=[f"kafka://{h}" for h in (s.kafka_bootstrap or "").split(",")],
        broker_credentials=credentials,
        ssl_context=context,
        # RocksDB through rocksdict (faust's own driver for it): the table on disk, a
        # restart on the same disk reads only the changelog written since (issue #16).
        store="rocksdb://" if s.dedup_table_store == "rocksdb" else "memory://",
        # One directory per app id: faust keys a partition's stored changelog offset by
        # the partition alone, so another app's files would claim offsets of its topic.
        datadir=str(s.data_dir / "faust" / f"{s.topic_prefix}{s.dedup_app_id}"),
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
        producer_compression_type=compression(s),
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
        app.conf.broker_consumer,
        app,
        fetch_max_wait_ms=s.dedup_fetch_max_wait_ms,
        wait_empty_timeout_s=s.dedup_wait_empty_timeout_s,
    )
    return app


def declare_streams(app: faust.App, settings: DedupSettings) -> Streams:
    """The app's topics (raw bytes in and out: the envelope is ours) and its table."""
    s = settings
    raw = app.topic(s.topic(RAW_MESSAGES), key_serializer="raw", value_serializer="raw")
    by_fp = app.topic(s.topic(BY_FINGERPRINT), key_serializer="raw", value_serializer="raw")
    tagged = app.topic(s.topic(TAGGED_MESSAGES), key_serializer="raw", value_serializer="raw")
    dead = app.topic(s.topic(DEAD_LETTERS), key_serializer="raw", value_serializer="raw")
    table = SightingsTable(
        app,
        name="sightings",
        default=list,
        partitions=BY_FINGERPRINT.partitions,
        key_type=bytes,
        # faust creates the changelog with topic_replication_factor; as durable as the
        # registry's topics (MAILSYNC_KAFKA_REPLICATION_FACTOR, _MIN_INSYNC_REPLICAS).
        extra_topic_configs={"min.insync.replicas": str(s.kafka_min_insync_replicas)},
        beacon=app.tables.beacon,  # as app.Table builds one
        # rocksdict, not python-rocksdb (faust's other driver, unmaintained)
        options={"driver": "rocksdict"} if s.dedup_table_store == "rocksdb" else None,
    )
    app.tables.add(table)
    return Streams(raw, by_fp, tagged, dead, table)


def changelog_topic(app: faust.App) -> NewTopic:
    """The sightings table's changelog as faust declares it (``Topic.declare`` and its
    aiokafka driver's ``_topic_config``), for creating it before faust starts."""
    topic = app.tables["sightings"].changelog_topic
    policies = sorted(
        p for p, on in (("compact", topic.compacting), ("delete", topic.deleting)) if on
    )
    configs = {"cleanup.policy": ",".join(policies)} if policies else {}
    configs.update({k: str(v) for k, v in (topic.config or {}).items()})
    return NewTopic(
        topic.get_topic_name(),
        topic.partitions or app.conf.topic_partitions,
        topic.replicas or app.conf.topic_replication_factor or 1,
        topic_configs=configs,
    )
