"""Consumer lag of this process's consumer groups, as the ``mailsync_consumer_lag`` gauge.

A small service of its own, run beside the others: every ``MAILSYNC_LAG_INTERVAL_S`` it
reads each group's committed offsets (OffsetFetch) and the topics' end offsets
(ListOffsets) and sets the gauge. It never fails the process: a broker that does not
answer leaves the last values, with a warning (the readiness check reports the broker).
Every replica of a service reports the same group lag: dashboards take ``max by``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.common import metrics
from services.common.kafka import admin, consumer
from services.common.lag import lag_by_topic
from services.common.settings import CommonSettings

log = logging.getLogger("mailsync.lag")

# (consumer group, the topics it consumes), as each service declares them.
ConsumerGroup = tuple[str, tuple[str, ...]]


class LagMonitor:
    name = "lag-monitor"

    def __init__(self, settings: CommonSettings, groups: Sequence[ConsumerGroup]):
        self._settings = settings
        self._groups = list(groups)
        self._admin: AIOKafkaAdminClient | None = None
        self._offsets: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        s = self._settings
        self._admin = admin(s, client_id="mailsync-lag")
        await self._admin.start()
        # No group: this consumer only asks for end offsets, it never joins or commits.
        self._offsets = consumer(s, group_id=None, client_id="mailsync-lag")
        await self._offsets.start()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.refresh()
            except Exception as exc:  # the gauge keeps its last values; serving goes on
                log.warning("consumer lag not refreshed: %r", exc)
                metrics.error(self.name, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._settings.lag_interval_s)

    async def refresh(self) -> None:
        """Read the offsets once and set the gauge for every (topic, group)."""
        assert self._admin is not None and self._offsets is not None
        for group, topics in self._groups:
            lag = await group_lag(self._admin, self._offsets, group, topics)
            for topic, behind in lag.items():
                metrics.CONSUMER_LAG.labels(topic, group).set(behind)

    async def cleanup(self, failed: bool) -> None:
        if self._offsets is not None:
            await self._offsets.stop()
        if self._admin is not None:
            await self._admin.close()


async def group_lag(
    admin: AIOKafkaAdminClient, offsets: AIOKafkaConsumer, group: str, topics: Sequence[str]
) -> dict[str, int]:
    """Records behind, per topic of ``topics`` that exists, of ``group`` (OffsetFetch and
    ListOffsets); also what the API's status page shows."""
    described = await admin.describe_topics(list(topics))
    tps = [
        TopicPartition(t["topic"], p["partition"])
        for t in described
        if t.get("error_code", 0) == 0
        for p in t["partitions"]
    ]
    if not tps:
        return {}
    end = await offsets.end_offsets(tps)
    committed = await admin.list_consumer_group_offsets(group, partitions=tps)
    return lag_by_topic(
        {(tp.topic, tp.partition): om.offset for tp, om in committed.items()},
        {(tp.topic, tp.partition): offset for tp, offset in end.items()},
    )
