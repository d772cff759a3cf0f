"""Reads the pipeline's state from Kafka for the status page (:mod:`.pipeline_view`).

Its clients (an admin client, and a consumer without a group that only asks for
offsets) open at the first read, so the CLI, which opens the same resources, never
connects them. A reading is kept :data:`MAX_AGE_S`: every open page polls every few
seconds, and a dozen Kafka requests each time would be waste. Kafka that does not
answer within :data:`TIMEOUT_S` makes the reading "unknown", never a slow page.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import UnknownTopicOrPartitionError, for_code

from schemas.topics import DAY_MS, DEAD_LETTERS
from services.api.pipeline_view import (
    DeadLetterView,
    GroupView,
    PipelineView,
    ServiceView,
    TopicLag,
    group_state,
    records_on,
    service_state,
    unknown_group,
    unknown_service,
)
from services.api.service_groups import WatchedGroup, service_groups
from services.api.settings import ApiSettings
from services.common.group_members import GroupMembers, describe_groups
from services.common.kafka import admin, consumer
from services.common.lag_monitor import group_lag

log = logging.getLogger("mailsync.api.pipeline")

MAX_AGE_S = 5.0
TIMEOUT_S = 5.0
CLIENT_ID = "mailsync-api-status"


class PipelineWatch:
    def __init__(self, settings: ApiSettings):
        self._settings = settings
        self._groups = service_groups(settings)
        self._admin: AIOKafkaAdminClient | None = None
        self._offsets: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()
        self._last: PipelineView | None = None
        self._last_at = -MAX_AGE_S

    async def view(self) -> PipelineView:
        """The latest reading, at most :data:`MAX_AGE_S` old."""
        async with self._lock:  # pages polling at once share one reading
            now = asyncio.get_running_loop().time()
            if self._last is None or now - self._last_at >= MAX_AGE_S:
                self._last = await self._read()
                self._last_at = asyncio.get_running_loop().time()
            return self._last

    async def _read(self) -> PipelineView:
        try:
            return await asyncio.wait_for(self._read_kafka(), TIMEOUT_S)
        except Exception as exc:
            # Clients that failed may be half-open: the next reading starts afresh.
            log.warning("status page: Kafka not read: %r", exc)
            await self.close()
            if isinstance(exc, TimeoutError):
                return self._unknown(f"Kafka did not answer within {TIMEOUT_S:g} s")
            return self._unknown(f"Kafka not read: {type(exc).__name__}: {exc}")

    async def _read_kafka(self) -> PipelineView:
        if self._admin is None or self._offsets is None:
            self._admin = admin(self._settings, client_id=CLIENT_ID)
            self._offsets = consumer(self._settings, group_id=None, client_id=CLIENT_ID)
            await self._admin.start()
            await self._offsets.start()
        adm, offsets = self._admin, self._offsets
        names = [g.group for groups in self._groups.values() for g in groups]
        described = await describe_groups(adm, names)
        services = []
        for service, groups in self._groups.items():
            views = [await self._group(adm, offsets, g, described.get(g.group)) for g in groups]
            state, detail = service_state(views)
            lags = [t.lag for v in views for t in v.lag]
            known = state != "unknown"
            services.append(
                ServiceView(
                    service=service,
                    state=state,
                    detail=detail,
                    lag=sum(lags) if known else None,
                    groups=tuple(views),
                )
            )
        return PipelineView(
            read_at=dt.datetime.now(dt.UTC),
            services=tuple(services),
            dead_letters=await self._dead_letters(adm, offsets),
        )

    @staticmethod
    async def _group(
        adm: AIOKafkaAdminClient,
        offsets: AIOKafkaConsumer,
        group: WatchedGroup,
        described: GroupMembers | None,
    ) -> GroupView:
        if described is None or described.error is not None:
            why = described.error if described else "not described"
            return unknown_group(group.group, group.commits, why)
        lag = await group_lag(adm, offsets, group.group, group.topics) if group.commits else {}
        return GroupView(
            group=group.group,
            state=group_state(described.state, described.members),
            kafka_state=described.state,
            members=described.members,
            commits=group.commits,
            lag=tuple(TopicLag(topic=t, lag=n) for t, n in sorted(lag.items())),
        )

    async def _dead_letters(
        self, adm: AIOKafkaAdminClient, offsets: AIOKafkaConsumer
    ) -> DeadLetterView:
        topic = self._settings.topic(DEAD_LETTERS)
        (described,) = await adm.describe_topics([topic])
        error_code = described.get("error_code", 0)
        if error_code == UnknownTopicOrPartitionError.errno:
            # Created by the first service that dead-letters: none has run yet.
            return self._dead_letter_view(
                0, f"{topic} does not exist yet: nothing was dead-lettered"
            )
        if error_code:  # e.g. not authorized to describe it: no count, not zero
            why = for_code(error_code).__name__
            return self._dead_letter_view(None, f"Kafka did not describe {topic}: {why}")
        tps = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
        start = await offsets.beginning_offsets(tps)
        end = await offsets.end_offsets(tps)
        count = records_on(
            {tp.partition: o for tp, o in start.items()}, {tp.partition: o for tp, o in end.items()}
        )
        kept = DEAD_LETTERS.retention_ms
        days = f"; each is kept {kept // DAY_MS} days" if kept is not None else ""
        return self._dead_letter_view(count, f"records on {topic}{days}")

    def _dead_letter_view(self, count: int | None, detail: str) -> DeadLetterView:
        retention = DEAD_LETTERS.retention_ms
        return DeadLetterView(
            topic=self._settings.topic(DEAD_LETTERS),
            count=count,
            retention_days=retention // DAY_MS if retention is not None else None,
            detail=detail,
        )

    def _unknown(self, why: str) -> PipelineView:
        return PipelineView(
            read_at=dt.datetime.now(dt.UTC),
            services=tuple(
                unknown_service(service, [(g.group, g.commits) for g in groups], why)
                for service, groups in self._groups.items()
            ),
            dead_letters=self._dead_letter_view(None, why),
        )

    async def close(self) -> None:
        offsets, adm = self._offsets, self._admin
        self._offsets = self._admin = None
        if offsets is not None:
            await offsets.stop()
        if adm is not None:
            await adm.close()
