"""Kafka client factories, configured the same way for every service.

Producers use ``acks=all`` without idempotence: the Tansu broker has no InitProducerId,
and our consumers are idempotent anyway (deterministic ids, upserts). Consumers never
auto-commit: offsets are committed after the side effect is durable.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from schemas.topics import TopicSpec
from services.common.settings import CommonSettings

log = logging.getLogger("mailsync.kafka")

# Raw messages are inlined up to the inline limit (1 MiB by default); leave room for
# headers and batching overhead.
MAX_REQUEST_BYTES = 8 * 1024 * 1024


def producer(settings: CommonSettings, *, client_id: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.require_kafka(),
        client_id=client_id,
        acks="all",
        enable_idempotence=False,
        linger_ms=5,
        max_batch_size=1024 * 1024,
        max_request_size=MAX_REQUEST_BYTES,
        request_timeout_ms=30_000,
    )


def consumer(
    settings: CommonSettings,
    *topics: str,
    group_id: str | None,
    client_id: str,
    session_timeout_ms: int = 10_000,
    **extra: object,
) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.require_kafka(),
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=max(session_timeout_ms // 5, 500),
        max_partition_fetch_bytes=MAX_REQUEST_BYTES,
        fetch_max_bytes=4 * MAX_REQUEST_BYTES,
        **extra,
    )


async def ensure_topics(settings: CommonSettings, specs: Iterable[TopicSpec]) -> None:
    """Create the topics of the registry that do not exist yet (with their configs)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.require_kafka(), client_id="mailsync-admin"
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(settings.topic(s), s.partitions, 1, topic_configs=s.config())
            for s in specs
            if settings.topic(s) not in existing
        ]
        if missing:
            # Another replica may create it between list and create.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
            log.info("created topics %s", [t.name for t in missing])
    finally:
        await admin.close()
