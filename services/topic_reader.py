"""Read a whole topic from the beginning, without a consumer group (``mailsync topic``).

For people and tests looking at what we publish. (Debian's kcat, librdkafka 2.0.2,
fails its ApiVersionRequest against the Tansu broker, so we ship our own reader.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer

from schemas.envelope import META_HEADER
from services.common.kafka import client_options, partitions_of
from services.common.kafka_settings import KafkaSettings


@dataclass(frozen=True)
class TopicRecord:
    partition: int
    offset: int
    key: bytes | None
    headers: dict[str, bytes]
    value: bytes | None

    @property
    def meta(self) -> dict[str, Any] | None:
        """The ``mailsync-meta`` header as JSON, or the JSON value for JSON topics."""
        if META_HEADER in self.headers:
            parsed: dict[str, Any] = json.loads(self.headers[META_HEADER])
            return parsed
        if self.value:
            try:
                value: dict[str, Any] = json.loads(self.value)
                return value
            except ValueError:
                return None
        return None


async def read_topic(cluster: KafkaSettings | str, topic: str) -> list[TopicRecord]:
    """Every record now in ``topic``, partition by partition.

    ``cluster``: the Kafka settings (TLS, SASL: a production cluster), or a bootstrap
    address of a PLAINTEXT listener (the dev broker, the tests).
    """
    if isinstance(cluster, str):
        options: dict[str, Any] = {"bootstrap_servers": cluster}
    else:
        options = client_options(cluster)
    consumer = AIOKafkaConsumer(**options, enable_auto_commit=False)
    await consumer.start()
    try:
        # topics() refreshes the cluster metadata, so a topic created a moment ago is seen.
        if topic not in await consumer.topics():
            return []
        tps = await partitions_of(consumer, topic)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        out: list[TopicRecord] = []
        pending = {tp for tp, off in end.items() if off > 0}
        while pending:
            for tp, records in (await consumer.getmany(*pending, timeout_ms=500)).items():
                out += [
                    TopicRecord(r.partition, r.offset, r.key, dict(r.headers), r.value)
                    for r in records
                ]
                if await consumer.position(tp) >= end[tp]:
                    pending.discard(tp)
        return sorted(out, key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()
