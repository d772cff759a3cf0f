"""dedup's faust application: its configuration, and the topics and table it declares.

Every name here is part of what runs: the app id is the consumer group of both agents,
the table's name makes its changelog topic (``<app id>-sightings-changelog``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, cast

import faust
from aiokafka.admin import NewTopic
from faust.types import AppT, FutureMessage

from schemas.topics import BY_FINGERPRINT, DEAD_LETTERS, RAW_MESSAGES, TAGGED_MESSAGES
from services.common.kafka import MAX_REQUEST_BYTES, compression
from services.dedup.settings import DedupSettings
from services.dedup.stream import EventStream
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
    sent directly). Here :meth:`on_key_set` keeps each record, serialized as faust
    serializes it, and the ``dedup`` agent, the table's one writer, publishes it after
    each write and acks the event once it and the tagged record are in the broker: a
    committed event's sighting is in the changelog too.

    :meth:`on_key_set` keeps the record as bytes, not as faust's ``FutureMessage``
    (``Channel.as_future_message``: a pending message, its future and faust's
    serializer lookups for each write, a sixth of the ``dedup`` agent's own time,
    py-spy); the table's keys never expire and the app has no sensors
    (:func:`faust_app`), so faust's ``on_key_set`` does nothing else.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        self._unsent: list[tuple[int | None, bytes | None, bytes | None]] = []

    def on_key_set(self, key: Any, value: Any) -> None:
        serializers = self.app.serializers
        self._unsent.append(
            (
                self.partition_for_key(key),  # the current event's partition
                serializers.dumps_key(self.key_type, key, serializer=self.key_serializer),
                serializers.dumps_value(self.value_type, value, serializer=self.value_serializer),
            )
        )

    async def publish_changelog(self, output: Output) -> list[asyncio.Future[Any]]:
        """Hand the records of the writes so far to ``output``; the futures of their
        acks."""
        unsent, self._unsent = self._unsent, []
        topic = self.changelog_topic.get_topic_name()
        acks: list[asyncio.Future[Any]] = []
        for partition, key, value in unsent:
            ack = await output.send(topic, key, value, None, partition)
            ack.add_done_callback(self._on_changelog_acked)
            acks.append(ack)
        return acks

    def _on_changelog_acked(self, ack: asyncio.Future[Any]) -> None:
        """The table's bookkeeping of what the changelog holds, as faust's callback
        does it once its send succeeded."""
        if not ack.cancelled() and ack.exception() is None:
            self._on_changelog_sent(cast("FutureMessage", ack))  # it reads .result() only


class Output:
    """Where an agent's records go, as ``Topic.send`` would pick it: with
    ``exactly_once`` the consumer's transaction manager (each record in its partition's
    transaction, committed with the input's offsets); otherwise the app's aiokafka
    producer itself, without faust's ``Producer.send`` around it (a sensor signal, a
    ``Mapping`` check of the headers, a settings read: a fifth of the cost of each
    send, cProfile) nor ``App.maybe_start_producer``'s wrapper (see :mod:`.agents`)."""

    def __init__(self, app: AppT):
        self._app = app
        self._transactions = app.in_transaction

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]] | None,
        partition: int | None = None,
    ) -> asyncio.Future[Any]:
        """The future of the record's ack."""
        if self._transactions:
            producer = await self._app.maybe_start_producer()
            sent = await producer.send(topic, key, value, partition, None, headers)
        else:
            producer = cast("Any", self._app.producer)._ensure_producer()
            sent = await producer.send(topic, value, key=key, partition=partition, headers=headers)
        return cast("asyncio.Future[Any]", sent)


class _App(faust.App):
    """faust's app without its sensors.

    faust's one sensor by default, its ``Monitor``, keeps statistics that only faust's
    web server shows (``web_enabled=False`` here; mailsync's metrics are its own):
    two calls per event and two per table write, each through faust's sensor delegate,
    about 2% of the worker's time (cProfile). The monitor object stays, for faust's
    consumer's direct calls to it.
    """

    def on_init_dependencies(self) -> Any:
        deps = super().on_init_dependencies()
        self.sensors.remove(self.monitor)  # added just now by faust
        return deps


class RawSchema(faust.Schema):  # type: ignore[type-arg]
    """Keys and values as bytes, read without faust's serializer registry.

    mailsync's records carry their own envelope (:mod:`schemas.envelope`), so the
    topics are ``raw``; faust's registry would still look up the raw codec and pass
    each key and value through it for every event (2% of the worker's time, cProfile).
    """

    def __init__(self) -> None:
        super().__init__(
            key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        )

    def loads_key(self, app: AppT, message: Any, **_: Any) -> Any:
        return message.key

    def loads_value(self, app: AppT, message: Any, **_: Any) -> Any:
        return message.value


def faust_app(settings: DedupSettings) -> faust.App:
    """The faust app, configured, with mailsync's transport; no topics or agents yet."""
    s = settings
    (s.data_dir / "faust" / f"{s.topic_prefix}{s.dedup_app_id}").mkdir(parents=True, exist_ok=True)
    credentials, context = faust_auth(s)
    app = _App(
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
        Stream=EventStream,  # the agents' events without a loop pass each (stream.py)
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
    raw = app.topic(s.topic(RAW_MESSAGES), schema=RawSchema())
    by_fp = app.topic(s.topic(BY_FINGERPRINT), schema=RawSchema())
    tagged = app.topic(s.topic(TAGGED_MESSAGES), schema=RawSchema())
    dead = app.topic(s.topic(DEAD_LETTERS), schema=RawSchema())
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
