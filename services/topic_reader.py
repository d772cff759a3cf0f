"""Read a topic without a consumer group, as a stream (``mailsync topic``, and tests).

:func:`stream` assigns the topic's partitions by hand (no group: no member joins,
nothing is committed), seeks each to the start asked for and yields records as they
arrive, never holding more than one fetch. Without ``follow`` every partition is read
up to the end offset it had when reading began, so reading a topic being written to
still ends; with ``follow`` it waits for new records until the caller stops it.
:func:`read_topic` collects a whole topic into a list, for tests.

Anything that speaks Kafka reads these topics too: kcat (``kcat -C -b HOST:PORT -t
TOPIC -o beginning -e -J``), confluent-kafka, Kafka's own console consumer; the
payloads are described in ``schemas/json/``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer

from schemas.envelope import META_HEADER
from services.common.errors import MailsyncError
from services.common.kafka import MAX_REQUEST_BYTES, client_options, partitions_of
from services.common.kafka_settings import KafkaSettings

# Where to start in each partition: its first record, its end (only new records), an
# offset (clamped to the records the partition holds), or -N: its last N records.
Start = Literal["beginning", "end"] | int


class TopicNotFound(MailsyncError):
    """The topic, or a partition asked for, does not exist: check the name (given with or
    without MAILSYNC_TOPIC_PREFIX) and that MAILSYNC_KAFKA_BOOTSTRAP is the right cluster."""


@dataclass(frozen=True)
class TopicRecord:
    topic: str
    partition: int
    offset: int
    timestamp: int  # milliseconds since the epoch, as Kafka stores it; -1 when absent
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


def start_offset(start: Start, first: int, end: int) -> int:
    """The offset to read a partition from, when it holds the records ``first..end-1``."""
    if start == "beginning":
        return first
    if start == "end":
        return end
    if start < 0:
        return max(first, end + start)
    return min(max(start, first), end)


async def stream(
    options: Mapping[str, Any],
    topic: str,
    *,
    prefix: str = "",
    start: Start = "beginning",
    partitions: Collection[int] | None = None,
    follow: bool = False,
) -> AsyncGenerator[TopicRecord, None]:
    """Yield the records of ``topic`` as they are fetched, in offset order per partition.

    Args:
        options: how to reach the cluster (``services.common.kafka.client_options``).
        topic: its name; ``prefix + topic`` is tried first, so the name may be given
            with or without ``MAILSYNC_TOPIC_PREFIX``.
        start: where to start in every partition (see :data:`Start`).
        partitions: only these partitions (all when None).
        follow: keep waiting for new records instead of stopping at the end offsets.

    Raises :class:`TopicNotFound` before the first record. Use it inside
    ``contextlib.aclosing`` when not reading to the end, so the consumer is closed.
    """
    client = AIOKafkaConsumer(
        **options,
        group_id=None,
        client_id="mailsync-topic",
        enable_auto_commit=False,
        max_partition_fetch_bytes=MAX_REQUEST_BYTES,
    )
    try:
        await client.start()
        name = await _resolve(client, topic, prefix, options.get("bootstrap_servers"))
        tps = await partitions_of(client, name)
        if partitions is not None:
            have = {tp.partition for tp in tps}
            if missing := sorted(set(partitions) - have):
                raise TopicNotFound(
                    f"topic {name} has no partition {', '.join(map(str, missing))} "
                    f"(it has 0 to {len(tps) - 1})"
                )
            tps = [tp for tp in tps if tp.partition in partitions]
        client.assign(tps)
        first = await client.beginning_offsets(tps)
        end = await client.end_offsets(tps)
        pending = set()
        for tp in tps:
            offset = start_offset(start, first[tp], end[tp])
            client.seek(tp, offset)
            if follow or offset < end[tp]:
                pending.add(tp)
        while pending:
            for tp, records in (await client.getmany(*pending, timeout_ms=500)).items():
                for r in records:
                    if not follow and r.offset >= end[tp]:
                        break
                    yield TopicRecord(
                        r.topic, r.partition, r.offset, r.timestamp, r.key, dict(r.headers), r.value
                    )
            if not follow:
                # By position, not by the last record seen: an offset may hold no record
                # (a transaction marker, a compacted-away key).
                pending = {tp for tp in pending if await client.position(tp) < end[tp]}
    finally:
        await client.stop()


async def _resolve(client: AIOKafkaConsumer, topic: str, prefix: str, where: object) -> str:
    # topics() refreshes the cluster metadata, so a topic created a moment ago is seen.
    existing = await client.topics()
    tried = list(dict.fromkeys((prefix + topic, topic)))
    for name in tried:
        if name in existing:
            return name
    raise TopicNotFound(f"topic {' or '.join(tried)} does not exist at {where}")


async def read_topic(cluster: KafkaSettings | str, topic: str) -> list[TopicRecord]:
    """Every record now in ``topic`` (none when it does not exist), partition by partition.

    ``cluster``: the Kafka settings (TLS, SASL: a production cluster), or a bootstrap
    address of a PLAINTEXT listener (the dev broker, the tests).
    """
    if isinstance(cluster, str):
        options: dict[str, Any] = {"bootstrap_servers": cluster}
    else:
        options = client_options(cluster)
    with contextlib.suppress(TopicNotFound):
        records = [r async for r in stream(options, topic)]
        return sorted(records, key=lambda r: (r.partition, r.offset))
    return []
